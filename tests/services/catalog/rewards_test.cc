// Rewards (services/catalog/rewards.h) on the real MySQL store: creating,
// proposing, updating, states, stock, and the lists of rewards (all, and
// those a member could redeem now). The fixture is catalog_fixture.h.

#include <algorithm>
#include <atomic>
#include <iostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/testing/allowed_roles.h"
#include "common/time/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/catalog/codes.h"
#include "tests/services/catalog/catalog_fixture.h"

namespace loyalty::catalog {
namespace {

using ::testing::HasSubstr;
using testing::CatalogTest;
using testing::kBackoffice;
using testing::kFood;
using testing::kVet;

TEST_F(CatalogTest, CreateRewardIsDraftAndIdempotent) {
  v1::CreateRewardRequest r;
  r.set_idempotency_key("k1");
  *r.mutable_reward() = Reward();
  auto first = catalog_->rewards().CreateReward(kBackoffice, r);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->reward().state(), v1::REWARD_STATE_DRAFT);
  EXPECT_EQ(first->reward().stock_available(), 10);
  EXPECT_EQ(first->reward().version(), 1);
  auto again = catalog_->rewards().CreateReward(kBackoffice, r);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->reward().reward_id(), first->reward().reward_id());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM rewards"), 1);

  r.mutable_reward()->set_points_price(999);
  auto reused = catalog_->rewards().CreateReward(kBackoffice, r);
  EXPECT_EQ(reused.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(reused.status().message(), HasSubstr("reward.points_price"));
}

TEST_F(CatalogTest, CreateRewardRefusesBadInputNamingTheField) {
  v1::CreateRewardRequest r;
  r.set_idempotency_key("bad");
  *r.mutable_reward() = Reward();
  r.mutable_reward()->set_points_price(-1);
  auto s = catalog_->rewards().CreateReward(kBackoffice, r);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.status().message(), HasSubstr("reward.points_price"));
  // Not remembered: the corrected request may reuse the key.
  r.mutable_reward()->set_points_price(10);
  EXPECT_TRUE(catalog_->rewards().CreateReward(kBackoffice, r).ok());
}

TEST_F(CatalogTest, CreateRewardNeedsAKnownMinimumTier) {
  v1::CreateRewardRequest r;
  r.set_idempotency_key("tier");
  *r.mutable_reward() = Reward();
  r.mutable_reward()->set_min_tier_id("diamond");
  auto s = catalog_->rewards().CreateReward(kBackoffice, r);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.status().message(), HasSubstr("reward.min_tier_id"));
  r.mutable_reward()->set_min_tier_id("gold");
  EXPECT_TRUE(catalog_->rewards().CreateReward(kBackoffice, r).ok());
}

TEST_F(CatalogTest, PartnerProposesOnlyForItselfAndCannotActivate) {
  v1::ProposeRewardRequest p;
  p.set_idempotency_key("p1");
  *p.mutable_reward() = Reward();
  auto other = catalog_->rewards().ProposeReward(kFood, p);
  EXPECT_EQ(other.status().code(), absl::StatusCode::kPermissionDenied);
  auto proposed = catalog_->rewards().ProposeReward(kVet, p);
  ASSERT_TRUE(proposed.ok()) << proposed.status();
  EXPECT_EQ(proposed->reward().state(), v1::REWARD_STATE_DRAFT);
  EXPECT_EQ(proposed->reward().proposed_by_partner_id(), "vet");

  v1::SetRewardStateRequest activate;
  activate.set_idempotency_key("a1");
  activate.set_reward_id(proposed->reward().reward_id());
  activate.set_state(v1::REWARD_STATE_ACTIVE);
  // Roles are the proto's (allowed_roles), checked by the RpcGuard before the
  // domain runs: a partner key may not call SetRewardState at all.
  EXPECT_EQ(loyalty::testing::RoleCheck(kVet, "loyalty.catalog.v1.CatalogService.SetRewardState").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(loyalty::testing::RoleCheck(kBackoffice, "loyalty.catalog.v1.CatalogService.SetRewardState").ok());

  // Another partner does not see the draft; its proposer does.
  v1::GetRewardRequest get;
  get.set_reward_id(proposed->reward().reward_id());
  EXPECT_EQ(catalog_->rewards().GetReward(kFood, get).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(catalog_->rewards().GetReward(kVet, get).ok());
}

TEST_F(CatalogTest, UpdateStateAndStock) {
  v1::Reward r = Active(Reward(5));
  v1::UpdateRewardRequest up;
  up.set_idempotency_key("u1");
  up.set_reward_id(r.reward_id());
  up.mutable_reward()->set_points_price(250);
  up.mutable_update_mask()->add_paths("points_price");
  up.set_expected_version(r.version());
  auto updated = catalog_->rewards().UpdateReward(kBackoffice, up);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->reward().points_price(), 250);
  EXPECT_EQ(updated->reward().names(0).text(), "Free check-up");
  EXPECT_EQ(updated->reward().version(), r.version() + 1);

  up.set_idempotency_key("u2");
  auto stale = catalog_->rewards().UpdateReward(kBackoffice, up);
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted);

  v1::AdjustRewardStockRequest adj;
  adj.set_idempotency_key("s1");
  adj.set_reward_id(r.reward_id());
  adj.set_delta_units(-6);
  adj.set_reason("count");
  auto below = catalog_->rewards().AdjustRewardStock(kBackoffice, adj);
  EXPECT_EQ(below.status().code(), absl::StatusCode::kFailedPrecondition);
  adj.set_idempotency_key("s2");
  adj.set_delta_units(7);
  auto added = catalog_->rewards().AdjustRewardStock(kBackoffice, adj);
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ(added->reward().stock_available(), 12);

  v1::SetRewardStateRequest st;
  st.set_idempotency_key("st1");
  st.set_reward_id(r.reward_id());
  st.set_state(v1::REWARD_STATE_DRAFT);
  EXPECT_EQ(catalog_->rewards().SetRewardState(kBackoffice, st).status().code(), absl::StatusCode::kFailedPrecondition);
  st.set_idempotency_key("st2");
  st.set_state(v1::REWARD_STATE_RETIRED);
  ASSERT_TRUE(catalog_->rewards().SetRewardState(kBackoffice, st).ok());
  up.set_idempotency_key("u3");
  up.set_expected_version(0);
  EXPECT_EQ(catalog_->rewards().UpdateReward(kBackoffice, up).status().code(), absl::StatusCode::kFailedPrecondition);

  v1::GetRewardRequest get;
  get.set_reward_id("rw_missing");
  EXPECT_EQ(catalog_->rewards().GetReward(kBackoffice, get).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CatalogTest, ListRewardsPagesAndFilters) {
  for (int i = 0; i < 5; ++i) Active(Reward());
  v1::Reward food = Reward();
  food.set_partner_id("food");
  food.set_category("pet-food");
  Active(food);
  v1::ListRewardsRequest list;
  list.set_page_size(2);
  list.set_partner_id("vet");
  std::set<std::string> seen;
  for (int page = 0; page < 10; ++page) {
    auto got = catalog_->rewards().ListRewards(kBackoffice, list);
    ASSERT_TRUE(got.ok()) << got.status();
    for (const auto& r : got->rewards()) {
      EXPECT_EQ(r.partner_id(), "vet");
      EXPECT_TRUE(seen.insert(r.reward_id()).second);
    }
    if (got->next_page_token().empty()) break;
    list.set_page_token(got->next_page_token());
  }
  EXPECT_EQ(seen.size(), 5u);
  list.set_partner_id("food");
  EXPECT_EQ(catalog_->rewards().ListRewards(kBackoffice, list).status().code(), absl::StatusCode::kInvalidArgument);
  list.clear_page_token();
  list.set_category("pet-food");
  auto foods = catalog_->rewards().ListRewards(kBackoffice, list);
  ASSERT_TRUE(foods.ok());
  EXPECT_EQ(foods->rewards_size(), 1);
}

TEST_F(CatalogTest, RedeemableRewardsFollowTierStockBalanceAndLimits) {
  ledger_.SetPoints("m1", 500);
  members_.SetTier("m1", "silver");
  v1::Reward cheap = Active(Reward(5, 100));
  v1::Reward exact = Active(Reward(5, 500));
  Active(Reward(5, 501));  // too expensive
  Active(Reward(0, 10));   // out of stock
  v1::Reward gold = Reward(5, 50);
  gold.set_min_tier_id("gold");
  Active(gold);  // tier too low
  v1::Reward silver = Reward(5, 60);
  silver.set_min_tier_id("silver");
  silver = Active(silver);
  v1::Reward once = Reward(5, 70);
  once.set_per_member_limit(1);
  once.set_per_member_limit_period(v1::LIMIT_PERIOD_YEAR);
  once = Active(once);
  v1::Reward food = Reward(5, 80);
  food.set_partner_id("food");
  food.set_category("pet-food");
  food = Active(food);

  v1::ListRedeemableRewardsRequest l;
  l.set_member_id("m1");
  l.set_page_size(2);
  std::vector<std::string> ids;
  for (int page = 0; page < 10; ++page) {
    auto got = catalog_->rewards().ListRedeemableRewards(kBackoffice, l);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->available_points(), 500);
    EXPECT_EQ(got->tier_id(), "silver");
    for (const auto& item : got->rewards()) {
      ids.push_back(item.reward().reward_id());
      if (item.reward().reward_id() == once.reward_id()) {
        EXPECT_TRUE(item.has_member_limit());
        EXPECT_EQ(item.member_remaining_redemptions(), 1);
      }
    }
    if (got->next_page_token().empty()) break;
    l.set_page_token(got->next_page_token());
  }
  // By price: silver 60, once 70, food 80, cheap 100, exact 500.
  EXPECT_EQ(ids, (std::vector<std::string>{silver.reward_id(), once.reward_id(), food.reward_id(), cheap.reward_id(),
                                           exact.reward_id()}));

  ASSERT_TRUE(Redeem("once", "m1", once.reward_id()).ok());  // 430 left; limit used
  l.clear_page_token();
  l.set_page_size(50);
  l.set_category("pet-food");
  auto foods = catalog_->rewards().ListRedeemableRewards(kBackoffice, l);
  ASSERT_TRUE(foods.ok());
  ASSERT_EQ(foods->rewards_size(), 1);
  EXPECT_EQ(foods->rewards(0).reward().reward_id(), food.reward_id());
  l.clear_category();
  auto after = catalog_->rewards().ListRedeemableRewards(kBackoffice, l);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->available_points(), 430);
  EXPECT_EQ(after->rewards_size(), 3);  // silver, food, cheap

  // A partner sees only members that share with it.
  EXPECT_EQ(catalog_->rewards().ListRedeemableRewards(kVet, l).status().code(), absl::StatusCode::kNotFound);
  members_.ShareWith("m1", "vet");
  EXPECT_TRUE(catalog_->rewards().ListRedeemableRewards(kVet, l).ok());
}

}  // namespace
}  // namespace loyalty::catalog
