// Prepaid (services/settlement/prepaid.h): blocks, the journal follower,
// alerts, and their reconciliation, with the real ledger.

#include "tests/services/settlement/settlement_fixture.h"

#include "absl/strings/match.h"
#include "common/time/proto_time.h"
#include "gtest/gtest.h"

namespace loyalty::settlement {
namespace {

TEST_F(SettlementTest, PrepaidBlocksDrawDownRaiseAlertsAndReconcile) {
  const absl::Time now = absl::Now();
  Create("vet");
  Create("food", v1::BUSINESS_CATEGORY_PET_FOOD);
  v1::Contract prepaid = TermsOf("vet", now - absl::Hours(24 * 10), 10000, 8000, 0, 0);
  prepaid.set_funding_model(v1::FUNDING_MODEL_PREPAID);
  prepaid.set_prepaid_low_balance_threshold_points(150);
  ASSERT_TRUE(AddContract("vet-1", prepaid).ok());
  ASSERT_TRUE(AddContract("food-1", TermsOf("food", now - absl::Hours(24 * 10), 10000, 9500, 0, 0)).ok());

  auto buy = [&](const std::string& key, const std::string& partner, int64_t points, const std::string& currency) {
    v1::PurchasePointBlockRequest r;
    r.set_idempotency_key(key);
    r.set_partner_id(partner);
    r.set_points(points);
    r.mutable_price()->set_amount_minor(points * 8);
    r.mutable_price()->set_currency(currency);
    r.set_reference("INV-" + key);
    return settlement_->prepaid().PurchasePointBlock(finance_, r);
  };
  auto balance = [&]() {
    v1::GetPrepaidBalanceRequest r;
    r.set_partner_id("vet");
    auto out = settlement_->prepaid().GetPrepaidBalance(vet_, r);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? out->balance() : v1::PrepaidBalance();
  };
  auto follow = [&]() {
    auto n = settlement_->prepaid().FollowJournal(1000);
    EXPECT_TRUE(n.ok()) << n.status();
    return n.ok() ? *n : -1;
  };
  EXPECT_EQ(buy("b0", "food", 100, "EUR").status().code(), absl::StatusCode::kFailedPrecondition);  // postpaid
  auto wrong = buy("b1", "vet", 200, "CHF");
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(wrong.status().message(), "price.currency")) << wrong.status();
  auto bought = buy("b2", "vet", 200, "EUR");
  ASSERT_TRUE(bought.ok()) << bought.status();
  EXPECT_EQ(bought->balance().remaining_points(), 200);
  EXPECT_EQ(bought->balance().low_balance_threshold_points(), 150);
  v1::GetPrepaidBalanceRequest other;
  other.set_partner_id("food");
  EXPECT_EQ(settlement_->prepaid().GetPrepaidBalance(vet_, other).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(settlement_->prepaid().GetPrepaidBalance(finance_, other).status().code(),
            absl::StatusCode::kFailedPrecondition);

  Earn("p-e1", "vet", "m1", 10000);  // 100 points: 200 - 100 = 100 < 150
  EXPECT_EQ(follow(), 1);
  EXPECT_EQ(balance().remaining_points(), 100);
  lv1::Transfer e2 = Earn("p-e2", "vet", "m2", 12000);  // 120 points: -20, exhausted
  Earn("p-f1", "food", "m1", 5000);                      // 100 points, postpaid: not drawn
  EXPECT_EQ(follow(), 2);
  v1::PrepaidBalance b = balance();
  EXPECT_EQ(b.purchased_points(), 200);
  EXPECT_EQ(b.issued_points(), 220);
  EXPECT_EQ(b.remaining_points(), -20);
  EXPECT_EQ(b.as_of_sequence(), 3);
  EXPECT_EQ(follow(), 0);

  v1::ListAlertsRequest la;
  la.set_partner_id("vet");
  auto alerts = settlement_->prepaid().ListAlerts(vet_, la);
  ASSERT_TRUE(alerts.ok()) << alerts.status();
  ASSERT_EQ(alerts->alerts_size(), 2);
  EXPECT_EQ(alerts->alerts(0).kind(), v1::ALERT_KIND_PREPAID_EXHAUSTED);
  EXPECT_EQ(alerts->alerts(0).remaining_points(), -20);
  EXPECT_EQ(alerts->alerts(1).kind(), v1::ALERT_KIND_PREPAID_LOW_BALANCE);
  EXPECT_EQ(alerts->alerts(1).remaining_points(), 100);
  EXPECT_EQ(alerts->alerts(1).threshold_points(), 150);
  EXPECT_EQ(settlement_->prepaid().ListAlerts(vet_, v1::ListAlertsRequest()).status().code(),
            absl::StatusCode::kPermissionDenied);

  // A return gives 20 points back to the block; a purchase tops it up. Neither
  // raises an alert.
  Reverse("p-return", e2.transfer_id(), 20);
  EXPECT_EQ(follow(), 1);
  EXPECT_EQ(balance().remaining_points(), 0);
  ASSERT_TRUE(buy("b3", "vet", 100, "EUR").ok());
  b = balance();
  EXPECT_EQ(b.remaining_points(), 100);
  EXPECT_EQ(settlement_->prepaid().ListAlerts(finance_, la)->alerts_size(), 2);

  // The feed tells the ledger the remaining points and the sequence they
  // are counted to.
  auto feed = settlement_->partners().ListPartnerSnapshots(Principal::Of("svc", common::v1::ROLE_SERVICE),
                                                v1::ListPartnerSnapshotsRequest());
  ASSERT_TRUE(feed.ok()) << feed.status();
  bool seen = false;
  for (const auto& snap : feed->snapshots()) {
    if (snap.partner_id() != "vet") continue;
    seen = true;
    EXPECT_EQ(snap.prepaid_remaining_points(), 100);
    EXPECT_EQ(snap.prepaid_as_of_sequence(), 4);
  }
  EXPECT_TRUE(seen);

  // Prepaid issuance is not invoiced on the statement; reconciliation checks
  // the blocks and the issuance.
  auto period = NewPeriod("prepaid-month", now - absl::Hours(24 * 10), now + absl::Hours(12));
  ASSERT_TRUE(period.ok()) << period.status();
  ASSERT_TRUE(Close("close-prepaid", period->period_id(), 0).ok());
  v1::Statement vet = StatementOf(period->period_id(), "vet");
  EXPECT_EQ(vet.issued_points(), 220);
  EXPECT_EQ(vet.issue_reversed_points(), 20);
  EXPECT_EQ(vet.net_amount().amount_minor(), 0);
  // food earns 2 points per EUR in the ledger fixture: 100 points x 10000 / 1000.
  EXPECT_EQ(StatementOf(period->period_id(), "food").net_amount().amount_minor(), 1000);
  v1::ReconcileRequest rr;
  rr.set_period_id(period->period_id());
  auto report = settlement_->reconciliation().Reconcile(finance_, rr);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->mismatches_size(), 0) << report->DebugString();
  ASSERT_EQ(report->checks_size(), 4);
  EXPECT_EQ(report->checks(2).check(), v1::RECONCILIATION_CHECK_PREPAID_BLOCKS);
  EXPECT_EQ(report->checks(2).items_checked(), 1);
  ASSERT_TRUE(loyalty::testing::ExecForTest(db_->pool(),
                                            "UPDATE prepaid_balances SET purchased_points = purchased_points + 5")
                  .ok());
  report = settlement_->reconciliation().Reconcile(finance_, rr);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->mismatches_size(), 1) << report->DebugString();
  EXPECT_EQ(report->mismatches(0).check(), v1::RECONCILIATION_CHECK_PREPAID_BLOCKS);
  EXPECT_EQ(report->mismatches(0).partner_id(), "vet");
  EXPECT_EQ(report->mismatches(0).difference_points(), -5);
}

// A partner disputes a line of a FINAL statement; backoffice accepts it with
// an adjustment that the next period's statement carries. The disputed
// statement's amounts never change.

}  // namespace
}  // namespace loyalty::settlement
