#include "services/membership/membership_service.h"

#include "common/status/grpc_status.h"

namespace loyalty::membership {

template <typename Response, typename Call>
grpc::Status MembershipService::Handle(grpc::ServerContext* context, absl::string_view method, Response* response,
                                       Call call) {
  absl::StatusOr<auth::Principal> principal = authorize_(*context, method);
  if (!principal.ok()) return ToGrpcStatus(principal.status());
  absl::StatusOr<Response> result = call(*principal);
  if (!result.ok()) {
    // A duplicate email or phone names the member that holds it, and only
    // its id, in trailing metadata.
    if (auto existing = result.status().GetPayload(kExistingMemberIdKey); existing.has_value()) {
      context->AddTrailingMetadata(std::string(kExistingMemberIdKey), std::string(*existing));
    }
    return ToGrpcStatus(result.status());
  }
  *response = *std::move(result);
  return grpc::Status::OK;
}

#define LOYALTY_MEMBERSHIP_RPC(Method)                                                                    \
  grpc::Status MembershipService::Method(grpc::ServerContext* context, const v1::Method##Request* request, \
                                         v1::Method##Response* response) {                                \
    return Handle(context, #Method, response,                                                             \
                  [&](const auth::Principal& p) { return membership_.Method(p, *request); });             \
  }

LOYALTY_MEMBERSHIP_RPC(Enrol)
LOYALTY_MEMBERSHIP_RPC(GetMember)
LOYALTY_MEMBERSHIP_RPC(LookupMember)
LOYALTY_MEMBERSHIP_RPC(UpdateMember)
LOYALTY_MEMBERSHIP_RPC(SetMemberStatus)
LOYALTY_MEMBERSHIP_RPC(IssueCard)
LOYALTY_MEMBERSHIP_RPC(BlockCard)
LOYALTY_MEMBERSHIP_RPC(SetTierLadder)
LOYALTY_MEMBERSHIP_RPC(EvaluateTier)
LOYALTY_MEMBERSHIP_RPC(RunTierEvaluation)
LOYALTY_MEMBERSHIP_RPC(GrantPaidTier)
LOYALTY_MEMBERSHIP_RPC(ListTierHistory)
LOYALTY_MEMBERSHIP_RPC(GetConsents)
LOYALTY_MEMBERSHIP_RPC(UpdateConsents)
LOYALTY_MEMBERSHIP_RPC(GetReferralCode)
LOYALTY_MEMBERSHIP_RPC(ListReferrals)
LOYALTY_MEMBERSHIP_RPC(CreateSegment)
LOYALTY_MEMBERSHIP_RPC(UpdateSegment)
LOYALTY_MEMBERSHIP_RPC(GetSegment)
LOYALTY_MEMBERSHIP_RPC(ListSegments)
LOYALTY_MEMBERSHIP_RPC(QuerySegment)
LOYALTY_MEMBERSHIP_RPC(ExportMemberData)
LOYALTY_MEMBERSHIP_RPC(EraseMember)
LOYALTY_MEMBERSHIP_RPC(ListMemberSnapshots)
LOYALTY_MEMBERSHIP_RPC(GetMemberSnapshot)
LOYALTY_MEMBERSHIP_RPC(ListAuditEvents)

#undef LOYALTY_MEMBERSHIP_RPC

grpc::Status MembershipService::GetTierLadder(grpc::ServerContext* context, const v1::GetTierLadderRequest*,
                                              v1::GetTierLadderResponse* response) {
  return Handle(context, "GetTierLadder", response,
                [&](const auth::Principal& p) { return membership_.GetTierLadder(p); });
}

}  // namespace loyalty::membership
