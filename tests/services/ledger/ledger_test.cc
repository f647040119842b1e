// The ledger's behaviour against a real MariaDB: every path, its errors, and
// the invariants after each test.
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

namespace loyalty::ledger {
namespace {

using google::protobuf::util::TimeUtil;
using testing::EarnOf;

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    t_ = testing::MakeLedger();
    ASSERT_NE(t_, nullptr);
  }
  void TearDown() override {
    if (t_ != nullptr) {
      EXPECT_EQ(testing::CheckInvariants(*t_), "");
    }
  }

  Ledger& ledger() { return *t_->ledger; }

  int64_t Earn(const std::string& member, int64_t amount_minor, const std::string& partner = "vet") {
    auto r = ledger().Earn(caller_, EarnOf(NextKey(), partner, member, amount_minor));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->points() : -1;
  }

  int64_t Available(const std::string& member) {
    v1::GetBalanceRequest req;
    req.set_member_id(member);
    auto r = ledger().GetBalance(req);
    return r.ok() ? r->balance().available_points() : -1;
  }

  absl::StatusOr<v1::AuthorizeResponse> Authorize(const std::string& member, int64_t points,
                                                  const std::string& partner = "food",
                                                  int64_t ttl_seconds = 60) {
    v1::AuthorizeRequest req;
    req.set_idempotency_key(NextKey());
    req.set_member_id(member);
    req.set_partner_id(partner);
    req.set_points(points);
    req.set_ttl_seconds(ttl_seconds);
    return ledger().Authorize(caller_, req);
  }

  absl::StatusOr<v1::CaptureResponse> Capture(const std::string& hold_id, int64_t points) {
    v1::CaptureRequest req;
    req.set_idempotency_key(NextKey());
    req.set_hold_id(hold_id);
    req.set_points(points);
    return ledger().Capture(caller_, req);
  }

  std::string NextKey() { return absl::StrCat("k-", ++key_counter_); }

  std::unique_ptr<testing::LedgerUnderTest> t_;
  Caller caller_;
  int key_counter_ = 0;
};

// ---- Earn -------------------------------------------------------------------

TEST_F(LedgerTest, EarnComputesPointsCreatesLotAndCredits) {
  auto r = ledger().Earn(caller_, EarnOf("e1", "vet", "m1", 12345));  // EUR 123.45 at 1/EUR
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->points(), 123);  // rounded down
  EXPECT_EQ(r->breakdown().base_points(), 123);
  EXPECT_EQ(r->breakdown().tier_multiplier_bp(), 10000);
  EXPECT_EQ(r->breakdown().rounding_rule(), v1::ROUNDING_RULE_FLOOR_PER_COMPONENT);
  EXPECT_EQ(r->transfer().code(), v1::TRANSFER_CODE_EARN);
  EXPECT_EQ(r->transfer().debit_account(), "issuance:vet");
  EXPECT_EQ(r->transfer().credit_account(), "member:m1");
  EXPECT_EQ(r->transfer().sequence(), 1);
  EXPECT_EQ(r->lot().issuer_partner_id(), "vet");
  EXPECT_EQ(r->lot().remaining_points(), 123);
  EXPECT_GT(TimeUtil::TimestampToSeconds(r->lot().expires_at()),
            TimeUtil::TimestampToSeconds(r->lot().earned_at()) + 364 * 86400);
  EXPECT_EQ(r->balance().available_points(), 123);
  EXPECT_EQ(Available("m1"), 123);
}

TEST_F(LedgerTest, EarnAppliesTierMultiplierAndCampaign) {
  // gold: 1.5x. EUR 10.00 at vet = 10 base + 5 tier bonus.
  auto gold = ledger().Earn(caller_, EarnOf("g1", "vet", "gold-1", 1000));
  ASSERT_TRUE(gold.ok()) << gold.status();
  EXPECT_EQ(gold->breakdown().tier_id(), "gold");
  EXPECT_EQ(gold->breakdown().tier_bonus_points(), 5);
  EXPECT_EQ(gold->points(), 15);
  // food pays 2 points per EUR; "dog" lines get +100% from the campaign.
  auto dog = ledger().Earn(caller_, EarnOf("d1", "food", "m2", 1050, "dog"));
  ASSERT_TRUE(dog.ok()) << dog.status();
  EXPECT_EQ(dog->breakdown().base_points(), 21);
  ASSERT_EQ(dog->breakdown().campaign_bonuses_size(), 1);
  EXPECT_EQ(dog->breakdown().campaign_bonuses(0).campaign_id(), "double-dog");
  EXPECT_EQ(dog->breakdown().campaign_bonuses(0).bonus_points(), 21);
  EXPECT_EQ(dog->points(), 42);
  // The campaign is restricted to its category.
  auto cat = ledger().Earn(caller_, EarnOf("c1", "food", "m2", 1050, "cat"));
  ASSERT_TRUE(cat.ok());
  EXPECT_EQ(cat->points(), 21);
}

TEST_F(LedgerTest, EarnRefusals) {
  auto code = [&](v1::EarnRequest r) { return ledger().Earn(caller_, r).status(); };
  auto base = [&] { return EarnOf(NextKey(), "vet", "m1", 1000); };

  v1::EarnRequest r = base();
  r.set_partner_id("nobody");
  EXPECT_EQ(code(r).code(), absl::StatusCode::kNotFound);
  r = base();
  r.set_partner_id("closed-shop");
  EXPECT_EQ(code(r).code(), absl::StatusCode::kFailedPrecondition);
  r = base();
  r.set_member_id("frozen");
  EXPECT_EQ(code(r).code(), absl::StatusCode::kFailedPrecondition);

  struct Case {
    std::function<void(v1::EarnRequest&)> mutate;
    std::string field;
  };
  const std::vector<Case> invalid = {
      {[](auto& x) { x.set_idempotency_key(""); }, "idempotency_key"},
      {[](auto& x) { x.set_idempotency_key(std::string(200, 'k')); }, "idempotency_key"},
      {[](auto& x) { x.mutable_amount()->set_amount_minor(0); x.clear_lines(); }, "amount.amount_minor"},
      {[](auto& x) { x.mutable_amount()->set_amount_minor(-5); x.clear_lines(); }, "amount.amount_minor"},
      {[](auto& x) { x.mutable_amount()->set_currency("XYZ"); x.clear_lines(); }, "amount.currency"},
      {[](auto& x) { x.mutable_amount()->set_currency("USD"); x.clear_lines(); }, "amount.currency"},
      {[](auto& x) { x.mutable_lines(0)->mutable_amount()->set_amount_minor(1); }, "lines"},
      {[](auto& x) { x.set_member_id("bad id!"); }, "member_id"},
      {[](auto& x) { x.set_partner_id(""); }, "partner_id"},
      {[](auto& x) { x.clear_amount(); x.clear_lines(); }, "amount"},
      {[](auto& x) { (*x.mutable_metadata())["k"] = std::string(1000, 'v'); }, "metadata"},
      {[](auto& x) { *x.mutable_occurred_at() = TimeUtil::SecondsToTimestamp(4102444800); }, "occurred_at"},
  };
  for (const Case& c : invalid) {
    v1::EarnRequest bad = base();
    c.mutate(bad);
    absl::Status s = code(bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.field << ": " << s;
    EXPECT_TRUE(absl::StartsWith(s.message(), c.field)) << c.field << ": " << s;
  }
  EXPECT_EQ(Available("m1"), -1);  // nothing was ever credited: no account
}

TEST_F(LedgerTest, SameKeySameRequestReplaysDifferentRequestIsRefused) {
  v1::EarnRequest req = EarnOf("same-key", "vet", "m1", 5000);
  auto first = ledger().Earn(caller_, req);
  auto again = ledger().Earn(caller_, req);
  ASSERT_TRUE(first.ok() && again.ok());
  EXPECT_EQ(first->transfer().transfer_id(), again->transfer().transfer_id());
  EXPECT_EQ(first->SerializeAsString(), again->SerializeAsString());
  EXPECT_EQ(Available("m1"), 50);

  v1::EarnRequest changed = req;
  changed.mutable_amount()->set_amount_minor(6000);
  changed.mutable_lines(0)->mutable_amount()->set_amount_minor(6000);
  absl::Status s = ledger().Earn(caller_, changed).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(absl::StrContains(s.message(), "amount.amount_minor")) << s;

  // Another caller has its own key space.
  Caller other{.principal = "key:other"};
  v1::EarnRequest other_req = EarnOf("same-key", "vet", "m1", 5000);
  other_req.set_receipt_reference("other-receipt");
  EXPECT_TRUE(ledger().Earn(other, other_req).ok());
  // The same receipt under a new key is refused.
  v1::EarnRequest dup_receipt = EarnOf("fresh-key", "vet", "m1", 5000);
  dup_receipt.set_receipt_reference("same-key");
  EXPECT_EQ(ledger().Earn(caller_, dup_receipt).status().code(), absl::StatusCode::kAlreadyExists);
  // A key used for another method.
  v1::AuthorizeRequest auth;
  auth.set_idempotency_key("same-key");
  auth.set_member_id("m1");
  auth.set_partner_id("food");
  auth.set_points(1);
  absl::Status method = ledger().Authorize(caller_, auth).status();
  EXPECT_EQ(method.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(absl::StrContains(method.message(), "method")) << method;
}

TEST_F(LedgerTest, BusinessRefusalIsReplayedUnderItsKey) {
  v1::AuthorizeRequest req;
  req.set_idempotency_key("too-early");
  req.set_member_id("m1");
  req.set_partner_id("food");
  req.set_points(30);
  EXPECT_EQ(ledger().Authorize(caller_, req).status().code(), absl::StatusCode::kFailedPrecondition);
  Earn("m1", 10000);  // now there would be enough
  absl::Status replay = ledger().Authorize(caller_, req).status();
  EXPECT_EQ(replay.code(), absl::StatusCode::kFailedPrecondition) << replay;
  EXPECT_TRUE(absl::StrContains(replay.message(), "not enough points")) << replay;
  EXPECT_EQ(Available("m1"), 100);
}

// ---- Holds ------------------------------------------------------------------

TEST_F(LedgerTest, AuthorizeCapturePartialConsumesEarliestExpiringLotsFirst) {
  Earn("m1", 3000, "vet");      // lot A: 30 from vet
  Earn("m1", 2000, "groomer");  // lot B: 20 from groomer, expires a little later
  auto hold = Authorize("m1", 40);
  ASSERT_TRUE(hold.ok()) << hold.status();
  EXPECT_EQ(hold->hold().state(), v1::HOLD_STATE_PENDING);
  EXPECT_EQ(hold->balance().available_points(), 10);
  EXPECT_EQ(hold->balance().posted_points(), 50);

  auto captured = Capture(hold->hold().hold_id(), 35);
  ASSERT_TRUE(captured.ok()) << captured.status();
  const v1::Transfer& t = captured->transfer();
  EXPECT_EQ(t.code(), v1::TRANSFER_CODE_REDEEM);
  EXPECT_EQ(t.credit_account(), "redemption:food");
  EXPECT_EQ(t.points(), 35);
  ASSERT_EQ(t.allocations_size(), 2);
  EXPECT_EQ(t.allocations(0).issuer_partner_id(), "vet");
  EXPECT_EQ(t.allocations(0).points(), 30);
  EXPECT_EQ(t.allocations(1).issuer_partner_id(), "groomer");
  EXPECT_EQ(t.allocations(1).points(), 5);
  EXPECT_EQ(captured->hold().state(), v1::HOLD_STATE_CAPTURED);
  // The uncaptured 5 went back.
  EXPECT_EQ(captured->balance().available_points(), 15);
  EXPECT_EQ(captured->balance().pending_points(), 0);

  // A second capture, and a void, of a closed hold are refused.
  EXPECT_EQ(Capture(hold->hold().hold_id(), 1).status().code(), absl::StatusCode::kFailedPrecondition);
  v1::VoidRequest v;
  v.set_idempotency_key(NextKey());
  v.set_hold_id(hold->hold().hold_id());
  EXPECT_EQ(ledger().Void(caller_, v).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(LedgerTest, HoldRefusals) {
  Earn("m1", 1000);
  EXPECT_EQ(Authorize("m1", 11).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Authorize("m1", 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Authorize("m1", 5, "closed-shop").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Authorize("m1", 5, "ghost").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Authorize("frozen", 1).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Capture("hold_missing", 1).status().code(), absl::StatusCode::kNotFound);
  auto hold = Authorize("m1", 5);
  ASSERT_TRUE(hold.ok());
  EXPECT_EQ(Capture(hold->hold().hold_id(), 6).status().code(), absl::StatusCode::kInvalidArgument);
  // The hold's points are not available to a second hold.
  EXPECT_EQ(Authorize("m1", 6).status().code(), absl::StatusCode::kFailedPrecondition);
  // The TTL is capped, not refused.
  auto long_hold = Authorize("m1", 1, "food", 1'000'000);
  ASSERT_TRUE(long_hold.ok());
  EXPECT_LE(TimeUtil::TimestampToSeconds(long_hold->hold().expires_at()) -
                TimeUtil::TimestampToSeconds(long_hold->hold().created_at()),
            kMaxHoldTtlSeconds);
}

TEST_F(LedgerTest, VoidReleasesTheHold) {
  Earn("m1", 1000);
  auto hold = Authorize("m1", 7);
  ASSERT_TRUE(hold.ok());
  EXPECT_EQ(Available("m1"), 3);
  v1::VoidRequest v;
  v.set_idempotency_key("void-1");
  v.set_hold_id(hold->hold().hold_id());
  auto voided = ledger().Void(caller_, v);
  ASSERT_TRUE(voided.ok()) << voided.status();
  EXPECT_EQ(voided->hold().state(), v1::HOLD_STATE_VOIDED);
  EXPECT_EQ(voided->transfer().code(), v1::TRANSFER_CODE_HOLD_VOID);
  EXPECT_EQ(Available("m1"), 10);
  EXPECT_EQ(Capture(hold->hold().hold_id(), 0).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(LedgerTest, ExpiredHoldIsRefusedBeforeTheSweeperAndReleasedByIt) {
  Earn("m1", 1000);
  auto hold = Authorize("m1", 4, "food", 1);
  ASSERT_TRUE(hold.ok());
  absl::SleepFor(absl::Milliseconds(1100));
  absl::Status late = Capture(hold->hold().hold_id(), 0).status();
  EXPECT_EQ(late.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(late.message(), "expired")) << late;
  v1::GetHoldRequest get;
  get.set_hold_id(hold->hold().hold_id());
  EXPECT_EQ(ledger().GetHold(caller_, get)->hold().state(), v1::HOLD_STATE_EXPIRED);
  EXPECT_EQ(Available("m1"), 6);  // still held until the sweeper runs
  auto swept = ledger().SweepExpiredHolds(100);
  ASSERT_TRUE(swept.ok()) << swept.status();
  EXPECT_EQ(swept->holds_released(), 1);
  EXPECT_EQ(Available("m1"), 10);
  EXPECT_EQ(ledger().SweepExpiredHolds(100)->holds_released(), 0);
}

// ---- Prepaid ----------------------------------------------------------------

TEST_F(LedgerTest, APrepaidPartnerIssuesNoMoreThanItBought) {
  auto first = ledger().Earn(caller_, EarnOf("p1", "prepaid", "m1", 6000));  // 60 points
  ASSERT_TRUE(first.ok()) << first.status();
  auto too_much = ledger().Earn(caller_, EarnOf("p2", "prepaid", "m2", 5000));
  EXPECT_EQ(too_much.status().code(), absl::StatusCode::kFailedPrecondition) << too_much.status();
  EXPECT_NE(too_much.status().message().find("40 left, this needs 50"), std::string::npos)
      << too_much.status();
  ASSERT_TRUE(ledger().Earn(caller_, EarnOf("p3", "prepaid", "m2", 4000)).ok());  // exactly 100
  EXPECT_EQ(ledger().Earn(caller_, EarnOf("p4", "prepaid", "m2", 100)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // A return gives the partner its points back to issue again.
  v1::ReverseRequest r;
  r.set_idempotency_key("p-return");
  r.set_transfer_id(first->transfer().transfer_id());
  r.set_points(10);
  ASSERT_TRUE(ledger().Reverse(caller_, r).ok());
  EXPECT_TRUE(ledger().Earn(caller_, EarnOf("p5", "prepaid", "m3", 1000)).ok());
  EXPECT_EQ(ledger().Earn(caller_, EarnOf("p6", "prepaid", "m3", 100)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // A bonus funded by the partner counts against its blocks too.
  v1::GrantBonusRequest bonus;
  bonus.set_idempotency_key("p-bonus");
  bonus.set_member_id("m3");
  bonus.set_points(5);
  bonus.set_bonus_kind(v1::BONUS_KIND_COUPON);
  bonus.set_reason("coupon");
  bonus.set_funding_partner_id("prepaid");
  EXPECT_EQ(ledger().GrantBonus(caller_, bonus).status().code(), absl::StatusCode::kFailedPrecondition);
  // Other partners are not limited.
  EXPECT_TRUE(ledger().Earn(caller_, EarnOf("p7", "vet", "m3", 100000)).ok());

  // The refusals were not recorded under their keys: once the partner buys
  // a block, the same requests go through.
  auto more = std::make_shared<RulesSnapshot>(*t_->rules->Current());
  more->prepaid_limit_points["prepaid"] = 200;
  t_->rules->Replace(more);
  EXPECT_TRUE(ledger().Earn(caller_, EarnOf("p6", "prepaid", "m3", 100)).ok());
  EXPECT_TRUE(ledger().GrantBonus(caller_, bonus).ok());
}

TEST_F(LedgerTest, ConcurrentEarnsNeverIssueMoreThanThePrepaidBlocks) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  std::atomic<int> refused{0};
  for (int i = 0; i < 24; ++i) {
    threads.emplace_back([&, i] {
      auto r = ledger().Earn(caller_, EarnOf(absl::StrCat("c", i), "prepaid", absl::StrCat("m", i), 1000));
      if (r.ok()) {
        ok.fetch_add(1);
      } else if (r.status().code() == absl::StatusCode::kFailedPrecondition) {
        refused.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 10);  // 10 x 10 points = the 100 bought
  EXPECT_EQ(refused.load(), 14);
}

// ---- Campaign budgets ---------------------------------------------------------

TEST_F(LedgerTest, ABudgetedCampaignGivesNoBonusWithoutALease) {
  auto r = ledger().Earn(caller_, EarnOf("b0", "groomer", "m1", 1000));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->points(), 10);  // the base only
  ASSERT_EQ(r->breakdown().campaign_bonuses_size(), 1);
  EXPECT_EQ(r->breakdown().campaign_bonuses(0).bonus_points(), 0);
  EXPECT_EQ(r->breakdown().total_points(), 10);
}

TEST_F(LedgerTest, ConcurrentEarnsNeverSpendMoreThanTheLeasedBudget) {
  auto budgets = std::make_shared<CampaignBudgets>();
  budgets->Add("capped", {.lease_id = "l1", .granted = 60, .used = 0});
  budgets->Add("capped", {.lease_id = "l2", .granted = 45, .used = 0});
  auto rules = std::make_shared<RulesSnapshot>(*t_->rules->Current());
  rules->budgets = budgets;
  t_->rules->Replace(rules);

  std::atomic<int64_t> bonus_total{0};
  std::atomic<int> with_bonus{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&, i] {
      auto r = ledger().Earn(caller_, EarnOf(absl::StrCat("cb", i), "groomer", absl::StrCat("m", i), 1000));
      ASSERT_TRUE(r.ok()) << r.status();
      const int64_t bonus = r->points() - r->breakdown().base_points();
      bonus_total.fetch_add(bonus);
      if (bonus > 0) with_bonus.fetch_add(1);
    });
  }
  for (auto& t : threads) t.join();
  // 105 points on lease: ten bonuses of 10, and the last 5 cannot pay one.
  EXPECT_EQ(bonus_total.load(), 100);
  EXPECT_EQ(with_bonus.load(), 10);
  EXPECT_EQ(budgets->Remaining("capped"), 5);
  // A replay gives the original answer without spending again.
  auto replay = ledger().Earn(caller_, EarnOf("cb0", "groomer", "m0", 1000));
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(budgets->Remaining("capped"), 5);
}

// ---- First purchase at a new partner ---------------------------------------------

class FirstPurchaseTest : public LedgerTest {
 protected:
  void SetUp() override {
    LedgerTest::SetUp();
    ASSERT_NE(t_, nullptr);
    auto rules = std::make_shared<RulesSnapshot>(*t_->rules->Current());
    catalog::v1::Campaign& c = rules->campaigns.emplace_back();
    c.set_campaign_id("discovery");
    c.set_name("50 points for your first purchase at a new partner");
    c.set_state(catalog::v1::CAMPAIGN_STATE_ACTIVE);
    c.set_fixed_bonus_points(50);
    c.set_first_purchase_at_partner_only(true);
    c.add_partner_ids("vet");
    c.add_partner_ids("groomer");
    t_->rules->Replace(rules);
  }

  static bool HasDiscoveryBonus(const v1::EarnBreakdown& b) {
    for (const auto& bonus : b.campaign_bonuses()) {
      if (bonus.campaign_id() == "discovery") return bonus.bonus_points() == 50;
    }
    return false;
  }

  absl::StatusOr<v1::QuoteEarnResponse> Quote(const std::string& member, const std::string& partner) {
    v1::QuoteEarnRequest q;
    q.set_partner_id(partner);
    q.set_member_id(member);
    q.mutable_amount()->set_amount_minor(1000);
    q.mutable_amount()->set_currency("EUR");
    return ledger().QuoteEarn(caller_, q);
  }
};

TEST_F(FirstPurchaseTest, OnlyTheFirstEarnAtEachPartnerGetsTheBonus) {
  auto quote = Quote("m1", "vet");
  ASSERT_TRUE(quote.ok()) << quote.status();
  EXPECT_EQ(quote->points(), 60);
  EXPECT_TRUE(HasDiscoveryBonus(quote->breakdown()));

  auto first = ledger().Earn(caller_, EarnOf("fp1", "vet", "m1", 1000));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->points(), 60);
  EXPECT_TRUE(HasDiscoveryBonus(first->breakdown()));
  EXPECT_TRUE(HasDiscoveryBonus(first->transfer().earn_breakdown()));

  // The second purchase at the vet: the campaign does not apply at all.
  auto again = Quote("m1", "vet");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->points(), 10);
  EXPECT_EQ(again->breakdown().campaign_bonuses_size(), 0);
  auto second = ledger().Earn(caller_, EarnOf("fp2", "vet", "m1", 1000));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->points(), 10);
  EXPECT_EQ(second->breakdown().campaign_bonuses_size(), 0);

  // A new partner for the same member; and the vet is new to another member.
  EXPECT_EQ(ledger().Earn(caller_, EarnOf("fp3", "groomer", "m1", 1000))->points(), 60);
  EXPECT_EQ(ledger().Earn(caller_, EarnOf("fp4", "vet", "m2", 1000))->points(), 60);
  // Not at a partner the campaign does not name.
  EXPECT_EQ(ledger().Earn(caller_, EarnOf("fp5", "food", "m3", 1000))->points(), 20);
  // A replay of the first earn gives its original answer.
  auto replay = ledger().Earn(caller_, EarnOf("fp1", "vet", "m1", 1000));
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->points(), 60);
  EXPECT_EQ(replay->transfer().transfer_id(), first->transfer().transfer_id());
  EXPECT_EQ(Available("m1"), 130);
}

TEST_F(FirstPurchaseTest, AQuoteWithoutAMemberIsAtTheBaseTierWithNoMemberSpecificCampaign) {
  // 10 EUR at the vet, 1 point per EUR: 10 base points. The first-purchase
  // bonus depends on a member's history, so a quote for nobody leaves it out.
  auto anonymous = Quote("", "vet");
  ASSERT_TRUE(anonymous.ok()) << anonymous.status();
  EXPECT_EQ(anonymous->points(), 10);
  EXPECT_EQ(anonymous->breakdown().campaign_bonuses_size(), 0);
  EXPECT_EQ(anonymous->breakdown().tier_multiplier_bp(), 10'000);
  EXPECT_EQ(anonymous->breakdown().tier_bonus_points(), 0);
  // gold-1 (1.5x) gets 10 + 5 tier points + the 50-point first purchase.
  auto gold = Quote("gold-1", "vet");
  ASSERT_TRUE(gold.ok()) << gold.status();
  EXPECT_EQ(gold->points(), 65);
  // A quote writes nothing.
  EXPECT_EQ(*loyalty::testing::QueryIntForTest(*t_->pool, "SELECT COUNT(*) FROM transfers"), 0);
}

TEST_F(FirstPurchaseTest, AnEarnSinceReversedStillCountsAsAPurchase) {
  auto first = ledger().Earn(caller_, EarnOf("fr1", "vet", "m1", 1000));
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->points(), 60);
  v1::ReverseRequest r;
  r.set_idempotency_key("fr-rev");
  r.set_transfer_id(first->transfer().transfer_id());
  r.set_points(60);
  ASSERT_TRUE(ledger().Reverse(caller_, r).ok());
  // Returning the goods does not make the next purchase a first one again.
  EXPECT_EQ(ledger().Earn(caller_, EarnOf("fr2", "vet", "m1", 1000))->points(), 10);
}

TEST_F(FirstPurchaseTest, ConcurrentFirstPurchasesGetOneBonus) {
  std::atomic<int> with_bonus{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 12; ++i) {
    threads.emplace_back([&, i] {
      auto r = ledger().Earn(caller_, EarnOf(absl::StrCat("fc", i), "groomer", "m9", 1000));
      ASSERT_TRUE(r.ok()) << r.status();
      if (HasDiscoveryBonus(r->breakdown())) with_bonus.fetch_add(1);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(with_bonus.load(), 1);
  EXPECT_EQ(Available("m9"), 12 * 10 + 50);
}

TEST_F(FirstPurchaseTest, TwoReplicasOnOneDatabaseGiveOneBonus) {
  // A second ledger process in all but name: its own pool, store, rules and
  // writer on the same schema. The journal head serialises the two writers.
  auto pool = t_->db->NewPool(4);
  ASSERT_TRUE(pool.ok());
  std::unique_ptr<LedgerStore> store = NewMysqlLedgerStore(**pool);
  RulesCache rules(t_->rules->Current());
  BatchWriter writer(*store, rules, BatchWriterOptions{});
  Ledger replica(*store, rules, writer, *t_->members);

  std::atomic<int> with_bonus{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 12; ++i) {
    threads.emplace_back([&, i] {
      Ledger& l = i % 2 == 0 ? ledger() : replica;
      auto r = l.Earn(caller_, EarnOf(absl::StrCat("fr", i), "vet", "m7", 1000));
      ASSERT_TRUE(r.ok()) << r.status();
      if (HasDiscoveryBonus(r->breakdown())) with_bonus.fetch_add(1);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(with_bonus.load(), 1);
  EXPECT_EQ(Available("m7"), 12 * 10 + 50);
}

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

// ---- Adjust, bonus, expiry ------------------------------------------------------

TEST_F(LedgerTest, AdjustNeedsAReasonAndNeverOverdraws) {
  v1::AdjustRequest a;
  a.set_idempotency_key("adj-1");
  a.set_member_id("m1");
  a.set_direction(v1::ADJUST_DIRECTION_CREDIT);
  a.set_points(25);
  EXPECT_EQ(ledger().Adjust(caller_, a).status().code(), absl::StatusCode::kInvalidArgument);
  a.set_reason("goodwill after a lost parcel");  // same key: bad input did not use it up
  auto credit = ledger().Adjust(caller_, a);
  ASSERT_TRUE(credit.ok()) << credit.status();
  EXPECT_EQ(credit->transfer().debit_account(), "operator:adjustments");
  EXPECT_EQ(credit->lot().issuer_partner_id(), "");
  a.set_idempotency_key("adj-2");
  a.set_direction(v1::ADJUST_DIRECTION_DEBIT);
  a.set_points(26);
  EXPECT_EQ(ledger().Adjust(caller_, a).status().code(), absl::StatusCode::kFailedPrecondition);
  a.set_idempotency_key("adj-3");
  a.set_points(20);
  ASSERT_TRUE(ledger().Adjust(caller_, a).ok());
  EXPECT_EQ(Available("m1"), 5);

  v1::GrantBonusRequest b;
  b.set_idempotency_key("bonus-1");
  b.set_member_id("m1");
  b.set_points(100);
  b.set_reason("referral");
  EXPECT_EQ(ledger().GrantBonus(caller_, b).status().code(), absl::StatusCode::kInvalidArgument);
  b.set_bonus_kind(v1::BONUS_KIND_REFERRAL);
  b.set_funding_partner_id("vet");
  auto bonus = ledger().GrantBonus(caller_, b);
  ASSERT_TRUE(bonus.ok()) << bonus.status();
  EXPECT_EQ(bonus->transfer().debit_account(), "issuance:vet");
  EXPECT_EQ(Available("m1"), 105);
}

TEST_F(LedgerTest, ExpiryMovesExpiredLotsToBreakageOnceAndSparesHeldPoints) {
  Earn("m1", 3000, "vet");  // 30
  Earn("m2", 1000, "groomer");  // 10
  auto hold = Authorize("m1", 12);
  ASSERT_TRUE(hold.ok());
  // Make every lot expired.
  ASSERT_TRUE(loyalty::testing::ExecForTest(
                  t_->db->pool(), "UPDATE lots SET expires_at = NOW(6) - INTERVAL 1 DAY")
                  .ok());
  v1::RunExpiryRequest req;
  req.set_idempotency_key("expiry-1");
  req.set_max_lots(1);
  auto first = ledger().RunExpiry(caller_, req);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->lots_expired(), 1);
  EXPECT_TRUE(first->has_more());
  req.set_idempotency_key("expiry-2");
  req.set_max_lots(100);
  auto second = ledger().RunExpiry(caller_, req);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first->points_expired() + second->points_expired(), 18 + 10);  // 12 of m1 held
  req.set_idempotency_key("expiry-3");
  EXPECT_EQ(ledger().RunExpiry(caller_, req)->points_expired(), 0);  // nothing twice
  EXPECT_EQ(Available("m1"), 0);
  v1::GetAccountRequest acct;
  acct.set_account("breakage:vet");
  EXPECT_EQ(ledger().GetAccount(caller_, acct)->account().balance().posted_points(), 18);
  // The held points can still be captured.
  ASSERT_TRUE(Capture(hold->hold().hold_id(), 0).ok());
  *req.mutable_as_of() = TimeUtil::SecondsToTimestamp(4102444800);
  req.set_idempotency_key("expiry-future");
  EXPECT_EQ(ledger().RunExpiry(caller_, req).status().code(), absl::StatusCode::kInvalidArgument);
}

// ---- Queries and the journal -------------------------------------------------

TEST_F(LedgerTest, StatementPagingLotsAndQualifyingPoints) {
  for (int i = 0; i < 5; ++i) Earn("m1", 1000 * (i + 1));
  auto hold = Authorize("m1", 3);
  ASSERT_TRUE(Capture(hold->hold().hold_id(), 0).ok());
  v1::ListTransfersRequest list;
  list.set_member_id("m1");
  list.set_page_size(4);
  auto page1 = ledger().ListTransfers(caller_, list);
  ASSERT_TRUE(page1.ok()) << page1.status();
  ASSERT_EQ(page1->transfers_size(), 4);
  EXPECT_GT(page1->transfers(0).sequence(), page1->transfers(1).sequence());  // newest first
  list.set_page_token(page1->next_page_token());
  auto page2 = ledger().ListTransfers(caller_, list);
  ASSERT_TRUE(page2.ok());
  EXPECT_EQ(page2->transfers_size(), 3);  // 5 earns + hold + redeem = 7
  EXPECT_TRUE(page2->next_page_token().empty());
  list.clear_page_token();
  list.add_codes(v1::TRANSFER_CODE_REDEEM);
  EXPECT_EQ(ledger().ListTransfers(caller_, list)->transfers_size(), 1);
  list.set_page_token("garbage");
  EXPECT_EQ(ledger().ListTransfers(caller_, list).status().code(), absl::StatusCode::kInvalidArgument);

  // An account's history: every transfer that debits or credits it.
  v1::ListTransfersRequest by_account;
  by_account.set_account("issuance:vet");
  EXPECT_EQ(ledger().ListTransfers(caller_, by_account)->transfers_size(), 5);
  by_account.set_account("redemption:food");
  EXPECT_EQ(ledger().ListTransfers(caller_, by_account)->transfers_size(), 2);  // hold + redeem
  by_account.set_account("member:m1");
  EXPECT_EQ(ledger().ListTransfers(caller_, by_account)->transfers_size(), 7);
  by_account.set_account("nonsense");
  EXPECT_EQ(ledger().ListTransfers(caller_, by_account).status().code(), absl::StatusCode::kInvalidArgument);

  // Text with quotes, backslashes, control characters and non-ASCII survives
  // the write path byte for byte.
  const std::string odd = "rcpt \"7\"\\x\t\n\x01 caf\xc3\xa9 \xe2\x9c\x93";
  v1::EarnRequest tricky = EarnOf("tricky", "vet", "m1", 1000);
  tricky.set_receipt_reference(odd);
  (*tricky.mutable_metadata())["note"] = odd;
  auto stored = ledger().Earn(caller_, tricky);
  ASSERT_TRUE(stored.ok()) << stored.status();
  v1::GetTransferRequest get;
  get.set_transfer_id(stored->transfer().transfer_id());
  auto fetched = ledger().GetTransfer(caller_, get);
  ASSERT_TRUE(fetched.ok());
  EXPECT_EQ(fetched->transfer().reference(), odd);
  EXPECT_EQ(fetched->transfer().metadata().at("note"), odd);
  v1::ListTransfersRequest by_reference;
  by_reference.set_member_id("m1");
  by_reference.set_reference(odd);
  EXPECT_EQ(ledger().ListTransfers(caller_, by_reference)->transfers_size(), 1);

  v1::ListLotsRequest lots;
  lots.set_member_id("m1");
  auto open = ledger().ListLots(lots);
  ASSERT_TRUE(open.ok());
  EXPECT_EQ(open->lots_size(), 6);  // 6 earns; the first lot still has 7 left
  EXPECT_EQ(open->lots(0).remaining_points(), 7);

  v1::GetQualifyingPointsRequest q;
  q.add_member_ids("m1");
  q.add_member_ids("nobody");
  *q.mutable_start_time() = TimeUtil::GetCurrentTime();
  q.mutable_start_time()->set_seconds(q.start_time().seconds() - 3600);
  *q.mutable_end_time() = TimeUtil::GetCurrentTime();
  q.mutable_end_time()->set_seconds(q.end_time().seconds() + 3600);
  auto qp = ledger().GetQualifyingPoints(q);
  ASSERT_TRUE(qp.ok()) << qp.status();
  EXPECT_EQ(qp->members(0).qualifying_points(), 160);  // redemptions do not reduce it
  EXPECT_EQ(qp->members(1).qualifying_points(), 0);
}

TEST_F(LedgerTest, JournalIsGapFreeAndTamperingIsDetected) {
  for (int i = 0; i < 4; ++i) Earn(absl::StrCat("m", i), 1000);
  v1::ReadJournalRequest read;
  read.set_after_sequence(1);
  read.set_page_size(2);
  auto page = ledger().ReadJournal(read);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->transfers_size(), 2);
  EXPECT_EQ(page->transfers(0).sequence(), 2);
  EXPECT_EQ(page->transfers(0).prev_hash(), page->transfers(0).prev_hash());
  EXPECT_EQ(page->head_sequence(), 4);
  EXPECT_EQ(page->last_sequence(), 3);

  auto ok = ledger().VerifyChain(v1::VerifyChainRequest());
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->verified_count(), 4);
  EXPECT_EQ(ok->first_bad_sequence(), 0);

  // Someone with database access moves a point.
  ASSERT_TRUE(loyalty::testing::ExecForTest(t_->db->pool(),
                                            "UPDATE transfers SET points = points + 1 WHERE sequence = 3")
                  .ok());
  auto bad = ledger().VerifyChain(v1::VerifyChainRequest());
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->first_bad_sequence(), 3) << bad->detail();
  ASSERT_TRUE(loyalty::testing::ExecForTest(t_->db->pool(),
                                            "UPDATE transfers SET points = points - 1 WHERE sequence = 3")
                  .ok());
  // Or rewrites a body and its hash, which breaks the link to the next.
  ASSERT_TRUE(loyalty::testing::ExecForTest(
                  t_->db->pool(),
                  "UPDATE transfers SET hash = REPEAT('a', 64) WHERE sequence = 2").ok());
  auto relinked = ledger().VerifyChain(v1::VerifyChainRequest());
  ASSERT_TRUE(relinked.ok());
  EXPECT_EQ(relinked->first_bad_sequence(), 2);
  ASSERT_TRUE(loyalty::testing::ExecForTest(
                  t_->db->pool(),
                  "UPDATE transfers t JOIN transfers n ON n.sequence = 3 SET t.hash = n.prev_hash "
                  "WHERE t.sequence = 2").ok());
  // Or moves a transfer in time (e.g. into a qualifying window).
  ASSERT_TRUE(loyalty::testing::ExecForTest(
                  t_->db->pool(),
                  "UPDATE transfers SET created_at = created_at - INTERVAL 1 DAY WHERE sequence = 4").ok());
  auto moved = ledger().VerifyChain(v1::VerifyChainRequest());
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(moved->first_bad_sequence(), 4) << moved->detail();
  ASSERT_TRUE(loyalty::testing::ExecForTest(
                  t_->db->pool(),
                  "UPDATE transfers SET created_at = created_at + INTERVAL 1 DAY WHERE sequence = 4").ok());
  v1::VerifyChainRequest beyond;
  beyond.set_to_sequence(99);
  EXPECT_EQ(ledger().VerifyChain(beyond).status().code(), absl::StatusCode::kOutOfRange);
}

TEST_F(LedgerTest, IdsAndReceiptsCompareByteForByte) {
  // Not case-insensitive, not PAD SPACE: these are four different keys.
  Earn("Bob", 1000);
  Earn("bob", 2000);
  EXPECT_EQ(Available("Bob"), 10);
  EXPECT_EQ(Available("bob"), 20);
  v1::EarnRequest r1 = EarnOf("rc-1", "vet", "m1", 1000);
  r1.set_receipt_reference("R1");
  v1::EarnRequest r1_space = EarnOf("rc-2", "vet", "m1", 1000);
  r1_space.set_receipt_reference("R1 ");
  EXPECT_TRUE(ledger().Earn(caller_, r1).ok());
  auto second = ledger().Earn(caller_, r1_space);
  EXPECT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(Available("m1"), 20);
}

TEST_F(LedgerTest, AFullyReturnedPurchaseStopsQualifyingEvenWhenNothingIsClawedBack) {
  auto earn = ledger().Earn(caller_, EarnOf("buy", "vet", "m1", 4000));  // 40
  ASSERT_TRUE(earn.ok());
  auto hold = Authorize("m1", 40);
  ASSERT_TRUE(Capture(hold->hold().hold_id(), 0).ok());  // all spent
  v1::ReverseRequest r;
  r.set_idempotency_key("return");
  r.set_transfer_id(earn->transfer().transfer_id());
  auto rev = ledger().Reverse(caller_, r);
  ASSERT_TRUE(rev.ok()) << rev.status();
  EXPECT_EQ(rev->shortfall_points(), 40);
  EXPECT_EQ(rev->remaining_reversible_points(), 0);
  v1::GetQualifyingPointsRequest q;
  q.add_member_ids("m1");
  *q.mutable_start_time() = TimeUtil::SecondsToTimestamp(TimeUtil::GetCurrentTime().seconds() - 60);
  *q.mutable_end_time() = TimeUtil::SecondsToTimestamp(TimeUtil::GetCurrentTime().seconds() + 60);
  EXPECT_EQ(ledger().GetQualifyingPoints(q)->members(0).qualifying_points(), 0);
}

TEST_F(LedgerTest, HeldLotsDoNotStallExpiry) {
  Earn("held", 1000);  // the oldest lot, entirely on hold
  ASSERT_TRUE(Authorize("held", 10).ok());
  Earn("free", 1000);
  ASSERT_TRUE(loyalty::testing::ExecForTest(
                  t_->db->pool(), "UPDATE lots SET expires_at = NOW(6) - INTERVAL 1 DAY").ok());
  v1::RunExpiryRequest req;
  req.set_idempotency_key("exp-1");
  req.set_max_lots(1);
  auto run = ledger().RunExpiry(caller_, req);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->points_expired(), 10);  // the free member's lot, not stuck behind the held one
  EXPECT_EQ(Available("free"), 0);
  EXPECT_EQ(Available("held"), 0);
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

TEST_F(LedgerTest, OverlongReferencesAreRefusedNotInternal) {
  Earn("m1", 1000);
  auto hold = Authorize("m1", 5);
  ASSERT_TRUE(hold.ok());
  v1::CaptureRequest c;
  c.set_idempotency_key("cap-long");
  c.set_hold_id(hold->hold().hold_id());
  c.set_reference(std::string(200, 'r'));
  absl::Status s = ledger().Capture(caller_, c).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StartsWith(s.message(), "reference")) << s;
}

// ---- Concurrency ---------------------------------------------------------------

TEST_F(LedgerTest, FiftyParallelRedemptionsAgainstTenSucceedExactlyTenTimes) {
  Earn("m1", 10000);  // 100 points = 10 redemptions of 10
  std::atomic<int> captured{0}, refused{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 50; ++i) {
    threads.emplace_back([&, i] {
      v1::AuthorizeRequest a;
      a.set_idempotency_key(absl::StrCat("par-a-", i));
      a.set_member_id("m1");
      a.set_partner_id("food");
      a.set_points(10);
      auto hold = ledger().Authorize(caller_, a);
      if (!hold.ok()) {
        EXPECT_EQ(hold.status().code(), absl::StatusCode::kFailedPrecondition) << hold.status();
        ++refused;
        return;
      }
      v1::CaptureRequest c;
      c.set_idempotency_key(absl::StrCat("par-c-", i));
      c.set_hold_id(hold->hold().hold_id());
      auto done = ledger().Capture(caller_, c);
      EXPECT_TRUE(done.ok()) << done.status();
      if (done.ok()) ++captured;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(captured.load(), 10);
  EXPECT_EQ(refused.load(), 40);
  EXPECT_EQ(Available("m1"), 0);
}

TEST_F(LedgerTest, RetryStormOfOneKeyPostsOnce) {
  const v1::EarnRequest req = EarnOf("storm", "vet", "m1", 7000);
  std::vector<std::string> transfer_ids(20);
  std::vector<std::thread> threads;
  for (int i = 0; i < 20; ++i) {
    threads.emplace_back([&, i] {
      auto r = ledger().Earn(caller_, req);
      EXPECT_TRUE(r.ok()) << r.status();
      if (r.ok()) transfer_ids[i] = r->transfer().transfer_id();
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& id : transfer_ids) EXPECT_EQ(id, transfer_ids[0]);
  EXPECT_EQ(Available("m1"), 70);
  EXPECT_EQ(*loyalty::testing::QueryIntForTest(t_->db->pool(), "SELECT COUNT(*) FROM transfers"), 1);
}

TEST(LedgerNaive, OneTransactionPerRequestGivesTheSameAnswers) {
  auto t = testing::MakeLedger(/*batching=*/false);
  ASSERT_NE(t, nullptr);
  Caller caller;
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      for (int j = 0; j < 10; ++j) {
        auto r = t->ledger->Earn(caller, EarnOf(absl::StrCat("n-", i, "-", j), "vet", "m1", 100));
        EXPECT_TRUE(r.ok()) << r.status();
      }
    });
  }
  for (auto& th : threads) th.join();
  v1::GetBalanceRequest b;
  b.set_member_id("m1");
  EXPECT_EQ(t->ledger->GetBalance(b)->balance().posted_points(), 80);
  EXPECT_EQ(testing::CheckInvariants(*t), "");
}

}  // namespace
}  // namespace loyalty::ledger
