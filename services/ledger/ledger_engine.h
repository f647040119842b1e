#pragma once
// The ledger's rules: applies mutating commands to the rows of one batch.
// Pure domain code: no gRPC, no MySQL, no clock (time comes from the batch).
//
// This file is the entry: it replays or records the idempotency record and
// dispatches each command (ledger_commands.h) to the section that owns it,
// by its type: earn.h, holds.h, reverse.h, adjust.h, expiry.h.
//
// Each command is idempotent by (caller, idempotency_key): a key seen before
// replays the stored answer (a business refusal included); a key reused with
// a different request is ALREADY_EXISTS naming the first differing field.
//
// Thread safety: an engine is stateless; Apply runs on the batch's thread.

#include "absl/status/status.h"
#include "services/ledger/earn_rules.h"
#include "services/ledger/ledger_commands.h"
#include "services/ledger/ledger_state.h"

namespace loyalty::ledger {

// Applies `command` against `state`, setting command.status/response.
// Campaign budget it gives is reserved in `budgets`, for the batch to
// confirm once committed (campaign_budgets.h).
// Returns non-OK only when the whole batch must fail (a row could not be
// loaded: UNAVAILABLE, ABORTED, INTERNAL); business refusals are outcomes.
absl::Status ApplyCommand(BatchState& state, const RulesSnapshot& rules, BudgetReservations& budgets,
                          Command& command);

// Adds the rows `command` will read to `keys` (see BatchState::Prefetch).
void CollectPrefetchKeys(const Command& command, PrefetchKeys* keys);

}  // namespace loyalty::ledger
