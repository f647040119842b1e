// Catalog use cases on the real MySQL store (a throwaway schema on the test
// MariaDB). The ledger and membership are fakes (tests/services/catalog/
// fakes.h): other services, not the database. The fake ledger is thread-safe
// and idempotent by key like the real one, and fails where a test tells it.

#include <algorithm>
#include <atomic>
#include <iostream>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/db/migrations.h"
#include "common/testing/test_db.h"
#include "common/time/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/catalog/catalog.h"
#include "services/catalog/codes.h"
#include "services/catalog/mysql_catalog_store.h"
#include "tests/services/catalog/fakes.h"

namespace loyalty::catalog {
const std::vector<db::MigrationFile>& Migrations();

namespace {

using ::testing::HasSubstr;
using auth::Principal;
using testing::FakeLedger;
using testing::FakeMembers;
using testing::TestClock;

const Principal kBackoffice = Principal::Of("bo000000000000001", common::v1::ROLE_BACKOFFICE);
const Principal kVet = Principal::Partner("vet0000000000001", "vet");
const Principal kFood = Principal::Partner("food000000000001", "food");

class CatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = loyalty::testing::TestDatabase::Create("catalog");
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    auto pool = db_->NewPool(24);
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = *std::move(pool);
    auto applied = db::ApplyMigrations(*pool_, Migrations());
    ASSERT_TRUE(applied.ok()) << applied.status();
    store_ = NewMysqlCatalogStore(*pool_);
    MakeCatalog({});
  }

  void MakeCatalog(std::function<absl::Status(SagaPoint)> crash_at) {
    CatalogOptions options;
    options.now = [this] { return clock_.Now(); };
    options.crash_at = std::move(crash_at);
    catalog_ = std::make_unique<Catalog>(*store_, ledger_, members_, options);
  }

  v1::Reward Reward(int64_t stock = 10, int64_t price = 100) {
    v1::Reward r;
    auto* name = r.add_names();
    name->set_language("en");
    name->set_text("Free check-up");
    r.set_reward_type(v1::REWARD_TYPE_FREE_ITEM);
    r.set_points_price(price);
    r.set_partner_id("vet");
    r.set_category("vet-care");
    r.set_stock_available(stock);
    r.set_voucher_validity_days(30);
    return r;
  }

  // Creates and activates a reward.
  v1::Reward Active(v1::Reward r) {
    v1::CreateRewardRequest create;
    create.set_idempotency_key(absl::StrCat("create-", ++keys_));
    *create.mutable_reward() = r;
    auto created = catalog_->CreateReward(kBackoffice, create);
    EXPECT_TRUE(created.ok()) << created.status();
    v1::SetRewardStateRequest activate;
    activate.set_idempotency_key(absl::StrCat("activate-", ++keys_));
    activate.set_reward_id(created->reward().reward_id());
    activate.set_state(v1::REWARD_STATE_ACTIVE);
    auto active = catalog_->SetRewardState(kBackoffice, activate);
    EXPECT_TRUE(active.ok()) << active.status();
    return active->reward();
  }

  absl::StatusOr<v1::RedeemResponse> Redeem(const std::string& key, const std::string& member,
                                            const std::string& reward_id) {
    v1::RedeemRequest r;
    r.set_idempotency_key(key);
    r.set_member_id(member);
    r.set_reward_id(reward_id);
    return catalog_->Redeem(kBackoffice, r);
  }

  v1::Reward Get(const std::string& reward_id) {
    v1::GetRewardRequest r;
    r.set_reward_id(reward_id);
    auto got = catalog_->GetReward(kBackoffice, r);
    EXPECT_TRUE(got.ok()) << got.status();
    return got->reward();
  }

  int64_t Count(const std::string& sql) {
    auto n = loyalty::testing::QueryIntForTest(*pool_, sql);
    EXPECT_TRUE(n.ok()) << n.status();
    return n.ok() ? *n : -1;
  }

  // No points held or taken without a voucher, no voucher without its hold,
  // no stock reserved for nothing; every saga finished.
  void ExpectConsistent(const std::string& reward_id) {
    std::map<std::string, v1::VoucherState> voucher_of_hold;
    v1::ListVouchersRequest list;
    list.set_partner_id("vet");
    list.set_page_size(500);
    auto vouchers = catalog_->ListVouchers(kBackoffice, list);
    ASSERT_TRUE(vouchers.ok()) << vouchers.status();
    int issued = 0, honoured = 0;
    for (const auto& v : vouchers->vouchers()) {
      voucher_of_hold[v.hold_id()] = v.state();
      if (v.reward_id() != reward_id) continue;
      if (v.state() == v1::VOUCHER_STATE_ISSUED) ++issued;
      if (v.state() == v1::VOUCHER_STATE_HONOURED) ++honoured;
    }
    for (const auto& [id, h] : ledger_.Holds()) {
      auto it = voucher_of_hold.find(id);
      if (h.state == ledger::v1::HOLD_STATE_PENDING) {
        ASSERT_NE(it, voucher_of_hold.end()) << "points held without a voucher: " << id;
        EXPECT_EQ(it->second, v1::VOUCHER_STATE_ISSUED) << id;
      }
      if (h.state == ledger::v1::HOLD_STATE_CAPTURED) {
        ASSERT_NE(it, voucher_of_hold.end()) << "points taken without a voucher: " << id;
        EXPECT_EQ(it->second, v1::VOUCHER_STATE_HONOURED) << id;
      }
    }
    for (const auto& [hold_id, state] : voucher_of_hold) {
      auto h = ledger_.Holds().at(hold_id);
      if (state == v1::VOUCHER_STATE_ISSUED) {
        EXPECT_EQ(h.state, ledger::v1::HOLD_STATE_PENDING) << hold_id;
      }
      if (state == v1::VOUCHER_STATE_HONOURED) {
        EXPECT_EQ(h.state, ledger::v1::HOLD_STATE_CAPTURED) << hold_id;
      }
      if (state == v1::VOUCHER_STATE_CANCELLED || state == v1::VOUCHER_STATE_EXPIRED) {
        EXPECT_TRUE(h.state == ledger::v1::HOLD_STATE_VOIDED || h.state == ledger::v1::HOLD_STATE_EXPIRED) << hold_id;
      }
    }
    v1::Reward r = Get(reward_id);
    EXPECT_EQ(r.stock_reserved(), issued) << "stock reserved for nothing";
    EXPECT_EQ(r.stock_honoured(), honoured);
    EXPECT_EQ(Count("SELECT COUNT(*) FROM redemptions WHERE state IN (1, 3)"), 0) << "unfinished sagas";
  }

  std::unique_ptr<loyalty::testing::TestDatabase> db_;
  std::unique_ptr<db::ConnectionPool> pool_;
  std::unique_ptr<CatalogStore> store_;
  TestClock clock_;
  FakeLedger ledger_{clock_};
  FakeMembers members_;
  std::unique_ptr<Catalog> catalog_;
  int keys_ = 0;
};

// ---- rewards ----------------------------------------------------------------------

TEST_F(CatalogTest, CreateRewardIsDraftAndIdempotent) {
  v1::CreateRewardRequest r;
  r.set_idempotency_key("k1");
  *r.mutable_reward() = Reward();
  auto first = catalog_->CreateReward(kBackoffice, r);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->reward().state(), v1::REWARD_STATE_DRAFT);
  EXPECT_EQ(first->reward().stock_available(), 10);
  EXPECT_EQ(first->reward().version(), 1);
  auto again = catalog_->CreateReward(kBackoffice, r);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->reward().reward_id(), first->reward().reward_id());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM rewards"), 1);

  r.mutable_reward()->set_points_price(999);
  auto reused = catalog_->CreateReward(kBackoffice, r);
  EXPECT_EQ(reused.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(reused.status().message(), HasSubstr("reward.points_price"));
}

TEST_F(CatalogTest, CreateRewardRefusesBadInputNamingTheField) {
  v1::CreateRewardRequest r;
  r.set_idempotency_key("bad");
  *r.mutable_reward() = Reward();
  r.mutable_reward()->set_points_price(-1);
  auto s = catalog_->CreateReward(kBackoffice, r);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.status().message(), HasSubstr("reward.points_price"));
  // Not remembered: the corrected request may reuse the key.
  r.mutable_reward()->set_points_price(10);
  EXPECT_TRUE(catalog_->CreateReward(kBackoffice, r).ok());
}

TEST_F(CatalogTest, CreateRewardNeedsAKnownMinimumTier) {
  v1::CreateRewardRequest r;
  r.set_idempotency_key("tier");
  *r.mutable_reward() = Reward();
  r.mutable_reward()->set_min_tier_id("diamond");
  auto s = catalog_->CreateReward(kBackoffice, r);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.status().message(), HasSubstr("reward.min_tier_id"));
  r.mutable_reward()->set_min_tier_id("gold");
  EXPECT_TRUE(catalog_->CreateReward(kBackoffice, r).ok());
}

TEST_F(CatalogTest, PartnerProposesOnlyForItselfAndCannotActivate) {
  v1::ProposeRewardRequest p;
  p.set_idempotency_key("p1");
  *p.mutable_reward() = Reward();
  auto other = catalog_->ProposeReward(kFood, p);
  EXPECT_EQ(other.status().code(), absl::StatusCode::kPermissionDenied);
  auto proposed = catalog_->ProposeReward(kVet, p);
  ASSERT_TRUE(proposed.ok()) << proposed.status();
  EXPECT_EQ(proposed->reward().state(), v1::REWARD_STATE_DRAFT);
  EXPECT_EQ(proposed->reward().proposed_by_partner_id(), "vet");

  v1::SetRewardStateRequest activate;
  activate.set_idempotency_key("a1");
  activate.set_reward_id(proposed->reward().reward_id());
  activate.set_state(v1::REWARD_STATE_ACTIVE);
  EXPECT_EQ(catalog_->SetRewardState(kVet, activate).status().code(), absl::StatusCode::kPermissionDenied);

  // Another partner does not see the draft; its proposer does.
  v1::GetRewardRequest get;
  get.set_reward_id(proposed->reward().reward_id());
  EXPECT_EQ(catalog_->GetReward(kFood, get).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(catalog_->GetReward(kVet, get).ok());
}

TEST_F(CatalogTest, UpdateStateAndStock) {
  v1::Reward r = Active(Reward(5));
  v1::UpdateRewardRequest up;
  up.set_idempotency_key("u1");
  up.set_reward_id(r.reward_id());
  up.mutable_reward()->set_points_price(250);
  up.mutable_update_mask()->add_paths("points_price");
  up.set_expected_version(r.version());
  auto updated = catalog_->UpdateReward(kBackoffice, up);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->reward().points_price(), 250);
  EXPECT_EQ(updated->reward().names(0).text(), "Free check-up");
  EXPECT_EQ(updated->reward().version(), r.version() + 1);

  up.set_idempotency_key("u2");
  auto stale = catalog_->UpdateReward(kBackoffice, up);
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted);

  v1::AdjustRewardStockRequest adj;
  adj.set_idempotency_key("s1");
  adj.set_reward_id(r.reward_id());
  adj.set_delta_units(-6);
  adj.set_reason("count");
  auto below = catalog_->AdjustRewardStock(kBackoffice, adj);
  EXPECT_EQ(below.status().code(), absl::StatusCode::kFailedPrecondition);
  adj.set_idempotency_key("s2");
  adj.set_delta_units(7);
  auto added = catalog_->AdjustRewardStock(kBackoffice, adj);
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ(added->reward().stock_available(), 12);

  v1::SetRewardStateRequest st;
  st.set_idempotency_key("st1");
  st.set_reward_id(r.reward_id());
  st.set_state(v1::REWARD_STATE_DRAFT);
  EXPECT_EQ(catalog_->SetRewardState(kBackoffice, st).status().code(), absl::StatusCode::kFailedPrecondition);
  st.set_idempotency_key("st2");
  st.set_state(v1::REWARD_STATE_RETIRED);
  ASSERT_TRUE(catalog_->SetRewardState(kBackoffice, st).ok());
  up.set_idempotency_key("u3");
  up.set_expected_version(0);
  EXPECT_EQ(catalog_->UpdateReward(kBackoffice, up).status().code(), absl::StatusCode::kFailedPrecondition);

  v1::GetRewardRequest get;
  get.set_reward_id("rw_missing");
  EXPECT_EQ(catalog_->GetReward(kBackoffice, get).status().code(), absl::StatusCode::kNotFound);
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
    auto got = catalog_->ListRewards(kBackoffice, list);
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
  EXPECT_EQ(catalog_->ListRewards(kBackoffice, list).status().code(), absl::StatusCode::kInvalidArgument);
  list.clear_page_token();
  list.set_category("pet-food");
  auto foods = catalog_->ListRewards(kBackoffice, list);
  ASSERT_TRUE(foods.ok());
  EXPECT_EQ(foods->rewards_size(), 1);
}

// ---- redeem -------------------------------------------------------------------------

TEST_F(CatalogTest, RedeemHoldsReservesAndIssuesOnce) {
  ledger_.SetPoints("m1", 1000);
  v1::Reward r = Active(Reward(3, 300));
  auto redeemed = Redeem("r1", "m1", r.reward_id());
  ASSERT_TRUE(redeemed.ok()) << redeemed.status();
  const v1::Voucher& v = redeemed->voucher();
  EXPECT_EQ(v.state(), v1::VOUCHER_STATE_ISSUED);
  EXPECT_EQ(v.points(), 300);
  EXPECT_EQ(v.partner_id(), "vet");
  EXPECT_EQ(v.voucher_code().size(), 14u);
  EXPECT_EQ(redeemed->available_points(), 700);
  EXPECT_EQ(FromProtoTime(v.expires_at()) - FromProtoTime(v.issued_at()), absl::Hours(24 * 30));
  v1::Reward after = Get(r.reward_id());
  EXPECT_EQ(after.stock_available(), 2);
  EXPECT_EQ(after.stock_reserved(), 1);

  auto again = Redeem("r1", "m1", r.reward_id());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->voucher().voucher_code(), v.voucher_code());
  EXPECT_EQ(ledger_.Holds().size(), 1u);
  auto other_reward = Redeem("r1", "m2", r.reward_id());
  EXPECT_EQ(other_reward.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(other_reward.status().message(), HasSubstr("member_id"));
  ExpectConsistent(r.reward_id());
}

TEST_F(CatalogTest, RedeemRefusals) {
  ledger_.SetPoints("rich", 100000);
  ledger_.SetPoints("poor", 10);
  v1::Reward r = Active(Reward(1, 100));

  auto poor = Redeem("poor-1", "poor", r.reward_id());
  EXPECT_EQ(poor.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(poor.status().message(), HasSubstr("not enough points"));
  // Remembered: the same key answers the same, without a second hold.
  const int calls = ledger_.authorize_calls();
  EXPECT_EQ(Redeem("poor-1", "poor", r.reward_id()).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ledger_.authorize_calls(), calls);

  ASSERT_TRUE(Redeem("rich-1", "rich", r.reward_id()).ok());
  auto out = Redeem("rich-2", "rich", r.reward_id());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(out.status().message(), HasSubstr("out of stock"));

  EXPECT_EQ(Redeem("missing", "rich", "rw_nothing").status().code(), absl::StatusCode::kNotFound);

  v1::Reward gold = Reward(10, 100);
  gold.set_min_tier_id("gold");
  gold = Active(gold);
  auto below = Redeem("tier-1", "rich", gold.reward_id());
  EXPECT_EQ(below.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(below.status().message(), HasSubstr("tier"));
  members_.SetTier("rich", "gold");
  EXPECT_TRUE(Redeem("tier-2", "rich", gold.reward_id()).ok());

  v1::Reward limited = Reward(10, 100);
  limited.set_per_member_limit(2);
  limited.set_per_member_limit_period(v1::LIMIT_PERIOD_MONTH);
  limited = Active(limited);
  EXPECT_TRUE(Redeem("lim-1", "rich", limited.reward_id()).ok());
  EXPECT_TRUE(Redeem("lim-2", "rich", limited.reward_id()).ok());
  auto limit = Redeem("lim-3", "rich", limited.reward_id());
  EXPECT_EQ(limit.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(limit.status().message(), HasSubstr("limit"));
  // Next month the limit starts again.
  clock_.Advance(absl::Hours(24 * 31));
  EXPECT_TRUE(Redeem("lim-4", "rich", limited.reward_id()).ok());

  v1::Reward draft;
  {
    v1::CreateRewardRequest c;
    c.set_idempotency_key("draft");
    *c.mutable_reward() = Reward();
    draft = catalog_->CreateReward(kBackoffice, c)->reward();
  }
  auto inactive = Redeem("draft-1", "rich", draft.reward_id());
  EXPECT_EQ(inactive.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(inactive.status().message(), HasSubstr("not active"));
  // The month moved the first vouchers past their expiry: the sweep
  // releases them.
  EXPECT_EQ(*catalog_->ExpireVouchers(100), 4);
  ExpectConsistent(r.reward_id());
  ExpectConsistent(limited.reward_id());
}

TEST_F(CatalogTest, PartnerRedeemsOnlyThroughItsOwnChannel) {
  ledger_.SetPoints("m1", 1000);
  v1::Reward r = Active(Reward());
  v1::RedeemRequest req;
  req.set_idempotency_key("c1");
  req.set_member_id("m1");
  req.set_reward_id(r.reward_id());
  req.set_channel_partner_id("vet");
  EXPECT_EQ(catalog_->Redeem(kFood, req).status().code(), absl::StatusCode::kPermissionDenied);
  auto ok = catalog_->Redeem(kVet, req);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->voucher().channel_partner_id(), "vet");
}

TEST_F(CatalogTest, HundredConcurrentRedemptionsOfTenUnits) {
  constexpr int kMembers = 100;
  for (int i = 0; i < kMembers; ++i) ledger_.SetPoints(absl::StrCat("m", i), 1000);
  v1::Reward r = Active(Reward(10, 100));
  std::atomic<int> ok{0}, out_of_stock{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kMembers; ++i) {
    threads.emplace_back([&, i] {
      auto res = Redeem(absl::StrCat("c-", i), absl::StrCat("m", i), r.reward_id());
      if (res.ok()) {
        ++ok;
      } else if (absl::IsFailedPrecondition(res.status()) &&
                 res.status().message().find("out of stock") != absl::string_view::npos) {
        ++out_of_stock;
      } else {
        ++other;
        ADD_FAILURE() << res.status();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 10);
  EXPECT_EQ(out_of_stock.load(), 90);
  EXPECT_EQ(other.load(), 0);
  v1::Reward after = Get(r.reward_id());
  EXPECT_EQ(after.stock_available(), 0);
  EXPECT_EQ(after.stock_reserved(), 10);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM vouchers"), 10);
  int pending = 0;
  for (const auto& [id, h] : ledger_.Holds()) pending += h.state == ledger::v1::HOLD_STATE_PENDING;
  EXPECT_EQ(pending, 10);
  ExpectConsistent(r.reward_id());
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
    auto got = catalog_->ListRedeemableRewards(kBackoffice, l);
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
  auto foods = catalog_->ListRedeemableRewards(kBackoffice, l);
  ASSERT_TRUE(foods.ok());
  ASSERT_EQ(foods->rewards_size(), 1);
  EXPECT_EQ(foods->rewards(0).reward().reward_id(), food.reward_id());
  l.clear_category();
  auto after = catalog_->ListRedeemableRewards(kBackoffice, l);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->available_points(), 430);
  EXPECT_EQ(after->rewards_size(), 3);  // silver, food, cheap

  // A partner sees only members that share with it.
  EXPECT_EQ(catalog_->ListRedeemableRewards(kVet, l).status().code(), absl::StatusCode::kNotFound);
  members_.ShareWith("m1", "vet");
  EXPECT_TRUE(catalog_->ListRedeemableRewards(kVet, l).ok());
}

// ---- saga failure points ------------------------------------------------------------

TEST_F(CatalogTest, LedgerUnreachableBeforeTheHoldIsCompensated) {
  ledger_.SetPoints("m1", 1000);
  v1::Reward r = Active(Reward(5));
  ledger_.Inject([](FakeLedger& l) { l.fail_authorize_unplaced = 1; });
  auto res = Redeem("k", "m1", r.reward_id());
  EXPECT_EQ(res.status().code(), absl::StatusCode::kUnavailable);
  // Compensation asked again with the same key, which placed the hold: it
  // was voided at once.
  for (const auto& [id, h] : ledger_.Holds()) EXPECT_NE(h.state, ledger::v1::HOLD_STATE_PENDING);
  EXPECT_EQ(Get(r.reward_id()).stock_available(), 5);
  ExpectConsistent(r.reward_id());
  // The same key then succeeds (a new attempt).
  auto retry = Redeem("k", "m1", r.reward_id());
  ASSERT_TRUE(retry.ok()) << retry.status();
  ExpectConsistent(r.reward_id());
}

TEST_F(CatalogTest, HoldPlacedButAnswerLostIsVoided) {
  ledger_.SetPoints("m1", 1000);
  v1::Reward r = Active(Reward(5));
  ledger_.Inject([](FakeLedger& l) { l.fail_authorize_lost = 1; });
  EXPECT_EQ(Redeem("k", "m1", r.reward_id()).status().code(), absl::StatusCode::kUnavailable);
  ASSERT_EQ(ledger_.Holds().size(), 1u);
  EXPECT_EQ(ledger_.Holds().begin()->second.state, ledger::v1::HOLD_STATE_VOIDED);
  EXPECT_EQ(*ledger_.AvailablePoints("m1"), 1000);
  ExpectConsistent(r.reward_id());
}

TEST_F(CatalogTest, CrashAfterClaimIsRecovered) {
  ledger_.SetPoints("m1", 1000);
  v1::Reward r = Active(Reward(5));
  MakeCatalog([](SagaPoint p) {
    return p == SagaPoint::kClaimed ? absl::InternalError("crash") : absl::OkStatus();
  });
  EXPECT_FALSE(Redeem("k", "m1", r.reward_id()).ok());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM redemptions WHERE state = 1"), 1);
  // Meanwhile a retry is told to wait.
  EXPECT_EQ(Redeem("k", "m1", r.reward_id()).status().code(), absl::StatusCode::kAborted);
  MakeCatalog({});  // restart
  auto repaired = catalog_->Recover(100, /*everything=*/true);
  ASSERT_TRUE(repaired.ok()) << repaired.status();
  EXPECT_EQ(*repaired, 1);
  for (const auto& [id, h] : ledger_.Holds()) EXPECT_NE(h.state, ledger::v1::HOLD_STATE_PENDING);
  EXPECT_EQ(*ledger_.AvailablePoints("m1"), 1000);
  ExpectConsistent(r.reward_id());
  // Retrying with the same key redeems.
  EXPECT_TRUE(Redeem("k", "m1", r.reward_id()).ok());
  ExpectConsistent(r.reward_id());
}

TEST_F(CatalogTest, CrashAfterHoldIsRecovered) {
  ledger_.SetPoints("m1", 1000);
  v1::Reward r = Active(Reward(5));
  MakeCatalog([](SagaPoint p) { return p == SagaPoint::kHeld ? absl::InternalError("crash") : absl::OkStatus(); });
  EXPECT_FALSE(Redeem("k", "m1", r.reward_id()).ok());
  ASSERT_EQ(ledger_.Holds().size(), 1u);
  EXPECT_EQ(ledger_.Holds().begin()->second.state, ledger::v1::HOLD_STATE_PENDING);  // held, no voucher
  MakeCatalog({});
  // Not yet past the grace period: a running saga is left alone.
  EXPECT_EQ(*catalog_->Recover(100), 0);
  clock_.Advance(absl::Minutes(5));
  EXPECT_EQ(*catalog_->Recover(100), 1);
  EXPECT_EQ(ledger_.Holds().begin()->second.state, ledger::v1::HOLD_STATE_VOIDED);
  EXPECT_EQ(Get(r.reward_id()).stock_available(), 5);
  ExpectConsistent(r.reward_id());
}

TEST_F(CatalogTest, CrashBeforeCompensationIsRecovered) {
  ledger_.SetPoints("m1", 1000);
  ledger_.SetPoints("m2", 1000);
  v1::Reward r = Active(Reward(1));
  // m2 passes the pre-check, then m1 takes the last unit while m2 holds.
  std::atomic<bool> once{false};
  MakeCatalog([&](SagaPoint p) -> absl::Status {
    if (p == SagaPoint::kHeld && !once.exchange(true)) {
      EXPECT_TRUE(Redeem("k1", "m1", r.reward_id()).ok());
    }
    if (p == SagaPoint::kCompensating) return absl::InternalError("crash");
    return absl::OkStatus();
  });
  EXPECT_FALSE(Redeem("k2", "m2", r.reward_id()).ok());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM redemptions WHERE state = 3"), 1);
  MakeCatalog({});
  EXPECT_EQ(*catalog_->Recover(100, true), 1);
  EXPECT_EQ(*ledger_.AvailablePoints("m2"), 1000);
  // The recorded refusal is the answer for that key.
  auto replay = Redeem("k2", "m2", r.reward_id());
  EXPECT_EQ(replay.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(replay.status().message(), HasSubstr("out of stock"));
  ExpectConsistent(r.reward_id());
}

TEST_F(CatalogTest, VoidFailingDuringCompensationIsFinishedByRecovery) {
  ledger_.SetPoints("m1", 1000);
  v1::Reward r = Active(Reward(5));
  ledger_.Inject([](FakeLedger& l) {
    l.fail_authorize_lost = 1;
    l.fail_void = 1;
  });
  EXPECT_EQ(Redeem("k", "m1", r.reward_id()).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(*ledger_.AvailablePoints("m1"), 900);  // still held
  EXPECT_EQ(Count("SELECT COUNT(*) FROM redemptions WHERE state = 3"), 1);
  EXPECT_EQ(*catalog_->Recover(100, true), 1);
  EXPECT_EQ(*ledger_.AvailablePoints("m1"), 1000);
  ExpectConsistent(r.reward_id());
}

// ---- vouchers -----------------------------------------------------------------------

TEST_F(CatalogTest, HonourCapturesOnceAndOnlyForTheHonouringPartner) {
  ledger_.SetPoints("m1", 1000);
  v1::Reward r = Active(Reward(5, 400));
  auto redeemed = Redeem("r", "m1", r.reward_id());
  ASSERT_TRUE(redeemed.ok());
  const std::string code = redeemed->voucher().voucher_code();

  v1::HonourVoucherRequest h;
  h.set_idempotency_key("h1");
  h.set_voucher_code(FormatVoucherCode(code));
  h.set_partner_id("food");
  EXPECT_EQ(catalog_->HonourVoucher(kFood, h).status().code(), absl::StatusCode::kPermissionDenied);

  h.set_partner_id("vet");
  h.set_reference("receipt-1");
  auto honoured = catalog_->HonourVoucher(kVet, h);
  ASSERT_TRUE(honoured.ok()) << honoured.status();
  EXPECT_EQ(honoured->voucher().state(), v1::VOUCHER_STATE_HONOURED);
  EXPECT_FALSE(honoured->voucher().capture_transfer_id().empty());
  EXPECT_EQ(ledger_.Posted("m1"), 600);

  auto replay = catalog_->HonourVoucher(kVet, h);
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->voucher().honoured_at().seconds(), honoured->voucher().honoured_at().seconds());

  h.set_idempotency_key("h2");
  auto second = catalog_->HonourVoucher(kVet, h);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(), HasSubstr("voucher used at 2026-03-04T10:00:00"));
  EXPECT_EQ(ledger_.Posted("m1"), 600);

  v1::Reward after = Get(r.reward_id());
  EXPECT_EQ(after.stock_reserved(), 0);
  EXPECT_EQ(after.stock_honoured(), 1);
  ExpectConsistent(r.reward_id());
}

TEST_F(CatalogTest, HonourWhileLedgerDownChangesNothing) {
  ledger_.SetPoints("m1", 1000);
  v1::Reward r = Active(Reward(5));
  auto redeemed = Redeem("r", "m1", r.reward_id());
  ASSERT_TRUE(redeemed.ok());
  ledger_.Inject([](FakeLedger& l) { l.fail_capture = 1; });
  v1::HonourVoucherRequest h;
  h.set_idempotency_key("h1");
  h.set_voucher_code(redeemed->voucher().voucher_code());
  h.set_partner_id("vet");
  EXPECT_EQ(catalog_->HonourVoucher(kVet, h).status().code(), absl::StatusCode::kUnavailable);
  ExpectConsistent(r.reward_id());
  EXPECT_TRUE(catalog_->HonourVoucher(kVet, h).ok());
  ExpectConsistent(r.reward_id());
}

TEST_F(CatalogTest, CrashAfterCaptureOrVoidIsRepaired) {
  ledger_.SetPoints("m1", 1000);
  v1::Reward r = Active(Reward(5, 100));
  auto a = Redeem("a", "m1", r.reward_id());
  auto b = Redeem("b", "m1", r.reward_id());
  ASSERT_TRUE(a.ok() && b.ok());
  MakeCatalog([](SagaPoint p) {
    return p == SagaPoint::kVoucherLedgerDone ? absl::InternalError("crash") : absl::OkStatus();
  });
  v1::HonourVoucherRequest h;
  h.set_idempotency_key("h");
  h.set_voucher_code(a->voucher().voucher_code());
  h.set_partner_id("vet");
  EXPECT_FALSE(catalog_->HonourVoucher(kVet, h).ok());
  v1::CancelVoucherRequest c;
  c.set_idempotency_key("c");
  c.set_voucher_code(b->voucher().voucher_code());
  EXPECT_FALSE(catalog_->CancelVoucher(kBackoffice, c).ok());
  // Points captured and released at the ledger, vouchers still ISSUED.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM vouchers WHERE state = 1 AND pending_op > 0"), 2);
  MakeCatalog({});
  EXPECT_EQ(*catalog_->RepairVouchers(100), 0);  // within the grace period
  clock_.Advance(absl::Minutes(5));
  EXPECT_EQ(*catalog_->RepairVouchers(100), 2);
  v1::GetVoucherRequest g;
  g.set_voucher_code(a->voucher().voucher_code());
  EXPECT_EQ(catalog_->GetVoucher(kBackoffice, g)->voucher().state(), v1::VOUCHER_STATE_HONOURED);
  g.set_voucher_code(b->voucher().voucher_code());
  EXPECT_EQ(catalog_->GetVoucher(kBackoffice, g)->voucher().state(), v1::VOUCHER_STATE_CANCELLED);
  EXPECT_EQ(Get(r.reward_id()).stock_available(), 4);
  ExpectConsistent(r.reward_id());

  // The till retries its honour, and backoffice its cancel, with the same
  // keys: each succeeded at the ledger, so each is answered with success
  // (and remembered), not with "voucher used" or "voucher cancelled".
  auto honoured = catalog_->HonourVoucher(kVet, h);
  ASSERT_TRUE(honoured.ok()) << honoured.status();
  EXPECT_EQ(honoured->voucher().state(), v1::VOUCHER_STATE_HONOURED);
  EXPECT_TRUE(catalog_->HonourVoucher(kVet, h).ok());
  auto cancelled = catalog_->CancelVoucher(kBackoffice, c);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->voucher().state(), v1::VOUCHER_STATE_CANCELLED);
  EXPECT_EQ(cancelled->available_points(), 1000 - 100);  // b released; a's 100 were captured
  // Another request for the same vouchers is refused as before.
  h.set_idempotency_key("h2");
  EXPECT_EQ(catalog_->HonourVoucher(kVet, h).status().code(), absl::StatusCode::kFailedPrecondition);
  c.set_idempotency_key("c2");
  EXPECT_EQ(catalog_->CancelVoucher(kBackoffice, c).status().code(), absl::StatusCode::kFailedPrecondition);
  ExpectConsistent(r.reward_id());
}

TEST_F(CatalogTest, OneHonourOfAVoucherAtATimeAndOnlyItsOwnRetryIsToldSuccess) {
  ledger_.SetPoints("m1", 1000);
  v1::Reward r = Active(Reward(5, 100));
  auto a = Redeem("a", "m1", r.reward_id());
  ASSERT_TRUE(a.ok());
  // Till 1's honour is captured at the ledger, and then its process dies.
  MakeCatalog([](SagaPoint p) {
    return p == SagaPoint::kVoucherLedgerDone ? absl::InternalError("crash") : absl::OkStatus();
  });
  v1::HonourVoucherRequest first;
  first.set_idempotency_key("till-1");
  first.set_voucher_code(a->voucher().voucher_code());
  first.set_partner_id("vet");
  EXPECT_FALSE(catalog_->HonourVoucher(kVet, first).ok());
  MakeCatalog({});
  // Till 2 presents the same voucher: it must not be told "honoured" too.
  v1::HonourVoucherRequest second = first;
  second.set_idempotency_key("till-2");
  EXPECT_EQ(catalog_->HonourVoucher(kVet, second).status().code(), absl::StatusCode::kAborted);
  // Till 1's retry finishes its own honour; till 2's is then refused.
  auto honoured = catalog_->HonourVoucher(kVet, first);
  ASSERT_TRUE(honoured.ok()) << honoured.status();
  EXPECT_EQ(honoured->voucher().state(), v1::VOUCHER_STATE_HONOURED);
  auto refused = catalog_->HonourVoucher(kVet, second);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr("voucher used"));
  ExpectConsistent(r.reward_id());
}

TEST_F(CatalogTest, HonourThatNeverReachedTheLedgerLeavesTheVoucherUsable) {
  ledger_.SetPoints("m1", 1000);
  v1::Reward r = Active(Reward(5, 100));
  auto a = Redeem("a", "m1", r.reward_id());
  ASSERT_TRUE(a.ok());
  ledger_.Inject([](FakeLedger& l) { l.fail_capture = 1; });
  v1::HonourVoucherRequest h;
  h.set_idempotency_key("h");
  h.set_voucher_code(a->voucher().voucher_code());
  h.set_partner_id("vet");
  EXPECT_EQ(catalog_->HonourVoucher(kVet, h).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(*catalog_->RepairVouchers(100, /*everything=*/true), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM vouchers WHERE pending_op > 0"), 0);
  EXPECT_TRUE(catalog_->HonourVoucher(kVet, h).ok());
  ExpectConsistent(r.reward_id());
}

TEST_F(CatalogTest, CancelReleasesPointsAndStock) {
  ledger_.SetPoints("m1", 1000);
  v1::Reward r = Active(Reward(5, 300));
  auto redeemed = Redeem("r", "m1", r.reward_id());
  ASSERT_TRUE(redeemed.ok());
  v1::CancelVoucherRequest c;
  c.set_idempotency_key("c1");
  c.set_voucher_code(redeemed->voucher().voucher_code());
  c.set_reason("changed mind");
  EXPECT_EQ(catalog_->CancelVoucher(kFood, c).status().code(), absl::StatusCode::kNotFound);
  auto cancelled = catalog_->CancelVoucher(kBackoffice, c);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->voucher().state(), v1::VOUCHER_STATE_CANCELLED);
  EXPECT_EQ(cancelled->available_points(), 1000);
  EXPECT_EQ(Get(r.reward_id()).stock_available(), 5);
  EXPECT_TRUE(catalog_->CancelVoucher(kBackoffice, c).ok());  // idempotent
  c.set_idempotency_key("c2");
  EXPECT_EQ(catalog_->CancelVoucher(kBackoffice, c).status().code(), absl::StatusCode::kFailedPrecondition);

  v1::HonourVoucherRequest h;
  h.set_idempotency_key("h1");
  h.set_voucher_code(redeemed->voucher().voucher_code());
  h.set_partner_id("vet");
  auto late = catalog_->HonourVoucher(kVet, h);
  EXPECT_EQ(late.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(late.status().message(), HasSubstr("cancelled"));
  ExpectConsistent(r.reward_id());
}

TEST_F(CatalogTest, ExpiredVouchersAreReleasedBySweep) {
  ledger_.SetPoints("m1", 1000);
  v1::Reward r = Active(Reward(5, 300));
  auto redeemed = Redeem("r", "m1", r.reward_id());
  ASSERT_TRUE(redeemed.ok());
  EXPECT_EQ(*catalog_->ExpireVouchers(100), 0);
  clock_.Advance(absl::Hours(24 * 30));
  v1::GetVoucherRequest g;
  g.set_voucher_code(redeemed->voucher().voucher_code());
  EXPECT_EQ(catalog_->GetVoucher(kBackoffice, g)->voucher().state(), v1::VOUCHER_STATE_EXPIRED);
  v1::HonourVoucherRequest h;
  h.set_idempotency_key("h1");
  h.set_voucher_code(redeemed->voucher().voucher_code());
  h.set_partner_id("vet");
  auto late = catalog_->HonourVoucher(kVet, h);
  EXPECT_EQ(late.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(late.status().message(), HasSubstr("expired"));

  EXPECT_EQ(*catalog_->ExpireVouchers(100), 1);
  EXPECT_EQ(Get(r.reward_id()).stock_available(), 5);
  EXPECT_EQ(Get(r.reward_id()).stock_reserved(), 0);
  EXPECT_EQ(*ledger_.AvailablePoints("m1"), 1000);
  ExpectConsistent(r.reward_id());
}

TEST_F(CatalogTest, ListVouchersIsScopedAndPaged) {
  ledger_.SetPoints("m1", 10000);
  v1::Reward r = Active(Reward(10, 10));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Redeem(absl::StrCat("r", i), "m1", r.reward_id()).ok());
  v1::ListVouchersRequest l;
  l.set_member_id("m1");
  l.set_partner_id("vet");
  EXPECT_EQ(catalog_->ListVouchers(kFood, l).status().code(), absl::StatusCode::kPermissionDenied);
  l.set_page_size(2);
  int seen = 0;
  for (int page = 0; page < 5; ++page) {
    auto got = catalog_->ListVouchers(kVet, l);
    ASSERT_TRUE(got.ok()) << got.status();
    seen += got->vouchers_size();
    if (got->next_page_token().empty()) break;
    l.set_page_token(got->next_page_token());
  }
  EXPECT_EQ(seen, 5);
}

// ---- campaigns ----------------------------------------------------------------------

const Principal kLedgerService = Principal::Of("svc0000000000001", common::v1::ROLE_SERVICE);

v1::Campaign DoublePoints(int64_t budget = 0) {
  v1::Campaign c;
  c.set_name("Double points on dog food");
  c.set_bonus_rate_bp(10000);
  c.add_partner_ids("food");
  c.add_categories("dog");
  c.set_budget_points(budget);
  return c;
}

class CampaignTest : public CatalogTest {
 protected:
  v1::Campaign Create(const v1::Campaign& c) {
    v1::CreateCampaignRequest r;
    r.set_idempotency_key(absl::StrCat("cc-", ++keys_));
    *r.mutable_campaign() = c;
    auto created = catalog_->CreateCampaign(kBackoffice, r);
    EXPECT_TRUE(created.ok()) << created.status();
    return created->campaign();
  }
  absl::StatusOr<v1::Campaign> SetState(const std::string& id, v1::CampaignState state) {
    v1::SetCampaignStateRequest r;
    r.set_idempotency_key(absl::StrCat("cs-", ++keys_));
    r.set_campaign_id(id);
    r.set_state(state);
    auto out = catalog_->SetCampaignState(kBackoffice, r);
    if (!out.ok()) return out.status();
    return out->campaign();
  }
  v1::GetActiveEarnRulesResponse Rules(int64_t known) {
    v1::GetActiveEarnRulesRequest r;
    r.set_known_version(known);
    auto out = catalog_->GetActiveEarnRules(kLedgerService, r);
    EXPECT_TRUE(out.ok()) << out.status();
    return *out;
  }
};

TEST_F(CampaignTest, UnknownTiersAndSegmentsAreNotFoundNamingTheField) {
  members_.AddSegment("sg-dog-owners");
  v1::CreateCampaignRequest r;
  r.set_idempotency_key("refs-1");
  *r.mutable_campaign() = DoublePoints();
  r.mutable_campaign()->add_tier_ids("gold");
  r.mutable_campaign()->add_tier_ids("platinum");
  auto s = catalog_->CreateCampaign(kBackoffice, r);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.status().message(), HasSubstr("campaign.tier_ids[1]"));

  *r.mutable_campaign() = DoublePoints();
  r.mutable_campaign()->add_segment_ids("sg-dog-owners");
  r.mutable_campaign()->add_segment_ids("sg-nobody");
  s = catalog_->CreateCampaign(kBackoffice, r);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.status().message(), HasSubstr("campaign.segment_ids[1]"));

  // Known ones pass; an update that names an unknown one is refused too.
  *r.mutable_campaign() = DoublePoints();
  r.mutable_campaign()->add_tier_ids("silver");
  r.mutable_campaign()->add_segment_ids("sg-dog-owners");
  s = catalog_->CreateCampaign(kBackoffice, r);
  ASSERT_TRUE(s.ok()) << s.status();
  v1::UpdateCampaignRequest u;
  u.set_idempotency_key("refs-2");
  u.set_campaign_id(s->campaign().campaign_id());
  u.mutable_update_mask()->add_paths("segment_ids");
  u.mutable_campaign()->add_segment_ids("sg-gone");
  auto updated = catalog_->UpdateCampaign(kBackoffice, u);
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
  auto created = catalog_->CreateCampaign(kBackoffice, c);
  ASSERT_TRUE(created.ok()) << created.status();
  v1::CreateRewardRequest r;
  r.set_idempotency_key("gone-2");
  *r.mutable_reward() = Reward();
  auto reward = catalog_->CreateReward(kBackoffice, r);
  ASSERT_TRUE(reward.ok()) << reward.status();

  // The segment is deleted and settlement goes down: the retries of both
  // requests still get their original answers, and nothing is made twice.
  members_.RemoveSegment("sg-dog-owners");
  partners.SetDown(true);
  auto again = catalog_->CreateCampaign(kBackoffice, c);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->campaign().campaign_id(), created->campaign().campaign_id());
  auto reward_again = catalog_->CreateReward(kBackoffice, r);
  ASSERT_TRUE(reward_again.ok()) << reward_again.status();
  EXPECT_EQ(reward_again->reward().reward_id(), reward->reward().reward_id());

  // A new key is checked: with settlement down that is UNAVAILABLE, and once
  // it is back, the gone segment is NOT_FOUND.
  r.set_idempotency_key("gone-3");
  EXPECT_EQ(catalog_->CreateReward(kBackoffice, r).status().code(), absl::StatusCode::kUnavailable);
  partners.SetDown(false);
  c.set_idempotency_key("gone-4");
  auto refused = catalog_->CreateCampaign(kBackoffice, c);
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
  auto created = catalog_->CreateCampaign(kBackoffice, c);
  EXPECT_EQ(created.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(created.status().message(), HasSubstr("campaign.partner_ids[1]"));

  v1::CreateRewardRequest r;
  r.set_idempotency_key("pr-1");
  *r.mutable_reward() = Reward();  // honoured by "vet", which settlement does not know here
  auto reward = catalog_->CreateReward(kBackoffice, r);
  EXPECT_EQ(reward.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(reward.status().message(), HasSubstr("reward.partner_id"));

  partners.Add("vet");
  EXPECT_TRUE(catalog_->CreateReward(kBackoffice, r).ok());
  c.set_idempotency_key("pc-2");
  *c.mutable_campaign() = DoublePoints();
  EXPECT_TRUE(catalog_->CreateCampaign(kBackoffice, c).ok());
}

TEST_F(CampaignTest, ValidationNamesTheField) {
  v1::CreateCampaignRequest r;
  r.set_idempotency_key("c1");
  *r.mutable_campaign() = DoublePoints();
  r.mutable_campaign()->set_name("");
  auto s = catalog_->CreateCampaign(kBackoffice, r);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.status().message(), HasSubstr("campaign.name"));
  *r.mutable_campaign() = DoublePoints();
  r.mutable_campaign()->add_days_of_week(v1::DAY_OF_WEEK_SATURDAY);
  s = catalog_->CreateCampaign(kBackoffice, r);
  EXPECT_THAT(s.status().message(), HasSubstr("campaign.time_zone"));
  r.mutable_campaign()->set_time_zone("Mars/Olympus");
  s = catalog_->CreateCampaign(kBackoffice, r);
  EXPECT_THAT(s.status().message(), HasSubstr("campaign.time_zone"));
  r.mutable_campaign()->set_time_zone("Europe/Berlin");
  r.mutable_campaign()->set_budget_points(-1);
  s = catalog_->CreateCampaign(kBackoffice, r);
  EXPECT_THAT(s.status().message(), HasSubstr("campaign.budget_points"));
  r.mutable_campaign()->set_budget_points(0);
  EXPECT_TRUE(catalog_->CreateCampaign(kBackoffice, r).ok());
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
  auto updated = catalog_->UpdateCampaign(kBackoffice, up);
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
  EXPECT_EQ(catalog_->UpdateCampaign(kBackoffice, up).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(CampaignTest, PartnersSeeOnlyCampaignsOpenToThem) {
  v1::Campaign food = Create(DoublePoints());
  v1::Campaign everyone;
  everyone.set_name("everyone");
  everyone.set_fixed_bonus_points(10);
  everyone = Create(everyone);
  v1::GetCampaignRequest g;
  g.set_campaign_id(food.campaign_id());
  EXPECT_EQ(catalog_->GetCampaign(kVet, g).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(catalog_->GetCampaign(kFood, g).ok());
  v1::ListCampaignsRequest l;
  auto vet = catalog_->ListCampaigns(kVet, l);
  ASSERT_TRUE(vet.ok());
  ASSERT_EQ(vet->campaigns_size(), 1);
  EXPECT_EQ(vet->campaigns(0).campaign_id(), everyone.campaign_id());
  auto all = catalog_->ListCampaigns(kBackoffice, l);
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
      auto out = catalog_->LeaseCampaignBudget(kLedgerService, r);
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
  auto after = catalog_->GetCampaign(kBackoffice, g);
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
  EXPECT_EQ(catalog_->LeaseCampaignBudget(kLedgerService, lease).status().code(),
            absl::StatusCode::kFailedPrecondition);  // draft
  ASSERT_TRUE(SetState(c.campaign_id(), v1::CAMPAIGN_STATE_ACTIVE).ok());
  lease.set_idempotency_key("l2");
  auto first = catalog_->LeaseCampaignBudget(kLedgerService, lease);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->lease().granted_points(), 80);
  EXPECT_EQ(first->budget_remaining_points(), 20);
  // Idempotent by key: the same lease again.
  auto replay = catalog_->LeaseCampaignBudget(kLedgerService, lease);
  EXPECT_EQ(replay->lease().campaign_budget_lease_id(), first->lease().campaign_budget_lease_id());
  lease.set_idempotency_key("l3");
  auto partial = catalog_->LeaseCampaignBudget(kLedgerService, lease);
  ASSERT_TRUE(partial.ok());
  EXPECT_EQ(partial->lease().granted_points(), 20);

  v1::ReturnCampaignBudgetRequest ret;
  ret.set_idempotency_key("r1");
  ret.set_campaign_budget_lease_id(first->lease().campaign_budget_lease_id());
  ret.set_used_points(50);
  ret.set_unused_points(20);
  EXPECT_EQ(catalog_->ReturnCampaignBudget(kLedgerService, ret).status().code(), absl::StatusCode::kInvalidArgument);
  ret.set_unused_points(30);
  auto returned = catalog_->ReturnCampaignBudget(kLedgerService, ret);
  ASSERT_TRUE(returned.ok()) << returned.status();
  EXPECT_EQ(returned->lease().returned_points(), 30);
  EXPECT_EQ(returned->budget_remaining_points(), 30);
  ret.set_idempotency_key("r2");
  EXPECT_EQ(catalog_->ReturnCampaignBudget(kLedgerService, ret).status().code(),
            absl::StatusCode::kFailedPrecondition);

  v1::UpdateCampaignRequest up;
  up.set_idempotency_key("u1");
  up.set_campaign_id(c.campaign_id());
  up.mutable_campaign()->set_budget_points(60);
  up.mutable_update_mask()->add_paths("budget_points");
  EXPECT_EQ(catalog_->UpdateCampaign(kBackoffice, up).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(CampaignTest, QuoteEarnDelegatesToTheLedger) {
  v1::QuoteEarnRequest q;
  q.set_partner_id("food");
  q.set_member_id("m1");
  q.mutable_amount()->set_amount_minor(2500);
  q.mutable_amount()->set_currency("EUR");
  auto* line = q.add_lines();
  line->set_category("dog");
  EXPECT_EQ(catalog_->QuoteEarn(kVet, q).status().code(), absl::StatusCode::kPermissionDenied);
  auto quoted = catalog_->QuoteEarn(kFood, q);
  ASSERT_TRUE(quoted.ok()) << quoted.status();
  EXPECT_EQ(quoted->points(), 25);
  EXPECT_EQ(ledger_.last_quote().member_id(), "m1");
  EXPECT_EQ(ledger_.last_quote().lines(0).category(), "dog");
}

// ---- coupons ------------------------------------------------------------------------

class CouponTest : public CampaignTest {
 protected:
  v1::CouponBatch Batch(int count, int per_code, int per_member, int64_t bonus) {
    v1::Campaign c = Create(DoublePoints());
    EXPECT_TRUE(SetState(c.campaign_id(), v1::CAMPAIGN_STATE_ACTIVE).ok());
    v1::CreateCouponBatchRequest r;
    r.set_idempotency_key(absl::StrCat("cb-", ++keys_));
    v1::CouponBatch* b = r.mutable_coupon_batch();
    b->set_campaign_id(c.campaign_id());
    b->set_name("spring");
    b->set_code_count(count);
    b->set_max_redemptions_per_code(per_code);
    b->set_max_redemptions_per_member(per_member);
    b->set_bonus_points(bonus);
    b->set_code_prefix("pet");
    auto out = catalog_->CreateCouponBatch(kBackoffice, r);
    EXPECT_TRUE(out.ok()) << out.status();
    return out->coupon_batch();
  }
  std::vector<std::string> Codes(const std::string& batch_id, int page_size = 5000) {
    std::vector<std::string> out;
    v1::ListCouponCodesRequest l;
    l.set_coupon_batch_id(batch_id);
    l.set_page_size(page_size);
    for (int page = 0; page < 100; ++page) {
      auto got = catalog_->ListCouponCodes(kBackoffice, l);
      EXPECT_TRUE(got.ok()) << got.status();
      for (const auto& c : got->codes()) out.push_back(c.code());
      if (got->next_page_token().empty()) break;
      l.set_page_token(got->next_page_token());
    }
    return out;
  }
  absl::StatusOr<v1::RedeemCouponResponse> Use(const std::string& key, const std::string& code,
                                               const std::string& member) {
    v1::RedeemCouponRequest r;
    r.set_idempotency_key(key);
    r.set_code(code);
    r.set_member_id(member);
    r.set_partner_id("food");
    return catalog_->RedeemCoupon(kFood, r);
  }
};

TEST_F(CouponTest, TenThousandCodesAreGeneratedUniqueAndValidate) {
  const absl::Time start = absl::Now();
  v1::CouponBatch b = Batch(10'000, 1, 1, 0);
  const absl::Duration took = absl::Now() - start;
  std::cerr << "10,000 coupon codes created in " << took << "\n";
  std::vector<std::string> codes = Codes(b.coupon_batch_id());
  ASSERT_EQ(codes.size(), 10'000u);
  EXPECT_EQ(std::set<std::string>(codes.begin(), codes.end()).size(), 10'000u);
  EXPECT_TRUE(std::is_sorted(codes.begin(), codes.end()));
  EXPECT_EQ(codes[0].substr(0, 3), "PET");
  EXPECT_EQ(codes[0].size(), 14u);

  v1::ValidateCouponRequest v;
  v.set_code(absl::AsciiStrToLower(codes[1234]));
  v.set_member_id("m1");
  v.set_partner_id("food");
  auto ok = catalog_->ValidateCoupon(kFood, v);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->code_remaining_redemptions(), 1);
  EXPECT_EQ(ok->coupon_batch().coupon_batch_id(), b.coupon_batch_id());
  v.set_partner_id("vet");
  EXPECT_EQ(catalog_->ValidateCoupon(kFood, v).status().code(), absl::StatusCode::kPermissionDenied);
  std::string typo = codes[1234];
  typo[5] = typo[5] == 'A' ? 'B' : 'A';
  v.set_code(typo);
  v.set_partner_id("food");
  EXPECT_EQ(catalog_->ValidateCoupon(kFood, v).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(CouponTest, PerCodeLimitHoldsUnderConcurrency) {
  v1::CouponBatch b = Batch(1, 5, 1, 0);
  const std::string code = Codes(b.coupon_batch_id()).at(0);
  std::atomic<int> ok{0}, exhausted{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 20; ++i) {
    threads.emplace_back([&, i] {
      auto res = Use(absl::StrCat("u-", i), code, absl::StrCat("m", i));
      if (res.ok()) {
        ++ok;
      } else if (res.status().message().find("exhausted") != absl::string_view::npos) {
        ++exhausted;
      } else {
        ADD_FAILURE() << res.status();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 5);
  EXPECT_EQ(exhausted.load(), 15);
  v1::GetCouponBatchRequest g;
  g.set_coupon_batch_id(b.coupon_batch_id());
  EXPECT_EQ(catalog_->GetCouponBatch(kBackoffice, g)->coupon_batch().redemption_count(), 5);
}

TEST_F(CouponTest, PerMemberLimitAndIdempotentRedeem) {
  v1::CouponBatch b = Batch(3, 10, 2, 0);
  std::vector<std::string> codes = Codes(b.coupon_batch_id());
  auto first = Use("a", codes[0], "m1");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->member_remaining_redemptions(), 1);
  auto replay = Use("a", codes[0], "m1");
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->redemption().coupon_redemption_id(), first->redemption().coupon_redemption_id());
  EXPECT_TRUE(Use("b", codes[1], "m1").ok());
  auto third = Use("c", codes[2], "m1");
  EXPECT_EQ(third.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(third.status().message(), HasSubstr("member limit"));
  EXPECT_TRUE(Use("d", codes[2], "m2").ok());
  EXPECT_EQ(Use("a", codes[1], "m1").status().code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(CouponTest, BonusIsGrantedOnceAndARefusalGivesTheUseBack) {
  v1::CouponBatch b = Batch(2, 1, 5, 250);
  std::vector<std::string> codes = Codes(b.coupon_batch_id());
  ledger_.Inject([](FakeLedger& l) { l.fail_grant = 1; });
  EXPECT_EQ(Use("g1", codes[0], "m1").status().code(), absl::StatusCode::kUnavailable);
  auto retried = Use("g1", codes[0], "m1");
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_FALSE(retried->redemption().transfer_id().empty());
  EXPECT_EQ(ledger_.Posted("m1"), 250);
  EXPECT_EQ(ledger_.grants(), 1);
  EXPECT_EQ(*catalog_->GrantDueCouponBonuses(10), 0);

  ledger_.Inject([](FakeLedger& l) { l.refuse_grant_member = "frozen"; });
  auto refused = Use("g2", codes[1], "frozen");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Use("g2", codes[1], "frozen").status().code(), absl::StatusCode::kFailedPrecondition);
  // The use was given back: another member may still use the code.
  EXPECT_TRUE(Use("g3", codes[1], "m2").ok());
}

}  // namespace
}  // namespace loyalty::catalog
