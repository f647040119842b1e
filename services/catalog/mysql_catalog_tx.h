#pragma once
// Internal to the catalog's MySQL store (mysql_catalog_store.h is its only
// public face): the CatalogTx over one database transaction. Its methods are
// defined one file per table group, each beside its SQL:
//   mysql_catalog_store.cc      the store, its transactions, idempotency rows
//   mysql_rewards_store.cc      rewards and their stock
//   mysql_redemptions_store.cc  the Redeem saga log
//   mysql_vouchers_store.cc     vouchers
//   mysql_campaigns_store.cc    campaigns, earn-rules version, budget leases
//   mysql_coupons_store.cc      coupon batches, codes, uses, bonus grants
// sql::SQLException is not caught here: db::RunInTransaction turns it into a
// Status. Not thread-safe: one MysqlTx per transaction, on one thread.

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/db/transaction.h"
#include "google/protobuf/timestamp.pb.h"
#include "services/catalog/catalog_store.h"

namespace loyalty::catalog::internal {

// Binds a nullable DATETIME: NULL unless `has`.
void SetOptionalTime(sql::PreparedStatement& s, int i, bool has, const google::protobuf::Timestamp& ts);
// Reads a nullable DATETIME into `out`; false (and `out` untouched) on NULL.
bool ReadTime(const sql::ResultSet& rs, int col, google::protobuf::Timestamp* out);
// "1,3": enum values for FIND_IN_SET.
std::string StateList(const std::vector<int>& states);

class MysqlTx final : public CatalogTx {
 public:
  explicit MysqlTx(db::Transaction& tx) : tx_(tx) {}

  // --- idempotency (mysql_catalog_store.cc)
  absl::StatusOr<std::optional<IdempotencyRecord>> ClaimKey(const IdempotencyRecord& claim) override;
  absl::Status SaveOutcome(const IdempotencyRecord& record) override;
  absl::StatusOr<std::optional<IdempotencyRecord>> FindKey(const std::string& scope, const std::string& key) override;

  // --- rewards (mysql_rewards_store.cc)
  absl::Status InsertReward(const v1::Reward& r) override;
  absl::Status UpdateReward(const v1::Reward& r) override;
  absl::StatusOr<std::optional<v1::Reward>> GetReward(const std::string& reward_id, bool for_update) override;
  absl::StatusOr<std::vector<v1::Reward>> ListRewards(const RewardFilter& f, int limit) override;
  absl::StatusOr<std::vector<v1::Reward>> ListRedeemable(const RedeemableFilter& f, int limit) override;
  absl::StatusOr<bool> AdjustStock(const std::string& reward_id, int64_t delta, absl::Time now) override;
  absl::StatusOr<bool> ReserveUnit(const std::string& reward_id, bool limited) override;
  absl::Status ReleaseUnit(const std::string& reward_id, bool limited) override;
  absl::Status ConsumeUnit(const std::string& reward_id) override;

  // --- redemptions, the saga log (mysql_redemptions_store.cc)
  absl::StatusOr<std::optional<Redemption>> FindRedemption(const std::string& scope, const std::string& key) override;
  absl::StatusOr<std::optional<Redemption>> GetRedemption(const std::string& redemption_id) override;
  absl::Status InsertRedemption(const Redemption& r) override;
  absl::Status UpdateRedemption(const Redemption& r) override;
  absl::StatusOr<std::vector<Redemption>> ListStuckRedemptions(absl::Time before, int limit) override;

  // --- vouchers (mysql_vouchers_store.cc)
  absl::Status InsertVoucher(const std::string& redemption_id, const v1::Voucher& v) override;
  absl::Status UpdateVoucher(const v1::Voucher& v) override;
  absl::StatusOr<bool> StartVoucherOperation(const std::string& code, int op, absl::Time now,
                                             const std::string& request_marker) override;
  absl::Status ClearVoucherOperation(const std::string& code) override;
  absl::StatusOr<std::string> VoucherRequestMarker(const std::string& code) override;
  absl::StatusOr<std::vector<std::pair<std::string, int>>> ListPendingVouchers(absl::Time before, int limit) override;
  absl::StatusOr<std::optional<v1::Voucher>> GetVoucher(const std::string& code, bool for_update) override;
  absl::StatusOr<std::vector<std::pair<int64_t, v1::Voucher>>> ListVouchers(const VoucherFilter& f, int limit) override;
  absl::StatusOr<int64_t> CountMemberVouchers(const std::string& member_id, const std::string& reward_id,
                                              absl::Time since) override;
  absl::StatusOr<std::vector<std::string>> ListExpiredVouchers(absl::Time now, int limit) override;

  // --- campaigns (mysql_campaigns_store.cc)
  absl::Status InsertCampaign(const v1::Campaign& c) override;
  absl::Status UpdateCampaign(const v1::Campaign& c) override;
  absl::StatusOr<std::optional<v1::Campaign>> GetCampaign(const std::string& id, bool for_update) override;
  absl::StatusOr<std::vector<v1::Campaign>> ListCampaigns(const CampaignFilter& f, int limit) override;
  absl::StatusOr<std::vector<v1::Campaign>> ListEarnRules(absl::Time now) override;
  absl::StatusOr<int64_t> EarnRulesVersion(bool bump) override;
  absl::StatusOr<bool> AllocateBudget(const std::string& campaign_id, int64_t points) override;
  absl::Status ReleaseBudget(const std::string& campaign_id, int64_t points) override;
  absl::Status InsertLease(const v1::CampaignBudgetLease& l) override;
  absl::Status CloseLease(const v1::CampaignBudgetLease& l) override;
  absl::StatusOr<std::optional<v1::CampaignBudgetLease>> GetLease(const std::string& lease_id) override;

  // --- coupons (mysql_coupons_store.cc)
  absl::Status InsertCouponBatch(const v1::CouponBatch& b, const std::vector<std::string>& codes) override;
  absl::StatusOr<std::optional<v1::CouponBatch>> GetCouponBatch(const std::string& batch_id) override;
  absl::StatusOr<std::vector<v1::CouponCode>> ListCouponCodes(const std::string& batch_id,
                                                              const std::string& after_code, int limit) override;
  absl::StatusOr<std::optional<std::pair<std::string, int>>> GetCouponCode(const std::string& code,
                                                                           bool for_update) override;
  absl::StatusOr<int> MemberCouponUses(const std::string& batch_id, const std::string& member_id) override;
  absl::StatusOr<std::pair<int, int>> CountCouponUse(const std::string& batch_id, const std::string& code,
                                                     const std::string& member_id) override;
  absl::Status UncountCouponUse(const std::string& batch_id, const std::string& code,
                                const std::string& member_id) override;
  absl::Status InsertCouponUse(const CouponUse& u) override;
  absl::StatusOr<std::optional<CouponUse>> GetCouponUse(const std::string& redemption_id) override;
  absl::Status SetCouponGrant(const std::string& redemption_id, int grant_state,
                              const std::string& transfer_id) override;
  absl::StatusOr<std::vector<std::string>> ListDueCouponGrants(int limit) override;

 private:
  db::Transaction& tx_;
};

}  // namespace loyalty::catalog::internal
