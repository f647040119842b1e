// PeriodClose (services/settlement/period_close.h) on the real store with the
// real ledger, and the three-partner month through statements, netting,
// export and reconciliation.
//
// The three-partner month's expected statements, netting and export totals
// are computed by hand in the comments, not by the code under test.

#include "tests/services/settlement/settlement_fixture.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include "absl/strings/match.h"
#include "common/db/transaction.h"
#include "common/time/proto_time.h"
#include "gtest/gtest.h"

namespace loyalty::settlement {
namespace {

TEST_F(SettlementTest, PeriodsRefuseOverlapsAndEarlyOrRepeatedCloses) {
  const absl::Time now = absl::Now();
  auto a = NewPeriod("a", now - absl::Hours(48), now - absl::Hours(24));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(NewPeriod("b", now - absl::Hours(30), now).status().code(), absl::StatusCode::kFailedPrecondition);
  auto dup = NewPeriod("a", now + absl::Hours(100), now + absl::Hours(200));
  // Same key ("period-a") with another request: the key conflict wins.
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kAlreadyExists);
  auto c = NewPeriod("c", now - absl::Hours(24), now + absl::Hours(48));
  ASSERT_TRUE(c.ok()) << c.status();
  // c has not ended (settlement's clock is a day ahead: ends in a day).
  EXPECT_EQ(Close("close-c", c->period_id(), 0).status().code(), absl::StatusCode::kFailedPrecondition);
  clock_offset_ = absl::Hours(72);
  // a (earlier) is still open.
  EXPECT_EQ(Close("close-c2", c->period_id(), 0).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Close("close-a", a->period_id(), 999).status().code(), absl::StatusCode::kInvalidArgument);
  auto closed = Close("close-a2", a->period_id(), 0);
  ASSERT_TRUE(closed.ok()) << closed.status();
  EXPECT_EQ(closed->period().status(), v1::PERIOD_STATUS_CLOSED);
  EXPECT_EQ(Close("close-a3", a->period_id(), 0).status().code(), absl::StatusCode::kFailedPrecondition);
  v1::FinalizePeriodRequest fin;
  fin.set_idempotency_key("f-c");
  fin.set_period_id(c->period_id());
  EXPECT_EQ(settlement_->period_close().FinalizePeriod(finance_, fin).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// The three-partner month, on the real ledger.
//
// Contracts (EUR, per 1000 points; all postpaid):
//   vet      v1 from the period start: issue 10000, reimbursement 8000
//            v2 from 3 days ago:       issue 12000, reimbursement 9000
//   food     issue 10000, reimbursement 9500, no fee
//   groomer  issue 11000, reimbursement 8500, breakage share 2000 bp,
//            monthly fee 1000
// Ledger rates (fixture): vet and groomer 1 point per EUR.
//
// Transfers:
//   E1  vet earns m1 200 points, 5 days ago (vet v1)
//   E2  vet earns m2 100 points, now (vet v2)
//   G1  groomer earns m1 50
//   G2  groomer earns m3 30
//   R1  food redeems 150 of m1 (earliest-expiring lot first: E1) -> vet 150
//   R2  groomer redeems 80 of m1: E1's last 50, then G1 30
//   a return at vet: E2 reversed by 40 points
//   R2 reversed in full: vet 50 and groomer 30 restored
//   m3's lot (G2) expires: 30 points of groomer breakage
//   (one more vet earn after the cut-off, not in the period)
//
// Statements (amount = floor(points x price / 1000), signed):
//   vet:     issued 200 x 10000 = +2000, issued 100 x 12000 = +1200,
//            reversed 40 x 12000 = -480                   net +2720
//   food:    honoured vet 150 x 9500 = -1425              net -1425
//   groomer: issued 80 x 11000 = +880; honoured groomer 30 x 8500 = -255,
//            vet 50 x 8500 = -425; reversed +255, +425;
//            breakage 30 x 11000 x 2000 / 10^7 = -66; fee +1000
//                                                         net +1814
// Netting: vet +2720, groomer +1814, food -1425, operator -3109.
//   vet -> operator 2720; groomer -> food 1425; groomer -> operator 389.
//   gross = 3680 + 1425 + 3306 = 8411; net = 4534; saving = 3877.

TEST_F(SettlementTest, ThreePartnerMonthWithCrashMidCloseNettingExportAndReconcile) {
  const absl::Time now = absl::Now();
  const absl::Time start = now - absl::Hours(24 * 10);
  const absl::Time end = now + absl::Hours(12);  // settlement's clock: already past
  Create("vet");
  Create("food", v1::BUSINESS_CATEGORY_PET_FOOD);
  Create("groomer", v1::BUSINESS_CATEGORY_GROOMING);
  ASSERT_TRUE(AddContract("vet-1", TermsOf("vet", start, 10000, 8000, 0, 0)).ok());
  ASSERT_TRUE(AddContract("food-1", TermsOf("food", start, 10000, 9500, 0, 0)).ok());
  ASSERT_TRUE(AddContract("groomer-1", TermsOf("groomer", start, 11000, 8500, 2000, 1000)).ok());
  auto period = NewPeriod("month", start, end);
  ASSERT_TRUE(period.ok()) << period.status();
  // The contract change mid-month (before the period closes).
  ASSERT_TRUE(AddContract("vet-2", TermsOf("vet", now - absl::Hours(72), 12000, 9000, 0, 0)).ok());

  Earn("e1", "vet", "m1", 20000, now - absl::Hours(24 * 5));
  lv1::Transfer e2 = Earn("e2", "vet", "m2", 10000);
  Earn("g1", "groomer", "m1", 5000);
  Earn("g2", "groomer", "m3", 3000);
  Redeem("r1", "food", "m1", 150);
  lv1::Transfer r2 = Redeem("r2", "groomer", "m1", 80);
  ASSERT_EQ(r2.allocations_size(), 2);
  Reverse("return-e2", e2.transfer_id(), 40);
  Reverse("return-r2", r2.transfer_id(), 0);
  ASSERT_TRUE(db::RunWithConnection(ledger_->db->pool(), "expire m3", [](db::PooledConnection& c) {
                auto& s = c.Prepare("UPDATE lots SET expires_at = '2001-01-01' WHERE member_id = ?");
                s.setString(1, "m3");
                s.executeUpdate();
                return absl::OkStatus();
              }).ok());
  lv1::RunExpiryRequest expiry;
  expiry.set_idempotency_key("expiry-1");
  auto expired = ledger_->ledger->RunExpiry(ledger_caller_, expiry);
  ASSERT_TRUE(expired.ok()) << expired.status();
  const int64_t cutoff = LedgerHead();
  ASSERT_GE(cutoff, 11);
  Earn("e3-after-cutoff", "vet", "m1", 99900);

  // Close dies on the 4th ledger read (the probe, then 2 pages of 2).
  flaky_->FailCall(4);
  auto crashed = Close("close-month", period->period_id(), cutoff);
  EXPECT_EQ(crashed.status().code(), absl::StatusCode::kUnavailable) << crashed.status();
  v1::GetPeriodRequest gp;
  gp.set_period_id(period->period_id());
  auto midway = settlement_->period_close().GetPeriod(finance_, gp);
  ASSERT_TRUE(midway.ok());
  EXPECT_EQ(midway->period().status(), v1::PERIOD_STATUS_CLOSING);
  EXPECT_EQ(midway->period().first_sequence(), 1);
  EXPECT_EQ(midway->period().processed_sequence(), 4);
  EXPECT_EQ(midway->period().cutoff_sequence(), cutoff);

  // Close again with the same key: resumes, counts nothing twice.
  flaky_->FailCall(0);
  auto closed = Close("close-month", period->period_id(), cutoff);
  ASSERT_TRUE(closed.ok()) << closed.status();
  EXPECT_EQ(closed->period().status(), v1::PERIOD_STATUS_CLOSED);
  EXPECT_EQ(closed->statements_created(), 3);
  EXPECT_EQ(closed->transfers_processed(), cutoff);
  EXPECT_EQ(closed->period().processed_sequence(), cutoff);
  EXPECT_EQ(closed->period().end_hash().size(), 64u);
  // A replay answers the same; another key is refused (already closed).
  auto replay = Close("close-month", period->period_id(), cutoff);
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_EQ(replay->period().closed_at().seconds(), closed->period().closed_at().seconds());
  EXPECT_EQ(Close("close-month-again", period->period_id(), cutoff).status().code(),
            absl::StatusCode::kFailedPrecondition);

  v1::Statement vet = StatementOf(period->period_id(), "vet");
  EXPECT_EQ(vet.status(), v1::STATEMENT_STATUS_DRAFT);
  EXPECT_EQ(vet.issued_points(), 300);
  EXPECT_EQ(vet.issue_reversed_points(), 40);
  EXPECT_EQ(vet.issue_amount().amount_minor(), 2000 + 1200 - 480);
  EXPECT_EQ(vet.net_amount().amount_minor(), 2720);
  EXPECT_EQ(vet.contract_ids_size(), 2);  // the mid-month change
  EXPECT_EQ(vet.first_sequence(), 1);
  EXPECT_EQ(vet.last_sequence(), cutoff);
  EXPECT_EQ(vet.end_hash(), closed->period().end_hash());

  v1::Statement food = StatementOf(period->period_id(), "food");
  EXPECT_EQ(food.honoured_points(), 150);
  EXPECT_EQ(food.reimbursement_amount().amount_minor(), -1425);
  EXPECT_EQ(food.net_amount().amount_minor(), -1425);
  ASSERT_EQ(food.issuer_redeemer_size(), 1);
  EXPECT_EQ(food.issuer_redeemer(0).issuer_partner_id(), "vet");
  EXPECT_EQ(food.issuer_redeemer(0).honoured_points(), 150);

  v1::Statement groomer = StatementOf(period->period_id(), "groomer");
  EXPECT_EQ(groomer.issued_points(), 80);
  EXPECT_EQ(groomer.honoured_points(), 80);
  EXPECT_EQ(groomer.honour_reversed_points(), 80);
  EXPECT_EQ(groomer.expired_points(), 30);
  EXPECT_EQ(groomer.issue_amount().amount_minor(), 880);
  EXPECT_EQ(groomer.reimbursement_amount().amount_minor(), 0);  // -255 - 425 + 255 + 425
  EXPECT_EQ(groomer.breakage_share_amount().amount_minor(), -66);
  EXPECT_EQ(groomer.fee_amount().amount_minor(), 1000);
  EXPECT_EQ(groomer.net_amount().amount_minor(), 1814);

  // Netting of the closed period.
  v1::ComputeNettingRequest nr;
  nr.set_period_id(period->period_id());
  auto netting = settlement_->statement_queries().ComputeNetting(finance_, nr);
  ASSERT_TRUE(netting.ok()) << netting.status();
  ASSERT_EQ(netting->results_size(), 1);
  const v1::NettingResult& n = netting->results(0);
  ASSERT_EQ(n.payments_size(), 3);
  EXPECT_EQ(n.payments(0).payer_id(), "vet");
  EXPECT_EQ(n.payments(0).payee_id(), "operator");
  EXPECT_EQ(n.payments(0).amount().amount_minor(), 2720);
  EXPECT_EQ(n.payments(1).payer_id(), "groomer");
  EXPECT_EQ(n.payments(1).payee_id(), "food");
  EXPECT_EQ(n.payments(1).amount().amount_minor(), 1425);
  EXPECT_EQ(n.payments(2).payee_id(), "operator");
  EXPECT_EQ(n.payments(2).amount().amount_minor(), 389);
  EXPECT_EQ(n.gross_total().amount_minor(), 8411);
  EXPECT_EQ(n.net_total().amount_minor(), 4534);
  EXPECT_EQ(n.saving().amount_minor(), 3877);

  // Partners see no drafts; export needs FINAL.
  v1::GetStatementRequest own;
  own.mutable_key()->set_period_id(period->period_id());
  own.mutable_key()->set_partner_id("vet");
  EXPECT_EQ(settlement_->statement_queries().GetStatement(vet_, own).status().code(), absl::StatusCode::kNotFound);
  v1::ExportPeriodRequest er;
  er.set_period_id(period->period_id());
  er.set_format(v1::EXPORT_FORMAT_CSV);
  EXPECT_EQ(settlement_->statement_queries().ExportPeriod(finance_, er).status().code(),
            absl::StatusCode::kFailedPrecondition);

  v1::FinalizePeriodRequest fin;
  fin.set_idempotency_key("finalize-month");
  fin.set_period_id(period->period_id());
  auto finalized = settlement_->period_close().FinalizePeriod(finance_, fin);
  ASSERT_TRUE(finalized.ok()) << finalized.status();
  EXPECT_EQ(finalized->statements_finalized(), 3);
  auto mine = settlement_->statement_queries().GetStatement(vet_, own);
  ASSERT_TRUE(mine.ok()) << mine.status();
  EXPECT_EQ(mine->statement().status(), v1::STATEMENT_STATUS_FINAL);
  EXPECT_TRUE(mine->statement().has_issued_at());
  own.mutable_key()->set_partner_id("food");
  EXPECT_EQ(settlement_->statement_queries().GetStatement(vet_, own).status().code(),
            absl::StatusCode::kPermissionDenied);
  v1::ListStatementsRequest ls;
  ls.set_period_id(period->period_id());
  auto all = settlement_->statement_queries().ListStatements(finance_, ls);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->statements_size(), 3);
  EXPECT_EQ(all->statements(0).partner_id(), "food");  // by partner_id within the period
  EXPECT_EQ(all->statements(0).lines_size(), 0);
  EXPECT_EQ(settlement_->statement_queries().ListStatements(vet_, ls).status().code(),
            absl::StatusCode::kPermissionDenied);

  // Export: 3 + 1 + 7 = 11 lines totalling 2720 - 1425 + 1814 = 3109;
  // 3 payments totalling 4534.
  auto files = settlement_->statement_queries().ExportPeriod(finance_, er);
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->files_size(), 2);
  EXPECT_EQ(files->files(0).record_count(), 11);
  EXPECT_EQ(files->files(0).control_totals(0).amount_minor(), 3109);
  EXPECT_TRUE(absl::StrContains(files->files(0).content(), "\r\nT,11,EUR:3109,")) << files->files(0).content();
  EXPECT_EQ(files->files(1).record_count(), 3);
  EXPECT_EQ(files->files(1).control_totals(0).amount_minor(), 4534);
  auto files_again = settlement_->statement_queries().ExportPeriod(finance_, er);
  EXPECT_EQ(files_again->files(0).sha256(), files->files(0).sha256());

  // Reconcile: everything agrees.
  v1::ReconcileRequest rr;
  rr.set_period_id(period->period_id());
  auto report = settlement_->reconciliation().Reconcile(finance_, rr);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->mismatches_size(), 0) << report->DebugString();
  ASSERT_EQ(report->checks_size(), 4);
  EXPECT_GT(report->checks(0).items_checked(), 0);
  EXPECT_EQ(report->checks(1).items_checked(), cutoff);
  EXPECT_EQ(ledger::testing::CheckInvariants(*ledger_), "");
  EXPECT_EQ(RunCtl("reconcile period --period_id=" + period->period_id()), 0);

  // Tamper with E1 in the ledger's table (200 -> 201 points): reconciliation
  // names vet, EARN and the difference, and the chain breaks there.
  ASSERT_TRUE(db::RunWithConnection(ledger_->db->pool(), "tamper", [](db::PooledConnection& c) {
                std::unique_ptr<sql::ResultSet> rs(
                    c.Prepare("SELECT sequence, body FROM transfers WHERE code = 1 ORDER BY sequence LIMIT 1")
                        .executeQuery());
                if (!rs->next()) return absl::NotFoundError("no earn");
                const int64_t sequence = rs->getInt64(1);
                lv1::Transfer t;
                t.ParseFromString(rs->getString(2));
                rs.reset();
                t.set_points(t.points() + 1);
                std::istringstream body(t.SerializeAsString());
                auto& up = c.Prepare("UPDATE transfers SET body = ? WHERE sequence = ?");
                up.setBlob(1, &body);
                up.setInt64(2, sequence);
                up.executeUpdate();
                return absl::OkStatus();
              }).ok());
  auto tampered = settlement_->reconciliation().Reconcile(finance_, rr);
  ASSERT_TRUE(tampered.ok()) << tampered.status();
  bool totals = false, chain = false;
  for (const auto& m : tampered->mismatches()) {
    if (m.check() == v1::RECONCILIATION_CHECK_STATEMENT_TOTALS) {
      totals = true;
      EXPECT_EQ(m.partner_id(), "vet");
      EXPECT_EQ(m.transfer_code(), lv1::TRANSFER_CODE_EARN);
      EXPECT_EQ(m.expected_points(), 300);
      EXPECT_EQ(m.actual_points(), 301);
      EXPECT_EQ(m.difference_points(), 1);
    }
    if (m.check() == v1::RECONCILIATION_CHECK_HASH_CHAIN) {
      chain = true;
      EXPECT_EQ(m.sequence(), 1);
    }
  }
  EXPECT_TRUE(totals) << tampered->DebugString();
  // The mismatch is also an alert (global: no partner).
  auto alerts = settlement_->prepaid().ListAlerts(finance_, v1::ListAlertsRequest());
  ASSERT_TRUE(alerts.ok()) << alerts.status();
  ASSERT_GE(alerts->alerts_size(), 1);
  EXPECT_EQ(alerts->alerts(0).kind(), v1::ALERT_KIND_RECONCILIATION_MISMATCH);
  EXPECT_EQ(alerts->alerts(0).period_id(), period->period_id());
  EXPECT_EQ(RunCtl("reconcile period --period_id=" + period->period_id()), 6);  // mismatches
  EXPECT_EQ(RunCtl("reconcile period --period_id=no-such-period"), 1);          // NOT_FOUND
  EXPECT_TRUE(chain) << tampered->DebugString();
}

// A prepaid partner: blocks, draw-down by issuance (net of reversals) from
// the journal follower, alerts when the balance falls below the threshold
// and when it is exhausted, the snapshot feed and reconciliation.

}  // namespace
}  // namespace loyalty::settlement
