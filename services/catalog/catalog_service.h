#pragma once
// The gRPC adapter of the catalog service: authenticates the caller, hands
// the request to the use-case class of the domain (Catalog) that owns the
// RPC, and maps the answer back. Sync API with the bootstrap's bounded
// thread pool.
//
// Every RPC is overridden. WatchEarnRules holds one handler thread per open
// stream (server::RunWatch): it polls the rules version every
// `poll_interval`, sends a full snapshot on each change and a heartbeat when
// idle, and ends with UNAVAILABLE once BeginShutdown() is called.

#include <functional>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "absl/strings/string_view.h"
#include "common/auth/principal.h"
#include "common/server/watch_loop.h"
#include "loyalty/catalog/v1/catalog.grpc.pb.h"
#include "services/catalog/catalog.h"

namespace loyalty::catalog {

// Authenticates and authorises the caller of a method ("Redeem").
using Authorize = std::function<absl::StatusOr<auth::Principal>(const grpc::ServerContext&, absl::string_view)>;

class CatalogService final : public v1::CatalogService::Service {
 public:
  CatalogService(Catalog& catalog, Authorize authorize, server::WatchOptions watch = {})
      : catalog_(catalog), authorize_(std::move(authorize)), watch_(watch) {}

  // Ends open WatchEarnRules streams (graceful shutdown).
  void BeginShutdown() {
    if (!stop_.HasBeenNotified()) stop_.Notify();
  }

  // v1::CatalogService::Service
  grpc::Status CreateReward(grpc::ServerContext*, const v1::CreateRewardRequest*, v1::CreateRewardResponse*) override;
  grpc::Status ProposeReward(grpc::ServerContext*, const v1::ProposeRewardRequest*,
                             v1::ProposeRewardResponse*) override;
  grpc::Status UpdateReward(grpc::ServerContext*, const v1::UpdateRewardRequest*, v1::UpdateRewardResponse*) override;
  grpc::Status GetReward(grpc::ServerContext*, const v1::GetRewardRequest*, v1::GetRewardResponse*) override;
  grpc::Status ListRewards(grpc::ServerContext*, const v1::ListRewardsRequest*, v1::ListRewardsResponse*) override;
  grpc::Status SetRewardState(grpc::ServerContext*, const v1::SetRewardStateRequest*,
                              v1::SetRewardStateResponse*) override;
  grpc::Status AdjustRewardStock(grpc::ServerContext*, const v1::AdjustRewardStockRequest*,
                                 v1::AdjustRewardStockResponse*) override;
  grpc::Status Redeem(grpc::ServerContext*, const v1::RedeemRequest*, v1::RedeemResponse*) override;
  grpc::Status GetVoucher(grpc::ServerContext*, const v1::GetVoucherRequest*, v1::GetVoucherResponse*) override;
  grpc::Status ListVouchers(grpc::ServerContext*, const v1::ListVouchersRequest*, v1::ListVouchersResponse*) override;
  grpc::Status HonourVoucher(grpc::ServerContext*, const v1::HonourVoucherRequest*,
                             v1::HonourVoucherResponse*) override;
  grpc::Status CancelVoucher(grpc::ServerContext*, const v1::CancelVoucherRequest*,
                             v1::CancelVoucherResponse*) override;
  grpc::Status CreateCampaign(grpc::ServerContext*, const v1::CreateCampaignRequest*,
                              v1::CreateCampaignResponse*) override;
  grpc::Status UpdateCampaign(grpc::ServerContext*, const v1::UpdateCampaignRequest*,
                              v1::UpdateCampaignResponse*) override;
  grpc::Status SetCampaignState(grpc::ServerContext*, const v1::SetCampaignStateRequest*,
                                v1::SetCampaignStateResponse*) override;
  grpc::Status GetCampaign(grpc::ServerContext*, const v1::GetCampaignRequest*, v1::GetCampaignResponse*) override;
  grpc::Status ListCampaigns(grpc::ServerContext*, const v1::ListCampaignsRequest*,
                             v1::ListCampaignsResponse*) override;
  grpc::Status GetActiveEarnRules(grpc::ServerContext*, const v1::GetActiveEarnRulesRequest*,
                                  v1::GetActiveEarnRulesResponse*) override;
  grpc::Status LeaseCampaignBudget(grpc::ServerContext*, const v1::LeaseCampaignBudgetRequest*,
                                   v1::LeaseCampaignBudgetResponse*) override;
  grpc::Status ReturnCampaignBudget(grpc::ServerContext*, const v1::ReturnCampaignBudgetRequest*,
                                    v1::ReturnCampaignBudgetResponse*) override;
  grpc::Status CreateCouponBatch(grpc::ServerContext*, const v1::CreateCouponBatchRequest*,
                                 v1::CreateCouponBatchResponse*) override;
  grpc::Status GetCouponBatch(grpc::ServerContext*, const v1::GetCouponBatchRequest*,
                              v1::GetCouponBatchResponse*) override;
  grpc::Status ListCouponCodes(grpc::ServerContext*, const v1::ListCouponCodesRequest*,
                               v1::ListCouponCodesResponse*) override;
  grpc::Status ValidateCoupon(grpc::ServerContext*, const v1::ValidateCouponRequest*,
                              v1::ValidateCouponResponse*) override;
  grpc::Status RedeemCoupon(grpc::ServerContext*, const v1::RedeemCouponRequest*,
                            v1::RedeemCouponResponse*) override;
  grpc::Status ListRedeemableRewards(grpc::ServerContext*, const v1::ListRedeemableRewardsRequest*,
                                     v1::ListRedeemableRewardsResponse*) override;
  grpc::Status QuoteEarn(grpc::ServerContext*, const v1::QuoteEarnRequest*, v1::QuoteEarnResponse*) override;
  grpc::Status WatchEarnRules(grpc::ServerContext*, const v1::WatchEarnRulesRequest*,
                              grpc::ServerWriter<v1::WatchEarnRulesResponse>*) override;

 private:
  Catalog& catalog_;
  Authorize authorize_;
  server::WatchOptions watch_;
  absl::Notification stop_;
};

}  // namespace loyalty::catalog
