#include "services/ledger/ledger_service.h"

#include <chrono>
#include <thread>

#include "common/auth/api_key.h"
#include "common/status/grpc_status.h"

namespace loyalty::ledger {
namespace {

// The caller's identity from its API key id. Roles and key verification
// arrive with the auth issue; until then the key id only scopes
// idempotency keys (see docs/adr/0005-api-key-format.md).
Caller CallerOf(const grpc::ServerContext& context) {
  Caller caller;
  const auto& md = context.client_metadata();
  auto it = md.find("authorization");
  if (it != md.end()) {
    auto parsed = auth::ParseBearer(absl::string_view(it->second.data(), it->second.size()));
    if (parsed.has_value()) caller.principal = "key:" + parsed->key_id;
  }
  return caller;
}

template <typename Response>
grpc::Status Reply(absl::StatusOr<Response> result, Response* response) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

}  // namespace

grpc::Status LedgerService::Earn(grpc::ServerContext* context, const v1::EarnRequest* request,
                                 v1::EarnResponse* response) {
  return Reply(ledger_.Earn(CallerOf(*context), *request), response);
}

grpc::Status LedgerService::QuoteEarn(grpc::ServerContext*, const v1::QuoteEarnRequest* request,
                                      v1::QuoteEarnResponse* response) {
  return Reply(ledger_.QuoteEarn(*request), response);
}

grpc::Status LedgerService::Authorize(grpc::ServerContext* context, const v1::AuthorizeRequest* request,
                                      v1::AuthorizeResponse* response) {
  return Reply(ledger_.Authorize(CallerOf(*context), *request), response);
}

grpc::Status LedgerService::Capture(grpc::ServerContext* context, const v1::CaptureRequest* request,
                                    v1::CaptureResponse* response) {
  return Reply(ledger_.Capture(CallerOf(*context), *request), response);
}

grpc::Status LedgerService::Void(grpc::ServerContext* context, const v1::VoidRequest* request,
                                 v1::VoidResponse* response) {
  return Reply(ledger_.Void(CallerOf(*context), *request), response);
}

grpc::Status LedgerService::Reverse(grpc::ServerContext* context, const v1::ReverseRequest* request,
                                    v1::ReverseResponse* response) {
  return Reply(ledger_.Reverse(CallerOf(*context), *request), response);
}

grpc::Status LedgerService::Adjust(grpc::ServerContext* context, const v1::AdjustRequest* request,
                                   v1::AdjustResponse* response) {
  return Reply(ledger_.Adjust(CallerOf(*context), *request), response);
}

grpc::Status LedgerService::GrantBonus(grpc::ServerContext* context, const v1::GrantBonusRequest* request,
                                       v1::GrantBonusResponse* response) {
  return Reply(ledger_.GrantBonus(CallerOf(*context), *request), response);
}

grpc::Status LedgerService::RunExpiry(grpc::ServerContext* context, const v1::RunExpiryRequest* request,
                                      v1::RunExpiryResponse* response) {
  return Reply(ledger_.RunExpiry(CallerOf(*context), *request), response);
}

grpc::Status LedgerService::RunHoldExpiry(grpc::ServerContext* context,
                                          const v1::RunHoldExpiryRequest* request,
                                          v1::RunHoldExpiryResponse* response) {
  return Reply(ledger_.RunHoldExpiry(CallerOf(*context), *request), response);
}

grpc::Status LedgerService::GetBalance(grpc::ServerContext*, const v1::GetBalanceRequest* request,
                                       v1::GetBalanceResponse* response) {
  return Reply(ledger_.GetBalance(*request), response);
}

grpc::Status LedgerService::GetTransfer(grpc::ServerContext*, const v1::GetTransferRequest* request,
                                        v1::GetTransferResponse* response) {
  return Reply(ledger_.GetTransfer(*request), response);
}

grpc::Status LedgerService::ListTransfers(grpc::ServerContext*, const v1::ListTransfersRequest* request,
                                          v1::ListTransfersResponse* response) {
  return Reply(ledger_.ListTransfers(*request), response);
}

grpc::Status LedgerService::GetHold(grpc::ServerContext*, const v1::GetHoldRequest* request,
                                    v1::GetHoldResponse* response) {
  return Reply(ledger_.GetHold(*request), response);
}

grpc::Status LedgerService::ListLots(grpc::ServerContext*, const v1::ListLotsRequest* request,
                                     v1::ListLotsResponse* response) {
  return Reply(ledger_.ListLots(*request), response);
}

grpc::Status LedgerService::GetQualifyingPoints(grpc::ServerContext*,
                                                const v1::GetQualifyingPointsRequest* request,
                                                v1::GetQualifyingPointsResponse* response) {
  return Reply(ledger_.GetQualifyingPoints(*request), response);
}

grpc::Status LedgerService::GetPointsLiability(grpc::ServerContext*,
                                               const v1::GetPointsLiabilityRequest*,
                                               v1::GetPointsLiabilityResponse* response) {
  return Reply(ledger_.GetPointsLiability(), response);
}

grpc::Status LedgerService::GetAccount(grpc::ServerContext*, const v1::GetAccountRequest* request,
                                       v1::GetAccountResponse* response) {
  return Reply(ledger_.GetAccount(*request), response);
}

grpc::Status LedgerService::ReadJournal(grpc::ServerContext*, const v1::ReadJournalRequest* request,
                                        v1::ReadJournalResponse* response) {
  return Reply(ledger_.ReadJournal(*request), response);
}

grpc::Status LedgerService::StreamJournal(grpc::ServerContext* context,
                                          const v1::StreamJournalRequest* request,
                                          grpc::ServerWriter<v1::StreamJournalResponse>* writer) {
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

grpc::Status LedgerService::VerifyChain(grpc::ServerContext*, const v1::VerifyChainRequest* request,
                                        v1::VerifyChainResponse* response) {
  return Reply(ledger_.VerifyChain(*request), response);
}

}  // namespace loyalty::ledger
