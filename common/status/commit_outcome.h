#pragma once
// How a failed write tells "nothing was written" from "perhaps written": an
// UNAVAILABLE from a COMMIT whose outcome is unknown (the connection died
// while it was in flight) carries a payload. common/db sets it; code that
// keeps side effects outside the database (the ledger's campaign budget
// reservations) treats such a write as done, so as never to undo something
// the database may hold. The caller still gets UNAVAILABLE, and its retry
// with the same idempotency key learns the outcome.

#include "absl/status/status.h"
#include "absl/strings/cord.h"

namespace loyalty {

inline constexpr char kCommitOutcomeUnknownPayload[] = "loyalty/commit-outcome-unknown";

inline absl::Status CommitOutcomeUnknownError(absl::string_view message) {
  absl::Status status = absl::UnavailableError(message);
  status.SetPayload(kCommitOutcomeUnknownPayload, absl::Cord("1"));
  return status;
}

inline bool CommitOutcomeUnknown(const absl::Status& status) {
  return status.GetPayload(kCommitOutcomeUnknownPayload).has_value();
}

}  // namespace loyalty
