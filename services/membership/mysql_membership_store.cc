// The MySQL membership store and the core of its transaction (MysqlTx, see
// mysql_membership_tx.h): idempotency records, the snapshot feed counter,
// helpers the other mysql_*_store.cc files share, and the audit log.
#include "services/membership/mysql_membership_store.h"

#include <cppconn/exception.h>

#include <cstdint>
#include <memory>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/db/idempotency_rows.h"
#include "common/db/mysql_error.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "services/membership/mysql_membership_tx.h"

namespace loyalty::membership::mysql_internal {
namespace {

#define LOYALTY_AUDIT_COLUMNS                                                                  \
  "id, audit_event_id, occurred_at, actor_key_id, actor_role, actor_partner_id, action, "      \
  "entity_type, entity_id, before_json, after_json, idempotency_key, reason"

constexpr absl::string_view kSelectIdempotency =
    "SELECT method, fingerprint, request, status_code, status_message, status_detail, response, "
    "member_id, erased, completed FROM idempotency WHERE scope = ? AND idem_key = ? FOR UPDATE";
constexpr absl::string_view kInsertIdempotency =
    "INSERT INTO idempotency (scope, idem_key, method, fingerprint, request, status_code, "
    "status_message, status_detail, response, member_id, completed, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6))";
constexpr absl::string_view kCompleteIdempotency =
    "UPDATE idempotency SET status_code = ?, status_message = ?, status_detail = ?, response = ?, "
    "member_id = ?, completed = 1 WHERE scope = ? AND idem_key = ?";

constexpr absl::string_view kNextFeedVersion = "SELECT last_version FROM feed_head WHERE id = 1 FOR UPDATE";
constexpr absl::string_view kSetFeedVersion = "UPDATE feed_head SET last_version = ? WHERE id = 1";

constexpr absl::string_view kInsertAudit =
    "INSERT INTO audit_events (audit_event_id, occurred_at, actor_key_id, actor_role, actor_partner_id, "
    "action, entity_type, entity_id, member_id, before_json, after_json, idempotency_key, reason) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

common::v1::AuditEvent ReadAudit(const sql::ResultSet& rs) {
  common::v1::AuditEvent e;
  e.set_audit_event_id(Str(rs, 2));
  ReadTime(rs, 3, e.mutable_occurred_at());
  e.set_actor_key_id(Str(rs, 4));
  e.set_actor_role(static_cast<common::v1::Role>(rs.getInt(5)));
  e.set_actor_partner_id(Str(rs, 6));
  e.set_action(Str(rs, 7));
  e.set_entity_type(Str(rs, 8));
  e.set_entity_id(Str(rs, 9));
  e.set_before_json(Str(rs, 10));
  e.set_after_json(Str(rs, 11));
  e.set_idempotency_key(Str(rs, 12));
  e.set_reason(Str(rs, 13));
  return e;
}

}  // namespace

// ---- helpers ------------------------------------------------------------------

void SetOptionalTime(sql::PreparedStatement& s, int i, const google::protobuf::Timestamp* ts) {
  if (ts == nullptr) {
    s.setNull(i, 0);
  } else {
    s.setString(i, SqlTime(FromProtoTime(*ts)));
  }
}
void SetTime(sql::PreparedStatement& s, int i, const google::protobuf::Timestamp& ts) {
  s.setString(i, SqlTime(FromProtoTime(ts)));
}
void SetNullableString(sql::PreparedStatement& s, int i, const std::string& v) {
  if (v.empty()) {
    s.setNull(i, 0);
  } else {
    s.setString(i, v);
  }
}
bool ReadTime(const sql::ResultSet& rs, int col, google::protobuf::Timestamp* out) {
  if (rs.isNull(col)) return false;
  *out = ToProtoTime(ParseSqlTime(Str(rs, col)));
  return true;
}

// ---- the transaction core ------------------------------------------------------------

absl::StatusOr<std::optional<IdempotencyRecord>> MysqlTx::ClaimKey(const IdempotencyRecord& claim) {
  if (!db::IdempotencyKeyPresent(tx_, claim.scope, claim.key)) return Insert(claim, /*completed=*/false);
  auto& sel = tx_.Prepare(kSelectIdempotency);
  sel.setString(1, claim.scope);
  sel.setString(2, claim.key);
  std::unique_ptr<sql::ResultSet> rs(sel.executeQuery());
  if (rs->next()) {
    IdempotencyRecord r;
    r.scope = claim.scope;
    r.key = claim.key;
    r.method = Str(*rs, 1);
    r.fingerprint = Str(*rs, 2);
    r.request = ReadBlob(*rs, 3);
    r.status_code = rs->getInt(4);
    r.status_message = Str(*rs, 5);
    r.status_detail = Str(*rs, 6);
    r.response = ReadBlob(*rs, 7);
    r.member_id = Str(*rs, 8);
    r.erased = rs->getBoolean(9);
    if (!rs->getBoolean(10)) {
      // A claim is only ever visible uncommitted to its own transaction.
      return absl::InternalError("idempotency record without an outcome");
    }
    return r;
  }
  rs.reset();
  return Insert(claim, /*completed=*/false);
}

absl::Status MysqlTx::SaveOutcome(const IdempotencyRecord& record) {
  auto& up = tx_.Prepare(kCompleteIdempotency);
  std::istringstream response;
  up.setInt(1, record.status_code);
  up.setString(2, record.status_message);
  up.setString(3, record.status_detail);
  SetBlob(up, 4, record.response, response);
  up.setString(5, record.member_id);
  up.setString(6, record.scope);
  up.setString(7, record.key);
  if (up.executeUpdate() == 1) return absl::OkStatus();
  ASSIGN_OR_RETURN(auto inserted, Insert(record, /*completed=*/true));
  (void)inserted;
  return absl::OkStatus();
}

absl::StatusOr<std::optional<IdempotencyRecord>> MysqlTx::Insert(const IdempotencyRecord& r, bool completed) {
  auto& s = tx_.Prepare(kInsertIdempotency);
  std::istringstream request, response;
  s.setString(1, r.scope);
  s.setString(2, r.key);
  s.setString(3, r.method);
  s.setString(4, r.fingerprint);
  SetBlob(s, 5, r.request, request);
  s.setInt(6, r.status_code);
  s.setString(7, r.status_message);
  s.setString(8, r.status_detail);
  SetBlob(s, 9, r.response, response);
  s.setString(10, r.member_id);
  s.setBoolean(11, completed);
  // Another request with the same key committed first: retry the whole
  // transaction, which then finds its record.
  RETURN_IF_ERROR(db::ExecuteUnlessDuplicate(s, absl::AbortedError("idempotency key claimed concurrently")));
  return std::nullopt;
}

absl::StatusOr<int64_t> MysqlTx::NextFeedVersion() { return NextFeedVersions(1); }

// Reserves `count` consecutive feed versions and returns the first. The
// counter row stays locked until commit, so versions follow commit order.
absl::StatusOr<int64_t> MysqlTx::NextFeedVersions(int64_t count) {
  auto& sel = tx_.Prepare(kNextFeedVersion);
  std::unique_ptr<sql::ResultSet> rs(sel.executeQuery());
  if (!rs->next()) return absl::InternalError("feed_head row missing");
  const int64_t first = rs->getInt64(1) + 1;
  rs.reset();
  auto& up = tx_.Prepare(kSetFeedVersion);
  up.setInt64(1, first + count - 1);
  up.executeUpdate();
  return first;
}

// Email, phone and referral code are unique; a collision here means a
// concurrent writer got there between our check and our write, so the
// transaction is retried and the check then sees the other row.
absl::Status MysqlTx::ExecuteUnique(sql::PreparedStatement& s, absl::string_view what) {
  return db::ExecuteUnlessDuplicate(s, absl::AbortedError(absl::StrCat(what, ": a unique value was taken concurrently")));
}

absl::StatusOr<std::optional<std::string>> MysqlTx::SelectOneString(absl::string_view sql, const std::string& arg) {
  auto& s = tx_.Prepare(sql);
  s.setString(1, arg);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  if (!rs->next()) return std::nullopt;
  return Str(*rs, 1);
}

absl::StatusOr<int64_t> MysqlTx::SelectCount(absl::string_view sql, const std::string& arg) {
  auto& s = tx_.Prepare(sql);
  s.setString(1, arg);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  return rs->next() ? rs->getInt64(1) : 0;
}

// ---- audit ---------------------------------------------------------------------------

absl::Status MysqlTx::InsertAudit(const std::string& member_id, const common::v1::AuditEvent& e) {
  auto& s = tx_.Prepare(kInsertAudit);
  s.setString(1, e.audit_event_id());
  SetTime(s, 2, e.occurred_at());
  s.setString(3, e.actor_key_id());
  s.setInt(4, e.actor_role());
  s.setString(5, e.actor_partner_id());
  s.setString(6, e.action());
  s.setString(7, e.entity_type());
  s.setString(8, e.entity_id());
  s.setString(9, member_id);
  s.setString(10, e.before_json());
  s.setString(11, e.after_json());
  s.setString(12, e.idempotency_key());
  s.setString(13, e.reason());
  s.executeUpdate();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::pair<int64_t, common::v1::AuditEvent>>> MysqlTx::ListAudit(
    const AuditFilter& f, PageCursor cursor, int limit) {
  // Each optional filter is a fixed predicate with a "no filter" sentinel,
  // so the statement text (and its plan cache entry) is always the same.
  static constexpr absl::string_view kSql =
      "SELECT " LOYALTY_AUDIT_COLUMNS " FROM audit_events WHERE id < ? "
      "AND (? = '' OR member_id = ?) AND (? = '' OR actor_key_id = ?) "
      "AND occurred_at >= ? AND occurred_at < ? ORDER BY id DESC LIMIT ?";
  auto& s = tx_.Prepare(kSql);
  s.setInt64(1, cursor.before_id > 0 ? cursor.before_id : INT64_MAX);
  s.setString(2, f.member_id);
  s.setString(3, f.member_id);
  s.setString(4, f.actor_key_id);
  s.setString(5, f.actor_key_id);
  s.setString(6, SqlTime(f.start.value_or(absl::FromUnixSeconds(0))));
  s.setString(7, SqlTime(f.end.value_or(absl::FromCivil(absl::CivilSecond(9999, 1, 1), absl::UTCTimeZone()))));
  s.setInt(8, limit);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  std::vector<std::pair<int64_t, common::v1::AuditEvent>> out;
  while (rs->next()) out.emplace_back(rs->getInt64(1), ReadAudit(*rs));
  return out;
}

}  // namespace loyalty::membership::mysql_internal

namespace loyalty::membership {
namespace {

class MysqlMembershipStore final : public MembershipStore {
 public:
  explicit MysqlMembershipStore(db::ConnectionPool& pool) : pool_(pool) {}

  absl::Status Run(absl::string_view context, const std::function<absl::Status(MembershipTx&)>& body) override {
    return db::RunInTransaction(pool_, context, [&](db::Transaction& tx) {
      mysql_internal::MysqlTx mtx(tx);
      return body(mtx);
    });
  }

 private:
  db::ConnectionPool& pool_;
};

}  // namespace

std::unique_ptr<MembershipStore> NewMysqlMembershipStore(db::ConnectionPool& pool) {
  return std::make_unique<MysqlMembershipStore>(pool);
}

}  // namespace loyalty::membership
