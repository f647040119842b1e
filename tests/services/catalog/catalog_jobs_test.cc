// The catalog's background jobs (services/catalog/catalog_jobs.h) on the
// real MySQL store: sagas cut short at each point are recovered, vouchers
// whose honour or cancel reached the ledger but not their own update are
// repaired, expired vouchers are released. The fixture is
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
using testing::CatalogTest;
using testing::FakeLedger;
using testing::kBackoffice;
using testing::kVet;

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
  auto repaired = catalog_->jobs().Recover(100, /*everything=*/true);
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
  EXPECT_EQ(*catalog_->jobs().Recover(100), 0);
  clock_.Advance(absl::Minutes(5));
  EXPECT_EQ(*catalog_->jobs().Recover(100), 1);
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
  EXPECT_EQ(*catalog_->jobs().Recover(100, true), 1);
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
  EXPECT_EQ(*catalog_->jobs().Recover(100, true), 1);
  EXPECT_EQ(*ledger_.AvailablePoints("m1"), 1000);
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
  EXPECT_FALSE(catalog_->vouchers().HonourVoucher(kVet, h).ok());
  v1::CancelVoucherRequest c;
  c.set_idempotency_key("c");
  c.set_voucher_code(b->voucher().voucher_code());
  EXPECT_FALSE(catalog_->vouchers().CancelVoucher(kBackoffice, c).ok());
  // Points captured and released at the ledger, vouchers still ISSUED.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM vouchers WHERE state = 1 AND pending_op > 0"), 2);
  MakeCatalog({});
  EXPECT_EQ(*catalog_->jobs().RepairVouchers(100), 0);  // within the grace period
  clock_.Advance(absl::Minutes(5));
  EXPECT_EQ(*catalog_->jobs().RepairVouchers(100), 2);
  v1::GetVoucherRequest g;
  g.set_voucher_code(a->voucher().voucher_code());
  EXPECT_EQ(catalog_->vouchers().GetVoucher(kBackoffice, g)->voucher().state(), v1::VOUCHER_STATE_HONOURED);
  g.set_voucher_code(b->voucher().voucher_code());
  EXPECT_EQ(catalog_->vouchers().GetVoucher(kBackoffice, g)->voucher().state(), v1::VOUCHER_STATE_CANCELLED);
  EXPECT_EQ(Get(r.reward_id()).stock_available(), 4);
  ExpectConsistent(r.reward_id());

  // The till retries its honour, and backoffice its cancel, with the same
  // keys: each succeeded at the ledger, so each is answered with success
  // (and remembered), not with "voucher used" or "voucher cancelled".
  auto honoured = catalog_->vouchers().HonourVoucher(kVet, h);
  ASSERT_TRUE(honoured.ok()) << honoured.status();
  EXPECT_EQ(honoured->voucher().state(), v1::VOUCHER_STATE_HONOURED);
  EXPECT_TRUE(catalog_->vouchers().HonourVoucher(kVet, h).ok());
  auto cancelled = catalog_->vouchers().CancelVoucher(kBackoffice, c);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->voucher().state(), v1::VOUCHER_STATE_CANCELLED);
  EXPECT_EQ(cancelled->available_points(), 1000 - 100);  // b released; a's 100 were captured
  // Another request for the same vouchers is refused as before.
  h.set_idempotency_key("h2");
  EXPECT_EQ(catalog_->vouchers().HonourVoucher(kVet, h).status().code(), absl::StatusCode::kFailedPrecondition);
  c.set_idempotency_key("c2");
  EXPECT_EQ(catalog_->vouchers().CancelVoucher(kBackoffice, c).status().code(), absl::StatusCode::kFailedPrecondition);
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
  EXPECT_EQ(catalog_->vouchers().HonourVoucher(kVet, h).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(*catalog_->jobs().RepairVouchers(100, /*everything=*/true), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM vouchers WHERE pending_op > 0"), 0);
  EXPECT_TRUE(catalog_->vouchers().HonourVoucher(kVet, h).ok());
  ExpectConsistent(r.reward_id());
}

TEST_F(CatalogTest, ExpiredVouchersAreReleasedBySweep) {
  ledger_.SetPoints("m1", 1000);
  v1::Reward r = Active(Reward(5, 300));
  auto redeemed = Redeem("r", "m1", r.reward_id());
  ASSERT_TRUE(redeemed.ok());
  EXPECT_EQ(*catalog_->jobs().ExpireVouchers(100), 0);
  clock_.Advance(absl::Hours(24 * 30));
  v1::GetVoucherRequest g;
  g.set_voucher_code(redeemed->voucher().voucher_code());
  EXPECT_EQ(catalog_->vouchers().GetVoucher(kBackoffice, g)->voucher().state(), v1::VOUCHER_STATE_EXPIRED);
  v1::HonourVoucherRequest h;
  h.set_idempotency_key("h1");
  h.set_voucher_code(redeemed->voucher().voucher_code());
  h.set_partner_id("vet");
  auto late = catalog_->vouchers().HonourVoucher(kVet, h);
  EXPECT_EQ(late.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(late.status().message(), HasSubstr("expired"));

  EXPECT_EQ(*catalog_->jobs().ExpireVouchers(100), 1);
  EXPECT_EQ(Get(r.reward_id()).stock_available(), 5);
  EXPECT_EQ(Get(r.reward_id()).stock_reserved(), 0);
  EXPECT_EQ(*ledger_.AvailablePoints("m1"), 1000);
  ExpectConsistent(r.reward_id());
}

}  // namespace
}  // namespace loyalty::catalog
