// MysqlBatch's writes (mysql_batch_state.h): appending to the journal in
// memory, and Flush, which writes every change of the batch at the end.
#include "services/ledger/mysql_batch_state.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/db/sql_values.h"
#include "common/time/proto_time.h"
#include "services/ledger/journal.h"
#include "services/ledger/mysql_ledger_rows.h"

namespace loyalty::ledger::store_internal {
namespace {

using db::SqlTime;

constexpr absl::string_view kUpdateHead =
    "UPDATE journal_head SET last_sequence = ?, last_hash = ? WHERE id = 1";

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

// The rows of `map` that pass `keep`, sorted by key: the same rows are
// always written in the same order.
template <typename Row, typename Keep>
std::vector<const Row*> Sorted(const absl::flat_hash_map<std::string, std::unique_ptr<Row>>& map, Keep keep) {
  std::vector<std::pair<const std::string*, const Row*>> rows;
  for (const auto& [key, row] : map) {
    if (keep(*row)) rows.emplace_back(&key, row.get());
  }
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return *a.first < *b.first; });
  std::vector<const Row*> out;
  for (const auto& r : rows) out.push_back(r.second);
  return out;
}

}  // namespace

// ---- In memory, until Flush --------------------------------------------------

const v1::Transfer& MysqlBatch::Append(v1::Transfer transfer) {
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

void MysqlBatch::PutIdempotency(const std::string& caller, const std::string& key, IdempotencyRecord record) {
  idempotency_[absl::StrCat(caller, "\x1f", key)] = record;
  new_idempotency_.push_back({caller, key, std::move(record)});
}

void MysqlBatch::PutEarnReceipt(const std::string& partner_id, const std::string& reference,
                                const std::string& transfer_id) {
  receipts_[absl::StrCat(partner_id, "\x1f", reference)] = transfer_id;
  new_receipts_.push_back({partner_id, reference, transfer_id});
}

// ---- Flush: one statement per table ------------------------------------------

void MysqlBatch::Flush() {
  const std::string now_text = SqlTime(now_);
  WriteTransfers(now_text);
  WriteAccounts(now_text);
  WriteLots();
  WriteHolds();
  WriteReversals();
  WriteIdempotency(now_text);
  WriteMemberPartners();
  WriteReceipts();
  WriteHead();
}

void MysqlBatch::WriteTransfers(const std::string& now_text) {
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
}

void MysqlBatch::WriteAccounts(const std::string& now_text) {
  JsonRows accounts;
  for (const AccountRow* a : Sorted(accounts_, [](const AccountRow& r) { return r.dirty; })) {
    accounts.Row();
    accounts.Str(a->account).Int(a->debits_posted).Int(a->credits_posted)
        .Int(a->debits_pending).Int(a->credits_pending).Str(now_text);
    accounts.EndRow();
  }
  ExecuteJson(tx_, UpsertAccountsSql(), accounts);
}

void MysqlBatch::WriteLots() {
  JsonRows lots;
  for (const LotRow* l : Sorted(lots_, [](const LotRow& r) { return r.dirty; })) {
    lots.Row();
    lots.Str(l->lot_id).Str(l->member_id).Str(l->issuer_partner_id).Str(l->source_transfer_id)
        .Int(l->original_points).Int(l->remaining_points).Int(l->remaining_points > 0 ? 1 : 0)
        .Str(SqlTime(l->earned_at)).Str(SqlTime(l->expires_at));
    lots.EndRow();
  }
  ExecuteJson(tx_, UpsertLotsSql(), lots);
}

void MysqlBatch::WriteHolds() {
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
}

void MysqlBatch::WriteReversals() {
  JsonRows reversals;
  for (const TransferRow* t :
       Sorted(transfers_, [](const TransferRow& r) { return r.reversed_dirty; })) {
    reversals.Row();
    reversals.Str(t->transfer.transfer_id()).Int(t->reversed_points);
    reversals.EndRow();
  }
  ExecuteJson(tx_, UpsertReversalsSql(), reversals);
}

void MysqlBatch::WriteIdempotency(const std::string& now_text) {
  JsonRows idempotency;
  for (const NewIdempotency& n : new_idempotency_) {
    idempotency.Row();
    idempotency.Str(n.caller).Str(n.key).Str(n.record.method).Bytes(n.record.request)
        .Int(n.record.status_code).Str(n.record.status_message.substr(0, 1024))
        .Bytes(n.record.response).Str(now_text);
    idempotency.EndRow();
  }
  ExecuteJson(tx_, InsertIdempotencySql(), idempotency);
}

void MysqlBatch::WriteMemberPartners() {
  JsonRows member_partners;
  for (const NewMemberPartner& m : new_member_partners_) {
    member_partners.Row();
    member_partners.Str(m.member_id).Str(m.partner_id).Int(m.first_sequence);
    member_partners.EndRow();
  }
  ExecuteJson(tx_, InsertMemberPartnersSql(), member_partners);
}

void MysqlBatch::WriteReceipts() {
  JsonRows receipts;
  for (const NewReceipt& r : new_receipts_) {
    receipts.Row();
    receipts.Str(r.partner_id).Str(r.reference).Str(r.transfer_id);
    receipts.EndRow();
  }
  ExecuteJson(tx_, InsertReceiptsSql(), receipts);
}

void MysqlBatch::WriteHead() {
  if (!appended_.empty()) {
    sql::PreparedStatement& head = tx_.Prepare(kUpdateHead);
    head.setInt64(1, head_sequence_);
    head.setString(2, head_hash_);
    head.executeUpdate();
  }
}

}  // namespace loyalty::ledger::store_internal
