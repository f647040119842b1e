#pragma once
// Reading what a close produced: statements (one or a page), the netting of
// a closed period, and the export files of a final period. Read-only.
//
// Invariants: a partner caller sees only its own statements and never a
// DRAFT; netting needs a CLOSED or FINAL period, export a FINAL one.
// Statement arithmetic and netting are the pure rules of statement.h and
// netting.h.
//
// Thread-safe: no mutable state besides the store.

#include "absl/status/statusor.h"
#include "common/auth/principal.h"
#include "loyalty/settlement/v1/settlement.pb.h"
#include "services/settlement/settlement_deps.h"

namespace loyalty::settlement {

class StatementQueries {
 public:
  using Principal = auth::Principal;

  explicit StatementQueries(const SettlementDeps& deps);

  absl::StatusOr<v1::GetStatementResponse> GetStatement(const Principal& p, const v1::GetStatementRequest& r);
  absl::StatusOr<v1::ListStatementsResponse> ListStatements(const Principal& p, const v1::ListStatementsRequest& r);
  absl::StatusOr<v1::ComputeNettingResponse> ComputeNetting(const Principal& p, const v1::ComputeNettingRequest& r);
  absl::StatusOr<v1::ExportPeriodResponse> ExportPeriod(const Principal& p, const v1::ExportPeriodRequest& r);

 private:
  const SettlementDeps& deps_;
};

}  // namespace loyalty::settlement
