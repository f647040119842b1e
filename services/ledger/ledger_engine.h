#pragma once
// The ledger's rules: applies mutating commands to the rows of one batch.
// Pure domain code: no gRPC, no MySQL, no clock (time comes from the batch).
//
// Each command is idempotent by (caller, idempotency_key): a key seen before
// replays the stored answer (a business refusal included); a key reused with
// a different request is ALREADY_EXISTS naming the first differing field.
//
// Thread safety: an engine is stateless; Apply runs on the batch's thread.

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/auth/principal.h"
#include "google/protobuf/message.h"
#include "common/validation/ids.h"
#include "services/ledger/account_names.h"
#include "services/ledger/earn_rules.h"
#include "services/ledger/ledger_state.h"

namespace loyalty::ledger {

// Who is calling, as the rules need it. The gRPC adapter makes it from the
// authenticated auth::Principal (Caller::Of); the role was already checked
// against the RPC's allowed_roles there.
struct Caller {
  // The idempotency scope: "key:<key_id>" for API callers
  // (auth::Principal::idempotency_scope), "system:<job>" for the ledger's own
  // jobs.
  std::string principal = "anonymous";
  bool is_service = false;  // services may place long holds (vouchers)
  // Set for a partner key: the caller may act only as this partner and read
  // only this partner's transfers, holds and accounts (PERMISSION_DENIED).
  // Empty for backoffice, finance and service callers.
  std::string partner_id = {};
  // When the client stops waiting. A command still queued after it is not
  // applied (DEADLINE_EXCEEDED): nobody would get its answer.
  absl::Time deadline = absl::InfiniteFuture();

  static Caller Of(const auth::Principal& principal);
};

// PERMISSION_DENIED when `caller` is a partner and `partner_id` (the value of
// request field `field`) is not its own.
absl::Status CheckOwnPartner(const Caller& caller, absl::string_view field,
                             const std::string& partner_id);
// PERMISSION_DENIED when `caller` is a partner and the `what` ("hold 'h1'")
// belongs to another partner (`owner`, possibly empty for operator records).
absl::Status CheckOwnedByCaller(const Caller& caller, absl::string_view field,
                                absl::string_view what, const std::string& owner);

inline constexpr int64_t kDefaultHoldTtlSeconds = 900;
inline constexpr int64_t kMaxHoldTtlSeconds = 3600;
inline constexpr int64_t kMaxServiceHoldTtlSeconds = 90LL * 24 * 3600;

// One mutating request on its way through the batch writer.
struct Command {
  Caller caller;
  std::string method;  // "Earn", "Authorize", ... (the RPC name)
  std::string idempotency_key;
  std::unique_ptr<google::protobuf::Message> request;
  // False only for the ledger's own housekeeping (the hold sweeper), which
  // has no client to retry and would otherwise leave a record per run.
  bool record_idempotency = true;
  // Earn only: computed from the rules snapshot before the batch.
  std::optional<absl::StatusOr<EarnComputation>> earn;

  // The outcome, set by Apply.
  absl::Status status;
  std::unique_ptr<google::protobuf::Message> response;
};

// Applies `command` against `state`, setting command.status/response.
// Campaign budget it gives is reserved in `budgets`, for the batch to
// confirm once committed (campaign_budgets.h).
// Returns non-OK only when the whole batch must fail (a row could not be
// loaded: UNAVAILABLE, ABORTED, INTERNAL); business refusals are outcomes.
absl::Status ApplyCommand(BatchState& state, const RulesSnapshot& rules, BudgetReservations& budgets,
                          Command& command);

// Adds the rows `command` will read to `keys` (see BatchState::Prefetch).
void CollectPrefetchKeys(const Command& command, PrefetchKeys* keys);

// A fresh response message of the right type for `method`, or nullptr.
std::unique_ptr<google::protobuf::Message> NewResponseFor(const std::string& method);

// A new random id with `prefix` ("tr", "hold", "lot").
std::string NewId(absl::string_view prefix);

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
