#pragma once
// What the catalog domain needs from storage, as a unit of work: the domain
// runs a body against a CatalogTx, and the store commits it atomically
// (retrying deadlocks) or rolls it back. All SQL lives in
// mysql_catalog_store.cc.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "loyalty/catalog/v1/catalog.pb.h"
#include "common/idempotency/idempotency.h"

namespace loyalty::catalog {

namespace v1 = ::loyalty::catalog::v1;

// A remembered answer to an idempotent request.
using IdempotencyRecord = idempotency::Record;

// The state of a Redeem saga (redemptions.state).
enum class SagaState { kStarted = 1, kCompleted = 2, kCompensating = 3, kFailed = 4 };

struct Redemption {
  std::string redemption_id;
  std::string scope;
  std::string key;
  std::string fingerprint;
  std::string request;
  std::string member_id;
  std::string reward_id;
  std::string partner_id;  // honouring partner (the hold's partner)
  std::string channel_partner_id;
  int64_t points = 0;
  int64_t hold_ttl_seconds = 0;
  int attempt = 1;
  SagaState state = SagaState::kStarted;
  std::string hold_id;
  std::string voucher_code;
  int status_code = 0;
  std::string status_message;
  std::string response;  // serialized RedeemResponse when COMPLETED
  absl::Time created_at;
  absl::Time updated_at;
};

struct RewardFilter {
  std::vector<v1::RewardState> states;  // empty = all
  std::string partner_id;
  std::string category;
  // Partner visibility: ACTIVE/PAUSED, or honoured/proposed by this partner.
  std::string visible_to_partner_id;
  std::string after_reward_id;
};

// Rewards a member might redeem now, by (points_price, reward_id).
struct RedeemableFilter {
  std::string partner_id;
  std::string category;
  int64_t max_points_price = 0;
  absl::Time now;
  int64_t after_points_price = -1;
  std::string after_reward_id;
};

struct VoucherFilter {
  std::string member_id;
  std::string partner_id;  // honouring or channel partner
  std::vector<v1::VoucherState> states;
  int64_t before_id = 0;  // 0 = from the newest
};

struct CampaignFilter {
  std::vector<v1::CampaignState> states;  // empty = all
  std::string partner_id;                 // listed, or unrestricted
  std::string after_campaign_id;
};

// A coupon redemption with what the ledger grant needs.
struct CouponUse {
  v1::CouponRedemption redemption;
  std::string funding_partner_id;
  int grant_state = 0;  // 0 none, 1 due, 2 granted, 3 refused
  std::string scope;    // of the idempotency key that redeemed it
  std::string key;
};

class CatalogTx {
 public:
  virtual ~CatalogTx() = default;

  // --- idempotency ---
  // The stored record for (scope, key), or nullopt after inserting a claim
  // for it in this transaction.
  virtual absl::StatusOr<std::optional<IdempotencyRecord>> ClaimKey(const IdempotencyRecord& claim) = 0;
  // Completes the claim made in this transaction (or inserts the record).
  virtual absl::Status SaveOutcome(const IdempotencyRecord& record) = 0;
  // Read only.
  virtual absl::StatusOr<std::optional<IdempotencyRecord>> FindKey(const std::string& scope,
                                                                   const std::string& key) = 0;

  // --- rewards ---
  virtual absl::Status InsertReward(const v1::Reward& reward) = 0;
  // Rewrites body, state, price, validity, updated_at and version (not stock).
  virtual absl::Status UpdateReward(const v1::Reward& reward) = 0;
  virtual absl::StatusOr<std::optional<v1::Reward>> GetReward(const std::string& reward_id, bool for_update) = 0;
  virtual absl::StatusOr<std::vector<v1::Reward>> ListRewards(const RewardFilter& filter, int limit) = 0;
  // ACTIVE, within validity, in stock and at most max_points_price.
  virtual absl::StatusOr<std::vector<v1::Reward>> ListRedeemable(const RedeemableFilter& filter, int limit) = 0;
  // stock_available += delta if the result stays >= 0 (a conditional
  // UPDATE); false if it would not.
  virtual absl::StatusOr<bool> AdjustStock(const std::string& reward_id, int64_t delta, absl::Time now) = 0;
  // One unit from available to reserved (available only for limited stock);
  // false when out of stock.
  virtual absl::StatusOr<bool> ReserveUnit(const std::string& reward_id, bool limited) = 0;
  // One reserved unit back to available (cancel, expiry).
  virtual absl::Status ReleaseUnit(const std::string& reward_id, bool limited) = 0;
  // One reserved unit to honoured.
  virtual absl::Status ConsumeUnit(const std::string& reward_id) = 0;

  // --- redemptions (the saga log) ---
  // The saga row of (scope, key), row locked; nullopt without locking a gap
  // (so InsertRedemption of the claim is what serializes claimants).
  virtual absl::StatusOr<std::optional<Redemption>> FindRedemption(const std::string& scope,
                                                                   const std::string& key) = 0;
  virtual absl::StatusOr<std::optional<Redemption>> GetRedemption(const std::string& redemption_id) = 0;
  // ALREADY_EXISTS when (scope, key) is taken by a concurrent request.
  virtual absl::Status InsertRedemption(const Redemption& r) = 0;
  // Rewrites attempt, state, hold_id, voucher_code, status, response,
  // updated_at.
  virtual absl::Status UpdateRedemption(const Redemption& r) = 0;
  // Sagas in STARTED or COMPENSATING last touched before `before`.
  virtual absl::StatusOr<std::vector<Redemption>> ListStuckRedemptions(absl::Time before, int limit) = 0;

  // --- vouchers ---
  // ALREADY_EXISTS if the code is taken (the caller draws another).
  virtual absl::Status InsertVoucher(const std::string& redemption_id, const v1::Voucher& voucher) = 0;
  // Rewrites the state fields and clears any pending operation.
  virtual absl::Status UpdateVoucher(const v1::Voucher& voucher) = 0;
  // Records that an operation (1 cancel, 2 honour) goes to the ledger for an
  // ISSUED voucher, on behalf of the request `request_marker` (kept after the
  // operation ends). False, and nothing changed, when another request's
  // operation is in flight: one operation at a time per voucher.
  virtual absl::StatusOr<bool> StartVoucherOperation(const std::string& code, int op, absl::Time now,
                                                     const std::string& request_marker) = 0;
  // Clears the operation in flight (the repair sweep found it never reached
  // the ledger).
  virtual absl::Status ClearVoucherOperation(const std::string& code) = 0;
  // The marker of the request that last put an operation in flight; "" if none.
  virtual absl::StatusOr<std::string> VoucherRequestMarker(const std::string& code) = 0;
  // ISSUED vouchers with an operation pending since before `before`.
  virtual absl::StatusOr<std::vector<std::pair<std::string, int>>> ListPendingVouchers(absl::Time before,
                                                                                       int limit) = 0;
  virtual absl::StatusOr<std::optional<v1::Voucher>> GetVoucher(const std::string& code, bool for_update) = 0;
  // Newest first; each with its row id (the page cursor).
  virtual absl::StatusOr<std::vector<std::pair<int64_t, v1::Voucher>>> ListVouchers(const VoucherFilter& filter,
                                                                                     int limit) = 0;
  // ISSUED or HONOURED vouchers of a member for a reward issued at or after
  // `since` (the per-member limit).
  virtual absl::StatusOr<int64_t> CountMemberVouchers(const std::string& member_id, const std::string& reward_id,
                                                      absl::Time since) = 0;
  // --- campaigns ---
  virtual absl::Status InsertCampaign(const v1::Campaign& campaign) = 0;
  // Rewrites body, state, partners, end_time, budget_points, updated_at and
  // version (not budget_allocated).
  virtual absl::Status UpdateCampaign(const v1::Campaign& campaign) = 0;
  // With budget_allocated/remaining filled from the columns.
  virtual absl::StatusOr<std::optional<v1::Campaign>> GetCampaign(const std::string& campaign_id,
                                                                 bool for_update) = 0;
  virtual absl::StatusOr<std::vector<v1::Campaign>> ListCampaigns(const CampaignFilter& filter, int limit) = 0;
  // ACTIVE campaigns with a bonus whose end_time is unset or after `now`.
  virtual absl::StatusOr<std::vector<v1::Campaign>> ListEarnRules(absl::Time now) = 0;
  // The earn-rules version; `bump` takes the next one (row locked).
  virtual absl::StatusOr<int64_t> EarnRulesVersion(bool bump) = 0;
  // budget_allocated += points if it stays <= budget_points; false if not.
  virtual absl::StatusOr<bool> AllocateBudget(const std::string& campaign_id, int64_t points) = 0;
  // budget_allocated -= points.
  virtual absl::Status ReleaseBudget(const std::string& campaign_id, int64_t points) = 0;
  virtual absl::Status InsertLease(const v1::CampaignBudgetLease& lease) = 0;
  virtual absl::Status CloseLease(const v1::CampaignBudgetLease& lease) = 0;
  virtual absl::StatusOr<std::optional<v1::CampaignBudgetLease>> GetLease(const std::string& lease_id) = 0;

  // --- coupons ---
  // ABORTED if a code is already taken (the caller draws the batch again).
  virtual absl::Status InsertCouponBatch(const v1::CouponBatch& batch, const std::vector<std::string>& codes) = 0;
  virtual absl::StatusOr<std::optional<v1::CouponBatch>> GetCouponBatch(const std::string& batch_id) = 0;
  // Codes of a batch after `after_code`, in code order.
  virtual absl::StatusOr<std::vector<v1::CouponCode>> ListCouponCodes(const std::string& batch_id,
                                                                      const std::string& after_code, int limit) = 0;
  // The code's batch id and use count (row locked when `for_update`).
  virtual absl::StatusOr<std::optional<std::pair<std::string, int>>> GetCouponCode(const std::string& code,
                                                                                   bool for_update) = 0;
  virtual absl::StatusOr<int> MemberCouponUses(const std::string& batch_id, const std::string& member_id) = 0;
  // Counts one use of the code, the member and the batch; the counts after.
  virtual absl::StatusOr<std::pair<int, int>> CountCouponUse(const std::string& batch_id, const std::string& code,
                                                             const std::string& member_id) = 0;
  // Gives one use back (a grant refused by the ledger).
  virtual absl::Status UncountCouponUse(const std::string& batch_id, const std::string& code,
                                        const std::string& member_id) = 0;
  virtual absl::Status InsertCouponUse(const CouponUse& use) = 0;
  virtual absl::StatusOr<std::optional<CouponUse>> GetCouponUse(const std::string& redemption_id) = 0;
  virtual absl::Status SetCouponGrant(const std::string& redemption_id, int grant_state,
                                      const std::string& transfer_id) = 0;
  virtual absl::StatusOr<std::vector<std::string>> ListDueCouponGrants(int limit) = 0;

  // Codes of ISSUED vouchers with expires_at <= now.
  virtual absl::StatusOr<std::vector<std::string>> ListExpiredVouchers(absl::Time now, int limit) = 0;
};

class CatalogStore {
 public:
  virtual ~CatalogStore() = default;
  // Runs `body` in one transaction: commit if it returns OK, roll back
  // otherwise. Deadlocks and other ABORTED conflicts re-run the whole body.
  virtual absl::Status Run(absl::string_view context, const std::function<absl::Status(CatalogTx&)>& body) = 0;
};

}  // namespace loyalty::catalog
