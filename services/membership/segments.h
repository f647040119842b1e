#pragma once
// Segment filters: validation and matching. Pure functions.

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "loyalty/membership/v1/membership.pb.h"
#include "services/membership/membership_store.h"

namespace loyalty::membership {

inline constexpr int kMaxFilterValues = 50;
// Members examined per QuerySegment call: the cost bound. A call may return
// fewer than page_size members (even none) with a next_page_token.
inline constexpr int kSegmentScanRows = 5000;
// Members evaluated per segment refresh transaction (one chunk). Each chunk
// writes at most this many members × segments rows, and bumps at most this
// many snapshot versions.
inline constexpr int kSegmentRefreshChunkMembers = 500;

// INVALID_ARGUMENT naming the field ("filter.tier_ids[1]").
absl::Status ValidateSegmentFilter(absl::string_view field, const v1::SegmentFilter& filter,
                                   const v1::TierLadder& ladder);

// "channel/partner_id" keys of a member's granted channel consents.
std::string ConsentKey(v1::ContactChannel channel, const std::string& partner_id);

// True if the member matches every criterion of the filter (see
// membership.proto SegmentFilter). `granted` holds the member's granted
// ConsentKeys.
bool MatchesSegment(const v1::SegmentFilter& filter, const SegmentCandidate& member,
                    const absl::flat_hash_set<std::string>& granted);

// Granted ConsentKeys by member id.
using GrantedByMember = absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>>;
GrantedByMember GroupGrantedChannels(const std::vector<GrantedChannel>& channels);

// True if some filter has required_consents (so GrantedChannelsInRange is
// needed).
bool NeedsConsents(const std::vector<v1::Segment>& segments);

// What one refresh chunk writes: the difference between the stored
// memberships of a range of members and what the saved segments' filters say
// now.
struct SegmentChanges {
  // Both ascending by (member_id, segment_id).
  std::vector<SegmentMembership> added;
  std::vector<SegmentMembership> removed;
  // Members whose set of segments changed: ascending, each once.
  std::vector<std::string> changed_member_ids;
};

// `members` is one ScanMembers range and `stored` the segment_members rows
// of that range. A stored row whose segment is not in `segments`, or whose
// member is not in `members`, is removed.
SegmentChanges DiffSegmentMembers(const std::vector<v1::Segment>& segments,
                                  const std::vector<SegmentCandidate>& members, const GrantedByMember& granted,
                                  const std::vector<SegmentMembership>& stored);

}  // namespace loyalty::membership
