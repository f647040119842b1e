#include "services/membership/segments.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "services/membership/tiers.h"
#include "services/membership/validation.h"

namespace loyalty::membership {
namespace {

template <typename T>
bool AnyOrContains(const google::protobuf::RepeatedField<T>& list, T value) {
  return list.empty() || std::find(list.begin(), list.end(), value) != list.end();
}

bool AnyOrContains(const google::protobuf::RepeatedPtrField<std::string>& list, const std::string& value) {
  return list.empty() || std::find(list.begin(), list.end(), value) != list.end();
}

}  // namespace

absl::Status ValidateSegmentFilter(absl::string_view field, const v1::SegmentFilter& f, const v1::TierLadder& ladder) {
  if (f.tier_ids_size() > kMaxFilterValues || f.enrolling_partner_ids_size() > kMaxFilterValues ||
      f.required_consents_size() > kMaxFilterValues) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": at most ", kMaxFilterValues, " values per criterion"));
  }
  for (int i = 0; i < f.tier_ids_size(); ++i) {
    if (FindTier(ladder, f.tier_ids(i)) == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(field, ".tier_ids[", i, "]: unknown tier \"", f.tier_ids(i), "\""));
    }
  }
  for (int i = 0; i < f.enrolling_partner_ids_size(); ++i) {
    RETURN_IF_ERROR(ValidateId(absl::StrCat(field, ".enrolling_partner_ids[", i, "]"), f.enrolling_partner_ids(i)));
  }
  for (int i = 0; i < f.statuses_size(); ++i) {
    const auto s = f.statuses(i);
    if (s == v1::MEMBER_STATUS_UNSPECIFIED || !v1::MemberStatus_IsValid(s)) {
      return absl::InvalidArgumentError(absl::StrCat(field, ".statuses[", i, "]: ACTIVE, SUSPENDED or CLOSED"));
    }
  }
  for (int i = 0; i < f.required_consents_size(); ++i) {
    const auto& c = f.required_consents(i);
    if (c.channel() == v1::CONTACT_CHANNEL_UNSPECIFIED || !v1::ContactChannel_IsValid(c.channel())) {
      return absl::InvalidArgumentError(absl::StrCat(field, ".required_consents[", i, "].channel: required"));
    }
    if (!c.partner_id().empty()) {
      RETURN_IF_ERROR(ValidateId(absl::StrCat(field, ".required_consents[", i, "].partner_id"), c.partner_id()));
    }
  }
  if (f.birthday_month() < 0 || f.birthday_month() > 12) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".birthday_month: 0..12"));
  }
  return absl::OkStatus();
}

std::string ConsentKey(v1::ContactChannel channel, const std::string& partner_id) {
  return absl::StrCat(static_cast<int>(channel), "/", partner_id);
}

bool MatchesSegment(const v1::SegmentFilter& f, const SegmentCandidate& m,
                    const absl::flat_hash_set<std::string>& granted) {
  if (!AnyOrContains(f.tier_ids(), m.tier_id)) return false;
  if (!AnyOrContains(f.enrolling_partner_ids(), m.enrolling_partner_id)) return false;
  if (f.statuses().empty()) {
    if (m.status != v1::MEMBER_STATUS_ACTIVE) return false;
  } else if (!AnyOrContains<int>(f.statuses(), static_cast<int>(m.status))) {
    return false;
  }
  for (const auto& c : f.required_consents()) {
    if (!granted.contains(ConsentKey(c.channel(), c.partner_id()))) return false;
  }
  if (f.has_active_since()) {
    if (!m.last_activity_at.has_value() || *m.last_activity_at < FromProtoTime(f.active_since())) return false;
  }
  if (f.has_inactive_since()) {
    if (m.last_activity_at.has_value() && *m.last_activity_at >= FromProtoTime(f.inactive_since())) return false;
  }
  if (f.birthday_month() != 0 && m.birth_month != f.birthday_month()) return false;
  return true;
}

GrantedByMember GroupGrantedChannels(const std::vector<GrantedChannel>& channels) {
  GrantedByMember out;
  for (const GrantedChannel& g : channels) out[g.member_id].insert(ConsentKey(g.channel, g.partner_id));
  return out;
}

bool NeedsConsents(const std::vector<v1::Segment>& segments) {
  return std::any_of(segments.begin(), segments.end(),
                     [](const v1::Segment& s) { return !s.filter().required_consents().empty(); });
}

SegmentChanges DiffSegmentMembers(const std::vector<v1::Segment>& segments,
                                  const std::vector<SegmentCandidate>& members, const GrantedByMember& granted,
                                  const std::vector<SegmentMembership>& stored) {
  // (member_id, segment_id): ordered sets give the documented output order.
  using Key = std::pair<std::string, std::string>;
  std::set<Key> want;
  static const absl::flat_hash_set<std::string> kNone;
  for (const SegmentCandidate& m : members) {
    auto it = granted.find(m.member_id);
    const absl::flat_hash_set<std::string>& consents = it == granted.end() ? kNone : it->second;
    for (const v1::Segment& s : segments) {
      if (MatchesSegment(s.filter(), m, consents)) want.emplace(m.member_id, s.segment_id());
    }
  }
  std::set<Key> have;
  for (const SegmentMembership& r : stored) have.emplace(r.member_id, r.segment_id);

  SegmentChanges out;
  std::set<std::string> changed;
  for (const Key& k : want) {
    if (have.contains(k)) continue;
    out.added.push_back({k.second, k.first});
    changed.insert(k.first);
  }
  for (const Key& k : have) {
    if (want.contains(k)) continue;
    out.removed.push_back({k.second, k.first});
    changed.insert(k.first);
  }
  out.changed_member_ids.assign(changed.begin(), changed.end());
  return out;
}

}  // namespace loyalty::membership
