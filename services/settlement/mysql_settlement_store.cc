#include "services/settlement/mysql_settlement_store.h"

#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/db/idempotency_rows.h"
#include "common/db/mysql_error.h"
#include "common/db/sql_values.h"
#include "common/db/transaction.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace loyalty::settlement {
namespace {

using db::SqlTime;
using db::ReadBlob;
using db::SetBlob;
using db::Str;

constexpr char kMinTime[] = "1000-01-01 00:00:00.000000";
constexpr char kMaxTime[] = "9999-12-31 23:59:59.999999";

constexpr absl::string_view kNextFeedVersion = "SELECT last_version FROM feed_head WHERE id = 1 FOR UPDATE";
constexpr absl::string_view kSetFeedVersion = "UPDATE feed_head SET last_version = ? WHERE id = 1";

constexpr absl::string_view kSelectPartner = "SELECT body FROM partners WHERE partner_id = ?";
constexpr absl::string_view kSelectPartnerForUpdate = "SELECT body FROM partners WHERE partner_id = ? FOR UPDATE";
constexpr absl::string_view kInsertPartner =
    "INSERT INTO partners (partner_id, status, business_category, snapshot_version, body) VALUES (?, ?, ?, ?, ?)";
constexpr absl::string_view kUpdatePartner =
    "UPDATE partners SET status = ?, business_category = ?, snapshot_version = ?, body = ? WHERE partner_id = ?";
constexpr absl::string_view kTouchPartner = "UPDATE partners SET snapshot_version = ? WHERE partner_id = ?";
constexpr absl::string_view kListPartners =
    "SELECT body FROM partners WHERE partner_id > ? ORDER BY partner_id LIMIT ?";
constexpr absl::string_view kListChangedPartners =
    "SELECT snapshot_version, body FROM partners WHERE snapshot_version > ? ORDER BY snapshot_version LIMIT ?";

constexpr absl::string_view kInsertContract =
    "INSERT INTO contracts (contract_id, partner_id, version, effective_from, body) VALUES (?, ?, ?, ?, ?)";
constexpr absl::string_view kSelectContract = "SELECT body FROM contracts WHERE contract_id = ?";
constexpr absl::string_view kListContracts = "SELECT body FROM contracts WHERE partner_id = ? ORDER BY version";

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

constexpr absl::string_view kInsertAudit =
    "INSERT INTO audit_events (audit_event_id, occurred_at, actor_key_id, entity_type, entity_id, body) "
    "VALUES (?, ?, ?, ?, ?, ?)";
constexpr absl::string_view kListAudit =
    "SELECT id, body FROM audit_events WHERE (? = '' OR entity_type = ?) AND (? = '' OR entity_id = ?) "
    "AND (? = '' OR actor_key_id = ?) AND occurred_at >= ? AND occurred_at < ? AND (? = 0 OR id < ?) "
    "ORDER BY id DESC LIMIT ?";

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

constexpr absl::string_view kInsertApiKey =
    "INSERT INTO api_keys (key_id, key_hash, partner_id, role, body) VALUES (?, ?, ?, ?, ?)";
constexpr absl::string_view kUpdateApiKey = "UPDATE api_keys SET body = ? WHERE key_id = ?";
constexpr absl::string_view kSelectApiKey = "SELECT body FROM api_keys WHERE key_id = ?";
constexpr absl::string_view kSelectApiKeyForUpdate = "SELECT body FROM api_keys WHERE key_id = ? FOR UPDATE";
constexpr absl::string_view kSelectApiKeyByHash = "SELECT body FROM api_keys WHERE key_hash = ?";
constexpr absl::string_view kListApiKeys =
    "SELECT id, body FROM api_keys WHERE (? = '' OR partner_id = ?) AND (? = 0 OR id < ?) ORDER BY id DESC LIMIT ?";

// ---- helpers ------------------------------------------------------------------

std::string Serialize(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  m.SerializeToCodedStream(&coded);
  coded.Trim();
  return out;
}

template <typename M>
absl::StatusOr<M> Parse(const sql::ResultSet& rs, int col, absl::string_view what) {
  M m;
  if (!m.ParseFromString(ReadBlob(rs, col))) return absl::InternalError(absl::StrCat(what, ": unreadable row"));
  return m;
}

// Runs `s` and reads its (row id, serialized message) rows, in order.
template <typename M>
absl::StatusOr<std::vector<std::pair<int64_t, M>>> ParseKeyedRows(sql::PreparedStatement& s, absl::string_view what) {
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  std::vector<std::pair<int64_t, M>> out;
  while (rs->next()) {
    ASSIGN_OR_RETURN(M m, Parse<M>(*rs, 2, what));
    out.emplace_back(rs->getInt64(1), std::move(m));
  }
  return out;
}

// ---- the transaction ------------------------------------------------------------

class MysqlTx final : public SettlementTx {
 public:
  explicit MysqlTx(db::Transaction& tx) : tx_(tx) {}

  absl::StatusOr<std::optional<IdempotencyRecord>> ClaimKey(const IdempotencyRecord& claim) override {
    return db::ClaimIdempotencyKey(tx_, claim);
  }

  absl::Status SaveOutcome(const IdempotencyRecord& record) override { return db::SaveIdempotencyOutcome(tx_, record); }

  absl::StatusOr<std::optional<v1::Partner>> GetPartner(const std::string& partner_id, bool for_update) override {
    return SelectOne<v1::Partner>(for_update ? kSelectPartnerForUpdate : kSelectPartner, partner_id, "partner");
  }

  absl::Status InsertPartner(const v1::Partner& p) override {
    ASSIGN_OR_RETURN(int64_t version, NextFeedVersion());
    auto& s = tx_.Prepare(kInsertPartner);
    std::istringstream body;
    const std::string bytes = Serialize(p);
    s.setString(1, p.partner_id());
    s.setInt(2, p.status());
    s.setInt(3, p.business_category());
    s.setInt64(4, version);
    SetBlob(s, 5, bytes, body);
    return db::ExecuteUnlessDuplicate(s, absl::AlreadyExistsError(absl::StrCat("partner_id: '", p.partner_id(), "' is taken")));
  }

  absl::Status UpdatePartner(const v1::Partner& p) override {
    ASSIGN_OR_RETURN(int64_t version, NextFeedVersion());
    auto& s = tx_.Prepare(kUpdatePartner);
    std::istringstream body;
    const std::string bytes = Serialize(p);
    s.setInt(1, p.status());
    s.setInt(2, p.business_category());
    s.setInt64(3, version);
    SetBlob(s, 4, bytes, body);
    s.setString(5, p.partner_id());
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::Status TouchPartner(const std::string& partner_id) override {
    ASSIGN_OR_RETURN(int64_t version, NextFeedVersion());
    auto& s = tx_.Prepare(kTouchPartner);
    s.setInt64(1, version);
    s.setString(2, partner_id);
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<v1::Partner>> ListPartners(const std::string& after_partner_id, int limit) override {
    auto& s = tx_.Prepare(kListPartners);
    s.setString(1, after_partner_id);
    s.setInt(2, limit);
    return ReadAll<v1::Partner>(s, 1, "partner");
  }

  absl::StatusOr<std::vector<std::pair<int64_t, v1::Partner>>> ListChangedPartners(int64_t after_version,
                                                                                   int limit) override {
    auto& s = tx_.Prepare(kListChangedPartners);
    s.setInt64(1, after_version);
    s.setInt(2, limit);
    return ParseKeyedRows<v1::Partner>(s, "partner");
  }

  absl::Status InsertContract(const v1::Contract& c) override {
    auto& s = tx_.Prepare(kInsertContract);
    std::istringstream body;
    const std::string bytes = Serialize(c);
    s.setString(1, c.contract_id());
    s.setString(2, c.partner_id());
    s.setInt(3, c.version());
    s.setString(4, SqlTime(FromProtoTime(c.effective_from())));
    SetBlob(s, 5, bytes, body);
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<v1::Contract>> GetContract(const std::string& contract_id) override {
    return SelectOne<v1::Contract>(kSelectContract, contract_id, "contract");
  }

  absl::StatusOr<ContractHistory> ListContracts(const std::string& partner_id) override {
    auto& s = tx_.Prepare(kListContracts);
    s.setString(1, partner_id);
    return ReadAll<v1::Contract>(s, 1, "contract");
  }

  absl::Status InsertPeriod(const v1::Period& p) override {
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

  absl::Status UpdatePeriod(const v1::Period& p) override {
    auto& s = tx_.Prepare(kUpdatePeriod);
    std::istringstream body;
    const std::string bytes = Serialize(p);
    s.setInt(1, p.status());
    SetBlob(s, 2, bytes, body);
    s.setString(3, p.period_id());
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<v1::Period>> GetPeriod(const std::string& period_id, bool for_update) override {
    return SelectOne<v1::Period>(for_update ? kSelectPeriodForUpdate : kSelectPeriod, period_id, "period");
  }

  absl::StatusOr<std::vector<v1::Period>> ListPeriods(int limit) override {
    auto& s = tx_.Prepare(kListPeriods);
    s.setInt(1, limit);
    return ReadAll<v1::Period>(s, 1, "period");
  }

  absl::Status AddPoints(const std::string& period_id, const std::vector<PointsCount>& rows) override {
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

  absl::Status AddMatrix(const std::string& period_id, const std::vector<MatrixCount>& rows) override {
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

  absl::StatusOr<std::vector<PointsCount>> ListPoints(const std::string& period_id) override {
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

  absl::StatusOr<std::vector<MatrixCount>> ListMatrix(const std::string& period_id) override {
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

  absl::Status InsertStatement(const v1::Statement& st) override {
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

  absl::Status UpdateStatement(const v1::Statement& st) override {
    auto& s = tx_.Prepare(kUpdateStatement);
    std::istringstream body;
    const std::string bytes = Serialize(st);
    s.setInt(1, st.status());
    SetBlob(s, 2, bytes, body);
    s.setString(3, st.statement_id());
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<v1::Statement>> GetStatement(const std::string& statement_id) override {
    return SelectOne<v1::Statement>(kSelectStatement, statement_id, "statement");
  }

  absl::StatusOr<std::optional<v1::Statement>> GetStatementByKey(const std::string& period_id,
                                                                const std::string& partner_id) override {
    auto& s = tx_.Prepare(kSelectStatementByKey);
    s.setString(1, period_id);
    s.setString(2, partner_id);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    if (!rs->next()) return std::nullopt;
    ASSIGN_OR_RETURN(v1::Statement st, Parse<v1::Statement>(*rs, 1, "statement"));
    return st;
  }

  absl::StatusOr<std::vector<std::pair<int64_t, v1::Statement>>> ListStatements(const StatementFilter& f,
                                                                                int64_t before_id,
                                                                                int limit) override {
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

  absl::Status InsertPointBlock(const v1::PointBlock& b) override {
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

  absl::StatusOr<std::vector<v1::PointBlock>> ListPointBlocks(const std::string& partner_id, int limit) override {
    auto& s = tx_.Prepare(kListPointBlocks);
    s.setString(1, partner_id);
    s.setInt(2, limit);
    return ReadAll<v1::PointBlock>(s, 1, "point block");
  }

  absl::StatusOr<std::optional<PrepaidRow>> GetPrepaid(const std::string& partner_id, bool for_update) override {
    auto& s = tx_.Prepare(for_update ? kSelectPrepaidForUpdate : kSelectPrepaid);
    s.setString(1, partner_id);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    if (!rs->next()) return std::optional<PrepaidRow>();
    return std::optional<PrepaidRow>(ReadPrepaid(*rs));
  }

  absl::StatusOr<std::vector<PrepaidRow>> ListPrepaid(int limit) override {
    auto& s = tx_.Prepare(kListPrepaid);
    s.setInt(1, limit);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    std::vector<PrepaidRow> out;
    while (rs->next()) out.push_back(ReadPrepaid(*rs));
    return out;
  }

  absl::Status PutPrepaid(const PrepaidRow& row) override {
    auto& s = tx_.Prepare(kPutPrepaid);
    s.setString(1, row.partner_id);
    s.setInt64(2, row.purchased_points);
    s.setInt64(3, row.issued_points);
    s.setInt(4, row.alert_level);
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> GetCursor(const std::string& name, bool for_update) override {
    auto& s = tx_.Prepare(for_update ? kSelectCursorForUpdate : kSelectCursor);
    s.setString(1, name);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    if (!rs->next()) return absl::InternalError(absl::StrCat("cursor '", name, "' missing"));
    return rs->getInt64(1);
  }

  absl::Status SetCursor(const std::string& name, int64_t position, absl::Time now) override {
    auto& s = tx_.Prepare(kSetCursor);
    s.setInt64(1, position);
    s.setString(2, SqlTime(now));
    s.setString(3, name);
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::Status InsertAlert(const v1::Alert& a) override {
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

  absl::StatusOr<std::vector<std::pair<int64_t, v1::Alert>>> ListAlerts(const std::string& partner_id,
                                                                      int64_t before_id, int limit) override {
    auto& s = tx_.Prepare(kListAlerts);
    s.setString(1, partner_id);
    s.setString(2, partner_id);
    s.setInt64(3, before_id);
    s.setInt64(4, before_id);
    s.setInt(5, limit);
    return ParseKeyedRows<v1::Alert>(s, "alert");
  }

  absl::Status InsertDispute(const v1::Dispute& d) override {
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

  absl::Status UpdateDispute(const v1::Dispute& d) override {
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

  absl::StatusOr<std::optional<v1::Dispute>> GetDispute(const std::string& dispute_id, bool for_update) override {
    return SelectOne<v1::Dispute>(for_update ? kSelectDisputeForUpdate : kSelectDispute, dispute_id, "dispute");
  }

  absl::StatusOr<std::vector<v1::Dispute>> ListStatementDisputes(const std::string& statement_id,
                                                                 int limit) override {
    auto& s = tx_.Prepare(kListStatementDisputes);
    s.setString(1, statement_id);
    s.setInt(2, limit);
    return ReadAll<v1::Dispute>(s, 1, "dispute");
  }

  absl::StatusOr<std::vector<v1::Dispute>> ListAdjustments(const std::string& period_id, int limit) override {
    auto& s = tx_.Prepare(kListAdjustments);
    s.setString(1, period_id);
    s.setInt(2, limit);
    return ReadAll<v1::Dispute>(s, 1, "dispute");
  }

  absl::StatusOr<std::vector<std::pair<int64_t, v1::Dispute>>> ListDisputes(const std::string& partner_id,
                                                                          int64_t before_id, int limit) override {
    auto& s = tx_.Prepare(kListDisputes);
    s.setString(1, partner_id);
    s.setString(2, partner_id);
    s.setInt64(3, before_id);
    s.setInt64(4, before_id);
    s.setInt(5, limit);
    return ParseKeyedRows<v1::Dispute>(s, "dispute");
  }

  absl::Status InsertApiKey(const v1::ApiKey& k, const std::string& key_hash) override {
    auto& s = tx_.Prepare(kInsertApiKey);
    std::istringstream body;
    const std::string bytes = Serialize(k);
    s.setString(1, k.key_id());
    s.setString(2, key_hash);
    s.setString(3, k.partner_id());
    s.setInt(4, k.role());
    SetBlob(s, 5, bytes, body);
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::Status UpdateApiKey(const v1::ApiKey& k) override {
    auto& s = tx_.Prepare(kUpdateApiKey);
    std::istringstream body;
    const std::string bytes = Serialize(k);
    SetBlob(s, 1, bytes, body);
    s.setString(2, k.key_id());
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<v1::ApiKey>> GetApiKey(const std::string& key_id, bool for_update) override {
    return SelectOne<v1::ApiKey>(for_update ? kSelectApiKeyForUpdate : kSelectApiKey, key_id, "api key");
  }

  absl::StatusOr<std::optional<v1::ApiKey>> FindApiKeyByHash(const std::string& key_hash) override {
    return SelectOne<v1::ApiKey>(kSelectApiKeyByHash, key_hash, "api key");
  }

  absl::StatusOr<std::vector<std::pair<int64_t, v1::ApiKey>>> ListApiKeys(const std::string& partner_id,
                                                                        int64_t before_id, int limit) override {
    auto& s = tx_.Prepare(kListApiKeys);
    s.setString(1, partner_id);
    s.setString(2, partner_id);
    s.setInt64(3, before_id);
    s.setInt64(4, before_id);
    s.setInt(5, limit);
    return ParseKeyedRows<v1::ApiKey>(s, "api key");
  }

  absl::Status InsertAudit(const common::v1::AuditEvent& e) override {
    auto& s = tx_.Prepare(kInsertAudit);
    std::istringstream body;
    const std::string bytes = Serialize(e);
    s.setString(1, e.audit_event_id());
    s.setString(2, SqlTime(FromProtoTime(e.occurred_at())));
    s.setString(3, e.actor_key_id());
    s.setString(4, e.entity_type());
    s.setString(5, e.entity_id());
    SetBlob(s, 6, bytes, body);
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::pair<int64_t, common::v1::AuditEvent>>> ListAudit(const AuditFilter& f,
                                                                                    int64_t before_id,
                                                                                    int limit) override {
    auto& s = tx_.Prepare(kListAudit);
    s.setString(1, f.entity_type);
    s.setString(2, f.entity_type);
    s.setString(3, f.entity_id);
    s.setString(4, f.entity_id);
    s.setString(5, f.actor_key_id);
    s.setString(6, f.actor_key_id);
    s.setString(7, f.start.has_value() ? SqlTime(*f.start) : kMinTime);
    s.setString(8, f.end.has_value() ? SqlTime(*f.end) : kMaxTime);
    s.setInt64(9, before_id);
    s.setInt64(10, before_id);
    s.setInt(11, limit);
    return ParseKeyedRows<common::v1::AuditEvent>(s, "audit event");
  }

 private:

  static PrepaidRow ReadPrepaid(const sql::ResultSet& rs) {
    PrepaidRow row;
    row.partner_id = Str(rs, 1);
    row.purchased_points = rs.getInt64(2);
    row.issued_points = rs.getInt64(3);
    row.alert_level = rs.getInt(4);
    return row;
  }

  absl::StatusOr<int64_t> NextFeedVersion() {
    std::unique_ptr<sql::ResultSet> rs(tx_.Prepare(kNextFeedVersion).executeQuery());
    if (!rs->next()) return absl::InternalError("feed_head row missing");
    const int64_t next = rs->getInt64(1) + 1;
    rs.reset();
    auto& s = tx_.Prepare(kSetFeedVersion);
    s.setInt64(1, next);
    s.executeUpdate();
    return next;
  }

  template <typename M>
  absl::StatusOr<std::optional<M>> SelectOne(absl::string_view sql, const std::string& id, absl::string_view what) {
    auto& s = tx_.Prepare(sql);
    s.setString(1, id);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    if (!rs->next()) return std::optional<M>();
    ASSIGN_OR_RETURN(M m, Parse<M>(*rs, 1, what));
    return std::optional<M>(std::move(m));
  }

  template <typename M>
  absl::StatusOr<std::vector<M>> ReadAll(sql::PreparedStatement& s, int col, absl::string_view what) {
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    std::vector<M> out;
    while (rs->next()) {
      ASSIGN_OR_RETURN(M m, Parse<M>(*rs, col, what));
      out.push_back(std::move(m));
    }
    return out;
  }

  db::Transaction& tx_;
};

class MysqlSettlementStore final : public SettlementStore {
 public:
  explicit MysqlSettlementStore(db::ConnectionPool& pool) : pool_(pool) {}

  absl::Status Run(absl::string_view context, const std::function<absl::Status(SettlementTx&)>& body) override {
    return db::RunInTransaction(pool_, context, [&](db::Transaction& tx) {
      MysqlTx mtx(tx);
      return body(mtx);
    });
  }

 private:
  db::ConnectionPool& pool_;
};

}  // namespace

SettlementStorePtr NewMysqlSettlementStore(db::ConnectionPool& pool) {
  return std::make_unique<MysqlSettlementStore>(pool);
}

}  // namespace loyalty::settlement
