// Campaigns and earn rules (services/catalog/campaigns.h) on the real MySQL
// store: references to other services, validation, versioned earn rules,
// partner visibility, budget leases and the earn quote. The fixture is
// catalog_fixture.h.

#include <algorithm>
#include <atomic>
#include <iostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/time/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/catalog/codes.h"
#include "tests/services/catalog/catalog_fixture.h"

namespace loyalty::catalog {
namespace {

using ::testing::HasSubstr;
using testing::CampaignTest;
using testing::DoublePoints;
using testing::FakeLedger;
using testing::kBackoffice;
using testing::kFood;
using testing::kLedgerService;
using testing::kVet;

TEST_F(CampaignTest, UnknownTiersAndSegmentsAreNotFoundNamingTheField) {
  members_.AddSegment("sg-dog-owners");
  v1::CreateCampaignRequest r;
  r.set_idempotency_key("refs-1");
  *r.mutable_campaign() = DoublePoints();
  r.mutable_campaign()->add_tier_ids("gold");
  r.mutable_campaign()->add_tier_ids("platinum");
  auto s = catalog_->campaigns().CreateCampaign(kBackoffice, r);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.status().message(), HasSubstr("campaign.tier_ids[1]"));

  *r.mutable_campaign() = DoublePoints();
  r.mutable_campaign()->add_segment_ids("sg-dog-owners");
  r.mutable_campaign()->add_segment_ids("sg-nobody");
  s = catalog_->campaigns().CreateCampaign(kBackoffice, r);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.status().message(), HasSubstr("campaign.segment_ids[1]"));

  // Known ones pass; an update that names an unknown one is refused too.
  *r.mutable_campaign() = DoublePoints();
  r.mutable_campaign()->add_tier_ids("silver");
  r.mutable_campaign()->add_segment_ids("sg-dog-owners");
  s = catalog_->campaigns().CreateCampaign(kBackoffice, r);
  ASSERT_TRUE(s.ok()) << s.status();
  v1::UpdateCampaignRequest u;
  u.set_idempotency_key("refs-2");
  u.set_campaign_id(s->campaign().campaign_id());
  u.mutable_update_mask()->add_paths("segment_ids");
  u.mutable_campaign()->add_segment_ids("sg-gone");
  auto updated = catalog_->campaigns().UpdateCampaign(kBackoffice, u);
  EXPECT_EQ(updated.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(updated.status().message(), HasSubstr("campaign.segment_ids[0]"));
}

TEST_F(CampaignTest, ARetryGetsItsAnswerThoughAReferenceHasGoneOrItsServiceIsDown) {
  testing::FakePartners partners;
  partners.Add("food");
  partners.Add("vet");
  CatalogOptions options;
  options.now = [this] { return clock_.Now(); };
  options.partners = &partners;
  catalog_ = std::make_unique<Catalog>(*store_, ledger_, members_, options);
  members_.AddSegment("sg-dog-owners");

  v1::CreateCampaignRequest c;
  c.set_idempotency_key("gone-1");
  *c.mutable_campaign() = DoublePoints();
  c.mutable_campaign()->add_segment_ids("sg-dog-owners");
  auto created = catalog_->campaigns().CreateCampaign(kBackoffice, c);
  ASSERT_TRUE(created.ok()) << created.status();
  v1::CreateRewardRequest r;
  r.set_idempotency_key("gone-2");
  *r.mutable_reward() = Reward();
  auto reward = catalog_->rewards().CreateReward(kBackoffice, r);
  ASSERT_TRUE(reward.ok()) << reward.status();

  // The segment is deleted and settlement goes down: the retries of both
  // requests still get their original answers, and nothing is made twice.
  members_.RemoveSegment("sg-dog-owners");
  partners.SetDown(true);
  auto again = catalog_->campaigns().CreateCampaign(kBackoffice, c);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->campaign().campaign_id(), created->campaign().campaign_id());
  auto reward_again = catalog_->rewards().CreateReward(kBackoffice, r);
  ASSERT_TRUE(reward_again.ok()) << reward_again.status();
  EXPECT_EQ(reward_again->reward().reward_id(), reward->reward().reward_id());

  // A new key is checked: with settlement down that is UNAVAILABLE, and once
  // it is back, the gone segment is NOT_FOUND.
  r.set_idempotency_key("gone-3");
  EXPECT_EQ(catalog_->rewards().CreateReward(kBackoffice, r).status().code(), absl::StatusCode::kUnavailable);
  partners.SetDown(false);
  c.set_idempotency_key("gone-4");
  auto refused = catalog_->campaigns().CreateCampaign(kBackoffice, c);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(refused.status().message(), HasSubstr("campaign.segment_ids[0]"));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM campaigns"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM rewards"), 1);
}

TEST_F(CampaignTest, PartnersUnknownToSettlementAreNotFoundNamingTheField) {
  testing::FakePartners partners;
  partners.Add("food");
  CatalogOptions options;
  options.now = [this] { return clock_.Now(); };
  options.partners = &partners;
  catalog_ = std::make_unique<Catalog>(*store_, ledger_, members_, options);

  v1::CreateCampaignRequest c;
  c.set_idempotency_key("pc-1");
  *c.mutable_campaign() = DoublePoints();  // at "food"
  c.mutable_campaign()->add_partner_ids("fod");
  auto created = catalog_->campaigns().CreateCampaign(kBackoffice, c);
  EXPECT_EQ(created.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(created.status().message(), HasSubstr("campaign.partner_ids[1]"));

  v1::CreateRewardRequest r;
  r.set_idempotency_key("pr-1");
  *r.mutable_reward() = Reward();  // honoured by "vet", which settlement does not know here
  auto reward = catalog_->rewards().CreateReward(kBackoffice, r);
  EXPECT_EQ(reward.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(reward.status().message(), HasSubstr("reward.partner_id"));

  partners.Add("vet");
  EXPECT_TRUE(catalog_->rewards().CreateReward(kBackoffice, r).ok());
  c.set_idempotency_key("pc-2");
  *c.mutable_campaign() = DoublePoints();
  EXPECT_TRUE(catalog_->campaigns().CreateCampaign(kBackoffice, c).ok());
}

TEST_F(CampaignTest, ValidationNamesTheField) {
  v1::CreateCampaignRequest r;
  r.set_idempotency_key("c1");
  *r.mutable_campaign() = DoublePoints();
  r.mutable_campaign()->set_name("");
  auto s = catalog_->campaigns().CreateCampaign(kBackoffice, r);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.status().message(), HasSubstr("campaign.name"));
  *r.mutable_campaign() = DoublePoints();
  r.mutable_campaign()->add_days_of_week(v1::DAY_OF_WEEK_SATURDAY);
  s = catalog_->campaigns().CreateCampaign(kBackoffice, r);
  EXPECT_THAT(s.status().message(), HasSubstr("campaign.time_zone"));
  r.mutable_campaign()->set_time_zone("Mars/Olympus");
  s = catalog_->campaigns().CreateCampaign(kBackoffice, r);
  EXPECT_THAT(s.status().message(), HasSubstr("campaign.time_zone"));
  r.mutable_campaign()->set_time_zone("Europe/Berlin");
  r.mutable_campaign()->set_budget_points(-1);
  s = catalog_->campaigns().CreateCampaign(kBackoffice, r);
  EXPECT_THAT(s.status().message(), HasSubstr("campaign.budget_points"));
  r.mutable_campaign()->set_budget_points(0);
  EXPECT_TRUE(catalog_->campaigns().CreateCampaign(kBackoffice, r).ok());
}

TEST_F(CampaignTest, EarnRulesAreVersionedAndHoldOnlyActiveCampaigns) {
  const v1::GetActiveEarnRulesResponse start = Rules(0);
  EXPECT_GT(start.version(), 0);
  EXPECT_EQ(start.campaigns_size(), 0);
  v1::Campaign c = Create(DoublePoints());
  v1::Campaign coupon_only;
  coupon_only.set_name("coupons");
  coupon_only = Create(coupon_only);
  EXPECT_TRUE(Rules(start.version()).not_modified());  // drafts change nothing

  ASSERT_TRUE(SetState(c.campaign_id(), v1::CAMPAIGN_STATE_ACTIVE).ok());
  ASSERT_TRUE(SetState(coupon_only.campaign_id(), v1::CAMPAIGN_STATE_ACTIVE).ok());
  const v1::GetActiveEarnRulesResponse active = Rules(start.version());
  EXPECT_GT(active.version(), start.version());
  EXPECT_FALSE(active.not_modified());
  ASSERT_EQ(active.campaigns_size(), 1);  // the bonus-less one is no earn rule
  EXPECT_EQ(active.campaigns(0).campaign_id(), c.campaign_id());
  EXPECT_EQ(active.campaigns(0).bonus_rate_bp(), 10000);
  EXPECT_TRUE(Rules(active.version()).not_modified());

  v1::UpdateCampaignRequest up;
  up.set_idempotency_key("u1");
  up.set_campaign_id(c.campaign_id());
  up.mutable_campaign()->set_fixed_bonus_points(50);
  up.mutable_update_mask()->add_paths("fixed_bonus_points");
  auto updated = catalog_->campaigns().UpdateCampaign(kBackoffice, up);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->campaign().bonus_case(), v1::Campaign::kFixedBonusPoints);
  const v1::GetActiveEarnRulesResponse changed = Rules(active.version());
  EXPECT_GT(changed.version(), active.version());
  EXPECT_EQ(changed.campaigns(0).fixed_bonus_points(), 50);

  ASSERT_TRUE(SetState(c.campaign_id(), v1::CAMPAIGN_STATE_ENDED).ok());
  EXPECT_EQ(Rules(changed.version()).campaigns_size(), 0);
  EXPECT_EQ(SetState(c.campaign_id(), v1::CAMPAIGN_STATE_ACTIVE).status().code(),
            absl::StatusCode::kFailedPrecondition);
  up.set_idempotency_key("u2");
  EXPECT_EQ(catalog_->campaigns().UpdateCampaign(kBackoffice, up).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(CampaignTest, PartnersSeeOnlyCampaignsOpenToThem) {
  v1::Campaign food = Create(DoublePoints());
  v1::Campaign everyone;
  everyone.set_name("everyone");
  everyone.set_fixed_bonus_points(10);
  everyone = Create(everyone);
  v1::GetCampaignRequest g;
  g.set_campaign_id(food.campaign_id());
  EXPECT_EQ(catalog_->campaigns().GetCampaign(kVet, g).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(catalog_->campaigns().GetCampaign(kFood, g).ok());
  v1::ListCampaignsRequest l;
  auto vet = catalog_->campaigns().ListCampaigns(kVet, l);
  ASSERT_TRUE(vet.ok());
  ASSERT_EQ(vet->campaigns_size(), 1);
  EXPECT_EQ(vet->campaigns(0).campaign_id(), everyone.campaign_id());
  auto all = catalog_->campaigns().ListCampaigns(kBackoffice, l);
  EXPECT_EQ(all->campaigns_size(), 2);
}

TEST_F(CampaignTest, ConcurrentLeasesNeverOverspendTheBudget) {
  constexpr int64_t kBudget = 1000;
  v1::Campaign c = Create(DoublePoints(kBudget));
  ASSERT_TRUE(SetState(c.campaign_id(), v1::CAMPAIGN_STATE_ACTIVE).ok());
  constexpr int kThreads = 40;  // each asks 30: 1200 wanted
  std::atomic<int64_t> granted{0};
  std::atomic<int> exhausted{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      v1::LeaseCampaignBudgetRequest r;
      r.set_idempotency_key(absl::StrCat("lease-", i));
      r.set_campaign_id(c.campaign_id());
      r.set_requested_points(30);
      r.set_holder(absl::StrCat("ledger-", i));
      auto out = catalog_->campaigns().LeaseCampaignBudget(kLedgerService, r);
      if (out.ok()) {
        granted += out->lease().granted_points();
      } else if (absl::IsFailedPrecondition(out.status())) {
        ++exhausted;
      } else {
        ++other;
        ADD_FAILURE() << out.status();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(granted.load(), kBudget);
  EXPECT_GT(exhausted.load(), 0);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(Count("SELECT SUM(granted_points) FROM campaign_budget_leases"), kBudget);
  v1::GetCampaignRequest g;
  g.set_campaign_id(c.campaign_id());
  auto after = catalog_->campaigns().GetCampaign(kBackoffice, g);
  EXPECT_EQ(after->campaign().budget_allocated_points(), kBudget);
  EXPECT_EQ(after->campaign().budget_remaining_points(), 0);
}

TEST_F(CampaignTest, ReturnedBudgetCanBeLeasedAgain) {
  v1::Campaign c = Create(DoublePoints(100));
  v1::LeaseCampaignBudgetRequest lease;
  lease.set_idempotency_key("l1");
  lease.set_campaign_id(c.campaign_id());
  lease.set_requested_points(80);
  lease.set_holder("ledger-a");
  EXPECT_EQ(catalog_->campaigns().LeaseCampaignBudget(kLedgerService, lease).status().code(),
            absl::StatusCode::kFailedPrecondition);  // draft
  ASSERT_TRUE(SetState(c.campaign_id(), v1::CAMPAIGN_STATE_ACTIVE).ok());
  lease.set_idempotency_key("l2");
  auto first = catalog_->campaigns().LeaseCampaignBudget(kLedgerService, lease);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->lease().granted_points(), 80);
  EXPECT_EQ(first->budget_remaining_points(), 20);
  // Idempotent by key: the same lease again.
  auto replay = catalog_->campaigns().LeaseCampaignBudget(kLedgerService, lease);
  EXPECT_EQ(replay->lease().campaign_budget_lease_id(), first->lease().campaign_budget_lease_id());
  lease.set_idempotency_key("l3");
  auto partial = catalog_->campaigns().LeaseCampaignBudget(kLedgerService, lease);
  ASSERT_TRUE(partial.ok());
  EXPECT_EQ(partial->lease().granted_points(), 20);

  v1::ReturnCampaignBudgetRequest ret;
  ret.set_idempotency_key("r1");
  ret.set_campaign_budget_lease_id(first->lease().campaign_budget_lease_id());
  ret.set_used_points(50);
  ret.set_unused_points(20);
  EXPECT_EQ(catalog_->campaigns().ReturnCampaignBudget(kLedgerService, ret).status().code(),
            absl::StatusCode::kInvalidArgument);
  ret.set_unused_points(30);
  auto returned = catalog_->campaigns().ReturnCampaignBudget(kLedgerService, ret);
  ASSERT_TRUE(returned.ok()) << returned.status();
  EXPECT_EQ(returned->lease().returned_points(), 30);
  EXPECT_EQ(returned->budget_remaining_points(), 30);
  ret.set_idempotency_key("r2");
  EXPECT_EQ(catalog_->campaigns().ReturnCampaignBudget(kLedgerService, ret).status().code(),
            absl::StatusCode::kFailedPrecondition);

  v1::UpdateCampaignRequest up;
  up.set_idempotency_key("u1");
  up.set_campaign_id(c.campaign_id());
  up.mutable_campaign()->set_budget_points(60);
  up.mutable_update_mask()->add_paths("budget_points");
  EXPECT_EQ(catalog_->campaigns().UpdateCampaign(kBackoffice, up).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(CampaignTest, QuoteEarnDelegatesToTheLedger) {
  v1::QuoteEarnRequest q;
  q.set_partner_id("food");
  q.set_member_id("m1");
  q.mutable_amount()->set_amount_minor(2500);
  q.mutable_amount()->set_currency("EUR");
  auto* line = q.add_lines();
  line->set_category("dog");
  EXPECT_EQ(catalog_->campaigns().QuoteEarn(kVet, q).status().code(), absl::StatusCode::kPermissionDenied);
  auto quoted = catalog_->campaigns().QuoteEarn(kFood, q);
  ASSERT_TRUE(quoted.ok()) << quoted.status();
  EXPECT_EQ(quoted->points(), 25);
  EXPECT_EQ(ledger_.last_quote().member_id(), "m1");
  EXPECT_EQ(ledger_.last_quote().lines(0).category(), "dog");
}

}  // namespace
}  // namespace loyalty::catalog
