#pragma once
// The shared fixtures of the catalog's use-case tests (rewards_test.cc,
// redeem_saga_test.cc, vouchers_test.cc, coupons_test.cc, campaigns_test.cc,
// catalog_jobs_test.cc): the use cases on the real MySQL store (a throwaway
// schema on the test MariaDB). The ledger and membership are fakes
// (fakes.h): other services, not the database. The fake ledger is
// thread-safe and idempotent by key like the real one, and fails where a
// test tells it.
//
// CatalogTest builds a Catalog on a fresh schema; CampaignTest adds campaign
// helpers, CouponTest coupon-batch helpers.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/db/migrations.h"
#include "common/testing/test_db.h"
#include "gtest/gtest.h"
#include "services/catalog/catalog.h"
#include "services/catalog/mysql_catalog_store.h"
#include "tests/services/catalog/fakes.h"

namespace loyalty::catalog {
const std::vector<db::MigrationFile>& Migrations();
}  // namespace loyalty::catalog

namespace loyalty::catalog::testing {

using auth::Principal;

inline const Principal kBackoffice = Principal::Of("bo000000000000001", common::v1::ROLE_BACKOFFICE);
inline const Principal kVet = Principal::Partner("vet0000000000001", "vet");
inline const Principal kFood = Principal::Partner("food000000000001", "food");
inline const Principal kLedgerService = Principal::Of("svc0000000000001", common::v1::ROLE_SERVICE);

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
    auto created = catalog_->rewards().CreateReward(kBackoffice, create);
    EXPECT_TRUE(created.ok()) << created.status();
    v1::SetRewardStateRequest activate;
    activate.set_idempotency_key(absl::StrCat("activate-", ++keys_));
    activate.set_reward_id(created->reward().reward_id());
    activate.set_state(v1::REWARD_STATE_ACTIVE);
    auto active = catalog_->rewards().SetRewardState(kBackoffice, activate);
    EXPECT_TRUE(active.ok()) << active.status();
    return active->reward();
  }

  absl::StatusOr<v1::RedeemResponse> Redeem(const std::string& key, const std::string& member,
                                            const std::string& reward_id) {
    v1::RedeemRequest r;
    r.set_idempotency_key(key);
    r.set_member_id(member);
    r.set_reward_id(reward_id);
    return catalog_->redeem().Redeem(kBackoffice, r);
  }

  v1::Reward Get(const std::string& reward_id) {
    v1::GetRewardRequest r;
    r.set_reward_id(reward_id);
    auto got = catalog_->rewards().GetReward(kBackoffice, r);
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
    auto vouchers = catalog_->vouchers().ListVouchers(kBackoffice, list);
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

inline v1::Campaign DoublePoints(int64_t budget = 0) {
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
    auto created = catalog_->campaigns().CreateCampaign(kBackoffice, r);
    EXPECT_TRUE(created.ok()) << created.status();
    return created->campaign();
  }
  absl::StatusOr<v1::Campaign> SetState(const std::string& id, v1::CampaignState state) {
    v1::SetCampaignStateRequest r;
    r.set_idempotency_key(absl::StrCat("cs-", ++keys_));
    r.set_campaign_id(id);
    r.set_state(state);
    auto out = catalog_->campaigns().SetCampaignState(kBackoffice, r);
    if (!out.ok()) return out.status();
    return out->campaign();
  }
  v1::GetActiveEarnRulesResponse Rules(int64_t known) {
    v1::GetActiveEarnRulesRequest r;
    r.set_known_version(known);
    auto out = catalog_->campaigns().GetActiveEarnRules(kLedgerService, r);
    EXPECT_TRUE(out.ok()) << out.status();
    return *out;
  }
};

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
    auto out = catalog_->coupons().CreateCouponBatch(kBackoffice, r);
    EXPECT_TRUE(out.ok()) << out.status();
    return out->coupon_batch();
  }
  std::vector<std::string> Codes(const std::string& batch_id, int page_size = 5000) {
    std::vector<std::string> out;
    v1::ListCouponCodesRequest l;
    l.set_coupon_batch_id(batch_id);
    l.set_page_size(page_size);
    for (int page = 0; page < 100; ++page) {
      auto got = catalog_->coupons().ListCouponCodes(kBackoffice, l);
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
    return catalog_->coupons().RedeemCoupon(kFood, r);
  }
};

}  // namespace loyalty::catalog::testing
