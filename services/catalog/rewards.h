#pragma once
// Rewards: the partner-funded items members redeem points for. Owns
// creating and proposing rewards, updating them, their state machine
// (DRAFT -> ACTIVE <-> PAUSED, anything -> RETIRED), stock adjustments, and
// the lists of rewards (all, or those a member could redeem now). Domain
// code: no gRPC or MySQL includes.
//
// Invariants: a reward is created DRAFT, with nothing reserved or
// honoured; a RETIRED reward never changes again; available stock never
// goes below zero (a conditional UPDATE). Every mutation is idempotent by
// key (Mutate, catalog_shared.h). A partner sees ACTIVE and PAUSED rewards
// and its own in any state.
//
// Thread-safe: all state is in the store.

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/auth/principal.h"
#include "loyalty/catalog/v1/catalog.pb.h"
#include "services/catalog/catalog_deps.h"

namespace loyalty::catalog {

class Rewards {
 public:
  using Principal = auth::Principal;

  explicit Rewards(CatalogDeps& deps) : deps_(deps) {}

  absl::StatusOr<v1::CreateRewardResponse> CreateReward(const Principal& p, const v1::CreateRewardRequest& r);
  absl::StatusOr<v1::ProposeRewardResponse> ProposeReward(const Principal& p, const v1::ProposeRewardRequest& r);
  absl::StatusOr<v1::UpdateRewardResponse> UpdateReward(const Principal& p, const v1::UpdateRewardRequest& r);
  absl::StatusOr<v1::GetRewardResponse> GetReward(const Principal& p, const v1::GetRewardRequest& r);
  absl::StatusOr<v1::ListRewardsResponse> ListRewards(const Principal& p, const v1::ListRewardsRequest& r);
  absl::StatusOr<v1::SetRewardStateResponse> SetRewardState(const Principal& p, const v1::SetRewardStateRequest& r);
  absl::StatusOr<v1::AdjustRewardStockResponse> AdjustRewardStock(const Principal& p,
                                                                  const v1::AdjustRewardStockRequest& r);

  // Checks tier, validity, stock, balance and per-member limits; examines
  // at most a bounded number of rewards per call (a short page then still
  // carries a next_page_token).
  absl::StatusOr<v1::ListRedeemableRewardsResponse> ListRedeemableRewards(const Principal& p,
                                                                          const v1::ListRedeemableRewardsRequest& r);

 private:
  // What ListRedeemableRewards reads before its transaction: the filter,
  // the member's tier, and the page's scope and size.
  struct RedeemableQuery;

  absl::StatusOr<v1::Reward> InsertNewReward(CatalogTx& tx, const Principal& p, v1::Reward reward);
  // NOT_FOUND naming reward.min_tier_id unless membership's ladder has it.
  absl::Status CheckTierExists(const std::string& tier_id);
  // The request's checks, cursor and the member's tier and balance.
  absl::StatusOr<RedeemableQuery> StartRedeemable(const Principal& p, const v1::ListRedeemableRewardsRequest& r);
  // One page of redeemable rewards, in one transaction; `ranks` caches the
  // ladder rank of each minimum tier.
  absl::Status FillRedeemablePage(CatalogTx& tx, const RedeemableQuery& q,
                                  absl::flat_hash_map<std::string, int>& ranks,
                                  v1::ListRedeemableRewardsResponse& out);

  CatalogDeps& deps_;
};

}  // namespace loyalty::catalog
