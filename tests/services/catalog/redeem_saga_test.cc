// The Redeem saga (services/catalog/redeem_saga.h) on the real MySQL store:
// hold, stock and voucher once per key, its refusals, concurrency, and the
// ledger failing before or during the hold. Crashes the recovery job
// repairs are in catalog_jobs_test.cc. The fixture is catalog_fixture.h.

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
using testing::CatalogTest;
using testing::FakeLedger;
using testing::kBackoffice;
using testing::kFood;
using testing::kVet;

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
    draft = catalog_->rewards().CreateReward(kBackoffice, c)->reward();
  }
  auto inactive = Redeem("draft-1", "rich", draft.reward_id());
  EXPECT_EQ(inactive.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(inactive.status().message(), HasSubstr("not active"));
  // The month moved the first vouchers past their expiry: the sweep
  // releases them.
  EXPECT_EQ(*catalog_->jobs().ExpireVouchers(100), 4);
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
  EXPECT_EQ(catalog_->redeem().Redeem(kFood, req).status().code(), absl::StatusCode::kPermissionDenied);
  auto ok = catalog_->redeem().Redeem(kVet, req);
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

}  // namespace
}  // namespace loyalty::catalog
