#pragma once
// The audit trail: every change the other use cases make is recorded in
// the same transaction (Audit in settlement_common.h); this lists it,
// newest first, filtered by entity, actor and time. Read-only.
//
// Thread-safe: no mutable state besides the store.

#include "absl/status/statusor.h"
#include "common/auth/principal.h"
#include "loyalty/settlement/v1/settlement.pb.h"
#include "services/settlement/settlement_deps.h"

namespace loyalty::settlement {

class AuditEvents {
 public:
  using Principal = auth::Principal;

  explicit AuditEvents(const SettlementDeps& deps);

  absl::StatusOr<v1::ListAuditEventsResponse> ListAuditEvents(const Principal& p,
                                                              const v1::ListAuditEventsRequest& r);

 private:
  const SettlementDeps& deps_;
};

}  // namespace loyalty::settlement
