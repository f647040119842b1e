#pragma once
// Referrals as members and partners see them: a member's own referral code
// with the number of members it brought, and the referrals it made. The
// referral itself is written at enrolment (members.h); its reward is granted
// by the journal consumer (journal_consumer.h). Domain code: no gRPC or
// MySQL includes.
//
// Invariants: read-only; a partner sees only members visible to it
// (membership_shared.h).
// Thread-safety: no state of its own; safe from any number of threads.

#include "absl/status/statusor.h"
#include "common/auth/principal.h"
#include "loyalty/membership/v1/membership.pb.h"
#include "services/membership/membership_deps.h"

namespace loyalty::membership {

class Referrals {
 public:
  using Principal = auth::Principal;

  explicit Referrals(MembershipDeps& deps) : deps_(deps) {}

  absl::StatusOr<v1::GetReferralCodeResponse> GetReferralCode(const Principal& p,
                                                              const v1::GetReferralCodeRequest& r);
  absl::StatusOr<v1::ListReferralsResponse> ListReferrals(const Principal& p, const v1::ListReferralsRequest& r);

 private:
  MembershipDeps& deps_;
};

}  // namespace loyalty::membership
