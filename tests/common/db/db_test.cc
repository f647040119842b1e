// Connection pool, transactions and error mapping against the real test
// MariaDB (see common/testing/test_db.h).
#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <atomic>
#include <thread>

#include "absl/strings/string_view.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/db/mysql_error.h"
#include "common/db/transaction.h"
#include "common/testing/fault_proxy.h"
#include "common/testing/test_db.h"
#include "gtest/gtest.h"

namespace loyalty::db {
namespace {

using testing::ExecForTest;
using testing::QueryIntForTest;
using testing::TestDatabase;

class DbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = TestDatabase::Create("db");
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    ASSERT_TRUE(ExecForTest(db_->pool(),
                            "CREATE TABLE kv (k INT PRIMARY KEY, v BIGINT NOT NULL) ENGINE=InnoDB")
                    .ok());
  }

  int64_t Count() { return *QueryIntForTest(db_->pool(), "SELECT COUNT(*) FROM kv"); }

  std::unique_ptr<TestDatabase> db_;
};

absl::Status Insert(ConnectionPool& pool, int k, int64_t v) {
  return RunWithConnection(pool, "insert kv", [&](PooledConnection& c) {
    sql::PreparedStatement& stmt = c.Prepare("INSERT INTO kv (k, v) VALUES (?, ?)");
    stmt.setInt(1, k);
    stmt.setInt64(2, v);
    stmt.executeUpdate();
    return absl::OkStatus();
  });
}

TEST_F(DbTest, RealDuplicateKeyIsAlreadyExists) {
  ASSERT_TRUE(Insert(db_->pool(), 1, 10).ok());
  absl::Status dup = Insert(db_->pool(), 1, 11);
  EXPECT_EQ(dup.code(), absl::StatusCode::kAlreadyExists) << dup;
  EXPECT_EQ(Count(), 1);
}

TEST_F(DbTest, UncommittedTransactionLeavesNothing) {
  {
    auto conn = db_->pool().Acquire();
    ASSERT_TRUE(conn.ok());
    auto tx = Transaction::Begin(*conn);
    ASSERT_TRUE(tx.ok());
    sql::PreparedStatement& stmt = tx->Prepare("INSERT INTO kv (k, v) VALUES (?, ?)");
    stmt.setInt(1, 7);
    stmt.setInt64(2, 70);
    stmt.executeUpdate();
    // No Commit(): the destructor rolls back.
  }
  EXPECT_EQ(Count(), 0);

  // A body that fails after writing leaves nothing either.
  absl::Status s = RunInTransaction(db_->pool(), "failing body", [](Transaction& tx) {
    sql::PreparedStatement& stmt = tx.Prepare("INSERT INTO kv (k, v) VALUES (8, 80)");
    stmt.executeUpdate();
    return absl::FailedPreconditionError("business rule refused");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Count(), 0);

  // And a committed one is there.
  ASSERT_TRUE(RunInTransaction(db_->pool(), "ok body", [](Transaction& tx) {
                tx.Prepare("INSERT INTO kv (k, v) VALUES (9, 90)").executeUpdate();
                return absl::OkStatus();
              }).ok());
  EXPECT_EQ(Count(), 1);
}

// Two transactions lock rows 1 and 2 in opposite orders: InnoDB kills one.
TEST_F(DbTest, RealDeadlockMapsToAborted) {
  ASSERT_TRUE(Insert(db_->pool(), 1, 0).ok());
  ASSERT_TRUE(Insert(db_->pool(), 2, 0).ok());
  auto pool_a = db_->NewPool(1);
  auto pool_b = db_->NewPool(1);
  ASSERT_TRUE(pool_a.ok() && pool_b.ok());
  auto conn_a = (*pool_a)->Acquire();
  auto conn_b = (*pool_b)->Acquire();
  ASSERT_TRUE(conn_a.ok() && conn_b.ok());
  auto tx_a = Transaction::Begin(*conn_a);
  auto tx_b = Transaction::Begin(*conn_b);
  ASSERT_TRUE(tx_a.ok() && tx_b.ok());
  constexpr absl::string_view kLock = "UPDATE kv SET v = v + 1 WHERE k = ?";
  auto lock = [&](Transaction& tx, int k) -> absl::Status {
    try {
      sql::PreparedStatement& stmt = tx.Prepare(kLock);
      stmt.setInt(1, k);
      stmt.executeUpdate();
      return absl::OkStatus();
    } catch (const sql::SQLException& e) {
      return FromSqlException(e, "lock row");
    }
  };
  ASSERT_TRUE(lock(*tx_a, 1).ok());
  ASSERT_TRUE(lock(*tx_b, 2).ok());
  absl::Status status_a;
  std::thread a([&] { status_a = lock(*tx_a, 2); });  // blocks on B
  absl::SleepFor(absl::Milliseconds(200));
  absl::Status status_b = lock(*tx_b, 1);  // closes the cycle
  if (status_b.ok()) {
    // A was the victim; B's rollback lets nothing block. Release B.
    (void)tx_b->Rollback();
  }
  a.join();
  const bool a_aborted = status_a.code() == absl::StatusCode::kAborted;
  const bool b_aborted = status_b.code() == absl::StatusCode::kAborted;
  EXPECT_TRUE(a_aborted != b_aborted) << "a=" << status_a << " b=" << status_b;
  EXPECT_NE((a_aborted ? status_a : status_b).message().find("1213"), absl::string_view::npos);
}

// The same deadlock inside RunInTransaction is retried until both commit.
TEST_F(DbTest, DeadlockIsRetriedByRunInTransaction) {
  ASSERT_TRUE(Insert(db_->pool(), 1, 0).ok());
  ASSERT_TRUE(Insert(db_->pool(), 2, 0).ok());
  std::atomic<int> attempts{0};
  std::atomic<int> first_locks{0};
  auto body_for = [&](int first, int second) {
    return [&, first, second](Transaction& tx) -> absl::Status {
      const int attempt = ++attempts;
      sql::PreparedStatement& stmt = tx.Prepare("UPDATE kv SET v = v + 1 WHERE k = ?");
      stmt.setInt(1, first);
      stmt.executeUpdate();
      if (attempt <= 2) {
        // On the first round, wait until both hold their first row.
        ++first_locks;
        const absl::Time until = absl::Now() + absl::Seconds(5);
        while (first_locks.load() < 2 && absl::Now() < until) absl::SleepFor(absl::Milliseconds(5));
      }
      stmt.setInt(1, second);
      stmt.executeUpdate();
      return absl::OkStatus();
    };
  };
  auto pool_a = db_->NewPool(1);
  auto pool_b = db_->NewPool(1);
  ASSERT_TRUE(pool_a.ok() && pool_b.ok());
  absl::Status sa, sb;
  std::thread ta([&] { sa = RunInTransaction(**pool_a, "a", body_for(1, 2)); });
  std::thread tb([&] { sb = RunInTransaction(**pool_b, "b", body_for(2, 1)); });
  ta.join();
  tb.join();
  EXPECT_TRUE(sa.ok()) << sa;
  EXPECT_TRUE(sb.ok()) << sb;
  EXPECT_GE(attempts.load(), 3) << "a deadlock victim must have been retried";
  // Each transaction added 1 to both rows exactly once.
  EXPECT_EQ(*QueryIntForTest(db_->pool(), "SELECT v FROM kv WHERE k = 1"), 2);
  EXPECT_EQ(*QueryIntForTest(db_->pool(), "SELECT v FROM kv WHERE k = 2"), 2);
}

TEST_F(DbTest, RetryIsBounded) {
  int calls = 0;
  RetryPolicy policy;
  policy.max_attempts = 3;
  policy.initial_backoff = absl::Milliseconds(1);
  absl::Status s = RetryAborted(policy, [&] {
    ++calls;
    return absl::AbortedError("always conflicts");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(calls, 3);
  calls = 0;
  EXPECT_EQ(RetryAborted(policy, [&] {
              ++calls;
              return absl::NotFoundError("not retried");
            }).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(calls, 1);
}

TEST_F(DbTest, PoolIsBounded) {
  DbOptions options = db_->options();
  options.pool_size = 2;
  options.acquire_timeout = absl::Milliseconds(200);
  auto pool = ConnectionPool::Create(options);
  ASSERT_TRUE(pool.ok());
  auto c1 = (*pool)->Acquire();
  auto c2 = (*pool)->Acquire();
  ASSERT_TRUE(c1.ok() && c2.ok());
  auto c3 = (*pool)->Acquire();
  EXPECT_EQ(c3.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ((*pool)->open_count(), 2);
  { PooledConnection released = *std::move(c1); }
  EXPECT_TRUE((*pool)->Acquire().ok());
  DbOptions zero;
  zero.pool_size = 0;
  EXPECT_FALSE(ConnectionPool::Create(zero).ok());
}

int64_t ConnectionId(PooledConnection& c) {
  std::unique_ptr<sql::ResultSet> rs(c.Prepare("SELECT CONNECTION_ID()").executeQuery());
  rs->next();
  return rs->getInt64(1);
}

TEST_F(DbTest, KilledConnectionIsNeverHandedOutAgain) {
  auto pool = db_->NewPool(2);
  ASSERT_TRUE(pool.ok());
  int64_t victim_id = 0;
  {
    auto conn = (*pool)->Acquire();
    ASSERT_TRUE(conn.ok());
    victim_id = ConnectionId(*conn);
  }
  // Kill it from outside, as a server restart or a network failure would.
  ASSERT_TRUE(ExecForTest(db_->pool(), absl::StrCat("KILL CONNECTION ", victim_id)).ok());
  // Used straight away (validation is skipped for a recently used
  // connection), the statement fails as UNAVAILABLE...
  absl::Status first = RunWithConnection(**pool, "after kill", [&](PooledConnection& c) {
    EXPECT_EQ(ConnectionId(c), victim_id);
    return absl::OkStatus();
  });
  EXPECT_EQ(first.code(), absl::StatusCode::kUnavailable) << first;
  EXPECT_GE((*pool)->discarded_count(), 1);
  // ...and the next caller gets a fresh, working connection.
  auto conn = (*pool)->Acquire();
  ASSERT_TRUE(conn.ok());
  EXPECT_NE(ConnectionId(*conn), victim_id);
}

TEST_F(DbTest, IdleConnectionIsValidatedBeforeUse) {
  DbOptions options = db_->options();
  options.pool_size = 1;
  options.validate_after_idle = absl::Milliseconds(1);
  auto pool = ConnectionPool::Create(options);
  ASSERT_TRUE(pool.ok());
  int64_t victim_id = 0;
  {
    auto conn = (*pool)->Acquire();
    ASSERT_TRUE(conn.ok());
    victim_id = ConnectionId(*conn);
  }
  ASSERT_TRUE(ExecForTest(db_->pool(), absl::StrCat("KILL CONNECTION ", victim_id)).ok());
  absl::SleepFor(absl::Milliseconds(20));
  // Past the idle threshold the dead connection is noticed and replaced
  // before anyone uses it: the caller sees no error at all.
  absl::Status s = RunWithConnection(**pool, "validated", [&](PooledConnection& c) {
    EXPECT_NE(ConnectionId(c), victim_id);
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
}

// The same table reached through a FaultProxy: what a transaction answers
// when the connection dies at or after COMMIT, or the server refuses it.
class DbFaultTest : public DbTest {
 protected:
  void SetUp() override {
    DbTest::SetUp();
    if (HasFatalFailure()) return;
    const DbOptions& direct = db_->options();
    auto proxy = testing::FaultProxy::Start(direct.host, direct.port);
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    proxy_ = *std::move(proxy);
    DbOptions options = testing::OverTcp(direct, proxy_->port());
    options.pool_size = 2;
    auto pool = ConnectionPool::Create(options);
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = *std::move(pool);
  }

  // Inserts k in a transaction through the proxy; counts the attempts.
  absl::Status InsertInTransaction(int k, const RetryPolicy& policy = {}) {
    return RunInTransaction(*pool_, "insert kv", [&, k](Transaction& tx) {
      ++attempts_;
      sql::PreparedStatement& stmt = tx.Prepare("INSERT INTO kv (k, v) VALUES (?, ?)");
      stmt.setInt(1, k);
      stmt.setInt64(2, k * 10);
      stmt.executeUpdate();
      return absl::OkStatus();
    }, policy);
  }

  std::unique_ptr<testing::FaultProxy> proxy_;
  std::unique_ptr<ConnectionPool> pool_;
  int attempts_ = 0;
};

TEST_F(DbFaultTest, ProxyPassesTrafficThrough) {
  ASSERT_TRUE(InsertInTransaction(1).ok());
  EXPECT_EQ(Count(), 1);
  EXPECT_EQ(proxy_->fired(), 0);
  EXPECT_GT(proxy_->commands_seen(), 0);
}

TEST_F(DbFaultTest, CommitThatNeverReachedTheServerIsUnavailableNotOk) {
  proxy_->Arm(testing::FaultProxy::Fault::kCutAtCommit);
  const int64_t discarded = pool_->discarded_count();
  absl::Status s = InsertInTransaction(1);
  EXPECT_EQ(proxy_->fired(), 1);
  // Never OK: nothing was committed.
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_EQ(Count(), 0);
  EXPECT_EQ(attempts_, 1);  // an unknown outcome is not retried here
  // The connection is discarded; the next transaction gets a fresh one.
  EXPECT_GT(pool_->discarded_count(), discarded);
  ASSERT_TRUE(InsertInTransaction(2).ok());
  EXPECT_EQ(Count(), 1);
}

TEST_F(DbFaultTest, CommitWhoseAnswerWasLostIsUnavailableThoughCommitted) {
  proxy_->Arm(testing::FaultProxy::Fault::kCutAfterCommit);
  absl::Status s = InsertInTransaction(1);
  EXPECT_EQ(proxy_->fired(), 1);
  // The outcome is unknown to the client: UNAVAILABLE, so the caller retries
  // with its idempotency key and finds the write.
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_EQ(Count(), 1);
  EXPECT_EQ(attempts_, 1);
}

TEST_F(DbFaultTest, ConnectionCutMidStatementIsUnavailableAndWritesNothing) {
  proxy_->Arm(testing::FaultProxy::Fault::kCutMidStatement);
  absl::Status s = InsertInTransaction(1);
  EXPECT_EQ(proxy_->fired(), 1);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_EQ(Count(), 0);
}

TEST_F(DbFaultTest, CommitRefusedByTheServerIsAbortedAndRetried) {
  // As Galera refuses a transaction that lost certification: error 1213 at
  // COMMIT, and the transaction rolled back.
  proxy_->Arm(testing::FaultProxy::Fault::kFailCommit);
  absl::Status s = InsertInTransaction(1);
  EXPECT_EQ(proxy_->fired(), 1);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(attempts_, 2);  // the whole body ran again
  EXPECT_EQ(Count(), 1);

  // Without a retry left, the caller sees ABORTED, and nothing is written.
  proxy_->Arm(testing::FaultProxy::Fault::kFailCommit);
  s = InsertInTransaction(2, RetryPolicy{.max_attempts = 1});
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << s;
  EXPECT_EQ(Count(), 1);
  // The connection is still good: the server only refused the transaction.
  ASSERT_TRUE(InsertInTransaction(3).ok());
  EXPECT_EQ(Count(), 2);
}

TEST(DbUnreachable, RefusedConnectionIsUnavailable) {
  DbOptions options = testing::TestServerOptions();
  options.socket.clear();
  options.host = "127.0.0.1";
  options.port = 1;  // nothing listens there
  auto pool = ConnectionPool::Create(options);
  ASSERT_TRUE(pool.ok());
  EXPECT_EQ((*pool)->Acquire().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ((*pool)->open_count(), 0);
}

}  // namespace
}  // namespace loyalty::db
