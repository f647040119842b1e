// JournalConsumer (journal_consumer.h): the ledger journal and referral
// rewards.
// Runs on the real MySQL store with a fake ledger (membership_fixture.h).

#include "absl/strings/str_cat.h"
#include "common/time/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/services/membership/membership_fixture.h"

namespace loyalty::membership {
namespace {

using ::testing::HasSubstr;

TEST_F(MembershipTest, ReferrerIsRewardedOnceWhenTheReferredMemberFirstEarns) {
  v1::EnrolResponse referrer = MustEnrol("k1", "a@example.com");
  v1::EnrolRequest r = EnrolOf("k2", "b@example.com");
  r.set_referral_code(referrer.member().referral_code());
  auto referred = membership_->members().Enrol(kVet, r);
  ASSERT_TRUE(referred.ok()) << referred.status();
  const std::string referred_id = referred->member().member_id();
  const std::string referrer_id = referrer.member().member_id();

  // The referrer's own earn does not reward anyone.
  ledger_.AddEarn(referrer_id, Now());
  ASSERT_EQ(*membership_->journal_consumer().ConsumeLedgerJournal(100), 1);
  EXPECT_EQ(*membership_->journal_consumer().GrantReferralRewards(10), 0);

  // The referred member's first earn does; the ledger is down at first.
  ledger_.AddEarn(referred_id, Now());
  ASSERT_EQ(*membership_->journal_consumer().ConsumeLedgerJournal(100), 1);
  ledger_.SetDown(true);
  EXPECT_EQ(membership_->journal_consumer().GrantReferralRewards(10).status().code(), absl::StatusCode::kUnavailable);
  ledger_.SetDown(false);
  EXPECT_EQ(*membership_->journal_consumer().GrantReferralRewards(10), 1);
  EXPECT_EQ(ledger_.BonusPoints(referrer_id), 500);

  // Later earns, re-reading the journal, and repeated passes grant nothing more.
  ledger_.AddEarn(referred_id, Now() + absl::Minutes(5));
  EXPECT_EQ(*membership_->journal_consumer().ConsumeLedgerJournal(100), 1);
  EXPECT_EQ(*membership_->journal_consumer().ConsumeLedgerJournal(100), 0);
  EXPECT_EQ(*membership_->journal_consumer().GrantReferralRewards(10), 0);
  EXPECT_EQ(ledger_.BonusPoints(referrer_id), 500);

  v1::ListReferralsRequest list;
  list.set_member_id(referrer_id);
  auto refs = membership_->referrals().ListReferrals(kBackoffice, list);
  ASSERT_TRUE(refs.ok());
  ASSERT_EQ(refs->referrals_size(), 1);
  EXPECT_EQ(refs->referrals(0).state(), v1::REFERRAL_STATE_REWARDED);
  EXPECT_EQ(refs->referrals(0).reward_points(), 500);
  EXPECT_FALSE(refs->referrals(0).reward_transfer_id().empty());
  // Activity is recorded for segments.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM members WHERE last_activity_at IS NOT NULL"), 2);
}

TEST_F(MembershipTest, AReferralWhoseRewardMayHaveLandedIsSettledByTheLedgerNotVoided) {
  v1::EnrolResponse referrer = MustEnrol("k1", "a@example.com");
  v1::EnrolResponse other = MustEnrol("k3", "c@example.com");
  v1::EnrolRequest r = EnrolOf("k2", "b@example.com");
  r.set_referral_code(referrer.member().referral_code());
  auto referred = membership_->members().Enrol(kVet, r);
  ASSERT_TRUE(referred.ok()) << referred.status();
  v1::EnrolRequest r2 = EnrolOf("k4", "d@example.com");
  r2.set_referral_code(other.member().referral_code());
  auto referred2 = membership_->members().Enrol(kVet, r2);
  ASSERT_TRUE(referred2.ok()) << referred2.status();
  const std::string referrer_id = referrer.member().member_id();
  const std::string other_id = other.member().member_id();
  ledger_.AddEarn(referred->member().member_id(), Now());
  ASSERT_EQ(*membership_->journal_consumer().ConsumeLedgerJournal(100), 1);

  // A pass asks the ledger for the reward, which grants it, but the answer
  // is lost (a timeout): the referral stays due.
  ledger_.LoseAnswers(1);
  EXPECT_EQ(membership_->journal_consumer().GrantReferralRewards(10).status().code(), absl::StatusCode::kUnavailable);
  // Meanwhile the referrer's membership is closed; the ledger learns it too.
  auto close = [&](const std::string& member_id) {
    v1::SetMemberStatusRequest req;
    req.set_idempotency_key("close-" + member_id);
    req.set_member_id(member_id);
    req.set_status(v1::MEMBER_STATUS_CLOSED);
    req.set_reason("left the programme");
    ASSERT_TRUE(membership_->members().SetMemberStatus(kBackoffice, req).ok());
    ledger_.Close(member_id);
  };
  close(referrer_id);
  ASSERT_TRUE(membership_->journal_consumer().GrantReferralRewards(10).ok());
  v1::ListReferralsRequest list;
  list.set_member_id(referrer_id);
  auto refs = membership_->referrals().ListReferrals(kBackoffice, list);
  ASSERT_TRUE(refs.ok());
  ASSERT_EQ(refs->referrals_size(), 1);
  // The ledger's answer under the reward's key settles it: rewarded, with
  // its transfer, not VOID while the points stand; granted once.
  EXPECT_EQ(refs->referrals(0).state(), v1::REFERRAL_STATE_REWARDED);
  EXPECT_FALSE(refs->referrals(0).reward_transfer_id().empty());
  EXPECT_EQ(ledger_.BonusPoints(referrer_id), 500);

  // A referrer closed before any reward was asked for: voided, and the
  // ledger never asked.
  ledger_.AddEarn(referred2->member().member_id(), Now());
  ASSERT_EQ(*membership_->journal_consumer().ConsumeLedgerJournal(100), 1);
  close(other_id);
  const int64_t grants_before = ledger_.grants();
  ASSERT_TRUE(membership_->journal_consumer().GrantReferralRewards(10).ok());
  list.set_member_id(other_id);
  refs = membership_->referrals().ListReferrals(kBackoffice, list);
  ASSERT_TRUE(refs.ok());
  ASSERT_EQ(refs->referrals_size(), 1);
  EXPECT_EQ(refs->referrals(0).state(), v1::REFERRAL_STATE_VOID);
  EXPECT_EQ(ledger_.grants(), grants_before);
  EXPECT_EQ(ledger_.BonusPoints(other_id), 0);
}

}  // namespace
}  // namespace loyalty::membership
