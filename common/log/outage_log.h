#pragma once
// Logs the failures of a repeated job (a poller, a sweeper, a health probe)
// once per outage instead of once per try:
//
//   OutageLog sweep_log("hold_sweep");
//   ...every second...
//   sweep_log.Record(ledger.SweepExpiredHolds(1000).status());
//
// - The first failure logs `<name>_failing` (warn) with its error.
// - Later failures with the same code are only counted; a failure with a
//   different code logs `<name>_failing` again, with the count so far.
// - The first success after failures logs `<name>_recovered` (info) with the
//   number of failed tries and how long the outage lasted.
//
// Thread-safe.

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace loyalty::log {

class OutageLog {
 public:
  explicit OutageLog(std::string name) : name_(std::move(name)) {}

  // Records the outcome of one try.
  void Record(const absl::Status& status);
  // Whether the last try failed.
  bool failing() const;

 private:
  const std::string name_;
  mutable absl::Mutex mu_;
  int64_t failures_ ABSL_GUARDED_BY(mu_) = 0;
  absl::StatusCode last_code_ ABSL_GUARDED_BY(mu_) = absl::StatusCode::kOk;
  absl::Time since_ ABSL_GUARDED_BY(mu_);
};

}  // namespace loyalty::log
