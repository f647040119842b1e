#pragma once
// Consents: a member's channel consents (coalition-wide or per partner),
// data-sharing consents per partner, the accepted terms and privacy
// versions, and their history. Domain code: no gRPC or MySQL includes.
//
// Invariants:
// - Every change is also a ConsentEvent (history), written in the same
//   transaction, and an audit event with the before and after images.
// - A partner records consents with source PARTNER, and only its own or
//   coalition-wide channel consents and data sharing naming itself; it sees
//   consents naming itself and coalition-wide ones, nothing else.
// - Only known terms and privacy versions (MembershipOptions) are accepted.
//
// Mutations are idempotent by key (Mutate, membership_shared.h).
// Thread-safety: no state of its own; safe from any number of threads.

#include "absl/status/statusor.h"
#include "common/auth/principal.h"
#include "loyalty/membership/v1/membership.pb.h"
#include "services/membership/membership_deps.h"

namespace loyalty::membership {

class Consents {
 public:
  using Principal = auth::Principal;

  explicit Consents(MembershipDeps& deps) : deps_(deps) {}

  absl::StatusOr<v1::GetConsentsResponse> GetConsents(const Principal& p, const v1::GetConsentsRequest& r);
  absl::StatusOr<v1::UpdateConsentsResponse> UpdateConsents(const Principal& p, const v1::UpdateConsentsRequest& r);

 private:
  MembershipDeps& deps_;
};

}  // namespace loyalty::membership
