#include "services/membership/segment_admin.h"

#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/paging/page_token.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "common/validation/text.h"
#include "services/membership/codes.h"
#include "services/membership/membership_shared.h"
#include "services/membership/segments.h"
#include "services/membership/validation.h"

namespace loyalty::membership {

absl::StatusOr<v1::CreateSegmentResponse> SegmentAdmin::CreateSegment(const Principal& p,
                                                                      const v1::CreateSegmentRequest& r) {
  ASSIGN_OR_RETURN(std::string name, NormaliseText("name", r.name(), 1, 100));
  ASSIGN_OR_RETURN(std::string description, NormaliseText("description", r.description(), 0, 1000));
  const absl::Time now = deps_.Now();
  return Mutate<v1::CreateSegmentResponse>(deps_, p, "CreateSegment", r.idempotency_key(), r,
      [&](MembershipTx& tx, v1::CreateSegmentResponse& out, std::string&) -> absl::Status {
        ASSIGN_OR_RETURN(v1::TierLadder ladder, tx.GetLadder(false));
        RETURN_IF_ERROR(ValidateSegmentFilter("filter", r.filter(), ladder));
        v1::Segment seg;
        seg.set_segment_id(NewOpaqueId("sg"));
        seg.set_name(name);
        seg.set_description(description);
        *seg.mutable_filter() = r.filter();
        *seg.mutable_created_at() = ToProtoTime(now);
        *seg.mutable_updated_at() = ToProtoTime(now);
        seg.set_version(1);
        RETURN_IF_ERROR(tx.InsertSegment(seg));
        RETURN_IF_ERROR(AuditChange(tx, p, "CreateSegment", "segment", seg.segment_id(), "", nullptr, &seg,
                                    r.idempotency_key(), "", now));
        *out.mutable_segment() = seg;
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::UpdateSegmentResponse> SegmentAdmin::UpdateSegment(const Principal& p,
                                                                      const v1::UpdateSegmentRequest& r) {
  RETURN_IF_ERROR(ValidateId("segment_id", r.segment_id()));
  if (r.update_mask().paths().empty()) return absl::InvalidArgumentError("update_mask: name at least one field");
  absl::flat_hash_set<std::string> paths;
  std::string name, description;
  for (const std::string& path : r.update_mask().paths()) {
    if (path == "name") {
      ASSIGN_OR_RETURN(name, NormaliseText("segment.name", r.segment().name(), 1, 100));
    } else if (path == "description") {
      ASSIGN_OR_RETURN(description, NormaliseText("segment.description", r.segment().description(), 0, 1000));
    } else if (path != "filter") {
      return absl::InvalidArgumentError(absl::StrCat("update_mask: \"", path, "\" cannot be updated"));
    }
    paths.insert(path);
  }
  const absl::Time now = deps_.Now();
  return Mutate<v1::UpdateSegmentResponse>(deps_, p, "UpdateSegment", r.idempotency_key(), r,
      [&](MembershipTx& tx, v1::UpdateSegmentResponse& out, std::string&) -> absl::Status {
        ASSIGN_OR_RETURN(std::optional<v1::Segment> before, tx.GetSegment(r.segment_id(), true));
        if (!before.has_value()) return absl::NotFoundError(absl::StrCat("segment ", r.segment_id(), " not found"));
        if (r.expected_version() != 0 && r.expected_version() != before->version()) {
          return absl::AbortedError(absl::StrCat("expected_version: segment is at version ", before->version()));
        }
        v1::Segment after = *before;
        if (paths.contains("name")) after.set_name(name);
        if (paths.contains("description")) after.set_description(description);
        if (paths.contains("filter")) {
          ASSIGN_OR_RETURN(v1::TierLadder ladder, tx.GetLadder(false));
          RETURN_IF_ERROR(ValidateSegmentFilter("segment.filter", r.segment().filter(), ladder));
          *after.mutable_filter() = r.segment().filter();
        }
        after.set_version(before->version() + 1);
        *after.mutable_updated_at() = ToProtoTime(now);
        RETURN_IF_ERROR(tx.UpdateSegment(after));
        RETURN_IF_ERROR(AuditChange(tx, p, "UpdateSegment", "segment", after.segment_id(), "", &*before, &after,
                                    r.idempotency_key(), "", now));
        *out.mutable_segment() = after;
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::GetSegmentResponse> SegmentAdmin::GetSegment(const Principal& /*p*/, const v1::GetSegmentRequest& r) {
  RETURN_IF_ERROR(ValidateId("segment_id", r.segment_id()));
  v1::GetSegmentResponse out;
  RETURN_IF_ERROR(deps_.store.Run("GetSegment", [&](MembershipTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(std::optional<v1::Segment> seg, tx.GetSegment(r.segment_id(), false));
    if (!seg.has_value()) return absl::NotFoundError(absl::StrCat("segment ", r.segment_id(), " not found"));
    *out.mutable_segment() = *std::move(seg);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::ListSegmentsResponse> SegmentAdmin::ListSegments(const Principal& /*p*/,
                                                                    const v1::ListSegmentsRequest& r) {
  ASSIGN_OR_RETURN(int size, paging::PageSize(r.page_size(), 50, 500));
  std::string after;
  if (!r.page_token().empty()) {
    ASSIGN_OR_RETURN(after, paging::DecodeKeyPageToken(r.page_token(), "segments"));
  }
  v1::ListSegmentsResponse out;
  RETURN_IF_ERROR(deps_.store.Run("ListSegments", [&](MembershipTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(std::vector<v1::Segment> rows, tx.ListSegments(after, size + 1));
    for (int i = 0; i < static_cast<int>(rows.size()) && i < size; ++i) *out.add_segments() = rows[i];
    if (static_cast<int>(rows.size()) > size) {
      out.set_next_page_token(paging::EncodeKeyPageToken("segments", rows[size - 1].segment_id()));
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::QuerySegmentResponse> SegmentAdmin::QuerySegment(const Principal& /*p*/,
                                                                    const v1::QuerySegmentRequest& r) {
  ASSIGN_OR_RETURN(int size, paging::PageSize(r.page_size(), 500, 1000));
  if (r.target_case() == v1::QuerySegmentRequest::TARGET_NOT_SET) {
    return absl::InvalidArgumentError("target: a segment_id or a filter is required");
  }
  if (r.has_segment_id()) RETURN_IF_ERROR(ValidateId("segment_id", r.segment_id()));
  v1::QuerySegmentResponse out;
  RETURN_IF_ERROR(deps_.store.Run("QuerySegment", [&](MembershipTx& tx) -> absl::Status {
    out.Clear();
    v1::SegmentFilter filter;
    if (r.has_segment_id()) {
      ASSIGN_OR_RETURN(std::optional<v1::Segment> seg, tx.GetSegment(r.segment_id(), false));
      if (!seg.has_value()) return absl::NotFoundError(absl::StrCat("segment ", r.segment_id(), " not found"));
      filter = seg->filter();
    } else {
      ASSIGN_OR_RETURN(v1::TierLadder ladder, tx.GetLadder(false));
      RETURN_IF_ERROR(ValidateSegmentFilter("filter", r.filter(), ladder));
      filter = r.filter();
    }
    // The token is bound to the query (saved segment id or the filter itself).
    const std::string scope = r.has_segment_id() ? absl::StrCat("segment/", r.segment_id())
                                                 : absl::StrCat("filter/", filter.SerializeAsString());
    std::string after;
    if (!r.page_token().empty()) {
      ASSIGN_OR_RETURN(after, paging::DecodeKeyPageToken(r.page_token(), scope));
    }
    // One bounded primary-key range per call; filters are applied to it.
    ASSIGN_OR_RETURN(std::vector<SegmentCandidate> rows, tx.ScanMembers(after, kSegmentScanRows));
    if (rows.empty()) return absl::OkStatus();
    GrantedByMember granted;
    if (!filter.required_consents().empty()) {
      ASSIGN_OR_RETURN(std::vector<GrantedChannel> channels, tx.GrantedChannelsInRange(after, rows.back().member_id));
      granted = GroupGrantedChannels(channels);
    }
    static const absl::flat_hash_set<std::string> kNone;
    std::string last_examined;
    for (const SegmentCandidate& c : rows) {
      last_examined = c.member_id;
      auto it = granted.find(c.member_id);
      if (!MatchesSegment(filter, c, it == granted.end() ? kNone : it->second)) continue;
      v1::SegmentMember* m = out.add_members();
      m->set_member_id(c.member_id);
      m->set_tier_id(c.tier_id);
      m->set_enrolling_partner_id(c.enrolling_partner_id);
      m->set_preferred_language(c.preferred_language);
      if (out.members_size() == size) break;
    }
    // More to read if the page filled before the range ended, or the range
    // was full (the table may go on).
    const bool more =
        last_examined != rows.back().member_id || static_cast<int>(rows.size()) == kSegmentScanRows;
    if (more) out.set_next_page_token(paging::EncodeKeyPageToken(scope, last_examined));
    return absl::OkStatus();
  }));
  return out;
}
}  // namespace loyalty::membership
