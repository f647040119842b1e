#pragma once
// A service's background job on a thread of its own: a poller, a sweeper, a
// feed follower. The one way the services run work that is not a call.
//
//   PeriodicJob sweep("voucher_sweep", absl::Seconds(5), [&] {
//     absl::StatusOr<int> n = catalog.ExpireVouchers(kBatch);
//     expiry_log.Record(n.status());            // failures: log::OutageLog
//     return n.ok() && *n == kBatch ? PeriodicJob::kAtOnce : PeriodicJob::kAfterInterval;
//   });
//   ...
//   sweep.Stop();   // on BeginShutdown: returns at once
//   // ~PeriodicJob (or Join()) waits for the step in progress to end.
//
// - The step runs after `first_delay` (default: at once), then again
//   `interval` after each step ended; a step that answers kAtOnce (a full
//   batch: more is waiting) runs again without waiting.
// - An interval of zero or less disables the job: no thread is started.
// - Stop() ends the wait at once; a step in progress is not interrupted, but
//   a step that loops in chunks should check stopping() between chunks.
// - The step's failures are its own to report (log::OutageLog); the job
//   never stops because a step failed.
// Thread-safe.

#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace loyalty::server {

class PeriodicJob {
 public:
  enum Next { kAfterInterval, kAtOnce };
  using Step = std::function<Next()>;

  PeriodicJob(std::string name, absl::Duration interval, Step step,
              absl::Duration first_delay = absl::ZeroDuration());
  ~PeriodicJob();
  PeriodicJob(const PeriodicJob&) = delete;
  PeriodicJob& operator=(const PeriodicJob&) = delete;

  // Asks the job to end; does not wait. Idempotent.
  void Stop();
  // Stop(), then waits until the step in progress, if any, has returned.
  void Join();
  bool stopping() const { return stop_.HasBeenNotified(); }
  bool running() const { return thread_.joinable(); }
  const std::string& name() const { return name_; }

 private:
  void Loop(absl::Duration interval, absl::Duration first_delay);

  const std::string name_;
  Step step_;
  std::once_flag stop_once_;
  absl::Notification stop_;
  std::thread thread_;  // started last, in the constructor's body
};

}  // namespace loyalty::server
