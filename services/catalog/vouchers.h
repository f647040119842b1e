#pragma once
// Vouchers: what a member holds after Redeem, until the honouring partner
// honours it (the ledger captures the hold), or it is cancelled or expires
// (the ledger voids it and the stock returns). Owns reading and listing
// vouchers, honouring and cancelling them, and releasing a voucher's hold.
// Domain code: no gRPC or MySQL includes.
//
// Invariants: an ISSUED voucher has a PENDING hold, a HONOURED one a
// CAPTURED hold, a CANCELLED or EXPIRED one a released hold. One honour or
// cancel of a voucher is at the ledger at a time (the voucher's pending
// operation, docs/adr/0011-catalog.md); an operation whose own update never
// landed is finished by CatalogJobs::RepairVouchers, and a retry of the
// request that started it gets that outcome. Every mutation is idempotent
// by key. A partner sees the vouchers it honours or channelled.
//
// Thread-safe: all state is in the store.

#include <string>

#include "absl/status/statusor.h"
#include "common/auth/principal.h"
#include "loyalty/catalog/v1/catalog.pb.h"
#include "services/catalog/catalog_deps.h"

namespace loyalty::catalog {

class Vouchers {
 public:
  using Principal = auth::Principal;

  explicit Vouchers(CatalogDeps& deps) : deps_(deps) {}

  absl::StatusOr<v1::GetVoucherResponse> GetVoucher(const Principal& p, const v1::GetVoucherRequest& r);
  absl::StatusOr<v1::ListVouchersResponse> ListVouchers(const Principal& p, const v1::ListVouchersRequest& r);
  absl::StatusOr<v1::HonourVoucherResponse> HonourVoucher(const Principal& p, const v1::HonourVoucherRequest& r);
  absl::StatusOr<v1::CancelVoucherResponse> CancelVoucher(const Principal& p, const v1::CancelVoucherRequest& r);

  // Voids a voucher's hold; the hold as the ledger has it afterwards (a
  // hold closed already is read back). Used by CancelVoucher and the jobs.
  absl::StatusOr<HoldOutcome> ReleaseHold(const v1::Voucher& voucher, const std::string& reason);

 private:
  CatalogDeps& deps_;
};

}  // namespace loyalty::catalog
