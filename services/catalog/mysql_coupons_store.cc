// MysqlTx (mysql_catalog_tx.h): coupon batches, codes, uses and bonus grants.
// The SQL of these tables, as named constants beside the code that runs it.
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <memory>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/db/mysql_error.h"
#include "common/db/sql_values.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "services/catalog/mysql_catalog_tx.h"

namespace loyalty::catalog::internal {
namespace {

using db::ReadBlob;
using db::SetBlob;
using db::SqlTime;
using db::Str;

constexpr size_t kCodesPerInsert = 500;
constexpr absl::string_view kInsertCouponBatch =
    "INSERT INTO coupon_batches (coupon_batch_id, campaign_id, body, redemption_count, created_at) "
    "VALUES (?, ?, ?, 0, ?)";
constexpr absl::string_view kSelectCouponBatch =
    "SELECT body, redemption_count FROM coupon_batches WHERE coupon_batch_id = ?";
constexpr absl::string_view kListCouponCodes =
    "SELECT code, redemption_count FROM coupon_codes WHERE coupon_batch_id = ? AND code > ? ORDER BY code LIMIT ?";
constexpr absl::string_view kSelectCouponCode =
    "SELECT coupon_batch_id, redemption_count FROM coupon_codes WHERE code = ?";
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

}  // namespace

absl::Status MysqlTx::InsertCouponBatch(const v1::CouponBatch& b, const std::vector<std::string>& codes) {
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

absl::StatusOr<std::optional<v1::CouponBatch>> MysqlTx::GetCouponBatch(const std::string& batch_id) {
  auto& s = tx_.Prepare(kSelectCouponBatch);
  s.setString(1, batch_id);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  if (!rs->next()) return std::nullopt;
  v1::CouponBatch b;
  if (!b.ParseFromString(ReadBlob(*rs, 1))) return absl::InternalError("coupon batch unreadable");
  b.set_redemption_count(rs->getInt64(2));
  return b;
}

absl::StatusOr<std::vector<v1::CouponCode>> MysqlTx::ListCouponCodes(const std::string& batch_id,
                                                                     const std::string& after_code, int limit) {
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

absl::StatusOr<std::optional<std::pair<std::string, int>>> MysqlTx::GetCouponCode(const std::string& code,
                                                                                  bool for_update) {
  auto& s = tx_.Prepare(for_update ? kSelectCouponCodeForUpdate : kSelectCouponCode);
  s.setString(1, code);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  if (!rs->next()) return std::nullopt;
  return std::make_pair(Str(*rs, 1), rs->getInt(2));
}

absl::StatusOr<int> MysqlTx::MemberCouponUses(const std::string& batch_id, const std::string& member_id) {
  auto& s = tx_.Prepare(kMemberCouponUses);
  s.setString(1, batch_id);
  s.setString(2, member_id);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  return rs->next() ? rs->getInt(1) : 0;
}

absl::StatusOr<std::pair<int, int>> MysqlTx::CountCouponUse(const std::string& batch_id, const std::string& code,
                                                            const std::string& member_id) {
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

absl::Status MysqlTx::UncountCouponUse(const std::string& batch_id, const std::string& code,
                                       const std::string& member_id) {
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

absl::Status MysqlTx::InsertCouponUse(const CouponUse& u) {
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

absl::StatusOr<std::optional<CouponUse>> MysqlTx::GetCouponUse(const std::string& redemption_id) {
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

absl::Status MysqlTx::SetCouponGrant(const std::string& redemption_id, int grant_state,
                                     const std::string& transfer_id) {
  auto& s = tx_.Prepare(kSetCouponGrant);
  s.setInt(1, grant_state);
  s.setString(2, transfer_id);
  s.setString(3, redemption_id);
  s.executeUpdate();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> MysqlTx::ListDueCouponGrants(int limit) {
  auto& s = tx_.Prepare(kDueCouponGrants);
  s.setInt(1, limit);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  std::vector<std::string> out;
  while (rs->next()) out.push_back(Str(*rs, 1));
  return out;
}

}  // namespace loyalty::catalog::internal
