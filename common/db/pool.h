#pragma once
// A bounded pool of MariaDB connections (MySQL Connector/C++ 1.1).
//
// - At most `pool_size` connections exist; Acquire() waits up to
//   `acquire_timeout` for one and then fails with UNAVAILABLE.
// - A connection idle for longer than `validate_after_idle` is pinged before
//   it is handed out; a dead one is replaced by a fresh connection.
// - A connection on which a connection-level error was seen (see
//   IsConnectionError) is marked broken and closed when it comes back, and
//   every idle connection is dropped with it: after a server restart they are
//   all dead. So a broken connection is never handed out twice, and the pool
//   reconnects by itself once the server is back.
// - Each connection keeps a bounded cache of its prepared statements.
//
// Thread-safe. A PooledConnection is used by one thread at a time.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace sql {
class Connection;
class PreparedStatement;
}  // namespace sql

namespace loyalty::db {

inline constexpr int kMaxPoolSize = 512;
inline constexpr size_t kMaxCachedStatements = 128;

struct DbOptions {
  std::string host = "127.0.0.1";
  int port = 3307;
  std::string socket;    // when non-empty, used instead of host and port
  std::string user = "loyalty";
  std::string password;  // secret: never logged
  std::string database;  // empty: no default schema
  int pool_size = 16;
  absl::Duration acquire_timeout = absl::Seconds(5);
  absl::Duration connect_timeout = absl::Seconds(3);
  // Bounds how long one statement may block on a dead server.
  absl::Duration read_timeout = absl::Seconds(30);
  absl::Duration validate_after_idle = absl::Milliseconds(250);
};

class ConnectionPool;

// A connection lent by the pool; returned when destroyed. Move-only.
class PooledConnection {
 public:
  PooledConnection(PooledConnection&& other) noexcept;
  PooledConnection& operator=(PooledConnection&&) = delete;
  PooledConnection(const PooledConnection&) = delete;
  ~PooledConnection();

  sql::Connection& raw();
  // A prepared statement for `sql`, cached on this connection. The statement
  // stays owned by the connection; do not keep it past the lease.
  sql::PreparedStatement& Prepare(absl::string_view sql);
  // The connection must not be reused (a connection-level error was seen).
  void MarkBroken() { broken_ = true; }
  bool broken() const { return broken_; }

 private:
  friend class ConnectionPool;
  struct Slot;
  PooledConnection(ConnectionPool* pool, std::unique_ptr<Slot> slot);

  ConnectionPool* pool_;
  std::unique_ptr<Slot> slot_;
  bool broken_ = false;
};

class ConnectionPool {
 public:
  // Validates the options; connects lazily.
  static absl::StatusOr<std::unique_ptr<ConnectionPool>> Create(DbOptions options);
  ~ConnectionPool();

  // UNAVAILABLE when no connection can be had within acquire_timeout, or the
  // server cannot be reached.
  absl::StatusOr<PooledConnection> Acquire();

  const DbOptions& options() const { return options_; }
  // Connections currently open (idle and lent).
  int open_count() const;
  // Connections closed because they were broken or failed validation.
  int64_t discarded_count() const;

 private:
  friend class PooledConnection;
  using Slot = PooledConnection::Slot;
  explicit ConnectionPool(DbOptions options);
  absl::StatusOr<std::unique_ptr<Slot>> Connect();
  void Release(std::unique_ptr<Slot> slot, bool broken);

  const DbOptions options_;
  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<Slot>> idle_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t discarded_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace loyalty::db
