#pragma once
// Earn: points for a purchase at a partner, computed from the rules before
// the batch (earn_rules.h) and posted here. Debits issuance:PARTNER,
// credits member:M, and opens a lot {member, issuer, points, expiry}.
// Pure domain code: no gRPC, no MySQL.
//
// Invariants: a receipt earns once per partner, whatever the key
// (ALREADY_EXISTS naming the earlier transfer); a prepaid partner never
// issues more than it bought; a budgeted campaign bonus is given only as
// far as its lease reaches (reserved in CommandContext::budgets, confirmed
// by the batch writer once committed); a first-purchase bonus only for the
// member's first earn at the partner.
//
// Thread safety: stateless; runs on the batch's thread.

#include "absl/status/statusor.h"
#include "services/ledger/ledger_commands.h"
#include "services/ledger/ledger_state.h"
#include "services/ledger/posting.h"

namespace loyalty::ledger {

absl::StatusOr<v1::EarnResponse> ApplyEarn(const CommandContext& context, const EarnCommand& command);

// The accounts, receipt and earn history the earn will read.
void CollectEarnPrefetchKeys(const EarnCommand& command, PrefetchKeys* keys);

}  // namespace loyalty::ledger
