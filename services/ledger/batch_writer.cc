#include "services/ledger/batch_writer.h"

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/status/status_macros.h"

namespace loyalty::ledger {

BatchWriter::BatchWriter(LedgerStore& store, RulesCache& rules, BatchWriterOptions options)
    : store_(store), rules_(rules), options_(options) {
  if (options_.batching) thread_ = std::thread([this] { Loop(); });
}

BatchWriter::~BatchWriter() {
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
  return store_.RunBatch([&](BatchState& state) -> absl::Status {
    PrefetchKeys keys;
    for (const Pending* p : batch) CollectPrefetchKeys(*p->command, &keys);
    RETURN_IF_ERROR(state.Prefetch(keys));
    for (Pending* p : batch) {
      p->command->status = absl::OkStatus();
      p->command->response.reset();
      RETURN_IF_ERROR(ApplyCommand(state, rules, *p->command));
    }
    return absl::OkStatus();
  });
}

absl::Status BatchWriter::Execute(Command& command) {
  if (!options_.batching) {
    Pending p{&command, absl::OkStatus(), {}};
    RulesSnapshotPtr rules = rules_.Current();
    absl::Status s = RunBatch({&p}, *rules);
    if (s.ok()) {
      absl::MutexLock lock(&mu_);
      ++batches_;
    }
    return s;
  }
  Pending pending{&command, absl::OkStatus(), {}};
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::UnavailableError("ledger is shutting down");
    if (static_cast<int>(queue_.size()) >= options_.max_queue) {
      return absl::UnavailableError("ledger write queue is full; retry with the same key");
    }
    queue_.push_back(&pending);
    queue_nonempty_.Signal();
  }
  pending.done.WaitForNotification();
  return pending.batch_status;
}

void BatchWriter::Loop() {
  const int max_batch = std::clamp(options_.max_batch, 1, kMaxBatchLimit);
  while (true) {
    std::vector<Pending*> batch;
    {
      absl::MutexLock lock(&mu_);
      while (queue_.empty() && !stopping_) queue_nonempty_.Wait(&mu_);
      if (queue_.empty()) return;  // stopping and drained
      while (!queue_.empty() && static_cast<int>(batch.size()) < max_batch) {
        batch.push_back(queue_.front());
        queue_.pop_front();
      }
    }
    RulesSnapshotPtr rules = rules_.Current();
    const absl::Time started = absl::Now();
    absl::Status status = RunBatch(batch, *rules);
    log::Debug("ledger_batch", {{"size", batch.size()},
                                {"duration_us", absl::ToInt64Microseconds(absl::Now() - started)}});
    if (!status.ok() && batch.size() > 1 && status.code() != absl::StatusCode::kUnavailable) {
      // Isolate whichever request broke the batch: each runs on its own.
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
