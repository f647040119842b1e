// Every documented input constraint of membership.proto, one row each: the
// row sends one request that breaks exactly that constraint, and expects
// INVALID_ARGUMENT whose message starts with the field path, every table of
// the membership schema unchanged (no member, card, consent, tier change,
// segment, audit event or idempotency record) and no bonus granted at the
// (fake) ledger. Real MariaDB store.
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/db/migrations.h"
#include "common/testing/test_db.h"
#include "common/time/proto_time.h"
#include "gtest/gtest.h"
#include "tests/common/validation_rows.h"
#include "services/membership/membership.h"
#include "services/membership/mysql_membership_store.h"

namespace loyalty::membership {
const std::vector<db::MigrationFile>& Migrations();

namespace {

namespace validation = ::loyalty::testing::validation;
using validation::Accented;
using validation::Make;
using validation::Row;

using auth::Principal;

const Principal kBackoffice = Principal::Of("bo000000000000001", common::v1::ROLE_BACKOFFICE);
const Principal kService = Principal::Of("svc0000000000001", common::v1::ROLE_SERVICE);

// The ledger as membership sees it: no points, an empty journal; counts the
// calls that would change it.
class QuietLedger final : public LedgerClient {
 public:
  absl::StatusOr<absl::flat_hash_map<std::string, int64_t>> QualifyingPoints(const std::vector<std::string>& ids,
                                                                            absl::Time, absl::Time) override {
    absl::flat_hash_map<std::string, int64_t> out;
    for (const auto& id : ids) out[id] = 0;
    return out;
  }
  absl::StatusOr<LedgerStatement> Statement(const std::string&) override { return LedgerStatement(); }
  absl::StatusOr<JournalPage> ReadJournal(int64_t after, int) override {
    JournalPage page;
    page.last_sequence = after;
    page.head_sequence = after;
    return page;
  }
  absl::StatusOr<std::string> GrantBonus(const std::string&, const std::string&, int64_t, ledger::v1::BonusKind,
                                         const std::string&, const std::string&) override {
    absl::MutexLock lock(&mu_);
    ++grants_;
    return std::string("tr-bonus");
  }
  int grants() {
    absl::MutexLock lock(&mu_);
    return grants_;
  }

 private:
  absl::Mutex mu_;
  int grants_ ABSL_GUARDED_BY(mu_) = 0;
};

v1::TierDefinition Tier(const std::string& id, int rank, int64_t threshold, int64_t multiplier_bp) {
  v1::TierDefinition t;
  t.set_tier_id(id);
  t.set_name(id);
  t.set_rank(rank);
  t.set_qualifying_points_threshold(threshold);
  t.set_tier_multiplier_bp(multiplier_bp);
  t.set_retention_months(12);
  return t;
}

class MembershipValidationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = loyalty::testing::TestDatabase::Create("member");
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    auto applied = db::ApplyMigrations(db_->pool(), Migrations());
    ASSERT_TRUE(applied.ok()) << applied.status();
    store_ = NewMysqlMembershipStore(db_->pool());
    membership_ = std::make_unique<Membership>(*store_, ledger_);
    // State for the rows that need it: a member with a card, a segment.
    auto enrolled = membership_->members().Enrol(kBackoffice, EnrolBase());
    ASSERT_TRUE(enrolled.ok()) << enrolled.status();
    member_id_ = enrolled->member().member_id();
    card_number_ = enrolled->card().card_number();
    v1::CreateSegmentRequest segment;
    segment.set_idempotency_key("setup-segment");
    segment.set_name("Everyone");
    auto created = membership_->segment_admin().CreateSegment(kBackoffice, segment);
    ASSERT_TRUE(created.ok()) << created.status();
    segment_id_ = created->segment().segment_id();
  }

  static v1::EnrolRequest EnrolBase() {
    v1::EnrolRequest r;
    r.set_idempotency_key("enrol-1");
    r.set_given_name("Anna");
    r.set_family_name("Berg");
    r.set_email("anna@example.com");
    r.set_preferred_language("de");
    r.set_enrolling_partner_id("vet-clinic");
    r.set_terms_version("2025-01");
    r.set_privacy_version("2025-01");
    return r;
  }
  static v1::EnrolRequest EnrolOther() {
    v1::EnrolRequest r = EnrolBase();
    r.set_idempotency_key("enrol-bad");
    r.set_email("other@example.com");
    return r;
  }
  static v1::SetTierLadderRequest LadderBase() {
    v1::SetTierLadderRequest r;
    r.set_idempotency_key("ladder-bad");
    v1::TierLadder* l = r.mutable_ladder();
    l->set_qualification_window_months(12);
    *l->add_tiers() = Tier("silver", 0, 0, 10'000);
    *l->add_tiers() = Tier("gold", 1, 2000, 12'500);
    *l->add_tiers() = Tier("platinum", 2, 5000, 15'000);
    return r;
  }

  std::string State() {
    auto tables = loyalty::testing::TableChecksumsForTest(db_->pool());
    EXPECT_TRUE(tables.ok()) << tables.status();
    return absl::StrCat(tables.ok() ? *tables : "", "ledger grants ", ledger_.grants(), "\n");
  }

  void RunRows(const std::vector<Row>& rows) {
    validation::ExpectEachRefusedWritingNothing(rows, [this] { return State(); }, "members ");
  }

  std::unique_ptr<loyalty::testing::TestDatabase> db_;
  std::unique_ptr<MembershipStore> store_;
  QuietLedger ledger_;
  std::unique_ptr<Membership> membership_;
  std::string member_id_, card_number_, segment_id_;
};

TEST_F(MembershipValidationTest, MembersAndCardsRefuseEachDocumentedViolationAndWriteNothing) {
  using Enrol = v1::EnrolRequest;
  auto enrol = [this](const Enrol& r) { return membership_->members().Enrol(kBackoffice, r).status(); };
  v1::UpdateMemberRequest update_base;
  update_base.set_idempotency_key("update-bad");
  update_base.set_member_id(member_id_);
  update_base.mutable_update_mask()->add_paths("given_name");
  update_base.mutable_member()->set_given_name("Anne");
  using Upd = v1::UpdateMemberRequest;
  auto update = [this](const Upd& r) { return membership_->members().UpdateMember(kBackoffice, r).status(); };
  v1::SetMemberStatusRequest status_base;
  status_base.set_idempotency_key("status-bad");
  status_base.set_member_id(member_id_);
  status_base.set_status(v1::MEMBER_STATUS_SUSPENDED);
  status_base.set_reason("fraud check");
  using Status = v1::SetMemberStatusRequest;
  auto set_status = [this](const Status& r) { return membership_->members().SetMemberStatus(kBackoffice, r).status(); };
  v1::IssueCardRequest issue_base;
  issue_base.set_idempotency_key("issue-bad");
  issue_base.set_member_id(member_id_);
  using Issue = v1::IssueCardRequest;
  auto issue = [this](const Issue& r) { return membership_->members().IssueCard(kBackoffice, r).status(); };
  v1::BlockCardRequest block_base;
  block_base.set_idempotency_key("block-bad");
  block_base.set_card_number(card_number_);
  block_base.set_block_reason(v1::CARD_BLOCK_REASON_LOST);
  using Block = v1::BlockCardRequest;
  auto block = [this](const Block& r) { return membership_->members().BlockCard(kBackoffice, r).status(); };
  v1::EraseMemberRequest erase_base;
  erase_base.set_idempotency_key("erase-bad");
  erase_base.set_member_id(member_id_);
  erase_base.set_reason("GDPR request 7");
  using Erase = v1::EraseMemberRequest;
  auto erase = [this](const Erase& r) { return membership_->privacy().EraseMember(kBackoffice, r).status(); };

  const std::vector<Row> rows = {
      Make<Enrol>("enrol: empty key", "idempotency_key", EnrolOther(), [](Enrol& r) { r.set_idempotency_key(""); },
                  enrol),
      Make<Enrol>("enrol: no given name", "given_name", EnrolOther(), [](Enrol& r) { r.set_given_name(" "); }, enrol),
      Make<Enrol>("enrol: given name of 101 characters", "given_name", EnrolOther(),
                  [](Enrol& r) { r.set_given_name(Accented(101)); }, enrol),
      Make<Enrol>("enrol: family name of 101 characters", "family_name", EnrolOther(),
                  [](Enrol& r) { r.set_family_name(Accented(101)); }, enrol),
      Make<Enrol>("enrol: neither email nor phone", "email", EnrolOther(), [](Enrol& r) { r.set_email(""); }, enrol),
      Make<Enrol>("enrol: malformed email", "email", EnrolOther(), [](Enrol& r) { r.set_email("anna.example.com"); },
                  enrol),
      Make<Enrol>("enrol: email of 255 characters", "email", EnrolOther(),
                  [](Enrol& r) { r.set_email(std::string(60, 'a') + "@" + std::string(190, 'b') + ".com"); }, enrol),
      Make<Enrol>("enrol: phone not E.164", "phone", EnrolOther(), [](Enrol& r) { r.set_phone("030 1234567"); },
                  enrol),
      Make<Enrol>("enrol: phone region not alpha-2", "phone_region", EnrolOther(),
                  [](Enrol& r) {
                    r.set_phone("+4915112345678");
                    r.set_phone_region("Germany");
                  },
                  enrol),
      Make<Enrol>("enrol: birth date in the future", "birth_date", EnrolOther(),
                  [](Enrol& r) {
                    r.mutable_birth_date()->set_year(2999);
                    r.mutable_birth_date()->set_month(1);
                    r.mutable_birth_date()->set_day(1);
                  },
                  enrol),
      Make<Enrol>("enrol: birth year 1899", "birth_date", EnrolOther(),
                  [](Enrol& r) {
                    r.mutable_birth_date()->set_year(1899);
                    r.mutable_birth_date()->set_month(1);
                    r.mutable_birth_date()->set_day(1);
                  },
                  enrol),
      Make<Enrol>("enrol: 31 February", "birth_date", EnrolOther(),
                  [](Enrol& r) {
                    r.mutable_birth_date()->set_year(1990);
                    r.mutable_birth_date()->set_month(2);
                    r.mutable_birth_date()->set_day(31);
                  },
                  enrol),
      Make<Enrol>("enrol: no language", "preferred_language", EnrolOther(),
                  [](Enrol& r) { r.set_preferred_language(""); }, enrol),
      Make<Enrol>("enrol: unsupported language", "preferred_language", EnrolOther(),
                  [](Enrol& r) { r.set_preferred_language("tlh"); }, enrol),
      Make<Enrol>("enrol: no enrolling partner", "enrolling_partner_id", EnrolOther(),
                  [](Enrol& r) { r.set_enrolling_partner_id(""); }, enrol),
      Make<Enrol>("enrol: unspecified channel", "channel_consents[0].channel", EnrolOther(),
                  [](Enrol& r) { r.add_channel_consents()->set_granted(true); }, enrol),
      Make<Enrol>("enrol: unknown channel", "channel_consents[0].channel", EnrolOther(),
                  [](Enrol& r) { r.add_channel_consents()->set_channel(static_cast<v1::ContactChannel>(9)); }, enrol),
      Make<Enrol>("enrol: bad consent partner", "channel_consents[0].partner_id", EnrolOther(),
                  [](Enrol& r) {
                    auto* c = r.add_channel_consents();
                    c->set_channel(v1::CONTACT_CHANNEL_EMAIL);
                    c->set_partner_id("a:b");
                  },
                  enrol),
      Make<Enrol>("enrol: data sharing without partner", "data_sharing[0].partner_id", EnrolOther(),
                  [](Enrol& r) { r.add_data_sharing()->set_granted(true); }, enrol),
      Make<Enrol>("enrol: no terms version", "terms_version", EnrolOther(), [](Enrol& r) { r.set_terms_version(""); },
                  enrol),
      Make<Enrol>("enrol: unknown terms version", "terms_version", EnrolOther(),
                  [](Enrol& r) { r.set_terms_version("1999-01"); }, enrol),
      Make<Enrol>("enrol: no privacy version", "privacy_version", EnrolOther(),
                  [](Enrol& r) { r.set_privacy_version(""); }, enrol),
      Make<Enrol>("enrol: malformed referral code", "referral_code", EnrolOther(),
                  [](Enrol& r) { r.set_referral_code("abc"); }, enrol),
      Make<Upd>("update: no member", "member_id", update_base, [](Upd& r) { r.set_member_id(""); }, update),
      Make<Upd>("update: empty mask", "update_mask", update_base, [](Upd& r) { r.clear_update_mask(); }, update),
      Make<Upd>("update: mask naming status", "update_mask", update_base,
                [](Upd& r) { r.mutable_update_mask()->add_paths("status"); }, update),
      Make<Upd>("update: expected_version -1", "expected_version", update_base,
                [](Upd& r) { r.set_expected_version(-1); }, update),
      Make<Upd>("update: given name of 101 characters", "member.given_name", update_base,
                [](Upd& r) { r.mutable_member()->set_given_name(Accented(101)); }, update),
      Make<Upd>("update: malformed email", "member.email", update_base,
                [](Upd& r) {
                  r.mutable_update_mask()->add_paths("email");
                  r.mutable_member()->set_email("not-an-email");
                },
                update),
      Make<Upd>("update: birth date in the future", "member.birth_date", update_base,
                [](Upd& r) {
                  r.mutable_update_mask()->add_paths("birth_date");
                  r.mutable_member()->mutable_birth_date()->set_year(2999);
                  r.mutable_member()->mutable_birth_date()->set_month(1);
                  r.mutable_member()->mutable_birth_date()->set_day(1);
                },
                update),
      Make<Status>("status: unspecified", "status", status_base,
                   [](Status& r) { r.set_status(v1::MEMBER_STATUS_UNSPECIFIED); }, set_status),
      Make<Status>("status: unknown", "status", status_base,
                   [](Status& r) { r.set_status(static_cast<v1::MemberStatus>(7)); }, set_status),
      Make<Status>("status: no reason", "reason", status_base, [](Status& r) { r.set_reason(""); }, set_status),
      Make<Status>("status: reason of 501 characters", "reason", status_base,
                   [](Status& r) { r.set_reason(Accented(501)); }, set_status),
      Make<Issue>("issue: no member", "member_id", issue_base, [](Issue& r) { r.set_member_id(""); }, issue),
      Make<Issue>("issue: malformed replaced card", "replaces_card_number", issue_base,
                  [](Issue& r) { r.set_replaces_card_number("1234"); }, issue),
      Make<Issue>("issue: reason of 501 characters", "reason", issue_base,
                  [](Issue& r) { r.set_reason(std::string(501, 'r')); }, issue),
      Make<Block>("block: malformed card", "card_number", block_base,
                  [](Block& r) { r.set_card_number("1234567812345678"); }, block),
      Make<Block>("block: unspecified reason", "block_reason", block_base,
                  [](Block& r) { r.set_block_reason(v1::CARD_BLOCK_REASON_UNSPECIFIED); }, block),
      Make<Block>("block: unknown reason", "block_reason", block_base,
                  [](Block& r) { r.set_block_reason(static_cast<v1::CardBlockReason>(9)); }, block),
      Make<Block>("block: note of 501 characters", "note", block_base, [](Block& r) { r.set_note(Accented(501)); },
                  block),
      Make<Erase>("erase: no member", "member_id", erase_base, [](Erase& r) { r.set_member_id(""); }, erase),
      Make<Erase>("erase: no reason", "reason", erase_base, [](Erase& r) { r.set_reason(""); }, erase),
      Make<Erase>("erase: reason of 501 characters", "reason", erase_base,
                  [](Erase& r) { r.set_reason(Accented(501)); }, erase),
      Row{"get: no member", "member_id", [this] { return membership_->members().GetMember(kBackoffice, {}).status(); }},
      Row{"lookup: no key", "key", [this] { return membership_->members().LookupMember(kBackoffice, {}).status(); }},
      Row{"lookup: malformed card", "card_number",
          [this] {
            v1::LookupMemberRequest r;
            r.set_card_number("12");
            return membership_->members().LookupMember(kBackoffice, r).status();
          }},
      Row{"lookup: malformed phone", "phone",
          [this] {
            v1::LookupMemberRequest r;
            r.set_phone("phone");
            return membership_->members().LookupMember(kBackoffice, r).status();
          }},
      Row{"lookup: malformed email", "email",
          [this] {
            v1::LookupMemberRequest r;
            r.set_email("@");
            return membership_->members().LookupMember(kBackoffice, r).status();
          }},
      Row{"export: no member", "member_id",
          [this] { return membership_->privacy().ExportMemberData(kBackoffice, {}).status(); }},
      Row{"snapshots: after_version -1", "after_version",
          [this] {
            v1::ListMemberSnapshotsRequest r;
            r.set_after_version(-1);
            return membership_->members().ListMemberSnapshots(kService, r).status();
          }},
      Row{"audit: end before start", "end_time",
          [this] {
            v1::ListAuditEventsRequest r;
            *r.mutable_start_time() = ToProtoTime(absl::FromUnixSeconds(2000));
            *r.mutable_end_time() = ToProtoTime(absl::FromUnixSeconds(1000));
            return membership_->privacy().ListAuditEvents(kBackoffice, r).status();
          }},
  };
  RunRows(rows);
}

TEST_F(MembershipValidationTest, TiersConsentsAndSegmentsRefuseEachDocumentedViolationAndWriteNothing) {
  using Ladder = v1::SetTierLadderRequest;
  auto set_ladder = [this](const Ladder& r) { return membership_->tier_admin().SetTierLadder(kBackoffice, r).status(); };
  v1::GrantPaidTierRequest grant_base;
  grant_base.set_idempotency_key("grant-bad");
  grant_base.set_member_id(member_id_);
  grant_base.set_tier_id("gold");
  *grant_base.mutable_valid_until() = ToProtoTime(absl::Now() + absl::Hours(24 * 365));
  grant_base.mutable_fee()->set_amount_minor(4900);
  grant_base.mutable_fee()->set_currency("EUR");
  using Grant = v1::GrantPaidTierRequest;
  auto grant = [this](const Grant& r) { return membership_->tier_admin().GrantPaidTier(kBackoffice, r).status(); };
  v1::EvaluateTierRequest evaluate_base;
  evaluate_base.set_idempotency_key("evaluate-bad");
  evaluate_base.set_member_id(member_id_);
  using Evaluate = v1::EvaluateTierRequest;
  auto evaluate = [this](const Evaluate& r) { return membership_->tier_admin().EvaluateTier(kBackoffice, r).status(); };
  v1::RunTierEvaluationRequest run_base;
  run_base.set_idempotency_key("run-bad");
  using Run = v1::RunTierEvaluationRequest;
  auto run = [this](const Run& r) { return membership_->tier_admin().RunTierEvaluation(kBackoffice, r).status(); };
  v1::UpdateConsentsRequest consents_base;
  consents_base.set_idempotency_key("consents-bad");
  consents_base.set_member_id(member_id_);
  consents_base.set_source(v1::CONSENT_SOURCE_BACKOFFICE);
  using Consents = v1::UpdateConsentsRequest;
  auto consents = [this](const Consents& r) { return membership_->consents().UpdateConsents(kBackoffice, r).status(); };
  v1::CreateSegmentRequest segment_base;
  segment_base.set_idempotency_key("segment-bad");
  segment_base.set_name("Gold members");
  using Segment = v1::CreateSegmentRequest;
  auto create_segment = [this](const Segment& r) { return membership_->segment_admin().CreateSegment(kBackoffice, r).status(); };
  v1::UpdateSegmentRequest update_segment_base;
  update_segment_base.set_idempotency_key("update-segment-bad");
  update_segment_base.set_segment_id(segment_id_);
  update_segment_base.mutable_update_mask()->add_paths("name");
  update_segment_base.mutable_segment()->set_name("Renamed");
  using UpdSegment = v1::UpdateSegmentRequest;
  auto update_segment = [this](const UpdSegment& r) {
    return membership_->segment_admin().UpdateSegment(kBackoffice, r).status();
  };
  using Query = v1::QuerySegmentRequest;
  auto query = [this](const Query& r) { return membership_->segment_admin().QuerySegment(kBackoffice, r).status(); };
  Query query_base;
  query_base.mutable_filter();

  const std::vector<Row> rows = {
      Make<Ladder>("ladder: empty key", "idempotency_key", LadderBase(), [](Ladder& r) { r.set_idempotency_key(""); },
                   set_ladder),
      Make<Ladder>("ladder: window 0", "ladder.qualification_window_months", LadderBase(),
                   [](Ladder& r) { r.mutable_ladder()->set_qualification_window_months(0); }, set_ladder),
      Make<Ladder>("ladder: window 37", "ladder.qualification_window_months", LadderBase(),
                   [](Ladder& r) { r.mutable_ladder()->set_qualification_window_months(37); }, set_ladder),
      Make<Ladder>("ladder: no tiers", "ladder.tiers", LadderBase(),
                   [](Ladder& r) { r.mutable_ladder()->clear_tiers(); }, set_ladder),
      Make<Ladder>("ladder: upper-case tier id", "ladder.tiers[1].tier_id", LadderBase(),
                   [](Ladder& r) { r.mutable_ladder()->mutable_tiers(1)->set_tier_id("Gold"); }, set_ladder),
      Make<Ladder>("ladder: tier id of 33", "ladder.tiers[1].tier_id", LadderBase(),
                   [](Ladder& r) { r.mutable_ladder()->mutable_tiers(1)->set_tier_id(std::string(33, 'g')); },
                   set_ladder),
      Make<Ladder>("ladder: tier id twice", "ladder.tiers[2].tier_id", LadderBase(),
                   [](Ladder& r) { r.mutable_ladder()->mutable_tiers(2)->set_tier_id("gold"); }, set_ladder),
      Make<Ladder>("ladder: no tier name", "ladder.tiers[1].name", LadderBase(),
                   [](Ladder& r) { r.mutable_ladder()->mutable_tiers(1)->set_name(""); }, set_ladder),
      Make<Ladder>("ladder: tier name of 65 characters", "ladder.tiers[1].name", LadderBase(),
                   [](Ladder& r) { r.mutable_ladder()->mutable_tiers(1)->set_name(Accented(65)); }, set_ladder),
      Make<Ladder>("ladder: negative rank", "ladder.tiers[1].rank", LadderBase(),
                   [](Ladder& r) { r.mutable_ladder()->mutable_tiers(1)->set_rank(-1); }, set_ladder),
      Make<Ladder>("ladder: rank twice", "ladder.tiers[2].rank", LadderBase(),
                   [](Ladder& r) { r.mutable_ladder()->mutable_tiers(2)->set_rank(1); }, set_ladder),
      Make<Ladder>("ladder: no rank 0", "ladder.tiers", LadderBase(),
                   [](Ladder& r) { r.mutable_ladder()->mutable_tiers(0)->set_rank(3); }, set_ladder),
      Make<Ladder>("ladder: base threshold not 0", "ladder.tiers[0].qualifying_points_threshold", LadderBase(),
                   [](Ladder& r) { r.mutable_ladder()->mutable_tiers(0)->set_qualifying_points_threshold(10); },
                   set_ladder),
      Make<Ladder>("ladder: thresholds not increasing", "ladder.tiers", LadderBase(),
                   [](Ladder& r) { r.mutable_ladder()->mutable_tiers(2)->set_qualifying_points_threshold(2000); },
                   set_ladder),
      Make<Ladder>("ladder: multiplier 9999", "ladder.tiers[1].tier_multiplier_bp", LadderBase(),
                   [](Ladder& r) { r.mutable_ladder()->mutable_tiers(1)->set_tier_multiplier_bp(9999); }, set_ladder),
      Make<Ladder>("ladder: multiplier 100001", "ladder.tiers[1].tier_multiplier_bp", LadderBase(),
                   [](Ladder& r) { r.mutable_ladder()->mutable_tiers(1)->set_tier_multiplier_bp(100'001); },
                   set_ladder),
      Make<Ladder>("ladder: retention 37", "ladder.tiers[1].retention_months", LadderBase(),
                   [](Ladder& r) { r.mutable_ladder()->mutable_tiers(1)->set_retention_months(37); }, set_ladder),
      Make<Ladder>("ladder: negative fee", "ladder.tiers[1].annual_fee.amount_minor", LadderBase(),
                   [](Ladder& r) {
                     r.mutable_ladder()->mutable_tiers(1)->mutable_annual_fee()->set_amount_minor(-1);
                     r.mutable_ladder()->mutable_tiers(1)->mutable_annual_fee()->set_currency("EUR");
                   },
                   set_ladder),
      Make<Ladder>("ladder: fee in an unknown currency", "ladder.tiers[1].annual_fee.currency", LadderBase(),
                   [](Ladder& r) {
                     r.mutable_ladder()->mutable_tiers(1)->mutable_annual_fee()->set_amount_minor(4900);
                     r.mutable_ladder()->mutable_tiers(1)->mutable_annual_fee()->set_currency("XYZ");
                   },
                   set_ladder),
      Make<Ladder>("ladder: expected_version -1", "expected_version", LadderBase(),
                   [](Ladder& r) { r.set_expected_version(-1); }, set_ladder),
      Make<Grant>("grant: no member", "member_id", grant_base, [](Grant& r) { r.set_member_id(""); }, grant),
      Make<Grant>("grant: no tier", "tier_id", grant_base, [](Grant& r) { r.set_tier_id(""); }, grant),
      Make<Grant>("grant: no valid_until", "valid_until", grant_base, [](Grant& r) { r.clear_valid_until(); }, grant),
      Make<Grant>("grant: valid_until in the past", "valid_until", grant_base,
                  [](Grant& r) { *r.mutable_valid_until() = ToProtoTime(absl::FromUnixSeconds(1000)); }, grant),
      Make<Grant>("grant: valid_until 6 years ahead", "valid_until", grant_base,
                  [](Grant& r) { *r.mutable_valid_until() = ToProtoTime(absl::Now() + absl::Hours(24 * 366 * 6)); },
                  grant),
      Make<Grant>("grant: negative fee", "fee.amount_minor", grant_base,
                  [](Grant& r) { r.mutable_fee()->set_amount_minor(-1); }, grant),
      Make<Grant>("grant: fee without currency", "fee.currency", grant_base,
                  [](Grant& r) { r.mutable_fee()->set_currency(""); }, grant),
      Make<Grant>("grant: fee in an unknown currency", "fee.currency", grant_base,
                  [](Grant& r) { r.mutable_fee()->set_currency("ABC"); }, grant),
      Make<Grant>("grant: payment reference of 65 characters", "payment_reference", grant_base,
                  [](Grant& r) { r.set_payment_reference(Accented(65)); }, grant),
      Make<Evaluate>("evaluate: no member", "member_id", evaluate_base, [](Evaluate& r) { r.set_member_id(""); },
                     evaluate),
      Make<Evaluate>("evaluate: empty key", "idempotency_key", evaluate_base,
                     [](Evaluate& r) { r.set_idempotency_key(""); }, evaluate),
      Make<Evaluate>("evaluate: as_of in the future", "as_of", evaluate_base,
                     [](Evaluate& r) { *r.mutable_as_of() = ToProtoTime(absl::Now() + absl::Hours(1)); }, evaluate),
      Make<Run>("run: batch -1", "batch_size", run_base, [](Run& r) { r.set_batch_size(-1); }, run),
      Make<Run>("run: batch 5001", "batch_size", run_base, [](Run& r) { r.set_batch_size(5001); }, run),
      Make<Run>("run: malformed resume token", "resume_token", run_base, [](Run& r) { r.set_resume_token("??"); },
                run),
      Make<Run>("run: as_of in the future", "as_of", run_base,
                [](Run& r) { *r.mutable_as_of() = ToProtoTime(absl::Now() + absl::Hours(1)); }, run),
      Make<Consents>("consents: no member", "member_id", consents_base, [](Consents& r) { r.set_member_id(""); },
                     consents),
      Make<Consents>("consents: unspecified source", "source", consents_base,
                     [](Consents& r) { r.set_source(v1::CONSENT_SOURCE_UNSPECIFIED); }, consents),
      Make<Consents>("consents: unknown source", "source", consents_base,
                     [](Consents& r) { r.set_source(static_cast<v1::ConsentSource>(99)); }, consents),
      Make<Consents>("consents: unknown channel", "channel_consents[0].channel", consents_base,
                     [](Consents& r) { r.add_channel_consents()->set_channel(static_cast<v1::ContactChannel>(4)); },
                     consents),
      Make<Consents>("consents: data sharing without partner", "data_sharing[0].partner_id", consents_base,
                     [](Consents& r) { r.add_data_sharing(); }, consents),
      Make<Consents>("consents: unknown terms version", "terms_version", consents_base,
                     [](Consents& r) { r.set_terms_version("2030-01"); }, consents),
      Make<Consents>("consents: privacy version with a space", "privacy_version", consents_base,
                     [](Consents& r) { r.set_privacy_version("2025 01"); }, consents),
      Make<Segment>("segment: empty key", "idempotency_key", segment_base,
                    [](Segment& r) { r.set_idempotency_key(""); }, create_segment),
      Make<Segment>("segment: no name", "name", segment_base, [](Segment& r) { r.set_name(""); }, create_segment),
      Make<Segment>("segment: name of 101 characters", "name", segment_base,
                    [](Segment& r) { r.set_name(Accented(101)); }, create_segment),
      Make<Segment>("segment: description of 1001 characters", "description", segment_base,
                    [](Segment& r) { r.set_description(Accented(1001)); }, create_segment),
      Make<Segment>("segment: unknown tier", "filter.tier_ids[0]", segment_base,
                    [](Segment& r) { r.mutable_filter()->add_tier_ids("bronze"); }, create_segment),
      Make<Segment>("segment: bad enrolling partner", "filter.enrolling_partner_ids[0]", segment_base,
                    [](Segment& r) { r.mutable_filter()->add_enrolling_partner_ids("a:b"); }, create_segment),
      Make<Segment>("segment: unspecified status", "filter.statuses[0]", segment_base,
                    [](Segment& r) { r.mutable_filter()->add_statuses(v1::MEMBER_STATUS_UNSPECIFIED); },
                    create_segment),
      Make<Segment>("segment: unspecified consent channel", "filter.required_consents[0].channel", segment_base,
                    [](Segment& r) { r.mutable_filter()->add_required_consents(); }, create_segment),
      Make<Segment>("segment: birthday month 13", "filter.birthday_month", segment_base,
                    [](Segment& r) { r.mutable_filter()->set_birthday_month(13); }, create_segment),
      Make<UpdSegment>("update segment: no id", "segment_id", update_segment_base,
                       [](UpdSegment& r) { r.set_segment_id(""); }, update_segment),
      Make<UpdSegment>("update segment: empty mask", "update_mask", update_segment_base,
                       [](UpdSegment& r) { r.clear_update_mask(); }, update_segment),
      Make<UpdSegment>("update segment: mask naming version", "update_mask", update_segment_base,
                       [](UpdSegment& r) { r.mutable_update_mask()->add_paths("version"); }, update_segment),
      Make<UpdSegment>("update segment: name of 101 characters", "segment.name", update_segment_base,
                       [](UpdSegment& r) { r.mutable_segment()->set_name(std::string(101, 'n')); }, update_segment),
      Make<UpdSegment>("update segment: birthday month -1", "segment.filter.birthday_month", update_segment_base,
                       [](UpdSegment& r) {
                         r.mutable_update_mask()->add_paths("filter");
                         r.mutable_segment()->mutable_filter()->set_birthday_month(-1);
                       },
                       update_segment),
      Make<Query>("query: no target", "target", query_base, [](Query& r) { r.clear_target(); }, query),
      Make<Query>("query: bad segment id", "segment_id", query_base, [](Query& r) { r.set_segment_id("a:b"); },
                  query),
      Make<Query>("query: birthday month 13", "filter.birthday_month", query_base,
                  [](Query& r) { r.mutable_filter()->set_birthday_month(13); }, query),
      Row{"tier history: no member", "member_id",
          [this] { return membership_->tier_admin().ListTierHistory(kBackoffice, {}).status(); }},
      Row{"referrals: no member", "member_id",
          [this] { return membership_->referrals().ListReferrals(kBackoffice, {}).status(); }},
  };
  RunRows(rows);
}

// The limits are inclusive, and lengths count characters, not bytes.
TEST_F(MembershipValidationTest, LimitsAreInclusiveAndCountCharacters) {
  v1::EnrolRequest r = EnrolOther();
  r.set_given_name(Accented(100));
  r.set_family_name(Accented(100));
  r.set_phone("+4915112345678");
  r.set_phone_region("de");
  auto enrolled = membership_->members().Enrol(kBackoffice, r);
  ASSERT_TRUE(enrolled.ok()) << enrolled.status();

  v1::SetTierLadderRequest ladder = LadderBase();
  ladder.mutable_ladder()->mutable_tiers(1)->set_name(Accented(64));
  ladder.mutable_ladder()->mutable_tiers(1)->set_tier_id(std::string(31, 'g') + "_");
  EXPECT_TRUE(membership_->tier_admin().SetTierLadder(kBackoffice, ladder).ok());

  v1::GrantPaidTierRequest free_grant;
  free_grant.set_idempotency_key("grant-free");
  free_grant.set_member_id(member_id_);
  free_grant.set_tier_id("platinum");
  *free_grant.mutable_valid_until() = ToProtoTime(absl::Now() + absl::Hours(24 * 30));
  free_grant.set_payment_reference(Accented(64));
  auto granted = membership_->tier_admin().GrantPaidTier(kBackoffice, free_grant);
  EXPECT_TRUE(granted.ok()) << granted.status();
}

}  // namespace
}  // namespace loyalty::membership
