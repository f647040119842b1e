#pragma once
// The catalog's use cases, as the gRPC adapter calls them. Domain code: no
// gRPC or MySQL includes; storage goes through CatalogStore, the ledger
// through LedgerClient, member tiers through MemberDirectory.
//
// Every mutation is idempotent by key (scoped to the calling credential):
// the answer (a business refusal included) is stored with its effects, and a
// retry gets the same answer. INVALID_ARGUMENT and PERMISSION_DENIED are not
// stored, so a caller can correct the request and reuse the key; transient
// failures (UNAVAILABLE, ABORTED) are not stored either.
//
// Redeem is a saga (docs/adr/0011-catalog.md): its `redemptions` row is
// written before anything else and records each step, so that Recover() can
// finish or compensate a saga cut short by a crash. Thread-safe: all state
// is in the store.

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/auth/principal.h"
#include "loyalty/catalog/v1/catalog.pb.h"
#include "services/catalog/catalog_store.h"
#include "services/catalog/ledger_client.h"

namespace loyalty::catalog {

// Points between the saga's steps where a test can cut it short, as a crash
// would (nothing after the point runs, no compensation).
enum class SagaPoint {
  kClaimed,       // redemption row written; no hold asked yet
  kHeld,          // the ledger placed the hold; stock not reserved
  kCompensating,  // refusal recorded; the hold not voided yet
  // HonourVoucher / CancelVoucher: the ledger captured / voided the hold,
  // the voucher's own update has not run.
  kVoucherLedgerDone,
};

struct CatalogOptions {
  std::function<absl::Time()> now = [] { return absl::Now(); };
  // A saga untouched for this long is presumed abandoned (its process died)
  // and is compensated by Recover(). Must exceed the ledger deadline.
  absl::Duration saga_grace = absl::Seconds(60);
  // Test hook: a non-OK answer makes Redeem stop at that point and return
  // it, leaving the saga as a crash would.
  std::function<absl::Status(SagaPoint)> crash_at;
  // Settlement's directory: partner ids of rewards and campaigns must be in
  // it (NOT_FOUND otherwise). Null: not checked (no settlement configured).
  PartnerDirectory* partners = nullptr;
};

class Catalog {
 public:
  using Principal = auth::Principal;

  Catalog(CatalogStore& store, LedgerClient& ledger, MemberDirectory& members, CatalogOptions options = {})
      : store_(store), ledger_(ledger), members_(members), options_(std::move(options)) {}

  // --- rewards ---
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

  // --- redeem and vouchers ---
  absl::StatusOr<v1::RedeemResponse> Redeem(const Principal& p, const v1::RedeemRequest& r);
  absl::StatusOr<v1::GetVoucherResponse> GetVoucher(const Principal& p, const v1::GetVoucherRequest& r);
  absl::StatusOr<v1::ListVouchersResponse> ListVouchers(const Principal& p, const v1::ListVouchersRequest& r);
  absl::StatusOr<v1::HonourVoucherResponse> HonourVoucher(const Principal& p, const v1::HonourVoucherRequest& r);
  absl::StatusOr<v1::CancelVoucherResponse> CancelVoucher(const Principal& p, const v1::CancelVoucherRequest& r);

  // --- coupons ---
  absl::StatusOr<v1::CreateCouponBatchResponse> CreateCouponBatch(const Principal& p,
                                                                  const v1::CreateCouponBatchRequest& r);
  absl::StatusOr<v1::GetCouponBatchResponse> GetCouponBatch(const Principal& p, const v1::GetCouponBatchRequest& r);
  absl::StatusOr<v1::ListCouponCodesResponse> ListCouponCodes(const Principal& p,
                                                              const v1::ListCouponCodesRequest& r);
  absl::StatusOr<v1::ValidateCouponResponse> ValidateCoupon(const Principal& p, const v1::ValidateCouponRequest& r);
  // Counts the use (limits exact under concurrency: the code row is locked),
  // then grants the batch's bonus through the ledger, idempotently. A bonus
  // the ledger refuses gives the use back and becomes the key's answer; an
  // unreachable ledger leaves the grant due (GrantDueCouponBonuses).
  absl::StatusOr<v1::RedeemCouponResponse> RedeemCoupon(const Principal& p, const v1::RedeemCouponRequest& r);

  // --- campaigns and earn rules ---
  absl::StatusOr<v1::CreateCampaignResponse> CreateCampaign(const Principal& p, const v1::CreateCampaignRequest& r);
  absl::StatusOr<v1::UpdateCampaignResponse> UpdateCampaign(const Principal& p, const v1::UpdateCampaignRequest& r);
  absl::StatusOr<v1::SetCampaignStateResponse> SetCampaignState(const Principal& p,
                                                                const v1::SetCampaignStateRequest& r);
  absl::StatusOr<v1::GetCampaignResponse> GetCampaign(const Principal& p, const v1::GetCampaignRequest& r);
  absl::StatusOr<v1::ListCampaignsResponse> ListCampaigns(const Principal& p, const v1::ListCampaignsRequest& r);
  absl::StatusOr<v1::GetActiveEarnRulesResponse> GetActiveEarnRules(const Principal& p,
                                                                    const v1::GetActiveEarnRulesRequest& r);
  absl::StatusOr<v1::LeaseCampaignBudgetResponse> LeaseCampaignBudget(const Principal& p,
                                                                      const v1::LeaseCampaignBudgetRequest& r);
  absl::StatusOr<v1::ReturnCampaignBudgetResponse> ReturnCampaignBudget(const Principal& p,
                                                                        const v1::ReturnCampaignBudgetRequest& r);
  // Delegates to the ledger's QuoteEarn, so the preview is exactly what
  // Earn computes from the ledger's cached rules.
  absl::StatusOr<v1::QuoteEarnResponse> QuoteEarn(const Principal& p, const v1::QuoteEarnRequest& r);

  // --- background work (main.cc runs these in a loop) ---
  // Compensates sagas left in STARTED or COMPENSATING for longer than
  // saga_grace (all of them when `everything`, e.g. in tests): voids their
  // hold, if any, and records them FAILED. Returns how many were repaired;
  // a saga whose ledger call fails again stays for the next pass.
  absl::StatusOr<int> Recover(int max, bool everything = false);
  // Releases ISSUED vouchers past expires_at: voids the hold (or finds it
  // already released or captured) and returns the stock. Returns how many
  // vouchers changed state.
  absl::StatusOr<int> ExpireVouchers(int max);
  // Repairs ISSUED vouchers whose honour or cancel reached the ledger but not
  // their own update (a crash in between), from the ledger's view of the
  // hold, once saga_grace has passed (at once when `everything`). Returns
  // how many vouchers were settled.
  absl::StatusOr<int> RepairVouchers(int max, bool everything = false);
  // Grants coupon bonuses still due (the ledger was unreachable). Returns
  // how many were settled (granted or refused).
  absl::StatusOr<int> GrantDueCouponBonuses(int max);

 private:
  template <typename Response>
  using Body = std::function<absl::Status(CatalogTx&, Response&)>;

  // Runs `body` once per idempotency key (idempotency::RunOnce). `references`,
  // when given, checks what the request names in other services (tiers,
  // segments, partners); it runs only when the key has no stored answer, so
  // that a retry gets its original answer even if a referenced object has
  // gone since or the other service is down.
  template <typename Response>
  absl::StatusOr<Response> Mutate(const Principal& p, absl::string_view method, const std::string& key,
                                  const google::protobuf::Message& request, Body<Response> body,
                                  const std::function<absl::Status()>& references = nullptr);

  absl::StatusOr<v1::Reward> InsertNewReward(CatalogTx& tx, const Principal& p, v1::Reward reward);
  // The saga after its row is claimed (state STARTED).
  absl::StatusOr<v1::RedeemResponse> RunSaga(Redemption red);
  // Voids the saga's hold (finding it by re-asking Authorize with the same
  // key when its id is unknown) and records the saga FAILED with `outcome`.
  absl::Status Compensate(Redemption red, const absl::Status& outcome);
  // Brings an ISSUED voucher in line with its closed hold: CAPTURED ->
  // HONOURED, VOIDED -> `released` (CANCELLED or EXPIRED), EXPIRED ->
  // EXPIRED; stock follows. False if the voucher was not ISSUED.
  absl::StatusOr<bool> SettleVoucher(const std::string& code, const HoldOutcome& hold, v1::VoucherState released,
                                     const std::string& reason);
  // Voids a voucher's hold; the hold as the ledger has it afterwards.
  absl::StatusOr<HoldOutcome> ReleaseHold(const v1::Voucher& voucher, const std::string& reason);
  // Grants (or settles) the bonus of a coupon redemption; its transfer id.
  absl::StatusOr<std::string> SettleCouponGrant(const std::string& redemption_id);
  // NOT_FOUND naming reward.min_tier_id unless membership's ladder has it.
  absl::Status CheckTierExists(const std::string& tier_id);
  // NOT_FOUND naming `field` when settlement does not know the partner.
  absl::Status CheckPartnerExists(absl::string_view field, const std::string& partner_id);
  // NOT_FOUND naming the field for a partner settlement does not know, or a
  // tier or saved segment membership does not know; `paths` limits the check
  // to those fields (null: all).
  absl::Status CheckCampaignReferences(const v1::Campaign& c, const google::protobuf::RepeatedPtrField<std::string>* paths);
  absl::Status CheckTier(const std::string& member_id, const v1::Reward& reward);

  absl::Time Now() const;

  CatalogStore& store_;
  LedgerClient& ledger_;
  MemberDirectory& members_;
  CatalogOptions options_;
};

}  // namespace loyalty::catalog
