#pragma once
// Returns: Reverse takes back all or part of an EARN or a REDEEM. Pure
// domain code: no gRPC, no MySQL.
//
// Invariants: a transfer is never reversed beyond its points (reversed
// points are kept per transfer, TransferRow::reversed_points). Reversing
// an earn claws back what is left of its lot, never more than the member
// can spend now (held points stay held); the rest is recorded as the
// shortfall, so no balance goes negative (ADR 0007). Reversing a
// redemption restores the lots it consumed, latest consumed first. A
// partner reverses only its own transfers.
//
// Thread safety: stateless; runs on the batch's thread.

#include "absl/status/statusor.h"
#include "services/ledger/ledger_commands.h"
#include "services/ledger/posting.h"

namespace loyalty::ledger {

absl::StatusOr<v1::ReverseResponse> ApplyReverse(const CommandContext& context, const v1::ReverseRequest& req);

}  // namespace loyalty::ledger
