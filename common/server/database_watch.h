#pragma once
// Watches a service's database for its health status.
//
// Every `interval` a probe runs `SELECT 1` on a connection of its own (not
// the service's pool, which may be busy under load) with short timeouts. A
// Galera node that is not synced refuses it too (1047). After
// `failures_to_down` failed probes in a row the database counts as
// unavailable; one good probe makes it available again. Each change is
// passed to `on_change` (e.g. Server::SetDatabaseAvailable) and logged;
// failures are logged once per outage.
//
// Thread-safe; the probe runs on a thread of its own until destruction.

#include <functional>
#include <memory>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/db/pool.h"
#include "common/log/outage_log.h"

namespace loyalty::server {

struct DatabaseWatchOptions {
  absl::Duration interval = absl::Seconds(1);
  int failures_to_down = 2;
  absl::Duration probe_timeout = absl::Seconds(2);
};

class DatabaseWatch {
 public:
  // Starts probing at once. `database` selects the server and schema.
  DatabaseWatch(const db::DbOptions& database, DatabaseWatchOptions options,
                std::function<void(bool available)> on_change);
  // Stops the probe thread.
  ~DatabaseWatch();

 private:
  void Loop();

  const DatabaseWatchOptions options_;
  const std::function<void(bool)> on_change_;
  std::unique_ptr<db::ConnectionPool> pool_;  // one connection, for the probe only
  log::OutageLog log_{"database_probe"};
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace loyalty::server
