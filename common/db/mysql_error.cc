#include "absl/strings/string_view.h"
#include "common/db/mysql_error.h"

#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace loyalty::db {
namespace {

// Server error codes (mysqld_error.h / MariaDB) and client codes (errmsg.h).
constexpr int kErDupEntry = 1062;
constexpr int kErDupEntryWithKeyName = 1586;
constexpr int kErLockDeadlock = 1213;
constexpr int kErLockWaitTimeout = 1205;
constexpr int kErCheckRead = 1020;  // record changed since last read
constexpr int kErLockNowait = 3572;
constexpr int kErRowIsReferenced = 1451;
constexpr int kErNoReferencedRow = 1452;
constexpr int kErConCountError = 1040;         // too many connections
constexpr int kErUnknownComError = 1047;       // Galera node not ready (WSREP)
constexpr int kErServerShutdown = 1053;
constexpr int kErConnectionKilled = 1927;
constexpr int kErClientInteractionTimeout = 4031;
constexpr int kCrConnectionError = 2002;
constexpr int kCrConnHostError = 2003;
constexpr int kCrServerGoneError = 2006;
constexpr int kCrServerLost = 2013;
constexpr int kCrSslConnectionError = 2026;
constexpr int kCrServerLostExtended = 2055;

}  // namespace

bool IsConnectionError(int error_code, absl::string_view message) {
  switch (error_code) {
    case kErConCountError:
    case kErUnknownComError:
    case kErServerShutdown:
    case kErConnectionKilled:
    case kErClientInteractionTimeout:
    case kCrConnectionError:
    case kCrConnHostError:
    case kCrServerGoneError:
    case kCrServerLost:
    case kCrSslConnectionError:
    case kCrServerLostExtended:
      return true;
    case 0:
      // Connector/C++ raises some client-side failures without a code, e.g.
      // "Connection has been closed".
      return absl::StrContains(absl::AsciiStrToLower(message), "connection");
    default:
      return false;
  }
}

absl::Status FromSqlError(int error_code, absl::string_view sql_state,
                          absl::string_view message, absl::string_view context) {
  // Caller-facing codes carry only the context and the error number: the
  // server's text can quote key values (a duplicate email, say). The full
  // text goes only into INTERNAL, which is logged and never sent.
  const std::string brief = absl::StrCat(context, ": mysql error ", error_code);
  switch (error_code) {
    case kErDupEntry:
    case kErDupEntryWithKeyName:
      return absl::AlreadyExistsError(absl::StrCat(brief, " (duplicate key)"));
    case kErLockDeadlock:
    case kErLockWaitTimeout:
    case kErCheckRead:
    case kErLockNowait:
      return absl::AbortedError(absl::StrCat(brief, " (transaction conflict; retry)"));
    case kErRowIsReferenced:
    case kErNoReferencedRow:
      return absl::FailedPreconditionError(absl::StrCat(brief, " (referenced row)"));
    default:
      break;
  }
  if (IsConnectionError(error_code, message)) {
    return absl::UnavailableError(absl::StrCat(brief, " (database unavailable)"));
  }
  return absl::InternalError(absl::StrCat(brief, " (", sql_state, "): ", message));
}

absl::Status FromSqlException(const sql::SQLException& e, absl::string_view context) {
  return FromSqlError(e.getErrorCode(), e.getSQLState(), e.what(), context);
}

absl::Status ExecuteUnlessDuplicate(sql::PreparedStatement& stmt, absl::Status on_duplicate) {
  try {
    stmt.executeUpdate();
  } catch (const sql::SQLException& e) {
    if (e.getErrorCode() == kErDupEntry || e.getErrorCode() == kErDupEntryWithKeyName) return on_duplicate;
    throw;
  }
  return absl::OkStatus();
}

}  // namespace loyalty::db
