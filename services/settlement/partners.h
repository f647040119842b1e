#pragma once
// The partner directory: create, read, list, update and change the status
// of partners, and the snapshot feed (ListPartnerSnapshots) that the ledger
// follows for each partner's status, currency, contracts in force and
// prepaid balance.
//
// Invariants: a partner id is a lower-case slug, never "operator"; a new
// partner starts ONBOARDING at version 1, each change bumps its version and
// its snapshot feed version; status moves only ONBOARDING -> ACTIVE <->
// SUSPENDED, and from any of these to TERMINATED (final); ACTIVE needs a
// contract in force. Every change is idempotent by key and audited. Partner callers see
// only their own partner.
//
// Thread-safe: no mutable state besides the store.

#include "absl/status/statusor.h"
#include "common/auth/principal.h"
#include "loyalty/settlement/v1/settlement.pb.h"
#include "services/settlement/settlement_deps.h"

namespace loyalty::settlement {

class Partners {
 public:
  using Principal = auth::Principal;

  explicit Partners(const SettlementDeps& deps);

  absl::StatusOr<v1::CreatePartnerResponse> CreatePartner(const Principal& p, const v1::CreatePartnerRequest& r);
  absl::StatusOr<v1::GetPartnerResponse> GetPartner(const Principal& p, const v1::GetPartnerRequest& r);
  absl::StatusOr<v1::ListPartnersResponse> ListPartners(const Principal& p, const v1::ListPartnersRequest& r);
  absl::StatusOr<v1::UpdatePartnerResponse> UpdatePartner(const Principal& p, const v1::UpdatePartnerRequest& r);
  absl::StatusOr<v1::SetPartnerStatusResponse> SetPartnerStatus(const Principal& p,
                                                                const v1::SetPartnerStatusRequest& r);
  absl::StatusOr<v1::ListPartnerSnapshotsResponse> ListPartnerSnapshots(const Principal& p,
                                                                        const v1::ListPartnerSnapshotsRequest& r);

 private:
  const SettlementDeps& deps_;
};

}  // namespace loyalty::settlement
