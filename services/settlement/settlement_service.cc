#include "services/settlement/settlement_service.h"

#include "common/status/grpc_status.h"

namespace loyalty::settlement {

template <typename Response, typename Call>
grpc::Status SettlementService::Handle(grpc::ServerContext* context, absl::string_view method, Response* response,
                                       Call call) {
  absl::StatusOr<auth::Principal> principal = authorize_(*context, method);
  if (!principal.ok()) return ToGrpcStatus(principal.status());
  absl::StatusOr<Response> result = call(*principal);
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

#define LOYALTY_SETTLEMENT_RPC(Method)                                                                    \
  grpc::Status SettlementService::Method(grpc::ServerContext* context, const v1::Method##Request* request, \
                                         v1::Method##Response* response) {                                \
    return Handle(context, #Method, response,                                                             \
                  [&](const auth::Principal& p) { return settlement_.Method(p, *request); });             \
  }

LOYALTY_SETTLEMENT_RPC(CreatePartner)
LOYALTY_SETTLEMENT_RPC(GetPartner)
LOYALTY_SETTLEMENT_RPC(ListPartners)
LOYALTY_SETTLEMENT_RPC(UpdatePartner)
LOYALTY_SETTLEMENT_RPC(SetPartnerStatus)
LOYALTY_SETTLEMENT_RPC(CreateContractVersion)
LOYALTY_SETTLEMENT_RPC(GetContract)
LOYALTY_SETTLEMENT_RPC(ListContracts)
LOYALTY_SETTLEMENT_RPC(ListPartnerSnapshots)
LOYALTY_SETTLEMENT_RPC(PurchasePointBlock)
LOYALTY_SETTLEMENT_RPC(GetPrepaidBalance)
LOYALTY_SETTLEMENT_RPC(ListAlerts)
LOYALTY_SETTLEMENT_RPC(CreateApiKey)
LOYALTY_SETTLEMENT_RPC(RotateApiKey)
LOYALTY_SETTLEMENT_RPC(RevokeApiKey)
LOYALTY_SETTLEMENT_RPC(ListApiKeys)
LOYALTY_SETTLEMENT_RPC(AuthenticateApiKey)
LOYALTY_SETTLEMENT_RPC(CreatePeriod)
LOYALTY_SETTLEMENT_RPC(ClosePeriod)
LOYALTY_SETTLEMENT_RPC(FinalizePeriod)
LOYALTY_SETTLEMENT_RPC(GetPeriod)
LOYALTY_SETTLEMENT_RPC(ListPeriods)
LOYALTY_SETTLEMENT_RPC(GetStatement)
LOYALTY_SETTLEMENT_RPC(ListStatements)
LOYALTY_SETTLEMENT_RPC(ComputeNetting)
LOYALTY_SETTLEMENT_RPC(ExportPeriod)
LOYALTY_SETTLEMENT_RPC(DisputeStatementLine)
LOYALTY_SETTLEMENT_RPC(ResolveDispute)
LOYALTY_SETTLEMENT_RPC(ListDisputes)
LOYALTY_SETTLEMENT_RPC(Reconcile)
LOYALTY_SETTLEMENT_RPC(ListAuditEvents)

#undef LOYALTY_SETTLEMENT_RPC

}  // namespace loyalty::settlement
