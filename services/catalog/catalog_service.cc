#include "services/catalog/catalog_service.h"

#include "common/server/unary_handler.h"
#include "common/server/watch_loop.h"
#include "common/status/grpc_status.h"

namespace loyalty::catalog {

// Routes the RPC `Method` to the use-case class `owner()` of the Catalog.
#define LOYALTY_CATALOG_RPC(owner, Method)                                                             \
  grpc::Status CatalogService::Method(grpc::ServerContext* context, const v1::Method##Request* request, \
                                      v1::Method##Response* response) {                                \
    return server::HandleUnary(*context, #Method, authorize_, response,                                \
                               [&](const auth::Principal& p) { return catalog_.owner().Method(p, *request); }); \
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
  using Poll = server::WatchPoll<v1::WatchEarnRulesResponse>;
  return server::RunWatch<v1::WatchEarnRulesResponse>(
      *context, *writer, watch_, &stop_, "server shutting down; reconnect with the last version received",
      [&]() -> absl::StatusOr<Poll> {
        v1::GetActiveEarnRulesRequest poll;
        poll.set_known_version(known);
        ASSIGN_OR_RETURN(v1::GetActiveEarnRulesResponse rules, catalog_.campaigns().GetActiveEarnRules(*principal, poll));
        Poll round;
        round.message.set_version(rules.version());
        if (rules.not_modified()) {
          round.message.set_not_modified(true);  // the heartbeat, when one is due
        } else {
          *round.message.mutable_campaigns() = std::move(*rules.mutable_campaigns());
          known = rules.version();
          round.news = true;
        }
        return round;
      });
}

}  // namespace loyalty::catalog
