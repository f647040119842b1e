#pragma once
// Transactions and the retry helper.
//
//   absl::Status s = db::RunInTransaction(pool, "earn", [&](db::Transaction& tx) {
//     sql::PreparedStatement& insert = tx.Prepare(kInsertTransfer);
//     ...
//     return absl::OkStatus();
//   });
//
// RunInTransaction commits when the body returns OK and rolls back otherwise.
// sql::SQLException thrown by the body is caught here and mapped once (see
// mysql_error.h). ABORTED (deadlock, lock wait timeout, Galera certification
// failure) re-runs the whole body, a bounded number of times with jittered
// backoff: the body must therefore only write its outputs, never accumulate
// into them across attempts.
//
// OK from Commit() (and so from RunInTransaction) means the server confirmed
// the COMMIT. The other outcomes:
//   - the server refused the COMMIT (1213, a Galera certification failure):
//     ABORTED; nothing was written and the body is re-run;
//   - the connection was lost during the transaction or its COMMIT:
//     UNAVAILABLE, and the connection is discarded. The outcome of a COMMIT
//     that was sent is unknown (then the status carries
//     CommitOutcomeUnknown, common/status/commit_outcome.h); the caller
//     retries with the same idempotency key, whose record commits in the
//     same transaction as the write.
// See docs/adr/0004-database-errors-pool-and-retries.md.

#include <functional>

#include "absl/strings/string_view.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/db/pool.h"

namespace loyalty::db {

inline constexpr int kMaxTransactionAttempts = 10;

struct RetryPolicy {
  int max_attempts = 5;  // in [1, kMaxTransactionAttempts]
  absl::Duration initial_backoff = absl::Milliseconds(2);
  absl::Duration max_backoff = absl::Milliseconds(100);
};

// An open transaction on a lent connection (START TRANSACTION ... COMMIT,
// sent as statements so that the server's answer is checked). Rolls back when
// destroyed unless Commit() was called. Not thread-safe.
class Transaction {
 public:
  // Sends START TRANSACTION on `conn` (UNAVAILABLE when the connection is
  // broken or lost).
  static absl::StatusOr<Transaction> Begin(PooledConnection& conn);
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();

  sql::PreparedStatement& Prepare(absl::string_view sql) { return conn_->Prepare(sql); }
  PooledConnection& connection() { return *conn_; }

  // OK only when the server confirmed the COMMIT (see above). The
  // transaction is closed afterwards whatever the outcome.
  absl::Status Commit();
  absl::Status Rollback();

 private:
  explicit Transaction(PooledConnection* conn) : conn_(conn) {}
  PooledConnection* conn_;
  bool open_ = true;
};

// Runs `body` in a fresh transaction, retrying ABORTED as described above.
absl::Status RunInTransaction(ConnectionPool& pool, absl::string_view context,
                              const std::function<absl::Status(Transaction&)>& body,
                              const RetryPolicy& policy = {});

// Runs `body` on a lent connection in autocommit mode (single statements,
// reads). SQL exceptions are mapped; connection errors mark it broken.
absl::Status RunWithConnection(ConnectionPool& pool, absl::string_view context,
                               const std::function<absl::Status(PooledConnection&)>& body);

// Retries `attempt` while it returns ABORTED, per `policy`. Exposed for code
// that manages its own connections.
absl::Status RetryAborted(const RetryPolicy& policy, const std::function<absl::Status()>& attempt);

}  // namespace loyalty::db
