#include "services/catalog/vouchers.h"

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/crypto/sha256.h"
#include "common/idempotency/idempotency.h"
#include "common/paging/page_token.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "common/validation/ids.h"
#include "common/validation/text.h"
#include "services/catalog/catalog_shared.h"
#include "services/catalog/codes.h"
#include "services/catalog/validation.h"

namespace loyalty::catalog {
namespace {

constexpr int kVouchersPageDefault = 50;
constexpr int kVouchersPageMax = 500;
constexpr size_t kMaxReferenceLength = 64;


absl::Status VoucherNotFound() { return absl::NotFoundError("voucher not found"); }

// A partner sees the vouchers it honours or channelled.
bool VoucherVisible(const auth::Principal& p, const v1::Voucher& v) {
  if (!p.is_partner()) return true;
  return v.partner_id() == p.partner_id || v.channel_partner_id() == p.partner_id;
}

// An ISSUED voucher past its expiry is reported EXPIRED even before the
// sweep released it.
v1::Voucher Present(v1::Voucher v, absl::Time now) {
  if (v.state() == v1::VOUCHER_STATE_ISSUED && FromProtoTime(v.expires_at()) <= now) {
    v.set_state(v1::VOUCHER_STATE_EXPIRED);
  }
  return v;
}

// Another request's honour or cancel of the voucher is in flight: this one
// waits for its outcome (not remembered under the key).
absl::Status VoucherBusy() {
  return absl::AbortedError("another honour or cancel of this voucher is in progress; retry with the same key");
}

// Identifies the request that put a voucher operation in flight: its
// caller's idempotency scope, its key and its fingerprint.
template <typename Request>
std::string RequestMarker(const auth::Principal& p, const Request& r) {
  return crypto::Sha256Hex(
      absl::StrCat(p.idempotency_scope(), "\x1f", r.idempotency_key(), "\x1f", idempotency::Fingerprint(r)));
}

// True when the voucher reached `state` because the repair sweep finished the
// operation that the request `marker` put in flight and whose own answer
// never landed: a retry of that request is answered with that outcome.
absl::StatusOr<bool> FinishedByRepair(CatalogTx& tx, const v1::Voucher& v, v1::VoucherState state,
                                      const std::string& marker) {
  if (v.state() != state) return false;
  ASSIGN_OR_RETURN(std::string by, tx.VoucherRequestMarker(v.voucher_code()));
  return by == marker;
}

absl::Status VoucherClosedError(const v1::Voucher& v, absl::Time now) {
  switch (v.state()) {
    case v1::VOUCHER_STATE_HONOURED:
      return absl::FailedPreconditionError(
          absl::StrCat("voucher used at ",
                       absl::FormatTime(absl::RFC3339_full, FromProtoTime(v.honoured_at()), absl::UTCTimeZone())));
    case v1::VOUCHER_STATE_CANCELLED:
      return absl::FailedPreconditionError("voucher cancelled");
    case v1::VOUCHER_STATE_EXPIRED:
      return absl::FailedPreconditionError("voucher expired");
    default:
      break;
  }
  if (FromProtoTime(v.expires_at()) <= now) return absl::FailedPreconditionError("voucher expired");
  return absl::OkStatus();
}

std::string CaptureKey(const std::string& code) { return absl::StrCat("catalog:capture:", code); }
std::string ReleaseKey(const std::string& code) { return absl::StrCat("catalog:release:", code); }

}  // namespace

absl::StatusOr<v1::GetVoucherResponse> Vouchers::GetVoucher(const Principal& p, const v1::GetVoucherRequest& r) {
  ASSIGN_OR_RETURN(std::string code, NormaliseVoucherCode("voucher_code", r.voucher_code()));
  v1::GetVoucherResponse out;
  RETURN_IF_ERROR(deps_.store.Run("GetVoucher", [&](CatalogTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(std::optional<v1::Voucher> v, tx.GetVoucher(code, false));
    if (!v.has_value() || !VoucherVisible(p, *v)) return VoucherNotFound();
    *out.mutable_voucher() = Present(*std::move(v), deps_.Now());
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::ListVouchersResponse> Vouchers::ListVouchers(const Principal& p, const v1::ListVouchersRequest& r) {
  if (p.is_partner() && r.partner_id() != p.partner_id) {
    return absl::PermissionDeniedError("partner_id: a partner must pass its own id");
  }
  if (r.member_id().empty() && r.partner_id().empty()) {
    return absl::InvalidArgumentError("member_id or partner_id: at least one is required");
  }
  if (!r.member_id().empty()) RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  if (!r.partner_id().empty()) RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  ASSIGN_OR_RETURN(int limit, paging::PageSize(r.page_size(), kVouchersPageDefault, kVouchersPageMax));
  VoucherFilter filter;
  filter.member_id = r.member_id();
  filter.partner_id = r.partner_id();
  std::string scope = absl::StrCat("vouchers|", r.member_id(), "|", r.partner_id());
  for (int s : r.states()) {
    filter.states.push_back(static_cast<v1::VoucherState>(s));
    absl::StrAppend(&scope, "|", s);
  }
  if (!r.page_token().empty()) {
    ASSIGN_OR_RETURN(filter.before_id, paging::DecodePageToken(r.page_token(), scope));
  }
  v1::ListVouchersResponse out;
  const absl::Time now = deps_.Now();
  RETURN_IF_ERROR(deps_.store.Run("ListVouchers", [&](CatalogTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(auto rows, tx.ListVouchers(filter, limit + 1));
    const bool more = static_cast<int>(rows.size()) > limit;
    if (more) rows.resize(limit);
    for (auto& [id, v] : rows) *out.add_vouchers() = Present(std::move(v), now);
    if (more) out.set_next_page_token(paging::EncodePageToken(scope, rows.back().first));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::HonourVoucherResponse> Vouchers::HonourVoucher(const Principal& p,
                                                                  const v1::HonourVoucherRequest& r) {
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  ASSIGN_OR_RETURN(std::string code, NormaliseVoucherCode("voucher_code", r.voucher_code()));
  if (r.partner_id() != p.partner_id) {
    return absl::PermissionDeniedError("partner_id: must be the calling partner's own id");
  }
  RETURN_IF_ERROR(ValidateText("reference", r.reference(), 0, kMaxReferenceLength));
  // Look first: only an ISSUED voucher of this partner is captured. The
  // answer itself is decided (and remembered) below.
  std::optional<v1::Voucher> seen;
  RETURN_IF_ERROR(deps_.store.Run("HonourVoucher.read", [&](CatalogTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(seen, tx.GetVoucher(code, false));
    return absl::OkStatus();
  }));
  // Codes are unguessable, so telling another partner that this one is not
  // theirs to honour reveals nothing useful (catalog.proto asks for
  // PERMISSION_DENIED here).
  if (seen.has_value() && seen->partner_id() != p.partner_id) {
    return absl::PermissionDeniedError("only the voucher's honouring partner may honour it");
  }
  std::optional<HoldOutcome> captured;
  absl::Status capture_refusal = absl::OkStatus();
  const std::string marker = RequestMarker(p, r);
  if (seen.has_value() && seen->partner_id() == p.partner_id && seen->state() == v1::VOUCHER_STATE_ISSUED &&
      FromProtoTime(seen->expires_at()) > deps_.Now()) {
    bool ours = false;
    RETURN_IF_ERROR(deps_.store.Run("HonourVoucher.pending", [&](CatalogTx& tx) -> absl::Status {
      ASSIGN_OR_RETURN(ours, tx.StartVoucherOperation(code, kPendingHonour, deps_.Now(), marker));
      return absl::OkStatus();
    }));
    if (!ours) return VoucherBusy();
    absl::StatusOr<HoldOutcome> c = deps_.ledger.Capture(CaptureKey(code), seen->hold_id(), r.reference());
    if (c.ok()) RETURN_IF_ERROR(deps_.CrashAt(SagaPoint::kVoucherLedgerDone));
    if (c.ok()) {
      captured = *c;
    } else if (absl::IsFailedPrecondition(c.status())) {
      capture_refusal = c.status();  // the hold was released meanwhile (cancel, expiry)
    } else {
      return c.status();  // unreachable: nothing changed, retry with the same key
    }
  }
  return Mutate<v1::HonourVoucherResponse>(
      deps_, p, "HonourVoucher", r.idempotency_key(), r,
      [&](CatalogTx& tx, v1::HonourVoucherResponse& out) -> absl::Status {
        const absl::Time now = deps_.Now();
        ASSIGN_OR_RETURN(std::optional<v1::Voucher> v, tx.GetVoucher(code, /*for_update=*/true));
        if (!v.has_value()) return VoucherNotFound();
        if (v->partner_id() != p.partner_id) {
          return absl::PermissionDeniedError("only the voucher's honouring partner may honour it");
        }
        if (v->state() == v1::VOUCHER_STATE_ISSUED && captured.has_value()) {
          v->set_state(v1::VOUCHER_STATE_HONOURED);
          *v->mutable_honoured_at() = ToProtoTime(now);
          v->set_capture_transfer_id(captured->closing_transfer_id);
          v->set_honour_reference(r.reference());
          RETURN_IF_ERROR(tx.UpdateVoucher(*v));
          RETURN_IF_ERROR(tx.ConsumeUnit(v->reward_id()));
          *out.mutable_voucher() = *std::move(v);
          return absl::OkStatus();
        }
        ASSIGN_OR_RETURN(bool finished_for_this_request, FinishedByRepair(tx, *v, v1::VOUCHER_STATE_HONOURED, marker));
        if (finished_for_this_request) {
          *out.mutable_voucher() = *std::move(v);
          return absl::OkStatus();
        }
        RETURN_IF_ERROR(VoucherClosedError(*v, now));
        if (!capture_refusal.ok()) {
          return absl::FailedPreconditionError(absl::StrCat("voucher is no longer valid: ", capture_refusal.message()));
        }
        return absl::AbortedError("voucher changed while honouring; retry with the same key");
      });
}

absl::StatusOr<HoldOutcome> Vouchers::ReleaseHold(const v1::Voucher& voucher, const std::string& reason) {
  absl::StatusOr<HoldOutcome> voided = deps_.ledger.Void(ReleaseKey(voucher.voucher_code()), voucher.hold_id(), reason);
  if (voided.ok()) return voided;
  if (!absl::IsFailedPrecondition(voided.status())) return voided.status();
  // Closed already (expired, or captured by an honour whose voucher update
  // did not land): the ledger's state is the truth.
  return deps_.ledger.GetHold(voucher.hold_id());
}

absl::StatusOr<v1::CancelVoucherResponse> Vouchers::CancelVoucher(const Principal& p,
                                                                  const v1::CancelVoucherRequest& r) {
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  ASSIGN_OR_RETURN(std::string code, NormaliseVoucherCode("voucher_code", r.voucher_code()));
  RETURN_IF_ERROR(ValidateText("reason", r.reason(), 0, kMaxReasonLength));
  std::optional<v1::Voucher> seen;
  RETURN_IF_ERROR(deps_.store.Run("CancelVoucher.read", [&](CatalogTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(seen, tx.GetVoucher(code, false));
    return absl::OkStatus();
  }));
  std::optional<HoldOutcome> released;
  const std::string marker = RequestMarker(p, r);
  std::optional<int64_t> available_now;  // for the answer of a cancel the repair sweep finished
  if (seen.has_value() && VoucherVisible(p, *seen) && seen->state() == v1::VOUCHER_STATE_CANCELLED) {
    absl::StatusOr<int64_t> available = deps_.ledger.AvailablePoints(seen->member_id());
    if (available.ok()) available_now = *available;
  }
  if (seen.has_value() && VoucherVisible(p, *seen) && seen->state() == v1::VOUCHER_STATE_ISSUED &&
      FromProtoTime(seen->expires_at()) > deps_.Now()) {
    bool ours = false;
    RETURN_IF_ERROR(deps_.store.Run("CancelVoucher.pending", [&](CatalogTx& tx) -> absl::Status {
      ASSIGN_OR_RETURN(ours, tx.StartVoucherOperation(code, kPendingCancel, deps_.Now(), marker));
      return absl::OkStatus();
    }));
    if (!ours) return VoucherBusy();
    ASSIGN_OR_RETURN(HoldOutcome h, ReleaseHold(*seen, r.reason()));
    RETURN_IF_ERROR(deps_.CrashAt(SagaPoint::kVoucherLedgerDone));
    if (h.available_points < 0) {
      absl::StatusOr<int64_t> available = deps_.ledger.AvailablePoints(seen->member_id());
      if (available.ok()) h.available_points = *available;
    }
    released = h;
  }
  return Mutate<v1::CancelVoucherResponse>(
      deps_, p, "CancelVoucher", r.idempotency_key(), r,
      [&](CatalogTx& tx, v1::CancelVoucherResponse& out) -> absl::Status {
        const absl::Time now = deps_.Now();
        ASSIGN_OR_RETURN(std::optional<v1::Voucher> v, tx.GetVoucher(code, /*for_update=*/true));
        if (!v.has_value() || !VoucherVisible(p, *v)) return VoucherNotFound();
        if (v->state() == v1::VOUCHER_STATE_ISSUED && released.has_value()) {
          if (released->state == ledger::v1::HOLD_STATE_CAPTURED) {
            return absl::FailedPreconditionError("voucher was honoured; it can no longer be cancelled");
          }
          if (released->state != ledger::v1::HOLD_STATE_VOIDED && released->state != ledger::v1::HOLD_STATE_EXPIRED) {
            return absl::InternalError("voucher hold still open after void");
          }
          ASSIGN_OR_RETURN(std::optional<v1::Reward> reward, tx.GetReward(v->reward_id(), false));
          v->set_state(v1::VOUCHER_STATE_CANCELLED);
          *v->mutable_cancelled_at() = ToProtoTime(now);
          v->set_cancel_reason(r.reason());
          RETURN_IF_ERROR(tx.UpdateVoucher(*v));
          RETURN_IF_ERROR(tx.ReleaseUnit(v->reward_id(), reward.has_value() && !reward->unlimited_stock()));
          *out.mutable_voucher() = *std::move(v);
          out.set_available_points(std::max<int64_t>(released->available_points, 0));
          return absl::OkStatus();
        }
        ASSIGN_OR_RETURN(bool finished_for_this_request, FinishedByRepair(tx, *v, v1::VOUCHER_STATE_CANCELLED, marker));
        if (finished_for_this_request) {
          if (!available_now.has_value()) return absl::UnavailableError("ledger unavailable; retry with the same key");
          *out.mutable_voucher() = *std::move(v);
          out.set_available_points(*available_now);
          return absl::OkStatus();
        }
        RETURN_IF_ERROR(VoucherClosedError(*v, now));
        return absl::AbortedError("voucher changed while cancelling; retry with the same key");
      });
}

}  // namespace loyalty::catalog
