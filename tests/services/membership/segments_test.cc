// Unit tests of a pure membership rule (no database, no gRPC): the segment refresh diff (segments.h).

#include <algorithm>
#include <cstdint>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/time/proto_time.h"
#include "gtest/gtest.h"
#include "loyalty/common/v1/common.pb.h"
#include "loyalty/membership/v1/membership.pb.h"
#include "services/membership/segments.h"
#include "tests/services/membership/rules_fixture.h"

namespace loyalty::membership {
namespace {

// ---------------------------------------------------------------------------
// Segment refresh diff (DiffSegmentMembers)
// ---------------------------------------------------------------------------

SegmentCandidate Candidate(const std::string& id, const std::string& tier, int birth_month = 0) {
  SegmentCandidate c;
  c.member_id = id;
  c.tier_id = tier;
  c.enrolling_partner_id = "vet-clinic";
  c.status = v1::MEMBER_STATUS_ACTIVE;
  c.birth_month = birth_month;
  return c;
}

v1::Segment SegmentOf(const std::string& id, const std::string& tier, int birth_month = 0) {
  v1::Segment s;
  s.set_segment_id(id);
  if (!tier.empty()) s.mutable_filter()->add_tier_ids(tier);
  s.mutable_filter()->set_birthday_month(birth_month);
  return s;
}

TEST(DiffSegmentMembersTest, AddsMatchesRemovesTheRestAndNamesEachChangedMemberOnce) {
  const std::vector<v1::Segment> segments = {SegmentOf("sg_gold", "gold"), SegmentOf("sg_may", "", 5)};
  const std::vector<SegmentCandidate> members = {Candidate("m1", "gold", 5), Candidate("m2", "silver", 5),
                                                 Candidate("m3", "silver", 1), Candidate("m4", "gold", 1)};
  const std::vector<SegmentMembership> stored = {
      {"sg_gold", "m3"},  // no longer gold
      {"sg_may", "m2"},   // unchanged
      {"sg_gold", "m4"},  // unchanged
      {"sg_gone", "m4"},  // a segment that no longer exists
  };
  SegmentChanges c = DiffSegmentMembers(segments, members, {}, stored);
  const std::vector<SegmentMembership> added = {{"sg_gold", "m1"}, {"sg_may", "m1"}};
  const std::vector<SegmentMembership> removed = {{"sg_gold", "m3"}, {"sg_gone", "m4"}};
  EXPECT_EQ(c.added, added);
  EXPECT_EQ(c.removed, removed);
  EXPECT_EQ(c.changed_member_ids, (std::vector<std::string>{"m1", "m3", "m4"}));
}

TEST(DiffSegmentMembersTest, NothingToDoWhenTheStoredSetMatches) {
  const std::vector<v1::Segment> segments = {SegmentOf("sg_gold", "gold")};
  const std::vector<SegmentCandidate> members = {Candidate("m1", "gold"), Candidate("m2", "silver")};
  SegmentChanges c = DiffSegmentMembers(segments, members, {}, {{"sg_gold", "m1"}});
  EXPECT_TRUE(c.added.empty());
  EXPECT_TRUE(c.removed.empty());
  EXPECT_TRUE(c.changed_member_ids.empty());
}

TEST(DiffSegmentMembersTest, ConsentsComeFromTheGrantedMapAndStatusDefaultsToActive) {
  v1::Segment s = SegmentOf("sg_news", "");
  auto* need = s.mutable_filter()->add_required_consents();
  need->set_channel(v1::CONTACT_CHANNEL_EMAIL);
  need->set_partner_id("pet-food");
  SegmentCandidate closed = Candidate("m3", "silver");
  closed.status = v1::MEMBER_STATUS_CLOSED;
  const std::vector<SegmentCandidate> members = {Candidate("m1", "silver"), Candidate("m2", "silver"), closed};
  const GrantedByMember granted = GroupGrantedChannels({{"m1", v1::CONTACT_CHANNEL_EMAIL, "pet-food"},
                                                        {"m2", v1::CONTACT_CHANNEL_SMS, "pet-food"},
                                                        {"m3", v1::CONTACT_CHANNEL_EMAIL, "pet-food"}});
  EXPECT_TRUE(NeedsConsents({s}));
  EXPECT_FALSE(NeedsConsents({SegmentOf("sg_gold", "gold")}));
  SegmentChanges c = DiffSegmentMembers({s}, members, granted, {});
  EXPECT_EQ(c.added, (std::vector<SegmentMembership>{{"sg_news", "m1"}}));
  EXPECT_EQ(c.changed_member_ids, (std::vector<std::string>{"m1"}));
}

TEST(DiffSegmentMembersTest, NoSegmentsRemoveEverythingStored) {
  SegmentChanges c = DiffSegmentMembers({}, {Candidate("m1", "gold")}, {}, {{"sg_a", "m1"}, {"sg_b", "m1"}});
  EXPECT_EQ(c.removed, (std::vector<SegmentMembership>{{"sg_a", "m1"}, {"sg_b", "m1"}}));
  EXPECT_EQ(c.changed_member_ids, (std::vector<std::string>{"m1"}));
}

}  // namespace
}  // namespace loyalty::membership
