#include "services/ledger/holds.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/validation/ids.h"
#include "common/validation/text.h"
#include "services/ledger/account_names.h"

namespace loyalty::ledger {
namespace {

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

}  // namespace

absl::StatusOr<v1::AuthorizeResponse> ApplyAuthorize(const CommandContext& context,
                                                     const v1::AuthorizeRequest& req) {
  BatchState& state = context.state;
  const RulesSnapshot& rules = context.rules;
  const Caller& caller = context.caller;
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
  return response;
}

absl::StatusOr<v1::CaptureResponse> ApplyCapture(const CommandContext& context, const v1::CaptureRequest& req) {
  BatchState& state = context.state;
  const RulesSnapshot& rules = context.rules;
  const Caller& caller = context.caller;
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
  return response;
}

absl::StatusOr<v1::VoidResponse> ApplyVoid(const CommandContext& context, const v1::VoidRequest& req) {
  BatchState& state = context.state;
  const Caller& caller = context.caller;
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
  return response;
}

absl::StatusOr<v1::RunHoldExpiryResponse> ApplyRunHoldExpiry(const CommandContext& context,
                                                              const v1::RunHoldExpiryRequest& req) {
  BatchState& state = context.state;
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
  return response;
}

void CollectAuthorizePrefetchKeys(const AuthorizeCommand& command, PrefetchKeys* keys) {
  keys->accounts.insert(MemberAccount(command.request.member_id()));
  keys->accounts.insert(RedemptionAccount(command.request.partner_id()));
}

void CollectHoldPrefetchKeys(const std::string& hold_id, PrefetchKeys* keys) { keys->holds.insert(hold_id); }

}  // namespace loyalty::ledger
