#include "services/ledger/adjust.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/validation/enums.h"
#include "common/validation/ids.h"
#include "common/validation/text.h"
#include "services/ledger/account_names.h"

namespace loyalty::ledger {
namespace {

// A partner-funded credit (bonus, adjustment) counts against a prepaid
// partner's blocks like an earn.
absl::Status CheckFundedCredit(BatchState& state, const RulesSnapshot& rules, const std::string& funding_partner_id,
                               const AccountRow& from, int64_t points) {
  if (funding_partner_id.empty()) return absl::OkStatus();
  const std::optional<int64_t> limit = PrepaidLimit(rules, funding_partner_id, state.now());
  if (!limit.has_value()) return absl::OkStatus();
  return CheckPrepaidIssue(funding_partner_id, NetIssued(from), points, *limit);
}

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

}  // namespace

absl::StatusOr<v1::AdjustResponse> ApplyAdjust(const CommandContext& context, const v1::AdjustRequest& req) {
  BatchState& state = context.state;
  const RulesSnapshot& rules = context.rules;
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
  return response;
}

absl::StatusOr<v1::GrantBonusResponse> ApplyGrantBonus(const CommandContext& context,
                                                       const v1::GrantBonusRequest& req) {
  BatchState& state = context.state;
  const RulesSnapshot& rules = context.rules;
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
  return response;
}

}  // namespace loyalty::ledger
