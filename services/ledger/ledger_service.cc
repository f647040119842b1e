#include "services/ledger/ledger_service.h"

#include "common/server/unary_handler.h"
#include "common/server/watch_loop.h"
#include "common/status/grpc_status.h"

namespace loyalty::ledger {

absl::StatusOr<Caller> LedgerService::CallerOf(const grpc::ServerContext& context,
                                               absl::string_view method) const {
  ASSIGN_OR_RETURN(auth::Principal principal, guard_.Check(context, method));
  Caller caller = Caller::Of(principal);
  if (context.deadline() != std::chrono::system_clock::time_point::max()) {
    caller.deadline = absl::FromChrono(context.deadline());
  }
  return caller;
}

// Each RPC: authorise the caller (CallerOf), then the Ledger's method of the
// same name, with the caller when it scopes the answer (partner keys reach
// only their own partner's data), without when every allowed role sees the same.
#define LOYALTY_LEDGER_RPC(Method, ...)                                                                       \
  grpc::Status LedgerService::Method(grpc::ServerContext* context, const v1::Method##Request* request,       \
                                     v1::Method##Response* response) {                                      \
    return server::HandleUnary(*context, #Method, authorize_, response,                                      \
                               [&]([[maybe_unused]] const Caller& caller) { return ledger_.Method(__VA_ARGS__); }); \
  }

LOYALTY_LEDGER_RPC(Earn, caller, *request)
LOYALTY_LEDGER_RPC(QuoteEarn, caller, *request)
LOYALTY_LEDGER_RPC(Authorize, caller, *request)
LOYALTY_LEDGER_RPC(Capture, caller, *request)
LOYALTY_LEDGER_RPC(Void, caller, *request)
LOYALTY_LEDGER_RPC(Reverse, caller, *request)
LOYALTY_LEDGER_RPC(Adjust, caller, *request)
LOYALTY_LEDGER_RPC(GrantBonus, caller, *request)
LOYALTY_LEDGER_RPC(RunExpiry, caller, *request)
LOYALTY_LEDGER_RPC(RunHoldExpiry, caller, *request)
LOYALTY_LEDGER_RPC(GetTransfer, caller, *request)
LOYALTY_LEDGER_RPC(ListTransfers, caller, *request)
LOYALTY_LEDGER_RPC(GetHold, caller, *request)
LOYALTY_LEDGER_RPC(GetAccount, caller, *request)
LOYALTY_LEDGER_RPC(ListAccounts, caller, *request)
LOYALTY_LEDGER_RPC(GetBalance, *request)
LOYALTY_LEDGER_RPC(ListLots, *request)
LOYALTY_LEDGER_RPC(GetQualifyingPoints, *request)
LOYALTY_LEDGER_RPC(ReadJournal, *request)
LOYALTY_LEDGER_RPC(VerifyChain, *request)

#undef LOYALTY_LEDGER_RPC

grpc::Status LedgerService::GetPointsLiability(grpc::ServerContext* context, const v1::GetPointsLiabilityRequest*,
                                               v1::GetPointsLiabilityResponse* response) {
  return server::HandleUnary(*context, "GetPointsLiability", authorize_, response,
                             [&](const Caller&) { return ledger_.GetPointsLiability(); });
}

grpc::Status LedgerService::StreamJournal(grpc::ServerContext* context,
                                          const v1::StreamJournalRequest* request,
                                          grpc::ServerWriter<v1::StreamJournalResponse>* writer) {
  RETURN_IF_ERROR_GRPC(CallerOf(*context, "StreamJournal").status());
  // Pages from the journal as they commit; a heartbeat when idle. Ends at
  // up_to_sequence, on cancel or deadline.
  v1::ReadJournalRequest page;
  page.set_after_sequence(request->after_sequence());
  page.set_up_to_sequence(request->up_to_sequence());
  page.set_page_size(1000);
  using Poll = server::WatchPoll<v1::StreamJournalResponse>;
  return server::RunWatch<v1::StreamJournalResponse>(
      *context, *writer, {.poll_interval = absl::Milliseconds(200), .heartbeat = absl::Seconds(10)},
      /*stop=*/nullptr, "", [&]() -> absl::StatusOr<Poll> {
        ASSIGN_OR_RETURN(v1::ReadJournalResponse read, ledger_.ReadJournal(page));
        Poll round;
        round.message.set_head_sequence(read.head_sequence());
        if (read.transfers_size() > 0) {
          *round.message.mutable_transfers() = std::move(*read.mutable_transfers());
          page.set_after_sequence(read.last_sequence());
          round.news = true;
        }
        round.done = request->up_to_sequence() > 0 && page.after_sequence() >= request->up_to_sequence();
        return round;
      });
}

}  // namespace loyalty::ledger
