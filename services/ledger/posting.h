#pragma once
// What the command sections of the engine share (earn.h, holds.h,
// reverse.h, adjust.h, expiry.h): the context a command runs in, moving
// points between accounts and lots, new ids, and the row -> proto
// converters and metadata validation that Ledger uses too. Pure domain
// code: no gRPC, no MySQL, no clock (time comes from the batch).
//
// Invariants kept here: a posting debits one account and credits another
// by the same points (per ledger, balances sum to zero); lots are consumed
// earliest expiry first and every allocation is recorded on the transfer.
//
// Thread safety: stateless functions; they run on the batch's thread and
// touch only the rows of that batch. NewId is safe from any thread.

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/map.h"
#include "loyalty/ledger/v1/ledger.pb.h"
#include "services/ledger/earn_rules.h"
#include "services/ledger/ledger_commands.h"
#include "services/ledger/ledger_state.h"

namespace loyalty::ledger {

// What every command applies against: the batch's rows, the rules snapshot
// the batch runs with, the campaign budget it reserves, and who asked.
struct CommandContext {
  BatchState& state;
  const RulesSnapshot& rules;
  BudgetReservations& budgets;
  const Caller& caller;
};

// INVALID_ARGUMENT unless 0 < points <= kMaxPointsPerTransfer.
absl::Status ValidatePoints(absl::string_view field, int64_t points);

// FAILED_PRECONDITION "not enough points: available A, requested R".
absl::Status NotEnoughPoints(int64_t available, int64_t requested);

// Moves posted points: debit `from`, credit `to`.
void Post(AccountRow& from, AccountRow& to, int64_t points);

// Takes `points` from the member's lots, earliest expiry first, and records
// the allocations on `transfer`.
// REQUIRES: the lots hold at least `points` (the member's posted balance);
// INTERNAL otherwise (a broken invariant: the whole batch fails).
absl::Status ConsumeLots(BatchState& state, const std::string& member_id, int64_t points,
                         v1::Transfer& transfer);

// Sum of the member's open lots (for checks before consuming).
absl::StatusOr<int64_t> LotsTotal(BatchState& state, const std::string& member_id);

// Issuance accounts are debited by earns and partner-funded credits, and
// credited by returns: their net debit is what the partner has issued.
int64_t NetIssued(const AccountRow& issuance);

// A new random id with `prefix` ("tr", "hold", "lot").
std::string NewId(absl::string_view prefix);

// ---- Shared with Ledger and the adapter ------------------------------------

void BalanceToProto(const AccountRow& row, int64_t as_of_sequence, v1::AccountBalance* out);
// Name, kind, owner and balances (not created_at).
void AccountToProto(const AccountRow& row, int64_t as_of_sequence, v1::Account* out);
void LotToProto(const LotRow& lot, v1::Lot* out);
void HoldToProto(const HoldRow& hold, v1::Hold* out);

// Validation shared with the adapter: INVALID_ARGUMENT naming `field`.
// (Ids: loyalty::ValidateId, common/validation/ids.h.)
// Transfer.metadata: at most 16 entries, keys [a-z0-9_.-]{1,64}, values
// 0..256 characters ("metadata: key 'BadKey' must match ...").
absl::Status ValidateMetadata(const google::protobuf::Map<std::string, std::string>& metadata);

}  // namespace loyalty::ledger
