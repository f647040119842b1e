// MysqlTx (mysql_catalog_tx.h): the Redeem saga log (redemptions). The SQL of
// these tables, as named constants beside the code that runs it.
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <memory>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/db/mysql_error.h"
#include "common/db/sql_values.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "services/catalog/mysql_catalog_tx.h"

namespace loyalty::catalog::internal {
namespace {

using db::ParseSqlTime;
using db::ReadBlob;
using db::SetBlob;
using db::SqlTime;
using db::Str;

#define LOYALTY_REDEMPTION_COLUMNS                                                                                     \
  "redemption_id, scope, idem_key, fingerprint, request, member_id, reward_id, partner_id, "                           \
  "channel_partner_id, points, hold_ttl_seconds, attempt, state, hold_id, voucher_code, status_code, status_message, " \
  "response, created_at, updated_at"
constexpr absl::string_view kInsertRedemption = "INSERT INTO redemptions (" LOYALTY_REDEMPTION_COLUMNS
                                                ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
constexpr absl::string_view kUpdateRedemption =
    "UPDATE redemptions SET attempt = ?, state = ?, hold_id = ?, voucher_code = ?, status_code = ?, "
    "status_message = ?, response = ?, updated_at = ? WHERE redemption_id = ?";
// A plain (non-locking) read first: SELECT ... FOR UPDATE of a missing row
// takes a gap lock, and concurrent claims inserting into that gap deadlock.
constexpr absl::string_view kFindRedemption = "SELECT redemption_id FROM redemptions WHERE scope = ? AND idem_key = ?";
constexpr absl::string_view kGetRedemption =
    "SELECT " LOYALTY_REDEMPTION_COLUMNS " FROM redemptions WHERE redemption_id = ? FOR UPDATE";
constexpr absl::string_view kStuckRedemptions = "SELECT " LOYALTY_REDEMPTION_COLUMNS
                                                " FROM redemptions WHERE state IN (1, 3) AND updated_at < ? "
                                                "ORDER BY updated_at LIMIT ?";

Redemption ReadRedemption(const sql::ResultSet& rs) {
  Redemption r;
  r.redemption_id = Str(rs, 1);
  r.scope = Str(rs, 2);
  r.key = Str(rs, 3);
  r.fingerprint = Str(rs, 4);
  r.request = ReadBlob(rs, 5);
  r.member_id = Str(rs, 6);
  r.reward_id = Str(rs, 7);
  r.partner_id = Str(rs, 8);
  r.channel_partner_id = Str(rs, 9);
  r.points = rs.getInt64(10);
  r.hold_ttl_seconds = rs.getInt64(11);
  r.attempt = rs.getInt(12);
  r.state = static_cast<SagaState>(rs.getInt(13));
  r.hold_id = Str(rs, 14);
  r.voucher_code = Str(rs, 15);
  r.status_code = rs.getInt(16);
  r.status_message = Str(rs, 17);
  r.response = ReadBlob(rs, 18);
  r.created_at = ParseSqlTime(Str(rs, 19));
  r.updated_at = ParseSqlTime(Str(rs, 20));
  return r;
}

}  // namespace

absl::StatusOr<std::optional<Redemption>> MysqlTx::FindRedemption(const std::string& scope, const std::string& key) {
  auto& s = tx_.Prepare(kFindRedemption);
  s.setString(1, scope);
  s.setString(2, key);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  if (!rs->next()) return std::nullopt;
  const std::string id = Str(*rs, 1);
  rs.reset();
  return GetRedemption(id);
}

absl::StatusOr<std::optional<Redemption>> MysqlTx::GetRedemption(const std::string& redemption_id) {
  auto& s = tx_.Prepare(kGetRedemption);
  s.setString(1, redemption_id);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  if (!rs->next()) return std::nullopt;
  return ReadRedemption(*rs);
}

absl::Status MysqlTx::InsertRedemption(const Redemption& r) {
  auto& s = tx_.Prepare(kInsertRedemption);
  std::istringstream request, response;
  s.setString(1, r.redemption_id);
  s.setString(2, r.scope);
  s.setString(3, r.key);
  s.setString(4, r.fingerprint);
  SetBlob(s, 5, r.request, request);
  s.setString(6, r.member_id);
  s.setString(7, r.reward_id);
  s.setString(8, r.partner_id);
  s.setString(9, r.channel_partner_id);
  s.setInt64(10, r.points);
  s.setInt64(11, r.hold_ttl_seconds);
  s.setInt(12, r.attempt);
  s.setInt(13, static_cast<int>(r.state));
  s.setString(14, r.hold_id);
  s.setString(15, r.voucher_code);
  s.setInt(16, r.status_code);
  s.setString(17, r.status_message.substr(0, 1000));
  SetBlob(s, 18, r.response, response);
  s.setString(19, SqlTime(r.created_at));
  s.setString(20, SqlTime(r.updated_at));
  // A concurrent request with the same key committed first: re-run the
  // transaction, which then finds its row.
  return db::ExecuteUnlessDuplicate(s, absl::AbortedError("idempotency key claimed concurrently"));
}

absl::Status MysqlTx::UpdateRedemption(const Redemption& r) {
  auto& s = tx_.Prepare(kUpdateRedemption);
  std::istringstream response;
  s.setInt(1, r.attempt);
  s.setInt(2, static_cast<int>(r.state));
  s.setString(3, r.hold_id);
  s.setString(4, r.voucher_code);
  s.setInt(5, r.status_code);
  s.setString(6, r.status_message.substr(0, 1000));
  SetBlob(s, 7, r.response, response);
  s.setString(8, SqlTime(r.updated_at));
  s.setString(9, r.redemption_id);
  s.executeUpdate();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Redemption>> MysqlTx::ListStuckRedemptions(absl::Time before, int limit) {
  auto& s = tx_.Prepare(kStuckRedemptions);
  s.setString(1, SqlTime(before));
  s.setInt(2, limit);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  std::vector<Redemption> out;
  while (rs->next()) out.push_back(ReadRedemption(*rs));
  return out;
}

}  // namespace loyalty::catalog::internal
