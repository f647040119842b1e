#pragma once
// Settlement periods and their close: create, close, finalise, read and
// list periods. Closing counts the ledger journal of the period and builds
// one DRAFT statement per partner; finalising makes them FINAL.
//
// ClosePeriod is resumable (docs/adr/0010-settlement.md): each journal page
// is counted in the same transaction that advances the period's
// processed_sequence, so a crash or a deadline between pages loses nothing
// and counts nothing twice; calling again continues from
// processed_sequence.
//
// Invariants: periods never overlap; a period closes only after it ended
// and after every earlier period closed; its journal range starts after the
// previous cut-off; OPEN -> CLOSING -> CLOSED -> FINAL, never back.
//
// Thread-safe: no mutable state besides the store and the ledger client;
// concurrent closes of one period count each page once.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/auth/principal.h"
#include "loyalty/settlement/v1/settlement.pb.h"
#include "services/settlement/settlement_deps.h"

namespace loyalty::settlement {

class PeriodClose {
 public:
  using Principal = auth::Principal;

  explicit PeriodClose(const SettlementDeps& deps);

  absl::StatusOr<v1::CreatePeriodResponse> CreatePeriod(const Principal& p, const v1::CreatePeriodRequest& r);
  absl::StatusOr<v1::ClosePeriodResponse> ClosePeriod(const Principal& p, const v1::ClosePeriodRequest& r);
  absl::StatusOr<v1::FinalizePeriodResponse> FinalizePeriod(const Principal& p, const v1::FinalizePeriodRequest& r);
  absl::StatusOr<v1::GetPeriodResponse> GetPeriod(const Principal& p, const v1::GetPeriodRequest& r);
  absl::StatusOr<v1::ListPeriodsResponse> ListPeriods(const Principal& p, const v1::ListPeriodsRequest& r);

 private:
  // Moves an OPEN period to CLOSING (fixing its range) and counts journal
  // pages up to the cut-off. Safe to repeat.
  absl::Status CountJournal(const Principal& p, const std::string& period_id, int64_t requested_cutoff);
  absl::Status StartClose(const Principal& p, const v1::Period& period, int64_t requested_cutoff);

  const SettlementDeps& deps_;
};

}  // namespace loyalty::settlement
