#include "services/settlement/prepaid.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>

#include "common/log/log.h"
#include "common/paging/page_token.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "common/validation/ids.h"
#include "common/validation/text.h"
#include "services/settlement/settlement_common.h"

namespace loyalty::settlement {
namespace {

namespace lv1 = ::loyalty::ledger::v1;

constexpr int kRecentBlocks = 20;

// The prepaid low-balance threshold of the version in force at `now` (0 if
// it is not prepaid).
int64_t ThresholdAt(const ContractHistory& history, absl::Time now) {
  const v1::Contract* c = ContractAt(history, now);
  if (c == nullptr || c->funding_model() != v1::FUNDING_MODEL_PREPAID) return 0;
  return c->prepaid_low_balance_threshold_points();
}

v1::PrepaidBalance BalanceOf(const PrepaidRow& row, int64_t threshold, int64_t as_of_sequence) {
  v1::PrepaidBalance b;
  b.set_partner_id(row.partner_id);
  b.set_purchased_points(row.purchased_points);
  b.set_issued_points(row.issued_points);
  b.set_remaining_points(row.purchased_points - row.issued_points);
  b.set_low_balance_threshold_points(threshold);
  b.set_as_of_sequence(as_of_sequence);
  return b;
}

// Sets row.alert_level from the balance; when it rises, stores an alert and
// adds it to `raised` (logged once the transaction committed). A purchase
// lowers the level without an alert.
absl::Status UpdateAlertLevel(SettlementTx& tx, PrepaidRow& row, int64_t threshold, absl::Time now,
                              std::vector<v1::Alert>* raised) {
  const int64_t remaining = row.purchased_points - row.issued_points;
  const int level = remaining <= 0 ? 2 : (threshold > 0 && remaining < threshold ? 1 : 0);
  const int previous = row.alert_level;
  row.alert_level = level;
  if (level <= previous) return absl::OkStatus();
  v1::Alert a;
  a.set_alert_id(NewId("al"));
  a.set_partner_id(row.partner_id);
  a.set_kind(level == 2 ? v1::ALERT_KIND_PREPAID_EXHAUSTED : v1::ALERT_KIND_PREPAID_LOW_BALANCE);
  a.set_message(level == 2 ? absl::StrCat("prepaid points exhausted: ", remaining, " remaining")
                           : absl::StrCat("prepaid balance low: ", remaining, " points remaining, threshold ",
                                          threshold));
  *a.mutable_created_at() = ToProtoTime(now);
  a.set_remaining_points(remaining);
  a.set_threshold_points(threshold);
  RETURN_IF_ERROR(tx.InsertAlert(a));
  raised->push_back(std::move(a));
  return absl::OkStatus();
}

void LogAlert(const v1::Alert& a) {
  log::Warn("prepaid_alert", {{"partner_id", a.partner_id()},
                              {"kind", v1::AlertKind_Name(a.kind())},
                              {"remaining_points", a.remaining_points()},
                              {"threshold_points", a.threshold_points()}});
}

}  // namespace

// Net prepaid issuance per partner of a page of transfers: issued minus
// reversed points priced under a PREPAID contract version.
std::map<std::string, int64_t> PrepaidIssuance(const std::vector<lv1::Transfer>& transfers,
                                               const std::map<std::string, ContractHistory>& contracts) {
  std::vector<PointsCount> points;
  std::vector<MatrixCount> matrix;
  for (const auto& t : transfers) CountTransfer(t, contracts, points, matrix);
  std::map<std::string, int64_t> out;
  for (const PointsCount& row : points) {
    if (row.line_type != v1::STATEMENT_LINE_TYPE_ISSUED && row.line_type != v1::STATEMENT_LINE_TYPE_ISSUE_REVERSED) {
      continue;
    }
    auto it = contracts.find(row.partner_id);
    if (it == contracts.end()) continue;
    bool prepaid = false;
    for (const auto& c : it->second) {
      if (c.contract_id() == row.contract_id) prepaid = c.funding_model() == v1::FUNDING_MODEL_PREPAID;
    }
    if (!prepaid) continue;
    out[row.partner_id] += row.line_type == v1::STATEMENT_LINE_TYPE_ISSUED ? row.points : -row.points;
  }
  return out;
}


Prepaid::Prepaid(const SettlementDeps& deps) : deps_(deps) {}

absl::StatusOr<v1::PurchasePointBlockResponse> Prepaid::PurchasePointBlock(const Principal& p,
                                                                           const v1::PurchasePointBlockRequest& r) {
  RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  if (r.points() <= 0) return Invalid("points", "must be > 0");
  if (r.price().amount_minor() < 0) return Invalid("price.amount_minor", "must be >= 0");
  RETURN_IF_ERROR(ValidateText("reference", r.reference(), 0, 64));
  const absl::Time now = deps_.Now();
  return Mutate<v1::PurchasePointBlockResponse>(
      deps_.store, p, "PurchasePointBlock", r.idempotency_key(), r,
      [&](SettlementTx& tx, v1::PurchasePointBlockResponse& out) -> absl::Status {
        ASSIGN_OR_RETURN(v1::Partner partner, LoadPartner(tx, r.partner_id(), true));
        if (r.price().currency() != partner.settlement_currency()) {
          return Invalid("price.currency", absl::StrCat("must be the partner's settlement currency ",
                                                        partner.settlement_currency()));
        }
        if (partner.status() == v1::PARTNER_STATUS_TERMINATED) {
          return absl::FailedPreconditionError("partner is terminated");
        }
        ASSIGN_OR_RETURN(ContractHistory history, tx.ListContracts(r.partner_id()));
        const v1::Contract* in_force = ContractAt(history, now);
        if (in_force == nullptr || FromProtoTime(in_force->effective_from()) > now ||
            in_force->funding_model() != v1::FUNDING_MODEL_PREPAID) {
          return absl::FailedPreconditionError("the contract in force is not prepaid");
        }
        v1::PointBlock block;
        block.set_point_block_id(NewId("pb"));
        block.set_partner_id(r.partner_id());
        block.set_points(r.points());
        *block.mutable_price() = r.price();
        *block.mutable_purchased_at() = ToProtoTime(now);
        block.set_reference(r.reference());
        ASSIGN_OR_RETURN(std::optional<PrepaidRow> row, tx.GetPrepaid(r.partner_id(), true));
        PrepaidRow next = row.value_or(PrepaidRow{r.partner_id(), 0, 0, 0});
        next.purchased_points += r.points();
        const int64_t threshold = ThresholdAt(history, now);
        std::vector<v1::Alert> none;  // a purchase raises no alert
        RETURN_IF_ERROR(UpdateAlertLevel(tx, next, threshold, now, &none));
        RETURN_IF_ERROR(tx.PutPrepaid(next));
        RETURN_IF_ERROR(tx.InsertPointBlock(block));
        RETURN_IF_ERROR(tx.TouchPartner(r.partner_id()));
        RETURN_IF_ERROR(Audit(tx, p, "PurchasePointBlock", "point_block", block.point_block_id(), nullptr, &block,
                              r.idempotency_key(), "", now));
        ASSIGN_OR_RETURN(int64_t as_of, tx.GetCursor(kPrepaidCursor, false));
        *out.mutable_point_block() = std::move(block);
        *out.mutable_balance() = BalanceOf(next, threshold, as_of);
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::GetPrepaidBalanceResponse> Prepaid::GetPrepaidBalance(const Principal& p,
                                                                         const v1::GetPrepaidBalanceRequest& r) {
  RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  RETURN_IF_ERROR(OwnPartnerOnly(p, r.partner_id(), "prepaid balance"));
  const absl::Time now = deps_.Now();
  v1::GetPrepaidBalanceResponse out;
  RETURN_IF_ERROR(deps_.store.Run("GetPrepaidBalance", [&](SettlementTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(v1::Partner partner, LoadPartner(tx, r.partner_id(), false));
    ASSIGN_OR_RETURN(ContractHistory history, tx.ListContracts(r.partner_id()));
    ASSIGN_OR_RETURN(std::optional<PrepaidRow> row, tx.GetPrepaid(r.partner_id(), false));
    const int64_t threshold = ThresholdAt(history, now);
    if (!row.has_value()) {
      const v1::Contract* c = ContractAt(history, now);
      if (c == nullptr || c->funding_model() != v1::FUNDING_MODEL_PREPAID) {
        return absl::FailedPreconditionError("partner is postpaid and never bought a block");
      }
      row = PrepaidRow{partner.partner_id(), 0, 0, 0};
    }
    ASSIGN_OR_RETURN(int64_t as_of, tx.GetCursor(kPrepaidCursor, false));
    *out.mutable_balance() = BalanceOf(*row, threshold, as_of);
    ASSIGN_OR_RETURN(std::vector<v1::PointBlock> blocks, tx.ListPointBlocks(r.partner_id(), kRecentBlocks));
    for (auto& b : blocks) *out.add_recent_blocks() = std::move(b);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::ListAlertsResponse> Prepaid::ListAlerts(const Principal& p, const v1::ListAlertsRequest& r) {
  if (!r.partner_id().empty()) RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  if (p.is_partner() && r.partner_id() != p.partner_id) {
    return absl::PermissionDeniedError("partner_id: a partner lists only its own alerts");
  }
  ASSIGN_OR_RETURN(int page_size, paging::PageSize(r.page_size(), 50, 500));
  std::string scope = absl::StrCat("alerts:", r.partner_id(), ":", r.start_time().seconds());
  for (int k : r.kinds()) absl::StrAppend(&scope, ",", k);
  int64_t before_id = 0;
  if (!r.page_token().empty()) {
    ASSIGN_OR_RETURN(before_id, paging::DecodePageToken(r.page_token(), scope));
  }
  const std::set<int> kinds(r.kinds().begin(), r.kinds().end());
  v1::ListAlertsResponse out;
  RETURN_IF_ERROR(deps_.store.Run("ListAlerts", [&](SettlementTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(auto rows, tx.ListAlerts(r.partner_id(), before_id, page_size + 1));
    const bool more = static_cast<int>(rows.size()) > page_size;
    if (more) rows.pop_back();
    for (auto& [id, a] : rows) {
      if (!kinds.empty() && !kinds.contains(a.kind())) continue;
      if (r.has_start_time() && FromProtoTime(a.created_at()) < FromProtoTime(r.start_time())) continue;
      *out.add_alerts() = std::move(a);
    }
    if (more) out.set_next_page_token(paging::EncodePageToken(scope, rows.back().first));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<int> Prepaid::FollowJournal(int page_size) {
  int64_t after = 0;
  RETURN_IF_ERROR(deps_.store.Run("FollowJournal.cursor", [&](SettlementTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(after, tx.GetCursor(kPrepaidCursor, false));
    return absl::OkStatus();
  }));
  ASSIGN_OR_RETURN(JournalPage page, deps_.ledger.ReadJournal(after, 0, std::clamp(page_size, 1, kMaxJournalPageSize)));
  if (page.transfers.empty()) return 0;
  if (page.transfers.front().sequence() != after + 1) {
    return absl::InternalError(absl::StrCat("the ledger journal has a gap after sequence ", after));
  }
  const absl::Time now = deps_.Now();
  int consumed = 0;
  std::vector<v1::Alert> raised;
  RETURN_IF_ERROR(deps_.store.Run("FollowJournal", [&](SettlementTx& tx) -> absl::Status {
    consumed = 0;
    raised.clear();
    ASSIGN_OR_RETURN(int64_t position, tx.GetCursor(kPrepaidCursor, true));
    if (position != after) return absl::OkStatus();  // another replica applied this page
    std::map<std::string, ContractHistory> contracts;
    for (const auto& t : page.transfers) {
      if (!t.partner_id().empty() && !contracts.contains(t.partner_id())) {
        ASSIGN_OR_RETURN(contracts[t.partner_id()], tx.ListContracts(t.partner_id()));
      }
    }
    for (const auto& [partner_id, delta] : PrepaidIssuance(page.transfers, contracts)) {
      if (delta == 0) continue;
      ASSIGN_OR_RETURN(std::optional<PrepaidRow> row, tx.GetPrepaid(partner_id, true));
      PrepaidRow next = row.value_or(PrepaidRow{partner_id, 0, 0, 0});
      next.issued_points += delta;
      RETURN_IF_ERROR(UpdateAlertLevel(tx, next, ThresholdAt(contracts[partner_id], now), now, &raised));
      RETURN_IF_ERROR(tx.PutPrepaid(next));
      RETURN_IF_ERROR(tx.TouchPartner(partner_id));
    }
    RETURN_IF_ERROR(tx.SetCursor(kPrepaidCursor, page.transfers.back().sequence(), now));
    consumed = static_cast<int>(page.transfers.size());
    return absl::OkStatus();
  }));
  for (const v1::Alert& a : raised) LogAlert(a);  // only alerts that were committed
  return consumed;
}

}  // namespace loyalty::settlement
