#include "services/settlement/settlement_service.h"

#include "common/server/unary_handler.h"
#include "common/status/grpc_status.h"

namespace loyalty::settlement {

// Each RPC goes to the use-case class that owns it (settlement.h).
#define LOYALTY_SETTLEMENT_RPC(Owner, Method)                                                             \
  grpc::Status SettlementService::Method(grpc::ServerContext* context, const v1::Method##Request* request, \
                                         v1::Method##Response* response) {                                \
    return server::HandleUnary(*context, #Method, authorize_, response, [&](const auth::Principal& p) { \
      return settlement_.Owner().Method(p, *request);                                                \
    });                                                                                              \
  }

LOYALTY_SETTLEMENT_RPC(partners, CreatePartner)
LOYALTY_SETTLEMENT_RPC(partners, GetPartner)
LOYALTY_SETTLEMENT_RPC(partners, ListPartners)
LOYALTY_SETTLEMENT_RPC(partners, UpdatePartner)
LOYALTY_SETTLEMENT_RPC(partners, SetPartnerStatus)
LOYALTY_SETTLEMENT_RPC(contracts, CreateContractVersion)
LOYALTY_SETTLEMENT_RPC(contracts, GetContract)
LOYALTY_SETTLEMENT_RPC(contracts, ListContracts)
LOYALTY_SETTLEMENT_RPC(partners, ListPartnerSnapshots)
LOYALTY_SETTLEMENT_RPC(prepaid, PurchasePointBlock)
LOYALTY_SETTLEMENT_RPC(prepaid, GetPrepaidBalance)
LOYALTY_SETTLEMENT_RPC(prepaid, ListAlerts)
LOYALTY_SETTLEMENT_RPC(api_keys, CreateApiKey)
LOYALTY_SETTLEMENT_RPC(api_keys, RotateApiKey)
LOYALTY_SETTLEMENT_RPC(api_keys, RevokeApiKey)
LOYALTY_SETTLEMENT_RPC(api_keys, ListApiKeys)
LOYALTY_SETTLEMENT_RPC(api_keys, AuthenticateApiKey)
LOYALTY_SETTLEMENT_RPC(period_close, CreatePeriod)
LOYALTY_SETTLEMENT_RPC(period_close, ClosePeriod)
LOYALTY_SETTLEMENT_RPC(period_close, FinalizePeriod)
LOYALTY_SETTLEMENT_RPC(period_close, GetPeriod)
LOYALTY_SETTLEMENT_RPC(period_close, ListPeriods)
LOYALTY_SETTLEMENT_RPC(statement_queries, GetStatement)
LOYALTY_SETTLEMENT_RPC(statement_queries, ListStatements)
LOYALTY_SETTLEMENT_RPC(statement_queries, ComputeNetting)
LOYALTY_SETTLEMENT_RPC(statement_queries, ExportPeriod)
LOYALTY_SETTLEMENT_RPC(disputes, DisputeStatementLine)
LOYALTY_SETTLEMENT_RPC(disputes, ResolveDispute)
LOYALTY_SETTLEMENT_RPC(disputes, ListDisputes)
LOYALTY_SETTLEMENT_RPC(reconciliation, Reconcile)
LOYALTY_SETTLEMENT_RPC(audit_events, ListAuditEvents)

#undef LOYALTY_SETTLEMENT_RPC

}  // namespace loyalty::settlement
