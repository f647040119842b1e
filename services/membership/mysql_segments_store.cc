// MysqlTx: segments, segment scans and the segment refresh (see
// mysql_membership_tx.h).
#include "services/membership/mysql_membership_tx.h"

#include <memory>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/db/mysql_error.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"

namespace loyalty::membership::mysql_internal {
namespace {

constexpr absl::string_view kInsertSegment =
    "INSERT INTO segments (segment_id, name, description, filter, created_at, updated_at, version, member_count, "
    "refreshed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
constexpr absl::string_view kUpdateSegment =
    "UPDATE segments SET name = ?, description = ?, filter = ?, updated_at = ?, version = ?, member_count = ?, "
    "refreshed_at = ? WHERE segment_id = ?";
#define LOYALTY_SEGMENT_COLUMNS \
  "segment_id, name, description, filter, created_at, updated_at, version, member_count, refreshed_at"
constexpr absl::string_view kSelectSegment = "SELECT " LOYALTY_SEGMENT_COLUMNS " FROM segments WHERE segment_id = ?";
constexpr absl::string_view kSelectSegmentForUpdate =
    "SELECT " LOYALTY_SEGMENT_COLUMNS " FROM segments WHERE segment_id = ? FOR UPDATE";
constexpr absl::string_view kSelectSegments =
    "SELECT " LOYALTY_SEGMENT_COLUMNS " FROM segments WHERE segment_id > ? ORDER BY segment_id LIMIT ?";
constexpr absl::string_view kScanMembers =
    "SELECT member_id, tier_id, enrolling_partner_id, preferred_language, status, birth_month, last_activity_at "
    "FROM members WHERE member_id > ? ORDER BY member_id LIMIT ?";
constexpr absl::string_view kGrantedChannelsInRange =
    "SELECT member_id, channel, partner_id FROM consents "
    "WHERE member_id > ? AND member_id <= ? AND kind = 1 AND granted = 1";

constexpr absl::string_view kLockSegmentRefresh =
    "SELECT pass, after_member_id FROM segment_refresh WHERE id = 1 FOR UPDATE";
constexpr absl::string_view kSetSegmentRefresh =
    "UPDATE segment_refresh SET pass = ?, after_member_id = ?, updated_at = ? WHERE id = 1";
constexpr absl::string_view kStartSegmentRefresh = "UPDATE segment_refresh SET pass_started_at = ? WHERE id = 1";
constexpr absl::string_view kPinSegmentVersions = "UPDATE segments SET refresh_version = version";
constexpr absl::string_view kCompleteSegments =
    "UPDATE segments SET member_count = (SELECT COUNT(*) FROM segment_members sm "
    "WHERE sm.segment_id = segments.segment_id), refreshed_at = ? WHERE refresh_version = version";
constexpr absl::string_view kSegmentMembersInRange =
    "SELECT segment_id, member_id FROM segment_members WHERE member_id > ? AND member_id <= ? FOR UPDATE";
constexpr absl::string_view kInsertSegmentMember =
    "INSERT INTO segment_members (segment_id, member_id, added_at) VALUES (?, ?, ?)";
constexpr absl::string_view kDeleteSegmentMember =
    "DELETE FROM segment_members WHERE segment_id = ? AND member_id = ?";
constexpr absl::string_view kLockMemberRow = "SELECT member_id FROM members WHERE member_id = ? FOR UPDATE";
constexpr absl::string_view kSetSnapshotVersion = "UPDATE members SET snapshot_version = ? WHERE member_id = ?";

absl::StatusOr<v1::Segment> ReadSegment(const sql::ResultSet& rs) {
  v1::Segment seg;
  seg.set_segment_id(Str(rs, 1));
  seg.set_name(Str(rs, 2));
  seg.set_description(Str(rs, 3));
  if (!seg.mutable_filter()->ParseFromString(ReadBlob(rs, 4))) {
    return absl::InternalError(absl::StrCat("segment ", seg.segment_id(), ": unreadable filter"));
  }
  ReadTime(rs, 5, seg.mutable_created_at());
  ReadTime(rs, 6, seg.mutable_updated_at());
  seg.set_version(rs.getInt64(7));
  seg.set_member_count(rs.getInt64(8));
  if (!ReadTime(rs, 9, seg.mutable_refreshed_at())) seg.clear_refreshed_at();
  return seg;
}

}  // namespace

absl::Status MysqlTx::InsertSegment(const v1::Segment& seg) {
  auto& s = tx_.Prepare(kInsertSegment);
  std::istringstream filter;
  s.setString(1, seg.segment_id());
  s.setString(2, seg.name());
  s.setString(3, seg.description());
  SetBlob(s, 4, seg.filter().SerializeAsString(), filter);
  SetTime(s, 5, seg.created_at());
  SetTime(s, 6, seg.updated_at());
  s.setInt64(7, seg.version());
  s.setInt64(8, seg.member_count());
  SetOptionalTime(s, 9, seg.has_refreshed_at() ? &seg.refreshed_at() : nullptr);
  s.executeUpdate();
  return absl::OkStatus();
}

absl::Status MysqlTx::UpdateSegment(const v1::Segment& seg) {
  auto& s = tx_.Prepare(kUpdateSegment);
  std::istringstream filter;
  s.setString(1, seg.name());
  s.setString(2, seg.description());
  SetBlob(s, 3, seg.filter().SerializeAsString(), filter);
  SetTime(s, 4, seg.updated_at());
  s.setInt64(5, seg.version());
  s.setInt64(6, seg.member_count());
  SetOptionalTime(s, 7, seg.has_refreshed_at() ? &seg.refreshed_at() : nullptr);
  s.setString(8, seg.segment_id());
  s.executeUpdate();
  return absl::OkStatus();
}

absl::StatusOr<std::optional<v1::Segment>> MysqlTx::GetSegment(const std::string& id, bool for_update) {
  auto& s = tx_.Prepare(for_update ? kSelectSegmentForUpdate : kSelectSegment);
  s.setString(1, id);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  if (!rs->next()) return std::nullopt;
  return ReadSegment(*rs);
}

absl::StatusOr<std::vector<v1::Segment>> MysqlTx::ListSegments(const std::string& after, int limit) {
  auto& s = tx_.Prepare(kSelectSegments);
  s.setString(1, after);
  s.setInt(2, limit);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  std::vector<v1::Segment> out;
  while (rs->next()) {
    ASSIGN_OR_RETURN(v1::Segment seg, ReadSegment(*rs));
    out.push_back(std::move(seg));
  }
  return out;
}

absl::StatusOr<std::vector<SegmentCandidate>> MysqlTx::ScanMembers(const std::string& after, int limit) {
  auto& s = tx_.Prepare(kScanMembers);
  s.setString(1, after);
  s.setInt(2, limit);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  std::vector<SegmentCandidate> out;
  while (rs->next()) {
    SegmentCandidate& c = out.emplace_back();
    c.member_id = Str(*rs, 1);
    c.tier_id = Str(*rs, 2);
    c.enrolling_partner_id = Str(*rs, 3);
    c.preferred_language = Str(*rs, 4);
    c.status = static_cast<v1::MemberStatus>(rs->getInt(5));
    c.birth_month = rs->getInt(6);
    if (!rs->isNull(7)) c.last_activity_at = ParseSqlTime(Str(*rs, 7));
  }
  return out;
}

absl::StatusOr<std::vector<GrantedChannel>> MysqlTx::GrantedChannelsInRange(const std::string& after,
                                                                            const std::string& last) {
  auto& s = tx_.Prepare(kGrantedChannelsInRange);
  s.setString(1, after);
  s.setString(2, last);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  std::vector<GrantedChannel> out;
  while (rs->next()) {
    out.push_back({Str(*rs, 1), static_cast<v1::ContactChannel>(rs->getInt(2)), Str(*rs, 3)});
  }
  return out;
}

absl::StatusOr<SegmentRefreshCursor> MysqlTx::LockSegmentRefresh() {
  auto& s = tx_.Prepare(kLockSegmentRefresh);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  if (!rs->next()) return absl::InternalError("segment_refresh row missing");
  return SegmentRefreshCursor{rs->getInt64(1), Str(*rs, 2)};
}

absl::Status MysqlTx::SetSegmentRefresh(const SegmentRefreshCursor& cursor, absl::Time now) {
  auto& s = tx_.Prepare(kSetSegmentRefresh);
  s.setInt64(1, cursor.pass);
  s.setString(2, cursor.after_member_id);
  s.setString(3, SqlTime(now));
  s.executeUpdate();
  return absl::OkStatus();
}

absl::Status MysqlTx::BeginSegmentPass(absl::Time now) {
  auto& start = tx_.Prepare(kStartSegmentRefresh);
  start.setString(1, SqlTime(now));
  start.executeUpdate();
  tx_.Prepare(kPinSegmentVersions).executeUpdate();
  return absl::OkStatus();
}

absl::Status MysqlTx::CompleteSegmentPass(absl::Time now) {
  auto& s = tx_.Prepare(kCompleteSegments);
  s.setString(1, SqlTime(now));
  s.executeUpdate();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<SegmentMembership>> MysqlTx::SegmentMembersInRange(const std::string& after,
                                                                              const std::string& last) {
  auto& s = tx_.Prepare(kSegmentMembersInRange);
  s.setString(1, after);
  s.setString(2, last);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  std::vector<SegmentMembership> out;
  while (rs->next()) out.push_back({Str(*rs, 1), Str(*rs, 2)});
  return out;
}

absl::Status MysqlTx::AddSegmentMember(const SegmentMembership& row, absl::Time now) {
  auto& s = tx_.Prepare(kInsertSegmentMember);
  s.setString(1, row.segment_id);
  s.setString(2, row.member_id);
  s.setString(3, SqlTime(now));
  // Only a refresh chunk writes these rows, under the segment_refresh
  // lock; a duplicate means another writer slipped past it (Galera
  // replicas on two nodes): retry, and the diff then sees the row.
  return db::ExecuteUnlessDuplicate(s, absl::AbortedError("segment member added concurrently"));
}

absl::Status MysqlTx::RemoveSegmentMember(const SegmentMembership& row) {
  auto& s = tx_.Prepare(kDeleteSegmentMember);
  s.setString(1, row.segment_id);
  s.setString(2, row.member_id);
  s.executeUpdate();
  return absl::OkStatus();
}

absl::Status MysqlTx::BumpSnapshotVersions(const std::vector<std::string>& member_ids) {
  // Member rows first, then the feed counter: the order UpdateMember takes
  // them in, so the two cannot deadlock.
  std::vector<const std::string*> found;
  for (const std::string& id : member_ids) {
    auto& lock = tx_.Prepare(kLockMemberRow);
    lock.setString(1, id);
    std::unique_ptr<sql::ResultSet> rs(lock.executeQuery());
    if (rs->next()) found.push_back(&id);
  }
  if (found.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(int64_t version, NextFeedVersions(static_cast<int64_t>(found.size())));
  for (const std::string* id : found) {
    auto& s = tx_.Prepare(kSetSnapshotVersion);
    s.setInt64(1, version++);
    s.setString(2, *id);
    s.executeUpdate();
  }
  return absl::OkStatus();
}

}  // namespace loyalty::membership::mysql_internal
