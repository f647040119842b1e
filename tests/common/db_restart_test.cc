// The pool recovers after the database server is restarted mid-test.
//
// Needs LOYALTY_DEV_DB_SCRIPT and LOYALTY_TEST_DB_DIR, which deploy/test.sh
// sets; it restarts the test server, so ctest runs it alone (RUN_SERIAL).
#include <cppconn/prepared_statement.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "common/db/transaction.h"
#include "common/testing/test_db.h"
#include "gtest/gtest.h"

namespace loyalty::db {
namespace {

int RunScript(const std::string& action) {
  const char* script = std::getenv("LOYALTY_DEV_DB_SCRIPT");
  const char* dir = std::getenv("LOYALTY_TEST_DB_DIR");
  const char* port = std::getenv("LOYALTY_TEST_DB_PORT");
  const char* password = std::getenv("LOYALTY_TEST_DB_PASSWORD");
  const std::string cmd = absl::StrCat("DEV_DB_PORT='", port ? port : "3308", "' DEV_DB_PASSWORD='",
                                       password ? password : "loyalty-dev", "' '", script, "' ",
                                       action, " '", dir, "' >/dev/null");
  return std::system(cmd.c_str());
}

absl::Status Ping(ConnectionPool& pool) {
  return RunWithConnection(pool, "ping", [](PooledConnection& c) {
    c.Prepare("SELECT 1").executeQuery();
    return absl::OkStatus();
  });
}

TEST(DbRestart, PoolRecoversAfterServerRestart) {
  ASSERT_NE(std::getenv("LOYALTY_DEV_DB_SCRIPT"), nullptr) << "run through deploy/test.sh";
  ASSERT_NE(std::getenv("LOYALTY_TEST_DB_DIR"), nullptr) << "run through deploy/test.sh";
  auto db = testing::TestDatabase::Create("restart");
  ASSERT_TRUE(db.ok()) << db.status();
  DbOptions options = (*db)->options();
  options.pool_size = 4;
  options.connect_timeout = absl::Seconds(2);
  auto pool = ConnectionPool::Create(options);
  ASSERT_TRUE(pool.ok());

  // Warm up several connections so that dead ones sit idle in the pool.
  {
    std::vector<PooledConnection> held;
    for (int i = 0; i < 4; ++i) held.push_back(*(*pool)->Acquire());
  }
  ASSERT_TRUE(Ping(**pool).ok());

  ASSERT_EQ(RunScript("stop"), 0);
  absl::Status down = Ping(**pool);
  EXPECT_EQ(down.code(), absl::StatusCode::kUnavailable) << down;

  ASSERT_EQ(RunScript("start"), 0);
  // At most one call may still meet a dead connection; from then on the pool
  // hands out only fresh ones.
  absl::Status after = Ping(**pool);
  if (!after.ok()) {
    EXPECT_EQ(after.code(), absl::StatusCode::kUnavailable) << after;
    after = Ping(**pool);
  }
  EXPECT_TRUE(after.ok()) << after;
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(Ping(**pool).ok());
}

}  // namespace
}  // namespace loyalty::db
