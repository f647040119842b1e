#include "services/membership/tiers.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "common/validation/money.h"
#include "services/membership/validation.h"

namespace loyalty::membership {
namespace {

absl::Status Invalid(const std::string& field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

const v1::TierDefinition* ByRank(const v1::TierLadder& ladder, int rank) {
  for (const auto& t : ladder.tiers()) {
    if (t.rank() == rank) return &t;
  }
  return nullptr;
}

// The highest tier the points qualify for.
const v1::TierDefinition& QualifiedTier(const v1::TierLadder& ladder, int64_t points) {
  const v1::TierDefinition* best = &BaseTier(ladder);
  for (const auto& t : ladder.tiers()) {
    if (t.qualifying_points_threshold() <= points && t.rank() > best->rank()) best = &t;
  }
  return *best;
}

}  // namespace

absl::Status ValidateLadder(const v1::TierLadder& ladder) {
  const int window = ladder.qualification_window_months();
  if (window < kMinWindowMonths || window > kMaxWindowMonths) {
    return Invalid("ladder.qualification_window_months", "must be 1..36");
  }
  if (ladder.tiers().empty()) return Invalid("ladder.tiers", "at least the rank-0 tier is required");
  if (ladder.tiers_size() > kMaxTiers) return Invalid("ladder.tiers", "at most 20 tiers");
  absl::flat_hash_set<std::string> ids;
  absl::flat_hash_set<int> ranks;
  for (int i = 0; i < ladder.tiers_size(); ++i) {
    const auto& t = ladder.tiers(i);
    const std::string f = absl::StrCat("ladder.tiers[", i, "]");
    if (t.tier_id().empty() || t.tier_id().size() > kMaxTierIdLength) {
      return Invalid(f + ".tier_id", "must be 1..32 characters");
    }
    for (char c : t.tier_id()) {
      if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '-' && c != '_') {
        return Invalid(f + ".tier_id", "lower-case letters, digits, - and _ only");
      }
    }
    if (!ids.insert(t.tier_id()).second) return Invalid(f + ".tier_id", "duplicate tier_id");
    RETURN_IF_ERROR(NormaliseText(f + ".name", t.name(), 1, kMaxTierNameChars).status());
    if (t.rank() < 0) return Invalid(f + ".rank", "must be >= 0");
    if (!ranks.insert(t.rank()).second) return Invalid(f + ".rank", "duplicate rank");
    if (t.qualifying_points_threshold() < 0) return Invalid(f + ".qualifying_points_threshold", "must be >= 0");
    if (t.rank() == 0 && t.qualifying_points_threshold() != 0) {
      return Invalid(f + ".qualifying_points_threshold", "the rank-0 tier has threshold 0");
    }
    if (t.tier_multiplier_bp() < kMinMultiplierBp || t.tier_multiplier_bp() > kMaxMultiplierBp) {
      return Invalid(f + ".tier_multiplier_bp", "must be 10000..100000");
    }
    if (t.retention_months() < 0 || t.retention_months() > kMaxRetentionMonths) {
      return Invalid(f + ".retention_months", "must be 0..36");
    }
    if (t.has_annual_fee()) {
      RETURN_IF_ERROR(ValidateMoney(f + ".annual_fee", t.annual_fee(), AmountRule::kNonNegative));
    }
  }
  if (!ranks.contains(0)) return Invalid("ladder.tiers", "a rank-0 (base) tier is required");
  v1::TierLadder sorted = SortedLadder(ladder);
  for (int i = 1; i < sorted.tiers_size(); ++i) {
    if (sorted.tiers(i).qualifying_points_threshold() <= sorted.tiers(i - 1).qualifying_points_threshold()) {
      return Invalid(absl::StrCat("ladder.tiers (tier ", sorted.tiers(i).tier_id(), ")"),
                     "qualifying_points_threshold must increase with rank");
    }
  }
  return absl::OkStatus();
}

v1::TierLadder SortedLadder(v1::TierLadder ladder) {
  std::sort(ladder.mutable_tiers()->begin(), ladder.mutable_tiers()->end(),
            [](const auto& a, const auto& b) { return a.rank() < b.rank(); });
  return ladder;
}

const v1::TierDefinition& BaseTier(const v1::TierLadder& ladder) {
  const v1::TierDefinition* base = ByRank(ladder, 0);
  return base != nullptr ? *base : ladder.tiers(0);
}

const v1::TierDefinition* FindTier(const v1::TierLadder& ladder, const std::string& tier_id) {
  for (const auto& t : ladder.tiers()) {
    if (t.tier_id() == tier_id) return &t;
  }
  return nullptr;
}

absl::Time AddMonths(absl::Time t, int months) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  const absl::CivilSecond cs = absl::ToCivilSecond(t, utc);
  const absl::CivilMonth target = absl::CivilMonth(cs) + months;
  const absl::CivilDay last_day = absl::CivilDay(target + 1) - 1;
  const int day = std::min<int>(cs.day(), last_day.day());
  const absl::CivilSecond out(target.year(), target.month(), day, cs.hour(), cs.minute(), cs.second());
  return absl::FromCivil(out, utc) + (t - absl::FromCivil(cs, utc));  // keep sub-second part
}

v1::MemberTier InitialTier(const v1::TierLadder& ladder, absl::Time now) {
  v1::MemberTier tier;
  tier.set_tier_id(BaseTier(ladder).tier_id());
  tier.set_basis(v1::TIER_BASIS_BASE);
  *tier.mutable_since() = ToProtoTime(now);
  DecorateTier(ladder, &tier);
  return tier;
}

void DecorateTier(const v1::TierLadder& ladder, v1::MemberTier* tier) {
  const v1::TierDefinition* def = FindTier(ladder, tier->tier_id());
  if (def == nullptr) return;
  tier->set_tier_name(def->name());
  tier->set_rank(def->rank());
  tier->set_tier_multiplier_bp(def->tier_multiplier_bp());
  const v1::TierDefinition* next = nullptr;
  for (const auto& t : ladder.tiers()) {
    if (t.rank() > def->rank() && (next == nullptr || t.rank() < next->rank())) next = &t;
  }
  tier->set_next_tier_id(next == nullptr ? "" : next->tier_id());
  tier->set_points_to_next_tier(
      next == nullptr ? 0 : std::max<int64_t>(0, next->qualifying_points_threshold() - tier->qualifying_points()));
}

namespace {

// `next` becomes tier `t` as qualified (or base, for rank 0), retained for
// t's retention from `as_of`.
void SetQualified(const v1::MemberTier& current, const v1::TierDefinition& t, absl::Time as_of,
                  v1::MemberTier& next) {
  next.set_tier_id(t.tier_id());
  next.clear_paid_until();
  if (t.rank() == 0) {
    next.set_basis(v1::TIER_BASIS_BASE);
    next.clear_retained_until();
  } else {
    next.set_basis(v1::TIER_BASIS_QUALIFIED);
    absl::Time until = AddMonths(as_of, t.retention_months());
    // Re-qualifying never shortens a retention already earned.
    if (t.tier_id() == current.tier_id() && current.has_retained_until()) {
      until = std::max(until, FromProtoTime(current.retained_until()));
    }
    *next.mutable_retained_until() = ToProtoTime(until);
  }
}

// A paid member: an active paid tier holds (a higher qualified tier still
// upgrades); an expired one gives the tier the points qualify for.
v1::TierChangeReason ApplyPaid(const v1::MemberTier& current, const v1::TierDefinition& held,
                               const v1::TierDefinition& qualified, absl::Time as_of, v1::MemberTier& next) {
  const bool paid_active = current.has_paid_until() && FromProtoTime(current.paid_until()) > as_of;
  if (!paid_active) {
    SetQualified(current, qualified, as_of, next);
    return v1::TIER_CHANGE_REASON_PAID_EXPIRED;
  }
  if (qualified.rank() <= held.rank()) return v1::TIER_CHANGE_REASON_UNSPECIFIED;
  SetQualified(current, qualified, as_of, next);
  // The member paid for a tier until paid_until: the higher tier is kept
  // at least that long, so no later review drops them below what they
  // paid for before it ends.
  if (next.has_retained_until() && FromProtoTime(next.retained_until()) < FromProtoTime(current.paid_until())) {
    *next.mutable_retained_until() = current.paid_until();
  }
  return v1::TIER_CHANGE_REASON_QUALIFIED;
}

// A member whose points fall short of the tier they hold: kept while
// retained, or when already reviewed at or after `as_of` (a review may
// upgrade but never downgrade twice); otherwise dropped exactly one rank.
v1::TierChangeReason ApplyShortfall(const v1::TierLadder& ladder, const v1::MemberTier& current,
                                    const v1::TierDefinition& held, const v1::TierDefinition& qualified,
                                    absl::Time as_of, v1::MemberTier& next) {
  const bool reviewed_already = current.has_evaluated_at() && FromProtoTime(current.evaluated_at()) >= as_of;
  const bool retained = current.has_retained_until() && FromProtoTime(current.retained_until()) > as_of;
  if (retained || reviewed_already) {
    if (retained) next.set_basis(v1::TIER_BASIS_RETAINED);
    if (reviewed_already) *next.mutable_evaluated_at() = current.evaluated_at();
    return v1::TIER_CHANGE_REASON_UNSPECIFIED;
  }
  const v1::TierDefinition* lower = nullptr;
  for (const auto& t : ladder.tiers()) {
    if (t.rank() < held.rank() && (lower == nullptr || t.rank() > lower->rank())) lower = &t;
  }
  if (lower == nullptr) lower = &BaseTier(ladder);
  if (lower->rank() == qualified.rank()) {
    SetQualified(current, *lower, as_of, next);
  } else {
    // Held one rank down without qualifying for it: no retention left, so
    // the next review drops one more rank.
    next.set_tier_id(lower->tier_id());
    next.set_basis(v1::TIER_BASIS_RETAINED);
    *next.mutable_retained_until() = ToProtoTime(as_of);
  }
  return v1::TIER_CHANGE_REASON_DOWNGRADED;
}

// The history row of a member moved from `current` to `next`.
v1::TierChange ChangeOf(const v1::TierLadder& ladder, const v1::MemberTier& current, const v1::MemberTier& next,
                        v1::TierChangeReason reason, int64_t qualifying_points, absl::Time as_of) {
  const absl::Time window_start = AddMonths(as_of, -ladder.qualification_window_months());
  v1::TierChange change;
  change.set_from_tier_id(current.tier_id());
  change.set_to_tier_id(next.tier_id());
  change.set_reason(reason == v1::TIER_CHANGE_REASON_UNSPECIFIED ? v1::TIER_CHANGE_REASON_QUALIFIED : reason);
  change.set_qualifying_points(qualifying_points);
  *change.mutable_window_start_time() = ToProtoTime(window_start);
  *change.mutable_window_end_time() = ToProtoTime(as_of);
  *change.mutable_changed_at() = ToProtoTime(as_of);
  if (next.has_retained_until() && next.basis() != v1::TIER_BASIS_BASE) {
    *change.mutable_valid_until() = next.retained_until();
  }
  return change;
}

}  // namespace

Evaluation EvaluateTier(const v1::TierLadder& ladder, const v1::MemberTier& current,
                        int64_t qualifying_points, absl::Time as_of) {
  const v1::TierDefinition* held = FindTier(ladder, current.tier_id());
  if (held == nullptr) held = &BaseTier(ladder);  // cannot happen: held tiers are never removed
  const v1::TierDefinition& qualified = QualifiedTier(ladder, qualifying_points);

  v1::MemberTier next = current;
  next.set_qualifying_points(qualifying_points);
  *next.mutable_evaluated_at() = ToProtoTime(as_of);
  v1::TierChangeReason reason = v1::TIER_CHANGE_REASON_UNSPECIFIED;
  if (current.basis() == v1::TIER_BASIS_PAID) {
    reason = ApplyPaid(current, *held, qualified, as_of, next);
  } else if (qualified.rank() >= held->rank()) {
    if (qualified.rank() > held->rank()) reason = v1::TIER_CHANGE_REASON_QUALIFIED;
    SetQualified(current, qualified, as_of, next);
  } else {
    reason = ApplyShortfall(ladder, current, *held, qualified, as_of, next);
  }

  Evaluation out;
  if (next.tier_id() != current.tier_id()) {
    *next.mutable_since() = ToProtoTime(as_of);
    out.change = ChangeOf(ladder, current, next, reason, qualifying_points, as_of);
  }
  DecorateTier(ladder, &next);
  out.tier = std::move(next);
  return out;
}

}  // namespace loyalty::membership
