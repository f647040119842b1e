// Consents (consents.h): what partners may set and see.
// Runs on the real MySQL store with a fake ledger (membership_fixture.h).

#include "absl/strings/str_cat.h"
#include "common/time/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/services/membership/membership_fixture.h"

namespace loyalty::membership {
namespace {

using ::testing::HasSubstr;

TEST_F(MembershipTest, PartnersSetAndSeeOnlyTheirOwnConsents) {
  v1::EnrolResponse m = MustEnrol("k1", "a@example.com");
  v1::UpdateConsentsRequest up;
  up.set_idempotency_key("c1");
  up.set_member_id(m.member().member_id());
  up.set_source(v1::CONSENT_SOURCE_PARTNER);
  auto* c = up.add_channel_consents();
  c->set_channel(v1::CONTACT_CHANNEL_SMS);
  c->set_partner_id("vet-clinic");
  c->set_granted(true);
  ASSERT_TRUE(membership_->consents().UpdateConsents(kVet, up).ok());

  up.set_idempotency_key("c2");
  up.mutable_channel_consents(0)->set_partner_id("pet-food");
  EXPECT_EQ(membership_->consents().UpdateConsents(kVet, up).status().code(), absl::StatusCode::kPermissionDenied);
  up.set_source(v1::CONSENT_SOURCE_BACKOFFICE);
  up.set_idempotency_key("c3");
  ASSERT_TRUE(membership_->consents().UpdateConsents(kBackoffice, up).ok());
  up.set_idempotency_key("c4");
  up.set_source(v1::CONSENT_SOURCE_UNSPECIFIED);
  EXPECT_EQ(membership_->consents().UpdateConsents(kBackoffice, up).status().code(), absl::StatusCode::kInvalidArgument);

  v1::GetConsentsRequest get;
  get.set_member_id(m.member().member_id());
  get.set_include_history(true);
  auto vet_view = membership_->consents().GetConsents(kVet, get);
  ASSERT_TRUE(vet_view.ok());
  ASSERT_EQ(vet_view->consents().channel_consents_size(), 1);
  EXPECT_EQ(vet_view->consents().channel_consents(0).partner_id(), "vet-clinic");
  for (const auto& e : vet_view->history()) EXPECT_NE(e.partner_id(), "pet-food");
  auto bo_view = membership_->consents().GetConsents(kBackoffice, get);
  ASSERT_TRUE(bo_view.ok());
  EXPECT_EQ(bo_view->consents().channel_consents_size(), 2);
  EXPECT_EQ(bo_view->history(0).source(), v1::CONSENT_SOURCE_BACKOFFICE);  // newest first
}

}  // namespace
}  // namespace loyalty::membership
