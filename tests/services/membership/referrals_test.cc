// Referrals (referrals.h): the referral made at enrolment, the referral code
// and the referrals list.
// Runs on the real MySQL store with a fake ledger (membership_fixture.h).

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/time/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/services/membership/membership_fixture.h"

namespace loyalty::membership {
namespace {

using ::testing::HasSubstr;

TEST_F(MembershipTest, ReferralLinksTheNewMemberOnce) {
  v1::EnrolResponse referrer = MustEnrol("k1", "a@example.com");
  v1::EnrolRequest r = EnrolOf("k2", "b@example.com");
  r.set_referral_code(absl::AsciiStrToLower(referrer.member().referral_code()));
  auto referred = membership_->members().Enrol(kVet, r);
  ASSERT_TRUE(referred.ok()) << referred.status();
  v1::GetMemberRequest get;
  get.set_member_id(referred->member().member_id());
  EXPECT_EQ(membership_->members().GetMember(kBackoffice, get)->member().referred_by_member_id(),
            referrer.member().member_id());

  v1::GetReferralCodeRequest code;
  code.set_member_id(referrer.member().member_id());
  EXPECT_EQ(membership_->referrals().GetReferralCode(kVet, code)->referral_count(), 1);
  v1::ListReferralsRequest list;
  list.set_member_id(referrer.member().member_id());
  auto refs = membership_->referrals().ListReferrals(kVet, list);
  ASSERT_TRUE(refs.ok());
  ASSERT_EQ(refs->referrals_size(), 1);
  EXPECT_EQ(refs->referrals(0).state(), v1::REFERRAL_STATE_PENDING);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM referrals"), 1);
}

}  // namespace
}  // namespace loyalty::membership
