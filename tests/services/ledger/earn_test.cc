// Earn against a real MariaDB (services/ledger/earn.h): points, tiers and
// campaigns, refusals, prepaid partners, campaign budgets, first purchases.
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
#include "tests/services/ledger/ledger_test_base.h"

namespace loyalty::ledger {
namespace {

using google::protobuf::util::TimeUtil;
using testing::EarnOf;

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

}  // namespace
}  // namespace loyalty::ledger
