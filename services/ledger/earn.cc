#include "services/ledger/earn.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "services/ledger/account_names.h"

namespace loyalty::ledger {
namespace {

// ALREADY_EXISTS when the request's receipt was earned before at its partner.
absl::Status CheckReceiptUnused(BatchState& state, const v1::EarnRequest& req) {
  if (req.receipt_reference().empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::string earlier, state.EarnReceipt(req.partner_id(), req.receipt_reference()));
  if (earlier.empty()) return absl::OkStatus();
  return absl::AlreadyExistsError(absl::StrCat("receipt_reference '", req.receipt_reference(),
                                               "' was already earned at partner '", req.partner_id(),
                                               "' as transfer ", earlier));
}

// The computation as this batch decides it: a first-purchase bonus only if
// the member has not earned at the partner before, no bonus without budget.
absl::StatusOr<EarnComputation> DecideBonuses(const CommandContext& context, const v1::EarnRequest& req,
                                              EarnComputation comp) {
  if (HasFirstPurchaseBonus(comp)) {
    ASSIGN_OR_RETURN(bool earned_before, context.state.HasEarnedAt(req.member_id(), req.partner_id()));
    if (earned_before) DropFirstPurchaseBonuses(comp);
  }
  DropUnfundedBonuses(context.rules, comp);
  return comp;
}

LotRow NewEarnLot(const v1::EarnRequest& req, const EarnComputation& comp, absl::Time occurred_at) {
  LotRow lot;
  lot.lot_id = NewId("lot");
  lot.member_id = req.member_id();
  lot.issuer_partner_id = req.partner_id();
  lot.original_points = lot.remaining_points = comp.points;
  lot.earned_at = occurred_at;
  lot.expires_at = comp.expires_at;
  lot.is_new = lot.dirty = true;
  return lot;
}

v1::Transfer NewEarnTransfer(const v1::EarnRequest& req, const EarnComputation& comp, const AccountRow& issuance,
                             const AccountRow& member, const LotRow& lot, absl::Time occurred_at) {
  v1::Transfer t;
  t.set_transfer_id(NewId("tr"));
  t.set_code(v1::TRANSFER_CODE_EARN);
  t.set_debit_account(issuance.account);
  t.set_credit_account(member.account);
  t.set_points(comp.points);
  t.set_partner_id(req.partner_id());
  t.set_member_id(req.member_id());
  t.set_reference(req.receipt_reference());
  *t.mutable_metadata() = req.metadata();
  *t.mutable_occurred_at() = ToProtoTime(occurred_at);
  *t.mutable_earn_breakdown() = comp.breakdown;
  *t.mutable_amount() = req.amount();
  v1::Allocation* a = t.add_allocations();
  a->set_lot_id(lot.lot_id);
  a->set_issuer_partner_id(req.partner_id());
  a->set_points(comp.points);
  return t;
}

// Posts the earn: the transfer, its lot and its receipt; fills `response`.
void PostEarn(BatchState& state, const v1::EarnRequest& req, const EarnComputation& comp, AccountRow& issuance,
              AccountRow& member, v1::EarnResponse& response) {
  const absl::Time occurred_at = req.has_occurred_at() ? FromProtoTime(req.occurred_at()) : state.now();
  LotRow lot = NewEarnLot(req, comp, occurred_at);
  v1::Transfer t = NewEarnTransfer(req, comp, issuance, member, lot, occurred_at);
  lot.source_transfer_id = t.transfer_id();

  Post(issuance, member, comp.points);
  const v1::Transfer& stored = state.Append(std::move(t));
  LotRow* added = state.AddLot(std::move(lot));
  if (!req.receipt_reference().empty()) {
    state.PutEarnReceipt(req.partner_id(), req.receipt_reference(), stored.transfer_id());
  }
  *response.mutable_transfer() = stored;
  LotToProto(*added, response.mutable_lot());
  BalanceToProto(member, stored.sequence(), response.mutable_balance());
}

}  // namespace

absl::StatusOr<v1::EarnResponse> ApplyEarn(const CommandContext& context, const EarnCommand& command) {
  if (!command.computed.has_value()) return absl::InternalError("earn not computed");
  const v1::EarnRequest& req = command.request;
  BatchState& state = context.state;
  RETURN_IF_ERROR(CheckReceiptUnused(state, req));
  if (!command.computed->ok()) return command.computed->status();
  ASSIGN_OR_RETURN(EarnComputation comp, DecideBonuses(context, req, **command.computed));
  ASSIGN_OR_RETURN(AccountRow * member, state.Account(MemberAccount(req.member_id())));
  ASSIGN_OR_RETURN(AccountRow * issuance, state.Account(IssuanceAccount(req.partner_id())));
  if (comp.prepaid_limit_points.has_value()) {
    RETURN_IF_ERROR(CheckPrepaidIssue(req.partner_id(), NetIssued(*issuance), comp.points, *comp.prepaid_limit_points));
  }
  RETURN_IF_ERROR(ReserveBudgets(comp, context.budgets));
  v1::EarnResponse response;
  response.set_points(comp.points);
  *response.mutable_breakdown() = comp.breakdown;
  if (comp.points == 0) {
    BalanceToProto(*member, 0, response.mutable_balance());
    return response;
  }
  PostEarn(state, req, comp, *issuance, *member, response);
  return response;
}

void CollectEarnPrefetchKeys(const EarnCommand& command, PrefetchKeys* keys) {
  const v1::EarnRequest& r = command.request;
  keys->accounts.insert(MemberAccount(r.member_id()));
  keys->accounts.insert(IssuanceAccount(r.partner_id()));
  if (!r.receipt_reference().empty()) keys->receipts[r.partner_id()].insert(r.receipt_reference());
  if (command.computed.has_value() && command.computed->ok() && HasFirstPurchaseBonus(**command.computed)) {
    keys->earn_histories.insert(r.member_id());
  }
}

}  // namespace loyalty::ledger
