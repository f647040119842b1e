#pragma once
// Segment administration: saved segments (create, update, read, list) and
// querying the members of a saved segment or of an ad hoc filter. The
// filter rule itself is pure and lives in segments.h; materialising saved
// segments into the snapshot feed is segment_refresh.h. Domain code: no gRPC
// or MySQL includes.
//
// Invariants:
// - A filter names only tiers of the current ladder (ValidateSegmentFilter).
// - A segment's version moves with every update (expected_version guards
//   concurrent edits).
// - QuerySegment reads one bounded primary-key range per call; its page
//   token is bound to the query (the saved segment or the filter itself).
//
// Mutations are idempotent by key (Mutate, membership_shared.h).
// Thread-safety: no state of its own; safe from any number of threads.

#include "absl/status/statusor.h"
#include "common/auth/principal.h"
#include "loyalty/membership/v1/membership.pb.h"
#include "services/membership/membership_deps.h"

namespace loyalty::membership {

class SegmentAdmin {
 public:
  using Principal = auth::Principal;

  explicit SegmentAdmin(MembershipDeps& deps) : deps_(deps) {}

  absl::StatusOr<v1::CreateSegmentResponse> CreateSegment(const Principal& p, const v1::CreateSegmentRequest& r);
  absl::StatusOr<v1::UpdateSegmentResponse> UpdateSegment(const Principal& p, const v1::UpdateSegmentRequest& r);
  absl::StatusOr<v1::GetSegmentResponse> GetSegment(const Principal& p, const v1::GetSegmentRequest& r);
  absl::StatusOr<v1::ListSegmentsResponse> ListSegments(const Principal& p, const v1::ListSegmentsRequest& r);
  absl::StatusOr<v1::QuerySegmentResponse> QuerySegment(const Principal& p, const v1::QuerySegmentRequest& r);

 private:
  MembershipDeps& deps_;
};

}  // namespace loyalty::membership
