#pragma once
// Group commit for the ledger's mutating commands.
//
// Requests that arrive together are queued; one writer thread takes up to
// `max_batch` of them, applies them in arrival order against the rows of one
// database transaction (each validated against the effects of those before
// it), and commits once. Only then does any of them get its answer: nothing
// is acknowledged before its batch is durable. A request refused by a
// business rule gets its refusal; the others still commit. When a batch
// fails as a whole for an unexpected reason, its requests are re-run one by
// one so that one bad request cannot fail the others.
//
// A caller waits for its request until its deadline, never longer, so a
// caller who has gone does not hold a server thread. A request whose
// deadline passes while it is queued is taken out and not applied; one whose
// deadline has passed when the writer takes it is not applied either
// (DEADLINE_EXCEEDED, nothing written). One already in a batch is finished
// by the writer; a retry with the same key learns its outcome.
//
// With batching off (the naive baseline for benchmarks) every request runs
// its own transaction on the caller's thread.
//
// Thread-safe.

#include <deque>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "services/ledger/ledger_engine.h"
#include "services/ledger/ledger_store.h"
#include "services/ledger/rules_cache.h"

namespace loyalty::ledger {

inline constexpr int kMaxBatchLimit = 4096;
inline constexpr int kMaxQueueLimit = 100'000;

struct BatchWriterOptions {
  bool batching = true;
  int max_batch = 512;    // [1, kMaxBatchLimit]
  int max_queue = 20000;  // beyond this, UNAVAILABLE (back off and retry)
};

class BatchWriter {
 public:
  BatchWriter(LedgerStore& store, RulesCache& rules, BatchWriterOptions options);
  // Stop().
  ~BatchWriter();

  // Drains the queue (every batch taken is finished, even for callers who
  // have gone), then stops the writer thread; later requests get
  // UNAVAILABLE. Idempotent.
  void Stop();

  // Runs `command` and waits for its outcome (command->status/response),
  // at most until command->caller.deadline. The returned status is non-OK
  // when the command never ran (queue full, shutting down, deadline passed),
  // its batch failed (e.g. UNAVAILABLE), or the deadline passed while it
  // ran (DEADLINE_EXCEEDED; then `command` must not be read, the writer may
  // still be using it).
  absl::Status Execute(const std::shared_ptr<Command>& command);

  int64_t batches_committed() const;

 private:
  // Shared by the caller and the writer: either may be the last to hold it.
  struct Pending {
    explicit Pending(std::shared_ptr<Command> c) : command(std::move(c)) {}
    std::shared_ptr<Command> command;
    absl::Status batch_status;
    // Each request waits on its own notification, so finishing a batch wakes
    // exactly its requests and nobody re-checks anybody else's condition.
    absl::Notification done;
  };
  void Loop();
  absl::Status RunBatch(const std::vector<Pending*>& batch, const RulesSnapshot& rules);

  LedgerStore& store_;
  RulesCache& rules_;
  const BatchWriterOptions options_;
  mutable absl::Mutex mu_;
  absl::CondVar queue_nonempty_;
  std::deque<std::shared_ptr<Pending>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t batches_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace loyalty::ledger
