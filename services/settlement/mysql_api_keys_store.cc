// API keys (metadata and the secret's SHA-256, never the secret) on MariaDB.
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

constexpr absl::string_view kInsertApiKey =
    "INSERT INTO api_keys (key_id, key_hash, partner_id, role, body) VALUES (?, ?, ?, ?, ?)";
constexpr absl::string_view kUpdateApiKey = "UPDATE api_keys SET body = ? WHERE key_id = ?";
constexpr absl::string_view kSelectApiKey = "SELECT body FROM api_keys WHERE key_id = ?";
constexpr absl::string_view kSelectApiKeyForUpdate = "SELECT body FROM api_keys WHERE key_id = ? FOR UPDATE";
constexpr absl::string_view kSelectApiKeyByHash = "SELECT body FROM api_keys WHERE key_hash = ?";
constexpr absl::string_view kListApiKeys =
    "SELECT id, body FROM api_keys WHERE (? = '' OR partner_id = ?) AND (? = 0 OR id < ?) ORDER BY id DESC LIMIT ?";

}  // namespace

absl::Status MysqlTx::InsertApiKey(const v1::ApiKey& k, const std::string& key_hash) {
  auto& s = tx_.Prepare(kInsertApiKey);
  std::istringstream body;
  const std::string bytes = Serialize(k);
  s.setString(1, k.key_id());
  s.setString(2, key_hash);
  s.setString(3, k.partner_id());
  s.setInt(4, k.role());
  SetBlob(s, 5, bytes, body);
  s.executeUpdate();
  return absl::OkStatus();
}

absl::Status MysqlTx::UpdateApiKey(const v1::ApiKey& k) {
  auto& s = tx_.Prepare(kUpdateApiKey);
  std::istringstream body;
  const std::string bytes = Serialize(k);
  SetBlob(s, 1, bytes, body);
  s.setString(2, k.key_id());
  s.executeUpdate();
  return absl::OkStatus();
}

absl::StatusOr<std::optional<v1::ApiKey>> MysqlTx::GetApiKey(const std::string& key_id, bool for_update) {
  return SelectOne<v1::ApiKey>(for_update ? kSelectApiKeyForUpdate : kSelectApiKey, key_id, "api key");
}

absl::StatusOr<std::optional<v1::ApiKey>> MysqlTx::FindApiKeyByHash(const std::string& key_hash) {
  return SelectOne<v1::ApiKey>(kSelectApiKeyByHash, key_hash, "api key");
}

absl::StatusOr<std::vector<std::pair<int64_t, v1::ApiKey>>> MysqlTx::ListApiKeys(const std::string& partner_id,
                                                                             int64_t before_id, int limit) {
  auto& s = tx_.Prepare(kListApiKeys);
  s.setString(1, partner_id);
  s.setString(2, partner_id);
  s.setInt64(3, before_id);
  s.setInt64(4, before_id);
  s.setInt(5, limit);
  return ParseKeyedRows<v1::ApiKey>(s, "api key");
}

}  // namespace loyalty::settlement::internal
