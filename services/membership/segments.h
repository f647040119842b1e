#pragma once
// Segment filters: validation and matching. Pure functions.

#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "loyalty/membership/v1/membership.pb.h"
#include "services/membership/membership_store.h"

namespace loyalty::membership {

inline constexpr int kMaxFilterValues = 50;
// Members examined per QuerySegment call: the cost bound. A call may return
// fewer than page_size members (even none) with a next_page_token.
inline constexpr int kSegmentScanRows = 5000;

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

}  // namespace loyalty::membership
