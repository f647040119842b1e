#include "services/catalog/coupons.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/random.h"
#include "common/idempotency/idempotency.h"
#include "common/paging/page_token.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "common/validation/ids.h"
#include "common/validation/text.h"
#include "services/catalog/catalog_shared.h"
#include "services/catalog/codes.h"
#include "services/catalog/validation.h"

namespace loyalty::catalog {
namespace {

constexpr int kMaxCouponCodes = 100'000;
constexpr int kCouponCodesPageDefault = 1000;
constexpr int kCouponCodesPageMax = 5000;


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

absl::StatusOr<v1::CreateCouponBatchResponse> Coupons::CreateCouponBatch(const Principal& p,
                                                                         const v1::CreateCouponBatchRequest& r) {
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
      deps_, p, "CreateCouponBatch", r.idempotency_key(), r,
      [&](CatalogTx& tx, v1::CreateCouponBatchResponse& out) -> absl::Status {
        ASSIGN_OR_RETURN(std::optional<v1::Campaign> campaign, tx.GetCampaign(b.campaign_id(), false));
        if (!campaign.has_value()) return CampaignNotFound(b.campaign_id());
        if (campaign->state() == v1::CAMPAIGN_STATE_ENDED) {
          return absl::FailedPreconditionError(absl::StrCat("campaign ", b.campaign_id(), " has ended"));
        }
        v1::CouponBatch batch = b;
        batch.set_coupon_batch_id(crypto::NewOpaqueId("cb"));
        if (!batch.has_valid_until() && campaign->has_end_time()) *batch.mutable_valid_until() = campaign->end_time();
        *batch.mutable_created_at() = ToProtoTime(deps_.Now());
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

absl::StatusOr<v1::GetCouponBatchResponse> Coupons::GetCouponBatch(const Principal& /*p*/,
                                                                   const v1::GetCouponBatchRequest& r) {
  RETURN_IF_ERROR(ValidateId("coupon_batch_id", r.coupon_batch_id()));
  v1::GetCouponBatchResponse out;
  RETURN_IF_ERROR(deps_.store.Run("GetCouponBatch", [&](CatalogTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(std::optional<v1::CouponBatch> b, tx.GetCouponBatch(r.coupon_batch_id()));
    if (!b.has_value()) return absl::NotFoundError(absl::StrCat("coupon batch ", r.coupon_batch_id(), " not found"));
    *out.mutable_coupon_batch() = *std::move(b);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::ListCouponCodesResponse> Coupons::ListCouponCodes(const Principal& /*p*/,
                                                                     const v1::ListCouponCodesRequest& r) {
  RETURN_IF_ERROR(ValidateId("coupon_batch_id", r.coupon_batch_id()));
  ASSIGN_OR_RETURN(int limit, paging::PageSize(r.page_size(), kCouponCodesPageDefault, kCouponCodesPageMax));
  const std::string scope = absl::StrCat("coupon_codes|", r.coupon_batch_id());
  ASSIGN_OR_RETURN(std::string after, KeyCursor(r.page_token(), scope));
  v1::ListCouponCodesResponse out;
  RETURN_IF_ERROR(deps_.store.Run("ListCouponCodes", [&](CatalogTx& tx) -> absl::Status {
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

absl::StatusOr<v1::ValidateCouponResponse> Coupons::ValidateCoupon(const Principal& p,
                                                                   const v1::ValidateCouponRequest& r) {
  if (p.is_partner() && r.partner_id() != p.partner_id) {
    return absl::PermissionDeniedError("partner_id: must be the calling partner's own id");
  }
  ASSIGN_OR_RETURN(std::string code, NormaliseCouponCode("code", r.code()));
  if (!r.member_id().empty()) RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  if (!r.partner_id().empty()) RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  v1::ValidateCouponResponse out;
  RETURN_IF_ERROR(deps_.store.Run("ValidateCoupon", [&](CatalogTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(auto row, tx.GetCouponCode(code, false));
    if (!row.has_value()) return CouponNotFound();
    ASSIGN_OR_RETURN(std::optional<v1::CouponBatch> b, tx.GetCouponBatch(row->first));
    if (!b.has_value()) return CouponNotFound();
    ASSIGN_OR_RETURN(std::optional<v1::Campaign> campaign, tx.GetCampaign(b->campaign_id(), false));
    int member_uses = 0;
    if (!r.member_id().empty()) {
      ASSIGN_OR_RETURN(member_uses, tx.MemberCouponUses(row->first, r.member_id()));
    }
    RETURN_IF_ERROR(CheckCoupon(*b, campaign, row->second, member_uses, r.partner_id(), deps_.Now()));
    out.set_code_remaining_redemptions(b->max_redemptions_per_code() - row->second);
    out.set_member_remaining_redemptions(r.member_id().empty() ? 0 : b->max_redemptions_per_member() - member_uses);
    *out.mutable_coupon_batch() = *std::move(b);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::RedeemCouponResponse> Coupons::RedeemCoupon(const Principal& p, const v1::RedeemCouponRequest& r) {
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  if (p.is_partner() && r.partner_id() != p.partner_id) {
    return absl::PermissionDeniedError("partner_id: must be the calling partner's own id");
  }
  ASSIGN_OR_RETURN(std::string code, NormaliseCouponCode("code", r.code()));
  RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  const MutateBody<v1::RedeemCouponResponse> count_use = [&](CatalogTx& tx, v1::RedeemCouponResponse& resp) {
    return CountUse(tx, p, r, code, resp);
  };
  ASSIGN_OR_RETURN(v1::RedeemCouponResponse out,
                   Mutate<v1::RedeemCouponResponse>(deps_, p, "RedeemCoupon", r.idempotency_key(), r, count_use));
  if (out.redemption().bonus_points() > 0) {
    ASSIGN_OR_RETURN(std::string transfer_id, SettleCouponGrant(out.redemption().coupon_redemption_id()));
    out.mutable_redemption()->set_transfer_id(transfer_id);
  }
  return out;
}

absl::Status Coupons::CountUse(CatalogTx& tx, const Principal& p, const v1::RedeemCouponRequest& r,
                               const std::string& code, v1::RedeemCouponResponse& resp) {
  const absl::Time now = deps_.Now();
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
}

absl::StatusOr<std::string> Coupons::SettleCouponGrant(const std::string& redemption_id) {
  std::optional<CouponUse> use;
  RETURN_IF_ERROR(deps_.store.Run("CouponGrant.read", [&](CatalogTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(use, tx.GetCouponUse(redemption_id));
    return absl::OkStatus();
  }));
  if (!use.has_value()) return absl::InternalError("coupon redemption missing");
  if (use->grant_state == 2) return use->redemption.transfer_id();
  if (use->grant_state == 3) return absl::FailedPreconditionError("the ledger refused this coupon's bonus");
  const v1::CouponRedemption& red = use->redemption;
  absl::StatusOr<std::string> granted =
      deps_.ledger.GrantBonus(absl::StrCat("catalog:coupon:", redemption_id), red.member_id(), red.bonus_points(),
                              use->funding_partner_id, absl::StrCat("coupon ", red.code()), redemption_id);
  if (granted.ok()) {
    RETURN_IF_ERROR(deps_.store.Run("CouponGrant.done", [&](CatalogTx& tx) -> absl::Status {
      return tx.SetCouponGrant(redemption_id, 2, *granted);
    }));
    return *granted;
  }
  if (!idempotency::ShouldRemember(granted.status()) && !absl::IsInvalidArgument(granted.status())) {
    return granted.status();
  }
  // Refused (member suspended, funding partner inactive...): give the use
  // back, and make the refusal the answer for the key that redeemed it.
  const absl::Status refusal = granted.status();
  RETURN_IF_ERROR(deps_.store.Run("CouponGrant.refused", [&](CatalogTx& tx) -> absl::Status {
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

}  // namespace loyalty::catalog
