#pragma once
// What the settlement domain needs from storage, as a unit of work: the
// domain runs a body against a SettlementTx and the store commits it
// atomically (retrying deadlocks) or rolls it back. All SQL lives in
// mysql_settlement_store.cc and the mysql_*_store.cc files beside it
// (listed in mysql_settlement_tx.h).

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "loyalty/common/v1/common.pb.h"
#include "loyalty/settlement/v1/settlement.pb.h"
#include "services/settlement/statement.h"
#include "common/idempotency/idempotency.h"

namespace loyalty::settlement {

// A remembered answer to an idempotent request.
using IdempotencyRecord = idempotency::Record;

struct StatementFilter {
  std::string period_id;  // "" = any
  std::string partner_id;  // "" = any
};

// A prepaid partner's position (prepaid_balances).
struct PrepaidRow {
  std::string partner_id;
  int64_t purchased_points = 0;
  int64_t issued_points = 0;
  int alert_level = 0;  // 0 none, 1 low balance, 2 exhausted
};

struct AuditFilter {
  std::string entity_type;
  std::string entity_id;
  std::string actor_key_id;
  std::optional<absl::Time> start;
  std::optional<absl::Time> end;
};

class SettlementTx {
 public:
  virtual ~SettlementTx() = default;

  // --- idempotency (as membership: claim first, then store the outcome) ---
  // The stored record for (scope, key), or nullopt after inserting a claim
  // in this transaction. ABORTED when a concurrent claim is detected.
  virtual absl::StatusOr<std::optional<IdempotencyRecord>> ClaimKey(const IdempotencyRecord& claim) = 0;
  virtual absl::Status SaveOutcome(const IdempotencyRecord& record) = 0;

  // --- partners ---
  virtual absl::StatusOr<std::optional<v1::Partner>> GetPartner(const std::string& partner_id, bool for_update) = 0;
  // Both bump the snapshot feed version of the partner. Insert:
  // ALREADY_EXISTS when the id is taken.
  virtual absl::Status InsertPartner(const v1::Partner& partner) = 0;
  virtual absl::Status UpdatePartner(const v1::Partner& partner) = 0;
  // Bumps the partner's snapshot version (a contract was added).
  virtual absl::Status TouchPartner(const std::string& partner_id) = 0;
  // By partner_id, after `after_partner_id`.
  virtual absl::StatusOr<std::vector<v1::Partner>> ListPartners(const std::string& after_partner_id, int limit) = 0;
  // (snapshot_version, partner) with version > after_version, ascending.
  virtual absl::StatusOr<std::vector<std::pair<int64_t, v1::Partner>>> ListChangedPartners(int64_t after_version,
                                                                                           int limit) = 0;

  // --- contracts (insert only) ---
  virtual absl::Status InsertContract(const v1::Contract& contract) = 0;
  virtual absl::StatusOr<std::optional<v1::Contract>> GetContract(const std::string& contract_id) = 0;
  // All versions of a partner, oldest first (effective_until not set).
  virtual absl::StatusOr<ContractHistory> ListContracts(const std::string& partner_id) = 0;

  // --- periods ---
  // ALREADY_EXISTS when the name is taken.
  virtual absl::Status InsertPeriod(const v1::Period& period) = 0;
  virtual absl::Status UpdatePeriod(const v1::Period& period) = 0;
  virtual absl::StatusOr<std::optional<v1::Period>> GetPeriod(const std::string& period_id, bool for_update) = 0;
  // Every period, by start_time (bounded by the caller's limit).
  virtual absl::StatusOr<std::vector<v1::Period>> ListPeriods(int limit) = 0;

  // --- close accumulation ---
  virtual absl::Status AddPoints(const std::string& period_id, const std::vector<PointsCount>& rows) = 0;
  virtual absl::Status AddMatrix(const std::string& period_id, const std::vector<MatrixCount>& rows) = 0;
  virtual absl::StatusOr<std::vector<PointsCount>> ListPoints(const std::string& period_id) = 0;
  virtual absl::StatusOr<std::vector<MatrixCount>> ListMatrix(const std::string& period_id) = 0;

  // --- statements ---
  virtual absl::Status InsertStatement(const v1::Statement& statement) = 0;
  virtual absl::Status UpdateStatement(const v1::Statement& statement) = 0;
  virtual absl::StatusOr<std::optional<v1::Statement>> GetStatement(const std::string& statement_id) = 0;
  virtual absl::StatusOr<std::optional<v1::Statement>> GetStatementByKey(const std::string& period_id,
                                                                        const std::string& partner_id) = 0;
  // Row id and statement, row id descending, below `before_id` (0 = from the
  // newest), at most `limit`.
  virtual absl::StatusOr<std::vector<std::pair<int64_t, v1::Statement>>> ListStatements(
      const StatementFilter& filter, int64_t before_id, int limit) = 0;

  // --- prepaid blocks, the journal cursor, alerts ---
  virtual absl::Status InsertPointBlock(const v1::PointBlock& block) = 0;
  // Newest first, at most `limit`.
  virtual absl::StatusOr<std::vector<v1::PointBlock>> ListPointBlocks(const std::string& partner_id, int limit) = 0;
  virtual absl::StatusOr<std::optional<PrepaidRow>> GetPrepaid(const std::string& partner_id, bool for_update) = 0;
  // Every prepaid row (bounded by `limit`), by partner_id.
  virtual absl::StatusOr<std::vector<PrepaidRow>> ListPrepaid(int limit) = 0;
  // Inserts or replaces the row.
  virtual absl::Status PutPrepaid(const PrepaidRow& row) = 0;
  // A journal cursor's position; with `for_update`, locked until commit.
  virtual absl::StatusOr<int64_t> GetCursor(const std::string& name, bool for_update) = 0;
  virtual absl::Status SetCursor(const std::string& name, int64_t position, absl::Time now) = 0;
  virtual absl::Status InsertAlert(const v1::Alert& alert) = 0;
  // Newest first, below `before_id` (0 = from the newest); "" = any partner.
  virtual absl::StatusOr<std::vector<std::pair<int64_t, v1::Alert>>> ListAlerts(const std::string& partner_id,
                                                                              int64_t before_id, int limit) = 0;

  // --- disputes ---
  virtual absl::Status InsertDispute(const v1::Dispute& dispute) = 0;
  virtual absl::Status UpdateDispute(const v1::Dispute& dispute) = 0;
  virtual absl::StatusOr<std::optional<v1::Dispute>> GetDispute(const std::string& dispute_id, bool for_update) = 0;
  // A statement's disputes, oldest first (bounded by `limit`).
  virtual absl::StatusOr<std::vector<v1::Dispute>> ListStatementDisputes(const std::string& statement_id,
                                                                         int limit) = 0;
  // Accepted disputes whose adjustment a period carries, oldest first.
  virtual absl::StatusOr<std::vector<v1::Dispute>> ListAdjustments(const std::string& period_id, int limit) = 0;
  // Newest first, below `before_id` (0 = from the newest); "" = any partner.
  virtual absl::StatusOr<std::vector<std::pair<int64_t, v1::Dispute>>> ListDisputes(const std::string& partner_id,
                                                                                  int64_t before_id, int limit) = 0;

  // --- API keys (metadata and the secret's SHA-256, never the secret) ---
  virtual absl::Status InsertApiKey(const v1::ApiKey& key, const std::string& key_hash) = 0;
  virtual absl::Status UpdateApiKey(const v1::ApiKey& key) = 0;
  virtual absl::StatusOr<std::optional<v1::ApiKey>> GetApiKey(const std::string& key_id, bool for_update) = 0;
  virtual absl::StatusOr<std::optional<v1::ApiKey>> FindApiKeyByHash(const std::string& key_hash) = 0;
  // Newest first, below `before_id` (0 = from the newest); "" = any partner.
  virtual absl::StatusOr<std::vector<std::pair<int64_t, v1::ApiKey>>> ListApiKeys(const std::string& partner_id,
                                                                                int64_t before_id, int limit) = 0;

  // --- audit ---
  virtual absl::Status InsertAudit(const common::v1::AuditEvent& event) = 0;
  // Newest first, below `before_id` (0 = from the newest).
  virtual absl::StatusOr<std::vector<std::pair<int64_t, common::v1::AuditEvent>>> ListAudit(
      const AuditFilter& filter, int64_t before_id, int limit) = 0;
};

class SettlementStore {
 public:
  virtual ~SettlementStore() = default;
  // Runs `body` in one transaction: commit if it returns OK, roll back
  // otherwise. Deadlocks and other ABORTED conflicts re-run the whole body.
  virtual absl::Status Run(absl::string_view context, const std::function<absl::Status(SettlementTx&)>& body) = 0;
};
using SettlementStorePtr = std::unique_ptr<SettlementStore>;

}  // namespace loyalty::settlement
