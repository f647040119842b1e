#include "services/ledger/reverse.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/validation/ids.h"
#include "common/validation/text.h"
#include "services/ledger/account_names.h"

namespace loyalty::ledger {
namespace {

absl::Status ReversedInFull(const v1::Transfer& o) {
  return absl::FailedPreconditionError(absl::StrCat("transfer ", o.transfer_id(), " has been reversed in full"));
}

// The transfer `req` reverses, once the request is valid, the caller owns
// it and it is an EARN or a REDEEM.
absl::StatusOr<TransferRow*> FindReversible(BatchState& state, const Caller& caller,
                                            const v1::ReverseRequest& req) {
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
  return original;
}

// The points a refund of part of an EARN's purchase takes back.
absl::StatusOr<int64_t> RefundPoints(const TransferRow& original, const v1::ReverseRequest& req) {
  const v1::Transfer& o = original.transfer;
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
  int64_t points = MulDivFloor(o.points(), refund.amount_minor(), o.amount().amount_minor());
  if (points == 0) return absl::FailedPreconditionError("refund_amount: earned no points to reverse");
  // A refund takes back at most what remains reversible (the proto's
  // contract): earlier partial returns already took their share.
  points = std::min(points, o.points() - original.reversed_points);
  if (points <= 0) return ReversedInFull(o);
  return points;
}

// The points `req` reverses: given, from a refund, or (unset) all that is
// left; refused beyond what remains reversible.
absl::StatusOr<int64_t> PointsToReverse(const TransferRow& original, const v1::ReverseRequest& req) {
  const v1::Transfer& o = original.transfer;
  int64_t points = 0;
  if (req.portion_case() == v1::ReverseRequest::kPoints) {
    RETURN_IF_ERROR(ValidatePoints("points", req.points()));
    points = req.points();
  } else if (req.portion_case() == v1::ReverseRequest::kRefundAmount) {
    ASSIGN_OR_RETURN(points, RefundPoints(original, req));
  } else {
    // Unset portion: the whole remaining reversible amount.
    points = o.points() - original.reversed_points;
  }
  const int64_t reversible = o.points() - original.reversed_points;
  if (reversible <= 0) return ReversedInFull(o);
  if (points > reversible) {
    return absl::FailedPreconditionError(absl::StrCat("only ", reversible, " of transfer ",
                                                      o.transfer_id(), "'s points remain reversible"));
  }
  return points;
}

void AddAllocation(const LotRow& lot, int64_t points, v1::Transfer& t) {
  v1::Allocation* a = t.add_allocations();
  a->set_lot_id(lot.lot_id);
  a->set_issuer_partner_id(lot.issuer_partner_id);
  a->set_points(points);
}

// Claws back what is left of the earn's lot, never more than the member can
// spend now (held points stay held); the rest is the shortfall.
absl::Status ReverseEarn(BatchState& state, TransferRow& original, int64_t points, AccountRow& member,
                         v1::Transfer t, v1::ReverseResponse& response) {
  const v1::Transfer& o = original.transfer;
  ASSIGN_OR_RETURN(AccountRow * issuance, state.Account(IssuanceAccount(o.partner_id())));
  if (o.allocations_size() != 1) return absl::InternalError("EARN without exactly one lot");
  ASSIGN_OR_RETURN(LotRow * lot, state.Lot(o.allocations(0).lot_id()));
  if (lot == nullptr) return absl::InternalError("EARN lot is missing");
  const int64_t claw = std::max<int64_t>(0, std::min({points, lot->remaining_points, member.available()}));
  const int64_t shortfall = points - claw;
  t.set_code(v1::TRANSFER_CODE_REVERSE_EARN);
  t.set_debit_account(member.account);
  t.set_credit_account(issuance->account);
  t.set_points(claw);
  t.set_shortfall_points(shortfall);
  original.reversed_points += points;
  original.reversed_dirty = true;
  response.set_shortfall_points(shortfall);
  response.set_reversed_points(points);  // requested: moved + shortfall
  if (claw > 0) {
    lot->remaining_points -= claw;
    lot->dirty = true;
    AddAllocation(*lot, claw, t);
    Post(member, *issuance, claw);
    *response.mutable_transfer() = state.Append(std::move(t));
  }
  return absl::OkStatus();
}

struct Restore {
  LotRow* lot;
  int64_t points;
};

// The lots a redemption's reversal of `points` restores, latest consumed
// first. The points reversed earlier were restored from the end, so they
// are skipped.
absl::StatusOr<std::vector<Restore>> LotsToRestore(BatchState& state, const TransferRow& original,
                                                   int64_t points) {
  const v1::Transfer& o = original.transfer;
  std::vector<Restore> restores;
  int64_t skip = original.reversed_points;
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
  return restores;
}

// Restores the lots the redemption consumed and gives the points back.
absl::Status ReverseRedeem(BatchState& state, TransferRow& original, int64_t points, AccountRow& member,
                           v1::Transfer t, v1::ReverseResponse& response) {
  const v1::Transfer& o = original.transfer;
  ASSIGN_OR_RETURN(AccountRow * redemption, state.Account(RedemptionAccount(o.partner_id())));
  ASSIGN_OR_RETURN(std::vector<Restore> restores, LotsToRestore(state, original, points));
  t.set_code(v1::TRANSFER_CODE_REVERSE_REDEEM);
  t.set_debit_account(redemption->account);
  t.set_credit_account(member.account);
  t.set_points(points);
  for (const Restore& r : restores) {
    r.lot->remaining_points += r.points;
    r.lot->dirty = true;
    AddAllocation(*r.lot, r.points, t);
  }
  Post(*redemption, member, points);
  original.reversed_points += points;
  original.reversed_dirty = true;
  response.set_reversed_points(points);
  *response.mutable_transfer() = state.Append(std::move(t));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::ReverseResponse> ApplyReverse(const CommandContext& context, const v1::ReverseRequest& req) {
  BatchState& state = context.state;
  ASSIGN_OR_RETURN(TransferRow * original, FindReversible(state, context.caller, req));
  ASSIGN_OR_RETURN(const int64_t points, PointsToReverse(*original, req));
  const v1::Transfer& o = original->transfer;
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
    RETURN_IF_ERROR(ReverseEarn(state, *original, points, *member, std::move(t), response));
  } else {
    RETURN_IF_ERROR(ReverseRedeem(state, *original, points, *member, std::move(t), response));
  }
  response.set_remaining_reversible_points(o.points() - original->reversed_points);
  BalanceToProto(*member, response.transfer().sequence(), response.mutable_balance());
  return response;
}

}  // namespace loyalty::ledger
