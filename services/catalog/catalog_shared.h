#pragma once
// Helpers that several of the catalog's use-case classes share: the
// idempotent Mutate wrapper (with idempotency::ShouldRemember, the one rule
// of which answers a key keeps), and small lookups and
// errors. Domain code: no gRPC or MySQL includes. Stateless; thread-safe as
// the store is.

#include <functional>
#include <initializer_list>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/auth/principal.h"
#include "common/idempotency/idempotency.h"
#include "common/status/status_macros.h"
#include "loyalty/catalog/v1/catalog.pb.h"
#include "services/catalog/catalog_deps.h"
#include "services/catalog/catalog_store.h"

namespace loyalty::catalog {

// The operation a voucher has in flight at the ledger (vouchers.pending_op).
inline constexpr int kPendingCancel = 1;
inline constexpr int kPendingHonour = 2;

template <typename Response>
using MutateBody = std::function<absl::Status(CatalogTx&, Response&)>;

// Runs `body` once per idempotency key (idempotency::RunOnce). `references`,
// when given, checks what the request names in other services (tiers,
// segments, partners); it runs only when the key has no stored answer, so
// that a retry gets its original answer even if a referenced object has
// gone since or the other service is down.
template <typename Response>
absl::StatusOr<Response> Mutate(CatalogDeps& deps, const auth::Principal& p, absl::string_view method,
                                const std::string& key, const google::protobuf::Message& request,
                                MutateBody<Response> body, const std::function<absl::Status()>& references = nullptr) {
  if (references) {
    std::optional<IdempotencyRecord> stored;
    RETURN_IF_ERROR(deps.store.Run(method, [&](CatalogTx& tx) -> absl::Status {
      ASSIGN_OR_RETURN(stored, tx.FindKey(p.idempotency_scope(), key));
      return absl::OkStatus();
    }));
    // A key with a stored answer is replayed below without asking again.
    if (!stored.has_value()) RETURN_IF_ERROR(references());
  }
  return idempotency::RunOnce<CatalogTx, IdempotencyRecord>(deps.store, method, p.idempotency_scope(), key, request,
                                                          body);
}

// NOT_FOUND naming `field` when settlement does not know the partner (not
// checked when no partner directory is configured).
absl::Status CheckPartnerExists(const CatalogDeps& deps, absl::string_view field, const std::string& partner_id);

absl::Status RewardNotFound(const std::string& id);
absl::Status CampaignNotFound(const std::string& id);

// Start of the per-member limit period containing `now` (UTC calendar).
absl::Time PeriodStart(v1::LimitPeriod period, absl::Time now);

// The outcome a saga row records (OK when status_code is 0).
absl::Status StatusOf(const Redemption& r);

// Decodes the page token of a list; the scope binds it to the filters.
absl::StatusOr<std::string> KeyCursor(const std::string& token, const std::string& scope);

}  // namespace loyalty::catalog
