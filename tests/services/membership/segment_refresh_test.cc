// SegmentRefresh (segment_refresh.h): materialising saved segments into the
// snapshot feed.
// Runs on the real MySQL store with a fake ledger (membership_fixture.h).

#include <algorithm>
#include <atomic>
#include <functional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/time/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/membership/mysql_membership_store.h"
#include "tests/services/membership/membership_fixture.h"

namespace loyalty::membership {
namespace {

using ::testing::HasSubstr;

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
  auto a = membership_->members().Enrol(kBackoffice, r);
  ASSERT_TRUE(a.ok()) << a.status();
  const std::string id_a = a->member().member_id();
  r.set_idempotency_key("k2");
  r.set_email("b@example.com");
  auto b = membership_->members().Enrol(kBackoffice, r);
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
  ASSERT_TRUE(membership_->consents().UpdateConsents(kBackoffice, withdraw).ok());
  // b corrects the birth date to September (a snapshot change of its own).
  v1::UpdateMemberRequest birth;
  birth.set_idempotency_key("u1");
  birth.set_member_id(id_b);
  birth.mutable_member()->mutable_birth_date()->set_year(1990);
  birth.mutable_member()->mutable_birth_date()->set_month(9);
  birth.mutable_member()->mutable_birth_date()->set_day(2);
  birth.mutable_update_mask()->add_paths("birth_date");
  ASSERT_TRUE(membership_->members().UpdateMember(kBackoffice, birth).ok());
  // b earns: recorded from the ledger journal, again not a snapshot field.
  ledger_.AddEarn(id_b, Now());
  ASSERT_TRUE(membership_->journal_consumer().ConsumeLedgerJournal(100).ok());

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
  ASSERT_TRUE(membership_->members().SetMemberStatus(kBackoffice, close).ok());
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
  ASSERT_TRUE(membership_->segment_admin().UpdateSegment(kBackoffice, up).ok());
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
  auto first = membership_->segment_refresh().RefreshSegments(1);
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
  ASSERT_TRUE(membership_->segment_admin().UpdateSegment(kBackoffice, up).ok());

  // A fresh instance resumes after the last committed chunk.
  Membership restarted(*store_, ledger_, options_);
  auto rest = restarted.segment_refresh().RefreshSegments(1000);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_TRUE(rest->pass_completed);
  EXPECT_EQ(rest->pass, 1);
  EXPECT_EQ(rest->members_examined, 3);
  // The two segments were evaluated only on the members after the position:
  // neither counts as refreshed by this pass.
  EXPECT_FALSE(MustGetSegment(seg_may).has_refreshed_at());
  EXPECT_FALSE(MustGetSegment(seg_silver).has_refreshed_at());

  SegmentRefreshResult next = restarted.segment_refresh().RefreshSegments(1000).value_or(SegmentRefreshResult{});
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
  EXPECT_EQ(restarted.segment_refresh().RefreshSegments(1000).value_or(SegmentRefreshResult{}).members_changed, 0);
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
    auto r = m.segment_refresh().RefreshSegments(1000);
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

}  // namespace
}  // namespace loyalty::membership
