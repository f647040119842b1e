// SegmentAdmin (segment_admin.h): saved segments and segment queries.
// Runs on the real MySQL store with a fake ledger (membership_fixture.h).

#include <set>

#include "absl/strings/str_cat.h"
#include "common/time/proto_time.h"
#include "gmock/gmock.h"
#include "common/testing/allowed_roles.h"
#include "gtest/gtest.h"
#include "tests/services/membership/membership_fixture.h"

namespace loyalty::membership {
namespace {

using ::testing::HasSubstr;

TEST_F(MembershipTest, SegmentsSelectMembersByTierConsentAndBirthday) {
  std::vector<std::string> with_consent;
  for (int i = 0; i < 5; ++i) {
    v1::EnrolRequest r = EnrolOf(absl::StrCat("k", i), absl::StrCat("m", i, "@example.com"));
    r.mutable_birth_date()->set_year(1980);
    r.mutable_birth_date()->set_month(i < 3 ? 5 : 9);
    r.mutable_birth_date()->set_day(1);
    if (i % 2 == 0) {
      auto* c = r.add_channel_consents();
      c->set_channel(v1::CONTACT_CHANNEL_EMAIL);
      c->set_partner_id("pet-food");
      c->set_granted(true);
    }
    auto m = membership_->members().Enrol(kBackoffice, r);
    ASSERT_TRUE(m.ok()) << m.status();
    if (i % 2 == 0) with_consent.push_back(m->member().member_id());
  }
  v1::CreateSegmentRequest create;
  create.set_idempotency_key("seg1");
  create.set_name("Pet-food newsletter");
  create.mutable_filter()->add_tier_ids("silver");
  auto* need = create.mutable_filter()->add_required_consents();
  need->set_channel(v1::CONTACT_CHANNEL_EMAIL);
  need->set_partner_id("pet-food");
  auto seg = membership_->segment_admin().CreateSegment(kBackoffice, create);
  ASSERT_TRUE(seg.ok()) << seg.status();

  v1::QuerySegmentRequest q;
  q.set_segment_id(seg->segment().segment_id());
  q.set_page_size(2);
  std::set<std::string> found;
  std::string token;
  int calls = 0;
  do {
    q.set_page_token(token);
    auto page = membership_->segment_admin().QuerySegment(kService, q);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(page->members_size(), 2);
    for (const auto& m : page->members()) found.insert(m.member_id());
    token = page->next_page_token();
  } while (!token.empty() && ++calls < 10);
  EXPECT_EQ(found, std::set<std::string>(with_consent.begin(), with_consent.end()));

  v1::QuerySegmentRequest adhoc;
  adhoc.mutable_filter()->set_birthday_month(9);
  auto september = membership_->segment_admin().QuerySegment(kBackoffice, adhoc);
  ASSERT_TRUE(september.ok());
  EXPECT_EQ(september->members_size(), 2);
  adhoc.mutable_filter()->add_statuses(v1::MEMBER_STATUS_SUSPENDED);
  EXPECT_EQ(membership_->segment_admin().QuerySegment(kBackoffice, adhoc)->members_size(), 0);

  // A token only works for the query it was issued for.
  q.set_page_token(membership_->segment_admin().QuerySegment(kService, [&] {
    v1::QuerySegmentRequest x = q;
    x.set_page_token("");
    x.set_page_size(1);
    return x;
  }())->next_page_token());
  adhoc.set_page_token(q.page_token());
  EXPECT_EQ(membership_->segment_admin().QuerySegment(kBackoffice, adhoc).status().code(), absl::StatusCode::kInvalidArgument);

  create.set_idempotency_key("seg-bad");
  create.mutable_filter()->add_tier_ids("diamond");
  auto bad = membership_->segment_admin().CreateSegment(kBackoffice, create);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("filter.tier_ids[1]"));
  EXPECT_EQ(loyalty::testing::RoleCheck(kVet, "loyalty.membership.v1.MembershipService.CreateSegment").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(loyalty::testing::RoleCheck(kBackoffice, "loyalty.membership.v1.MembershipService.CreateSegment").ok());

  v1::UpdateSegmentRequest up;
  up.set_idempotency_key("seg-up");
  up.set_segment_id(seg->segment().segment_id());
  up.mutable_segment()->set_name("Renamed");
  up.mutable_update_mask()->add_paths("name");
  up.set_expected_version(seg->segment().version());
  auto renamed = membership_->segment_admin().UpdateSegment(kBackoffice, up);
  ASSERT_TRUE(renamed.ok()) << renamed.status();
  EXPECT_EQ(renamed->segment().version(), 2);
  up.set_idempotency_key("seg-up-2");
  EXPECT_EQ(membership_->segment_admin().UpdateSegment(kBackoffice, up).status().code(), absl::StatusCode::kAborted);
  v1::ListSegmentsRequest list;
  auto listed = membership_->segment_admin().ListSegments(kService, list);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->segments_size(), 1);
  EXPECT_EQ(listed->segments(0).name(), "Renamed");
}

}  // namespace
}  // namespace loyalty::membership
