// server::PeriodicJob: when the step runs, and that stopping neither waits
// for the interval nor cuts a step short.
#include "common/server/periodic_job.h"

#include <atomic>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace loyalty::server {
namespace {

// Far longer than any test may take: reaching the end of an interval would
// time the test out, so a test that passes never waited for one.
constexpr absl::Duration kForever = absl::Hours(1);
constexpr absl::Duration kPatience = absl::Seconds(30);

TEST(PeriodicJobTest, RunsAtOnceThenAgainRightAwayWhileMoreIsWaiting) {
  std::atomic<int> steps{0};
  absl::Notification sixth;
  PeriodicJob job("test", kForever, [&] {
    const int n = ++steps;
    if (n == 6) sixth.Notify();
    // Five full batches, then nothing more is waiting.
    return n < 6 ? PeriodicJob::kAtOnce : PeriodicJob::kAfterInterval;
  });
  ASSERT_TRUE(sixth.WaitForNotificationWithTimeout(kPatience));
  job.Join();
  EXPECT_EQ(steps.load(), 6);  // the seventh waits for the interval
}

TEST(PeriodicJobTest, RunsAgainAfterTheInterval) {
  std::atomic<int> steps{0};
  absl::Notification third;
  PeriodicJob job("test", absl::Milliseconds(10), [&] {
    if (++steps == 3) third.Notify();
    return PeriodicJob::kAfterInterval;
  });
  EXPECT_TRUE(third.WaitForNotificationWithTimeout(kPatience));
}

TEST(PeriodicJobTest, ANonPositiveIntervalStartsNothing) {
  std::atomic<int> steps{0};
  {
    PeriodicJob job("test", absl::ZeroDuration(), [&] {
      ++steps;
      return PeriodicJob::kAfterInterval;
    });
    EXPECT_FALSE(job.running());
  }
  EXPECT_EQ(steps.load(), 0);
}

TEST(PeriodicJobTest, StopEndsTheWaitForTheFirstRunAndTheInterval) {
  std::atomic<int> steps{0};
  PeriodicJob delayed("test", kForever, [&] {
    ++steps;
    return PeriodicJob::kAfterInterval;
  }, /*first_delay=*/kForever);
  absl::Notification ran;
  PeriodicJob waiting("test", kForever, [&] {
    ran.Notify();
    return PeriodicJob::kAfterInterval;
  });
  ASSERT_TRUE(ran.WaitForNotificationWithTimeout(kPatience));
  // Both threads are now waiting an hour; joining must not.
  delayed.Join();
  waiting.Join();
  EXPECT_EQ(steps.load(), 0);  // the delayed job never ran
  EXPECT_TRUE(delayed.stopping());
}

TEST(PeriodicJobTest, JoinWaitsForTheStepInProgressWhichSeesStopping) {
  absl::Notification started;
  std::atomic<int> chunks{0};
  std::atomic<bool> finished{false};
  PeriodicJob job("test", kForever, [&]() {
    // A step that works in chunks and checks for shutdown between them.
    while (!job.stopping()) {
      if (++chunks == 1) started.Notify();
      absl::SleepFor(absl::Milliseconds(1));
    }
    finished = true;
    return PeriodicJob::kAtOnce;  // not run again: the job is stopping
  });
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(kPatience));
  job.Stop();  // returns at once
  job.Join();
  EXPECT_TRUE(finished.load());
  EXPECT_GE(chunks.load(), 1);
}

}  // namespace
}  // namespace loyalty::server
