#pragma once
// Two-phase holds: Authorize places a hold (pending points, member:M ->
// redemption:PARTNER), Capture posts all or part of it (consuming lots
// earliest expiry first), Void releases it, and RunHoldExpiry releases
// those past their limit (also the service's own sweeper). Pure domain
// code: no gRPC, no MySQL.
//
// Invariants: a hold never exceeds what the member has available; a hold
// closes exactly once (captured, voided or expired), and one past
// expires_at is refused even before the sweeper has released it; a partner
// captures and voids only its own holds.
//
// Thread safety: stateless; runs on the batch's thread.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "services/ledger/ledger_commands.h"
#include "services/ledger/ledger_state.h"
#include "services/ledger/posting.h"

namespace loyalty::ledger {

inline constexpr int64_t kDefaultHoldTtlSeconds = 900;
inline constexpr int64_t kMaxHoldTtlSeconds = 3600;
inline constexpr int64_t kMaxServiceHoldTtlSeconds = 90LL * 24 * 3600;

absl::StatusOr<v1::AuthorizeResponse> ApplyAuthorize(const CommandContext& context,
                                                     const v1::AuthorizeRequest& req);
absl::StatusOr<v1::CaptureResponse> ApplyCapture(const CommandContext& context, const v1::CaptureRequest& req);
absl::StatusOr<v1::VoidResponse> ApplyVoid(const CommandContext& context, const v1::VoidRequest& req);
// A batch of hold expiries, as of the batch's clock.
absl::StatusOr<v1::RunHoldExpiryResponse> ApplyRunHoldExpiry(const CommandContext& context,
                                                              const v1::RunHoldExpiryRequest& req);

// The member's and partner's accounts an authorize will read.
void CollectAuthorizePrefetchKeys(const AuthorizeCommand& command, PrefetchKeys* keys);
// The hold a capture or void will read (its accounts and lots come with it).
void CollectHoldPrefetchKeys(const std::string& hold_id, PrefetchKeys* keys);

}  // namespace loyalty::ledger
