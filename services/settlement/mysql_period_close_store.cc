// Periods, the close accumulation (close_points, close_matrix) and statements on MariaDB.
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

constexpr absl::string_view kInsertPeriod =
    "INSERT INTO periods (period_id, name, start_time, end_time, status, body) VALUES (?, ?, ?, ?, ?, ?)";
constexpr absl::string_view kUpdatePeriod = "UPDATE periods SET status = ?, body = ? WHERE period_id = ?";
constexpr absl::string_view kSelectPeriod = "SELECT body FROM periods WHERE period_id = ?";
constexpr absl::string_view kSelectPeriodForUpdate = "SELECT body FROM periods WHERE period_id = ? FOR UPDATE";
constexpr absl::string_view kListPeriods = "SELECT body FROM periods ORDER BY start_time, period_id LIMIT ?";
constexpr absl::string_view kAddPoints =
    "INSERT INTO close_points (period_id, partner_id, line_type, transfer_code, counterparty_partner_id, "
    "contract_id, points, transfer_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON DUPLICATE KEY UPDATE points = points + VALUES(points), transfer_count = transfer_count + "
    "VALUES(transfer_count)";
constexpr absl::string_view kAddMatrix =
    "INSERT INTO close_matrix (period_id, issuer_partner_id, redeemer_partner_id, honoured_points, "
    "reversed_points) VALUES (?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE honoured_points = honoured_points + "
    "VALUES(honoured_points), reversed_points = reversed_points + VALUES(reversed_points)";
constexpr absl::string_view kListPoints =
    "SELECT partner_id, line_type, transfer_code, counterparty_partner_id, contract_id, points, transfer_count "
    "FROM close_points WHERE period_id = ? ORDER BY partner_id, line_type, transfer_code, "
    "counterparty_partner_id, contract_id";
constexpr absl::string_view kListMatrix =
    "SELECT issuer_partner_id, redeemer_partner_id, honoured_points, reversed_points FROM close_matrix "
    "WHERE period_id = ? ORDER BY issuer_partner_id, redeemer_partner_id";
constexpr absl::string_view kInsertStatement =
    "INSERT INTO statements (statement_id, period_id, partner_id, status, body) VALUES (?, ?, ?, ?, ?)";
constexpr absl::string_view kUpdateStatement = "UPDATE statements SET status = ?, body = ? WHERE statement_id = ?";
constexpr absl::string_view kSelectStatement = "SELECT body FROM statements WHERE statement_id = ?";
constexpr absl::string_view kSelectStatementByKey =
    "SELECT body FROM statements WHERE period_id = ? AND partner_id = ?";
constexpr absl::string_view kListStatements =
    "SELECT id, body FROM statements WHERE (? = '' OR period_id = ?) AND (? = '' OR partner_id = ?) "
    "AND (? = 0 OR id < ?) ORDER BY id DESC LIMIT ?";

}  // namespace

absl::Status MysqlTx::InsertPeriod(const v1::Period& p) {
  auto& s = tx_.Prepare(kInsertPeriod);
  std::istringstream body;
  const std::string bytes = Serialize(p);
  s.setString(1, p.period_id());
  s.setString(2, p.name());
  s.setString(3, SqlTime(FromProtoTime(p.start_time())));
  s.setString(4, SqlTime(FromProtoTime(p.end_time())));
  s.setInt(5, p.status());
  SetBlob(s, 6, bytes, body);
  return db::ExecuteUnlessDuplicate(s, absl::AlreadyExistsError(absl::StrCat("name: a period named '", p.name(), "' exists")));
}

absl::Status MysqlTx::UpdatePeriod(const v1::Period& p) {
  auto& s = tx_.Prepare(kUpdatePeriod);
  std::istringstream body;
  const std::string bytes = Serialize(p);
  s.setInt(1, p.status());
  SetBlob(s, 2, bytes, body);
  s.setString(3, p.period_id());
  s.executeUpdate();
  return absl::OkStatus();
}

absl::StatusOr<std::optional<v1::Period>> MysqlTx::GetPeriod(const std::string& period_id, bool for_update) {
  return SelectOne<v1::Period>(for_update ? kSelectPeriodForUpdate : kSelectPeriod, period_id, "period");
}

absl::StatusOr<std::vector<v1::Period>> MysqlTx::ListPeriods(int limit) {
  auto& s = tx_.Prepare(kListPeriods);
  s.setInt(1, limit);
  return ReadAll<v1::Period>(s, 1, "period");
}

absl::Status MysqlTx::AddPoints(const std::string& period_id, const std::vector<PointsCount>& rows) {
  auto& s = tx_.Prepare(kAddPoints);
  for (const PointsCount& r : rows) {
    s.setString(1, period_id);
    s.setString(2, r.partner_id);
    s.setInt(3, r.line_type);
    s.setInt(4, r.transfer_code);
    s.setString(5, r.counterparty_partner_id);
    s.setString(6, r.contract_id);
    s.setInt64(7, r.points);
    s.setInt64(8, r.transfer_count);
    s.executeUpdate();
  }
  return absl::OkStatus();
}

absl::Status MysqlTx::AddMatrix(const std::string& period_id, const std::vector<MatrixCount>& rows) {
  auto& s = tx_.Prepare(kAddMatrix);
  for (const MatrixCount& r : rows) {
    s.setString(1, period_id);
    s.setString(2, r.issuer_partner_id);
    s.setString(3, r.redeemer_partner_id);
    s.setInt64(4, r.honoured_points);
    s.setInt64(5, r.reversed_points);
    s.executeUpdate();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<PointsCount>> MysqlTx::ListPoints(const std::string& period_id) {
  auto& s = tx_.Prepare(kListPoints);
  s.setString(1, period_id);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  std::vector<PointsCount> out;
  while (rs->next()) {
    PointsCount r;
    r.partner_id = Str(*rs, 1);
    r.line_type = static_cast<v1::StatementLineType>(rs->getInt(2));
    r.transfer_code = static_cast<ledger::v1::TransferCode>(rs->getInt(3));
    r.counterparty_partner_id = Str(*rs, 4);
    r.contract_id = Str(*rs, 5);
    r.points = rs->getInt64(6);
    r.transfer_count = rs->getInt64(7);
    out.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<std::vector<MatrixCount>> MysqlTx::ListMatrix(const std::string& period_id) {
  auto& s = tx_.Prepare(kListMatrix);
  s.setString(1, period_id);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  std::vector<MatrixCount> out;
  while (rs->next()) {
    MatrixCount m;
    m.issuer_partner_id = Str(*rs, 1);
    m.redeemer_partner_id = Str(*rs, 2);
    m.honoured_points = rs->getInt64(3);
    m.reversed_points = rs->getInt64(4);
    out.push_back(std::move(m));
  }
  return out;
}

absl::Status MysqlTx::InsertStatement(const v1::Statement& st) {
  auto& s = tx_.Prepare(kInsertStatement);
  std::istringstream body;
  const std::string bytes = Serialize(st);
  s.setString(1, st.statement_id());
  s.setString(2, st.period_id());
  s.setString(3, st.partner_id());
  s.setInt(4, st.status());
  SetBlob(s, 5, bytes, body);
  s.executeUpdate();
  return absl::OkStatus();
}

absl::Status MysqlTx::UpdateStatement(const v1::Statement& st) {
  auto& s = tx_.Prepare(kUpdateStatement);
  std::istringstream body;
  const std::string bytes = Serialize(st);
  s.setInt(1, st.status());
  SetBlob(s, 2, bytes, body);
  s.setString(3, st.statement_id());
  s.executeUpdate();
  return absl::OkStatus();
}

absl::StatusOr<std::optional<v1::Statement>> MysqlTx::GetStatement(const std::string& statement_id) {
  return SelectOne<v1::Statement>(kSelectStatement, statement_id, "statement");
}

absl::StatusOr<std::optional<v1::Statement>> MysqlTx::GetStatementByKey(const std::string& period_id,
                                                                     const std::string& partner_id) {
  auto& s = tx_.Prepare(kSelectStatementByKey);
  s.setString(1, period_id);
  s.setString(2, partner_id);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  if (!rs->next()) return std::nullopt;
  ASSIGN_OR_RETURN(v1::Statement st, Parse<v1::Statement>(*rs, 1, "statement"));
  return st;
}

absl::StatusOr<std::vector<std::pair<int64_t, v1::Statement>>> MysqlTx::ListStatements(const StatementFilter& f,
                                                                                     int64_t before_id,
                                                                                     int limit) {
  auto& s = tx_.Prepare(kListStatements);
  s.setString(1, f.period_id);
  s.setString(2, f.period_id);
  s.setString(3, f.partner_id);
  s.setString(4, f.partner_id);
  s.setInt64(5, before_id);
  s.setInt64(6, before_id);
  s.setInt(7, limit);
  return ParseKeyedRows<v1::Statement>(s, "statement");
}

}  // namespace loyalty::settlement::internal
