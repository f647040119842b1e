#include "services/membership/tier_admin.h"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/idempotency/idempotency.h"
#include "common/paging/page_token.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "common/validation/money.h"
#include "common/validation/text.h"
#include "services/membership/codes.h"
#include "services/membership/membership_shared.h"
#include "services/membership/tiers.h"
#include "services/membership/validation.h"

namespace loyalty::membership {
namespace {

// Applies an evaluation to a locked member; returns the change if any.
absl::StatusOr<std::optional<v1::TierChange>> ApplyEvaluation(MembershipTx& tx, const auth::Principal& p,
                                                              const v1::TierLadder& ladder, const v1::Member& before,
                                                              int64_t points, absl::Time as_of, absl::Time now,
                                                              v1::MemberTier* tier_out) {
  Evaluation eval = EvaluateTier(ladder, before.tier(), points, as_of);
  v1::Member after = before;
  *after.mutable_tier() = eval.tier;
  // Display fields are derived from the ladder at read time, not stored.
  if (eval.change.has_value()) {
    eval.change->set_tier_change_id(NewOpaqueId("tc"));
    eval.change->set_member_id(before.member_id());
    eval.change->set_actor_key_id(p.key_id);
    RETURN_IF_ERROR(tx.InsertTierChange(*eval.change));
  }
  RETURN_IF_ERROR(SaveMember(tx, before, after, now));
  if (tier_out != nullptr) *tier_out = eval.tier;
  return eval.change;
}

// Where a RunTierEvaluation batch ended, for the next one.
std::string RunToken(absl::Time as_of, const std::string& last_member_id) {
  return absl::WebSafeBase64Escape(absl::StrCat(absl::ToUnixMicros(as_of), "/", last_member_id));
}

}  // namespace

absl::StatusOr<v1::GetTierLadderResponse> TierAdmin::GetTierLadder(const Principal& /*p*/) {
  v1::GetTierLadderResponse out;
  RETURN_IF_ERROR(deps_.store.Run("GetTierLadder", [&](MembershipTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(*out.mutable_ladder(), tx.GetLadder(false));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::SetTierLadderResponse> TierAdmin::SetTierLadder(const Principal& p,
                                                                   const v1::SetTierLadderRequest& r) {
  RETURN_IF_ERROR(ValidateLadder(r.ladder()));
  if (r.expected_version() < 0) return absl::InvalidArgumentError("expected_version: must not be negative");
  const absl::Time now = deps_.Now();
  return Mutate<v1::SetTierLadderResponse>(deps_, p, "SetTierLadder", r.idempotency_key(), r,
      [&](MembershipTx& tx, v1::SetTierLadderResponse& out, std::string&) -> absl::Status {
        ASSIGN_OR_RETURN(v1::TierLadder before, tx.GetLadder(true));
        if (r.expected_version() != 0 && r.expected_version() != before.version()) {
          return absl::AbortedError(absl::StrCat("expected_version: the ladder is at version ", before.version()));
        }
        for (const auto& old : before.tiers()) {
          if (FindTier(r.ladder(), old.tier_id()) != nullptr) continue;
          ASSIGN_OR_RETURN(int64_t holders, tx.CountMembersHoldingTier(old.tier_id()));
          if (holders > 0) {
            return absl::FailedPreconditionError(
                absl::StrCat("tier ", old.tier_id(), " is held by ", holders, " members and cannot be removed"));
          }
        }
        v1::TierLadder after = SortedLadder(r.ladder());
        after.set_version(before.version() + 1);
        *after.mutable_updated_at() = ToProtoTime(now);
        RETURN_IF_ERROR(tx.SaveLadder(after));
        RETURN_IF_ERROR(AuditChange(tx, p, "SetTierLadder", "tier_ladder", "ladder", "", &before, &after,
                                    r.idempotency_key(), "", now));
        *out.mutable_ladder() = after;
        return absl::OkStatus();
      });
}
absl::StatusOr<v1::EvaluateTierResponse> TierAdmin::EvaluateTier(const Principal& p,
                                                                 const v1::EvaluateTierRequest& r) {
  RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  const absl::Time now = deps_.Now();
  const absl::Time as_of = r.has_as_of() ? FromProtoTime(r.as_of()) : now;
  if (as_of > now) return absl::InvalidArgumentError("as_of: must not be in the future");
  // The ledger is asked outside any transaction; the figure is then applied
  // under the member's row lock.
  v1::TierLadder ladder;
  RETURN_IF_ERROR(deps_.store.Run("EvaluateTier.read", [&](MembershipTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(std::optional<v1::Member> m, tx.GetMember(r.member_id(), false));
    if (!m.has_value()) return MemberNotFound();
    ASSIGN_OR_RETURN(ladder, tx.GetLadder(false));
    return absl::OkStatus();
  }));
  const absl::Time start = AddMonths(as_of, -ladder.qualification_window_months());
  ASSIGN_OR_RETURN(auto points, deps_.ledger.QualifyingPoints({r.member_id()}, start, as_of));
  const int64_t qp = points.contains(r.member_id()) ? points[r.member_id()] : 0;
  return Mutate<v1::EvaluateTierResponse>(deps_, p, "EvaluateTier", r.idempotency_key(), r,
      [&](MembershipTx& tx, v1::EvaluateTierResponse& out, std::string& member_id) -> absl::Status {
        ASSIGN_OR_RETURN(std::optional<v1::Member> m, tx.GetMember(r.member_id(), true));
        if (!m.has_value()) return MemberNotFound();
        member_id = m->member_id();
        RETURN_IF_ERROR(CheckNotClosed(*m));
        ASSIGN_OR_RETURN(v1::TierLadder current, tx.GetLadder(false));
        if (current.qualification_window_months() != ladder.qualification_window_months()) {
          return absl::AbortedError("the tier ladder changed during the evaluation; retry");
        }
        ASSIGN_OR_RETURN(auto change, ApplyEvaluation(tx, p, current, *m, qp, as_of, now, out.mutable_tier()));
        if (change.has_value()) *out.mutable_change() = *change;
        return absl::OkStatus();
      });
}
absl::StatusOr<v1::RunTierEvaluationResponse> TierAdmin::RunTierEvaluation(
    const Principal& p, const v1::RunTierEvaluationRequest& r) {
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  if (r.batch_size() < 0 || r.batch_size() > 5000) return absl::InvalidArgumentError("batch_size: must be 1..5000");
  const int batch = r.batch_size() == 0 ? 1000 : r.batch_size();
  const absl::Time now = deps_.Now();
  absl::Time as_of = r.has_as_of() ? FromProtoTime(r.as_of()) : now;
  std::string after_member;
  if (!r.resume_token().empty()) {
    std::string raw;
    std::vector<std::string> parts;
    int64_t micros = 0;
    if (absl::WebSafeBase64Unescape(r.resume_token(), &raw)) parts = absl::StrSplit(raw, absl::MaxSplits('/', 1));
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &micros)) {
      return absl::InvalidArgumentError("resume_token: malformed");
    }
    const absl::Time token_as_of = absl::FromUnixMicros(micros);
    if (r.has_as_of() && TruncateToMicros(as_of) != token_as_of) {
      return absl::InvalidArgumentError("resume_token: issued for a run with another as_of");
    }
    as_of = token_as_of;
    after_member = parts[1];
  }
  as_of = TruncateToMicros(as_of);
  if (as_of > now) return absl::InvalidArgumentError("as_of: must not be in the future");

  std::vector<std::string> ids;
  v1::TierLadder ladder;
  RETURN_IF_ERROR(deps_.store.Run("RunTierEvaluation.read", [&](MembershipTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(ids, tx.ListOpenMemberIds(after_member, batch));
    ASSIGN_OR_RETURN(ladder, tx.GetLadder(false));
    return absl::OkStatus();
  }));
  const absl::Time start = AddMonths(as_of, -ladder.qualification_window_months());
  absl::flat_hash_map<std::string, int64_t> points;
  constexpr size_t kLedgerChunk = 1000;
  for (size_t i = 0; i < ids.size(); i += kLedgerChunk) {
    std::vector<std::string> chunk(ids.begin() + i, ids.begin() + std::min(ids.size(), i + kLedgerChunk));
    ASSIGN_OR_RETURN(auto part, deps_.ledger.QualifyingPoints(chunk, start, as_of));
    points.insert(part.begin(), part.end());
  }
  return Mutate<v1::RunTierEvaluationResponse>(deps_, p, "RunTierEvaluation", r.idempotency_key(), r,
      [&](MembershipTx& tx, v1::RunTierEvaluationResponse& out, std::string&) -> absl::Status {
        ASSIGN_OR_RETURN(v1::TierLadder current, tx.GetLadder(false));
        if (current.qualification_window_months() != ladder.qualification_window_months()) {
          return absl::AbortedError("the tier ladder changed during the evaluation; retry");
        }
        for (const std::string& id : ids) {
          ASSIGN_OR_RETURN(std::optional<v1::Member> m, tx.GetMember(id, true));
          if (!m.has_value() || m->status() == v1::MEMBER_STATUS_CLOSED) continue;
          const int64_t qp = points.contains(id) ? points[id] : 0;
          ASSIGN_OR_RETURN(auto change, ApplyEvaluation(tx, p, current, *m, qp, as_of, now, nullptr));
          out.set_evaluated_count(out.evaluated_count() + 1);
          if (change.has_value()) out.set_changed_count(out.changed_count() + 1);
        }
        if (static_cast<int>(ids.size()) == batch) out.set_next_resume_token(RunToken(as_of, ids.back()));
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::GrantPaidTierResponse> TierAdmin::GrantPaidTier(const Principal& p,
                                                                   const v1::GrantPaidTierRequest& r) {
  RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  RETURN_IF_ERROR(ValidateId("tier_id", r.tier_id()));
  const absl::Time now = deps_.Now();
  if (!r.has_valid_until()) return absl::InvalidArgumentError("valid_until: required");
  const absl::Time until = FromProtoTime(r.valid_until());
  if (until <= now) return absl::InvalidArgumentError("valid_until: must be in the future");
  if (until > AddMonths(now, 60)) return absl::InvalidArgumentError("valid_until: at most 5 years ahead");
  // A grant without a fee (unset, or 0 without a currency) is free.
  if (r.fee().amount_minor() != 0 || !r.fee().currency().empty()) {
    RETURN_IF_ERROR(ValidateMoney("fee", r.fee(), AmountRule::kNonNegative));
  }
  RETURN_IF_ERROR(ValidateText("payment_reference", r.payment_reference(), 0, kMaxPaymentReferenceChars));
  return Mutate<v1::GrantPaidTierResponse>(deps_, p, "GrantPaidTier", r.idempotency_key(), r,
      [&](MembershipTx& tx, v1::GrantPaidTierResponse& out, std::string& member_id) -> absl::Status {
        ASSIGN_OR_RETURN(std::optional<v1::Member> m, tx.GetMember(r.member_id(), true));
        if (!m.has_value()) return MemberNotFound();
        member_id = m->member_id();
        if (m->status() != v1::MEMBER_STATUS_ACTIVE) {
          return absl::FailedPreconditionError(absl::StrCat("member ", m->member_id(), " is not active"));
        }
        ASSIGN_OR_RETURN(v1::TierLadder ladder, tx.GetLadder(false));
        const v1::TierDefinition* tier = FindTier(ladder, r.tier_id());
        if (tier == nullptr) return absl::NotFoundError(absl::StrCat("tier ", r.tier_id(), " not found"));
        const v1::TierDefinition* held = FindTier(ladder, m->tier().tier_id());
        if (held != nullptr && held->rank() > tier->rank()) {
          return absl::FailedPreconditionError(
              absl::StrCat("member already holds the higher tier ", held->tier_id()));
        }
        v1::Member after = *m;
        v1::MemberTier* t = after.mutable_tier();
        const bool same_paid = t->basis() == v1::TIER_BASIS_PAID && t->tier_id() == tier->tier_id() &&
                               t->has_paid_until() && FromProtoTime(t->paid_until()) >= until;
        if (!same_paid) {
          if (t->tier_id() != tier->tier_id()) *t->mutable_since() = ToProtoTime(now);
          t->set_tier_id(tier->tier_id());
          t->set_basis(v1::TIER_BASIS_PAID);
          *t->mutable_paid_until() = ToProtoTime(until);
          v1::TierChange change;
          change.set_tier_change_id(NewOpaqueId("tc"));
          change.set_member_id(m->member_id());
          change.set_from_tier_id(m->tier().tier_id());
          change.set_to_tier_id(tier->tier_id());
          change.set_reason(v1::TIER_CHANGE_REASON_PAID_GRANT);
          *change.mutable_changed_at() = ToProtoTime(now);
          *change.mutable_valid_until() = ToProtoTime(until);
          change.set_actor_key_id(p.key_id);
          RETURN_IF_ERROR(tx.InsertTierChange(change));
          RETURN_IF_ERROR(SaveMember(tx, *m, after, now));
          RETURN_IF_ERROR(AuditChange(tx, p, "GrantPaidTier", "member", m->member_id(), m->member_id(), &*m, &after,
                                      r.idempotency_key(), r.payment_reference(), now));
          *out.mutable_change() = change;
        }
        *out.mutable_tier() = after.tier();
        DecorateTier(ladder, out.mutable_tier());
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::ListTierHistoryResponse> TierAdmin::ListTierHistory(const Principal& p,
                                                                       const v1::ListTierHistoryRequest& r) {
  RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  ASSIGN_OR_RETURN(int size, paging::PageSize(r.page_size(), 50, 500));
  const std::string scope = absl::StrCat("tier_history/", r.member_id());
  PageCursor cursor;
  if (!r.page_token().empty()) {
    ASSIGN_OR_RETURN(cursor.before_id, paging::DecodePageToken(r.page_token(), scope));
  }
  v1::ListTierHistoryResponse out;
  RETURN_IF_ERROR(deps_.store.Run("ListTierHistory", [&](MembershipTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(v1::Member m, LoadVisible(tx, p, r.member_id(), false));
    ASSIGN_OR_RETURN(auto rows, tx.ListTierChanges(m.member_id(), cursor, size + 1));
    for (int i = 0; i < static_cast<int>(rows.size()) && i < size; ++i) *out.add_changes() = rows[i].second;
    if (static_cast<int>(rows.size()) > size) {
      out.set_next_page_token(paging::EncodePageToken(scope, rows[size - 1].first));
    }
    return absl::OkStatus();
  }));
  return out;
}
}  // namespace loyalty::membership
