#include "services/membership/membership_service.h"

#include "common/server/unary_handler.h"
#include "common/status/grpc_status.h"

namespace loyalty::membership {
namespace {

// A duplicate email or phone names the member that holds it, and only its
// id, in trailing metadata.
template <typename Response>
absl::StatusOr<Response> WithExistingMember(grpc::ServerContext& context, absl::StatusOr<Response> result) {
  if (result.ok()) return result;
  if (auto existing = result.status().GetPayload(kExistingMemberIdKey); existing.has_value()) {
    context.AddTrailingMetadata(std::string(kExistingMemberIdKey), std::string(*existing));
  }
  return result;
}

}  // namespace

// Each RPC goes to the use-case group that owns it (membership.h).
#define LOYALTY_MEMBERSHIP_RPC(Owner, Method)                                                             \
  grpc::Status MembershipService::Method(grpc::ServerContext* context, const v1::Method##Request* request, \
                                         v1::Method##Response* response) {                                \
    return server::HandleUnary(*context, #Method, authorize_, response, [&](const auth::Principal& p) { \
      return WithExistingMember(*context, membership_.Owner().Method(p, *request));                  \
    });                                                                                              \
  }

LOYALTY_MEMBERSHIP_RPC(members, Enrol)
LOYALTY_MEMBERSHIP_RPC(members, GetMember)
LOYALTY_MEMBERSHIP_RPC(members, LookupMember)
LOYALTY_MEMBERSHIP_RPC(members, UpdateMember)
LOYALTY_MEMBERSHIP_RPC(members, SetMemberStatus)
LOYALTY_MEMBERSHIP_RPC(members, IssueCard)
LOYALTY_MEMBERSHIP_RPC(members, BlockCard)
LOYALTY_MEMBERSHIP_RPC(tier_admin, SetTierLadder)
LOYALTY_MEMBERSHIP_RPC(tier_admin, EvaluateTier)
LOYALTY_MEMBERSHIP_RPC(tier_admin, RunTierEvaluation)
LOYALTY_MEMBERSHIP_RPC(tier_admin, GrantPaidTier)
LOYALTY_MEMBERSHIP_RPC(tier_admin, ListTierHistory)
LOYALTY_MEMBERSHIP_RPC(consents, GetConsents)
LOYALTY_MEMBERSHIP_RPC(consents, UpdateConsents)
LOYALTY_MEMBERSHIP_RPC(referrals, GetReferralCode)
LOYALTY_MEMBERSHIP_RPC(referrals, ListReferrals)
LOYALTY_MEMBERSHIP_RPC(segment_admin, CreateSegment)
LOYALTY_MEMBERSHIP_RPC(segment_admin, UpdateSegment)
LOYALTY_MEMBERSHIP_RPC(segment_admin, GetSegment)
LOYALTY_MEMBERSHIP_RPC(segment_admin, ListSegments)
LOYALTY_MEMBERSHIP_RPC(segment_admin, QuerySegment)
LOYALTY_MEMBERSHIP_RPC(privacy, ExportMemberData)
LOYALTY_MEMBERSHIP_RPC(privacy, EraseMember)
LOYALTY_MEMBERSHIP_RPC(members, ListMemberSnapshots)
LOYALTY_MEMBERSHIP_RPC(members, GetMemberSnapshot)
LOYALTY_MEMBERSHIP_RPC(privacy, ListAuditEvents)

#undef LOYALTY_MEMBERSHIP_RPC

grpc::Status MembershipService::GetTierLadder(grpc::ServerContext* context, const v1::GetTierLadderRequest*,
                                              v1::GetTierLadderResponse* response) {
  return server::HandleUnary(*context, "GetTierLadder", authorize_, response,
                             [&](const auth::Principal& p) { return membership_.tier_admin().GetTierLadder(p); });
}

}  // namespace loyalty::membership
