#pragma once
// Members: enrolment, reading and looking a member up (by card, phone or
// email), updating details and status, cards (issue, replace, block), and
// the member snapshot feed the ledger caches (ListMemberSnapshots,
// GetMemberSnapshot). Domain code: no gRPC or MySQL includes.
//
// Invariants:
// - Email and phone are each held by at most one member; a duplicate is
//   ALREADY_EXISTS naming the holder only in the kExistingMemberIdKey
//   payload. A member keeps an email or a phone.
// - Enrolment writes the member, one active card, its consents and terms,
//   its initial tier change and a pending referral in one transaction.
// - A closed member is not changed (FAILED_PRECONDITION).
// - A change to a snapshot field (status, tier, birth month, enrolling
//   partner) takes the next feed version (SaveMember).
// - Partners see only members visible to them, redacted (membership_shared.h);
//   each backoffice read of personal data is written to the audit log.
//
// Mutations are idempotent by key (Mutate, membership_shared.h).
// Thread-safety: no state of its own; safe from any number of threads.

#include "absl/status/statusor.h"
#include "common/auth/principal.h"
#include "loyalty/membership/v1/membership.pb.h"
#include "services/membership/membership_deps.h"

namespace loyalty::membership {

class Members {
 public:
  using Principal = auth::Principal;

  explicit Members(MembershipDeps& deps) : deps_(deps) {}

  absl::StatusOr<v1::EnrolResponse> Enrol(const Principal& p, const v1::EnrolRequest& r);
  absl::StatusOr<v1::GetMemberResponse> GetMember(const Principal& p, const v1::GetMemberRequest& r);
  absl::StatusOr<v1::LookupMemberResponse> LookupMember(const Principal& p, const v1::LookupMemberRequest& r);
  absl::StatusOr<v1::UpdateMemberResponse> UpdateMember(const Principal& p, const v1::UpdateMemberRequest& r);
  absl::StatusOr<v1::SetMemberStatusResponse> SetMemberStatus(const Principal& p,
                                                              const v1::SetMemberStatusRequest& r);
  absl::StatusOr<v1::IssueCardResponse> IssueCard(const Principal& p, const v1::IssueCardRequest& r);
  absl::StatusOr<v1::BlockCardResponse> BlockCard(const Principal& p, const v1::BlockCardRequest& r);

  // The snapshot feed (version-ordered) and one member's snapshot.
  absl::StatusOr<v1::ListMemberSnapshotsResponse> ListMemberSnapshots(const Principal& p,
                                                                      const v1::ListMemberSnapshotsRequest& r);
  absl::StatusOr<v1::GetMemberSnapshotResponse> GetMemberSnapshot(const Principal& p,
                                                                  const v1::GetMemberSnapshotRequest& r);

 private:
  MembershipDeps& deps_;
};

}  // namespace loyalty::membership
