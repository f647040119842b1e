#pragma once
// Privacy: a member's data export (everything membership holds plus the
// ledger's statement), erasure, and the audit log of who read or changed
// personal data. Backoffice only. Domain code: no gRPC or MySQL includes.
//
// Invariants:
// - An export is whole or fails: the ledger part is fetched first, and the
//   export itself is audited.
// - An erasure closes the member, keeps only what the ledger feed and
//   referrals need (id, tier, enrolling partner, language, referral links),
//   and scrubs cards, stored idempotent requests and answers, and audit
//   images in the same transaction. Its own idempotency record names no
//   member, so it survives the scrub; a retry of a scrubbed request is
//   FAILED_PRECONDITION (membership_shared.h).
//
// Mutations are idempotent by key (Mutate, membership_shared.h).
// Thread-safety: no state of its own; safe from any number of threads.

#include "absl/status/statusor.h"
#include "common/auth/principal.h"
#include "loyalty/membership/v1/membership.pb.h"
#include "services/membership/membership_deps.h"

namespace loyalty::membership {

class Privacy {
 public:
  using Principal = auth::Principal;

  explicit Privacy(MembershipDeps& deps) : deps_(deps) {}

  absl::StatusOr<v1::ExportMemberDataResponse> ExportMemberData(const Principal& p,
                                                                const v1::ExportMemberDataRequest& r);
  absl::StatusOr<v1::EraseMemberResponse> EraseMember(const Principal& p, const v1::EraseMemberRequest& r);
  absl::StatusOr<v1::ListAuditEventsResponse> ListAuditEvents(const Principal& p,
                                                              const v1::ListAuditEventsRequest& r);

 private:
  MembershipDeps& deps_;
};

}  // namespace loyalty::membership
