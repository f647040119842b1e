// MysqlTx: referrals, the ledger journal cursor, member activity and referral
// rewards (see mysql_membership_tx.h).
#include "services/membership/mysql_membership_tx.h"

#include <cstdint>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/time/proto_time.h"

namespace loyalty::membership::mysql_internal {
namespace {

#define LOYALTY_REFERRAL_COLUMNS                                                                  \
  "id, referral_id, referrer_member_id, referred_member_id, referral_code, state, enrolled_at, " \
  "rewarded_at, reward_points, reward_transfer_id"

constexpr absl::string_view kInsertReferral =
    "INSERT INTO referrals (referral_id, referrer_member_id, referred_member_id, referral_code, state, "
    "enrolled_at, rewarded_at, reward_points, reward_transfer_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
constexpr absl::string_view kSelectReferrals =
    "SELECT " LOYALTY_REFERRAL_COLUMNS " FROM referrals WHERE referrer_member_id = ? AND id < ? "
    "ORDER BY id DESC LIMIT ?";
constexpr absl::string_view kSelectReferralOf =
    "SELECT " LOYALTY_REFERRAL_COLUMNS " FROM referrals WHERE referred_member_id = ?";
constexpr absl::string_view kCountReferrals = "SELECT COUNT(*) FROM referrals WHERE referrer_member_id = ?";

constexpr absl::string_view kLockCursor = "SELECT position FROM feed_cursors WHERE name = ? FOR UPDATE";
constexpr absl::string_view kSetCursor = "UPDATE feed_cursors SET position = ?, updated_at = ? WHERE name = ?";
constexpr absl::string_view kRecordActivity =
    "UPDATE members SET last_activity_at = GREATEST(COALESCE(last_activity_at, ?), ?) WHERE member_id = ?";
constexpr absl::string_view kMarkReferralDue =
    "UPDATE referrals SET reward_due = 1 WHERE referred_member_id = ? AND state = 1 AND reward_due = 0";
constexpr absl::string_view kSelectDueReferrals =
    "SELECT " LOYALTY_REFERRAL_COLUMNS " FROM referrals WHERE reward_due = 1 AND state = 1 ORDER BY id LIMIT ?";
// Only a referral still due: another replica may have completed it since it
// was listed, and its outcome stands.
constexpr absl::string_view kSelectReferralAttempted = "SELECT reward_attempted FROM referrals WHERE referral_id = ?";
constexpr absl::string_view kMarkReferralAttempted =
    "UPDATE referrals SET reward_attempted = 1 WHERE referral_id = ? AND reward_due = 1";
constexpr absl::string_view kCompleteReferral =
    "UPDATE referrals SET state = ?, rewarded_at = ?, reward_points = ?, reward_transfer_id = ?, reward_due = 0 "
    "WHERE referral_id = ? AND reward_due = 1";

v1::Referral ReadReferral(const sql::ResultSet& rs) {
  v1::Referral r;
  r.set_referral_id(Str(rs, 2));
  r.set_referrer_member_id(Str(rs, 3));
  r.set_referred_member_id(Str(rs, 4));
  r.set_referral_code(Str(rs, 5));
  r.set_state(static_cast<v1::ReferralState>(rs.getInt(6)));
  ReadTime(rs, 7, r.mutable_enrolled_at());
  if (!ReadTime(rs, 8, r.mutable_rewarded_at())) r.clear_rewarded_at();
  r.set_reward_points(rs.getInt64(9));
  r.set_reward_transfer_id(Str(rs, 10));
  return r;
}

}  // namespace

absl::Status MysqlTx::InsertReferral(const v1::Referral& r) {
  auto& s = tx_.Prepare(kInsertReferral);
  s.setString(1, r.referral_id());
  s.setString(2, r.referrer_member_id());
  s.setString(3, r.referred_member_id());
  s.setString(4, r.referral_code());
  s.setInt(5, r.state());
  SetTime(s, 6, r.enrolled_at());
  SetOptionalTime(s, 7, r.has_rewarded_at() ? &r.rewarded_at() : nullptr);
  s.setInt64(8, r.reward_points());
  s.setString(9, r.reward_transfer_id());
  s.executeUpdate();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::pair<int64_t, v1::Referral>>> MysqlTx::ListReferrals(const std::string& referrer,
                                                                                     PageCursor cursor,
                                                                                     int limit) {
  auto& s = tx_.Prepare(kSelectReferrals);
  s.setString(1, referrer);
  s.setInt64(2, cursor.before_id > 0 ? cursor.before_id : INT64_MAX);
  s.setInt(3, limit);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  std::vector<std::pair<int64_t, v1::Referral>> out;
  while (rs->next()) out.emplace_back(rs->getInt64(1), ReadReferral(*rs));
  return out;
}

absl::StatusOr<std::optional<v1::Referral>> MysqlTx::GetReferralOf(const std::string& referred) {
  auto& s = tx_.Prepare(kSelectReferralOf);
  s.setString(1, referred);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  if (!rs->next()) return std::nullopt;
  return ReadReferral(*rs);
}

absl::StatusOr<int64_t> MysqlTx::CountReferrals(const std::string& referrer) {
  return SelectCount(kCountReferrals, referrer);
}

absl::StatusOr<int64_t> MysqlTx::LockCursor(const std::string& name) {
  auto& s = tx_.Prepare(kLockCursor);
  s.setString(1, name);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  if (!rs->next()) return absl::InternalError(absl::StrCat("feed cursor ", name, " missing"));
  return rs->getInt64(1);
}

absl::Status MysqlTx::SetCursor(const std::string& name, int64_t position, absl::Time now) {
  auto& s = tx_.Prepare(kSetCursor);
  s.setInt64(1, position);
  s.setString(2, SqlTime(now));
  s.setString(3, name);
  s.executeUpdate();
  return absl::OkStatus();
}

absl::Status MysqlTx::RecordActivity(const std::string& member_id, absl::Time at) {
  auto& s = tx_.Prepare(kRecordActivity);
  s.setString(1, SqlTime(at));
  s.setString(2, SqlTime(at));
  s.setString(3, member_id);
  s.executeUpdate();
  return absl::OkStatus();
}

absl::StatusOr<bool> MysqlTx::MarkReferralRewardDue(const std::string& referred_member_id) {
  auto& s = tx_.Prepare(kMarkReferralDue);
  s.setString(1, referred_member_id);
  return s.executeUpdate() > 0;
}

absl::StatusOr<std::vector<v1::Referral>> MysqlTx::ListDueReferrals(int limit) {
  auto& s = tx_.Prepare(kSelectDueReferrals);
  s.setInt(1, limit);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  std::vector<v1::Referral> out;
  while (rs->next()) out.push_back(ReadReferral(*rs));
  return out;
}

absl::Status MysqlTx::CompleteReferral(const v1::Referral& r) {
  auto& s = tx_.Prepare(kCompleteReferral);
  s.setInt(1, r.state());
  SetOptionalTime(s, 2, r.has_rewarded_at() ? &r.rewarded_at() : nullptr);
  s.setInt64(3, r.reward_points());
  s.setString(4, r.reward_transfer_id());
  s.setString(5, r.referral_id());
  s.executeUpdate();
  return absl::OkStatus();
}

absl::StatusOr<bool> MysqlTx::ReferralRewardAttempted(const std::string& referral_id) {
  auto& s = tx_.Prepare(kSelectReferralAttempted);
  s.setString(1, referral_id);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  return rs->next() && rs->getInt(1) != 0;
}

absl::Status MysqlTx::MarkReferralRewardAttempted(const std::string& referral_id) {
  auto& s = tx_.Prepare(kMarkReferralAttempted);
  s.setString(1, referral_id);
  s.executeUpdate();
  return absl::OkStatus();
}

}  // namespace loyalty::membership::mysql_internal
