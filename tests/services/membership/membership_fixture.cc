#include "tests/services/membership/membership_fixture.h"

#include "absl/strings/str_cat.h"
#include "common/db/migrations.h"
#include "common/time/proto_time.h"
#include "services/membership/mysql_membership_store.h"

namespace loyalty::membership {
const std::vector<db::MigrationFile>& Migrations();

// ---- FakeLedger ---------------------------------------------------------------

absl::StatusOr<absl::flat_hash_map<std::string, int64_t>> FakeLedger::QualifyingPoints(
    const std::vector<std::string>& ids, absl::Time, absl::Time) {
  absl::MutexLock lock(&mu_);
  if (down_) return absl::UnavailableError("ledger unreachable; retry later");
  ++calls_;
  absl::flat_hash_map<std::string, int64_t> out;
  for (const auto& id : ids) out[id] = points_.contains(id) ? points_[id] : 0;
  return out;
}

absl::StatusOr<LedgerStatement> FakeLedger::Statement(const std::string& member_id) {
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

absl::StatusOr<JournalPage> FakeLedger::ReadJournal(int64_t after, int page_size) {
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

absl::StatusOr<std::string> FakeLedger::GrantBonus(const std::string& key, const std::string& member_id, int64_t points,
                                                   ledger::v1::BonusKind kind, const std::string&,
                                                   const std::string&) {
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

void FakeLedger::LoseAnswers(int n) {
  absl::MutexLock lock(&mu_);
  lose_answers_ = n;
}

void FakeLedger::Close(const std::string& member_id) {
  absl::MutexLock lock(&mu_);
  closed_.insert(member_id);
}

int64_t FakeLedger::grants() {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(grants_.size());
}

void FakeLedger::AddEarn(const std::string& member_id, absl::Time at) {
  absl::MutexLock lock(&mu_);
  ledger::v1::Transfer t;
  t.set_sequence(static_cast<int64_t>(journal_.size()) + 1);
  t.set_code(ledger::v1::TRANSFER_CODE_EARN);
  t.set_member_id(member_id);
  t.set_points(10);
  *t.mutable_created_at() = ToProtoTime(at);
  journal_.push_back(t);
}

int64_t FakeLedger::BonusPoints(const std::string& member_id) {
  absl::MutexLock lock(&mu_);
  return bonus_points_.contains(member_id) ? bonus_points_[member_id] : 0;
}

void FakeLedger::SetPoints(const std::string& id, int64_t p) {
  absl::MutexLock lock(&mu_);
  points_[id] = p;
}

void FakeLedger::SetDown(bool down) {
  absl::MutexLock lock(&mu_);
  down_ = down;
}

// ---- MembershipTest -------------------------------------------------------------

void MembershipTest::SetUp() {
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

void MembershipTest::UseRefreshChunk(int members) {
  options_.segment_refresh_chunk_members = members;
  membership_ = std::make_unique<Membership>(*store_, ledger_, options_);
}

void MembershipTest::Advance(absl::Duration d) {
  absl::MutexLock lock(&clock_mu_);
  now_ += d;
}

absl::Time MembershipTest::Now() {
  absl::MutexLock lock(&clock_mu_);
  return now_;
}

v1::EnrolRequest MembershipTest::EnrolOf(const std::string& key, const std::string& email, const std::string& partner) {
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

v1::EnrolResponse MembershipTest::MustEnrol(const std::string& key, const std::string& email,
                                            const Principal& p) {
  auto r = membership_->members().Enrol(p, EnrolOf(key, email, p.is_partner() ? p.partner_id : "vet-clinic"));
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : v1::EnrolResponse();
}

int64_t MembershipTest::Count(const std::string& sql, const std::vector<std::string>& params) {
  auto v = loyalty::testing::QueryIntForTest(db_->pool(), sql, params);
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? *v : -1;
}

v1::EnrolResponse MembershipTest::MustEnrolBorn(const std::string& key, int birth_month, const Principal& p) {
  v1::EnrolRequest r = EnrolOf(key, absl::StrCat(key, "@example.com"), p.is_partner() ? p.partner_id : "vet-clinic");
  r.mutable_birth_date()->set_year(1985);
  r.mutable_birth_date()->set_month(birth_month);
  r.mutable_birth_date()->set_day(10);
  auto m = membership_->members().Enrol(p, r);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *m : v1::EnrolResponse();
}

std::string MembershipTest::MustCreateSegment(const std::string& key, const v1::SegmentFilter& filter) {
  v1::CreateSegmentRequest r;
  r.set_idempotency_key(key);
  r.set_name(key);
  *r.mutable_filter() = filter;
  auto seg = membership_->segment_admin().CreateSegment(kBackoffice, r);
  EXPECT_TRUE(seg.ok()) << seg.status();
  return seg.ok() ? seg->segment().segment_id() : "";
}

v1::Segment MembershipTest::MustGetSegment(const std::string& segment_id) {
  v1::GetSegmentRequest r;
  r.set_segment_id(segment_id);
  auto seg = membership_->segment_admin().GetSegment(kService, r);
  EXPECT_TRUE(seg.ok()) << seg.status();
  return seg.ok() ? seg->segment() : v1::Segment();
}

SegmentRefreshResult MembershipTest::MustRefresh() {
  auto r = membership_->segment_refresh().RefreshSegments(1000);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return {};
  EXPECT_TRUE(r->pass_completed);
  return *r;
}

std::map<std::string, v1::MemberSnapshot> MembershipTest::Snapshots(int64_t after_version) {
  std::map<std::string, v1::MemberSnapshot> out;
  v1::ListMemberSnapshotsRequest feed;
  feed.set_after_version(after_version);
  feed.set_page_size(3);
  for (int i = 0; i < 100; ++i) {
    auto page = membership_->members().ListMemberSnapshots(kService, feed);
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok()) break;
    for (const v1::MemberSnapshot& snap : page->snapshots()) out[snap.member_id()] = snap;
    if (!page->has_more()) break;
    feed.set_after_version(page->last_version());
  }
  return out;
}

int64_t MembershipTest::FeedHead() { return Count("SELECT last_version FROM feed_head WHERE id = 1"); }

}  // namespace loyalty::membership
