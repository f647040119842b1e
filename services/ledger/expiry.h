#pragma once
// Lot expiry: a lot past expires_at moves what is left of it to
// breakage:ISSUER by an ordinary EXPIRE transfer. Pure domain code: no
// gRPC, no MySQL. (Holds past their limit are released by
// ApplyRunHoldExpiry, holds.h.)
//
// Invariants: points on hold stay until the hold closes (only what the
// member has available expires), so a lot held in full is skipped and
// does not keep the job going; expiry is safe to repeat: an expired lot is
// empty.
//
// Thread safety: stateless; runs on the batch's thread.

#include "absl/status/statusor.h"
#include "services/ledger/ledger_commands.h"
#include "services/ledger/posting.h"

namespace loyalty::ledger {

// At most max_lots (0: 1000) lots expired as of req.as_of (default: the
// batch's clock; never in the future).
absl::StatusOr<v1::RunExpiryResponse> ApplyRunExpiry(const CommandContext& context,
                                                     const v1::RunExpiryRequest& req);

}  // namespace loyalty::ledger
