// Partners (services/settlement/partners.h) on the real store: the
// directory, its validation, idempotency and audit.

#include "tests/services/settlement/settlement_fixture.h"

#include "absl/strings/match.h"
#include "common/time/proto_time.h"
#include "gtest/gtest.h"

namespace loyalty::settlement {
namespace {

TEST_F(SettlementTest, PartnerDirectoryValidatesIsIdempotentAndAudited) {
  v1::CreatePartnerRequest r;
  r.set_idempotency_key("k1");
  *r.mutable_partner() = PartnerOf("vet", v1::BUSINESS_CATEGORY_VET_CLINIC);
  auto first = settlement_->partners().CreatePartner(backoffice_, r);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->partner().status(), v1::PARTNER_STATUS_ONBOARDING);
  EXPECT_EQ(first->partner().version(), 1);
  // Same key, same request: the same answer.
  auto again = settlement_->partners().CreatePartner(backoffice_, r);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->partner().created_at().seconds(), first->partner().created_at().seconds());
  EXPECT_EQ(again->partner().created_at().nanos(), first->partner().created_at().nanos());
  // Same key, another request: ALREADY_EXISTS naming the field.
  v1::CreatePartnerRequest changed = r;
  changed.mutable_partner()->set_legal_name("Other GmbH");
  auto conflict = settlement_->partners().CreatePartner(backoffice_, changed);
  EXPECT_EQ(conflict.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(absl::StrContains(conflict.status().message(), "partner.legal_name")) << conflict.status();
  // The id taken, under a new key.
  changed.set_idempotency_key("k2");
  EXPECT_EQ(settlement_->partners().CreatePartner(backoffice_, changed).status().code(),
            absl::StatusCode::kAlreadyExists);

  // Validation names the field.
  struct Bad {
    std::function<void(v1::Partner&)> mutate;
    std::string field;
  };
  for (const Bad& bad : std::vector<Bad>{
           {[](v1::Partner& p) { p.set_settlement_currency("XYZ"); }, "partner.settlement_currency"},
           {[](v1::Partner& p) { p.set_partner_id("operator"); }, "partner.partner_id"},
           {[](v1::Partner& p) { p.set_partner_id("Vet Clinic"); }, "partner.partner_id"},
           {[](v1::Partner& p) { p.set_legal_name(""); }, "partner.legal_name"},
           {[](v1::Partner& p) { p.set_country("Germany"); }, "partner.country"},
           {[](v1::Partner& p) { p.mutable_billing_contact()->set_email("NOT-AN-EMAIL"); },
            "partner.billing_contact.email"},
           {[](v1::Partner& p) { p.set_business_category(v1::BUSINESS_CATEGORY_UNSPECIFIED); },
            "partner.business_category"},
       }) {
    v1::CreatePartnerRequest b;
    b.set_idempotency_key("bad");
    *b.mutable_partner() = PartnerOf("shop", v1::BUSINESS_CATEGORY_PET_SHOP);
    bad.mutate(*b.mutable_partner());
    auto s = settlement_->partners().CreatePartner(backoffice_, b).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad.field;
    EXPECT_TRUE(absl::StartsWith(s.message(), bad.field)) << s;
  }

  // Update: only masked fields change; stale versions are ABORTED; audited.
  v1::UpdatePartnerRequest u;
  u.set_idempotency_key("u1");
  u.set_partner_id("vet");
  u.mutable_partner()->set_display_name("Vet Clinic Mitte");
  u.mutable_partner()->set_legal_name("ignored");
  u.mutable_update_mask()->add_paths("display_name");
  u.set_expected_version(1);
  auto updated = settlement_->partners().UpdatePartner(backoffice_, u);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->partner().display_name(), "Vet Clinic Mitte");
  EXPECT_EQ(updated->partner().legal_name(), "vet GmbH");
  EXPECT_EQ(updated->partner().version(), 2);
  u.set_idempotency_key("u2");
  EXPECT_EQ(settlement_->partners().UpdatePartner(backoffice_, u).status().code(), absl::StatusCode::kAborted);
  v1::ListAuditEventsRequest audit;
  audit.set_entity_type("partner");
  audit.set_entity_id("vet");
  auto events = settlement_->audit_events().ListAuditEvents(finance_, audit);
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->events_size(), 2);  // newest first: update, create
  EXPECT_EQ(events->events(0).actor_key_id(), "bo-key");
  EXPECT_TRUE(absl::StrContains(events->events(0).before_json(), "\"display_name\":\"vet\""));
  EXPECT_TRUE(absl::StrContains(events->events(0).after_json(), "Vet Clinic Mitte"));
  EXPECT_EQ(events->events(0).idempotency_key(), "u1");

  // ACTIVE needs a contract in force.
  v1::SetPartnerStatusRequest st;
  st.set_idempotency_key("s1");
  st.set_partner_id("vet");
  st.set_status(v1::PARTNER_STATUS_ACTIVE);
  st.set_reason("go live");
  EXPECT_EQ(settlement_->partners().SetPartnerStatus(backoffice_, st).status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(AddContract("c1", TermsOf("vet", absl::Now() - absl::Hours(1), 10000, 8000, 0, 0)).ok());
  st.set_idempotency_key("s2");
  auto active = settlement_->partners().SetPartnerStatus(backoffice_, st);
  ASSERT_TRUE(active.ok()) << active.status();
  EXPECT_EQ(active->partner().status(), v1::PARTNER_STATUS_ACTIVE);

  // Partners read only themselves.
  Create("food", v1::BUSINESS_CATEGORY_PET_FOOD);
  v1::GetPartnerRequest get;
  get.set_partner_id("vet");
  EXPECT_TRUE(settlement_->partners().GetPartner(vet_, get).ok());
  get.set_partner_id("food");
  EXPECT_EQ(settlement_->partners().GetPartner(vet_, get).status().code(), absl::StatusCode::kPermissionDenied);

  // The snapshot feed: both partners, in version order; nothing after the
  // last version; a change brings the partner back with a higher version.
  auto feed = settlement_->partners().ListPartnerSnapshots(Principal::Of("svc", common::v1::ROLE_SERVICE),
                                                v1::ListPartnerSnapshotsRequest());
  ASSERT_TRUE(feed.ok()) << feed.status();
  ASSERT_EQ(feed->snapshots_size(), 2);
  EXPECT_EQ(feed->snapshots(0).partner_id(), "vet");
  EXPECT_EQ(feed->snapshots(0).status(), v1::PARTNER_STATUS_ACTIVE);
  EXPECT_EQ(feed->snapshots(0).contracts_size(), 1);
  EXPECT_EQ(feed->snapshots(1).partner_id(), "food");
  EXPECT_LT(feed->snapshots(0).version(), feed->snapshots(1).version());
  v1::ListPartnerSnapshotsRequest next;
  next.set_after_version(feed->last_version());
  auto empty = settlement_->partners().ListPartnerSnapshots(Principal::Of("svc", common::v1::ROLE_SERVICE), next);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->snapshots_size(), 0);
  EXPECT_EQ(empty->last_version(), feed->last_version());
  st.set_idempotency_key("s3");
  st.set_status(v1::PARTNER_STATUS_SUSPENDED);
  ASSERT_TRUE(settlement_->partners().SetPartnerStatus(backoffice_, st).ok());
  auto changed_feed =
      settlement_->partners().ListPartnerSnapshots(Principal::Of("svc", common::v1::ROLE_SERVICE), next);
  ASSERT_TRUE(changed_feed.ok());
  ASSERT_EQ(changed_feed->snapshots_size(), 1);
  EXPECT_EQ(changed_feed->snapshots(0).status(), v1::PARTNER_STATUS_SUSPENDED);
  EXPECT_GT(changed_feed->last_version(), feed->last_version());
}

}  // namespace
}  // namespace loyalty::settlement
