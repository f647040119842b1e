// rpc::RemoteError: the one rule for how a failed call to another of our
// services looks to the calling domain.
#include "common/rpc/client_call.h"

#include "gtest/gtest.h"

namespace loyalty::rpc {
namespace {

TEST(RemoteErrorTest, AnUnreachableOrOverloadedPeerIsUnavailableAndSaysWhatItSaid) {
  for (grpc::StatusCode code : {grpc::StatusCode::UNAVAILABLE, grpc::StatusCode::RESOURCE_EXHAUSTED}) {
    absl::Status s = RemoteError(grpc::Status(code, "database unavailable"), "ledger", "Authorize");
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << code;
    EXPECT_EQ(s.message(), "ledger unavailable (Authorize: database unavailable); retry later");
  }
}

TEST(RemoteErrorTest, ATimeoutIsUnavailableAndAsksForTheSameKey) {
  absl::Status s = RemoteError(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "Deadline Exceeded"), "catalog",
                               "LeaseCampaignBudget");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "catalog did not answer in time; retry later with the same idempotency key");
}

TEST(RemoteErrorTest, BusinessAnswersPassThroughWithTheirMessage) {
  const struct {
    grpc::StatusCode in;
    absl::StatusCode out;
  } rows[] = {
      {grpc::StatusCode::INVALID_ARGUMENT, absl::StatusCode::kInvalidArgument},
      {grpc::StatusCode::NOT_FOUND, absl::StatusCode::kNotFound},
      {grpc::StatusCode::FAILED_PRECONDITION, absl::StatusCode::kFailedPrecondition},
      {grpc::StatusCode::ALREADY_EXISTS, absl::StatusCode::kAlreadyExists},
      {grpc::StatusCode::ABORTED, absl::StatusCode::kAborted},
      {grpc::StatusCode::OUT_OF_RANGE, absl::StatusCode::kOutOfRange},
  };
  for (const auto& row : rows) {
    absl::Status s = RemoteError(grpc::Status(row.in, "member is suspended"), "ledger", "GrantBonus");
    EXPECT_EQ(s.code(), row.out) << row.in;
    EXPECT_EQ(s.message(), "member is suspended");
  }
}

TEST(RemoteErrorTest, ABadCredentialOrABugIsInternalNamingServiceAndMethod) {
  for (grpc::StatusCode code : {grpc::StatusCode::UNAUTHENTICATED, grpc::StatusCode::PERMISSION_DENIED,
                                grpc::StatusCode::INTERNAL, grpc::StatusCode::UNKNOWN,
                                grpc::StatusCode::UNIMPLEMENTED, grpc::StatusCode::DATA_LOSS}) {
    absl::Status s = RemoteError(grpc::Status(code, "no such key"), "settlement", "GetPartner");
    EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << code;
    EXPECT_NE(s.message().find("settlement GetPartner failed: "), absl::string_view::npos) << s;
  }
}

}  // namespace
}  // namespace loyalty::rpc
