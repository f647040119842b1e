// What the ledger tells about accounts, and to whom it gives points, against
// a real MariaDB:
//  - GetBalance: pending_points are the points held by open holds;
//  - credits only to member ids membership issued (MemberDirectory);
//  - ListAccounts: paged, filtered by kind and partner, partners see only
//    their own, and every account read through it sums to zero.
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/testing/test_db.h"
#include "gtest/gtest.h"
#include "tests/services/ledger/ledger_fixture.h"

namespace loyalty::ledger {
namespace {

using testing::EarnOf;

class LedgerAccountsTest : public ::testing::Test {
 protected:
  void SetUp() override { Make({}); }
  void TearDown() override {
    if (t_ != nullptr) {
      EXPECT_EQ(testing::CheckInvariants(*t_), "");
    }
  }

  void Make(MemberDirectory::Lookup lookup) {
    t_ = testing::MakeLedger(true, 8, std::move(lookup));
    ASSERT_NE(t_, nullptr);
  }

  Ledger& ledger() { return *t_->ledger; }
  std::string NextKey() { return absl::StrCat("k-", ++keys_); }

  absl::StatusOr<v1::EarnResponse> Earn(const std::string& member, int64_t amount_minor,
                                        const std::string& partner = "vet") {
    return ledger().Earn(backoffice_, EarnOf(NextKey(), partner, member, amount_minor));
  }

  absl::StatusOr<v1::AuthorizeResponse> Authorize(const std::string& member, int64_t points,
                                                  const std::string& partner = "food") {
    v1::AuthorizeRequest req;
    req.set_idempotency_key(NextKey());
    req.set_member_id(member);
    req.set_partner_id(partner);
    req.set_points(points);
    req.set_ttl_seconds(600);
    return ledger().Authorize(backoffice_, req);
  }

  int64_t Count(const std::string& sql, const std::vector<std::string>& params = {}) {
    absl::StatusOr<int64_t> n = loyalty::testing::QueryIntForTest(*t_->pool, sql, params);
    EXPECT_TRUE(n.ok()) << n.status();
    return n.value_or(-1);
  }

  // Every page of ListAccounts for `request`, as `caller`.
  absl::StatusOr<std::vector<v1::Account>> ListAll(v1::ListAccountsRequest request, const Caller& caller) {
    std::vector<v1::Account> out;
    for (int page = 0; page < 100; ++page) {
      absl::StatusOr<v1::ListAccountsResponse> r = ledger().ListAccounts(caller, request);
      if (!r.ok()) return r.status();
      for (const v1::Account& a : r->accounts()) out.push_back(a);
      if (r->next_page_token().empty()) return out;
      request.set_page_token(r->next_page_token());
    }
    return absl::InternalError("more than 100 pages");
  }

  static std::vector<std::string> Names(const std::vector<v1::Account>& accounts) {
    std::vector<std::string> names;
    for (const v1::Account& a : accounts) names.push_back(a.account());
    return names;
  }

  // Earns at the vet and at food, holds at food, and captures part: every
  // kind of account then exists.
  void MakeActivity() {
    ASSERT_TRUE(Earn("m1", 10'000).ok());            // 100 points, vet
    ASSERT_TRUE(Earn("m2", 5'000, "food").ok());     // 2 per EUR: 100 points
    auto hold = Authorize("m1", 40);
    ASSERT_TRUE(hold.ok()) << hold.status();
    v1::CaptureRequest capture;
    capture.set_idempotency_key(NextKey());
    capture.set_hold_id(hold->hold().hold_id());
    capture.set_points(25);
    ASSERT_TRUE(ledger().Capture(backoffice_, capture).ok());
    ASSERT_TRUE(Authorize("m2", 30).ok());           // left open
    v1::AdjustRequest adjust;
    adjust.set_idempotency_key(NextKey());
    adjust.set_member_id("m3");
    adjust.set_direction(v1::ADJUST_DIRECTION_CREDIT);
    adjust.set_points(7);
    adjust.set_reason("goodwill");
    ASSERT_TRUE(ledger().Adjust(backoffice_, adjust).ok());
  }

  std::unique_ptr<testing::LedgerUnderTest> t_;
  Caller backoffice_{.principal = "key:backoffice"};
  int keys_ = 0;
};

// ---- GetBalance -------------------------------------------------------------------------

TEST_F(LedgerAccountsTest, PendingPointsAreThePointsHeldByOpenHolds) {
  ASSERT_TRUE(Earn("m1", 10'000).ok());  // 100 EUR at 1 point per EUR
  ASSERT_TRUE(Authorize("m1", 30).ok());
  v1::GetBalanceRequest req;
  req.set_member_id("m1");
  auto balance = ledger().GetBalance(req);
  ASSERT_TRUE(balance.ok()) << balance.status();
  EXPECT_EQ(balance->balance().posted_points(), 100);
  EXPECT_EQ(balance->balance().debits_pending(), 30);
  EXPECT_EQ(balance->balance().pending_points(), 30);  // not -30
  EXPECT_EQ(balance->balance().available_points(), 70);
}

TEST_F(LedgerAccountsTest, AnIssuedMemberWithNoAccountYetHasAZeroBalance) {
  Make([](const std::string& member_id) -> absl::Status {
    return member_id == "enrolled-just-now" ? absl::OkStatus() : absl::NotFoundError("never issued");
  });
  v1::GetBalanceRequest req;
  req.set_member_id("enrolled-just-now");
  auto balance = ledger().GetBalance(req);
  ASSERT_TRUE(balance.ok()) << balance.status();
  EXPECT_EQ(balance->balance().account(), "member:enrolled-just-now");
  EXPECT_EQ(balance->balance().posted_points(), 0);
  EXPECT_EQ(balance->balance().available_points(), 0);
  req.set_member_id("never-issued");
  EXPECT_EQ(ledger().GetBalance(req).status().code(), absl::StatusCode::kNotFound);
}

// ---- Member ids ---------------------------------------------------------------------------

TEST_F(LedgerAccountsTest, PointsGoOnlyToMemberIdsMembershipIssued) {
  std::vector<std::string> asked;
  Make([&asked](const std::string& member_id) -> absl::Status {
    asked.push_back(member_id);
    if (member_id == "enrolled-just-now") return absl::OkStatus();
    if (member_id == "membership-down") return absl::UnavailableError("membership unavailable");
    return absl::NotFoundError("never issued");
  });
  // A member the feed has brought (the fixture's snapshot): nobody is asked.
  ASSERT_TRUE(Earn("gold-1", 1'000).ok());
  EXPECT_TRUE(asked.empty());
  // Enrolled since the last poll: asked once, then remembered.
  ASSERT_TRUE(Earn("enrolled-just-now", 1'000).ok());
  ASSERT_TRUE(Earn("enrolled-just-now", 1'000).ok());
  EXPECT_EQ(asked, std::vector<std::string>{"enrolled-just-now"});
  EXPECT_EQ(t_->members->lookups(), 1);

  // A mistyped id: NOT_FOUND naming the field, for every way of crediting.
  absl::StatusOr<v1::EarnResponse> typo = Earn("gold-l", 1'000);
  EXPECT_EQ(typo.status().code(), absl::StatusCode::kNotFound) << typo.status();
  EXPECT_TRUE(absl::StartsWith(typo.status().message(), "member_id:")) << typo.status();
  v1::GrantBonusRequest bonus;
  bonus.set_idempotency_key(NextKey());
  bonus.set_member_id("gold-l");
  bonus.set_points(10);
  bonus.set_bonus_kind(v1::BONUS_KIND_GOODWILL);
  bonus.set_reason("sorry");
  EXPECT_EQ(ledger().GrantBonus(backoffice_, bonus).status().code(), absl::StatusCode::kNotFound);
  v1::AdjustRequest adjust;
  adjust.set_idempotency_key(NextKey());
  adjust.set_member_id("gold-l");
  adjust.set_direction(v1::ADJUST_DIRECTION_CREDIT);
  adjust.set_points(10);
  adjust.set_reason("goodwill");
  EXPECT_EQ(ledger().Adjust(backoffice_, adjust).status().code(), absl::StatusCode::kNotFound);
  v1::QuoteEarnRequest quote;
  quote.set_partner_id("vet");
  quote.set_member_id("gold-l");
  quote.mutable_amount()->set_amount_minor(1'000);
  quote.mutable_amount()->set_currency("EUR");
  EXPECT_EQ(ledger().QuoteEarn(backoffice_, quote).status().code(), absl::StatusCode::kNotFound);
  // Membership unreachable: UNAVAILABLE, never points on a guess.
  EXPECT_EQ(Earn("membership-down", 1'000).status().code(), absl::StatusCode::kUnavailable);

  // Nothing of it was written: no account, no transfer, no lot.
  for (const std::string id : {"gold-l", "membership-down"}) {
    EXPECT_EQ(Count("SELECT COUNT(*) FROM accounts WHERE account = ?", {"member:" + id}), 0) << id;
    EXPECT_EQ(Count("SELECT COUNT(*) FROM transfers WHERE member_id = ?", {id}), 0) << id;
    EXPECT_EQ(Count("SELECT COUNT(*) FROM lots WHERE member_id = ?", {id}), 0) << id;
  }
  // 1 EUR at 1 point per EUR, three earns that were accepted.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM transfers"), 3);
}

// ---- ListAccounts -------------------------------------------------------------------------

TEST_F(LedgerAccountsTest, ListAccountsPagesThroughEveryKindInNameOrder) {
  ASSERT_NO_FATAL_FAILURE(MakeActivity());
  v1::ListAccountsRequest all;
  all.set_page_size(2);  // several pages
  auto listed = ListAll(all, backoffice_);
  ASSERT_TRUE(listed.ok()) << listed.status();
  // Non-member accounts only, in name order: the vet and food issued, food
  // honoured (captured 25), the operator credited m3 by adjustment.
  EXPECT_EQ(Names(*listed), (std::vector<std::string>{"issuance:food", "issuance:vet", "operator:adjustments",
                                                      "redemption:food"}));
  for (const v1::Account& a : *listed) {
    if (a.account() == "issuance:vet") {
      EXPECT_EQ(a.kind(), v1::ACCOUNT_KIND_ISSUANCE);
      EXPECT_EQ(a.partner_id(), "vet");
      EXPECT_EQ(a.balance().posted_points(), -100);
      EXPECT_TRUE(a.has_created_at());
    }
    if (a.account() == "redemption:food") {
      EXPECT_EQ(a.kind(), v1::ACCOUNT_KIND_REDEMPTION);
      EXPECT_EQ(a.balance().posted_points(), 25);
      EXPECT_EQ(a.balance().credits_pending(), 30);  // m2's open hold
    }
    if (a.account() == "operator:adjustments") {
      EXPECT_EQ(a.kind(), v1::ACCOUNT_KIND_OPERATOR);
      EXPECT_EQ(a.partner_id(), "");
      EXPECT_EQ(a.balance().posted_points(), -7);
    }
  }

  v1::ListAccountsRequest issuance;
  issuance.set_kind(v1::ACCOUNT_KIND_ISSUANCE);
  EXPECT_EQ(Names(*ListAll(issuance, backoffice_)), (std::vector<std::string>{"issuance:food", "issuance:vet"}));
  v1::ListAccountsRequest food;
  food.set_partner_id("food");
  EXPECT_EQ(Names(*ListAll(food, backoffice_)), (std::vector<std::string>{"issuance:food", "redemption:food"}));
  v1::ListAccountsRequest members;
  members.set_kind(v1::ACCOUNT_KIND_MEMBER);
  members.set_page_size(1);
  auto member_accounts = ListAll(members, backoffice_);
  ASSERT_TRUE(member_accounts.ok()) << member_accounts.status();
  EXPECT_EQ(Names(*member_accounts), (std::vector<std::string>{"member:m1", "member:m2", "member:m3"}));
  EXPECT_EQ((*member_accounts)[0].member_id(), "m1");
  // m1: 100 earned, 25 captured; m2: 100 earned, 30 held.
  EXPECT_EQ((*member_accounts)[0].balance().posted_points(), 75);
  EXPECT_EQ((*member_accounts)[1].balance().pending_points(), 30);
  EXPECT_EQ((*member_accounts)[1].balance().available_points(), 70);

  // A token is bound to its filters.
  v1::ListAccountsRequest first_page;
  first_page.set_page_size(1);
  auto page = ledger().ListAccounts(backoffice_, first_page);
  ASSERT_TRUE(page.ok());
  v1::ListAccountsRequest other_filter = issuance;
  other_filter.set_page_token(page->next_page_token());
  auto refused = ledger().ListAccounts(backoffice_, other_filter);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
  // Member and operator accounts belong to no partner.
  v1::ListAccountsRequest nonsense;
  nonsense.set_kind(v1::ACCOUNT_KIND_MEMBER);
  nonsense.set_partner_id("vet");
  EXPECT_EQ(ledger().ListAccounts(backoffice_, nonsense).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(LedgerAccountsTest, APartnerListsOnlyItsOwnAccounts) {
  ASSERT_NO_FATAL_FAILURE(MakeActivity());
  const Caller food{.principal = "key:food", .partner_id = "food"};
  auto own = ListAll(v1::ListAccountsRequest(), food);
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_EQ(Names(*own), (std::vector<std::string>{"issuance:food", "redemption:food"}));
  v1::ListAccountsRequest own_filter;
  own_filter.set_partner_id("food");
  own_filter.set_kind(v1::ACCOUNT_KIND_REDEMPTION);
  EXPECT_EQ(Names(*ListAll(own_filter, food)), (std::vector<std::string>{"redemption:food"}));

  v1::ListAccountsRequest another;
  another.set_partner_id("vet");
  EXPECT_EQ(ledger().ListAccounts(food, another).status().code(), absl::StatusCode::kPermissionDenied);
  for (v1::AccountKind kind : {v1::ACCOUNT_KIND_MEMBER, v1::ACCOUNT_KIND_OPERATOR}) {
    v1::ListAccountsRequest r;
    r.set_kind(kind);
    EXPECT_EQ(ledger().ListAccounts(food, r).status().code(), absl::StatusCode::kPermissionDenied) << kind;
  }
}

TEST_F(LedgerAccountsTest, EveryAccountReadThroughListAccountsSumsToZero) {
  ASSERT_NO_FATAL_FAILURE(MakeActivity());
  // Some more: a return of m2's food purchase, and an expiry-free debit.
  v1::AdjustRequest debit;
  debit.set_idempotency_key(NextKey());
  debit.set_member_id("m1");
  debit.set_direction(v1::ADJUST_DIRECTION_DEBIT);
  debit.set_points(5);
  debit.set_reason("correction");
  ASSERT_TRUE(ledger().Adjust(backoffice_, debit).ok());

  v1::ListAccountsRequest non_members;
  non_members.set_page_size(3);
  v1::ListAccountsRequest members;
  members.set_kind(v1::ACCOUNT_KIND_MEMBER);
  members.set_page_size(2);
  auto a = ListAll(non_members, backoffice_);
  auto b = ListAll(members, backoffice_);
  ASSERT_TRUE(a.ok() && b.ok());
  std::set<std::string> seen;
  int64_t posted = 0;
  int64_t credits_pending = 0;
  int64_t debits_pending = 0;
  for (const auto* list : {&*a, &*b}) {
    for (const v1::Account& account : *list) {
      EXPECT_TRUE(seen.insert(account.account()).second) << "listed twice: " << account.account();
      posted += account.balance().posted_points();
      credits_pending += account.balance().credits_pending();
      debits_pending += account.balance().debits_pending();
      if (account.kind() == v1::ACCOUNT_KIND_MEMBER) {
        EXPECT_GE(account.balance().available_points(), 0);
      }
    }
  }
  // Every account of the table was listed once.
  EXPECT_EQ(static_cast<int64_t>(seen.size()), Count("SELECT COUNT(*) FROM accounts"));
  EXPECT_EQ(posted, 0);
  EXPECT_EQ(credits_pending, debits_pending);
  EXPECT_EQ(debits_pending, 30);  // m2's open hold
}

}  // namespace
}  // namespace loyalty::ledger
