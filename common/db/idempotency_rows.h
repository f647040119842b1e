#pragma once
// The `idempotency` table of the catalog and settlement stores (membership's
// has more columns and shares only IdempotencyKeyPresent): one row per
// (scope, idem_key) holding the request, its fingerprint and, once
// `completed`, the answer. idempotency::RunOnce drives these through a
// service's transaction (common/idempotency/idempotency.h).
//
//   scope VARCHAR, idem_key VARCHAR(128), method VARCHAR(64),
//   fingerprint CHAR(64), request MEDIUMBLOB, status_code INT,
//   status_message VARCHAR(1000), response MEDIUMBLOB, completed BOOLEAN,
//   created_at DATETIME(6), PRIMARY KEY (scope, idem_key)

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/db/transaction.h"
#include "common/idempotency/idempotency.h"

namespace loyalty::db {

// Whether `idempotency` has a row, completed or not, for (scope, key):
// a plain (non-locking) read. A claim looks with it before its locking read,
// because a locking read of a missing row takes a gap lock, and concurrent
// claimants of new keys then deadlock on each other's gap locks when they
// insert. Throws sql::SQLException like the statements it runs.
bool IdempotencyKeyPresent(Transaction& tx, const std::string& scope, const std::string& key);

// The record already under the claim's (scope, key), row locked; or, when
// there is none, the claim inserted (uncompleted) and nullopt. A concurrent
// claimant makes it ABORTED, and the retried transaction finds the row.
absl::StatusOr<std::optional<idempotency::Record>> ClaimIdempotencyKey(Transaction& tx,
                                                                       const idempotency::Record& claim);

// Stores the answer on the claimed row (or inserts the row completed).
absl::Status SaveIdempotencyOutcome(Transaction& tx, const idempotency::Record& record);

// The completed record under (scope, key), without locking; nullopt if none.
absl::StatusOr<std::optional<idempotency::Record>> FindIdempotencyKey(Transaction& tx, const std::string& scope,
                                                                      const std::string& key);

}  // namespace loyalty::db
