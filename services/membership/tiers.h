#pragma once
// The tier ladder and the evaluation rule. Pure functions over the v1
// messages; no gRPC, no MySQL.
//
// Rule (also in membership.proto):
// - A member qualifies for the highest tier whose threshold is <= their
//   qualifying points in [as_of - window, as_of).
// - Qualifying for a higher tier upgrades at once; qualifying again for the
//   current tier renews its retention (as_of + retention_months).
// - Below the current tier's threshold the member keeps it while retained
//   (as_of < retained_until); after that a review drops them by exactly one
//   rank. A member who does not qualify for the lower tier either holds it
//   as RETAINED with no time left, so the next review drops one more rank.
// - A paid tier holds until paid_until whatever the points; a higher
//   qualified tier still upgrades. When it runs out the member gets the tier
//   their points qualify for.
// - Evaluating twice with the same points and as_of changes nothing.

#include <optional>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "loyalty/membership/v1/membership.pb.h"

namespace loyalty::membership {

namespace v1 = ::loyalty::membership::v1;

inline constexpr int kMinWindowMonths = 1;
inline constexpr int kMaxWindowMonths = 36;
inline constexpr int kMaxRetentionMonths = 36;
inline constexpr int64_t kMinMultiplierBp = 10'000;
inline constexpr int64_t kMaxMultiplierBp = 100'000;
inline constexpr int kMaxTiers = 20;
inline constexpr size_t kMaxTierIdLength = 32;  // of [a-z0-9_-]
inline constexpr size_t kMaxTierNameChars = 64;

// INVALID_ARGUMENT naming the field (e.g. "ladder.tiers[2].rank").
// Sorts nothing; the ladder must list tiers with distinct ranks, rank 0
// present with threshold 0, thresholds strictly increasing with rank.
absl::Status ValidateLadder(const v1::TierLadder& ladder);

// The ladder with its tiers sorted by rank.
v1::TierLadder SortedLadder(v1::TierLadder ladder);

// The rank-0 tier (the ladder must be valid).
const v1::TierDefinition& BaseTier(const v1::TierLadder& ladder);
const v1::TierDefinition* FindTier(const v1::TierLadder& ladder, const std::string& tier_id);

// `t` plus `months` calendar months (UTC; the day is clamped to the month's
// length).
absl::Time AddMonths(absl::Time t, int months);

struct Evaluation {
  v1::MemberTier tier;                // the member's tier afterwards
  std::optional<v1::TierChange> change;  // set when tier_id changed
};

// Evaluates `current` (the member's stored tier) against `qualifying_points`
// earned in the window ending at `as_of`.
Evaluation EvaluateTier(const v1::TierLadder& ladder, const v1::MemberTier& current,
                        int64_t qualifying_points, absl::Time as_of);

// The tier at enrolment: the base tier.
v1::MemberTier InitialTier(const v1::TierLadder& ladder, absl::Time now);

// Fills the display fields (name, rank, multiplier, next tier, points to
// next) of `tier` from the ladder.
void DecorateTier(const v1::TierLadder& ladder, v1::MemberTier* tier);

}  // namespace loyalty::membership
