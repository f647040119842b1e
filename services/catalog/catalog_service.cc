#include "services/catalog/catalog_service.h"

#include "common/status/grpc_status.h"

namespace loyalty::catalog {

template <typename Response, typename Call>
grpc::Status CatalogService::Handle(grpc::ServerContext* context, absl::string_view method, Response* response,
                                    Call call) {
  absl::StatusOr<auth::Principal> principal = authorize_(*context, method);
  if (!principal.ok()) return ToGrpcStatus(principal.status());
  absl::StatusOr<Response> result = call(*principal);
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

#define LOYALTY_CATALOG_RPC(Method)                                                                    \
  grpc::Status CatalogService::Method(grpc::ServerContext* context, const v1::Method##Request* request, \
                                      v1::Method##Response* response) {                                \
    return Handle(context, #Method, response,                                                          \
                  [&](const auth::Principal& p) { return catalog_.Method(p, *request); });             \
  }

LOYALTY_CATALOG_RPC(CreateReward)
LOYALTY_CATALOG_RPC(ProposeReward)
LOYALTY_CATALOG_RPC(UpdateReward)
LOYALTY_CATALOG_RPC(GetReward)
LOYALTY_CATALOG_RPC(ListRewards)
LOYALTY_CATALOG_RPC(SetRewardState)
LOYALTY_CATALOG_RPC(AdjustRewardStock)
LOYALTY_CATALOG_RPC(Redeem)
LOYALTY_CATALOG_RPC(GetVoucher)
LOYALTY_CATALOG_RPC(ListVouchers)
LOYALTY_CATALOG_RPC(HonourVoucher)
LOYALTY_CATALOG_RPC(CancelVoucher)
LOYALTY_CATALOG_RPC(CreateCampaign)
LOYALTY_CATALOG_RPC(UpdateCampaign)
LOYALTY_CATALOG_RPC(SetCampaignState)
LOYALTY_CATALOG_RPC(GetCampaign)
LOYALTY_CATALOG_RPC(ListCampaigns)
LOYALTY_CATALOG_RPC(GetActiveEarnRules)
LOYALTY_CATALOG_RPC(LeaseCampaignBudget)
LOYALTY_CATALOG_RPC(ReturnCampaignBudget)
LOYALTY_CATALOG_RPC(QuoteEarn)
LOYALTY_CATALOG_RPC(ListRedeemableRewards)
LOYALTY_CATALOG_RPC(CreateCouponBatch)
LOYALTY_CATALOG_RPC(GetCouponBatch)
LOYALTY_CATALOG_RPC(ListCouponCodes)
LOYALTY_CATALOG_RPC(ValidateCoupon)
LOYALTY_CATALOG_RPC(RedeemCoupon)

#undef LOYALTY_CATALOG_RPC

grpc::Status CatalogService::WatchEarnRules(grpc::ServerContext* context, const v1::WatchEarnRulesRequest* request,
                                            grpc::ServerWriter<v1::WatchEarnRulesResponse>* writer) {
  absl::StatusOr<auth::Principal> principal = authorize_(*context, "WatchEarnRules");
  if (!principal.ok()) return ToGrpcStatus(principal.status());
  if (request->known_version() < 0) {
    return ToGrpcStatus(absl::InvalidArgumentError("known_version: must be >= 0"));
  }
  int64_t known = request->known_version();
  absl::Time last_sent = absl::Now();
  while (!context->IsCancelled()) {
    if (stop_.HasBeenNotified()) {
      return ToGrpcStatus(absl::UnavailableError("server shutting down; reconnect with the last version received"));
    }
    v1::GetActiveEarnRulesRequest poll;
    poll.set_known_version(known);
    absl::StatusOr<v1::GetActiveEarnRulesResponse> rules = catalog_.GetActiveEarnRules(*principal, poll);
    if (!rules.ok()) return ToGrpcStatus(rules.status());
    v1::WatchEarnRulesResponse message;
    message.set_version(rules->version());
    const absl::Time now = absl::Now();
    if (!rules->not_modified()) {
      *message.mutable_campaigns() = std::move(*rules->mutable_campaigns());
      known = rules->version();
    } else if (now - last_sent >= watch_.heartbeat) {
      message.set_not_modified(true);
    } else {
      stop_.WaitForNotificationWithTimeout(watch_.watch_poll);
      continue;
    }
    if (!writer->Write(message)) break;  // the client went away
    last_sent = now;
  }
  return grpc::Status(grpc::StatusCode::CANCELLED, "watch ended by the client");
}

}  // namespace loyalty::catalog
