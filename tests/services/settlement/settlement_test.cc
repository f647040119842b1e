// Settlement's use cases on the real MariaDB store, with the real ledger
// (its MySQL store and batch writer, served over an in-process gRPC channel
// and read through settlement's gRPC ledger client).
//
// The three-partner month's expected statements, netting and export totals
// are computed by hand in the comments, not by the code under test.

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <grpcpp/grpcpp.h>

#include <sys/wait.h>

#include <atomic>
#include <cstdlib>
#include <chrono>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/db/migrations.h"
#include "common/db/transaction.h"
#include "common/status/status_macros.h"
#include "common/testing/test_db.h"
#include "common/testing/test_keys.h"
#include "common/time/proto_time.h"
#include "gtest/gtest.h"
#include "common/auth/api_key.h"
#include "common/auth/grpc_auth.h"
#include "common/crypto/sha256.h"
#include "services/ledger/ledger_service.h"
#include "services/settlement/settlement_service.h"
#include "services/settlement/grpc_ledger_client.h"
#include "services/settlement/mysql_settlement_store.h"
#include "services/settlement/settlement.h"
#include "tests/services/ledger/ledger_fixture.h"

namespace loyalty::settlement {
const std::vector<db::MigrationFile>& Migrations();

namespace {

namespace lv1 = ::loyalty::ledger::v1;
using auth::Principal;

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

// Fails ReadJournal with UNAVAILABLE on one call: a close that dies midway.
class FlakyLedger final : public LedgerClient {
 public:
  explicit FlakyLedger(LedgerClient& real) : real_(real) {}
  void FailCall(int n) { fail_at_ = n; calls_ = 0; }
  absl::StatusOr<JournalPage> ReadJournal(int64_t after, int64_t up_to, int page_size) override {
    if (++calls_ == fail_at_) return absl::UnavailableError("ledger unreachable (injected)");
    return real_.ReadJournal(after, up_to, page_size);
  }
  absl::StatusOr<lv1::VerifyChainResponse> VerifyChain(int64_t from, int64_t to) override {
    return real_.VerifyChain(from, to);
  }
  absl::StatusOr<lv1::GetPointsLiabilityResponse> GetPointsLiability() override {
    return real_.GetPointsLiability();
  }

 private:
  LedgerClient& real_;
  int fail_at_ = 0;
  int calls_ = 0;
};

class SettlementTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ledger_ = ledger::testing::MakeLedger();
    ASSERT_NE(ledger_, nullptr);
    ledger_service_ = std::make_unique<ledger::LedgerService>(*ledger_->ledger, keys_.authenticator());
    grpc::ServerBuilder builder;
    builder.RegisterService(ledger_service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    GrpcLedgerClientOptions options;
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

  void TearDown() override {
    if (ctl_server_ != nullptr) ctl_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }

  v1::Partner Create(const std::string& id, v1::BusinessCategory category = v1::BUSINESS_CATEGORY_VET_CLINIC) {
    v1::CreatePartnerRequest r;
    r.set_idempotency_key("create-" + id);
    *r.mutable_partner() = PartnerOf(id, category);
    auto out = settlement_->CreatePartner(backoffice_, r);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? out->partner() : v1::Partner();
  }

  absl::StatusOr<v1::Contract> AddContract(const std::string& key, const v1::Contract& terms) {
    v1::CreateContractVersionRequest r;
    r.set_idempotency_key(key);
    *r.mutable_contract() = terms;
    ASSIGN_OR_RETURN(auto out, settlement_->CreateContractVersion(backoffice_, r));
    return out.contract();
  }

  absl::StatusOr<v1::Period> NewPeriod(const std::string& name, absl::Time start, absl::Time end) {
    v1::CreatePeriodRequest r;
    r.set_idempotency_key("period-" + name);
    r.set_name(name);
    *r.mutable_start_time() = ToProtoTime(start);
    *r.mutable_end_time() = ToProtoTime(end);
    ASSIGN_OR_RETURN(auto out, settlement_->CreatePeriod(finance_, r));
    return out.period();
  }

  absl::StatusOr<v1::ClosePeriodResponse> Close(const std::string& key, const std::string& period_id,
                                                int64_t cutoff) {
    v1::ClosePeriodRequest r;
    r.set_idempotency_key(key);
    r.set_period_id(period_id);
    r.set_cutoff_sequence(cutoff);
    return settlement_->ClosePeriod(finance_, r);
  }

  v1::Statement StatementOf(const std::string& period_id, const std::string& partner_id) {
    v1::GetStatementRequest r;
    r.mutable_key()->set_period_id(period_id);
    r.mutable_key()->set_partner_id(partner_id);
    auto out = settlement_->GetStatement(finance_, r);
    EXPECT_TRUE(out.ok()) << partner_id << ": " << out.status();
    return out.ok() ? out->statement() : v1::Statement();
  }

  // --- the ledger, driven as partners would (domain calls) ---
  lv1::Transfer Earn(const std::string& key, const std::string& partner, const std::string& member,
                     int64_t amount_minor, std::optional<absl::Time> occurred_at = std::nullopt) {
    lv1::EarnRequest r = ledger::testing::EarnOf(key, partner, member, amount_minor);
    if (occurred_at.has_value()) *r.mutable_occurred_at() = ToProtoTime(*occurred_at);
    auto out = ledger_->ledger->Earn(ledger_caller_, r);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? out->transfer() : lv1::Transfer();
  }
  lv1::Transfer Redeem(const std::string& key, const std::string& partner, const std::string& member,
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
  void Reverse(const std::string& key, const std::string& transfer_id, int64_t points) {
    lv1::ReverseRequest r;
    r.set_idempotency_key(key);
    r.set_transfer_id(transfer_id);
    if (points > 0) r.set_points(points);
    auto out = ledger_->ledger->Reverse(ledger_caller_, r);
    EXPECT_TRUE(out.ok()) << out.status();
  }
  // Runs loyaltyctl against this settlement (served on a local port with
  // the finance key); returns its exit code.
  int RunCtl(const std::string& args) {
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

  int64_t LedgerHead() {
    auto page = ledger_client_->ReadJournal(0, 0, 1);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? page->head_sequence : 0;
  }

  loyalty::testing::TestKeyring keys_{{"vet"}};
  std::unique_ptr<ledger::testing::LedgerUnderTest> ledger_;
  std::unique_ptr<ledger::LedgerService> ledger_service_;
  std::unique_ptr<grpc::Server> server_;
  LedgerClientPtr ledger_client_;
  std::unique_ptr<FlakyLedger> flaky_;
  std::unique_ptr<loyalty::testing::TestDatabase> db_;
  SettlementStorePtr store_;
  std::unique_ptr<Settlement> settlement_;
  std::unique_ptr<auth::RpcGuard> guard_;
  std::unique_ptr<SettlementService> service_;
  std::unique_ptr<grpc::Server> ctl_server_;
  int ctl_port_ = 0;
  absl::Duration clock_offset_ = absl::Hours(24);
  ledger::Caller ledger_caller_{.principal = "key:test-driver"};
  const Principal backoffice_ = Principal::Of("bo-key", common::v1::ROLE_BACKOFFICE);
  const Principal finance_ = Principal::Of("fin-key", common::v1::ROLE_FINANCE);
  const Principal vet_ = Principal::Partner("vet-key", "vet");
};

TEST_F(SettlementTest, PartnerDirectoryValidatesIsIdempotentAndAudited) {
  v1::CreatePartnerRequest r;
  r.set_idempotency_key("k1");
  *r.mutable_partner() = PartnerOf("vet", v1::BUSINESS_CATEGORY_VET_CLINIC);
  auto first = settlement_->CreatePartner(backoffice_, r);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->partner().status(), v1::PARTNER_STATUS_ONBOARDING);
  EXPECT_EQ(first->partner().version(), 1);
  // Same key, same request: the same answer.
  auto again = settlement_->CreatePartner(backoffice_, r);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->partner().created_at().seconds(), first->partner().created_at().seconds());
  EXPECT_EQ(again->partner().created_at().nanos(), first->partner().created_at().nanos());
  // Same key, another request: ALREADY_EXISTS naming the field.
  v1::CreatePartnerRequest changed = r;
  changed.mutable_partner()->set_legal_name("Other GmbH");
  auto conflict = settlement_->CreatePartner(backoffice_, changed);
  EXPECT_EQ(conflict.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(absl::StrContains(conflict.status().message(), "partner.legal_name")) << conflict.status();
  // The id taken, under a new key.
  changed.set_idempotency_key("k2");
  EXPECT_EQ(settlement_->CreatePartner(backoffice_, changed).status().code(), absl::StatusCode::kAlreadyExists);

  // Validation names the field.
  struct Bad {
    std::function<void(v1::Partner&)> mutate;
    std::string field;
  };
  for (const Bad& bad : std::vector<Bad>{
           {[](v1::Partner& p) { p.set_settlement_currency("XYZ"); }, "partner.settlement_currency"},
           {[](v1::Partner& p) { p.set_partner_id("operator"); }, "partner.partner_id"},
           {[](v1::Partner& p) { p.set_partner_id("Vet Clinic"); }, "partner.partner_id"},
           {[](v1::Partner& p) { p.set_legal_name(""); }, "partner.legal_name"},
           {[](v1::Partner& p) { p.set_country("Germany"); }, "partner.country"},
           {[](v1::Partner& p) { p.mutable_billing_contact()->set_email("NOT-AN-EMAIL"); },
            "partner.billing_contact.email"},
           {[](v1::Partner& p) { p.set_business_category(v1::BUSINESS_CATEGORY_UNSPECIFIED); },
            "partner.business_category"},
       }) {
    v1::CreatePartnerRequest b;
    b.set_idempotency_key("bad");
    *b.mutable_partner() = PartnerOf("shop", v1::BUSINESS_CATEGORY_PET_SHOP);
    bad.mutate(*b.mutable_partner());
    auto s = settlement_->CreatePartner(backoffice_, b).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad.field;
    EXPECT_TRUE(absl::StartsWith(s.message(), bad.field)) << s;
  }

  // Update: only masked fields change; stale versions are ABORTED; audited.
  v1::UpdatePartnerRequest u;
  u.set_idempotency_key("u1");
  u.set_partner_id("vet");
  u.mutable_partner()->set_display_name("Vet Clinic Mitte");
  u.mutable_partner()->set_legal_name("ignored");
  u.mutable_update_mask()->add_paths("display_name");
  u.set_expected_version(1);
  auto updated = settlement_->UpdatePartner(backoffice_, u);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->partner().display_name(), "Vet Clinic Mitte");
  EXPECT_EQ(updated->partner().legal_name(), "vet GmbH");
  EXPECT_EQ(updated->partner().version(), 2);
  u.set_idempotency_key("u2");
  EXPECT_EQ(settlement_->UpdatePartner(backoffice_, u).status().code(), absl::StatusCode::kAborted);
  v1::ListAuditEventsRequest audit;
  audit.set_entity_type("partner");
  audit.set_entity_id("vet");
  auto events = settlement_->ListAuditEvents(finance_, audit);
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->events_size(), 2);  // newest first: update, create
  EXPECT_EQ(events->events(0).actor_key_id(), "bo-key");
  EXPECT_TRUE(absl::StrContains(events->events(0).before_json(), "\"display_name\":\"vet\""));
  EXPECT_TRUE(absl::StrContains(events->events(0).after_json(), "Vet Clinic Mitte"));
  EXPECT_EQ(events->events(0).idempotency_key(), "u1");

  // ACTIVE needs a contract in force.
  v1::SetPartnerStatusRequest st;
  st.set_idempotency_key("s1");
  st.set_partner_id("vet");
  st.set_status(v1::PARTNER_STATUS_ACTIVE);
  st.set_reason("go live");
  EXPECT_EQ(settlement_->SetPartnerStatus(backoffice_, st).status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(AddContract("c1", TermsOf("vet", absl::Now() - absl::Hours(1), 10000, 8000, 0, 0)).ok());
  st.set_idempotency_key("s2");
  auto active = settlement_->SetPartnerStatus(backoffice_, st);
  ASSERT_TRUE(active.ok()) << active.status();
  EXPECT_EQ(active->partner().status(), v1::PARTNER_STATUS_ACTIVE);

  // Partners read only themselves.
  Create("food", v1::BUSINESS_CATEGORY_PET_FOOD);
  v1::GetPartnerRequest get;
  get.set_partner_id("vet");
  EXPECT_TRUE(settlement_->GetPartner(vet_, get).ok());
  get.set_partner_id("food");
  EXPECT_EQ(settlement_->GetPartner(vet_, get).status().code(), absl::StatusCode::kPermissionDenied);

  // The snapshot feed: both partners, in version order; nothing after the
  // last version; a change brings the partner back with a higher version.
  auto feed = settlement_->ListPartnerSnapshots(Principal::Of("svc", common::v1::ROLE_SERVICE),
                                                v1::ListPartnerSnapshotsRequest());
  ASSERT_TRUE(feed.ok()) << feed.status();
  ASSERT_EQ(feed->snapshots_size(), 2);
  EXPECT_EQ(feed->snapshots(0).partner_id(), "vet");
  EXPECT_EQ(feed->snapshots(0).status(), v1::PARTNER_STATUS_ACTIVE);
  EXPECT_EQ(feed->snapshots(0).contracts_size(), 1);
  EXPECT_EQ(feed->snapshots(1).partner_id(), "food");
  EXPECT_LT(feed->snapshots(0).version(), feed->snapshots(1).version());
  v1::ListPartnerSnapshotsRequest next;
  next.set_after_version(feed->last_version());
  auto empty = settlement_->ListPartnerSnapshots(Principal::Of("svc", common::v1::ROLE_SERVICE), next);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->snapshots_size(), 0);
  EXPECT_EQ(empty->last_version(), feed->last_version());
  st.set_idempotency_key("s3");
  st.set_status(v1::PARTNER_STATUS_SUSPENDED);
  ASSERT_TRUE(settlement_->SetPartnerStatus(backoffice_, st).ok());
  auto changed_feed = settlement_->ListPartnerSnapshots(Principal::Of("svc", common::v1::ROLE_SERVICE), next);
  ASSERT_TRUE(changed_feed.ok());
  ASSERT_EQ(changed_feed->snapshots_size(), 1);
  EXPECT_EQ(changed_feed->snapshots(0).status(), v1::PARTNER_STATUS_SUSPENDED);
  EXPECT_GT(changed_feed->last_version(), feed->last_version());
}

TEST_F(SettlementTest, ContractsAreVersionedNeverEditedAndValidated) {
  Create("vet");
  Create("food", v1::BUSINESS_CATEGORY_PET_FOOD);
  const absl::Time t0 = absl::Now() - absl::Hours(24 * 30);
  auto v1c = AddContract("c1", TermsOf("vet", t0, 10000, 8000, 5000, 0));
  ASSERT_TRUE(v1c.ok()) << v1c.status();
  EXPECT_EQ(v1c->version(), 1);

  struct Bad {
    std::function<void(v1::Contract&)> mutate;
    std::string field;
  };
  for (const Bad& bad : std::vector<Bad>{
           {[](v1::Contract& c) { c.mutable_issue_price_per_1000_points()->set_amount_minor(0); },
            "contract.issue_price_per_1000_points.amount_minor"},
           {[](v1::Contract& c) { c.mutable_reimbursement_per_1000_points()->set_amount_minor(-5); },
            "contract.reimbursement_per_1000_points.amount_minor"},
           {[](v1::Contract& c) { c.set_earn_rate_milli_points_per_unit(0); },
            "contract.earn_rate_milli_points_per_unit"},
           {[](v1::Contract& c) { c.set_earn_currency("XYZ"); }, "contract.earn_currency"},
           {[](v1::Contract& c) { c.mutable_monthly_fee()->set_currency("CHF"); }, "contract.monthly_fee.currency"},
           {[](v1::Contract& c) { c.set_breakage_share_bp(10001); }, "contract.breakage_share_bp"},
           {[&](v1::Contract& c) { *c.mutable_effective_from() = ToProtoTime(t0 - absl::Hours(1)); },
            "contract.effective_from"},
       }) {
    v1::Contract terms = TermsOf("vet", t0 + absl::Hours(24), 12000, 9000, 5000, 0);
    bad.mutate(terms);
    auto s = AddContract("bad", terms).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad.field;
    EXPECT_TRUE(absl::StartsWith(s.message(), bad.field)) << s;
  }
  EXPECT_EQ(AddContract("c-none", TermsOf("nobody", t0, 1, 1, 0, 0)).status().code(), absl::StatusCode::kNotFound);

  const absl::Time t1 = t0 + absl::Hours(24 * 10);
  auto v2c = AddContract("c2", TermsOf("vet", t1, 12000, 9000, 5000, 0));
  ASSERT_TRUE(v2c.ok()) << v2c.status();
  EXPECT_EQ(v2c->version(), 2);
  // The same key replays the same version.
  auto replay = AddContract("c2", TermsOf("vet", t1, 12000, 9000, 5000, 0));
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->contract_id(), v2c->contract_id());

  // The version in force at a time; effective_until on the older one.
  v1::GetContractRequest get;
  get.mutable_as_of()->set_partner_id("vet");
  *get.mutable_as_of()->mutable_time() = ToProtoTime(t1 - absl::Seconds(1));
  auto at = settlement_->GetContract(vet_, get);
  ASSERT_TRUE(at.ok()) << at.status();
  EXPECT_EQ(at->contract().contract_id(), v1c->contract_id());
  EXPECT_EQ(FromProtoTime(at->contract().effective_until()), TruncateToMicros(t1));
  *get.mutable_as_of()->mutable_time() = ToProtoTime(t1);
  EXPECT_EQ(settlement_->GetContract(vet_, get)->contract().contract_id(), v2c->contract_id());
  *get.mutable_as_of()->mutable_time() = ToProtoTime(t0 - absl::Seconds(1));
  EXPECT_EQ(settlement_->GetContract(vet_, get).status().code(), absl::StatusCode::kNotFound);
  // Another partner's contract is not visible to a partner.
  get.mutable_as_of()->set_partner_id("food");
  EXPECT_EQ(settlement_->GetContract(vet_, get).status().code(), absl::StatusCode::kPermissionDenied);
  v1::GetContractRequest by_id;
  by_id.set_contract_id(v1c->contract_id());
  EXPECT_EQ(settlement_->GetContract(Principal::Partner("food-key", "food"), by_id).status().code(),
            absl::StatusCode::kNotFound);

  v1::ListContractsRequest list;
  list.set_partner_id("vet");
  list.set_page_size(1);
  auto page1 = settlement_->ListContracts(finance_, list);
  ASSERT_TRUE(page1.ok()) << page1.status();
  ASSERT_EQ(page1->contracts_size(), 1);
  EXPECT_EQ(page1->contracts(0).version(), 2);  // newest first
  list.set_page_token(page1->next_page_token());
  auto page2 = settlement_->ListContracts(finance_, list);
  ASSERT_TRUE(page2.ok()) << page2.status();
  ASSERT_EQ(page2->contracts_size(), 1);
  EXPECT_EQ(page2->contracts(0).version(), 1);
  EXPECT_TRUE(page2->next_page_token().empty());

  // A version effective inside a closed period is refused.
  auto period = NewPeriod("p1", t1 + absl::Hours(24), absl::Now() - absl::Hours(1));
  ASSERT_TRUE(period.ok()) << period.status();
  ASSERT_TRUE(Close("close-p1", period->period_id(), 0).ok());
  auto inside = AddContract("c3", TermsOf("vet", t1 + absl::Hours(48), 13000, 9000, 5000, 0));
  EXPECT_EQ(inside.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(inside.status().message(), "already closed")) << inside.status();
  EXPECT_TRUE(AddContract("c4", TermsOf("vet", absl::Now() + absl::Hours(1), 13000, 9000, 5000, 0)).ok());
}

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
  EXPECT_EQ(settlement_->FinalizePeriod(finance_, fin).status().code(), absl::StatusCode::kFailedPrecondition);
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
  auto midway = settlement_->GetPeriod(finance_, gp);
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
  auto netting = settlement_->ComputeNetting(finance_, nr);
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
  EXPECT_EQ(settlement_->GetStatement(vet_, own).status().code(), absl::StatusCode::kNotFound);
  v1::ExportPeriodRequest er;
  er.set_period_id(period->period_id());
  er.set_format(v1::EXPORT_FORMAT_CSV);
  EXPECT_EQ(settlement_->ExportPeriod(finance_, er).status().code(), absl::StatusCode::kFailedPrecondition);

  v1::FinalizePeriodRequest fin;
  fin.set_idempotency_key("finalize-month");
  fin.set_period_id(period->period_id());
  auto finalized = settlement_->FinalizePeriod(finance_, fin);
  ASSERT_TRUE(finalized.ok()) << finalized.status();
  EXPECT_EQ(finalized->statements_finalized(), 3);
  auto mine = settlement_->GetStatement(vet_, own);
  ASSERT_TRUE(mine.ok()) << mine.status();
  EXPECT_EQ(mine->statement().status(), v1::STATEMENT_STATUS_FINAL);
  EXPECT_TRUE(mine->statement().has_issued_at());
  own.mutable_key()->set_partner_id("food");
  EXPECT_EQ(settlement_->GetStatement(vet_, own).status().code(), absl::StatusCode::kPermissionDenied);
  v1::ListStatementsRequest ls;
  ls.set_period_id(period->period_id());
  auto all = settlement_->ListStatements(finance_, ls);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->statements_size(), 3);
  EXPECT_EQ(all->statements(0).partner_id(), "food");  // by partner_id within the period
  EXPECT_EQ(all->statements(0).lines_size(), 0);
  EXPECT_EQ(settlement_->ListStatements(vet_, ls).status().code(), absl::StatusCode::kPermissionDenied);

  // Export: 3 + 1 + 7 = 11 lines totalling 2720 - 1425 + 1814 = 3109;
  // 3 payments totalling 4534.
  auto files = settlement_->ExportPeriod(finance_, er);
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->files_size(), 2);
  EXPECT_EQ(files->files(0).record_count(), 11);
  EXPECT_EQ(files->files(0).control_totals(0).amount_minor(), 3109);
  EXPECT_TRUE(absl::StrContains(files->files(0).content(), "\r\nT,11,EUR:3109,")) << files->files(0).content();
  EXPECT_EQ(files->files(1).record_count(), 3);
  EXPECT_EQ(files->files(1).control_totals(0).amount_minor(), 4534);
  auto files_again = settlement_->ExportPeriod(finance_, er);
  EXPECT_EQ(files_again->files(0).sha256(), files->files(0).sha256());

  // Reconcile: everything agrees.
  v1::ReconcileRequest rr;
  rr.set_period_id(period->period_id());
  auto report = settlement_->Reconcile(finance_, rr);
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
  auto tampered = settlement_->Reconcile(finance_, rr);
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
  auto alerts = settlement_->ListAlerts(finance_, v1::ListAlertsRequest());
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
    return settlement_->PurchasePointBlock(finance_, r);
  };
  auto balance = [&]() {
    v1::GetPrepaidBalanceRequest r;
    r.set_partner_id("vet");
    auto out = settlement_->GetPrepaidBalance(vet_, r);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? out->balance() : v1::PrepaidBalance();
  };
  auto follow = [&]() {
    auto n = settlement_->FollowJournal(1000);
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
  EXPECT_EQ(settlement_->GetPrepaidBalance(vet_, other).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(settlement_->GetPrepaidBalance(finance_, other).status().code(), absl::StatusCode::kFailedPrecondition);

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
  auto alerts = settlement_->ListAlerts(vet_, la);
  ASSERT_TRUE(alerts.ok()) << alerts.status();
  ASSERT_EQ(alerts->alerts_size(), 2);
  EXPECT_EQ(alerts->alerts(0).kind(), v1::ALERT_KIND_PREPAID_EXHAUSTED);
  EXPECT_EQ(alerts->alerts(0).remaining_points(), -20);
  EXPECT_EQ(alerts->alerts(1).kind(), v1::ALERT_KIND_PREPAID_LOW_BALANCE);
  EXPECT_EQ(alerts->alerts(1).remaining_points(), 100);
  EXPECT_EQ(alerts->alerts(1).threshold_points(), 150);
  EXPECT_EQ(settlement_->ListAlerts(vet_, v1::ListAlertsRequest()).status().code(),
            absl::StatusCode::kPermissionDenied);

  // A return gives 20 points back to the block; a purchase tops it up. Neither
  // raises an alert.
  Reverse("p-return", e2.transfer_id(), 20);
  EXPECT_EQ(follow(), 1);
  EXPECT_EQ(balance().remaining_points(), 0);
  ASSERT_TRUE(buy("b3", "vet", 100, "EUR").ok());
  b = balance();
  EXPECT_EQ(b.remaining_points(), 100);
  EXPECT_EQ(settlement_->ListAlerts(finance_, la)->alerts_size(), 2);

  // The feed tells the ledger the remaining points and the sequence they
  // are counted to.
  auto feed = settlement_->ListPartnerSnapshots(Principal::Of("svc", common::v1::ROLE_SERVICE),
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
  auto report = settlement_->Reconcile(finance_, rr);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->mismatches_size(), 0) << report->DebugString();
  ASSERT_EQ(report->checks_size(), 4);
  EXPECT_EQ(report->checks(2).check(), v1::RECONCILIATION_CHECK_PREPAID_BLOCKS);
  EXPECT_EQ(report->checks(2).items_checked(), 1);
  ASSERT_TRUE(loyalty::testing::ExecForTest(db_->pool(),
                                            "UPDATE prepaid_balances SET purchased_points = purchased_points + 5")
                  .ok());
  report = settlement_->Reconcile(finance_, rr);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->mismatches_size(), 1) << report->DebugString();
  EXPECT_EQ(report->mismatches(0).check(), v1::RECONCILIATION_CHECK_PREPAID_BLOCKS);
  EXPECT_EQ(report->mismatches(0).partner_id(), "vet");
  EXPECT_EQ(report->mismatches(0).difference_points(), -5);
}

// A partner disputes a line of a FINAL statement; backoffice accepts it with
// an adjustment that the next period's statement carries. The disputed
// statement's amounts never change.
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
    return settlement_->DisputeStatementLine(who, r);
  };
  EXPECT_EQ(dispute(vet_, "d0", "L001").status().code(), absl::StatusCode::kNotFound);  // a draft
  EXPECT_EQ(dispute(backoffice_, "d1", "L001").status().code(), absl::StatusCode::kFailedPrecondition);
  v1::FinalizePeriodRequest fin;
  fin.set_idempotency_key("finalize-first");
  fin.set_period_id(first->period_id());
  ASSERT_TRUE(settlement_->FinalizePeriod(finance_, fin).ok());

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
  EXPECT_EQ(settlement_->ResolveDispute(backoffice_, resolve).status().code(),
            absl::StatusCode::kInvalidArgument);  // no adjustment
  *resolve.mutable_adjustment() = Eur(-100);
  auto resolved = settlement_->ResolveDispute(backoffice_, resolve);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->dispute().status(), v1::DISPUTE_STATUS_ACCEPTED);
  EXPECT_EQ(resolved->dispute().adjustment_period_id(), second->period_id());
  resolve.set_idempotency_key("r2");
  EXPECT_EQ(settlement_->ResolveDispute(backoffice_, resolve).status().code(), absl::StatusCode::kFailedPrecondition);
  v1::Statement adjusted = StatementOf(first->period_id(), "vet");
  EXPECT_EQ(adjusted.status(), v1::STATEMENT_STATUS_ADJUSTED);
  EXPECT_EQ(adjusted.net_amount().amount_minor(), 3000);  // never edited

  v1::ListDisputesRequest ld;
  ld.set_partner_id("vet");
  auto listed = settlement_->ListDisputes(vet_, ld);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->disputes_size(), 1);
  EXPECT_EQ(settlement_->ListDisputes(vet_, v1::ListDisputesRequest()).status().code(),
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
TEST_F(SettlementTest, ApiKeysAreShownOnceStoredHashedRotatedAndRevoked) {
  Create("vet");
  v1::CreateApiKeyRequest c;
  c.set_idempotency_key("key-1");
  c.set_role(common::v1::ROLE_PARTNER);
  c.set_partner_id("vet");
  c.set_label("clinic POS 3");
  auto created = settlement_->CreateApiKey(backoffice_, c);
  ASSERT_TRUE(created.ok()) << created.status();
  auto parsed = auth::ParseApiKey(created->secret());
  ASSERT_TRUE(parsed.has_value()) << created->secret();
  EXPECT_EQ(parsed->key_id, created->api_key().key_id());
  auto replay = settlement_->CreateApiKey(backoffice_, c);
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->api_key().key_id(), created->api_key().key_id());
  EXPECT_TRUE(replay->secret().empty());
  // The secret is nowhere in settlement's tables.
  for (const char* table : {"api_keys", "idempotency", "audit_events"}) {
    const std::string column = std::string(table) == "idempotency" ? "response" : "body";
    auto n = loyalty::testing::QueryIntForTest(
        db_->pool(), absl::StrCat("SELECT COUNT(*) FROM ", table, " WHERE INSTR(", column, ", '", parsed->secret, "') > 0"));
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_EQ(*n, 0) << table;
  }

  const Principal svc = Principal::Of("svc", common::v1::ROLE_SERVICE);
  auto authenticate = [&](const std::string& secret) {
    v1::AuthenticateApiKeyRequest a;
    a.set_key_hash(crypto::Sha256Hex(auth::ParseApiKey(secret)->secret));
    return settlement_->AuthenticateApiKey(svc, a);
  };
  auto who = authenticate(created->secret());
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ(who->key_id(), created->api_key().key_id());
  EXPECT_EQ(who->role(), common::v1::ROLE_PARTNER);
  EXPECT_EQ(who->partner_id(), "vet");
  EXPECT_EQ(who->partner_status(), v1::PARTNER_STATUS_ONBOARDING);
  EXPECT_EQ(who->cache_ttl_seconds(), 30);
  v1::AuthenticateApiKeyRequest bad;
  bad.set_key_hash("XYZ");
  EXPECT_EQ(settlement_->AuthenticateApiKey(svc, bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad.set_key_hash(std::string(64, '0'));
  EXPECT_EQ(settlement_->AuthenticateApiKey(svc, bad).status().code(), absl::StatusCode::kNotFound);

  v1::CreateApiKeyRequest wrong = c;
  wrong.set_idempotency_key("key-2");
  wrong.clear_partner_id();
  EXPECT_EQ(settlement_->CreateApiKey(backoffice_, wrong).status().code(), absl::StatusCode::kInvalidArgument);
  wrong.set_role(common::v1::ROLE_FINANCE);
  wrong.set_partner_id("vet");
  EXPECT_EQ(settlement_->CreateApiKey(backoffice_, wrong).status().code(), absl::StatusCode::kInvalidArgument);
  wrong.set_role(common::v1::ROLE_PARTNER);
  wrong.set_partner_id("nobody");
  EXPECT_EQ(settlement_->CreateApiKey(backoffice_, wrong).status().code(), absl::StatusCode::kNotFound);

  // Rotation: the old key works for the grace period, then expires.
  v1::RotateApiKeyRequest rot;
  rot.set_idempotency_key("rotate-1");
  rot.set_key_id(created->api_key().key_id());
  rot.set_grace_period_seconds(60);
  auto rotated = settlement_->RotateApiKey(backoffice_, rot);
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_FALSE(rotated->secret().empty());
  EXPECT_EQ(rotated->previous_api_key().state(), v1::API_KEY_STATE_ROTATING);
  EXPECT_EQ(rotated->previous_api_key().replaced_by_key_id(), rotated->api_key().key_id());
  EXPECT_EQ(rotated->api_key().replaces_key_id(), created->api_key().key_id());
  EXPECT_EQ(rotated->api_key().partner_id(), "vet");
  EXPECT_TRUE(authenticate(created->secret()).ok());
  EXPECT_TRUE(authenticate(rotated->secret()).ok());
  rot.set_idempotency_key("rotate-2");
  EXPECT_EQ(settlement_->RotateApiKey(backoffice_, rot).status().code(), absl::StatusCode::kFailedPrecondition);
  clock_offset_ += absl::Minutes(2);
  EXPECT_EQ(authenticate(created->secret()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(authenticate(rotated->secret()).ok());

  v1::RevokeApiKeyRequest rev;
  rev.set_idempotency_key("revoke-1");
  rev.set_key_id(rotated->api_key().key_id());
  rev.set_reason("till stolen");
  auto revoked = settlement_->RevokeApiKey(backoffice_, rev);
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_EQ(revoked->api_key().state(), v1::API_KEY_STATE_REVOKED);
  EXPECT_EQ(authenticate(rotated->secret()).status().code(), absl::StatusCode::kNotFound);
  rev.set_idempotency_key("revoke-2");
  EXPECT_EQ(settlement_->RevokeApiKey(backoffice_, rev).status().code(), absl::StatusCode::kFailedPrecondition);

  v1::ListApiKeysRequest list;
  list.set_partner_id("vet");
  auto active = settlement_->ListApiKeys(backoffice_, list);
  ASSERT_TRUE(active.ok()) << active.status();
  EXPECT_EQ(active->api_keys_size(), 0);
  list.set_include_inactive(true);
  auto everything = settlement_->ListApiKeys(backoffice_, list);
  ASSERT_TRUE(everything.ok());
  ASSERT_EQ(everything->api_keys_size(), 2);
  EXPECT_EQ(everything->api_keys(0).state(), v1::API_KEY_STATE_REVOKED);  // newest first
  EXPECT_EQ(everything->api_keys(1).state(), v1::API_KEY_STATE_EXPIRED);
}

}  // namespace
}  // namespace loyalty::settlement
