#pragma once
// Internal to the MySQL ledger store: the BatchState of one ledger batch
// over one open transaction (ledger_state.h). Not part of the store's
// interface; only mysql_ledger_store.cc makes one.
//
// Reads load rows on demand, or in bulk (Prefetch), with locking reads
// (SELECT ... FOR UPDATE), and keep the batch's copy of each row: a row is
// read once per batch and later commands see the changes of earlier ones.
// Flush writes every change at the end: one statement per table, rows in a
// deterministic order (mysql_batch_flush.cc).
//
// Thread safety: none; a batch runs on one thread, inside its transaction.

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "common/db/transaction.h"
#include "services/ledger/ledger_state.h"

namespace loyalty::ledger::store_internal {

class MysqlBatch final : public BatchState {
 public:
  // `head_sequence` and `head_hash` are the journal head, read (and locked)
  // by the transaction before the batch starts.
  MysqlBatch(db::Transaction& tx, absl::Time now, int64_t head_sequence, std::string head_hash)
      : tx_(tx), now_(now), head_sequence_(head_sequence), head_hash_(std::move(head_hash)) {}

  // BatchState:
  absl::Time now() const override { return now_; }
  absl::Status Prefetch(const PrefetchKeys& keys) override;
  absl::StatusOr<AccountRow*> Account(const std::string& account) override;
  absl::StatusOr<std::vector<LotRow*>> OpenLots(const std::string& member_id) override;
  absl::StatusOr<LotRow*> Lot(const std::string& lot_id) override;
  absl::StatusOr<HoldRow*> Hold(const std::string& hold_id) override;
  absl::StatusOr<TransferRow*> Transfer(const std::string& transfer_id) override;
  absl::StatusOr<std::optional<IdempotencyRecord>> Idempotency(const std::string& caller,
                                                               const std::string& key) override;
  absl::StatusOr<std::string> EarnReceipt(const std::string& partner_id, const std::string& reference) override;
  absl::StatusOr<bool> HasEarnedAt(const std::string& member_id, const std::string& partner_id) override;
  absl::StatusOr<std::vector<LotRow*>> ExpiredLots(absl::Time as_of, int limit) override;
  absl::StatusOr<std::vector<HoldRow*>> ExpiredHolds(absl::Time as_of, int limit) override;
  LotRow* AddLot(LotRow lot) override;
  HoldRow* AddHold(HoldRow hold) override;
  const v1::Transfer& Append(v1::Transfer transfer) override;
  void PutIdempotency(const std::string& caller, const std::string& key, IdempotencyRecord record) override;
  void PutEarnReceipt(const std::string& partner_id, const std::string& reference,
                      const std::string& transfer_id) override;

  // Writes every change of the batch: one statement per table, rows in a
  // deterministic order. Called once, before commit.
  void Flush();

 private:
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
  struct NewMemberPartner {
    std::string member_id;
    std::string partner_id;
    int64_t first_sequence = 0;
  };

  // Prefetch's steps, in its order. Holds first: they name the members
  // whose accounts and lots a capture or void will need (added to
  // `accounts` and `lot_members`).
  void PrefetchHolds(const std::set<std::string>& hold_ids, std::set<std::string>& accounts,
                     std::set<std::string>& lot_members);
  void PrefetchOpenLots(const std::set<std::string>& members);
  void PrefetchAccounts(std::set<std::string> accounts);
  void PrefetchIdempotency(const std::string& caller, const std::set<std::string>& keys);
  void PrefetchEarnHistories(const std::set<std::string>& members);
  void PrefetchReceipts(const std::string& partner_id, const std::set<std::string>& references);

  // Flush's steps, one table each (mysql_batch_flush.cc).
  void WriteTransfers(const std::string& now_text);
  void WriteAccounts(const std::string& now_text);
  void WriteLots();
  void WriteHolds();
  void WriteReversals();
  void WriteIdempotency(const std::string& now_text);
  void WriteMemberPartners();
  void WriteReceipts();
  void WriteHead();

  // The batch's copy of a row, or the one the locking read `sql` finds for
  // `id` (then kept through `remember`); nullptr when there is none.
  template <typename Row, typename Read, typename Keep>
  absl::StatusOr<Row*> LoadOne(absl::flat_hash_map<std::string, std::unique_ptr<Row>>& cache,
                               absl::string_view sql, const std::string& id, Read read, Keep remember);

  LotRow* Remember(LotRow lot);
  HoldRow* RememberHold(HoldRow hold);

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
  std::vector<NewMemberPartner> new_member_partners_;
  std::vector<Appended> appended_;
  std::vector<NewIdempotency> new_idempotency_;
  std::vector<NewReceipt> new_receipts_;
};

}  // namespace loyalty::ledger::store_internal
