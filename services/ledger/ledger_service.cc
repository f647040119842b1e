#include "services/ledger/ledger_service.h"

#include <chrono>
#include <thread>

#include "common/status/grpc_status.h"

namespace loyalty::ledger {
namespace {

template <typename Response>
grpc::Status Reply(absl::StatusOr<Response> result, Response* response) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

}  // namespace

absl::StatusOr<Caller> LedgerService::CallerOf(const grpc::ServerContext& context,
                                               absl::string_view method) const {
  ASSIGN_OR_RETURN(auth::Principal principal, guard_.Check(context, method));
  Caller caller = Caller::Of(principal);
  if (context.deadline() != std::chrono::system_clock::time_point::max()) {
    caller.deadline = absl::FromChrono(context.deadline());
  }
  return caller;
}

grpc::Status LedgerService::Earn(grpc::ServerContext* context, const v1::EarnRequest* request,
                                 v1::EarnResponse* response) {
  ASSIGN_OR_RETURN_GRPC(const Caller caller, CallerOf(*context, "Earn"));
  return Reply(ledger_.Earn(caller, *request), response);
}

grpc::Status LedgerService::QuoteEarn(grpc::ServerContext* context, const v1::QuoteEarnRequest* request,
                                      v1::QuoteEarnResponse* response) {
  ASSIGN_OR_RETURN_GRPC(const Caller caller, CallerOf(*context, "QuoteEarn"));
  return Reply(ledger_.QuoteEarn(caller, *request), response);
}

grpc::Status LedgerService::Authorize(grpc::ServerContext* context, const v1::AuthorizeRequest* request,
                                      v1::AuthorizeResponse* response) {
  ASSIGN_OR_RETURN_GRPC(const Caller caller, CallerOf(*context, "Authorize"));
  return Reply(ledger_.Authorize(caller, *request), response);
}

grpc::Status LedgerService::Capture(grpc::ServerContext* context, const v1::CaptureRequest* request,
                                    v1::CaptureResponse* response) {
  ASSIGN_OR_RETURN_GRPC(const Caller caller, CallerOf(*context, "Capture"));
  return Reply(ledger_.Capture(caller, *request), response);
}

grpc::Status LedgerService::Void(grpc::ServerContext* context, const v1::VoidRequest* request,
                                 v1::VoidResponse* response) {
  ASSIGN_OR_RETURN_GRPC(const Caller caller, CallerOf(*context, "Void"));
  return Reply(ledger_.Void(caller, *request), response);
}

grpc::Status LedgerService::Reverse(grpc::ServerContext* context, const v1::ReverseRequest* request,
                                    v1::ReverseResponse* response) {
  ASSIGN_OR_RETURN_GRPC(const Caller caller, CallerOf(*context, "Reverse"));
  return Reply(ledger_.Reverse(caller, *request), response);
}

grpc::Status LedgerService::Adjust(grpc::ServerContext* context, const v1::AdjustRequest* request,
                                   v1::AdjustResponse* response) {
  ASSIGN_OR_RETURN_GRPC(const Caller caller, CallerOf(*context, "Adjust"));
  return Reply(ledger_.Adjust(caller, *request), response);
}

grpc::Status LedgerService::GrantBonus(grpc::ServerContext* context, const v1::GrantBonusRequest* request,
                                       v1::GrantBonusResponse* response) {
  ASSIGN_OR_RETURN_GRPC(const Caller caller, CallerOf(*context, "GrantBonus"));
  return Reply(ledger_.GrantBonus(caller, *request), response);
}

grpc::Status LedgerService::RunExpiry(grpc::ServerContext* context, const v1::RunExpiryRequest* request,
                                      v1::RunExpiryResponse* response) {
  ASSIGN_OR_RETURN_GRPC(const Caller caller, CallerOf(*context, "RunExpiry"));
  return Reply(ledger_.RunExpiry(caller, *request), response);
}

grpc::Status LedgerService::RunHoldExpiry(grpc::ServerContext* context,
                                          const v1::RunHoldExpiryRequest* request,
                                          v1::RunHoldExpiryResponse* response) {
  ASSIGN_OR_RETURN_GRPC(const Caller caller, CallerOf(*context, "RunHoldExpiry"));
  return Reply(ledger_.RunHoldExpiry(caller, *request), response);
}

grpc::Status LedgerService::GetBalance(grpc::ServerContext* context, const v1::GetBalanceRequest* request,
                                       v1::GetBalanceResponse* response) {
  RETURN_IF_ERROR_GRPC(CallerOf(*context, "GetBalance").status());
  return Reply(ledger_.GetBalance(*request), response);
}

grpc::Status LedgerService::GetTransfer(grpc::ServerContext* context, const v1::GetTransferRequest* request,
                                        v1::GetTransferResponse* response) {
  ASSIGN_OR_RETURN_GRPC(const Caller caller, CallerOf(*context, "GetTransfer"));
  return Reply(ledger_.GetTransfer(caller, *request), response);
}

grpc::Status LedgerService::ListTransfers(grpc::ServerContext* context, const v1::ListTransfersRequest* request,
                                          v1::ListTransfersResponse* response) {
  ASSIGN_OR_RETURN_GRPC(const Caller caller, CallerOf(*context, "ListTransfers"));
  return Reply(ledger_.ListTransfers(caller, *request), response);
}

grpc::Status LedgerService::GetHold(grpc::ServerContext* context, const v1::GetHoldRequest* request,
                                    v1::GetHoldResponse* response) {
  ASSIGN_OR_RETURN_GRPC(const Caller caller, CallerOf(*context, "GetHold"));
  return Reply(ledger_.GetHold(caller, *request), response);
}

grpc::Status LedgerService::ListLots(grpc::ServerContext* context, const v1::ListLotsRequest* request,
                                     v1::ListLotsResponse* response) {
  RETURN_IF_ERROR_GRPC(CallerOf(*context, "ListLots").status());
  return Reply(ledger_.ListLots(*request), response);
}

grpc::Status LedgerService::GetQualifyingPoints(grpc::ServerContext* context,
                                                const v1::GetQualifyingPointsRequest* request,
                                                v1::GetQualifyingPointsResponse* response) {
  RETURN_IF_ERROR_GRPC(CallerOf(*context, "GetQualifyingPoints").status());
  return Reply(ledger_.GetQualifyingPoints(*request), response);
}

grpc::Status LedgerService::GetPointsLiability(grpc::ServerContext* context,
                                               const v1::GetPointsLiabilityRequest*,
                                               v1::GetPointsLiabilityResponse* response) {
  RETURN_IF_ERROR_GRPC(CallerOf(*context, "GetPointsLiability").status());
  return Reply(ledger_.GetPointsLiability(), response);
}

grpc::Status LedgerService::GetAccount(grpc::ServerContext* context, const v1::GetAccountRequest* request,
                                       v1::GetAccountResponse* response) {
  ASSIGN_OR_RETURN_GRPC(const Caller caller, CallerOf(*context, "GetAccount"));
  return Reply(ledger_.GetAccount(caller, *request), response);
}

grpc::Status LedgerService::ReadJournal(grpc::ServerContext* context, const v1::ReadJournalRequest* request,
                                        v1::ReadJournalResponse* response) {
  RETURN_IF_ERROR_GRPC(CallerOf(*context, "ReadJournal").status());
  return Reply(ledger_.ReadJournal(*request), response);
}

grpc::Status LedgerService::StreamJournal(grpc::ServerContext* context,
                                          const v1::StreamJournalRequest* request,
                                          grpc::ServerWriter<v1::StreamJournalResponse>* writer) {
  RETURN_IF_ERROR_GRPC(CallerOf(*context, "StreamJournal").status());
  // Pages from the journal as they commit; a heartbeat when idle. Ends at
  // up_to_sequence, on cancel or deadline. One handler thread per stream.
  constexpr auto kPoll = std::chrono::milliseconds(200);
  constexpr auto kHeartbeat = std::chrono::seconds(10);
  v1::ReadJournalRequest page;
  page.set_after_sequence(request->after_sequence());
  page.set_up_to_sequence(request->up_to_sequence());
  page.set_page_size(1000);
  auto last_sent = std::chrono::steady_clock::now();
  while (!context->IsCancelled()) {
    absl::StatusOr<v1::ReadJournalResponse> result = ledger_.ReadJournal(page);
    if (!result.ok()) return ToGrpcStatus(result.status());
    v1::StreamJournalResponse out;
    out.set_head_sequence(result->head_sequence());
    if (result->transfers_size() > 0) {
      *out.mutable_transfers() = std::move(*result->mutable_transfers());
      page.set_after_sequence(result->last_sequence());
    }
    const bool idle = out.transfers_size() == 0;
    if (!idle || std::chrono::steady_clock::now() - last_sent >= kHeartbeat) {
      if (!writer->Write(out)) return grpc::Status::CANCELLED;
      last_sent = std::chrono::steady_clock::now();
    }
    if (request->up_to_sequence() > 0 && page.after_sequence() >= request->up_to_sequence()) {
      return grpc::Status::OK;
    }
    if (idle) std::this_thread::sleep_for(kPoll);
  }
  return grpc::Status::CANCELLED;
}

grpc::Status LedgerService::ListAccounts(grpc::ServerContext* context, const v1::ListAccountsRequest* request,
                                         v1::ListAccountsResponse* response) {
  ASSIGN_OR_RETURN_GRPC(const Caller caller, CallerOf(*context, "ListAccounts"));
  return Reply(ledger_.ListAccounts(caller, *request), response);
}

grpc::Status LedgerService::VerifyChain(grpc::ServerContext* context, const v1::VerifyChainRequest* request,
                                        v1::VerifyChainResponse* response) {
  RETURN_IF_ERROR_GRPC(CallerOf(*context, "VerifyChain").status());
  return Reply(ledger_.VerifyChain(*request), response);
}

}  // namespace loyalty::ledger
