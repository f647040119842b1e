#include "services/catalog/catalog_jobs.h"

#include <optional>
#include <vector>

#include "common/log/log.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "services/catalog/catalog_shared.h"

namespace loyalty::catalog {

absl::StatusOr<int> CatalogJobs::Recover(int max, bool everything) {
  const absl::Time now = deps_.Now();
  const absl::Time before = everything ? absl::InfiniteFuture() : now - deps_.options.saga_grace;
  std::vector<Redemption> stuck;
  RETURN_IF_ERROR(deps_.store.Run("Recover.list", [&](CatalogTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(stuck, tx.ListStuckRedemptions(everything ? now + absl::Hours(1) : before, max));
    return absl::OkStatus();
  }));
  int repaired = 0;
  absl::Status first_failure;
  for (Redemption& red : stuck) {
    // A saga cut short before its outcome was known is answered ABORTED:
    // not remembered, so a retry with the same key starts it again.
    absl::Status outcome = red.state == SagaState::kCompensating
                               ? StatusOf(red)
                               : absl::AbortedError("redemption interrupted and compensated; retry with the same key");
    absl::Status s = redeem_.Compensate(red, outcome);
    if (s.ok()) {
      ++repaired;
      log::Info("redeem_saga_recovered", {{"redemption_id", red.redemption_id}});
    } else {
      log::Debug("redeem_saga_recovery_failed",
                 {{"redemption_id", red.redemption_id}, {"code", absl::StatusCodeToString(s.code())}});
      if (first_failure.ok()) first_failure = s;
    }
  }
  // The others were tried all the same; the caller logs the failure once.
  if (!first_failure.ok()) return first_failure;
  return repaired;
}

absl::StatusOr<int> CatalogJobs::ExpireVouchers(int max) {
  std::vector<std::string> codes;
  RETURN_IF_ERROR(deps_.store.Run("ExpireVouchers.list", [&](CatalogTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(codes, tx.ListExpiredVouchers(deps_.Now(), max));
    return absl::OkStatus();
  }));
  int changed = 0;
  absl::Status first_failure;
  for (const std::string& code : codes) {
    std::optional<v1::Voucher> v;
    RETURN_IF_ERROR(deps_.store.Run("ExpireVouchers.read", [&](CatalogTx& tx) -> absl::Status {
      ASSIGN_OR_RETURN(v, tx.GetVoucher(code, false));
      return absl::OkStatus();
    }));
    if (!v.has_value() || v->state() != v1::VOUCHER_STATE_ISSUED) continue;
    absl::StatusOr<HoldOutcome> hold = vouchers_.ReleaseHold(*v, "voucher expired");
    if (!hold.ok()) {
      if (first_failure.ok()) first_failure = hold.status();
      continue;
    }
    if (hold->state == ledger::v1::HOLD_STATE_PENDING) continue;  // not closed yet at the ledger; next pass
    ASSIGN_OR_RETURN(bool settled, SettleVoucher(code, *hold, v1::VOUCHER_STATE_EXPIRED, ""));
    if (!settled) continue;
    ++changed;
  }
  // The others were tried all the same; the caller logs the failure once.
  if (!first_failure.ok()) return first_failure;
  return changed;
}

absl::StatusOr<bool> CatalogJobs::SettleVoucher(const std::string& code, const HoldOutcome& hold,
                                                v1::VoucherState released, const std::string& reason) {
  bool settled = false;
  RETURN_IF_ERROR(deps_.store.Run("SettleVoucher", [&](CatalogTx& tx) -> absl::Status {
    settled = false;
    ASSIGN_OR_RETURN(std::optional<v1::Voucher> cur, tx.GetVoucher(code, /*for_update=*/true));
    if (!cur.has_value() || cur->state() != v1::VOUCHER_STATE_ISSUED) return absl::OkStatus();
    settled = true;
    if (hold.state == ledger::v1::HOLD_STATE_CAPTURED) {
      // Honoured at the ledger, but the honour's own update never landed.
      cur->set_state(v1::VOUCHER_STATE_HONOURED);
      *cur->mutable_honoured_at() = ToProtoTime(TruncateToMicros(hold.closed_at));
      cur->set_capture_transfer_id(hold.closing_transfer_id);
      RETURN_IF_ERROR(tx.UpdateVoucher(*cur));
      return tx.ConsumeUnit(cur->reward_id());
    }
    ASSIGN_OR_RETURN(std::optional<v1::Reward> reward, tx.GetReward(cur->reward_id(), false));
    cur->set_state(hold.state == ledger::v1::HOLD_STATE_EXPIRED ? v1::VOUCHER_STATE_EXPIRED : released);
    *cur->mutable_cancelled_at() = ToProtoTime(deps_.Now());
    cur->set_cancel_reason(reason);
    RETURN_IF_ERROR(tx.UpdateVoucher(*cur));
    return tx.ReleaseUnit(cur->reward_id(), reward.has_value() && !reward->unlimited_stock());
  }));
  return settled;
}

absl::StatusOr<int> CatalogJobs::RepairVouchers(int max, bool everything) {
  const absl::Time before = everything ? absl::InfiniteFuture() : deps_.Now() - deps_.options.saga_grace;
  std::vector<std::pair<std::string, int>> pending;
  RETURN_IF_ERROR(deps_.store.Run("RepairVouchers.list", [&](CatalogTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(pending, tx.ListPendingVouchers(everything ? deps_.Now() + absl::Hours(1) : before, max));
    return absl::OkStatus();
  }));
  int repaired = 0;
  absl::Status first_failure;
  for (const auto& [code, op] : pending) {
    std::optional<v1::Voucher> v;
    RETURN_IF_ERROR(deps_.store.Run("RepairVouchers.read", [&](CatalogTx& tx) -> absl::Status {
      ASSIGN_OR_RETURN(v, tx.GetVoucher(code, false));
      return absl::OkStatus();
    }));
    if (!v.has_value() || v->state() != v1::VOUCHER_STATE_ISSUED) continue;
    absl::StatusOr<HoldOutcome> hold = deps_.ledger.GetHold(v->hold_id());
    if (hold.ok() && hold->state == ledger::v1::HOLD_STATE_PENDING && op == kPendingCancel) {
      hold = vouchers_.ReleaseHold(*v, "voucher cancelled");  // finish the cancel
    }
    if (!hold.ok()) {
      if (first_failure.ok()) first_failure = hold.status();
      continue;
    }
    if (hold->state == ledger::v1::HOLD_STATE_PENDING) {
      // The honour never reached the ledger: nothing to repair.
      RETURN_IF_ERROR(deps_.store.Run("RepairVouchers.clear",
                                      [&](CatalogTx& tx) -> absl::Status { return tx.ClearVoucherOperation(code); }));
      ++repaired;
      continue;
    }
    ASSIGN_OR_RETURN(bool settled, SettleVoucher(code, *hold, v1::VOUCHER_STATE_CANCELLED, "repaired"));
    if (settled) ++repaired;
  }
  // The others were tried all the same; the caller logs the failure once.
  if (!first_failure.ok()) return first_failure;
  return repaired;
}

absl::StatusOr<int> CatalogJobs::GrantDueCouponBonuses(int max) {
  std::vector<std::string> due;
  RETURN_IF_ERROR(deps_.store.Run("CouponGrant.due", [&](CatalogTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(due, tx.ListDueCouponGrants(max));
    return absl::OkStatus();
  }));
  int settled = 0;
  absl::Status first_failure;
  for (const std::string& id : due) {
    absl::StatusOr<std::string> s = coupons_.SettleCouponGrant(id);
    if (s.ok() || absl::IsFailedPrecondition(s.status()) || absl::IsNotFound(s.status())) {
      ++settled;
    } else if (first_failure.ok()) {
      first_failure = s.status();
    }
  }
  // The others were tried all the same; the caller logs the failure once.
  if (!first_failure.ok()) return first_failure;
  return settled;
}

}  // namespace loyalty::catalog
