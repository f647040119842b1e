// The partner SDK's call engine against an in-process stand-in for the
// ledger that fails on purpose: retries, idempotency keys kept across them,
// backoff, deadlines, credentials and error mapping. (The SDK against the
// real services is sdk_e2e_test.)
#include "partners/sdk/loyalty_sdk.h"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"

namespace loyalty::sdk {
namespace {

namespace lv1 = ::loyalty::ledger::v1;

class ScriptedLedger final : public lv1::LedgerService::Service {
 public:
  // Answers each Earn with the next status (OK once the script runs out).
  std::vector<grpc::Status> script;
  absl::Mutex mu;
  std::vector<std::string> keys;
  std::vector<std::string> authorizations;
  std::vector<absl::Duration> deadlines;

  grpc::Status Earn(grpc::ServerContext* ctx, const lv1::EarnRequest* req, lv1::EarnResponse* resp) override {
    absl::MutexLock lock(&mu);
    keys.push_back(req->idempotency_key());
    auto auth = ctx->client_metadata().find("authorization");
    authorizations.push_back(auth == ctx->client_metadata().end() ? ""
                                                                    : std::string(auth->second.data(), auth->second.size()));
    deadlines.push_back(absl::FromChrono(ctx->deadline()) - absl::Now());
    const size_t call = keys.size() - 1;
    if (call < script.size()) return script[call];
    resp->set_points(7);
    return grpc::Status::OK;
  }
};

class SdkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&ledger_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override { server_->Shutdown(); }

  ClientOptions Options(int max_attempts = 4) {
    ClientOptions o;
    o.target = "127.0.0.1:" + std::to_string(port_);
    o.api_key = "lk_test_secret";
    o.deadline = absl::Seconds(3);
    o.max_attempts = max_attempts;
    o.initial_backoff = absl::Milliseconds(100);
    o.max_backoff = absl::Milliseconds(250);
    o.sleep = [this](absl::Duration d) { sleeps_.push_back(d); };
    return o;
  }

  static lv1::EarnRequest Earn() {
    lv1::EarnRequest r;
    r.set_partner_id("vet");
    r.set_member_id("m1");
    r.mutable_amount()->set_amount_minor(1000);
    r.mutable_amount()->set_currency("EUR");
    return r;
  }

  ScriptedLedger ledger_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::vector<absl::Duration> sleeps_;
};

TEST_F(SdkTest, RetriesUnavailableAndAbortedWithTheSameGeneratedKey) {
  ledger_.script = {grpc::Status(grpc::StatusCode::UNAVAILABLE, "database down"),
                    grpc::Status(grpc::StatusCode::ABORTED, "deadlock, retry")};
  LedgerClient client(Options());
  auto result = client.Earn(Earn());
  ASSERT_TRUE(result.ok()) << result.error().ToString();
  EXPECT_EQ(result->points(), 7);
  ASSERT_EQ(ledger_.keys.size(), 3u);
  EXPECT_EQ(ledger_.keys[0].rfind("sdk-", 0), 0u) << ledger_.keys[0];
  EXPECT_EQ(ledger_.keys[0].size(), 30u);
  EXPECT_EQ(ledger_.keys[1], ledger_.keys[0]);
  EXPECT_EQ(ledger_.keys[2], ledger_.keys[0]);
  EXPECT_EQ(result.idempotency_key(), ledger_.keys[0]);
  // Full jitter under a doubling cap: [0, 100 ms], then [0, 200 ms].
  ASSERT_EQ(sleeps_.size(), 2u);
  EXPECT_LE(sleeps_[0], absl::Milliseconds(100));
  EXPECT_LE(sleeps_[1], absl::Milliseconds(200));
}

TEST_F(SdkTest, EachCallGetsItsOwnKeyAndTheCallersKeyIsKept) {
  LedgerClient client(Options());
  ASSERT_TRUE(client.Earn(Earn()).ok());
  ASSERT_TRUE(client.Earn(Earn()).ok());
  lv1::EarnRequest mine = Earn();
  mine.set_idempotency_key("invoice-42");
  auto result = client.Earn(mine);
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(ledger_.keys.size(), 3u);
  EXPECT_NE(ledger_.keys[0], ledger_.keys[1]);
  EXPECT_EQ(ledger_.keys[2], "invoice-42");
  EXPECT_EQ(result.idempotency_key(), "invoice-42");
}

TEST_F(SdkTest, BusinessRefusalsAreNotRetried) {
  ledger_.script = {grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "member 'm1' is suspended")};
  LedgerClient client(Options());
  auto result = client.Earn(Earn());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(ledger_.keys.size(), 1u);
  EXPECT_EQ(result.error().code, ErrorCode::kRejected);
  EXPECT_FALSE(result.error().retryable());
  EXPECT_EQ(result.error().ToString(), "REJECTED: member 'm1' is suspended");
  EXPECT_TRUE(sleeps_.empty());
}

TEST_F(SdkTest, GivesUpAfterMaxAttemptsAndSaysItIsWorthRetryingLater) {
  ledger_.script.assign(10, grpc::Status(grpc::StatusCode::UNAVAILABLE, "database down"));
  LedgerClient client(Options(3));
  auto result = client.Earn(Earn());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(ledger_.keys.size(), 3u);
  EXPECT_EQ(result.error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(result.error().retryable());
  EXPECT_EQ(result.error().attempts, 3);
  EXPECT_FALSE(result.idempotency_key().empty());  // to retry later, safely
}

TEST_F(SdkTest, InvalidArgumentNamesTheField) {
  ledger_.script = {grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "amount.amount_minor: must be positive"),
                    grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad request: no colon-field here")};
  LedgerClient client(Options());
  auto first = client.Earn(Earn());
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(first.error().field, "amount.amount_minor");
  auto second = client.Earn(Earn());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().field, "");
}

TEST_F(SdkTest, SendsTheApiKeyAndADeadline) {
  LedgerClient client(Options());
  ASSERT_TRUE(client.Earn(Earn()).ok());
  ASSERT_EQ(ledger_.authorizations.size(), 1u);
  EXPECT_EQ(ledger_.authorizations[0], "Bearer lk_test_secret");
  EXPECT_GT(ledger_.deadlines[0], absl::ZeroDuration());
  // The configured 3 s, not gRPC's infinite default. gRPC sends the time
  // left rounded up (seen here: up to 3.0097 s), so allow a little over.
  EXPECT_LE(ledger_.deadlines[0], absl::Seconds(3) + absl::Milliseconds(100)) << ledger_.deadlines[0];
}

TEST_F(SdkTest, AnUnreachablePlatformIsUnavailable) {
  ClientOptions o = Options(2);
  server_->Shutdown();
  LedgerClient client(o);
  auto result = client.Earn(Earn());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(result.error().attempts, 2);
}

}  // namespace
}  // namespace loyalty::sdk
