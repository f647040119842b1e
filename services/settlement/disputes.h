#pragma once
// Disputes of statement lines: open, resolve and list.
//
// Invariants: amounts of a statement are never edited; a dispute only
// changes the statement's status (DISPUTED while one is open, ADJUSTED once
// one was accepted, FINAL otherwise) and the line's dispute reference. An
// accepted dispute's adjustment, in the statement's currency, is carried by
// the next open period. One open dispute per line. Every change is
// idempotent by key and audited.
//
// Thread-safe: no mutable state besides the store.

#include "absl/status/statusor.h"
#include "common/auth/principal.h"
#include "loyalty/settlement/v1/settlement.pb.h"
#include "services/settlement/settlement_deps.h"

namespace loyalty::settlement {

class Disputes {
 public:
  using Principal = auth::Principal;

  explicit Disputes(const SettlementDeps& deps);

  absl::StatusOr<v1::DisputeStatementLineResponse> DisputeStatementLine(const Principal& p,
                                                                        const v1::DisputeStatementLineRequest& r);
  absl::StatusOr<v1::ResolveDisputeResponse> ResolveDispute(const Principal& p, const v1::ResolveDisputeRequest& r);
  absl::StatusOr<v1::ListDisputesResponse> ListDisputes(const Principal& p, const v1::ListDisputesRequest& r);

 private:
  const SettlementDeps& deps_;
};

}  // namespace loyalty::settlement
