// Disputes (services/settlement/disputes.h), and the adjustment carried by
// the next period.

#include "tests/services/settlement/settlement_fixture.h"

#include "common/time/proto_time.h"
#include "gtest/gtest.h"

namespace loyalty::settlement {
namespace {

TEST_F(SettlementTest, DisputeAcceptedFlowsIntoTheNextPeriod) {
  const absl::Time now = absl::Now();
  Create("vet");
  Create("food", v1::BUSINESS_CATEGORY_PET_FOOD);
  ASSERT_TRUE(AddContract("vet-1", TermsOf("vet", now - absl::Hours(24 * 20), 10000, 8000, 0, 0)).ok());
  ASSERT_TRUE(AddContract("food-1", TermsOf("food", now - absl::Hours(24 * 20), 10000, 9500, 0, 0)).ok());
  Earn("d-e1", "vet", "m1", 30000);  // 300 points: +3000
  auto first = NewPeriod("first", now - absl::Hours(24 * 20), now + absl::Hours(1));
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = NewPeriod("second", now + absl::Hours(1), now + absl::Hours(12));
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_TRUE(Close("close-first", first->period_id(), 0).ok());
  v1::Statement draft = StatementOf(first->period_id(), "vet");
  ASSERT_EQ(draft.lines_size(), 1);
  EXPECT_EQ(draft.net_amount().amount_minor(), 3000);

  auto dispute = [&](const Principal& who, const std::string& key, const std::string& line) {
    v1::DisputeStatementLineRequest r;
    r.set_idempotency_key(key);
    r.set_statement_id(draft.statement_id());
    r.set_line_id(line);
    r.set_reason("we issued 290 points, not 300");
    *r.mutable_disputed_amount() = Eur(100);
    return settlement_->disputes().DisputeStatementLine(who, r);
  };
  EXPECT_EQ(dispute(vet_, "d0", "L001").status().code(), absl::StatusCode::kNotFound);  // a draft
  EXPECT_EQ(dispute(backoffice_, "d1", "L001").status().code(), absl::StatusCode::kFailedPrecondition);
  v1::FinalizePeriodRequest fin;
  fin.set_idempotency_key("finalize-first");
  fin.set_period_id(first->period_id());
  ASSERT_TRUE(settlement_->period_close().FinalizePeriod(finance_, fin).ok());

  EXPECT_EQ(dispute(Principal::Partner("food-key", "food"), "d2", "L001").status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(dispute(vet_, "d3", "L999").status().code(), absl::StatusCode::kNotFound);
  auto opened = dispute(vet_, "d4", "L001");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->dispute().status(), v1::DISPUTE_STATUS_OPEN);
  EXPECT_EQ(dispute(vet_, "d5", "L001").status().code(), absl::StatusCode::kFailedPrecondition);  // already open
  v1::Statement disputed = StatementOf(first->period_id(), "vet");
  EXPECT_EQ(disputed.status(), v1::STATEMENT_STATUS_DISPUTED);
  EXPECT_EQ(disputed.lines(0).dispute_id(), opened->dispute().dispute_id());
  EXPECT_EQ(disputed.net_amount().amount_minor(), 3000);

  v1::ResolveDisputeRequest resolve;
  resolve.set_idempotency_key("r1");
  resolve.set_dispute_id(opened->dispute().dispute_id());
  resolve.set_resolution(v1::DISPUTE_STATUS_ACCEPTED);
  resolve.set_resolution_note("receipts checked: 290 points");
  EXPECT_EQ(settlement_->disputes().ResolveDispute(backoffice_, resolve).status().code(),
            absl::StatusCode::kInvalidArgument);  // no adjustment
  *resolve.mutable_adjustment() = Eur(-100);
  auto resolved = settlement_->disputes().ResolveDispute(backoffice_, resolve);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->dispute().status(), v1::DISPUTE_STATUS_ACCEPTED);
  EXPECT_EQ(resolved->dispute().adjustment_period_id(), second->period_id());
  resolve.set_idempotency_key("r2");
  EXPECT_EQ(settlement_->disputes().ResolveDispute(backoffice_, resolve).status().code(),
            absl::StatusCode::kFailedPrecondition);
  v1::Statement adjusted = StatementOf(first->period_id(), "vet");
  EXPECT_EQ(adjusted.status(), v1::STATEMENT_STATUS_ADJUSTED);
  EXPECT_EQ(adjusted.net_amount().amount_minor(), 3000);  // never edited

  v1::ListDisputesRequest ld;
  ld.set_partner_id("vet");
  auto listed = settlement_->disputes().ListDisputes(vet_, ld);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->disputes_size(), 1);
  EXPECT_EQ(settlement_->disputes().ListDisputes(vet_, v1::ListDisputesRequest()).status().code(),
            absl::StatusCode::kPermissionDenied);

  // The next period carries the adjustment: -100 on top of its own activity.
  Earn("d-e2", "vet", "m1", 10000);  // 100 points: +1000
  clock_offset_ = absl::Hours(36);
  ASSERT_TRUE(Close("close-second", second->period_id(), 0).ok());
  v1::Statement next = StatementOf(second->period_id(), "vet");
  EXPECT_EQ(next.issued_points(), 100);
  EXPECT_EQ(next.adjustment_amount().amount_minor(), -100);
  EXPECT_EQ(next.net_amount().amount_minor(), 900);
  ASSERT_EQ(next.lines_size(), 2);
  EXPECT_EQ(next.lines(1).line_type(), v1::STATEMENT_LINE_TYPE_DISPUTE_ADJUSTMENT);
}

// Keys: shown once, stored hashed, resolved by hash; rotation keeps the old
// key for its grace period; revocation is immediate.

}  // namespace
}  // namespace loyalty::settlement
