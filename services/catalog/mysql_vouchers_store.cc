// MysqlTx (mysql_catalog_tx.h): vouchers, their pending operations and expiry.
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

using db::SqlTime;
using db::Str;

#define LOYALTY_VOUCHER_COLUMNS                                                                   \
  "id, voucher_code, reward_id, reward_name, member_id, partner_id, channel_partner_id, points, " \
  "hold_id, state, issued_at, expires_at, honoured_at, cancelled_at, capture_transfer_id, "       \
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
constexpr absl::string_view kSelectVoucher = "SELECT " LOYALTY_VOUCHER_COLUMNS " FROM vouchers WHERE voucher_code = ?";
constexpr absl::string_view kSelectVoucherForUpdate =
    "SELECT " LOYALTY_VOUCHER_COLUMNS " FROM vouchers WHERE voucher_code = ? FOR UPDATE";
constexpr absl::string_view kListVouchers =
    "SELECT " LOYALTY_VOUCHER_COLUMNS
    " FROM vouchers WHERE id < ? AND (? = '' OR member_id = ?) "
    "AND (? = '' OR partner_id = ? OR channel_partner_id = ?) AND (? = 0 OR FIND_IN_SET(state, ?) > 0) "
    "ORDER BY id DESC LIMIT ?";
constexpr absl::string_view kCountMemberVouchers =
    "SELECT COUNT(*) FROM vouchers WHERE member_id = ? AND reward_id = ? AND issued_at >= ? AND state IN (1, 2)";
constexpr absl::string_view kExpiredVouchers =
    "SELECT voucher_code FROM vouchers WHERE state = 1 AND expires_at <= ? ORDER BY expires_at LIMIT ?";

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

}  // namespace

absl::Status MysqlTx::InsertVoucher(const std::string& redemption_id, const v1::Voucher& v) {
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

absl::Status MysqlTx::UpdateVoucher(const v1::Voucher& v) {
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

absl::StatusOr<bool> MysqlTx::StartVoucherOperation(const std::string& code, int op, absl::Time now,
                                                    const std::string& request_marker) {
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

absl::Status MysqlTx::ClearVoucherOperation(const std::string& code) {
  auto& s = tx_.Prepare(kClearVoucherOperation);
  s.setString(1, code);
  s.executeUpdate();
  return absl::OkStatus();
}

absl::StatusOr<std::string> MysqlTx::VoucherRequestMarker(const std::string& code) {
  auto& s = tx_.Prepare(kSelectVoucherMarker);
  s.setString(1, code);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  return rs->next() ? Str(*rs, 1) : std::string();
}

absl::StatusOr<std::vector<std::pair<std::string, int>>> MysqlTx::ListPendingVouchers(absl::Time before, int limit) {
  auto& s = tx_.Prepare(kPendingVouchers);
  s.setString(1, SqlTime(before));
  s.setInt(2, limit);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  std::vector<std::pair<std::string, int>> out;
  while (rs->next()) out.emplace_back(Str(*rs, 1), rs->getInt(2));
  return out;
}

absl::StatusOr<std::optional<v1::Voucher>> MysqlTx::GetVoucher(const std::string& code, bool for_update) {
  auto& s = tx_.Prepare(for_update ? kSelectVoucherForUpdate : kSelectVoucher);
  s.setString(1, code);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  if (!rs->next()) return std::nullopt;
  return ReadVoucher(*rs).second;
}

absl::StatusOr<std::vector<std::pair<int64_t, v1::Voucher>>> MysqlTx::ListVouchers(const VoucherFilter& f, int limit) {
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

absl::StatusOr<int64_t> MysqlTx::CountMemberVouchers(const std::string& member_id, const std::string& reward_id,
                                                     absl::Time since) {
  auto& s = tx_.Prepare(kCountMemberVouchers);
  s.setString(1, member_id);
  s.setString(2, reward_id);
  s.setString(3, SqlTime(since));
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  return rs->next() ? rs->getInt64(1) : 0;
}

absl::StatusOr<std::vector<std::string>> MysqlTx::ListExpiredVouchers(absl::Time now, int limit) {
  auto& s = tx_.Prepare(kExpiredVouchers);
  s.setString(1, SqlTime(now));
  s.setInt(2, limit);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  std::vector<std::string> out;
  while (rs->next()) out.push_back(Str(*rs, 1));
  return out;
}

}  // namespace loyalty::catalog::internal
