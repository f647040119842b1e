#pragma once
// The gRPC adapter of the settlement service: authenticates the caller,
// hands the request to the use-case class of the domain that owns it
// (Settlement's partners(), contracts(), ...) and maps the answer back.
//
// Every RPC of the proto is handled here (the partner directory, contracts,
// the snapshot feed, prepaid blocks and alerts, credentials, periods, close,
// statements, netting, export, disputes, reconciliation and audit).

#include <functional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/auth/principal.h"
#include "loyalty/settlement/v1/settlement.grpc.pb.h"
#include "services/settlement/settlement.h"

namespace loyalty::settlement {

// Authenticates and authorises the caller of a method ("ClosePeriod").
using Authorize = std::function<absl::StatusOr<auth::Principal>(const grpc::ServerContext&, absl::string_view)>;

class SettlementService final : public v1::SettlementService::Service {
 public:
  SettlementService(Settlement& settlement, Authorize authorize)
      : settlement_(settlement), authorize_(std::move(authorize)) {}

#define LOYALTY_SETTLEMENT_RPC_DECL(Method) \
  grpc::Status Method(grpc::ServerContext*, const v1::Method##Request*, v1::Method##Response*) override;
  LOYALTY_SETTLEMENT_RPC_DECL(CreatePartner)
  LOYALTY_SETTLEMENT_RPC_DECL(GetPartner)
  LOYALTY_SETTLEMENT_RPC_DECL(ListPartners)
  LOYALTY_SETTLEMENT_RPC_DECL(UpdatePartner)
  LOYALTY_SETTLEMENT_RPC_DECL(SetPartnerStatus)
  LOYALTY_SETTLEMENT_RPC_DECL(CreateContractVersion)
  LOYALTY_SETTLEMENT_RPC_DECL(GetContract)
  LOYALTY_SETTLEMENT_RPC_DECL(ListContracts)
  LOYALTY_SETTLEMENT_RPC_DECL(ListPartnerSnapshots)
  LOYALTY_SETTLEMENT_RPC_DECL(PurchasePointBlock)
  LOYALTY_SETTLEMENT_RPC_DECL(GetPrepaidBalance)
  LOYALTY_SETTLEMENT_RPC_DECL(ListAlerts)
  LOYALTY_SETTLEMENT_RPC_DECL(CreateApiKey)
  LOYALTY_SETTLEMENT_RPC_DECL(RotateApiKey)
  LOYALTY_SETTLEMENT_RPC_DECL(RevokeApiKey)
  LOYALTY_SETTLEMENT_RPC_DECL(ListApiKeys)
  LOYALTY_SETTLEMENT_RPC_DECL(AuthenticateApiKey)
  LOYALTY_SETTLEMENT_RPC_DECL(CreatePeriod)
  LOYALTY_SETTLEMENT_RPC_DECL(ClosePeriod)
  LOYALTY_SETTLEMENT_RPC_DECL(FinalizePeriod)
  LOYALTY_SETTLEMENT_RPC_DECL(GetPeriod)
  LOYALTY_SETTLEMENT_RPC_DECL(ListPeriods)
  LOYALTY_SETTLEMENT_RPC_DECL(GetStatement)
  LOYALTY_SETTLEMENT_RPC_DECL(ListStatements)
  LOYALTY_SETTLEMENT_RPC_DECL(ComputeNetting)
  LOYALTY_SETTLEMENT_RPC_DECL(ExportPeriod)
  LOYALTY_SETTLEMENT_RPC_DECL(DisputeStatementLine)
  LOYALTY_SETTLEMENT_RPC_DECL(ResolveDispute)
  LOYALTY_SETTLEMENT_RPC_DECL(ListDisputes)
  LOYALTY_SETTLEMENT_RPC_DECL(Reconcile)
  LOYALTY_SETTLEMENT_RPC_DECL(ListAuditEvents)
#undef LOYALTY_SETTLEMENT_RPC_DECL

 private:
  Settlement& settlement_;
  Authorize authorize_;
};

}  // namespace loyalty::settlement
