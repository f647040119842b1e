#include "services/catalog/catalog.h"

#include <algorithm>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/random.h"
#include "common/crypto/sha256.h"
#include "common/idempotency/idempotency.h"
#include "common/log/log.h"
#include "common/paging/page_token.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "common/validation/enums.h"
#include "common/validation/ids.h"
#include "common/validation/text.h"
#include "services/catalog/codes.h"
#include "services/catalog/validation.h"

namespace loyalty::catalog {
namespace {

constexpr int kMaxVoucherDraws = 5;
constexpr int kRewardsPageDefault = 50;
constexpr int kRewardsPageMax = 500;
constexpr int kVouchersPageDefault = 50;
constexpr int kVouchersPageMax = 500;
constexpr int kCampaignsPageDefault = 50;
constexpr int kCampaignsPageMax = 500;
constexpr int64_t kMaxLeasePoints = 1'000'000;
constexpr int kMaxCouponCodes = 100'000;
constexpr int kRedeemablePageDefault = 50;
constexpr int kRedeemablePageMax = 200;
constexpr int kRedeemableMaxScanned = 1000;
constexpr int kCouponCodesPageDefault = 1000;
constexpr int kCouponCodesPageMax = 5000;
constexpr size_t kMaxHolderLength = 128;
constexpr size_t kMaxReferenceLength = 64;
constexpr int kPendingCancel = 1;
constexpr int kPendingHonour = 2;

using common::v1::ROLE_BACKOFFICE;
using common::v1::ROLE_PARTNER;
using common::v1::ROLE_SERVICE;

absl::Status RequireRole(const auth::Principal& p, std::initializer_list<common::v1::Role> roles) {
  for (common::v1::Role r : roles) {
    if (p.role == r) return absl::OkStatus();
  }
  return absl::PermissionDeniedError("this credential's role may not call this method");
}

// Answers worth remembering under a key (see catalog.h).
bool ShouldRemember(const absl::Status& s) {
  return idempotency::IsFinalOutcome(s) && !absl::IsInvalidArgument(s) && !absl::IsPermissionDenied(s) &&
         !absl::IsUnauthenticated(s);
}

absl::Status RewardNotFound(const std::string& id) { return absl::NotFoundError(absl::StrCat("reward ", id, " not found")); }
absl::Status VoucherNotFound() { return absl::NotFoundError("voucher not found"); }

// A partner sees ACTIVE and PAUSED rewards, and its own in any state.
bool RewardVisible(const auth::Principal& p, const v1::Reward& r) {
  if (!p.is_partner()) return true;
  if (r.state() == v1::REWARD_STATE_ACTIVE || r.state() == v1::REWARD_STATE_PAUSED) return true;
  return r.partner_id() == p.partner_id || r.proposed_by_partner_id() == p.partner_id;
}

// A partner sees the vouchers it honours or channelled.
bool VoucherVisible(const auth::Principal& p, const v1::Voucher& v) {
  if (!p.is_partner()) return true;
  return v.partner_id() == p.partner_id || v.channel_partner_id() == p.partner_id;
}

// An ISSUED voucher past its expiry is reported EXPIRED even before the
// sweep released it.
v1::Voucher Present(v1::Voucher v, absl::Time now) {
  if (v.state() == v1::VOUCHER_STATE_ISSUED && FromProtoTime(v.expires_at()) <= now) {
    v.set_state(v1::VOUCHER_STATE_EXPIRED);
  }
  return v;
}

// Another request's honour or cancel of the voucher is in flight: this one
// waits for its outcome (not remembered under the key).
absl::Status VoucherBusy() {
  return absl::AbortedError("another honour or cancel of this voucher is in progress; retry with the same key");
}

// Identifies the request that put a voucher operation in flight: its
// caller's idempotency scope, its key and its fingerprint.
template <typename Request>
std::string RequestMarker(const auth::Principal& p, const Request& r) {
  return crypto::Sha256Hex(
      absl::StrCat(p.idempotency_scope(), "\x1f", r.idempotency_key(), "\x1f", idempotency::Fingerprint(r)));
}

// True when the voucher reached `state` because the repair sweep finished the
// operation that the request `marker` put in flight and whose own answer
// never landed: a retry of that request is answered with that outcome.
absl::StatusOr<bool> FinishedByRepair(CatalogTx& tx, const v1::Voucher& v, v1::VoucherState state,
                                      const std::string& marker) {
  if (v.state() != state) return false;
  ASSIGN_OR_RETURN(std::string by, tx.VoucherRequestMarker(v.voucher_code()));
  return by == marker;
}

absl::Status VoucherClosedError(const v1::Voucher& v, absl::Time now) {
  switch (v.state()) {
    case v1::VOUCHER_STATE_HONOURED:
      return absl::FailedPreconditionError(
          absl::StrCat("voucher used at ", absl::FormatTime(absl::RFC3339_full, FromProtoTime(v.honoured_at()),
                                                             absl::UTCTimeZone())));
    case v1::VOUCHER_STATE_CANCELLED:
      return absl::FailedPreconditionError("voucher cancelled");
    case v1::VOUCHER_STATE_EXPIRED:
      return absl::FailedPreconditionError("voucher expired");
    default:
      break;
  }
  if (FromProtoTime(v.expires_at()) <= now) return absl::FailedPreconditionError("voucher expired");
  return absl::OkStatus();
}

// Start of the per-member limit period containing `now` (UTC calendar).
absl::Time PeriodStart(v1::LimitPeriod period, absl::Time now) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  const absl::CivilDay day = absl::ToCivilDay(now, utc);
  switch (period) {
    case v1::LIMIT_PERIOD_DAY:
      return absl::FromCivil(day, utc);
    case v1::LIMIT_PERIOD_WEEK:
      return absl::FromCivil(absl::PrevWeekday(day + 1, absl::Weekday::monday), utc);
    case v1::LIMIT_PERIOD_MONTH:
      return absl::FromCivil(absl::CivilMonth(day), utc);
    case v1::LIMIT_PERIOD_YEAR:
      return absl::FromCivil(absl::CivilYear(day), utc);
    default:
      return absl::UnixEpoch();
  }
}

// The rules checked before the hold and again, authoritatively, with the
// reward row locked: state, validity, stock, per-member limit. The tier is
// checked once, before the saga starts.
absl::Status CheckRedeemable(CatalogTx& tx, const v1::Reward& r, const std::string& member_id, absl::Time now) {
  if (r.state() != v1::REWARD_STATE_ACTIVE) {
    return absl::FailedPreconditionError(absl::StrCat("reward ", r.reward_id(), " is not active"));
  }
  if ((r.has_valid_from() && now < FromProtoTime(r.valid_from())) ||
      (r.has_valid_until() && now >= FromProtoTime(r.valid_until()))) {
    return absl::FailedPreconditionError(absl::StrCat("reward ", r.reward_id(), " is outside its validity window"));
  }
  if (!r.unlimited_stock() && r.stock_available() <= 0) {
    return absl::FailedPreconditionError(absl::StrCat("reward ", r.reward_id(), " is out of stock"));
  }
  if (r.per_member_limit() > 0) {
    ASSIGN_OR_RETURN(int64_t used,
                     tx.CountMemberVouchers(member_id, r.reward_id(), PeriodStart(r.per_member_limit_period(), now)));
    if (used >= r.per_member_limit()) {
      return absl::FailedPreconditionError(
          absl::StrCat("per-member limit reached: ", used, " of ", r.per_member_limit(), " this period"));
    }
  }
  return absl::OkStatus();
}

std::string RewardName(const v1::Reward& r) { return r.names().empty() ? std::string() : r.names(0).text(); }

std::string HoldKey(const Redemption& r) { return absl::StrCat("catalog:redeem:", r.redemption_id, ":", r.attempt); }
std::string HoldVoidKey(const Redemption& r) {
  return absl::StrCat("catalog:redeem-void:", r.redemption_id, ":", r.attempt);
}
std::string CaptureKey(const std::string& code) { return absl::StrCat("catalog:capture:", code); }
std::string ReleaseKey(const std::string& code) { return absl::StrCat("catalog:release:", code); }

absl::Status StatusOf(const Redemption& r) {
  if (r.status_code == 0) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(r.status_code), r.status_message);
}

// Decodes the page token of a list; the scope binds it to the filters.
absl::StatusOr<std::string> KeyCursor(const std::string& token, const std::string& scope) {
  if (token.empty()) return std::string();
  return paging::DecodeKeyPageToken(token, scope);
}

absl::Status CampaignNotFound(const std::string& id) {
  return absl::NotFoundError(absl::StrCat("campaign ", id, " not found"));
}

// A campaign is open to a partner when it names it or names no partner.
bool CampaignOpenTo(const auth::Principal& p, const v1::Campaign& c) {
  if (!p.is_partner() || c.partner_ids().empty()) return true;
  return std::find(c.partner_ids().begin(), c.partner_ids().end(), p.partner_id) != c.partner_ids().end();
}

// The rules ValidateCoupon and RedeemCoupon share. `member_id` and
// `partner_id` may be empty (ValidateCoupon by backoffice).
absl::Status CheckCoupon(const v1::CouponBatch& b, const std::optional<v1::Campaign>& campaign, int code_uses,
                         int member_uses, const std::string& partner_id, absl::Time now) {
  if (!campaign.has_value() || campaign->state() != v1::CAMPAIGN_STATE_ACTIVE) {
    return absl::FailedPreconditionError("coupon campaign is not active");
  }
  if ((b.has_valid_from() && now < FromProtoTime(b.valid_from())) ||
      (b.has_valid_until() && now >= FromProtoTime(b.valid_until()))) {
    return absl::FailedPreconditionError("coupon is outside its validity window");
  }
  if (code_uses >= b.max_redemptions_per_code()) return absl::FailedPreconditionError("coupon code exhausted");
  if (member_uses >= b.max_redemptions_per_member()) {
    return absl::FailedPreconditionError("member limit reached for this coupon batch");
  }
  if (!b.partner_ids().empty() &&
      std::find(b.partner_ids().begin(), b.partner_ids().end(), partner_id) == b.partner_ids().end()) {
    return absl::FailedPreconditionError("coupon is not valid at this partner");
  }
  return absl::OkStatus();
}

absl::Status CouponNotFound() { return absl::NotFoundError("coupon code not found"); }

}  // namespace

absl::Time Catalog::Now() const { return TruncateToMicros(options_.now()); }

template <typename Response>
absl::StatusOr<Response> Catalog::Mutate(const Principal& p, absl::string_view method, const std::string& key,
                                         const google::protobuf::Message& request, Body<Response> body,
                                         const std::function<absl::Status()>& references) {
  if (references) {
    std::optional<IdempotencyRecord> stored;
    RETURN_IF_ERROR(store_.Run(method, [&](CatalogTx& tx) -> absl::Status {
      ASSIGN_OR_RETURN(stored, tx.FindKey(p.idempotency_scope(), key));
      return absl::OkStatus();
    }));
    // A key with a stored answer is replayed below without asking again.
    if (!stored.has_value()) RETURN_IF_ERROR(references());
  }
  return idempotency::RunOnce<CatalogTx, IdempotencyRecord>(store_, method, p.idempotency_scope(), key, request, body,
                                                          ShouldRemember);
}

// ---- rewards ----------------------------------------------------------------------

absl::StatusOr<v1::Reward> Catalog::InsertNewReward(CatalogTx& tx, const Principal& p, v1::Reward reward) {
  const absl::Time now = Now();
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

absl::StatusOr<v1::CreateRewardResponse> Catalog::CreateReward(const Principal& p, const v1::CreateRewardRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {ROLE_BACKOFFICE}));
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  v1::Reward reward = r.reward();
  NormaliseReward(reward);
  RETURN_IF_ERROR(ValidateReward("reward.", reward));
  return Mutate<v1::CreateRewardResponse>(
      p, "CreateReward", r.idempotency_key(), r,
      [&](CatalogTx& tx, v1::CreateRewardResponse& out) -> absl::Status {
        ASSIGN_OR_RETURN(*out.mutable_reward(), InsertNewReward(tx, p, reward));
        return absl::OkStatus();
      },
      [&] {
        RETURN_IF_ERROR(CheckTierExists(reward.min_tier_id()));
        return CheckPartnerExists("reward.partner_id", reward.partner_id());
      });
}

absl::StatusOr<v1::ProposeRewardResponse> Catalog::ProposeReward(const Principal& p,
                                                                 const v1::ProposeRewardRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {ROLE_PARTNER}));
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  if (r.reward().partner_id() != p.partner_id) {
    return absl::PermissionDeniedError("reward.partner_id: a partner may only propose rewards it honours");
  }
  v1::Reward reward = r.reward();
  NormaliseReward(reward);
  RETURN_IF_ERROR(ValidateReward("reward.", reward));
  return Mutate<v1::ProposeRewardResponse>(
      p, "ProposeReward", r.idempotency_key(), r,
      [&](CatalogTx& tx, v1::ProposeRewardResponse& out) -> absl::Status {
        ASSIGN_OR_RETURN(*out.mutable_reward(), InsertNewReward(tx, p, reward));
        return absl::OkStatus();
      },
      [&] { return CheckTierExists(reward.min_tier_id()); });
}

absl::StatusOr<v1::UpdateRewardResponse> Catalog::UpdateReward(const Principal& p, const v1::UpdateRewardRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {ROLE_BACKOFFICE}));
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  RETURN_IF_ERROR(ValidateId("reward_id", r.reward_id()));
  RETURN_IF_ERROR(ValidateRewardMask(r.update_mask()));
  if (r.expected_version() < 0) return absl::InvalidArgumentError("expected_version: must be >= 0");
  const bool new_tier = std::find(r.update_mask().paths().begin(), r.update_mask().paths().end(),
                                  "min_tier_id") != r.update_mask().paths().end();
  return Mutate<v1::UpdateRewardResponse>(
      p, "UpdateReward", r.idempotency_key(), r, [&](CatalogTx& tx, v1::UpdateRewardResponse& out) -> absl::Status {
        ASSIGN_OR_RETURN(std::optional<v1::Reward> current, tx.GetReward(r.reward_id(), /*for_update=*/true));
        if (!current.has_value()) return RewardNotFound(r.reward_id());
        if (current->state() == v1::REWARD_STATE_RETIRED) {
          return absl::FailedPreconditionError(absl::StrCat("reward ", r.reward_id(), " is retired"));
        }
        if (r.expected_version() != 0 && r.expected_version() != current->version()) {
          return absl::AbortedError(absl::StrCat("reward changed: version is ", current->version(), ", expected ",
                                                 r.expected_version()));
        }
        v1::Reward next = *current;
        ApplyRewardMask(r.update_mask(), r.reward(), next);
        NormaliseReward(next);
        RETURN_IF_ERROR(ValidateReward("reward.", next));
        next.set_version(current->version() + 1);
        *next.mutable_updated_at() = ToProtoTime(Now());
        RETURN_IF_ERROR(tx.UpdateReward(next));
        *out.mutable_reward() = std::move(next);
        return absl::OkStatus();
      },
      [&] { return new_tier ? CheckTierExists(r.reward().min_tier_id()) : absl::OkStatus(); });
}

absl::StatusOr<v1::GetRewardResponse> Catalog::GetReward(const Principal& p, const v1::GetRewardRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {ROLE_PARTNER, ROLE_BACKOFFICE, ROLE_SERVICE}));
  RETURN_IF_ERROR(ValidateId("reward_id", r.reward_id()));
  v1::GetRewardResponse out;
  RETURN_IF_ERROR(store_.Run("GetReward", [&](CatalogTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(std::optional<v1::Reward> reward, tx.GetReward(r.reward_id(), false));
    if (!reward.has_value() || !RewardVisible(p, *reward)) return RewardNotFound(r.reward_id());
    *out.mutable_reward() = *std::move(reward);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::ListRewardsResponse> Catalog::ListRewards(const Principal& p, const v1::ListRewardsRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {ROLE_PARTNER, ROLE_BACKOFFICE, ROLE_SERVICE}));
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
  RETURN_IF_ERROR(store_.Run("ListRewards", [&](CatalogTx& tx) -> absl::Status {
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

absl::StatusOr<v1::SetRewardStateResponse> Catalog::SetRewardState(const Principal& p,
                                                                   const v1::SetRewardStateRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {ROLE_BACKOFFICE}));
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  RETURN_IF_ERROR(ValidateId("reward_id", r.reward_id()));
  RETURN_IF_ERROR(ValidateEnum("state", r.state(), v1::RewardState_IsValid, /*required=*/true));
  RETURN_IF_ERROR(ValidateText("reason", r.reason(), 0, kMaxReasonLength));
  return Mutate<v1::SetRewardStateResponse>(
      p, "SetRewardState", r.idempotency_key(), r,
      [&](CatalogTx& tx, v1::SetRewardStateResponse& out) -> absl::Status {
        ASSIGN_OR_RETURN(std::optional<v1::Reward> current, tx.GetReward(r.reward_id(), /*for_update=*/true));
        if (!current.has_value()) return RewardNotFound(r.reward_id());
        const v1::RewardState from = current->state(), to = r.state();
        const bool allowed = (from == v1::REWARD_STATE_DRAFT && to == v1::REWARD_STATE_ACTIVE) ||
                             (from == v1::REWARD_STATE_ACTIVE && to == v1::REWARD_STATE_PAUSED) ||
                             (from == v1::REWARD_STATE_PAUSED && to == v1::REWARD_STATE_ACTIVE) ||
                             (from != v1::REWARD_STATE_RETIRED && to == v1::REWARD_STATE_RETIRED);
        if (!allowed) {
          return absl::FailedPreconditionError(absl::StrCat("reward state ", v1::RewardState_Name(from), " cannot become ",
                                                            v1::RewardState_Name(to)));
        }
        const absl::Time now = Now();
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

absl::StatusOr<v1::AdjustRewardStockResponse> Catalog::AdjustRewardStock(const Principal& p,
                                                                         const v1::AdjustRewardStockRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {ROLE_BACKOFFICE}));
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  RETURN_IF_ERROR(ValidateId("reward_id", r.reward_id()));
  if (r.delta_units() == 0) return absl::InvalidArgumentError("delta_units: must not be 0");
  if (r.delta_units() > kMaxStock || r.delta_units() < -kMaxStock) {
    return absl::InvalidArgumentError("delta_units: out of range");
  }
  RETURN_IF_ERROR(ValidateText("reason", r.reason(), 1, kMaxReasonLength));
  return Mutate<v1::AdjustRewardStockResponse>(
      p, "AdjustRewardStock", r.idempotency_key(), r,
      [&](CatalogTx& tx, v1::AdjustRewardStockResponse& out) -> absl::Status {
        ASSIGN_OR_RETURN(std::optional<v1::Reward> current, tx.GetReward(r.reward_id(), /*for_update=*/false));
        if (!current.has_value()) return RewardNotFound(r.reward_id());
        if (current->unlimited_stock()) {
          return absl::FailedPreconditionError("reward has unlimited stock; nothing to adjust");
        }
        ASSIGN_OR_RETURN(bool applied, tx.AdjustStock(r.reward_id(), r.delta_units(), Now()));
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

absl::StatusOr<v1::ListRedeemableRewardsResponse> Catalog::ListRedeemableRewards(
    const Principal& p, const v1::ListRedeemableRewardsRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {ROLE_PARTNER, ROLE_BACKOFFICE}));
  RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  if (!r.partner_id().empty()) RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  if (!r.category().empty()) RETURN_IF_ERROR(ValidateCategory("category", r.category()));
  ASSIGN_OR_RETURN(int limit, paging::PageSize(r.page_size(), kRedeemablePageDefault, kRedeemablePageMax));
  const std::string scope = absl::StrCat("redeemable|", r.member_id(), "|", r.partner_id(), "|", r.category());
  RedeemableFilter filter;
  if (!r.page_token().empty()) {
    ASSIGN_OR_RETURN(std::string cursor, paging::DecodeKeyPageToken(r.page_token(), scope));
    const size_t bar = cursor.find('|');
    if (bar == std::string::npos || !absl::SimpleAtoi(cursor.substr(0, bar), &filter.after_points_price)) {
      return absl::InvalidArgumentError("page_token: malformed");
    }
    filter.after_reward_id = cursor.substr(bar + 1);
  }
  if (p.is_partner()) {
    ASSIGN_OR_RETURN(bool visible, members_.VisibleTo(r.member_id(), p.partner_id));
    if (!visible) return absl::NotFoundError("member not found");
  }
  ASSIGN_OR_RETURN(MemberTier tier, members_.TierOf(r.member_id()));
  ASSIGN_OR_RETURN(int64_t available, ledger_.AvailablePoints(r.member_id()));
  filter.partner_id = r.partner_id();
  filter.category = r.category();
  filter.max_points_price = available;
  filter.now = Now();

  v1::ListRedeemableRewardsResponse out;
  out.set_available_points(available);
  out.set_tier_id(tier.tier_id);
  // Tier ranks are asked once per distinct minimum tier.
  absl::flat_hash_map<std::string, int> ranks;
  RETURN_IF_ERROR(store_.Run("ListRedeemableRewards", [&](CatalogTx& tx) -> absl::Status {
    out.clear_rewards();
    out.clear_next_page_token();
    RedeemableFilter f = filter;
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
            absl::StatusOr<int> rank = members_.RankOf(reward.min_tier_id());
            if (!rank.ok() && !absl::IsNotFound(rank.status())) return rank.status();
            it = ranks.emplace(reward.min_tier_id(), rank.ok() ? *rank : INT32_MAX).first;
          }
          if (tier.rank < it->second) continue;
        }
        v1::RedeemableReward* item = nullptr;
        if (reward.per_member_limit() > 0) {
          ASSIGN_OR_RETURN(int64_t used, tx.CountMemberVouchers(r.member_id(), reward.reward_id(),
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
    if (more && !last.empty()) out.set_next_page_token(paging::EncodeKeyPageToken(scope, last));
    return absl::OkStatus();
  }));
  return out;
}

// ---- redeem: the saga -------------------------------------------------------------------

absl::Status Catalog::CheckTierExists(const std::string& tier_id) {
  if (tier_id.empty()) return absl::OkStatus();
  absl::StatusOr<int> rank = members_.RankOf(tier_id);
  if (absl::IsNotFound(rank.status())) {
    return absl::NotFoundError(absl::StrCat("reward.min_tier_id: tier ", tier_id, " not found"));
  }
  return rank.status();
}

absl::Status Catalog::CheckPartnerExists(absl::string_view field, const std::string& partner_id) {
  if (options_.partners == nullptr) return absl::OkStatus();
  absl::Status s = options_.partners->PartnerExists(partner_id);
  if (absl::IsNotFound(s)) return absl::NotFoundError(absl::StrCat(field, ": partner ", partner_id, " not found"));
  return s;
}

absl::Status Catalog::CheckCampaignReferences(const v1::Campaign& c,
                                              const google::protobuf::RepeatedPtrField<std::string>* paths) {
  auto checked = [&](absl::string_view field) {
    return paths == nullptr || std::find(paths->begin(), paths->end(), field) != paths->end();
  };
  if (checked("partner_ids")) {
    for (int i = 0; i < c.partner_ids_size(); ++i) {
      RETURN_IF_ERROR(CheckPartnerExists(absl::StrCat("campaign.partner_ids[", i, "]"), c.partner_ids(i)));
    }
  }
  if (checked("tier_ids")) {
    for (int i = 0; i < c.tier_ids_size(); ++i) {
      absl::StatusOr<int> rank = members_.RankOf(c.tier_ids(i));
      if (absl::IsNotFound(rank.status())) {
        return absl::NotFoundError(absl::StrCat("campaign.tier_ids[", i, "]: tier ", c.tier_ids(i), " not found"));
      }
      RETURN_IF_ERROR(rank.status());
    }
  }
  if (checked("segment_ids")) {
    for (int i = 0; i < c.segment_ids_size(); ++i) {
      absl::Status s = members_.SegmentExists(c.segment_ids(i));
      if (absl::IsNotFound(s)) {
        return absl::NotFoundError(
            absl::StrCat("campaign.segment_ids[", i, "]: segment ", c.segment_ids(i), " not found"));
      }
      RETURN_IF_ERROR(s);
    }
  }
  return absl::OkStatus();
}

absl::Status Catalog::CheckTier(const std::string& member_id, const v1::Reward& reward) {
  if (reward.min_tier_id().empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(MemberTier tier, members_.TierOf(member_id));
  ASSIGN_OR_RETURN(int needed, members_.RankOf(reward.min_tier_id()));
  if (tier.rank < needed) {
    return absl::FailedPreconditionError(
        absl::StrCat("member tier ", tier.tier_id, " is below the reward's minimum tier ", reward.min_tier_id()));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::RedeemResponse> Catalog::Redeem(const Principal& p, const v1::RedeemRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {ROLE_PARTNER, ROLE_BACKOFFICE}));
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  RETURN_IF_ERROR(ValidateId("reward_id", r.reward_id()));
  if (p.is_partner() && r.channel_partner_id() != p.partner_id) {
    return absl::PermissionDeniedError("channel_partner_id: must be the calling partner's own id");
  }
  if (!r.channel_partner_id().empty()) RETURN_IF_ERROR(ValidateId("channel_partner_id", r.channel_partner_id()));

  const std::string scope = p.idempotency_scope();
  const std::string fingerprint = idempotency::Fingerprint(r);

  // The tier needs membership (another service), so it is checked before
  // the saga's row is written, outside any transaction.
  std::optional<absl::Status> tier_status;
  {
    std::optional<v1::Reward> reward;
    RETURN_IF_ERROR(store_.Run("Redeem.read", [&](CatalogTx& tx) -> absl::Status {
      ASSIGN_OR_RETURN(reward, tx.GetReward(r.reward_id(), false));
      return absl::OkStatus();
    }));
    if (reward.has_value() && !reward->min_tier_id().empty()) {
      absl::Status s = CheckTier(r.member_id(), *reward);
      if (!s.ok() && !ShouldRemember(s)) return s;  // membership unreachable
      tier_status = s;
    }
  }

  // Step 0: claim the key by writing the saga's row (STARTED), or answer
  // from the row a previous request with this key left.
  std::optional<absl::StatusOr<v1::RedeemResponse>> answer;
  Redemption red;
  RETURN_IF_ERROR(store_.Run("Redeem.claim", [&](CatalogTx& tx) -> absl::Status {
    answer.reset();
    const absl::Time now = Now();
    ASSIGN_OR_RETURN(std::optional<Redemption> existing, tx.FindRedemption(scope, r.idempotency_key()));
    if (existing.has_value()) {
      if (existing->fingerprint != fingerprint) {
        v1::RedeemRequest original;
        std::string field = "request";
        if (original.ParseFromString(existing->request)) field = idempotency::FirstDifferingField(original, r);
        answer = idempotency::KeyReusedError(r.idempotency_key(), field.empty() ? "request" : field);
        return absl::OkStatus();
      }
      switch (existing->state) {
        case SagaState::kCompleted: {
          v1::RedeemResponse stored;
          if (!stored.ParseFromString(existing->response)) return absl::InternalError("stored response unreadable");
          answer = std::move(stored);
          return absl::OkStatus();
        }
        case SagaState::kFailed:
          if (ShouldRemember(StatusOf(*existing))) {
            answer = StatusOf(*existing);
            return absl::OkStatus();
          }
          break;  // a transient failure, fully compensated: start again
        default:
          answer = absl::AbortedError("this redemption is still in progress; retry later with the same key");
          return absl::OkStatus();
      }
    }
    ASSIGN_OR_RETURN(std::optional<v1::Reward> current, tx.GetReward(r.reward_id(), false));
    absl::Status refusal = absl::OkStatus();
    if (!current.has_value()) {
      refusal = RewardNotFound(r.reward_id());
    } else if (tier_status.has_value() && !tier_status->ok()) {
      refusal = *tier_status;
    } else if (!current->min_tier_id().empty() && !tier_status.has_value()) {
      // The reward gained a tier limit since it was read: ask again.
      return absl::AbortedError("reward changed while redeeming");
    } else {
      refusal = CheckRedeemable(tx, *current, r.member_id(), now);
    }
    if (existing.has_value()) {
      red = *std::move(existing);
      red.attempt += 1;
      red.hold_id.clear();
      red.voucher_code.clear();
      red.response.clear();
    } else {
      red = Redemption{};
      red.redemption_id = crypto::NewOpaqueId("rd");
      red.scope = scope;
      red.key = r.idempotency_key();
      red.fingerprint = fingerprint;
      r.SerializeToString(&red.request);
      red.member_id = r.member_id();
      red.reward_id = r.reward_id();
      red.channel_partner_id = r.channel_partner_id();
      red.created_at = now;
    }
    if (current.has_value()) {
      red.partner_id = current->partner_id();
      red.points = current->points_price();
      red.hold_ttl_seconds = int64_t{current->voucher_validity_days()} * 86400;
    }
    red.updated_at = now;
    red.state = refusal.ok() ? SagaState::kStarted : SagaState::kFailed;
    red.status_code = static_cast<int>(refusal.code());
    red.status_message = std::string(refusal.message());
    if (!refusal.ok()) {
      answer = refusal;
      // A refusal before the hold needs no compensation; one the caller can
      // correct (INVALID_ARGUMENT) is not remembered.
      if (!ShouldRemember(refusal)) return absl::OkStatus();
    }
    return existing.has_value() || red.attempt > 1 ? tx.UpdateRedemption(red) : tx.InsertRedemption(red);
  }));
  if (answer.has_value()) return *std::move(answer);
  return RunSaga(std::move(red));
}

absl::StatusOr<v1::RedeemResponse> Catalog::RunSaga(Redemption red) {
  if (options_.crash_at) RETURN_IF_ERROR(options_.crash_at(SagaPoint::kClaimed));

  // Step 1: the hold.
  absl::StatusOr<HoldOutcome> hold = ledger_.Authorize(HoldKey(red), red.member_id, red.partner_id, red.points,
                                                       absl::Seconds(red.hold_ttl_seconds), red.redemption_id);
  if (!hold.ok()) {
    const absl::Status refused = hold.status();
    if (ShouldRemember(refused) || absl::IsInvalidArgument(refused)) {
      // The ledger refused (not enough points, member suspended...): nothing
      // is held, so nothing to compensate.
      absl::Status recorded = store_.Run("Redeem.refused", [&](CatalogTx& tx) -> absl::Status {
        ASSIGN_OR_RETURN(std::optional<Redemption> cur, tx.GetRedemption(red.redemption_id));
        if (!cur.has_value() || cur->state != SagaState::kStarted || cur->attempt != red.attempt) {
          return absl::OkStatus();
        }
        cur->state = SagaState::kFailed;
        cur->status_code = static_cast<int>(refused.code());
        cur->status_message = std::string(refused.message());
        cur->updated_at = Now();
        return tx.UpdateRedemption(*cur);
      });
      // Not durable, so not final: the saga row stays STARTED and is
      // recovered; the caller retries with the same key.
      if (!recorded.ok()) return idempotency::RefusalNotRecorded(refused, recorded);
      return refused;
    }
    // Unreachable or unknown: the hold may or may not exist. Compensate now
    // (the recovery loop finishes it if the ledger is still away).
    const absl::Status outcome =
        absl::UnavailableError("ledger unreachable; everything was compensated, retry with the same key");
    absl::Status compensated = Compensate(red, outcome);
    if (!compensated.ok()) {
      log::Warn("redeem_compensation_deferred", {{"redemption_id", red.redemption_id}});
    }
    return outcome;
  }
  red.hold_id = hold->hold_id;
  if (options_.crash_at) RETURN_IF_ERROR(options_.crash_at(SagaPoint::kHeld));

  // Steps 2 and 3, in one local transaction: reserve one unit of stock and
  // issue the voucher, so stock is never reserved for nothing.
  v1::RedeemResponse response;
  absl::Status refusal = absl::OkStatus();
  bool lost = false;
  absl::Status status = store_.Run("Redeem.issue", [&](CatalogTx& tx) -> absl::Status {
    response.Clear();
    refusal = absl::OkStatus();
    lost = false;
    const absl::Time now = Now();
    ASSIGN_OR_RETURN(std::optional<Redemption> cur, tx.GetRedemption(red.redemption_id));
    if (!cur.has_value() || cur->state != SagaState::kStarted || cur->attempt != red.attempt) {
      lost = true;  // recovery took it over and compensates it
      return absl::OkStatus();
    }
    // Locks the reward row: redemptions of one reward serialize here, which
    // makes the stock and per-member checks exact.
    ASSIGN_OR_RETURN(std::optional<v1::Reward> current, tx.GetReward(red.reward_id, /*for_update=*/true));
    if (!current.has_value()) {
      refusal = RewardNotFound(red.reward_id);
    } else {
      refusal = CheckRedeemable(tx, *current, red.member_id, now);
    }
    if (refusal.ok()) {
      ASSIGN_OR_RETURN(bool reserved, tx.ReserveUnit(red.reward_id, !current->unlimited_stock()));
      if (!reserved) refusal = absl::FailedPreconditionError(absl::StrCat("reward ", red.reward_id, " is out of stock"));
    }
    if (!refusal.ok()) {
      cur->state = SagaState::kCompensating;
      cur->hold_id = red.hold_id;
      cur->status_code = static_cast<int>(refusal.code());
      cur->status_message = std::string(refusal.message());
      cur->updated_at = now;
      return tx.UpdateRedemption(*cur);
    }
    v1::Voucher v;
    v.set_reward_id(red.reward_id);
    v.set_reward_name(RewardName(*current));
    v.set_member_id(red.member_id);
    v.set_partner_id(red.partner_id);
    v.set_channel_partner_id(red.channel_partner_id);
    v.set_points(red.points);
    v.set_hold_id(red.hold_id);
    v.set_state(v1::VOUCHER_STATE_ISSUED);
    *v.mutable_issued_at() = ToProtoTime(now);
    *v.mutable_expires_at() = ToProtoTime(TruncateToMicros(hold->expires_at));
    absl::Status inserted = absl::AlreadyExistsError("no draw yet");
    for (int draw = 0; draw < kMaxVoucherDraws && absl::IsAlreadyExists(inserted); ++draw) {
      v.set_voucher_code(NewVoucherCode());
      inserted = tx.InsertVoucher(red.redemption_id, v);
    }
    if (!inserted.ok()) return absl::InternalError("could not draw a free voucher code");
    *response.mutable_voucher() = v;
    response.set_available_points(hold->available_points);
    cur->state = SagaState::kCompleted;
    cur->hold_id = red.hold_id;
    cur->voucher_code = v.voucher_code();
    cur->status_code = 0;
    cur->status_message.clear();
    response.SerializeToString(&cur->response);
    cur->updated_at = now;
    return tx.UpdateRedemption(*cur);
  });
  if (!status.ok()) {
    // The database failed after the hold: compensate (or leave it to
    // recovery when the database is still away).
    absl::Status compensated = Compensate(red, absl::UnavailableError("redemption failed; retry with the same key"));
    if (!compensated.ok()) log::Warn("redeem_compensation_deferred", {{"redemption_id", red.redemption_id}});
    return status;
  }
  if (lost) return absl::AbortedError("redemption interrupted and compensated; retry with the same key");
  if (!refusal.ok()) {
    if (options_.crash_at) RETURN_IF_ERROR(options_.crash_at(SagaPoint::kCompensating));
    absl::Status compensated = Compensate(red, refusal);
    if (!compensated.ok()) log::Warn("redeem_compensation_deferred", {{"redemption_id", red.redemption_id}});
    return refusal;
  }
  return response;
}

absl::Status Catalog::Compensate(Redemption red, const absl::Status& outcome) {
  // Mark it first, so that nobody completes it meanwhile.
  bool done = false;
  RETURN_IF_ERROR(store_.Run("Redeem.compensating", [&](CatalogTx& tx) -> absl::Status {
    done = false;
    ASSIGN_OR_RETURN(std::optional<Redemption> cur, tx.GetRedemption(red.redemption_id));
    if (!cur.has_value() || cur->attempt != red.attempt ||
        (cur->state != SagaState::kStarted && cur->state != SagaState::kCompensating)) {
      done = true;
      return absl::OkStatus();
    }
    if (cur->state == SagaState::kStarted) {
      cur->state = SagaState::kCompensating;
      cur->status_code = static_cast<int>(outcome.code());
      cur->status_message = std::string(outcome.message());
    }
    if (!red.hold_id.empty()) cur->hold_id = red.hold_id;
    cur->updated_at = Now();
    red = *cur;
    return tx.UpdateRedemption(*cur);
  }));
  if (done) return absl::OkStatus();

  if (red.hold_id.empty()) {
    // Was a hold placed? Asking again with the same key answers the original
    // outcome, or places it now (and it is voided below).
    absl::StatusOr<HoldOutcome> hold = ledger_.Authorize(HoldKey(red), red.member_id, red.partner_id, red.points,
                                                         absl::Seconds(red.hold_ttl_seconds), red.redemption_id);
    if (hold.ok()) {
      red.hold_id = hold->hold_id;
    } else if (!ShouldRemember(hold.status()) && !absl::IsInvalidArgument(hold.status())) {
      return hold.status();
    }
  }
  if (!red.hold_id.empty()) {
    absl::StatusOr<HoldOutcome> voided = ledger_.Void(HoldVoidKey(red), red.hold_id, "redemption compensated");
    if (!voided.ok()) {
      if (!absl::IsFailedPrecondition(voided.status())) return voided.status();
      // Already closed: fine unless it is somehow still open.
      ASSIGN_OR_RETURN(HoldOutcome h, ledger_.GetHold(red.hold_id));
      if (h.state == ledger::v1::HOLD_STATE_PENDING) return absl::InternalError("hold still pending after void");
      if (h.state == ledger::v1::HOLD_STATE_CAPTURED) {
        log::Error("redeem_hold_captured_without_voucher", {{"redemption_id", red.redemption_id}});
      }
    }
  }
  return store_.Run("Redeem.compensated", [&](CatalogTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(std::optional<Redemption> cur, tx.GetRedemption(red.redemption_id));
    if (!cur.has_value() || cur->attempt != red.attempt || cur->state != SagaState::kCompensating) {
      return absl::OkStatus();
    }
    cur->state = SagaState::kFailed;
    cur->hold_id = red.hold_id;
    cur->updated_at = Now();
    return tx.UpdateRedemption(*cur);
  });
}

absl::StatusOr<int> Catalog::Recover(int max, bool everything) {
  const absl::Time now = Now();
  const absl::Time before = everything ? absl::InfiniteFuture() : now - options_.saga_grace;
  std::vector<Redemption> stuck;
  RETURN_IF_ERROR(store_.Run("Recover.list", [&](CatalogTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(stuck, tx.ListStuckRedemptions(everything ? now + absl::Hours(1) : before, max));
    return absl::OkStatus();
  }));
  int repaired = 0;
  absl::Status first_failure;
  for (Redemption& red : stuck) {
    // A saga cut short before its outcome was known is answered ABORTED:
    // not remembered, so a retry with the same key starts it again.
    absl::Status outcome = red.state == SagaState::kCompensating
                               ? StatusOf(red)
                               : absl::AbortedError("redemption interrupted and compensated; retry with the same key");
    absl::Status s = Compensate(red, outcome);
    if (s.ok()) {
      ++repaired;
      log::Info("redeem_saga_recovered", {{"redemption_id", red.redemption_id}});
    } else {
      log::Debug("redeem_saga_recovery_failed",
                 {{"redemption_id", red.redemption_id}, {"code", absl::StatusCodeToString(s.code())}});
      if (first_failure.ok()) first_failure = s;
    }
  }
  // The others were tried all the same; the caller logs the failure once.
  if (!first_failure.ok()) return first_failure;
  return repaired;
}

// ---- vouchers ----------------------------------------------------------------------

absl::StatusOr<v1::GetVoucherResponse> Catalog::GetVoucher(const Principal& p, const v1::GetVoucherRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {ROLE_PARTNER, ROLE_BACKOFFICE, ROLE_SERVICE}));
  ASSIGN_OR_RETURN(std::string code, NormaliseVoucherCode("voucher_code", r.voucher_code()));
  v1::GetVoucherResponse out;
  RETURN_IF_ERROR(store_.Run("GetVoucher", [&](CatalogTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(std::optional<v1::Voucher> v, tx.GetVoucher(code, false));
    if (!v.has_value() || !VoucherVisible(p, *v)) return VoucherNotFound();
    *out.mutable_voucher() = Present(*std::move(v), Now());
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::ListVouchersResponse> Catalog::ListVouchers(const Principal& p, const v1::ListVouchersRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {ROLE_PARTNER, ROLE_BACKOFFICE}));
  if (p.is_partner() && r.partner_id() != p.partner_id) {
    return absl::PermissionDeniedError("partner_id: a partner must pass its own id");
  }
  if (r.member_id().empty() && r.partner_id().empty()) {
    return absl::InvalidArgumentError("member_id or partner_id: at least one is required");
  }
  if (!r.member_id().empty()) RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  if (!r.partner_id().empty()) RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  ASSIGN_OR_RETURN(int limit, paging::PageSize(r.page_size(), kVouchersPageDefault, kVouchersPageMax));
  VoucherFilter filter;
  filter.member_id = r.member_id();
  filter.partner_id = r.partner_id();
  std::string scope = absl::StrCat("vouchers|", r.member_id(), "|", r.partner_id());
  for (int s : r.states()) {
    filter.states.push_back(static_cast<v1::VoucherState>(s));
    absl::StrAppend(&scope, "|", s);
  }
  if (!r.page_token().empty()) {
    ASSIGN_OR_RETURN(filter.before_id, paging::DecodePageToken(r.page_token(), scope));
  }
  v1::ListVouchersResponse out;
  const absl::Time now = Now();
  RETURN_IF_ERROR(store_.Run("ListVouchers", [&](CatalogTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(auto rows, tx.ListVouchers(filter, limit + 1));
    const bool more = static_cast<int>(rows.size()) > limit;
    if (more) rows.resize(limit);
    for (auto& [id, v] : rows) *out.add_vouchers() = Present(std::move(v), now);
    if (more) out.set_next_page_token(paging::EncodePageToken(scope, rows.back().first));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::HonourVoucherResponse> Catalog::HonourVoucher(const Principal& p,
                                                                 const v1::HonourVoucherRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {ROLE_PARTNER}));
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  ASSIGN_OR_RETURN(std::string code, NormaliseVoucherCode("voucher_code", r.voucher_code()));
  if (r.partner_id() != p.partner_id) {
    return absl::PermissionDeniedError("partner_id: must be the calling partner's own id");
  }
  RETURN_IF_ERROR(ValidateText("reference", r.reference(), 0, kMaxReferenceLength));
  // Look first: only an ISSUED voucher of this partner is captured. The
  // answer itself is decided (and remembered) below.
  std::optional<v1::Voucher> seen;
  RETURN_IF_ERROR(store_.Run("HonourVoucher.read", [&](CatalogTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(seen, tx.GetVoucher(code, false));
    return absl::OkStatus();
  }));
  // Codes are unguessable, so telling another partner that this one is not
  // theirs to honour reveals nothing useful (catalog.proto asks for
  // PERMISSION_DENIED here).
  if (seen.has_value() && seen->partner_id() != p.partner_id) {
    return absl::PermissionDeniedError("only the voucher's honouring partner may honour it");
  }
  std::optional<HoldOutcome> captured;
  absl::Status capture_refusal = absl::OkStatus();
  const std::string marker = RequestMarker(p, r);
  if (seen.has_value() && seen->partner_id() == p.partner_id && seen->state() == v1::VOUCHER_STATE_ISSUED &&
      FromProtoTime(seen->expires_at()) > Now()) {
    bool ours = false;
    RETURN_IF_ERROR(store_.Run("HonourVoucher.pending", [&](CatalogTx& tx) -> absl::Status {
      ASSIGN_OR_RETURN(ours, tx.StartVoucherOperation(code, kPendingHonour, Now(), marker));
      return absl::OkStatus();
    }));
    if (!ours) return VoucherBusy();
    absl::StatusOr<HoldOutcome> c = ledger_.Capture(CaptureKey(code), seen->hold_id(), r.reference());
    if (c.ok() && options_.crash_at) RETURN_IF_ERROR(options_.crash_at(SagaPoint::kVoucherLedgerDone));
    if (c.ok()) {
      captured = *c;
    } else if (absl::IsFailedPrecondition(c.status())) {
      capture_refusal = c.status();  // the hold was released meanwhile (cancel, expiry)
    } else {
      return c.status();  // unreachable: nothing changed, retry with the same key
    }
  }
  return Mutate<v1::HonourVoucherResponse>(
      p, "HonourVoucher", r.idempotency_key(), r, [&](CatalogTx& tx, v1::HonourVoucherResponse& out) -> absl::Status {
        const absl::Time now = Now();
        ASSIGN_OR_RETURN(std::optional<v1::Voucher> v, tx.GetVoucher(code, /*for_update=*/true));
        if (!v.has_value()) return VoucherNotFound();
        if (v->partner_id() != p.partner_id) {
          return absl::PermissionDeniedError("only the voucher's honouring partner may honour it");
        }
        if (v->state() == v1::VOUCHER_STATE_ISSUED && captured.has_value()) {
          v->set_state(v1::VOUCHER_STATE_HONOURED);
          *v->mutable_honoured_at() = ToProtoTime(now);
          v->set_capture_transfer_id(captured->closing_transfer_id);
          v->set_honour_reference(r.reference());
          RETURN_IF_ERROR(tx.UpdateVoucher(*v));
          RETURN_IF_ERROR(tx.ConsumeUnit(v->reward_id()));
          *out.mutable_voucher() = *std::move(v);
          return absl::OkStatus();
        }
        ASSIGN_OR_RETURN(bool finished_for_this_request, FinishedByRepair(tx, *v, v1::VOUCHER_STATE_HONOURED, marker));
        if (finished_for_this_request) {
          *out.mutable_voucher() = *std::move(v);
          return absl::OkStatus();
        }
        RETURN_IF_ERROR(VoucherClosedError(*v, now));
        if (!capture_refusal.ok()) {
          return absl::FailedPreconditionError(absl::StrCat("voucher is no longer valid: ", capture_refusal.message()));
        }
        return absl::AbortedError("voucher changed while honouring; retry with the same key");
      });
}

absl::StatusOr<HoldOutcome> Catalog::ReleaseHold(const v1::Voucher& voucher, const std::string& reason) {
  absl::StatusOr<HoldOutcome> voided = ledger_.Void(ReleaseKey(voucher.voucher_code()), voucher.hold_id(), reason);
  if (voided.ok()) return voided;
  if (!absl::IsFailedPrecondition(voided.status())) return voided.status();
  // Closed already (expired, or captured by an honour whose voucher update
  // did not land): the ledger's state is the truth.
  return ledger_.GetHold(voucher.hold_id());
}

absl::StatusOr<v1::CancelVoucherResponse> Catalog::CancelVoucher(const Principal& p,
                                                                 const v1::CancelVoucherRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {ROLE_PARTNER, ROLE_BACKOFFICE}));
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  ASSIGN_OR_RETURN(std::string code, NormaliseVoucherCode("voucher_code", r.voucher_code()));
  RETURN_IF_ERROR(ValidateText("reason", r.reason(), 0, kMaxReasonLength));
  std::optional<v1::Voucher> seen;
  RETURN_IF_ERROR(store_.Run("CancelVoucher.read", [&](CatalogTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(seen, tx.GetVoucher(code, false));
    return absl::OkStatus();
  }));
  std::optional<HoldOutcome> released;
  const std::string marker = RequestMarker(p, r);
  std::optional<int64_t> available_now;  // for the answer of a cancel the repair sweep finished
  if (seen.has_value() && VoucherVisible(p, *seen) && seen->state() == v1::VOUCHER_STATE_CANCELLED) {
    absl::StatusOr<int64_t> available = ledger_.AvailablePoints(seen->member_id());
    if (available.ok()) available_now = *available;
  }
  if (seen.has_value() && VoucherVisible(p, *seen) && seen->state() == v1::VOUCHER_STATE_ISSUED &&
      FromProtoTime(seen->expires_at()) > Now()) {
    bool ours = false;
    RETURN_IF_ERROR(store_.Run("CancelVoucher.pending", [&](CatalogTx& tx) -> absl::Status {
      ASSIGN_OR_RETURN(ours, tx.StartVoucherOperation(code, kPendingCancel, Now(), marker));
      return absl::OkStatus();
    }));
    if (!ours) return VoucherBusy();
    ASSIGN_OR_RETURN(HoldOutcome h, ReleaseHold(*seen, r.reason()));
    if (options_.crash_at) RETURN_IF_ERROR(options_.crash_at(SagaPoint::kVoucherLedgerDone));
    if (h.available_points < 0) {
      absl::StatusOr<int64_t> available = ledger_.AvailablePoints(seen->member_id());
      if (available.ok()) h.available_points = *available;
    }
    released = h;
  }
  return Mutate<v1::CancelVoucherResponse>(
      p, "CancelVoucher", r.idempotency_key(), r, [&](CatalogTx& tx, v1::CancelVoucherResponse& out) -> absl::Status {
        const absl::Time now = Now();
        ASSIGN_OR_RETURN(std::optional<v1::Voucher> v, tx.GetVoucher(code, /*for_update=*/true));
        if (!v.has_value() || !VoucherVisible(p, *v)) return VoucherNotFound();
        if (v->state() == v1::VOUCHER_STATE_ISSUED && released.has_value()) {
          if (released->state == ledger::v1::HOLD_STATE_CAPTURED) {
            return absl::FailedPreconditionError("voucher was honoured; it can no longer be cancelled");
          }
          if (released->state != ledger::v1::HOLD_STATE_VOIDED && released->state != ledger::v1::HOLD_STATE_EXPIRED) {
            return absl::InternalError("voucher hold still open after void");
          }
          ASSIGN_OR_RETURN(std::optional<v1::Reward> reward, tx.GetReward(v->reward_id(), false));
          v->set_state(v1::VOUCHER_STATE_CANCELLED);
          *v->mutable_cancelled_at() = ToProtoTime(now);
          v->set_cancel_reason(r.reason());
          RETURN_IF_ERROR(tx.UpdateVoucher(*v));
          RETURN_IF_ERROR(tx.ReleaseUnit(v->reward_id(), reward.has_value() && !reward->unlimited_stock()));
          *out.mutable_voucher() = *std::move(v);
          out.set_available_points(std::max<int64_t>(released->available_points, 0));
          return absl::OkStatus();
        }
        ASSIGN_OR_RETURN(bool finished_for_this_request, FinishedByRepair(tx, *v, v1::VOUCHER_STATE_CANCELLED, marker));
        if (finished_for_this_request) {
          if (!available_now.has_value()) return absl::UnavailableError("ledger unavailable; retry with the same key");
          *out.mutable_voucher() = *std::move(v);
          out.set_available_points(*available_now);
          return absl::OkStatus();
        }
        RETURN_IF_ERROR(VoucherClosedError(*v, now));
        return absl::AbortedError("voucher changed while cancelling; retry with the same key");
      });
}

absl::StatusOr<int> Catalog::ExpireVouchers(int max) {
  std::vector<std::string> codes;
  RETURN_IF_ERROR(store_.Run("ExpireVouchers.list", [&](CatalogTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(codes, tx.ListExpiredVouchers(Now(), max));
    return absl::OkStatus();
  }));
  int changed = 0;
  absl::Status first_failure;
  for (const std::string& code : codes) {
    std::optional<v1::Voucher> v;
    RETURN_IF_ERROR(store_.Run("ExpireVouchers.read", [&](CatalogTx& tx) -> absl::Status {
      ASSIGN_OR_RETURN(v, tx.GetVoucher(code, false));
      return absl::OkStatus();
    }));
    if (!v.has_value() || v->state() != v1::VOUCHER_STATE_ISSUED) continue;
    absl::StatusOr<HoldOutcome> hold = ReleaseHold(*v, "voucher expired");
    if (!hold.ok()) {
      if (first_failure.ok()) first_failure = hold.status();
      continue;
    }
    if (hold->state == ledger::v1::HOLD_STATE_PENDING) continue;  // not closed yet at the ledger; next pass
    ASSIGN_OR_RETURN(bool settled, SettleVoucher(code, *hold, v1::VOUCHER_STATE_EXPIRED, ""));
    if (!settled) continue;
    ++changed;
  }
  // The others were tried all the same; the caller logs the failure once.
  if (!first_failure.ok()) return first_failure;
  return changed;
}

absl::StatusOr<bool> Catalog::SettleVoucher(const std::string& code, const HoldOutcome& hold,
                                            v1::VoucherState released, const std::string& reason) {
  bool settled = false;
  RETURN_IF_ERROR(store_.Run("SettleVoucher", [&](CatalogTx& tx) -> absl::Status {
    settled = false;
    ASSIGN_OR_RETURN(std::optional<v1::Voucher> cur, tx.GetVoucher(code, /*for_update=*/true));
    if (!cur.has_value() || cur->state() != v1::VOUCHER_STATE_ISSUED) return absl::OkStatus();
    settled = true;
    if (hold.state == ledger::v1::HOLD_STATE_CAPTURED) {
      // Honoured at the ledger, but the honour's own update never landed.
      cur->set_state(v1::VOUCHER_STATE_HONOURED);
      *cur->mutable_honoured_at() = ToProtoTime(TruncateToMicros(hold.closed_at));
      cur->set_capture_transfer_id(hold.closing_transfer_id);
      RETURN_IF_ERROR(tx.UpdateVoucher(*cur));
      return tx.ConsumeUnit(cur->reward_id());
    }
    ASSIGN_OR_RETURN(std::optional<v1::Reward> reward, tx.GetReward(cur->reward_id(), false));
    cur->set_state(hold.state == ledger::v1::HOLD_STATE_EXPIRED ? v1::VOUCHER_STATE_EXPIRED : released);
    *cur->mutable_cancelled_at() = ToProtoTime(Now());
    cur->set_cancel_reason(reason);
    RETURN_IF_ERROR(tx.UpdateVoucher(*cur));
    return tx.ReleaseUnit(cur->reward_id(), reward.has_value() && !reward->unlimited_stock());
  }));
  return settled;
}

absl::StatusOr<int> Catalog::RepairVouchers(int max, bool everything) {
  const absl::Time before = everything ? absl::InfiniteFuture() : Now() - options_.saga_grace;
  std::vector<std::pair<std::string, int>> pending;
  RETURN_IF_ERROR(store_.Run("RepairVouchers.list", [&](CatalogTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(pending, tx.ListPendingVouchers(everything ? Now() + absl::Hours(1) : before, max));
    return absl::OkStatus();
  }));
  int repaired = 0;
  absl::Status first_failure;
  for (const auto& [code, op] : pending) {
    std::optional<v1::Voucher> v;
    RETURN_IF_ERROR(store_.Run("RepairVouchers.read", [&](CatalogTx& tx) -> absl::Status {
      ASSIGN_OR_RETURN(v, tx.GetVoucher(code, false));
      return absl::OkStatus();
    }));
    if (!v.has_value() || v->state() != v1::VOUCHER_STATE_ISSUED) continue;
    absl::StatusOr<HoldOutcome> hold = ledger_.GetHold(v->hold_id());
    if (hold.ok() && hold->state == ledger::v1::HOLD_STATE_PENDING && op == kPendingCancel) {
      hold = ReleaseHold(*v, "voucher cancelled");  // finish the cancel
    }
    if (!hold.ok()) {
      if (first_failure.ok()) first_failure = hold.status();
      continue;
    }
    if (hold->state == ledger::v1::HOLD_STATE_PENDING) {
      // The honour never reached the ledger: nothing to repair.
      RETURN_IF_ERROR(store_.Run("RepairVouchers.clear", [&](CatalogTx& tx) -> absl::Status {
        return tx.ClearVoucherOperation(code);
      }));
      ++repaired;
      continue;
    }
    ASSIGN_OR_RETURN(bool settled, SettleVoucher(code, *hold, v1::VOUCHER_STATE_CANCELLED, "repaired"));
    if (settled) ++repaired;
  }
  // The others were tried all the same; the caller logs the failure once.
  if (!first_failure.ok()) return first_failure;
  return repaired;
}

// ---- coupons --------------------------------------------------------------------------

absl::StatusOr<v1::CreateCouponBatchResponse> Catalog::CreateCouponBatch(const Principal& p,
                                                                         const v1::CreateCouponBatchRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {ROLE_BACKOFFICE}));
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  v1::CouponBatch b = r.coupon_batch();
  RETURN_IF_ERROR(ValidateId("coupon_batch.campaign_id", b.campaign_id()));
  RETURN_IF_ERROR(ValidateText("coupon_batch.name", b.name(), 1, kMaxNameLength));
  if (b.code_count() < 1 || b.code_count() > kMaxCouponCodes) {
    return absl::InvalidArgumentError("coupon_batch.code_count: must be 1..100000");
  }
  if (b.max_redemptions_per_code() < 1) {
    return absl::InvalidArgumentError("coupon_batch.max_redemptions_per_code: must be >= 1");
  }
  if (b.max_redemptions_per_member() < 1) {
    return absl::InvalidArgumentError("coupon_batch.max_redemptions_per_member: must be >= 1");
  }
  if (b.bonus_points() < 0 || b.bonus_points() > kMaxBonusPoints) {
    return absl::InvalidArgumentError("coupon_batch.bonus_points: must be >= 0");
  }
  if (!b.funding_partner_id().empty()) {
    RETURN_IF_ERROR(ValidateId("coupon_batch.funding_partner_id", b.funding_partner_id()));
  }
  for (int i = 0; i < b.partner_ids_size(); ++i) {
    RETURN_IF_ERROR(ValidateId(absl::StrCat("coupon_batch.partner_ids[", i, "]"), b.partner_ids(i)));
  }
  if (b.has_valid_from() && b.has_valid_until() && FromProtoTime(b.valid_until()) <= FromProtoTime(b.valid_from())) {
    return absl::InvalidArgumentError("coupon_batch.valid_until: must be after valid_from");
  }
  ASSIGN_OR_RETURN(std::string prefix, NormaliseCouponPrefix("coupon_batch.code_prefix", b.code_prefix()));
  b.set_code_prefix(prefix);
  return Mutate<v1::CreateCouponBatchResponse>(
      p, "CreateCouponBatch", r.idempotency_key(), r,
      [&](CatalogTx& tx, v1::CreateCouponBatchResponse& out) -> absl::Status {
        ASSIGN_OR_RETURN(std::optional<v1::Campaign> campaign, tx.GetCampaign(b.campaign_id(), false));
        if (!campaign.has_value()) return CampaignNotFound(b.campaign_id());
        if (campaign->state() == v1::CAMPAIGN_STATE_ENDED) {
          return absl::FailedPreconditionError(absl::StrCat("campaign ", b.campaign_id(), " has ended"));
        }
        v1::CouponBatch batch = b;
        batch.set_coupon_batch_id(crypto::NewOpaqueId("cb"));
        if (!batch.has_valid_until() && campaign->has_end_time()) *batch.mutable_valid_until() = campaign->end_time();
        *batch.mutable_created_at() = ToProtoTime(Now());
        batch.set_redemption_count(0);
        absl::flat_hash_set<std::string> codes;
        codes.reserve(batch.code_count());
        while (static_cast<int>(codes.size()) < batch.code_count()) codes.insert(NewCouponCode(prefix));
        std::vector<std::string> sorted(codes.begin(), codes.end());
        std::sort(sorted.begin(), sorted.end());
        RETURN_IF_ERROR(tx.InsertCouponBatch(batch, sorted));
        *out.mutable_coupon_batch() = std::move(batch);
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::GetCouponBatchResponse> Catalog::GetCouponBatch(const Principal& p,
                                                                   const v1::GetCouponBatchRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {ROLE_BACKOFFICE}));
  RETURN_IF_ERROR(ValidateId("coupon_batch_id", r.coupon_batch_id()));
  v1::GetCouponBatchResponse out;
  RETURN_IF_ERROR(store_.Run("GetCouponBatch", [&](CatalogTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(std::optional<v1::CouponBatch> b, tx.GetCouponBatch(r.coupon_batch_id()));
    if (!b.has_value()) return absl::NotFoundError(absl::StrCat("coupon batch ", r.coupon_batch_id(), " not found"));
    *out.mutable_coupon_batch() = *std::move(b);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::ListCouponCodesResponse> Catalog::ListCouponCodes(const Principal& p,
                                                                     const v1::ListCouponCodesRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {ROLE_BACKOFFICE}));
  RETURN_IF_ERROR(ValidateId("coupon_batch_id", r.coupon_batch_id()));
  ASSIGN_OR_RETURN(int limit, paging::PageSize(r.page_size(), kCouponCodesPageDefault, kCouponCodesPageMax));
  const std::string scope = absl::StrCat("coupon_codes|", r.coupon_batch_id());
  ASSIGN_OR_RETURN(std::string after, KeyCursor(r.page_token(), scope));
  v1::ListCouponCodesResponse out;
  RETURN_IF_ERROR(store_.Run("ListCouponCodes", [&](CatalogTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(std::optional<v1::CouponBatch> b, tx.GetCouponBatch(r.coupon_batch_id()));
    if (!b.has_value()) return absl::NotFoundError(absl::StrCat("coupon batch ", r.coupon_batch_id(), " not found"));
    ASSIGN_OR_RETURN(std::vector<v1::CouponCode> codes, tx.ListCouponCodes(r.coupon_batch_id(), after, limit + 1));
    const bool more = static_cast<int>(codes.size()) > limit;
    if (more) codes.resize(limit);
    for (auto& c : codes) *out.add_codes() = std::move(c);
    if (more) out.set_next_page_token(paging::EncodeKeyPageToken(scope, out.codes().rbegin()->code()));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::ValidateCouponResponse> Catalog::ValidateCoupon(const Principal& p,
                                                                   const v1::ValidateCouponRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {ROLE_PARTNER, ROLE_BACKOFFICE}));
  if (p.is_partner() && r.partner_id() != p.partner_id) {
    return absl::PermissionDeniedError("partner_id: must be the calling partner's own id");
  }
  ASSIGN_OR_RETURN(std::string code, NormaliseCouponCode("code", r.code()));
  if (!r.member_id().empty()) RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  if (!r.partner_id().empty()) RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  v1::ValidateCouponResponse out;
  RETURN_IF_ERROR(store_.Run("ValidateCoupon", [&](CatalogTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(auto row, tx.GetCouponCode(code, false));
    if (!row.has_value()) return CouponNotFound();
    ASSIGN_OR_RETURN(std::optional<v1::CouponBatch> b, tx.GetCouponBatch(row->first));
    if (!b.has_value()) return CouponNotFound();
    ASSIGN_OR_RETURN(std::optional<v1::Campaign> campaign, tx.GetCampaign(b->campaign_id(), false));
    int member_uses = 0;
    if (!r.member_id().empty()) {
      ASSIGN_OR_RETURN(member_uses, tx.MemberCouponUses(row->first, r.member_id()));
    }
    RETURN_IF_ERROR(CheckCoupon(*b, campaign, row->second, member_uses, r.partner_id(), Now()));
    out.set_code_remaining_redemptions(b->max_redemptions_per_code() - row->second);
    out.set_member_remaining_redemptions(r.member_id().empty() ? 0 : b->max_redemptions_per_member() - member_uses);
    *out.mutable_coupon_batch() = *std::move(b);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::RedeemCouponResponse> Catalog::RedeemCoupon(const Principal& p,
                                                               const v1::RedeemCouponRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {ROLE_PARTNER, ROLE_BACKOFFICE}));
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  if (p.is_partner() && r.partner_id() != p.partner_id) {
    return absl::PermissionDeniedError("partner_id: must be the calling partner's own id");
  }
  ASSIGN_OR_RETURN(std::string code, NormaliseCouponCode("code", r.code()));
  RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  ASSIGN_OR_RETURN(
      v1::RedeemCouponResponse out,
      Mutate<v1::RedeemCouponResponse>(
          p, "RedeemCoupon", r.idempotency_key(), r,
          [&](CatalogTx& tx, v1::RedeemCouponResponse& resp) -> absl::Status {
            const absl::Time now = Now();
            // The code row lock serializes uses of one code; the member's
            // count row is taken by the counting upsert below.
            ASSIGN_OR_RETURN(auto row, tx.GetCouponCode(code, /*for_update=*/true));
            if (!row.has_value()) return CouponNotFound();
            ASSIGN_OR_RETURN(std::optional<v1::CouponBatch> b, tx.GetCouponBatch(row->first));
            if (!b.has_value()) return CouponNotFound();
            ASSIGN_OR_RETURN(std::optional<v1::Campaign> campaign, tx.GetCampaign(b->campaign_id(), false));
            ASSIGN_OR_RETURN(int member_uses, tx.MemberCouponUses(row->first, r.member_id()));
            RETURN_IF_ERROR(CheckCoupon(*b, campaign, row->second, member_uses, r.partner_id(), now));
            ASSIGN_OR_RETURN(auto counts, tx.CountCouponUse(row->first, code, r.member_id()));
            // Exact under concurrency: a count past a limit rolls back.
            if (counts.first > b->max_redemptions_per_code()) return absl::FailedPreconditionError("coupon code exhausted");
            if (counts.second > b->max_redemptions_per_member()) {
              return absl::FailedPreconditionError("member limit reached for this coupon batch");
            }
            CouponUse use;
            v1::CouponRedemption& red = use.redemption;
            red.set_coupon_redemption_id(crypto::NewOpaqueId("cr"));
            red.set_code(code);
            red.set_coupon_batch_id(row->first);
            red.set_campaign_id(b->campaign_id());
            red.set_member_id(r.member_id());
            red.set_partner_id(r.partner_id());
            red.set_bonus_points(b->bonus_points());
            *red.mutable_redeemed_at() = ToProtoTime(now);
            use.funding_partner_id = b->funding_partner_id();
            use.grant_state = b->bonus_points() > 0 ? 1 : 0;
            use.scope = p.idempotency_scope();
            use.key = r.idempotency_key();
            RETURN_IF_ERROR(tx.InsertCouponUse(use));
            *resp.mutable_redemption() = red;
            resp.set_code_remaining_redemptions(b->max_redemptions_per_code() - counts.first);
            resp.set_member_remaining_redemptions(b->max_redemptions_per_member() - counts.second);
            return absl::OkStatus();
          }));
  if (out.redemption().bonus_points() > 0) {
    ASSIGN_OR_RETURN(std::string transfer_id, SettleCouponGrant(out.redemption().coupon_redemption_id()));
    out.mutable_redemption()->set_transfer_id(transfer_id);
  }
  return out;
}

absl::StatusOr<std::string> Catalog::SettleCouponGrant(const std::string& redemption_id) {
  std::optional<CouponUse> use;
  RETURN_IF_ERROR(store_.Run("CouponGrant.read", [&](CatalogTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(use, tx.GetCouponUse(redemption_id));
    return absl::OkStatus();
  }));
  if (!use.has_value()) return absl::InternalError("coupon redemption missing");
  if (use->grant_state == 2) return use->redemption.transfer_id();
  if (use->grant_state == 3) return absl::FailedPreconditionError("the ledger refused this coupon's bonus");
  const v1::CouponRedemption& red = use->redemption;
  absl::StatusOr<std::string> granted =
      ledger_.GrantBonus(absl::StrCat("catalog:coupon:", redemption_id), red.member_id(), red.bonus_points(),
                         use->funding_partner_id, absl::StrCat("coupon ", red.code()), redemption_id);
  if (granted.ok()) {
    RETURN_IF_ERROR(store_.Run("CouponGrant.done", [&](CatalogTx& tx) -> absl::Status {
      return tx.SetCouponGrant(redemption_id, 2, *granted);
    }));
    return *granted;
  }
  if (!ShouldRemember(granted.status()) && !absl::IsInvalidArgument(granted.status())) return granted.status();
  // Refused (member suspended, funding partner inactive...): give the use
  // back, and make the refusal the answer for the key that redeemed it.
  const absl::Status refusal = granted.status();
  RETURN_IF_ERROR(store_.Run("CouponGrant.refused", [&](CatalogTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(std::optional<CouponUse> cur, tx.GetCouponUse(redemption_id));
    if (!cur.has_value() || cur->grant_state != 1) return absl::OkStatus();
    RETURN_IF_ERROR(tx.UncountCouponUse(red.coupon_batch_id(), red.code(), red.member_id()));
    RETURN_IF_ERROR(tx.SetCouponGrant(redemption_id, 3, ""));
    IdempotencyRecord record;
    record.scope = cur->scope;
    record.key = cur->key;
    record.method = "RedeemCoupon";
    record.status_code = static_cast<int>(refusal.code());
    record.status_message = std::string(refusal.message());
    return tx.SaveOutcome(record);
  }));
  return refusal;
}

absl::StatusOr<int> Catalog::GrantDueCouponBonuses(int max) {
  std::vector<std::string> due;
  RETURN_IF_ERROR(store_.Run("CouponGrant.due", [&](CatalogTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(due, tx.ListDueCouponGrants(max));
    return absl::OkStatus();
  }));
  int settled = 0;
  absl::Status first_failure;
  for (const std::string& id : due) {
    absl::StatusOr<std::string> s = SettleCouponGrant(id);
    if (s.ok() || absl::IsFailedPrecondition(s.status()) || absl::IsNotFound(s.status())) {
      ++settled;
    } else if (first_failure.ok()) {
      first_failure = s.status();
    }
  }
  // The others were tried all the same; the caller logs the failure once.
  if (!first_failure.ok()) return first_failure;
  return settled;
}

// ---- campaigns ------------------------------------------------------------------------

absl::StatusOr<v1::CreateCampaignResponse> Catalog::CreateCampaign(const Principal& p,
                                                                   const v1::CreateCampaignRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {ROLE_BACKOFFICE}));
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  RETURN_IF_ERROR(ValidateCampaign("campaign.", r.campaign()));
  return Mutate<v1::CreateCampaignResponse>(
      p, "CreateCampaign", r.idempotency_key(), r, [&](CatalogTx& tx, v1::CreateCampaignResponse& out) -> absl::Status {
        const absl::Time now = Now();
        v1::Campaign c = r.campaign();
        c.set_campaign_id(crypto::NewOpaqueId("cp"));
        c.set_state(v1::CAMPAIGN_STATE_DRAFT);
        c.set_budget_allocated_points(0);
        c.set_budget_remaining_points(c.budget_points());
        *c.mutable_created_at() = ToProtoTime(now);
        *c.mutable_updated_at() = ToProtoTime(now);
        c.set_version(1);
        RETURN_IF_ERROR(tx.InsertCampaign(c));
        *out.mutable_campaign() = std::move(c);
        return absl::OkStatus();
      },
      [&] { return CheckCampaignReferences(r.campaign(), nullptr); });
}

absl::StatusOr<v1::UpdateCampaignResponse> Catalog::UpdateCampaign(const Principal& p,
                                                                   const v1::UpdateCampaignRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {ROLE_BACKOFFICE}));
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  RETURN_IF_ERROR(ValidateId("campaign_id", r.campaign_id()));
  RETURN_IF_ERROR(ValidateCampaignMask(r.update_mask()));
  if (r.expected_version() < 0) return absl::InvalidArgumentError("expected_version: must be >= 0");
  return Mutate<v1::UpdateCampaignResponse>(
      p, "UpdateCampaign", r.idempotency_key(), r, [&](CatalogTx& tx, v1::UpdateCampaignResponse& out) -> absl::Status {
        ASSIGN_OR_RETURN(std::optional<v1::Campaign> cur, tx.GetCampaign(r.campaign_id(), /*for_update=*/true));
        if (!cur.has_value()) return CampaignNotFound(r.campaign_id());
        if (cur->state() == v1::CAMPAIGN_STATE_ENDED) {
          return absl::FailedPreconditionError(absl::StrCat("campaign ", r.campaign_id(), " has ended"));
        }
        if (r.expected_version() != 0 && r.expected_version() != cur->version()) {
          return absl::AbortedError(absl::StrCat("campaign changed: version is ", cur->version(), ", expected ",
                                                 r.expected_version()));
        }
        v1::Campaign next = *cur;
        ApplyCampaignMask(r.update_mask(), r.campaign(), next);
        RETURN_IF_ERROR(ValidateCampaign("campaign.", next));
        if (next.budget_points() > 0 && next.budget_points() < cur->budget_allocated_points()) {
          return absl::FailedPreconditionError(absl::StrCat("budget_points below what is already allocated (",
                                                            cur->budget_allocated_points(), ")"));
        }
        if (cur->budget_points() > 0 && next.budget_points() == 0 && cur->budget_allocated_points() > 0) {
          return absl::FailedPreconditionError("a campaign with leased budget cannot become unlimited");
        }
        next.set_version(cur->version() + 1);
        *next.mutable_updated_at() = ToProtoTime(Now());
        next.set_budget_remaining_points(next.budget_points() > 0
                                             ? next.budget_points() - next.budget_allocated_points()
                                             : 0);
        RETURN_IF_ERROR(tx.UpdateCampaign(next));
        if (next.state() == v1::CAMPAIGN_STATE_ACTIVE) RETURN_IF_ERROR(tx.EarnRulesVersion(/*bump=*/true).status());
        *out.mutable_campaign() = std::move(next);
        return absl::OkStatus();
      },
      [&] { return CheckCampaignReferences(r.campaign(), &r.update_mask().paths()); });
}

absl::StatusOr<v1::SetCampaignStateResponse> Catalog::SetCampaignState(const Principal& p,
                                                                       const v1::SetCampaignStateRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {ROLE_BACKOFFICE}));
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  RETURN_IF_ERROR(ValidateId("campaign_id", r.campaign_id()));
  RETURN_IF_ERROR(ValidateEnum("state", r.state(), v1::CampaignState_IsValid, /*required=*/true));
  RETURN_IF_ERROR(ValidateText("reason", r.reason(), 0, kMaxReasonLength));
  return Mutate<v1::SetCampaignStateResponse>(
      p, "SetCampaignState", r.idempotency_key(), r,
      [&](CatalogTx& tx, v1::SetCampaignStateResponse& out) -> absl::Status {
        ASSIGN_OR_RETURN(std::optional<v1::Campaign> cur, tx.GetCampaign(r.campaign_id(), /*for_update=*/true));
        if (!cur.has_value()) return CampaignNotFound(r.campaign_id());
        const v1::CampaignState from = cur->state(), to = r.state();
        const bool allowed = (from == v1::CAMPAIGN_STATE_DRAFT && to == v1::CAMPAIGN_STATE_ACTIVE) ||
                             (from == v1::CAMPAIGN_STATE_ACTIVE && to == v1::CAMPAIGN_STATE_PAUSED) ||
                             (from == v1::CAMPAIGN_STATE_PAUSED && to == v1::CAMPAIGN_STATE_ACTIVE) ||
                             (from != v1::CAMPAIGN_STATE_ENDED && to == v1::CAMPAIGN_STATE_ENDED);
        if (!allowed) {
          return absl::FailedPreconditionError(absl::StrCat("campaign state ", v1::CampaignState_Name(from),
                                                            " cannot become ", v1::CampaignState_Name(to)));
        }
        cur->set_state(to);
        cur->set_version(cur->version() + 1);
        *cur->mutable_updated_at() = ToProtoTime(Now());
        RETURN_IF_ERROR(tx.UpdateCampaign(*cur));
        RETURN_IF_ERROR(tx.EarnRulesVersion(/*bump=*/true).status());
        *out.mutable_campaign() = *std::move(cur);
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::GetCampaignResponse> Catalog::GetCampaign(const Principal& p, const v1::GetCampaignRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {ROLE_PARTNER, ROLE_BACKOFFICE, ROLE_SERVICE}));
  RETURN_IF_ERROR(ValidateId("campaign_id", r.campaign_id()));
  v1::GetCampaignResponse out;
  RETURN_IF_ERROR(store_.Run("GetCampaign", [&](CatalogTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(std::optional<v1::Campaign> c, tx.GetCampaign(r.campaign_id(), false));
    if (!c.has_value() || !CampaignOpenTo(p, *c)) return CampaignNotFound(r.campaign_id());
    *out.mutable_campaign() = *std::move(c);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::ListCampaignsResponse> Catalog::ListCampaigns(const Principal& p,
                                                                 const v1::ListCampaignsRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {ROLE_PARTNER, ROLE_BACKOFFICE, ROLE_SERVICE}));
  if (!r.partner_id().empty()) RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  if (p.is_partner() && !r.partner_id().empty() && r.partner_id() != p.partner_id) {
    return absl::PermissionDeniedError("partner_id: a partner may only list campaigns open to itself");
  }
  ASSIGN_OR_RETURN(int limit, paging::PageSize(r.page_size(), kCampaignsPageDefault, kCampaignsPageMax));
  CampaignFilter filter;
  filter.partner_id = p.is_partner() ? p.partner_id : r.partner_id();
  std::string scope = absl::StrCat("campaigns|", filter.partner_id);
  for (int s : r.states()) {
    filter.states.push_back(static_cast<v1::CampaignState>(s));
    absl::StrAppend(&scope, "|", s);
  }
  ASSIGN_OR_RETURN(filter.after_campaign_id, KeyCursor(r.page_token(), scope));
  v1::ListCampaignsResponse out;
  RETURN_IF_ERROR(store_.Run("ListCampaigns", [&](CatalogTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(std::vector<v1::Campaign> rows, tx.ListCampaigns(filter, limit + 1));
    const bool more = static_cast<int>(rows.size()) > limit;
    if (more) rows.resize(limit);
    for (auto& c : rows) *out.add_campaigns() = std::move(c);
    if (more) out.set_next_page_token(paging::EncodeKeyPageToken(scope, out.campaigns().rbegin()->campaign_id()));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::GetActiveEarnRulesResponse> Catalog::GetActiveEarnRules(const Principal& p,
                                                                          const v1::GetActiveEarnRulesRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {ROLE_BACKOFFICE, ROLE_SERVICE}));
  if (r.known_version() < 0) return absl::InvalidArgumentError("known_version: must be >= 0");
  v1::GetActiveEarnRulesResponse out;
  // One transaction: the version and the rules come from the same snapshot.
  RETURN_IF_ERROR(store_.Run("GetActiveEarnRules", [&](CatalogTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(int64_t version, tx.EarnRulesVersion(/*bump=*/false));
    out.set_version(version);
    if (version <= r.known_version()) {
      out.set_not_modified(true);
      return absl::OkStatus();
    }
    ASSIGN_OR_RETURN(std::vector<v1::Campaign> rules, tx.ListEarnRules(Now()));
    for (auto& c : rules) {
      // Budget figures are informational, not part of the versioned rules.
      c.clear_budget_allocated_points();
      c.clear_budget_remaining_points();
      *out.add_campaigns() = std::move(c);
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::LeaseCampaignBudgetResponse> Catalog::LeaseCampaignBudget(
    const Principal& p, const v1::LeaseCampaignBudgetRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {ROLE_SERVICE}));
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  RETURN_IF_ERROR(ValidateId("campaign_id", r.campaign_id()));
  if (r.requested_points() < 1 || r.requested_points() > kMaxLeasePoints) {
    return absl::InvalidArgumentError("requested_points: must be 1..1000000");
  }
  RETURN_IF_ERROR(ValidateText("holder", r.holder(), 1, kMaxHolderLength));
  return Mutate<v1::LeaseCampaignBudgetResponse>(
      p, "LeaseCampaignBudget", r.idempotency_key(), r,
      [&](CatalogTx& tx, v1::LeaseCampaignBudgetResponse& out) -> absl::Status {
        ASSIGN_OR_RETURN(std::optional<v1::Campaign> c, tx.GetCampaign(r.campaign_id(), /*for_update=*/true));
        if (!c.has_value()) return CampaignNotFound(r.campaign_id());
        if (c->state() != v1::CAMPAIGN_STATE_ACTIVE) {
          return absl::FailedPreconditionError(absl::StrCat("campaign ", r.campaign_id(), " is not active"));
        }
        if (c->budget_points() == 0) return absl::FailedPreconditionError("campaign budget is unlimited");
        const int64_t remaining = c->budget_points() - c->budget_allocated_points();
        if (remaining <= 0) return absl::FailedPreconditionError("campaign budget exhausted");
        const int64_t granted = std::min(remaining, r.requested_points());
        // Conditional: never above the budget, whatever else runs.
        ASSIGN_OR_RETURN(bool allocated, tx.AllocateBudget(r.campaign_id(), granted));
        if (!allocated) return absl::AbortedError("campaign budget changed; retry");
        v1::CampaignBudgetLease lease;
        lease.set_campaign_budget_lease_id(crypto::NewOpaqueId("bl"));
        lease.set_campaign_id(r.campaign_id());
        lease.set_holder(r.holder());
        lease.set_granted_points(granted);
        *lease.mutable_created_at() = ToProtoTime(Now());
        RETURN_IF_ERROR(tx.InsertLease(lease));
        *out.mutable_lease() = std::move(lease);
        out.set_budget_remaining_points(remaining - granted);
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::ReturnCampaignBudgetResponse> Catalog::ReturnCampaignBudget(
    const Principal& p, const v1::ReturnCampaignBudgetRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {ROLE_SERVICE}));
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  RETURN_IF_ERROR(ValidateId("campaign_budget_lease_id", r.campaign_budget_lease_id()));
  if (r.used_points() < 0) return absl::InvalidArgumentError("used_points: must be >= 0");
  if (r.unused_points() < 0) return absl::InvalidArgumentError("unused_points: must be >= 0");
  return Mutate<v1::ReturnCampaignBudgetResponse>(
      p, "ReturnCampaignBudget", r.idempotency_key(), r,
      [&](CatalogTx& tx, v1::ReturnCampaignBudgetResponse& out) -> absl::Status {
        ASSIGN_OR_RETURN(std::optional<v1::CampaignBudgetLease> lease, tx.GetLease(r.campaign_budget_lease_id()));
        if (!lease.has_value()) {
          return absl::NotFoundError(absl::StrCat("lease ", r.campaign_budget_lease_id(), " not found"));
        }
        if (lease->has_closed_at()) return absl::FailedPreconditionError("lease already closed");
        if (r.used_points() + r.unused_points() != lease->granted_points()) {
          return absl::InvalidArgumentError(
              absl::StrCat("used_points + unused_points: must equal granted_points (", lease->granted_points(), ")"));
        }
        ASSIGN_OR_RETURN(std::optional<v1::Campaign> c, tx.GetCampaign(lease->campaign_id(), /*for_update=*/true));
        if (!c.has_value()) return CampaignNotFound(lease->campaign_id());
        if (r.unused_points() > 0) RETURN_IF_ERROR(tx.ReleaseBudget(lease->campaign_id(), r.unused_points()));
        *lease->mutable_closed_at() = ToProtoTime(Now());
        lease->set_used_points(r.used_points());
        lease->set_returned_points(r.unused_points());
        RETURN_IF_ERROR(tx.CloseLease(*lease));
        *out.mutable_lease() = *std::move(lease);
        out.set_budget_remaining_points(c->budget_points() - c->budget_allocated_points() + r.unused_points());
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::QuoteEarnResponse> Catalog::QuoteEarn(const Principal& p, const v1::QuoteEarnRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {ROLE_PARTNER, ROLE_BACKOFFICE}));
  if (p.is_partner() && r.partner_id() != p.partner_id) {
    return absl::PermissionDeniedError("partner_id: must be the calling partner's own id");
  }
  RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  // The two requests have the same fields and numbers (catalog.proto).
  ledger::v1::QuoteEarnRequest request;
  if (!request.ParseFromString(r.SerializeAsString())) return absl::InternalError("QuoteEarn request mapping");
  ASSIGN_OR_RETURN(ledger::v1::QuoteEarnResponse quoted, ledger_.QuoteEarn(request));
  v1::QuoteEarnResponse out;
  if (!out.ParseFromString(quoted.SerializeAsString())) return absl::InternalError("QuoteEarn response mapping");
  return out;
}

}  // namespace loyalty::catalog
