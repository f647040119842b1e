// Vouchers (services/catalog/vouchers.h) on the real MySQL store: honour
// and cancel with the ledger, one operation at a time, and listing. The
// fixture is catalog_fixture.h.

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
  EXPECT_EQ(catalog_->vouchers().HonourVoucher(kFood, h).status().code(), absl::StatusCode::kPermissionDenied);

  h.set_partner_id("vet");
  h.set_reference("receipt-1");
  auto honoured = catalog_->vouchers().HonourVoucher(kVet, h);
  ASSERT_TRUE(honoured.ok()) << honoured.status();
  EXPECT_EQ(honoured->voucher().state(), v1::VOUCHER_STATE_HONOURED);
  EXPECT_FALSE(honoured->voucher().capture_transfer_id().empty());
  EXPECT_EQ(ledger_.Posted("m1"), 600);

  auto replay = catalog_->vouchers().HonourVoucher(kVet, h);
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->voucher().honoured_at().seconds(), honoured->voucher().honoured_at().seconds());

  h.set_idempotency_key("h2");
  auto second = catalog_->vouchers().HonourVoucher(kVet, h);
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
  EXPECT_EQ(catalog_->vouchers().HonourVoucher(kVet, h).status().code(), absl::StatusCode::kUnavailable);
  ExpectConsistent(r.reward_id());
  EXPECT_TRUE(catalog_->vouchers().HonourVoucher(kVet, h).ok());
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
  EXPECT_FALSE(catalog_->vouchers().HonourVoucher(kVet, first).ok());
  MakeCatalog({});
  // Till 2 presents the same voucher: it must not be told "honoured" too.
  v1::HonourVoucherRequest second = first;
  second.set_idempotency_key("till-2");
  EXPECT_EQ(catalog_->vouchers().HonourVoucher(kVet, second).status().code(), absl::StatusCode::kAborted);
  // Till 1's retry finishes its own honour; till 2's is then refused.
  auto honoured = catalog_->vouchers().HonourVoucher(kVet, first);
  ASSERT_TRUE(honoured.ok()) << honoured.status();
  EXPECT_EQ(honoured->voucher().state(), v1::VOUCHER_STATE_HONOURED);
  auto refused = catalog_->vouchers().HonourVoucher(kVet, second);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr("voucher used"));
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
  EXPECT_EQ(catalog_->vouchers().CancelVoucher(kFood, c).status().code(), absl::StatusCode::kNotFound);
  auto cancelled = catalog_->vouchers().CancelVoucher(kBackoffice, c);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->voucher().state(), v1::VOUCHER_STATE_CANCELLED);
  EXPECT_EQ(cancelled->available_points(), 1000);
  EXPECT_EQ(Get(r.reward_id()).stock_available(), 5);
  EXPECT_TRUE(catalog_->vouchers().CancelVoucher(kBackoffice, c).ok());  // idempotent
  c.set_idempotency_key("c2");
  EXPECT_EQ(catalog_->vouchers().CancelVoucher(kBackoffice, c).status().code(), absl::StatusCode::kFailedPrecondition);

  v1::HonourVoucherRequest h;
  h.set_idempotency_key("h1");
  h.set_voucher_code(redeemed->voucher().voucher_code());
  h.set_partner_id("vet");
  auto late = catalog_->vouchers().HonourVoucher(kVet, h);
  EXPECT_EQ(late.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(late.status().message(), HasSubstr("cancelled"));
  ExpectConsistent(r.reward_id());
}

TEST_F(CatalogTest, ListVouchersIsScopedAndPaged) {
  ledger_.SetPoints("m1", 10000);
  v1::Reward r = Active(Reward(10, 10));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Redeem(absl::StrCat("r", i), "m1", r.reward_id()).ok());
  v1::ListVouchersRequest l;
  l.set_member_id("m1");
  l.set_partner_id("vet");
  EXPECT_EQ(catalog_->vouchers().ListVouchers(kFood, l).status().code(), absl::StatusCode::kPermissionDenied);
  l.set_page_size(2);
  int seen = 0;
  for (int page = 0; page < 5; ++page) {
    auto got = catalog_->vouchers().ListVouchers(kVet, l);
    ASSERT_TRUE(got.ok()) << got.status();
    seen += got->vouchers_size();
    if (got->next_page_token().empty()) break;
    l.set_page_token(got->next_page_token());
  }
  EXPECT_EQ(seen, 5);
}

}  // namespace
}  // namespace loyalty::catalog
