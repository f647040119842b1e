#include "services/settlement/disputes.h"

#include <set>
#include <string>

#include "common/paging/page_token.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "common/validation/ids.h"
#include "common/validation/text.h"
#include "services/settlement/settlement_common.h"

namespace loyalty::settlement {
namespace {

constexpr int kMaxDisputesPerStatement = 1'000;

// The status a statement takes from its disputes: DISPUTED while one is
// open, ADJUSTED once one was accepted, FINAL otherwise.
v1::StatementStatus StatusFromDisputes(const std::vector<v1::Dispute>& disputes) {
  bool accepted = false;
  for (const auto& d : disputes) {
    if (d.status() == v1::DISPUTE_STATUS_OPEN) return v1::STATEMENT_STATUS_DISPUTED;
    if (d.status() == v1::DISPUTE_STATUS_ACCEPTED) accepted = true;
  }
  return accepted ? v1::STATEMENT_STATUS_ADJUSTED : v1::STATEMENT_STATUS_FINAL;
}

}  // namespace

Disputes::Disputes(const SettlementDeps& deps) : deps_(deps) {}

absl::StatusOr<v1::DisputeStatementLineResponse> Disputes::DisputeStatementLine(
    const Principal& p, const v1::DisputeStatementLineRequest& r) {
  RETURN_IF_ERROR(ValidateId("statement_id", r.statement_id()));
  RETURN_IF_ERROR(ValidateId("line_id", r.line_id()));
  RETURN_IF_ERROR(ValidateText("reason", r.reason(), 1, 2000));
  const absl::Time now = deps_.Now();
  return Mutate<v1::DisputeStatementLineResponse>(
      deps_.store, p, "DisputeStatementLine", r.idempotency_key(), r,
      [&](SettlementTx& tx, v1::DisputeStatementLineResponse& out) -> absl::Status {
        ASSIGN_OR_RETURN(std::optional<v1::Statement> statement, tx.GetStatement(r.statement_id()));
        if (!statement.has_value() || (p.is_partner() && statement->status() == v1::STATEMENT_STATUS_DRAFT &&
                                       statement->partner_id() == p.partner_id)) {
          return absl::NotFoundError("statement not found");
        }
        if (p.is_partner() && statement->partner_id() != p.partner_id) {
          return absl::PermissionDeniedError("a partner may dispute only its own statements");
        }
        if (r.has_disputed_amount() && r.disputed_amount().currency() != statement->currency()) {
          return Invalid("disputed_amount.currency", absl::StrCat("must be the statement currency ",
                                                                  statement->currency()));
        }
        if (statement->status() == v1::STATEMENT_STATUS_DRAFT) {
          return absl::FailedPreconditionError("statement is not finalised");
        }
        v1::StatementLine* line = nullptr;
        for (auto& l : *statement->mutable_lines()) {
          if (l.line_id() == r.line_id()) line = &l;
        }
        if (line == nullptr) return absl::NotFoundError(absl::StrCat("line '", r.line_id(), "' not found"));
        ASSIGN_OR_RETURN(std::vector<v1::Dispute> disputes,
                         tx.ListStatementDisputes(statement->statement_id(), kMaxDisputesPerStatement));
        for (const auto& d : disputes) {
          if (d.line_id() == r.line_id() && d.status() == v1::DISPUTE_STATUS_OPEN) {
            return absl::FailedPreconditionError(
                absl::StrCat("line '", r.line_id(), "' already has open dispute ", d.dispute_id()));
          }
        }
        v1::Dispute d;
        d.set_dispute_id(NewId("di"));
        d.set_statement_id(statement->statement_id());
        d.set_line_id(r.line_id());
        d.set_partner_id(statement->partner_id());
        d.set_period_id(statement->period_id());
        d.set_reason(r.reason());
        if (r.has_disputed_amount()) *d.mutable_disputed_amount() = r.disputed_amount();
        d.set_status(v1::DISPUTE_STATUS_OPEN);
        *d.mutable_opened_at() = ToProtoTime(now);
        RETURN_IF_ERROR(tx.InsertDispute(d));
        // Amounts are never edited: only the status and the line's dispute
        // reference change.
        const v1::Statement before = *statement;
        line->set_dispute_id(d.dispute_id());
        statement->set_status(v1::STATEMENT_STATUS_DISPUTED);
        RETURN_IF_ERROR(tx.UpdateStatement(*statement));
        RETURN_IF_ERROR(Audit(tx, p, "DisputeStatementLine", "dispute", d.dispute_id(), nullptr, &d,
                              r.idempotency_key(), r.reason(), now));
        RETURN_IF_ERROR(Audit(tx, p, "DisputeStatementLine", "statement", statement->statement_id(), &before,
                              &*statement, r.idempotency_key(), r.reason(), now));
        *out.mutable_dispute() = std::move(d);
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::ResolveDisputeResponse> Disputes::ResolveDispute(const Principal& p,
                                                                    const v1::ResolveDisputeRequest& r) {
  RETURN_IF_ERROR(ValidateId("dispute_id", r.dispute_id()));
  const bool accepted = r.resolution() == v1::DISPUTE_STATUS_ACCEPTED;
  if (!accepted && r.resolution() != v1::DISPUTE_STATUS_REJECTED) return Invalid("resolution", "ACCEPTED or REJECTED");
  if (accepted && !r.has_adjustment()) return Invalid("adjustment", "required when ACCEPTED");
  if (!accepted && r.has_adjustment()) return Invalid("adjustment", "only when ACCEPTED");
  RETURN_IF_ERROR(ValidateText("resolution_note", r.resolution_note(), 1, 2000));
  const absl::Time now = deps_.Now();
  return Mutate<v1::ResolveDisputeResponse>(
      deps_.store, p, "ResolveDispute", r.idempotency_key(), r,
      [&](SettlementTx& tx, v1::ResolveDisputeResponse& out) -> absl::Status {
        ASSIGN_OR_RETURN(std::optional<v1::Dispute> found, tx.GetDispute(r.dispute_id(), true));
        if (!found.has_value()) return absl::NotFoundError(absl::StrCat("dispute '", r.dispute_id(), "' not found"));
        ASSIGN_OR_RETURN(std::optional<v1::Statement> statement, tx.GetStatement(found->statement_id()));
        if (!statement.has_value()) return absl::InternalError("dispute without its statement");
        if (accepted && r.adjustment().currency() != statement->currency()) {
          return Invalid("adjustment.currency", absl::StrCat("must be the statement currency ", statement->currency()));
        }
        if (found->status() != v1::DISPUTE_STATUS_OPEN) {
          return absl::FailedPreconditionError(
              absl::StrCat("dispute is ", v1::DisputeStatus_Name(found->status()), ", not OPEN"));
        }
        v1::Dispute d = *found;
        d.set_status(r.resolution());
        *d.mutable_resolved_at() = ToProtoTime(now);
        d.set_resolution_note(r.resolution_note());
        if (accepted) {
          // The next open period carries the adjustment.
          ASSIGN_OR_RETURN(std::vector<v1::Period> periods, tx.ListPeriods(kMaxPeriods));
          for (const v1::Period& period : periods) {
            if (period.status() == v1::PERIOD_STATUS_OPEN) {
              d.set_adjustment_period_id(period.period_id());
              break;
            }
          }
          if (d.adjustment_period_id().empty()) {
            return absl::FailedPreconditionError("no open period to carry the adjustment; create one first");
          }
          *d.mutable_adjustment() = r.adjustment();
        }
        RETURN_IF_ERROR(tx.UpdateDispute(d));
        ASSIGN_OR_RETURN(std::vector<v1::Dispute> disputes,
                         tx.ListStatementDisputes(statement->statement_id(), kMaxDisputesPerStatement));
        for (auto& other : disputes) {
          if (other.dispute_id() == d.dispute_id()) other = d;
        }
        const v1::Statement before = *statement;
        statement->set_status(StatusFromDisputes(disputes));
        RETURN_IF_ERROR(tx.UpdateStatement(*statement));
        RETURN_IF_ERROR(Audit(tx, p, "ResolveDispute", "dispute", d.dispute_id(), &*found, &d, r.idempotency_key(),
                              r.resolution_note(), now));
        RETURN_IF_ERROR(Audit(tx, p, "ResolveDispute", "statement", statement->statement_id(), &before, &*statement,
                              r.idempotency_key(), r.resolution_note(), now));
        *out.mutable_dispute() = std::move(d);
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::ListDisputesResponse> Disputes::ListDisputes(const Principal& p,
                                                                const v1::ListDisputesRequest& r) {
  if (!r.partner_id().empty()) RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  if (p.is_partner() && r.partner_id() != p.partner_id) {
    return absl::PermissionDeniedError("partner_id: a partner lists only its own disputes");
  }
  ASSIGN_OR_RETURN(int page_size, paging::PageSize(r.page_size(), 50, 500));
  std::string scope = absl::StrCat("disputes:", r.partner_id(), ":", r.period_id());
  for (int st : r.statuses()) absl::StrAppend(&scope, ",", st);
  int64_t before_id = 0;
  if (!r.page_token().empty()) {
    ASSIGN_OR_RETURN(before_id, paging::DecodePageToken(r.page_token(), scope));
  }
  const std::set<int> statuses(r.statuses().begin(), r.statuses().end());
  v1::ListDisputesResponse out;
  RETURN_IF_ERROR(deps_.store.Run("ListDisputes", [&](SettlementTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(auto rows, tx.ListDisputes(r.partner_id(), before_id, page_size + 1));
    const bool more = static_cast<int>(rows.size()) > page_size;
    if (more) rows.pop_back();
    for (auto& [id, d] : rows) {
      if (!r.period_id().empty() && d.period_id() != r.period_id()) continue;
      if (!statuses.empty() && !statuses.contains(d.status())) continue;
      *out.add_disputes() = std::move(d);
    }
    if (more) out.set_next_page_token(paging::EncodePageToken(scope, rows.back().first));
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace loyalty::settlement
