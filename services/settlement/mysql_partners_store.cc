// The partner directory, contracts and the snapshot feed on MariaDB.
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/db/mysql_error.h"
#include "common/db/sql_values.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "services/settlement/mysql_settlement_tx.h"

namespace loyalty::settlement::internal {
namespace {

using db::SetBlob;
using db::SqlTime;
using db::Str;

constexpr absl::string_view kNextFeedVersion = "SELECT last_version FROM feed_head WHERE id = 1 FOR UPDATE";
constexpr absl::string_view kSetFeedVersion = "UPDATE feed_head SET last_version = ? WHERE id = 1";
constexpr absl::string_view kSelectPartner = "SELECT body FROM partners WHERE partner_id = ?";
constexpr absl::string_view kSelectPartnerForUpdate = "SELECT body FROM partners WHERE partner_id = ? FOR UPDATE";
constexpr absl::string_view kInsertPartner =
    "INSERT INTO partners (partner_id, status, business_category, snapshot_version, body) VALUES (?, ?, ?, ?, ?)";
constexpr absl::string_view kUpdatePartner =
    "UPDATE partners SET status = ?, business_category = ?, snapshot_version = ?, body = ? WHERE partner_id = ?";
constexpr absl::string_view kTouchPartner = "UPDATE partners SET snapshot_version = ? WHERE partner_id = ?";
constexpr absl::string_view kListPartners =
    "SELECT body FROM partners WHERE partner_id > ? ORDER BY partner_id LIMIT ?";
constexpr absl::string_view kListChangedPartners =
    "SELECT snapshot_version, body FROM partners WHERE snapshot_version > ? ORDER BY snapshot_version LIMIT ?";
constexpr absl::string_view kInsertContract =
    "INSERT INTO contracts (contract_id, partner_id, version, effective_from, body) VALUES (?, ?, ?, ?, ?)";
constexpr absl::string_view kSelectContract = "SELECT body FROM contracts WHERE contract_id = ?";
constexpr absl::string_view kListContracts = "SELECT body FROM contracts WHERE partner_id = ? ORDER BY version";

}  // namespace

absl::StatusOr<int64_t> MysqlTx::NextFeedVersion() {
  std::unique_ptr<sql::ResultSet> rs(tx_.Prepare(kNextFeedVersion).executeQuery());
  if (!rs->next()) return absl::InternalError("feed_head row missing");
  const int64_t next = rs->getInt64(1) + 1;
  rs.reset();
  auto& s = tx_.Prepare(kSetFeedVersion);
  s.setInt64(1, next);
  s.executeUpdate();
  return next;
}

absl::StatusOr<std::optional<v1::Partner>> MysqlTx::GetPartner(const std::string& partner_id, bool for_update) {
  return SelectOne<v1::Partner>(for_update ? kSelectPartnerForUpdate : kSelectPartner, partner_id, "partner");
}

absl::Status MysqlTx::InsertPartner(const v1::Partner& p) {
  ASSIGN_OR_RETURN(int64_t version, NextFeedVersion());
  auto& s = tx_.Prepare(kInsertPartner);
  std::istringstream body;
  const std::string bytes = Serialize(p);
  s.setString(1, p.partner_id());
  s.setInt(2, p.status());
  s.setInt(3, p.business_category());
  s.setInt64(4, version);
  SetBlob(s, 5, bytes, body);
  return db::ExecuteUnlessDuplicate(s, absl::AlreadyExistsError(absl::StrCat("partner_id: '", p.partner_id(), "' is taken")));
}

absl::Status MysqlTx::UpdatePartner(const v1::Partner& p) {
  ASSIGN_OR_RETURN(int64_t version, NextFeedVersion());
  auto& s = tx_.Prepare(kUpdatePartner);
  std::istringstream body;
  const std::string bytes = Serialize(p);
  s.setInt(1, p.status());
  s.setInt(2, p.business_category());
  s.setInt64(3, version);
  SetBlob(s, 4, bytes, body);
  s.setString(5, p.partner_id());
  s.executeUpdate();
  return absl::OkStatus();
}

absl::Status MysqlTx::TouchPartner(const std::string& partner_id) {
  ASSIGN_OR_RETURN(int64_t version, NextFeedVersion());
  auto& s = tx_.Prepare(kTouchPartner);
  s.setInt64(1, version);
  s.setString(2, partner_id);
  s.executeUpdate();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::Partner>> MysqlTx::ListPartners(const std::string& after_partner_id, int limit) {
  auto& s = tx_.Prepare(kListPartners);
  s.setString(1, after_partner_id);
  s.setInt(2, limit);
  return ReadAll<v1::Partner>(s, 1, "partner");
}

absl::StatusOr<std::vector<std::pair<int64_t, v1::Partner>>> MysqlTx::ListChangedPartners(int64_t after_version,
                                                                                        int limit) {
  auto& s = tx_.Prepare(kListChangedPartners);
  s.setInt64(1, after_version);
  s.setInt(2, limit);
  return ParseKeyedRows<v1::Partner>(s, "partner");
}

absl::Status MysqlTx::InsertContract(const v1::Contract& c) {
  auto& s = tx_.Prepare(kInsertContract);
  std::istringstream body;
  const std::string bytes = Serialize(c);
  s.setString(1, c.contract_id());
  s.setString(2, c.partner_id());
  s.setInt(3, c.version());
  s.setString(4, SqlTime(FromProtoTime(c.effective_from())));
  SetBlob(s, 5, bytes, body);
  s.executeUpdate();
  return absl::OkStatus();
}

absl::StatusOr<std::optional<v1::Contract>> MysqlTx::GetContract(const std::string& contract_id) {
  return SelectOne<v1::Contract>(kSelectContract, contract_id, "contract");
}

absl::StatusOr<ContractHistory> MysqlTx::ListContracts(const std::string& partner_id) {
  auto& s = tx_.Prepare(kListContracts);
  s.setString(1, partner_id);
  return ReadAll<v1::Contract>(s, 1, "contract");
}

}  // namespace loyalty::settlement::internal
