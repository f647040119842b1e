#include "services/ledger/batch_writer.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/status/commit_outcome.h"
#include "common/status/status_macros.h"

namespace loyalty::ledger {

BatchWriter::BatchWriter(LedgerStore& store, RulesCache& rules, BatchWriterOptions options)
    : store_(store), rules_(rules), options_(options) {
  if (options_.batching) thread_ = std::thread([this] { Loop(); });
}

BatchWriter::~BatchWriter() { Stop(); }

void BatchWriter::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    queue_nonempty_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
}

int64_t BatchWriter::batches_committed() const {
  absl::MutexLock lock(&mu_);
  return batches_;
}

absl::Status BatchWriter::RunBatch(const std::vector<Pending*>& batch, const RulesSnapshot& rules) {
  BudgetReservations budgets(rules.budgets.get());
  absl::Status status = store_.RunBatch([&](BatchState& state) -> absl::Status {
    budgets.ReleaseAll();  // a re-run (ABORTED) starts from the leases as they were
    PrefetchKeys keys;
    for (const Pending* p : batch) CollectPrefetchKeys(*p->command, &keys);
    RETURN_IF_ERROR(state.Prefetch(keys));
    for (Pending* p : batch) {
      p->command->status = absl::OkStatus();
      p->command->response = CommandResponse();
      RETURN_IF_ERROR(ApplyCommand(state, rules, budgets, *p->command));
    }
    return absl::OkStatus();
  });
  // Committed, or perhaps committed (the connection died at COMMIT): the
  // bonuses count as given, so the budget is never overspent. Otherwise
  // nothing was given (budgets' destructor releases).
  if (status.ok() || CommitOutcomeUnknown(status)) budgets.ConfirmAll();
  return status;
}

namespace {

// A command whose caller has stopped waiting is not applied: it would take a
// place in the batch for an answer nobody reads. Nothing was written, so a
// retry with the same key runs it.
absl::Status CallerGone(const Command& command, absl::Time now) {
  if (now < command.caller.deadline) return absl::OkStatus();
  return absl::DeadlineExceededError("the deadline passed before the request was applied; nothing was written");
}

}  // namespace

absl::Status BatchWriter::Execute(const std::shared_ptr<Command>& command) {
  RETURN_IF_ERROR(CallerGone(*command, absl::Now()));
  auto pending = std::make_shared<Pending>(command);
  if (!options_.batching) {
    RulesSnapshotPtr rules = rules_.Current();
    absl::Status s = RunBatch({pending.get()}, *rules);
    if (s.ok()) {
      absl::MutexLock lock(&mu_);
      ++batches_;
    }
    return s;
  }
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::UnavailableError("ledger is shutting down");
    if (static_cast<int>(queue_.size()) >= options_.max_queue) {
      return absl::UnavailableError("ledger write queue is full; retry with the same key");
    }
    queue_.push_back(pending);
    queue_nonempty_.Signal();
  }
  if (pending->done.WaitForNotificationWithDeadline(command->caller.deadline)) return pending->batch_status;
  // The caller has gone. Still queued: take it out, nothing was applied.
  // Already in a batch: the writer finishes it (it shares `pending`), and a
  // retry with the same key learns the outcome. Either way this thread goes
  // back to the server at once.
  absl::MutexLock lock(&mu_);
  if (pending->done.HasBeenNotified()) return pending->batch_status;
  auto it = std::find(queue_.begin(), queue_.end(), pending);
  if (it != queue_.end()) {
    queue_.erase(it);
    return CallerGone(*command, absl::InfiniteFuture());
  }
  return absl::DeadlineExceededError(
      "the deadline passed while the request was being applied; retry with the same key to learn its outcome");
}

void BatchWriter::Loop() {
  const int max_batch = std::clamp(options_.max_batch, 1, kMaxBatchLimit);
  while (true) {
    std::vector<std::shared_ptr<Pending>> taken;  // kept alive until notified
    std::vector<Pending*> batch;
    {
      absl::MutexLock lock(&mu_);
      while (queue_.empty() && !stopping_) queue_nonempty_.Wait(&mu_);
      if (queue_.empty()) return;  // stopping and drained
      const absl::Time now = absl::Now();
      while (!queue_.empty() && static_cast<int>(batch.size()) < max_batch) {
        std::shared_ptr<Pending> p = queue_.front();
        queue_.pop_front();
        p->batch_status = CallerGone(*p->command, now);
        if (p->batch_status.ok()) {
          batch.push_back(p.get());
          taken.push_back(std::move(p));
        } else {
          p->done.Notify();
        }
      }
    }
    if (batch.empty()) continue;
    RulesSnapshotPtr rules = rules_.Current();
    const absl::Time started = absl::Now();
    absl::Status status = RunBatch(batch, *rules);
    log::Debug("ledger_batch", {{"size", batch.size()},
                                {"duration_us", absl::ToInt64Microseconds(absl::Now() - started)}});
    if (!status.ok() && batch.size() > 1 && !absl::IsUnavailable(status) && !absl::IsAborted(status)) {
      // Isolate whichever request broke the batch: each runs on its own.
      // Not for UNAVAILABLE (the database) nor ABORTED (a conflict, e.g. with
      // a writer on another Galera node, after the retries): one
      // transaction per request would only conflict more.
      log::Warn("ledger_batch_split", {{"size", batch.size()}, {"error", status.ToString()}});
      for (Pending* p : batch) p->batch_status = RunBatch({p}, *rules);
    } else {
      for (Pending* p : batch) p->batch_status = status;
    }
    {
      absl::MutexLock lock(&mu_);
      if (status.ok()) ++batches_;
    }
    for (Pending* p : batch) p->done.Notify();
  }
}

}  // namespace loyalty::ledger
