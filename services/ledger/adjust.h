#pragma once
// Adjustments and bonuses: the operator (or a funding partner) credits a
// member in a new lot, or, for an adjustment, debits the member. Pure
// domain code: no gRPC, no MySQL.
//
// Invariants: a credit comes from operator:adjustments or operator:bonus,
// or from the funding partner's issuance account, and a partner-funded
// credit counts against a prepaid partner's blocks like an earn; a debit
// never takes more than the member has available, and consumes lots
// earliest expiry first; a bonus goes only to an active member.
//
// Thread safety: stateless; runs on the batch's thread.

#include "absl/status/statusor.h"
#include "services/ledger/ledger_commands.h"
#include "services/ledger/posting.h"

namespace loyalty::ledger {

absl::StatusOr<v1::AdjustResponse> ApplyAdjust(const CommandContext& context, const v1::AdjustRequest& req);
absl::StatusOr<v1::GrantBonusResponse> ApplyGrantBonus(const CommandContext& context,
                                                       const v1::GrantBonusRequest& req);

}  // namespace loyalty::ledger
