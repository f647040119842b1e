#include "services/ledger/ledger_engine.h"

#include <string>
#include <utility>
#include <variant>

#include "common/idempotency/idempotency.h"
#include "common/status/status_macros.h"
#include "services/ledger/adjust.h"
#include "services/ledger/earn.h"
#include "services/ledger/expiry.h"
#include "services/ledger/holds.h"
#include "services/ledger/posting.h"
#include "services/ledger/reverse.h"

namespace loyalty::ledger {
namespace {

using Outcome = absl::StatusOr<CommandResponse>;

template <typename Response>
Outcome Answer(absl::StatusOr<Response> result) {
  if (!result.ok()) return result.status();
  return CommandResponse(*std::move(result));
}

// Each command to the section that owns it. A command type without a line
// here does not compile.
Outcome Dispatch(const CommandContext& context, const CommandBody& body) {
  return std::visit(
      Overloaded{
          [&](const EarnCommand& c) { return Answer(ApplyEarn(context, c)); },
          [&](const AuthorizeCommand& c) { return Answer(ApplyAuthorize(context, c.request)); },
          [&](const CaptureCommand& c) { return Answer(ApplyCapture(context, c.request)); },
          [&](const VoidCommand& c) { return Answer(ApplyVoid(context, c.request)); },
          [&](const ReverseCommand& c) { return Answer(ApplyReverse(context, c.request)); },
          [&](const AdjustCommand& c) { return Answer(ApplyAdjust(context, c.request)); },
          [&](const GrantBonusCommand& c) { return Answer(ApplyGrantBonus(context, c.request)); },
          [&](const RunExpiryCommand& c) { return Answer(ApplyRunExpiry(context, c.request)); },
          [&](const RunHoldExpiryCommand& c) { return Answer(ApplyRunHoldExpiry(context, c.request)); },
      },
      body);
}

// ---- The idempotency record, read and written as the command's own types ----

// The first field in which `body`'s request differs from the stored one, or
// "" when they are the same. INTERNAL when the stored request is unreadable.
absl::StatusOr<std::string> FirstDifferingField(const CommandBody& body, const std::string& stored_request) {
  return std::visit(
      [&](const auto& command) -> absl::StatusOr<std::string> {
        typename std::decay_t<decltype(command)>::Request original;
        if (!original.ParseFromString(stored_request)) return absl::InternalError("stored request unreadable");
        return idempotency::FirstDifferingField(original, command.request);
      },
      body);
}

// The stored answer, parsed as `body`'s response type.
Outcome StoredResponse(const CommandBody& body, const std::string& stored_response) {
  return std::visit(
      [&](const auto& command) -> Outcome {
        typename std::decay_t<decltype(command)>::Response response;
        if (!response.ParseFromString(stored_response)) return absl::InternalError("stored response unreadable");
        return CommandResponse(std::move(response));
      },
      body);
}

std::string SerializedRequest(const CommandBody& body) {
  return std::visit([](const auto& command) { return command.request.SerializeAsString(); }, body);
}

std::string SerializedResponse(const CommandResponse& response) {
  return std::visit(Overloaded{[](const std::monostate&) { return std::string(); },
                               [](const google::protobuf::Message& m) { return m.SerializeAsString(); }},
                    response);
}

// Sets the command's outcome from `outcome`; non-OK when the batch must fail.
absl::Status TakeOutcome(Outcome outcome, Command& command) {
  if (!outcome.ok() && !idempotency::IsFinalOutcome(outcome.status())) {
    return outcome.status();  // the batch fails; nothing was changed for a final answer
  }
  command.status = outcome.status();
  if (outcome.ok()) command.response = *std::move(outcome);
  return absl::OkStatus();
}

// The answer recorded under a key seen before, or the refusal of a key
// reused for another request.
absl::Status Replay(const IdempotencyRecord& seen, Command& command) {
  if (seen.method != MethodOf(command.body)) {
    command.status = idempotency::KeyReusedError(command.idempotency_key, "method");
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(const std::string field, FirstDifferingField(command.body, seen.request));
  if (!field.empty()) {
    command.status = idempotency::KeyReusedError(command.idempotency_key, field);
    return absl::OkStatus();
  }
  command.status = absl::Status(static_cast<absl::StatusCode>(seen.status_code), seen.status_message);
  if (command.status.ok()) {
    ASSIGN_OR_RETURN(command.response, StoredResponse(command.body, seen.response));
  }
  return absl::OkStatus();
}

// Applies a command not seen before and records its answer under its key.
absl::Status ApplyAndRecord(const CommandContext& context, Command& command) {
  Outcome outcome = Dispatch(context, command.body);
  if (!outcome.ok() && !idempotency::IsFinalOutcome(outcome.status())) {
    return outcome.status();  // the batch fails; nothing was changed for a final answer
  }
  if (!outcome.ok() && (!idempotency::ShouldRemember(outcome.status()) || IsUnrecordedRefusal(outcome.status()))) {
    // The one rule of what a key keeps (idempotency::ShouldRemember): bad
    // input or a refused credential does not use up the key; the client
    // fixes the request and retries with the same key. Nor, here, does a
    // refusal for a state that is expected to change (a prepaid partner out
    // of blocks).
    command.status = outcome.status();
    return absl::OkStatus();
  }
  IdempotencyRecord record;
  record.method = std::string(MethodOf(command.body));
  record.request = SerializedRequest(command.body);
  if (outcome.ok()) {
    command.status = absl::OkStatus();
    command.response = *std::move(outcome);
    record.response = SerializedResponse(command.response);
  } else {
    command.status = outcome.status();
    record.status_code = static_cast<int>(outcome.status().code());
    record.status_message = std::string(outcome.status().message());
  }
  context.state.PutIdempotency(command.caller.principal, command.idempotency_key, std::move(record));
  return absl::OkStatus();
}

}  // namespace

void CollectPrefetchKeys(const Command& command, PrefetchKeys* keys) {
  if (command.record_idempotency) keys->idempotency[command.caller.principal].insert(command.idempotency_key);
  std::visit(Overloaded{
                 [&](const EarnCommand& c) { CollectEarnPrefetchKeys(c, keys); },
                 [&](const AuthorizeCommand& c) { CollectAuthorizePrefetchKeys(c, keys); },
                 [&](const CaptureCommand& c) { CollectHoldPrefetchKeys(c.request.hold_id(), keys); },
                 [&](const VoidCommand& c) { CollectHoldPrefetchKeys(c.request.hold_id(), keys); },
                 // The rest read their rows on demand: a stored transfer and
                 // its lots, or the rows a job finds (which it loads in bulk).
                 [](const ReverseCommand&) {},
                 [](const AdjustCommand&) {},
                 [](const GrantBonusCommand&) {},
                 [](const RunExpiryCommand&) {},
                 [](const RunHoldExpiryCommand&) {},
             },
             command.body);
}

absl::Status ApplyCommand(BatchState& state, const RulesSnapshot& rules, BudgetReservations& budgets,
                          Command& command) {
  const CommandContext context{state, rules, budgets, command.caller};
  if (!command.record_idempotency) return TakeOutcome(Dispatch(context, command.body), command);
  ASSIGN_OR_RETURN(std::optional<IdempotencyRecord> seen,
                   state.Idempotency(command.caller.principal, command.idempotency_key));
  if (seen.has_value()) return Replay(*seen, command);
  return ApplyAndRecord(context, command);
}

}  // namespace loyalty::ledger
