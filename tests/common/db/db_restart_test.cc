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

absl::Status Ping(ConnectionPool& pool) {
  return RunWithConnection(pool, "ping", [](PooledConnection& c) {
    c.Prepare("SELECT 1").executeQuery();
    return absl::OkStatus();
  });
}

TEST(DbRestart, PoolRecoversAfterServerRestart) {
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

  ASSERT_TRUE(testing::RunTestDbScript("stop").ok());
  absl::Status down = Ping(**pool);
  EXPECT_EQ(down.code(), absl::StatusCode::kUnavailable) << down;

  ASSERT_TRUE(testing::RunTestDbScript("start").ok());
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
