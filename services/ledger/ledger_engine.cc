#include "services/ledger/ledger_engine.h"

#include <algorithm>

#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/idempotency/idempotency.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "common/validation/enums.h"
#include "common/validation/text.h"

namespace loyalty::ledger {
namespace {

absl::Status ValidatePoints(absl::string_view field, int64_t points) {
  if (points <= 0) return absl::InvalidArgumentError(absl::StrCat(field, ": must be positive"));
  if (points > kMaxPointsPerTransfer) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": at most ", kMaxPointsPerTransfer));
  }
  return absl::OkStatus();
}

absl::Status NotEnoughPoints(int64_t available, int64_t requested) {
  return absl::FailedPreconditionError(absl::StrCat(
      "not enough points: available ", available, ", requested ", requested));
}

// Moves posted points: debit `from`, credit `to`.
void Post(AccountRow& from, AccountRow& to, int64_t points) {
  from.debits_posted += points;
  to.credits_posted += points;
  from.dirty = to.dirty = true;
}

// Takes `points` from the member's lots, earliest expiry first, and records
// the allocations on `transfer`.
// REQUIRES: the lots hold at least `points` (the member's posted balance).
absl::Status ConsumeLots(BatchState& state, const std::string& member_id, int64_t points,
                         v1::Transfer& transfer) {
  ASSIGN_OR_RETURN(std::vector<LotRow*> lots, state.OpenLots(member_id));
  int64_t left = points;
  for (LotRow* lot : lots) {
    if (left == 0) break;
    const int64_t take = std::min(left, lot->remaining_points);
    if (take <= 0) continue;
    lot->remaining_points -= take;
    lot->dirty = true;
    left -= take;
    v1::Allocation* a = transfer.add_allocations();
    a->set_lot_id(lot->lot_id);
    a->set_issuer_partner_id(lot->issuer_partner_id);
    a->set_points(take);
  }
  if (left != 0) {
    // The lots always add up to the posted balance; this is a broken
    // invariant, not a business refusal, so the whole batch fails.
    return absl::InternalError(absl::StrCat("lots of member ", member_id, " are short by ", left,
                                            " points"));
  }
  return absl::OkStatus();
}

// Sum of the member's open lots (for checks before consuming).
absl::StatusOr<int64_t> LotsTotal(BatchState& state, const std::string& member_id) {
  ASSIGN_OR_RETURN(std::vector<LotRow*> lots, state.OpenLots(member_id));
  int64_t total = 0;
  for (const LotRow* lot : lots) total += lot->remaining_points;
  return total;
}

template <typename Response>
std::unique_ptr<google::protobuf::Message> Wrap(Response response) {
  return std::make_unique<Response>(std::move(response));
}

using Outcome = absl::StatusOr<std::unique_ptr<google::protobuf::Message>>;

// ---- Earn -------------------------------------------------------------

// Issuance accounts are debited by earns and partner-funded credits, and
// credited by returns: their net debit is what the partner has issued.
int64_t NetIssued(const AccountRow& issuance) { return issuance.debits_posted - issuance.credits_posted; }

// A partner-funded credit (bonus, adjustment) counts against a prepaid
// partner's blocks like an earn.
absl::Status CheckFundedCredit(BatchState& state, const RulesSnapshot& rules, const std::string& funding_partner_id,
                               const AccountRow& from, int64_t points) {
  if (funding_partner_id.empty()) return absl::OkStatus();
  const std::optional<int64_t> limit = PrepaidLimit(rules, funding_partner_id, state.now());
  if (!limit.has_value()) return absl::OkStatus();
  return CheckPrepaidIssue(funding_partner_id, NetIssued(from), points, *limit);
}

Outcome DoEarn(BatchState& state, const RulesSnapshot& rules, BudgetReservations& budgets,
               const v1::EarnRequest& req, const absl::StatusOr<EarnComputation>& computed) {
  if (!req.receipt_reference().empty()) {
    ASSIGN_OR_RETURN(std::string earlier, state.EarnReceipt(req.partner_id(), req.receipt_reference()));
    if (!earlier.empty()) {
      return absl::AlreadyExistsError(absl::StrCat("receipt_reference '", req.receipt_reference(),
                                                   "' was already earned at partner '",
                                                   req.partner_id(), "' as transfer ", earlier));
    }
  }
  if (!computed.ok()) return computed.status();
  EarnComputation comp = *computed;
  if (HasFirstPurchaseBonus(comp)) {
    ASSIGN_OR_RETURN(bool earned_before, state.HasEarnedAt(req.member_id(), req.partner_id()));
    if (earned_before) DropFirstPurchaseBonuses(comp);
  }
  DropUnfundedBonuses(rules, comp);
  ASSIGN_OR_RETURN(AccountRow * member, state.Account(MemberAccount(req.member_id())));
  ASSIGN_OR_RETURN(AccountRow * issuance, state.Account(IssuanceAccount(req.partner_id())));
  if (comp.prepaid_limit_points.has_value()) {
    RETURN_IF_ERROR(CheckPrepaidIssue(req.partner_id(), NetIssued(*issuance), comp.points, *comp.prepaid_limit_points));
  }
  RETURN_IF_ERROR(ReserveBudgets(comp, budgets));
  v1::EarnResponse response;
  response.set_points(comp.points);
  *response.mutable_breakdown() = comp.breakdown;
  if (comp.points == 0) {
    BalanceToProto(*member, 0, response.mutable_balance());
    return Wrap(std::move(response));
  }
  const absl::Time occurred_at = req.has_occurred_at() ? FromProtoTime(req.occurred_at()) : state.now();
  LotRow lot;
  lot.lot_id = NewId("lot");
  lot.member_id = req.member_id();
  lot.issuer_partner_id = req.partner_id();
  lot.original_points = lot.remaining_points = comp.points;
  lot.earned_at = occurred_at;
  lot.expires_at = comp.expires_at;
  lot.is_new = lot.dirty = true;

  v1::Transfer t;
  t.set_transfer_id(NewId("tr"));
  t.set_code(v1::TRANSFER_CODE_EARN);
  t.set_debit_account(issuance->account);
  t.set_credit_account(member->account);
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
  lot.source_transfer_id = t.transfer_id();

  Post(*issuance, *member, comp.points);
  const v1::Transfer& stored = state.Append(std::move(t));
  LotRow* added = state.AddLot(std::move(lot));
  if (!req.receipt_reference().empty()) {
    state.PutEarnReceipt(req.partner_id(), req.receipt_reference(), stored.transfer_id());
  }
  *response.mutable_transfer() = stored;
  LotToProto(*added, response.mutable_lot());
  BalanceToProto(*member, stored.sequence(), response.mutable_balance());
  return Wrap(std::move(response));
}

// ---- Holds --------------------------------------------------------------

Outcome DoAuthorize(BatchState& state, const RulesSnapshot& rules, const Caller& caller,
                    const v1::AuthorizeRequest& req) {
  RETURN_IF_ERROR(ValidatePoints("points", req.points()));
  RETURN_IF_ERROR(ValidateText("reference", req.reference(), 0, kMaxReferenceLength));
  if (req.ttl_seconds() < 0) return absl::InvalidArgumentError("ttl_seconds: must not be negative");
  RETURN_IF_ERROR(CheckPartnerActive(rules, req.partner_id()));
  RETURN_IF_ERROR(CheckMemberActive(rules, req.member_id()));
  const int64_t cap = caller.is_service ? kMaxServiceHoldTtlSeconds : kMaxHoldTtlSeconds;
  const int64_t ttl = std::min(req.ttl_seconds() == 0 ? kDefaultHoldTtlSeconds : req.ttl_seconds(), cap);

  ASSIGN_OR_RETURN(AccountRow * member, state.Account(MemberAccount(req.member_id())));
  ASSIGN_OR_RETURN(AccountRow * redemption, state.Account(RedemptionAccount(req.partner_id())));
  if (member->available() < req.points()) return NotEnoughPoints(member->available(), req.points());

  HoldRow hold;
  hold.hold_id = NewId("hold");
  hold.member_id = req.member_id();
  hold.partner_id = req.partner_id();
  hold.points = req.points();
  hold.reference = req.reference();
  hold.metadata.insert(req.metadata().begin(), req.metadata().end());
  hold.created_at = state.now();
  hold.expires_at = state.now() + absl::Seconds(ttl);
  hold.is_new = hold.dirty = true;

  v1::Transfer t;
  t.set_transfer_id(NewId("tr"));
  t.set_code(v1::TRANSFER_CODE_HOLD);
  t.set_debit_account(member->account);
  t.set_credit_account(redemption->account);
  t.set_points(req.points());
  t.set_partner_id(req.partner_id());
  t.set_member_id(req.member_id());
  t.set_reference(req.reference());
  t.set_hold_id(hold.hold_id);
  *t.mutable_metadata() = req.metadata();

  member->debits_pending += req.points();
  redemption->credits_pending += req.points();
  member->dirty = redemption->dirty = true;
  const v1::Transfer& stored = state.Append(std::move(t));
  hold.hold_transfer_id = stored.transfer_id();
  HoldRow* added = state.AddHold(std::move(hold));

  v1::AuthorizeResponse response;
  HoldToProto(*added, response.mutable_hold());
  BalanceToProto(*member, stored.sequence(), response.mutable_balance());
  return Wrap(std::move(response));
}

absl::Status CheckHoldOpen(const HoldRow& hold, absl::Time now) {
  switch (hold.state) {
    case v1::HOLD_STATE_PENDING:
      break;
    case v1::HOLD_STATE_CAPTURED:
      return absl::FailedPreconditionError(absl::StrCat("hold ", hold.hold_id, " was already captured"));
    case v1::HOLD_STATE_VOIDED:
      return absl::FailedPreconditionError(absl::StrCat("hold ", hold.hold_id, " was already voided"));
    default:
      return absl::FailedPreconditionError(absl::StrCat("hold ", hold.hold_id, " has expired"));
  }
  if (now >= hold.expires_at) {
    // Refused even before the sweeper has released it.
    return absl::FailedPreconditionError(absl::StrCat(
        "hold ", hold.hold_id, " expired at ", absl::FormatTime(hold.expires_at, absl::UTCTimeZone())));
  }
  return absl::OkStatus();
}

// Releases the pending amounts of `hold` (capture, void or expiry).
void ReleasePending(AccountRow& member, AccountRow& redemption, const HoldRow& hold) {
  member.debits_pending -= hold.points;
  redemption.credits_pending -= hold.points;
  member.dirty = redemption.dirty = true;
}

Outcome DoCapture(BatchState& state, const RulesSnapshot& rules, const Caller& caller,
                  const v1::CaptureRequest& req) {
  RETURN_IF_ERROR(ValidateId("hold_id", req.hold_id()));
  RETURN_IF_ERROR(ValidateText("reference", req.reference(), 0, kMaxReferenceLength));
  if (req.points() < 0) return absl::InvalidArgumentError("points: must not be negative");
  ASSIGN_OR_RETURN(HoldRow * hold, state.Hold(req.hold_id()));
  if (hold == nullptr) return absl::NotFoundError(absl::StrCat("hold_id: no hold '", req.hold_id(), "'"));
  RETURN_IF_ERROR(CheckOwnedByCaller(caller, "hold_id", absl::StrCat("hold '", hold->hold_id, "'"),
                                     hold->partner_id));
  RETURN_IF_ERROR(CheckHoldOpen(*hold, state.now()));
  const int64_t points = req.points() == 0 ? hold->points : req.points();
  if (points > hold->points) {
    return absl::InvalidArgumentError(
        absl::StrCat("points: ", points, " is more than the hold's ", hold->points));
  }
  RETURN_IF_ERROR(CheckPartnerActive(rules, hold->partner_id));
  RETURN_IF_ERROR(CheckMemberActive(rules, hold->member_id));
  ASSIGN_OR_RETURN(AccountRow * member, state.Account(MemberAccount(hold->member_id)));
  ASSIGN_OR_RETURN(AccountRow * redemption, state.Account(RedemptionAccount(hold->partner_id)));
  ASSIGN_OR_RETURN(int64_t lots_total, LotsTotal(state, hold->member_id));
  if (lots_total < points) {
    return absl::InternalError(absl::StrCat("member ", hold->member_id, " lots ", lots_total,
                                            " do not cover held points ", points));
  }

  v1::Transfer t;
  t.set_transfer_id(NewId("tr"));
  t.set_code(v1::TRANSFER_CODE_REDEEM);
  t.set_debit_account(member->account);
  t.set_credit_account(redemption->account);
  t.set_points(points);
  t.set_partner_id(hold->partner_id);
  t.set_member_id(hold->member_id);
  t.set_reference(req.reference().empty() ? hold->reference : req.reference());
  t.set_related_transfer_id(hold->hold_transfer_id);
  t.set_hold_id(hold->hold_id);
  RETURN_IF_ERROR(ConsumeLots(state, hold->member_id, points, t));
  ReleasePending(*member, *redemption, *hold);
  Post(*member, *redemption, points);
  const v1::Transfer& stored = state.Append(std::move(t));
  hold->state = v1::HOLD_STATE_CAPTURED;
  hold->captured_points = points;
  hold->closed_at = state.now();
  hold->closing_transfer_id = stored.transfer_id();
  hold->dirty = true;

  v1::CaptureResponse response;
  HoldToProto(*hold, response.mutable_hold());
  *response.mutable_transfer() = stored;
  BalanceToProto(*member, stored.sequence(), response.mutable_balance());
  return Wrap(std::move(response));
}

// Posts a pending-only release of `hold` with `code`; returns the transfer.
const v1::Transfer& ReleaseHold(BatchState& state, HoldRow& hold, AccountRow& member,
                                AccountRow& redemption, v1::TransferCode code,
                                v1::HoldState new_state, const std::string& reason) {
  v1::Transfer t;
  t.set_transfer_id(NewId("tr"));
  t.set_code(code);
  t.set_debit_account(member.account);
  t.set_credit_account(redemption.account);
  t.set_points(hold.points);
  t.set_partner_id(hold.partner_id);
  t.set_member_id(hold.member_id);
  t.set_reference(hold.reference);
  t.set_related_transfer_id(hold.hold_transfer_id);
  t.set_hold_id(hold.hold_id);
  t.set_reason(reason);
  ReleasePending(member, redemption, hold);
  const v1::Transfer& stored = state.Append(std::move(t));
  hold.state = new_state;
  hold.closed_at = state.now();
  hold.closing_transfer_id = stored.transfer_id();
  hold.dirty = true;
  return stored;
}

Outcome DoVoid(BatchState& state, const Caller& caller, const v1::VoidRequest& req) {
  RETURN_IF_ERROR(ValidateId("hold_id", req.hold_id()));
  RETURN_IF_ERROR(ValidateText("reason", req.reason(), 0, kMaxReasonLength));
  ASSIGN_OR_RETURN(HoldRow * hold, state.Hold(req.hold_id()));
  if (hold == nullptr) return absl::NotFoundError(absl::StrCat("hold_id: no hold '", req.hold_id(), "'"));
  RETURN_IF_ERROR(CheckOwnedByCaller(caller, "hold_id", absl::StrCat("hold '", hold->hold_id, "'"),
                                     hold->partner_id));
  RETURN_IF_ERROR(CheckHoldOpen(*hold, state.now()));
  ASSIGN_OR_RETURN(AccountRow * member, state.Account(MemberAccount(hold->member_id)));
  ASSIGN_OR_RETURN(AccountRow * redemption, state.Account(RedemptionAccount(hold->partner_id)));
  const v1::Transfer& stored = ReleaseHold(state, *hold, *member, *redemption,
                                           v1::TRANSFER_CODE_HOLD_VOID, v1::HOLD_STATE_VOIDED,
                                           req.reason());
  v1::VoidResponse response;
  HoldToProto(*hold, response.mutable_hold());
  *response.mutable_transfer() = stored;
  BalanceToProto(*member, stored.sequence(), response.mutable_balance());
  return Wrap(std::move(response));
}

// ---- Reverse ------------------------------------------------------------

Outcome DoReverse(BatchState& state, const Caller& caller, const v1::ReverseRequest& req) {
  RETURN_IF_ERROR(ValidateId("transfer_id", req.transfer_id()));
  RETURN_IF_ERROR(ValidateText("reference", req.reference(), 0, kMaxReferenceLength));
  RETURN_IF_ERROR(ValidateText("reason", req.reason(), 0, kMaxReasonLength));
  ASSIGN_OR_RETURN(TransferRow * original, state.Transfer(req.transfer_id()));
  if (original == nullptr) {
    return absl::NotFoundError(absl::StrCat("transfer_id: no transfer '", req.transfer_id(), "'"));
  }
  const v1::Transfer& o = original->transfer;
  RETURN_IF_ERROR(CheckOwnedByCaller(caller, "transfer_id",
                                     absl::StrCat("transfer '", o.transfer_id(), "'"), o.partner_id()));
  if (o.code() != v1::TRANSFER_CODE_EARN && o.code() != v1::TRANSFER_CODE_REDEEM) {
    return absl::FailedPreconditionError(absl::StrCat(
        "transfer ", o.transfer_id(), " is ", v1::TransferCode_Name(o.code()),
        "; only EARN and REDEEM can be reversed"));
  }
  int64_t points = 0;
  if (req.portion_case() == v1::ReverseRequest::kPoints) {
    RETURN_IF_ERROR(ValidatePoints("points", req.points()));
    points = req.points();
  } else if (req.portion_case() == v1::ReverseRequest::kRefundAmount) {
    if (o.code() != v1::TRANSFER_CODE_EARN) {
      return absl::InvalidArgumentError("refund_amount: only for an EARN; give points for a REDEEM");
    }
    const auto& refund = req.refund_amount();
    if (refund.currency() != o.amount().currency()) {
      return absl::InvalidArgumentError(absl::StrCat("refund_amount.currency: the purchase was in ",
                                                     o.amount().currency()));
    }
    if (refund.amount_minor() <= 0 || refund.amount_minor() > o.amount().amount_minor()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "refund_amount.amount_minor: must be in [1, ", o.amount().amount_minor(), "]"));
    }
    // Proportional, rounded down: a partial refund never claws back more
    // than the points that part of the purchase earned.
    points = MulDivFloor(o.points(), refund.amount_minor(), o.amount().amount_minor());
    if (points == 0) return absl::FailedPreconditionError("refund_amount: earned no points to reverse");
    // A refund takes back at most what remains reversible (the proto's
    // contract): earlier partial returns already took their share.
    points = std::min(points, o.points() - original->reversed_points);
    if (points <= 0) {
      return absl::FailedPreconditionError(absl::StrCat("transfer ", o.transfer_id(),
                                                        " has been reversed in full"));
    }
  } else {
    // Unset portion: the whole remaining reversible amount.
    points = o.points() - original->reversed_points;
  }
  const int64_t reversible = o.points() - original->reversed_points;
  if (reversible <= 0) {
    return absl::FailedPreconditionError(absl::StrCat("transfer ", o.transfer_id(),
                                                      " has been reversed in full"));
  }
  if (points > reversible) {
    return absl::FailedPreconditionError(absl::StrCat("only ", reversible, " of transfer ",
                                                      o.transfer_id(), "'s points remain reversible"));
  }
  ASSIGN_OR_RETURN(AccountRow * member, state.Account(MemberAccount(o.member_id())));
  v1::Transfer t;
  t.set_transfer_id(NewId("tr"));
  t.set_partner_id(o.partner_id());
  t.set_member_id(o.member_id());
  t.set_reference(req.reference());
  t.set_reason(req.reason());
  t.set_related_transfer_id(o.transfer_id());
  v1::ReverseResponse response;

  if (o.code() == v1::TRANSFER_CODE_EARN) {
    // Claw back what is left of the earn's lot, never more than the member
    // can spend now (held points stay held); the rest is the shortfall.
    ASSIGN_OR_RETURN(AccountRow * issuance, state.Account(IssuanceAccount(o.partner_id())));
    if (o.allocations_size() != 1) return absl::InternalError("EARN without exactly one lot");
    ASSIGN_OR_RETURN(LotRow * lot, state.Lot(o.allocations(0).lot_id()));
    if (lot == nullptr) return absl::InternalError("EARN lot is missing");
    const int64_t claw =
        std::max<int64_t>(0, std::min({points, lot->remaining_points, member->available()}));
    const int64_t shortfall = points - claw;
    t.set_code(v1::TRANSFER_CODE_REVERSE_EARN);
    t.set_debit_account(member->account);
    t.set_credit_account(issuance->account);
    t.set_points(claw);
    t.set_shortfall_points(shortfall);
    original->reversed_points += points;
    original->reversed_dirty = true;
    response.set_shortfall_points(shortfall);
    response.set_reversed_points(points);  // requested: moved + shortfall
    if (claw > 0) {
      lot->remaining_points -= claw;
      lot->dirty = true;
      v1::Allocation* a = t.add_allocations();
      a->set_lot_id(lot->lot_id);
      a->set_issuer_partner_id(lot->issuer_partner_id);
      a->set_points(claw);
      Post(*member, *issuance, claw);
      *response.mutable_transfer() = state.Append(std::move(t));
    }
  } else {
    // Restore the lots the redemption consumed, latest consumed first. The
    // points reversed earlier were restored from the end, so skip them.
    ASSIGN_OR_RETURN(AccountRow * redemption, state.Account(RedemptionAccount(o.partner_id())));
    struct Restore {
      LotRow* lot;
      int64_t points;
    };
    std::vector<Restore> restores;
    int64_t skip = original->reversed_points;
    int64_t left = points;
    for (int i = o.allocations_size() - 1; i >= 0 && left > 0; --i) {
      int64_t available = o.allocations(i).points();
      const int64_t skipped = std::min(skip, available);
      skip -= skipped;
      available -= skipped;
      if (available == 0) continue;
      ASSIGN_OR_RETURN(LotRow * lot, state.Lot(o.allocations(i).lot_id()));
      if (lot == nullptr) return absl::InternalError("redeemed lot is missing");
      const int64_t take = std::min(available, left);
      restores.push_back({lot, take});
      left -= take;
    }
    if (left != 0) return absl::InternalError("redemption allocations do not cover its points");
    t.set_code(v1::TRANSFER_CODE_REVERSE_REDEEM);
    t.set_debit_account(redemption->account);
    t.set_credit_account(member->account);
    t.set_points(points);
    for (const Restore& r : restores) {
      r.lot->remaining_points += r.points;
      r.lot->dirty = true;
      v1::Allocation* a = t.add_allocations();
      a->set_lot_id(r.lot->lot_id);
      a->set_issuer_partner_id(r.lot->issuer_partner_id);
      a->set_points(r.points);
    }
    Post(*redemption, *member, points);
    original->reversed_points += points;
    original->reversed_dirty = true;
    response.set_reversed_points(points);
    *response.mutable_transfer() = state.Append(std::move(t));
  }
  response.set_remaining_reversible_points(o.points() - original->reversed_points);
  BalanceToProto(*member, response.transfer().sequence(), response.mutable_balance());
  return Wrap(std::move(response));
}

// ---- Adjust and bonus -------------------------------------------------------

// Credits `points` to the member from `funding_account` in a new lot.
const v1::Transfer& CreditWithLot(BatchState& state, const RulesSnapshot& rules, v1::Transfer t,
                                  AccountRow& from, AccountRow& member, const std::string& issuer,
                                  LotRow** lot_out) {
  LotRow lot;
  lot.lot_id = NewId("lot");
  lot.member_id = t.member_id();
  lot.issuer_partner_id = issuer;
  lot.original_points = lot.remaining_points = t.points();
  lot.earned_at = state.now();
  lot.expires_at = state.now() + absl::Hours(24) * rules.lot_expiry_days;
  lot.source_transfer_id = t.transfer_id();
  lot.is_new = lot.dirty = true;
  v1::Allocation* a = t.add_allocations();
  a->set_lot_id(lot.lot_id);
  a->set_issuer_partner_id(issuer);
  a->set_points(t.points());
  Post(from, member, t.points());
  const v1::Transfer& stored = state.Append(std::move(t));
  *lot_out = state.AddLot(std::move(lot));
  return stored;
}

absl::StatusOr<AccountRow*> FundingAccount(BatchState& state, const RulesSnapshot& rules,
                                           const std::string& funding_partner_id,
                                           const char* operator_account) {
  if (funding_partner_id.empty()) return state.Account(operator_account);
  if (!rules.partners.contains(funding_partner_id)) {
    return absl::NotFoundError(
        absl::StrCat("funding_partner_id: unknown partner '", funding_partner_id, "'"));
  }
  return state.Account(IssuanceAccount(funding_partner_id));
}

Outcome DoAdjust(BatchState& state, const RulesSnapshot& rules, const v1::AdjustRequest& req) {
  RETURN_IF_ERROR(ValidateId("member_id", req.member_id()));
  RETURN_IF_ERROR(ValidatePoints("points", req.points()));
  RETURN_IF_ERROR(ValidateText("reason", req.reason(), 1, kMaxReasonLength));
  RETURN_IF_ERROR(ValidateText("reference", req.reference(), 0, kMaxReferenceLength));
  if (req.direction() != v1::ADJUST_DIRECTION_CREDIT && req.direction() != v1::ADJUST_DIRECTION_DEBIT) {
    return absl::InvalidArgumentError("direction: CREDIT or DEBIT required");
  }
  if (!req.funding_partner_id().empty()) RETURN_IF_ERROR(ValidateId("funding_partner_id", req.funding_partner_id()));
  ASSIGN_OR_RETURN(AccountRow * member, state.Account(MemberAccount(req.member_id())));
  v1::Transfer t;
  t.set_transfer_id(NewId("tr"));
  t.set_code(v1::TRANSFER_CODE_ADJUST);
  t.set_points(req.points());
  t.set_member_id(req.member_id());
  t.set_partner_id(req.funding_partner_id());
  t.set_reference(req.reference());
  t.set_reason(req.reason());
  v1::AdjustResponse response;
  if (req.direction() == v1::ADJUST_DIRECTION_CREDIT) {
    ASSIGN_OR_RETURN(AccountRow * from,
                     FundingAccount(state, rules, req.funding_partner_id(), kOperatorAdjustments));
    t.set_debit_account(from->account);
    t.set_credit_account(member->account);
    RETURN_IF_ERROR(CheckFundedCredit(state, rules, req.funding_partner_id(), *from, req.points()));
    LotRow* lot = nullptr;
    *response.mutable_transfer() =
        CreditWithLot(state, rules, std::move(t), *from, *member, req.funding_partner_id(), &lot);
    LotToProto(*lot, response.mutable_lot());
  } else {
    if (!req.funding_partner_id().empty()) {
      return absl::InvalidArgumentError("funding_partner_id: only for a CREDIT");
    }
    if (member->available() < req.points()) return NotEnoughPoints(member->available(), req.points());
    ASSIGN_OR_RETURN(AccountRow * to, state.Account(kOperatorAdjustments));
    t.set_debit_account(member->account);
    t.set_credit_account(to->account);
    RETURN_IF_ERROR(ConsumeLots(state, req.member_id(), req.points(), t));
    Post(*member, *to, req.points());
    *response.mutable_transfer() = state.Append(std::move(t));
  }
  BalanceToProto(*member, response.transfer().sequence(), response.mutable_balance());
  return Wrap(std::move(response));
}

Outcome DoGrantBonus(BatchState& state, const RulesSnapshot& rules, const v1::GrantBonusRequest& req) {
  RETURN_IF_ERROR(ValidateId("member_id", req.member_id()));
  RETURN_IF_ERROR(ValidatePoints("points", req.points()));
  RETURN_IF_ERROR(ValidateText("reason", req.reason(), 1, kMaxReasonLength));
  RETURN_IF_ERROR(ValidateText("reference", req.reference(), 0, kMaxReferenceLength));
  RETURN_IF_ERROR(ValidateEnum("bonus_kind", req.bonus_kind(), v1::BonusKind_IsValid, /*required=*/true));
  if (!req.funding_partner_id().empty()) RETURN_IF_ERROR(ValidateId("funding_partner_id", req.funding_partner_id()));
  RETURN_IF_ERROR(CheckMemberActive(rules, req.member_id()));
  if (!req.funding_partner_id().empty()) RETURN_IF_ERROR(CheckPartnerActive(rules, req.funding_partner_id()));
  ASSIGN_OR_RETURN(AccountRow * member, state.Account(MemberAccount(req.member_id())));
  ASSIGN_OR_RETURN(AccountRow * from,
                   FundingAccount(state, rules, req.funding_partner_id(), kOperatorBonus));
  v1::Transfer t;
  t.set_transfer_id(NewId("tr"));
  t.set_code(v1::TRANSFER_CODE_BONUS);
  t.set_debit_account(from->account);
  t.set_credit_account(member->account);
  t.set_points(req.points());
  t.set_member_id(req.member_id());
  t.set_partner_id(req.funding_partner_id());
  t.set_reference(req.reference());
  t.set_reason(req.reason());
  t.set_bonus_kind(req.bonus_kind());
  v1::GrantBonusResponse response;
  RETURN_IF_ERROR(CheckFundedCredit(state, rules, req.funding_partner_id(), *from, req.points()));
  LotRow* lot = nullptr;
  *response.mutable_transfer() =
      CreditWithLot(state, rules, std::move(t), *from, *member, req.funding_partner_id(), &lot);
  LotToProto(*lot, response.mutable_lot());
  BalanceToProto(*member, response.transfer().sequence(), response.mutable_balance());
  return Wrap(std::move(response));
}

// ---- Expiry -------------------------------------------------------------

Outcome DoRunExpiry(BatchState& state, const v1::RunExpiryRequest& req) {
  if (req.max_lots() < 0 || req.max_lots() > 10000) {
    return absl::InvalidArgumentError("max_lots: must be in [1, 10000] (0 means 1000)");
  }
  const int limit = std::min(req.max_lots() == 0 ? 1000 : req.max_lots(), kMaxExpiryBatch);
  absl::Time as_of = state.now();
  if (req.has_as_of()) {
    as_of = FromProtoTime(req.as_of());
    if (as_of > state.now()) return absl::InvalidArgumentError("as_of: must not be in the future");
  }
  ASSIGN_OR_RETURN(std::vector<LotRow*> lots, state.ExpiredLots(as_of, limit));
  v1::RunExpiryResponse response;
  for (LotRow* lot : lots) {
    ASSIGN_OR_RETURN(AccountRow * member, state.Account(MemberAccount(lot->member_id)));
    // Points on hold stay until the hold closes; the rest of the lot expires.
    const int64_t points = std::min(lot->remaining_points, member->available());
    if (points <= 0) continue;
    ASSIGN_OR_RETURN(AccountRow * breakage, state.Account(BreakageAccount(lot->issuer_partner_id)));
    v1::Transfer t;
    t.set_transfer_id(NewId("tr"));
    t.set_code(v1::TRANSFER_CODE_EXPIRE);
    t.set_debit_account(member->account);
    t.set_credit_account(breakage->account);
    t.set_points(points);
    t.set_member_id(lot->member_id);
    t.set_partner_id(lot->issuer_partner_id);
    t.set_related_transfer_id(lot->source_transfer_id);
    v1::Allocation* a = t.add_allocations();
    a->set_lot_id(lot->lot_id);
    a->set_issuer_partner_id(lot->issuer_partner_id);
    a->set_points(points);
    lot->remaining_points -= points;
    lot->dirty = true;
    Post(*member, *breakage, points);
    response.set_last_sequence(state.Append(std::move(t)).sequence());
    response.set_lots_expired(response.lots_expired() + 1);
    response.set_points_expired(response.points_expired() + points);
  }
  // A full batch that expired something may have more behind it. (Lots held
  // in full are skipped and do not keep the loop going.)
  response.set_has_more(static_cast<int>(lots.size()) == limit && response.lots_expired() > 0);
  return Wrap(std::move(response));
}

}  // namespace

// A batch of hold expiries; also used by the service's own sweeper.
Outcome DoRunHoldExpiry(BatchState& state, const v1::RunHoldExpiryRequest& req) {
  if (req.max_holds() < 0 || req.max_holds() > 10000) {
    return absl::InvalidArgumentError("max_holds: must be in [1, 10000] (0 means 1000)");
  }
  const int limit = std::min(req.max_holds() == 0 ? 1000 : req.max_holds(), kMaxExpiryBatch);
  ASSIGN_OR_RETURN(std::vector<HoldRow*> holds, state.ExpiredHolds(state.now(), limit));
  v1::RunHoldExpiryResponse response;
  for (HoldRow* hold : holds) {
    ASSIGN_OR_RETURN(AccountRow * member, state.Account(MemberAccount(hold->member_id)));
    ASSIGN_OR_RETURN(AccountRow * redemption, state.Account(RedemptionAccount(hold->partner_id)));
    ReleaseHold(state, *hold, *member, *redemption, v1::TRANSFER_CODE_HOLD_EXPIRE,
                v1::HOLD_STATE_EXPIRED, "expired");
    response.set_holds_released(response.holds_released() + 1);
    response.set_points_released(response.points_released() + hold->points);
  }
  response.set_has_more(static_cast<int>(holds.size()) == limit);
  return Wrap(std::move(response));
}

namespace {

Outcome Dispatch(BatchState& state, const RulesSnapshot& rules, BudgetReservations& budgets, const Command& c) {
  const google::protobuf::Message& r = *c.request;
  if (c.method == "Earn") {
    if (!c.earn.has_value()) return absl::InternalError("earn not computed");
    return DoEarn(state, rules, budgets, static_cast<const v1::EarnRequest&>(r), *c.earn);
  }
  if (c.method == "Authorize") return DoAuthorize(state, rules, c.caller, static_cast<const v1::AuthorizeRequest&>(r));
  if (c.method == "Capture") return DoCapture(state, rules, c.caller, static_cast<const v1::CaptureRequest&>(r));
  if (c.method == "Void") return DoVoid(state, c.caller, static_cast<const v1::VoidRequest&>(r));
  if (c.method == "Reverse") return DoReverse(state, c.caller, static_cast<const v1::ReverseRequest&>(r));
  if (c.method == "Adjust") return DoAdjust(state, rules, static_cast<const v1::AdjustRequest&>(r));
  if (c.method == "GrantBonus") return DoGrantBonus(state, rules, static_cast<const v1::GrantBonusRequest&>(r));
  if (c.method == "RunExpiry") return DoRunExpiry(state, static_cast<const v1::RunExpiryRequest&>(r));
  if (c.method == "RunHoldExpiry") return DoRunHoldExpiry(state, static_cast<const v1::RunHoldExpiryRequest&>(r));
  return absl::InternalError(absl::StrCat("unknown ledger command ", c.method));
}

}  // namespace

void CollectPrefetchKeys(const Command& c, PrefetchKeys* keys) {
  if (c.record_idempotency) keys->idempotency[c.caller.principal].insert(c.idempotency_key);
  if (c.method == "Earn") {
    const auto& r = static_cast<const v1::EarnRequest&>(*c.request);
    keys->accounts.insert(MemberAccount(r.member_id()));
    keys->accounts.insert(IssuanceAccount(r.partner_id()));
    if (!r.receipt_reference().empty()) keys->receipts[r.partner_id()].insert(r.receipt_reference());
    if (c.earn.has_value() && c.earn->ok() && HasFirstPurchaseBonus(**c.earn)) {
      keys->earn_histories.insert(r.member_id());
    }
  } else if (c.method == "Authorize") {
    const auto& r = static_cast<const v1::AuthorizeRequest&>(*c.request);
    keys->accounts.insert(MemberAccount(r.member_id()));
    keys->accounts.insert(RedemptionAccount(r.partner_id()));
  } else if (c.method == "Capture") {
    keys->holds.insert(static_cast<const v1::CaptureRequest&>(*c.request).hold_id());
  } else if (c.method == "Void") {
    keys->holds.insert(static_cast<const v1::VoidRequest&>(*c.request).hold_id());
  }
}

std::unique_ptr<google::protobuf::Message> NewResponseFor(const std::string& method) {
  if (method == "Earn") return std::make_unique<v1::EarnResponse>();
  if (method == "Authorize") return std::make_unique<v1::AuthorizeResponse>();
  if (method == "Capture") return std::make_unique<v1::CaptureResponse>();
  if (method == "Void") return std::make_unique<v1::VoidResponse>();
  if (method == "Reverse") return std::make_unique<v1::ReverseResponse>();
  if (method == "Adjust") return std::make_unique<v1::AdjustResponse>();
  if (method == "GrantBonus") return std::make_unique<v1::GrantBonusResponse>();
  if (method == "RunExpiry") return std::make_unique<v1::RunExpiryResponse>();
  if (method == "RunHoldExpiry") return std::make_unique<v1::RunHoldExpiryResponse>();
  return nullptr;
}

absl::Status ApplyCommand(BatchState& state, const RulesSnapshot& rules, BudgetReservations& budgets,
                          Command& command) {
  if (!command.record_idempotency) {
    Outcome outcome = Dispatch(state, rules, budgets, command);
    if (!outcome.ok() && !idempotency::IsFinalOutcome(outcome.status())) return outcome.status();
    command.status = outcome.status();
    if (outcome.ok()) command.response = *std::move(outcome);
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(std::optional<IdempotencyRecord> seen,
                   state.Idempotency(command.caller.principal, command.idempotency_key));
  if (seen.has_value()) {
    if (seen->method != command.method) {
      command.status = idempotency::KeyReusedError(command.idempotency_key, "method");
      return absl::OkStatus();
    }
    std::unique_ptr<google::protobuf::Message> original(command.request->New());
    if (!original->ParseFromString(seen->request)) return absl::InternalError("stored request unreadable");
    const std::string field = idempotency::FirstDifferingField(*original, *command.request);
    if (!field.empty()) {
      command.status = idempotency::KeyReusedError(command.idempotency_key, field);
      return absl::OkStatus();
    }
    command.status = absl::Status(static_cast<absl::StatusCode>(seen->status_code), seen->status_message);
    if (command.status.ok()) {
      command.response = NewResponseFor(command.method);
      if (command.response == nullptr || !command.response->ParseFromString(seen->response)) {
        return absl::InternalError("stored response unreadable");
      }
    }
    return absl::OkStatus();
  }

  Outcome outcome = Dispatch(state, rules, budgets, command);
  if (!outcome.ok() && !idempotency::IsFinalOutcome(outcome.status())) {
    return outcome.status();  // the batch fails; nothing was changed for a final answer
  }
  if (outcome.status().code() == absl::StatusCode::kInvalidArgument || IsUnrecordedRefusal(outcome.status())) {
    // Bad input does not use up the key: the client fixes the request and
    // retries with the same key. Resending the same bad request gets the
    // same refusal anyway. Nor does a refusal for a state that is expected
    // to change (a prepaid partner out of blocks).
    command.status = outcome.status();
    return absl::OkStatus();
  }
  IdempotencyRecord record;
  record.method = command.method;
  command.request->SerializeToString(&record.request);
  if (outcome.ok()) {
    command.status = absl::OkStatus();
    command.response = *std::move(outcome);
    command.response->SerializeToString(&record.response);
  } else {
    command.status = outcome.status();
    record.status_code = static_cast<int>(outcome.status().code());
    record.status_message = std::string(outcome.status().message());
  }
  state.PutIdempotency(command.caller.principal, command.idempotency_key, std::move(record));
  return absl::OkStatus();
}

Caller Caller::Of(const auth::Principal& principal) {
  Caller caller;
  caller.principal = principal.idempotency_scope();
  caller.is_service = principal.is_service();
  if (principal.is_partner()) caller.partner_id = principal.partner_id;
  return caller;
}

absl::Status CheckOwnPartner(const Caller& caller, absl::string_view field,
                             const std::string& partner_id) {
  if (caller.partner_id.empty() || partner_id == caller.partner_id) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(field, ": '", partner_id,
                                                  "' is not the calling partner; this API key acts for '",
                                                  caller.partner_id, "' only"));
}

absl::Status CheckOwnedByCaller(const Caller& caller, absl::string_view field,
                                absl::string_view what, const std::string& owner) {
  if (caller.partner_id.empty() || owner == caller.partner_id) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(field, ": ", what,
                                                  " belongs to another partner; this API key acts for '",
                                                  caller.partner_id, "' only"));
}


std::string NewId(absl::string_view prefix) {
  static constexpr char kAlphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";  // Crockford base32
  thread_local std::mt19937_64 rng{std::random_device{}() ^
                                   (static_cast<uint64_t>(std::random_device{}()) << 32)};
  std::string id = absl::StrCat(prefix, "_");
  uint64_t hi = rng(), lo = rng();
  for (int i = 0; i < 26; ++i) {  // 130 bits of the 128 drawn, 5 at a time
    uint64_t& src = i < 13 ? hi : lo;
    id.push_back(kAlphabet[src & 31]);
    src >>= 5;
  }
  return id;
}

void BalanceToProto(const AccountRow& row, int64_t as_of_sequence, v1::AccountBalance* out) {
  out->set_account(row.account);
  out->set_credits_posted(row.credits_posted);
  out->set_debits_posted(row.debits_posted);
  out->set_credits_pending(row.credits_pending);
  out->set_debits_pending(row.debits_pending);
  out->set_posted_points(row.posted());
  out->set_pending_points(row.debits_pending);  // points held by open holds
  out->set_available_points(row.available());
  out->set_as_of_sequence(as_of_sequence);
}

void AccountToProto(const AccountRow& row, int64_t as_of_sequence, v1::Account* out) {
  out->set_account(row.account);
  const v1::AccountKind kind = AccountKindOf(row.account);
  out->set_kind(kind);
  const std::string id = row.account.substr(AccountKindPrefix(kind).size());
  if (kind == v1::ACCOUNT_KIND_MEMBER) {
    out->set_member_id(id);
  } else if (IsPartnerAccountKind(kind)) {
    out->set_partner_id(id);
  }
  BalanceToProto(row, as_of_sequence, out->mutable_balance());
}

void LotToProto(const LotRow& lot, v1::Lot* out) {
  out->set_lot_id(lot.lot_id);
  out->set_member_id(lot.member_id);
  out->set_issuer_partner_id(lot.issuer_partner_id);
  out->set_source_transfer_id(lot.source_transfer_id);
  out->set_original_points(lot.original_points);
  out->set_remaining_points(lot.remaining_points);
  *out->mutable_earned_at() = ToProtoTime(lot.earned_at);
  *out->mutable_expires_at() = ToProtoTime(lot.expires_at);
}

void HoldToProto(const HoldRow& hold, v1::Hold* out) {
  out->set_hold_id(hold.hold_id);
  out->set_member_id(hold.member_id);
  out->set_partner_id(hold.partner_id);
  out->set_points(hold.points);
  out->set_captured_points(hold.captured_points);
  out->set_state(hold.state);
  *out->mutable_created_at() = ToProtoTime(hold.created_at);
  *out->mutable_expires_at() = ToProtoTime(hold.expires_at);
  if (hold.closed_at.has_value()) *out->mutable_closed_at() = ToProtoTime(*hold.closed_at);
  out->set_reference(hold.reference);
  out->set_hold_transfer_id(hold.hold_transfer_id);
  out->set_closing_transfer_id(hold.closing_transfer_id);
  out->mutable_metadata()->insert(hold.metadata.begin(), hold.metadata.end());
}

absl::Status ValidateMetadata(const google::protobuf::Map<std::string, std::string>& metadata) {
  if (metadata.size() > static_cast<size_t>(kMaxMetadataEntries)) {
    return absl::InvalidArgumentError(absl::StrCat("metadata: more than ", kMaxMetadataEntries, " entries"));
  }
  for (const auto& [k, v] : metadata) {
    bool key_ok = !k.empty() && k.size() <= kMaxMetadataKeyLength;
    for (char c : k) {
      key_ok = key_ok && (absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_' || c == '.' || c == '-');
    }
    if (!key_ok) {
      return absl::InvalidArgumentError(absl::StrCat("metadata: key '", absl::CHexEscape(k), "' must match [a-z0-9_.-]{1,",
                                                     kMaxMetadataKeyLength, "}"));
    }
    RETURN_IF_ERROR(ValidateText(absl::StrCat("metadata[", k, "]"), v, 0, kMaxMetadataValueLength));
  }
  return absl::OkStatus();
}

}  // namespace loyalty::ledger
