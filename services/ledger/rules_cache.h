#pragma once
// The local cache of earn rules: an immutable snapshot, swapped whole.
//
// Readers (every Earn/Authorize) take the current snapshot without blocking
// the refresher; the refresher builds a new snapshot and swaps it in. Until
// settlement, membership and catalog publish the parts they own through
// their snapshot RPCs (rules_feed.h); a JSON file (--earn_rules_file) holding
// the same messages supplies any part that has no feed.
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

// INVALID_ARGUMENT when a partner's snapshot cannot be used (no id, a
// contract rate out of range).
absl::Status ValidatePartnerSnapshot(const settlement::v1::PartnerSnapshot& partner);

// Builds a snapshot; INVALID_ARGUMENT for duplicate ids or bad values.
// BuildSnapshot leaves it mutable for the caller to finish (rules_feed.cc).
absl::StatusOr<std::shared_ptr<RulesSnapshot>> BuildSnapshot(const internal::v1::EarnRulesFile& file,
                                                            int64_t version, int default_lot_expiry_days);
absl::StatusOr<RulesSnapshotPtr> SnapshotFromFile(const internal::v1::EarnRulesFile& file,
                                                  int64_t version, int default_lot_expiry_days);

// Reads and parses a JSON EarnRulesFile.
absl::StatusOr<internal::v1::EarnRulesFile> ReadRulesFile(const std::string& path);

}  // namespace loyalty::ledger
