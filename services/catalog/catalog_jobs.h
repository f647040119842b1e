#pragma once
// The catalog's background work, which main.cc runs in a loop (and tests
// call directly): recovering interrupted Redeem sagas, repairing vouchers
// whose honour or cancel reached the ledger but not their own update,
// granting coupon bonuses still due, and releasing expired vouchers. Domain
// code: no gRPC or MySQL includes.
//
// Each job handles at most `max` items per call, tries every item even
// after one fails, and then returns the first failure (the caller logs it
// once); otherwise it returns how many items it settled. The jobs finish
// what the use cases started, through the owners' own steps
// (RedeemSaga::Compensate, Vouchers::ReleaseHold, Coupons::SettleCouponGrant).
//
// Thread-safe: all state is in the store; two sweeps at once settle each
// item once (each settlement re-reads its row locked).

#include <string>

#include "absl/status/statusor.h"
#include "services/catalog/catalog_deps.h"
#include "services/catalog/coupons.h"
#include "services/catalog/redeem_saga.h"
#include "services/catalog/vouchers.h"

namespace loyalty::catalog {

class CatalogJobs {
 public:
  CatalogJobs(CatalogDeps& deps, RedeemSaga& redeem, Vouchers& vouchers, Coupons& coupons)
      : deps_(deps), redeem_(redeem), vouchers_(vouchers), coupons_(coupons) {}

  // Compensates sagas left in STARTED or COMPENSATING for longer than
  // saga_grace (all of them when `everything`, e.g. in tests): voids their
  // hold, if any, and records them FAILED. Returns how many were repaired;
  // a saga whose ledger call fails again stays for the next pass.
  absl::StatusOr<int> Recover(int max, bool everything = false);
  // Releases ISSUED vouchers past expires_at: voids the hold (or finds it
  // already released or captured) and returns the stock. Returns how many
  // vouchers changed state.
  absl::StatusOr<int> ExpireVouchers(int max);
  // Repairs ISSUED vouchers whose honour or cancel reached the ledger but not
  // their own update (a crash in between), from the ledger's view of the
  // hold, once saga_grace has passed (at once when `everything`). Returns
  // how many vouchers were settled.
  absl::StatusOr<int> RepairVouchers(int max, bool everything = false);
  // Grants coupon bonuses still due (the ledger was unreachable). Returns
  // how many were settled (granted or refused).
  absl::StatusOr<int> GrantDueCouponBonuses(int max);

 private:
  // Brings an ISSUED voucher in line with its closed hold: CAPTURED ->
  // HONOURED, VOIDED -> `released` (CANCELLED or EXPIRED), EXPIRED ->
  // EXPIRED; stock follows. False if the voucher was not ISSUED.
  absl::StatusOr<bool> SettleVoucher(const std::string& code, const HoldOutcome& hold, v1::VoucherState released,
                                     const std::string& reason);

  CatalogDeps& deps_;
  RedeemSaga& redeem_;
  Vouchers& vouchers_;
  Coupons& coupons_;
};

}  // namespace loyalty::catalog
