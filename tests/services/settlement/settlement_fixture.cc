#include "tests/services/settlement/settlement_fixture.h"

#include <sys/wait.h>

#include <chrono>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "services/settlement/grpc_ledger_client.h"
#include "services/settlement/mysql_settlement_store.h"

namespace loyalty::settlement {

common::v1::Money Eur(int64_t minor) {
  common::v1::Money m;
  m.set_amount_minor(minor);
  m.set_currency("EUR");
  return m;
}

v1::Partner PartnerOf(const std::string& id, v1::BusinessCategory category) {
  v1::Partner p;
  p.set_partner_id(id);
  p.set_legal_name(id + " GmbH");
  p.set_display_name(id);
  p.set_business_category(category);
  p.set_country("DE");
  p.set_settlement_currency("EUR");
  p.mutable_billing_contact()->set_name("Accounts");
  p.mutable_billing_contact()->set_email("accounts@" + id + ".example");
  return p;
}

v1::Contract TermsOf(const std::string& partner, absl::Time from, int64_t issue, int64_t reimburse,
                     int64_t breakage_bp, int64_t fee) {
  v1::Contract c;
  c.set_partner_id(partner);
  *c.mutable_effective_from() = ToProtoTime(from);
  c.set_earn_currency("EUR");
  c.set_earn_rate_milli_points_per_unit(1000);
  *c.mutable_issue_price_per_1000_points() = Eur(issue);
  *c.mutable_reimbursement_per_1000_points() = Eur(reimburse);
  c.set_breakage_share_bp(breakage_bp);
  *c.mutable_monthly_fee() = Eur(fee);
  c.set_funding_model(v1::FUNDING_MODEL_POSTPAID);
  return c;
}

void SettlementTest::SetUp() {
  ledger_ = ledger::testing::MakeLedger();
  ASSERT_NE(ledger_, nullptr);
  ledger_service_ = std::make_unique<ledger::LedgerService>(*ledger_->ledger, keys_.authenticator());
  grpc::ServerBuilder builder;
  builder.RegisterService(ledger_service_.get());
  server_ = builder.BuildAndStart();
  ASSERT_NE(server_, nullptr);
  rpc::CallOptions options;
  options.api_key = keys_.service();
  options.deadline = absl::Seconds(10);
  ledger_client_ = NewGrpcLedgerClient(server_->InProcessChannel(grpc::ChannelArguments()), options);
  flaky_ = std::make_unique<FlakyLedger>(*ledger_client_);

  auto db = loyalty::testing::TestDatabase::Create("settle");
  ASSERT_TRUE(db.ok()) << db.status();
  db_ = *std::move(db);
  ASSERT_TRUE(db::ApplyMigrations(db_->pool(), Migrations()).ok());
  store_ = NewMysqlSettlementStore(db_->pool());
  SettlementOptions settlement_options;
  settlement_options.close_page_size = 2;  // many pages, so a close can die between them
  // Settlement's clock runs a day ahead, so that a period ending now has
  // ended for it while the ledger still accepts transfers.
  settlement_options.now = [this] { return absl::Now() + clock_offset_; };
  settlement_ = std::make_unique<Settlement>(*store_, *flaky_, settlement_options);
}

void SettlementTest::TearDown() {
  if (ctl_server_ != nullptr) ctl_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
}

v1::Partner SettlementTest::Create(const std::string& id, v1::BusinessCategory category) {
  v1::CreatePartnerRequest r;
  r.set_idempotency_key("create-" + id);
  *r.mutable_partner() = PartnerOf(id, category);
  auto out = settlement_->partners().CreatePartner(backoffice_, r);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? out->partner() : v1::Partner();
}

absl::StatusOr<v1::Contract> SettlementTest::AddContract(const std::string& key, const v1::Contract& terms) {
  v1::CreateContractVersionRequest r;
  r.set_idempotency_key(key);
  *r.mutable_contract() = terms;
  ASSIGN_OR_RETURN(auto out, settlement_->contracts().CreateContractVersion(backoffice_, r));
  return out.contract();
}

absl::StatusOr<v1::Period> SettlementTest::NewPeriod(const std::string& name, absl::Time start, absl::Time end) {
  v1::CreatePeriodRequest r;
  r.set_idempotency_key("period-" + name);
  r.set_name(name);
  *r.mutable_start_time() = ToProtoTime(start);
  *r.mutable_end_time() = ToProtoTime(end);
  ASSIGN_OR_RETURN(auto out, settlement_->period_close().CreatePeriod(finance_, r));
  return out.period();
}

absl::StatusOr<v1::ClosePeriodResponse> SettlementTest::Close(const std::string& key, const std::string& period_id,
                                                              int64_t cutoff) {
  v1::ClosePeriodRequest r;
  r.set_idempotency_key(key);
  r.set_period_id(period_id);
  r.set_cutoff_sequence(cutoff);
  return settlement_->period_close().ClosePeriod(finance_, r);
}

v1::Statement SettlementTest::StatementOf(const std::string& period_id, const std::string& partner_id) {
  v1::GetStatementRequest r;
  r.mutable_key()->set_period_id(period_id);
  r.mutable_key()->set_partner_id(partner_id);
  auto out = settlement_->statement_queries().GetStatement(finance_, r);
  EXPECT_TRUE(out.ok()) << partner_id << ": " << out.status();
  return out.ok() ? out->statement() : v1::Statement();
}

lv1::Transfer SettlementTest::Earn(const std::string& key, const std::string& partner, const std::string& member,
                                   int64_t amount_minor, std::optional<absl::Time> occurred_at) {
  lv1::EarnRequest r = ledger::testing::EarnOf(key, partner, member, amount_minor);
  if (occurred_at.has_value()) *r.mutable_occurred_at() = ToProtoTime(*occurred_at);
  auto out = ledger_->ledger->Earn(ledger_caller_, r);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? out->transfer() : lv1::Transfer();
}

lv1::Transfer SettlementTest::Redeem(const std::string& key, const std::string& partner, const std::string& member,
                                     int64_t points) {
  lv1::AuthorizeRequest a;
  a.set_idempotency_key(key + "-hold");
  a.set_partner_id(partner);
  a.set_member_id(member);
  a.set_points(points);
  auto hold = ledger_->ledger->Authorize(ledger_caller_, a);
  EXPECT_TRUE(hold.ok()) << hold.status();
  if (!hold.ok()) return {};
  lv1::CaptureRequest c;
  c.set_idempotency_key(key + "-capture");
  c.set_hold_id(hold->hold().hold_id());
  auto captured = ledger_->ledger->Capture(ledger_caller_, c);
  EXPECT_TRUE(captured.ok()) << captured.status();
  return captured.ok() ? captured->transfer() : lv1::Transfer();
}

void SettlementTest::Reverse(const std::string& key, const std::string& transfer_id, int64_t points) {
  lv1::ReverseRequest r;
  r.set_idempotency_key(key);
  r.set_transfer_id(transfer_id);
  if (points > 0) r.set_points(points);
  auto out = ledger_->ledger->Reverse(ledger_caller_, r);
  EXPECT_TRUE(out.ok()) << out.status();
}

int SettlementTest::RunCtl(const std::string& args) {
  if (ctl_server_ == nullptr) {
    guard_ = std::make_unique<auth::RpcGuard>(keys_.authenticator(), v1::SettlementService::service_full_name());
    service_ = std::make_unique<SettlementService>(
        *settlement_, [this](const grpc::ServerContext& ctx, absl::string_view m) { return guard_->Check(ctx, m); });
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &ctl_port_);
    builder.RegisterService(service_.get());
    ctl_server_ = builder.BuildAndStart();
    EXPECT_NE(ctl_server_, nullptr);
  }
  const std::string command = absl::StrCat("LOYALTY_API_KEY='", keys_.finance(), "' ", LOYALTY_LOYALTYCTL,
                                           " ", args, " --settlement=127.0.0.1:", ctl_port_, " > /dev/null");
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int64_t SettlementTest::LedgerHead() {
  auto page = ledger_client_->ReadJournal(0, 0, 1);
  EXPECT_TRUE(page.ok()) << page.status();
  return page.ok() ? page->head_sequence : 0;
}

}  // namespace loyalty::settlement
