// Close and reconcile times of settlement for a large synthetic period (not a
// test; nothing is asserted beyond the totals adding up). Needs the test
// MariaDB (LOYALTY_TEST_DB_*):
//
//   build/tests/services/settlement/loyalty-settlement-bench [transfers] [partners]
//
// The journal is synthesised in memory by a fake LedgerClient (deterministic
// from the sequence number: earns, redemptions split over two issuers,
// earn reversals and expiries), so the figures are settlement's own cost:
// counting, the per-page transactions on MariaDB, pricing and statements.
// The ledger's cost of serving ReadJournal is not included; VerifyChain and
// GetPointsLiability answer at once.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/db/migrations.h"
#include "common/testing/test_db.h"
#include "common/time/proto_time.h"
#include "services/settlement/mysql_settlement_store.h"
#include "services/settlement/settlement.h"

namespace loyalty::settlement {
const std::vector<db::MigrationFile>& Migrations();

namespace {

namespace lv1 = ::loyalty::ledger::v1;

class SyntheticLedger final : public LedgerClient {
 public:
  SyntheticLedger(int64_t head, int partners, absl::Time base) : head_(head), partners_(partners), base_(base) {}

  absl::StatusOr<JournalPage> ReadJournal(int64_t after, int64_t up_to, int page_size) override {
    JournalPage page;
    const int64_t last = std::min(up_to == 0 ? head_ : up_to, after + page_size);
    for (int64_t n = after + 1; n <= last; ++n) page.transfers.push_back(TransferAt(n));
    page.last_sequence = page.transfers.empty() ? after : last;
    page.head_sequence = head_;
    return page;
  }
  absl::StatusOr<lv1::VerifyChainResponse> VerifyChain(int64_t from, int64_t to) override {
    lv1::VerifyChainResponse r;
    r.set_from_sequence(from);
    r.set_to_sequence(to);
    r.set_verified_count(to - from + 1);
    r.set_last_hash(HashOf(to));
    return r;
  }
  absl::StatusOr<lv1::GetPointsLiabilityResponse> GetPointsLiability() override {
    return lv1::GetPointsLiabilityResponse();
  }

  std::string Partner(int64_t i) const { return absl::StrFormat("p%02d", i % partners_); }

 private:
  static std::string HashOf(int64_t n) { return absl::StrFormat("%064x", n); }

  lv1::Transfer TransferAt(int64_t n) const {
    lv1::Transfer t;
    t.set_sequence(n);
    t.set_transfer_id(absl::StrCat("t", n));
    t.set_points(1 + n % 100);
    t.set_partner_id(Partner(n));
    t.set_member_id(absl::StrCat("m", n % 100'000));
    *t.mutable_created_at() = ToProtoTime(base_ + absl::Milliseconds(n));
    *t.mutable_occurred_at() = t.created_at();
    t.set_hash(HashOf(n));
    switch (n % 10) {
      case 6:
      case 7: {
        t.set_code(lv1::TRANSFER_CODE_REDEEM);
        auto* a = t.add_allocations();
        a->set_issuer_partner_id(Partner(n + 1));
        a->set_points(t.points() / 2);
        a = t.add_allocations();
        a->set_issuer_partner_id(Partner(n + 7));
        a->set_points(t.points() - t.points() / 2);
        break;
      }
      case 8:
        t.set_code(lv1::TRANSFER_CODE_REVERSE_EARN);
        break;
      case 9:
        t.set_code(lv1::TRANSFER_CODE_EXPIRE);
        break;
      default:
        t.set_code(lv1::TRANSFER_CODE_EARN);
        t.set_credit_account("member:x");
    }
    return t;
  }

  int64_t head_;
  int partners_;
  absl::Time base_;
};

int Run(int64_t transfers, int partners) {
  auto db = loyalty::testing::TestDatabase::Create("sbench");
  if (!db.ok()) {
    std::fprintf(stderr, "database: %s\n", db.status().ToString().c_str());
    return 1;
  }
  if (auto s = db::ApplyMigrations((*db)->pool(), Migrations()); !s.ok()) return 1;
  auto store = NewMysqlSettlementStore((*db)->pool());
  const absl::Time now = absl::Now();
  const absl::Time start = now - absl::Hours(24 * 30);
  SyntheticLedger ledger(transfers, partners, start);
  SettlementOptions options;
  options.close_page_size = kMaxJournalPageSize;
  Settlement settlement(*store, ledger, options);
  const auth::Principal bo = auth::Principal::Of("bench", common::v1::ROLE_BACKOFFICE);
  const auth::Principal fin = auth::Principal::Of("bench", common::v1::ROLE_FINANCE);
  for (int i = 0; i < partners; ++i) {
    v1::CreatePartnerRequest r;
    r.set_idempotency_key(absl::StrCat("p", i));
    v1::Partner* p = r.mutable_partner();
    p->set_partner_id(ledger.Partner(i));
    p->set_legal_name("Bench GmbH");
    p->set_display_name("Bench");
    p->set_business_category(v1::BUSINESS_CATEGORY_OTHER);
    p->set_country("DE");
    p->set_settlement_currency("EUR");
    p->mutable_billing_contact()->set_name("A");
    p->mutable_billing_contact()->set_email("a@b.example");
    if (!settlement.partners().CreatePartner(bo, r).ok()) return 1;
    v1::CreateContractVersionRequest c;
    c.set_idempotency_key(absl::StrCat("c", i));
    v1::Contract* k = c.mutable_contract();
    k->set_partner_id(p->partner_id());
    *k->mutable_effective_from() = ToProtoTime(start);
    k->set_earn_currency("EUR");
    k->set_earn_rate_milli_points_per_unit(1000);
    k->mutable_issue_price_per_1000_points()->set_amount_minor(10000 + i);
    k->mutable_issue_price_per_1000_points()->set_currency("EUR");
    k->mutable_reimbursement_per_1000_points()->set_amount_minor(8000 + i);
    k->mutable_reimbursement_per_1000_points()->set_currency("EUR");
    k->set_breakage_share_bp(2500);
    k->mutable_monthly_fee()->set_amount_minor(5000);
    k->mutable_monthly_fee()->set_currency("EUR");
    k->set_funding_model(v1::FUNDING_MODEL_POSTPAID);
    if (auto s = settlement.contracts().CreateContractVersion(bo, c); !s.ok()) {
      std::fprintf(stderr, "contract: %s\n", s.status().ToString().c_str());
      return 1;
    }
  }
  v1::CreatePeriodRequest pr;
  pr.set_idempotency_key("period");
  pr.set_name("bench");
  *pr.mutable_start_time() = ToProtoTime(start);
  *pr.mutable_end_time() = ToProtoTime(now - absl::Seconds(1));
  auto period = settlement.period_close().CreatePeriod(fin, pr);
  if (!period.ok()) return 1;

  v1::ClosePeriodRequest close;
  close.set_idempotency_key("close");
  close.set_period_id(period->period().period_id());
  close.set_cutoff_sequence(transfers);
  const auto t0 = std::chrono::steady_clock::now();
  auto closed = settlement.period_close().ClosePeriod(fin, close);
  const auto t1 = std::chrono::steady_clock::now();
  if (!closed.ok()) {
    std::fprintf(stderr, "close: %s\n", closed.status().ToString().c_str());
    return 1;
  }
  v1::ReconcileRequest rr;
  rr.set_period_id(period->period().period_id());
  auto report = settlement.reconciliation().Reconcile(fin, rr);
  const auto t2 = std::chrono::steady_clock::now();
  if (!report.ok()) {
    std::fprintf(stderr, "reconcile: %s\n", report.status().ToString().c_str());
    return 1;
  }
  const double close_s = std::chrono::duration<double>(t1 - t0).count();
  const double reconcile_s = std::chrono::duration<double>(t2 - t1).count();
  std::printf("transfers %lld, partners %d, close page %d\n", static_cast<long long>(transfers), partners,
              options.close_page_size);
  std::printf("close:     %.2f s (%.0f transfers/s), %lld statements\n", close_s, transfers / close_s,
              static_cast<long long>(closed->statements_created()));
  std::printf("reconcile: %.2f s (%.0f transfers/s), %d mismatches\n", reconcile_s, transfers / reconcile_s,
              report->mismatches_size());
  return report->mismatches_size() == 0 ? 0 : 1;
}

}  // namespace
}  // namespace loyalty::settlement

int main(int argc, char** argv) {
  const int64_t transfers = argc > 1 ? std::atoll(argv[1]) : 1'000'000;
  const int partners = argc > 2 ? std::atoi(argv[2]) : 50;
  return loyalty::settlement::Run(transfers, partners);
}
