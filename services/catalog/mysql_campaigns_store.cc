// MysqlTx (mysql_catalog_tx.h): campaigns, the earn-rules version and budget
// leases. The SQL of these tables, as named constants beside the code that
// runs it.
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
    "SELECT " LOYALTY_CAMPAIGN_COLUMNS
    " FROM campaigns WHERE campaign_id > ? "
    "AND (? = '' OR partner_list = '' OR LOCATE(CONCAT(',', ?, ','), partner_list) > 0) "
    "AND (? = 0 OR FIND_IN_SET(state, ?) > 0) ORDER BY campaign_id LIMIT ?";
constexpr absl::string_view kListEarnRules = "SELECT " LOYALTY_CAMPAIGN_COLUMNS
                                             " FROM campaigns WHERE state = 2 AND has_bonus = 1 "
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

}  // namespace

absl::Status MysqlTx::InsertCampaign(const v1::Campaign& c) {
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

absl::Status MysqlTx::UpdateCampaign(const v1::Campaign& c) {
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

absl::StatusOr<std::optional<v1::Campaign>> MysqlTx::GetCampaign(const std::string& id, bool for_update) {
  auto& s = tx_.Prepare(for_update ? kSelectCampaignForUpdate : kSelectCampaign);
  s.setString(1, id);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  if (!rs->next()) return std::nullopt;
  return ReadCampaign(*rs);
}

absl::StatusOr<std::vector<v1::Campaign>> MysqlTx::ListCampaigns(const CampaignFilter& f, int limit) {
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

absl::StatusOr<std::vector<v1::Campaign>> MysqlTx::ListEarnRules(absl::Time now) {
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

absl::StatusOr<int64_t> MysqlTx::EarnRulesVersion(bool bump) {
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

absl::StatusOr<bool> MysqlTx::AllocateBudget(const std::string& campaign_id, int64_t points) {
  auto& s = tx_.Prepare(kAllocateBudget);
  s.setInt64(1, points);
  s.setString(2, campaign_id);
  s.setInt64(3, points);
  return s.executeUpdate() == 1;
}

absl::Status MysqlTx::ReleaseBudget(const std::string& campaign_id, int64_t points) {
  auto& s = tx_.Prepare(kReleaseBudget);
  s.setInt64(1, points);
  s.setString(2, campaign_id);
  s.setInt64(3, points);
  if (s.executeUpdate() != 1) return absl::InternalError("campaign budget would go negative");
  return absl::OkStatus();
}

absl::Status MysqlTx::InsertLease(const v1::CampaignBudgetLease& l) {
  auto& s = tx_.Prepare(kInsertLease);
  s.setString(1, l.campaign_budget_lease_id());
  s.setString(2, l.campaign_id());
  s.setString(3, l.holder());
  s.setInt64(4, l.granted_points());
  s.setString(5, SqlTime(FromProtoTime(l.created_at())));
  s.executeUpdate();
  return absl::OkStatus();
}

absl::Status MysqlTx::CloseLease(const v1::CampaignBudgetLease& l) {
  auto& s = tx_.Prepare(kCloseLease);
  s.setString(1, SqlTime(FromProtoTime(l.closed_at())));
  s.setInt64(2, l.used_points());
  s.setInt64(3, l.returned_points());
  s.setString(4, l.campaign_budget_lease_id());
  if (s.executeUpdate() != 1) return absl::FailedPreconditionError("lease already closed");
  return absl::OkStatus();
}

absl::StatusOr<std::optional<v1::CampaignBudgetLease>> MysqlTx::GetLease(const std::string& lease_id) {
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

}  // namespace loyalty::catalog::internal
