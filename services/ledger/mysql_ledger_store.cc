#include "services/ledger/mysql_ledger_store.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <algorithm>
#include <set>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/db/sql_values.h"
#include "common/db/transaction.h"
#include "common/time/proto_time.h"
#include "common/log/log.h"
#include "common/status/status_macros.h"
#include "services/ledger/account_names.h"

namespace loyalty::ledger {
namespace {

using db::ParseSqlTime;
using db::SqlTime;
using db::Str;

// ---- SQL ------------------------------------------------------------------

// Column lists shared by several statements, in the order ReadLot and
// ReadHold expect them.
#define LOYALTY_LOT_COLUMNS                                                       \
  "lot_id, member_id, issuer_partner_id, source_transfer_id, original_points, " \
  "remaining_points, earned_at, expires_at"
#define LOYALTY_HOLD_COLUMNS                                                                \
  "hold_id, member_id, partner_id, points, captured_points, state, reference, metadata, " \
  "created_at, expires_at, closed_at, hold_transfer_id, closing_transfer_id"

constexpr absl::string_view kLockHead =
    "SELECT last_sequence, last_hash FROM journal_head WHERE id = 1 FOR UPDATE";
constexpr absl::string_view kUpdateHead =
    "UPDATE journal_head SET last_sequence = ?, last_hash = ? WHERE id = 1";
constexpr absl::string_view kSelectHead = "SELECT last_sequence FROM journal_head WHERE id = 1";

// A partner's net issuance now, and what of it came after a sequence (a
// short range scan of transfers_partner: the sequence is recent).
constexpr absl::string_view kSelectNetIssuanceNow =
    "SELECT debits_posted - credits_posted FROM accounts WHERE account = ?";
constexpr absl::string_view kSelectNetIssuanceAfter =
    "SELECT COALESCE(SUM(CASE WHEN debit_account = ? THEN points WHEN credit_account = ? THEN -points "
    "ELSE 0 END), 0) FROM transfers WHERE partner_id = ? AND sequence > ?";

constexpr absl::string_view kSelectAccountForUpdate =
    "SELECT account, debits_posted, credits_posted, debits_pending, credits_pending "
    "FROM accounts WHERE account = ? FOR UPDATE";
constexpr absl::string_view kSelectAccount =
    "SELECT account, debits_posted, credits_posted, debits_pending, credits_pending "
    "FROM accounts WHERE account = ?";
constexpr absl::string_view kPrefetchAccountsHead =
    "SELECT account, debits_posted, credits_posted, debits_pending, credits_pending "
    "FROM accounts WHERE account IN (";
constexpr absl::string_view kPrefetchIdempotencyHead =
    "SELECT idempotency_key, method, request, status_code, status_message, response "
    "FROM idempotency WHERE caller = ? AND idempotency_key IN (";
constexpr absl::string_view kPrefetchReceiptsHead =
    "SELECT receipt_reference, transfer_id FROM earn_receipts "
    "WHERE partner_id = ? AND receipt_reference IN (";
constexpr absl::string_view kPrefetchHoldsHead =
    "SELECT " LOYALTY_HOLD_COLUMNS " FROM holds WHERE hold_id IN (";
constexpr absl::string_view kPrefetchOpenLotsHead =
    "SELECT " LOYALTY_LOT_COLUMNS " FROM lots WHERE is_open = 1 AND member_id IN (";
constexpr absl::string_view kPrefetchTail = ") FOR UPDATE";
constexpr absl::string_view kSelectOpenLotsForUpdate =
    "SELECT " LOYALTY_LOT_COLUMNS " FROM lots "
    "WHERE member_id = ? AND is_open = 1 ORDER BY expires_at, lot_id FOR UPDATE";
constexpr absl::string_view kSelectLotForUpdate =
    "SELECT " LOYALTY_LOT_COLUMNS " FROM lots WHERE lot_id = ? FOR UPDATE";
// Lots whose member has nothing available (all held) are skipped: their
// points wait for the hold to close, and they must not stall the job.
constexpr absl::string_view kSelectExpiredLotsForUpdate =
    "SELECT l.lot_id, l.member_id, l.issuer_partner_id, l.source_transfer_id, "
    "l.original_points, l.remaining_points, l.earned_at, l.expires_at FROM lots l "
    "JOIN accounts a ON a.account = CONCAT('member:', l.member_id) "
    "WHERE l.is_open = 1 AND l.expires_at <= ? "
    "AND a.credits_posted - a.debits_posted - a.debits_pending > 0 "
    "ORDER BY l.expires_at, l.lot_id LIMIT ? FOR UPDATE";
constexpr absl::string_view kSelectHoldForUpdate =
    "SELECT " LOYALTY_HOLD_COLUMNS " FROM holds WHERE hold_id = ? FOR UPDATE";
constexpr absl::string_view kSelectHold =
    "SELECT " LOYALTY_HOLD_COLUMNS " FROM holds WHERE hold_id = ?";
constexpr absl::string_view kSelectExpiredHoldsForUpdate =
    "SELECT " LOYALTY_HOLD_COLUMNS " FROM holds WHERE state = 1 AND expires_at <= ? ORDER BY expires_at LIMIT ? FOR UPDATE";
constexpr absl::string_view kSelectTransferBodyForUpdate =
    "SELECT t.body, t.prev_hash, t.hash, COALESCE(r.reversed_points, 0) FROM transfers t "
    "LEFT JOIN transfer_reversals r ON r.transfer_id = t.transfer_id "
    "WHERE t.transfer_id = ? FOR UPDATE";
constexpr absl::string_view kSelectTransferBody =
    "SELECT t.body, t.prev_hash, t.hash, COALESCE(r.reversed_points, 0) FROM transfers t "
    "LEFT JOIN transfer_reversals r ON r.transfer_id = t.transfer_id WHERE t.transfer_id = ?";
constexpr absl::string_view kSelectIdempotency =
    "SELECT method, request, status_code, status_message, response FROM idempotency "
    "WHERE caller = ? AND idempotency_key = ? FOR UPDATE";
constexpr absl::string_view kSelectReceipt =
    "SELECT transfer_id FROM earn_receipts WHERE partner_id = ? AND receipt_reference = ? "
    "FOR UPDATE";
constexpr absl::string_view kPrefetchMemberPartnersHead =
    "SELECT member_id, partner_id FROM member_partners WHERE member_id IN (";
constexpr absl::string_view kSelectMemberPartnerForUpdate =
    "SELECT 1 FROM member_partners WHERE member_id = ? AND partner_id = ? FOR UPDATE";
constexpr absl::string_view kSelectMemberPartner =
    "SELECT 1 FROM member_partners WHERE member_id = ? AND partner_id = ?";
constexpr absl::string_view kSelectJournalPage =
    "SELECT body, prev_hash, hash FROM transfers WHERE sequence > ? AND sequence <= ? "
    "ORDER BY sequence LIMIT ?";
constexpr absl::string_view kSelectJournalRows =
    "SELECT sequence, transfer_id, code, debit_account, credit_account, points, partner_id, "
    "member_id, body, prev_hash, hash, reference, related_transfer_id, hold_id, created_at "
    "FROM transfers WHERE sequence >= ? AND sequence <= ? ORDER BY sequence";
constexpr absl::string_view kSelectHashAt = "SELECT hash FROM transfers WHERE sequence = ?";
// Earns in the window, less what has been reversed of them (claw-back and
// shortfall alike: a returned purchase does not qualify).
constexpr absl::string_view kSelectQualifying =
    "SELECT COALESCE(SUM(t.points - COALESCE(r.reversed_points, 0)), 0) FROM transfers t "
    "LEFT JOIN transfer_reversals r ON r.transfer_id = t.transfer_id "
    "WHERE t.member_id = ? AND t.code = 1 AND t.created_at >= ? AND t.created_at < ?";
constexpr absl::string_view kSelectMemberBalanceTotal =
    "SELECT COALESCE(SUM(credits_posted - debits_posted), 0) FROM accounts "
    "WHERE account LIKE 'member:%'";
constexpr absl::string_view kSelectLiabilityByIssuer =
    "SELECT issuer_partner_id, SUM(remaining_points), COUNT(*) FROM lots WHERE is_open = 1 "
    "GROUP BY issuer_partner_id";

// Largest IN list; shorter lists are padded up to a power of two by
// repeating a key (harmless in IN), so a lookup is one statement.
constexpr size_t kMaxInList = 256;

// ---- Writes: one statement per table per batch -------------------------------
//
// A batch's rows for a table go to the server as ONE bound parameter, a JSON
// array of rows, which JSON_TABLE turns back into rows. Every value is still
// bound (the statement text is constant), and a batch costs one round trip
// per table whatever its size. Binary columns travel as base64.

struct Column {
  absl::string_view name;
  absl::string_view json_type;  // the type JSON_TABLE reads the value as
  bool binary = false;          // base64 in JSON, FROM_BASE64 in SQL
};

std::string JsonInsertSql(absl::string_view table, std::initializer_list<Column> columns,
                          absl::string_view tail) {
  std::string names, exprs, specs;
  int i = 0;
  for (const Column& c : columns) {
    const std::string alias = absl::StrCat("c", i);
    absl::StrAppend(&names, i ? ", " : "", c.name);
    absl::StrAppend(&exprs, i ? ", " : "", c.binary ? absl::StrCat("FROM_BASE64(j.", alias, ")")
                                                    : absl::StrCat("j.", alias));
    absl::StrAppend(&specs, i ? ", " : "", alias, " ", c.json_type, " PATH '$[", i, "]'");
    ++i;
  }
  return absl::StrCat("INSERT INTO ", table, " (", names, ") SELECT ", exprs,
                      " FROM JSON_TABLE(?, '$[*]' COLUMNS (", specs, ")) AS j", tail);
}

constexpr absl::string_view kId = "VARCHAR(255)";
constexpr absl::string_view kText = "VARCHAR(2048)";
constexpr absl::string_view kBig = "BIGINT";
constexpr absl::string_view kTime = "DATETIME(6)";
constexpr absl::string_view kBlob = "LONGTEXT";

const std::string& InsertTransfersSql() {
  static const auto* sql = new std::string(JsonInsertSql(
      "transfers",
      {{"sequence", kBig}, {"transfer_id", kId}, {"code", kBig}, {"debit_account", kId},
       {"credit_account", kId}, {"points", kBig}, {"partner_id", kId}, {"member_id", kId},
       {"reference", kText}, {"related_transfer_id", kId}, {"hold_id", kId},
       {"created_at", kTime}, {"body", kBlob, true}, {"prev_hash", kId}, {"hash", kId}},
      ""));
  return *sql;
}

const std::string& UpsertAccountsSql() {
  static const auto* sql = new std::string(JsonInsertSql(
      "accounts",
      {{"account", kId}, {"debits_posted", kBig}, {"credits_posted", kBig},
       {"debits_pending", kBig}, {"credits_pending", kBig}, {"updated_at", kTime}},
      " ON DUPLICATE KEY UPDATE debits_posted = VALUES(debits_posted), "
      "credits_posted = VALUES(credits_posted), debits_pending = VALUES(debits_pending), "
      "credits_pending = VALUES(credits_pending), updated_at = VALUES(updated_at)"));
  return *sql;
}

const std::string& UpsertLotsSql() {
  static const auto* sql = new std::string(JsonInsertSql(
      "lots",
      {{"lot_id", kId}, {"member_id", kId}, {"issuer_partner_id", kId},
       {"source_transfer_id", kId}, {"original_points", kBig}, {"remaining_points", kBig},
       {"is_open", kBig}, {"earned_at", kTime}, {"expires_at", kTime}},
      " ON DUPLICATE KEY UPDATE remaining_points = VALUES(remaining_points), "
      "is_open = VALUES(is_open)"));
  return *sql;
}

const std::string& UpsertHoldsSql() {
  static const auto* sql = new std::string(JsonInsertSql(
      "holds",
      {{"hold_id", kId}, {"member_id", kId}, {"partner_id", kId}, {"points", kBig},
       {"captured_points", kBig}, {"state", kBig}, {"reference", kText},
       {"metadata", kBlob, true}, {"created_at", kTime}, {"expires_at", kTime},
       {"closed_at", kTime}, {"hold_transfer_id", kId}, {"closing_transfer_id", kId}},
      " ON DUPLICATE KEY UPDATE captured_points = VALUES(captured_points), "
      "state = VALUES(state), closed_at = VALUES(closed_at), "
      "closing_transfer_id = VALUES(closing_transfer_id)"));
  return *sql;
}

const std::string& UpsertReversalsSql() {
  static const auto* sql = new std::string(JsonInsertSql(
      "transfer_reversals", {{"transfer_id", kId}, {"reversed_points", kBig}},
      " ON DUPLICATE KEY UPDATE reversed_points = VALUES(reversed_points)"));
  return *sql;
}

const std::string& InsertIdempotencySql() {
  static const auto* sql = new std::string(JsonInsertSql(
      "idempotency",
      {{"caller", kId}, {"idempotency_key", kId}, {"method", kId}, {"request", kBlob, true},
       {"status_code", kBig}, {"status_message", kText}, {"response", kBlob, true},
       {"created_at", kTime}},
      ""));
  return *sql;
}

// A member's first earn at a partner; a later batch's row never replaces an
// earlier one.
const std::string& InsertMemberPartnersSql() {
  static const auto* sql = new std::string(JsonInsertSql(
      "member_partners", {{"member_id", kId}, {"partner_id", kId}, {"first_sequence", kBig}},
      " ON DUPLICATE KEY UPDATE first_sequence = LEAST(first_sequence, VALUES(first_sequence))"));
  return *sql;
}

const std::string& InsertReceiptsSql() {
  static const auto* sql = new std::string(JsonInsertSql(
      "earn_receipts", {{"partner_id", kId}, {"receipt_reference", kText}, {"transfer_id", kId}},
      ""));
  return *sql;
}

// Builds the JSON parameter: [["v", "v", null], ...]; every value a string.
class JsonRows {
 public:
  void Row() {
    if (rows_++ > 0) json_.push_back(',');
    json_.push_back('[');
    first_ = true;
  }
  void EndRow() { json_.push_back(']'); }
  JsonRows& Str(absl::string_view v) {
    Sep();
    json_.push_back('"');
    for (char ch : v) {
      const unsigned char c = static_cast<unsigned char>(ch);
      if (ch == '"' || ch == '\\') {
        json_.push_back('\\');
        json_.push_back(ch);
      } else if (c < 0x20) {
        absl::StrAppend(&json_, "\\u00", absl::Hex(c, absl::kZeroPad2));
      } else {
        json_.push_back(ch);
      }
    }
    json_.push_back('"');
    return *this;
  }
  JsonRows& Int(int64_t v) { return Str(absl::StrCat(v)); }
  JsonRows& Bytes(absl::string_view v) { return Str(absl::Base64Escape(v)); }
  JsonRows& Null() {
    Sep();
    json_.append("null");
    return *this;
  }
  size_t rows() const { return rows_; }
  std::string Take() { return absl::StrCat("[", json_, "]"); }

 private:
  void Sep() {
    if (!first_) json_.push_back(',');
    first_ = false;
  }
  std::string json_;
  size_t rows_ = 0;
  bool first_ = true;
};

void ExecuteJson(db::Transaction& tx, const std::string& sql, JsonRows& rows) {
  if (rows.rows() == 0) return;
  sql::PreparedStatement& stmt = tx.Prepare(sql);
  stmt.setString(1, rows.Take());
  stmt.executeUpdate();
}

// ---- Helpers ----------------------------------------------------------------

// Serialises a string map as a small protobuf (a Hold's metadata).
std::string EncodeMetadata(const std::map<std::string, std::string>& m) {
  v1::Hold carrier;
  carrier.mutable_metadata()->insert(m.begin(), m.end());
  std::string out;
  carrier.SerializeToString(&out);
  return out;
}

std::map<std::string, std::string> DecodeMetadata(const std::string& bytes) {
  v1::Hold carrier;
  carrier.ParseFromString(bytes);
  return {carrier.metadata().begin(), carrier.metadata().end()};
}

// Runs `head (?, ?, ...) tail` over `keys` in chunks; `prefix` is bound
// first (e.g. a caller), then the chunk's keys. `row(rs)` sees each result.
template <typename Row>
void QueryChunked(db::Transaction& tx, absl::string_view head, absl::string_view tail,
                  const std::string* prefix, const std::set<std::string>& keys, Row row) {
  std::vector<const std::string*> list;
  for (const std::string& k : keys) list.push_back(&k);
  for (size_t done = 0; done < list.size();) {
    const size_t count = std::min(kMaxInList, list.size() - done);
    size_t padded = 1;
    while (padded < count) padded *= 2;
    // Only placeholders are generated here; every value is bound.
    std::string sql(head);
    for (size_t i = 0; i < padded; ++i) sql.append(i == 0 ? "?" : ", ?");
    sql.append(tail.data(), tail.size());
    sql::PreparedStatement& stmt = tx.Prepare(sql);
    int p = 1;
    if (prefix != nullptr) stmt.setString(p++, *prefix);
    for (size_t i = 0; i < padded; ++i) stmt.setString(p++, *list[done + std::min(i, count - 1)]);
    std::unique_ptr<sql::ResultSet> rs(stmt.executeQuery());
    while (rs->next()) row(*rs);
    done += count;
  }
}

AccountRow ReadAccount(sql::ResultSet& rs) {
  AccountRow a;
  a.account = Str(rs, 1);
  a.debits_posted = rs.getInt64(2);
  a.credits_posted = rs.getInt64(3);
  a.debits_pending = rs.getInt64(4);
  a.credits_pending = rs.getInt64(5);
  a.exists = true;
  return a;
}

LotRow ReadLot(sql::ResultSet& rs) {
  LotRow l;
  l.lot_id = Str(rs, 1);
  l.member_id = Str(rs, 2);
  l.issuer_partner_id = Str(rs, 3);
  l.source_transfer_id = Str(rs, 4);
  l.original_points = rs.getInt64(5);
  l.remaining_points = rs.getInt64(6);
  l.earned_at = ParseSqlTime(Str(rs, 7));
  l.expires_at = ParseSqlTime(Str(rs, 8));
  return l;
}

HoldRow ReadHold(sql::ResultSet& rs) {
  HoldRow h;
  h.hold_id = Str(rs, 1);
  h.member_id = Str(rs, 2);
  h.partner_id = Str(rs, 3);
  h.points = rs.getInt64(4);
  h.captured_points = rs.getInt64(5);
  h.state = static_cast<v1::HoldState>(rs.getInt(6));
  h.reference = Str(rs, 7);
  h.metadata = DecodeMetadata(Str(rs, 8));
  h.created_at = ParseSqlTime(Str(rs, 9));
  h.expires_at = ParseSqlTime(Str(rs, 10));
  if (!rs.isNull(11)) h.closed_at = ParseSqlTime(Str(rs, 11));
  h.hold_transfer_id = Str(rs, 12);
  h.closing_transfer_id = Str(rs, 13);
  return h;
}

// Whether member_partners holds (member, partner); `conn` is a transaction
// or a pooled connection, `statement` kSelectMemberPartner[ForUpdate].
template <typename Conn>
bool EarnedAt(Conn& conn, absl::string_view statement, const std::string& member_id,
              const std::string& partner_id) {
  sql::PreparedStatement& stmt = conn.Prepare(statement);
  stmt.setString(1, member_id);
  stmt.setString(2, partner_id);
  std::unique_ptr<sql::ResultSet> rs(stmt.executeQuery());
  return rs->next();
}

// body, prev_hash, hash -> the transfer with its hashes.
absl::StatusOr<v1::Transfer> ReadTransferBody(sql::ResultSet& rs, int first_column) {
  v1::Transfer t;
  if (!t.ParseFromString(Str(rs, first_column))) return absl::DataLossError("unreadable transfer body");
  t.set_prev_hash(Str(rs, first_column + 1));
  t.set_hash(Str(rs, first_column + 2));
  return t;
}

// ---- BatchState over one transaction ----------------------------------------

class MysqlBatch final : public BatchState {
 public:
  MysqlBatch(db::Transaction& tx, absl::Time now, int64_t head_sequence, std::string head_hash)
      : tx_(tx), now_(now), head_sequence_(head_sequence), head_hash_(std::move(head_hash)) {}

  // BatchState:
  absl::Time now() const override { return now_; }

  absl::Status Prefetch(const PrefetchKeys& keys) override {
    // Holds first: they name the members whose accounts and lots a capture
    // or void will need.
    std::set<std::string> holds;
    for (const std::string& h : keys.holds) {
      if (!holds_.contains(h)) holds.insert(h);
    }
    QueryChunked(tx_, kPrefetchHoldsHead, kPrefetchTail, nullptr, holds,
                 [&](sql::ResultSet& rs) { RememberHold(ReadHold(rs)); });
    std::set<std::string> accounts;
    std::set<std::string> lot_members;
    for (const std::string& h : keys.holds) {
      auto it = holds_.find(h);
      if (it == holds_.end()) continue;
      accounts.insert(MemberAccount(it->second->member_id));
      accounts.insert(RedemptionAccount(it->second->partner_id));
      if (!lots_loaded_for_.contains(it->second->member_id)) lot_members.insert(it->second->member_id);
    }
    QueryChunked(tx_, kPrefetchOpenLotsHead, kPrefetchTail, nullptr, lot_members,
                 [&](sql::ResultSet& rs) { Remember(ReadLot(rs)); });
    for (const std::string& m : lot_members) lots_loaded_for_.insert(m);
    for (const std::string& a : keys.accounts) {
      if (!accounts_.contains(a)) accounts.insert(a);
    }
    for (auto it = accounts.begin(); it != accounts.end();) {
      it = accounts_.contains(*it) ? accounts.erase(it) : std::next(it);
    }
    QueryChunked(tx_, kPrefetchAccountsHead, kPrefetchTail, nullptr, accounts,
                 [&](sql::ResultSet& rs) {
                   AccountRow row = ReadAccount(rs);
                   std::string name = row.account;
                   accounts_[name] = std::make_unique<AccountRow>(std::move(row));
                 });
    for (const std::string& a : accounts) {
      if (!accounts_.contains(a)) {
        auto row = std::make_unique<AccountRow>();
        row->account = a;
        accounts_[a] = std::move(row);
      }
    }
    for (const auto& [caller, idem_keys] : keys.idempotency) {
      QueryChunked(tx_, kPrefetchIdempotencyHead, kPrefetchTail, &caller, idem_keys,
                   [&](sql::ResultSet& rs) {
                     idempotency_[absl::StrCat(caller, "\x1f", Str(rs, 1))] = IdempotencyRecord{
                         Str(rs, 2), Str(rs, 3), rs.getInt(4), Str(rs, 5), Str(rs, 6)};
                   });
      for (const std::string& k : idem_keys) {
        idempotency_.try_emplace(absl::StrCat(caller, "\x1f", k), std::nullopt);
      }
    }
    std::set<std::string> histories;
    for (const std::string& m : keys.earn_histories) {
      if (!histories_loaded_for_.contains(m)) histories.insert(m);
    }
    QueryChunked(tx_, kPrefetchMemberPartnersHead, kPrefetchTail, nullptr, histories,
                 [&](sql::ResultSet& rs) { earned_at_[absl::StrCat(Str(rs, 1), "\x1f", Str(rs, 2))] = true; });
    histories_loaded_for_.insert(histories.begin(), histories.end());
    for (const auto& [partner, refs] : keys.receipts) {
      QueryChunked(tx_, kPrefetchReceiptsHead, kPrefetchTail, &partner, refs,
                   [&](sql::ResultSet& rs) {
                     receipts_[absl::StrCat(partner, "\x1f", Str(rs, 1))] = Str(rs, 2);
                   });
      for (const std::string& r : refs) receipts_.try_emplace(absl::StrCat(partner, "\x1f", r), "");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<AccountRow*> Account(const std::string& account) override {
    auto it = accounts_.find(account);
    if (it != accounts_.end()) return it->second.get();
    sql::PreparedStatement& stmt = tx_.Prepare(kSelectAccountForUpdate);
    stmt.setString(1, account);
    std::unique_ptr<sql::ResultSet> rs(stmt.executeQuery());
    auto row = std::make_unique<AccountRow>();
    if (rs->next()) {
      *row = ReadAccount(*rs);
    } else {
      row->account = account;
    }
    AccountRow* ptr = row.get();
    accounts_.emplace(account, std::move(row));
    return ptr;
  }

  absl::StatusOr<std::vector<LotRow*>> OpenLots(const std::string& member_id) override {
    if (!lots_loaded_for_.contains(member_id)) {
      sql::PreparedStatement& stmt = tx_.Prepare(kSelectOpenLotsForUpdate);
      stmt.setString(1, member_id);
      std::unique_ptr<sql::ResultSet> rs(stmt.executeQuery());
      while (rs->next()) Remember(ReadLot(*rs));
      lots_loaded_for_.insert(member_id);
    }
    std::vector<LotRow*> open;
    for (LotRow* lot : member_lots_[member_id]) {
      if (lot->remaining_points > 0) open.push_back(lot);
    }
    std::sort(open.begin(), open.end(), [](const LotRow* a, const LotRow* b) {
      return std::tie(a->expires_at, a->lot_id) < std::tie(b->expires_at, b->lot_id);
    });
    return open;
  }

  absl::StatusOr<LotRow*> Lot(const std::string& lot_id) override {
    return LoadOne(lots_, kSelectLotForUpdate, lot_id, ReadLot,
                   [this](LotRow row) { return Remember(std::move(row)); });
  }

  absl::StatusOr<HoldRow*> Hold(const std::string& hold_id) override {
    return LoadOne(holds_, kSelectHoldForUpdate, hold_id, ReadHold,
                   [this](HoldRow row) { return RememberHold(std::move(row)); });
  }

  absl::StatusOr<TransferRow*> Transfer(const std::string& transfer_id) override {
    if (auto it = transfers_.find(transfer_id); it != transfers_.end()) return it->second.get();
    sql::PreparedStatement& stmt = tx_.Prepare(kSelectTransferBodyForUpdate);
    stmt.setString(1, transfer_id);
    std::unique_ptr<sql::ResultSet> rs(stmt.executeQuery());
    if (!rs->next()) return nullptr;
    auto row = std::make_unique<TransferRow>();
    ASSIGN_OR_RETURN(row->transfer, ReadTransferBody(*rs, 1));
    row->reversed_points = rs->getInt64(4);
    TransferRow* ptr = row.get();
    transfers_.emplace(transfer_id, std::move(row));
    return ptr;
  }

  absl::StatusOr<std::optional<IdempotencyRecord>> Idempotency(const std::string& caller,
                                                               const std::string& key) override {
    const std::string map_key = absl::StrCat(caller, "\x1f", key);
    if (auto it = idempotency_.find(map_key); it != idempotency_.end()) return it->second;
    sql::PreparedStatement& stmt = tx_.Prepare(kSelectIdempotency);
    stmt.setString(1, caller);
    stmt.setString(2, key);
    std::unique_ptr<sql::ResultSet> rs(stmt.executeQuery());
    std::optional<IdempotencyRecord> record;
    if (rs->next()) {
      record = IdempotencyRecord{Str(*rs, 1), Str(*rs, 2), rs->getInt(3), Str(*rs, 4), Str(*rs, 5)};
    }
    idempotency_.emplace(map_key, record);
    return record;
  }

  absl::StatusOr<std::string> EarnReceipt(const std::string& partner_id,
                                          const std::string& reference) override {
    const std::string map_key = absl::StrCat(partner_id, "\x1f", reference);
    if (auto it = receipts_.find(map_key); it != receipts_.end()) return it->second;
    sql::PreparedStatement& stmt = tx_.Prepare(kSelectReceipt);
    stmt.setString(1, partner_id);
    stmt.setString(2, reference);
    std::unique_ptr<sql::ResultSet> rs(stmt.executeQuery());
    std::string transfer_id = rs->next() ? Str(*rs, 1) : "";
    receipts_.emplace(map_key, transfer_id);
    return transfer_id;
  }

  absl::StatusOr<bool> HasEarnedAt(const std::string& member_id, const std::string& partner_id) override {
    const std::string map_key = absl::StrCat(member_id, "\x1f", partner_id);
    if (auto it = earned_at_.find(map_key); it != earned_at_.end()) return it->second;
    // Every partner of a prefetched member is already in earned_at_.
    if (histories_loaded_for_.contains(member_id)) return false;
    // Locking, like every read of the batch: it sees the latest commit.
    const bool earned = EarnedAt(tx_, kSelectMemberPartnerForUpdate, member_id, partner_id);
    earned_at_.emplace(map_key, earned);
    return earned;
  }

  absl::StatusOr<std::vector<LotRow*>> ExpiredLots(absl::Time as_of, int limit) override {
    sql::PreparedStatement& stmt = tx_.Prepare(kSelectExpiredLotsForUpdate);
    stmt.setString(1, SqlTime(as_of));
    stmt.setInt(2, limit);
    std::unique_ptr<sql::ResultSet> rs(stmt.executeQuery());
    std::vector<LotRow*> out;
    while (rs->next()) {
      LotRow lot = ReadLot(*rs);
      auto it = lots_.find(lot.lot_id);
      out.push_back(it != lots_.end() ? it->second.get() : Remember(std::move(lot)));
    }
    rs.reset();
    // One query for all their accounts, not one per lot: a large expiry
    // batch must not hold up the writer.
    PrefetchKeys keys;
    for (const LotRow* lot : out) {
      keys.accounts.insert(MemberAccount(lot->member_id));
      keys.accounts.insert(BreakageAccount(lot->issuer_partner_id));
    }
    RETURN_IF_ERROR(Prefetch(keys));
    return out;
  }

  absl::StatusOr<std::vector<HoldRow*>> ExpiredHolds(absl::Time as_of, int limit) override {
    sql::PreparedStatement& stmt = tx_.Prepare(kSelectExpiredHoldsForUpdate);
    stmt.setString(1, SqlTime(as_of));
    stmt.setInt(2, limit);
    std::unique_ptr<sql::ResultSet> rs(stmt.executeQuery());
    std::vector<HoldRow*> out;
    while (rs->next()) {
      HoldRow hold = ReadHold(*rs);
      auto it = holds_.find(hold.hold_id);
      HoldRow* ptr = it != holds_.end() ? it->second.get() : RememberHold(std::move(hold));
      if (ptr->state == v1::HOLD_STATE_PENDING) out.push_back(ptr);
    }
    rs.reset();
    PrefetchKeys keys;  // as for ExpiredLots: one query for all the accounts
    for (const HoldRow* hold : out) {
      keys.accounts.insert(MemberAccount(hold->member_id));
      keys.accounts.insert(RedemptionAccount(hold->partner_id));
    }
    RETURN_IF_ERROR(Prefetch(keys));
    return out;
  }

  LotRow* AddLot(LotRow lot) override {
    lot.is_new = lot.dirty = true;
    return Remember(std::move(lot));
  }

  HoldRow* AddHold(HoldRow hold) override {
    hold.is_new = hold.dirty = true;
    return RememberHold(std::move(hold));
  }

  const v1::Transfer& Append(v1::Transfer transfer) override {
    transfer.set_sequence(++head_sequence_);
    *transfer.mutable_created_at() = ToProtoTime(now_);

    Appended a;
    a.body = TransferBody(transfer);
    transfer.set_prev_hash(head_hash_);
    head_hash_ = ChainHash(head_hash_, a.body);
    transfer.set_hash(head_hash_);
    a.transfer = std::make_unique<v1::Transfer>(std::move(transfer));
    appended_.push_back(std::move(a));
    const v1::Transfer& stored = *appended_.back().transfer;
    // Later commands in the batch may reverse it.
    auto row = std::make_unique<TransferRow>();
    row->transfer = stored;
    transfers_[stored.transfer_id()] = std::move(row);
    if (stored.code() == v1::TRANSFER_CODE_EARN) {
      bool& earned = earned_at_[absl::StrCat(stored.member_id(), "\x1f", stored.partner_id())];
      // Written unless known to be there; the upsert keeps the first anyway.
      if (!earned) new_member_partners_.push_back({stored.member_id(), stored.partner_id(), stored.sequence()});
      earned = true;
    }
    return stored;
  }

  void PutIdempotency(const std::string& caller, const std::string& key,
                      IdempotencyRecord record) override {
    idempotency_[absl::StrCat(caller, "\x1f", key)] = record;
    new_idempotency_.push_back({caller, key, std::move(record)});
  }

  void PutEarnReceipt(const std::string& partner_id, const std::string& reference,
                      const std::string& transfer_id) override {
    receipts_[absl::StrCat(partner_id, "\x1f", reference)] = transfer_id;
    new_receipts_.push_back({partner_id, reference, transfer_id});
  }

  // Writes every change of the batch: one statement per table, rows in a
  // deterministic order. Called once, before commit.
  void Flush() {
    const std::string now_text = SqlTime(now_);
    JsonRows transfers;
    for (const Appended& a : appended_) {
      const v1::Transfer& t = *a.transfer;
      transfers.Row();
      transfers.Int(t.sequence()).Str(t.transfer_id()).Int(t.code()).Str(t.debit_account())
          .Str(t.credit_account()).Int(t.points()).Str(t.partner_id()).Str(t.member_id())
          .Str(t.reference()).Str(t.related_transfer_id()).Str(t.hold_id()).Str(now_text)
          .Bytes(a.body).Str(t.prev_hash()).Str(t.hash());
      transfers.EndRow();
    }
    ExecuteJson(tx_, InsertTransfersSql(), transfers);

    JsonRows accounts;
    for (const AccountRow* a : Sorted(accounts_, [](const AccountRow& r) { return r.dirty; })) {
      accounts.Row();
      accounts.Str(a->account).Int(a->debits_posted).Int(a->credits_posted)
          .Int(a->debits_pending).Int(a->credits_pending).Str(now_text);
      accounts.EndRow();
    }
    ExecuteJson(tx_, UpsertAccountsSql(), accounts);

    JsonRows lots;
    for (const LotRow* l : Sorted(lots_, [](const LotRow& r) { return r.dirty; })) {
      lots.Row();
      lots.Str(l->lot_id).Str(l->member_id).Str(l->issuer_partner_id).Str(l->source_transfer_id)
          .Int(l->original_points).Int(l->remaining_points).Int(l->remaining_points > 0 ? 1 : 0)
          .Str(SqlTime(l->earned_at)).Str(SqlTime(l->expires_at));
      lots.EndRow();
    }
    ExecuteJson(tx_, UpsertLotsSql(), lots);

    JsonRows holds;
    for (const HoldRow* h : Sorted(holds_, [](const HoldRow& r) { return r.dirty; })) {
      holds.Row();
      holds.Str(h->hold_id).Str(h->member_id).Str(h->partner_id).Int(h->points)
          .Int(h->captured_points).Int(h->state).Str(h->reference)
          .Bytes(EncodeMetadata(h->metadata)).Str(SqlTime(h->created_at))
          .Str(SqlTime(h->expires_at));
      if (h->closed_at.has_value()) {
        holds.Str(SqlTime(*h->closed_at));
      } else {
        holds.Null();
      }
      holds.Str(h->hold_transfer_id).Str(h->closing_transfer_id);
      holds.EndRow();
    }
    ExecuteJson(tx_, UpsertHoldsSql(), holds);

    JsonRows reversals;
    for (const TransferRow* t :
         Sorted(transfers_, [](const TransferRow& r) { return r.reversed_dirty; })) {
      reversals.Row();
      reversals.Str(t->transfer.transfer_id()).Int(t->reversed_points);
      reversals.EndRow();
    }
    ExecuteJson(tx_, UpsertReversalsSql(), reversals);

    JsonRows idempotency;
    for (const NewIdempotency& n : new_idempotency_) {
      idempotency.Row();
      idempotency.Str(n.caller).Str(n.key).Str(n.record.method).Bytes(n.record.request)
          .Int(n.record.status_code).Str(n.record.status_message.substr(0, 1024))
          .Bytes(n.record.response).Str(now_text);
      idempotency.EndRow();
    }
    ExecuteJson(tx_, InsertIdempotencySql(), idempotency);

    JsonRows member_partners;
    for (const NewMemberPartner& m : new_member_partners_) {
      member_partners.Row();
      member_partners.Str(m.member_id).Str(m.partner_id).Int(m.first_sequence);
      member_partners.EndRow();
    }
    ExecuteJson(tx_, InsertMemberPartnersSql(), member_partners);

    JsonRows receipts;
    for (const NewReceipt& r : new_receipts_) {
      receipts.Row();
      receipts.Str(r.partner_id).Str(r.reference).Str(r.transfer_id);
      receipts.EndRow();
    }
    ExecuteJson(tx_, InsertReceiptsSql(), receipts);

    if (!appended_.empty()) {
      sql::PreparedStatement& head = tx_.Prepare(kUpdateHead);
      head.setInt64(1, head_sequence_);
      head.setString(2, head_hash_);
      head.executeUpdate();
    }
  }

 private:
  // The batch's copy of a row, or the one the locking read `sql` finds for
  // `id` (then kept through `remember`); nullptr when there is none.
  template <typename Row, typename Read, typename Remember>
  absl::StatusOr<Row*> LoadOne(absl::flat_hash_map<std::string, std::unique_ptr<Row>>& cache,
                               absl::string_view sql, const std::string& id, Read read,
                               Remember remember) {
    if (auto it = cache.find(id); it != cache.end()) return it->second.get();
    sql::PreparedStatement& stmt = tx_.Prepare(sql);
    stmt.setString(1, id);
    std::unique_ptr<sql::ResultSet> rs(stmt.executeQuery());
    if (!rs->next()) return static_cast<Row*>(nullptr);
    return remember(read(*rs));
  }

  // The rows of `map` that pass `keep`, sorted by key: the same rows are
  // always written in the same order.
  template <typename Row, typename Keep>
  static std::vector<const Row*> Sorted(
      const absl::flat_hash_map<std::string, std::unique_ptr<Row>>& map, Keep keep) {
    std::vector<std::pair<const std::string*, const Row*>> rows;
    for (const auto& [key, row] : map) {
      if (keep(*row)) rows.emplace_back(&key, row.get());
    }
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return *a.first < *b.first; });
    std::vector<const Row*> out;
    for (const auto& r : rows) out.push_back(r.second);
    return out;
  }

  struct Appended {
    std::unique_ptr<v1::Transfer> transfer;
    std::string body;
  };
  struct NewIdempotency {
    std::string caller;
    std::string key;
    IdempotencyRecord record;
  };
  struct NewReceipt {
    std::string partner_id;
    std::string reference;
    std::string transfer_id;
  };

  LotRow* Remember(LotRow lot) {
    auto [it, inserted] = lots_.try_emplace(lot.lot_id, nullptr);
    if (!inserted) return it->second.get();  // the batch's copy wins
    it->second = std::make_unique<LotRow>(std::move(lot));
    member_lots_[it->second->member_id].push_back(it->second.get());
    return it->second.get();
  }

  HoldRow* RememberHold(HoldRow hold) {
    auto [it, inserted] = holds_.try_emplace(hold.hold_id, nullptr);
    if (!inserted) return it->second.get();
    it->second = std::make_unique<HoldRow>(std::move(hold));
    return it->second.get();
  }

  db::Transaction& tx_;
  const absl::Time now_;
  int64_t head_sequence_;
  std::string head_hash_;
  absl::flat_hash_map<std::string, std::unique_ptr<AccountRow>> accounts_;
  absl::flat_hash_map<std::string, std::unique_ptr<LotRow>> lots_;
  absl::flat_hash_map<std::string, std::vector<LotRow*>> member_lots_;
  absl::flat_hash_set<std::string> lots_loaded_for_;
  absl::flat_hash_map<std::string, std::unique_ptr<HoldRow>> holds_;
  absl::flat_hash_map<std::string, std::unique_ptr<TransferRow>> transfers_;
  absl::flat_hash_map<std::string, std::optional<IdempotencyRecord>> idempotency_;
  absl::flat_hash_map<std::string, std::string> receipts_;
  absl::flat_hash_map<std::string, bool> earned_at_;  // member \x1f partner
  std::set<std::string> histories_loaded_for_;  // members whose partners were all prefetched
  struct NewMemberPartner {
    std::string member_id;
    std::string partner_id;
    int64_t first_sequence = 0;
  };
  std::vector<NewMemberPartner> new_member_partners_;
  std::vector<Appended> appended_;
  std::vector<NewIdempotency> new_idempotency_;
  std::vector<NewReceipt> new_receipts_;
};

// ---- The store ------------------------------------------------------------

class MysqlLedgerStore final : public LedgerStore {
 public:
  explicit MysqlLedgerStore(db::ConnectionPool& pool) : pool_(pool) {}

  absl::Status RunBatch(const std::function<absl::Status(BatchState&)>& body) override {
    absl::Time t_locked, t_applied, t_flushed;
    const absl::Time t_start = absl::Now();
    absl::Status status =
        db::RunInTransaction(pool_, "ledger batch", [&](db::Transaction& tx) -> absl::Status {
          std::unique_ptr<sql::ResultSet> rs(tx.Prepare(kLockHead).executeQuery());
          if (!rs->next()) return absl::InternalError("journal_head row is missing");
          t_locked = absl::Now();
          MysqlBatch batch(tx, t_locked, rs->getInt64(1), Str(*rs, 2));
          rs.reset();
          RETURN_IF_ERROR(body(batch));
          t_applied = absl::Now();
          batch.Flush();
          t_flushed = absl::Now();
          return absl::OkStatus();
        });
    if (status.code() == absl::StatusCode::kAlreadyExists) {
      // A duplicate key inside a batch is our bug, not the caller's key
      // reuse: make it INTERNAL so the batch is split and the cause logged.
      return absl::InternalError(status.message());
    }
    if (status.ok()) {
      log::Debug("ledger_batch_timing",
                 {{"lock_us", absl::ToInt64Microseconds(t_locked - t_start)},
                  {"apply_us", absl::ToInt64Microseconds(t_applied - t_locked)},
                  {"flush_us", absl::ToInt64Microseconds(t_flushed - t_applied)},
                  {"commit_us", absl::ToInt64Microseconds(absl::Now() - t_flushed)}});
    }
    return status;
  }

  absl::StatusOr<std::optional<AccountRow>> GetAccount(const std::string& account) override {
    return GetOne<AccountRow>("get account", kSelectAccount, account, ReadAccount);
  }

  absl::StatusOr<std::vector<ListedAccount>> ListAccounts(const AccountQuery& q) override {
    // Two fixed statements: a range, or up to kMaxNamedAccounts names (the
    // last one repeated to fill the list). Both are primary-key scans.
    static constexpr absl::string_view kColumns =
        "SELECT account, debits_posted, credits_posted, debits_pending, credits_pending, created_at "
        "FROM accounts ";
    static const std::string kRange = absl::StrCat(
        kColumns,
        "WHERE account >= ? AND account < ? AND account > ? "
        "AND (? = 0 OR account < 'member:' OR account >= 'member;') ORDER BY account LIMIT ?");
    static const std::string kNamed =
        absl::StrCat(kColumns, "WHERE account IN (?, ?, ?) AND account > ? ORDER BY account LIMIT ?");
    static_assert(kMaxNamedAccounts == 3);
    std::vector<ListedAccount> out;
    RETURN_IF_ERROR(db::RunWithConnection(pool_, "list accounts", [&](db::PooledConnection& c) {
      sql::PreparedStatement* stmt = nullptr;
      int p = 1;
      if (q.names.empty()) {
        stmt = &c.Prepare(kRange);
        stmt->setString(p++, q.first);
        stmt->setString(p++, q.last);
        stmt->setString(p++, q.after);
        stmt->setInt(p++, q.skip_members ? 1 : 0);
      } else {
        if (q.names.size() > kMaxNamedAccounts) return absl::InternalError("too many account names");
        stmt = &c.Prepare(kNamed);
        for (size_t i = 0; i < kMaxNamedAccounts; ++i) stmt->setString(p++, q.names[std::min(i, q.names.size() - 1)]);
        stmt->setString(p++, q.after);
      }
      stmt->setInt(p++, q.limit);
      std::unique_ptr<sql::ResultSet> rs(stmt->executeQuery());
      while (rs->next()) out.push_back(ListedAccount{ReadAccount(*rs), ParseSqlTime(Str(*rs, 6))});
      return absl::OkStatus();
    }));
    return out;
  }

  absl::StatusOr<std::optional<TransferRow>> GetTransfer(const std::string& transfer_id) override {
    std::optional<TransferRow> out;
    RETURN_IF_ERROR(db::RunWithConnection(pool_, "get transfer", [&](db::PooledConnection& c) -> absl::Status {
      sql::PreparedStatement& stmt = c.Prepare(kSelectTransferBody);
      stmt.setString(1, transfer_id);
      std::unique_ptr<sql::ResultSet> rs(stmt.executeQuery());
      if (!rs->next()) return absl::OkStatus();
      TransferRow row;
      ASSIGN_OR_RETURN(row.transfer, ReadTransferBody(*rs, 1));
      row.reversed_points = rs->getInt64(4);
      out = std::move(row);
      return absl::OkStatus();
    }));
    return out;
  }

  absl::StatusOr<std::optional<HoldRow>> GetHold(const std::string& hold_id) override {
    return GetOne<HoldRow>("get hold", kSelectHold, hold_id, ReadHold);
  }

  absl::StatusOr<std::vector<LotRow>> ListLots(const LotQuery& q) override {
    // Fixed text, optional filters expressed with neutral values.
    static constexpr absl::string_view kSql =
        "SELECT " LOYALTY_LOT_COLUMNS " FROM lots "
        "WHERE member_id = ? AND (? = 1 OR is_open = 1) AND (? = '' OR issuer_partner_id = ?) "
        "AND (expires_at > ? OR (expires_at = ? AND lot_id > ?)) "
        "ORDER BY expires_at, lot_id LIMIT ?";
    std::vector<LotRow> out;
    RETURN_IF_ERROR(db::RunWithConnection(pool_, "list lots", [&](db::PooledConnection& c) {
      sql::PreparedStatement& stmt = c.Prepare(kSql);
      const absl::Time after_time = q.after ? q.after->first : absl::FromUnixSeconds(0);
      const std::string after_id = q.after ? q.after->second : "";
      stmt.setString(1, q.member_id);
      stmt.setInt(2, q.include_depleted ? 1 : 0);
      stmt.setString(3, q.issuer_partner_id);
      stmt.setString(4, q.issuer_partner_id);
      stmt.setString(5, SqlTime(after_time));
      stmt.setString(6, SqlTime(after_time));
      stmt.setString(7, after_id);
      stmt.setInt(8, q.limit);
      std::unique_ptr<sql::ResultSet> rs(stmt.executeQuery());
      while (rs->next()) out.push_back(ReadLot(*rs));
      return absl::OkStatus();
    }));
    return out;
  }

  absl::StatusOr<std::vector<v1::Transfer>> ListTransfers(const TransferQuery& q) override {
    // One fixed statement per direction; unused filters take neutral values.
    static constexpr absl::string_view kWhere =
        "FROM transfers WHERE (? = '' OR member_id = ?) "
        "AND (? = '' OR debit_account = ? OR credit_account = ?) "
        "AND (? = '' OR partner_id = ?) AND (? = '' OR reference = ?) "
        "AND created_at >= ? AND created_at < ? AND (? = '' OR FIND_IN_SET(code, ?) > 0) ";
    static const std::string kNewest = absl::StrCat(
        "SELECT body, prev_hash, hash ", kWhere, "AND sequence < ? ORDER BY sequence DESC LIMIT ?");
    static const std::string kOldest = absl::StrCat(
        "SELECT body, prev_hash, hash ", kWhere, "AND sequence > ? ORDER BY sequence ASC LIMIT ?");
    std::vector<v1::Transfer> out;
    RETURN_IF_ERROR(db::RunWithConnection(pool_, "list transfers", [&](db::PooledConnection& c) -> absl::Status {
      sql::PreparedStatement& stmt = c.Prepare(q.oldest_first ? kOldest : kNewest);
      std::string codes;
      for (int code : q.codes) absl::StrAppend(&codes, codes.empty() ? "" : ",", code);
      int p = 1;
      stmt.setString(p++, q.member_id);
      stmt.setString(p++, q.member_id);
      stmt.setString(p++, q.account);
      stmt.setString(p++, q.account);
      stmt.setString(p++, q.account);
      stmt.setString(p++, q.partner_id);
      stmt.setString(p++, q.partner_id);
      stmt.setString(p++, q.reference);
      stmt.setString(p++, q.reference);
      stmt.setString(p++, SqlTime(q.start_time.value_or(absl::FromUnixSeconds(0))));
      stmt.setString(p++, SqlTime(q.end_time.value_or(absl::FromCivil(absl::CivilSecond(9999, 1, 1), absl::UTCTimeZone()))));
      stmt.setString(p++, codes);
      stmt.setString(p++, codes);
      const int64_t cursor = q.after_sequence > 0 ? q.after_sequence
                                                  : (q.oldest_first ? 0 : INT64_MAX);
      stmt.setInt64(p++, cursor);
      stmt.setInt(p++, q.limit);
      std::unique_ptr<sql::ResultSet> rs(stmt.executeQuery());
      while (rs->next()) {
        ASSIGN_OR_RETURN(v1::Transfer t, ReadTransferBody(*rs, 1));
        out.push_back(std::move(t));
      }
      return absl::OkStatus();
    }));
    return out;
  }

  absl::StatusOr<std::vector<v1::Transfer>> ReadJournal(int64_t after_sequence,
                                                        int64_t up_to_sequence,
                                                        int limit) override {
    std::vector<v1::Transfer> out;
    RETURN_IF_ERROR(db::RunWithConnection(pool_, "read journal", [&](db::PooledConnection& c) -> absl::Status {
      sql::PreparedStatement& stmt = c.Prepare(kSelectJournalPage);
      stmt.setInt64(1, after_sequence);
      stmt.setInt64(2, up_to_sequence > 0 ? up_to_sequence : INT64_MAX);
      stmt.setInt(3, limit);
      std::unique_ptr<sql::ResultSet> rs(stmt.executeQuery());
      while (rs->next()) {
        ASSIGN_OR_RETURN(v1::Transfer t, ReadTransferBody(*rs, 1));
        out.push_back(std::move(t));
      }
      return absl::OkStatus();
    }));
    return out;
  }

  absl::StatusOr<int64_t> HeadSequence() override {
    int64_t head = 0;
    RETURN_IF_ERROR(db::RunWithConnection(pool_, "journal head", [&](db::PooledConnection& c) {
      std::unique_ptr<sql::ResultSet> rs(c.Prepare(kSelectHead).executeQuery());
      if (rs->next()) head = rs->getInt64(1);
      return absl::OkStatus();
    }));
    return head;
  }

  absl::StatusOr<std::vector<JournalRow>> JournalRows(int64_t from_sequence,
                                                      int64_t to_sequence) override {
    std::vector<JournalRow> out;
    RETURN_IF_ERROR(db::RunWithConnection(pool_, "journal rows", [&](db::PooledConnection& c) {
      sql::PreparedStatement& stmt = c.Prepare(kSelectJournalRows);
      stmt.setInt64(1, from_sequence);
      stmt.setInt64(2, to_sequence);
      std::unique_ptr<sql::ResultSet> rs(stmt.executeQuery());
      while (rs->next()) {
        JournalRow r;
        r.sequence = rs->getInt64(1);
        r.transfer_id = Str(*rs, 2);
        r.code = rs->getInt(3);
        r.debit_account = Str(*rs, 4);
        r.credit_account = Str(*rs, 5);
        r.points = rs->getInt64(6);
        r.partner_id = Str(*rs, 7);
        r.member_id = Str(*rs, 8);
        r.body = Str(*rs, 9);
        r.prev_hash = Str(*rs, 10);
        r.hash = Str(*rs, 11);
        r.reference = Str(*rs, 12);
        r.related_transfer_id = Str(*rs, 13);
        r.hold_id = Str(*rs, 14);
        r.created_at_micros = absl::ToUnixMicros(ParseSqlTime(Str(*rs, 15)));
        out.push_back(std::move(r));
      }
      return absl::OkStatus();
    }));
    return out;
  }

  absl::StatusOr<std::string> HashAt(int64_t sequence) override {
    if (sequence == 0) return std::string(kGenesisHash);
    std::string hash;
    RETURN_IF_ERROR(db::RunWithConnection(pool_, "hash at", [&](db::PooledConnection& c) -> absl::Status {
      sql::PreparedStatement& stmt = c.Prepare(kSelectHashAt);
      stmt.setInt64(1, sequence);
      std::unique_ptr<sql::ResultSet> rs(stmt.executeQuery());
      if (!rs->next()) return absl::NotFoundError(absl::StrCat("no transfer with sequence ", sequence));
      hash = Str(*rs, 1);
      return absl::OkStatus();
    }));
    return hash;
  }

  absl::StatusOr<std::map<std::string, int64_t>> QualifyingPoints(
      const std::vector<std::string>& member_ids, absl::Time start, absl::Time end) override {
    std::map<std::string, int64_t> out;
    RETURN_IF_ERROR(db::RunWithConnection(pool_, "qualifying points", [&](db::PooledConnection& c) {
      for (const std::string& member : member_ids) {
        sql::PreparedStatement& stmt = c.Prepare(kSelectQualifying);
        stmt.setString(1, member);
        stmt.setString(2, SqlTime(start));
        stmt.setString(3, SqlTime(end));
        std::unique_ptr<sql::ResultSet> rs(stmt.executeQuery());
        out[member] = rs->next() ? std::max<int64_t>(0, rs->getInt64(1)) : 0;
      }
      return absl::OkStatus();
    }));
    return out;
  }

  absl::StatusOr<int64_t> NetIssuanceAt(const std::string& partner_id, int64_t sequence) override {
    const std::string account = IssuanceAccount(partner_id);
    int64_t at = 0;
    // One transaction: the account row and the transfers after `sequence`
    // are read from the same snapshot.
    RETURN_IF_ERROR(db::RunInTransaction(pool_, "net issuance", [&](db::Transaction& tx) {
      int64_t now = 0;
      sql::PreparedStatement& current = tx.Prepare(kSelectNetIssuanceNow);
      current.setString(1, account);
      std::unique_ptr<sql::ResultSet> rs(current.executeQuery());
      if (rs->next()) now = rs->getInt64(1);
      sql::PreparedStatement& after = tx.Prepare(kSelectNetIssuanceAfter);
      after.setString(1, account);
      after.setString(2, account);
      after.setString(3, partner_id);
      after.setInt64(4, sequence);
      std::unique_ptr<sql::ResultSet> later(after.executeQuery());
      at = now - (later->next() ? later->getInt64(1) : 0);
      return absl::OkStatus();
    }));
    return at;
  }

  absl::StatusOr<bool> HasEarnedAt(const std::string& member_id, const std::string& partner_id) override {
    bool earned = false;
    RETURN_IF_ERROR(db::RunWithConnection(pool_, "earned at", [&](db::PooledConnection& c) {
      earned = EarnedAt(c, kSelectMemberPartner, member_id, partner_id);
      return absl::OkStatus();
    }));
    return earned;
  }

  absl::StatusOr<Liability> PointsLiability() override {
    Liability out;
    // One transaction so the figures are consistent with each other.
    RETURN_IF_ERROR(db::RunInTransaction(pool_, "points liability", [&](db::Transaction& tx) {
      out = Liability();
      std::unique_ptr<sql::ResultSet> head(tx.Prepare(kSelectHead).executeQuery());
      if (head->next()) out.as_of_sequence = head->getInt64(1);
      std::unique_ptr<sql::ResultSet> total(tx.Prepare(kSelectMemberBalanceTotal).executeQuery());
      if (total->next()) out.member_balance_points = total->getInt64(1);
      std::unique_ptr<sql::ResultSet> rs(tx.Prepare(kSelectLiabilityByIssuer).executeQuery());
      while (rs->next()) {
        out.issuers[Str(*rs, 1)] = {rs->getInt64(2), rs->getInt64(3)};
        out.lot_remaining_points += rs->getInt64(2);
      }
      return absl::OkStatus();
    }));
    return out;
  }

 private:
  // One row by its key, read without locking; nullopt when absent.
  template <typename Row, typename Read>
  absl::StatusOr<std::optional<Row>> GetOne(absl::string_view context, absl::string_view statement,
                                            const std::string& key, Read read) {
    std::optional<Row> out;
    RETURN_IF_ERROR(db::RunWithConnection(pool_, context, [&](db::PooledConnection& c) {
      sql::PreparedStatement& stmt = c.Prepare(statement);
      stmt.setString(1, key);
      std::unique_ptr<sql::ResultSet> rs(stmt.executeQuery());
      if (rs->next()) out = read(*rs);
      return absl::OkStatus();
    }));
    return out;
  }

  db::ConnectionPool& pool_;
};

}  // namespace

std::unique_ptr<LedgerStore> NewMysqlLedgerStore(db::ConnectionPool& pool) {
  return std::make_unique<MysqlLedgerStore>(pool);
}

}  // namespace loyalty::ledger
