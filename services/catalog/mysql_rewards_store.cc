// MysqlTx (mysql_catalog_tx.h): rewards and their stock. The SQL of these
// tables, as named constants beside the code that runs it.
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

using db::ParseSqlTime;
using db::ReadBlob;
using db::SetBlob;
using db::SqlTime;
using db::Str;

#define LOYALTY_REWARD_COLUMNS                                                                          \
  "reward_id, partner_id, category, state, points_price, unlimited_stock, stock_available, "            \
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
    "SELECT " LOYALTY_REWARD_COLUMNS
    " FROM rewards WHERE reward_id > ? "
    "AND (? = '' OR partner_id = ?) AND (? = '' OR category = ?) "
    "AND (? = '' OR state IN (2, 3) OR partner_id = ? OR proposed_by_partner_id = ?) "
    "AND (? = 0 OR FIND_IN_SET(state, ?) > 0) ORDER BY reward_id LIMIT ?";
constexpr absl::string_view kListRedeemable =
    "SELECT " LOYALTY_REWARD_COLUMNS
    " FROM rewards WHERE state = 2 "
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

}  // namespace

absl::Status MysqlTx::InsertReward(const v1::Reward& r) {
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

absl::Status MysqlTx::UpdateReward(const v1::Reward& r) {
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

absl::StatusOr<std::optional<v1::Reward>> MysqlTx::GetReward(const std::string& reward_id, bool for_update) {
  auto& s = tx_.Prepare(for_update ? kSelectRewardForUpdate : kSelectReward);
  s.setString(1, reward_id);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  if (!rs->next()) return std::nullopt;
  return ReadReward(*rs);
}

absl::StatusOr<std::vector<v1::Reward>> MysqlTx::ListRewards(const RewardFilter& f, int limit) {
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

absl::StatusOr<std::vector<v1::Reward>> MysqlTx::ListRedeemable(const RedeemableFilter& f, int limit) {
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

absl::StatusOr<bool> MysqlTx::AdjustStock(const std::string& reward_id, int64_t delta, absl::Time now) {
  auto& s = tx_.Prepare(kAdjustStock);
  s.setInt64(1, delta);
  s.setString(2, SqlTime(now));
  s.setString(3, reward_id);
  s.setInt64(4, delta);
  return s.executeUpdate() == 1;
}

absl::StatusOr<bool> MysqlTx::ReserveUnit(const std::string& reward_id, bool limited) {
  auto& s = tx_.Prepare(limited ? kReserveLimited : kReserveUnlimited);
  s.setString(1, reward_id);
  return s.executeUpdate() == 1;
}

absl::Status MysqlTx::ReleaseUnit(const std::string& reward_id, bool limited) {
  auto& s = tx_.Prepare(limited ? kReleaseLimited : kReleaseUnlimited);
  s.setString(1, reward_id);
  if (s.executeUpdate() != 1) return absl::InternalError(absl::StrCat("reward ", reward_id, ": no reserved unit"));
  return absl::OkStatus();
}

absl::Status MysqlTx::ConsumeUnit(const std::string& reward_id) {
  auto& s = tx_.Prepare(kConsumeUnit);
  s.setString(1, reward_id);
  if (s.executeUpdate() != 1) return absl::InternalError(absl::StrCat("reward ", reward_id, ": no reserved unit"));
  return absl::OkStatus();
}

}  // namespace loyalty::catalog::internal
