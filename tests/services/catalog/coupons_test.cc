// Coupons (services/catalog/coupons.h) on the real MySQL store: unique
// codes, per-code and per-member limits under concurrency, and the bonus
// grant. The fixture is catalog_fixture.h.

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
using testing::CouponTest;
using testing::FakeLedger;
using testing::kBackoffice;
using testing::kFood;
using testing::kVet;

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
  auto ok = catalog_->coupons().ValidateCoupon(kFood, v);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->code_remaining_redemptions(), 1);
  EXPECT_EQ(ok->coupon_batch().coupon_batch_id(), b.coupon_batch_id());
  v.set_partner_id("vet");
  EXPECT_EQ(catalog_->coupons().ValidateCoupon(kFood, v).status().code(), absl::StatusCode::kPermissionDenied);
  std::string typo = codes[1234];
  typo[5] = typo[5] == 'A' ? 'B' : 'A';
  v.set_code(typo);
  v.set_partner_id("food");
  EXPECT_EQ(catalog_->coupons().ValidateCoupon(kFood, v).status().code(), absl::StatusCode::kInvalidArgument);
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
  EXPECT_EQ(catalog_->coupons().GetCouponBatch(kBackoffice, g)->coupon_batch().redemption_count(), 5);
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
  EXPECT_EQ(*catalog_->jobs().GrantDueCouponBonuses(10), 0);

  ledger_.Inject([](FakeLedger& l) { l.refuse_grant_member = "frozen"; });
  auto refused = Use("g2", codes[1], "frozen");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Use("g2", codes[1], "frozen").status().code(), absl::StatusCode::kFailedPrecondition);
  // The use was given back: another member may still use the code.
  EXPECT_TRUE(Use("g3", codes[1], "m2").ok());
}

}  // namespace
}  // namespace loyalty::catalog
