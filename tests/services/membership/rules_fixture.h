#pragma once
// Helpers shared by the unit tests of membership's pure rules
// (validation_test.cc, codes_test.cc, tiers_test.cc, segments_test.cc): status
// assertions, dates, and the test tier ladder.

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/time/proto_time.h"
#include "gtest/gtest.h"
#include "loyalty/common/v1/common.pb.h"
#include "loyalty/membership/v1/membership.pb.h"
#include "services/membership/tiers.h"

namespace loyalty::membership {

// INVALID_ARGUMENT whose message starts with "<field>: " (and, if given,
// contains `fragment`).
inline ::testing::AssertionResult InvalidNaming(const absl::Status& s, absl::string_view field,
                                                absl::string_view fragment = "") {
  if (s.code() != absl::StatusCode::kInvalidArgument) {
    return ::testing::AssertionFailure() << "expected INVALID_ARGUMENT, got " << s;
  }
  const std::string prefix = absl::StrCat(field, ": ");
  if (!absl::StartsWith(s.message(), prefix)) {
    return ::testing::AssertionFailure() << "message does not start with \"" << prefix << "\": " << s;
  }
  if (!fragment.empty() && !absl::StrContains(s.message(), fragment)) {
    return ::testing::AssertionFailure() << "message does not contain \"" << fragment << "\": " << s;
  }
  return ::testing::AssertionSuccess();
}

template <typename T>
::testing::AssertionResult InvalidNaming(const absl::StatusOr<T>& s, absl::string_view field,
                                         absl::string_view fragment = "") {
  if (s.ok()) return ::testing::AssertionFailure() << "expected an error, got a value";
  return InvalidNaming(s.status(), field, fragment);
}

inline absl::Time Utc(int y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone());
}

inline common::v1::Date MakeDate(int y, int m, int d) {
  common::v1::Date date;
  date.set_year(y);
  date.set_month(m);
  date.set_day(d);
  return date;
}

inline std::string Repeat(absl::string_view s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) absl::StrAppend(&out, s);
  return out;
}

inline v1::TierDefinition Def(const std::string& id, const std::string& name, int rank, int64_t threshold,
                              int64_t multiplier_bp, int retention_months) {
  v1::TierDefinition t;
  t.set_tier_id(id);
  t.set_name(name);
  t.set_rank(rank);
  t.set_qualifying_points_threshold(threshold);
  t.set_tier_multiplier_bp(multiplier_bp);
  t.set_retention_months(retention_months);
  return t;
}

// silver (rank 0, 0, 1.0x), gold (rank 1, 2000, 1.25x, 12 months),
// platinum (rank 2, 10000, 1.5x, 12 months); 12-month window.
inline v1::TierLadder TestLadder() {
  v1::TierLadder ladder;
  ladder.set_version(1);
  ladder.set_qualification_window_months(12);
  *ladder.add_tiers() = Def("silver", "Silver", 0, 0, 10'000, 0);
  *ladder.add_tiers() = Def("gold", "Gold", 1, 2'000, 12'500, 12);
  *ladder.add_tiers() = Def("platinum", "Platinum", 2, 10'000, 15'000, 12);
  return ladder;
}

// The same tiers, listed out of rank order.
inline v1::TierLadder ShuffledTestLadder() {
  v1::TierLadder sorted = TestLadder();
  v1::TierLadder ladder = sorted;
  ladder.clear_tiers();
  *ladder.add_tiers() = sorted.tiers(2);
  *ladder.add_tiers() = sorted.tiers(0);
  *ladder.add_tiers() = sorted.tiers(1);
  return ladder;
}

// A stored member tier.
inline v1::MemberTier Held(const std::string& tier_id, v1::TierBasis basis, absl::Time since,
                           std::optional<absl::Time> retained_until = std::nullopt,
                           std::optional<absl::Time> paid_until = std::nullopt,
                           std::optional<absl::Time> evaluated_at = std::nullopt) {
  v1::MemberTier t;
  t.set_tier_id(tier_id);
  t.set_basis(basis);
  *t.mutable_since() = ToProtoTime(since);
  if (retained_until) *t.mutable_retained_until() = ToProtoTime(*retained_until);
  if (paid_until) *t.mutable_paid_until() = ToProtoTime(*paid_until);
  if (evaluated_at) *t.mutable_evaluated_at() = ToProtoTime(*evaluated_at);
  DecorateTier(TestLadder(), &t);
  return t;
}

inline int RankOf(const v1::TierLadder& ladder, const std::string& tier_id) {
  const v1::TierDefinition* t = FindTier(ladder, tier_id);
  return t == nullptr ? -1 : t->rank();
}

// The highest tier whose threshold is <= points, computed independently of
// tiers.cc.
inline const v1::TierDefinition* ExpectedQualified(const v1::TierLadder& ladder, int64_t points) {
  const v1::TierDefinition* best = nullptr;
  for (const auto& t : ladder.tiers()) {
    if (t.qualifying_points_threshold() <= points && (best == nullptr || t.rank() > best->rank())) best = &t;
  }
  return best;
}

}  // namespace loyalty::membership
