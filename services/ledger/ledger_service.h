#pragma once
// The ledger's gRPC adapter: proto in, domain call, proto out. No rules here.
//
// Every handler first authenticates the caller and checks its role against
// the RPC's allowed_roles (auth::RpcGuard: UNAUTHENTICATED, PERMISSION_DENIED),
// then passes the caller on as a Caller, which scopes partner keys to their own
// partner_id inside the Ledger.

#include <functional>

#include "absl/status/statusor.h"
#include "common/auth/grpc_auth.h"
#include "loyalty/ledger/v1/ledger.grpc.pb.h"
#include "services/ledger/ledger.h"

namespace loyalty::ledger {

class LedgerService final : public v1::LedgerService::Service {
 public:
  // `ledger` and `authenticator` must outlive the service.
  LedgerService(Ledger& ledger, auth::Authenticator& authenticator)
      : ledger_(ledger), guard_(authenticator, v1::LedgerService::service_full_name()) {}

  // v1::LedgerService::Service:
  grpc::Status Earn(grpc::ServerContext* context, const v1::EarnRequest* request,
                    v1::EarnResponse* response) override;
  grpc::Status QuoteEarn(grpc::ServerContext* context, const v1::QuoteEarnRequest* request,
                         v1::QuoteEarnResponse* response) override;
  grpc::Status Authorize(grpc::ServerContext* context, const v1::AuthorizeRequest* request,
                         v1::AuthorizeResponse* response) override;
  grpc::Status Capture(grpc::ServerContext* context, const v1::CaptureRequest* request,
                       v1::CaptureResponse* response) override;
  grpc::Status Void(grpc::ServerContext* context, const v1::VoidRequest* request,
                    v1::VoidResponse* response) override;
  grpc::Status Reverse(grpc::ServerContext* context, const v1::ReverseRequest* request,
                       v1::ReverseResponse* response) override;
  grpc::Status Adjust(grpc::ServerContext* context, const v1::AdjustRequest* request,
                      v1::AdjustResponse* response) override;
  grpc::Status GrantBonus(grpc::ServerContext* context, const v1::GrantBonusRequest* request,
                          v1::GrantBonusResponse* response) override;
  grpc::Status RunExpiry(grpc::ServerContext* context, const v1::RunExpiryRequest* request,
                         v1::RunExpiryResponse* response) override;
  grpc::Status RunHoldExpiry(grpc::ServerContext* context, const v1::RunHoldExpiryRequest* request,
                             v1::RunHoldExpiryResponse* response) override;
  grpc::Status GetBalance(grpc::ServerContext* context, const v1::GetBalanceRequest* request,
                          v1::GetBalanceResponse* response) override;
  grpc::Status GetTransfer(grpc::ServerContext* context, const v1::GetTransferRequest* request,
                           v1::GetTransferResponse* response) override;
  grpc::Status ListTransfers(grpc::ServerContext* context, const v1::ListTransfersRequest* request,
                             v1::ListTransfersResponse* response) override;
  grpc::Status GetHold(grpc::ServerContext* context, const v1::GetHoldRequest* request,
                       v1::GetHoldResponse* response) override;
  grpc::Status ListLots(grpc::ServerContext* context, const v1::ListLotsRequest* request,
                        v1::ListLotsResponse* response) override;
  grpc::Status GetQualifyingPoints(grpc::ServerContext* context,
                                   const v1::GetQualifyingPointsRequest* request,
                                   v1::GetQualifyingPointsResponse* response) override;
  grpc::Status GetPointsLiability(grpc::ServerContext* context,
                                  const v1::GetPointsLiabilityRequest* request,
                                  v1::GetPointsLiabilityResponse* response) override;
  grpc::Status GetAccount(grpc::ServerContext* context, const v1::GetAccountRequest* request,
                          v1::GetAccountResponse* response) override;
  // Not built yet: UNIMPLEMENTED, after the caller's key and role are checked.
  grpc::Status ListAccounts(grpc::ServerContext* context, const v1::ListAccountsRequest* request,
                            v1::ListAccountsResponse* response) override;
  grpc::Status ReadJournal(grpc::ServerContext* context, const v1::ReadJournalRequest* request,
                           v1::ReadJournalResponse* response) override;
  grpc::Status StreamJournal(grpc::ServerContext* context, const v1::StreamJournalRequest* request,
                             grpc::ServerWriter<v1::StreamJournalResponse>* writer) override;
  grpc::Status VerifyChain(grpc::ServerContext* context, const v1::VerifyChainRequest* request,
                           v1::VerifyChainResponse* response) override;

 private:
  // Authenticates and authorises the caller of `method` ("Earn").
  absl::StatusOr<Caller> CallerOf(const grpc::ServerContext& context, absl::string_view method) const;

  Ledger& ledger_;
  const auth::RpcGuard guard_;
  const std::function<absl::StatusOr<Caller>(const grpc::ServerContext&, absl::string_view)> authorize_ =
      [this](const grpc::ServerContext& context, absl::string_view method) { return CallerOf(context, method); };
};

}  // namespace loyalty::ledger
