#pragma once
// Coupons: batches of codes a campaign hands out, each worth a bonus at the
// ledger. Owns creating a batch (its codes drawn unique), reading a batch
// and its codes, validating a code, and redeeming it with the bonus grant.
// Domain code: no gRPC or MySQL includes.
//
// Invariants: a code is used at most max_redemptions_per_code times and a
// member at most max_redemptions_per_member times per batch, exactly under
// concurrency (the code row is locked and the counts are checked after the
// counting update). A use whose bonus the ledger refuses is given back and
// the refusal becomes the redeeming key's answer; a bonus the ledger did
// not answer stays due (CatalogJobs::GrantDueCouponBonuses). Every
// mutation is idempotent by key.
//
// Thread-safe: all state is in the store.

#include <string>

#include "absl/status/statusor.h"
#include "common/auth/principal.h"
#include "loyalty/catalog/v1/catalog.pb.h"
#include "services/catalog/catalog_deps.h"
#include "services/catalog/catalog_shared.h"

namespace loyalty::catalog {

class Coupons {
 public:
  using Principal = auth::Principal;

  explicit Coupons(CatalogDeps& deps) : deps_(deps) {}

  absl::StatusOr<v1::CreateCouponBatchResponse> CreateCouponBatch(const Principal& p,
                                                                  const v1::CreateCouponBatchRequest& r);
  absl::StatusOr<v1::GetCouponBatchResponse> GetCouponBatch(const Principal& p, const v1::GetCouponBatchRequest& r);
  absl::StatusOr<v1::ListCouponCodesResponse> ListCouponCodes(const Principal& p,
                                                              const v1::ListCouponCodesRequest& r);
  absl::StatusOr<v1::ValidateCouponResponse> ValidateCoupon(const Principal& p, const v1::ValidateCouponRequest& r);
  // Counts the use (limits exact under concurrency: the code row is locked),
  // then grants the batch's bonus through the ledger, idempotently. A bonus
  // the ledger refuses gives the use back and becomes the key's answer; an
  // unreachable ledger leaves the grant due (GrantDueCouponBonuses).
  absl::StatusOr<v1::RedeemCouponResponse> RedeemCoupon(const Principal& p, const v1::RedeemCouponRequest& r);

  // Grants (or settles) the bonus of a coupon redemption; its transfer id.
  // Used by RedeemCoupon and the job that grants due bonuses.
  absl::StatusOr<std::string> SettleCouponGrant(const std::string& redemption_id);

 private:
  // RedeemCoupon's transaction: checks the code and the member's uses,
  // counts the use and records it (its bonus due when it has one).
  absl::Status CountUse(CatalogTx& tx, const Principal& p, const v1::RedeemCouponRequest& r,
                        const std::string& code, v1::RedeemCouponResponse& resp);

  CatalogDeps& deps_;
};

}  // namespace loyalty::catalog
