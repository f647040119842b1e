#pragma once
// Internal to the settlement store: the MariaDB transaction behind
// SettlementTx, declared once and defined by table group, each beside its
// SQL:
//   mysql_settlement_store.cc     idempotency, audit, the store itself
//   mysql_partners_store.cc       partners, contracts, the snapshot feed
//   mysql_period_close_store.cc   periods, close counts, statements
//   mysql_prepaid_store.cc        point blocks, balances, cursors, alerts
//   mysql_disputes_store.cc       disputes
//   mysql_api_keys_store.cc       API keys
// Only those files include this header. Rows hold deterministic protobuf
// bodies (Serialize) beside the columns that are searched.
//
// Thread-compatible: one MysqlTx per transaction, on one thread.

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/db/sql_values.h"
#include "common/db/transaction.h"
#include "common/status/status_macros.h"
#include "google/protobuf/message.h"
#include "services/settlement/settlement_store.h"

namespace loyalty::settlement::internal {

// Deterministic bytes of `m` (stable across runs, so equal rows compare
// equal).
std::string Serialize(const google::protobuf::Message& m);

template <typename M>
absl::StatusOr<M> Parse(const sql::ResultSet& rs, int col, absl::string_view what) {
  M m;
  if (!m.ParseFromString(db::ReadBlob(rs, col))) return absl::InternalError(absl::StrCat(what, ": unreadable row"));
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

class MysqlTx final : public SettlementTx {
 public:
  explicit MysqlTx(db::Transaction& tx) : tx_(tx) {}

  // --- idempotency (as membership: claim first, then store the outcome) ---
  absl::StatusOr<std::optional<IdempotencyRecord>> ClaimKey(const IdempotencyRecord& claim) override;
  absl::Status SaveOutcome(const IdempotencyRecord& record) override;

  // --- partners and contracts: mysql_partners_store.cc ---
  absl::StatusOr<std::optional<v1::Partner>> GetPartner(const std::string& partner_id, bool for_update) override;
  absl::Status InsertPartner(const v1::Partner& p) override;
  absl::Status UpdatePartner(const v1::Partner& p) override;
  absl::Status TouchPartner(const std::string& partner_id) override;
  absl::StatusOr<std::vector<v1::Partner>> ListPartners(const std::string& after_partner_id, int limit) override;
  absl::StatusOr<std::vector<std::pair<int64_t, v1::Partner>>> ListChangedPartners(int64_t after_version,
                                                                                   int limit) override;
  absl::Status InsertContract(const v1::Contract& c) override;
  absl::StatusOr<std::optional<v1::Contract>> GetContract(const std::string& contract_id) override;
  absl::StatusOr<ContractHistory> ListContracts(const std::string& partner_id) override;

  // --- periods, close accumulation, statements: mysql_period_close_store.cc ---
  absl::Status InsertPeriod(const v1::Period& p) override;
  absl::Status UpdatePeriod(const v1::Period& p) override;
  absl::StatusOr<std::optional<v1::Period>> GetPeriod(const std::string& period_id, bool for_update) override;
  absl::StatusOr<std::vector<v1::Period>> ListPeriods(int limit) override;
  absl::Status AddPoints(const std::string& period_id, const std::vector<PointsCount>& rows) override;
  absl::Status AddMatrix(const std::string& period_id, const std::vector<MatrixCount>& rows) override;
  absl::StatusOr<std::vector<PointsCount>> ListPoints(const std::string& period_id) override;
  absl::StatusOr<std::vector<MatrixCount>> ListMatrix(const std::string& period_id) override;
  absl::Status InsertStatement(const v1::Statement& st) override;
  absl::Status UpdateStatement(const v1::Statement& st) override;
  absl::StatusOr<std::optional<v1::Statement>> GetStatement(const std::string& statement_id) override;
  absl::StatusOr<std::optional<v1::Statement>> GetStatementByKey(const std::string& period_id,
                                                                const std::string& partner_id) override;
  absl::StatusOr<std::vector<std::pair<int64_t, v1::Statement>>> ListStatements(const StatementFilter& f,
                                                                                int64_t before_id,
                                                                                int limit) override;

  // --- prepaid blocks, the journal cursor, alerts: mysql_prepaid_store.cc ---
  absl::Status InsertPointBlock(const v1::PointBlock& b) override;
  absl::StatusOr<std::vector<v1::PointBlock>> ListPointBlocks(const std::string& partner_id, int limit) override;
  absl::StatusOr<std::optional<PrepaidRow>> GetPrepaid(const std::string& partner_id, bool for_update) override;
  absl::StatusOr<std::vector<PrepaidRow>> ListPrepaid(int limit) override;
  absl::Status PutPrepaid(const PrepaidRow& row) override;
  absl::StatusOr<int64_t> GetCursor(const std::string& name, bool for_update) override;
  absl::Status SetCursor(const std::string& name, int64_t position, absl::Time now) override;
  absl::Status InsertAlert(const v1::Alert& a) override;
  absl::StatusOr<std::vector<std::pair<int64_t, v1::Alert>>> ListAlerts(const std::string& partner_id,
                                                                      int64_t before_id, int limit) override;

  // --- disputes: mysql_disputes_store.cc ---
  absl::Status InsertDispute(const v1::Dispute& d) override;
  absl::Status UpdateDispute(const v1::Dispute& d) override;
  absl::StatusOr<std::optional<v1::Dispute>> GetDispute(const std::string& dispute_id, bool for_update) override;
  absl::StatusOr<std::vector<v1::Dispute>> ListStatementDisputes(const std::string& statement_id,
                                                                 int limit) override;
  absl::StatusOr<std::vector<v1::Dispute>> ListAdjustments(const std::string& period_id, int limit) override;
  absl::StatusOr<std::vector<std::pair<int64_t, v1::Dispute>>> ListDisputes(const std::string& partner_id,
                                                                          int64_t before_id, int limit) override;

  // --- API keys: mysql_api_keys_store.cc ---
  absl::Status InsertApiKey(const v1::ApiKey& k, const std::string& key_hash) override;
  absl::Status UpdateApiKey(const v1::ApiKey& k) override;
  absl::StatusOr<std::optional<v1::ApiKey>> GetApiKey(const std::string& key_id, bool for_update) override;
  absl::StatusOr<std::optional<v1::ApiKey>> FindApiKeyByHash(const std::string& key_hash) override;
  absl::StatusOr<std::vector<std::pair<int64_t, v1::ApiKey>>> ListApiKeys(const std::string& partner_id,
                                                                        int64_t before_id, int limit) override;

  // --- audit: mysql_settlement_store.cc ---
  absl::Status InsertAudit(const common::v1::AuditEvent& e) override;
  absl::StatusOr<std::vector<std::pair<int64_t, common::v1::AuditEvent>>> ListAudit(const AuditFilter& f,
                                                                                    int64_t before_id,
                                                                                    int limit) override;

 private:
  // The next snapshot feed version (feed_head, locked until commit).
  absl::StatusOr<int64_t> NextFeedVersion();

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

}  // namespace loyalty::settlement::internal
