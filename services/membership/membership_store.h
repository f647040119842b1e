#pragma once
// What the membership domain needs from storage, as a unit of work: the
// domain runs a body against a MembershipTx, and the store commits it
// atomically (retrying deadlocks) or rolls it back. All SQL lives in
// mysql_membership_store.cc.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "loyalty/common/v1/common.pb.h"
#include "loyalty/membership/v1/membership.pb.h"

namespace loyalty::membership {

namespace v1 = ::loyalty::membership::v1;

// A remembered answer to an idempotent request.
struct IdempotencyRecord {
  std::string scope;        // "key:<key_id>"
  std::string key;
  std::string method;       // "Enrol"
  std::string fingerprint;  // of the request
  std::string request;      // serialized request (names the differing field)
  int status_code = 0;      // absl::StatusCode; 0 = OK
  std::string status_message;
  std::string status_detail;  // e.g. the existing member id of a duplicate
  std::string response;       // serialized response when OK
  std::string member_id;      // the member it concerns, for erasure
  bool erased = false;        // request/response wiped by an erasure
};

// Which members a lookup may return.
enum class LookupKind { kEmail, kPhone };

// A page position for lists ordered by an auto-increment id, newest first.
struct PageCursor {
  int64_t before_id = 0;  // 0 = from the newest
};

// What a segment query needs of one member (no contact data).
struct SegmentCandidate {
  std::string member_id;
  std::string tier_id;
  std::string enrolling_partner_id;
  std::string preferred_language;
  v1::MemberStatus status = v1::MEMBER_STATUS_UNSPECIFIED;
  int birth_month = 0;
  std::optional<absl::Time> last_activity_at;
};

// A granted channel consent of a member.
struct GrantedChannel {
  std::string member_id;
  v1::ContactChannel channel = v1::CONTACT_CHANNEL_UNSPECIFIED;
  std::string partner_id;
};

// A member's place in a saved segment (a segment_members row).
struct SegmentMembership {
  std::string segment_id;
  std::string member_id;
  friend bool operator==(const SegmentMembership&, const SegmentMembership&) = default;
};

// Where the segment refresh stands (the segment_refresh row).
struct SegmentRefreshCursor {
  int64_t pass = 0;             // passes completed; the one under way is pass + 1
  std::string after_member_id;  // last member evaluated; '' = the pass has not begun
};

class MembershipTx {
 public:
  virtual ~MembershipTx() = default;

  // --- idempotency ---
  // The stored record for (scope, key), or nullopt after inserting a claim
  // for it in this transaction (so a concurrent request with the same key
  // waits, then sees the record). ABORTED when such a race is detected.
  virtual absl::StatusOr<std::optional<IdempotencyRecord>> ClaimKey(const IdempotencyRecord& claim) = 0;
  // Completes the claim made in this transaction (or inserts the record).
  virtual absl::Status SaveOutcome(const IdempotencyRecord& record) = 0;

  // --- members ---
  virtual absl::StatusOr<std::optional<v1::Member>> GetMember(const std::string& member_id, bool for_update) = 0;
  virtual absl::StatusOr<std::optional<std::string>> FindMemberId(LookupKind kind, const std::string& value) = 0;
  virtual absl::StatusOr<std::optional<std::string>> FindMemberIdByReferralCode(const std::string& code) = 0;
  // Inserts a member (including tier and terms fields of `consents`).
  virtual absl::Status InsertMember(const v1::Member& member, const v1::Consents& documents) = 0;
  // Rewrites the member row; bumps the snapshot feed version when
  // `snapshot_changed`. ALREADY_EXISTS if email or phone collide.
  virtual absl::Status UpdateMember(const v1::Member& member, bool snapshot_changed) = 0;
  // Non-closed member ids after `after_member_id`, ascending.
  virtual absl::StatusOr<std::vector<std::string>> ListOpenMemberIds(const std::string& after_member_id,
                                                                     int limit) = 0;
  virtual absl::StatusOr<int64_t> CountMembersHoldingTier(const std::string& tier_id) = 0;
  // Wipes personal data: cards, idempotency request/response bodies and
  // audit images of this member.
  virtual absl::Status ScrubPersonalData(const std::string& member_id) = 0;

  // --- cards ---
  virtual absl::StatusOr<std::optional<v1::Card>> GetCard(const std::string& card_number, bool for_update) = 0;
  virtual absl::StatusOr<std::vector<v1::Card>> ListCards(const std::string& member_id) = 0;
  // ALREADY_EXISTS if the number is taken (the caller draws another).
  virtual absl::Status InsertCard(const v1::Card& card) = 0;
  virtual absl::Status UpdateCard(const v1::Card& card) = 0;

  // --- consents ---
  virtual absl::StatusOr<v1::Consents> GetConsents(const std::string& member_id) = 0;
  virtual absl::Status PutChannelConsent(const std::string& member_id, const v1::ChannelConsent& consent) = 0;
  virtual absl::Status PutDataSharing(const std::string& member_id, const v1::DataSharingConsent& consent) = 0;
  virtual absl::Status SetDocumentVersions(const std::string& member_id, const v1::Consents& documents) = 0;
  virtual absl::Status InsertConsentEvent(const std::string& member_id, const v1::ConsentEvent& event) = 0;
  virtual absl::StatusOr<std::vector<v1::ConsentEvent>> ListConsentEvents(const std::string& member_id,
                                                                           int limit) = 0;
  // True if the member granted data sharing to the partner.
  virtual absl::StatusOr<bool> SharesWith(const std::string& member_id, const std::string& partner_id) = 0;

  // --- tiers ---
  virtual absl::StatusOr<v1::TierLadder> GetLadder(bool for_update) = 0;
  virtual absl::Status SaveLadder(const v1::TierLadder& ladder) = 0;
  virtual absl::Status InsertTierChange(const v1::TierChange& change) = 0;
  // Newest first; the cursor is the row id of the last change returned.
  virtual absl::StatusOr<std::vector<std::pair<int64_t, v1::TierChange>>> ListTierChanges(
      const std::string& member_id, PageCursor cursor, int limit) = 0;

  // --- referrals ---
  virtual absl::Status InsertReferral(const v1::Referral& referral) = 0;
  virtual absl::StatusOr<std::vector<std::pair<int64_t, v1::Referral>>> ListReferrals(
      const std::string& referrer_member_id, PageCursor cursor, int limit) = 0;
  virtual absl::StatusOr<std::optional<v1::Referral>> GetReferralOf(const std::string& referred_member_id) = 0;
  virtual absl::StatusOr<int64_t> CountReferrals(const std::string& referrer_member_id) = 0;

  // --- other services' feeds (the ledger journal) ---
  // The cursor's position, row locked until commit.
  virtual absl::StatusOr<int64_t> LockCursor(const std::string& name) = 0;
  virtual absl::Status SetCursor(const std::string& name, int64_t position, absl::Time now) = 0;
  // Moves last_activity_at forward (never back).
  virtual absl::Status RecordActivity(const std::string& member_id, absl::Time at) = 0;
  // Marks the PENDING referral of `referred_member_id` as due; false if none.
  virtual absl::StatusOr<bool> MarkReferralRewardDue(const std::string& referred_member_id) = 0;
  virtual absl::StatusOr<std::vector<v1::Referral>> ListDueReferrals(int limit) = 0;
  // Stores state, rewarded_at, reward_points and reward_transfer_id, and
  // clears the due mark.
  virtual absl::Status CompleteReferral(const v1::Referral& referral) = 0;
  // Whether the ledger has been asked for the referral's reward (see
  // migration 0005), and marking it so.
  virtual absl::StatusOr<bool> ReferralRewardAttempted(const std::string& referral_id) = 0;
  virtual absl::Status MarkReferralRewardAttempted(const std::string& referral_id) = 0;

  // --- segments ---
  virtual absl::Status InsertSegment(const v1::Segment& segment) = 0;
  virtual absl::Status UpdateSegment(const v1::Segment& segment) = 0;
  virtual absl::StatusOr<std::optional<v1::Segment>> GetSegment(const std::string& segment_id, bool for_update) = 0;
  // By segment_id, after `after_segment_id`.
  virtual absl::StatusOr<std::vector<v1::Segment>> ListSegments(const std::string& after_segment_id, int limit) = 0;
  // The next `limit` members by member_id after `after_member_id` (a bounded
  // primary-key range scan).
  virtual absl::StatusOr<std::vector<SegmentCandidate>> ScanMembers(const std::string& after_member_id,
                                                                    int limit) = 0;
  // Granted channel consents of members in (after_member_id, last_member_id].
  virtual absl::StatusOr<std::vector<GrantedChannel>> GrantedChannelsInRange(const std::string& after_member_id,
                                                                             const std::string& last_member_id) = 0;

  // --- materialised segments (segment_members) ---
  // The refresh position, row locked until commit: every refresh chunk locks
  // it first, so replicas take chunks in turn.
  virtual absl::StatusOr<SegmentRefreshCursor> LockSegmentRefresh() = 0;
  virtual absl::Status SetSegmentRefresh(const SegmentRefreshCursor& cursor, absl::Time now) = 0;
  // A pass begins: remembers each segment's version (refresh_version) and
  // the start time.
  virtual absl::Status BeginSegmentPass(absl::Time now) = 0;
  // A pass ends: each segment still at the version the pass began with gets
  // member_count = its segment_members rows and refreshed_at = now.
  virtual absl::Status CompleteSegmentPass(absl::Time now) = 0;
  // Stored memberships of members in (after_member_id, last_member_id], row
  // locked until commit.
  virtual absl::StatusOr<std::vector<SegmentMembership>> SegmentMembersInRange(
      const std::string& after_member_id, const std::string& last_member_id) = 0;
  virtual absl::Status AddSegmentMember(const SegmentMembership& row, absl::Time now) = 0;
  virtual absl::Status RemoveSegmentMember(const SegmentMembership& row) = 0;
  // Gives each member the next snapshot feed version, in the given order,
  // from the same counter as UpdateMember. Members that do not exist are
  // skipped.
  virtual absl::Status BumpSnapshotVersions(const std::vector<std::string>& member_ids) = 0;

  // --- feed and audit ---
  // Snapshots with version > after_version, ascending, at most `limit`, each
  // with its segment_ids (ascending).
  virtual absl::StatusOr<std::vector<v1::MemberSnapshot>> ListSnapshots(int64_t after_version, int limit) = 0;
  // One member's snapshot; nullopt when the id was never issued.
  virtual absl::StatusOr<std::optional<v1::MemberSnapshot>> GetSnapshot(const std::string& member_id) = 0;
  virtual absl::Status InsertAudit(const std::string& member_id, const common::v1::AuditEvent& event) = 0;
  // Newest first, filtered; the cursor is the row id.
  struct AuditFilter {
    std::string member_id;
    std::string actor_key_id;
    std::optional<absl::Time> start;
    std::optional<absl::Time> end;
  };
  virtual absl::StatusOr<std::vector<std::pair<int64_t, common::v1::AuditEvent>>> ListAudit(
      const AuditFilter& filter, PageCursor cursor, int limit) = 0;
};

class MembershipStore {
 public:
  virtual ~MembershipStore() = default;
  // Runs `body` in one transaction: commit if it returns OK, roll back
  // otherwise. Deadlocks and other ABORTED conflicts re-run the whole body.
  virtual absl::Status Run(absl::string_view context, const std::function<absl::Status(MembershipTx&)>& body) = 0;
};

}  // namespace loyalty::membership
