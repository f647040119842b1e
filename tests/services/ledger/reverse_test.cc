// Returns against a real MariaDB (services/ledger/reverse.h).
#include <cppconn/prepared_statement.h>

#include <atomic>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/testing/test_db.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "services/ledger/holds.h"
#include "services/ledger/mysql_ledger_store.h"
#include "tests/services/ledger/ledger_fixture.h"
#include "tests/services/ledger/ledger_test_base.h"

namespace loyalty::ledger {
namespace {

using google::protobuf::util::TimeUtil;
using testing::EarnOf;

// ---- Reverse ----------------------------------------------------------------

TEST_F(LedgerTest, ReverseRedemptionRestoresItsLots) {
  Earn("m1", 2000, "vet");
  Earn("m1", 2000, "groomer");
  auto hold = Authorize("m1", 30);
  ASSERT_TRUE(hold.ok());
  auto captured = Capture(hold->hold().hold_id(), 0);
  ASSERT_TRUE(captured.ok());
  EXPECT_EQ(Available("m1"), 10);

  v1::ReverseRequest r;
  r.set_idempotency_key("rev-1");
  r.set_transfer_id(captured->transfer().transfer_id());
  r.set_points(8);
  auto rev = ledger().Reverse(caller_, r);
  ASSERT_TRUE(rev.ok()) << rev.status();
  EXPECT_EQ(rev->transfer().code(), v1::TRANSFER_CODE_REVERSE_REDEEM);
  EXPECT_EQ(rev->transfer().debit_account(), "redemption:food");
  ASSERT_EQ(rev->transfer().allocations_size(), 1);
  EXPECT_EQ(rev->transfer().allocations(0).issuer_partner_id(), "groomer");  // last consumed first
  EXPECT_EQ(rev->remaining_reversible_points(), 22);
  EXPECT_EQ(Available("m1"), 18);

  r.set_idempotency_key("rev-2");
  r.set_points(23);
  EXPECT_EQ(ledger().Reverse(caller_, r).status().code(), absl::StatusCode::kFailedPrecondition);
  r.set_idempotency_key("rev-rest");
  r.clear_points();  // the rest
  auto rest = ledger().Reverse(caller_, r);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(rest->reversed_points(), 22);
  EXPECT_EQ(Available("m1"), 40);
  r.set_idempotency_key("rev-3");
  EXPECT_EQ(ledger().Reverse(caller_, r).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(LedgerTest, ReverseEarnClawsBackWhatRemainsAndRecordsTheShortfall) {
  auto earn = ledger().Earn(caller_, EarnOf("buy", "vet", "m1", 5000));  // 50 points
  ASSERT_TRUE(earn.ok());
  auto hold = Authorize("m1", 40);
  ASSERT_TRUE(Capture(hold->hold().hold_id(), 0).ok());  // 40 spent, 10 left

  v1::ReverseRequest r;
  r.set_idempotency_key("return-all");
  r.set_transfer_id(earn->transfer().transfer_id());
  r.mutable_refund_amount()->set_amount_minor(5000);
  r.mutable_refund_amount()->set_currency("EUR");
  auto rev = ledger().Reverse(caller_, r);
  ASSERT_TRUE(rev.ok()) << rev.status();
  EXPECT_EQ(rev->reversed_points(), 50);  // requested: 10 moved + 40 shortfall
  EXPECT_EQ(rev->transfer().points(), 10);
  EXPECT_EQ(rev->shortfall_points(), 40);
  EXPECT_EQ(rev->transfer().shortfall_points(), 40);
  EXPECT_EQ(rev->remaining_reversible_points(), 0);
  EXPECT_EQ(Available("m1"), 0);  // never negative

  // Only EARN and REDEEM can be reversed; refund currency must match.
  v1::ReverseRequest bad;
  bad.set_idempotency_key("rev-hold");
  bad.set_transfer_id(hold->hold().hold_transfer_id());
  bad.set_points(1);
  EXPECT_EQ(ledger().Reverse(caller_, bad).status().code(), absl::StatusCode::kFailedPrecondition);
  bad.set_idempotency_key("rev-missing");
  bad.set_transfer_id("tr_nothing");
  EXPECT_EQ(ledger().Reverse(caller_, bad).status().code(), absl::StatusCode::kNotFound);
  auto other = ledger().Earn(caller_, EarnOf("buy2", "vet", "m1", 1000));
  bad.set_idempotency_key("rev-usd");
  bad.set_transfer_id(other->transfer().transfer_id());
  bad.mutable_refund_amount()->set_amount_minor(100);
  bad.mutable_refund_amount()->set_currency("USD");
  EXPECT_EQ(ledger().Reverse(caller_, bad).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(LedgerTest, PartialRefundsAreCappedAtWhatRemains) {
  auto earn = ledger().Earn(caller_, EarnOf("buy", "vet", "m1", 10000));  // 100
  ASSERT_TRUE(earn.ok());
  v1::ReverseRequest r;
  r.set_idempotency_key("refund-1");
  r.set_transfer_id(earn->transfer().transfer_id());
  r.mutable_refund_amount()->set_amount_minor(7000);
  r.mutable_refund_amount()->set_currency("EUR");
  ASSERT_EQ(ledger().Reverse(caller_, r)->reversed_points(), 70);
  r.set_idempotency_key("refund-2");  // 70% again: only 30 remain
  auto second = ledger().Reverse(caller_, r);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->reversed_points(), 30);
  EXPECT_EQ(second->remaining_reversible_points(), 0);
  EXPECT_EQ(Available("m1"), 0);
}

}  // namespace
}  // namespace loyalty::ledger
