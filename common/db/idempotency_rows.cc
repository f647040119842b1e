#include "common/db/idempotency_rows.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <memory>
#include <sstream>

#include "absl/strings/string_view.h"
#include "common/db/mysql_error.h"
#include "common/db/sql_values.h"
#include "common/status/status_macros.h"

namespace loyalty::db {
namespace {

constexpr size_t kMaxStatusMessage = 1000;  // the column's length

constexpr absl::string_view kSelectIdempotency =
    "SELECT method, fingerprint, request, status_code, status_message, response, completed "
    "FROM idempotency WHERE scope = ? AND idem_key = ? FOR UPDATE";
// Looked at without locking first: a locking read of a missing row takes a
// gap lock, and concurrent claimants of new keys would deadlock on those.
constexpr absl::string_view kProbeIdempotency = "SELECT 1 FROM idempotency WHERE scope = ? AND idem_key = ?";
constexpr absl::string_view kFindIdempotency =
    "SELECT method, fingerprint, request, status_code, status_message, response, completed "
    "FROM idempotency WHERE scope = ? AND idem_key = ? AND completed = 1";
constexpr absl::string_view kInsertIdempotency =
    "INSERT INTO idempotency (scope, idem_key, method, fingerprint, request, status_code, "
    "status_message, response, completed, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6))";
constexpr absl::string_view kCompleteIdempotency =
    "UPDATE idempotency SET status_code = ?, status_message = ?, response = ?, completed = 1 "
    "WHERE scope = ? AND idem_key = ?";

idempotency::Record ReadRecord(const sql::ResultSet& rs, const std::string& scope, const std::string& key) {
  idempotency::Record r;
  r.scope = scope;
  r.key = key;
  r.method = Str(rs, 1);
  r.fingerprint = Str(rs, 2);
  r.request = ReadBlob(rs, 3);
  r.status_code = rs.getInt(4);
  r.status_message = Str(rs, 5);
  r.response = ReadBlob(rs, 6);
  return r;
}

absl::Status InsertRecord(Transaction& tx, const idempotency::Record& r, bool completed) {
  auto& s = tx.Prepare(kInsertIdempotency);
  std::istringstream request, response;
  s.setString(1, r.scope);
  s.setString(2, r.key);
  s.setString(3, r.method);
  s.setString(4, r.fingerprint);
  SetBlob(s, 5, r.request, request);
  s.setInt(6, r.status_code);
  s.setString(7, r.status_message.substr(0, kMaxStatusMessage));
  SetBlob(s, 8, r.response, response);
  s.setBoolean(9, completed);
  // Another request with the same key committed first: the retried
  // transaction finds its record.
  return ExecuteUnlessDuplicate(s, absl::AbortedError("idempotency key claimed concurrently"));
}

}  // namespace

bool IdempotencyKeyPresent(Transaction& tx, const std::string& scope, const std::string& key) {
  auto& probe = tx.Prepare(kProbeIdempotency);
  probe.setString(1, scope);
  probe.setString(2, key);
  std::unique_ptr<sql::ResultSet> rs(probe.executeQuery());
  return rs->next();
}

absl::StatusOr<std::optional<idempotency::Record>> ClaimIdempotencyKey(Transaction& tx,
                                                                       const idempotency::Record& claim) {
  if (!IdempotencyKeyPresent(tx, claim.scope, claim.key)) {
    RETURN_IF_ERROR(InsertRecord(tx, claim, /*completed=*/false));
    return std::nullopt;
  }
  auto& sel = tx.Prepare(kSelectIdempotency);
  sel.setString(1, claim.scope);
  sel.setString(2, claim.key);
  std::unique_ptr<sql::ResultSet> rs(sel.executeQuery());
  if (rs->next()) {
    if (!rs->getBoolean(7)) return absl::InternalError("idempotency record without an outcome");
    return ReadRecord(*rs, claim.scope, claim.key);
  }
  rs.reset();
  RETURN_IF_ERROR(InsertRecord(tx, claim, /*completed=*/false));
  return std::nullopt;
}

absl::Status SaveIdempotencyOutcome(Transaction& tx, const idempotency::Record& record) {
  auto& up = tx.Prepare(kCompleteIdempotency);
  std::istringstream response;
  up.setInt(1, record.status_code);
  up.setString(2, record.status_message.substr(0, kMaxStatusMessage));
  SetBlob(up, 3, record.response, response);
  up.setString(4, record.scope);
  up.setString(5, record.key);
  if (up.executeUpdate() == 1) return absl::OkStatus();
  return InsertRecord(tx, record, /*completed=*/true);
}

absl::StatusOr<std::optional<idempotency::Record>> FindIdempotencyKey(Transaction& tx, const std::string& scope,
                                                                      const std::string& key) {
  auto& sel = tx.Prepare(kFindIdempotency);
  sel.setString(1, scope);
  sel.setString(2, key);
  std::unique_ptr<sql::ResultSet> rs(sel.executeQuery());
  if (!rs->next()) return std::nullopt;
  return ReadRecord(*rs, scope, key);
}

}  // namespace loyalty::db
