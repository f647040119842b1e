#pragma once
// The segment refresh: materialises the saved segments into the member
// snapshot feed (MemberSnapshot.segment_ids), pass after pass over all
// members. main.cc runs it on its own thread. Domain code: no gRPC or MySQL
// includes.
//
// A pass walks all members by member_id; each chunk of
// `segment_refresh_chunk_members` members is one transaction that evaluates
// every saved segment's filter (MatchesSegment, segments.h) on its members,
// writes the added and removed memberships, and gives each member whose set
// changed the next snapshot feed version. The position is durable and the
// chunk idempotent, so a pass interrupted anywhere resumes where it stopped;
// replicas running it at once take chunks in turn (each chunk locks the
// refresh row first). At the end of a pass, every segment whose version did
// not change during it gets member_count and refreshed_at. A segment created
// or re-filtered mid-pass is fully evaluated by the next pass.
//
// Thread-safety: no state of its own; safe from any number of threads and
// replicas.

#include <cstdint>

#include "absl/status/statusor.h"
#include "services/membership/membership_deps.h"

namespace loyalty::membership {

// What a RefreshSegments call did.
struct SegmentRefreshResult {
  int64_t pass = 0;             // number of the pass it worked on (1 = the first)
  bool pass_completed = false;  // that pass is over (ended by this call or by another replica)
  int chunks = 0;               // chunks (transactions) this call committed
  int64_t members_examined = 0;
  int64_t rows_added = 0;       // segment_members rows
  int64_t rows_removed = 0;
  int64_t members_changed = 0;  // members whose segment set changed (snapshot version bumped)
};

class SegmentRefresh {
 public:
  explicit SegmentRefresh(MembershipDeps& deps) : deps_(deps) {}

  // Works on the refresh pass under way, at most `max_chunks` chunks, and
  // returns early when that pass is over.
  // REQUIRES: max_chunks >= 1.
  absl::StatusOr<SegmentRefreshResult> RefreshSegments(int max_chunks);

 private:
  MembershipDeps& deps_;
};

}  // namespace loyalty::membership
