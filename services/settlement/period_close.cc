#include "services/settlement/period_close.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "common/idempotency/idempotency.h"
#include "common/paging/page_token.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "common/validation/ids.h"
#include "common/validation/text.h"
#include "services/settlement/settlement_common.h"

namespace loyalty::settlement {
namespace {

constexpr int kMaxClosePages = 1'000'000;

// What each partner's statement is built from: a partner with activity in
// the period, or with a contract in force during it (the fee), and the
// adjustments of accepted disputes that the period carries.
absl::StatusOr<std::map<std::string, StatementInput>> StatementInputs(SettlementTx& tx, const v1::Period& period) {
  ASSIGN_OR_RETURN(std::vector<PointsCount> points, tx.ListPoints(period.period_id()));
  ASSIGN_OR_RETURN(std::vector<MatrixCount> matrix, tx.ListMatrix(period.period_id()));
  std::map<std::string, StatementInput> inputs;
  for (auto& row : points) inputs[row.partner_id].points.push_back(row);
  ASSIGN_OR_RETURN(std::vector<v1::Dispute> adjustments,
                   tx.ListAdjustments(period.period_id(), kMaxStatementsPerPeriod));
  for (auto& d : adjustments) inputs[d.partner_id()].adjustments.push_back(std::move(d));
  const absl::Time end = FromProtoTime(period.end_time());
  std::string after_id;
  for (;;) {
    ASSIGN_OR_RETURN(std::vector<v1::Partner> partners, tx.ListPartners(after_id, 500));
    for (const auto& partner : partners) {
      if (partner.status() == v1::PARTNER_STATUS_TERMINATED && !inputs.contains(partner.partner_id())) continue;
      ASSIGN_OR_RETURN(ContractHistory history, tx.ListContracts(partner.partner_id()));
      const bool in_force = !history.empty() && FromProtoTime(history.front().effective_from()) < end;
      if (in_force || inputs.contains(partner.partner_id())) {
        StatementInput& in = inputs[partner.partner_id()];
        in.partner = partner;
        in.contracts = std::move(history);
      }
    }
    if (partners.size() < 500) break;
    after_id = partners.back().partner_id();
    if (inputs.size() > static_cast<size_t>(kMaxPartners)) {
      return absl::FailedPreconditionError("too many partners for one close");
    }
  }
  for (const auto& m : matrix) {
    if (auto it = inputs.find(m.redeemer_partner_id); it != inputs.end()) it->second.matrix.push_back(m);
    if (m.issuer_partner_id != m.redeemer_partner_id) {
      if (auto it = inputs.find(m.issuer_partner_id); it != inputs.end()) it->second.matrix.push_back(m);
    }
  }
  return inputs;
}

// Builds and inserts the DRAFT statements; returns how many. Inserted in
// reverse partner order, so that newest-first listing shows a period's
// statements by partner_id.
absl::StatusOr<int64_t> InsertStatements(SettlementTx& tx, const v1::Period& period,
                                         std::map<std::string, StatementInput>& inputs, absl::Time now) {
  int64_t created = 0;
  for (auto it = inputs.rbegin(); it != inputs.rend(); ++it) {
    StatementInput& in = it->second;
    if (in.partner.partner_id().empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the journal names partner '", it->first, "', which is not in the directory; create it and retry"));
    }
    in.period = period;
    in.statement_id = NewId("st");
    in.created_at = now;
    ASSIGN_OR_RETURN(v1::Statement statement, BuildStatement(in));
    RETURN_IF_ERROR(tx.InsertStatement(statement));
    ++created;
  }
  return created;
}

}  // namespace

PeriodClose::PeriodClose(const SettlementDeps& deps) : deps_(deps) {}

absl::StatusOr<v1::CreatePeriodResponse> PeriodClose::CreatePeriod(const Principal& p,
                                                                   const v1::CreatePeriodRequest& r) {
  RETURN_IF_ERROR(ValidateText("name", r.name(), 1, 32));
  if (!r.has_start_time()) return Invalid("start_time", "required");
  if (!r.has_end_time()) return Invalid("end_time", "required");
  const absl::Time start = FromProtoTime(r.start_time());
  const absl::Time end = FromProtoTime(r.end_time());
  if (end <= start) return Invalid("end_time", "must be after start_time");
  const absl::Time now = deps_.Now();
  return Mutate<v1::CreatePeriodResponse>(
      deps_.store, p, "CreatePeriod", r.idempotency_key(), r, [&](SettlementTx& tx, v1::CreatePeriodResponse& out) {
        ASSIGN_OR_RETURN(std::vector<v1::Period> periods, tx.ListPeriods(kMaxPeriods));
        for (const v1::Period& other : periods) {
          if (start < FromProtoTime(other.end_time()) && FromProtoTime(other.start_time()) < end) {
            return absl::FailedPreconditionError(absl::StrCat("overlaps period '", other.name(), "'"));
          }
        }
        v1::Period period;
        period.set_period_id(NewId("pe"));
        period.set_name(r.name());
        *period.mutable_start_time() = ToProtoTime(start);
        *period.mutable_end_time() = ToProtoTime(end);
        period.set_status(v1::PERIOD_STATUS_OPEN);
        *period.mutable_created_at() = ToProtoTime(now);
        RETURN_IF_ERROR(tx.InsertPeriod(period));
        RETURN_IF_ERROR(Audit(tx, p, "CreatePeriod", "period", period.period_id(), nullptr, &period,
                              r.idempotency_key(), "", now));
        *out.mutable_period() = std::move(period);
        return absl::OkStatus();
      });
}

absl::Status PeriodClose::StartClose(const Principal& p, const v1::Period& period, int64_t requested_cutoff) {
  const absl::Time now = deps_.Now();
  const absl::Time start = FromProtoTime(period.start_time());
  const absl::Time end = FromProtoTime(period.end_time());
  if (end > now) return absl::FailedPreconditionError("period has not ended yet");
  if (requested_cutoff < 0) return Invalid("cutoff_sequence", "must be >= 0");
  // The previous cut-off: the latest among earlier periods, all closed.
  int64_t previous_cutoff = 0;
  std::string previous_hash;
  RETURN_IF_ERROR(deps_.store.Run("ClosePeriod.previous", [&](SettlementTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<v1::Period> periods, tx.ListPeriods(kMaxPeriods));
    for (const v1::Period& other : periods) {
      if (FromProtoTime(other.start_time()) >= start) continue;
      if (other.status() != v1::PERIOD_STATUS_CLOSED && other.status() != v1::PERIOD_STATUS_FINAL) {
        return absl::FailedPreconditionError(absl::StrCat("earlier period '", other.name(), "' is still open"));
      }
      if (other.cutoff_sequence() >= previous_cutoff) {
        previous_cutoff = other.cutoff_sequence();
        previous_hash = other.end_hash();
      }
    }
    return absl::OkStatus();
  }));
  ASSIGN_OR_RETURN(JournalPage probe, deps_.ledger.ReadJournal(previous_cutoff, 0, 1));
  const int64_t head = probe.head_sequence;
  int64_t cutoff = requested_cutoff;
  if (cutoff != 0 && cutoff < previous_cutoff) {
    return Invalid("cutoff_sequence", absl::StrCat("below the previous period's cut-off ", previous_cutoff));
  }
  if (cutoff > head) return Invalid("cutoff_sequence", absl::StrCat("beyond the ledger head ", head));
  if (cutoff == 0) {
    // The last transfer committed before end_time.
    cutoff = previous_cutoff;
    for (int pages = 0; cutoff < head && pages < kMaxClosePages; ++pages) {
      ASSIGN_OR_RETURN(JournalPage page, deps_.ledger.ReadJournal(cutoff, head, kMaxJournalPageSize));
      if (page.transfers.empty()) break;
      bool past_end = false;
      for (const auto& t : page.transfers) {
        if (FromProtoTime(t.created_at()) >= end) {
          past_end = true;
          break;
        }
        cutoff = t.sequence();
      }
      if (past_end) break;
    }
  }
  return deps_.store.Run("ClosePeriod.start", [&](SettlementTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(v1::Period before, LoadPeriod(tx, period.period_id(), true));
    if (before.status() != v1::PERIOD_STATUS_OPEN) return absl::OkStatus();  // a concurrent close started it
    v1::Period after = before;
    after.set_status(v1::PERIOD_STATUS_CLOSING);
    after.set_first_sequence(previous_cutoff + 1);
    after.set_cutoff_sequence(cutoff);
    after.set_processed_sequence(previous_cutoff);
    after.set_end_hash(previous_hash);
    RETURN_IF_ERROR(tx.UpdatePeriod(after));
    return Audit(tx, p, "ClosePeriod", "period", after.period_id(), &before, &after, "", "close started", now);
  });
}

absl::Status PeriodClose::CountJournal(const Principal& p, const std::string& period_id, int64_t requested_cutoff) {
  std::optional<v1::Period> period;
  RETURN_IF_ERROR(deps_.store.Run("ClosePeriod.load", [&](SettlementTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(period, tx.GetPeriod(period_id, false));
    return absl::OkStatus();
  }));
  if (!period.has_value()) return PeriodNotFound(period_id);
  if (period->status() == v1::PERIOD_STATUS_OPEN) {
    RETURN_IF_ERROR(StartClose(p, *period, requested_cutoff));
  } else if (period->status() != v1::PERIOD_STATUS_CLOSING) {
    return absl::OkStatus();  // the closing transaction answers
  }
  std::map<std::string, ContractHistory> contracts;  // immutable versions, cached for the close
  for (int pages = 0; pages < kMaxClosePages; ++pages) {
    RETURN_IF_ERROR(deps_.store.Run("ClosePeriod.load", [&](SettlementTx& tx) -> absl::Status {
      ASSIGN_OR_RETURN(period, tx.GetPeriod(period_id, false));
      return absl::OkStatus();
    }));
    if (period->status() != v1::PERIOD_STATUS_CLOSING) return absl::OkStatus();
    if (requested_cutoff != 0 && requested_cutoff != period->cutoff_sequence()) {
      return absl::FailedPreconditionError(
          absl::StrCat("a close with cutoff_sequence ", period->cutoff_sequence(), " is in progress"));
    }
    const int64_t after = period->processed_sequence();
    if (after >= period->cutoff_sequence()) return absl::OkStatus();
    const int page_size = std::clamp(deps_.options.close_page_size, 1, kMaxJournalPageSize);
    ASSIGN_OR_RETURN(JournalPage page, deps_.ledger.ReadJournal(after, period->cutoff_sequence(), page_size));
    if (page.transfers.empty() || page.transfers.front().sequence() != after + 1) {
      return absl::InternalError(absl::StrCat("the ledger journal has a gap after sequence ", after));
    }
    std::vector<PointsCount> points;
    std::vector<MatrixCount> matrix;
    RETURN_IF_ERROR(deps_.store.Run("ClosePeriod.page", [&](SettlementTx& tx) -> absl::Status {
      points.clear();
      matrix.clear();
      for (const auto& t : page.transfers) {
        if (!t.partner_id().empty() && !contracts.contains(t.partner_id())) {
          ASSIGN_OR_RETURN(contracts[t.partner_id()], tx.ListContracts(t.partner_id()));
        }
        CountTransfer(t, contracts, points, matrix);
      }
      // The cursor and the counts move together, or not at all.
      ASSIGN_OR_RETURN(v1::Period locked, LoadPeriod(tx, period_id, true));
      if (locked.status() != v1::PERIOD_STATUS_CLOSING || locked.processed_sequence() != after) {
        return absl::OkStatus();  // another close counted this page; re-read
      }
      RETURN_IF_ERROR(tx.AddPoints(period_id, MergePoints(std::move(points))));
      RETURN_IF_ERROR(tx.AddMatrix(period_id, MergeMatrix(std::move(matrix))));
      locked.set_processed_sequence(page.transfers.back().sequence());
      locked.set_end_hash(page.transfers.back().hash());
      return tx.UpdatePeriod(locked);
    }));
  }
  return absl::InternalError("close did not finish within its page bound");
}

absl::StatusOr<v1::ClosePeriodResponse> PeriodClose::ClosePeriod(const Principal& p, const v1::ClosePeriodRequest& r) {
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  RETURN_IF_ERROR(ValidateId("period_id", r.period_id()));
  if (r.cutoff_sequence() < 0) return Invalid("cutoff_sequence", "must be >= 0");
  // Counting is idempotent by the period's own cursor, so it runs before the
  // key is claimed; transient failures (ledger down) return at once and a
  // retry resumes. A business refusal is remembered under the key.
  absl::Status counted = CountJournal(p, r.period_id(), r.cutoff_sequence());
  if (!counted.ok() && !idempotency::ShouldRemember(counted)) return counted;
  const absl::Time now = deps_.Now();
  return Mutate<v1::ClosePeriodResponse>(
      deps_.store, p, "ClosePeriod", r.idempotency_key(), r,
      [&](SettlementTx& tx, v1::ClosePeriodResponse& out) -> absl::Status {
        RETURN_IF_ERROR(counted);
        ASSIGN_OR_RETURN(v1::Period before, LoadPeriod(tx, r.period_id(), true));
        if (before.status() != v1::PERIOD_STATUS_CLOSING) {
          return absl::FailedPreconditionError(
              absl::StrCat("period is ", v1::PeriodStatus_Name(before.status()), ", not closable"));
        }
        if (before.processed_sequence() != before.cutoff_sequence()) {
          return absl::AbortedError("close still counting; retry");
        }
        ASSIGN_OR_RETURN(auto inputs, StatementInputs(tx, before));
        ASSIGN_OR_RETURN(int64_t created, InsertStatements(tx, before, inputs, now));
        v1::Period after = before;
        after.set_status(v1::PERIOD_STATUS_CLOSED);
        *after.mutable_closed_at() = ToProtoTime(now);
        RETURN_IF_ERROR(tx.UpdatePeriod(after));
        RETURN_IF_ERROR(Audit(tx, p, "ClosePeriod", "period", after.period_id(), &before, &after,
                              r.idempotency_key(), "", now));
        *out.mutable_period() = after;
        out.set_statements_created(created);
        out.set_transfers_processed(std::max<int64_t>(0, after.cutoff_sequence() - after.first_sequence() + 1));
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::FinalizePeriodResponse> PeriodClose::FinalizePeriod(const Principal& p,
                                                                       const v1::FinalizePeriodRequest& r) {
  RETURN_IF_ERROR(ValidateId("period_id", r.period_id()));
  const absl::Time now = deps_.Now();
  return Mutate<v1::FinalizePeriodResponse>(
      deps_.store, p, "FinalizePeriod", r.idempotency_key(), r, [&](SettlementTx& tx, v1::FinalizePeriodResponse& out) {
        ASSIGN_OR_RETURN(v1::Period before, LoadPeriod(tx, r.period_id(), true));
        if (before.status() != v1::PERIOD_STATUS_CLOSED) {
          return absl::FailedPreconditionError(
              absl::StrCat("period is ", v1::PeriodStatus_Name(before.status()), ", not CLOSED"));
        }
        ASSIGN_OR_RETURN(std::vector<v1::Statement> statements, PeriodStatements(tx, r.period_id()));
        for (v1::Statement& s : statements) {
          s.set_status(v1::STATEMENT_STATUS_FINAL);
          *s.mutable_issued_at() = ToProtoTime(now);
          RETURN_IF_ERROR(tx.UpdateStatement(s));
        }
        v1::Period after = before;
        after.set_status(v1::PERIOD_STATUS_FINAL);
        *after.mutable_finalized_at() = ToProtoTime(now);
        RETURN_IF_ERROR(tx.UpdatePeriod(after));
        RETURN_IF_ERROR(Audit(tx, p, "FinalizePeriod", "period", after.period_id(), &before, &after,
                              r.idempotency_key(), "", now));
        *out.mutable_period() = std::move(after);
        out.set_statements_finalized(static_cast<int64_t>(statements.size()));
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::GetPeriodResponse> PeriodClose::GetPeriod(const Principal& /*p*/, const v1::GetPeriodRequest& r) {
  v1::GetPeriodResponse out;
  RETURN_IF_ERROR(deps_.store.Run("GetPeriod", [&](SettlementTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(*out.mutable_period(), LoadPeriod(tx, r.period_id(), false));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::ListPeriodsResponse> PeriodClose::ListPeriods(const Principal& /*p*/,
                                                                 const v1::ListPeriodsRequest& r) {
  ASSIGN_OR_RETURN(int page_size, paging::PageSize(r.page_size(), 50, 500));
  std::string scope = "periods";
  for (int s : r.statuses()) absl::StrAppend(&scope, ",", s);
  int64_t skip = 0;
  if (!r.page_token().empty()) {
    ASSIGN_OR_RETURN(skip, paging::DecodePageToken(r.page_token(), scope));
  }
  const std::set<int> statuses(r.statuses().begin(), r.statuses().end());
  v1::ListPeriodsResponse out;
  RETURN_IF_ERROR(deps_.store.Run("ListPeriods", [&](SettlementTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(std::vector<v1::Period> periods, tx.ListPeriods(kMaxPeriods));
    std::reverse(periods.begin(), periods.end());  // newest start first
    std::vector<v1::Period> matching;
    for (auto& period : periods) {
      if (statuses.empty() || statuses.contains(period.status())) matching.push_back(std::move(period));
    }
    int64_t i = skip;
    for (; i < static_cast<int64_t>(matching.size()) && out.periods_size() < page_size; ++i) {
      *out.add_periods() = matching[i];
    }
    if (i < static_cast<int64_t>(matching.size())) out.set_next_page_token(paging::EncodePageToken(scope, i));
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace loyalty::settlement
