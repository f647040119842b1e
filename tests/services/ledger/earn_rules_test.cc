// The earn computation on its own (no database): campaign schedules in the
// campaign's time zone, and the bonuses that the writer confirms later.
#include "services/ledger/earn_rules.h"

#include "absl/time/civil_time.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace loyalty::ledger {
namespace {

using google::protobuf::util::TimeUtil;

class EarnRulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    settlement::v1::PartnerSnapshot p;
    p.set_partner_id("shop");
    p.set_status(settlement::v1::PARTNER_STATUS_ACTIVE);
    auto* c = p.add_contracts();
    c->set_contract_id("shop-c1");
    c->set_version(1);
    *c->mutable_effective_from() = TimeUtil::SecondsToTimestamp(0);
    c->set_earn_currency("EUR");
    c->set_earn_rate_milli_points_per_unit(1000);  // 1 point per EUR
    rules_.partners["shop"] = p;
    membership::v1::MemberSnapshot m;
    m.set_member_id("m1");
    m.set_status(membership::v1::MEMBER_STATUS_ACTIVE);
    m.set_birth_month(3);
    m.add_segment_ids("dog-owners");
    rules_.members["m1"] = m;
  }

  catalog::v1::Campaign& AddCampaign(const std::string& id, int64_t fixed_bonus) {
    catalog::v1::Campaign& c = rules_.campaigns.emplace_back();
    c.set_campaign_id(id);
    c.set_state(catalog::v1::CAMPAIGN_STATE_ACTIVE);
    c.set_fixed_bonus_points(fixed_bonus);
    return c;
  }

  // Points for EUR 10.00 at `at` (UTC civil time): 10 base plus bonuses.
  int64_t PointsAt(absl::CivilSecond utc, const std::string& member = "m1") {
    common::v1::Money amount;
    amount.set_amount_minor(1000);
    amount.set_currency("EUR");
    google::protobuf::RepeatedPtrField<v1::PurchaseLine> lines;
    IndexTimeZones(rules_);  // as every snapshot the ledger builds
    auto r = ComputeEarn(rules_, "shop", member, amount, lines, absl::FromCivil(utc, absl::UTCTimeZone()));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->points : -1;
  }

  RulesSnapshot rules_;
};

TEST_F(EarnRulesTest, WeekendDaysAreReadInTheCampaignsTimeZone) {
  auto& c = AddCampaign("weekend", 5);
  c.add_days_of_week(catalog::v1::DAY_OF_WEEK_SATURDAY);
  c.add_days_of_week(catalog::v1::DAY_OF_WEEK_SUNDAY);
  c.set_time_zone("Asia/Tokyo");  // UTC+9, no daylight saving
  // Friday 2026-11-20 16:00 UTC is Saturday 01:00 in Tokyo.
  EXPECT_EQ(PointsAt(absl::CivilSecond(2026, 11, 20, 16, 0, 0)), 15);
  // Friday 14:00 UTC is Friday 23:00 in Tokyo.
  EXPECT_EQ(PointsAt(absl::CivilSecond(2026, 11, 20, 14, 0, 0)), 10);
  // Sunday 2026-11-22 15:00 UTC is already Monday in Tokyo.
  EXPECT_EQ(PointsAt(absl::CivilSecond(2026, 11, 22, 15, 0, 0)), 10);
}

TEST_F(EarnRulesTest, ADailyWindowAppliesOnlyInsideItsLocalHours) {
  auto& c = AddCampaign("happy-hour", 7);
  c.set_daily_start_minute(17 * 60);  // 17:00 to 19:00 Berlin time
  c.set_daily_end_minute(19 * 60);
  c.set_time_zone("Europe/Berlin");   // UTC+1 in November, UTC+2 in July
  EXPECT_EQ(PointsAt(absl::CivilSecond(2026, 11, 23, 16, 0, 0)), 17);   // 17:00 local
  EXPECT_EQ(PointsAt(absl::CivilSecond(2026, 11, 23, 17, 59, 59)), 17); // 18:59:59
  EXPECT_EQ(PointsAt(absl::CivilSecond(2026, 11, 23, 18, 0, 0)), 10);   // 19:00: end is exclusive
  EXPECT_EQ(PointsAt(absl::CivilSecond(2026, 11, 23, 15, 59, 0)), 10);  // 16:59
  EXPECT_EQ(PointsAt(absl::CivilSecond(2026, 7, 1, 15, 30, 0)), 17);    // 17:30 in summer time
  EXPECT_EQ(PointsAt(absl::CivilSecond(2026, 7, 1, 17, 30, 0)), 10);    // 19:30 in summer time
}

TEST_F(EarnRulesTest, AWindowUntilMidnightAndAnUnknownZone) {
  auto& late = AddCampaign("late", 3);
  late.set_daily_start_minute(22 * 60);  // end 0: until midnight
  late.set_time_zone("UTC");
  EXPECT_EQ(PointsAt(absl::CivilSecond(2026, 11, 23, 23, 59, 0)), 13);
  EXPECT_EQ(PointsAt(absl::CivilSecond(2026, 11, 23, 21, 59, 0)), 10);
  // A zone this machine cannot load never matches, rather than matching at
  // the wrong hours.
  late.set_time_zone("Mars/Olympus_Mons");
  EXPECT_EQ(PointsAt(absl::CivilSecond(2026, 11, 23, 23, 0, 0)), 10);
}

TEST_F(EarnRulesTest, BirthdayAndSegmentCampaignsFollowTheMemberSnapshot) {
  AddCampaign("birthday", 20).set_birthday_month_only(true);
  AddCampaign("dogs", 4).add_segment_ids("dog-owners");
  EXPECT_EQ(PointsAt(absl::CivilSecond(2026, 3, 15, 12, 0, 0)), 34);
  EXPECT_EQ(PointsAt(absl::CivilSecond(2026, 4, 15, 12, 0, 0)), 14);
  // A member without a snapshot is in no segment and has no birthday.
  EXPECT_EQ(PointsAt(absl::CivilSecond(2026, 3, 15, 12, 0, 0), "stranger"), 10);
}

TEST_F(EarnRulesTest, FirstPurchaseBonusesAreComputedThenRemovedForAKnownCustomer) {
  AddCampaign("discovery", 50).set_first_purchase_at_partner_only(true);
  AddCampaign("always", 2);
  common::v1::Money amount;
  amount.set_amount_minor(1000);
  amount.set_currency("EUR");
  google::protobuf::RepeatedPtrField<v1::PurchaseLine> lines;
  auto comp = ComputeEarn(rules_, "shop", "m1", amount, lines, absl::Now());
  ASSERT_TRUE(comp.ok()) << comp.status();
  EXPECT_EQ(comp->points, 62);
  ASSERT_TRUE(HasFirstPurchaseBonus(*comp));

  // The campaign ends before the writer runs: the bonus is still conditional.
  rules_.campaigns.erase(rules_.campaigns.begin());
  EarnComputation known = *comp;
  ASSERT_TRUE(HasFirstPurchaseBonus(known));
  DropFirstPurchaseBonuses(known);
  EXPECT_EQ(known.points, 12);
  EXPECT_EQ(known.breakdown.total_points(), 12);
  ASSERT_EQ(known.breakdown.campaign_bonuses_size(), 1);
  EXPECT_EQ(known.breakdown.campaign_bonuses(0).campaign_id(), "always");
  EXPECT_FALSE(HasFirstPurchaseBonus(known));
}

}  // namespace
}  // namespace loyalty::ledger
