#pragma once
// The ledger's mutating commands, as types. Pure domain code: no gRPC, no
// MySQL (the v1 messages are plain protobuf).
//
// Each command is a struct holding its request; CommandBody is the variant
// of them all. The engine dispatches with std::visit (ledger_engine.cc), so
// a command without a handler does not compile. The RPC name a command is
// recorded under (idempotency record) is each struct's kMethod, and is read
// only through MethodOf.
//
// A Command is one request on its way through the batch writer: made by
// Ledger on the caller's thread, applied on the writer's thread, read back
// by the caller once the writer has answered (batch_writer.h).

#include <algorithm>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/auth/principal.h"
#include "loyalty/ledger/v1/ledger.pb.h"
#include "services/ledger/earn_rules.h"

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

// ---- The commands ----------------------------------------------------------
// Each names its request and response types and its RPC (kMethod).

struct EarnCommand {
  using Request = v1::EarnRequest;
  using Response = v1::EarnResponse;
  static constexpr absl::string_view kMethod = "Earn";
  Request request;
  // Computed from the rules snapshot before the batch (Ledger::Earn), so the
  // writer only posts. Unset is a bug: the batch fails (INTERNAL).
  std::optional<absl::StatusOr<EarnComputation>> computed;
};

// The RPC name of a command, as a template argument.
template <size_t N>
struct RpcName {
  constexpr RpcName(const char (&name)[N]) { std::copy_n(name, N, value); }  // NOLINT: implicit on purpose
  char value[N];
};

// A command that is its request and nothing more.
template <typename Req, typename Resp, RpcName kName>
struct RequestCommand {
  using Request = Req;
  using Response = Resp;
  static constexpr absl::string_view kMethod{kName.value, sizeof(kName.value) - 1};
  Request request;
};

using AuthorizeCommand = RequestCommand<v1::AuthorizeRequest, v1::AuthorizeResponse, "Authorize">;
using CaptureCommand = RequestCommand<v1::CaptureRequest, v1::CaptureResponse, "Capture">;
using VoidCommand = RequestCommand<v1::VoidRequest, v1::VoidResponse, "Void">;
using ReverseCommand = RequestCommand<v1::ReverseRequest, v1::ReverseResponse, "Reverse">;
using AdjustCommand = RequestCommand<v1::AdjustRequest, v1::AdjustResponse, "Adjust">;
using GrantBonusCommand = RequestCommand<v1::GrantBonusRequest, v1::GrantBonusResponse, "GrantBonus">;
using RunExpiryCommand = RequestCommand<v1::RunExpiryRequest, v1::RunExpiryResponse, "RunExpiry">;
using RunHoldExpiryCommand = RequestCommand<v1::RunHoldExpiryRequest, v1::RunHoldExpiryResponse, "RunHoldExpiry">;

using CommandBody = std::variant<EarnCommand, AuthorizeCommand, CaptureCommand, VoidCommand, ReverseCommand,
                                 AdjustCommand, GrantBonusCommand, RunExpiryCommand, RunHoldExpiryCommand>;

namespace internal {
template <typename Body>
struct ResponsesOf;
template <typename... Commands>
struct ResponsesOf<std::variant<Commands...>> {
  using type = std::variant<std::monostate, typename Commands::Response...>;
};
}  // namespace internal

// The answer of any command: its own Response type, or monostate before it
// has one.
using CommandResponse = internal::ResponsesOf<CommandBody>::type;

// The RPC name `body` is recorded under ("Earn", "Authorize", ...).
absl::string_view MethodOf(const CommandBody& body);

// For std::visit with one lambda per alternative.
template <typename... Lambdas>
struct Overloaded : Lambdas... {
  using Lambdas::operator()...;
};
template <typename... Lambdas>
Overloaded(Lambdas...) -> Overloaded<Lambdas...>;

// One mutating request on its way through the batch writer.
struct Command {
  Caller caller;
  std::string idempotency_key;
  CommandBody body;
  // False only for the ledger's own housekeeping (the hold sweeper, the
  // expiry job), which has no client to retry and would otherwise leave a
  // record per run.
  bool record_idempotency = true;

  // The outcome, set by ApplyCommand.
  absl::Status status;
  CommandResponse response;
};

}  // namespace loyalty::ledger
