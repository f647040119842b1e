// The migrations runner against the real test MariaDB.
#include <thread>

#include "absl/strings/match.h"
#include "common/db/migrations.h"
#include "common/testing/test_db.h"
#include "gtest/gtest.h"

namespace loyalty::db {
namespace {

using testing::ExecForTest;
using testing::QueryIntForTest;
using testing::TestDatabase;

// Deliberately not re-runnable (no IF NOT EXISTS, a fixed primary key), so
// that applying a file twice would fail loudly.
const std::vector<MigrationFile> kFiles = {
    {"0001_create_widgets.sql",
     "CREATE TABLE widgets (id INT PRIMARY KEY, name VARCHAR(32) NOT NULL);\n"
     "INSERT INTO widgets (id, name) VALUES (1, 'first; with semicolon');"},
    {"0002_add_colour.sql", "ALTER TABLE widgets ADD COLUMN colour VARCHAR(16) NULL;"},
};

class MigrationsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = TestDatabase::Create("mig");
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
  }
  std::unique_ptr<TestDatabase> db_;
};

TEST_F(MigrationsTest, AppliesEachFileExactlyOnce) {
  auto first = ApplyMigrations(db_->pool(), kFiles);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->applied.size(), 2u);
  auto second = ApplyMigrations(db_->pool(), kFiles);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->applied.empty());
  EXPECT_EQ(second->already_applied, 2);
  EXPECT_EQ(*QueryIntForTest(db_->pool(), "SELECT COUNT(*) FROM widgets"), 1);
  EXPECT_EQ(*QueryIntForTest(db_->pool(), "SELECT COUNT(*) FROM schema_migrations"), 2);

  // A new file later applies alone.
  std::vector<MigrationFile> more = kFiles;
  more.push_back({"0003_second_widget.sql", "INSERT INTO widgets (id, name) VALUES (2, 'b')"});
  auto third = ApplyMigrations(db_->pool(), more);
  ASSERT_TRUE(third.ok()) << third.status();
  ASSERT_EQ(third->applied.size(), 1u);
  EXPECT_EQ(third->applied[0], "0003_second_widget.sql");
}

TEST_F(MigrationsTest, ChangedAppliedFileIsRefused) {
  ASSERT_TRUE(ApplyMigrations(db_->pool(), kFiles).ok());
  std::vector<MigrationFile> edited = kFiles;
  edited[0].sql += "\n-- a harmless-looking edit\n";
  auto result = ApplyMigrations(db_->pool(), edited);
  ASSERT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(result.status().message(), "0001_create_widgets.sql"))
      << result.status();
  EXPECT_TRUE(absl::StrContains(result.status().message(), "changed"));
}

TEST_F(MigrationsTest, BadFileNamesAreRefused) {
  EXPECT_EQ(ApplyMigrations(db_->pool(), {{"init.sql", "SELECT 1"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ApplyMigrations(db_->pool(), {{"0001_a.sql", "SELECT 1"}, {"0001_b.sql", "SELECT 1"}})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(MigrationsTest, TwoReplicasStartingTogetherApplyOnce) {
  // Slow the first file down so the two runners really overlap.
  std::vector<MigrationFile> files = kFiles;
  files[0].sql = "DO SLEEP(0.5);\n" + files[0].sql;
  constexpr int kReplicas = 4;
  std::vector<absl::StatusOr<MigrationReport>> results(kReplicas, absl::UnknownError("unset"));
  std::vector<std::thread> threads;
  for (int i = 0; i < kReplicas; ++i) {
    threads.emplace_back([&, i] {
      auto pool = db_->NewPool(2);
      if (!pool.ok()) {
        results[i] = pool.status();
        return;
      }
      MigrationOptions options;
      options.poll_interval = absl::Milliseconds(20);
      results[i] = ApplyMigrations(**pool, files, options);
    });
  }
  for (auto& t : threads) t.join();
  size_t total_applied = 0;
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    total_applied += r->applied.size();
  }
  EXPECT_EQ(total_applied, 2u);
  EXPECT_EQ(*QueryIntForTest(db_->pool(), "SELECT COUNT(*) FROM widgets"), 1);
}

TEST_F(MigrationsTest, ExpiredLockOfACrashedReplicaIsTakenOver) {
  // Create the bookkeeping tables, then fake a holder that died long ago.
  ASSERT_TRUE(ApplyMigrations(db_->pool(), {}).ok());
  ASSERT_TRUE(ExecForTest(db_->pool(),
                          "UPDATE schema_migrations_lock SET owner = 'dead:1:0', "
                          "expires_at = NOW(6) - INTERVAL 1 SECOND WHERE id = 1")
                  .ok());
  MigrationOptions options;
  options.lock_wait = absl::Seconds(5);
  auto result = ApplyMigrations(db_->pool(), kFiles, options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->applied.size(), 2u);
  EXPECT_EQ(*QueryIntForTest(db_->pool(),
                             "SELECT COUNT(*) FROM schema_migrations_lock WHERE owner IS NULL"),
            1);
}

TEST_F(MigrationsTest, LiveLockMakesOthersWaitThenTimeOut) {
  ASSERT_TRUE(ApplyMigrations(db_->pool(), {}).ok());
  ASSERT_TRUE(ExecForTest(db_->pool(),
                          "UPDATE schema_migrations_lock SET owner = 'alive:1:0', "
                          "expires_at = NOW(6) + INTERVAL 60 SECOND WHERE id = 1")
                  .ok());
  MigrationOptions options;
  options.lock_wait = absl::Milliseconds(300);
  options.poll_interval = absl::Milliseconds(50);
  auto result = ApplyMigrations(db_->pool(), kFiles, options);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable) << result.status();
  EXPECT_EQ(*QueryIntForTest(db_->pool(),
                             "SELECT COUNT(*) FROM information_schema.tables WHERE "
                             "table_schema = DATABASE() AND table_name = 'widgets'"),
            0);
}

}  // namespace
}  // namespace loyalty::db
