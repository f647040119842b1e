#pragma once
// Settlement's use cases, as the gRPC adapter calls them. Domain code: no
// gRPC or MySQL includes; storage goes through SettlementStore, the ledger
// through LedgerClient.
//
// Every mutation is idempotent by key (scoped to the calling credential):
// the request is fingerprinted, its answer (a business failure included) is
// stored in the same transaction as its effects, and a retry gets the same
// answer. INVALID_ARGUMENT and PERMISSION_DENIED are not stored, so a caller
// can correct the request and reuse the key (as membership).
//
// Roles are checked by the adapter's RpcGuard against the proto's
// allowed_roles; this class scopes partner callers to their own partner_id.
//
// ClosePeriod is resumable (docs/adr/0010-settlement.md): each journal page
// is counted in the same transaction that advances the period's
// processed_sequence, so a crash or a deadline between pages loses nothing
// and counts nothing twice; calling again continues from processed_sequence.
//
// Thread-safe: no mutable state besides the store and the ledger client.

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/auth/principal.h"
#include "loyalty/settlement/v1/settlement.pb.h"
#include "services/settlement/ledger_client.h"
#include "services/settlement/settlement_store.h"

namespace loyalty::settlement {

inline constexpr int kMaxJournalPageSize = 5000;

struct SettlementOptions {
  // Journal transfers counted per close transaction.
  int close_page_size = 2000;
  std::function<absl::Time()> now = [] { return absl::Now(); };
};

class Settlement {
 public:
  using Principal = auth::Principal;

  Settlement(SettlementStore& store, LedgerClient& ledger, SettlementOptions options = {})
      : store_(store), ledger_(ledger), options_(std::move(options)) {}

  // --- partners and contracts ---
  absl::StatusOr<v1::CreatePartnerResponse> CreatePartner(const Principal& p, const v1::CreatePartnerRequest& r);
  absl::StatusOr<v1::GetPartnerResponse> GetPartner(const Principal& p, const v1::GetPartnerRequest& r);
  absl::StatusOr<v1::ListPartnersResponse> ListPartners(const Principal& p, const v1::ListPartnersRequest& r);
  absl::StatusOr<v1::UpdatePartnerResponse> UpdatePartner(const Principal& p, const v1::UpdatePartnerRequest& r);
  absl::StatusOr<v1::SetPartnerStatusResponse> SetPartnerStatus(const Principal& p,
                                                                const v1::SetPartnerStatusRequest& r);
  absl::StatusOr<v1::CreateContractVersionResponse> CreateContractVersion(
      const Principal& p, const v1::CreateContractVersionRequest& r);
  absl::StatusOr<v1::GetContractResponse> GetContract(const Principal& p, const v1::GetContractRequest& r);
  absl::StatusOr<v1::ListContractsResponse> ListContracts(const Principal& p, const v1::ListContractsRequest& r);
  absl::StatusOr<v1::ListPartnerSnapshotsResponse> ListPartnerSnapshots(const Principal& p,
                                                                        const v1::ListPartnerSnapshotsRequest& r);

  // --- prepaid blocks and alerts ---
  absl::StatusOr<v1::PurchasePointBlockResponse> PurchasePointBlock(const Principal& p,
                                                                    const v1::PurchasePointBlockRequest& r);
  absl::StatusOr<v1::GetPrepaidBalanceResponse> GetPrepaidBalance(const Principal& p,
                                                                  const v1::GetPrepaidBalanceRequest& r);
  absl::StatusOr<v1::ListAlertsResponse> ListAlerts(const Principal& p, const v1::ListAlertsRequest& r);

  // Background work (main.cc runs it in a loop): one pass of the prepaid
  // journal follower. Reads the page after the durable 'prepaid' cursor,
  // adds prepaid partners' net issuance to their balances, raises
  // low-balance and exhausted alerts (and logs them), and advances the
  // cursor, all in one transaction. Returns the transfers consumed.
  absl::StatusOr<int> FollowJournal(int page_size);

  // --- credentials ---
  absl::StatusOr<v1::CreateApiKeyResponse> CreateApiKey(const Principal& p, const v1::CreateApiKeyRequest& r);
  absl::StatusOr<v1::RotateApiKeyResponse> RotateApiKey(const Principal& p, const v1::RotateApiKeyRequest& r);
  absl::StatusOr<v1::RevokeApiKeyResponse> RevokeApiKey(const Principal& p, const v1::RevokeApiKeyRequest& r);
  absl::StatusOr<v1::ListApiKeysResponse> ListApiKeys(const Principal& p, const v1::ListApiKeysRequest& r);
  absl::StatusOr<v1::AuthenticateApiKeyResponse> AuthenticateApiKey(const Principal& p,
                                                                    const v1::AuthenticateApiKeyRequest& r);

  // --- periods and statements ---
  absl::StatusOr<v1::CreatePeriodResponse> CreatePeriod(const Principal& p, const v1::CreatePeriodRequest& r);
  absl::StatusOr<v1::ClosePeriodResponse> ClosePeriod(const Principal& p, const v1::ClosePeriodRequest& r);
  absl::StatusOr<v1::FinalizePeriodResponse> FinalizePeriod(const Principal& p, const v1::FinalizePeriodRequest& r);
  absl::StatusOr<v1::GetPeriodResponse> GetPeriod(const Principal& p, const v1::GetPeriodRequest& r);
  absl::StatusOr<v1::ListPeriodsResponse> ListPeriods(const Principal& p, const v1::ListPeriodsRequest& r);
  absl::StatusOr<v1::GetStatementResponse> GetStatement(const Principal& p, const v1::GetStatementRequest& r);
  absl::StatusOr<v1::ListStatementsResponse> ListStatements(const Principal& p, const v1::ListStatementsRequest& r);
  absl::StatusOr<v1::ComputeNettingResponse> ComputeNetting(const Principal& p, const v1::ComputeNettingRequest& r);
  absl::StatusOr<v1::ExportPeriodResponse> ExportPeriod(const Principal& p, const v1::ExportPeriodRequest& r);
  absl::StatusOr<v1::DisputeStatementLineResponse> DisputeStatementLine(const Principal& p,
                                                                        const v1::DisputeStatementLineRequest& r);
  absl::StatusOr<v1::ResolveDisputeResponse> ResolveDispute(const Principal& p, const v1::ResolveDisputeRequest& r);
  absl::StatusOr<v1::ListDisputesResponse> ListDisputes(const Principal& p, const v1::ListDisputesRequest& r);
  absl::StatusOr<v1::ReconcileResponse> Reconcile(const Principal& p, const v1::ReconcileRequest& r);
  absl::StatusOr<v1::ListAuditEventsResponse> ListAuditEvents(const Principal& p,
                                                              const v1::ListAuditEventsRequest& r);

 private:
  template <typename Response>
  using Body = std::function<absl::Status(SettlementTx&, Response&)>;

  template <typename Response>
  absl::StatusOr<Response> Mutate(const Principal& p, absl::string_view method, const std::string& key,
                                  const google::protobuf::Message& request, Body<Response> body);

  // Moves an OPEN period to CLOSING (fixing its range) and counts journal
  // pages up to the cut-off. Safe to repeat.
  absl::Status CountJournal(const Principal& p, const std::string& period_id, int64_t requested_cutoff);
  absl::Status StartClose(const Principal& p, const v1::Period& period, int64_t requested_cutoff);
  // Every statement of a period (bounded), by partner_id.
  absl::StatusOr<std::vector<v1::Statement>> PeriodStatements(SettlementTx& tx, const std::string& period_id);

  absl::Time Now() const;

  SettlementStore& store_;
  LedgerClient& ledger_;
  SettlementOptions options_;
};

}  // namespace loyalty::settlement
