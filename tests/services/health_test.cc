// Each service binary starts on a free port, applies its migrations, answers
// the health check with SERVING (without an API key), refuses business calls
// without a valid key, never logs a key's secret, and stops cleanly on
// SIGTERM. Without a key source it refuses to start. Its health follows its
// database (reached through a FaultProxy, which can refuse it), and turns
// NOT_SERVING on SIGTERM before in-flight calls have drained.
#include <signal.h>

#include <atomic>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "common/testing/fault_proxy.h"

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
  // A method that reads the database with an empty request and a backoffice key.
  std::string db_read_method;
};

class ServiceHealthTest : public ::testing::TestWithParam<ServiceUnderTest> {
 protected:
  // Starts the service on a fresh schema, reaching it through `proxy`.
  void StartThroughProxy(const std::vector<std::string>& args = {}) {
    auto db = testing::TestDatabase::Create(GetParam().name);
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    auto proxy = testing::FaultProxy::Start("127.0.0.1", db_->options().port);
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    proxy_ = *std::move(proxy);
    absl::StatusOr<std::string> keys_file = keys_.WriteKeysFile();
    ASSERT_TRUE(keys_file.ok()) << keys_file.status();
    testing::ServiceProcess::EnvVars env = testing::ServiceDbEnv(*db_, *keys_file, proxy_->port());
    env.emplace_back("LOYALTY_DB_HEALTH_INTERVAL_MS", "200");
    auto process = testing::ServiceProcess::Start(Binary(), args, env);
    ASSERT_TRUE(process.ok()) << process.status();
    process_ = *std::move(process);
  }

  std::string Binary() const {
    return std::string(LOYALTY_BIN_DIR) + "/" + GetParam().name + "/loyalty-" + GetParam().name;
  }

  // Health of the whole server and of the service by name, as one word.
  std::string Health() {
    absl::Status all = testing::CheckServing(process_->address(), "", absl::Seconds(2));
    absl::Status named = testing::CheckServing(process_->address(), GetParam().full_name, absl::Seconds(2));
    if (all.ok() && named.ok()) return "SERVING";
    if (absl::StrContains(all.message(), "health status 2") && absl::StrContains(named.message(), "health status 2")) {
      return "NOT_SERVING";
    }
    return absl::StrCat("mixed or failed: ", all.ToString(), " / ", named.ToString());
  }

  // Polls Health() until it says `want`; how long that took.
  absl::StatusOr<absl::Duration> WaitForHealth(const std::string& want, absl::Duration limit) {
    const absl::Time start = absl::Now();
    std::string last;
    while (absl::Now() - start < limit) {
      last = Health();
      if (last == want) return absl::Now() - start;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return absl::DeadlineExceededError(absl::StrCat("health still ", last, " after ", absl::FormatDuration(limit)));
  }

  testing::TestKeyring keys_;
  std::unique_ptr<testing::TestDatabase> db_;
  std::unique_ptr<testing::FaultProxy> proxy_;
  std::unique_ptr<testing::ServiceProcess> process_;
};

TEST_P(ServiceHealthTest, HealthIsNotServingWhileTheDatabaseIsUnreachable) {
  ASSERT_NO_FATAL_FAILURE(StartThroughProxy());
  ASSERT_EQ(Health(), "SERVING");
  proxy_->SetRefusing(true);  // every connection cut, new ones closed
  absl::StatusOr<absl::Duration> down = WaitForHealth("NOT_SERVING", absl::Seconds(10));
  ASSERT_TRUE(down.ok()) << down.status() << "\n" << process_->LogTail();
  // Probes every 200 ms, two failures in a row: well within a few seconds.
  EXPECT_LT(*down, absl::Seconds(5));
  proxy_->SetRefusing(false);
  absl::StatusOr<absl::Duration> up = WaitForHealth("SERVING", absl::Seconds(10));
  ASSERT_TRUE(up.ok()) << up.status() << "\n" << process_->LogTail();
  // Once per outage, not once per probe.
  const std::string log = process_->LogTail(200'000);
  auto count = [&](const std::string& needle) {
    size_t n = 0;
    for (size_t at = log.find(needle); at != std::string::npos; at = log.find(needle, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("event=database_unavailable"), 1u) << log;
  EXPECT_EQ(count("event=database_available"), 1u) << log;
  EXPECT_EQ(count("event=database_probe_failing"), 1u) << log;
  EXPECT_EQ(count("event=database_probe_recovered"), 1u) << log;
}

TEST_P(ServiceHealthTest, SigtermTurnsHealthNotServingBeforeTheDrain) {
  ASSERT_NO_FATAL_FAILURE(StartThroughProxy({"--shutdown_grace_ms=20000"}));
  ASSERT_EQ(Health(), "SERVING");
  // A call that is still in flight when SIGTERM arrives: every command to
  // the database waits 1 s.
  proxy_->SetDelay(absl::Milliseconds(1000));
  const std::string path = "/" + GetParam().full_name + "/" + GetParam().db_read_method;
  std::atomic<bool> finished{false};
  absl::Status in_flight;
  std::thread caller([&] {
    in_flight = testing::CallRaw(process_->address(), path, "", keys_.backoffice(), absl::Seconds(20));
    finished = true;
  });
  absl::SleepFor(absl::Milliseconds(300));
  ASSERT_EQ(::kill(process_->pid(), SIGTERM), 0);
  const absl::Time signalled = absl::Now();
  // From shortly after the signal (time for the process to be scheduled),
  // health never says SERVING again; the in-flight call still runs meanwhile.
  int serving_late = 0;
  int answered = 0;
  while (absl::Now() - signalled < absl::Milliseconds(600)) {
    const absl::Time asked = absl::Now();
    const std::string health = Health();
    if (health == "SERVING" && asked - signalled > absl::Milliseconds(200)) ++serving_late;
    if (health == "NOT_SERVING") ++answered;
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(serving_late, 0);
  EXPECT_FALSE(finished.load()) << "the in-flight call ended before the health checks were made";
  caller.join();
  // The in-flight call drained normally.
  EXPECT_NE(in_flight.code(), absl::StatusCode::kUnavailable) << in_flight;
  EXPECT_NE(in_flight.code(), absl::StatusCode::kCancelled) << in_flight;
  proxy_->SetDelay(absl::ZeroDuration());
  absl::Status stopped = process_->Stop();
  EXPECT_TRUE(stopped.ok()) << stopped;
  const std::string log = process_->LogTail(1'000'000);
  EXPECT_NE(log.find("event=shutting_down signal=15 health=NOT_SERVING"), std::string::npos) << log;
  RecordProperty("health_checks_answered_not_serving", answered);
}

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

TEST_P(ServiceHealthTest, BodiesThatDoNotParseAreInvalidArgumentAndNoServerFault) {
  ASSERT_NO_FATAL_FAILURE(StartThroughProxy());
  const google::protobuf::ServiceDescriptor* service =
      GetParam().file()->FindServiceByName(GetParam().full_name.substr(GetParam().full_name.rfind('.') + 1));
  ASSERT_NE(service, nullptr);
  const std::string path = "/" + GetParam().full_name + "/" + service->method(0)->name();
  // Not protobuf at all; and field 1 (a string: the idempotency key) holding
  // bytes that are not UTF-8. Anonymous, and with a key.
  for (const std::string& body : {std::string("\xff\xff\xff\xff", 4), std::string("\x0a\x02\xc3\x28", 4)}) {
    for (const std::string& key : {std::string(), keys_.backoffice()}) {
      absl::Status s = testing::CallRaw(process_->address(), path, body, key, absl::Seconds(5));
      EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << path << ": " << s;
      EXPECT_TRUE(absl::StartsWith(s.message(), "request: ")) << s;
    }
  }
  const std::string log = process_->LogTail(1'000'000);
  EXPECT_EQ(log.find("level=error"), std::string::npos) << log;
  EXPECT_NE(log.find("status=INVALID_ARGUMENT"), std::string::npos) << log;
  // The service still works.
  EXPECT_EQ(Health(), "SERVING");
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
                                              [] { return membership::v1::EnrolRequest::descriptor()->file(); },
                                              "ListAuditEvents"},
                             ServiceUnderTest{"ledger", "loyalty.ledger.v1.LedgerService",
                                              [] { return ledger::v1::EarnRequest::descriptor()->file(); },
                                              "GetPointsLiability"},
                             ServiceUnderTest{"settlement", "loyalty.settlement.v1.SettlementService",
                                              [] { return settlement::v1::CreatePartnerRequest::descriptor()->file(); },
                                              "ListPartners"},
                             ServiceUnderTest{"catalog", "loyalty.catalog.v1.CatalogService",
                                              [] { return catalog::v1::CreateRewardRequest::descriptor()->file(); },
                                              "ListRewards"}),
                         [](const ::testing::TestParamInfo<ServiceUnderTest>& p) { return p.param.name; });

}  // namespace
}  // namespace loyalty
