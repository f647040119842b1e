#include "services/ledger/mysql_ledger_store.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/db/sql_values.h"
#include "common/db/transaction.h"
#include "common/log/log.h"
#include "common/status/status_macros.h"
#include "services/ledger/account_names.h"
#include "services/ledger/mysql_batch_state.h"
#include "services/ledger/mysql_ledger_rows.h"

// The store: RunBatch (a MysqlBatch over one transaction, mysql_batch_state.h)
// and the reads, which do not lock.

namespace loyalty::ledger {
namespace {

using db::ParseSqlTime;
using db::SqlTime;
using db::Str;
using store_internal::EarnedAt;
using store_internal::kSelectMemberPartner;
using store_internal::MysqlBatch;
using store_internal::ReadAccount;
using store_internal::ReadHold;
using store_internal::ReadLot;
using store_internal::ReadTransferBody;

// ---- SQL ------------------------------------------------------------------

constexpr absl::string_view kLockHead =
    "SELECT last_sequence, last_hash FROM journal_head WHERE id = 1 FOR UPDATE";
constexpr absl::string_view kSelectHead = "SELECT last_sequence FROM journal_head WHERE id = 1";

// A partner's net issuance now, and what of it came after a sequence (a
// short range scan of transfers_partner: the sequence is recent).
constexpr absl::string_view kSelectNetIssuanceNow =
    "SELECT debits_posted - credits_posted FROM accounts WHERE account = ?";
constexpr absl::string_view kSelectNetIssuanceAfter =
    "SELECT COALESCE(SUM(CASE WHEN debit_account = ? THEN points WHEN credit_account = ? THEN -points "
    "ELSE 0 END), 0) FROM transfers WHERE partner_id = ? AND sequence > ?";
constexpr absl::string_view kSelectAccount =
    "SELECT account, debits_posted, credits_posted, debits_pending, credits_pending "
    "FROM accounts WHERE account = ?";
constexpr absl::string_view kSelectHold =
    "SELECT " LOYALTY_HOLD_COLUMNS " FROM holds WHERE hold_id = ?";
constexpr absl::string_view kSelectTransferBody =
    "SELECT t.body, t.prev_hash, t.hash, COALESCE(r.reversed_points, 0) FROM transfers t "
    "LEFT JOIN transfer_reversals r ON r.transfer_id = t.transfer_id WHERE t.transfer_id = ?";
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
