#pragma once
// The one mapping from MySQL/MariaDB errors to absl::Status.
//
//   1062, 1586 (duplicate key)                     -> ALREADY_EXISTS
//   1213 (deadlock, also Galera certification
//   failure), 1205 (lock wait timeout), 1020, 3572 -> ABORTED (retry the transaction)
//   lost, refused or killed connection, server
//   shutting down, too many connections,
//   cluster node not ready                         -> UNAVAILABLE
//   1451, 1452 (foreign key)                       -> FAILED_PRECONDITION
//   anything else                                  -> INTERNAL
//
// Only code under common/db and the services' mysql_*_store.cc files include
// Connector/C++ headers.


#include "absl/strings/string_view.h"
#include "absl/status/status.h"

namespace sql {
class PreparedStatement;
class SQLException;
}  // namespace sql

namespace loyalty::db {

// `context` says what was being done ("insert transfer"); it goes into the
// message, which is only shown to callers for non-INTERNAL codes.
absl::Status FromSqlError(int error_code, absl::string_view sql_state,
                          absl::string_view message, absl::string_view context);
absl::Status FromSqlException(const sql::SQLException& e, absl::string_view context);

// True when the error means the connection itself is unusable; such a
// connection must never be handed out again.
bool IsConnectionError(int error_code, absl::string_view message);

// Runs an INSERT (or UPDATE) and returns `on_duplicate` when it hits a unique
// key: ABORTED to re-run a transaction that lost a race for the key,
// ALREADY_EXISTS for a value the caller chose and someone else holds. Other
// SQL errors propagate as exceptions, as from executeUpdate.
absl::Status ExecuteUnlessDuplicate(sql::PreparedStatement& stmt, absl::Status on_duplicate);

}  // namespace loyalty::db
