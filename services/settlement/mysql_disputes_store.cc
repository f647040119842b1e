// Disputes of statement lines on MariaDB.
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

constexpr absl::string_view kInsertDispute =
    "INSERT INTO disputes (dispute_id, statement_id, partner_id, status, adjustment_period_id, body) "
    "VALUES (?, ?, ?, ?, ?, ?)";
constexpr absl::string_view kUpdateDispute =
    "UPDATE disputes SET status = ?, adjustment_period_id = ?, body = ? WHERE dispute_id = ?";
constexpr absl::string_view kSelectDispute = "SELECT body FROM disputes WHERE dispute_id = ?";
constexpr absl::string_view kSelectDisputeForUpdate = "SELECT body FROM disputes WHERE dispute_id = ? FOR UPDATE";
constexpr absl::string_view kListStatementDisputes =
    "SELECT body FROM disputes WHERE statement_id = ? ORDER BY id LIMIT ?";
constexpr absl::string_view kListAdjustments =
    "SELECT body FROM disputes WHERE adjustment_period_id = ? AND status = 2 ORDER BY id LIMIT ?";
constexpr absl::string_view kListDisputes =
    "SELECT id, body FROM disputes WHERE (? = '' OR partner_id = ?) AND (? = 0 OR id < ?) ORDER BY id DESC LIMIT ?";

}  // namespace

absl::Status MysqlTx::InsertDispute(const v1::Dispute& d) {
  auto& s = tx_.Prepare(kInsertDispute);
  std::istringstream body;
  const std::string bytes = Serialize(d);
  s.setString(1, d.dispute_id());
  s.setString(2, d.statement_id());
  s.setString(3, d.partner_id());
  s.setInt(4, d.status());
  s.setString(5, d.adjustment_period_id());
  SetBlob(s, 6, bytes, body);
  s.executeUpdate();
  return absl::OkStatus();
}

absl::Status MysqlTx::UpdateDispute(const v1::Dispute& d) {
  auto& s = tx_.Prepare(kUpdateDispute);
  std::istringstream body;
  const std::string bytes = Serialize(d);
  s.setInt(1, d.status());
  s.setString(2, d.adjustment_period_id());
  SetBlob(s, 3, bytes, body);
  s.setString(4, d.dispute_id());
  s.executeUpdate();
  return absl::OkStatus();
}

absl::StatusOr<std::optional<v1::Dispute>> MysqlTx::GetDispute(const std::string& dispute_id, bool for_update) {
  return SelectOne<v1::Dispute>(for_update ? kSelectDisputeForUpdate : kSelectDispute, dispute_id, "dispute");
}

absl::StatusOr<std::vector<v1::Dispute>> MysqlTx::ListStatementDisputes(const std::string& statement_id,
                                                                      int limit) {
  auto& s = tx_.Prepare(kListStatementDisputes);
  s.setString(1, statement_id);
  s.setInt(2, limit);
  return ReadAll<v1::Dispute>(s, 1, "dispute");
}

absl::StatusOr<std::vector<v1::Dispute>> MysqlTx::ListAdjustments(const std::string& period_id, int limit) {
  auto& s = tx_.Prepare(kListAdjustments);
  s.setString(1, period_id);
  s.setInt(2, limit);
  return ReadAll<v1::Dispute>(s, 1, "dispute");
}

absl::StatusOr<std::vector<std::pair<int64_t, v1::Dispute>>> MysqlTx::ListDisputes(const std::string& partner_id,
                                                                               int64_t before_id, int limit) {
  auto& s = tx_.Prepare(kListDisputes);
  s.setString(1, partner_id);
  s.setString(2, partner_id);
  s.setInt64(3, before_id);
  s.setInt64(4, before_id);
  s.setInt(5, limit);
  return ParseKeyedRows<v1::Dispute>(s, "dispute");
}

}  // namespace loyalty::settlement::internal
