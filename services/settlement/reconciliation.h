#pragma once
// Reconciliation of a closed period against the ledger: four checks, each
// reported with the items it checked and its mismatches.
//   1. statement totals = the ledger's transfers in the period's range;
//   2. the hash chain over the range ends at the statements' end hash;
//   3. prepaid balances = their blocks and the ledger's prepaid issuance;
//   4. points liability: member balances = open lots = the issuers' sum.
// Any mismatch is logged and stored as an alert. Nothing else is written.
//
// Thread-safe: no mutable state besides the store and the ledger client.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/auth/principal.h"
#include "loyalty/settlement/v1/settlement.pb.h"
#include "services/settlement/settlement_deps.h"

namespace loyalty::settlement {

class Reconciliation {
 public:
  using Principal = auth::Principal;

  explicit Reconciliation(const SettlementDeps& deps);

  absl::StatusOr<v1::ReconcileResponse> Reconcile(const Principal& p, const v1::ReconcileRequest& r);

 private:
  // The prepaid side of check 3, read in one transaction: the balances, the
  // sum of each one's blocks, every partner's contracts, and the follower's
  // cursor.
  struct PrepaidState {
    std::vector<PrepaidRow> rows;
    std::map<std::string, int64_t> blocks;
    std::map<std::string, ContractHistory> contracts;
    int64_t as_of = 0;
  };

  // The checks, in report order; each appends its mismatches and result.
  absl::Status CheckStatementTotals(const v1::Period& period, const std::vector<v1::Statement>& statements,
                                    v1::ReconcileResponse& out);
  absl::Status CheckHashChain(const v1::Period& period, v1::ReconcileResponse& out);
  absl::Status CheckPrepaidBlocks(v1::ReconcileResponse& out);
  absl::Status CheckPointsLiability(v1::ReconcileResponse& out);
  absl::StatusOr<PrepaidState> LoadPrepaidState();
  // Logs the mismatches and stores a RECONCILIATION_MISMATCH alert.
  absl::Status RaiseMismatchAlert(const v1::Period& period, const v1::ReconcileResponse& out);

  const SettlementDeps& deps_;
};

}  // namespace loyalty::settlement
