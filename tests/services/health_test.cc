// Each service binary starts on a free port, applies its migrations, answers
// the health check with SERVING, and stops cleanly on SIGTERM.
#include <string>

#include "common/testing/service_process.h"
#include "common/testing/test_db.h"
#include "gtest/gtest.h"

namespace loyalty {
namespace {

struct ServiceUnderTest {
  std::string name;       // "ledger"
  std::string full_name;  // "loyalty.ledger.v1.LedgerService"
};

class ServiceHealthTest : public ::testing::TestWithParam<ServiceUnderTest> {};

TEST_P(ServiceHealthTest, StartsServesHealthAndStopsCleanly) {
  const std::string name = GetParam().name;
  auto db = testing::TestDatabase::Create(name);
  ASSERT_TRUE(db.ok()) << db.status();
  const db::DbOptions& o = (*db)->options();
  testing::ServiceProcess::EnvVars env = {
      {"LOYALTY_DB_HOST", o.host},         {"LOYALTY_DB_PORT", std::to_string(o.port)},
      {"LOYALTY_DB_SOCKET", o.socket},     {"LOYALTY_DB_USER", o.user},
      {"LOYALTY_DB_PASSWORD", o.password}, {"LOYALTY_DB_NAME", (*db)->name()}};
  auto process = testing::ServiceProcess::Start(
      std::string(LOYALTY_BIN_DIR) + "/" + name + "/loyalty-" + name, {}, env);
  ASSERT_TRUE(process.ok()) << process.status();
  EXPECT_TRUE(testing::CheckServing((*process)->address(), "", absl::Seconds(5)).ok());
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

INSTANTIATE_TEST_SUITE_P(AllServices, ServiceHealthTest,
                         ::testing::Values(
                             ServiceUnderTest{"membership", "loyalty.membership.v1.MembershipService"},
                             ServiceUnderTest{"ledger", "loyalty.ledger.v1.LedgerService"},
                             ServiceUnderTest{"settlement", "loyalty.settlement.v1.SettlementService"},
                             ServiceUnderTest{"catalog", "loyalty.catalog.v1.CatalogService"}),
                         [](const ::testing::TestParamInfo<ServiceUnderTest>& p) { return p.param.name; });

}  // namespace
}  // namespace loyalty
