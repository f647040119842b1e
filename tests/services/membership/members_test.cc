// Members (members.h): enrolment, visibility and lookup, cards, updates
// and status, and the snapshot feed.
// Runs on the real MySQL store with a fake ledger (membership_fixture.h).

#include <atomic>
#include <functional>
#include <set>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/time/proto_time.h"
#include "gmock/gmock.h"
#include "common/testing/allowed_roles.h"
#include "gtest/gtest.h"
#include "services/membership/codes.h"
#include "tests/services/membership/membership_fixture.h"

namespace loyalty::membership {
namespace {

using ::testing::HasSubstr;

// ---- enrolment ----------------------------------------------------------------

TEST_F(MembershipTest, EnrolNormalisesAndIssuesACard) {
  v1::EnrolRequest r = EnrolOf("k1", "  Anna.Berg@Example.COM ");
  r.set_phone("030 1234567");
  r.set_phone_region("DE");
  r.mutable_birth_date()->set_year(1990);
  r.mutable_birth_date()->set_month(7);
  r.mutable_birth_date()->set_day(14);
  auto* c = r.add_channel_consents();
  c->set_channel(v1::CONTACT_CHANNEL_EMAIL);
  c->set_partner_id("vet-clinic");
  c->set_granted(true);
  auto got = membership_->members().Enrol(kBackoffice, r);
  ASSERT_TRUE(got.ok()) << got.status();
  const v1::Member& m = got->member();
  EXPECT_EQ(m.email(), "anna.berg@example.com");
  EXPECT_EQ(m.phone(), "+49301234567");
  EXPECT_EQ(m.status(), v1::MEMBER_STATUS_ACTIVE);
  EXPECT_EQ(m.tier().tier_id(), "silver");
  EXPECT_EQ(m.tier().tier_multiplier_bp(), 10000);
  EXPECT_EQ(m.tier().next_tier_id(), "gold");
  EXPECT_EQ(m.birth_date().month(), 7);  // backoffice sees it
  EXPECT_TRUE(IsValidCardNumber(got->card().card_number()));
  EXPECT_EQ(got->card().state(), v1::CARD_STATE_ACTIVE);
  EXPECT_EQ(m.referral_code().size(), kReferralCodeLength);

  auto consents = membership_->consents().GetConsents(kBackoffice, [&] {
    v1::GetConsentsRequest q;
    q.set_member_id(m.member_id());
    q.set_include_history(true);
    return q;
  }());
  ASSERT_TRUE(consents.ok()) << consents.status();
  EXPECT_EQ(consents->consents().terms_version(), "2025-01");
  ASSERT_EQ(consents->consents().channel_consents_size(), 1);
  EXPECT_EQ(consents->consents().channel_consents(0).source(), v1::CONSENT_SOURCE_ENROLMENT);
  EXPECT_EQ(consents->history_size(), 3);  // channel + terms + privacy
}

TEST_F(MembershipTest, EnrolRefusesBadInputNamingTheFieldAndWritesNothing) {
  struct Case {
    std::function<void(v1::EnrolRequest&)> mutate;
    std::string field;
  };
  const std::vector<Case> cases = {
      {[](auto& r) { r.set_email("not-an-email"); }, "email"},
      {[](auto& r) { r.set_email(""); }, "email"},
      {[](auto& r) { r.set_phone("12ab"); }, "phone"},
      {[](auto& r) { r.set_given_name(""); }, "given_name"},
      {[](auto& r) { r.set_given_name(std::string(101, 'a')); }, "given_name"},
      {[](auto& r) { r.set_family_name(std::string(101, 'b')); }, "family_name"},
      {[](auto& r) {
         r.mutable_birth_date()->set_year(2030);
         r.mutable_birth_date()->set_month(1);
         r.mutable_birth_date()->set_day(1);
       }, "birth_date"},
      {[](auto& r) { r.set_preferred_language("xx"); }, "preferred_language"},
      {[](auto& r) { r.set_terms_version("1999-01"); }, "terms_version"},
      {[](auto& r) { r.set_privacy_version(""); }, "privacy_version"},
      {[](auto& r) { r.set_idempotency_key(""); }, "idempotency_key"},
      {[](auto& r) { r.set_referral_code("NOPE0000"); }, "referral_code"},
      {[](auto& r) { r.add_channel_consents()->set_partner_id("vet-clinic"); }, "channel_consents[0].channel"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    v1::EnrolRequest r = EnrolOf(absl::StrCat("bad-", i), absl::StrCat("bad", i, "@example.com"));
    cases[i].mutate(r);
    auto got = membership_->members().Enrol(kVet, r);
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << cases[i].field << ": " << got.status();
    EXPECT_THAT(std::string(got.status().message()), HasSubstr(cases[i].field));
  }
  EXPECT_EQ(Count("SELECT COUNT(*) FROM members"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM cards"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM idempotency"), 0);  // INVALID_ARGUMENT is not stored
}

TEST_F(MembershipTest, PartnerEnrolsOnlyForItself) {
  auto got = membership_->members().Enrol(kVet, EnrolOf("k1", "a@example.com", "pet-food"));
  EXPECT_EQ(got.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM members"), 0);
}

TEST_F(MembershipTest, EnrolIsIdempotentByKey) {
  v1::EnrolResponse first = MustEnrol("k1", "a@example.com");
  auto again = membership_->members().Enrol(kVet, EnrolOf("k1", "a@example.com"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->member().member_id(), first.member().member_id());
  EXPECT_EQ(again->card().card_number(), first.card().card_number());
  // The same key from another credential is another request.
  auto other = membership_->members().Enrol(Principal::Partner("vet0000000000002", "vet-clinic"), EnrolOf("k1", "a@example.com"));
  EXPECT_EQ(other.status().code(), absl::StatusCode::kAlreadyExists);  // the email, not the key
  // The same key with another request names the differing field.
  v1::EnrolRequest changed = EnrolOf("k1", "a@example.com");
  changed.set_given_name("Berta");
  auto conflict = membership_->members().Enrol(kVet, changed);
  EXPECT_EQ(conflict.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(conflict.status().message()), HasSubstr("given_name"));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM members"), 1);
}

TEST_F(MembershipTest, DuplicateEmailOrPhoneNamesTheExistingMemberOnly) {
  v1::EnrolResponse first = MustEnrol("k1", "a@example.com");
  auto dup = membership_->members().Enrol(kFood, EnrolOf("k2", "A@example.com ", "pet-food"));
  ASSERT_EQ(dup.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(dup.status().message()), HasSubstr("email"));
  EXPECT_THAT(std::string(dup.status().message()), ::testing::Not(HasSubstr("a@example.com")));
  auto id = dup.status().GetPayload(kExistingMemberIdKey);
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(std::string(*id), first.member().member_id());
  // The refusal is the key's answer, payload included.
  auto replay = membership_->members().Enrol(kFood, EnrolOf("k2", "A@example.com ", "pet-food"));
  EXPECT_EQ(replay.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(std::string(*replay.status().GetPayload(kExistingMemberIdKey)), first.member().member_id());

  v1::EnrolRequest by_phone = EnrolOf("k3", "other@example.com");
  by_phone.set_phone("+49 30 1234567");
  MustEnrol("k3b", "third@example.com");
  ASSERT_TRUE(membership_->members().Enrol(kVet, by_phone).ok());
  v1::EnrolRequest same_phone = EnrolOf("k4", "fourth@example.com");
  same_phone.set_phone("0049301234567");
  EXPECT_EQ(membership_->members().Enrol(kVet, same_phone).status().code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(MembershipTest, ConcurrentEnrolmentsWithOneEmailCreateOneMember) {
  constexpr int kThreads = 8;
  std::atomic<int> ok{0}, dup{0};
  absl::Mutex mu;
  std::string others;  // any other answer, for the failure message
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto r = membership_->members().Enrol(kVet, EnrolOf(absl::StrCat("race-", i), "race@example.com"));
      if (r.ok()) ++ok;
      if (absl::IsAlreadyExists(r.status())) ++dup;
      if (!r.ok() && !absl::IsAlreadyExists(r.status())) {
        absl::MutexLock lock(&mu);
        absl::StrAppend(&others, r.status().ToString(), "\n");
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1) << others;
  EXPECT_EQ(dup.load(), kThreads - 1) << others;
  EXPECT_EQ(Count("SELECT COUNT(*) FROM members"), 1);
}

TEST_F(MembershipTest, RetryStormWithOneKeyEnrolsOnce) {
  constexpr int kThreads = 10;
  absl::Mutex mu;
  std::set<std::string> ids;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      auto r = membership_->members().Enrol(kVet, EnrolOf("storm", "storm@example.com"));
      ASSERT_TRUE(r.ok()) << r.status();
      absl::MutexLock lock(&mu);
      ids.insert(r->member().member_id());
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM members"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM cards"), 1);
}

// ---- visibility and lookup -----------------------------------------------------------

TEST_F(MembershipTest, PartnersSeeOnlyTheirMembersRedacted) {
  v1::EnrolResponse m = MustEnrol("k1", "a@example.com");
  v1::GetMemberRequest get;
  get.set_member_id(m.member().member_id());
  auto own = membership_->members().GetMember(kVet, get);
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_EQ(own->member().email(), "a@example.com");
  EXPECT_THAT(own->member().redacted_fields(), ::testing::Contains("birth_date"));

  auto other = membership_->members().GetMember(kFood, get);
  EXPECT_EQ(other.status().code(), absl::StatusCode::kNotFound);
  v1::GetMemberRequest missing;
  missing.set_member_id("mb_doesnotexist");
  // Same answer as for a member that does not exist: existence is not revealed.
  EXPECT_EQ(membership_->members().GetMember(kFood, missing).status().message(), other.status().message());

  v1::LookupMemberRequest by_email;
  by_email.set_email("a@example.com");
  EXPECT_EQ(membership_->members().LookupMember(kFood, by_email).status().code(), absl::StatusCode::kNotFound);

  // The member shares their profile with the pet-food maker (captured at the vet).
  v1::UpdateConsentsRequest share;
  share.set_idempotency_key("share");
  share.set_member_id(m.member().member_id());
  share.set_source(v1::CONSENT_SOURCE_BACKOFFICE);
  auto* d = share.add_data_sharing();
  d->set_partner_id("pet-food");
  d->set_granted(true);
  ASSERT_TRUE(membership_->consents().UpdateConsents(kBackoffice, share).ok());
  EXPECT_TRUE(membership_->members().GetMember(kFood, get).ok());
  EXPECT_TRUE(membership_->members().LookupMember(kFood, by_email).ok());
}

TEST_F(MembershipTest, LookupByCardPhoneAndEmailAndBlockedCards) {
  v1::EnrolRequest r = EnrolOf("k1", "a@example.com");
  r.set_phone("+41 44 123 45 67");
  auto enrolled = membership_->members().Enrol(kVet, r);
  ASSERT_TRUE(enrolled.ok());
  const std::string card = enrolled->card().card_number();
  v1::LookupMemberRequest q;
  q.set_card_number(card.substr(0, 4) + " " + card.substr(4));
  auto by_card = membership_->members().LookupMember(kVet, q);
  ASSERT_TRUE(by_card.ok()) << by_card.status();
  EXPECT_EQ(by_card->member().member_id(), enrolled->member().member_id());
  EXPECT_EQ(by_card->card().card_number(), card);
  v1::LookupMemberRequest by_phone;
  by_phone.set_phone("+41441234567");
  EXPECT_TRUE(membership_->members().LookupMember(kVet, by_phone).ok());
  v1::LookupMemberRequest bad;
  bad.set_card_number(card.substr(0, 15) + static_cast<char>('0' + (card[15] - '0' + 1) % 10));
  EXPECT_EQ(membership_->members().LookupMember(kVet, bad).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(membership_->members().LookupMember(kVet, v1::LookupMemberRequest()).status().code(),
            absl::StatusCode::kInvalidArgument);

  v1::BlockCardRequest block;
  block.set_idempotency_key("block");
  block.set_card_number(card);
  block.set_block_reason(v1::CARD_BLOCK_REASON_LOST);
  auto blocked = membership_->members().BlockCard(kVet, block);
  ASSERT_TRUE(blocked.ok()) << blocked.status();
  EXPECT_EQ(blocked->card().state(), v1::CARD_STATE_BLOCKED);
  EXPECT_EQ(membership_->members().LookupMember(kVet, q).status().code(), absl::StatusCode::kNotFound);
  auto bo = membership_->members().LookupMember(kBackoffice, q);
  ASSERT_TRUE(bo.ok());
  EXPECT_EQ(bo->card().state(), v1::CARD_STATE_BLOCKED);
  block.set_idempotency_key("block-again");
  EXPECT_EQ(membership_->members().BlockCard(kVet, block).status().code(), absl::StatusCode::kFailedPrecondition);

  v1::IssueCardRequest issue;
  issue.set_idempotency_key("issue");
  issue.set_member_id(enrolled->member().member_id());
  issue.set_replaces_card_number(card);
  auto fresh = membership_->members().IssueCard(kVet, issue);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_NE(fresh->card().card_number(), card);
  v1::LookupMemberRequest q2;
  q2.set_card_number(fresh->card().card_number());
  EXPECT_TRUE(membership_->members().LookupMember(kVet, q2).ok());
  v1::GetMemberRequest get;
  get.set_member_id(enrolled->member().member_id());
  EXPECT_EQ(membership_->members().GetMember(kVet, get)->cards_size(), 1);        // partners: active cards only
  EXPECT_EQ(membership_->members().GetMember(kBackoffice, get)->cards_size(), 2);  // backoffice: all
}

TEST_F(MembershipTest, ReplacingAnActiveCardMarksItReplaced) {
  v1::EnrolResponse m = MustEnrol("k1", "a@example.com");
  v1::IssueCardRequest issue;
  issue.set_idempotency_key("issue");
  issue.set_member_id(m.member().member_id());
  issue.set_replaces_card_number(m.card().card_number());
  auto fresh = membership_->members().IssueCard(kBackoffice, issue);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  v1::LookupMemberRequest old;
  old.set_card_number(m.card().card_number());
  auto seen = membership_->members().LookupMember(kBackoffice, old);
  ASSERT_TRUE(seen.ok());
  EXPECT_EQ(seen->card().state(), v1::CARD_STATE_REPLACED);
  EXPECT_EQ(seen->card().replaced_by_card_number(), fresh->card().card_number());
  EXPECT_EQ(membership_->members().LookupMember(kVet, old).status().code(), absl::StatusCode::kNotFound);
  // Someone else's card cannot be named.
  v1::EnrolResponse other = MustEnrol("k2", "b@example.com");
  issue.set_idempotency_key("issue-2");
  issue.set_replaces_card_number(other.card().card_number());
  EXPECT_EQ(membership_->members().IssueCard(kBackoffice, issue).status().code(), absl::StatusCode::kNotFound);
}

// ---- updates and status ------------------------------------------------------------

TEST_F(MembershipTest, UpdateMemberChecksVersionUniquenessAndStatus) {
  v1::EnrolResponse a = MustEnrol("k1", "a@example.com");
  MustEnrol("k2", "b@example.com");
  v1::UpdateMemberRequest up;
  up.set_idempotency_key("u1");
  up.set_member_id(a.member().member_id());
  up.mutable_member()->set_email("New@Example.com");
  up.mutable_update_mask()->add_paths("email");
  up.set_expected_version(a.member().version());
  auto updated = membership_->members().UpdateMember(kVet, up);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->member().email(), "new@example.com");
  EXPECT_EQ(updated->member().version(), a.member().version() + 1);

  up.set_idempotency_key("u2");  // stale version
  EXPECT_EQ(membership_->members().UpdateMember(kVet, up).status().code(), absl::StatusCode::kAborted);
  up.set_idempotency_key("u3");
  up.set_expected_version(0);
  up.mutable_member()->set_email("b@example.com");
  EXPECT_EQ(membership_->members().UpdateMember(kVet, up).status().code(), absl::StatusCode::kAlreadyExists);
  up.set_idempotency_key("u4");
  up.mutable_update_mask()->add_paths("status");
  auto bad_mask = membership_->members().UpdateMember(kVet, up);
  EXPECT_EQ(bad_mask.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad_mask.status().message()), HasSubstr("update_mask"));

  v1::SetMemberStatusRequest close;
  close.set_idempotency_key("close");
  close.set_member_id(a.member().member_id());
  close.set_status(v1::MEMBER_STATUS_CLOSED);
  close.set_reason("member asked");
  ASSERT_TRUE(membership_->members().SetMemberStatus(kBackoffice, close).ok());
  up.set_idempotency_key("u5");
  up.clear_update_mask();
  up.mutable_update_mask()->add_paths("given_name");
  up.mutable_member()->set_given_name("Zoë");
  EXPECT_EQ(membership_->members().UpdateMember(kVet, up).status().code(), absl::StatusCode::kFailedPrecondition);
  close.set_idempotency_key("reopen");
  close.set_status(v1::MEMBER_STATUS_ACTIVE);
  EXPECT_EQ(membership_->members().SetMemberStatus(kBackoffice, close).status().code(), absl::StatusCode::kFailedPrecondition);
  close.set_reason("");
  EXPECT_EQ(membership_->members().SetMemberStatus(kBackoffice, close).status().code(), absl::StatusCode::kInvalidArgument);
  // A partner key may not set a status at all (allowed_roles, checked by the RpcGuard).
  EXPECT_EQ(loyalty::testing::RoleCheck(kVet, "loyalty.membership.v1.MembershipService.SetMemberStatus").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(loyalty::testing::RoleCheck(kBackoffice, "loyalty.membership.v1.MembershipService.SetMemberStatus").ok());
}

TEST_F(MembershipTest, SnapshotFeedCarriesStatusAndTierChangesInOrder) {
  v1::EnrolResponse a = MustEnrol("k1", "a@example.com");
  v1::EnrolResponse b = MustEnrol("k2", "b@example.com");
  v1::ListMemberSnapshotsRequest feed;
  auto all = membership_->members().ListMemberSnapshots(kService, feed);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->snapshots_size(), 2);
  EXPECT_LT(all->snapshots(0).version(), all->snapshots(1).version());
  EXPECT_EQ(all->ladder().tiers_size(), 3);
  const int64_t cursor = all->last_version();

  v1::SetMemberStatusRequest suspend;
  suspend.set_idempotency_key("s");
  suspend.set_member_id(a.member().member_id());
  suspend.set_status(v1::MEMBER_STATUS_SUSPENDED);
  suspend.set_reason("fraud check");
  ASSERT_TRUE(membership_->members().SetMemberStatus(kBackoffice, suspend).ok());
  // A name change is not in the snapshot and takes no feed version.
  v1::UpdateMemberRequest rename;
  rename.set_idempotency_key("r");
  rename.set_member_id(b.member().member_id());
  rename.mutable_member()->set_given_name("Bea");
  rename.mutable_update_mask()->add_paths("given_name");
  ASSERT_TRUE(membership_->members().UpdateMember(kVet, rename).ok());

  feed.set_after_version(cursor);
  auto changed = membership_->members().ListMemberSnapshots(kService, feed);
  ASSERT_TRUE(changed.ok());
  ASSERT_EQ(changed->snapshots_size(), 1);
  EXPECT_EQ(changed->snapshots(0).member_id(), a.member().member_id());
  EXPECT_EQ(changed->snapshots(0).status(), v1::MEMBER_STATUS_SUSPENDED);
  EXPECT_FALSE(changed->has_more());

  feed.set_after_version(0);
  feed.set_page_size(1);
  auto paged = membership_->members().ListMemberSnapshots(kService, feed);
  ASSERT_TRUE(paged.ok());
  EXPECT_EQ(paged->snapshots_size(), 1);
  EXPECT_TRUE(paged->has_more());
  feed.set_after_version(-1);
  EXPECT_EQ(membership_->members().ListMemberSnapshots(kService, feed).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace loyalty::membership
