#pragma once
// The Redeem saga (docs/adr/0011-catalog.md): points held at the ledger, one
// unit of stock reserved and a voucher issued, or nothing at all. Owns
// Redeem and the compensation of a saga that cannot finish. Domain code: no
// gRPC or MySQL includes.
//
// Invariants: no points are held without a voucher, and no voucher exists
// without its hold. The saga's `redemptions` row is written before anything
// else and records each step, so that CatalogJobs::Recover() can finish or
// compensate a saga cut short by a crash. The row is also the key's
// idempotency record: a retry with the same key gets the saga's answer;
// INVALID_ARGUMENT and transient failures are not remembered.
//
// Thread-safe: all state is in the store; redemptions of one reward
// serialize on its row lock.

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/auth/principal.h"
#include "loyalty/catalog/v1/catalog.pb.h"
#include "services/catalog/catalog_deps.h"

namespace loyalty::catalog {

class RedeemSaga {
 public:
  using Principal = auth::Principal;

  explicit RedeemSaga(CatalogDeps& deps) : deps_(deps) {}

  absl::StatusOr<v1::RedeemResponse> Redeem(const Principal& p, const v1::RedeemRequest& r);

  // Voids the saga's hold (finding it by re-asking Authorize with the same
  // key when its id is unknown) and records the saga FAILED with `outcome`.
  // Used by Redeem and by the recovery job.
  absl::Status Compensate(Redemption red, const absl::Status& outcome);

 private:
  using Answer = absl::StatusOr<v1::RedeemResponse>;
  // Step 0 of a Redeem: its inputs and what the claim transaction decided.
  struct Claim;
  // Steps 2 and 3 of a Redeem: what the issue transaction decided.
  struct Issue;

  absl::Status CheckTier(const std::string& member_id, const v1::Reward& reward);
  // The tier needs membership (another service), so it is checked before
  // the saga's row is written, outside any transaction. `tier_status`:
  // nullopt when the reward has no minimum tier (or is unknown), else the
  // check's outcome. Error: the store failed or membership is unreachable.
  absl::Status CheckTierFirst(const v1::RedeemRequest& r, std::optional<absl::Status>& tier_status);
  // The claim transaction: writes the saga's row (STARTED), or sets the
  // answer from the row a previous request with this key left.
  absl::Status ClaimKey(CatalogTx& tx, Claim& c);
  // Sets c.answer from a previous saga row of this key when that answer is
  // final; leaves it unset when the saga may start again (a transient
  // failure, fully compensated). Error: the stored response is unreadable.
  absl::Status StoredAnswer(const Redemption& existing, Claim& c);
  // Sets `refusal`, the business refusal at claim time (OK when the saga
  // may go on). ABORTED (the store re-runs the claim) when the reward
  // gained a tier limit since CheckTierFirst read it.
  absl::Status RefusalAtClaim(CatalogTx& tx, const std::optional<v1::Reward>& current, const Claim& c,
                              absl::Time now, absl::Status& refusal);
  // The saga row for this attempt: the previous row of the key, or a new one.
  Redemption NewAttempt(std::optional<Redemption> existing, const Claim& c, const std::optional<v1::Reward>& current,
                        absl::Time now);

  // The saga after its row is claimed (state STARTED).
  absl::StatusOr<v1::RedeemResponse> RunSaga(Redemption red);
  // Step 1 failed: records a ledger refusal (nothing held) or compensates a
  // hold that may or may not exist. Returns the answer (always an error).
  absl::Status HoldFailed(const Redemption& red, const absl::Status& failure);
  // Steps 2 and 3, in one local transaction: reserves one unit of stock and
  // issues the voucher, so stock is never reserved for nothing; or records
  // the refusal for compensation.
  absl::Status IssueVoucher(CatalogTx& tx, const Redemption& red, const HoldOutcome& hold, Issue& out);
  // Inserts the saga's voucher under a freshly drawn code.
  absl::StatusOr<v1::Voucher> InsertVoucher(CatalogTx& tx, const Redemption& red, const v1::Reward& reward,
                                            const HoldOutcome& hold, absl::Time now);
  // Compensate, logging (not returning) a failure: the recovery job
  // finishes it.
  void CompensateOrDefer(const Redemption& red, const absl::Status& outcome);

  CatalogDeps& deps_;
};

}  // namespace loyalty::catalog
