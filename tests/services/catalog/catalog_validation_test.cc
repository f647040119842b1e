// Every documented input constraint of catalog.proto, one row each: the row
// sends one request that breaks exactly that constraint, and expects
// INVALID_ARGUMENT whose message starts with the field path, every table of
// the catalog schema unchanged (no reward, voucher, coupon, campaign, lease
// or idempotency record) and no call that changes the (fake) ledger. Real
// MariaDB store; the ledger and membership are the fakes of fakes.h.
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/db/migrations.h"
#include "common/testing/test_db.h"
#include "common/time/proto_time.h"
#include "gtest/gtest.h"
#include "tests/common/validation_rows.h"
#include "services/catalog/catalog.h"
#include "services/catalog/codes.h"
#include "services/catalog/mysql_catalog_store.h"
#include "tests/services/catalog/fakes.h"

namespace loyalty::catalog {
const std::vector<db::MigrationFile>& Migrations();

namespace {

namespace validation = ::loyalty::testing::validation;
using validation::Accented;
using validation::Make;
using validation::Row;

using auth::Principal;

const Principal kBackoffice = Principal::Of("bo000000000000001", common::v1::ROLE_BACKOFFICE);
const Principal kVet = Principal::Partner("vet0000000000001", "vet");
const Principal kService = Principal::Of("svc0000000000001", common::v1::ROLE_SERVICE);

class CatalogValidationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = loyalty::testing::TestDatabase::Create("catalog");
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    auto pool = db_->NewPool(8);
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = *std::move(pool);
    auto applied = db::ApplyMigrations(*pool_, Migrations());
    ASSERT_TRUE(applied.ok()) << applied.status();
    store_ = NewMysqlCatalogStore(*pool_);
    CatalogOptions options;
    options.now = [this] { return clock_.Now(); };
    catalog_ = std::make_unique<Catalog>(*store_, ledger_, members_, options);
    ledger_.SetPoints("m1", 1000);

    // State for the rows that need it: a draft reward, a draft campaign, an
    // active budgeted campaign with an open lease.
    v1::CreateRewardRequest reward;
    reward.set_idempotency_key("setup-reward");
    *reward.mutable_reward() = RewardBase();
    auto created = catalog_->rewards().CreateReward(kBackoffice, reward);
    ASSERT_TRUE(created.ok()) << created.status();
    reward_id_ = created->reward().reward_id();
    v1::CreateCampaignRequest campaign;
    campaign.set_idempotency_key("setup-campaign");
    *campaign.mutable_campaign() = CampaignBase();
    campaign.mutable_campaign()->set_budget_points(1000);
    auto made = catalog_->campaigns().CreateCampaign(kBackoffice, campaign);
    ASSERT_TRUE(made.ok()) << made.status();
    campaign_id_ = made->campaign().campaign_id();
    v1::SetCampaignStateRequest activate;
    activate.set_idempotency_key("setup-activate");
    activate.set_campaign_id(campaign_id_);
    activate.set_state(v1::CAMPAIGN_STATE_ACTIVE);
    ASSERT_TRUE(catalog_->campaigns().SetCampaignState(kBackoffice, activate).ok());
    v1::LeaseCampaignBudgetRequest lease;
    lease.set_idempotency_key("setup-lease");
    lease.set_campaign_id(campaign_id_);
    lease.set_requested_points(100);
    lease.set_holder("ledger-1");
    auto leased = catalog_->campaigns().LeaseCampaignBudget(kService, lease);
    ASSERT_TRUE(leased.ok()) << leased.status();
    lease_id_ = leased->lease().campaign_budget_lease_id();
  }

  static v1::Reward RewardBase() {
    v1::Reward r;
    auto* name = r.add_names();
    name->set_language("en");
    name->set_text("Free check-up");
    r.set_reward_type(v1::REWARD_TYPE_FREE_ITEM);
    r.set_points_price(100);
    r.set_partner_id("vet");
    r.set_category("vet-care");
    r.set_stock_available(10);
    r.set_voucher_validity_days(30);
    return r;
  }
  static v1::Campaign CampaignBase() {
    v1::Campaign c;
    c.set_name("Double points on dog food");
    c.set_bonus_rate_bp(10000);
    c.add_partner_ids("food");
    c.add_categories("dog");
    return c;
  }
  static v1::CreateRewardRequest CreateRewardBase() {
    v1::CreateRewardRequest r;
    r.set_idempotency_key("reward-bad");
    *r.mutable_reward() = RewardBase();
    return r;
  }
  static v1::CreateCampaignRequest CreateCampaignBase() {
    v1::CreateCampaignRequest r;
    r.set_idempotency_key("campaign-bad");
    *r.mutable_campaign() = CampaignBase();
    return r;
  }
  v1::CreateCouponBatchRequest BatchBase() {
    v1::CreateCouponBatchRequest r;
    r.set_idempotency_key("batch-bad");
    v1::CouponBatch* b = r.mutable_coupon_batch();
    b->set_campaign_id(campaign_id_);
    b->set_name("spring");
    b->set_code_count(10);
    b->set_max_redemptions_per_code(1);
    b->set_max_redemptions_per_member(1);
    return r;
  }

  std::string State() {
    auto tables = loyalty::testing::TableChecksumsForTest(*pool_);
    EXPECT_TRUE(tables.ok()) << tables.status();
    return absl::StrCat(tables.ok() ? *tables : "", "ledger holds ", ledger_.Holds().size(), " grants ",
                        ledger_.grants(), " authorizes ", ledger_.authorize_calls(), "\n");
  }

  void RunRows(const std::vector<Row>& rows) {
    validation::ExpectEachRefusedWritingNothing(rows, [this] { return State(); }, "rewards ");
  }

  std::unique_ptr<loyalty::testing::TestDatabase> db_;
  std::unique_ptr<db::ConnectionPool> pool_;
  std::unique_ptr<CatalogStore> store_;
  testing::TestClock clock_;
  testing::FakeLedger ledger_{clock_};
  testing::FakeMembers members_;
  std::unique_ptr<Catalog> catalog_;
  std::string reward_id_, campaign_id_, lease_id_;
};

TEST_F(CatalogValidationTest, RewardsRefuseEachDocumentedViolationAndWriteNothing) {
  using Create = v1::CreateRewardRequest;
  auto create = [this](const Create& r) { return catalog_->rewards().CreateReward(kBackoffice, r).status(); };
  auto propose = [this](const v1::ProposeRewardRequest& r) {
    return catalog_->rewards().ProposeReward(kVet, r).status();
  };
  auto update = [this](const v1::UpdateRewardRequest& r) {
    return catalog_->rewards().UpdateReward(kBackoffice, r).status();
  };
  auto set_state = [this](const v1::SetRewardStateRequest& r) {
    return catalog_->rewards().SetRewardState(kBackoffice, r).status();
  };
  auto adjust = [this](const v1::AdjustRewardStockRequest& r) {
    return catalog_->rewards().AdjustRewardStock(kBackoffice, r).status();
  };
  v1::ProposeRewardRequest proposal;
  proposal.set_idempotency_key("propose-bad");
  *proposal.mutable_reward() = RewardBase();
  v1::UpdateRewardRequest update_base;
  update_base.set_idempotency_key("update-bad");
  update_base.set_reward_id(reward_id_);
  update_base.mutable_update_mask()->add_paths("names");
  *update_base.mutable_reward() = RewardBase();
  v1::SetRewardStateRequest state_base;
  state_base.set_idempotency_key("state-bad");
  state_base.set_reward_id(reward_id_);
  state_base.set_state(v1::REWARD_STATE_ACTIVE);
  v1::AdjustRewardStockRequest adjust_base;
  adjust_base.set_idempotency_key("stock-bad");
  adjust_base.set_reward_id(reward_id_);
  adjust_base.set_delta_units(5);
  adjust_base.set_reason("delivery");
  using Upd = v1::UpdateRewardRequest;
  using SetState = v1::SetRewardStateRequest;
  using Adj = v1::AdjustRewardStockRequest;

  const std::vector<Row> rows = {
      Make<Create>("create: empty key", "idempotency_key", CreateRewardBase(),
                   [](Create& r) { r.set_idempotency_key(""); }, create),
      Make<Create>("create: no name", "reward.names", CreateRewardBase(),
                   [](Create& r) { r.mutable_reward()->clear_names(); }, create),
      Make<Create>("create: empty name", "reward.names[0].text", CreateRewardBase(),
                   [](Create& r) { r.mutable_reward()->mutable_names(0)->set_text(""); }, create),
      Make<Create>("create: name of 101 characters", "reward.names[0].text", CreateRewardBase(),
                   [](Create& r) { r.mutable_reward()->mutable_names(0)->set_text(Accented(101)); }, create),
      Make<Create>("create: no language", "reward.names[0].language", CreateRewardBase(),
                   [](Create& r) { r.mutable_reward()->mutable_names(0)->set_language(""); }, create),
      Make<Create>("create: not a BCP 47 tag", "reward.names[0].language", CreateRewardBase(),
                   [](Create& r) { r.mutable_reward()->mutable_names(0)->set_language("en_GB"); }, create),
      Make<Create>("create: one-letter language", "reward.names[0].language", CreateRewardBase(),
                   [](Create& r) { r.mutable_reward()->mutable_names(0)->set_language("e"); }, create),
      Make<Create>("create: a language twice", "reward.names[1].language", CreateRewardBase(),
                   [](Create& r) { *r.mutable_reward()->add_names() = r.reward().names(0); }, create),
      Make<Create>("create: description of 2001 characters", "reward.descriptions[0].text", CreateRewardBase(),
                   [](Create& r) {
                     auto* d = r.mutable_reward()->add_descriptions();
                     d->set_language("en");
                     d->set_text(Accented(2001));
                   },
                   create),
      Make<Create>("create: no reward type", "reward.reward_type", CreateRewardBase(),
                   [](Create& r) { r.mutable_reward()->set_reward_type(v1::REWARD_TYPE_UNSPECIFIED); }, create),
      Make<Create>("create: unknown reward type", "reward.reward_type", CreateRewardBase(),
                   [](Create& r) { r.mutable_reward()->set_reward_type(static_cast<v1::RewardType>(42)); }, create),
      Make<Create>("create: price 0", "reward.points_price", CreateRewardBase(),
                   [](Create& r) { r.mutable_reward()->set_points_price(0); }, create),
      Make<Create>("create: no partner", "reward.partner_id", CreateRewardBase(),
                   [](Create& r) { r.mutable_reward()->set_partner_id(""); }, create),
      Make<Create>("create: category not a slug", "reward.category", CreateRewardBase(),
                   [](Create& r) { r.mutable_reward()->set_category("Pet Food!"); }, create),
      Make<Create>("create: category of 65", "reward.category", CreateRewardBase(),
                   [](Create& r) { r.mutable_reward()->set_category(std::string(65, 'c')); }, create),
      Make<Create>("create: negative stock", "reward.stock_available", CreateRewardBase(),
                   [](Create& r) { r.mutable_reward()->set_stock_available(-1); }, create),
      Make<Create>("create: stock with unlimited_stock", "reward.stock_available", CreateRewardBase(),
                   [](Create& r) { r.mutable_reward()->set_unlimited_stock(true); }, create),
      Make<Create>("create: negative per-member limit", "reward.per_member_limit", CreateRewardBase(),
                   [](Create& r) { r.mutable_reward()->set_per_member_limit(-1); }, create),
      Make<Create>("create: unknown limit period", "reward.per_member_limit_period", CreateRewardBase(),
                   [](Create& r) {
                     r.mutable_reward()->set_per_member_limit_period(static_cast<v1::LimitPeriod>(9));
                   },
                   create),
      Make<Create>("create: limit without period", "reward.per_member_limit_period", CreateRewardBase(),
                   [](Create& r) { r.mutable_reward()->set_per_member_limit(1); }, create),
      Make<Create>("create: bad min tier", "reward.min_tier_id", CreateRewardBase(),
                   [](Create& r) { r.mutable_reward()->set_min_tier_id("gold tier"); }, create),
      Make<Create>("create: valid_until before valid_from", "reward.valid_until", CreateRewardBase(),
                   [](Create& r) {
                     *r.mutable_reward()->mutable_valid_from() = ToProtoTime(absl::FromUnixSeconds(2000));
                     *r.mutable_reward()->mutable_valid_until() = ToProtoTime(absl::FromUnixSeconds(1000));
                   },
                   create),
      Make<Create>("create: validity 91 days", "reward.voucher_validity_days", CreateRewardBase(),
                   [](Create& r) { r.mutable_reward()->set_voucher_validity_days(91); }, create),
      Make<Create>("create: validity -1 days", "reward.voucher_validity_days", CreateRewardBase(),
                   [](Create& r) { r.mutable_reward()->set_voucher_validity_days(-1); }, create),
      Make<Create>("create: discount 0 bp", "reward.discount_bp", CreateRewardBase(),
                   [](Create& r) { r.mutable_reward()->set_reward_type(v1::REWARD_TYPE_PERCENT_DISCOUNT); }, create),
      Make<Create>("create: discount 10001 bp", "reward.discount_bp", CreateRewardBase(),
                   [](Create& r) {
                     r.mutable_reward()->set_reward_type(v1::REWARD_TYPE_PERCENT_DISCOUNT);
                     r.mutable_reward()->set_discount_bp(10001);
                   },
                   create),
      Make<Create>("create: gift voucher without face value", "reward.face_value", CreateRewardBase(),
                   [](Create& r) { r.mutable_reward()->set_reward_type(v1::REWARD_TYPE_GIFT_VOUCHER); }, create),
      Make<Create>("create: face value 0", "reward.face_value.amount_minor", CreateRewardBase(),
                   [](Create& r) {
                     r.mutable_reward()->set_reward_type(v1::REWARD_TYPE_DONATION);
                     r.mutable_reward()->mutable_face_value()->set_currency("EUR");
                   },
                   create),
      Make<Create>("create: face value in an unknown currency", "reward.face_value.currency", CreateRewardBase(),
                   [](Create& r) {
                     r.mutable_reward()->set_reward_type(v1::REWARD_TYPE_FIXED_DISCOUNT);
                     r.mutable_reward()->mutable_face_value()->set_amount_minor(500);
                     r.mutable_reward()->mutable_face_value()->set_currency("XYZ");
                   },
                   create),
      Make<v1::ProposeRewardRequest>("propose: name of 101 characters", "reward.names[0].text", proposal,
                                     [](v1::ProposeRewardRequest& r) {
                                       r.mutable_reward()->mutable_names(0)->set_text(std::string(101, 'n'));
                                     },
                                     propose),
      Make<Upd>("update: no reward id", "reward_id", update_base, [](Upd& r) { r.set_reward_id(""); }, update),
      Make<Upd>("update: empty mask", "update_mask", update_base, [](Upd& r) { r.clear_update_mask(); }, update),
      Make<Upd>("update: mask naming state", "update_mask", update_base,
                [](Upd& r) { r.mutable_update_mask()->add_paths("state"); }, update),
      Make<Upd>("update: expected_version -1", "expected_version", update_base,
                [](Upd& r) { r.set_expected_version(-1); }, update),
      Make<Upd>("update: name of 101 characters", "reward.names[0].text", update_base,
                [](Upd& r) { r.mutable_reward()->mutable_names(0)->set_text(Accented(101)); }, update),
      Make<Upd>("update: category not a slug", "reward.category", update_base,
                [](Upd& r) {
                  r.mutable_update_mask()->add_paths("category");
                  r.mutable_reward()->set_category("Grooming");
                },
                update),
      Make<SetState>("state: unspecified", "state", state_base,
                     [](SetState& r) { r.set_state(v1::REWARD_STATE_UNSPECIFIED); }, set_state),
      Make<SetState>("state: unknown", "state", state_base,
                     [](SetState& r) { r.set_state(static_cast<v1::RewardState>(17)); }, set_state),
      Make<SetState>("state: reason of 501 characters", "reason", state_base,
                     [](SetState& r) { r.set_reason(Accented(501)); }, set_state),
      Make<Adj>("stock: delta 0", "delta_units", adjust_base, [](Adj& r) { r.set_delta_units(0); }, adjust),
      Make<Adj>("stock: no reason", "reason", adjust_base, [](Adj& r) { r.set_reason(""); }, adjust),
      Make<Adj>("stock: reason of 501 characters", "reason", adjust_base,
                [](Adj& r) { r.set_reason(Accented(501)); }, adjust),
  };
  RunRows(rows);
}

TEST_F(CatalogValidationTest, VouchersAndCouponsRefuseEachDocumentedViolationAndWriteNothing) {
  const std::string code = NewVoucherCode();
  using Batch = v1::CreateCouponBatchRequest;
  auto batch = [this](const Batch& r) { return catalog_->coupons().CreateCouponBatch(kBackoffice, r).status(); };
  v1::RedeemRequest redeem_base;
  redeem_base.set_idempotency_key("redeem-bad");
  redeem_base.set_member_id("m1");
  redeem_base.set_reward_id(reward_id_);
  auto redeem = [this](const v1::RedeemRequest& r) { return catalog_->redeem().Redeem(kBackoffice, r).status(); };
  v1::HonourVoucherRequest honour_base;
  honour_base.set_idempotency_key("honour-bad");
  honour_base.set_voucher_code(code);
  honour_base.set_partner_id("vet");
  auto honour = [this](const v1::HonourVoucherRequest& r) {
    return catalog_->vouchers().HonourVoucher(kVet, r).status();
  };
  v1::CancelVoucherRequest cancel_base;
  cancel_base.set_idempotency_key("cancel-bad");
  cancel_base.set_voucher_code(code);
  auto cancel = [this](const v1::CancelVoucherRequest& r) {
    return catalog_->vouchers().CancelVoucher(kBackoffice, r).status();
  };
  v1::RedeemCouponRequest coupon_base;
  coupon_base.set_idempotency_key("coupon-bad");
  coupon_base.set_code("PET0000000000X");
  coupon_base.set_member_id("m1");
  coupon_base.set_partner_id("vet");
  auto redeem_coupon = [this](const v1::RedeemCouponRequest& r) {
    return catalog_->coupons().RedeemCoupon(kBackoffice, r).status();
  };

  const std::vector<Row> rows = {
      Make<v1::RedeemRequest>("redeem: empty key", "idempotency_key", redeem_base,
                              [](v1::RedeemRequest& r) { r.set_idempotency_key(""); }, redeem),
      Make<v1::RedeemRequest>("redeem: no member", "member_id", redeem_base,
                              [](v1::RedeemRequest& r) { r.set_member_id(""); }, redeem),
      Make<v1::RedeemRequest>("redeem: no reward", "reward_id", redeem_base,
                              [](v1::RedeemRequest& r) { r.set_reward_id(""); }, redeem),
      Make<v1::RedeemRequest>("redeem: bad channel partner", "channel_partner_id", redeem_base,
                              [](v1::RedeemRequest& r) { r.set_channel_partner_id("a:b"); }, redeem),
      Make<v1::HonourVoucherRequest>("honour: malformed code", "voucher_code", honour_base,
                                     [](v1::HonourVoucherRequest& r) { r.set_voucher_code("NOT-A-CODE"); }, honour),
      Make<v1::HonourVoucherRequest>("honour: reference of 65 characters", "reference", honour_base,
                                     [](v1::HonourVoucherRequest& r) { r.set_reference(Accented(65)); }, honour),
      Make<v1::CancelVoucherRequest>("cancel: malformed code", "voucher_code", cancel_base,
                                     [](v1::CancelVoucherRequest& r) { r.set_voucher_code("X"); }, cancel),
      Make<v1::CancelVoucherRequest>("cancel: reason of 501 characters", "reason", cancel_base,
                                     [](v1::CancelVoucherRequest& r) { r.set_reason(Accented(501)); }, cancel),
      Make<Batch>("batch: empty key", "idempotency_key", BatchBase(), [](Batch& r) { r.set_idempotency_key(""); },
                  batch),
      Make<Batch>("batch: no campaign", "coupon_batch.campaign_id", BatchBase(),
                  [](Batch& r) { r.mutable_coupon_batch()->set_campaign_id(""); }, batch),
      Make<Batch>("batch: no name", "coupon_batch.name", BatchBase(),
                  [](Batch& r) { r.mutable_coupon_batch()->set_name(""); }, batch),
      Make<Batch>("batch: name of 101 characters", "coupon_batch.name", BatchBase(),
                  [](Batch& r) { r.mutable_coupon_batch()->set_name(Accented(101)); }, batch),
      Make<Batch>("batch: 0 codes", "coupon_batch.code_count", BatchBase(),
                  [](Batch& r) { r.mutable_coupon_batch()->set_code_count(0); }, batch),
      Make<Batch>("batch: 100001 codes", "coupon_batch.code_count", BatchBase(),
                  [](Batch& r) { r.mutable_coupon_batch()->set_code_count(100001); }, batch),
      Make<Batch>("batch: 0 uses per code", "coupon_batch.max_redemptions_per_code", BatchBase(),
                  [](Batch& r) { r.mutable_coupon_batch()->set_max_redemptions_per_code(0); }, batch),
      Make<Batch>("batch: 0 uses per member", "coupon_batch.max_redemptions_per_member", BatchBase(),
                  [](Batch& r) { r.mutable_coupon_batch()->set_max_redemptions_per_member(0); }, batch),
      Make<Batch>("batch: negative bonus", "coupon_batch.bonus_points", BatchBase(),
                  [](Batch& r) { r.mutable_coupon_batch()->set_bonus_points(-1); }, batch),
      Make<Batch>("batch: bad funding partner", "coupon_batch.funding_partner_id", BatchBase(),
                  [](Batch& r) { r.mutable_coupon_batch()->set_funding_partner_id("a:b"); }, batch),
      Make<Batch>("batch: bad partner", "coupon_batch.partner_ids[0]", BatchBase(),
                  [](Batch& r) { r.mutable_coupon_batch()->add_partner_ids(""); }, batch),
      Make<Batch>("batch: valid_until before valid_from", "coupon_batch.valid_until", BatchBase(),
                  [](Batch& r) {
                    *r.mutable_coupon_batch()->mutable_valid_from() = ToProtoTime(absl::FromUnixSeconds(2000));
                    *r.mutable_coupon_batch()->mutable_valid_until() = ToProtoTime(absl::FromUnixSeconds(1000));
                  },
                  batch),
      Make<Batch>("batch: prefix of 7", "coupon_batch.code_prefix", BatchBase(),
                  [](Batch& r) { r.mutable_coupon_batch()->set_code_prefix("ABCDEFG"); }, batch),
      Make<Batch>("batch: prefix outside Crockford base32", "coupon_batch.code_prefix", BatchBase(),
                  [](Batch& r) { r.mutable_coupon_batch()->set_code_prefix("PU!"); }, batch),
      Make<v1::RedeemCouponRequest>("coupon: malformed code", "code", coupon_base,
                                    [](v1::RedeemCouponRequest& r) { r.set_code("??"); }, redeem_coupon),
      Row{"validate coupon: malformed code", "code",
          [this] {
            v1::ValidateCouponRequest r;
            r.set_code("??");
            return catalog_->coupons().ValidateCoupon(kBackoffice, r).status();
          }},
      Row{"voucher: malformed code", "voucher_code",
          [this] {
            v1::GetVoucherRequest r;
            r.set_voucher_code("ABC");
            return catalog_->vouchers().GetVoucher(kBackoffice, r).status();
          }},
      Row{"vouchers: neither member nor partner", "member_id or partner_id",
          [this] { return catalog_->vouchers().ListVouchers(kBackoffice, {}).status(); }},
      Row{"redeemable: no member", "member_id",
          [this] { return catalog_->rewards().ListRedeemableRewards(kBackoffice, {}).status(); }},
      Row{"redeemable: category not a slug", "category",
          [this] {
            v1::ListRedeemableRewardsRequest r;
            r.set_member_id("m1");
            r.set_category("Pet Food");
            return catalog_->rewards().ListRedeemableRewards(kBackoffice, r).status();
          }},
      Row{"rewards: category not a slug", "category",
          [this] {
            v1::ListRewardsRequest r;
            r.set_category("PET-FOOD");
            return catalog_->rewards().ListRewards(kBackoffice, r).status();
          }},
  };
  RunRows(rows);
}

TEST_F(CatalogValidationTest, CampaignsRefuseEachDocumentedViolationAndWriteNothing) {
  using Create = v1::CreateCampaignRequest;
  auto create = [this](const Create& r) { return catalog_->campaigns().CreateCampaign(kBackoffice, r).status(); };
  v1::UpdateCampaignRequest update_base;
  update_base.set_idempotency_key("update-campaign-bad");
  update_base.set_campaign_id(campaign_id_);
  update_base.mutable_update_mask()->add_paths("name");
  *update_base.mutable_campaign() = CampaignBase();
  using Upd = v1::UpdateCampaignRequest;
  auto update = [this](const Upd& r) { return catalog_->campaigns().UpdateCampaign(kBackoffice, r).status(); };
  v1::SetCampaignStateRequest state_base;
  state_base.set_idempotency_key("campaign-state-bad");
  state_base.set_campaign_id(campaign_id_);
  state_base.set_state(v1::CAMPAIGN_STATE_PAUSED);
  using SetState = v1::SetCampaignStateRequest;
  auto set_state = [this](const SetState& r) {
    return catalog_->campaigns().SetCampaignState(kBackoffice, r).status();
  };
  v1::LeaseCampaignBudgetRequest lease_base;
  lease_base.set_idempotency_key("lease-bad");
  lease_base.set_campaign_id(campaign_id_);
  lease_base.set_requested_points(10);
  lease_base.set_holder("ledger-1");
  using Lease = v1::LeaseCampaignBudgetRequest;
  auto lease = [this](const Lease& r) { return catalog_->campaigns().LeaseCampaignBudget(kService, r).status(); };
  v1::ReturnCampaignBudgetRequest return_base;
  return_base.set_idempotency_key("return-bad");
  return_base.set_campaign_budget_lease_id(lease_id_);
  return_base.set_used_points(40);
  return_base.set_unused_points(60);
  using Return = v1::ReturnCampaignBudgetRequest;
  auto give_back = [this](const Return& r) { return catalog_->campaigns().ReturnCampaignBudget(kService, r).status(); };

  const std::vector<Row> rows = {
      Make<Create>("create: empty key", "idempotency_key", CreateCampaignBase(),
                   [](Create& r) { r.set_idempotency_key(""); }, create),
      Make<Create>("create: no name", "campaign.name", CreateCampaignBase(),
                   [](Create& r) { r.mutable_campaign()->set_name(""); }, create),
      Make<Create>("create: name of 101 characters", "campaign.name", CreateCampaignBase(),
                   [](Create& r) { r.mutable_campaign()->set_name(Accented(101)); }, create),
      Make<Create>("create: description of 2001 characters", "campaign.description", CreateCampaignBase(),
                   [](Create& r) { r.mutable_campaign()->set_description(Accented(2001)); }, create),
      Make<Create>("create: rate 0", "campaign.bonus_rate_bp", CreateCampaignBase(),
                   [](Create& r) { r.mutable_campaign()->set_bonus_rate_bp(0); }, create),
      Make<Create>("create: fixed bonus 0", "campaign.fixed_bonus_points", CreateCampaignBase(),
                   [](Create& r) { r.mutable_campaign()->set_fixed_bonus_points(0); }, create),
      Make<Create>("create: bad partner", "campaign.partner_ids[1]", CreateCampaignBase(),
                   [](Create& r) { r.mutable_campaign()->add_partner_ids("a:b"); }, create),
      Make<Create>("create: bad tier", "campaign.tier_ids[0]", CreateCampaignBase(),
                   [](Create& r) { r.mutable_campaign()->add_tier_ids(""); }, create),
      Make<Create>("create: bad segment", "campaign.segment_ids[0]", CreateCampaignBase(),
                   [](Create& r) { r.mutable_campaign()->add_segment_ids(std::string(65, 's')); }, create),
      Make<Create>("create: category not a slug", "campaign.categories[0]", CreateCampaignBase(),
                   [](Create& r) { r.mutable_campaign()->set_categories(0, "Pet Food!"); }, create),
      Make<Create>("create: empty category", "campaign.categories[0]", CreateCampaignBase(),
                   [](Create& r) { r.mutable_campaign()->set_categories(0, ""); }, create),
      Make<Create>("create: min purchase 0", "campaign.min_purchase.amount_minor", CreateCampaignBase(),
                   [](Create& r) { r.mutable_campaign()->mutable_min_purchase()->set_currency("EUR"); }, create),
      Make<Create>("create: min purchase in an unknown currency", "campaign.min_purchase.currency",
                   CreateCampaignBase(),
                   [](Create& r) {
                     r.mutable_campaign()->mutable_min_purchase()->set_amount_minor(100);
                     r.mutable_campaign()->mutable_min_purchase()->set_currency("eur");
                   },
                   create),
      Make<Create>("create: end before start", "campaign.end_time", CreateCampaignBase(),
                   [](Create& r) {
                     *r.mutable_campaign()->mutable_start_time() = ToProtoTime(absl::FromUnixSeconds(2000));
                     *r.mutable_campaign()->mutable_end_time() = ToProtoTime(absl::FromUnixSeconds(1000));
                   },
                   create),
      Make<Create>("create: unspecified day", "campaign.days_of_week[0]", CreateCampaignBase(),
                   [](Create& r) {
                     r.mutable_campaign()->add_days_of_week(v1::DAY_OF_WEEK_UNSPECIFIED);
                     r.mutable_campaign()->set_time_zone("Europe/Berlin");
                   },
                   create),
      Make<Create>("create: day 8", "campaign.days_of_week[0]", CreateCampaignBase(),
                   [](Create& r) {
                     r.mutable_campaign()->add_days_of_week(static_cast<v1::DayOfWeek>(8));
                     r.mutable_campaign()->set_time_zone("Europe/Berlin");
                   },
                   create),
      Make<Create>("create: start minute 1440", "campaign.daily_start_minute", CreateCampaignBase(),
                   [](Create& r) {
                     r.mutable_campaign()->set_daily_start_minute(1440);
                     r.mutable_campaign()->set_time_zone("Europe/Berlin");
                   },
                   create),
      Make<Create>("create: end minute 1441", "campaign.daily_end_minute", CreateCampaignBase(),
                   [](Create& r) {
                     r.mutable_campaign()->set_daily_end_minute(1441);
                     r.mutable_campaign()->set_time_zone("Europe/Berlin");
                   },
                   create),
      Make<Create>("create: window ending before it starts", "campaign.daily_end_minute", CreateCampaignBase(),
                   [](Create& r) {
                     r.mutable_campaign()->set_daily_start_minute(600);
                     r.mutable_campaign()->set_daily_end_minute(540);
                     r.mutable_campaign()->set_time_zone("Europe/Berlin");
                   },
                   create),
      Make<Create>("create: schedule without time zone", "campaign.time_zone", CreateCampaignBase(),
                   [](Create& r) { r.mutable_campaign()->add_days_of_week(v1::DAY_OF_WEEK_MONDAY); }, create),
      Make<Create>("create: unknown time zone", "campaign.time_zone", CreateCampaignBase(),
                   [](Create& r) { r.mutable_campaign()->set_time_zone("Mars/Olympus"); }, create),
      Make<Create>("create: negative budget", "campaign.budget_points", CreateCampaignBase(),
                   [](Create& r) { r.mutable_campaign()->set_budget_points(-1); }, create),
      Make<Create>("create: negative cap", "campaign.max_bonus_points_per_purchase", CreateCampaignBase(),
                   [](Create& r) { r.mutable_campaign()->set_max_bonus_points_per_purchase(-1); }, create),
      Make<Upd>("update: no campaign id", "campaign_id", update_base, [](Upd& r) { r.set_campaign_id(""); }, update),
      Make<Upd>("update: empty mask", "update_mask", update_base, [](Upd& r) { r.clear_update_mask(); }, update),
      Make<Upd>("update: name of 101 characters", "campaign.name", update_base,
                [](Upd& r) { r.mutable_campaign()->set_name(std::string(101, 'n')); }, update),
      Make<Upd>("update: category not a slug", "campaign.categories[0]", update_base,
                [](Upd& r) {
                  r.mutable_update_mask()->add_paths("categories");
                  r.mutable_campaign()->set_categories(0, "Dog Food");
                },
                update),
      Make<SetState>("state: unspecified", "state", state_base,
                     [](SetState& r) { r.set_state(v1::CAMPAIGN_STATE_UNSPECIFIED); }, set_state),
      Make<SetState>("state: unknown", "state", state_base,
                     [](SetState& r) { r.set_state(static_cast<v1::CampaignState>(9)); }, set_state),
      Make<SetState>("state: reason of 501 characters", "reason", state_base,
                     [](SetState& r) { r.set_reason(std::string(501, 'r')); }, set_state),
      Make<Lease>("lease: 0 points", "requested_points", lease_base, [](Lease& r) { r.set_requested_points(0); },
                  lease),
      Make<Lease>("lease: 1000001 points", "requested_points", lease_base,
                  [](Lease& r) { r.set_requested_points(1'000'001); }, lease),
      Make<Lease>("lease: no holder", "holder", lease_base, [](Lease& r) { r.set_holder(""); }, lease),
      Make<Lease>("lease: holder of 129 characters", "holder", lease_base,
                  [](Lease& r) { r.set_holder(Accented(129)); }, lease),
      Make<Return>("return: negative used", "used_points", return_base, [](Return& r) { r.set_used_points(-1); },
                   give_back),
      Make<Return>("return: negative unused", "unused_points", return_base,
                   [](Return& r) { r.set_unused_points(-1); }, give_back),
      Make<Return>("return: used + unused != granted", "used_points + unused_points", return_base,
                   [](Return& r) { r.set_unused_points(59); }, give_back),
      Row{"earn rules: known_version -1", "known_version",
          [this] {
            v1::GetActiveEarnRulesRequest r;
            r.set_known_version(-1);
            return catalog_->campaigns().GetActiveEarnRules(kService, r).status();
          }},
      Row{"quote: no partner", "partner_id",
          [this] { return catalog_->campaigns().QuoteEarn(kBackoffice, {}).status(); }},
  };
  RunRows(rows);
}

// The limits are inclusive, and lengths count characters, not bytes.
TEST_F(CatalogValidationTest, LimitsAreInclusiveAndCountCharacters) {
  v1::CreateRewardRequest r = CreateRewardBase();
  r.mutable_reward()->mutable_names(0)->set_text(Accented(100));
  r.mutable_reward()->mutable_names(0)->set_language("zh-Hant-TW");
  auto* d = r.mutable_reward()->add_descriptions();
  d->set_language("de-CH");
  d->set_text(Accented(2000));
  r.mutable_reward()->set_category(std::string(64, 'c'));
  auto created = catalog_->rewards().CreateReward(kBackoffice, r);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->reward().names(0).text(), Accented(100));

  v1::CreateCampaignRequest c = CreateCampaignBase();
  c.mutable_campaign()->set_name(Accented(100));
  c.mutable_campaign()->set_description(Accented(2000));
  EXPECT_TRUE(catalog_->campaigns().CreateCampaign(kBackoffice, c).ok());
}

}  // namespace
}  // namespace loyalty::catalog
