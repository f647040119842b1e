// Every documented input constraint of settlement.proto, one row each: the
// row sends one request that breaks exactly that constraint, and expects
// INVALID_ARGUMENT whose message starts with the field path, and every table
// of the settlement schema unchanged (no partner, contract, block, key,
// period, statement, dispute, audit event or idempotency record). Real
// MariaDB store; the ledger is an empty stand-in (the rows never reach it).
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/db/migrations.h"
#include "common/testing/test_db.h"
#include "common/time/proto_time.h"
#include "gtest/gtest.h"
#include "tests/common/validation_rows.h"
#include "services/settlement/mysql_settlement_store.h"
#include "services/settlement/settlement.h"

namespace loyalty::settlement {
const std::vector<db::MigrationFile>& Migrations();

namespace {

namespace validation = ::loyalty::testing::validation;
using validation::Accented;
using validation::Make;
using validation::Row;

using auth::Principal;

const Principal kBackoffice = Principal::Of("bo-key", common::v1::ROLE_BACKOFFICE);
const Principal kFinance = Principal::Of("fin-key", common::v1::ROLE_FINANCE);
const Principal kService = Principal::Of("svc-key", common::v1::ROLE_SERVICE);

// A ledger with no transfers yet.
class EmptyLedger final : public LedgerClient {
 public:
  absl::StatusOr<JournalPage> ReadJournal(int64_t after, int64_t, int) override {
    JournalPage page;
    page.last_sequence = after;
    return page;
  }
  absl::StatusOr<ledger::v1::VerifyChainResponse> VerifyChain(int64_t, int64_t) override {
    return ledger::v1::VerifyChainResponse();
  }
  absl::StatusOr<ledger::v1::GetPointsLiabilityResponse> GetPointsLiability() override {
    return ledger::v1::GetPointsLiabilityResponse();
  }
};

common::v1::Money Money(int64_t minor, const std::string& currency = "EUR") {
  common::v1::Money m;
  m.set_amount_minor(minor);
  m.set_currency(currency);
  return m;
}

v1::Partner PartnerOf(const std::string& id) {
  v1::Partner p;
  p.set_partner_id(id);
  p.set_legal_name(id + " GmbH");
  p.set_display_name(id);
  p.set_business_category(v1::BUSINESS_CATEGORY_VET_CLINIC);
  p.set_country("DE");
  p.set_settlement_currency("EUR");
  p.mutable_billing_contact()->set_name("Accounts");
  p.mutable_billing_contact()->set_email("accounts@" + id + ".example");
  return p;
}

v1::Contract TermsOf(const std::string& partner, absl::Time from) {
  v1::Contract c;
  c.set_partner_id(partner);
  *c.mutable_effective_from() = ToProtoTime(from);
  c.set_earn_currency("EUR");
  c.set_earn_rate_milli_points_per_unit(1000);
  *c.mutable_issue_price_per_1000_points() = Money(1000);
  *c.mutable_reimbursement_per_1000_points() = Money(800);
  c.set_breakage_share_bp(5000);
  *c.mutable_monthly_fee() = Money(3000);
  c.set_funding_model(v1::FUNDING_MODEL_POSTPAID);
  return c;
}

class SettlementValidationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = loyalty::testing::TestDatabase::Create("settle");
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    ASSERT_TRUE(db::ApplyMigrations(db_->pool(), Migrations()).ok());
    store_ = NewMysqlSettlementStore(db_->pool());
    settlement_ = std::make_unique<Settlement>(*store_, ledger_);
    const absl::Time now = absl::Now();

    // State for the rows that need it: partner "vet" with a contract since
    // 40 days ago; a period ending a day ago, closed and finalised, with a
    // disputed line; an ended period still open; the current period.
    v1::CreatePartnerRequest partner;
    partner.set_idempotency_key("setup-partner");
    *partner.mutable_partner() = PartnerOf("vet");
    ASSERT_TRUE(settlement_->partners().CreatePartner(kBackoffice, partner).ok());
    v1::CreateContractVersionRequest contract;
    contract.set_idempotency_key("setup-contract");
    *contract.mutable_contract() = TermsOf("vet", now - absl::Hours(24 * 40));
    ASSERT_TRUE(settlement_->contracts().CreateContractVersion(kBackoffice, contract).ok());
    const std::string closed = MakePeriod("2025-01", now - absl::Hours(24 * 30), now - absl::Hours(24));
    v1::ClosePeriodRequest close;
    close.set_idempotency_key("setup-close");
    close.set_period_id(closed);
    auto closed_period = settlement_->period_close().ClosePeriod(kFinance, close);
    ASSERT_TRUE(closed_period.ok()) << closed_period.status();
    v1::FinalizePeriodRequest finalize;
    finalize.set_idempotency_key("setup-finalize");
    finalize.set_period_id(closed);
    ASSERT_TRUE(settlement_->period_close().FinalizePeriod(kFinance, finalize).ok());
    v1::GetStatementRequest get;
    get.mutable_key()->set_period_id(closed);
    get.mutable_key()->set_partner_id("vet");
    auto statement = settlement_->statement_queries().GetStatement(kBackoffice, get);
    ASSERT_TRUE(statement.ok()) << statement.status();
    ASSERT_GT(statement->statement().lines_size(), 0);
    statement_id_ = statement->statement().statement_id();
    line_id_ = statement->statement().lines(0).line_id();
    v1::DisputeStatementLineRequest dispute;
    dispute.set_idempotency_key("setup-dispute");
    dispute.set_statement_id(statement_id_);
    dispute.set_line_id(line_id_);
    dispute.set_reason("fee too high");
    auto disputed = settlement_->disputes().DisputeStatementLine(kBackoffice, dispute);
    ASSERT_TRUE(disputed.ok()) << disputed.status();
    dispute_id_ = disputed->dispute().dispute_id();
    ended_open_period_id_ = MakePeriod("2025-02a", now - absl::Hours(24), now - absl::Hours(1));
    MakePeriod("2025-02b", now - absl::Hours(1), now + absl::Hours(24 * 30));
  }

  std::string MakePeriod(const std::string& name, absl::Time start, absl::Time end) {
    v1::CreatePeriodRequest r;
    r.set_idempotency_key("setup-period-" + name);
    r.set_name(name);
    *r.mutable_start_time() = ToProtoTime(start);
    *r.mutable_end_time() = ToProtoTime(end);
    auto created = settlement_->period_close().CreatePeriod(kFinance, r);
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? created->period().period_id() : "";
  }

  std::string State() {
    auto tables = loyalty::testing::TableChecksumsForTest(db_->pool());
    EXPECT_TRUE(tables.ok()) << tables.status();
    return tables.ok() ? *tables : "";
  }

  void RunRows(const std::vector<Row>& rows) {
    validation::ExpectEachRefusedWritingNothing(rows, [this] { return State(); }, "partners ");
  }

  std::unique_ptr<loyalty::testing::TestDatabase> db_;
  std::unique_ptr<SettlementStore> store_;
  EmptyLedger ledger_;
  std::unique_ptr<Settlement> settlement_;
  std::string statement_id_, line_id_, dispute_id_, ended_open_period_id_;
};

TEST_F(SettlementValidationTest, PartnersContractsAndBlocksRefuseEachDocumentedViolationAndWriteNothing) {
  using Create = v1::CreatePartnerRequest;
  auto create = [this](const Create& r) { return settlement_->partners().CreatePartner(kBackoffice, r).status(); };
  Create create_base;
  create_base.set_idempotency_key("partner-bad");
  *create_base.mutable_partner() = PartnerOf("shop");
  using Update = v1::UpdatePartnerRequest;
  auto update = [this](const Update& r) { return settlement_->partners().UpdatePartner(kBackoffice, r).status(); };
  Update update_base;
  update_base.set_idempotency_key("update-bad");
  update_base.set_partner_id("vet");
  update_base.mutable_update_mask()->add_paths("display_name");
  update_base.mutable_partner()->set_display_name("Vet Mitte");
  using Status = v1::SetPartnerStatusRequest;
  auto set_status = [this](const Status& r) {
    return settlement_->partners().SetPartnerStatus(kBackoffice, r).status();
  };
  Status status_base;
  status_base.set_idempotency_key("status-bad");
  status_base.set_partner_id("vet");
  status_base.set_status(v1::PARTNER_STATUS_ACTIVE);
  status_base.set_reason("contract signed");
  using Contract = v1::CreateContractVersionRequest;
  auto contract = [this](const Contract& r) {
    return settlement_->contracts().CreateContractVersion(kBackoffice, r).status();
  };
  Contract contract_base;
  contract_base.set_idempotency_key("contract-bad");
  *contract_base.mutable_contract() = TermsOf("vet", absl::Now() + absl::Hours(24));
  using Block = v1::PurchasePointBlockRequest;
  auto block = [this](const Block& r) { return settlement_->prepaid().PurchasePointBlock(kFinance, r).status(); };
  Block block_base;
  block_base.set_idempotency_key("block-bad");
  block_base.set_partner_id("vet");
  block_base.set_points(1000);
  *block_base.mutable_price() = Money(500);

  const std::vector<Row> rows = {
      Make<Create>("partner: empty key", "idempotency_key", create_base, [](Create& r) { r.set_idempotency_key(""); },
                   create),
      Make<Create>("partner: id with upper case and a space", "partner.partner_id", create_base,
                   [](Create& r) { r.mutable_partner()->set_partner_id("Vet Clinic"); }, create),
      Make<Create>("partner: id of one character", "partner.partner_id", create_base,
                   [](Create& r) { r.mutable_partner()->set_partner_id("v"); }, create),
      Make<Create>("partner: id of 41 characters", "partner.partner_id", create_base,
                   [](Create& r) { r.mutable_partner()->set_partner_id(std::string(41, 'v')); }, create),
      Make<Create>("partner: id starting with '-'", "partner.partner_id", create_base,
                   [](Create& r) { r.mutable_partner()->set_partner_id("-vet"); }, create),
      Make<Create>("partner: reserved id", "partner.partner_id", create_base,
                   [](Create& r) { r.mutable_partner()->set_partner_id("operator"); }, create),
      Make<Create>("partner: no legal name", "partner.legal_name", create_base,
                   [](Create& r) { r.mutable_partner()->set_legal_name(""); }, create),
      Make<Create>("partner: legal name of 201 characters", "partner.legal_name", create_base,
                   [](Create& r) { r.mutable_partner()->set_legal_name(Accented(201)); }, create),
      Make<Create>("partner: no display name", "partner.display_name", create_base,
                   [](Create& r) { r.mutable_partner()->set_display_name(" "); }, create),
      Make<Create>("partner: display name of 101 characters", "partner.display_name", create_base,
                   [](Create& r) { r.mutable_partner()->set_display_name(Accented(101)); }, create),
      Make<Create>("partner: no business category", "partner.business_category", create_base,
                   [](Create& r) { r.mutable_partner()->set_business_category(v1::BUSINESS_CATEGORY_UNSPECIFIED); },
                   create),
      Make<Create>("partner: unknown business category", "partner.business_category", create_base,
                   [](Create& r) { r.mutable_partner()->set_business_category(static_cast<v1::BusinessCategory>(99)); },
                   create),
      Make<Create>("partner: lower-case country", "partner.country", create_base,
                   [](Create& r) { r.mutable_partner()->set_country("de"); }, create),
      Make<Create>("partner: alpha-3 country", "partner.country", create_base,
                   [](Create& r) { r.mutable_partner()->set_country("DEU"); }, create),
      Make<Create>("partner: unknown currency", "partner.settlement_currency", create_base,
                   [](Create& r) { r.mutable_partner()->set_settlement_currency("XYZ"); }, create),
      Make<Create>("partner: no contact name", "partner.billing_contact.name", create_base,
                   [](Create& r) { r.mutable_partner()->mutable_billing_contact()->set_name(""); }, create),
      Make<Create>("partner: contact name of 101 characters", "partner.billing_contact.name", create_base,
                   [](Create& r) { r.mutable_partner()->mutable_billing_contact()->set_name(Accented(101)); }, create),
      Make<Create>("partner: upper-case contact email", "partner.billing_contact.email", create_base,
                   [](Create& r) { r.mutable_partner()->mutable_billing_contact()->set_email("Accounts@vet.example"); },
                   create),
      Make<Create>("partner: contact email over 254", "partner.billing_contact.email", create_base,
                   [](Create& r) {
                     r.mutable_partner()->mutable_billing_contact()->set_email(std::string(245, 'a') + "@vet.example");
                   },
                   create),
      Make<Create>("partner: contact phone not E.164", "partner.billing_contact.phone", create_base,
                   [](Create& r) { r.mutable_partner()->mutable_billing_contact()->set_phone("030 1234567"); }, create),
      Make<Create>("partner: five address lines", "partner.billing_contact.address_lines", create_base,
                   [](Create& r) {
                     for (int i = 0; i < 5; ++i) r.mutable_partner()->mutable_billing_contact()->add_address_lines("x");
                   },
                   create),
      Make<Create>("partner: address line of 101 characters", "partner.billing_contact.address_lines[1]",
                   create_base,
                   [](Create& r) {
                     r.mutable_partner()->mutable_billing_contact()->add_address_lines("Hauptstr. 1");
                     r.mutable_partner()->mutable_billing_contact()->add_address_lines(Accented(101));
                   },
                   create),
      Make<Create>("partner: VAT id of 33", "partner.vat_id", create_base,
                   [](Create& r) { r.mutable_partner()->set_vat_id(std::string(33, 'V')); }, create),
      Make<Create>("partner: negative rate limit", "partner.rate_limit_per_second", create_base,
                   [](Create& r) { r.mutable_partner()->set_rate_limit_per_second(-1); }, create),
      Make<Create>("partner: negative burst", "partner.rate_limit_burst", create_base,
                   [](Create& r) { r.mutable_partner()->set_rate_limit_burst(-1); }, create),
      Make<Update>("update: no partner", "partner_id", update_base, [](Update& r) { r.set_partner_id(""); }, update),
      Make<Update>("update: empty mask", "update_mask", update_base, [](Update& r) { r.clear_update_mask(); },
                   update),
      Make<Update>("update: mask naming status", "update_mask", update_base,
                   [](Update& r) { r.mutable_update_mask()->add_paths("status"); }, update),
      Make<Update>("update: display name of 101 characters", "partner.display_name", update_base,
                   [](Update& r) { r.mutable_partner()->set_display_name(Accented(101)); }, update),
      Make<Status>("status: no partner", "partner_id", status_base, [](Status& r) { r.set_partner_id(""); },
                   set_status),
      Make<Status>("status: unspecified", "status", status_base,
                   [](Status& r) { r.set_status(v1::PARTNER_STATUS_UNSPECIFIED); }, set_status),
      Make<Status>("status: unknown", "status", status_base,
                   [](Status& r) { r.set_status(static_cast<v1::PartnerStatus>(9)); }, set_status),
      Make<Status>("status: no reason", "reason", status_base, [](Status& r) { r.set_reason(""); }, set_status),
      Make<Status>("status: reason of 501 characters", "reason", status_base,
                   [](Status& r) { r.set_reason(Accented(501)); }, set_status),
      Make<Contract>("contract: empty key", "idempotency_key", contract_base,
                     [](Contract& r) { r.set_idempotency_key(""); }, contract),
      Make<Contract>("contract: no partner", "contract.partner_id", contract_base,
                     [](Contract& r) { r.mutable_contract()->set_partner_id(""); }, contract),
      Make<Contract>("contract: no effective_from", "contract.effective_from", contract_base,
                     [](Contract& r) { r.mutable_contract()->clear_effective_from(); }, contract),
      Make<Contract>("contract: not after the latest version", "contract.effective_from", contract_base,
                     [](Contract& r) {
                       *r.mutable_contract()->mutable_effective_from() =
                           ToProtoTime(absl::Now() - absl::Hours(24 * 50));
                     },
                     contract),
      Make<Contract>("contract: inside a closed period", "contract.effective_from", contract_base,
                     [](Contract& r) {
                       *r.mutable_contract()->mutable_effective_from() =
                           ToProtoTime(absl::Now() - absl::Hours(24 * 10));
                     },
                     contract),
      Make<Contract>("contract: unknown earn currency", "contract.earn_currency", contract_base,
                     [](Contract& r) { r.mutable_contract()->set_earn_currency("XYZ"); }, contract),
      Make<Contract>("contract: earn rate 0", "contract.earn_rate_milli_points_per_unit", contract_base,
                     [](Contract& r) { r.mutable_contract()->set_earn_rate_milli_points_per_unit(0); }, contract),
      Make<Contract>("contract: issue price 0", "contract.issue_price_per_1000_points.amount_minor", contract_base,
                     [](Contract& r) { *r.mutable_contract()->mutable_issue_price_per_1000_points() = Money(0); },
                     contract),
      Make<Contract>("contract: issue price in another currency", "contract.issue_price_per_1000_points.currency",
                     contract_base,
                     [](Contract& r) {
                       *r.mutable_contract()->mutable_issue_price_per_1000_points() = Money(1000, "USD");
                     },
                     contract),
      Make<Contract>("contract: reimbursement 0", "contract.reimbursement_per_1000_points.amount_minor",
                     contract_base,
                     [](Contract& r) { *r.mutable_contract()->mutable_reimbursement_per_1000_points() = Money(0); },
                     contract),
      Make<Contract>("contract: breakage share -1", "contract.breakage_share_bp", contract_base,
                     [](Contract& r) { r.mutable_contract()->set_breakage_share_bp(-1); }, contract),
      Make<Contract>("contract: breakage share 10001", "contract.breakage_share_bp", contract_base,
                     [](Contract& r) { r.mutable_contract()->set_breakage_share_bp(10'001); }, contract),
      Make<Contract>("contract: negative fee", "contract.monthly_fee.amount_minor", contract_base,
                     [](Contract& r) { *r.mutable_contract()->mutable_monthly_fee() = Money(-1); }, contract),
      Make<Contract>("contract: no funding model", "contract.funding_model", contract_base,
                     [](Contract& r) { r.mutable_contract()->set_funding_model(v1::FUNDING_MODEL_UNSPECIFIED); },
                     contract),
      Make<Contract>("contract: unknown funding model", "contract.funding_model", contract_base,
                     [](Contract& r) { r.mutable_contract()->set_funding_model(static_cast<v1::FundingModel>(7)); },
                     contract),
      Make<Contract>("contract: negative low-balance threshold", "contract.prepaid_low_balance_threshold_points",
                     contract_base,
                     [](Contract& r) { r.mutable_contract()->set_prepaid_low_balance_threshold_points(-1); }, contract),
      Make<Contract>("contract: note of 1001 characters", "contract.note", contract_base,
                     [](Contract& r) { r.mutable_contract()->set_note(Accented(1001)); }, contract),
      Make<Block>("block: no partner", "partner_id", block_base, [](Block& r) { r.set_partner_id(""); }, block),
      Make<Block>("block: 0 points", "points", block_base, [](Block& r) { r.set_points(0); }, block),
      Make<Block>("block: negative price", "price.amount_minor", block_base,
                  [](Block& r) { *r.mutable_price() = Money(-1); }, block),
      Make<Block>("block: price in another currency", "price.currency", block_base,
                  [](Block& r) { *r.mutable_price() = Money(500, "USD"); }, block),
      Make<Block>("block: reference of 65 characters", "reference", block_base,
                  [](Block& r) { r.set_reference(Accented(65)); }, block),
      Row{"contract: no selector", "selector",
          [this] { return settlement_->contracts().GetContract(kBackoffice, {}).status(); }},
      Row{"contract: as_of without partner", "as_of.partner_id",
          [this] {
            v1::GetContractRequest r;
            r.mutable_as_of();
            return settlement_->contracts().GetContract(kBackoffice, r).status();
          }},
      Row{"contracts: no partner", "partner_id",
          [this] { return settlement_->contracts().ListContracts(kBackoffice, {}).status(); }},
      Row{"partner: no id", "partner_id",
          [this] { return settlement_->partners().GetPartner(kBackoffice, {}).status(); }},
      Row{"alerts: bad partner id", "partner_id",
          [this] {
            v1::ListAlertsRequest r;
            r.set_partner_id("a:b");
            return settlement_->prepaid().ListAlerts(kBackoffice, r).status();
          }},
      Row{"snapshots: after_version -1", "after_version",
          [this] {
            v1::ListPartnerSnapshotsRequest r;
            r.set_after_version(-1);
            return settlement_->partners().ListPartnerSnapshots(kService, r).status();
          }},
  };
  RunRows(rows);
}

TEST_F(SettlementValidationTest, KeysPeriodsAndDisputesRefuseEachDocumentedViolationAndWriteNothing) {
  using CreateKey = v1::CreateApiKeyRequest;
  auto create_key = [this](const CreateKey& r) {
    return settlement_->api_keys().CreateApiKey(kBackoffice, r).status();
  };
  CreateKey key_base;
  key_base.set_idempotency_key("key-bad");
  key_base.set_role(common::v1::ROLE_PARTNER);
  key_base.set_partner_id("vet");
  using Rotate = v1::RotateApiKeyRequest;
  auto rotate = [this](const Rotate& r) { return settlement_->api_keys().RotateApiKey(kBackoffice, r).status(); };
  Rotate rotate_base;
  rotate_base.set_idempotency_key("rotate-bad");
  rotate_base.set_key_id("0123456789abcdef");
  using Revoke = v1::RevokeApiKeyRequest;
  auto revoke = [this](const Revoke& r) { return settlement_->api_keys().RevokeApiKey(kBackoffice, r).status(); };
  Revoke revoke_base;
  revoke_base.set_idempotency_key("revoke-bad");
  revoke_base.set_key_id("0123456789abcdef");
  revoke_base.set_reason("leaked");
  using Period = v1::CreatePeriodRequest;
  auto period = [this](const Period& r) { return settlement_->period_close().CreatePeriod(kFinance, r).status(); };
  Period period_base;
  period_base.set_idempotency_key("period-bad");
  period_base.set_name("2025-03");
  *period_base.mutable_start_time() = ToProtoTime(absl::Now() + absl::Hours(24 * 40));
  *period_base.mutable_end_time() = ToProtoTime(absl::Now() + absl::Hours(24 * 70));
  using Close = v1::ClosePeriodRequest;
  auto close = [this](const Close& r) { return settlement_->period_close().ClosePeriod(kFinance, r).status(); };
  Close close_base;
  close_base.set_idempotency_key("close-bad");
  close_base.set_period_id(ended_open_period_id_);
  using Dispute = v1::DisputeStatementLineRequest;
  auto dispute = [this](const Dispute& r) {
    return settlement_->disputes().DisputeStatementLine(kBackoffice, r).status();
  };
  Dispute dispute_base;
  dispute_base.set_idempotency_key("dispute-bad");
  dispute_base.set_statement_id(statement_id_);
  dispute_base.set_line_id(line_id_);
  dispute_base.set_reason("wrong");
  using Resolve = v1::ResolveDisputeRequest;
  auto resolve = [this](const Resolve& r) { return settlement_->disputes().ResolveDispute(kBackoffice, r).status(); };
  Resolve resolve_base;
  resolve_base.set_idempotency_key("resolve-bad");
  resolve_base.set_dispute_id(dispute_id_);
  resolve_base.set_resolution(v1::DISPUTE_STATUS_ACCEPTED);
  *resolve_base.mutable_adjustment() = Money(-500);
  resolve_base.set_resolution_note("agreed");

  const std::vector<Row> rows = {
      Make<CreateKey>("key: empty idempotency key", "idempotency_key", key_base,
                      [](CreateKey& r) { r.set_idempotency_key(""); }, create_key),
      Make<CreateKey>("key: no role", "role", key_base,
                      [](CreateKey& r) {
                        r.set_role(common::v1::ROLE_UNSPECIFIED);
                        r.clear_partner_id();
                      },
                      create_key),
      Make<CreateKey>("key: unknown role", "role", key_base,
                      [](CreateKey& r) { r.set_role(static_cast<common::v1::Role>(9)); }, create_key),
      Make<CreateKey>("key: partner role without partner", "partner_id", key_base,
                      [](CreateKey& r) { r.clear_partner_id(); }, create_key),
      Make<CreateKey>("key: partner on a backoffice key", "partner_id", key_base,
                      [](CreateKey& r) { r.set_role(common::v1::ROLE_BACKOFFICE); }, create_key),
      Make<CreateKey>("key: expiry in the past", "expires_at", key_base,
                      [](CreateKey& r) { *r.mutable_expires_at() = ToProtoTime(absl::FromUnixSeconds(1000)); },
                      create_key),
      Make<CreateKey>("key: label of 101 characters", "label", key_base,
                      [](CreateKey& r) { r.set_label(Accented(101)); }, create_key),
      Make<Rotate>("rotate: no key id", "key_id", rotate_base, [](Rotate& r) { r.set_key_id(""); }, rotate),
      Make<Rotate>("rotate: grace -1", "grace_period_seconds", rotate_base,
                   [](Rotate& r) { r.set_grace_period_seconds(-1); }, rotate),
      Make<Rotate>("rotate: grace 604801", "grace_period_seconds", rotate_base,
                   [](Rotate& r) { r.set_grace_period_seconds(604'801); }, rotate),
      Make<Revoke>("revoke: no key id", "key_id", revoke_base, [](Revoke& r) { r.set_key_id(""); }, revoke),
      Make<Revoke>("revoke: no reason", "reason", revoke_base, [](Revoke& r) { r.set_reason(""); }, revoke),
      Make<Revoke>("revoke: reason of 501 characters", "reason", revoke_base,
                   [](Revoke& r) { r.set_reason(Accented(501)); }, revoke),
      Make<Period>("period: empty key", "idempotency_key", period_base, [](Period& r) { r.set_idempotency_key(""); },
                   period),
      Make<Period>("period: no name", "name", period_base, [](Period& r) { r.set_name(""); }, period),
      Make<Period>("period: name of 33 characters", "name", period_base,
                   [](Period& r) { r.set_name(Accented(33)); }, period),
      Make<Period>("period: no start", "start_time", period_base, [](Period& r) { r.clear_start_time(); }, period),
      Make<Period>("period: no end", "end_time", period_base, [](Period& r) { r.clear_end_time(); }, period),
      Make<Period>("period: end not after start", "end_time", period_base,
                   [](Period& r) { *r.mutable_end_time() = r.start_time(); }, period),
      Make<Close>("close: empty key", "idempotency_key", close_base, [](Close& r) { r.set_idempotency_key(""); },
                  close),
      Make<Close>("close: no period", "period_id", close_base, [](Close& r) { r.set_period_id(""); }, close),
      Make<Close>("close: negative cut-off", "cutoff_sequence", close_base,
                  [](Close& r) { r.set_cutoff_sequence(-1); }, close),
      Make<Close>("close: cut-off beyond the ledger head", "cutoff_sequence", close_base,
                  [](Close& r) { r.set_cutoff_sequence(5); }, close),
      Make<Dispute>("dispute: empty key", "idempotency_key", dispute_base,
                    [](Dispute& r) { r.set_idempotency_key(""); }, dispute),
      Make<Dispute>("dispute: no statement", "statement_id", dispute_base,
                    [](Dispute& r) { r.set_statement_id(""); }, dispute),
      Make<Dispute>("dispute: no line", "line_id", dispute_base, [](Dispute& r) { r.set_line_id(""); }, dispute),
      Make<Dispute>("dispute: no reason", "reason", dispute_base, [](Dispute& r) { r.set_reason(""); }, dispute),
      Make<Dispute>("dispute: reason of 2001 characters", "reason", dispute_base,
                    [](Dispute& r) { r.set_reason(Accented(2001)); }, dispute),
      Make<Dispute>("dispute: amount in another currency", "disputed_amount.currency", dispute_base,
                    [](Dispute& r) { *r.mutable_disputed_amount() = Money(100, "USD"); }, dispute),
      Make<Resolve>("resolve: no dispute", "dispute_id", resolve_base, [](Resolve& r) { r.set_dispute_id(""); },
                    resolve),
      Make<Resolve>("resolve: unspecified resolution", "resolution", resolve_base,
                    [](Resolve& r) {
                      r.set_resolution(v1::DISPUTE_STATUS_UNSPECIFIED);
                      r.clear_adjustment();
                    },
                    resolve),
      Make<Resolve>("resolve: resolution OPEN", "resolution", resolve_base,
                    [](Resolve& r) {
                      r.set_resolution(v1::DISPUTE_STATUS_OPEN);
                      r.clear_adjustment();
                    },
                    resolve),
      Make<Resolve>("resolve: unknown resolution", "resolution", resolve_base,
                    [](Resolve& r) { r.set_resolution(static_cast<v1::DisputeStatus>(9)); }, resolve),
      Make<Resolve>("resolve: accepted without adjustment", "adjustment", resolve_base,
                    [](Resolve& r) { r.clear_adjustment(); }, resolve),
      Make<Resolve>("resolve: rejected with adjustment", "adjustment", resolve_base,
                    [](Resolve& r) { r.set_resolution(v1::DISPUTE_STATUS_REJECTED); }, resolve),
      Make<Resolve>("resolve: no note", "resolution_note", resolve_base,
                    [](Resolve& r) { r.set_resolution_note(""); }, resolve),
      Make<Resolve>("resolve: note of 2001 characters", "resolution_note", resolve_base,
                    [](Resolve& r) { r.set_resolution_note(Accented(2001)); }, resolve),
      Make<Resolve>("resolve: adjustment in another currency", "adjustment.currency", resolve_base,
                    [](Resolve& r) { *r.mutable_adjustment() = Money(-500, "USD"); }, resolve),
      Row{"authenticate: not 64 hex characters", "key_hash",
          [this] {
            v1::AuthenticateApiKeyRequest r;
            r.set_key_hash("abc");
            return settlement_->api_keys().AuthenticateApiKey(kService, r).status();
          }},
      Row{"authenticate: upper-case hex", "key_hash",
          [this] {
            v1::AuthenticateApiKeyRequest r;
            r.set_key_hash(std::string(64, 'A'));
            return settlement_->api_keys().AuthenticateApiKey(kService, r).status();
          }},
      Row{"finalize: no period", "period_id",
          [this] {
            v1::FinalizePeriodRequest r;
            r.set_idempotency_key("finalize-bad");
            return settlement_->period_close().FinalizePeriod(kFinance, r).status();
          }},
      Row{"statement: no selector", "selector",
          [this] { return settlement_->statement_queries().GetStatement(kBackoffice, {}).status(); }},
      Row{"export: no format", "format",
          [this] {
            v1::ExportPeriodRequest r;
            r.set_period_id("pe-x");
            return settlement_->statement_queries().ExportPeriod(kFinance, r).status();
          }},
      Row{"disputes: bad partner id", "partner_id",
          [this] {
            v1::ListDisputesRequest r;
            r.set_partner_id("a:b");
            return settlement_->disputes().ListDisputes(kBackoffice, r).status();
          }},
      Row{"audit: end before start", "end_time",
          [this] {
            v1::ListAuditEventsRequest r;
            *r.mutable_start_time() = ToProtoTime(absl::FromUnixSeconds(2000));
            *r.mutable_end_time() = ToProtoTime(absl::FromUnixSeconds(1000));
            return settlement_->audit_events().ListAuditEvents(kBackoffice, r).status();
          }},
  };
  RunRows(rows);
}

// The limits are inclusive, and lengths count characters, not bytes.
TEST_F(SettlementValidationTest, LimitsAreInclusiveAndCountCharacters) {
  v1::CreatePartnerRequest r;
  r.set_idempotency_key("partner-limits");
  *r.mutable_partner() = PartnerOf(std::string(40, 'p'));
  r.mutable_partner()->set_legal_name(Accented(200));
  r.mutable_partner()->set_display_name(Accented(100));
  for (int i = 0; i < 4; ++i) r.mutable_partner()->mutable_billing_contact()->add_address_lines(Accented(100));
  r.mutable_partner()->set_vat_id(std::string(32, 'V'));
  auto created = settlement_->partners().CreatePartner(kBackoffice, r);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->partner().legal_name(), Accented(200));
}

}  // namespace
}  // namespace loyalty::settlement
