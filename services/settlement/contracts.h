#pragma once
// Partner contracts: versions are created, read and listed, never edited.
//
// Invariants: versions of one partner are numbered 1, 2, ... under the
// partner's row lock, each effective strictly after the previous one and
// never inside or before a period already closing or closed; the terms are
// in the partner's settlement currency. Creation is idempotent by key and
// audited. Partner callers see only their own contracts (another partner's
// contract is NOT_FOUND).
//
// Thread-safe: no mutable state besides the store.

#include "absl/status/statusor.h"
#include "common/auth/principal.h"
#include "loyalty/settlement/v1/settlement.pb.h"
#include "services/settlement/settlement_deps.h"

namespace loyalty::settlement {

class Contracts {
 public:
  using Principal = auth::Principal;

  explicit Contracts(const SettlementDeps& deps);

  absl::StatusOr<v1::CreateContractVersionResponse> CreateContractVersion(
      const Principal& p, const v1::CreateContractVersionRequest& r);
  absl::StatusOr<v1::GetContractResponse> GetContract(const Principal& p, const v1::GetContractRequest& r);
  absl::StatusOr<v1::ListContractsResponse> ListContracts(const Principal& p, const v1::ListContractsRequest& r);

 private:
  const SettlementDeps& deps_;
};

}  // namespace loyalty::settlement
