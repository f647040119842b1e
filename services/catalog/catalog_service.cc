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

// Routes the RPC `Method` to the use-case class `owner()` of the Catalog.
#define LOYALTY_CATALOG_RPC(owner, Method)                                                             \
  grpc::Status CatalogService::Method(grpc::ServerContext* context, const v1::Method##Request* request, \
                                      v1::Method##Response* response) {                                \
    return Handle(context, #Method, response,                                                          \
                  [&](const auth::Principal& p) { return catalog_.owner().Method(p, *request); });     \
  }

LOYALTY_CATALOG_RPC(rewards, CreateReward)
LOYALTY_CATALOG_RPC(rewards, ProposeReward)
LOYALTY_CATALOG_RPC(rewards, UpdateReward)
LOYALTY_CATALOG_RPC(rewards, GetReward)
LOYALTY_CATALOG_RPC(rewards, ListRewards)
LOYALTY_CATALOG_RPC(rewards, SetRewardState)
LOYALTY_CATALOG_RPC(rewards, AdjustRewardStock)
LOYALTY_CATALOG_RPC(redeem, Redeem)
LOYALTY_CATALOG_RPC(vouchers, GetVoucher)
LOYALTY_CATALOG_RPC(vouchers, ListVouchers)
LOYALTY_CATALOG_RPC(vouchers, HonourVoucher)
LOYALTY_CATALOG_RPC(vouchers, CancelVoucher)
LOYALTY_CATALOG_RPC(campaigns, CreateCampaign)
LOYALTY_CATALOG_RPC(campaigns, UpdateCampaign)
LOYALTY_CATALOG_RPC(campaigns, SetCampaignState)
LOYALTY_CATALOG_RPC(campaigns, GetCampaign)
LOYALTY_CATALOG_RPC(campaigns, ListCampaigns)
LOYALTY_CATALOG_RPC(campaigns, GetActiveEarnRules)
LOYALTY_CATALOG_RPC(campaigns, LeaseCampaignBudget)
LOYALTY_CATALOG_RPC(campaigns, ReturnCampaignBudget)
LOYALTY_CATALOG_RPC(campaigns, QuoteEarn)
LOYALTY_CATALOG_RPC(rewards, ListRedeemableRewards)
LOYALTY_CATALOG_RPC(coupons, CreateCouponBatch)
LOYALTY_CATALOG_RPC(coupons, GetCouponBatch)
LOYALTY_CATALOG_RPC(coupons, ListCouponCodes)
LOYALTY_CATALOG_RPC(coupons, ValidateCoupon)
LOYALTY_CATALOG_RPC(coupons, RedeemCoupon)

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
    absl::StatusOr<v1::GetActiveEarnRulesResponse> rules =
        catalog_.campaigns().GetActiveEarnRules(*principal, poll);
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
