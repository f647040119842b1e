#pragma once
// Helpers shared by several of settlement's use-case classes: the
// idempotent Mutate wrapper, audit records, loading with NOT_FOUND, the
// partner scoping check, and the bounds that more than one use case loads
// under. Domain code: no gRPC or MySQL includes.
//
// Every mutation is idempotent by key (scoped to the calling credential):
// the request is fingerprinted, its answer (a business failure included) is
// stored in the same transaction as its effects, and a retry gets the same
// answer. INVALID_ARGUMENT and PERMISSION_DENIED are not stored, so a caller
// can correct the request and reuse the key (as membership).
//
// Thread-safe: free functions without state.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/auth/principal.h"
#include "common/idempotency/idempotency.h"
#include "google/protobuf/message.h"
#include "loyalty/settlement/v1/settlement.pb.h"
#include "services/settlement/settlement_store.h"
#include "services/settlement/statement.h"

namespace loyalty::settlement {

// Bounds on what one call loads (TIGER_STYLE: a limit on everything).
inline constexpr int kMaxPartners = 10'000;
inline constexpr int kMaxPeriods = 10'000;
inline constexpr int kMaxStatementsPerPeriod = 10'000;
// The durable journal cursor of the prepaid follower (feed_cursors.name).
inline constexpr char kPrepaidCursor[] = "prepaid";

// A fresh random id, "<prefix>_<20 lower-case Crockford base32>".
std::string NewId(absl::string_view prefix);

// INVALID_ARGUMENT "<field>: <why>".
absl::Status Invalid(absl::string_view field, absl::string_view why);

// Records an audit event of `method` on the entity (before/after as JSON;
// either may be null).
absl::Status Audit(SettlementTx& tx, const auth::Principal& p, absl::string_view method,
                   absl::string_view entity_type, const std::string& entity_id,
                   const google::protobuf::Message* before, const google::protobuf::Message* after,
                   const std::string& key, const std::string& reason, absl::Time now);

// PERMISSION_DENIED when a partner caller names another partner.
absl::Status OwnPartnerOnly(const auth::Principal& p, const std::string& partner_id, absl::string_view what);

// Fills effective_until from the next version.
ContractHistory WithUntil(ContractHistory history);

absl::Status PeriodNotFound(const std::string& id);
// REQUIRES: nothing; validates period_id. NOT_FOUND when it does not exist.
absl::StatusOr<v1::Period> LoadPeriod(SettlementTx& tx, const std::string& period_id, bool for_update);
// NOT_FOUND when the partner does not exist.
absl::StatusOr<v1::Partner> LoadPartner(SettlementTx& tx, const std::string& partner_id, bool for_update);

// Every statement of a period (bounded), by partner_id.
absl::StatusOr<std::vector<v1::Statement>> PeriodStatements(SettlementTx& tx, const std::string& period_id);

template <typename Response>
using MutateBody = std::function<absl::Status(SettlementTx&, Response&)>;

// Runs `body` once per (caller scope, key): claims the key, runs the body
// and stores its answer in one transaction; a retry gets the stored answer.
template <typename Response>
absl::StatusOr<Response> Mutate(SettlementStore& store, const auth::Principal& p, absl::string_view method,
                                const std::string& key, const google::protobuf::Message& request,
                                MutateBody<Response> body) {
  return idempotency::RunOnce<SettlementTx, IdempotencyRecord>(store, method, p.idempotency_scope(), key, request,
                                                               body);
}

}  // namespace loyalty::settlement
