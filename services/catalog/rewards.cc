#include "services/catalog/rewards.h"

#include <algorithm>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/random.h"
#include "common/idempotency/idempotency.h"
#include "common/paging/page_token.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "common/validation/enums.h"
#include "common/validation/ids.h"
#include "common/validation/text.h"
#include "services/catalog/catalog_shared.h"
#include "services/catalog/validation.h"

namespace loyalty::catalog {
namespace {

constexpr int kRewardsPageDefault = 50;
constexpr int kRewardsPageMax = 500;
constexpr int kRedeemablePageDefault = 50;
constexpr int kRedeemablePageMax = 200;
constexpr int kRedeemableMaxScanned = 1000;


// A partner sees ACTIVE and PAUSED rewards, and its own in any state.
bool RewardVisible(const auth::Principal& p, const v1::Reward& r) {
  if (!p.is_partner()) return true;
  if (r.state() == v1::REWARD_STATE_ACTIVE || r.state() == v1::REWARD_STATE_PAUSED) return true;
  return r.partner_id() == p.partner_id || r.proposed_by_partner_id() == p.partner_id;
}

}  // namespace

absl::StatusOr<v1::Reward> Rewards::InsertNewReward(CatalogTx& tx, const Principal& p, v1::Reward reward) {
  const absl::Time now = deps_.Now();
  reward.set_reward_id(crypto::NewOpaqueId("rw"));
  reward.set_state(v1::REWARD_STATE_DRAFT);
  reward.set_stock_reserved(0);
  reward.set_stock_honoured(0);
  if (reward.unlimited_stock()) reward.set_stock_available(0);
  reward.set_proposed_by_partner_id(p.is_partner() ? p.partner_id : "");
  *reward.mutable_created_at() = ToProtoTime(now);
  *reward.mutable_updated_at() = ToProtoTime(now);
  reward.set_version(1);
  RETURN_IF_ERROR(tx.InsertReward(reward));
  return reward;
}

absl::StatusOr<v1::CreateRewardResponse> Rewards::CreateReward(const Principal& p, const v1::CreateRewardRequest& r) {
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  v1::Reward reward = r.reward();
  NormaliseReward(reward);
  RETURN_IF_ERROR(ValidateReward("reward.", reward));
  return Mutate<v1::CreateRewardResponse>(
      deps_, p, "CreateReward", r.idempotency_key(), r,
      [&](CatalogTx& tx, v1::CreateRewardResponse& out) -> absl::Status {
        ASSIGN_OR_RETURN(*out.mutable_reward(), InsertNewReward(tx, p, reward));
        return absl::OkStatus();
      },
      [&] {
        RETURN_IF_ERROR(CheckTierExists(reward.min_tier_id()));
        return CheckPartnerExists(deps_, "reward.partner_id", reward.partner_id());
      });
}

absl::StatusOr<v1::ProposeRewardResponse> Rewards::ProposeReward(const Principal& p,
                                                                 const v1::ProposeRewardRequest& r) {
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  if (r.reward().partner_id() != p.partner_id) {
    return absl::PermissionDeniedError("reward.partner_id: a partner may only propose rewards it honours");
  }
  v1::Reward reward = r.reward();
  NormaliseReward(reward);
  RETURN_IF_ERROR(ValidateReward("reward.", reward));
  return Mutate<v1::ProposeRewardResponse>(
      deps_, p, "ProposeReward", r.idempotency_key(), r,
      [&](CatalogTx& tx, v1::ProposeRewardResponse& out) -> absl::Status {
        ASSIGN_OR_RETURN(*out.mutable_reward(), InsertNewReward(tx, p, reward));
        return absl::OkStatus();
      },
      [&] { return CheckTierExists(reward.min_tier_id()); });
}

absl::StatusOr<v1::UpdateRewardResponse> Rewards::UpdateReward(const Principal& p, const v1::UpdateRewardRequest& r) {
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  RETURN_IF_ERROR(ValidateId("reward_id", r.reward_id()));
  RETURN_IF_ERROR(ValidateRewardMask(r.update_mask()));
  if (r.expected_version() < 0) return absl::InvalidArgumentError("expected_version: must be >= 0");
  const bool new_tier = std::find(r.update_mask().paths().begin(), r.update_mask().paths().end(), "min_tier_id") !=
                        r.update_mask().paths().end();
  return Mutate<v1::UpdateRewardResponse>(
      deps_, p, "UpdateReward", r.idempotency_key(), r,
      [&](CatalogTx& tx, v1::UpdateRewardResponse& out) -> absl::Status {
        ASSIGN_OR_RETURN(std::optional<v1::Reward> current, tx.GetReward(r.reward_id(), /*for_update=*/true));
        if (!current.has_value()) return RewardNotFound(r.reward_id());
        if (current->state() == v1::REWARD_STATE_RETIRED) {
          return absl::FailedPreconditionError(absl::StrCat("reward ", r.reward_id(), " is retired"));
        }
        if (r.expected_version() != 0 && r.expected_version() != current->version()) {
          return absl::AbortedError(
              absl::StrCat("reward changed: version is ", current->version(), ", expected ", r.expected_version()));
        }
        v1::Reward next = *current;
        ApplyRewardMask(r.update_mask(), r.reward(), next);
        NormaliseReward(next);
        RETURN_IF_ERROR(ValidateReward("reward.", next));
        next.set_version(current->version() + 1);
        *next.mutable_updated_at() = ToProtoTime(deps_.Now());
        RETURN_IF_ERROR(tx.UpdateReward(next));
        *out.mutable_reward() = std::move(next);
        return absl::OkStatus();
      },
      [&] { return new_tier ? CheckTierExists(r.reward().min_tier_id()) : absl::OkStatus(); });
}

absl::StatusOr<v1::GetRewardResponse> Rewards::GetReward(const Principal& p, const v1::GetRewardRequest& r) {
  RETURN_IF_ERROR(ValidateId("reward_id", r.reward_id()));
  v1::GetRewardResponse out;
  RETURN_IF_ERROR(deps_.store.Run("GetReward", [&](CatalogTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(std::optional<v1::Reward> reward, tx.GetReward(r.reward_id(), false));
    if (!reward.has_value() || !RewardVisible(p, *reward)) return RewardNotFound(r.reward_id());
    *out.mutable_reward() = *std::move(reward);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::ListRewardsResponse> Rewards::ListRewards(const Principal& p, const v1::ListRewardsRequest& r) {
  if (!r.partner_id().empty()) RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  if (!r.category().empty()) RETURN_IF_ERROR(ValidateCategory("category", r.category()));
  ASSIGN_OR_RETURN(int limit, paging::PageSize(r.page_size(), kRewardsPageDefault, kRewardsPageMax));
  RewardFilter filter;
  std::string scope = absl::StrCat("rewards|", r.partner_id(), "|", r.category(), "|", p.partner_id);
  for (int s : r.states()) {
    filter.states.push_back(static_cast<v1::RewardState>(s));
    absl::StrAppend(&scope, "|", s);
  }
  filter.partner_id = r.partner_id();
  filter.category = r.category();
  if (p.is_partner()) filter.visible_to_partner_id = p.partner_id;
  ASSIGN_OR_RETURN(filter.after_reward_id, KeyCursor(r.page_token(), scope));
  v1::ListRewardsResponse out;
  RETURN_IF_ERROR(deps_.store.Run("ListRewards", [&](CatalogTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(std::vector<v1::Reward> rewards, tx.ListRewards(filter, limit + 1));
    const bool more = static_cast<int>(rewards.size()) > limit;
    if (more) rewards.resize(limit);
    for (auto& reward : rewards) *out.add_rewards() = std::move(reward);
    if (more) out.set_next_page_token(paging::EncodeKeyPageToken(scope, out.rewards().rbegin()->reward_id()));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::SetRewardStateResponse> Rewards::SetRewardState(const Principal& p,
                                                                   const v1::SetRewardStateRequest& r) {
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  RETURN_IF_ERROR(ValidateId("reward_id", r.reward_id()));
  RETURN_IF_ERROR(ValidateEnum("state", r.state(), v1::RewardState_IsValid, /*required=*/true));
  RETURN_IF_ERROR(ValidateText("reason", r.reason(), 0, kMaxReasonLength));
  return Mutate<v1::SetRewardStateResponse>(
      deps_, p, "SetRewardState", r.idempotency_key(), r,
      [&](CatalogTx& tx, v1::SetRewardStateResponse& out) -> absl::Status {
        ASSIGN_OR_RETURN(std::optional<v1::Reward> current, tx.GetReward(r.reward_id(), /*for_update=*/true));
        if (!current.has_value()) return RewardNotFound(r.reward_id());
        const v1::RewardState from = current->state(), to = r.state();
        const bool allowed = (from == v1::REWARD_STATE_DRAFT && to == v1::REWARD_STATE_ACTIVE) ||
                             (from == v1::REWARD_STATE_ACTIVE && to == v1::REWARD_STATE_PAUSED) ||
                             (from == v1::REWARD_STATE_PAUSED && to == v1::REWARD_STATE_ACTIVE) ||
                             (from != v1::REWARD_STATE_RETIRED && to == v1::REWARD_STATE_RETIRED);
        if (!allowed) {
          return absl::FailedPreconditionError(
              absl::StrCat("reward state ", v1::RewardState_Name(from), " cannot become ", v1::RewardState_Name(to)));
        }
        const absl::Time now = deps_.Now();
        if (to == v1::REWARD_STATE_ACTIVE && current->has_valid_until() &&
            FromProtoTime(current->valid_until()) <= now) {
          return absl::FailedPreconditionError("reward validity window has ended; extend valid_until first");
        }
        current->set_state(to);
        current->set_version(current->version() + 1);
        *current->mutable_updated_at() = ToProtoTime(now);
        RETURN_IF_ERROR(tx.UpdateReward(*current));
        *out.mutable_reward() = *std::move(current);
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::AdjustRewardStockResponse> Rewards::AdjustRewardStock(const Principal& p,
                                                                         const v1::AdjustRewardStockRequest& r) {
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  RETURN_IF_ERROR(ValidateId("reward_id", r.reward_id()));
  if (r.delta_units() == 0) return absl::InvalidArgumentError("delta_units: must not be 0");
  if (r.delta_units() > kMaxStock || r.delta_units() < -kMaxStock) {
    return absl::InvalidArgumentError("delta_units: out of range");
  }
  RETURN_IF_ERROR(ValidateText("reason", r.reason(), 1, kMaxReasonLength));
  return Mutate<v1::AdjustRewardStockResponse>(
      deps_, p, "AdjustRewardStock", r.idempotency_key(), r,
      [&](CatalogTx& tx, v1::AdjustRewardStockResponse& out) -> absl::Status {
        ASSIGN_OR_RETURN(std::optional<v1::Reward> current, tx.GetReward(r.reward_id(), /*for_update=*/false));
        if (!current.has_value()) return RewardNotFound(r.reward_id());
        if (current->unlimited_stock()) {
          return absl::FailedPreconditionError("reward has unlimited stock; nothing to adjust");
        }
        ASSIGN_OR_RETURN(bool applied, tx.AdjustStock(r.reward_id(), r.delta_units(), deps_.Now()));
        if (!applied) {
          return absl::FailedPreconditionError(
              absl::StrCat("available stock would go below zero (available ", current->stock_available(), ")"));
        }
        ASSIGN_OR_RETURN(std::optional<v1::Reward> after, tx.GetReward(r.reward_id(), false));
        if (!after.has_value()) return RewardNotFound(r.reward_id());
        *out.mutable_reward() = *std::move(after);
        return absl::OkStatus();
      });
}

struct Rewards::RedeemableQuery {
  std::string member_id;
  std::string scope;  // of the page token
  int limit = 0;
  RedeemableFilter filter;
  MemberTier tier;
  int64_t available = 0;
};

absl::StatusOr<v1::ListRedeemableRewardsResponse> Rewards::ListRedeemableRewards(
    const Principal& p, const v1::ListRedeemableRewardsRequest& r) {
  ASSIGN_OR_RETURN(const RedeemableQuery q, StartRedeemable(p, r));
  v1::ListRedeemableRewardsResponse out;
  out.set_available_points(q.available);
  out.set_tier_id(q.tier.tier_id);
  // Tier ranks are asked once per distinct minimum tier.
  absl::flat_hash_map<std::string, int> ranks;
  RETURN_IF_ERROR(deps_.store.Run(
      "ListRedeemableRewards", [&](CatalogTx& tx) -> absl::Status { return FillRedeemablePage(tx, q, ranks, out); }));
  return out;
}

absl::StatusOr<Rewards::RedeemableQuery> Rewards::StartRedeemable(const Principal& p,
                                                                  const v1::ListRedeemableRewardsRequest& r) {
  RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  if (!r.partner_id().empty()) RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  if (!r.category().empty()) RETURN_IF_ERROR(ValidateCategory("category", r.category()));
  RedeemableQuery q;
  q.member_id = r.member_id();
  ASSIGN_OR_RETURN(q.limit, paging::PageSize(r.page_size(), kRedeemablePageDefault, kRedeemablePageMax));
  q.scope = absl::StrCat("redeemable|", r.member_id(), "|", r.partner_id(), "|", r.category());
  RedeemableFilter& filter = q.filter;
  if (!r.page_token().empty()) {
    ASSIGN_OR_RETURN(std::string cursor, paging::DecodeKeyPageToken(r.page_token(), q.scope));
    const size_t bar = cursor.find('|');
    if (bar == std::string::npos || !absl::SimpleAtoi(cursor.substr(0, bar), &filter.after_points_price)) {
      return absl::InvalidArgumentError("page_token: malformed");
    }
    filter.after_reward_id = cursor.substr(bar + 1);
  }
  if (p.is_partner()) {
    ASSIGN_OR_RETURN(bool visible, deps_.members.VisibleTo(r.member_id(), p.partner_id));
    if (!visible) return absl::NotFoundError("member not found");
  }
  ASSIGN_OR_RETURN(q.tier, deps_.members.TierOf(r.member_id()));
  ASSIGN_OR_RETURN(q.available, deps_.ledger.AvailablePoints(r.member_id()));
  filter.partner_id = r.partner_id();
  filter.category = r.category();
  filter.max_points_price = q.available;
  filter.now = deps_.Now();
  return q;
}

absl::Status Rewards::FillRedeemablePage(CatalogTx& tx, const RedeemableQuery& q,
                                         absl::flat_hash_map<std::string, int>& ranks,
                                         v1::ListRedeemableRewardsResponse& out) {
  out.clear_rewards();
  out.clear_next_page_token();
  const int limit = q.limit;
  RedeemableFilter f = q.filter;
  int scanned = 0;
  bool more = true;  // rows may remain after `last`
  std::string last;
  while (out.rewards_size() < limit && scanned < kRedeemableMaxScanned && more) {
    ASSIGN_OR_RETURN(std::vector<v1::Reward> rows, tx.ListRedeemable(f, limit));
    more = static_cast<int>(rows.size()) == limit;
    for (size_t i = 0; i < rows.size(); ++i) {
      v1::Reward& reward = rows[i];
      ++scanned;
      f.after_points_price = reward.points_price();
      f.after_reward_id = reward.reward_id();
      last = absl::StrCat(reward.points_price(), "|", reward.reward_id());
      if (!reward.min_tier_id().empty()) {
        auto it = ranks.find(reward.min_tier_id());
        if (it == ranks.end()) {
          absl::StatusOr<int> rank = deps_.members.RankOf(reward.min_tier_id());
          if (!rank.ok() && !absl::IsNotFound(rank.status())) return rank.status();
          it = ranks.emplace(reward.min_tier_id(), rank.ok() ? *rank : INT32_MAX).first;
        }
        if (q.tier.rank < it->second) continue;
      }
      v1::RedeemableReward* item = nullptr;
      if (reward.per_member_limit() > 0) {
        ASSIGN_OR_RETURN(int64_t used, tx.CountMemberVouchers(q.member_id, reward.reward_id(),
                                                              PeriodStart(reward.per_member_limit_period(), f.now)));
        if (used >= reward.per_member_limit()) continue;
        item = out.add_rewards();
        item->set_has_member_limit(true);
        item->set_member_remaining_redemptions(static_cast<int32_t>(reward.per_member_limit() - used));
      } else {
        item = out.add_rewards();
      }
      *item->mutable_reward() = std::move(reward);
      if (out.rewards_size() == limit) {
        more = more || i + 1 < rows.size();
        break;
      }
    }
  }
  if (more && !last.empty()) out.set_next_page_token(paging::EncodeKeyPageToken(q.scope, last));
  return absl::OkStatus();
}

absl::Status Rewards::CheckTierExists(const std::string& tier_id) {
  if (tier_id.empty()) return absl::OkStatus();
  absl::StatusOr<int> rank = deps_.members.RankOf(tier_id);
  if (absl::IsNotFound(rank.status())) {
    return absl::NotFoundError(absl::StrCat("reward.min_tier_id: tier ", tier_id, " not found"));
  }
  return rank.status();
}

}  // namespace loyalty::catalog
