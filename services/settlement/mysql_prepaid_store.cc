// Prepaid point blocks and balances, the journal cursors and alerts on MariaDB.
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/db/mysql_error.h"
#include "common/db/sql_values.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "services/settlement/mysql_settlement_tx.h"

namespace loyalty::settlement::internal {
namespace {

using db::SetBlob;
using db::SqlTime;
using db::Str;

constexpr absl::string_view kInsertPointBlock =
    "INSERT INTO point_blocks (point_block_id, partner_id, points, body) VALUES (?, ?, ?, ?)";
constexpr absl::string_view kListPointBlocks =
    "SELECT body FROM point_blocks WHERE partner_id = ? ORDER BY id DESC LIMIT ?";
constexpr absl::string_view kSelectPrepaid =
    "SELECT partner_id, purchased_points, issued_points, alert_level FROM prepaid_balances WHERE partner_id = ?";
constexpr absl::string_view kSelectPrepaidForUpdate =
    "SELECT partner_id, purchased_points, issued_points, alert_level FROM prepaid_balances WHERE partner_id = ? "
    "FOR UPDATE";
constexpr absl::string_view kListPrepaid =
    "SELECT partner_id, purchased_points, issued_points, alert_level FROM prepaid_balances ORDER BY partner_id "
    "LIMIT ?";
constexpr absl::string_view kPutPrepaid =
    "INSERT INTO prepaid_balances (partner_id, purchased_points, issued_points, alert_level) VALUES (?, ?, ?, ?) "
    "ON DUPLICATE KEY UPDATE purchased_points = VALUES(purchased_points), issued_points = VALUES(issued_points), "
    "alert_level = VALUES(alert_level)";
constexpr absl::string_view kSelectCursor = "SELECT position FROM feed_cursors WHERE name = ?";
constexpr absl::string_view kSelectCursorForUpdate = "SELECT position FROM feed_cursors WHERE name = ? FOR UPDATE";
constexpr absl::string_view kSetCursor = "UPDATE feed_cursors SET position = ?, updated_at = ? WHERE name = ?";
constexpr absl::string_view kInsertAlert =
    "INSERT INTO alerts (alert_id, partner_id, kind, created_at, body) VALUES (?, ?, ?, ?, ?)";
constexpr absl::string_view kListAlerts =
    "SELECT id, body FROM alerts WHERE (? = '' OR partner_id = ?) AND (? = 0 OR id < ?) ORDER BY id DESC LIMIT ?";

PrepaidRow ReadPrepaid(const sql::ResultSet& rs) {
  PrepaidRow row;
  row.partner_id = Str(rs, 1);
  row.purchased_points = rs.getInt64(2);
  row.issued_points = rs.getInt64(3);
  row.alert_level = rs.getInt(4);
  return row;
}

}  // namespace

absl::Status MysqlTx::InsertPointBlock(const v1::PointBlock& b) {
  auto& s = tx_.Prepare(kInsertPointBlock);
  std::istringstream body;
  const std::string bytes = Serialize(b);
  s.setString(1, b.point_block_id());
  s.setString(2, b.partner_id());
  s.setInt64(3, b.points());
  SetBlob(s, 4, bytes, body);
  s.executeUpdate();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::PointBlock>> MysqlTx::ListPointBlocks(const std::string& partner_id, int limit) {
  auto& s = tx_.Prepare(kListPointBlocks);
  s.setString(1, partner_id);
  s.setInt(2, limit);
  return ReadAll<v1::PointBlock>(s, 1, "point block");
}

absl::StatusOr<std::optional<PrepaidRow>> MysqlTx::GetPrepaid(const std::string& partner_id, bool for_update) {
  auto& s = tx_.Prepare(for_update ? kSelectPrepaidForUpdate : kSelectPrepaid);
  s.setString(1, partner_id);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  if (!rs->next()) return std::optional<PrepaidRow>();
  return std::optional<PrepaidRow>(ReadPrepaid(*rs));
}

absl::StatusOr<std::vector<PrepaidRow>> MysqlTx::ListPrepaid(int limit) {
  auto& s = tx_.Prepare(kListPrepaid);
  s.setInt(1, limit);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  std::vector<PrepaidRow> out;
  while (rs->next()) out.push_back(ReadPrepaid(*rs));
  return out;
}

absl::Status MysqlTx::PutPrepaid(const PrepaidRow& row) {
  auto& s = tx_.Prepare(kPutPrepaid);
  s.setString(1, row.partner_id);
  s.setInt64(2, row.purchased_points);
  s.setInt64(3, row.issued_points);
  s.setInt(4, row.alert_level);
  s.executeUpdate();
  return absl::OkStatus();
}

absl::StatusOr<int64_t> MysqlTx::GetCursor(const std::string& name, bool for_update) {
  auto& s = tx_.Prepare(for_update ? kSelectCursorForUpdate : kSelectCursor);
  s.setString(1, name);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  if (!rs->next()) return absl::InternalError(absl::StrCat("cursor '", name, "' missing"));
  return rs->getInt64(1);
}

absl::Status MysqlTx::SetCursor(const std::string& name, int64_t position, absl::Time now) {
  auto& s = tx_.Prepare(kSetCursor);
  s.setInt64(1, position);
  s.setString(2, SqlTime(now));
  s.setString(3, name);
  s.executeUpdate();
  return absl::OkStatus();
}

absl::Status MysqlTx::InsertAlert(const v1::Alert& a) {
  auto& s = tx_.Prepare(kInsertAlert);
  std::istringstream body;
  const std::string bytes = Serialize(a);
  s.setString(1, a.alert_id());
  s.setString(2, a.partner_id());
  s.setInt(3, a.kind());
  s.setString(4, SqlTime(FromProtoTime(a.created_at())));
  SetBlob(s, 5, bytes, body);
  s.executeUpdate();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::pair<int64_t, v1::Alert>>> MysqlTx::ListAlerts(const std::string& partner_id,
                                                                           int64_t before_id, int limit) {
  auto& s = tx_.Prepare(kListAlerts);
  s.setString(1, partner_id);
  s.setString(2, partner_id);
  s.setInt64(3, before_id);
  s.setInt64(4, before_id);
  s.setInt(5, limit);
  return ParseKeyedRows<v1::Alert>(s, "alert");
}

}  // namespace loyalty::settlement::internal
