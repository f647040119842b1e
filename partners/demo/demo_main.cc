// loyalty-demo: a day in the coalition, end to end, against running services.
//
//   1. seeds three partners with contracts (vet clinic, pet-food maker,
//      groomer), a tier ladder, rewards and a campaign;
//   2. enrols members;
//   3. runs a day: earns at the vet, a redemption at the pet-food till with
//      the vet's points, a tier upgrade, a reward voucher honoured, a return;
//   4. closes the settlement period;
//   5. prints each partner's statement and the netting.
//
// Every call carries a fixed idempotency key ("demo-..."), so running the
// demo again changes nothing and prints the same figures. deploy/quickstart.sh
// runs it once the platform is up.
//
//   loyalty-demo [--keys_file=.data/keys/dev-keys.txt] [--membership=H:P]
//                [--ledger=H:P] [--settlement=H:P] [--catalog=H:P]
// (or LOYALTY_DEV_KEYS_FILE and LOYALTY_<SERVICE>_ADDR, as quickstart sets).
// The keys file holds "<label> <key>" lines (backoffice, finance, service,
// partner:vet-clinic, partner:pet-food, partner:groomer), as quickstart
// writes it. Exit code 0 on success, 1 when a step fails (the step and the
// error are printed).
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/money/currency.h"
#include "common/text/table.h"
#include "common/time/proto_time.h"
#include "loyalty/catalog/v1/catalog.grpc.pb.h"
#include "loyalty/membership/v1/membership.grpc.pb.h"
#include "loyalty/settlement/v1/settlement.grpc.pb.h"
#include "partners/sdk/loyalty_sdk.h"

namespace loyalty::demo {
namespace {

namespace cv1 = ::loyalty::catalog::v1;
namespace lv1 = ::loyalty::ledger::v1;
namespace mv1 = ::loyalty::membership::v1;
namespace sv1 = ::loyalty::settlement::v1;

constexpr char kVet[] = "vet-clinic";
constexpr char kFood[] = "pet-food";
constexpr char kGroomer[] = "groomer";
constexpr char kPeriodName[] = "demo-period";

struct Settings {
  std::string keys_file = ".data/keys/dev-keys.txt";
  std::map<std::string, std::string> targets = {{"membership", "127.0.0.1:7101"},
                                                {"ledger", "127.0.0.1:7102"},
                                                {"settlement", "127.0.0.1:7103"},
                                                {"catalog", "127.0.0.1:7104"}};
};

// A failed step: what the demo was doing and what the platform said.
struct StepFailed {
  std::string step;
  sdk::Error error;
};

template <typename T>
T Must(const std::string& step, sdk::Result<T> result) {
  if (!result.ok()) throw StepFailed{step, result.error()};
  return result.value();
}

std::string Money(const common::v1::Money& m) { return money::FormatMinor(m.amount_minor(), m.currency()); }

common::v1::Money Eur(int64_t minor) {
  common::v1::Money m;
  m.set_amount_minor(minor);
  m.set_currency("EUR");
  return m;
}

class Demo {
 public:
  Demo(const Settings& settings, std::map<std::string, std::string> keys)
      : settings_(settings), keys_(std::move(keys)) {}

  void Run() {
    Seed();
    Enrol();
    Day();
    Close();
    Print();
  }

 private:
  sdk::ClientOptions Options(const std::string& service, const std::string& key_label) const {
    sdk::ClientOptions o;
    o.target = settings_.targets.at(service);
    o.api_key = keys_.at(key_label);
    o.deadline = absl::Seconds(30);
    o.max_attempts = 8;  // a freshly started platform may still be warming up
    return o;
  }

  // An admin call through the SDK's engine (key, deadline, retries).
  template <typename Service, typename Req, typename Resp>
  sdk::Result<Resp> Admin(const std::string& service, const std::string& key_label,
                          grpc::Status (Service::Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                          Req request) {
    sdk::internal::Caller caller(Options(service, key_label));
    auto stub = Service::NewStub(caller.channel());
    return caller.Unary(*stub, method, std::move(request));
  }

  // The start of the current month (UTC): the contracts' effective date.
  static absl::Time MonthStart() {
    return absl::FromCivil(absl::CivilMonth(absl::ToCivilSecond(absl::Now(), absl::UTCTimeZone())),
                           absl::UTCTimeZone());
  }

  // ---- 1. seed ------------------------------------------------------------
  void Seed() {
    std::cout << "== 1. Seeding partners, contracts, tiers, rewards and a campaign\n";
    const absl::Time month = MonthStart();
    SeedPartner(kVet, "Happy Paws Veterinary Clinic GmbH", "Happy Paws Vet", sv1::BUSINESS_CATEGORY_VET_CLINIC,
                1000, 1000, 800, 5000, month);
    SeedPartner(kFood, "Crunchy Bowl Pet Food AG", "Crunchy Bowl", sv1::BUSINESS_CATEGORY_PET_FOOD, 2000, 900, 850,
                3000, month);
    SeedPartner(kGroomer, "Fluffy Cuts Grooming SARL", "Fluffy Cuts", sv1::BUSINESS_CATEGORY_GROOMING, 1000, 1000,
                800, 2000, month);

    mv1::SetTierLadderRequest ladder;
    ladder.set_idempotency_key("demo-ladder");
    ladder.mutable_ladder()->set_qualification_window_months(12);
    int rank = 0;
    for (const auto& [id, name, threshold, bp] : std::vector<std::tuple<std::string, std::string, int64_t, int64_t>>{
             {"silver", "Silver", 0, 10000}, {"gold", "Gold", 150, 12500}, {"platinum", "Platinum", 2000, 15000}}) {
      auto* t = ladder.mutable_ladder()->add_tiers();
      t->set_tier_id(id);
      t->set_name(name);
      t->set_rank(rank++);
      t->set_qualifying_points_threshold(threshold);
      t->set_tier_multiplier_bp(bp);
      t->set_retention_months(12);
    }
    Must("tier ladder", Admin<mv1::MembershipService>("membership", "backoffice",
                                                      &mv1::MembershipService::Stub::SetTierLadder, ladder));
    std::cout << "   tiers: Silver (1x), Gold from 150 qualifying points (1.25x), Platinum from 2000 (1.5x)\n";

    dog_food_reward_ = SeedReward("demo-reward-dogfood", kFood, "5 kg bag of dog food", "pet-food", 200);
    checkup_reward_ = SeedReward("demo-reward-checkup", kVet, "Free annual check-up", "veterinary", 500);

    cv1::CreateCampaignRequest campaign;
    campaign.set_idempotency_key("demo-campaign");
    campaign.mutable_campaign()->set_name("Double points on dog food at Crunchy Bowl");
    campaign.mutable_campaign()->set_bonus_rate_bp(10000);
    campaign.mutable_campaign()->add_partner_ids(kFood);
    campaign.mutable_campaign()->add_categories("dog-food");
    *campaign.mutable_campaign()->mutable_start_time() = ToProtoTime(month);
    const auto created = Must("campaign", Admin<cv1::CatalogService>("catalog", "backoffice",
                                                                    &cv1::CatalogService::Stub::CreateCampaign,
                                                                    campaign));
    cv1::SetCampaignStateRequest active;
    active.set_idempotency_key("demo-campaign-active");
    active.set_campaign_id(created.campaign().campaign_id());
    active.set_state(cv1::CAMPAIGN_STATE_ACTIVE);
    Must("campaign activation", Admin<cv1::CatalogService>("catalog", "backoffice",
                                                           &cv1::CatalogService::Stub::SetCampaignState, active));
    std::cout << "   campaign: double points on dog food at Crunchy Bowl\n";
  }

  void SeedPartner(const std::string& id, const std::string& legal, const std::string& display,
                   sv1::BusinessCategory category, int64_t earn_rate_milli, int64_t price_per_1000,
                   int64_t reimbursement_per_1000, int64_t monthly_fee, absl::Time effective_from) {
    sv1::CreatePartnerRequest partner;
    partner.set_idempotency_key(absl::StrCat("demo-partner-", id));
    sv1::Partner& p = *partner.mutable_partner();
    p.set_partner_id(id);
    p.set_legal_name(legal);
    p.set_display_name(display);
    p.set_business_category(category);
    p.set_country("DE");
    p.set_settlement_currency("EUR");
    p.mutable_billing_contact()->set_name("Accounts payable");
    p.mutable_billing_contact()->set_email(absl::StrCat("billing@", id, ".example"));
    Must("partner " + id, Admin<sv1::SettlementService>("settlement", "backoffice",
                                                         &sv1::SettlementService::Stub::CreatePartner, partner));
    sv1::CreateContractVersionRequest contract;
    contract.set_idempotency_key(absl::StrCat("demo-contract-", id));
    sv1::Contract& c = *contract.mutable_contract();
    c.set_partner_id(id);
    *c.mutable_effective_from() = ToProtoTime(effective_from);
    c.set_earn_currency("EUR");
    c.set_earn_rate_milli_points_per_unit(earn_rate_milli);
    *c.mutable_issue_price_per_1000_points() = Eur(price_per_1000);
    *c.mutable_reimbursement_per_1000_points() = Eur(reimbursement_per_1000);
    c.set_breakage_share_bp(5000);
    *c.mutable_monthly_fee() = Eur(monthly_fee);
    c.set_funding_model(sv1::FUNDING_MODEL_POSTPAID);
    Must("contract " + id, Admin<sv1::SettlementService>("settlement", "backoffice",
                                                          &sv1::SettlementService::Stub::CreateContractVersion,
                                                          contract));
    sv1::SetPartnerStatusRequest status;
    status.set_idempotency_key(absl::StrCat("demo-activate-", id));
    status.set_partner_id(id);
    status.set_status(sv1::PARTNER_STATUS_ACTIVE);
    status.set_reason("contract signed");
    Must("activate " + id, Admin<sv1::SettlementService>("settlement", "backoffice",
                                                          &sv1::SettlementService::Stub::SetPartnerStatus, status));
    std::cout << "   partner " << id << ": " << earn_rate_milli / 1000 << " point(s) per EUR, pays "
              << money::FormatMinor(price_per_1000, "EUR") << " per 1000 points issued, receives "
              << money::FormatMinor(reimbursement_per_1000, "EUR") << " per 1000 honoured\n";
  }

  std::string SeedReward(const std::string& key, const std::string& partner, const std::string& name,
                         const std::string& category, int64_t price) {
    cv1::CreateRewardRequest reward;
    reward.set_idempotency_key(key);
    cv1::Reward& r = *reward.mutable_reward();
    auto* n = r.add_names();
    n->set_language("en");
    n->set_text(name);
    r.set_reward_type(cv1::REWARD_TYPE_FREE_ITEM);
    r.set_points_price(price);
    r.set_partner_id(partner);
    r.set_category(category);
    r.set_stock_available(25);
    const auto created = Must("reward " + name, Admin<cv1::CatalogService>(
                                                    "catalog", "backoffice", &cv1::CatalogService::Stub::CreateReward,
                                                    reward));
    cv1::SetRewardStateRequest active;
    active.set_idempotency_key(key + "-active");
    active.set_reward_id(created.reward().reward_id());
    active.set_state(cv1::REWARD_STATE_ACTIVE);
    Must("reward activation", Admin<cv1::CatalogService>("catalog", "backoffice",
                                                         &cv1::CatalogService::Stub::SetRewardState, active));
    std::cout << "   reward: " << name << " (" << price << " points, honoured by " << partner << ")\n";
    return created.reward().reward_id();
  }

  // ---- 2. enrol -----------------------------------------------------------
  std::string EnrolOne(const std::string& partner, const std::string& given, const std::string& family,
                       const std::string& email) {
    sdk::MembershipClient membership(Options("membership", "partner:" + partner));
    mv1::EnrolRequest r;
    r.set_idempotency_key(absl::StrCat("demo-enrol-", given));
    r.set_given_name(given);
    r.set_family_name(family);
    r.set_email(email);
    r.set_preferred_language("en");
    r.set_enrolling_partner_id(partner);
    r.set_terms_version("2025-01");
    r.set_privacy_version("2025-01");
    const auto enrolled = Must("enrol " + given, membership.Enrol(r));
    std::cout << "   " << given << " " << family << " enrolled at " << partner << ": member "
              << enrolled.member().member_id() << ", card " << enrolled.card().card_number() << "\n";
    return enrolled.member().member_id();
  }

  void Enrol() {
    std::cout << "== 2. Enrolling members\n";
    anna_ = EnrolOne(kVet, "Anna", "Schmidt", "anna.schmidt@example.com");
    ben_ = EnrolOne(kFood, "Ben", "Keller", "ben.keller@example.com");
  }

  // ---- 3. a day -----------------------------------------------------------
  // What an earn must see before the demo posts it.
  using Ready = std::function<bool(const lv1::QuoteEarnResponse&)>;

  // The ledger learns partners, campaigns and tiers from feeds it polls
  // (--earn_rules_refresh_ms), so what was seeded a moment ago reaches it a
  // refresh later. Quotes the earn (which posts nothing) until the quote is
  // accepted and `ready` holds, for at most a minute; then the earn that
  // follows computes from the rules the demo has just set up.
  void AwaitLedger(const std::string& what, const sdk::LedgerClient& ledger, const lv1::EarnRequest& earn,
                   const Ready& ready) {
    lv1::QuoteEarnRequest quote;
    quote.set_partner_id(earn.partner_id());
    quote.set_member_id(earn.member_id());
    *quote.mutable_amount() = earn.amount();
    *quote.mutable_lines() = earn.lines();
    const absl::Time deadline = absl::Now() + absl::Minutes(1);
    for (;;) {
      auto quoted = ledger.QuoteEarn(quote);
      if (quoted.ok() && ready(quoted.value())) return;
      // NOT_FOUND or FAILED_PRECONDITION: the partner is not known or not
      // active there yet. Anything else is a real failure.
      const bool catching_up = quoted.ok() || quoted.error().code == sdk::ErrorCode::kNotFound ||
                               quoted.error().code == sdk::ErrorCode::kRejected ||
                               quoted.error().code == sdk::ErrorCode::kUnavailable;
      if (!catching_up || absl::Now() > deadline) {
        if (!quoted.ok()) throw StepFailed{"quote before " + what, quoted.error()};
        sdk::Error late;
        late.code = sdk::ErrorCode::kDeadlineExceeded;
        late.grpc_code = grpc::StatusCode::DEADLINE_EXCEEDED;
        late.message = "the ledger did not apply the seeded rules within a minute; last quote: " +
                       quoted.value().ShortDebugString();
        throw StepFailed{"quote before " + what, late};
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
  }

  int64_t Earn(const std::string& key, const std::string& partner, const std::string& member, int64_t minor,
               const std::string& category, const Ready& ready) {
    sdk::LedgerClient ledger(Options("ledger", "partner:" + partner));
    lv1::EarnRequest r;
    r.set_idempotency_key(key);
    r.set_partner_id(partner);
    r.set_member_id(member);
    *r.mutable_amount() = Eur(minor);
    r.set_receipt_reference(key);
    auto* line = r.add_lines();
    line->set_category(category);
    line->set_quantity(1);
    *line->mutable_amount() = Eur(minor);
    AwaitLedger("earn " + key, ledger, r, ready);
    const auto e = Must("earn " + key, ledger.Earn(r));
    std::cout << "   " << partner << ": " << Money(r.amount()) << " of " << category << " -> " << e.points()
              << " points (base " << e.breakdown().base_points() << ", tier " << e.breakdown().tier_bonus_points()
              << ", campaigns " << e.points() - e.breakdown().base_points() - e.breakdown().tier_bonus_points()
              << "); balance " << e.balance().available_points() << "\n";
    return e.points();
  }

  static bool Accepted(const lv1::QuoteEarnResponse&) { return true; }
  static bool WithCampaign(const lv1::QuoteEarnResponse& q) { return q.breakdown().campaign_bonuses_size() > 0; }
  static bool WithTierBonus(const lv1::QuoteEarnResponse& q) { return q.breakdown().tier_bonus_points() > 0; }

  void Day() {
    std::cout << "== 3. A day in the coalition\n";
    const int64_t vet_points = Earn("demo-earn-vet-1", kVet, anna_, 18000, "veterinary", Accepted);
    Earn("demo-earn-food-1", kFood, ben_, 6000, "dog-food", WithCampaign);
    earn_to_return_ = "demo-earn-food-1";

    // Anna spends the vet's points at the pet-food till: authorise, capture.
    sdk::LedgerClient food_till(Options("ledger", std::string("partner:") + kFood));
    lv1::AuthorizeRequest hold;
    hold.set_idempotency_key("demo-hold-1");
    hold.set_member_id(anna_);
    hold.set_partner_id(kFood);
    hold.set_points(100);
    hold.set_ttl_seconds(300);
    hold.set_reference("TILL-7-0001");
    const auto held = Must("authorise at pet-food", food_till.Authorize(hold));
    lv1::CaptureRequest capture;
    capture.set_idempotency_key("demo-capture-1");
    capture.set_hold_id(held.hold().hold_id());
    capture.set_points(100);
    capture.set_reference("TILL-7-0001");
    const auto captured = Must("capture at pet-food", food_till.Capture(capture));
    std::cout << "   pet-food till: Anna pays with 100 of the " << vet_points << " points she earned at the vet"
              << " (transfer " << captured.transfer().transfer_id() << ")\n";

    // Tier review: Anna's 180 qualifying points make her Gold.
    mv1::EvaluateTierRequest review;
    review.set_idempotency_key("demo-tier-anna");
    review.set_member_id(anna_);
    const auto tier = Must("tier review", Admin<mv1::MembershipService>(
                                              "membership", "backoffice", &mv1::MembershipService::Stub::EvaluateTier,
                                              review));
    std::cout << "   tier review: Anna is now " << tier.tier().tier_name() << "\n";
    Earn("demo-earn-groomer-1", kGroomer, anna_, 4000, "grooming", WithTierBonus);

    // Ben redeems the dog food reward for a voucher; Crunchy Bowl honours it.
    sdk::CatalogClient food_catalog(Options("catalog", std::string("partner:") + kFood));
    cv1::RedeemRequest redeem;
    redeem.set_idempotency_key("demo-redeem-ben");
    redeem.set_member_id(ben_);
    redeem.set_reward_id(dog_food_reward_);
    redeem.set_channel_partner_id(kFood);
    const auto voucher = Must("redeem reward", food_catalog.Redeem(redeem));
    cv1::HonourVoucherRequest honour;
    honour.set_idempotency_key("demo-honour-ben");
    honour.set_voucher_code(voucher.voucher().voucher_code());
    honour.set_partner_id(kFood);
    honour.set_reference("ORDER-5501");
    const auto honoured = Must("honour voucher", food_catalog.HonourVoucher(honour));
    std::cout << "   voucher " << honoured.voucher().voucher_code() << " for \"" << honoured.voucher().reward_name()
              << "\" (" << honoured.voucher().points() << " points) honoured by Crunchy Bowl\n";

    // Ben returns half of his dog food: the pet-food maker reverses part of the earn.
    sdk::LedgerClient food_ledger(Options("ledger", std::string("partner:") + kFood));
    lv1::EarnRequest replay;  // the earn's transfer id, by replaying its key
    replay.set_idempotency_key(earn_to_return_);
    replay.set_partner_id(kFood);
    replay.set_member_id(ben_);
    *replay.mutable_amount() = Eur(6000);
    replay.set_receipt_reference(earn_to_return_);
    auto* line = replay.add_lines();
    line->set_category("dog-food");
    line->set_quantity(1);
    *line->mutable_amount() = Eur(6000);
    const auto original = Must("find the earn to return", food_ledger.Earn(replay));
    lv1::ReverseRequest ret;
    ret.set_idempotency_key("demo-return-ben");
    ret.set_transfer_id(original.transfer().transfer_id());
    *ret.mutable_refund_amount() = Eur(3000);
    ret.set_reference("RETURN-5502");
    ret.set_reason("half of the order returned");
    const auto reversed = Must("return", food_ledger.Reverse(ret));
    std::cout << "   return at pet-food: EUR 30.00 refunded; of the " << reversed.reversed_points()
              << " points it earned, " << reversed.transfer().points() << " are taken back and "
              << reversed.shortfall_points() << " were already spent (recorded as shortfall)\n";
  }

  // ---- 4. close -----------------------------------------------------------
  void Close() {
    std::cout << "== 4. Closing the settlement period\n";
    // The demo's period is found by name on a re-run, so it is never made twice.
    sv1::ListPeriodsRequest list;
    list.set_page_size(100);
    const auto periods = Must("list periods", Admin<sv1::SettlementService>(
                                                  "settlement", "finance", &sv1::SettlementService::Stub::ListPeriods,
                                                  list));
    for (const auto& p : periods.periods()) {
      if (p.name() == kPeriodName) period_id_ = p.period_id();
    }
    if (period_id_.empty()) {
      sv1::CreatePeriodRequest create;
      create.set_idempotency_key(absl::StrCat("demo-period-", absl::ToUnixSeconds(absl::Now())));
      create.set_name(kPeriodName);
      // From the contracts' start, so that the monthly fees are charged for
      // the whole period.
      *create.mutable_start_time() = ToProtoTime(MonthStart());
      const absl::Time end = absl::Now() + absl::Seconds(2);
      *create.mutable_end_time() = ToProtoTime(end);
      const auto created = Must("create period", Admin<sv1::SettlementService>(
                                                     "settlement", "finance",
                                                     &sv1::SettlementService::Stub::CreatePeriod, create));
      period_id_ = created.period().period_id();
      absl::SleepFor(end - absl::Now() + absl::Milliseconds(200));
    }
    sv1::ClosePeriodRequest close;
    close.set_idempotency_key("demo-close");
    close.set_period_id(period_id_);
    const auto closed = Must("close period", Admin<sv1::SettlementService>(
                                                 "settlement", "finance", &sv1::SettlementService::Stub::ClosePeriod,
                                                 close));
    std::cout << "   period " << kPeriodName << ": " << closed.transfers_processed() << " ledger transfers counted, "
              << closed.statements_created() << " statements\n";
    sv1::FinalizePeriodRequest finalize;
    finalize.set_idempotency_key("demo-finalize");
    finalize.set_period_id(period_id_);
    Must("finalize period", Admin<sv1::SettlementService>("settlement", "finance",
                                                          &sv1::SettlementService::Stub::FinalizePeriod, finalize));
  }

  // ---- 5. print -----------------------------------------------------------
  void Print() {
    std::cout << "== 5. Statements (positive net: the partner pays the operator)\n";
    sv1::ListStatementsRequest list;
    list.set_period_id(period_id_);
    list.set_page_size(100);
    const auto statements = Must("statements", Admin<sv1::SettlementService>(
                                                   "settlement", "finance",
                                                   &sv1::SettlementService::Stub::ListStatements, list));
    std::vector<std::vector<std::string>> rows;
    std::vector<std::vector<std::string>> matrix;
    for (const auto& s : statements.statements()) {
      rows.push_back({s.partner_id(), absl::StrCat(s.issued_points() - s.issue_reversed_points()),
                      Money(s.issue_amount()), absl::StrCat(s.honoured_points() - s.honour_reversed_points()),
                      Money(s.reimbursement_amount()), Money(s.fee_amount()), Money(s.net_amount())});
      sv1::GetStatementRequest get;  // the list leaves out lines and the matrix
      get.set_statement_id(s.statement_id());
      const auto full = Must("statement " + s.partner_id(),
                             Admin<sv1::SettlementService>("settlement", "finance",
                                                           &sv1::SettlementService::Stub::GetStatement, get));
      for (const auto& cell : full.statement().issuer_redeemer()) {
        // Each statement lists the cells it is party to; print each once.
        if (s.partner_id() != cell.redeemer_partner_id()) continue;
        matrix.push_back({cell.issuer_partner_id().empty() ? "(operator)" : cell.issuer_partner_id(),
                          cell.redeemer_partner_id(),
                          absl::StrCat(cell.honoured_points() - cell.reversed_points())});
      }
    }
    std::cout << text::Table({"PARTNER", "ISSUED", "ISSUE PRICE", "HONOURED", "REIMBURSED", "FEES", "NET"}, rows);
    if (!statements.statements().empty()) {
      const auto& s = statements.statements(0);
      std::cout << "   journal range " << s.first_sequence() << ".." << s.last_sequence() << ", chain hash at its end "
                << s.end_hash().substr(0, 16) << "...\n";
    }
    std::cout << "\n== Whose points were honoured where\n"
              << text::Table({"ISSUER", "HONOURED AT", "POINTS"}, matrix);

    sv1::ComputeNettingRequest netting;
    netting.set_period_id(period_id_);
    const auto net = Must("netting", Admin<sv1::SettlementService>("settlement", "finance",
                                                                   &sv1::SettlementService::Stub::ComputeNetting,
                                                                   netting));
    for (const auto& result : net.results()) {
      std::cout << "\n== Netting (" << result.currency() << ")\n";
      std::vector<std::vector<std::string>> payments;
      for (const auto& pay : result.payments()) {
        payments.push_back({pay.payer_id(), pay.payee_id(), Money(pay.amount())});
      }
      std::cout << text::Table({"PAYER", "PAYEE", "AMOUNT"}, payments);
      std::cout << "   gross " << Money(result.gross_total()) << ", net " << Money(result.net_total())
                << ", saving " << Money(result.saving()) << "\n";
    }
  }

  const Settings& settings_;
  std::map<std::string, std::string> keys_;
  std::string dog_food_reward_;
  std::string checkup_reward_;
  std::string anna_;
  std::string ben_;
  std::string earn_to_return_;
  std::string period_id_;
};

}  // namespace
}  // namespace loyalty::demo

int main(int argc, char** argv) {
  using namespace loyalty::demo;
  Settings settings;
  // deploy/quickstart.sh passes the endpoints and the keys file this way.
  if (const char* f = std::getenv("LOYALTY_DEV_KEYS_FILE"); f != nullptr && *f != '\0') settings.keys_file = f;
  for (auto& [service, target] : settings.targets) {
    const std::string var = absl::StrCat("LOYALTY_", absl::AsciiStrToUpper(service), "_ADDR");
    if (const char* v = std::getenv(var.c_str()); v != nullptr && *v != '\0') target = v;
  }
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const std::pair<std::string, std::string> kv = absl::StrSplit(a, absl::MaxSplits('=', 1));
    const std::string name = absl::StripPrefix(kv.first, "--").data();
    if (name == "keys_file") {
      settings.keys_file = kv.second;
    } else if (settings.targets.contains(name)) {
      settings.targets[name] = kv.second;
    } else {
      std::cerr << "usage: loyalty-demo [--keys_file=F] [--membership=H:P] [--ledger=H:P] [--settlement=H:P]"
                   " [--catalog=H:P]\n";
      return 2;
    }
  }
  std::map<std::string, std::string> keys;
  std::ifstream in(settings.keys_file);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (words.size() == 2) keys[words[0]] = words[1];
  }
  for (const char* needed : {"backoffice", "finance", "partner:vet-clinic", "partner:pet-food", "partner:groomer"}) {
    if (!keys.contains(needed)) {
      std::cerr << "loyalty-demo: no '" << needed << "' key in " << settings.keys_file
                << " (deploy/quickstart.sh writes it)\n";
      return 2;
    }
  }
  try {
    Demo(settings, std::move(keys)).Run();
  } catch (const StepFailed& failed) {
    std::cerr << "loyalty-demo: step '" << failed.step << "' failed: " << failed.error.ToString() << "\n";
    return 1;
  }
  return 0;
}
