#include "services/membership/segment_refresh.h"

#include <string>
#include <vector>

#include "common/status/status_macros.h"
#include "services/membership/segments.h"

namespace loyalty::membership {
namespace {

// Saved segments read per statement while loading them all for a chunk.
constexpr int kSegmentLoadPage = 500;

absl::StatusOr<std::vector<v1::Segment>> LoadAllSegments(MembershipTx& tx) {
  std::vector<v1::Segment> all;
  std::string after;
  while (true) {
    ASSIGN_OR_RETURN(std::vector<v1::Segment> page, tx.ListSegments(after, kSegmentLoadPage));
    const bool more = static_cast<int>(page.size()) == kSegmentLoadPage;
    if (!page.empty()) after = page.back().segment_id();
    for (v1::Segment& seg : page) all.push_back(std::move(seg));
    if (!more) return all;
  }
}

// One refresh chunk's outcome; written only by the (retried) body.
struct RefreshChunk {
  int64_t pass = 0;
  bool pass_over = false;  // the pass this caller joined ended before this chunk
  bool pass_completed = false;
  SegmentChanges changes;
  int64_t examined = 0;
};

}  // namespace

absl::StatusOr<SegmentRefreshResult> SegmentRefresh::RefreshSegments(int max_chunks) {
  if (max_chunks < 1) return absl::InvalidArgumentError("max_chunks: at least 1");
  const int chunk_members = deps_.options.segment_refresh_chunk_members;
  if (chunk_members < 1) return absl::InvalidArgumentError("segment_refresh_chunk_members: at least 1");
  SegmentRefreshResult result;
  while (result.chunks < max_chunks && !result.pass_completed) {
    RefreshChunk chunk;
    RETURN_IF_ERROR(deps_.store.Run("segments.refresh", [&](MembershipTx& tx) -> absl::Status {
      chunk = RefreshChunk{};
      const absl::Time now = deps_.Now();
      // The lock comes first: every read below sees the chunks committed
      // before it, by this replica or another.
      ASSIGN_OR_RETURN(SegmentRefreshCursor cursor, tx.LockSegmentRefresh());
      chunk.pass = cursor.pass + 1;
      if (result.pass != 0 && chunk.pass != result.pass) {
        chunk.pass_over = true;
        return absl::OkStatus();
      }
      if (cursor.after_member_id.empty()) RETURN_IF_ERROR(tx.BeginSegmentPass(now));
      ASSIGN_OR_RETURN(std::vector<v1::Segment> segments, LoadAllSegments(tx));
      const std::string after = cursor.after_member_id;
      ASSIGN_OR_RETURN(std::vector<SegmentCandidate> members, tx.ScanMembers(after, chunk_members));
      chunk.examined = static_cast<int64_t>(members.size());
      if (!members.empty()) {
        const std::string& last = members.back().member_id;
        GrantedByMember granted;
        if (NeedsConsents(segments)) {
          ASSIGN_OR_RETURN(std::vector<GrantedChannel> channels, tx.GrantedChannelsInRange(after, last));
          granted = GroupGrantedChannels(channels);
        }
        ASSIGN_OR_RETURN(std::vector<SegmentMembership> stored, tx.SegmentMembersInRange(after, last));
        chunk.changes = DiffSegmentMembers(segments, members, granted, stored);
        for (const SegmentMembership& row : chunk.changes.removed) RETURN_IF_ERROR(tx.RemoveSegmentMember(row));
        for (const SegmentMembership& row : chunk.changes.added) RETURN_IF_ERROR(tx.AddSegmentMember(row, now));
        RETURN_IF_ERROR(tx.BumpSnapshotVersions(chunk.changes.changed_member_ids));
        cursor.after_member_id = last;
      }
      // A short range means the table ended: the pass ends with this chunk.
      if (static_cast<int>(members.size()) < chunk_members) {
        RETURN_IF_ERROR(tx.CompleteSegmentPass(now));
        cursor.pass += 1;
        cursor.after_member_id.clear();
        chunk.pass_completed = true;
      }
      return tx.SetSegmentRefresh(cursor, now);
    }));
    if (chunk.pass_over) {
      result.pass_completed = true;
      break;
    }
    result.pass = chunk.pass;
    result.pass_completed = chunk.pass_completed;
    ++result.chunks;
    result.members_examined += chunk.examined;
    result.rows_added += static_cast<int64_t>(chunk.changes.added.size());
    result.rows_removed += static_cast<int64_t>(chunk.changes.removed.size());
    result.members_changed += static_cast<int64_t>(chunk.changes.changed_member_ids.size());
  }
  return result;
}
}  // namespace loyalty::membership
