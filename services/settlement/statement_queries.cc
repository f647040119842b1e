#include "services/settlement/statement_queries.h"

#include <set>
#include <string>

#include "common/paging/page_token.h"
#include "services/settlement/netting.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "common/validation/ids.h"
#include "common/validation/text.h"
#include "services/settlement/settlement_common.h"

namespace loyalty::settlement {

StatementQueries::StatementQueries(const SettlementDeps& deps) : deps_(deps) {}

absl::StatusOr<v1::GetStatementResponse> StatementQueries::GetStatement(const Principal& p,
                                                                        const v1::GetStatementRequest& r) {
  switch (r.selector_case()) {
    case v1::GetStatementRequest::kStatementId:
      RETURN_IF_ERROR(ValidateId("statement_id", r.statement_id()));
      break;
    case v1::GetStatementRequest::kKey:
      RETURN_IF_ERROR(ValidateId("key.period_id", r.key().period_id()));
      RETURN_IF_ERROR(ValidateId("key.partner_id", r.key().partner_id()));
      RETURN_IF_ERROR(OwnPartnerOnly(p, r.key().partner_id(), "statements"));
      break;
    default:
      return Invalid("selector", "statement_id or key");
  }
  v1::GetStatementResponse out;
  RETURN_IF_ERROR(deps_.store.Run("GetStatement", [&](SettlementTx& tx) -> absl::Status {
    std::optional<v1::Statement> s;
    if (r.selector_case() == v1::GetStatementRequest::kStatementId) {
      ASSIGN_OR_RETURN(s, tx.GetStatement(r.statement_id()));
    } else {
      ASSIGN_OR_RETURN(s, tx.GetStatementByKey(r.key().period_id(), r.key().partner_id()));
    }
    if (!s.has_value()) return absl::NotFoundError("statement not found");
    if (p.is_partner()) {
      if (s->partner_id() != p.partner_id) {
        return absl::PermissionDeniedError("a partner may read only its own statements");
      }
      if (s->status() == v1::STATEMENT_STATUS_DRAFT) return absl::NotFoundError("statement not found");
    }
    *out.mutable_statement() = *std::move(s);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::ListStatementsResponse> StatementQueries::ListStatements(const Principal& p,
                                                                            const v1::ListStatementsRequest& r) {
  if (!r.period_id().empty()) RETURN_IF_ERROR(ValidateId("period_id", r.period_id()));
  if (!r.partner_id().empty()) RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  if (p.is_partner() && r.partner_id() != p.partner_id) {
    return absl::PermissionDeniedError("partner_id: a partner lists only its own statements");
  }
  ASSIGN_OR_RETURN(int page_size, paging::PageSize(r.page_size(), 50, 500));
  std::string scope = absl::StrCat("statements:", r.period_id(), ":", r.partner_id());
  for (int s : r.statuses()) absl::StrAppend(&scope, ",", s);
  int64_t before_id = 0;
  if (!r.page_token().empty()) {
    ASSIGN_OR_RETURN(before_id, paging::DecodePageToken(r.page_token(), scope));
  }
  const std::set<int> statuses(r.statuses().begin(), r.statuses().end());
  v1::ListStatementsResponse out;
  RETURN_IF_ERROR(deps_.store.Run("ListStatements", [&](SettlementTx& tx) -> absl::Status {
    out.Clear();
    StatementFilter filter{r.period_id(), r.partner_id()};
    ASSIGN_OR_RETURN(auto rows, tx.ListStatements(filter, before_id, page_size + 1));
    const bool more = static_cast<int>(rows.size()) > page_size;
    if (more) rows.pop_back();
    for (auto& [id, s] : rows) {
      if (p.is_partner() && s.status() == v1::STATEMENT_STATUS_DRAFT) continue;
      if (!statuses.empty() && !statuses.contains(s.status())) continue;
      s.clear_lines();
      s.clear_issuer_redeemer();
      *out.add_statements() = std::move(s);
    }
    if (more) out.set_next_page_token(paging::EncodePageToken(scope, rows.back().first));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::ComputeNettingResponse> StatementQueries::ComputeNetting(const Principal& /*p*/,
                                                                            const v1::ComputeNettingRequest& r) {
  std::vector<v1::Statement> statements;
  RETURN_IF_ERROR(deps_.store.Run("ComputeNetting", [&](SettlementTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(v1::Period period, LoadPeriod(tx, r.period_id(), false));
    if (period.status() != v1::PERIOD_STATUS_CLOSED && period.status() != v1::PERIOD_STATUS_FINAL) {
      return absl::FailedPreconditionError("period is not CLOSED or FINAL");
    }
    ASSIGN_OR_RETURN(statements, PeriodStatements(tx, r.period_id()));
    return absl::OkStatus();
  }));
  ASSIGN_OR_RETURN(std::vector<v1::NettingResult> results, settlement::ComputeNetting(statements));
  v1::ComputeNettingResponse out;
  for (auto& result : results) *out.add_results() = std::move(result);
  return out;
}

absl::StatusOr<v1::ExportPeriodResponse> StatementQueries::ExportPeriod(const Principal& /*p*/,
                                                                        const v1::ExportPeriodRequest& r) {
  if (r.format() != v1::EXPORT_FORMAT_CSV && r.format() != v1::EXPORT_FORMAT_JSON) {
    return Invalid("format", "CSV or JSON");
  }
  v1::Period period;
  std::vector<v1::Statement> statements;
  RETURN_IF_ERROR(deps_.store.Run("ExportPeriod", [&](SettlementTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(period, LoadPeriod(tx, r.period_id(), false));
    if (period.status() != v1::PERIOD_STATUS_FINAL) return absl::FailedPreconditionError("period is not FINAL");
    ASSIGN_OR_RETURN(statements, PeriodStatements(tx, r.period_id()));
    return absl::OkStatus();
  }));
  ASSIGN_OR_RETURN(std::vector<v1::NettingResult> netting, settlement::ComputeNetting(statements));
  ASSIGN_OR_RETURN(std::vector<v1::ExportFile> files, ExportFiles(period, statements, netting, r.format()));
  v1::ExportPeriodResponse out;
  for (auto& f : files) *out.add_files() = std::move(f);
  return out;
}

}  // namespace loyalty::settlement
