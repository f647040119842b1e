#pragma once
// Membership's use cases, as the gRPC adapter calls them. Domain code: no
// gRPC or MySQL includes; storage goes through MembershipStore, the ledger
// through LedgerClient.
//
// Every mutation is idempotent by key (scoped to the calling credential):
// the request is fingerprinted, its answer (a business failure included) is
// stored in the same transaction as its effects, and a retry gets the same
// answer. INVALID_ARGUMENT and PERMISSION_DENIED are not stored, so a caller
// can correct the request and reuse the key.
//
// Partner visibility (membership.proto): a partner sees a member that enrolled
// with it or granted it data sharing; any other member is NOT_FOUND, with the
// same message as a member that does not exist. Partners never see birth
// date, status reason, referrer or erasure time (named in redacted_fields).
// Backoffice sees everything, and each backoffice read of personal data is
// written to the audit log.

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/auth/principal.h"
#include "loyalty/membership/v1/membership.pb.h"
#include "services/membership/ledger_client.h"
#include "services/membership/membership_store.h"
#include "services/membership/segments.h"

namespace loyalty::membership {

// Status payload (and gRPC trailing metadata) carrying the id of the member
// that already holds an email or phone.
inline constexpr absl::string_view kExistingMemberIdKey = "loyalty-existing-member-id";

struct MembershipOptions {
  std::vector<std::string> supported_languages = {"en", "de", "fr", "it", "nl", "es", "de-AT", "de-CH", "fr-CH", "en-GB"};
  // Terms and privacy notice versions members may accept.
  std::vector<std::string> terms_versions = {"2025-01"};
  std::vector<std::string> privacy_versions = {"2025-01"};
  // Points granted to a referrer when the referred member first earns.
  int64_t referral_reward_points = 500;
  // Members per segment refresh transaction (tests make it small).
  int segment_refresh_chunk_members = kSegmentRefreshChunkMembers;
  std::function<absl::Time()> now = [] { return absl::Now(); };
};

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

class Membership {
 public:
  using Principal = auth::Principal;

  Membership(MembershipStore& store, LedgerClient& ledger, MembershipOptions options = {})
      : store_(store), ledger_(ledger), options_(std::move(options)) {}

  absl::StatusOr<v1::EnrolResponse> Enrol(const Principal& p, const v1::EnrolRequest& r);
  absl::StatusOr<v1::GetMemberResponse> GetMember(const Principal& p, const v1::GetMemberRequest& r);
  absl::StatusOr<v1::LookupMemberResponse> LookupMember(const Principal& p, const v1::LookupMemberRequest& r);
  absl::StatusOr<v1::UpdateMemberResponse> UpdateMember(const Principal& p, const v1::UpdateMemberRequest& r);
  absl::StatusOr<v1::SetMemberStatusResponse> SetMemberStatus(const Principal& p,
                                                              const v1::SetMemberStatusRequest& r);
  absl::StatusOr<v1::IssueCardResponse> IssueCard(const Principal& p, const v1::IssueCardRequest& r);
  absl::StatusOr<v1::BlockCardResponse> BlockCard(const Principal& p, const v1::BlockCardRequest& r);

  absl::StatusOr<v1::GetTierLadderResponse> GetTierLadder(const Principal& p);
  absl::StatusOr<v1::SetTierLadderResponse> SetTierLadder(const Principal& p, const v1::SetTierLadderRequest& r);
  absl::StatusOr<v1::EvaluateTierResponse> EvaluateTier(const Principal& p, const v1::EvaluateTierRequest& r);
  absl::StatusOr<v1::RunTierEvaluationResponse> RunTierEvaluation(const Principal& p,
                                                                  const v1::RunTierEvaluationRequest& r);
  absl::StatusOr<v1::GrantPaidTierResponse> GrantPaidTier(const Principal& p, const v1::GrantPaidTierRequest& r);
  absl::StatusOr<v1::ListTierHistoryResponse> ListTierHistory(const Principal& p,
                                                              const v1::ListTierHistoryRequest& r);

  absl::StatusOr<v1::GetConsentsResponse> GetConsents(const Principal& p, const v1::GetConsentsRequest& r);
  absl::StatusOr<v1::UpdateConsentsResponse> UpdateConsents(const Principal& p, const v1::UpdateConsentsRequest& r);

  absl::StatusOr<v1::GetReferralCodeResponse> GetReferralCode(const Principal& p,
                                                              const v1::GetReferralCodeRequest& r);
  absl::StatusOr<v1::ListReferralsResponse> ListReferrals(const Principal& p, const v1::ListReferralsRequest& r);

  absl::StatusOr<v1::CreateSegmentResponse> CreateSegment(const Principal& p, const v1::CreateSegmentRequest& r);
  absl::StatusOr<v1::UpdateSegmentResponse> UpdateSegment(const Principal& p, const v1::UpdateSegmentRequest& r);
  absl::StatusOr<v1::GetSegmentResponse> GetSegment(const Principal& p, const v1::GetSegmentRequest& r);
  absl::StatusOr<v1::ListSegmentsResponse> ListSegments(const Principal& p, const v1::ListSegmentsRequest& r);
  absl::StatusOr<v1::QuerySegmentResponse> QuerySegment(const Principal& p, const v1::QuerySegmentRequest& r);

  absl::StatusOr<v1::ExportMemberDataResponse> ExportMemberData(const Principal& p,
                                                                const v1::ExportMemberDataRequest& r);
  absl::StatusOr<v1::EraseMemberResponse> EraseMember(const Principal& p, const v1::EraseMemberRequest& r);

  absl::StatusOr<v1::ListMemberSnapshotsResponse> ListMemberSnapshots(const Principal& p,
                                                                      const v1::ListMemberSnapshotsRequest& r);
  absl::StatusOr<v1::GetMemberSnapshotResponse> GetMemberSnapshot(const Principal& p,
                                                                  const v1::GetMemberSnapshotRequest& r);
  absl::StatusOr<v1::ListAuditEventsResponse> ListAuditEvents(const Principal& p,
                                                              const v1::ListAuditEventsRequest& r);

  // Background work (main.cc runs these in a loop).
  //
  // One pass of the ledger journal consumer: reads the page after the durable
  // cursor, records member activity (earn, redeem) and marks referral rewards
  // due on a referred member's first earn, and advances the cursor, all in
  // one transaction. Returns the number of transfers consumed.
  absl::StatusOr<int> ConsumeLedgerJournal(int page_size);
  // Grants due referral rewards through the ledger, idempotently (key
  // "referral:<referral_id>"), at most `max` per call. Returns how many were
  // granted.
  absl::StatusOr<int> GrantReferralRewards(int max);
  // Materialises the saved segments (MemberSnapshot.segment_ids): works on
  // the refresh pass under way, at most `max_chunks` chunks of
  // `segment_refresh_chunk_members` members, and returns early when that
  // pass is over. A pass walks all members by member_id; each chunk is one
  // transaction that evaluates every saved segment's filter (MatchesSegment)
  // on its members, writes the added and removed memberships, and gives each
  // member whose set changed the next snapshot feed version. The position is
  // durable and the chunk idempotent, so a pass interrupted anywhere resumes
  // where it stopped; replicas running it at once take chunks in turn. At the
  // end of a pass, every segment whose version did not change during it gets
  // member_count and refreshed_at. A segment created or re-filtered
  // mid-pass is fully evaluated by the next pass.
  // REQUIRES: max_chunks >= 1.
  absl::StatusOr<SegmentRefreshResult> RefreshSegments(int max_chunks);

 private:
  // The body of an idempotent mutation: fills the response and names the
  // member it concerns (so an erasure can wipe the stored copy).
  template <typename Response>
  using Body = std::function<absl::Status(MembershipTx&, Response&, std::string& member_id)>;

  template <typename Response>
  absl::StatusOr<Response> Mutate(const Principal& p, absl::string_view method, const std::string& key,
                                  const google::protobuf::Message& request, Body<Response> body);

  absl::Time Now() const;

  MembershipStore& store_;
  LedgerClient& ledger_;
  MembershipOptions options_;
};

}  // namespace loyalty::membership
