#include "absl/strings/string_view.h"
#include "common/db/transaction.h"

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/statement.h>

#include <memory>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/db/mysql_error.h"
#include "common/status/commit_outcome.h"
#include "common/log/log.h"

namespace loyalty::db {
namespace {

// Maps an exception raised on `conn`, marking the connection broken when the
// error says so.
absl::Status MapAndMark(const sql::SQLException& e, PooledConnection& conn,
                        absl::string_view context) {
  if (IsConnectionError(e.getErrorCode(), e.what())) conn.MarkBroken();
  return FromSqlException(e, context);
}

// Runs a transaction-control statement (START TRANSACTION, COMMIT,
// ROLLBACK) as a plain query, so that the server's answer is checked: an
// error raises sql::SQLException. Connector/C++ 1.1's Connection::commit(),
// rollback() and setAutoCommit() ignore the server's answer, so a COMMIT
// that failed (a Galera certification failure, a lost connection) would look
// like a success. The session itself always stays in autocommit mode.
void ExecuteControl(PooledConnection& conn, const char* statement) {
  std::unique_ptr<sql::Statement> stmt(conn.raw().createStatement());
  stmt->execute(statement);
}

absl::Duration Jittered(absl::Duration backoff) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<int64_t> dist(0, absl::ToInt64Microseconds(backoff));
  return backoff / 2 + absl::Microseconds(dist(rng) / 2);
}

}  // namespace

absl::StatusOr<Transaction> Transaction::Begin(PooledConnection& conn) {
  if (conn.broken()) return absl::UnavailableError("begin transaction: connection is broken");
  try {
    ExecuteControl(conn, "START TRANSACTION");
  } catch (const sql::SQLException& e) {
    return MapAndMark(e, conn, "begin transaction");
  }
  return Transaction(&conn);
}

Transaction::Transaction(Transaction&& other) noexcept : conn_(other.conn_), open_(other.open_) {
  other.open_ = false;
}

Transaction::~Transaction() {
  if (open_) (void)Rollback();
}

absl::Status Transaction::Commit() {
  if (!open_) return absl::FailedPreconditionError("transaction is not open");
  open_ = false;
  if (conn_->broken()) {
    // A statement of this transaction lost the connection: the server rolls
    // the transaction back when it notices, so nothing is committed.
    return absl::UnavailableError("commit: the connection was lost during the transaction");
  }
  try {
    ExecuteControl(*conn_, "COMMIT");
  } catch (const sql::SQLException& e) {
    // A client-side error (no code, or 2000 and up: the connection, or the
    // protocol) leaves the COMMIT's fate unknown, as does a lost connection.
    if (IsConnectionError(e.getErrorCode(), e.what()) || e.getErrorCode() == 0 || e.getErrorCode() >= 2000) {
      // The COMMIT may or may not have reached the server and been applied.
      // Only the idempotency record, committed in the same transaction, can
      // tell: the caller retries with the same key.
      conn_->MarkBroken();
      return CommitOutcomeUnknownError(absl::StrCat(
          "commit: mysql error ", e.getErrorCode(),
          " (connection lost during commit; outcome unknown, retry with the same idempotency key)"));
    }
    // The server answered with an error, e.g. 1213 for a Galera certification
    // failure: the transaction was rolled back. ABORTED re-runs it.
    absl::Status status = FromSqlException(e, "commit");
    open_ = true;
    (void)Rollback();
    return status;
  }
  return absl::OkStatus();
}

absl::Status Transaction::Rollback() {
  if (!open_) return absl::OkStatus();
  open_ = false;
  if (conn_->broken()) return absl::OkStatus();  // the server rolls back a dead session
  try {
    ExecuteControl(*conn_, "ROLLBACK");
  } catch (const sql::SQLException& e) {
    // A connection that cannot roll back must not be reused: it may still
    // hold the transaction's locks.
    conn_->MarkBroken();
    return FromSqlException(e, "rollback");
  }
  return absl::OkStatus();
}

absl::Status RetryAborted(const RetryPolicy& policy, const std::function<absl::Status()>& attempt) {
  const int max_attempts = std::clamp(policy.max_attempts, 1, kMaxTransactionAttempts);
  absl::Duration backoff = policy.initial_backoff;
  absl::Status status;
  for (int i = 1; i <= max_attempts; ++i) {
    status = attempt();
    if (status.code() != absl::StatusCode::kAborted) return status;
    if (i == max_attempts) break;
    log::Debug("db_retry", {{"attempt", i}});
    std::this_thread::sleep_for(absl::ToChronoMicroseconds(Jittered(backoff)));
    backoff = std::min(backoff * 2, policy.max_backoff);
  }
  return status;
}

absl::Status RunInTransaction(ConnectionPool& pool, absl::string_view context,
                              const std::function<absl::Status(Transaction&)>& body,
                              const RetryPolicy& policy) {
  return RetryAborted(policy, [&]() -> absl::Status {
    absl::StatusOr<PooledConnection> conn = pool.Acquire();
    if (!conn.ok()) return conn.status();
    absl::StatusOr<Transaction> tx = Transaction::Begin(*conn);
    if (!tx.ok()) return tx.status();
    try {
      absl::Status status = body(*tx);
      if (!status.ok()) return status;  // ~Transaction rolls back
    } catch (const sql::SQLException& e) {
      return MapAndMark(e, *conn, context);
    }
    return tx->Commit();
  });
}

absl::Status RunWithConnection(ConnectionPool& pool, absl::string_view context,
                               const std::function<absl::Status(PooledConnection&)>& body) {
  absl::StatusOr<PooledConnection> conn = pool.Acquire();
  if (!conn.ok()) return conn.status();
  try {
    return body(*conn);
  } catch (const sql::SQLException& e) {
    return MapAndMark(e, *conn, context);
  }
}

}  // namespace loyalty::db
