// The platform on a three-node MariaDB Galera cluster (deploy/galera.sh),
// which the suite starts and stops itself:
//  - migrations run by replicas on different nodes at once apply each file
//    once, although the nodes answer each other's conflicts with 1213;
//  - two ledger replicas started together on two nodes both start;
//  - two ledger replicas writing through two nodes, given the same keys at
//    the same instant, acknowledge only committed earns, and the same key
//    always gets the same transfer; the invariants hold and the chain
//    verifies.
//
// Needs LOYALTY_GALERA_SCRIPT (deploy/galera.sh) and LOYALTY_GALERA_DIR, and
// GALERA_BASE_PORT / GALERA_GCOMM_BASE_PORT / GALERA_PASSWORD as that script
// reads them; deploy/test.sh sets them all.
#include <sys/wait.h>

#include <atomic>
#include <barrier>
#include <cstdlib>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/db/migrations.h"
#include "common/testing/service_process.h"
#include "common/testing/test_db.h"
#include "common/testing/test_keys.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "loyalty/ledger/v1/ledger.grpc.pb.h"
#include "tests/services/ledger/ledger_fixture.h"
#include "tests/services/ledger/rules_file.h"

namespace loyalty {
namespace ledger {
const std::vector<db::MigrationFile>& Migrations();
}  // namespace ledger
namespace {

std::string Env(const char* name, const char* fallback = "") {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

// Runs deploy/galera.sh ACTION on the suite's cluster; its exit code.
int Galera(const std::string& action) {
  const std::string cmd =
      absl::StrCat("'", Env("LOYALTY_GALERA_SCRIPT"), "' ", action, " '", Env("LOYALTY_GALERA_DIR"), "' >&2");
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// Node i (1..3) of the cluster, with `database` selected (may be empty).
db::DbOptions Node(int i, const std::string& database = "") {
  db::DbOptions o;
  o.host = "127.0.0.1";
  int base = 0;
  EXPECT_TRUE(absl::SimpleAtoi(Env("GALERA_BASE_PORT", "3320"), &base));
  o.port = base + i - 1;
  o.user = "loyalty";
  o.password = Env("GALERA_PASSWORD", "loyalty-test");
  o.database = database;
  o.pool_size = 4;
  return o;
}

// A fresh schema on the cluster.
std::string NewSchema(const std::string& prefix) {
  static std::atomic<int> counter{0};
  const std::string name = absl::StrCat("loyalty_galera_", prefix, "_", getpid(), "_", counter++);
  EXPECT_TRUE(db::EnsureDatabase(Node(1), name).ok());
  return name;
}

// A pool on node 3 whose reads wait until the node has applied everything
// the cluster committed before them (wsrep_sync_wait), for checking.
std::unique_ptr<db::ConnectionPool> CheckingPool(const std::string& schema) {
  db::DbOptions o = Node(3, schema);
  o.pool_size = 1;
  auto pool = db::ConnectionPool::Create(o);
  EXPECT_TRUE(pool.ok()) << pool.status();
  EXPECT_TRUE(testing::ExecForTest(**pool, "SET SESSION wsrep_sync_wait = 1").ok());
  return *std::move(pool);
}

class GaleraTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_FALSE(Env("LOYALTY_GALERA_SCRIPT").empty() || Env("LOYALTY_GALERA_DIR").empty())
        << "LOYALTY_GALERA_SCRIPT and LOYALTY_GALERA_DIR are not set: run through deploy/test.sh";
    ASSERT_EQ(Galera("start"), 0) << "the Galera cluster did not start";
  }
  static void TearDownTestSuite() { Galera("stop"); }

  void SetUp() override {
    if (Galera("status") != 0) GTEST_FAIL() << "the cluster is not synced";
  }
};

TEST_F(GaleraTest, MigrationsRunOnTwoNodesAtOnceApplyEachFileOnce) {
  const std::vector<db::MigrationFile> files = {
      {"0001_create_widgets.sql", "DO SLEEP(0.3);\nCREATE TABLE IF NOT EXISTS widgets (id INT PRIMARY KEY) ENGINE=InnoDB"},
      {"0002_add_colour.sql", "ALTER TABLE widgets ADD COLUMN IF NOT EXISTS colour VARCHAR(16) NULL"},
      {"0003_first_widget.sql", "INSERT IGNORE INTO widgets (id) VALUES (1)"},
  };
  for (int round = 0; round < 3; ++round) {
    const std::string schema = NewSchema("migr");
    constexpr int kReplicas = 4;  // two per node
    std::vector<absl::StatusOr<db::MigrationReport>> results(kReplicas, absl::UnknownError("unset"));
    std::vector<std::thread> threads;
    for (int i = 0; i < kReplicas; ++i) {
      threads.emplace_back([&, i] {
        auto pool = db::ConnectionPool::Create(Node(1 + i % 2, schema));
        if (!pool.ok()) {
          results[i] = pool.status();
          return;
        }
        db::MigrationOptions options;
        options.poll_interval = absl::Milliseconds(20);
        results[i] = db::ApplyMigrations(**pool, files, options);
      });
    }
    for (auto& t : threads) t.join();
    size_t applied = 0;
    for (const auto& r : results) {
      ASSERT_TRUE(r.ok()) << "round " << round << ": " << r.status();
      applied += r->applied.size();
    }
    EXPECT_EQ(applied, files.size()) << "round " << round;
    auto check = CheckingPool(schema);
    EXPECT_EQ(*testing::QueryIntForTest(*check, "SELECT COUNT(*) FROM schema_migrations"), 3);
    EXPECT_EQ(*testing::QueryIntForTest(*check, "SELECT COUNT(*) FROM widgets"), 1);
  }
}

// Two ledger replicas on one schema, replica i writing through node i.
class GaleraLedgerTest : public GaleraTest {
 protected:
  void SetUp() override {
    GaleraTest::SetUp();
    ledger::internal::v1::EarnRulesFile rules;
    ledger::testing::AddPartner(rules, "vet");
    rules_file_ = ledger::testing::WriteRulesFile(rules);
    auto keys = keys_.WriteKeysFile();
    ASSERT_TRUE(keys.ok()) << keys.status();
    keys_file_ = *keys;
  }
  void TearDown() override { std::remove(rules_file_.c_str()); }

  // Starts both replicas at the same time on a fresh schema.
  void StartReplicas() {
    schema_ = NewSchema("ledger");
    std::vector<absl::StatusOr<std::unique_ptr<testing::ServiceProcess>>> started;
    for (int i = 0; i < 2; ++i) started.emplace_back(absl::UnknownError("unset"));
    std::vector<std::thread> threads;
    for (int i = 0; i < 2; ++i) {
      threads.emplace_back([&, i] {
        const db::DbOptions node = Node(i + 1, schema_);
        testing::ServiceProcess::EnvVars env = {
            {"LOYALTY_DB_HOST", node.host},         {"LOYALTY_DB_PORT", std::to_string(node.port)},
            {"LOYALTY_DB_SOCKET", ""},              {"LOYALTY_DB_USER", node.user},
            {"LOYALTY_DB_PASSWORD", node.password}, {"LOYALTY_DB_NAME", schema_},
            {"LOYALTY_API_KEYS_FILE", keys_file_}};
        started[i] = testing::ServiceProcess::Start(
            absl::StrCat(LOYALTY_BIN_DIR, "/ledger/loyalty-ledger"),
            {absl::StrCat("--earn_rules_file=", rules_file_), "--hold_sweep_interval_ms=0",
             "--expiry_interval_ms=0", "--partner_rate_limit_rps=0"},
            env);
      });
    }
    for (auto& t : threads) t.join();
    replicas_.clear();
    stubs_.clear();
    for (int i = 0; i < 2; ++i) {
      ASSERT_TRUE(started[i].ok()) << "replica on node " << i + 1 << ": " << started[i].status();
      replicas_.push_back(*std::move(started[i]));
      stubs_.push_back(ledger::v1::LedgerService::NewStub(
          grpc::CreateChannel(replicas_.back()->address(), grpc::InsecureChannelCredentials())));
    }
  }

  // Earn with `key` on replica `i`, retried with the same request while the
  // answer is not final, as a till would.
  grpc::Status Earn(int i, const std::string& key, int64_t amount_minor, ledger::v1::EarnResponse* out) {
    ledger::v1::EarnRequest r = ledger::testing::EarnOf(key, "vet", absl::StrCat("m-", key.substr(0, 6)),
                                                        amount_minor);
    grpc::Status s;
    for (int attempt = 0; attempt < 100; ++attempt) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      ctx.AddMetadata("authorization", "Bearer " + keys_.partner("vet"));
      out->Clear();
      s = stubs_[i]->Earn(&ctx, r, out);
      if (s.error_code() != grpc::StatusCode::UNAVAILABLE && s.error_code() != grpc::StatusCode::ABORTED &&
          s.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
        return s;
      }
      ++retries_;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return s;
  }

  testing::TestKeyring keys_{{"vet"}};
  std::string rules_file_;
  std::string keys_file_;
  std::string schema_;
  std::vector<std::unique_ptr<testing::ServiceProcess>> replicas_;
  std::vector<std::unique_ptr<ledger::v1::LedgerService::Stub>> stubs_;
  std::atomic<int> retries_{0};
};

TEST_F(GaleraLedgerTest, TwoReplicasStartedTogetherOnTwoNodesBothStart) {
  for (int round = 0; round < 3; ++round) {
    ASSERT_NO_FATAL_FAILURE(StartReplicas()) << "round " << round;
    for (auto& replica : replicas_) EXPECT_TRUE(replica->Stop().ok()) << replica->LogTail();
  }
}

TEST_F(GaleraLedgerTest, TwoWritersOnTwoNodesAcknowledgeOnlyCommittedEarnsOncePerKey) {
  ASSERT_NO_FATAL_FAILURE(StartReplicas());
  // Pairs of callers send the same key to both replicas at the same instant;
  // keys differ between pairs and rounds.
  constexpr int kPairs = 4;
  constexpr int kRounds = 40;
  absl::Mutex mu;
  std::map<std::string, std::set<std::string>> transfer_ids;  // key -> ids answered OK
  std::vector<std::string> failures;
  std::barrier sync(2 * kPairs);
  std::vector<std::thread> callers;
  for (int c = 0; c < 2 * kPairs; ++c) {
    callers.emplace_back([&, c] {
      for (int round = 0; round < kRounds; ++round) {
        const std::string key = absl::StrCat("p", c / 2, "r", round);
        sync.arrive_and_wait();
        ledger::v1::EarnResponse earned;
        grpc::Status s = Earn(c % 2, key, 1'000 + 100 * (c / 2), &earned);
        absl::MutexLock lock(&mu);
        if (s.ok()) {
          transfer_ids[key].insert(earned.transfer().transfer_id());
        } else {
          failures.push_back(absl::StrCat(key, ": ", s.error_code(), " ", s.error_message()));
        }
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_TRUE(failures.empty()) << failures.size() << " failed, e.g. " << failures[0];
  ASSERT_EQ(transfer_ids.size(), static_cast<size_t>(kPairs * kRounds));

  auto check = CheckingPool(schema_);
  for (const auto& [key, ids] : transfer_ids) {
    // Both replicas gave the same answer for one key...
    EXPECT_EQ(ids.size(), 1u) << key << " got " << ids.size() << " different transfers";
    // ...and it is in the database.
    EXPECT_EQ(*testing::QueryIntForTest(*check, "SELECT COUNT(*) FROM transfers WHERE transfer_id = ?",
                                        {*ids.begin()}),
              1)
        << key << ": acknowledged but not committed";
  }
  // One earn per key, and nothing else.
  EXPECT_EQ(*testing::QueryIntForTest(*check, "SELECT COUNT(*) FROM transfers"), kPairs * kRounds);
  // Pair p earns (10 + p) EUR a round at 1 point per EUR.
  int64_t expected_points = 0;
  for (int p = 0; p < kPairs; ++p) expected_points += kRounds * (10 + p);
  EXPECT_EQ(*testing::QueryIntForTest(*check, "SELECT SUM(credits_posted) FROM accounts WHERE account LIKE 'member:%'"),
            expected_points);
  EXPECT_EQ(ledger::testing::CheckStoredInvariants(*check), "");
  const std::string verify = absl::StrCat("LOYALTY_API_KEY=", keys_.finance(), " ", LOYALTY_LOYALTYCTL,
                                          " chain verify --ledger=", replicas_[0]->address(), " >/dev/null 2>&1");
  EXPECT_EQ(std::system(verify.c_str()), 0) << "the chain does not verify";
  RecordProperty("retries", retries_.load());
  for (auto& replica : replicas_) EXPECT_TRUE(replica->Stop().ok()) << replica->LogTail();
}

}  // namespace
}  // namespace loyalty
