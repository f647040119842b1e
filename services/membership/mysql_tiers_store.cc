// MysqlTx: the tier ladder and tier changes (see mysql_membership_tx.h).
#include "services/membership/mysql_membership_tx.h"

#include <cstdint>
#include <memory>

#include "common/time/proto_time.h"

namespace loyalty::membership::mysql_internal {
namespace {

#define LOYALTY_TIER_CHANGE_COLUMNS                                                              \
  "id, tier_change_id, member_id, from_tier_id, to_tier_id, reason, qualifying_points, "         \
  "window_start_time, window_end_time, changed_at, valid_until, actor_key_id"

constexpr absl::string_view kSelectLadder =
    "SELECT version, qualification_window_months, updated_at FROM tier_ladder WHERE id = 1";
constexpr absl::string_view kSelectLadderForUpdate =
    "SELECT version, qualification_window_months, updated_at FROM tier_ladder WHERE id = 1 FOR UPDATE";
constexpr absl::string_view kSelectTiers =
    "SELECT tier_id, name, tier_rank, qualifying_points_threshold, tier_multiplier_bp, retention_months, "
    "annual_fee_minor, annual_fee_currency FROM tiers ORDER BY tier_rank";
constexpr absl::string_view kUpdateLadder =
    "UPDATE tier_ladder SET version = ?, qualification_window_months = ?, updated_at = ? WHERE id = 1";
constexpr absl::string_view kDeleteTiers = "DELETE FROM tiers";
constexpr absl::string_view kInsertTier =
    "INSERT INTO tiers (tier_id, name, tier_rank, qualifying_points_threshold, tier_multiplier_bp, "
    "retention_months, annual_fee_minor, annual_fee_currency) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
constexpr absl::string_view kInsertTierChange =
    "INSERT INTO tier_changes (tier_change_id, member_id, from_tier_id, to_tier_id, reason, "
    "qualifying_points, window_start_time, window_end_time, changed_at, valid_until, actor_key_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
constexpr absl::string_view kSelectTierChanges =
    "SELECT " LOYALTY_TIER_CHANGE_COLUMNS " FROM tier_changes WHERE member_id = ? AND id < ? "
    "ORDER BY id DESC LIMIT ?";

v1::TierChange ReadTierChange(const sql::ResultSet& rs) {
  v1::TierChange c;
  c.set_tier_change_id(Str(rs, 2));
  c.set_member_id(Str(rs, 3));
  c.set_from_tier_id(Str(rs, 4));
  c.set_to_tier_id(Str(rs, 5));
  c.set_reason(static_cast<v1::TierChangeReason>(rs.getInt(6)));
  c.set_qualifying_points(rs.getInt64(7));
  if (!ReadTime(rs, 8, c.mutable_window_start_time())) c.clear_window_start_time();
  if (!ReadTime(rs, 9, c.mutable_window_end_time())) c.clear_window_end_time();
  ReadTime(rs, 10, c.mutable_changed_at());
  if (!ReadTime(rs, 11, c.mutable_valid_until())) c.clear_valid_until();
  c.set_actor_key_id(Str(rs, 12));
  return c;
}

}  // namespace

absl::StatusOr<v1::TierLadder> MysqlTx::GetLadder(bool for_update) {
  v1::TierLadder ladder;
  {
    auto& s = tx_.Prepare(for_update ? kSelectLadderForUpdate : kSelectLadder);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    if (!rs->next()) return absl::InternalError("tier ladder row missing");
    ladder.set_version(rs->getInt64(1));
    ladder.set_qualification_window_months(rs->getInt(2));
    ReadTime(*rs, 3, ladder.mutable_updated_at());
  }
  auto& s = tx_.Prepare(kSelectTiers);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  while (rs->next()) {
    v1::TierDefinition* t = ladder.add_tiers();
    t->set_tier_id(Str(*rs, 1));
    t->set_name(Str(*rs, 2));
    t->set_rank(rs->getInt(3));
    t->set_qualifying_points_threshold(rs->getInt64(4));
    t->set_tier_multiplier_bp(rs->getInt64(5));
    t->set_retention_months(rs->getInt(6));
    if (!rs->isNull(7)) {
      t->mutable_annual_fee()->set_amount_minor(rs->getInt64(7));
      t->mutable_annual_fee()->set_currency(Str(*rs, 8));
    }
  }
  return ladder;
}

absl::Status MysqlTx::SaveLadder(const v1::TierLadder& ladder) {
  auto& up = tx_.Prepare(kUpdateLadder);
  up.setInt64(1, ladder.version());
  up.setInt(2, ladder.qualification_window_months());
  SetTime(up, 3, ladder.updated_at());
  up.executeUpdate();
  tx_.Prepare(kDeleteTiers).executeUpdate();
  for (const auto& t : ladder.tiers()) {
    auto& s = tx_.Prepare(kInsertTier);
    s.setString(1, t.tier_id());
    s.setString(2, t.name());
    s.setInt(3, t.rank());
    s.setInt64(4, t.qualifying_points_threshold());
    s.setInt64(5, t.tier_multiplier_bp());
    s.setInt(6, t.retention_months());
    if (t.has_annual_fee()) {
      s.setInt64(7, t.annual_fee().amount_minor());
      s.setString(8, t.annual_fee().currency());
    } else {
      s.setNull(7, 0);
      s.setNull(8, 0);
    }
    s.executeUpdate();
  }
  return absl::OkStatus();
}

absl::Status MysqlTx::InsertTierChange(const v1::TierChange& c) {
  auto& s = tx_.Prepare(kInsertTierChange);
  s.setString(1, c.tier_change_id());
  s.setString(2, c.member_id());
  s.setString(3, c.from_tier_id());
  s.setString(4, c.to_tier_id());
  s.setInt(5, c.reason());
  s.setInt64(6, c.qualifying_points());
  SetOptionalTime(s, 7, c.has_window_start_time() ? &c.window_start_time() : nullptr);
  SetOptionalTime(s, 8, c.has_window_end_time() ? &c.window_end_time() : nullptr);
  SetTime(s, 9, c.changed_at());
  SetOptionalTime(s, 10, c.has_valid_until() ? &c.valid_until() : nullptr);
  s.setString(11, c.actor_key_id());
  s.executeUpdate();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::pair<int64_t, v1::TierChange>>> MysqlTx::ListTierChanges(
    const std::string& member_id, PageCursor cursor, int limit) {
  auto& s = tx_.Prepare(kSelectTierChanges);
  s.setString(1, member_id);
  s.setInt64(2, cursor.before_id > 0 ? cursor.before_id : INT64_MAX);
  s.setInt(3, limit);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  std::vector<std::pair<int64_t, v1::TierChange>> out;
  while (rs->next()) out.emplace_back(rs->getInt64(1), ReadTierChange(*rs));
  return out;
}

}  // namespace loyalty::membership::mysql_internal
