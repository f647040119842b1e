// Unit tests of a pure membership rule (no database, no gRPC): the tier ladder and tier evaluation (tiers.h; the evaluation
// rules are documented at the top of that header).

#include <algorithm>
#include <cstdint>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/time/proto_time.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "loyalty/common/v1/common.pb.h"
#include "loyalty/membership/v1/membership.pb.h"
#include "services/membership/tiers.h"
#include "services/membership/validation.h"
#include "tests/services/membership/rules_fixture.h"

namespace loyalty::membership {
namespace {

using ::google::protobuf::util::MessageDifferencer;

// ===========================================================================
// tiers.h: ValidateLadder
// ===========================================================================

TEST(ValidateLadderTest, TestLadderIsValid) {
  EXPECT_TRUE(ValidateLadder(TestLadder()).ok()) << ValidateLadder(TestLadder());
  // Listed out of rank order is fine: nothing requires sorted input.
  EXPECT_TRUE(ValidateLadder(ShuffledTestLadder()).ok()) << ValidateLadder(ShuffledTestLadder());
  // A base tier alone is a ladder.
  v1::TierLadder base_only;
  base_only.set_qualification_window_months(12);
  *base_only.add_tiers() = Def("member", "Member", 0, 0, 10'000, 0);
  EXPECT_TRUE(ValidateLadder(base_only).ok());
}

TEST(ValidateLadderTest, WindowOneToThirtySix) {
  for (int w : {1, 12, 36}) {
    v1::TierLadder l = TestLadder();
    l.set_qualification_window_months(w);
    EXPECT_TRUE(ValidateLadder(l).ok()) << w;
  }
  for (int w : {0, -1, 37, 120}) {
    v1::TierLadder l = TestLadder();
    l.set_qualification_window_months(w);
    EXPECT_TRUE(InvalidNaming(ValidateLadder(l), "ladder.qualification_window_months")) << w;
  }
}

TEST(ValidateLadderTest, TierCount) {
  v1::TierLadder l = TestLadder();
  l.clear_tiers();
  EXPECT_TRUE(InvalidNaming(ValidateLadder(l), "ladder.tiers"));
  for (int i = 0; i < kMaxTiers; ++i) {
    *l.add_tiers() = Def(absl::StrCat("t", i), absl::StrCat("T", i), i, i * 100, 10'000, 1);
  }
  EXPECT_TRUE(ValidateLadder(l).ok()) << ValidateLadder(l);
  *l.add_tiers() = Def("t20", "T20", 20, 2000, 10'000, 1);
  EXPECT_TRUE(InvalidNaming(ValidateLadder(l), "ladder.tiers", "20"));
}

TEST(ValidateLadderTest, TierIdRules) {
  for (const std::string& bad : {std::string(""), std::string("Gold"), std::string("gold tier"), std::string("gold!"),
                                 std::string("g.old"), Repeat("g", 33)}) {
    v1::TierLadder l = TestLadder();
    l.mutable_tiers(1)->set_tier_id(bad);
    EXPECT_TRUE(InvalidNaming(ValidateLadder(l), "ladder.tiers[1].tier_id")) << bad;
  }
  for (const std::string& ok : {std::string("gold-2"), std::string("gold_2"), Repeat("g", 32)}) {
    v1::TierLadder l = TestLadder();
    l.mutable_tiers(1)->set_tier_id(ok);
    EXPECT_TRUE(ValidateLadder(l).ok()) << ok;
  }
}

TEST(ValidateLadderTest, DuplicateTierId) {
  v1::TierLadder l = TestLadder();
  l.mutable_tiers(2)->set_tier_id("gold");
  EXPECT_TRUE(InvalidNaming(ValidateLadder(l), "ladder.tiers[2].tier_id", "duplicate"));
}

TEST(ValidateLadderTest, NameOneToSixtyFour) {
  v1::TierLadder l = TestLadder();
  l.mutable_tiers(2)->set_name("");
  EXPECT_TRUE(InvalidNaming(ValidateLadder(l), "ladder.tiers[2].name"));
  l.mutable_tiers(2)->set_name(Repeat("P", 65));
  EXPECT_TRUE(InvalidNaming(ValidateLadder(l), "ladder.tiers[2].name"));
  l.mutable_tiers(2)->set_name(Repeat("P", 64));
  EXPECT_TRUE(ValidateLadder(l).ok());
}

TEST(ValidateLadderTest, RankRules) {
  v1::TierLadder l = TestLadder();
  l.mutable_tiers(1)->set_rank(-1);
  EXPECT_TRUE(InvalidNaming(ValidateLadder(l), "ladder.tiers[1].rank"));

  l = TestLadder();
  l.mutable_tiers(2)->set_rank(1);
  EXPECT_TRUE(InvalidNaming(ValidateLadder(l), "ladder.tiers[2].rank", "duplicate"));

  // Ranks need not be contiguous.
  l = TestLadder();
  l.mutable_tiers(1)->set_rank(5);
  l.mutable_tiers(2)->set_rank(10);
  EXPECT_TRUE(ValidateLadder(l).ok()) << ValidateLadder(l);
}

TEST(ValidateLadderTest, RankZeroRequiredWithThresholdZero) {
  v1::TierLadder l = TestLadder();
  l.mutable_tiers(0)->set_rank(3);
  l.mutable_tiers(0)->set_qualifying_points_threshold(20'000);
  EXPECT_TRUE(InvalidNaming(ValidateLadder(l), "ladder.tiers", "rank-0"));

  l = TestLadder();
  l.mutable_tiers(0)->set_qualifying_points_threshold(1);
  EXPECT_TRUE(InvalidNaming(ValidateLadder(l), "ladder.tiers[0].qualifying_points_threshold"));

  l = TestLadder();
  l.mutable_tiers(1)->set_qualifying_points_threshold(-5);
  EXPECT_TRUE(InvalidNaming(ValidateLadder(l), "ladder.tiers[1].qualifying_points_threshold"));
}

TEST(ValidateLadderTest, ThresholdsMustIncreaseWithRank) {
  v1::TierLadder l = TestLadder();
  l.mutable_tiers(2)->set_qualifying_points_threshold(2'000);  // equal to gold
  absl::Status s = ValidateLadder(l);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StartsWith(s.message(), "ladder.tiers")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "qualifying_points_threshold")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "platinum")) << s;

  l = TestLadder();
  l.mutable_tiers(2)->set_qualifying_points_threshold(1'500);  // below gold
  s = ValidateLadder(l);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "qualifying_points_threshold")) << s;

  // Thresholds listed in increasing order, but the ranks run the other way.
  l = TestLadder();
  l.mutable_tiers(1)->set_rank(2);
  l.mutable_tiers(2)->set_rank(1);
  s = ValidateLadder(l);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "qualifying_points_threshold")) << s;
}

TEST(ValidateLadderTest, MultiplierRange) {
  for (int64_t bp : {kMinMultiplierBp, int64_t{12'345}, kMaxMultiplierBp}) {
    v1::TierLadder l = TestLadder();
    l.mutable_tiers(1)->set_tier_multiplier_bp(bp);
    EXPECT_TRUE(ValidateLadder(l).ok()) << bp;
  }
  for (int64_t bp : {int64_t{0}, int64_t{9'999}, int64_t{100'001}, int64_t{-10'000}}) {
    v1::TierLadder l = TestLadder();
    l.mutable_tiers(1)->set_tier_multiplier_bp(bp);
    EXPECT_TRUE(InvalidNaming(ValidateLadder(l), "ladder.tiers[1].tier_multiplier_bp")) << bp;
  }
}

TEST(ValidateLadderTest, RetentionRange) {
  for (int m : {0, 1, 36}) {
    v1::TierLadder l = TestLadder();
    l.mutable_tiers(2)->set_retention_months(m);
    EXPECT_TRUE(ValidateLadder(l).ok()) << m;
  }
  for (int m : {-1, 37}) {
    v1::TierLadder l = TestLadder();
    l.mutable_tiers(2)->set_retention_months(m);
    EXPECT_TRUE(InvalidNaming(ValidateLadder(l), "ladder.tiers[2].retention_months")) << m;
  }
}

TEST(ValidateLadderTest, AnnualFeeNotNegative) {
  v1::TierLadder l = TestLadder();
  l.mutable_tiers(2)->mutable_annual_fee()->set_amount_minor(9'900);
  l.mutable_tiers(2)->mutable_annual_fee()->set_currency("EUR");
  EXPECT_TRUE(ValidateLadder(l).ok());
  l.mutable_tiers(2)->mutable_annual_fee()->set_amount_minor(-1);
  EXPECT_TRUE(InvalidNaming(ValidateLadder(l), "ladder.tiers[2].annual_fee.amount_minor"));
}

TEST(LadderHelpersTest, SortedBaseAndFind) {
  const v1::TierLadder shuffled = ShuffledTestLadder();
  const v1::TierLadder sorted = SortedLadder(shuffled);
  ASSERT_EQ(sorted.tiers_size(), 3);
  EXPECT_EQ(sorted.tiers(0).tier_id(), "silver");
  EXPECT_EQ(sorted.tiers(1).tier_id(), "gold");
  EXPECT_EQ(sorted.tiers(2).tier_id(), "platinum");
  EXPECT_EQ(sorted.qualification_window_months(), 12);
  EXPECT_EQ(BaseTier(shuffled).tier_id(), "silver");
  ASSERT_NE(FindTier(shuffled, "gold"), nullptr);
  EXPECT_EQ(FindTier(shuffled, "gold")->rank(), 1);
  EXPECT_EQ(FindTier(shuffled, "diamond"), nullptr);
}

// ===========================================================================
// tiers.h: AddMonths
// ===========================================================================

TEST(AddMonthsTest, ClampsToTheEndOfTheMonth) {
  EXPECT_EQ(AddMonths(Utc(2023, 1, 31), 1), Utc(2023, 2, 28));
  EXPECT_EQ(AddMonths(Utc(2024, 1, 31), 1), Utc(2024, 2, 29));
  EXPECT_EQ(AddMonths(Utc(2024, 8, 31), 1), Utc(2024, 9, 30));
  EXPECT_EQ(AddMonths(Utc(2024, 2, 29), 12), Utc(2025, 2, 28));
  EXPECT_EQ(AddMonths(Utc(2024, 2, 29), 48), Utc(2028, 2, 29));
  EXPECT_EQ(AddMonths(Utc(2024, 1, 30), 1), Utc(2024, 2, 29));
  EXPECT_EQ(AddMonths(Utc(2024, 1, 15), 1), Utc(2024, 2, 15));
}

TEST(AddMonthsTest, AcrossYearsAndNegative) {
  EXPECT_EQ(AddMonths(Utc(2024, 12, 15), 1), Utc(2025, 1, 15));
  EXPECT_EQ(AddMonths(Utc(2024, 11, 30), 3), Utc(2025, 2, 28));
  EXPECT_EQ(AddMonths(Utc(2024, 3, 31), -1), Utc(2024, 2, 29));
  EXPECT_EQ(AddMonths(Utc(2023, 3, 31), -1), Utc(2023, 2, 28));
  EXPECT_EQ(AddMonths(Utc(2024, 3, 31), -13), Utc(2023, 2, 28));
  EXPECT_EQ(AddMonths(Utc(2024, 1, 10), -1), Utc(2023, 12, 10));
  EXPECT_EQ(AddMonths(Utc(2024, 5, 31), -12), Utc(2023, 5, 31));
  EXPECT_EQ(AddMonths(Utc(2024, 5, 31), -36), Utc(2021, 5, 31));
  EXPECT_EQ(AddMonths(Utc(2024, 5, 31), 0), Utc(2024, 5, 31));
}

TEST(AddMonthsTest, KeepsTimeOfDayAndSubSeconds) {
  const absl::Time t = Utc(2024, 1, 31, 13, 45, 7) + absl::Microseconds(123'456);
  EXPECT_EQ(AddMonths(t, 1), Utc(2024, 2, 29, 13, 45, 7) + absl::Microseconds(123'456));
  EXPECT_EQ(AddMonths(t, -2), Utc(2023, 11, 30, 13, 45, 7) + absl::Microseconds(123'456));
  // Before the Unix epoch (negative Unix time) as well.
  const absl::Time before_epoch = Utc(1969, 12, 31, 23, 59, 59) + absl::Milliseconds(500);
  EXPECT_EQ(AddMonths(before_epoch, 2), Utc(1970, 2, 28, 23, 59, 59) + absl::Milliseconds(500));
  EXPECT_EQ(AddMonths(Utc(2024, 7, 1, 23, 59, 59), 1), Utc(2024, 8, 1, 23, 59, 59));
}

// ===========================================================================
// tiers.h: DecorateTier, InitialTier
// ===========================================================================

TEST(DecorateTierTest, FillsDisplayFields) {
  const v1::TierLadder ladder = TestLadder();
  v1::MemberTier t;
  t.set_tier_id("silver");
  t.set_qualifying_points(500);
  DecorateTier(ladder, &t);
  EXPECT_EQ(t.tier_name(), "Silver");
  EXPECT_EQ(t.rank(), 0);
  EXPECT_EQ(t.tier_multiplier_bp(), 10'000);
  EXPECT_EQ(t.next_tier_id(), "gold");
  EXPECT_EQ(t.points_to_next_tier(), 1'500);

  t.set_tier_id("gold");
  t.set_qualifying_points(2'500);
  DecorateTier(ladder, &t);
  EXPECT_EQ(t.tier_name(), "Gold");
  EXPECT_EQ(t.rank(), 1);
  EXPECT_EQ(t.tier_multiplier_bp(), 12'500);
  EXPECT_EQ(t.next_tier_id(), "platinum");
  EXPECT_EQ(t.points_to_next_tier(), 7'500);

  // Never negative (a retained member may hold more than the next threshold
  // only transiently, but the field is clamped anyway).
  t.set_qualifying_points(12'000);
  DecorateTier(ladder, &t);
  EXPECT_EQ(t.points_to_next_tier(), 0);

  // Top of the ladder: no next tier; stale values are overwritten.
  t.set_tier_id("platinum");
  t.set_qualifying_points(100);
  DecorateTier(ladder, &t);
  EXPECT_EQ(t.tier_name(), "Platinum");
  EXPECT_EQ(t.rank(), 2);
  EXPECT_EQ(t.tier_multiplier_bp(), 15'000);
  EXPECT_EQ(t.next_tier_id(), "");
  EXPECT_EQ(t.points_to_next_tier(), 0);
}

TEST(DecorateTierTest, NextTierIsTheNextRankNotTheNextListed) {
  const v1::TierLadder ladder = ShuffledTestLadder();
  v1::MemberTier t;
  t.set_tier_id("silver");
  DecorateTier(ladder, &t);
  EXPECT_EQ(t.next_tier_id(), "gold");
  EXPECT_EQ(t.points_to_next_tier(), 2'000);
  t.set_tier_id("gold");
  DecorateTier(ladder, &t);
  EXPECT_EQ(t.next_tier_id(), "platinum");
  EXPECT_EQ(t.points_to_next_tier(), 10'000);
}

TEST(InitialTierTest, BaseTierDecorated) {
  for (const v1::TierLadder& ladder : {TestLadder(), ShuffledTestLadder()}) {
    const absl::Time now = Utc(2024, 3, 1, 9, 30) + absl::Microseconds(7);
    const v1::MemberTier t = InitialTier(ladder, now);
    EXPECT_EQ(t.tier_id(), "silver");
    EXPECT_EQ(t.basis(), v1::TIER_BASIS_BASE);
    EXPECT_EQ(FromProtoTime(t.since()), now);
    EXPECT_FALSE(t.has_retained_until());
    EXPECT_FALSE(t.has_paid_until());
    EXPECT_EQ(t.qualifying_points(), 0);
    EXPECT_EQ(t.tier_name(), "Silver");
    EXPECT_EQ(t.rank(), 0);
    EXPECT_EQ(t.tier_multiplier_bp(), 10'000);
    EXPECT_EQ(t.next_tier_id(), "gold");
    EXPECT_EQ(t.points_to_next_tier(), 2'000);
  }
}

// ===========================================================================
// tiers.h: EvaluateTier
// ===========================================================================

TEST(EvaluateTierTest, UpgradeFromBase) {
  const v1::TierLadder ladder = TestLadder();
  const absl::Time enrolled = Utc(2023, 5, 1, 8);
  const absl::Time as_of = Utc(2024, 2, 29, 12, 0, 0);
  const v1::MemberTier current = InitialTier(ladder, enrolled);

  const Evaluation e = EvaluateTier(ladder, current, 2'500, as_of);
  EXPECT_EQ(e.tier.tier_id(), "gold");
  EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_QUALIFIED);
  ASSERT_TRUE(e.tier.has_retained_until());
  EXPECT_EQ(FromProtoTime(e.tier.retained_until()), Utc(2025, 2, 28, 12));  // as_of + 12 months, clamped
  EXPECT_FALSE(e.tier.has_paid_until());
  EXPECT_EQ(FromProtoTime(e.tier.since()), as_of);
  EXPECT_EQ(FromProtoTime(e.tier.evaluated_at()), as_of);
  EXPECT_EQ(e.tier.qualifying_points(), 2'500);
  EXPECT_EQ(e.tier.tier_name(), "Gold");
  EXPECT_EQ(e.tier.rank(), 1);
  EXPECT_EQ(e.tier.tier_multiplier_bp(), 12'500);
  EXPECT_EQ(e.tier.next_tier_id(), "platinum");
  EXPECT_EQ(e.tier.points_to_next_tier(), 7'500);

  ASSERT_TRUE(e.change.has_value());
  const v1::TierChange& c = *e.change;
  EXPECT_EQ(c.from_tier_id(), "silver");
  EXPECT_EQ(c.to_tier_id(), "gold");
  EXPECT_EQ(c.reason(), v1::TIER_CHANGE_REASON_QUALIFIED);
  EXPECT_EQ(c.qualifying_points(), 2'500);
  EXPECT_EQ(FromProtoTime(c.window_start_time()), Utc(2023, 2, 28, 12));  // as_of - 12 months
  EXPECT_EQ(FromProtoTime(c.window_end_time()), as_of);
  EXPECT_EQ(FromProtoTime(c.changed_at()), as_of);
  ASSERT_TRUE(c.has_valid_until());
  EXPECT_EQ(FromProtoTime(c.valid_until()), Utc(2025, 2, 28, 12));
}

TEST(EvaluateTierTest, WindowFollowsTheLadder) {
  v1::TierLadder ladder = TestLadder();
  ladder.set_qualification_window_months(3);
  const absl::Time as_of = Utc(2024, 5, 31, 6);
  const Evaluation e = EvaluateTier(ladder, InitialTier(ladder, Utc(2024, 1, 1)), 2'000, as_of);
  ASSERT_TRUE(e.change.has_value());
  EXPECT_EQ(FromProtoTime(e.change->window_start_time()), Utc(2024, 2, 29, 6));
  EXPECT_EQ(FromProtoTime(e.change->window_end_time()), as_of);
}

TEST(EvaluateTierTest, ThresholdBoundaries) {
  const v1::TierLadder ladder = TestLadder();
  const absl::Time as_of = Utc(2024, 6, 1);
  const v1::MemberTier base = InitialTier(ladder, Utc(2024, 1, 1));
  struct Case {
    int64_t points;
    const char* tier;
  };
  for (const Case& c : std::vector<Case>{{0, "silver"},
                                         {1'999, "silver"},
                                         {2'000, "gold"},
                                         {9'999, "gold"},
                                         {10'000, "platinum"},
                                         {1'000'000, "platinum"}}) {
    const Evaluation e = EvaluateTier(ladder, base, c.points, as_of);
    EXPECT_EQ(e.tier.tier_id(), c.tier) << c.points;
    EXPECT_EQ(e.change.has_value(), std::string(c.tier) != "silver") << c.points;
    EXPECT_EQ(e.tier.qualifying_points(), c.points);
  }
}

TEST(EvaluateTierTest, StayingOnBaseChangesNothingButThePoints) {
  const v1::TierLadder ladder = TestLadder();
  const v1::MemberTier base = InitialTier(ladder, Utc(2024, 1, 1));
  const Evaluation e = EvaluateTier(ladder, base, 1'200, Utc(2024, 6, 1));
  EXPECT_FALSE(e.change.has_value());
  EXPECT_EQ(e.tier.tier_id(), "silver");
  EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_BASE);
  EXPECT_FALSE(e.tier.has_retained_until());
  EXPECT_EQ(FromProtoTime(e.tier.since()), Utc(2024, 1, 1));
  EXPECT_EQ(FromProtoTime(e.tier.evaluated_at()), Utc(2024, 6, 1));
  EXPECT_EQ(e.tier.points_to_next_tier(), 800);
}

TEST(EvaluateTierTest, UpgradeSkipsRanksToTheHighestQualified) {
  const v1::TierLadder ladder = TestLadder();
  const absl::Time as_of = Utc(2024, 6, 1);
  const Evaluation e = EvaluateTier(ladder, InitialTier(ladder, Utc(2024, 1, 1)), 10'000, as_of);
  EXPECT_EQ(e.tier.tier_id(), "platinum");
  EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_QUALIFIED);
  EXPECT_EQ(FromProtoTime(e.tier.retained_until()), Utc(2025, 6, 1));
  EXPECT_EQ(e.tier.next_tier_id(), "");
  EXPECT_EQ(e.tier.points_to_next_tier(), 0);
  ASSERT_TRUE(e.change.has_value());
  EXPECT_EQ(e.change->from_tier_id(), "silver");
  EXPECT_EQ(e.change->to_tier_id(), "platinum");
  EXPECT_EQ(e.change->reason(), v1::TIER_CHANGE_REASON_QUALIFIED);
}

TEST(EvaluateTierTest, UpgradeWhileRetained) {
  const v1::TierLadder ladder = TestLadder();
  const v1::MemberTier gold = Held("gold", v1::TIER_BASIS_RETAINED, Utc(2023, 9, 1), Utc(2024, 9, 1), std::nullopt,
                                   Utc(2024, 3, 1));
  const absl::Time as_of = Utc(2024, 6, 10, 3);
  const Evaluation e = EvaluateTier(ladder, gold, 11'000, as_of);
  EXPECT_EQ(e.tier.tier_id(), "platinum");
  EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_QUALIFIED);
  EXPECT_EQ(FromProtoTime(e.tier.retained_until()), Utc(2025, 6, 10, 3));
  EXPECT_EQ(FromProtoTime(e.tier.since()), as_of);
  ASSERT_TRUE(e.change.has_value());
  EXPECT_EQ(e.change->from_tier_id(), "gold");
  EXPECT_EQ(e.change->reason(), v1::TIER_CHANGE_REASON_QUALIFIED);
  EXPECT_EQ(FromProtoTime(e.change->valid_until()), Utc(2025, 6, 10, 3));
}

TEST(EvaluateTierTest, RequalifyingExtendsRetention) {
  const v1::TierLadder ladder = TestLadder();
  const absl::Time upgraded = Utc(2024, 2, 29, 12);
  const Evaluation first = EvaluateTier(ladder, InitialTier(ladder, Utc(2023, 1, 1)), 2'500, upgraded);
  ASSERT_EQ(first.tier.tier_id(), "gold");

  const absl::Time later = Utc(2024, 8, 15, 12);
  const Evaluation e = EvaluateTier(ladder, first.tier, 3'000, later);
  EXPECT_FALSE(e.change.has_value());
  EXPECT_EQ(e.tier.tier_id(), "gold");
  EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_QUALIFIED);
  EXPECT_EQ(FromProtoTime(e.tier.retained_until()), Utc(2025, 8, 15, 12));
  EXPECT_EQ(FromProtoTime(e.tier.since()), upgraded);  // same tier: since unchanged
  EXPECT_EQ(FromProtoTime(e.tier.evaluated_at()), later);
  EXPECT_EQ(e.tier.qualifying_points(), 3'000);
  EXPECT_EQ(e.tier.points_to_next_tier(), 7'000);
}

TEST(EvaluateTierTest, RequalifyingNeverShortensRetention) {
  const v1::TierLadder ladder = TestLadder();
  // Retention earned under an older ladder with a longer retention period.
  const v1::MemberTier gold = Held("gold", v1::TIER_BASIS_QUALIFIED, Utc(2024, 1, 1), Utc(2026, 12, 31),
                                   std::nullopt, Utc(2024, 1, 1));
  const Evaluation e = EvaluateTier(ladder, gold, 5'000, Utc(2024, 8, 1));
  EXPECT_FALSE(e.change.has_value());
  EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_QUALIFIED);
  EXPECT_EQ(FromProtoTime(e.tier.retained_until()), Utc(2026, 12, 31));
}

TEST(EvaluateTierTest, RetainedMemberWhoRequalifiesIsQualifiedAgain) {
  const v1::TierLadder ladder = TestLadder();
  const v1::MemberTier gold = Held("gold", v1::TIER_BASIS_RETAINED, Utc(2023, 1, 1), Utc(2024, 12, 1),
                                   std::nullopt, Utc(2024, 5, 1));
  const Evaluation e = EvaluateTier(ladder, gold, 2'000, Utc(2024, 6, 1));
  EXPECT_FALSE(e.change.has_value());
  EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_QUALIFIED);
  EXPECT_EQ(FromProtoTime(e.tier.retained_until()), Utc(2025, 6, 1));
}

TEST(EvaluateTierTest, KeepsTierWhileRetained) {
  const v1::TierLadder ladder = TestLadder();
  const absl::Time until = Utc(2025, 2, 28, 12);
  const v1::MemberTier gold =
      Held("gold", v1::TIER_BASIS_QUALIFIED, Utc(2024, 2, 29, 12), until, std::nullopt, Utc(2024, 2, 29, 12));

  for (const absl::Time as_of : {Utc(2024, 11, 1), until - absl::Microseconds(1)}) {
    const Evaluation e = EvaluateTier(ladder, gold, 500, as_of);
    EXPECT_FALSE(e.change.has_value()) << as_of;
    EXPECT_EQ(e.tier.tier_id(), "gold");
    EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_RETAINED);
    EXPECT_EQ(FromProtoTime(e.tier.retained_until()), until);  // not extended
    EXPECT_EQ(FromProtoTime(e.tier.since()), Utc(2024, 2, 29, 12));
    EXPECT_EQ(FromProtoTime(e.tier.evaluated_at()), as_of);
    EXPECT_EQ(e.tier.qualifying_points(), 500);
    EXPECT_EQ(e.tier.points_to_next_tier(), 9'500);
  }
  // Retained means as_of < retained_until: at retained_until it is over.
  const Evaluation at_end = EvaluateTier(ladder, gold, 500, until);
  EXPECT_EQ(at_end.tier.tier_id(), "silver");
  ASSERT_TRUE(at_end.change.has_value());
  EXPECT_EQ(at_end.change->reason(), v1::TIER_CHANGE_REASON_DOWNGRADED);
}

TEST(EvaluateTierTest, PlatinumDropsExactlyOneRankEvenWithZeroPoints) {
  const v1::TierLadder ladder = TestLadder();
  const v1::MemberTier platinum = Held("platinum", v1::TIER_BASIS_QUALIFIED, Utc(2023, 6, 1), Utc(2024, 6, 1),
                                       std::nullopt, Utc(2024, 3, 1));
  const absl::Time review = Utc(2024, 6, 2, 1);
  const Evaluation e = EvaluateTier(ladder, platinum, 0, review);
  EXPECT_EQ(e.tier.tier_id(), "gold");
  EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_RETAINED);
  // Held without qualifying: no retention left.
  ASSERT_TRUE(e.tier.has_retained_until());
  EXPECT_EQ(FromProtoTime(e.tier.retained_until()), review);
  EXPECT_EQ(FromProtoTime(e.tier.since()), review);
  EXPECT_EQ(e.tier.tier_name(), "Gold");
  EXPECT_EQ(e.tier.tier_multiplier_bp(), 12'500);
  EXPECT_EQ(e.tier.points_to_next_tier(), 10'000);
  ASSERT_TRUE(e.change.has_value());
  EXPECT_EQ(e.change->from_tier_id(), "platinum");
  EXPECT_EQ(e.change->to_tier_id(), "gold");
  EXPECT_EQ(e.change->reason(), v1::TIER_CHANGE_REASON_DOWNGRADED);
  EXPECT_EQ(e.change->qualifying_points(), 0);
  EXPECT_EQ(FromProtoTime(e.change->window_start_time()), Utc(2023, 6, 2, 1));
  EXPECT_EQ(FromProtoTime(e.change->window_end_time()), review);
  EXPECT_EQ(FromProtoTime(e.change->changed_at()), review);
  ASSERT_TRUE(e.change->has_valid_until());
  EXPECT_EQ(FromProtoTime(e.change->valid_until()), review);

  // The next review drops one more rank, to the base tier.
  const absl::Time next_review = Utc(2024, 7, 2, 1);
  const Evaluation e2 = EvaluateTier(ladder, e.tier, 0, next_review);
  EXPECT_EQ(e2.tier.tier_id(), "silver");
  EXPECT_EQ(e2.tier.basis(), v1::TIER_BASIS_BASE);
  EXPECT_FALSE(e2.tier.has_retained_until());
  ASSERT_TRUE(e2.change.has_value());
  EXPECT_EQ(e2.change->from_tier_id(), "gold");
  EXPECT_EQ(e2.change->to_tier_id(), "silver");
  EXPECT_EQ(e2.change->reason(), v1::TIER_CHANGE_REASON_DOWNGRADED);
  EXPECT_FALSE(e2.change->has_valid_until());  // unset for the base tier

  // And then it stays there.
  const Evaluation e3 = EvaluateTier(ladder, e2.tier, 0, Utc(2024, 8, 2));
  EXPECT_EQ(e3.tier.tier_id(), "silver");
  EXPECT_FALSE(e3.change.has_value());
}

TEST(EvaluateTierTest, DowngradeIntoATierThePointsStillQualifyFor) {
  const v1::TierLadder ladder = TestLadder();
  const v1::MemberTier platinum = Held("platinum", v1::TIER_BASIS_QUALIFIED, Utc(2023, 6, 1), Utc(2024, 6, 1),
                                       std::nullopt, Utc(2024, 3, 1));
  const absl::Time review = Utc(2024, 6, 1);
  const Evaluation e = EvaluateTier(ladder, platinum, 3'000, review);
  EXPECT_EQ(e.tier.tier_id(), "gold");
  EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_QUALIFIED);
  EXPECT_EQ(FromProtoTime(e.tier.retained_until()), Utc(2025, 6, 1));
  ASSERT_TRUE(e.change.has_value());
  EXPECT_EQ(e.change->reason(), v1::TIER_CHANGE_REASON_DOWNGRADED);
  EXPECT_EQ(FromProtoTime(e.change->valid_until()), Utc(2025, 6, 1));
}

TEST(EvaluateTierTest, GoldDropsToBase) {
  const v1::TierLadder ladder = TestLadder();
  const v1::MemberTier gold = Held("gold", v1::TIER_BASIS_QUALIFIED, Utc(2023, 6, 1), Utc(2024, 6, 1),
                                   std::nullopt, Utc(2024, 3, 1));
  const Evaluation e = EvaluateTier(ladder, gold, 1'999, Utc(2024, 6, 3));
  EXPECT_EQ(e.tier.tier_id(), "silver");
  EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_BASE);
  EXPECT_FALSE(e.tier.has_retained_until());
  EXPECT_EQ(e.tier.next_tier_id(), "gold");
  EXPECT_EQ(e.tier.points_to_next_tier(), 1);
  ASSERT_TRUE(e.change.has_value());
  EXPECT_EQ(e.change->reason(), v1::TIER_CHANGE_REASON_DOWNGRADED);
  EXPECT_FALSE(e.change->has_valid_until());
}

TEST(EvaluateTierTest, DowngradeWithRankGapsGoesToTheNextLowerRank) {
  v1::TierLadder ladder = TestLadder();
  ladder.mutable_tiers(1)->set_rank(5);
  ladder.mutable_tiers(2)->set_rank(10);
  ASSERT_TRUE(ValidateLadder(ladder).ok());
  v1::MemberTier platinum = Held("platinum", v1::TIER_BASIS_QUALIFIED, Utc(2023, 6, 1), Utc(2024, 6, 1),
                                 std::nullopt, Utc(2024, 3, 1));
  DecorateTier(ladder, &platinum);
  const Evaluation e = EvaluateTier(ladder, platinum, 0, Utc(2024, 7, 1));
  EXPECT_EQ(e.tier.tier_id(), "gold");
  EXPECT_EQ(e.tier.rank(), 5);
}

TEST(EvaluateTierTest, EvaluatingTwiceAfterADowngradeDoesNotDropTwice) {
  const v1::TierLadder ladder = TestLadder();
  const v1::MemberTier platinum = Held("platinum", v1::TIER_BASIS_QUALIFIED, Utc(2023, 6, 1), Utc(2024, 6, 1),
                                       std::nullopt, Utc(2024, 3, 1));
  const absl::Time review = Utc(2024, 6, 2, 1);
  const Evaluation once = EvaluateTier(ladder, platinum, 0, review);
  ASSERT_EQ(once.tier.tier_id(), "gold");
  const Evaluation twice = EvaluateTier(ladder, once.tier, 0, review);
  EXPECT_EQ(twice.tier.tier_id(), "gold");
  EXPECT_FALSE(twice.change.has_value());
  EXPECT_TRUE(MessageDifferencer::Equals(once.tier, twice.tier))
      << once.tier.ShortDebugString() << "\nvs\n"
      << twice.tier.ShortDebugString();
  // Nor does a (late) review dated before the last one.
  const Evaluation earlier = EvaluateTier(ladder, once.tier, 0, review - absl::Hours(1));
  EXPECT_EQ(earlier.tier.tier_id(), "gold");
  EXPECT_FALSE(earlier.change.has_value());
}

// A table of situations: evaluating the result again with the same points
// and as_of changes nothing, and yields no change record.
TEST(EvaluateTierTest, IdempotentInEverySituation) {
  const v1::TierLadder ladder = TestLadder();
  const absl::Time as_of = Utc(2024, 6, 15, 10, 20, 30) + absl::Microseconds(42);
  struct Case {
    const char* name;
    v1::MemberTier current;
    int64_t points;
  };
  const std::vector<Case> cases = {
      {"base stays", InitialTier(ladder, Utc(2024, 1, 1)), 100},
      {"base upgrades to gold", InitialTier(ladder, Utc(2024, 1, 1)), 2'000},
      {"base upgrades to platinum", InitialTier(ladder, Utc(2024, 1, 1)), 50'000},
      {"gold requalifies",
       Held("gold", v1::TIER_BASIS_QUALIFIED, Utc(2024, 1, 1), Utc(2025, 1, 1), std::nullopt, Utc(2024, 1, 1)), 2'500},
      {"gold retained",
       Held("gold", v1::TIER_BASIS_QUALIFIED, Utc(2024, 1, 1), Utc(2025, 1, 1), std::nullopt, Utc(2024, 1, 1)), 10},
      {"gold expires to silver",
       Held("gold", v1::TIER_BASIS_QUALIFIED, Utc(2023, 1, 1), Utc(2024, 1, 1), std::nullopt, Utc(2023, 12, 1)), 10},
      {"platinum drops to retained gold",
       Held("platinum", v1::TIER_BASIS_QUALIFIED, Utc(2023, 1, 1), Utc(2024, 6, 15), std::nullopt, Utc(2024, 1, 1)),
       0},
      {"platinum drops to qualified gold",
       Held("platinum", v1::TIER_BASIS_QUALIFIED, Utc(2023, 1, 1), Utc(2024, 1, 1), std::nullopt, Utc(2024, 1, 1)),
       4'000},
      {"retained gold with no time left drops",
       Held("gold", v1::TIER_BASIS_RETAINED, Utc(2024, 1, 1), Utc(2024, 1, 1), std::nullopt, Utc(2024, 1, 1)), 0},
      {"paid gold holds",
       Held("gold", v1::TIER_BASIS_PAID, Utc(2024, 1, 1), std::nullopt, Utc(2025, 1, 1), Utc(2024, 1, 1)), 0},
      {"paid gold upgrades",
       Held("gold", v1::TIER_BASIS_PAID, Utc(2024, 1, 1), std::nullopt, Utc(2025, 1, 1), Utc(2024, 1, 1)), 10'000},
      {"paid gold expires to silver",
       Held("gold", v1::TIER_BASIS_PAID, Utc(2023, 1, 1), std::nullopt, Utc(2024, 1, 1), Utc(2023, 12, 1)), 0},
      {"paid platinum expires to gold",
       Held("platinum", v1::TIER_BASIS_PAID, Utc(2023, 1, 1), std::nullopt, Utc(2024, 6, 15), Utc(2023, 12, 1)),
       3'000},
      {"paid gold expires, still qualifies",
       Held("gold", v1::TIER_BASIS_PAID, Utc(2023, 1, 1), Utc(2024, 3, 1), Utc(2024, 1, 1), Utc(2023, 12, 1)), 2'000},
  };
  for (const Case& c : cases) {
    const Evaluation once = EvaluateTier(ladder, c.current, c.points, as_of);
    const Evaluation twice = EvaluateTier(ladder, once.tier, c.points, as_of);
    EXPECT_FALSE(twice.change.has_value()) << c.name << ": " << twice.change->ShortDebugString();
    EXPECT_TRUE(MessageDifferencer::Equals(once.tier, twice.tier))
        << c.name << ":\n  once:  " << once.tier.ShortDebugString() << "\n  twice: " << twice.tier.ShortDebugString();
    // Evaluating the same input again is deterministic too.
    const Evaluation again = EvaluateTier(ladder, c.current, c.points, as_of);
    EXPECT_TRUE(MessageDifferencer::Equals(once.tier, again.tier)) << c.name;
    EXPECT_EQ(once.change.has_value(), again.change.has_value()) << c.name;
  }
}

TEST(EvaluateTierTest, PaidTierHoldsRegardlessOfPoints) {
  const v1::TierLadder ladder = TestLadder();
  const absl::Time paid_until = Utc(2024, 12, 31);
  const v1::MemberTier gold =
      Held("gold", v1::TIER_BASIS_PAID, Utc(2024, 1, 1), std::nullopt, paid_until, Utc(2024, 1, 1));
  for (int64_t points : {int64_t{0}, int64_t{1'999}, int64_t{2'000}, int64_t{9'999}}) {
    const Evaluation e = EvaluateTier(ladder, gold, points, Utc(2024, 12, 30, 23, 59, 59));
    EXPECT_FALSE(e.change.has_value()) << points;
    EXPECT_EQ(e.tier.tier_id(), "gold") << points;
    EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_PAID) << points;
    ASSERT_TRUE(e.tier.has_paid_until());
    EXPECT_EQ(FromProtoTime(e.tier.paid_until()), paid_until);
    EXPECT_EQ(e.tier.qualifying_points(), points);
  }
  // A paid platinum member with only gold points keeps platinum.
  const v1::MemberTier platinum =
      Held("platinum", v1::TIER_BASIS_PAID, Utc(2024, 1, 1), std::nullopt, paid_until, Utc(2024, 1, 1));
  const Evaluation e = EvaluateTier(ladder, platinum, 3'000, Utc(2024, 6, 1));
  EXPECT_FALSE(e.change.has_value());
  EXPECT_EQ(e.tier.tier_id(), "platinum");
  EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_PAID);
}

TEST(EvaluateTierTest, HigherQualifiedTierUpgradesAPaidMember) {
  const v1::TierLadder ladder = TestLadder();
  const v1::MemberTier gold =
      Held("gold", v1::TIER_BASIS_PAID, Utc(2024, 1, 1), std::nullopt, Utc(2024, 12, 31), Utc(2024, 1, 1));
  const absl::Time as_of = Utc(2024, 6, 1, 12);
  const Evaluation e = EvaluateTier(ladder, gold, 12'000, as_of);
  EXPECT_EQ(e.tier.tier_id(), "platinum");
  EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_QUALIFIED);
  EXPECT_EQ(FromProtoTime(e.tier.retained_until()), Utc(2025, 6, 1, 12));
  EXPECT_EQ(FromProtoTime(e.tier.since()), as_of);
  ASSERT_TRUE(e.change.has_value());
  EXPECT_EQ(e.change->from_tier_id(), "gold");
  EXPECT_EQ(e.change->to_tier_id(), "platinum");
  EXPECT_EQ(e.change->reason(), v1::TIER_CHANGE_REASON_QUALIFIED);
  EXPECT_EQ(FromProtoTime(e.change->valid_until()), Utc(2025, 6, 1, 12));
}

TEST(EvaluateTierTest, PaidExpiryFallsToTheQualifiedTier) {
  const v1::TierLadder ladder = TestLadder();
  const absl::Time paid_until = Utc(2024, 12, 31);
  const v1::MemberTier gold =
      Held("gold", v1::TIER_BASIS_PAID, Utc(2024, 1, 1), std::nullopt, paid_until, Utc(2024, 12, 1));
  // paid_until is exclusive: at paid_until the paid tier is over.
  const Evaluation e = EvaluateTier(ladder, gold, 500, paid_until);
  EXPECT_EQ(e.tier.tier_id(), "silver");
  EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_BASE);
  EXPECT_FALSE(e.tier.has_paid_until());
  EXPECT_FALSE(e.tier.has_retained_until());
  ASSERT_TRUE(e.change.has_value());
  EXPECT_EQ(e.change->from_tier_id(), "gold");
  EXPECT_EQ(e.change->to_tier_id(), "silver");
  EXPECT_EQ(e.change->reason(), v1::TIER_CHANGE_REASON_PAID_EXPIRED);
  EXPECT_EQ(e.change->qualifying_points(), 500);
  EXPECT_EQ(FromProtoTime(e.change->window_end_time()), paid_until);
  EXPECT_FALSE(e.change->has_valid_until());

  // A paid platinum member goes straight to the tier the points qualify for.
  const v1::MemberTier platinum =
      Held("platinum", v1::TIER_BASIS_PAID, Utc(2024, 1, 1), std::nullopt, paid_until, Utc(2024, 12, 1));
  const Evaluation p = EvaluateTier(ladder, platinum, 2'500, Utc(2025, 1, 2));
  EXPECT_EQ(p.tier.tier_id(), "gold");
  EXPECT_EQ(p.tier.basis(), v1::TIER_BASIS_QUALIFIED);
  EXPECT_EQ(FromProtoTime(p.tier.retained_until()), Utc(2026, 1, 2));
  ASSERT_TRUE(p.change.has_value());
  EXPECT_EQ(p.change->reason(), v1::TIER_CHANGE_REASON_PAID_EXPIRED);
  EXPECT_EQ(FromProtoTime(p.change->valid_until()), Utc(2026, 1, 2));
}

TEST(EvaluateTierTest, PaidExpiryOnTheSameTierBecomesQualified) {
  const v1::TierLadder ladder = TestLadder();
  const v1::MemberTier gold =
      Held("gold", v1::TIER_BASIS_PAID, Utc(2024, 1, 1), std::nullopt, Utc(2024, 12, 31), Utc(2024, 12, 1));
  const Evaluation e = EvaluateTier(ladder, gold, 2'500, Utc(2025, 1, 5));
  EXPECT_FALSE(e.change.has_value());
  EXPECT_EQ(e.tier.tier_id(), "gold");
  EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_QUALIFIED);
  EXPECT_FALSE(e.tier.has_paid_until());
  EXPECT_EQ(FromProtoTime(e.tier.retained_until()), Utc(2026, 1, 5));
  EXPECT_EQ(FromProtoTime(e.tier.since()), Utc(2024, 1, 1));
}

TEST(EvaluateTierTest, PaidTierHoldsUntilPaidUntilEvenAfterAnUpgrade) {
  // A paid member who qualifies higher keeps the higher tier at least until
  // the paid period ends, so no review drops them below what they paid for
  // before paid_until (tiers.h).
  const v1::TierLadder ladder = TestLadder();
  const absl::Time paid_until = Utc(2025, 12, 31);
  const v1::MemberTier gold =
      Held("gold", v1::TIER_BASIS_PAID, Utc(2024, 1, 1), std::nullopt, paid_until, Utc(2024, 1, 1));
  const Evaluation up = EvaluateTier(ladder, gold, 12'000, Utc(2024, 6, 1));
  ASSERT_EQ(up.tier.tier_id(), "platinum");
  EXPECT_EQ(FromProtoTime(up.tier.retained_until()), paid_until);
  for (absl::Time at : {Utc(2025, 6, 2), Utc(2025, 7, 2), Utc(2025, 12, 30)}) {
    const Evaluation held = EvaluateTier(ladder, up.tier, 0, at);
    EXPECT_EQ(held.tier.tier_id(), "platinum") << at;
    EXPECT_FALSE(held.change.has_value());
  }
  const Evaluation after = EvaluateTier(ladder, up.tier, 0, Utc(2026, 1, 1));
  EXPECT_EQ(after.tier.tier_id(), "gold");  // one rank per review, after the paid period
}

TEST(EvaluateTierTest, ShuffledLadderGivesTheSameResults) {
  const v1::TierLadder sorted = TestLadder();
  const v1::TierLadder shuffled = ShuffledTestLadder();
  const absl::Time as_of = Utc(2024, 6, 1);
  const std::vector<v1::MemberTier> states = {
      InitialTier(sorted, Utc(2024, 1, 1)),
      Held("gold", v1::TIER_BASIS_QUALIFIED, Utc(2023, 1, 1), Utc(2024, 1, 1), std::nullopt, Utc(2024, 1, 1)),
      Held("platinum", v1::TIER_BASIS_QUALIFIED, Utc(2023, 1, 1), Utc(2024, 1, 1), std::nullopt, Utc(2024, 1, 1)),
      Held("platinum", v1::TIER_BASIS_QUALIFIED, Utc(2023, 1, 1), Utc(2025, 1, 1), std::nullopt, Utc(2024, 1, 1)),
      Held("gold", v1::TIER_BASIS_PAID, Utc(2023, 1, 1), std::nullopt, Utc(2025, 1, 1), Utc(2024, 1, 1)),
      Held("gold", v1::TIER_BASIS_PAID, Utc(2023, 1, 1), std::nullopt, Utc(2024, 1, 1), Utc(2024, 1, 1)),
  };
  for (const v1::MemberTier& s : states) {
    for (int64_t points : {int64_t{0}, int64_t{2'000}, int64_t{10'000}}) {
      const Evaluation a = EvaluateTier(sorted, s, points, as_of);
      const Evaluation b = EvaluateTier(shuffled, s, points, as_of);
      EXPECT_TRUE(MessageDifferencer::Equals(a.tier, b.tier)) << s.ShortDebugString() << " points " << points;
      ASSERT_EQ(a.change.has_value(), b.change.has_value());
      if (a.change) {
        EXPECT_TRUE(MessageDifferencer::Equals(*a.change, *b.change));
      }
    }
  }
}

// Random members through many reviews (and occasional paid grants, the way
// GrantPaidTier sets them): the documented rules hold at every step.
TEST(EvaluateTierTest, RandomWalkKeepsTheRules) {
  const v1::TierLadder ladder = TestLadder();
  const std::vector<int64_t> point_choices = {0, 500, 1'999, 2'000, 2'500, 9'999, 10'000, 15'000};
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    std::mt19937_64 rng(seed);
    auto below = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
    absl::Time t = Utc(2022, 1, 31, 9) + absl::Microseconds(below(1'000'000));
    v1::MemberTier tier = InitialTier(ladder, t);
    for (int step = 0; step < 80; ++step) {
      SCOPED_TRACE(absl::StrCat("seed ", seed, " step ", step, " tier ", tier.ShortDebugString()));
      // Advance the clock; sometimes land exactly on a retention or paid end.
      const int how = below(10);
      if (how == 0 && tier.has_retained_until() && FromProtoTime(tier.retained_until()) > t) {
        t = FromProtoTime(tier.retained_until());
      } else if (how == 1 && tier.has_paid_until() && FromProtoTime(tier.paid_until()) > t) {
        t = FromProtoTime(tier.paid_until());
      } else if (how != 2) {  // how == 2: same as_of as the last review
        t = AddMonths(t, below(8)) + absl::Hours(below(24 * 28)) + absl::Microseconds(below(1'000'000));
      }
      // Occasionally grant a paid tier at or above the held one.
      if (below(12) == 0) {
        const int held_rank = RankOf(ladder, tier.tier_id());
        std::vector<const v1::TierDefinition*> options;
        for (const auto& d : ladder.tiers()) {
          if (d.rank() >= std::max(1, held_rank)) options.push_back(&d);
        }
        if (!options.empty()) {
          const v1::TierDefinition* d = options[below(static_cast<int>(options.size()))];
          if (d->tier_id() != tier.tier_id()) *tier.mutable_since() = ToProtoTime(t);
          tier.set_tier_id(d->tier_id());
          tier.set_basis(v1::TIER_BASIS_PAID);
          *tier.mutable_paid_until() = ToProtoTime(AddMonths(t, 1 + below(14)));
          DecorateTier(ladder, &tier);
        }
      }
      const int64_t points = point_choices[below(static_cast<int>(point_choices.size()))];
      const v1::MemberTier before = tier;
      const int held = RankOf(ladder, before.tier_id());
      const v1::TierDefinition* qualified = ExpectedQualified(ladder, points);
      ASSERT_NE(qualified, nullptr);
      const bool paid = before.basis() == v1::TIER_BASIS_PAID;
      const bool paid_active = paid && before.has_paid_until() && FromProtoTime(before.paid_until()) > t;
      const bool retained = before.has_retained_until() && FromProtoTime(before.retained_until()) > t;

      const Evaluation e = EvaluateTier(ladder, before, points, t);
      const int after = RankOf(ladder, e.tier.tier_id());
      ASSERT_GE(after, 0);

      // A change record exactly when the tier changed, describing it.
      ASSERT_EQ(e.change.has_value(), e.tier.tier_id() != before.tier_id());
      if (e.change) {
        EXPECT_EQ(e.change->from_tier_id(), before.tier_id());
        EXPECT_EQ(e.change->to_tier_id(), e.tier.tier_id());
        EXPECT_EQ(e.change->qualifying_points(), points);
        EXPECT_EQ(FromProtoTime(e.change->window_end_time()), t);
        EXPECT_EQ(FromProtoTime(e.change->window_start_time()), AddMonths(t, -12));
        EXPECT_EQ(FromProtoTime(e.change->changed_at()), t);
        EXPECT_EQ(FromProtoTime(e.tier.since()), t);
        EXPECT_EQ(e.change->has_valid_until(), after != 0);
      } else {
        EXPECT_TRUE(MessageDifferencer::Equals(e.tier.since(), before.since()));
      }
      EXPECT_EQ(e.tier.qualifying_points(), points);

      // Never below the qualified tier; upgrades go to the qualified tier.
      EXPECT_GE(after, qualified->rank());
      if (after > held) {
        EXPECT_EQ(e.tier.tier_id(), qualified->tier_id());
        EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_QUALIFIED);
        EXPECT_EQ(e.change->reason(),
                  paid && !paid_active ? v1::TIER_CHANGE_REASON_PAID_EXPIRED : v1::TIER_CHANGE_REASON_QUALIFIED);
      }
      if (paid_active) {
        EXPECT_GE(after, held);
        if (after == held) {
          EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_PAID);
        }
      } else if (paid) {
        EXPECT_EQ(after, qualified->rank());
        EXPECT_FALSE(e.tier.has_paid_until());
      } else {
        // Downgrades: only once retention is over, and by one rank.
        if (after < held) {
          EXPECT_FALSE(retained);
          EXPECT_EQ(after, held - 1);
          EXPECT_EQ(e.change->reason(), v1::TIER_CHANGE_REASON_DOWNGRADED);
        }
        if (retained) {
          EXPECT_GE(after, held);
        }
      }
      // Basis is consistent with the tier and the points.
      switch (e.tier.basis()) {
        case v1::TIER_BASIS_BASE:
          EXPECT_EQ(after, 0);
          EXPECT_FALSE(e.tier.has_retained_until());
          break;
        case v1::TIER_BASIS_QUALIFIED: {
          EXPECT_EQ(e.tier.tier_id(), qualified->tier_id());
          const int months = FindTier(ladder, e.tier.tier_id())->retention_months();
          EXPECT_GE(FromProtoTime(e.tier.retained_until()), AddMonths(t, months));
          break;
        }
        case v1::TIER_BASIS_RETAINED:
          EXPECT_GT(after, qualified->rank());
          EXPECT_TRUE(e.tier.has_retained_until());
          break;
        case v1::TIER_BASIS_PAID:
          EXPECT_TRUE(paid_active);
          break;
        default:
          ADD_FAILURE() << "unexpected basis " << e.tier.basis();
      }
      // Retention on an unchanged tier never shrinks.
      if (!e.change && before.has_retained_until() && e.tier.has_retained_until()) {
        EXPECT_GE(FromProtoTime(e.tier.retained_until()), FromProtoTime(before.retained_until()));
      }
      // Decorated.
      EXPECT_EQ(e.tier.rank(), after);
      EXPECT_EQ(e.tier.tier_name(), FindTier(ladder, e.tier.tier_id())->name());

      // Idempotent.
      const Evaluation again = EvaluateTier(ladder, e.tier, points, t);
      EXPECT_FALSE(again.change.has_value());
      EXPECT_TRUE(MessageDifferencer::Equals(again.tier, e.tier))
          << "\n  once:  " << e.tier.ShortDebugString() << "\n  again: " << again.tier.ShortDebugString();

      tier = e.tier;
    }
  }
}

}  // namespace
}  // namespace loyalty::membership
