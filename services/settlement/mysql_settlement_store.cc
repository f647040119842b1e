#include "services/settlement/mysql_settlement_store.h"

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
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "services/settlement/mysql_settlement_tx.h"

// The store itself, the idempotency records and the audit trail. The other
// tables are in the files that mysql_settlement_tx.h lists.
namespace loyalty::settlement {
namespace internal {
namespace {

using db::SetBlob;
using db::SqlTime;

constexpr char kMinTime[] = "1000-01-01 00:00:00.000000";
constexpr char kMaxTime[] = "9999-12-31 23:59:59.999999";
constexpr absl::string_view kInsertAudit =
    "INSERT INTO audit_events (audit_event_id, occurred_at, actor_key_id, entity_type, entity_id, body) "
    "VALUES (?, ?, ?, ?, ?, ?)";
constexpr absl::string_view kListAudit =
    "SELECT id, body FROM audit_events WHERE (? = '' OR entity_type = ?) AND (? = '' OR entity_id = ?) "
    "AND (? = '' OR actor_key_id = ?) AND occurred_at >= ? AND occurred_at < ? AND (? = 0 OR id < ?) "
    "ORDER BY id DESC LIMIT ?";

}  // namespace

std::string Serialize(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  m.SerializeToCodedStream(&coded);
  coded.Trim();
  return out;
}

absl::StatusOr<std::optional<IdempotencyRecord>> MysqlTx::ClaimKey(const IdempotencyRecord& claim) {
  return db::ClaimIdempotencyKey(tx_, claim);
}

absl::Status MysqlTx::SaveOutcome(const IdempotencyRecord& record) { return db::SaveIdempotencyOutcome(tx_, record); }

absl::Status MysqlTx::InsertAudit(const common::v1::AuditEvent& e) {
  auto& s = tx_.Prepare(kInsertAudit);
  std::istringstream body;
  const std::string bytes = Serialize(e);
  s.setString(1, e.audit_event_id());
  s.setString(2, SqlTime(FromProtoTime(e.occurred_at())));
  s.setString(3, e.actor_key_id());
  s.setString(4, e.entity_type());
  s.setString(5, e.entity_id());
  SetBlob(s, 6, bytes, body);
  s.executeUpdate();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::pair<int64_t, common::v1::AuditEvent>>> MysqlTx::ListAudit(const AuditFilter& f,
                                                                                         int64_t before_id,
                                                                                         int limit) {
  auto& s = tx_.Prepare(kListAudit);
  s.setString(1, f.entity_type);
  s.setString(2, f.entity_type);
  s.setString(3, f.entity_id);
  s.setString(4, f.entity_id);
  s.setString(5, f.actor_key_id);
  s.setString(6, f.actor_key_id);
  s.setString(7, f.start.has_value() ? SqlTime(*f.start) : kMinTime);
  s.setString(8, f.end.has_value() ? SqlTime(*f.end) : kMaxTime);
  s.setInt64(9, before_id);
  s.setInt64(10, before_id);
  s.setInt(11, limit);
  return ParseKeyedRows<common::v1::AuditEvent>(s, "audit event");
}

}  // namespace internal

namespace {

class MysqlSettlementStore final : public SettlementStore {
 public:
  explicit MysqlSettlementStore(db::ConnectionPool& pool) : pool_(pool) {}

  absl::Status Run(absl::string_view context, const std::function<absl::Status(SettlementTx&)>& body) override {
    return db::RunInTransaction(pool_, context, [&](db::Transaction& tx) {
      internal::MysqlTx mtx(tx);
      return body(mtx);
    });
  }

 private:
  db::ConnectionPool& pool_;
};

}  // namespace

SettlementStorePtr NewMysqlSettlementStore(db::ConnectionPool& pool) {
  return std::make_unique<MysqlSettlementStore>(pool);
}

}  // namespace loyalty::settlement
