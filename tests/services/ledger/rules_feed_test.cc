// The earn-rules refresher: feeds from settlement, membership and catalog,
// merged with the rules file, swapped into the cache. Feeds are plain
// functions here, scripted per test; no network, no database.

#include "services/ledger/rules_feed.h"

#include <algorithm>
#include <deque>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "services/ledger/earn_rules.h"

namespace loyalty::ledger {
namespace {

namespace cv1 = ::loyalty::catalog::v1;
namespace mv1 = ::loyalty::membership::v1;
namespace sv1 = ::loyalty::settlement::v1;

sv1::PartnerSnapshot Partner(const std::string& id, int64_t version,
                             sv1::PartnerStatus status = sv1::PARTNER_STATUS_ACTIVE,
                             int64_t rate_milli = 1000) {
  sv1::PartnerSnapshot p;
  p.set_partner_id(id);
  p.set_status(status);
  p.set_settlement_currency("EUR");
  p.set_version(version);
  auto* c = p.add_contracts();
  c->set_earn_rate_milli_points_per_unit(rate_milli);
  c->set_earn_currency("EUR");
  return p;
}

mv1::MemberSnapshot Member(const std::string& id, int64_t version, mv1::MemberStatus status,
                           const std::string& tier = "") {
  mv1::MemberSnapshot m;
  m.set_member_id(id);
  m.set_status(status);
  m.set_tier_id(tier);
  m.set_version(version);
  return m;
}

// A feed that answers from a script: each call pops the next answer and
// records the cursor it was asked for. An empty script answers "nothing new".
template <typename Resp>
struct ScriptedFeed {
  std::deque<absl::StatusOr<Resp>> answers;
  std::vector<int64_t> cursors;

  std::function<absl::StatusOr<Resp>(int64_t)> Fn() {
    return [this](int64_t cursor) -> absl::StatusOr<Resp> {
      cursors.push_back(cursor);
      if (answers.empty()) {
        Resp idle;
        if constexpr (std::is_same_v<Resp, cv1::GetActiveEarnRulesResponse>) {
          idle.set_version(cursor);
          idle.set_not_modified(true);
        } else {
          idle.set_last_version(cursor);
        }
        return idle;
      }
      absl::StatusOr<Resp> next = std::move(answers.front());
      answers.pop_front();
      return next;
    };
  }
};

sv1::ListPartnerSnapshotsResponse PartnerPage(std::vector<sv1::PartnerSnapshot> snapshots, bool has_more) {
  sv1::ListPartnerSnapshotsResponse r;
  for (auto& s : snapshots) {
    r.set_last_version(std::max(r.last_version(), s.version()));
    *r.add_snapshots() = std::move(s);
  }
  r.set_has_more(has_more);
  return r;
}

mv1::ListMemberSnapshotsResponse MemberPage(std::vector<mv1::MemberSnapshot> snapshots, bool has_more,
                                            int64_t ladder_version = 1) {
  mv1::ListMemberSnapshotsResponse r;
  for (auto& s : snapshots) {
    r.set_last_version(std::max(r.last_version(), s.version()));
    *r.add_snapshots() = std::move(s);
  }
  r.set_has_more(has_more);
  r.mutable_ladder()->set_version(ladder_version);
  auto* gold = r.mutable_ladder()->add_tiers();
  gold->set_tier_id("gold");
  gold->set_tier_multiplier_bp(15000);
  return r;
}

cv1::GetActiveEarnRulesResponse Campaigns(int64_t version, std::vector<std::string> ids) {
  cv1::GetActiveEarnRulesResponse r;
  r.set_version(version);
  for (const auto& id : ids) {
    auto* c = r.add_campaigns();
    c->set_campaign_id(id);
    c->set_state(cv1::CAMPAIGN_STATE_ACTIVE);
  }
  return r;
}

class RulesFeedTest : public ::testing::Test {
 protected:
  RulesFeedTest() : cache_(std::make_shared<RulesSnapshot>()) {}

  std::unique_ptr<RulesRefresher> Make(bool partners, bool members, bool campaigns) {
    RulesFeeds feeds;
    if (net_issuance_) feeds.net_issuance_at = net_issuance_;
    if (lease_) feeds.lease_budget = lease_;
    feeds.return_budget = [this](const BudgetLease& l) {
      if (fail_returns_ > 0) {
        --fail_returns_;
        return absl::UnavailableError("catalog unavailable");
      }
      returned_.push_back(l);
      return absl::OkStatus();
    };
    if (partners) feeds.partners = partners_.Fn();
    if (members) feeds.members = members_.Fn();
    if (campaigns) feeds.campaigns = campaigns_.Fn();
    return std::make_unique<RulesRefresher>(cache_, std::move(feeds), 365);
  }
  const RulesSnapshot& Now() {
    held_ = cache_.Current();
    return *held_;
  }

  RulesCache cache_;
  RulesSnapshotPtr held_;
  std::function<absl::StatusOr<int64_t>(const std::string&, int64_t)> net_issuance_;
  std::function<absl::StatusOr<BudgetLease>(const std::string&, int64_t, const std::string&)> lease_;
  std::vector<BudgetLease> returned_;
  int fail_returns_ = 0;  // the next returns fail (UNAVAILABLE)
  ScriptedFeed<sv1::ListPartnerSnapshotsResponse> partners_;
  ScriptedFeed<mv1::ListMemberSnapshotsResponse> members_;
  ScriptedFeed<cv1::GetActiveEarnRulesResponse> campaigns_;
};

TEST_F(RulesFeedTest, EarnIsUnavailableUntilEveryFeedHasAnswered) {
  auto refresher = Make(true, true, false);
  partners_.answers.push_back(PartnerPage({Partner("vet", 1)}, false));
  members_.answers.push_back(absl::UnavailableError("membership unreachable; retry later"));
  ASSERT_TRUE(refresher->SetFile({}, 0).ok());

  absl::Status first = refresher->Refresh();
  EXPECT_EQ(first.code(), absl::StatusCode::kUnavailable) << first;
  EXPECT_FALSE(refresher->ready());
  EXPECT_EQ(Now().not_ready, "membership");
  absl::Status refused = CheckRulesReady(Now());
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(refused.message().find("membership"), std::string::npos) << refused;
  // The partner feed's answer is kept meanwhile.
  EXPECT_TRUE(Now().partners.contains("vet"));

  members_.answers.push_back(MemberPage({Member("m1", 1, mv1::MEMBER_STATUS_ACTIVE)}, false));
  ASSERT_TRUE(refresher->Refresh().ok());
  EXPECT_TRUE(refresher->ready());
  EXPECT_TRUE(CheckRulesReady(Now()).ok());
}

TEST_F(RulesFeedTest, AMemberSuspendedInMembershipCannotEarnAfterTheNextRefresh) {
  auto refresher = Make(false, true, false);
  members_.answers.push_back(MemberPage({Member("m1", 4, mv1::MEMBER_STATUS_ACTIVE, "gold")}, false));
  ASSERT_TRUE(refresher->Refresh().ok());
  EXPECT_TRUE(CheckMemberActive(Now(), "m1").ok());
  EXPECT_TRUE(Now().tiers.contains("gold"));

  members_.answers.push_back(MemberPage({Member("m1", 9, mv1::MEMBER_STATUS_SUSPENDED, "gold")}, false));
  ASSERT_TRUE(refresher->Refresh().ok());
  EXPECT_EQ(CheckMemberActive(Now(), "m1").code(), absl::StatusCode::kFailedPrecondition);
  // Each poll resumed from the last version seen.
  ASSERT_EQ(members_.cursors.size(), 2u);
  EXPECT_EQ(members_.cursors[0], 0);
  EXPECT_EQ(members_.cursors[1], 4);

  const int64_t before = Now().version;
  members_.answers.push_back(MemberPage({Member("m1", 12, mv1::MEMBER_STATUS_ACTIVE, "gold")}, false));
  ASSERT_TRUE(refresher->Refresh().ok());
  EXPECT_TRUE(CheckMemberActive(Now(), "m1").ok());
  EXPECT_GT(Now().version, before);
}

TEST_F(RulesFeedTest, ReadsEveryPageOfABacklogInOneRefresh) {
  auto refresher = Make(true, false, false);
  partners_.answers.push_back(PartnerPage({Partner("a", 1), Partner("b", 2)}, true));
  partners_.answers.push_back(PartnerPage({Partner("c", 3)}, true));
  partners_.answers.push_back(PartnerPage({Partner("a", 4, sv1::PARTNER_STATUS_SUSPENDED)}, false));
  ASSERT_TRUE(refresher->Refresh().ok());
  EXPECT_TRUE(refresher->ready());
  EXPECT_EQ(Now().partners.size(), 3u);
  EXPECT_EQ(CheckPartnerActive(Now(), "a").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(CheckPartnerActive(Now(), "c").ok());
  EXPECT_EQ(partners_.cursors, (std::vector<int64_t>{0, 2, 3}));
}

TEST_F(RulesFeedTest, AFedPartReplacesThatPartOfTheFileOnly) {
  internal::v1::EarnRulesFile file;
  *file.add_partners() = Partner("vet", 1);
  *file.add_members() = Member("m-file", 1, mv1::MEMBER_STATUS_SUSPENDED);
  file.add_campaigns()->set_campaign_id("file-campaign");
  file.mutable_campaigns(0)->set_state(cv1::CAMPAIGN_STATE_ACTIVE);

  auto refresher = Make(false, true, false);
  ASSERT_TRUE(refresher->SetFile(file, 7).ok());
  ASSERT_TRUE(refresher->Refresh().ok());
  // Members come from membership only: the file's suspended member is not
  // there. Partners and campaigns still come from the file.
  EXPECT_FALSE(Now().members.contains("m-file"));
  EXPECT_TRUE(Now().partners.contains("vet"));
  ASSERT_EQ(Now().campaigns.size(), 1u);
  EXPECT_EQ(Now().campaigns[0].campaign_id(), "file-campaign");
}

TEST_F(RulesFeedTest, AnUnusablePartnerSnapshotKeepsTheLastGoodOneAndOthersStillApply) {
  auto refresher = Make(true, false, false);
  partners_.answers.push_back(PartnerPage({Partner("vet", 1, sv1::PARTNER_STATUS_ACTIVE, 1000)}, false));
  ASSERT_TRUE(refresher->Refresh().ok());
  partners_.answers.push_back(PartnerPage(
      {Partner("vet", 2, sv1::PARTNER_STATUS_ACTIVE, -5), Partner("food", 3)}, false));
  ASSERT_TRUE(refresher->Refresh().ok());
  ASSERT_TRUE(Now().partners.contains("vet"));
  EXPECT_EQ(Now().partners.at("vet").contracts(0).earn_rate_milli_points_per_unit(), 1000);
  EXPECT_TRUE(Now().partners.contains("food"));
}

TEST_F(RulesFeedTest, CampaignsAreReplacedWholeOnANewVersionOnly) {
  auto refresher = Make(false, false, true);
  campaigns_.answers.push_back(Campaigns(5, {"double-dog", "weekend"}));
  ASSERT_TRUE(refresher->Refresh().ok());
  EXPECT_EQ(Now().campaigns.size(), 2u);

  ASSERT_TRUE(refresher->Refresh().ok());  // not modified
  EXPECT_EQ(Now().campaigns.size(), 2u);

  campaigns_.answers.push_back(Campaigns(6, {"weekend"}));
  ASSERT_TRUE(refresher->Refresh().ok());
  ASSERT_EQ(Now().campaigns.size(), 1u);
  EXPECT_EQ(Now().campaigns[0].campaign_id(), "weekend");
  EXPECT_EQ(campaigns_.cursors, (std::vector<int64_t>{0, 5, 5}));
}

TEST_F(RulesFeedTest, AFailingFeedKeepsItsLastStateWhileTheOthersMoveOn) {
  auto refresher = Make(true, true, false);
  partners_.answers.push_back(PartnerPage({Partner("vet", 1)}, false));
  members_.answers.push_back(MemberPage({Member("m1", 1, mv1::MEMBER_STATUS_SUSPENDED)}, false));
  ASSERT_TRUE(refresher->Refresh().ok());

  partners_.answers.push_back(absl::InternalError("settlement ListPartnerSnapshots failed"));
  members_.answers.push_back(MemberPage({Member("m2", 2, mv1::MEMBER_STATUS_CLOSED)}, false));
  absl::Status s = refresher->Refresh();
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(refresher->ready());  // loaded once: stale, not unknown
  EXPECT_TRUE(Now().partners.contains("vet"));
  EXPECT_EQ(CheckMemberActive(Now(), "m1").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CheckMemberActive(Now(), "m2").code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(RulesFeedTest, AMalformedFileChangesNothing) {
  auto refresher = Make(false, false, false);
  internal::v1::EarnRulesFile good;
  *good.add_partners() = Partner("vet", 1);
  ASSERT_TRUE(refresher->SetFile(good, 1).ok());
  internal::v1::EarnRulesFile bad;
  *bad.add_partners() = Partner("vet", 1);
  *bad.add_partners() = Partner("vet", 2);  // duplicate
  EXPECT_EQ(refresher->SetFile(bad, 2).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Now().version, 1);
  EXPECT_TRUE(Now().partners.contains("vet"));
}

sv1::PartnerSnapshot Prepaid(int64_t version, int64_t remaining, int64_t as_of) {
  sv1::PartnerSnapshot p = Partner("shop", version);
  p.mutable_contracts(0)->set_funding_model(sv1::FUNDING_MODEL_PREPAID);
  p.set_prepaid_remaining_points(remaining);
  p.set_prepaid_as_of_sequence(as_of);
  return p;
}

TEST_F(RulesFeedTest, APrepaidLimitIsWhatRemainedPlusWhatTheLedgerHadIssuedByThen) {
  std::vector<std::pair<std::string, int64_t>> asked;
  absl::StatusOr<int64_t> answer = 70;
  net_issuance_ = [&](const std::string& partner, int64_t sequence) -> absl::StatusOr<int64_t> {
    asked.emplace_back(partner, sequence);
    return answer;
  };
  auto refresher = Make(true, false, false);
  partners_.answers.push_back(PartnerPage({Prepaid(1, 30, 50)}, false));
  ASSERT_TRUE(refresher->Refresh().ok());
  EXPECT_EQ(Now().prepaid_limit_points.at("shop"), 100);
  ASSERT_TRUE(refresher->Refresh().ok());  // nothing new: not asked again
  EXPECT_EQ(asked.size(), 1u);

  // Settlement counted further (25 left at 60, the ledger had issued 75).
  answer = 75;
  partners_.answers.push_back(PartnerPage({Prepaid(2, 25, 60)}, false));
  ASSERT_TRUE(refresher->Refresh().ok());
  EXPECT_EQ(Now().prepaid_limit_points.at("shop"), 100);
  ASSERT_EQ(asked.size(), 2u);
  EXPECT_EQ(asked[1], std::make_pair(std::string("shop"), int64_t{60}));

  // A block bought (version 3); the ledger cannot answer: the old snapshot stays.
  answer = absl::UnavailableError("database down");
  partners_.answers.push_back(PartnerPage({Prepaid(3, 525, 60)}, false));
  EXPECT_EQ(refresher->Refresh().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Now().prepaid_limit_points.at("shop"), 100);
  answer = 75;
  ASSERT_TRUE(refresher->Refresh().ok());
  EXPECT_EQ(Now().prepaid_limit_points.at("shop"), 600);
}

TEST_F(RulesFeedTest, APrepaidPartnerWithAnUnknownLimitIssuesNothing) {
  auto refresher = Make(true, false, false);  // no net_issuance_at
  partners_.answers.push_back(PartnerPage({Prepaid(1, 30, 50)}, false));
  ASSERT_TRUE(refresher->Refresh().ok());
  EXPECT_FALSE(Now().prepaid_limit_points.contains("shop"));
  common::v1::Money amount;
  amount.set_amount_minor(100);
  amount.set_currency("EUR");
  google::protobuf::RepeatedPtrField<v1::PurchaseLine> lines;
  auto earn = ComputeEarn(Now(), "shop", "m1", amount, lines, absl::Now());
  ASSERT_TRUE(earn.ok()) << earn.status();
  ASSERT_TRUE(earn->prepaid_limit_points.has_value());
  EXPECT_EQ(*earn->prepaid_limit_points, 0);
}

// Spends as the writer does: reserve, then confirm once the batch committed.
bool Spend(CampaignBudgets& b, const std::string& campaign_id, int64_t points) {
  BudgetReservations r(&b);
  if (!r.TryReserve(campaign_id, points)) return false;
  r.ConfirmAll();
  return true;
}

TEST(CampaignBudgets, SpendsAcrossLeasesAndNeverBeyondThem) {
  CampaignBudgets b;
  EXPECT_FALSE(Spend(b, "c", 1));
  b.Add("c", {.lease_id = "l1", .granted = 10, .used = 0});
  b.Add("c", {.lease_id = "l2", .granted = 10, .used = 0});
  EXPECT_TRUE(Spend(b, "c", 15));
  EXPECT_EQ(b.Remaining("c"), 5);
  EXPECT_FALSE(Spend(b, "c", 6));  // nothing taken
  EXPECT_EQ(b.Remaining("c"), 5);
  auto spent = b.TakeSpent();
  ASSERT_EQ(spent.size(), 1u);
  EXPECT_EQ(spent[0].second.lease_id, "l1");
  EXPECT_EQ(spent[0].second.used, 10);
  auto rest = b.TakeAllExcept({});
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].second.used, 5);
  EXPECT_EQ(rest[0].second.remaining(), 5);
  EXPECT_EQ(b.Remaining("c"), 0);
}

TEST(CampaignBudgets, ABatchThatDidNotCommitGivesItsReservationsBack) {
  CampaignBudgets b;
  b.Add("c", {.lease_id = "l1", .granted = 10, .used = 0});
  {
    BudgetReservations attempt(&b);
    ASSERT_TRUE(attempt.TryReserve("c", 10));
    EXPECT_EQ(b.Remaining("c"), 0);
    // Reserved, not spent: the lease is not returned meanwhile, not even
    // for a campaign that stopped.
    EXPECT_TRUE(b.TakeSpent().empty());
    EXPECT_TRUE(b.TakeAllExcept({}).empty());
    attempt.ReleaseAll();  // the batch is re-run (ABORTED)
    EXPECT_EQ(b.Remaining("c"), 10);
    ASSERT_TRUE(attempt.TryReserve("c", 4));
  }  // never confirmed (the batch failed): released
  EXPECT_EQ(b.Remaining("c"), 10);
  EXPECT_TRUE(Spend(b, "c", 10));
  auto spent = b.TakeSpent();
  ASSERT_EQ(spent.size(), 1u);
  EXPECT_EQ(spent[0].second.used, 10);  // exactly what was given
}

TEST_F(RulesFeedTest, BudgetedCampaignsAreLeasedTopUpAndGoBackWhenTheyStop) {
  std::vector<std::pair<std::string, int64_t>> asked;
  int64_t budget_left = 12'000;
  int lease_no = 0;
  lease_ = [&](const std::string& id, int64_t points, const std::string&) -> absl::StatusOr<BudgetLease> {
    asked.emplace_back(id, points);
    const int64_t granted = std::min(points, budget_left);
    budget_left -= granted;
    return BudgetLease{absl::StrCat("lease-", ++lease_no), granted, 0};
  };
  auto refresher = Make(false, false, true);
  cv1::GetActiveEarnRulesResponse rules = Campaigns(1, {"capped", "free"});
  rules.mutable_campaigns(0)->set_budget_points(20'000);
  campaigns_.answers.push_back(rules);
  ASSERT_TRUE(refresher->Refresh().ok());
  ASSERT_NE(Now().budgets, nullptr);
  EXPECT_EQ(Now().budgets->Remaining("capped"), kBudgetLeaseChunk);
  EXPECT_EQ(asked, (std::vector<std::pair<std::string, int64_t>>{{"capped", kBudgetLeaseChunk}}));

  // Spent down below the low-water mark: topped up with what the budget has.
  ASSERT_TRUE(Spend(*Now().budgets, "capped", kBudgetLeaseChunk - 1000));
  ASSERT_TRUE(refresher->Refresh().ok());
  EXPECT_EQ(Now().budgets->Remaining("capped"), 1000 + 2000);
  ASSERT_TRUE(Spend(*Now().budgets, "capped", 1000));  // the first lease is now used up
  ASSERT_TRUE(refresher->Refresh().ok());                  // returns it; the budget has nothing left
  ASSERT_EQ(returned_.size(), 1u);
  EXPECT_EQ(returned_[0].lease_id, "lease-1");
  EXPECT_EQ(returned_[0].used, kBudgetLeaseChunk);

  // The campaign stops: its remaining lease goes back unused.
  campaigns_.answers.push_back(Campaigns(2, {"free"}));
  ASSERT_TRUE(refresher->Refresh().ok());
  ASSERT_EQ(returned_.size(), 2u);
  EXPECT_EQ(returned_[1].lease_id, "lease-2");
  EXPECT_EQ(returned_[1].remaining(), 2000);
  EXPECT_EQ(Now().budgets->Remaining("capped"), 0);
}

TEST_F(RulesFeedTest, AnUnansweredLeaseIsAskedAgainWithItsKeyAndAFailedReturnIsRetried) {
  // The catalog grants the first lease, but its answer is lost.
  std::map<std::string, BudgetLease> granted;  // by idempotency key
  std::vector<std::string> keys;
  bool lose_answer = true;
  lease_ = [&](const std::string&, int64_t points, const std::string& key) -> absl::StatusOr<BudgetLease> {
    keys.push_back(key);
    auto [it, fresh] = granted.try_emplace(key, BudgetLease{absl::StrCat("lease-", granted.size() + 1), points, 0});
    if (lose_answer) {
      lose_answer = false;
      return absl::UnavailableError("catalog did not answer in time; retry later with the same idempotency key");
    }
    return it->second;
  };
  auto refresher = Make(false, false, true);
  cv1::GetActiveEarnRulesResponse rules = Campaigns(1, {"capped"});
  rules.mutable_campaigns(0)->set_budget_points(50'000);
  campaigns_.answers.push_back(rules);
  EXPECT_FALSE(refresher->Refresh().ok());  // the lease's outcome is unknown
  EXPECT_EQ(Now().budgets->Remaining("capped"), 0);
  ASSERT_TRUE(refresher->Refresh().ok());
  // Asked again with the same key: the lease granted unheard, not a second one.
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0], keys[1]);
  EXPECT_EQ(granted.size(), 1u);
  EXPECT_EQ(Now().budgets->Remaining("capped"), kBudgetLeaseChunk);

  // The campaign stops; the return fails once and is retried.
  fail_returns_ = 1;
  campaigns_.answers.push_back(Campaigns(2, {"other"}));
  EXPECT_TRUE(refresher->Refresh().ok());
  EXPECT_TRUE(returned_.empty());
  ASSERT_TRUE(refresher->Refresh().ok());
  ASSERT_EQ(returned_.size(), 1u);
  EXPECT_EQ(returned_[0].lease_id, "lease-1");
  EXPECT_EQ(returned_[0].remaining(), kBudgetLeaseChunk);
  // A later lease gets a fresh key.
  cv1::GetActiveEarnRulesResponse again = Campaigns(3, {"capped"});
  again.mutable_campaigns(0)->set_budget_points(50'000);
  campaigns_.answers.push_back(again);
  ASSERT_TRUE(refresher->Refresh().ok());
  ASSERT_EQ(keys.size(), 3u);
  EXPECT_NE(keys[2], keys[0]);
}

}  // namespace
}  // namespace loyalty::ledger
