#include "services/catalog/mysql_catalog_store.h"

#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/db/idempotency_rows.h"
#include "common/db/mysql_error.h"
#include "common/db/sql_values.h"
#include "common/db/transaction.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"

namespace loyalty::catalog {
namespace {

using db::ParseSqlTime;
using db::SqlTime;
using db::ReadBlob;
using db::SetBlob;
using db::Str;

#define LOYALTY_REWARD_COLUMNS                                                                      \
  "reward_id, partner_id, category, state, points_price, unlimited_stock, stock_available, "        \
  "stock_reserved, stock_honoured, proposed_by_partner_id, valid_from, valid_until, body, created_at, " \
  "updated_at, version"
constexpr absl::string_view kInsertReward =
    "INSERT INTO rewards (" LOYALTY_REWARD_COLUMNS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
constexpr absl::string_view kUpdateReward =
    "UPDATE rewards SET category = ?, state = ?, points_price = ?, valid_from = ?, valid_until = ?, body = ?, "
    "updated_at = ?, version = ? WHERE reward_id = ?";
constexpr absl::string_view kSelectReward = "SELECT " LOYALTY_REWARD_COLUMNS " FROM rewards WHERE reward_id = ?";
constexpr absl::string_view kSelectRewardForUpdate =
    "SELECT " LOYALTY_REWARD_COLUMNS " FROM rewards WHERE reward_id = ? FOR UPDATE";
// Filters are bound as (value, value) pairs: "? = '' OR column = ?".
constexpr absl::string_view kListRewards =
    "SELECT " LOYALTY_REWARD_COLUMNS " FROM rewards WHERE reward_id > ? "
    "AND (? = '' OR partner_id = ?) AND (? = '' OR category = ?) "
    "AND (? = '' OR state IN (2, 3) OR partner_id = ? OR proposed_by_partner_id = ?) "
    "AND (? = 0 OR FIND_IN_SET(state, ?) > 0) ORDER BY reward_id LIMIT ?";
constexpr absl::string_view kListRedeemable =
    "SELECT " LOYALTY_REWARD_COLUMNS " FROM rewards WHERE state = 2 "
    "AND (valid_from IS NULL OR valid_from <= ?) AND (valid_until IS NULL OR valid_until > ?) "
    "AND (unlimited_stock = 1 OR stock_available > 0) AND points_price <= ? "
    "AND (? = '' OR partner_id = ?) AND (? = '' OR category = ?) "
    "AND (points_price > ? OR (points_price = ? AND reward_id > ?)) "
    "ORDER BY points_price, reward_id LIMIT ?";
constexpr absl::string_view kAdjustStock =
    "UPDATE rewards SET stock_available = stock_available + ?, updated_at = ?, version = version + 1 "
    "WHERE reward_id = ? AND unlimited_stock = 0 AND stock_available + ? >= 0";
constexpr absl::string_view kReserveLimited =
    "UPDATE rewards SET stock_available = stock_available - 1, stock_reserved = stock_reserved + 1 "
    "WHERE reward_id = ? AND stock_available > 0";
constexpr absl::string_view kReserveUnlimited =
    "UPDATE rewards SET stock_reserved = stock_reserved + 1 WHERE reward_id = ?";
constexpr absl::string_view kReleaseLimited =
    "UPDATE rewards SET stock_available = stock_available + 1, stock_reserved = stock_reserved - 1 "
    "WHERE reward_id = ? AND stock_reserved > 0";
constexpr absl::string_view kReleaseUnlimited =
    "UPDATE rewards SET stock_reserved = stock_reserved - 1 WHERE reward_id = ? AND stock_reserved > 0";
constexpr absl::string_view kConsumeUnit =
    "UPDATE rewards SET stock_reserved = stock_reserved - 1, stock_honoured = stock_honoured + 1 "
    "WHERE reward_id = ? AND stock_reserved > 0";

#define LOYALTY_REDEMPTION_COLUMNS                                                                 \
  "redemption_id, scope, idem_key, fingerprint, request, member_id, reward_id, partner_id, "        \
  "channel_partner_id, points, hold_ttl_seconds, attempt, state, hold_id, voucher_code, status_code, status_message, " \
  "response, created_at, updated_at"
constexpr absl::string_view kInsertRedemption =
    "INSERT INTO redemptions (" LOYALTY_REDEMPTION_COLUMNS
    ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
constexpr absl::string_view kUpdateRedemption =
    "UPDATE redemptions SET attempt = ?, state = ?, hold_id = ?, voucher_code = ?, status_code = ?, "
    "status_message = ?, response = ?, updated_at = ? WHERE redemption_id = ?";
// A plain (non-locking) read first: SELECT ... FOR UPDATE of a missing row
// takes a gap lock, and concurrent claims inserting into that gap deadlock.
constexpr absl::string_view kFindRedemption =
    "SELECT redemption_id FROM redemptions WHERE scope = ? AND idem_key = ?";
constexpr absl::string_view kGetRedemption =
    "SELECT " LOYALTY_REDEMPTION_COLUMNS " FROM redemptions WHERE redemption_id = ? FOR UPDATE";
constexpr absl::string_view kStuckRedemptions =
    "SELECT " LOYALTY_REDEMPTION_COLUMNS " FROM redemptions WHERE state IN (1, 3) AND updated_at < ? "
    "ORDER BY updated_at LIMIT ?";

#define LOYALTY_VOUCHER_COLUMNS                                                                    \
  "id, voucher_code, reward_id, reward_name, member_id, partner_id, channel_partner_id, points, "   \
  "hold_id, state, issued_at, expires_at, honoured_at, cancelled_at, capture_transfer_id, "         \
  "honour_reference, cancel_reason"
constexpr absl::string_view kInsertVoucher =
    "INSERT INTO vouchers (redemption_id, voucher_code, reward_id, reward_name, member_id, partner_id, "
    "channel_partner_id, points, hold_id, state, issued_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
constexpr absl::string_view kUpdateVoucher =
    "UPDATE vouchers SET state = ?, honoured_at = ?, cancelled_at = ?, capture_transfer_id = ?, "
    "honour_reference = ?, cancel_reason = ?, pending_op = 0, pending_since = NULL WHERE voucher_code = ?";
constexpr absl::string_view kStartVoucherOperation =
    "UPDATE vouchers SET pending_op = ?, pending_since = ?, pending_key = ? "
    "WHERE voucher_code = ? AND state = 1 AND (pending_op = 0 OR pending_key = ?)";
constexpr absl::string_view kClearVoucherOperation =
    "UPDATE vouchers SET pending_op = 0, pending_since = NULL WHERE voucher_code = ? AND state = 1";
constexpr absl::string_view kSelectVoucherMarker = "SELECT pending_key FROM vouchers WHERE voucher_code = ?";
constexpr absl::string_view kPendingVouchers =
    "SELECT voucher_code, pending_op FROM vouchers WHERE pending_op > 0 AND pending_since < ? AND state = 1 "
    "ORDER BY pending_since LIMIT ?";
constexpr absl::string_view kSelectVoucher =
    "SELECT " LOYALTY_VOUCHER_COLUMNS " FROM vouchers WHERE voucher_code = ?";
constexpr absl::string_view kSelectVoucherForUpdate =
    "SELECT " LOYALTY_VOUCHER_COLUMNS " FROM vouchers WHERE voucher_code = ? FOR UPDATE";
constexpr absl::string_view kListVouchers =
    "SELECT " LOYALTY_VOUCHER_COLUMNS " FROM vouchers WHERE id < ? AND (? = '' OR member_id = ?) "
    "AND (? = '' OR partner_id = ? OR channel_partner_id = ?) AND (? = 0 OR FIND_IN_SET(state, ?) > 0) "
    "ORDER BY id DESC LIMIT ?";
constexpr absl::string_view kCountMemberVouchers =
    "SELECT COUNT(*) FROM vouchers WHERE member_id = ? AND reward_id = ? AND issued_at >= ? AND state IN (1, 2)";
constexpr absl::string_view kExpiredVouchers =
    "SELECT voucher_code FROM vouchers WHERE state = 1 AND expires_at <= ? ORDER BY expires_at LIMIT ?";

#define LOYALTY_CAMPAIGN_COLUMNS \
  "campaign_id, state, budget_points, budget_allocated, body, created_at, updated_at, version"
constexpr absl::string_view kInsertCampaign =
    "INSERT INTO campaigns (campaign_id, state, has_bonus, partner_list, end_time, budget_points, "
    "budget_allocated, body, created_at, updated_at, version) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)";
constexpr absl::string_view kUpdateCampaign =
    "UPDATE campaigns SET state = ?, has_bonus = ?, partner_list = ?, end_time = ?, budget_points = ?, body = ?, "
    "updated_at = ?, version = ? WHERE campaign_id = ?";
constexpr absl::string_view kSelectCampaign =
    "SELECT " LOYALTY_CAMPAIGN_COLUMNS " FROM campaigns WHERE campaign_id = ?";
constexpr absl::string_view kSelectCampaignForUpdate =
    "SELECT " LOYALTY_CAMPAIGN_COLUMNS " FROM campaigns WHERE campaign_id = ? FOR UPDATE";
constexpr absl::string_view kListCampaigns =
    "SELECT " LOYALTY_CAMPAIGN_COLUMNS " FROM campaigns WHERE campaign_id > ? "
    "AND (? = '' OR partner_list = '' OR LOCATE(CONCAT(',', ?, ','), partner_list) > 0) "
    "AND (? = 0 OR FIND_IN_SET(state, ?) > 0) ORDER BY campaign_id LIMIT ?";
constexpr absl::string_view kListEarnRules =
    "SELECT " LOYALTY_CAMPAIGN_COLUMNS " FROM campaigns WHERE state = 2 AND has_bonus = 1 "
    "AND (end_time IS NULL OR end_time > ?) ORDER BY campaign_id";
constexpr absl::string_view kSelectRulesVersion = "SELECT version FROM earn_rules_head WHERE id = 1";
constexpr absl::string_view kLockRulesVersion = "SELECT version FROM earn_rules_head WHERE id = 1 FOR UPDATE";
constexpr absl::string_view kSetRulesVersion = "UPDATE earn_rules_head SET version = ? WHERE id = 1";
constexpr absl::string_view kAllocateBudget =
    "UPDATE campaigns SET budget_allocated = budget_allocated + ? "
    "WHERE campaign_id = ? AND budget_points > 0 AND budget_allocated + ? <= budget_points";
constexpr absl::string_view kReleaseBudget =
    "UPDATE campaigns SET budget_allocated = budget_allocated - ? WHERE campaign_id = ? AND budget_allocated >= ?";
constexpr absl::string_view kInsertLease =
    "INSERT INTO campaign_budget_leases (campaign_budget_lease_id, campaign_id, holder, granted_points, created_at) "
    "VALUES (?, ?, ?, ?, ?)";
constexpr absl::string_view kCloseLease =
    "UPDATE campaign_budget_leases SET closed_at = ?, used_points = ?, returned_points = ? "
    "WHERE campaign_budget_lease_id = ? AND closed_at IS NULL";
constexpr absl::string_view kSelectLease =
    "SELECT campaign_budget_lease_id, campaign_id, holder, granted_points, created_at, closed_at, used_points, "
    "returned_points FROM campaign_budget_leases WHERE campaign_budget_lease_id = ? FOR UPDATE";

constexpr size_t kCodesPerInsert = 500;
constexpr absl::string_view kInsertCouponBatch =
    "INSERT INTO coupon_batches (coupon_batch_id, campaign_id, body, redemption_count, created_at) "
    "VALUES (?, ?, ?, 0, ?)";
constexpr absl::string_view kSelectCouponBatch =
    "SELECT body, redemption_count FROM coupon_batches WHERE coupon_batch_id = ?";
constexpr absl::string_view kListCouponCodes =
    "SELECT code, redemption_count FROM coupon_codes WHERE coupon_batch_id = ? AND code > ? ORDER BY code LIMIT ?";
constexpr absl::string_view kSelectCouponCode = "SELECT coupon_batch_id, redemption_count FROM coupon_codes WHERE code = ?";
constexpr absl::string_view kSelectCouponCodeForUpdate =
    "SELECT coupon_batch_id, redemption_count FROM coupon_codes WHERE code = ? FOR UPDATE";
constexpr absl::string_view kMemberCouponUses =
    "SELECT uses FROM coupon_member_uses WHERE coupon_batch_id = ? AND member_id = ?";
constexpr absl::string_view kCountCodeUse =
    "UPDATE coupon_codes SET redemption_count = redemption_count + 1 WHERE code = ?";
constexpr absl::string_view kCountMemberUse =
    "INSERT INTO coupon_member_uses (coupon_batch_id, member_id, uses) VALUES (?, ?, 1) "
    "ON DUPLICATE KEY UPDATE uses = uses + 1";
constexpr absl::string_view kCountBatchUse =
    "UPDATE coupon_batches SET redemption_count = redemption_count + 1 WHERE coupon_batch_id = ?";
constexpr absl::string_view kUncountCodeUse =
    "UPDATE coupon_codes SET redemption_count = redemption_count - 1 WHERE code = ? AND redemption_count > 0";
constexpr absl::string_view kUncountMemberUse =
    "UPDATE coupon_member_uses SET uses = uses - 1 WHERE coupon_batch_id = ? AND member_id = ? AND uses > 0";
constexpr absl::string_view kUncountBatchUse =
    "UPDATE coupon_batches SET redemption_count = redemption_count - 1 WHERE coupon_batch_id = ? "
    "AND redemption_count > 0";
constexpr absl::string_view kInsertCouponUse =
    "INSERT INTO coupon_redemptions (coupon_redemption_id, code, coupon_batch_id, campaign_id, member_id, "
    "partner_id, bonus_points, funding_partner_id, grant_state, transfer_id, scope, idem_key, redeemed_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
constexpr absl::string_view kSelectCouponUse =
    "SELECT coupon_redemption_id, code, coupon_batch_id, campaign_id, member_id, partner_id, bonus_points, "
    "funding_partner_id, grant_state, transfer_id, scope, idem_key, redeemed_at FROM coupon_redemptions "
    "WHERE coupon_redemption_id = ? FOR UPDATE";
constexpr absl::string_view kSetCouponGrant =
    "UPDATE coupon_redemptions SET grant_state = ?, transfer_id = ? WHERE coupon_redemption_id = ?";
constexpr absl::string_view kDueCouponGrants =
    "SELECT coupon_redemption_id FROM coupon_redemptions WHERE grant_state = 1 ORDER BY redeemed_at LIMIT ?";

// ---- helpers ------------------------------------------------------------------

void SetOptionalTime(sql::PreparedStatement& s, int i, bool has, const google::protobuf::Timestamp& ts) {
  if (!has) {
    s.setNull(i, 0);
  } else {
    s.setString(i, SqlTime(FromProtoTime(ts)));
  }
}
bool ReadTime(const sql::ResultSet& rs, int col, google::protobuf::Timestamp* out) {
  if (rs.isNull(col)) return false;
  *out = ToProtoTime(ParseSqlTime(Str(rs, col)));
  return true;
}
std::string StateList(const std::vector<int>& states) {
  std::string out;
  for (int s : states) absl::StrAppend(&out, out.empty() ? "" : ",", s);
  return out;
}

absl::StatusOr<v1::Reward> ReadReward(const sql::ResultSet& rs) {
  v1::Reward r;
  if (!r.ParseFromString(ReadBlob(rs, 13))) {
    return absl::InternalError(absl::StrCat("reward ", Str(rs, 1), ": unreadable body"));
  }
  r.set_reward_id(Str(rs, 1));
  r.set_partner_id(Str(rs, 2));
  r.set_category(Str(rs, 3));
  r.set_state(static_cast<v1::RewardState>(rs.getInt(4)));
  r.set_points_price(rs.getInt64(5));
  r.set_unlimited_stock(rs.getBoolean(6));
  r.set_stock_available(rs.getInt64(7));
  r.set_stock_reserved(rs.getInt64(8));
  r.set_stock_honoured(rs.getInt64(9));
  r.set_proposed_by_partner_id(Str(rs, 10));
  if (!ReadTime(rs, 11, r.mutable_valid_from())) r.clear_valid_from();
  if (!ReadTime(rs, 12, r.mutable_valid_until())) r.clear_valid_until();
  ReadTime(rs, 14, r.mutable_created_at());
  ReadTime(rs, 15, r.mutable_updated_at());
  r.set_version(rs.getInt64(16));
  return r;
}

Redemption ReadRedemption(const sql::ResultSet& rs) {
  Redemption r;
  r.redemption_id = Str(rs, 1);
  r.scope = Str(rs, 2);
  r.key = Str(rs, 3);
  r.fingerprint = Str(rs, 4);
  r.request = ReadBlob(rs, 5);
  r.member_id = Str(rs, 6);
  r.reward_id = Str(rs, 7);
  r.partner_id = Str(rs, 8);
  r.channel_partner_id = Str(rs, 9);
  r.points = rs.getInt64(10);
  r.hold_ttl_seconds = rs.getInt64(11);
  r.attempt = rs.getInt(12);
  r.state = static_cast<SagaState>(rs.getInt(13));
  r.hold_id = Str(rs, 14);
  r.voucher_code = Str(rs, 15);
  r.status_code = rs.getInt(16);
  r.status_message = Str(rs, 17);
  r.response = ReadBlob(rs, 18);
  r.created_at = ParseSqlTime(Str(rs, 19));
  r.updated_at = ParseSqlTime(Str(rs, 20));
  return r;
}

std::pair<int64_t, v1::Voucher> ReadVoucher(const sql::ResultSet& rs) {
  v1::Voucher v;
  const int64_t id = rs.getInt64(1);
  v.set_voucher_code(Str(rs, 2));
  v.set_reward_id(Str(rs, 3));
  v.set_reward_name(Str(rs, 4));
  v.set_member_id(Str(rs, 5));
  v.set_partner_id(Str(rs, 6));
  v.set_channel_partner_id(Str(rs, 7));
  v.set_points(rs.getInt64(8));
  v.set_hold_id(Str(rs, 9));
  v.set_state(static_cast<v1::VoucherState>(rs.getInt(10)));
  ReadTime(rs, 11, v.mutable_issued_at());
  ReadTime(rs, 12, v.mutable_expires_at());
  if (!ReadTime(rs, 13, v.mutable_honoured_at())) v.clear_honoured_at();
  if (!ReadTime(rs, 14, v.mutable_cancelled_at())) v.clear_cancelled_at();
  v.set_capture_transfer_id(Str(rs, 15));
  v.set_honour_reference(Str(rs, 16));
  v.set_cancel_reason(Str(rs, 17));
  return {id, std::move(v)};
}

std::string PartnerList(const v1::Campaign& c) {
  if (c.partner_ids().empty()) return "";
  std::string out = ",";
  for (const auto& p : c.partner_ids()) absl::StrAppend(&out, p, ",");
  return out;
}

absl::StatusOr<v1::Campaign> ReadCampaign(const sql::ResultSet& rs) {
  v1::Campaign c;
  if (!c.ParseFromString(ReadBlob(rs, 5))) {
    return absl::InternalError(absl::StrCat("campaign ", Str(rs, 1), ": unreadable body"));
  }
  c.set_campaign_id(Str(rs, 1));
  c.set_state(static_cast<v1::CampaignState>(rs.getInt(2)));
  c.set_budget_points(rs.getInt64(3));
  c.set_budget_allocated_points(rs.getInt64(4));
  c.set_budget_remaining_points(c.budget_points() > 0 ? c.budget_points() - c.budget_allocated_points() : 0);
  ReadTime(rs, 6, c.mutable_created_at());
  ReadTime(rs, 7, c.mutable_updated_at());
  c.set_version(rs.getInt64(8));
  return c;
}

// ---- the transaction ------------------------------------------------------------

class MysqlTx final : public CatalogTx {
 public:
  explicit MysqlTx(db::Transaction& tx) : tx_(tx) {}

  absl::StatusOr<std::optional<IdempotencyRecord>> ClaimKey(const IdempotencyRecord& claim) override {
    return db::ClaimIdempotencyKey(tx_, claim);
  }

  absl::Status SaveOutcome(const IdempotencyRecord& record) override { return db::SaveIdempotencyOutcome(tx_, record); }

  absl::StatusOr<std::optional<IdempotencyRecord>> FindKey(const std::string& scope, const std::string& key) override {
    return db::FindIdempotencyKey(tx_, scope, key);
  }

  absl::Status InsertReward(const v1::Reward& r) override {
    auto& s = tx_.Prepare(kInsertReward);
    std::istringstream body;
    s.setString(1, r.reward_id());
    s.setString(2, r.partner_id());
    s.setString(3, r.category());
    s.setInt(4, r.state());
    s.setInt64(5, r.points_price());
    s.setBoolean(6, r.unlimited_stock());
    s.setInt64(7, r.stock_available());
    s.setInt64(8, r.stock_reserved());
    s.setInt64(9, r.stock_honoured());
    s.setString(10, r.proposed_by_partner_id());
    SetOptionalTime(s, 11, r.has_valid_from(), r.valid_from());
    SetOptionalTime(s, 12, r.has_valid_until(), r.valid_until());
    SetBlob(s, 13, r.SerializeAsString(), body);
    s.setString(14, SqlTime(FromProtoTime(r.created_at())));
    s.setString(15, SqlTime(FromProtoTime(r.updated_at())));
    s.setInt64(16, r.version());
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::Status UpdateReward(const v1::Reward& r) override {
    auto& s = tx_.Prepare(kUpdateReward);
    std::istringstream body;
    s.setString(1, r.category());
    s.setInt(2, r.state());
    s.setInt64(3, r.points_price());
    SetOptionalTime(s, 4, r.has_valid_from(), r.valid_from());
    SetOptionalTime(s, 5, r.has_valid_until(), r.valid_until());
    SetBlob(s, 6, r.SerializeAsString(), body);
    s.setString(7, SqlTime(FromProtoTime(r.updated_at())));
    s.setInt64(8, r.version());
    s.setString(9, r.reward_id());
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<v1::Reward>> GetReward(const std::string& reward_id, bool for_update) override {
    auto& s = tx_.Prepare(for_update ? kSelectRewardForUpdate : kSelectReward);
    s.setString(1, reward_id);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    if (!rs->next()) return std::nullopt;
    return ReadReward(*rs);
  }

  absl::StatusOr<std::vector<v1::Reward>> ListRewards(const RewardFilter& f, int limit) override {
    auto& s = tx_.Prepare(kListRewards);
    std::vector<int> states(f.states.begin(), f.states.end());
    s.setString(1, f.after_reward_id);
    s.setString(2, f.partner_id);
    s.setString(3, f.partner_id);
    s.setString(4, f.category);
    s.setString(5, f.category);
    s.setString(6, f.visible_to_partner_id);
    s.setString(7, f.visible_to_partner_id);
    s.setString(8, f.visible_to_partner_id);
    s.setInt(9, static_cast<int>(states.size()));
    s.setString(10, StateList(states));
    s.setInt(11, limit);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    std::vector<v1::Reward> out;
    while (rs->next()) {
      ASSIGN_OR_RETURN(v1::Reward r, ReadReward(*rs));
      out.push_back(std::move(r));
    }
    return out;
  }

  absl::StatusOr<std::vector<v1::Reward>> ListRedeemable(const RedeemableFilter& f, int limit) override {
    auto& s = tx_.Prepare(kListRedeemable);
    s.setString(1, SqlTime(f.now));
    s.setString(2, SqlTime(f.now));
    s.setInt64(3, f.max_points_price);
    s.setString(4, f.partner_id);
    s.setString(5, f.partner_id);
    s.setString(6, f.category);
    s.setString(7, f.category);
    s.setInt64(8, f.after_points_price);
    s.setInt64(9, f.after_points_price);
    s.setString(10, f.after_reward_id);
    s.setInt(11, limit);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    std::vector<v1::Reward> out;
    while (rs->next()) {
      ASSIGN_OR_RETURN(v1::Reward r, ReadReward(*rs));
      out.push_back(std::move(r));
    }
    return out;
  }

  absl::StatusOr<bool> AdjustStock(const std::string& reward_id, int64_t delta, absl::Time now) override {
    auto& s = tx_.Prepare(kAdjustStock);
    s.setInt64(1, delta);
    s.setString(2, SqlTime(now));
    s.setString(3, reward_id);
    s.setInt64(4, delta);
    return s.executeUpdate() == 1;
  }

  absl::StatusOr<bool> ReserveUnit(const std::string& reward_id, bool limited) override {
    auto& s = tx_.Prepare(limited ? kReserveLimited : kReserveUnlimited);
    s.setString(1, reward_id);
    return s.executeUpdate() == 1;
  }

  absl::Status ReleaseUnit(const std::string& reward_id, bool limited) override {
    auto& s = tx_.Prepare(limited ? kReleaseLimited : kReleaseUnlimited);
    s.setString(1, reward_id);
    if (s.executeUpdate() != 1) return absl::InternalError(absl::StrCat("reward ", reward_id, ": no reserved unit"));
    return absl::OkStatus();
  }

  absl::Status ConsumeUnit(const std::string& reward_id) override {
    auto& s = tx_.Prepare(kConsumeUnit);
    s.setString(1, reward_id);
    if (s.executeUpdate() != 1) return absl::InternalError(absl::StrCat("reward ", reward_id, ": no reserved unit"));
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<Redemption>> FindRedemption(const std::string& scope, const std::string& key) override {
    auto& s = tx_.Prepare(kFindRedemption);
    s.setString(1, scope);
    s.setString(2, key);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    if (!rs->next()) return std::nullopt;
    const std::string id = Str(*rs, 1);
    rs.reset();
    return GetRedemption(id);
  }

  absl::StatusOr<std::optional<Redemption>> GetRedemption(const std::string& redemption_id) override {
    auto& s = tx_.Prepare(kGetRedemption);
    s.setString(1, redemption_id);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    if (!rs->next()) return std::nullopt;
    return ReadRedemption(*rs);
  }

  absl::Status InsertRedemption(const Redemption& r) override {
    auto& s = tx_.Prepare(kInsertRedemption);
    std::istringstream request, response;
    s.setString(1, r.redemption_id);
    s.setString(2, r.scope);
    s.setString(3, r.key);
    s.setString(4, r.fingerprint);
    SetBlob(s, 5, r.request, request);
    s.setString(6, r.member_id);
    s.setString(7, r.reward_id);
    s.setString(8, r.partner_id);
    s.setString(9, r.channel_partner_id);
    s.setInt64(10, r.points);
    s.setInt64(11, r.hold_ttl_seconds);
    s.setInt(12, r.attempt);
    s.setInt(13, static_cast<int>(r.state));
    s.setString(14, r.hold_id);
    s.setString(15, r.voucher_code);
    s.setInt(16, r.status_code);
    s.setString(17, r.status_message.substr(0, 1000));
    SetBlob(s, 18, r.response, response);
    s.setString(19, SqlTime(r.created_at));
    s.setString(20, SqlTime(r.updated_at));
    // A concurrent request with the same key committed first: re-run the
    // transaction, which then finds its row.
    return db::ExecuteUnlessDuplicate(s, absl::AbortedError("idempotency key claimed concurrently"));
  }

  absl::Status UpdateRedemption(const Redemption& r) override {
    auto& s = tx_.Prepare(kUpdateRedemption);
    std::istringstream response;
    s.setInt(1, r.attempt);
    s.setInt(2, static_cast<int>(r.state));
    s.setString(3, r.hold_id);
    s.setString(4, r.voucher_code);
    s.setInt(5, r.status_code);
    s.setString(6, r.status_message.substr(0, 1000));
    SetBlob(s, 7, r.response, response);
    s.setString(8, SqlTime(r.updated_at));
    s.setString(9, r.redemption_id);
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<Redemption>> ListStuckRedemptions(absl::Time before, int limit) override {
    auto& s = tx_.Prepare(kStuckRedemptions);
    s.setString(1, SqlTime(before));
    s.setInt(2, limit);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    std::vector<Redemption> out;
    while (rs->next()) out.push_back(ReadRedemption(*rs));
    return out;
  }

  absl::Status InsertVoucher(const std::string& redemption_id, const v1::Voucher& v) override {
    auto& s = tx_.Prepare(kInsertVoucher);
    s.setString(1, redemption_id);
    s.setString(2, v.voucher_code());
    s.setString(3, v.reward_id());
    s.setString(4, v.reward_name());
    s.setString(5, v.member_id());
    s.setString(6, v.partner_id());
    s.setString(7, v.channel_partner_id());
    s.setInt64(8, v.points());
    s.setString(9, v.hold_id());
    s.setInt(10, v.state());
    s.setString(11, SqlTime(FromProtoTime(v.issued_at())));
    s.setString(12, SqlTime(FromProtoTime(v.expires_at())));
    return db::ExecuteUnlessDuplicate(s, absl::AlreadyExistsError("voucher code taken"));
  }

  absl::Status UpdateVoucher(const v1::Voucher& v) override {
    auto& s = tx_.Prepare(kUpdateVoucher);
    s.setInt(1, v.state());
    SetOptionalTime(s, 2, v.has_honoured_at(), v.honoured_at());
    SetOptionalTime(s, 3, v.has_cancelled_at(), v.cancelled_at());
    s.setString(4, v.capture_transfer_id());
    s.setString(5, v.honour_reference());
    s.setString(6, v.cancel_reason());
    s.setString(7, v.voucher_code());
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::StatusOr<bool> StartVoucherOperation(const std::string& code, int op, absl::Time now,
                                             const std::string& request_marker) override {
    auto& s = tx_.Prepare(kStartVoucherOperation);
    s.setInt(1, op);
    s.setString(2, SqlTime(now));
    s.setString(3, request_marker);
    s.setString(4, code);
    s.setString(5, request_marker);
    s.executeUpdate();
    // Read back rather than trust the affected-row count, which leaves out
    // a row the update did not change.
    ASSIGN_OR_RETURN(std::string marker, VoucherRequestMarker(code));
    return marker == request_marker;
  }

  absl::Status ClearVoucherOperation(const std::string& code) override {
    auto& s = tx_.Prepare(kClearVoucherOperation);
    s.setString(1, code);
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> VoucherRequestMarker(const std::string& code) override {
    auto& s = tx_.Prepare(kSelectVoucherMarker);
    s.setString(1, code);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    return rs->next() ? Str(*rs, 1) : std::string();
  }

  absl::StatusOr<std::vector<std::pair<std::string, int>>> ListPendingVouchers(absl::Time before,
                                                                               int limit) override {
    auto& s = tx_.Prepare(kPendingVouchers);
    s.setString(1, SqlTime(before));
    s.setInt(2, limit);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    std::vector<std::pair<std::string, int>> out;
    while (rs->next()) out.emplace_back(Str(*rs, 1), rs->getInt(2));
    return out;
  }

  absl::StatusOr<std::optional<v1::Voucher>> GetVoucher(const std::string& code, bool for_update) override {
    auto& s = tx_.Prepare(for_update ? kSelectVoucherForUpdate : kSelectVoucher);
    s.setString(1, code);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    if (!rs->next()) return std::nullopt;
    return ReadVoucher(*rs).second;
  }

  absl::StatusOr<std::vector<std::pair<int64_t, v1::Voucher>>> ListVouchers(const VoucherFilter& f,
                                                                            int limit) override {
    auto& s = tx_.Prepare(kListVouchers);
    std::vector<int> states(f.states.begin(), f.states.end());
    s.setInt64(1, f.before_id > 0 ? f.before_id : INT64_MAX);
    s.setString(2, f.member_id);
    s.setString(3, f.member_id);
    s.setString(4, f.partner_id);
    s.setString(5, f.partner_id);
    s.setString(6, f.partner_id);
    s.setInt(7, static_cast<int>(states.size()));
    s.setString(8, StateList(states));
    s.setInt(9, limit);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    std::vector<std::pair<int64_t, v1::Voucher>> out;
    while (rs->next()) out.push_back(ReadVoucher(*rs));
    return out;
  }

  absl::StatusOr<int64_t> CountMemberVouchers(const std::string& member_id, const std::string& reward_id,
                                              absl::Time since) override {
    auto& s = tx_.Prepare(kCountMemberVouchers);
    s.setString(1, member_id);
    s.setString(2, reward_id);
    s.setString(3, SqlTime(since));
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    return rs->next() ? rs->getInt64(1) : 0;
  }

  absl::Status InsertCampaign(const v1::Campaign& c) override {
    auto& s = tx_.Prepare(kInsertCampaign);
    std::istringstream body;
    s.setString(1, c.campaign_id());
    s.setInt(2, c.state());
    s.setBoolean(3, c.bonus_case() != v1::Campaign::BONUS_NOT_SET);
    s.setString(4, PartnerList(c));
    SetOptionalTime(s, 5, c.has_end_time(), c.end_time());
    s.setInt64(6, c.budget_points());
    SetBlob(s, 7, c.SerializeAsString(), body);
    s.setString(8, SqlTime(FromProtoTime(c.created_at())));
    s.setString(9, SqlTime(FromProtoTime(c.updated_at())));
    s.setInt64(10, c.version());
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::Status UpdateCampaign(const v1::Campaign& c) override {
    auto& s = tx_.Prepare(kUpdateCampaign);
    std::istringstream body;
    s.setInt(1, c.state());
    s.setBoolean(2, c.bonus_case() != v1::Campaign::BONUS_NOT_SET);
    s.setString(3, PartnerList(c));
    SetOptionalTime(s, 4, c.has_end_time(), c.end_time());
    s.setInt64(5, c.budget_points());
    SetBlob(s, 6, c.SerializeAsString(), body);
    s.setString(7, SqlTime(FromProtoTime(c.updated_at())));
    s.setInt64(8, c.version());
    s.setString(9, c.campaign_id());
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<v1::Campaign>> GetCampaign(const std::string& id, bool for_update) override {
    auto& s = tx_.Prepare(for_update ? kSelectCampaignForUpdate : kSelectCampaign);
    s.setString(1, id);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    if (!rs->next()) return std::nullopt;
    return ReadCampaign(*rs);
  }

  absl::StatusOr<std::vector<v1::Campaign>> ListCampaigns(const CampaignFilter& f, int limit) override {
    auto& s = tx_.Prepare(kListCampaigns);
    std::vector<int> states(f.states.begin(), f.states.end());
    s.setString(1, f.after_campaign_id);
    s.setString(2, f.partner_id);
    s.setString(3, f.partner_id);
    s.setInt(4, static_cast<int>(states.size()));
    s.setString(5, StateList(states));
    s.setInt(6, limit);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    std::vector<v1::Campaign> out;
    while (rs->next()) {
      ASSIGN_OR_RETURN(v1::Campaign c, ReadCampaign(*rs));
      out.push_back(std::move(c));
    }
    return out;
  }

  absl::StatusOr<std::vector<v1::Campaign>> ListEarnRules(absl::Time now) override {
    auto& s = tx_.Prepare(kListEarnRules);
    s.setString(1, SqlTime(now));
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    std::vector<v1::Campaign> out;
    while (rs->next()) {
      ASSIGN_OR_RETURN(v1::Campaign c, ReadCampaign(*rs));
      out.push_back(std::move(c));
    }
    return out;
  }

  absl::StatusOr<int64_t> EarnRulesVersion(bool bump) override {
    auto& sel = tx_.Prepare(bump ? kLockRulesVersion : kSelectRulesVersion);
    std::unique_ptr<sql::ResultSet> rs(sel.executeQuery());
    if (!rs->next()) return absl::InternalError("earn_rules_head row missing");
    int64_t version = rs->getInt64(1);
    rs.reset();
    if (!bump) return version;
    ++version;
    auto& up = tx_.Prepare(kSetRulesVersion);
    up.setInt64(1, version);
    up.executeUpdate();
    return version;
  }

  absl::StatusOr<bool> AllocateBudget(const std::string& campaign_id, int64_t points) override {
    auto& s = tx_.Prepare(kAllocateBudget);
    s.setInt64(1, points);
    s.setString(2, campaign_id);
    s.setInt64(3, points);
    return s.executeUpdate() == 1;
  }

  absl::Status ReleaseBudget(const std::string& campaign_id, int64_t points) override {
    auto& s = tx_.Prepare(kReleaseBudget);
    s.setInt64(1, points);
    s.setString(2, campaign_id);
    s.setInt64(3, points);
    if (s.executeUpdate() != 1) return absl::InternalError("campaign budget would go negative");
    return absl::OkStatus();
  }

  absl::Status InsertLease(const v1::CampaignBudgetLease& l) override {
    auto& s = tx_.Prepare(kInsertLease);
    s.setString(1, l.campaign_budget_lease_id());
    s.setString(2, l.campaign_id());
    s.setString(3, l.holder());
    s.setInt64(4, l.granted_points());
    s.setString(5, SqlTime(FromProtoTime(l.created_at())));
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::Status CloseLease(const v1::CampaignBudgetLease& l) override {
    auto& s = tx_.Prepare(kCloseLease);
    s.setString(1, SqlTime(FromProtoTime(l.closed_at())));
    s.setInt64(2, l.used_points());
    s.setInt64(3, l.returned_points());
    s.setString(4, l.campaign_budget_lease_id());
    if (s.executeUpdate() != 1) return absl::FailedPreconditionError("lease already closed");
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<v1::CampaignBudgetLease>> GetLease(const std::string& lease_id) override {
    auto& s = tx_.Prepare(kSelectLease);
    s.setString(1, lease_id);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    if (!rs->next()) return std::nullopt;
    v1::CampaignBudgetLease l;
    l.set_campaign_budget_lease_id(Str(*rs, 1));
    l.set_campaign_id(Str(*rs, 2));
    l.set_holder(Str(*rs, 3));
    l.set_granted_points(rs->getInt64(4));
    ReadTime(*rs, 5, l.mutable_created_at());
    if (!ReadTime(*rs, 6, l.mutable_closed_at())) l.clear_closed_at();
    l.set_used_points(rs->getInt64(7));
    l.set_returned_points(rs->getInt64(8));
    return l;
  }

  absl::Status InsertCouponBatch(const v1::CouponBatch& b, const std::vector<std::string>& codes) override {
    {
      auto& s = tx_.Prepare(kInsertCouponBatch);
      std::istringstream body;
      s.setString(1, b.coupon_batch_id());
      s.setString(2, b.campaign_id());
      SetBlob(s, 3, b.SerializeAsString(), body);
      s.setString(4, SqlTime(FromProtoTime(b.created_at())));
      s.executeUpdate();
    }
    // Multi-row inserts of bound parameters: the statement text depends only
    // on the row count (at most two distinct texts per batch size).
    for (size_t start = 0; start < codes.size(); start += kCodesPerInsert) {
      const size_t n = std::min(kCodesPerInsert, codes.size() - start);
      std::string sql = "INSERT INTO coupon_codes (code, coupon_batch_id, redemption_count) VALUES ";
      for (size_t i = 0; i < n; ++i) absl::StrAppend(&sql, i == 0 ? "" : ", ", "(?, ?, 0)");
      auto& s = tx_.Prepare(sql);
      for (size_t i = 0; i < n; ++i) {
        s.setString(static_cast<unsigned int>(2 * i + 1), codes[start + i]);
        s.setString(static_cast<unsigned int>(2 * i + 2), b.coupon_batch_id());
      }
      RETURN_IF_ERROR(db::ExecuteUnlessDuplicate(s, absl::AbortedError("coupon code collision; drawing again")));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<v1::CouponBatch>> GetCouponBatch(const std::string& batch_id) override {
    auto& s = tx_.Prepare(kSelectCouponBatch);
    s.setString(1, batch_id);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    if (!rs->next()) return std::nullopt;
    v1::CouponBatch b;
    if (!b.ParseFromString(ReadBlob(*rs, 1))) return absl::InternalError("coupon batch unreadable");
    b.set_redemption_count(rs->getInt64(2));
    return b;
  }

  absl::StatusOr<std::vector<v1::CouponCode>> ListCouponCodes(const std::string& batch_id,
                                                              const std::string& after_code, int limit) override {
    auto& s = tx_.Prepare(kListCouponCodes);
    s.setString(1, batch_id);
    s.setString(2, after_code);
    s.setInt(3, limit);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    std::vector<v1::CouponCode> out;
    while (rs->next()) {
      v1::CouponCode c;
      c.set_code(Str(*rs, 1));
      c.set_redemption_count(rs->getInt(2));
      out.push_back(std::move(c));
    }
    return out;
  }

  absl::StatusOr<std::optional<std::pair<std::string, int>>> GetCouponCode(const std::string& code,
                                                                           bool for_update) override {
    auto& s = tx_.Prepare(for_update ? kSelectCouponCodeForUpdate : kSelectCouponCode);
    s.setString(1, code);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    if (!rs->next()) return std::nullopt;
    return std::make_pair(Str(*rs, 1), rs->getInt(2));
  }

  absl::StatusOr<int> MemberCouponUses(const std::string& batch_id, const std::string& member_id) override {
    auto& s = tx_.Prepare(kMemberCouponUses);
    s.setString(1, batch_id);
    s.setString(2, member_id);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    return rs->next() ? rs->getInt(1) : 0;
  }

  absl::StatusOr<std::pair<int, int>> CountCouponUse(const std::string& batch_id, const std::string& code,
                                                     const std::string& member_id) override {
    {
      auto& s = tx_.Prepare(kCountCodeUse);
      s.setString(1, code);
      s.executeUpdate();
    }
    {
      auto& s = tx_.Prepare(kCountMemberUse);
      s.setString(1, batch_id);
      s.setString(2, member_id);
      s.executeUpdate();
    }
    {
      auto& s = tx_.Prepare(kCountBatchUse);
      s.setString(1, batch_id);
      s.executeUpdate();
    }
    ASSIGN_OR_RETURN(auto code_row, GetCouponCode(code, /*for_update=*/true));
    ASSIGN_OR_RETURN(int member_uses, MemberCouponUses(batch_id, member_id));
    return std::make_pair(code_row.has_value() ? code_row->second : 0, member_uses);
  }

  absl::Status UncountCouponUse(const std::string& batch_id, const std::string& code,
                                const std::string& member_id) override {
    {
      auto& s = tx_.Prepare(kUncountCodeUse);
      s.setString(1, code);
      s.executeUpdate();
    }
    {
      auto& s = tx_.Prepare(kUncountMemberUse);
      s.setString(1, batch_id);
      s.setString(2, member_id);
      s.executeUpdate();
    }
    auto& s = tx_.Prepare(kUncountBatchUse);
    s.setString(1, batch_id);
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::Status InsertCouponUse(const CouponUse& u) override {
    auto& s = tx_.Prepare(kInsertCouponUse);
    const v1::CouponRedemption& r = u.redemption;
    s.setString(1, r.coupon_redemption_id());
    s.setString(2, r.code());
    s.setString(3, r.coupon_batch_id());
    s.setString(4, r.campaign_id());
    s.setString(5, r.member_id());
    s.setString(6, r.partner_id());
    s.setInt64(7, r.bonus_points());
    s.setString(8, u.funding_partner_id);
    s.setInt(9, u.grant_state);
    s.setString(10, r.transfer_id());
    s.setString(11, u.scope);
    s.setString(12, u.key);
    s.setString(13, SqlTime(FromProtoTime(r.redeemed_at())));
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<CouponUse>> GetCouponUse(const std::string& redemption_id) override {
    auto& s = tx_.Prepare(kSelectCouponUse);
    s.setString(1, redemption_id);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    if (!rs->next()) return std::nullopt;
    CouponUse u;
    v1::CouponRedemption& r = u.redemption;
    r.set_coupon_redemption_id(Str(*rs, 1));
    r.set_code(Str(*rs, 2));
    r.set_coupon_batch_id(Str(*rs, 3));
    r.set_campaign_id(Str(*rs, 4));
    r.set_member_id(Str(*rs, 5));
    r.set_partner_id(Str(*rs, 6));
    r.set_bonus_points(rs->getInt64(7));
    u.funding_partner_id = Str(*rs, 8);
    u.grant_state = rs->getInt(9);
    r.set_transfer_id(Str(*rs, 10));
    u.scope = Str(*rs, 11);
    u.key = Str(*rs, 12);
    ReadTime(*rs, 13, r.mutable_redeemed_at());
    return u;
  }

  absl::Status SetCouponGrant(const std::string& redemption_id, int grant_state,
                              const std::string& transfer_id) override {
    auto& s = tx_.Prepare(kSetCouponGrant);
    s.setInt(1, grant_state);
    s.setString(2, transfer_id);
    s.setString(3, redemption_id);
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::string>> ListDueCouponGrants(int limit) override {
    auto& s = tx_.Prepare(kDueCouponGrants);
    s.setInt(1, limit);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    std::vector<std::string> out;
    while (rs->next()) out.push_back(Str(*rs, 1));
    return out;
  }

  absl::StatusOr<std::vector<std::string>> ListExpiredVouchers(absl::Time now, int limit) override {
    auto& s = tx_.Prepare(kExpiredVouchers);
    s.setString(1, SqlTime(now));
    s.setInt(2, limit);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    std::vector<std::string> out;
    while (rs->next()) out.push_back(Str(*rs, 1));
    return out;
  }

 private:
  db::Transaction& tx_;
};

class MysqlCatalogStore final : public CatalogStore {
 public:
  explicit MysqlCatalogStore(db::ConnectionPool& pool) : pool_(pool) {}

  absl::Status Run(absl::string_view context, const std::function<absl::Status(CatalogTx&)>& body) override {
    return db::RunInTransaction(pool_, context, [&](db::Transaction& tx) {
      MysqlTx ctx(tx);
      return body(ctx);
    });
  }

 private:
  db::ConnectionPool& pool_;
};

}  // namespace

std::unique_ptr<CatalogStore> NewMysqlCatalogStore(db::ConnectionPool& pool) {
  return std::make_unique<MysqlCatalogStore>(pool);
}

}  // namespace loyalty::catalog
