#pragma once
// The local cache of earn rules: an immutable snapshot, swapped whole.
//
// Readers (every Earn/Authorize) take the current snapshot without blocking
// the refresher; the refresher builds a new snapshot and swaps it in. Until
// the settlement, membership and catalog services publish their snapshot
// RPCs, the snapshot is seeded from a JSON file (--earn_rules_file) that
// holds the same messages, re-read when it changes.
// See docs/adr/0006-ledger-earn-rules-cache.md.

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "loyalty/ledger/internal/v1/earn_rules_file.pb.h"
#include "services/ledger/earn_rules.h"

namespace loyalty::ledger {

class RulesCache {
 public:
  explicit RulesCache(RulesSnapshotPtr initial) : current_(std::move(initial)) {}

  RulesSnapshotPtr Current() const {
    absl::MutexLock lock(&mu_);
    return current_;
  }
  void Replace(RulesSnapshotPtr next) {
    absl::MutexLock lock(&mu_);
    current_ = std::move(next);
  }

 private:
  mutable absl::Mutex mu_;
  RulesSnapshotPtr current_ ABSL_GUARDED_BY(mu_);
};

// Builds a snapshot; INVALID_ARGUMENT for duplicate ids or bad values.
absl::StatusOr<RulesSnapshotPtr> SnapshotFromFile(const internal::v1::EarnRulesFile& file,
                                                  int64_t version, int default_lot_expiry_days);

// Reads and parses a JSON EarnRulesFile.
absl::StatusOr<internal::v1::EarnRulesFile> ReadRulesFile(const std::string& path);

}  // namespace loyalty::ledger
