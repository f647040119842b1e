#pragma once
// Tier administration: the tier ladder (read by everyone, set by
// backoffice), evaluating one member or all members against it with
// qualifying points from the ledger, paid tier grants, and a member's tier
// history. The evaluation rule itself is pure and lives in tiers.h. Domain
// code: no gRPC or MySQL includes.
//
// Invariants:
// - Every tier change is a TierChange row written with the member, in one
//   transaction; a change of tier takes a new snapshot feed version.
// - The ledger is asked outside any transaction; its figure is then applied
//   under the member's row lock, and refused (ABORTED) if the ladder's
//   qualification window changed meanwhile.
// - A tier held by any member cannot be removed from the ladder.
// - A paid tier never replaces a higher tier the member already holds.
//
// Mutations are idempotent by key (Mutate, membership_shared.h).
// Thread-safety: no state of its own; safe from any number of threads.

#include "absl/status/statusor.h"
#include "common/auth/principal.h"
#include "loyalty/membership/v1/membership.pb.h"
#include "services/membership/membership_deps.h"

namespace loyalty::membership {

class TierAdmin {
 public:
  using Principal = auth::Principal;

  explicit TierAdmin(MembershipDeps& deps) : deps_(deps) {}

  absl::StatusOr<v1::GetTierLadderResponse> GetTierLadder(const Principal& p);
  absl::StatusOr<v1::SetTierLadderResponse> SetTierLadder(const Principal& p, const v1::SetTierLadderRequest& r);
  absl::StatusOr<v1::EvaluateTierResponse> EvaluateTier(const Principal& p, const v1::EvaluateTierRequest& r);
  // One resumable batch of members (resume_token names where the next
  // begins and the as_of of the run).
  absl::StatusOr<v1::RunTierEvaluationResponse> RunTierEvaluation(const Principal& p,
                                                                  const v1::RunTierEvaluationRequest& r);
  absl::StatusOr<v1::GrantPaidTierResponse> GrantPaidTier(const Principal& p, const v1::GrantPaidTierRequest& r);
  absl::StatusOr<v1::ListTierHistoryResponse> ListTierHistory(const Principal& p,
                                                              const v1::ListTierHistoryRequest& r);

 private:
  MembershipDeps& deps_;
};

}  // namespace loyalty::membership
