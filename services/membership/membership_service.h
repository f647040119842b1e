#pragma once
// The gRPC adapter of the membership service: authenticates the caller,
// hands the request to the use-case group of the domain (Membership) that
// owns it, and maps the answer back.

#include <functional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/auth/principal.h"
#include "loyalty/membership/v1/membership.grpc.pb.h"
#include "services/membership/membership.h"

namespace loyalty::membership {

// Authenticates and authorises the caller of a method ("Enrol").
using Authorize = std::function<absl::StatusOr<auth::Principal>(const grpc::ServerContext&, absl::string_view)>;

class MembershipService final : public v1::MembershipService::Service {
 public:
  MembershipService(Membership& membership, Authorize authorize)
      : membership_(membership), authorize_(std::move(authorize)) {}

  grpc::Status Enrol(grpc::ServerContext*, const v1::EnrolRequest*, v1::EnrolResponse*) override;
  grpc::Status GetMember(grpc::ServerContext*, const v1::GetMemberRequest*, v1::GetMemberResponse*) override;
  grpc::Status LookupMember(grpc::ServerContext*, const v1::LookupMemberRequest*,
                            v1::LookupMemberResponse*) override;
  grpc::Status UpdateMember(grpc::ServerContext*, const v1::UpdateMemberRequest*,
                            v1::UpdateMemberResponse*) override;
  grpc::Status SetMemberStatus(grpc::ServerContext*, const v1::SetMemberStatusRequest*,
                               v1::SetMemberStatusResponse*) override;
  grpc::Status IssueCard(grpc::ServerContext*, const v1::IssueCardRequest*, v1::IssueCardResponse*) override;
  grpc::Status BlockCard(grpc::ServerContext*, const v1::BlockCardRequest*, v1::BlockCardResponse*) override;
  grpc::Status GetTierLadder(grpc::ServerContext*, const v1::GetTierLadderRequest*,
                             v1::GetTierLadderResponse*) override;
  grpc::Status SetTierLadder(grpc::ServerContext*, const v1::SetTierLadderRequest*,
                             v1::SetTierLadderResponse*) override;
  grpc::Status EvaluateTier(grpc::ServerContext*, const v1::EvaluateTierRequest*,
                            v1::EvaluateTierResponse*) override;
  grpc::Status RunTierEvaluation(grpc::ServerContext*, const v1::RunTierEvaluationRequest*,
                                 v1::RunTierEvaluationResponse*) override;
  grpc::Status GrantPaidTier(grpc::ServerContext*, const v1::GrantPaidTierRequest*,
                             v1::GrantPaidTierResponse*) override;
  grpc::Status ListTierHistory(grpc::ServerContext*, const v1::ListTierHistoryRequest*,
                               v1::ListTierHistoryResponse*) override;
  grpc::Status GetConsents(grpc::ServerContext*, const v1::GetConsentsRequest*, v1::GetConsentsResponse*) override;
  grpc::Status UpdateConsents(grpc::ServerContext*, const v1::UpdateConsentsRequest*,
                              v1::UpdateConsentsResponse*) override;
  grpc::Status GetReferralCode(grpc::ServerContext*, const v1::GetReferralCodeRequest*,
                               v1::GetReferralCodeResponse*) override;
  grpc::Status ListReferrals(grpc::ServerContext*, const v1::ListReferralsRequest*,
                             v1::ListReferralsResponse*) override;
  grpc::Status CreateSegment(grpc::ServerContext*, const v1::CreateSegmentRequest*,
                             v1::CreateSegmentResponse*) override;
  grpc::Status UpdateSegment(grpc::ServerContext*, const v1::UpdateSegmentRequest*,
                             v1::UpdateSegmentResponse*) override;
  grpc::Status GetSegment(grpc::ServerContext*, const v1::GetSegmentRequest*, v1::GetSegmentResponse*) override;
  grpc::Status ListSegments(grpc::ServerContext*, const v1::ListSegmentsRequest*, v1::ListSegmentsResponse*) override;
  grpc::Status QuerySegment(grpc::ServerContext*, const v1::QuerySegmentRequest*, v1::QuerySegmentResponse*) override;
  grpc::Status ExportMemberData(grpc::ServerContext*, const v1::ExportMemberDataRequest*,
                                v1::ExportMemberDataResponse*) override;
  grpc::Status EraseMember(grpc::ServerContext*, const v1::EraseMemberRequest*, v1::EraseMemberResponse*) override;
  grpc::Status ListMemberSnapshots(grpc::ServerContext*, const v1::ListMemberSnapshotsRequest*,
                                   v1::ListMemberSnapshotsResponse*) override;
  grpc::Status GetMemberSnapshot(grpc::ServerContext*, const v1::GetMemberSnapshotRequest*,
                                 v1::GetMemberSnapshotResponse*) override;
  grpc::Status ListAuditEvents(grpc::ServerContext*, const v1::ListAuditEventsRequest*,
                               v1::ListAuditEventsResponse*) override;

 private:
  Membership& membership_;
  Authorize authorize_;
};

}  // namespace loyalty::membership
