#include "services/settlement/reconciliation.h"

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "services/settlement/prepaid.h"
#include "services/settlement/settlement_common.h"

namespace loyalty::settlement {
namespace {

namespace lv1 = ::loyalty::ledger::v1;

constexpr int kMaxPrepaidPartners = 10'000;
constexpr int kMaxBlocksPerPartner = 100'000;

v1::ReconciliationMismatch* AddMismatch(v1::ReconcileResponse& out, v1::ReconciliationCheck check) {
  v1::ReconciliationMismatch* m = out.add_mismatches();
  m->set_check(check);
  return m;
}

// Reports a check: its items, and the mismatches added since `before`.
void AddResult(v1::ReconcileResponse& out, v1::ReconciliationCheck check, int64_t items, int before) {
  v1::ReconciliationCheckResult* c = out.add_checks();
  c->set_check(check);
  c->set_items_checked(items);
  c->set_mismatch_count(out.mismatches_size() - before);
}

// Points per (partner, transfer code) that the statements count.
std::map<std::pair<std::string, int>, int64_t> StatementPoints(const std::vector<v1::Statement>& statements) {
  std::map<std::pair<std::string, int>, int64_t> expected;
  for (const auto& s : statements) {
    for (const auto& l : s.lines()) {
      if (l.transfer_code() != lv1::TRANSFER_CODE_UNSPECIFIED) {
        expected[{s.partner_id(), l.transfer_code()}] += l.points();
      }
    }
  }
  return expected;
}

}  // namespace

Reconciliation::Reconciliation(const SettlementDeps& deps) : deps_(deps) {}

absl::StatusOr<v1::ReconcileResponse> Reconciliation::Reconcile(const Principal& /*p*/, const v1::ReconcileRequest& r) {
  v1::Period period;
  std::vector<v1::Statement> statements;
  RETURN_IF_ERROR(deps_.store.Run("Reconcile", [&](SettlementTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(period, LoadPeriod(tx, r.period_id(), false));
    if (period.status() != v1::PERIOD_STATUS_CLOSED && period.status() != v1::PERIOD_STATUS_FINAL) {
      return absl::FailedPreconditionError("period is not CLOSED or FINAL");
    }
    ASSIGN_OR_RETURN(statements, PeriodStatements(tx, r.period_id()));
    return absl::OkStatus();
  }));
  v1::ReconcileResponse out;
  out.set_period_id(period.period_id());
  *out.mutable_generated_at() = ToProtoTime(deps_.Now());
  out.set_first_sequence(period.first_sequence());
  out.set_last_sequence(period.cutoff_sequence());
  RETURN_IF_ERROR(CheckStatementTotals(period, statements, out));
  RETURN_IF_ERROR(CheckHashChain(period, out));
  RETURN_IF_ERROR(CheckPrepaidBlocks(out));
  RETURN_IF_ERROR(CheckPointsLiability(out));
  if (out.mismatches_size() > 0) RETURN_IF_ERROR(RaiseMismatchAlert(period, out));
  return out;
}

// 1. Statement totals against the ledger's transfers in the range, per
//    partner and transfer code (points; every priced line comes from them).
absl::Status Reconciliation::CheckStatementTotals(const v1::Period& period,
                                                  const std::vector<v1::Statement>& statements,
                                                  v1::ReconcileResponse& out) {
  const int before = out.mismatches_size();
  std::map<std::pair<std::string, int>, int64_t> expected = StatementPoints(statements), actual;
  const std::map<std::string, ContractHistory> no_contracts;  // pricing is not compared here
  int64_t after = period.first_sequence() - 1;
  while (after < period.cutoff_sequence()) {
    ASSIGN_OR_RETURN(JournalPage page,
                     deps_.ledger.ReadJournal(after, period.cutoff_sequence(), kMaxJournalPageSize));
    if (page.transfers.empty()) return absl::InternalError("the ledger journal ended before the cut-off");
    std::vector<PointsCount> points;
    std::vector<MatrixCount> matrix;
    for (const auto& t : page.transfers) CountTransfer(t, no_contracts, points, matrix);
    for (const auto& row : points) actual[{row.partner_id, row.transfer_code}] += row.points;
    after = page.transfers.back().sequence();
  }
  std::set<std::pair<std::string, int>> keys;
  for (const auto& [k, v] : expected) keys.insert(k);
  for (const auto& [k, v] : actual) keys.insert(k);
  for (const auto& key : keys) {
    const int64_t want = expected[key], got = actual[key];
    if (want == got) continue;
    v1::ReconciliationMismatch* m = AddMismatch(out, v1::RECONCILIATION_CHECK_STATEMENT_TOTALS);
    m->set_partner_id(key.first);
    m->set_transfer_code(static_cast<lv1::TransferCode>(key.second));
    m->set_expected_points(want);
    m->set_actual_points(got);
    m->set_difference_points(got - want);
    m->set_detail(absl::StrCat("statement counts ", want, " points of ",
                               lv1::TransferCode_Name(static_cast<lv1::TransferCode>(key.second)), " for '",
                               key.first, "'; the ledger has ", got));
  }
  AddResult(out, v1::RECONCILIATION_CHECK_STATEMENT_TOTALS, static_cast<int64_t>(keys.size()), before);
  return absl::OkStatus();
}

// 2. The hash chain over the range, ending at the statements' end hash.
absl::Status Reconciliation::CheckHashChain(const v1::Period& period, v1::ReconcileResponse& out) {
  const int before = out.mismatches_size();
  int64_t items = 0;
  if (period.cutoff_sequence() >= period.first_sequence()) {
    items = period.cutoff_sequence() - period.first_sequence() + 1;
    ASSIGN_OR_RETURN(lv1::VerifyChainResponse chain,
                     deps_.ledger.VerifyChain(period.first_sequence(), period.cutoff_sequence()));
    if (chain.first_bad_sequence() != 0) {
      v1::ReconciliationMismatch* m = AddMismatch(out, v1::RECONCILIATION_CHECK_HASH_CHAIN);
      m->set_sequence(chain.first_bad_sequence());
      m->set_detail(absl::StrCat("chain breaks at sequence ", chain.first_bad_sequence(), ": ", chain.detail()));
    } else if (chain.last_hash() != period.end_hash()) {
      v1::ReconciliationMismatch* m = AddMismatch(out, v1::RECONCILIATION_CHECK_HASH_CHAIN);
      m->set_sequence(period.cutoff_sequence());
      m->set_detail(absl::StrCat("hash at the cut-off is ", chain.last_hash(), ", the statements name ",
                                 period.end_hash()));
    }
  }
  AddResult(out, v1::RECONCILIATION_CHECK_HASH_CHAIN, items, before);
  return absl::OkStatus();
}

absl::StatusOr<Reconciliation::PrepaidState> Reconciliation::LoadPrepaidState() {
  PrepaidState state;
  RETURN_IF_ERROR(deps_.store.Run("Reconcile.prepaid", [&](SettlementTx& tx) -> absl::Status {
    state.blocks.clear();
    state.contracts.clear();
    ASSIGN_OR_RETURN(state.rows, tx.ListPrepaid(kMaxPrepaidPartners));
    ASSIGN_OR_RETURN(state.as_of, tx.GetCursor(kPrepaidCursor, false));
    for (const auto& row : state.rows) {
      ASSIGN_OR_RETURN(std::vector<v1::PointBlock> list, tx.ListPointBlocks(row.partner_id, kMaxBlocksPerPartner));
      for (const auto& b : list) state.blocks[row.partner_id] += b.points();
    }
    ASSIGN_OR_RETURN(std::vector<v1::Partner> partners, tx.ListPartners("", kMaxPartners));
    for (const auto& partner : partners) {
      ASSIGN_OR_RETURN(state.contracts[partner.partner_id()], tx.ListContracts(partner.partner_id()));
    }
    return absl::OkStatus();
  }));
  return state;
}

// 3. Prepaid blocks: each balance's purchases equal its blocks, and its
//    issuance equals the ledger's, recounted from the start of the journal
//    up to the follower's cursor.
absl::Status Reconciliation::CheckPrepaidBlocks(v1::ReconcileResponse& out) {
  const int before = out.mismatches_size();
  ASSIGN_OR_RETURN(PrepaidState state, LoadPrepaidState());
  std::map<std::string, int64_t> issued;
  for (int64_t after = 0; after < state.as_of;) {
    ASSIGN_OR_RETURN(JournalPage page, deps_.ledger.ReadJournal(after, state.as_of, kMaxJournalPageSize));
    if (page.transfers.empty()) return absl::InternalError("the ledger journal ended before the prepaid cursor");
    for (const auto& [partner_id, delta] : PrepaidIssuance(page.transfers, state.contracts)) {
      issued[partner_id] += delta;
    }
    after = page.transfers.back().sequence();
  }
  for (const auto& row : state.rows) {
    const std::pair<int64_t, int64_t> pairs[] = {{row.purchased_points, state.blocks[row.partner_id]},
                                                 {row.issued_points, issued[row.partner_id]}};
    for (int i = 0; i < 2; ++i) {
      if (pairs[i].first == pairs[i].second) continue;
      v1::ReconciliationMismatch* m = AddMismatch(out, v1::RECONCILIATION_CHECK_PREPAID_BLOCKS);
      m->set_partner_id(row.partner_id);
      m->set_expected_points(pairs[i].first);
      m->set_actual_points(pairs[i].second);
      m->set_difference_points(pairs[i].second - pairs[i].first);
      m->set_sequence(state.as_of);
      m->set_detail(i == 0 ? "purchased points differ from the sum of the blocks"
                           : "issued points differ from the ledger's prepaid issuance");
    }
  }
  AddResult(out, v1::RECONCILIATION_CHECK_PREPAID_BLOCKS, static_cast<int64_t>(state.rows.size()), before);
  return absl::OkStatus();
}

// 4. Points liability: member balances = open lots = the issuers' sum.
//    The ledger answers as of its head, not as of the cut-off.
absl::Status Reconciliation::CheckPointsLiability(v1::ReconcileResponse& out) {
  const int before = out.mismatches_size();
  ASSIGN_OR_RETURN(lv1::GetPointsLiabilityResponse liability, deps_.ledger.GetPointsLiability());
  int64_t by_issuer = 0;
  for (const auto& i : liability.issuers()) by_issuer += i.outstanding_points();
  if (liability.member_balance_points() != liability.lot_remaining_points()) {
    v1::ReconciliationMismatch* m = AddMismatch(out, v1::RECONCILIATION_CHECK_POINTS_LIABILITY);
    m->set_expected_points(liability.member_balance_points());
    m->set_actual_points(liability.lot_remaining_points());
    m->set_difference_points(liability.lot_remaining_points() - liability.member_balance_points());
    m->set_detail("open lots do not add up to member balances");
  }
  if (by_issuer != liability.lot_remaining_points()) {
    v1::ReconciliationMismatch* m = AddMismatch(out, v1::RECONCILIATION_CHECK_POINTS_LIABILITY);
    m->set_expected_points(liability.lot_remaining_points());
    m->set_actual_points(by_issuer);
    m->set_difference_points(by_issuer - liability.lot_remaining_points());
    m->set_detail("issuer attribution does not add up to open lots");
  }
  AddResult(out, v1::RECONCILIATION_CHECK_POINTS_LIABILITY, liability.issuers_size() + 1, before);
  return absl::OkStatus();
}

absl::Status Reconciliation::RaiseMismatchAlert(const v1::Period& period, const v1::ReconcileResponse& out) {
  log::Warn("reconciliation_mismatch", {{"period_id", period.period_id()}, {"mismatches", out.mismatches_size()}});
  v1::Alert alert;
  alert.set_alert_id(NewId("al"));
  alert.set_kind(v1::ALERT_KIND_RECONCILIATION_MISMATCH);
  alert.set_period_id(period.period_id());
  alert.set_message(absl::StrCat("reconciliation of period '", period.name(), "' found ", out.mismatches_size(),
                                 " mismatches"));
  *alert.mutable_created_at() = out.generated_at();
  return deps_.store.Run("Reconcile.alert", [&](SettlementTx& tx) { return tx.InsertAlert(alert); });
}

}  // namespace loyalty::settlement
