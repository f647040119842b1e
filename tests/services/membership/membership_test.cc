// Membership use cases on the real MySQL store (a throwaway schema on the test
// MariaDB). The ledger is a fake LedgerClient: another service, not the
// database.

#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/db/migrations.h"
#include "common/testing/test_db.h"
#include "common/time/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/membership/codes.h"
#include "services/membership/membership.h"
#include "services/membership/mysql_membership_store.h"

namespace loyalty::membership {
const std::vector<db::MigrationFile>& Migrations();

namespace {

using ::testing::HasSubstr;
using auth::Principal;

const Principal kBackoffice = Principal::Of("bo000000000000001", common::v1::ROLE_BACKOFFICE);
const Principal kVet = Principal::Partner("vet0000000000001", "vet-clinic");
const Principal kFood = Principal::Partner("food000000000001", "pet-food");
const Principal kService = Principal::Of("svc0000000000001", common::v1::ROLE_SERVICE);

class FakeLedger final : public LedgerClient {
 public:
  absl::StatusOr<absl::flat_hash_map<std::string, int64_t>> QualifyingPoints(
      const std::vector<std::string>& ids, absl::Time, absl::Time) override {
    absl::MutexLock lock(&mu_);
    if (down_) return absl::UnavailableError("ledger unreachable; retry later");
    ++calls_;
    absl::flat_hash_map<std::string, int64_t> out;
    for (const auto& id : ids) out[id] = points_.contains(id) ? points_[id] : 0;
    return out;
  }
  absl::StatusOr<LedgerStatement> Statement(const std::string& member_id) override {
    absl::MutexLock lock(&mu_);
    if (down_) return absl::UnavailableError("ledger unreachable; retry later");
    LedgerStatement s;
    s.balance.set_posted_points(points_.contains(member_id) ? points_[member_id] : 0);
    ledger::v1::Transfer t;
    t.set_transfer_id("tr-1");
    t.set_member_id(member_id);
    s.transfers.push_back(t);
    return s;
  }
  absl::StatusOr<JournalPage> ReadJournal(int64_t after, int page_size) override {
    absl::MutexLock lock(&mu_);
    if (down_) return absl::UnavailableError("ledger unreachable; retry later");
    JournalPage page;
    page.last_sequence = after;
    page.head_sequence = static_cast<int64_t>(journal_.size());
    for (int64_t seq = after + 1; seq <= page.head_sequence && static_cast<int>(page.transfers.size()) < page_size;
         ++seq) {
      page.transfers.push_back(journal_[seq - 1]);
      page.last_sequence = seq;
    }
    return page;
  }
  absl::StatusOr<std::string> GrantBonus(const std::string& key, const std::string& member_id, int64_t points,
                                         ledger::v1::BonusKind kind, const std::string&,
                                         const std::string&) override {
    absl::MutexLock lock(&mu_);
    if (down_) return absl::UnavailableError("ledger unreachable; retry later");
    EXPECT_EQ(kind, ledger::v1::BONUS_KIND_REFERRAL);
    auto [it, inserted] = grants_.try_emplace(key, absl::StrCat("bonus-", grants_.size() + 1));
    if (inserted) {
      if (closed_.contains(member_id)) {
        grants_.erase(it);
        return absl::FailedPreconditionError("member is closed");
      }
      bonus_points_[member_id] += points;
    }
    if (lose_answers_ > 0) {  // granted, but the answer never arrives
      --lose_answers_;
      return absl::UnavailableError("ledger did not answer in time; retry later with the same idempotency key");
    }
    return it->second;
  }
  // The next `n` grants are made, but their answers are lost.
  void LoseAnswers(int n) {
    absl::MutexLock lock(&mu_);
    lose_answers_ = n;
  }
  // As the ledger would once its feed brings the closure: no new grant.
  void Close(const std::string& member_id) {
    absl::MutexLock lock(&mu_);
    closed_.insert(member_id);
  }
  int64_t grants() {
    absl::MutexLock lock(&mu_);
    return static_cast<int64_t>(grants_.size());
  }

  void AddEarn(const std::string& member_id, absl::Time at) {
    absl::MutexLock lock(&mu_);
    ledger::v1::Transfer t;
    t.set_sequence(static_cast<int64_t>(journal_.size()) + 1);
    t.set_code(ledger::v1::TRANSFER_CODE_EARN);
    t.set_member_id(member_id);
    t.set_points(10);
    *t.mutable_created_at() = ToProtoTime(at);
    journal_.push_back(t);
  }
  int64_t BonusPoints(const std::string& member_id) {
    absl::MutexLock lock(&mu_);
    return bonus_points_.contains(member_id) ? bonus_points_[member_id] : 0;
  }
  void SetPoints(const std::string& id, int64_t p) {
    absl::MutexLock lock(&mu_);
    points_[id] = p;
  }
  void SetDown(bool down) {
    absl::MutexLock lock(&mu_);
    down_ = down;
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, int64_t> points_;
  bool down_ = false;
  int calls_ = 0;
  std::vector<ledger::v1::Transfer> journal_;
  absl::flat_hash_map<std::string, std::string> grants_;
  absl::flat_hash_map<std::string, int64_t> bonus_points_;
  absl::flat_hash_set<std::string> closed_;
  int lose_answers_ = 0;
};

class MembershipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = loyalty::testing::TestDatabase::Create("member");
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    auto applied = db::ApplyMigrations(db_->pool(), Migrations());
    ASSERT_TRUE(applied.ok()) << applied.status();
    store_ = NewMysqlMembershipStore(db_->pool());
    options_.now = [this] {
      absl::MutexLock lock(&clock_mu_);
      return now_;
    };
    membership_ = std::make_unique<Membership>(*store_, ledger_, options_);
  }

  // Small refresh chunks, so that a handful of members makes a pass of
  // several transactions.
  void UseRefreshChunk(int members) {
    options_.segment_refresh_chunk_members = members;
    membership_ = std::make_unique<Membership>(*store_, ledger_, options_);
  }

  void Advance(absl::Duration d) {
    absl::MutexLock lock(&clock_mu_);
    now_ += d;
  }
  absl::Time Now() {
    absl::MutexLock lock(&clock_mu_);
    return now_;
  }

  v1::EnrolRequest EnrolOf(const std::string& key, const std::string& email, const std::string& partner = "vet-clinic") {
    v1::EnrolRequest r;
    r.set_idempotency_key(key);
    r.set_given_name("Anna");
    r.set_family_name("Berg");
    r.set_email(email);
    r.set_preferred_language("de");
    r.set_enrolling_partner_id(partner);
    r.set_terms_version("2025-01");
    r.set_privacy_version("2025-01");
    return r;
  }

  v1::EnrolResponse MustEnrol(const std::string& key, const std::string& email,
                              const Principal& p = kVet) {
    auto r = membership_->Enrol(p, EnrolOf(key, email, p.is_partner() ? p.partner_id : "vet-clinic"));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : v1::EnrolResponse();
  }

  int64_t Count(const std::string& sql, const std::vector<std::string>& params = {}) {
    auto v = loyalty::testing::QueryIntForTest(db_->pool(), sql, params);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *v : -1;
  }

  v1::EnrolResponse MustEnrolBorn(const std::string& key, int birth_month, const Principal& p = kVet) {
    v1::EnrolRequest r = EnrolOf(key, absl::StrCat(key, "@example.com"), p.is_partner() ? p.partner_id : "vet-clinic");
    r.mutable_birth_date()->set_year(1985);
    r.mutable_birth_date()->set_month(birth_month);
    r.mutable_birth_date()->set_day(10);
    auto m = membership_->Enrol(p, r);
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? *m : v1::EnrolResponse();
  }

  std::string MustCreateSegment(const std::string& key, const v1::SegmentFilter& filter) {
    v1::CreateSegmentRequest r;
    r.set_idempotency_key(key);
    r.set_name(key);
    *r.mutable_filter() = filter;
    auto seg = membership_->CreateSegment(kBackoffice, r);
    EXPECT_TRUE(seg.ok()) << seg.status();
    return seg.ok() ? seg->segment().segment_id() : "";
  }

  v1::Segment MustGetSegment(const std::string& segment_id) {
    v1::GetSegmentRequest r;
    r.set_segment_id(segment_id);
    auto seg = membership_->GetSegment(kService, r);
    EXPECT_TRUE(seg.ok()) << seg.status();
    return seg.ok() ? seg->segment() : v1::Segment();
  }

  // Runs refresh calls until one pass is over.
  SegmentRefreshResult MustRefresh() {
    auto r = membership_->RefreshSegments(1000);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return {};
    EXPECT_TRUE(r->pass_completed);
    return *r;
  }

  // The latest snapshot of every member with version > after_version, read
  // the way the ledger reads the feed (small pages).
  std::map<std::string, v1::MemberSnapshot> Snapshots(int64_t after_version = 0) {
    std::map<std::string, v1::MemberSnapshot> out;
    v1::ListMemberSnapshotsRequest feed;
    feed.set_after_version(after_version);
    feed.set_page_size(3);
    for (int i = 0; i < 100; ++i) {
      auto page = membership_->ListMemberSnapshots(kService, feed);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) break;
      for (const v1::MemberSnapshot& snap : page->snapshots()) out[snap.member_id()] = snap;
      if (!page->has_more()) break;
      feed.set_after_version(page->last_version());
    }
    return out;
  }

  int64_t FeedHead() { return Count("SELECT last_version FROM feed_head WHERE id = 1"); }

  MembershipOptions options_;
  absl::Mutex clock_mu_;
  absl::Time now_ = absl::FromCivil(absl::CivilSecond(2026, 3, 1, 10, 0, 0), absl::UTCTimeZone());
  std::unique_ptr<loyalty::testing::TestDatabase> db_;
  std::unique_ptr<MembershipStore> store_;
  FakeLedger ledger_;
  std::unique_ptr<Membership> membership_;
};

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
  auto got = membership_->Enrol(kBackoffice, r);
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

  auto consents = membership_->GetConsents(kBackoffice, [&] {
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
    auto got = membership_->Enrol(kVet, r);
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << cases[i].field << ": " << got.status();
    EXPECT_THAT(std::string(got.status().message()), HasSubstr(cases[i].field));
  }
  EXPECT_EQ(Count("SELECT COUNT(*) FROM members"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM cards"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM idempotency"), 0);  // INVALID_ARGUMENT is not stored
}

TEST_F(MembershipTest, PartnerEnrolsOnlyForItself) {
  auto got = membership_->Enrol(kVet, EnrolOf("k1", "a@example.com", "pet-food"));
  EXPECT_EQ(got.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM members"), 0);
}

TEST_F(MembershipTest, EnrolIsIdempotentByKey) {
  v1::EnrolResponse first = MustEnrol("k1", "a@example.com");
  auto again = membership_->Enrol(kVet, EnrolOf("k1", "a@example.com"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->member().member_id(), first.member().member_id());
  EXPECT_EQ(again->card().card_number(), first.card().card_number());
  // The same key from another credential is another request.
  auto other = membership_->Enrol(Principal::Partner("vet0000000000002", "vet-clinic"), EnrolOf("k1", "a@example.com"));
  EXPECT_EQ(other.status().code(), absl::StatusCode::kAlreadyExists);  // the email, not the key
  // The same key with another request names the differing field.
  v1::EnrolRequest changed = EnrolOf("k1", "a@example.com");
  changed.set_given_name("Berta");
  auto conflict = membership_->Enrol(kVet, changed);
  EXPECT_EQ(conflict.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(conflict.status().message()), HasSubstr("given_name"));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM members"), 1);
}

TEST_F(MembershipTest, DuplicateEmailOrPhoneNamesTheExistingMemberOnly) {
  v1::EnrolResponse first = MustEnrol("k1", "a@example.com");
  auto dup = membership_->Enrol(kFood, EnrolOf("k2", "A@example.com ", "pet-food"));
  ASSERT_EQ(dup.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(dup.status().message()), HasSubstr("email"));
  EXPECT_THAT(std::string(dup.status().message()), ::testing::Not(HasSubstr("a@example.com")));
  auto id = dup.status().GetPayload(kExistingMemberIdKey);
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(std::string(*id), first.member().member_id());
  // The refusal is the key's answer, payload included.
  auto replay = membership_->Enrol(kFood, EnrolOf("k2", "A@example.com ", "pet-food"));
  EXPECT_EQ(replay.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(std::string(*replay.status().GetPayload(kExistingMemberIdKey)), first.member().member_id());

  v1::EnrolRequest by_phone = EnrolOf("k3", "other@example.com");
  by_phone.set_phone("+49 30 1234567");
  MustEnrol("k3b", "third@example.com");
  ASSERT_TRUE(membership_->Enrol(kVet, by_phone).ok());
  v1::EnrolRequest same_phone = EnrolOf("k4", "fourth@example.com");
  same_phone.set_phone("0049301234567");
  EXPECT_EQ(membership_->Enrol(kVet, same_phone).status().code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(MembershipTest, ConcurrentEnrolmentsWithOneEmailCreateOneMember) {
  constexpr int kThreads = 8;
  std::atomic<int> ok{0}, dup{0};
  absl::Mutex mu;
  std::string others;  // any other answer, for the failure message
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto r = membership_->Enrol(kVet, EnrolOf(absl::StrCat("race-", i), "race@example.com"));
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
      auto r = membership_->Enrol(kVet, EnrolOf("storm", "storm@example.com"));
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
  auto own = membership_->GetMember(kVet, get);
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_EQ(own->member().email(), "a@example.com");
  EXPECT_THAT(own->member().redacted_fields(), ::testing::Contains("birth_date"));

  auto other = membership_->GetMember(kFood, get);
  EXPECT_EQ(other.status().code(), absl::StatusCode::kNotFound);
  v1::GetMemberRequest missing;
  missing.set_member_id("mb_doesnotexist");
  // Same answer as for a member that does not exist: existence is not revealed.
  EXPECT_EQ(membership_->GetMember(kFood, missing).status().message(), other.status().message());

  v1::LookupMemberRequest by_email;
  by_email.set_email("a@example.com");
  EXPECT_EQ(membership_->LookupMember(kFood, by_email).status().code(), absl::StatusCode::kNotFound);

  // The member shares their profile with the pet-food maker (captured at the vet).
  v1::UpdateConsentsRequest share;
  share.set_idempotency_key("share");
  share.set_member_id(m.member().member_id());
  share.set_source(v1::CONSENT_SOURCE_BACKOFFICE);
  auto* d = share.add_data_sharing();
  d->set_partner_id("pet-food");
  d->set_granted(true);
  ASSERT_TRUE(membership_->UpdateConsents(kBackoffice, share).ok());
  EXPECT_TRUE(membership_->GetMember(kFood, get).ok());
  EXPECT_TRUE(membership_->LookupMember(kFood, by_email).ok());
}

TEST_F(MembershipTest, LookupByCardPhoneAndEmailAndBlockedCards) {
  v1::EnrolRequest r = EnrolOf("k1", "a@example.com");
  r.set_phone("+41 44 123 45 67");
  auto enrolled = membership_->Enrol(kVet, r);
  ASSERT_TRUE(enrolled.ok());
  const std::string card = enrolled->card().card_number();
  v1::LookupMemberRequest q;
  q.set_card_number(card.substr(0, 4) + " " + card.substr(4));
  auto by_card = membership_->LookupMember(kVet, q);
  ASSERT_TRUE(by_card.ok()) << by_card.status();
  EXPECT_EQ(by_card->member().member_id(), enrolled->member().member_id());
  EXPECT_EQ(by_card->card().card_number(), card);
  v1::LookupMemberRequest by_phone;
  by_phone.set_phone("+41441234567");
  EXPECT_TRUE(membership_->LookupMember(kVet, by_phone).ok());
  v1::LookupMemberRequest bad;
  bad.set_card_number(card.substr(0, 15) + static_cast<char>('0' + (card[15] - '0' + 1) % 10));
  EXPECT_EQ(membership_->LookupMember(kVet, bad).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(membership_->LookupMember(kVet, v1::LookupMemberRequest()).status().code(),
            absl::StatusCode::kInvalidArgument);

  v1::BlockCardRequest block;
  block.set_idempotency_key("block");
  block.set_card_number(card);
  block.set_block_reason(v1::CARD_BLOCK_REASON_LOST);
  auto blocked = membership_->BlockCard(kVet, block);
  ASSERT_TRUE(blocked.ok()) << blocked.status();
  EXPECT_EQ(blocked->card().state(), v1::CARD_STATE_BLOCKED);
  EXPECT_EQ(membership_->LookupMember(kVet, q).status().code(), absl::StatusCode::kNotFound);
  auto bo = membership_->LookupMember(kBackoffice, q);
  ASSERT_TRUE(bo.ok());
  EXPECT_EQ(bo->card().state(), v1::CARD_STATE_BLOCKED);
  block.set_idempotency_key("block-again");
  EXPECT_EQ(membership_->BlockCard(kVet, block).status().code(), absl::StatusCode::kFailedPrecondition);

  v1::IssueCardRequest issue;
  issue.set_idempotency_key("issue");
  issue.set_member_id(enrolled->member().member_id());
  issue.set_replaces_card_number(card);
  auto fresh = membership_->IssueCard(kVet, issue);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_NE(fresh->card().card_number(), card);
  v1::LookupMemberRequest q2;
  q2.set_card_number(fresh->card().card_number());
  EXPECT_TRUE(membership_->LookupMember(kVet, q2).ok());
  v1::GetMemberRequest get;
  get.set_member_id(enrolled->member().member_id());
  EXPECT_EQ(membership_->GetMember(kVet, get)->cards_size(), 1);        // partners: active cards only
  EXPECT_EQ(membership_->GetMember(kBackoffice, get)->cards_size(), 2);  // backoffice: all
}

TEST_F(MembershipTest, ReplacingAnActiveCardMarksItReplaced) {
  v1::EnrolResponse m = MustEnrol("k1", "a@example.com");
  v1::IssueCardRequest issue;
  issue.set_idempotency_key("issue");
  issue.set_member_id(m.member().member_id());
  issue.set_replaces_card_number(m.card().card_number());
  auto fresh = membership_->IssueCard(kBackoffice, issue);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  v1::LookupMemberRequest old;
  old.set_card_number(m.card().card_number());
  auto seen = membership_->LookupMember(kBackoffice, old);
  ASSERT_TRUE(seen.ok());
  EXPECT_EQ(seen->card().state(), v1::CARD_STATE_REPLACED);
  EXPECT_EQ(seen->card().replaced_by_card_number(), fresh->card().card_number());
  EXPECT_EQ(membership_->LookupMember(kVet, old).status().code(), absl::StatusCode::kNotFound);
  // Someone else's card cannot be named.
  v1::EnrolResponse other = MustEnrol("k2", "b@example.com");
  issue.set_idempotency_key("issue-2");
  issue.set_replaces_card_number(other.card().card_number());
  EXPECT_EQ(membership_->IssueCard(kBackoffice, issue).status().code(), absl::StatusCode::kNotFound);
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
  auto updated = membership_->UpdateMember(kVet, up);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->member().email(), "new@example.com");
  EXPECT_EQ(updated->member().version(), a.member().version() + 1);

  up.set_idempotency_key("u2");  // stale version
  EXPECT_EQ(membership_->UpdateMember(kVet, up).status().code(), absl::StatusCode::kAborted);
  up.set_idempotency_key("u3");
  up.set_expected_version(0);
  up.mutable_member()->set_email("b@example.com");
  EXPECT_EQ(membership_->UpdateMember(kVet, up).status().code(), absl::StatusCode::kAlreadyExists);
  up.set_idempotency_key("u4");
  up.mutable_update_mask()->add_paths("status");
  auto bad_mask = membership_->UpdateMember(kVet, up);
  EXPECT_EQ(bad_mask.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad_mask.status().message()), HasSubstr("update_mask"));

  v1::SetMemberStatusRequest close;
  close.set_idempotency_key("close");
  close.set_member_id(a.member().member_id());
  close.set_status(v1::MEMBER_STATUS_CLOSED);
  close.set_reason("member asked");
  ASSERT_TRUE(membership_->SetMemberStatus(kBackoffice, close).ok());
  up.set_idempotency_key("u5");
  up.clear_update_mask();
  up.mutable_update_mask()->add_paths("given_name");
  up.mutable_member()->set_given_name("Zoë");
  EXPECT_EQ(membership_->UpdateMember(kVet, up).status().code(), absl::StatusCode::kFailedPrecondition);
  close.set_idempotency_key("reopen");
  close.set_status(v1::MEMBER_STATUS_ACTIVE);
  EXPECT_EQ(membership_->SetMemberStatus(kBackoffice, close).status().code(), absl::StatusCode::kFailedPrecondition);
  close.set_reason("");
  EXPECT_EQ(membership_->SetMemberStatus(kBackoffice, close).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(membership_->SetMemberStatus(kVet, close).status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(MembershipTest, SnapshotFeedCarriesStatusAndTierChangesInOrder) {
  v1::EnrolResponse a = MustEnrol("k1", "a@example.com");
  v1::EnrolResponse b = MustEnrol("k2", "b@example.com");
  v1::ListMemberSnapshotsRequest feed;
  auto all = membership_->ListMemberSnapshots(kService, feed);
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
  ASSERT_TRUE(membership_->SetMemberStatus(kBackoffice, suspend).ok());
  // A name change is not in the snapshot and takes no feed version.
  v1::UpdateMemberRequest rename;
  rename.set_idempotency_key("r");
  rename.set_member_id(b.member().member_id());
  rename.mutable_member()->set_given_name("Bea");
  rename.mutable_update_mask()->add_paths("given_name");
  ASSERT_TRUE(membership_->UpdateMember(kVet, rename).ok());

  feed.set_after_version(cursor);
  auto changed = membership_->ListMemberSnapshots(kService, feed);
  ASSERT_TRUE(changed.ok());
  ASSERT_EQ(changed->snapshots_size(), 1);
  EXPECT_EQ(changed->snapshots(0).member_id(), a.member().member_id());
  EXPECT_EQ(changed->snapshots(0).status(), v1::MEMBER_STATUS_SUSPENDED);
  EXPECT_FALSE(changed->has_more());

  feed.set_after_version(0);
  feed.set_page_size(1);
  auto paged = membership_->ListMemberSnapshots(kService, feed);
  ASSERT_TRUE(paged.ok());
  EXPECT_EQ(paged->snapshots_size(), 1);
  EXPECT_TRUE(paged->has_more());
  feed.set_after_version(-1);
  EXPECT_EQ(membership_->ListMemberSnapshots(kService, feed).status().code(), absl::StatusCode::kInvalidArgument);
}

// ---- tiers ---------------------------------------------------------------------------

TEST_F(MembershipTest, EvaluateTierUpgradesRetainsAndDowngradesOneRankAtATime) {
  v1::EnrolResponse m = MustEnrol("k1", "a@example.com");
  const std::string id = m.member().member_id();
  ledger_.SetPoints(id, 12'000);
  v1::EvaluateTierRequest eval;
  eval.set_idempotency_key("e1");
  eval.set_member_id(id);
  auto up = membership_->EvaluateTier(kService, eval);
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(up->tier().tier_id(), "platinum");
  EXPECT_EQ(up->tier().basis(), v1::TIER_BASIS_QUALIFIED);
  EXPECT_EQ(up->change().from_tier_id(), "silver");
  EXPECT_EQ(up->change().reason(), v1::TIER_CHANGE_REASON_QUALIFIED);

  // Same points, new key: nothing changes.
  eval.set_idempotency_key("e2");
  auto same = membership_->EvaluateTier(kService, eval);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->tier().tier_id(), "platinum");
  EXPECT_FALSE(same->has_change());

  // Points drop: kept while retained (12 months).
  ledger_.SetPoints(id, 0);
  Advance(absl::Hours(24 * 200));
  eval.set_idempotency_key("e3");
  auto kept = membership_->EvaluateTier(kService, eval);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->tier().tier_id(), "platinum");
  EXPECT_EQ(kept->tier().basis(), v1::TIER_BASIS_RETAINED);

  // After retention: one rank down per review, never two.
  Advance(absl::Hours(24 * 200));
  eval.set_idempotency_key("e4");
  auto down = membership_->EvaluateTier(kService, eval);
  ASSERT_TRUE(down.ok());
  EXPECT_EQ(down->tier().tier_id(), "gold");
  EXPECT_EQ(down->change().reason(), v1::TIER_CHANGE_REASON_DOWNGRADED);
  eval.set_idempotency_key("e5");  // same instant: no second drop
  EXPECT_EQ(membership_->EvaluateTier(kService, eval)->tier().tier_id(), "gold");
  Advance(absl::Hours(24));
  eval.set_idempotency_key("e6");
  EXPECT_EQ(membership_->EvaluateTier(kService, eval)->tier().tier_id(), "silver");

  v1::ListTierHistoryRequest hist;
  hist.set_member_id(id);
  hist.set_page_size(2);
  auto page1 = membership_->ListTierHistory(kBackoffice, hist);
  ASSERT_TRUE(page1.ok()) << page1.status();
  ASSERT_EQ(page1->changes_size(), 2);
  EXPECT_EQ(page1->changes(0).to_tier_id(), "silver");  // newest first
  hist.set_page_token(page1->next_page_token());
  auto page2 = membership_->ListTierHistory(kBackoffice, hist);
  ASSERT_TRUE(page2.ok());
  ASSERT_EQ(page2->changes_size(), 2);  // platinum, then the enrolment
  EXPECT_EQ(page2->changes(1).reason(), v1::TIER_CHANGE_REASON_ENROLMENT);
  EXPECT_TRUE(page2->next_page_token().empty());
  hist.set_member_id("mb_other");
  EXPECT_EQ(membership_->ListTierHistory(kBackoffice, hist).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(MembershipTest, EvaluateTierNeedsTheLedger) {
  v1::EnrolResponse m = MustEnrol("k1", "a@example.com");
  ledger_.SetDown(true);
  v1::EvaluateTierRequest eval;
  eval.set_idempotency_key("e1");
  eval.set_member_id(m.member().member_id());
  EXPECT_EQ(membership_->EvaluateTier(kService, eval).status().code(), absl::StatusCode::kUnavailable);
  ledger_.SetDown(false);
  ledger_.SetPoints(m.member().member_id(), 2500);
  auto ok = membership_->EvaluateTier(kService, eval);  // same key works once the ledger is back
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
    auto r = membership_->RunTierEvaluation(kService, run);
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
  EXPECT_EQ(membership_->RunTierEvaluation(kService, run).status().code(), absl::StatusCode::kInvalidArgument);
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
  auto granted = membership_->GrantPaidTier(kBackoffice, grant);
  ASSERT_TRUE(granted.ok()) << granted.status();
  EXPECT_EQ(granted->tier().basis(), v1::TIER_BASIS_PAID);
  EXPECT_EQ(granted->change().reason(), v1::TIER_CHANGE_REASON_PAID_GRANT);

  v1::EvaluateTierRequest eval;
  eval.set_idempotency_key("e1");
  eval.set_member_id(m.member().member_id());
  EXPECT_EQ(membership_->EvaluateTier(kService, eval)->tier().tier_id(), "gold");  // 0 points, still paid
  Advance(absl::Hours(24 * 31));
  eval.set_idempotency_key("e2");
  auto expired = membership_->EvaluateTier(kService, eval);
  ASSERT_TRUE(expired.ok());
  EXPECT_EQ(expired->tier().tier_id(), "silver");
  EXPECT_EQ(expired->change().reason(), v1::TIER_CHANGE_REASON_PAID_EXPIRED);

  grant.set_idempotency_key("g2");
  *grant.mutable_valid_until() = ToProtoTime(Now() - absl::Hours(1));
  EXPECT_EQ(membership_->GrantPaidTier(kBackoffice, grant).status().code(), absl::StatusCode::kInvalidArgument);
  *grant.mutable_valid_until() = ToProtoTime(Now() + absl::Hours(24));
  grant.set_tier_id("diamond");
  EXPECT_EQ(membership_->GrantPaidTier(kBackoffice, grant).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(MembershipTest, SetTierLadderValidatesAndProtectsHeldTiers) {
  MustEnrol("k1", "a@example.com");  // holds silver
  auto current = membership_->GetTierLadder(kVet);
  ASSERT_TRUE(current.ok());
  v1::SetTierLadderRequest set;
  set.set_idempotency_key("l1");
  *set.mutable_ladder() = current->ladder();
  set.mutable_ladder()->mutable_tiers(1)->set_tier_multiplier_bp(13000);
  set.set_expected_version(current->ladder().version());
  auto saved = membership_->SetTierLadder(kBackoffice, set);
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_EQ(saved->ladder().version(), current->ladder().version() + 1);
  EXPECT_EQ(membership_->GetTierLadder(kVet)->ladder().tiers(1).tier_multiplier_bp(), 13000);

  set.set_idempotency_key("l2");  // stale
  EXPECT_EQ(membership_->SetTierLadder(kBackoffice, set).status().code(), absl::StatusCode::kAborted);
  set.set_expected_version(0);
  set.set_idempotency_key("l3");
  v1::TierLadder without_silver = saved->ladder();
  without_silver.mutable_tiers()->erase(without_silver.mutable_tiers()->begin());
  without_silver.mutable_tiers(0)->set_rank(0);
  without_silver.mutable_tiers(0)->set_qualifying_points_threshold(0);
  *set.mutable_ladder() = without_silver;
  EXPECT_EQ(membership_->SetTierLadder(kBackoffice, set).status().code(), absl::StatusCode::kFailedPrecondition);
  set.set_idempotency_key("l4");
  set.mutable_ladder()->mutable_tiers(0)->set_tier_multiplier_bp(5);
  auto bad = membership_->SetTierLadder(kBackoffice, set);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("tier_multiplier_bp"));
}

// ---- consents and referrals -------------------------------------------------------------

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
  ASSERT_TRUE(membership_->UpdateConsents(kVet, up).ok());

  up.set_idempotency_key("c2");
  up.mutable_channel_consents(0)->set_partner_id("pet-food");
  EXPECT_EQ(membership_->UpdateConsents(kVet, up).status().code(), absl::StatusCode::kPermissionDenied);
  up.set_source(v1::CONSENT_SOURCE_BACKOFFICE);
  up.set_idempotency_key("c3");
  ASSERT_TRUE(membership_->UpdateConsents(kBackoffice, up).ok());
  up.set_idempotency_key("c4");
  up.set_source(v1::CONSENT_SOURCE_UNSPECIFIED);
  EXPECT_EQ(membership_->UpdateConsents(kBackoffice, up).status().code(), absl::StatusCode::kInvalidArgument);

  v1::GetConsentsRequest get;
  get.set_member_id(m.member().member_id());
  get.set_include_history(true);
  auto vet_view = membership_->GetConsents(kVet, get);
  ASSERT_TRUE(vet_view.ok());
  ASSERT_EQ(vet_view->consents().channel_consents_size(), 1);
  EXPECT_EQ(vet_view->consents().channel_consents(0).partner_id(), "vet-clinic");
  for (const auto& e : vet_view->history()) EXPECT_NE(e.partner_id(), "pet-food");
  auto bo_view = membership_->GetConsents(kBackoffice, get);
  ASSERT_TRUE(bo_view.ok());
  EXPECT_EQ(bo_view->consents().channel_consents_size(), 2);
  EXPECT_EQ(bo_view->history(0).source(), v1::CONSENT_SOURCE_BACKOFFICE);  // newest first
}

TEST_F(MembershipTest, ReferralLinksTheNewMemberOnce) {
  v1::EnrolResponse referrer = MustEnrol("k1", "a@example.com");
  v1::EnrolRequest r = EnrolOf("k2", "b@example.com");
  r.set_referral_code(absl::AsciiStrToLower(referrer.member().referral_code()));
  auto referred = membership_->Enrol(kVet, r);
  ASSERT_TRUE(referred.ok()) << referred.status();
  v1::GetMemberRequest get;
  get.set_member_id(referred->member().member_id());
  EXPECT_EQ(membership_->GetMember(kBackoffice, get)->member().referred_by_member_id(),
            referrer.member().member_id());

  v1::GetReferralCodeRequest code;
  code.set_member_id(referrer.member().member_id());
  EXPECT_EQ(membership_->GetReferralCode(kVet, code)->referral_count(), 1);
  v1::ListReferralsRequest list;
  list.set_member_id(referrer.member().member_id());
  auto refs = membership_->ListReferrals(kVet, list);
  ASSERT_TRUE(refs.ok());
  ASSERT_EQ(refs->referrals_size(), 1);
  EXPECT_EQ(refs->referrals(0).state(), v1::REFERRAL_STATE_PENDING);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM referrals"), 1);
}

TEST_F(MembershipTest, ReferrerIsRewardedOnceWhenTheReferredMemberFirstEarns) {
  v1::EnrolResponse referrer = MustEnrol("k1", "a@example.com");
  v1::EnrolRequest r = EnrolOf("k2", "b@example.com");
  r.set_referral_code(referrer.member().referral_code());
  auto referred = membership_->Enrol(kVet, r);
  ASSERT_TRUE(referred.ok()) << referred.status();
  const std::string referred_id = referred->member().member_id();
  const std::string referrer_id = referrer.member().member_id();

  // The referrer's own earn does not reward anyone.
  ledger_.AddEarn(referrer_id, Now());
  ASSERT_EQ(*membership_->ConsumeLedgerJournal(100), 1);
  EXPECT_EQ(*membership_->GrantReferralRewards(10), 0);

  // The referred member's first earn does; the ledger is down at first.
  ledger_.AddEarn(referred_id, Now());
  ASSERT_EQ(*membership_->ConsumeLedgerJournal(100), 1);
  ledger_.SetDown(true);
  EXPECT_EQ(membership_->GrantReferralRewards(10).status().code(), absl::StatusCode::kUnavailable);
  ledger_.SetDown(false);
  EXPECT_EQ(*membership_->GrantReferralRewards(10), 1);
  EXPECT_EQ(ledger_.BonusPoints(referrer_id), 500);

  // Later earns, re-reading the journal, and repeated passes grant nothing more.
  ledger_.AddEarn(referred_id, Now() + absl::Minutes(5));
  EXPECT_EQ(*membership_->ConsumeLedgerJournal(100), 1);
  EXPECT_EQ(*membership_->ConsumeLedgerJournal(100), 0);
  EXPECT_EQ(*membership_->GrantReferralRewards(10), 0);
  EXPECT_EQ(ledger_.BonusPoints(referrer_id), 500);

  v1::ListReferralsRequest list;
  list.set_member_id(referrer_id);
  auto refs = membership_->ListReferrals(kBackoffice, list);
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
  auto referred = membership_->Enrol(kVet, r);
  ASSERT_TRUE(referred.ok()) << referred.status();
  v1::EnrolRequest r2 = EnrolOf("k4", "d@example.com");
  r2.set_referral_code(other.member().referral_code());
  auto referred2 = membership_->Enrol(kVet, r2);
  ASSERT_TRUE(referred2.ok()) << referred2.status();
  const std::string referrer_id = referrer.member().member_id();
  const std::string other_id = other.member().member_id();
  ledger_.AddEarn(referred->member().member_id(), Now());
  ASSERT_EQ(*membership_->ConsumeLedgerJournal(100), 1);

  // A pass asks the ledger for the reward, which grants it, but the answer
  // is lost (a timeout): the referral stays due.
  ledger_.LoseAnswers(1);
  EXPECT_EQ(membership_->GrantReferralRewards(10).status().code(), absl::StatusCode::kUnavailable);
  // Meanwhile the referrer's membership is closed; the ledger learns it too.
  auto close = [&](const std::string& member_id) {
    v1::SetMemberStatusRequest req;
    req.set_idempotency_key("close-" + member_id);
    req.set_member_id(member_id);
    req.set_status(v1::MEMBER_STATUS_CLOSED);
    req.set_reason("left the programme");
    ASSERT_TRUE(membership_->SetMemberStatus(kBackoffice, req).ok());
    ledger_.Close(member_id);
  };
  close(referrer_id);
  ASSERT_TRUE(membership_->GrantReferralRewards(10).ok());
  v1::ListReferralsRequest list;
  list.set_member_id(referrer_id);
  auto refs = membership_->ListReferrals(kBackoffice, list);
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
  ASSERT_EQ(*membership_->ConsumeLedgerJournal(100), 1);
  close(other_id);
  const int64_t grants_before = ledger_.grants();
  ASSERT_TRUE(membership_->GrantReferralRewards(10).ok());
  list.set_member_id(other_id);
  refs = membership_->ListReferrals(kBackoffice, list);
  ASSERT_TRUE(refs.ok());
  ASSERT_EQ(refs->referrals_size(), 1);
  EXPECT_EQ(refs->referrals(0).state(), v1::REFERRAL_STATE_VOID);
  EXPECT_EQ(ledger_.grants(), grants_before);
  EXPECT_EQ(ledger_.BonusPoints(other_id), 0);
}

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
    auto m = membership_->Enrol(kBackoffice, r);
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
  auto seg = membership_->CreateSegment(kBackoffice, create);
  ASSERT_TRUE(seg.ok()) << seg.status();

  v1::QuerySegmentRequest q;
  q.set_segment_id(seg->segment().segment_id());
  q.set_page_size(2);
  std::set<std::string> found;
  std::string token;
  int calls = 0;
  do {
    q.set_page_token(token);
    auto page = membership_->QuerySegment(kService, q);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(page->members_size(), 2);
    for (const auto& m : page->members()) found.insert(m.member_id());
    token = page->next_page_token();
  } while (!token.empty() && ++calls < 10);
  EXPECT_EQ(found, std::set<std::string>(with_consent.begin(), with_consent.end()));

  v1::QuerySegmentRequest adhoc;
  adhoc.mutable_filter()->set_birthday_month(9);
  auto september = membership_->QuerySegment(kBackoffice, adhoc);
  ASSERT_TRUE(september.ok());
  EXPECT_EQ(september->members_size(), 2);
  adhoc.mutable_filter()->add_statuses(v1::MEMBER_STATUS_SUSPENDED);
  EXPECT_EQ(membership_->QuerySegment(kBackoffice, adhoc)->members_size(), 0);

  // A token only works for the query it was issued for.
  q.set_page_token(membership_->QuerySegment(kService, [&] {
    v1::QuerySegmentRequest x = q;
    x.set_page_token("");
    x.set_page_size(1);
    return x;
  }())->next_page_token());
  adhoc.set_page_token(q.page_token());
  EXPECT_EQ(membership_->QuerySegment(kBackoffice, adhoc).status().code(), absl::StatusCode::kInvalidArgument);

  create.set_idempotency_key("seg-bad");
  create.mutable_filter()->add_tier_ids("diamond");
  auto bad = membership_->CreateSegment(kBackoffice, create);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("filter.tier_ids[1]"));
  EXPECT_EQ(membership_->CreateSegment(kVet, create).status().code(), absl::StatusCode::kPermissionDenied);

  v1::UpdateSegmentRequest up;
  up.set_idempotency_key("seg-up");
  up.set_segment_id(seg->segment().segment_id());
  up.mutable_segment()->set_name("Renamed");
  up.mutable_update_mask()->add_paths("name");
  up.set_expected_version(seg->segment().version());
  auto renamed = membership_->UpdateSegment(kBackoffice, up);
  ASSERT_TRUE(renamed.ok()) << renamed.status();
  EXPECT_EQ(renamed->segment().version(), 2);
  up.set_idempotency_key("seg-up-2");
  EXPECT_EQ(membership_->UpdateSegment(kBackoffice, up).status().code(), absl::StatusCode::kAborted);
  v1::ListSegmentsRequest list;
  auto listed = membership_->ListSegments(kService, list);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->segments_size(), 1);
  EXPECT_EQ(listed->segments(0).name(), "Renamed");
}

// ---- materialised segments (RefreshSegments) ------------------------------------------

std::vector<std::string> SegmentIds(const v1::MemberSnapshot& snap) {
  return {snap.segment_ids().begin(), snap.segment_ids().end()};
}
std::vector<std::string> Sorted(std::vector<std::string> ids) {
  std::sort(ids.begin(), ids.end());
  return ids;
}

TEST_F(MembershipTest, RefreshPutsSavedSegmentsIntoTheSnapshotsOfMatchingMembersOnly) {
  UseRefreshChunk(2);  // 5 members: a pass of 3 chunks
  std::vector<std::string> ids;
  ids.push_back(MustEnrolBorn("m0", 5, kFood).member().member_id());
  ids.push_back(MustEnrolBorn("m1", 5, kFood).member().member_id());
  ids.push_back(MustEnrolBorn("m2", 9).member().member_id());
  ids.push_back(MustEnrolBorn("m3", 5).member().member_id());
  ids.push_back(MustEnrolBorn("m4", 9).member().member_id());
  v1::SegmentFilter may;
  may.set_birthday_month(5);
  const std::string seg_may = MustCreateSegment("may", may);
  v1::SegmentFilter food;
  food.add_enrolling_partner_ids("pet-food");
  const std::string seg_food = MustCreateSegment("food", food);

  // Creating a segment materialises nothing: that waits for the refresh.
  std::map<std::string, v1::MemberSnapshot> before = Snapshots();
  ASSERT_EQ(before.size(), 5u);
  for (const auto& [id, snap] : before) EXPECT_EQ(snap.segment_ids_size(), 0) << id;
  EXPECT_EQ(MustGetSegment(seg_may).member_count(), 0);
  EXPECT_FALSE(MustGetSegment(seg_may).has_refreshed_at());
  const int64_t head = FeedHead();

  SegmentRefreshResult r = MustRefresh();
  EXPECT_EQ(r.pass, 1);
  EXPECT_EQ(r.chunks, 3);
  EXPECT_EQ(r.members_examined, 5);
  EXPECT_EQ(r.rows_added, 5);  // may: m0 m1 m3; food: m0 m1
  EXPECT_EQ(r.rows_removed, 0);
  EXPECT_EQ(r.members_changed, 3);
  // One feed version per changed member, no more.
  EXPECT_EQ(FeedHead(), head + 3);

  std::map<std::string, v1::MemberSnapshot> after = Snapshots();
  const std::vector<std::string> both = Sorted({seg_may, seg_food});
  EXPECT_EQ(SegmentIds(after[ids[0]]), both);
  EXPECT_EQ(SegmentIds(after[ids[1]]), both);
  EXPECT_EQ(SegmentIds(after[ids[3]]), std::vector<std::string>{seg_may});
  EXPECT_EQ(after[ids[2]].segment_ids_size(), 0);
  EXPECT_EQ(after[ids[4]].segment_ids_size(), 0);
  for (int i : {0, 1, 3}) EXPECT_GT(after[ids[i]].version(), before[ids[i]].version()) << i;
  for (int i : {2, 4}) EXPECT_EQ(after[ids[i]].version(), before[ids[i]].version()) << i;
  // The ledger's incremental read sees exactly the changed members.
  std::map<std::string, v1::MemberSnapshot> incremental = Snapshots(head);
  EXPECT_EQ(incremental.size(), 3u);
  EXPECT_EQ(SegmentIds(incremental[ids[0]]), both);
  EXPECT_FALSE(incremental.contains(ids[2]));

  v1::Segment got = MustGetSegment(seg_may);
  EXPECT_EQ(got.member_count(), 3);
  ASSERT_TRUE(got.has_refreshed_at());
  EXPECT_EQ(FromProtoTime(got.refreshed_at()), Now());
  EXPECT_EQ(MustGetSegment(seg_food).member_count(), 2);

  // Nothing changed: a second pass writes nothing and bumps nothing, but
  // records that it ran.
  Advance(absl::Minutes(1));
  const int64_t head2 = FeedHead();
  SegmentRefreshResult again = MustRefresh();
  EXPECT_EQ(again.pass, 2);
  EXPECT_EQ(again.members_examined, 5);
  EXPECT_EQ(again.rows_added + again.rows_removed + again.members_changed, 0);
  EXPECT_EQ(FeedHead(), head2);
  EXPECT_TRUE(Snapshots(head2).empty());
  EXPECT_EQ(FromProtoTime(MustGetSegment(seg_may).refreshed_at()), Now());
  EXPECT_EQ(MustGetSegment(seg_may).member_count(), 3);
}

TEST_F(MembershipTest, RefreshRemovesMembersThatStopMatchingAndBumpsTheirSnapshots) {
  v1::EnrolRequest r = EnrolOf("k1", "a@example.com");
  for (const char* partner : {"pet-food", "vet-clinic"}) {
    auto* c = r.add_channel_consents();
    c->set_channel(v1::CONTACT_CHANNEL_EMAIL);
    c->set_partner_id(partner);
    c->set_granted(true);
  }
  r.mutable_birth_date()->set_year(1990);
  r.mutable_birth_date()->set_month(5);
  r.mutable_birth_date()->set_day(2);
  auto a = membership_->Enrol(kBackoffice, r);
  ASSERT_TRUE(a.ok()) << a.status();
  const std::string id_a = a->member().member_id();
  r.set_idempotency_key("k2");
  r.set_email("b@example.com");
  auto b = membership_->Enrol(kBackoffice, r);
  ASSERT_TRUE(b.ok()) << b.status();
  const std::string id_b = b->member().member_id();

  v1::SegmentFilter news;
  auto* need = news.add_required_consents();
  need->set_channel(v1::CONTACT_CHANNEL_EMAIL);
  need->set_partner_id("pet-food");
  const std::string seg_news = MustCreateSegment("news", news);
  v1::SegmentFilter may;
  may.set_birthday_month(5);
  const std::string seg_may = MustCreateSegment("may", may);
  v1::SegmentFilter active;
  *active.mutable_active_since() = ToProtoTime(Now() - absl::Hours(24));
  const std::string seg_active = MustCreateSegment("active", active);
  MustRefresh();
  EXPECT_EQ(SegmentIds(Snapshots()[id_a]), Sorted({seg_news, seg_may}));
  EXPECT_EQ(MustGetSegment(seg_news).member_count(), 2);
  EXPECT_EQ(MustGetSegment(seg_active).member_count(), 0);

  // a withdraws the pet-food consent: not a snapshot field, so only the
  // refresh can notice.
  v1::UpdateConsentsRequest withdraw;
  withdraw.set_idempotency_key("c1");
  withdraw.set_member_id(id_a);
  withdraw.set_source(v1::CONSENT_SOURCE_MEMBER_APP);
  auto* c = withdraw.add_channel_consents();
  c->set_channel(v1::CONTACT_CHANNEL_EMAIL);
  c->set_partner_id("pet-food");
  c->set_granted(false);
  ASSERT_TRUE(membership_->UpdateConsents(kBackoffice, withdraw).ok());
  // b corrects the birth date to September (a snapshot change of its own).
  v1::UpdateMemberRequest birth;
  birth.set_idempotency_key("u1");
  birth.set_member_id(id_b);
  birth.mutable_member()->mutable_birth_date()->set_year(1990);
  birth.mutable_member()->mutable_birth_date()->set_month(9);
  birth.mutable_member()->mutable_birth_date()->set_day(2);
  birth.mutable_update_mask()->add_paths("birth_date");
  ASSERT_TRUE(membership_->UpdateMember(kBackoffice, birth).ok());
  // b earns: recorded from the ledger journal, again not a snapshot field.
  ledger_.AddEarn(id_b, Now());
  ASSERT_TRUE(membership_->ConsumeLedgerJournal(100).ok());

  std::map<std::string, v1::MemberSnapshot> before = Snapshots();
  EXPECT_EQ(SegmentIds(before[id_a]), Sorted({seg_news, seg_may}));  // stale until the refresh
  EXPECT_EQ(SegmentIds(before[id_b]), Sorted({seg_news, seg_may}));
  const int64_t head = FeedHead();
  SegmentRefreshResult res = MustRefresh();
  EXPECT_EQ(res.rows_removed, 2);  // a from news, b from may
  EXPECT_EQ(res.rows_added, 1);    // b into active
  EXPECT_EQ(res.members_changed, 2);
  EXPECT_EQ(FeedHead(), head + 2);
  std::map<std::string, v1::MemberSnapshot> after = Snapshots();
  EXPECT_EQ(SegmentIds(after[id_a]), std::vector<std::string>{seg_may});
  EXPECT_EQ(SegmentIds(after[id_b]), Sorted({seg_news, seg_active}));
  EXPECT_GT(after[id_a].version(), before[id_a].version());
  EXPECT_GT(after[id_b].version(), before[id_b].version());
  EXPECT_EQ(MustGetSegment(seg_news).member_count(), 1);
  EXPECT_EQ(MustGetSegment(seg_may).member_count(), 1);
  EXPECT_EQ(MustGetSegment(seg_active).member_count(), 1);

  // Closing a member takes it out of every segment (filters default to ACTIVE).
  v1::SetMemberStatusRequest close;
  close.set_idempotency_key("s1");
  close.set_member_id(id_a);
  close.set_status(v1::MEMBER_STATUS_CLOSED);
  close.set_reason("asked to leave");
  ASSERT_TRUE(membership_->SetMemberStatus(kBackoffice, close).ok());
  MustRefresh();
  EXPECT_EQ(Snapshots()[id_a].segment_ids_size(), 0);
  EXPECT_EQ(MustGetSegment(seg_may).member_count(), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM segment_members WHERE member_id = ?", {id_a}), 0);
}

TEST_F(MembershipTest, UpdatingASegmentFilterIsReflectedAtTheNextRefresh) {
  const std::string may = MustEnrolBorn("m0", 5).member().member_id();
  const std::string sep = MustEnrolBorn("m1", 9).member().member_id();
  v1::SegmentFilter silver;
  silver.add_tier_ids("silver");
  const std::string seg = MustCreateSegment("seg", silver);
  MustRefresh();
  EXPECT_EQ(MustGetSegment(seg).member_count(), 2);

  v1::UpdateSegmentRequest up;
  up.set_idempotency_key("up");
  up.set_segment_id(seg);
  up.mutable_segment()->mutable_filter()->set_birthday_month(9);
  up.mutable_update_mask()->add_paths("filter");
  ASSERT_TRUE(membership_->UpdateSegment(kBackoffice, up).ok());
  // Until the next refresh the members (and count) are the old filter's.
  EXPECT_EQ(SegmentIds(Snapshots()[may]), std::vector<std::string>{seg});
  EXPECT_EQ(MustGetSegment(seg).member_count(), 2);

  Advance(absl::Minutes(1));
  const int64_t head = FeedHead();
  SegmentRefreshResult r = MustRefresh();
  EXPECT_EQ(r.rows_removed, 1);
  EXPECT_EQ(r.rows_added, 0);
  EXPECT_EQ(FeedHead(), head + 1);
  std::map<std::string, v1::MemberSnapshot> snaps = Snapshots(head);
  ASSERT_EQ(snaps.size(), 1u);
  EXPECT_EQ(snaps[may].segment_ids_size(), 0);
  EXPECT_EQ(SegmentIds(Snapshots()[sep]), std::vector<std::string>{seg});
  v1::Segment got = MustGetSegment(seg);
  EXPECT_EQ(got.member_count(), 1);
  EXPECT_EQ(FromProtoTime(got.refreshed_at()), Now());
}

TEST_F(MembershipTest, InterruptedRefreshResumesAndSegmentsChangedMidPassWaitForTheNextPass) {
  UseRefreshChunk(2);
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(MustEnrolBorn(absl::StrCat("m", i), 5).member().member_id());
  v1::SegmentFilter silver;
  silver.add_tier_ids("silver");
  const std::string seg_silver = MustCreateSegment("silver", silver);
  const int64_t head = FeedHead();

  // One chunk, then the process "dies".
  auto first = membership_->RefreshSegments(1);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->pass_completed);
  EXPECT_EQ(first->chunks, 1);
  EXPECT_EQ(first->rows_added, 2);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM segment_members"), 2);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM segment_refresh WHERE after_member_id <> ''"), 1);

  // Mid-pass, a new segment appears and the first one is re-filtered.
  v1::SegmentFilter may;
  may.set_birthday_month(5);
  const std::string seg_may = MustCreateSegment("may", may);
  v1::UpdateSegmentRequest up;
  up.set_idempotency_key("up");
  up.set_segment_id(seg_silver);
  up.mutable_segment()->mutable_filter()->add_tier_ids("gold");
  up.mutable_update_mask()->add_paths("filter");
  ASSERT_TRUE(membership_->UpdateSegment(kBackoffice, up).ok());

  // A fresh instance resumes after the last committed chunk.
  Membership restarted(*store_, ledger_, options_);
  auto rest = restarted.RefreshSegments(1000);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_TRUE(rest->pass_completed);
  EXPECT_EQ(rest->pass, 1);
  EXPECT_EQ(rest->members_examined, 3);
  // The two segments were evaluated only on the members after the position:
  // neither counts as refreshed by this pass.
  EXPECT_FALSE(MustGetSegment(seg_may).has_refreshed_at());
  EXPECT_FALSE(MustGetSegment(seg_silver).has_refreshed_at());

  SegmentRefreshResult next = restarted.RefreshSegments(1000).value_or(SegmentRefreshResult{});
  EXPECT_EQ(next.pass, 2);
  EXPECT_TRUE(next.pass_completed);
  for (const std::string& seg : {seg_may, seg_silver}) {
    v1::Segment got = MustGetSegment(seg);
    EXPECT_TRUE(got.has_refreshed_at()) << seg;
    EXPECT_EQ(got.member_count(), seg == seg_may ? 5 : 0) << seg;
  }
  std::map<std::string, v1::MemberSnapshot> snaps = Snapshots();
  for (const std::string& id : ids) EXPECT_EQ(SegmentIds(snaps[id]), std::vector<std::string>{seg_may}) << id;
  // One feed version per member and chunk that changed something: pass 1
  // put the first chunk's 2 members into silver, then the other 3 into may
  // (silver no longer matched); pass 2 moved the first 2 from silver to may.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM segment_members"), 5);
  EXPECT_EQ(FeedHead(), head + 2 + 3 + 2);
  const int64_t settled = FeedHead();
  EXPECT_EQ(restarted.RefreshSegments(1000).value_or(SegmentRefreshResult{}).members_changed, 0);
  EXPECT_EQ(FeedHead(), settled);
}

TEST_F(MembershipTest, ConcurrentRefreshesShareOnePassAndEndInTheRightState) {
  UseRefreshChunk(2);
  std::vector<std::string> ids;
  for (int i = 0; i < 24; ++i) {
    ids.push_back(MustEnrolBorn(absl::StrCat("m", i), i % 3 == 0 ? 5 : 9).member().member_id());
  }
  v1::SegmentFilter may;
  may.set_birthday_month(5);
  const std::string seg_may = MustCreateSegment("may", may);
  v1::SegmentFilter silver;
  silver.add_tier_ids("silver");
  const std::string seg_silver = MustCreateSegment("silver", silver);
  const int64_t head = FeedHead();

  // Two "replicas", each with its own connection pool.
  auto pool_b = db_->NewPool(2);
  ASSERT_TRUE(pool_b.ok()) << pool_b.status();
  std::unique_ptr<MembershipStore> store_b = NewMysqlMembershipStore(**pool_b);
  Membership replica_b(*store_b, ledger_, options_);
  std::atomic<bool> go{false};
  SegmentRefreshResult results[2];
  absl::Status statuses[2];
  auto run = [&](Membership& m, int i) {
    while (!go.load()) std::this_thread::yield();
    auto r = m.RefreshSegments(1000);
    statuses[i] = r.status();
    if (r.ok()) results[i] = *r;
  };
  std::thread ta(run, std::ref(*membership_), 0);
  std::thread tb(run, std::ref(replica_b), 1);
  go = true;
  ta.join();
  tb.join();
  ASSERT_TRUE(statuses[0].ok()) << statuses[0];
  ASSERT_TRUE(statuses[1].ok()) << statuses[1];
  EXPECT_TRUE(results[0].pass_completed);
  EXPECT_TRUE(results[1].pass_completed);
  // They shared the pass chunk by chunk rather than each doing it: every
  // member was evaluated once per pass run (a caller that starts after a pass
  // ended runs the next one).
  const int64_t passes = results[0].pass == results[1].pass ? 1 : 2;
  EXPECT_EQ(results[0].members_examined + results[1].members_examined, 24 * passes);
  // Each member changed (and took a feed version) exactly once.
  EXPECT_EQ(results[0].members_changed + results[1].members_changed, 24);
  EXPECT_EQ(results[0].rows_added + results[1].rows_added, 24 + 8);
  EXPECT_EQ(FeedHead(), head + 24);

  std::map<std::string, v1::MemberSnapshot> snaps = Snapshots();
  for (int i = 0; i < 24; ++i) {
    const std::vector<std::string> want = i % 3 == 0 ? Sorted({seg_may, seg_silver}) : std::vector{seg_silver};
    EXPECT_EQ(SegmentIds(snaps[ids[i]]), want) << i;
  }
  EXPECT_EQ(MustGetSegment(seg_may).member_count(), 8);
  EXPECT_EQ(MustGetSegment(seg_silver).member_count(), 24);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM segment_members"), 32);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM segment_refresh WHERE after_member_id = ''"), 1);
}

// ---- privacy and audit ----------------------------------------------------------------

TEST_F(MembershipTest, EraseAnonymisesAndForgetsContactsAndCards) {
  v1::EnrolRequest r = EnrolOf("k1", "gone@example.com");
  r.set_phone("+33612345678");
  auto m = membership_->Enrol(kVet, r);
  ASSERT_TRUE(m.ok());
  const std::string id = m->member().member_id();
  v1::GetMemberRequest get;
  get.set_member_id(id);
  ASSERT_TRUE(membership_->GetMember(kBackoffice, get).ok());  // an audited read, with no images

  v1::EraseMemberRequest erase;
  erase.set_idempotency_key("erase");
  erase.set_member_id(id);
  erase.set_reason("GDPR request #42");
  EXPECT_EQ(membership_->EraseMember(kVet, erase).status().code(), absl::StatusCode::kPermissionDenied);
  auto erased = membership_->EraseMember(kBackoffice, erase);
  ASSERT_TRUE(erased.ok()) << erased.status();
  EXPECT_EQ(erased->member().status(), v1::MEMBER_STATUS_CLOSED);
  EXPECT_TRUE(erased->member().has_erased_at());
  EXPECT_TRUE(erased->member().given_name().empty());
  EXPECT_TRUE(erased->member().email().empty());

  for (auto q : {[] { v1::LookupMemberRequest x; x.set_email("gone@example.com"); return x; }(),
                 [] { v1::LookupMemberRequest x; x.set_phone("+33612345678"); return x; }()}) {
    EXPECT_EQ(membership_->LookupMember(kBackoffice, q).status().code(), absl::StatusCode::kNotFound);
  }
  v1::LookupMemberRequest by_card;
  by_card.set_card_number(m->card().card_number());
  EXPECT_EQ(membership_->LookupMember(kBackoffice, by_card).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(membership_->GetMember(kVet, get).status().code(), absl::StatusCode::kNotFound);

  // No personal data is left anywhere in the schema.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM members WHERE email IS NOT NULL OR phone IS NOT NULL OR given_name <> ''"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM idempotency WHERE request LIKE '%gone@%' OR response LIKE '%gone@%'"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit_events WHERE before_json LIKE '%gone@%' OR after_json LIKE '%gone@%'"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM cards"), 0);
  // The old enrolment key can no longer replay the personal data.
  EXPECT_EQ(membership_->Enrol(kVet, r).status().code(), absl::StatusCode::kFailedPrecondition);
  // The erasure itself replays; a second erasure is refused.
  EXPECT_TRUE(membership_->EraseMember(kBackoffice, erase).ok());
  erase.set_idempotency_key("erase-2");
  EXPECT_EQ(membership_->EraseMember(kBackoffice, erase).status().code(), absl::StatusCode::kFailedPrecondition);
  // The email is free for a new member.
  EXPECT_TRUE(membership_->Enrol(kVet, EnrolOf("k9", "gone@example.com")).ok());

  v1::ListAuditEventsRequest audit;
  audit.set_member_id(id);
  auto events = membership_->ListAuditEvents(kBackoffice, audit);
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
  EXPECT_EQ(membership_->ExportMemberData(kVet, ex).status().code(), absl::StatusCode::kPermissionDenied);
  auto got = membership_->ExportMemberData(kBackoffice, ex);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->member().email(), "a@example.com");
  EXPECT_EQ(got->cards_size(), 1);
  EXPECT_EQ(got->consent_history_size(), 2);
  EXPECT_EQ(got->tier_history_size(), 1);
  EXPECT_EQ(got->balance().posted_points(), 420);
  EXPECT_EQ(got->transfers_size(), 1);
  ledger_.SetDown(true);
  EXPECT_EQ(membership_->ExportMemberData(kBackoffice, ex).status().code(), absl::StatusCode::kUnavailable);

  v1::ListAuditEventsRequest audit;
  audit.set_member_id(m.member().member_id());
  audit.set_page_size(1);
  auto page = membership_->ListAuditEvents(kBackoffice, audit);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->events(0).action(), "loyalty.membership.v1.MembershipService/ExportMemberData");
  EXPECT_FALSE(page->next_page_token().empty());
  audit.set_page_token(page->next_page_token());
  audit.set_member_id("mb_someone_else");
  EXPECT_EQ(membership_->ListAuditEvents(kBackoffice, audit).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace loyalty::membership
