// Each service binary starts on a free port, applies its migrations, answers
// the health check with SERVING (without an API key), refuses business calls
// without a valid key, never logs a key's secret, and stops cleanly on
// SIGTERM. Without a key source it refuses to start.
#include <string>

#include "common/testing/service_process.h"
#include "common/testing/test_db.h"
#include "common/testing/test_keys.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "loyalty/catalog/v1/catalog.grpc.pb.h"
#include "loyalty/ledger/v1/ledger.grpc.pb.h"
#include "loyalty/membership/v1/membership.grpc.pb.h"
#include "loyalty/settlement/v1/settlement.grpc.pb.h"

namespace loyalty {
namespace {

struct ServiceUnderTest {
  std::string name;       // "ledger"
  std::string full_name;  // "loyalty.ledger.v1.LedgerService"
  // The service's proto file. Naming a message links its generated code, so
  // that the descriptor pool knows the service.
  const google::protobuf::FileDescriptor* (*file)();
};

class ServiceHealthTest : public ::testing::TestWithParam<ServiceUnderTest> {};

TEST_P(ServiceHealthTest, StartsServesHealthAndStopsCleanly) {
  const std::string name = GetParam().name;
  auto db = testing::TestDatabase::Create(name);
  ASSERT_TRUE(db.ok()) << db.status();
  testing::TestKeyring keys;
  absl::StatusOr<std::string> keys_file = keys.WriteKeysFile();
  ASSERT_TRUE(keys_file.ok()) << keys_file.status();
  testing::ServiceProcess::EnvVars env = testing::ServiceDbEnv(**db, *keys_file);
  auto process = testing::ServiceProcess::Start(
      std::string(LOYALTY_BIN_DIR) + "/" + name + "/loyalty-" + name, {}, env);
  ASSERT_TRUE(process.ok()) << process.status();
  EXPECT_TRUE(testing::CheckServing((*process)->address(), "", absl::Seconds(5)).ok());

  // A business RPC: UNAUTHENTICATED without a key; with a valid key the call
  // gets past authentication (what the role may do is permission_walk_test's).
  const google::protobuf::ServiceDescriptor* service =
      GetParam().file()->FindServiceByName(GetParam().full_name.substr(GetParam().full_name.rfind('.') + 1));
  ASSERT_NE(service, nullptr);
  const google::protobuf::MethodDescriptor* method = service->method(0);
  const std::string path = "/" + GetParam().full_name + "/" + method->name();
  absl::Status anonymous = testing::CallRaw((*process)->address(), path, "", "", absl::Seconds(5));
  EXPECT_EQ(anonymous.code(), absl::StatusCode::kUnauthenticated) << path << ": " << anonymous;
  absl::Status keyed =
      testing::CallRaw((*process)->address(), path, "", keys.backoffice(), absl::Seconds(5));
  EXPECT_NE(keyed.code(), absl::StatusCode::kUnauthenticated) << path << ": " << keyed;
  // The log names the key by its id only.
  const std::string key_id = keys.backoffice().substr(3, 16);
  const std::string secret = keys.backoffice().substr(20);
  EXPECT_NE((*process)->LogTail().find("caller=key:" + key_id), std::string::npos) << (*process)->LogTail();
  EXPECT_EQ((*process)->LogTail(100'000).find(secret), std::string::npos);
  // The service is also known to health by its full name.
  EXPECT_TRUE(
      testing::CheckServing((*process)->address(), GetParam().full_name, absl::Seconds(5)).ok())
      << GetParam().full_name;
  // Migrations ran: the bookkeeping table exists in the service's schema.
  EXPECT_TRUE(testing::QueryIntForTest((*db)->pool(), "SELECT COUNT(*) FROM schema_migrations").ok());
  // One structured line per RPC: method, status, latency, caller.
  EXPECT_NE((*process)->LogTail().find(
                "event=rpc method=/grpc.health.v1.Health/Check status=OK latency_us="),
            std::string::npos)
      << (*process)->LogTail();
  absl::Status stopped = (*process)->Stop();
  EXPECT_TRUE(stopped.ok()) << stopped;
  EXPECT_NE((*process)->LogTail().find("event=stopped"), std::string::npos)
      << (*process)->LogTail();
}

TEST_P(ServiceHealthTest, RefusesToStartWithoutAKeySource) {
  const std::string name = GetParam().name;
  auto process = testing::ServiceProcess::Start(
      std::string(LOYALTY_BIN_DIR) + "/" + name + "/loyalty-" + name, {},
      {{"LOYALTY_API_KEYS_FILE", ""}, {"LOYALTY_DB_STARTUP_WAIT_MS", "0"}}, absl::Seconds(20));
  ASSERT_FALSE(process.ok());
  EXPECT_NE(process.status().message().find("exited during start (status 512)"),  // exit code 2
            absl::string_view::npos)
      << process.status();
  EXPECT_NE(process.status().message().find("--api_keys_file (or LOYALTY_API_KEYS_FILE) is required"),
            absl::string_view::npos)
      << process.status();
}

// Per-partner rate limits apply to every RPC of every service (common/auth);
// the ledger stands in for all four here.
TEST(PartnerRateLimit, APartnerOverItsBurstIsResourceExhaustedOthersAreNot) {
  auto db = testing::TestDatabase::Create("ratelimit");
  ASSERT_TRUE(db.ok()) << db.status();
  testing::TestKeyring keys({"vet", "food"});
  absl::StatusOr<std::string> keys_file = keys.WriteKeysFile();
  ASSERT_TRUE(keys_file.ok()) << keys_file.status();
  auto process = testing::ServiceProcess::Start(
      std::string(LOYALTY_BIN_DIR) + "/ledger/loyalty-ledger", {"--partner_rate_limits=vet=1/2"},
      testing::ServiceDbEnv(**db, *keys_file));
  ASSERT_TRUE(process.ok()) << process.status();
  const std::string path = "/loyalty.ledger.v1.LedgerService/GetBalance";
  auto call = [&](const std::string& key) {
    return testing::CallRaw((*process)->address(), path, "", key, absl::Seconds(5));
  };
  for (int i = 0; i < 2; ++i) {
    absl::Status s = call(keys.partner("vet"));
    EXPECT_NE(s.code(), absl::StatusCode::kResourceExhausted) << i << ": " << s;
  }
  absl::Status limited = call(keys.partner("vet"));
  EXPECT_EQ(limited.code(), absl::StatusCode::kResourceExhausted) << limited;
  EXPECT_NE(limited.message().find("partner 'vet'"), std::string::npos) << limited;
  // Another partner's bucket, and staff, are untouched.
  EXPECT_NE(call(keys.partner("food")).code(), absl::StatusCode::kResourceExhausted);
  for (int i = 0; i < 5; ++i) EXPECT_NE(call(keys.backoffice()).code(), absl::StatusCode::kResourceExhausted);
}

INSTANTIATE_TEST_SUITE_P(AllServices, ServiceHealthTest,
                         ::testing::Values(
                             ServiceUnderTest{"membership", "loyalty.membership.v1.MembershipService",
                                              [] { return membership::v1::EnrolRequest::descriptor()->file(); }},
                             ServiceUnderTest{"ledger", "loyalty.ledger.v1.LedgerService",
                                              [] { return ledger::v1::EarnRequest::descriptor()->file(); }},
                             ServiceUnderTest{"settlement", "loyalty.settlement.v1.SettlementService",
                                              [] { return settlement::v1::CreatePartnerRequest::descriptor()->file(); }},
                             ServiceUnderTest{"catalog", "loyalty.catalog.v1.CatalogService",
                                              [] { return catalog::v1::CreateRewardRequest::descriptor()->file(); }}),
                         [](const ::testing::TestParamInfo<ServiceUnderTest>& p) { return p.param.name; });

}  // namespace
}  // namespace loyalty
