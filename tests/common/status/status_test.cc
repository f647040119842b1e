#include <string>

#include "absl/strings/string_view.h"
#include "absl/strings/match.h"
#include "common/log/log.h"
#include "common/status/grpc_status.h"
#include "common/status/status_macros.h"
#include "gtest/gtest.h"

namespace loyalty {
namespace {

absl::Status FailIf(bool fail) {
  return fail ? absl::NotFoundError("missing") : absl::OkStatus();
}

absl::StatusOr<int> ValueOr(bool fail) {
  if (fail) return absl::FailedPreconditionError("no value");
  return 42;
}

absl::Status UsesReturnIfError(bool fail, int* reached) {
  RETURN_IF_ERROR(FailIf(fail));
  *reached = 1;
  return absl::OkStatus();
}

absl::StatusOr<int> UsesAssignOrReturn(bool fail) {
  ASSIGN_OR_RETURN(int v, ValueOr(fail));
  ASSIGN_OR_RETURN(const int w, ValueOr(false));  // two in one scope
  return v + w;
}

TEST(StatusMacros, ReturnIfErrorPropagatesAndContinues) {
  int reached = 0;
  EXPECT_EQ(UsesReturnIfError(true, &reached).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(reached, 0);
  EXPECT_TRUE(UsesReturnIfError(false, &reached).ok());
  EXPECT_EQ(reached, 1);
}

TEST(StatusMacros, AssignOrReturn) {
  EXPECT_EQ(UsesAssignOrReturn(true).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(*UsesAssignOrReturn(false), 84);
}

TEST(GrpcStatus, CallerFacingCodesKeepTheirMessage) {
  const absl::StatusCode codes[] = {
      absl::StatusCode::kInvalidArgument, absl::StatusCode::kNotFound,
      absl::StatusCode::kAlreadyExists,   absl::StatusCode::kFailedPrecondition,
      absl::StatusCode::kAborted,         absl::StatusCode::kUnavailable,
      absl::StatusCode::kPermissionDenied, absl::StatusCode::kUnauthenticated,
      absl::StatusCode::kResourceExhausted, absl::StatusCode::kDeadlineExceeded,
      absl::StatusCode::kUnimplemented,   absl::StatusCode::kOutOfRange,
      absl::StatusCode::kCancelled};
  for (absl::StatusCode code : codes) {
    grpc::Status g = ToGrpcStatus(absl::Status(code, "amount: must be positive"));
    EXPECT_EQ(static_cast<int>(g.error_code()), static_cast<int>(code));
    EXPECT_EQ(g.error_message(), "amount: must be positive");
  }
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
}

TEST(GrpcStatus, InternalDetailsAreLoggedNotSent) {
  std::string logged;
  log::SetSinkForTesting([&](absl::string_view line) { logged.append(line.data(), line.size()); });
  grpc::Status g = ToGrpcStatus(absl::InternalError("SELECT secret_column FROM t failed"));
  log::SetSinkForTesting(nullptr);
  EXPECT_EQ(g.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_FALSE(absl::StrContains(g.error_message(), "secret_column"));
  EXPECT_TRUE(absl::StartsWith(g.error_message(), "internal error (ref: "));
  EXPECT_TRUE(absl::StrContains(logged, "secret_column"));
  // The reference in the reply is the one in the log line.
  const std::string ref = g.error_message().substr(21, g.error_message().size() - 22);
  EXPECT_TRUE(absl::StrContains(logged, ref)) << logged;
  for (auto code : {absl::StatusCode::kUnknown, absl::StatusCode::kDataLoss}) {
    log::SetSinkForTesting([](absl::string_view) {});
    grpc::Status hidden = ToGrpcStatus(absl::Status(code, "detail"));
    log::SetSinkForTesting(nullptr);
    EXPECT_FALSE(absl::StrContains(hidden.error_message(), "detail"));
  }
}

TEST(GrpcStatus, RoundTrip) {
  absl::Status s = FromGrpcStatus(grpc::Status(grpc::StatusCode::NOT_FOUND, "member m1"));
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "member m1");
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
}

grpc::Status Handler(bool fail, int* out) {
  ASSIGN_OR_RETURN_GRPC(int v, ValueOr(fail));
  RETURN_IF_ERROR_GRPC(FailIf(v != 42));
  *out = v;
  return grpc::Status::OK;
}

TEST(GrpcStatus, HandlerMacros) {
  int out = 0;
  EXPECT_EQ(Handler(true, &out).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(Handler(false, &out).ok());
  EXPECT_EQ(out, 42);
}

}  // namespace
}  // namespace loyalty
