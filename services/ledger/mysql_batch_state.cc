#include "services/ledger/mysql_batch_state.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/db/sql_values.h"
#include "common/status/status_macros.h"
#include "services/ledger/account_names.h"
#include "services/ledger/mysql_ledger_rows.h"

namespace loyalty::ledger::store_internal {
namespace {

using db::SqlTime;
using db::Str;

// ---- Locking reads of the batch ---------------------------------------------

constexpr absl::string_view kSelectAccountForUpdate =
    "SELECT account, debits_posted, credits_posted, debits_pending, credits_pending "
    "FROM accounts WHERE account = ? FOR UPDATE";
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
constexpr absl::string_view kSelectExpiredHoldsForUpdate =
    "SELECT " LOYALTY_HOLD_COLUMNS " FROM holds WHERE state = 1 AND expires_at <= ? ORDER BY expires_at LIMIT ? FOR UPDATE";
constexpr absl::string_view kSelectTransferBodyForUpdate =
    "SELECT t.body, t.prev_hash, t.hash, COALESCE(r.reversed_points, 0) FROM transfers t "
    "LEFT JOIN transfer_reversals r ON r.transfer_id = t.transfer_id "
    "WHERE t.transfer_id = ? FOR UPDATE";
constexpr absl::string_view kSelectIdempotency =
    "SELECT method, request, status_code, status_message, response FROM idempotency "
    "WHERE caller = ? AND idempotency_key = ? FOR UPDATE";
constexpr absl::string_view kSelectReceipt =
    "SELECT transfer_id FROM earn_receipts WHERE partner_id = ? AND receipt_reference = ? "
    "FOR UPDATE";
constexpr absl::string_view kPrefetchMemberPartnersHead =
    "SELECT member_id, partner_id FROM member_partners WHERE member_id IN (";

// Largest IN list; shorter lists are padded up to a power of two by
// repeating a key (harmless in IN), so a lookup is one statement.
constexpr size_t kMaxInList = 256;

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

}  // namespace

// ---- The batch's copies of rows ---------------------------------------------

template <typename Row, typename Read, typename Keep>
absl::StatusOr<Row*> MysqlBatch::LoadOne(absl::flat_hash_map<std::string, std::unique_ptr<Row>>& cache,
                                         absl::string_view sql, const std::string& id, Read read,
                                         Keep remember) {
  if (auto it = cache.find(id); it != cache.end()) return it->second.get();
  sql::PreparedStatement& stmt = tx_.Prepare(sql);
  stmt.setString(1, id);
  std::unique_ptr<sql::ResultSet> rs(stmt.executeQuery());
  if (!rs->next()) return static_cast<Row*>(nullptr);
  return remember(read(*rs));
}

LotRow* MysqlBatch::Remember(LotRow lot) {
  auto [it, inserted] = lots_.try_emplace(lot.lot_id, nullptr);
  if (!inserted) return it->second.get();  // the batch's copy wins
  it->second = std::make_unique<LotRow>(std::move(lot));
  member_lots_[it->second->member_id].push_back(it->second.get());
  return it->second.get();
}

HoldRow* MysqlBatch::RememberHold(HoldRow hold) {
  auto [it, inserted] = holds_.try_emplace(hold.hold_id, nullptr);
  if (!inserted) return it->second.get();
  it->second = std::make_unique<HoldRow>(std::move(hold));
  return it->second.get();
}

// ---- Prefetch ---------------------------------------------------------------

absl::Status MysqlBatch::Prefetch(const PrefetchKeys& keys) {
  std::set<std::string> accounts;
  std::set<std::string> lot_members;
  PrefetchHolds(keys.holds, accounts, lot_members);
  PrefetchOpenLots(lot_members);
  accounts.insert(keys.accounts.begin(), keys.accounts.end());
  PrefetchAccounts(std::move(accounts));
  for (const auto& [caller, idem_keys] : keys.idempotency) PrefetchIdempotency(caller, idem_keys);
  PrefetchEarnHistories(keys.earn_histories);
  for (const auto& [partner, refs] : keys.receipts) PrefetchReceipts(partner, refs);
  return absl::OkStatus();
}

void MysqlBatch::PrefetchHolds(const std::set<std::string>& hold_ids, std::set<std::string>& accounts,
                               std::set<std::string>& lot_members) {
  std::set<std::string> holds;
  for (const std::string& h : hold_ids) {
    if (!holds_.contains(h)) holds.insert(h);
  }
  QueryChunked(tx_, kPrefetchHoldsHead, kPrefetchTail, nullptr, holds,
               [&](sql::ResultSet& rs) { RememberHold(ReadHold(rs)); });
  for (const std::string& h : hold_ids) {
    auto it = holds_.find(h);
    if (it == holds_.end()) continue;
    accounts.insert(MemberAccount(it->second->member_id));
    accounts.insert(RedemptionAccount(it->second->partner_id));
    if (!lots_loaded_for_.contains(it->second->member_id)) lot_members.insert(it->second->member_id);
  }
}

void MysqlBatch::PrefetchOpenLots(const std::set<std::string>& members) {
  QueryChunked(tx_, kPrefetchOpenLotsHead, kPrefetchTail, nullptr, members,
               [&](sql::ResultSet& rs) { Remember(ReadLot(rs)); });
  for (const std::string& m : members) lots_loaded_for_.insert(m);
}

// Loads the accounts the batch has not loaded yet; those not stored are
// created in memory with zero balances.
void MysqlBatch::PrefetchAccounts(std::set<std::string> accounts) {
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
}

void MysqlBatch::PrefetchIdempotency(const std::string& caller, const std::set<std::string>& keys) {
  QueryChunked(tx_, kPrefetchIdempotencyHead, kPrefetchTail, &caller, keys,
               [&](sql::ResultSet& rs) {
                 idempotency_[absl::StrCat(caller, "\x1f", Str(rs, 1))] = IdempotencyRecord{
                     Str(rs, 2), Str(rs, 3), rs.getInt(4), Str(rs, 5), Str(rs, 6)};
               });
  for (const std::string& k : keys) {
    idempotency_.try_emplace(absl::StrCat(caller, "\x1f", k), std::nullopt);
  }
}

void MysqlBatch::PrefetchEarnHistories(const std::set<std::string>& members) {
  std::set<std::string> histories;
  for (const std::string& m : members) {
    if (!histories_loaded_for_.contains(m)) histories.insert(m);
  }
  QueryChunked(tx_, kPrefetchMemberPartnersHead, kPrefetchTail, nullptr, histories,
               [&](sql::ResultSet& rs) { earned_at_[absl::StrCat(Str(rs, 1), "\x1f", Str(rs, 2))] = true; });
  histories_loaded_for_.insert(histories.begin(), histories.end());
}

void MysqlBatch::PrefetchReceipts(const std::string& partner_id, const std::set<std::string>& references) {
  QueryChunked(tx_, kPrefetchReceiptsHead, kPrefetchTail, &partner_id, references,
               [&](sql::ResultSet& rs) {
                 receipts_[absl::StrCat(partner_id, "\x1f", Str(rs, 1))] = Str(rs, 2);
               });
  for (const std::string& r : references) receipts_.try_emplace(absl::StrCat(partner_id, "\x1f", r), "");
}

// ---- Rows one at a time -----------------------------------------------------

absl::StatusOr<AccountRow*> MysqlBatch::Account(const std::string& account) {
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

absl::StatusOr<std::vector<LotRow*>> MysqlBatch::OpenLots(const std::string& member_id) {
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

absl::StatusOr<LotRow*> MysqlBatch::Lot(const std::string& lot_id) {
  return LoadOne(lots_, kSelectLotForUpdate, lot_id, ReadLot,
                 [this](LotRow row) { return Remember(std::move(row)); });
}

absl::StatusOr<HoldRow*> MysqlBatch::Hold(const std::string& hold_id) {
  return LoadOne(holds_, kSelectHoldForUpdate, hold_id, ReadHold,
                 [this](HoldRow row) { return RememberHold(std::move(row)); });
}

absl::StatusOr<TransferRow*> MysqlBatch::Transfer(const std::string& transfer_id) {
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

absl::StatusOr<std::optional<IdempotencyRecord>> MysqlBatch::Idempotency(const std::string& caller,
                                                             const std::string& key) {
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

absl::StatusOr<std::string> MysqlBatch::EarnReceipt(const std::string& partner_id,
                                        const std::string& reference) {
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

absl::StatusOr<bool> MysqlBatch::HasEarnedAt(const std::string& member_id, const std::string& partner_id) {
  const std::string map_key = absl::StrCat(member_id, "\x1f", partner_id);
  if (auto it = earned_at_.find(map_key); it != earned_at_.end()) return it->second;
  // Every partner of a prefetched member is already in earned_at_.
  if (histories_loaded_for_.contains(member_id)) return false;
  // Locking, like every read of the batch: it sees the latest commit.
  const bool earned = EarnedAt(tx_, kSelectMemberPartnerForUpdate, member_id, partner_id);
  earned_at_.emplace(map_key, earned);
  return earned;
}

absl::StatusOr<std::vector<LotRow*>> MysqlBatch::ExpiredLots(absl::Time as_of, int limit) {
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

absl::StatusOr<std::vector<HoldRow*>> MysqlBatch::ExpiredHolds(absl::Time as_of, int limit) {
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

LotRow* MysqlBatch::AddLot(LotRow lot) {
  lot.is_new = lot.dirty = true;
  return Remember(std::move(lot));
}

HoldRow* MysqlBatch::AddHold(HoldRow hold) {
  hold.is_new = hold.dirty = true;
  return RememberHold(std::move(hold));
}

}  // namespace loyalty::ledger::store_internal
