#include "common/server/periodic_job.h"

#include <utility>

namespace loyalty::server {

PeriodicJob::PeriodicJob(std::string name, absl::Duration interval, Step step, absl::Duration first_delay)
    : name_(std::move(name)), step_(std::move(step)) {
  if (interval > absl::ZeroDuration()) {
    thread_ = std::thread([this, interval, first_delay] { Loop(interval, first_delay); });
  }
}

PeriodicJob::~PeriodicJob() { Join(); }

void PeriodicJob::Stop() {
  std::call_once(stop_once_, [this] { stop_.Notify(); });  // Notify() may run once only
}

void PeriodicJob::Join() {
  Stop();
  if (thread_.joinable()) thread_.join();
}

void PeriodicJob::Loop(absl::Duration interval, absl::Duration first_delay) {
  if (first_delay > absl::ZeroDuration() && stop_.WaitForNotificationWithTimeout(first_delay)) return;
  while (!stop_.HasBeenNotified()) {
    if (step_() == kAtOnce) continue;
    stop_.WaitForNotificationWithTimeout(interval);
  }
}

}  // namespace loyalty::server
