#pragma once
// What every use case of the catalog needs, in one place: the store, the
// ledger client, the member directory, the options and the clock. The
// aggregate Catalog (catalog.h) owns one CatalogDeps and hands each use-case
// class a reference to it. Domain code: no gRPC or MySQL includes.
//
// Thread-safety: the references are to thread-safe objects (all state is in
// the store or behind the clients); the options are read only after
// construction.

#include <functional>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "services/catalog/catalog_store.h"
#include "services/catalog/ledger_client.h"

namespace loyalty::catalog {

// Points between the saga's steps where a test can cut it short, as a crash
// would (nothing after the point runs, no compensation).
enum class SagaPoint {
  kClaimed,       // redemption row written; no hold asked yet
  kHeld,          // the ledger placed the hold; stock not reserved
  kCompensating,  // refusal recorded; the hold not voided yet
  // HonourVoucher / CancelVoucher: the ledger captured / voided the hold,
  // the voucher's own update has not run.
  kVoucherLedgerDone,
};

struct CatalogOptions {
  std::function<absl::Time()> now = [] { return absl::Now(); };
  // A saga untouched for this long is presumed abandoned (its process died)
  // and is compensated by Recover(). Must exceed the ledger deadline.
  absl::Duration saga_grace = absl::Seconds(60);
  // Test hook: a non-OK answer makes Redeem stop at that point and return
  // it, leaving the saga as a crash would.
  std::function<absl::Status(SagaPoint)> crash_at;
  // Settlement's directory: partner ids of rewards and campaigns must be in
  // it (NOT_FOUND otherwise). Null: not checked (no settlement configured).
  PartnerDirectory* partners = nullptr;
};

struct CatalogDeps {
  CatalogStore& store;
  LedgerClient& ledger;
  MemberDirectory& members;
  CatalogOptions options;

  // options.now, truncated to the microseconds the database keeps.
  absl::Time Now() const;
  // Runs options.crash_at at `point` (OK when no hook is set).
  absl::Status CrashAt(SagaPoint point) const {
    return options.crash_at ? options.crash_at(point) : absl::OkStatus();
  }
};

}  // namespace loyalty::catalog
