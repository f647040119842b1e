#include "common/server/database_watch.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include "common/db/transaction.h"
#include "common/log/log.h"

namespace loyalty::server {
namespace {

constexpr char kProbe[] = "SELECT 1";

db::DbOptions ProbeOptions(db::DbOptions options, absl::Duration timeout) {
  options.pool_size = 1;
  options.acquire_timeout = timeout;
  options.connect_timeout = timeout;
  options.read_timeout = timeout;
  options.validate_after_idle = absl::InfiniteDuration();  // the probe is the check
  return options;
}

}  // namespace

DatabaseWatch::DatabaseWatch(const db::DbOptions& database, DatabaseWatchOptions options,
                             std::function<void(bool)> on_change)
    : options_(options), on_change_(std::move(on_change)) {
  absl::StatusOr<std::unique_ptr<db::ConnectionPool>> pool =
      db::ConnectionPool::Create(ProbeOptions(database, options_.probe_timeout));
  if (pool.ok()) pool_ = *std::move(pool);  // the options were valid for the service's own pool
  thread_ = std::thread([this] { Loop(); });
}

DatabaseWatch::~DatabaseWatch() {
  stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

void DatabaseWatch::Loop() {
  bool available = true;
  int failures = 0;
  do {
    absl::Status probe = pool_ == nullptr ? absl::InternalError("no probe pool")
                                          : db::RunWithConnection(*pool_, "health probe", [](db::PooledConnection& c) {
                                              std::unique_ptr<sql::ResultSet> rs(c.Prepare(kProbe).executeQuery());
                                              return absl::OkStatus();
                                            });
    log_.Record(probe);
    failures = probe.ok() ? 0 : failures + 1;
    const bool now_available = probe.ok() || (available && failures < options_.failures_to_down);
    if (now_available != available) {
      available = now_available;
      log::Write(available ? log::Level::kInfo : log::Level::kWarn,
                 available ? "database_available" : "database_unavailable", {{"health", available ? "SERVING" : "NOT_SERVING"}});
      on_change_(available);
    }
  } while (!stop_.WaitForNotificationWithTimeout(options_.interval));
}

}  // namespace loyalty::server
