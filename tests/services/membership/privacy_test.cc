// Privacy (privacy.h): erasure, export and the audit log.
// Runs on the real MySQL store with a fake ledger (membership_fixture.h).

#include "absl/strings/str_cat.h"
#include "common/time/proto_time.h"
#include "gmock/gmock.h"
#include "common/testing/allowed_roles.h"
#include "gtest/gtest.h"
#include "tests/services/membership/membership_fixture.h"

namespace loyalty::membership {
namespace {

using ::testing::HasSubstr;

// ---- privacy and audit ----------------------------------------------------------------

TEST_F(MembershipTest, EraseAnonymisesAndForgetsContactsAndCards) {
  v1::EnrolRequest r = EnrolOf("k1", "gone@example.com");
  r.set_phone("+33612345678");
  auto m = membership_->members().Enrol(kVet, r);
  ASSERT_TRUE(m.ok());
  const std::string id = m->member().member_id();
  v1::GetMemberRequest get;
  get.set_member_id(id);
  ASSERT_TRUE(membership_->members().GetMember(kBackoffice, get).ok());  // an audited read, with no images

  v1::EraseMemberRequest erase;
  erase.set_idempotency_key("erase");
  erase.set_member_id(id);
  erase.set_reason("GDPR request #42");
  EXPECT_EQ(loyalty::testing::RoleCheck(kVet, "loyalty.membership.v1.MembershipService.EraseMember").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(loyalty::testing::RoleCheck(kBackoffice, "loyalty.membership.v1.MembershipService.EraseMember").ok());
  auto erased = membership_->privacy().EraseMember(kBackoffice, erase);
  ASSERT_TRUE(erased.ok()) << erased.status();
  EXPECT_EQ(erased->member().status(), v1::MEMBER_STATUS_CLOSED);
  EXPECT_TRUE(erased->member().has_erased_at());
  EXPECT_TRUE(erased->member().given_name().empty());
  EXPECT_TRUE(erased->member().email().empty());

  for (auto q : {[] { v1::LookupMemberRequest x; x.set_email("gone@example.com"); return x; }(),
                 [] { v1::LookupMemberRequest x; x.set_phone("+33612345678"); return x; }()}) {
    EXPECT_EQ(membership_->members().LookupMember(kBackoffice, q).status().code(), absl::StatusCode::kNotFound);
  }
  v1::LookupMemberRequest by_card;
  by_card.set_card_number(m->card().card_number());
  EXPECT_EQ(membership_->members().LookupMember(kBackoffice, by_card).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(membership_->members().GetMember(kVet, get).status().code(), absl::StatusCode::kNotFound);

  // No personal data is left anywhere in the schema.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM members WHERE email IS NOT NULL OR phone IS NOT NULL OR given_name <> ''"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM idempotency WHERE request LIKE '%gone@%' OR response LIKE '%gone@%'"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit_events WHERE before_json LIKE '%gone@%' OR after_json LIKE '%gone@%'"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM cards"), 0);
  // The old enrolment key can no longer replay the personal data.
  EXPECT_EQ(membership_->members().Enrol(kVet, r).status().code(), absl::StatusCode::kFailedPrecondition);
  // The erasure itself replays; a second erasure is refused.
  EXPECT_TRUE(membership_->privacy().EraseMember(kBackoffice, erase).ok());
  erase.set_idempotency_key("erase-2");
  EXPECT_EQ(membership_->privacy().EraseMember(kBackoffice, erase).status().code(), absl::StatusCode::kFailedPrecondition);
  // The email is free for a new member.
  EXPECT_TRUE(membership_->members().Enrol(kVet, EnrolOf("k9", "gone@example.com")).ok());

  v1::ListAuditEventsRequest audit;
  audit.set_member_id(id);
  auto events = membership_->privacy().ListAuditEvents(kBackoffice, audit);
  ASSERT_TRUE(events.ok());
  ASSERT_GE(events->events_size(), 3);  // enrol, read, erase
  EXPECT_EQ(events->events(0).action(), "loyalty.membership.v1.MembershipService/EraseMember");
  EXPECT_EQ(events->events(0).reason(), "GDPR request #42");
}

TEST_F(MembershipTest, ExportHoldsEverythingAndIsAudited) {
  v1::EnrolResponse m = MustEnrol("k1", "a@example.com");
  ledger_.SetPoints(m.member().member_id(), 420);
  v1::ExportMemberDataRequest ex;
  ex.set_member_id(m.member().member_id());
  EXPECT_EQ(loyalty::testing::RoleCheck(kVet, "loyalty.membership.v1.MembershipService.ExportMemberData").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(loyalty::testing::RoleCheck(kBackoffice, "loyalty.membership.v1.MembershipService.ExportMemberData").ok());
  auto got = membership_->privacy().ExportMemberData(kBackoffice, ex);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->member().email(), "a@example.com");
  EXPECT_EQ(got->cards_size(), 1);
  EXPECT_EQ(got->consent_history_size(), 2);
  EXPECT_EQ(got->tier_history_size(), 1);
  EXPECT_EQ(got->balance().posted_points(), 420);
  EXPECT_EQ(got->transfers_size(), 1);
  ledger_.SetDown(true);
  EXPECT_EQ(membership_->privacy().ExportMemberData(kBackoffice, ex).status().code(), absl::StatusCode::kUnavailable);

  v1::ListAuditEventsRequest audit;
  audit.set_member_id(m.member().member_id());
  audit.set_page_size(1);
  auto page = membership_->privacy().ListAuditEvents(kBackoffice, audit);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->events(0).action(), "loyalty.membership.v1.MembershipService/ExportMemberData");
  EXPECT_FALSE(page->next_page_token().empty());
  audit.set_page_token(page->next_page_token());
  audit.set_member_id("mb_someone_else");
  EXPECT_EQ(membership_->privacy().ListAuditEvents(kBackoffice, audit).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace loyalty::membership
