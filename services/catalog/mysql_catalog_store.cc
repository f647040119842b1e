// The catalog's CatalogStore on MariaDB: transactions and idempotency rows.
// The rest of MysqlTx, with its SQL, is in the mysql_*_store.cc files
// (mysql_catalog_tx.h).
#include "services/catalog/mysql_catalog_store.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include "absl/strings/str_cat.h"
#include "common/db/idempotency_rows.h"
#include "common/db/sql_values.h"
#include "common/db/transaction.h"
#include "common/time/proto_time.h"
#include "services/catalog/mysql_catalog_tx.h"

namespace loyalty::catalog {
namespace internal {

void SetOptionalTime(sql::PreparedStatement& s, int i, bool has, const google::protobuf::Timestamp& ts) {
  if (!has) {
    s.setNull(i, 0);
  } else {
    s.setString(i, db::SqlTime(FromProtoTime(ts)));
  }
}

bool ReadTime(const sql::ResultSet& rs, int col, google::protobuf::Timestamp* out) {
  if (rs.isNull(col)) return false;
  *out = ToProtoTime(db::ParseSqlTime(db::Str(rs, col)));
  return true;
}

std::string StateList(const std::vector<int>& states) {
  std::string out;
  for (int s : states) absl::StrAppend(&out, out.empty() ? "" : ",", s);
  return out;
}

// ---- idempotency rows ----------------------------------------------------------

absl::StatusOr<std::optional<IdempotencyRecord>> MysqlTx::ClaimKey(const IdempotencyRecord& claim) {
  return db::ClaimIdempotencyKey(tx_, claim);
}

absl::Status MysqlTx::SaveOutcome(const IdempotencyRecord& record) { return db::SaveIdempotencyOutcome(tx_, record); }

absl::StatusOr<std::optional<IdempotencyRecord>> MysqlTx::FindKey(const std::string& scope, const std::string& key) {
  return db::FindIdempotencyKey(tx_, scope, key);
}

}  // namespace internal

namespace {

class MysqlCatalogStore final : public CatalogStore {
 public:
  explicit MysqlCatalogStore(db::ConnectionPool& pool) : pool_(pool) {}

  absl::Status Run(absl::string_view context, const std::function<absl::Status(CatalogTx&)>& body) override {
    return db::RunInTransaction(pool_, context, [&](db::Transaction& tx) {
      internal::MysqlTx ctx(tx);
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
