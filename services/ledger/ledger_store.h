#pragma once
// What the ledger needs from storage. All SQL lives in mysql_ledger_store.cc.
//
// Writes happen only through RunBatch: one database transaction that locks
// the journal head first (so writers, on any replica, are serialised and
// sequences are gap-free), gives the engine a BatchState, and commits every
// changed row at once (group commit). Reads do not lock.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/ledger/journal.h"
#include "services/ledger/ledger_state.h"

namespace loyalty::ledger {

struct TransferQuery {
  std::string member_id;   // one of member_id, account, partner_id is required
  std::string account;
  std::string partner_id;
  std::vector<int> codes;  // empty: all
  std::optional<absl::Time> start_time;  // inclusive
  std::optional<absl::Time> end_time;    // exclusive
  std::string reference;
  bool oldest_first = false;
  int64_t after_sequence = 0;  // keyset cursor (exclusive); 0 = from the start
  int limit = 50;
};

struct LotQuery {
  std::string member_id;
  bool include_depleted = false;
  std::string issuer_partner_id;
  // Keyset cursor: lots after (expires_at, lot_id).
  std::optional<std::pair<absl::Time, std::string>> after;
  int limit = 100;
};

// Accounts by name (byte order): either the named ones, or those in
// [first, last); always after `after` (exclusive, the keyset cursor).
struct AccountQuery {
  std::vector<std::string> names;  // at most kMaxNamedAccounts; empty: the range
  std::string first;
  std::string last;
  bool skip_members = false;  // leave out "member:" accounts
  std::string after;
  int limit = 100;
};
inline constexpr size_t kMaxNamedAccounts = 3;

struct ListedAccount {
  AccountRow row;
  absl::Time created_at;
};

struct Liability {
  int64_t member_balance_points = 0;
  int64_t lot_remaining_points = 0;
  std::map<std::string, std::pair<int64_t, int64_t>> issuers;  // issuer -> (points, open lots)
  int64_t as_of_sequence = 0;
};

class LedgerStore {
 public:
  virtual ~LedgerStore() = default;

  // Runs `body` over one transaction and commits it when it returns OK.
  // ABORTED (deadlock, certification failure) re-runs `body` on fresh state,
  // a bounded number of times.
  virtual absl::Status RunBatch(const std::function<absl::Status(BatchState&)>& body) = 0;

  virtual absl::StatusOr<std::optional<AccountRow>> GetAccount(const std::string& account) = 0;
  virtual absl::StatusOr<std::vector<ListedAccount>> ListAccounts(const AccountQuery& query) = 0;
  virtual absl::StatusOr<std::optional<TransferRow>> GetTransfer(const std::string& transfer_id) = 0;
  virtual absl::StatusOr<std::optional<HoldRow>> GetHold(const std::string& hold_id) = 0;
  virtual absl::StatusOr<std::vector<LotRow>> ListLots(const LotQuery& query) = 0;
  virtual absl::StatusOr<std::vector<v1::Transfer>> ListTransfers(const TransferQuery& query) = 0;
  // Transfers with after < sequence <= up_to (0: no bound), in order.
  virtual absl::StatusOr<std::vector<v1::Transfer>> ReadJournal(int64_t after_sequence,
                                                                int64_t up_to_sequence,
                                                                int limit) = 0;
  virtual absl::StatusOr<int64_t> HeadSequence() = 0;
  // Raw rows for verification, and the hash of the row before `from`.
  virtual absl::StatusOr<std::vector<JournalRow>> JournalRows(int64_t from_sequence,
                                                              int64_t to_sequence) = 0;
  virtual absl::StatusOr<std::string> HashAt(int64_t sequence) = 0;  // kGenesisHash for 0
  // EARN minus REVERSE_EARN points per member created in [start, end).
  virtual absl::StatusOr<std::map<std::string, int64_t>> QualifyingPoints(
      const std::vector<std::string>& member_ids, absl::Time start, absl::Time end) = 0;
  virtual absl::StatusOr<Liability> PointsLiability() = 0;
  // Whether the member has ever earned at the partner (a committed EARN).
  virtual absl::StatusOr<bool> HasEarnedAt(const std::string& member_id, const std::string& partner_id) = 0;
  // Points partner_id had issued, net of returns, when the journal stood at
  // `sequence` (prepaid limits: rules_feed.h).
  virtual absl::StatusOr<int64_t> NetIssuanceAt(const std::string& partner_id, int64_t sequence) = 0;
};

}  // namespace loyalty::ledger
