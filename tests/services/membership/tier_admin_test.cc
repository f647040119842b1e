// TierAdmin (tier_admin.h): evaluation, resumable runs, paid tiers and the
// ladder.
// Runs on the real MySQL store with a fake ledger (membership_fixture.h).

#include "absl/strings/str_cat.h"
#include "common/time/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/services/membership/membership_fixture.h"

namespace loyalty::membership {
namespace {

using ::testing::HasSubstr;

// ---- tiers ---------------------------------------------------------------------------

TEST_F(MembershipTest, EvaluateTierUpgradesRetainsAndDowngradesOneRankAtATime) {
  v1::EnrolResponse m = MustEnrol("k1", "a@example.com");
  const std::string id = m.member().member_id();
  ledger_.SetPoints(id, 12'000);
  v1::EvaluateTierRequest eval;
  eval.set_idempotency_key("e1");
  eval.set_member_id(id);
  auto up = membership_->tier_admin().EvaluateTier(kService, eval);
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(up->tier().tier_id(), "platinum");
  EXPECT_EQ(up->tier().basis(), v1::TIER_BASIS_QUALIFIED);
  EXPECT_EQ(up->change().from_tier_id(), "silver");
  EXPECT_EQ(up->change().reason(), v1::TIER_CHANGE_REASON_QUALIFIED);

  // Same points, new key: nothing changes.
  eval.set_idempotency_key("e2");
  auto same = membership_->tier_admin().EvaluateTier(kService, eval);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->tier().tier_id(), "platinum");
  EXPECT_FALSE(same->has_change());

  // Points drop: kept while retained (12 months).
  ledger_.SetPoints(id, 0);
  Advance(absl::Hours(24 * 200));
  eval.set_idempotency_key("e3");
  auto kept = membership_->tier_admin().EvaluateTier(kService, eval);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->tier().tier_id(), "platinum");
  EXPECT_EQ(kept->tier().basis(), v1::TIER_BASIS_RETAINED);

  // After retention: one rank down per review, never two.
  Advance(absl::Hours(24 * 200));
  eval.set_idempotency_key("e4");
  auto down = membership_->tier_admin().EvaluateTier(kService, eval);
  ASSERT_TRUE(down.ok());
  EXPECT_EQ(down->tier().tier_id(), "gold");
  EXPECT_EQ(down->change().reason(), v1::TIER_CHANGE_REASON_DOWNGRADED);
  eval.set_idempotency_key("e5");  // same instant: no second drop
  EXPECT_EQ(membership_->tier_admin().EvaluateTier(kService, eval)->tier().tier_id(), "gold");
  Advance(absl::Hours(24));
  eval.set_idempotency_key("e6");
  EXPECT_EQ(membership_->tier_admin().EvaluateTier(kService, eval)->tier().tier_id(), "silver");

  v1::ListTierHistoryRequest hist;
  hist.set_member_id(id);
  hist.set_page_size(2);
  auto page1 = membership_->tier_admin().ListTierHistory(kBackoffice, hist);
  ASSERT_TRUE(page1.ok()) << page1.status();
  ASSERT_EQ(page1->changes_size(), 2);
  EXPECT_EQ(page1->changes(0).to_tier_id(), "silver");  // newest first
  hist.set_page_token(page1->next_page_token());
  auto page2 = membership_->tier_admin().ListTierHistory(kBackoffice, hist);
  ASSERT_TRUE(page2.ok());
  ASSERT_EQ(page2->changes_size(), 2);  // platinum, then the enrolment
  EXPECT_EQ(page2->changes(1).reason(), v1::TIER_CHANGE_REASON_ENROLMENT);
  EXPECT_TRUE(page2->next_page_token().empty());
  hist.set_member_id("mb_other");
  EXPECT_EQ(membership_->tier_admin().ListTierHistory(kBackoffice, hist).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(MembershipTest, EvaluateTierNeedsTheLedger) {
  v1::EnrolResponse m = MustEnrol("k1", "a@example.com");
  ledger_.SetDown(true);
  v1::EvaluateTierRequest eval;
  eval.set_idempotency_key("e1");
  eval.set_member_id(m.member().member_id());
  EXPECT_EQ(membership_->tier_admin().EvaluateTier(kService, eval).status().code(), absl::StatusCode::kUnavailable);
  ledger_.SetDown(false);
  ledger_.SetPoints(m.member().member_id(), 2500);
  auto ok = membership_->tier_admin().EvaluateTier(kService, eval);  // same key works once the ledger is back
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->tier().tier_id(), "gold");
}

TEST_F(MembershipTest, RunTierEvaluationWalksAllMembersInResumableBatches) {
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) {
    ids.push_back(MustEnrol(absl::StrCat("k", i), absl::StrCat("m", i, "@example.com")).member().member_id());
    ledger_.SetPoints(ids.back(), i % 2 == 0 ? 3000 : 10);
  }
  v1::RunTierEvaluationRequest run;
  run.set_batch_size(3);
  int64_t evaluated = 0, changed = 0, batches = 0;
  std::string token;
  do {
    run.set_idempotency_key(absl::StrCat("run-", batches));
    run.set_resume_token(token);
    auto r = membership_->tier_admin().RunTierEvaluation(kService, run);
    ASSERT_TRUE(r.ok()) << r.status();
    evaluated += r->evaluated_count();
    changed += r->changed_count();
    token = r->next_resume_token();
    ++batches;
  } while (!token.empty() && batches < 10);
  EXPECT_EQ(evaluated, 7);
  EXPECT_EQ(changed, 4);  // members 0, 2, 4, 6 reach gold
  EXPECT_EQ(Count("SELECT COUNT(*) FROM members WHERE tier_id = 'gold'"), 4);
  run.set_resume_token("garbage!");
  run.set_idempotency_key("run-bad");
  EXPECT_EQ(membership_->tier_admin().RunTierEvaluation(kService, run).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(MembershipTest, PaidTierHoldsUntilItsEnd) {
  v1::EnrolResponse m = MustEnrol("k1", "a@example.com");
  v1::GrantPaidTierRequest grant;
  grant.set_idempotency_key("g1");
  grant.set_member_id(m.member().member_id());
  grant.set_tier_id("gold");
  *grant.mutable_valid_until() = ToProtoTime(Now() + absl::Hours(24 * 30));
  grant.mutable_fee()->set_amount_minor(4900);
  grant.mutable_fee()->set_currency("EUR");
  auto granted = membership_->tier_admin().GrantPaidTier(kBackoffice, grant);
  ASSERT_TRUE(granted.ok()) << granted.status();
  EXPECT_EQ(granted->tier().basis(), v1::TIER_BASIS_PAID);
  EXPECT_EQ(granted->change().reason(), v1::TIER_CHANGE_REASON_PAID_GRANT);

  v1::EvaluateTierRequest eval;
  eval.set_idempotency_key("e1");
  eval.set_member_id(m.member().member_id());
  EXPECT_EQ(membership_->tier_admin().EvaluateTier(kService, eval)->tier().tier_id(), "gold");  // 0 points, still paid
  Advance(absl::Hours(24 * 31));
  eval.set_idempotency_key("e2");
  auto expired = membership_->tier_admin().EvaluateTier(kService, eval);
  ASSERT_TRUE(expired.ok());
  EXPECT_EQ(expired->tier().tier_id(), "silver");
  EXPECT_EQ(expired->change().reason(), v1::TIER_CHANGE_REASON_PAID_EXPIRED);

  grant.set_idempotency_key("g2");
  *grant.mutable_valid_until() = ToProtoTime(Now() - absl::Hours(1));
  EXPECT_EQ(membership_->tier_admin().GrantPaidTier(kBackoffice, grant).status().code(), absl::StatusCode::kInvalidArgument);
  *grant.mutable_valid_until() = ToProtoTime(Now() + absl::Hours(24));
  grant.set_tier_id("diamond");
  EXPECT_EQ(membership_->tier_admin().GrantPaidTier(kBackoffice, grant).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(MembershipTest, SetTierLadderValidatesAndProtectsHeldTiers) {
  MustEnrol("k1", "a@example.com");  // holds silver
  auto current = membership_->tier_admin().GetTierLadder(kVet);
  ASSERT_TRUE(current.ok());
  v1::SetTierLadderRequest set;
  set.set_idempotency_key("l1");
  *set.mutable_ladder() = current->ladder();
  set.mutable_ladder()->mutable_tiers(1)->set_tier_multiplier_bp(13000);
  set.set_expected_version(current->ladder().version());
  auto saved = membership_->tier_admin().SetTierLadder(kBackoffice, set);
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_EQ(saved->ladder().version(), current->ladder().version() + 1);
  EXPECT_EQ(membership_->tier_admin().GetTierLadder(kVet)->ladder().tiers(1).tier_multiplier_bp(), 13000);

  set.set_idempotency_key("l2");  // stale
  EXPECT_EQ(membership_->tier_admin().SetTierLadder(kBackoffice, set).status().code(), absl::StatusCode::kAborted);
  set.set_expected_version(0);
  set.set_idempotency_key("l3");
  v1::TierLadder without_silver = saved->ladder();
  without_silver.mutable_tiers()->erase(without_silver.mutable_tiers()->begin());
  without_silver.mutable_tiers(0)->set_rank(0);
  without_silver.mutable_tiers(0)->set_qualifying_points_threshold(0);
  *set.mutable_ladder() = without_silver;
  EXPECT_EQ(membership_->tier_admin().SetTierLadder(kBackoffice, set).status().code(), absl::StatusCode::kFailedPrecondition);
  set.set_idempotency_key("l4");
  set.mutable_ladder()->mutable_tiers(0)->set_tier_multiplier_bp(5);
  auto bad = membership_->tier_admin().SetTierLadder(kBackoffice, set);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("tier_multiplier_bp"));
}

}  // namespace
}  // namespace loyalty::membership
