#pragma once
// The rows the ledger engine reads and changes, and the interface through
// which it sees them during one batch (one database transaction).
//
// The engine never does I/O itself. The MySQL store implements BatchState
// over an open transaction, loading rows on demand with locking reads
// (SELECT ... FOR UPDATE) and writing every changed row at commit.
// REQUIRES: engine code validates a command completely before it changes any
// row, so a command refused by a business rule leaves the batch untouched.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "loyalty/ledger/v1/ledger.pb.h"

namespace loyalty::ledger {

// Limits (TigerBeetle style: everything bounded, named).
inline constexpr int64_t kMaxPointsPerTransfer = 1'000'000'000'000;  // 10^12
// Text lengths in characters (code points), as ledger.proto counts them.
inline constexpr size_t kMaxReferenceLength = 64;
inline constexpr size_t kMaxReasonLength = 500;
inline constexpr int kMaxMetadataEntries = 16;
inline constexpr size_t kMaxMetadataKeyLength = 64;  // of [a-z0-9_.-]
inline constexpr size_t kMaxMetadataValueLength = 256;
inline constexpr int kMaxExpiryBatch = 1000;
inline constexpr int kMaxPurchaseLines = 200;

// Accounts are credit-normal: balance = credits_posted - debits_posted. Over
// all accounts the balances sum to zero, as do the pending amounts.
struct AccountRow {
  std::string account;
  int64_t debits_posted = 0;
  int64_t credits_posted = 0;
  int64_t debits_pending = 0;
  int64_t credits_pending = 0;
  bool exists = false;  // stored already (else inserted at commit)
  bool dirty = false;

  int64_t posted() const { return credits_posted - debits_posted; }
  // What a member may spend: posted minus pending holds.
  int64_t available() const { return credits_posted - debits_posted - debits_pending; }
};

struct LotRow {
  std::string lot_id;
  std::string member_id;
  std::string issuer_partner_id;  // "" for operator-funded points
  std::string source_transfer_id;
  int64_t original_points = 0;
  int64_t remaining_points = 0;
  absl::Time earned_at;
  absl::Time expires_at;
  bool is_new = false;
  bool dirty = false;
};

struct HoldRow {
  std::string hold_id;
  std::string member_id;
  std::string partner_id;
  int64_t points = 0;
  int64_t captured_points = 0;
  v1::HoldState state = v1::HOLD_STATE_PENDING;
  std::string reference;
  std::map<std::string, std::string> metadata;
  absl::Time created_at;
  absl::Time expires_at;
  std::optional<absl::Time> closed_at;
  std::string hold_transfer_id;
  std::string closing_transfer_id;
  bool is_new = false;
  bool dirty = false;
};

// A stored transfer and how much of it has been reversed so far.
struct TransferRow {
  v1::Transfer transfer;
  int64_t reversed_points = 0;
  bool reversed_dirty = false;
};

struct IdempotencyRecord {
  std::string method;
  std::string request;  // serialized request, to name a differing field
  int status_code = 0;  // absl::StatusCode of the original answer
  std::string status_message;
  std::string response;  // serialized response when status_code is OK
};

// Rows a batch will need, loaded together before its commands run, so the
// writer makes a few set-wise queries per batch instead of several per
// request.
struct PrefetchKeys {
  std::set<std::string> accounts;
  std::map<std::string, std::set<std::string>> idempotency;  // caller -> keys
  std::map<std::string, std::set<std::string>> receipts;     // partner -> references
  // Holds to load; their members' accounts and open lots come with them.
  std::set<std::string> holds;
  // Members whose earn partners (HasEarnedAt) an earn of the batch asks for.
  std::set<std::string> earn_histories;
};

class BatchState {
 public:
  virtual ~BatchState() = default;

  // Loads (and locks) the rows named by `keys` in bulk. Optional: every
  // getter below loads on demand anyway.
  virtual absl::Status Prefetch(const PrefetchKeys& keys) = 0;

  // The batch's clock: every transfer of the batch gets this created_at.
  virtual absl::Time now() const = 0;

  // The account, created in memory with zero balances if it does not exist.
  virtual absl::StatusOr<AccountRow*> Account(const std::string& account) = 0;
  // The member's lots with remaining points, in consumption order
  // (expires_at, lot_id), including lots created earlier in this batch.
  virtual absl::StatusOr<std::vector<LotRow*>> OpenLots(const std::string& member_id) = 0;
  // nullptr when absent.
  virtual absl::StatusOr<LotRow*> Lot(const std::string& lot_id) = 0;
  virtual absl::StatusOr<HoldRow*> Hold(const std::string& hold_id) = 0;
  virtual absl::StatusOr<TransferRow*> Transfer(const std::string& transfer_id) = 0;
  virtual absl::StatusOr<std::optional<IdempotencyRecord>> Idempotency(
      const std::string& caller, const std::string& key) = 0;
  // The transfer that earned `reference` at `partner_id`, or "".
  virtual absl::StatusOr<std::string> EarnReceipt(const std::string& partner_id,
                                                  const std::string& reference) = 0;
  // Whether the member has an EARN at the partner (member_partners), this
  // batch's appended transfers included.
  virtual absl::StatusOr<bool> HasEarnedAt(const std::string& member_id, const std::string& partner_id) = 0;
  // Lots with remaining points and expires_at <= as_of, oldest first.
  virtual absl::StatusOr<std::vector<LotRow*>> ExpiredLots(absl::Time as_of, int limit) = 0;
  // PENDING holds with expires_at <= as_of.
  virtual absl::StatusOr<std::vector<HoldRow*>> ExpiredHolds(absl::Time as_of, int limit) = 0;

  virtual LotRow* AddLot(LotRow lot) = 0;
  virtual HoldRow* AddHold(HoldRow hold) = 0;
  // Gives the transfer the next journal sequence, created_at = now(), and its
  // hash; returns the stored form.
  virtual const v1::Transfer& Append(v1::Transfer transfer) = 0;
  virtual void PutIdempotency(const std::string& caller, const std::string& key,
                              IdempotencyRecord record) = 0;
  virtual void PutEarnReceipt(const std::string& partner_id, const std::string& reference,
                              const std::string& transfer_id) = 0;
};

}  // namespace loyalty::ledger
