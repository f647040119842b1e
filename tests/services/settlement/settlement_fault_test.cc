// Settlement's period close with a FaultProxy between its store and the real
// MariaDB: at each of the close's transactions (start, each counted page, the
// final close), each fault (connection cut at COMMIT, cut after the COMMIT
// was applied, cut mid-statement, COMMIT refused with 1213 as Galera does).
// The ledger is the real one on its own schema, read directly.
//
// The caller never gets OK for a close that is not in the database, and
// retries with the same key end with the period closed once and each
// statement counting every transfer exactly once, as computed by hand.
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/db/migrations.h"
#include "common/testing/fault_proxy.h"
#include "common/testing/test_db.h"
#include "common/time/proto_time.h"
#include "gtest/gtest.h"
#include "services/settlement/mysql_settlement_store.h"
#include "services/settlement/settlement.h"
#include "tests/services/ledger/ledger_fixture.h"

namespace loyalty::settlement {
const std::vector<db::MigrationFile>& Migrations();

namespace {

namespace lv1 = ::loyalty::ledger::v1;
using Fault = loyalty::testing::FaultProxy::Fault;
using loyalty::testing::FaultName;

const auth::Principal kBackoffice = auth::Principal::Of("bo000000000000001", common::v1::ROLE_BACKOFFICE);
const auth::Principal kFinance = auth::Principal::Of("fin00000000000001", common::v1::ROLE_FINANCE);

// Settlement's LedgerClient straight on the ledger's domain object.
class DirectLedger final : public LedgerClient {
 public:
  explicit DirectLedger(ledger::Ledger& ledger) : ledger_(ledger) {}
  absl::StatusOr<JournalPage> ReadJournal(int64_t after, int64_t up_to, int page_size) override {
    lv1::ReadJournalRequest r;
    r.set_after_sequence(after);
    r.set_up_to_sequence(up_to);
    r.set_page_size(page_size);
    ASSIGN_OR_RETURN(lv1::ReadJournalResponse resp, ledger_.ReadJournal(r));
    JournalPage page;
    for (auto& t : *resp.mutable_transfers()) page.transfers.push_back(std::move(t));
    page.last_sequence = resp.last_sequence();
    page.head_sequence = resp.head_sequence();
    return page;
  }
  absl::StatusOr<lv1::VerifyChainResponse> VerifyChain(int64_t from, int64_t to) override {
    lv1::VerifyChainRequest r;
    r.set_from_sequence(from);
    r.set_to_sequence(to);
    return ledger_.VerifyChain(r);
  }
  absl::StatusOr<lv1::GetPointsLiabilityResponse> GetPointsLiability() override {
    return ledger_.GetPointsLiability();
  }

 private:
  ledger::Ledger& ledger_;
};

class SettlementFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ledger_ = ledger::testing::MakeLedger();
    ASSERT_NE(ledger_, nullptr);
    direct_ = std::make_unique<DirectLedger>(*ledger_->ledger);
    auto proxied = loyalty::testing::ProxiedDatabase::Create("settlefault", Migrations());
    ASSERT_TRUE(proxied.ok()) << proxied.status();
    db_ = std::move(proxied->db);
    proxy_ = std::move(proxied->proxy);
    pool_ = std::move(proxied->pool);
    store_ = NewMysqlSettlementStore(*pool_);
    SettlementOptions options;
    options.close_page_size = 2;  // several pages, so a close has several transactions
    settlement_ = std::make_unique<Settlement>(*store_, *direct_, options);
    CreatePartner("vet", v1::FUNDING_MODEL_POSTPAID);
  }

  // A partner with a contract: 1 point per EUR, 10.00 EUR per 1000 points
  // issued, 8.00 EUR per 1000 honoured, no fee.
  void CreatePartner(const std::string& id, v1::FundingModel funding, int64_t low_balance_threshold = 0) {
    v1::CreatePartnerRequest partner;
    partner.set_idempotency_key("create-" + id);
    v1::Partner& p = *partner.mutable_partner();
    p.set_partner_id(id);
    p.set_legal_name(id + " GmbH");
    p.set_display_name(id);
    p.set_business_category(v1::BUSINESS_CATEGORY_VET_CLINIC);
    p.set_country("DE");
    p.set_settlement_currency("EUR");
    p.mutable_billing_contact()->set_name("Accounts");
    p.mutable_billing_contact()->set_email("accounts@" + id + ".example");
    ASSERT_TRUE(settlement_->partners().CreatePartner(kBackoffice, partner).ok());
    v1::CreateContractVersionRequest contract;
    contract.set_idempotency_key("contract-" + id);
    v1::Contract& c = *contract.mutable_contract();
    c.set_partner_id(id);
    *c.mutable_effective_from() = ToProtoTime(absl::FromUnixSeconds(0));
    c.set_earn_currency("EUR");
    c.set_earn_rate_milli_points_per_unit(1000);
    c.mutable_issue_price_per_1000_points()->set_amount_minor(1'000);  // 10.00 EUR per 1000 points
    c.mutable_issue_price_per_1000_points()->set_currency("EUR");
    c.mutable_reimbursement_per_1000_points()->set_amount_minor(800);
    c.mutable_reimbursement_per_1000_points()->set_currency("EUR");
    c.mutable_monthly_fee()->set_amount_minor(0);
    c.mutable_monthly_fee()->set_currency("EUR");
    c.set_funding_model(funding);
    c.set_prepaid_low_balance_threshold_points(low_balance_threshold);
    auto created = settlement_->contracts().CreateContractVersion(kBackoffice, contract);
    ASSERT_TRUE(created.ok()) << created.status();
  }

  // Three earns at the vet: 100, 200 and 300 points.
  void Earn(const std::string& prefix) {
    for (int i = 1; i <= 3; ++i) {
      auto r = ledger_->ledger->Earn(caller_, ledger::testing::EarnOf(absl::StrCat(prefix, "-", i), "vet",
                                                                      absl::StrCat(prefix, "-m"), i * 10'000));
      ASSERT_TRUE(r.ok()) << r.status();
    }
  }

  int64_t Count(const std::string& sql, const std::vector<std::string>& params = {}) {
    auto n = loyalty::testing::QueryIntForTest(db_->pool(), sql, params);  // straight to the database
    EXPECT_TRUE(n.ok()) << n.status();
    return n.value_or(-1);
  }

  std::unique_ptr<ledger::testing::LedgerUnderTest> ledger_;
  std::unique_ptr<DirectLedger> direct_;
  std::unique_ptr<loyalty::testing::TestDatabase> db_;
  std::unique_ptr<loyalty::testing::FaultProxy> proxy_;
  std::unique_ptr<db::ConnectionPool> pool_;
  SettlementStorePtr store_;
  std::unique_ptr<Settlement> settlement_;
  ledger::Caller caller_{.principal = "key:test-driver"};
  absl::Time period_end_ = absl::Now() - absl::Seconds(1);  // where the next period starts
};

TEST_F(SettlementFaultTest, ClosePeriodIsNeverAcknowledgedUnlessCommittedAndCountsEachTransferOnce) {
  int faulted = 0;
  int period_index = 0;
  for (Fault fault : {Fault::kCutAtCommit, Fault::kCutAfterCommit, Fault::kCutMidStatement, Fault::kFailCommit}) {
    for (int skip = 0;; ++skip) {
      // A period of its own, right after the last one: three earns in it,
      // then the period ends.
      const std::string name = absl::StrCat(FaultName(fault), "-", skip);
      const absl::Time start = period_end_;
      ASSERT_NO_FATAL_FAILURE(Earn(name));
      period_end_ = absl::Now() + absl::Milliseconds(10);
      v1::CreatePeriodRequest create;
      create.set_idempotency_key(absl::StrCat("period-", ++period_index));
      create.set_name(name);
      *create.mutable_start_time() = ToProtoTime(start);
      *create.mutable_end_time() = ToProtoTime(period_end_);
      auto period = settlement_->period_close().CreatePeriod(kFinance, create);
      ASSERT_TRUE(period.ok()) << period.status();
      absl::SleepFor(period_end_ + absl::Milliseconds(5) - absl::Now());  // closable once it has ended

      v1::ClosePeriodRequest close;
      close.set_idempotency_key(absl::StrCat("close-", name));
      close.set_period_id(period->period().period_id());
      auto call = [&]() -> absl::Status {
        absl::StatusOr<v1::ClosePeriodResponse> r = settlement_->period_close().ClosePeriod(kFinance, close);
        if (!r.ok()) return r.status();
        EXPECT_EQ(Count("SELECT COUNT(*) FROM periods WHERE period_id = ? AND status = ?",
                        {close.period_id(), std::to_string(v1::PERIOD_STATUS_CLOSED)}),
                  1)
            << name << ": acknowledged but not committed";
        return absl::OkStatus();
      };
      loyalty::testing::FaultedCall run = loyalty::testing::CallUnderFault(*proxy_, fault, skip, call);
      ASSERT_TRUE(run.last.ok()) << name << ": " << run.last;
      EXPECT_TRUE(run.first.ok() || absl::IsUnavailable(run.first) || absl::IsAborted(run.first))
          << name << ": " << run.first;

      // Each transfer counted once: 100 + 200 + 300 = 600 points issued,
      // billed 600 x 10.00 EUR / 1000 = 6.00 EUR.
      v1::GetStatementRequest get;
      get.mutable_key()->set_period_id(close.period_id());
      get.mutable_key()->set_partner_id("vet");
      auto statement = settlement_->statement_queries().GetStatement(kFinance, get);
      ASSERT_TRUE(statement.ok()) << name << ": " << statement.status();
      EXPECT_EQ(statement->statement().issued_points(), 600) << name;
      EXPECT_EQ(statement->statement().net_amount().amount_minor(), 600) << name;
      EXPECT_EQ(Count("SELECT COUNT(*) FROM statements WHERE period_id = ?", {close.period_id()}), 1) << name;
      if (!run.fired) break;
      ++faulted;
    }
  }
  EXPECT_GE(faulted, 8);  // start, pages and the final close were each hit
}

TEST_F(SettlementFaultTest, APrepaidAlertIsLoggedOnlyOnceItsTransactionCommitted) {
  // "prepaid" (the ledger fixture's prepaid partner) bought 100 points and
  // is alerted below 50.
  ASSERT_NO_FATAL_FAILURE(CreatePartner("prepaid", v1::FUNDING_MODEL_PREPAID, 50));
  v1::PurchasePointBlockRequest block;
  block.set_idempotency_key("block-1");
  block.set_partner_id("prepaid");
  block.set_points(100);
  block.mutable_price()->set_amount_minor(1'000);
  block.mutable_price()->set_currency("EUR");
  ASSERT_TRUE(settlement_->prepaid().PurchasePointBlock(kBackoffice, block).ok());
  // It issues 60: 40 remain, below 50.
  auto earned = ledger_->ledger->Earn(caller_, ledger::testing::EarnOf("p-1", "prepaid", "pm", 6'000));
  ASSERT_TRUE(earned.ok()) << earned.status();
  ASSERT_EQ(earned->points(), 60);

  std::vector<std::string> alerts_logged;
  log::SetSinkForTesting([&](absl::string_view line) {
    if (absl::StrContains(line, "event=prepaid_alert")) alerts_logged.emplace_back(line);
  });
  // FollowJournal reads its cursor, then applies the page in a transaction
  // whose COMMIT is cut: nothing was stored, so nothing may be announced.
  proxy_->Arm(Fault::kCutAtCommit, /*skip=*/1);
  absl::StatusOr<int> cut = settlement_->prepaid().FollowJournal(100);
  EXPECT_EQ(proxy_->fired(), 1);
  EXPECT_EQ(cut.status().code(), absl::StatusCode::kUnavailable) << cut.status();
  EXPECT_TRUE(alerts_logged.empty()) << alerts_logged[0];
  EXPECT_EQ(Count("SELECT COUNT(*) FROM alerts"), 0);
  // The next pass applies it: one alert, stored and logged once.
  ASSERT_TRUE(settlement_->prepaid().FollowJournal(100).ok());
  log::SetSinkForTesting(nullptr);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM alerts"), 1);
  ASSERT_EQ(alerts_logged.size(), 1u);
  EXPECT_TRUE(absl::StrContains(alerts_logged[0], "remaining_points=40")) << alerts_logged[0];
}

}  // namespace
}  // namespace loyalty::settlement
