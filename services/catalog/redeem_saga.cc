#include "services/catalog/redeem_saga.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/crypto/random.h"
#include "common/idempotency/idempotency.h"
#include "common/log/log.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "common/validation/ids.h"
#include "services/catalog/catalog_shared.h"
#include "services/catalog/codes.h"

namespace loyalty::catalog {
namespace {

constexpr int kMaxVoucherDraws = 5;


// The rules checked before the hold and again, authoritatively, with the
// reward row locked: state, validity, stock, per-member limit. The tier is
// checked once, before the saga starts.
absl::Status CheckRedeemable(CatalogTx& tx, const v1::Reward& r, const std::string& member_id, absl::Time now) {
  if (r.state() != v1::REWARD_STATE_ACTIVE) {
    return absl::FailedPreconditionError(absl::StrCat("reward ", r.reward_id(), " is not active"));
  }
  if ((r.has_valid_from() && now < FromProtoTime(r.valid_from())) ||
      (r.has_valid_until() && now >= FromProtoTime(r.valid_until()))) {
    return absl::FailedPreconditionError(absl::StrCat("reward ", r.reward_id(), " is outside its validity window"));
  }
  if (!r.unlimited_stock() && r.stock_available() <= 0) {
    return absl::FailedPreconditionError(absl::StrCat("reward ", r.reward_id(), " is out of stock"));
  }
  if (r.per_member_limit() > 0) {
    ASSIGN_OR_RETURN(int64_t used,
                     tx.CountMemberVouchers(member_id, r.reward_id(), PeriodStart(r.per_member_limit_period(), now)));
    if (used >= r.per_member_limit()) {
      return absl::FailedPreconditionError(
          absl::StrCat("per-member limit reached: ", used, " of ", r.per_member_limit(), " this period"));
    }
  }
  return absl::OkStatus();
}

std::string RewardName(const v1::Reward& r) { return r.names().empty() ? std::string() : r.names(0).text(); }

std::string HoldKey(const Redemption& r) { return absl::StrCat("catalog:redeem:", r.redemption_id, ":", r.attempt); }
std::string HoldVoidKey(const Redemption& r) {
  return absl::StrCat("catalog:redeem-void:", r.redemption_id, ":", r.attempt);
}

}  // namespace

struct RedeemSaga::Claim {
  Claim(const v1::RedeemRequest& r, std::string s, std::string f)
      : request(r), scope(std::move(s)), fingerprint(std::move(f)) {}

  const v1::RedeemRequest& request;
  std::string scope;
  std::string fingerprint;
  std::optional<absl::Status> tier_status;
  // Set by the claim transaction: the answer, if any; else the saga row.
  std::optional<Answer> answer;
  Redemption red;
};

struct RedeemSaga::Issue {
  v1::RedeemResponse response;
  absl::Status refusal;
  bool lost = false;  // recovery took the saga over
};

absl::Status RedeemSaga::CheckTier(const std::string& member_id, const v1::Reward& reward) {
  if (reward.min_tier_id().empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(MemberTier tier, deps_.members.TierOf(member_id));
  ASSIGN_OR_RETURN(int needed, deps_.members.RankOf(reward.min_tier_id()));
  if (tier.rank < needed) {
    return absl::FailedPreconditionError(
        absl::StrCat("member tier ", tier.tier_id, " is below the reward's minimum tier ", reward.min_tier_id()));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::RedeemResponse> RedeemSaga::Redeem(const Principal& p, const v1::RedeemRequest& r) {
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  RETURN_IF_ERROR(ValidateId("reward_id", r.reward_id()));
  if (p.is_partner() && r.channel_partner_id() != p.partner_id) {
    return absl::PermissionDeniedError("channel_partner_id: must be the calling partner's own id");
  }
  if (!r.channel_partner_id().empty()) RETURN_IF_ERROR(ValidateId("channel_partner_id", r.channel_partner_id()));

  Claim c(r, p.idempotency_scope(), idempotency::Fingerprint(r));
  RETURN_IF_ERROR(CheckTierFirst(r, c.tier_status));

  // Step 0: claim the key by writing the saga's row (STARTED), or answer
  // from the row a previous request with this key left.
  RETURN_IF_ERROR(deps_.store.Run("Redeem.claim", [&](CatalogTx& tx) -> absl::Status { return ClaimKey(tx, c); }));
  if (c.answer.has_value()) return *std::move(c.answer);
  return RunSaga(std::move(c.red));
}

absl::Status RedeemSaga::CheckTierFirst(const v1::RedeemRequest& r, std::optional<absl::Status>& tier_status) {
  tier_status.reset();
  std::optional<v1::Reward> reward;
  RETURN_IF_ERROR(deps_.store.Run("Redeem.read", [&](CatalogTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(reward, tx.GetReward(r.reward_id(), false));
    return absl::OkStatus();
  }));
  if (reward.has_value() && !reward->min_tier_id().empty()) {
    absl::Status s = CheckTier(r.member_id(), *reward);
    if (!s.ok() && !idempotency::ShouldRemember(s)) return s;  // membership unreachable
    tier_status = s;
  }
  return absl::OkStatus();
}

absl::Status RedeemSaga::ClaimKey(CatalogTx& tx, Claim& c) {
  const v1::RedeemRequest& r = c.request;
  c.answer.reset();
  const absl::Time now = deps_.Now();
  ASSIGN_OR_RETURN(std::optional<Redemption> existing, tx.FindRedemption(c.scope, r.idempotency_key()));
  const bool had_row = existing.has_value();
  if (had_row) {
    RETURN_IF_ERROR(StoredAnswer(*existing, c));
    if (c.answer.has_value()) return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(std::optional<v1::Reward> current, tx.GetReward(r.reward_id(), false));
  absl::Status refusal;
  RETURN_IF_ERROR(RefusalAtClaim(tx, current, c, now, refusal));
  Redemption& red = c.red;
  red = NewAttempt(std::move(existing), c, current, now);
  red.state = refusal.ok() ? SagaState::kStarted : SagaState::kFailed;
  red.status_code = static_cast<int>(refusal.code());
  red.status_message = std::string(refusal.message());
  if (!refusal.ok()) {
    c.answer = refusal;
    // A refusal before the hold needs no compensation; one the caller can
    // correct (INVALID_ARGUMENT) is not remembered.
    if (!idempotency::ShouldRemember(refusal)) return absl::OkStatus();
  }
  return had_row || red.attempt > 1 ? tx.UpdateRedemption(red) : tx.InsertRedemption(red);
}

absl::Status RedeemSaga::StoredAnswer(const Redemption& existing, Claim& c) {
  const v1::RedeemRequest& r = c.request;
  if (existing.fingerprint != c.fingerprint) {
    v1::RedeemRequest original;
    std::string field = "request";
    if (original.ParseFromString(existing.request)) field = idempotency::FirstDifferingField(original, r);
    c.answer = idempotency::KeyReusedError(r.idempotency_key(), field.empty() ? "request" : field);
    return absl::OkStatus();
  }
  switch (existing.state) {
    case SagaState::kCompleted: {
      v1::RedeemResponse stored;
      if (!stored.ParseFromString(existing.response)) return absl::InternalError("stored response unreadable");
      c.answer = std::move(stored);
      return absl::OkStatus();
    }
    case SagaState::kFailed:
      if (idempotency::ShouldRemember(StatusOf(existing))) c.answer = StatusOf(existing);
      // Otherwise a transient failure, fully compensated: start again.
      return absl::OkStatus();
    default:
      c.answer = absl::AbortedError("this redemption is still in progress; retry later with the same key");
      return absl::OkStatus();
  }
}

absl::Status RedeemSaga::RefusalAtClaim(CatalogTx& tx, const std::optional<v1::Reward>& current, const Claim& c,
                                        absl::Time now, absl::Status& refusal) {
  refusal = absl::OkStatus();
  if (!current.has_value()) {
    refusal = RewardNotFound(c.request.reward_id());
  } else if (c.tier_status.has_value() && !c.tier_status->ok()) {
    refusal = *c.tier_status;
  } else if (!current->min_tier_id().empty() && !c.tier_status.has_value()) {
    // The reward gained a tier limit since it was read: ask again.
    return absl::AbortedError("reward changed while redeeming");
  } else {
    refusal = CheckRedeemable(tx, *current, c.request.member_id(), now);
  }
  return absl::OkStatus();
}

Redemption RedeemSaga::NewAttempt(std::optional<Redemption> existing, const Claim& c,
                                  const std::optional<v1::Reward>& current, absl::Time now) {
  const v1::RedeemRequest& r = c.request;
  Redemption red;
  if (existing.has_value()) {
    red = *std::move(existing);
    red.attempt += 1;
    red.hold_id.clear();
    red.voucher_code.clear();
    red.response.clear();
  } else {
    red.redemption_id = crypto::NewOpaqueId("rd");
    red.scope = c.scope;
    red.key = r.idempotency_key();
    red.fingerprint = c.fingerprint;
    r.SerializeToString(&red.request);
    red.member_id = r.member_id();
    red.reward_id = r.reward_id();
    red.channel_partner_id = r.channel_partner_id();
    red.created_at = now;
  }
  if (current.has_value()) {
    red.partner_id = current->partner_id();
    red.points = current->points_price();
    red.hold_ttl_seconds = int64_t{current->voucher_validity_days()} * 86400;
  }
  red.updated_at = now;
  return red;
}

absl::StatusOr<v1::RedeemResponse> RedeemSaga::RunSaga(Redemption red) {
  RETURN_IF_ERROR(deps_.CrashAt(SagaPoint::kClaimed));

  // Step 1: the hold.
  absl::StatusOr<HoldOutcome> hold = deps_.ledger.Authorize(HoldKey(red), red.member_id, red.partner_id, red.points,
                                                            absl::Seconds(red.hold_ttl_seconds), red.redemption_id);
  if (!hold.ok()) return HoldFailed(red, hold.status());
  red.hold_id = hold->hold_id;
  RETURN_IF_ERROR(deps_.CrashAt(SagaPoint::kHeld));

  // Steps 2 and 3, in one local transaction.
  Issue issue;
  absl::Status status = deps_.store.Run(
      "Redeem.issue", [&](CatalogTx& tx) -> absl::Status { return IssueVoucher(tx, red, *hold, issue); });
  if (!status.ok()) {
    // The database failed after the hold: compensate (or leave it to
    // recovery when the database is still away).
    CompensateOrDefer(red, absl::UnavailableError("redemption failed; retry with the same key"));
    return status;
  }
  if (issue.lost) return absl::AbortedError("redemption interrupted and compensated; retry with the same key");
  if (!issue.refusal.ok()) {
    RETURN_IF_ERROR(deps_.CrashAt(SagaPoint::kCompensating));
    CompensateOrDefer(red, issue.refusal);
    return issue.refusal;
  }
  return std::move(issue.response);
}

absl::Status RedeemSaga::HoldFailed(const Redemption& red, const absl::Status& failure) {
  const absl::Status& refused = failure;
  if (idempotency::ShouldRemember(refused) || absl::IsInvalidArgument(refused)) {
    // The ledger refused (not enough points, member suspended...): nothing
    // is held, so nothing to compensate.
    absl::Status recorded = deps_.store.Run("Redeem.refused", [&](CatalogTx& tx) -> absl::Status {
      ASSIGN_OR_RETURN(std::optional<Redemption> cur, tx.GetRedemption(red.redemption_id));
      if (!cur.has_value() || cur->state != SagaState::kStarted || cur->attempt != red.attempt) {
        return absl::OkStatus();
      }
      cur->state = SagaState::kFailed;
      cur->status_code = static_cast<int>(refused.code());
      cur->status_message = std::string(refused.message());
      cur->updated_at = deps_.Now();
      return tx.UpdateRedemption(*cur);
    });
    // Not durable, so not final: the saga row stays STARTED and is
    // recovered; the caller retries with the same key.
    if (!recorded.ok()) return idempotency::RefusalNotRecorded(refused, recorded);
    return refused;
  }
  // Unreachable or unknown: the hold may or may not exist. Compensate now
  // (the recovery loop finishes it if the ledger is still away).
  const absl::Status outcome =
      absl::UnavailableError("ledger unreachable; everything was compensated, retry with the same key");
  CompensateOrDefer(red, outcome);
  return outcome;
}

absl::Status RedeemSaga::IssueVoucher(CatalogTx& tx, const Redemption& red, const HoldOutcome& hold, Issue& out) {
  out.response.Clear();
  out.refusal = absl::OkStatus();
  out.lost = false;
  const absl::Time now = deps_.Now();
  ASSIGN_OR_RETURN(std::optional<Redemption> cur, tx.GetRedemption(red.redemption_id));
  if (!cur.has_value() || cur->state != SagaState::kStarted || cur->attempt != red.attempt) {
    out.lost = true;  // recovery took it over and compensates it
    return absl::OkStatus();
  }
  // Locks the reward row: redemptions of one reward serialize here, which
  // makes the stock and per-member checks exact.
  ASSIGN_OR_RETURN(std::optional<v1::Reward> current, tx.GetReward(red.reward_id, /*for_update=*/true));
  if (!current.has_value()) {
    out.refusal = RewardNotFound(red.reward_id);
  } else {
    out.refusal = CheckRedeemable(tx, *current, red.member_id, now);
  }
  if (out.refusal.ok()) {
    ASSIGN_OR_RETURN(bool reserved, tx.ReserveUnit(red.reward_id, !current->unlimited_stock()));
    if (!reserved) {
      out.refusal = absl::FailedPreconditionError(absl::StrCat("reward ", red.reward_id, " is out of stock"));
    }
  }
  if (!out.refusal.ok()) {
    cur->state = SagaState::kCompensating;
    cur->hold_id = red.hold_id;
    cur->status_code = static_cast<int>(out.refusal.code());
    cur->status_message = std::string(out.refusal.message());
    cur->updated_at = now;
    return tx.UpdateRedemption(*cur);
  }
  ASSIGN_OR_RETURN(v1::Voucher v, InsertVoucher(tx, red, *current, hold, now));
  *out.response.mutable_voucher() = v;
  out.response.set_available_points(hold.available_points);
  cur->state = SagaState::kCompleted;
  cur->hold_id = red.hold_id;
  cur->voucher_code = v.voucher_code();
  cur->status_code = 0;
  cur->status_message.clear();
  out.response.SerializeToString(&cur->response);
  cur->updated_at = now;
  return tx.UpdateRedemption(*cur);
}

absl::StatusOr<v1::Voucher> RedeemSaga::InsertVoucher(CatalogTx& tx, const Redemption& red, const v1::Reward& reward,
                                                      const HoldOutcome& hold, absl::Time now) {
  v1::Voucher v;
  v.set_reward_id(red.reward_id);
  v.set_reward_name(RewardName(reward));
  v.set_member_id(red.member_id);
  v.set_partner_id(red.partner_id);
  v.set_channel_partner_id(red.channel_partner_id);
  v.set_points(red.points);
  v.set_hold_id(red.hold_id);
  v.set_state(v1::VOUCHER_STATE_ISSUED);
  *v.mutable_issued_at() = ToProtoTime(now);
  *v.mutable_expires_at() = ToProtoTime(TruncateToMicros(hold.expires_at));
  absl::Status inserted = absl::AlreadyExistsError("no draw yet");
  for (int draw = 0; draw < kMaxVoucherDraws && absl::IsAlreadyExists(inserted); ++draw) {
    v.set_voucher_code(NewVoucherCode());
    inserted = tx.InsertVoucher(red.redemption_id, v);
  }
  if (!inserted.ok()) return absl::InternalError("could not draw a free voucher code");
  return v;
}

void RedeemSaga::CompensateOrDefer(const Redemption& red, const absl::Status& outcome) {
  absl::Status compensated = Compensate(red, outcome);
  if (!compensated.ok()) log::Warn("redeem_compensation_deferred", {{"redemption_id", red.redemption_id}});
}

absl::Status RedeemSaga::Compensate(Redemption red, const absl::Status& outcome) {
  // Mark it first, so that nobody completes it meanwhile.
  bool done = false;
  RETURN_IF_ERROR(deps_.store.Run("Redeem.compensating", [&](CatalogTx& tx) -> absl::Status {
    done = false;
    ASSIGN_OR_RETURN(std::optional<Redemption> cur, tx.GetRedemption(red.redemption_id));
    if (!cur.has_value() || cur->attempt != red.attempt ||
        (cur->state != SagaState::kStarted && cur->state != SagaState::kCompensating)) {
      done = true;
      return absl::OkStatus();
    }
    if (cur->state == SagaState::kStarted) {
      cur->state = SagaState::kCompensating;
      cur->status_code = static_cast<int>(outcome.code());
      cur->status_message = std::string(outcome.message());
    }
    if (!red.hold_id.empty()) cur->hold_id = red.hold_id;
    cur->updated_at = deps_.Now();
    red = *cur;
    return tx.UpdateRedemption(*cur);
  }));
  if (done) return absl::OkStatus();

  if (red.hold_id.empty()) {
    // Was a hold placed? Asking again with the same key answers the original
    // outcome, or places it now (and it is voided below).
    absl::StatusOr<HoldOutcome> hold = deps_.ledger.Authorize(HoldKey(red), red.member_id, red.partner_id, red.points,
                                                              absl::Seconds(red.hold_ttl_seconds), red.redemption_id);
    if (hold.ok()) {
      red.hold_id = hold->hold_id;
    } else if (!idempotency::ShouldRemember(hold.status()) && !absl::IsInvalidArgument(hold.status())) {
      return hold.status();
    }
  }
  if (!red.hold_id.empty()) {
    absl::StatusOr<HoldOutcome> voided = deps_.ledger.Void(HoldVoidKey(red), red.hold_id, "redemption compensated");
    if (!voided.ok()) {
      if (!absl::IsFailedPrecondition(voided.status())) return voided.status();
      // Already closed: fine unless it is somehow still open.
      ASSIGN_OR_RETURN(HoldOutcome h, deps_.ledger.GetHold(red.hold_id));
      if (h.state == ledger::v1::HOLD_STATE_PENDING) return absl::InternalError("hold still pending after void");
      if (h.state == ledger::v1::HOLD_STATE_CAPTURED) {
        log::Error("redeem_hold_captured_without_voucher", {{"redemption_id", red.redemption_id}});
      }
    }
  }
  return deps_.store.Run("Redeem.compensated", [&](CatalogTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(std::optional<Redemption> cur, tx.GetRedemption(red.redemption_id));
    if (!cur.has_value() || cur->attempt != red.attempt || cur->state != SagaState::kCompensating) {
      return absl::OkStatus();
    }
    cur->state = SagaState::kFailed;
    cur->hold_id = red.hold_id;
    cur->updated_at = deps_.Now();
    return tx.UpdateRedemption(*cur);
  });
}

}  // namespace loyalty::catalog
