#pragma once
// What settlement's use-case classes share: the store, the ledger client,
// the options and the clock. The aggregate Settlement (settlement.h) owns
// one SettlementDeps and hands each use-case class a reference to it.
//
// Thread-safe: nothing here changes after construction; the store and the
// ledger client are thread-safe themselves.

#include <functional>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "services/settlement/ledger_client.h"
#include "services/settlement/settlement_store.h"

namespace loyalty::settlement {

inline constexpr int kMaxJournalPageSize = 5000;

struct SettlementOptions {
  // Journal transfers counted per close transaction.
  int close_page_size = 2000;
  std::function<absl::Time()> now = [] { return absl::Now(); };
};

struct SettlementDeps {
  SettlementStore& store;
  LedgerClient& ledger;
  SettlementOptions options;

  // options.now(), truncated to microseconds as stored (DATETIME(6)).
  absl::Time Now() const;
};

}  // namespace loyalty::settlement
