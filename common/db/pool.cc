#include "absl/strings/string_view.h"
#include "common/db/pool.h"

#include <cppconn/connection.h>
#include <cppconn/driver.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <mysql_driver.h>

#include <mutex>

#include "absl/strings/str_cat.h"
#include "common/db/mysql_error.h"
#include "common/log/log.h"

namespace loyalty::db {

struct PooledConnection::Slot {
  // Statements must be destroyed before their connection: declared after it.
  std::unique_ptr<sql::Connection> conn;
  absl::flat_hash_map<std::string, std::unique_ptr<sql::PreparedStatement>> statements;
  absl::Time last_used;

  ~Slot() {
    statements.clear();
    if (conn == nullptr) return;
    try {
      conn->close();
    } catch (const sql::SQLException&) {
      // Closing a dead connection may fail; it is gone either way.
    }
  }
};

namespace {

sql::Driver* Driver() {
  // get_mysql_driver_instance() is not thread-safe on its first call.
  static std::once_flag once;
  static sql::Driver* driver = nullptr;
  std::call_once(once, [] { driver = sql::mysql::get_mysql_driver_instance(); });
  return driver;
}

// Session settings every connection gets: UTC, strict SQL.
constexpr absl::string_view kSessionSetup =
    "SET SESSION time_zone = '+00:00', "
    "sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,"
    "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'";

int Seconds(absl::Duration d) {
  return static_cast<int>(std::max<int64_t>(1, absl::ToInt64Seconds(d)));
}

}  // namespace

PooledConnection::PooledConnection(ConnectionPool* pool, std::unique_ptr<Slot> slot)
    : pool_(pool), slot_(std::move(slot)) {}

PooledConnection::PooledConnection(PooledConnection&& other) noexcept
    : pool_(other.pool_), slot_(std::move(other.slot_)), broken_(other.broken_) {
  other.pool_ = nullptr;
}

PooledConnection::~PooledConnection() {
  if (pool_ != nullptr && slot_ != nullptr) pool_->Release(std::move(slot_), broken_);
}

sql::Connection& PooledConnection::raw() { return *slot_->conn; }

sql::PreparedStatement& PooledConnection::Prepare(absl::string_view sql) {
  auto it = slot_->statements.find(sql);
  if (it != slot_->statements.end()) return *it->second;
  if (slot_->statements.size() >= kMaxCachedStatements) slot_->statements.clear();
  std::string key(sql);
  std::unique_ptr<sql::PreparedStatement> stmt(slot_->conn->prepareStatement(key));
  auto [pos, inserted] = slot_->statements.emplace(std::move(key), std::move(stmt));
  return *pos->second;
}

absl::StatusOr<std::unique_ptr<ConnectionPool>> ConnectionPool::Create(DbOptions options) {
  if (options.pool_size < 1 || options.pool_size > kMaxPoolSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("db pool_size must be in [1, ", kMaxPoolSize, "], got ", options.pool_size));
  }
  if (options.socket.empty() && (options.port < 1 || options.port > 65535)) {
    return absl::InvalidArgumentError(absl::StrCat("db port out of range: ", options.port));
  }
  if (options.user.empty()) return absl::InvalidArgumentError("db user is empty");
  return std::unique_ptr<ConnectionPool>(new ConnectionPool(std::move(options)));
}

ConnectionPool::ConnectionPool(DbOptions options) : options_(std::move(options)) { Driver(); }

ConnectionPool::~ConnectionPool() {
  absl::MutexLock lock(&mu_);
  idle_.clear();
}

int ConnectionPool::open_count() const {
  absl::MutexLock lock(&mu_);
  return open_;
}

int64_t ConnectionPool::discarded_count() const {
  absl::MutexLock lock(&mu_);
  return discarded_;
}

absl::StatusOr<std::unique_ptr<PooledConnection::Slot>> ConnectionPool::Connect() {
  sql::ConnectOptionsMap props;
  if (!options_.socket.empty()) {
    props["hostName"] = sql::SQLString("localhost");
    props["socket"] = sql::SQLString(options_.socket);
  } else {
    props["hostName"] = sql::SQLString(absl::StrCat("tcp://", options_.host));
    props["port"] = options_.port;
  }
  props["userName"] = sql::SQLString(options_.user);
  props["password"] = sql::SQLString(options_.password);
  if (!options_.database.empty()) props["schema"] = sql::SQLString(options_.database);
  props["OPT_CONNECT_TIMEOUT"] = Seconds(options_.connect_timeout);
  props["OPT_READ_TIMEOUT"] = Seconds(options_.read_timeout);
  props["OPT_WRITE_TIMEOUT"] = Seconds(options_.read_timeout);
  props["OPT_RECONNECT"] = false;  // the pool decides; a silent reconnect loses session state
  props["OPT_CHARSET_NAME"] = sql::SQLString("utf8mb4");
  try {
    auto slot = std::make_unique<Slot>();
    slot->conn.reset(Driver()->connect(props));
    std::unique_ptr<sql::PreparedStatement> setup(
        slot->conn->prepareStatement(sql::SQLString(std::string(kSessionSetup))));
    setup->execute();
    slot->last_used = absl::Now();
    return slot;
  } catch (const sql::SQLException& e) {
    absl::Status status = FromSqlException(e, "connect to database");
    if (status.code() == absl::StatusCode::kInternal && e.getErrorCode() >= 2000) {
      // Any other client-side failure to connect is still "database unavailable".
      status = absl::UnavailableError(status.message());
    }
    return status;
  }
}

absl::StatusOr<PooledConnection> ConnectionPool::Acquire() {
  const absl::Time deadline = absl::Now() + options_.acquire_timeout;
  std::unique_ptr<Slot> slot;
  {
    absl::MutexLock lock(&mu_);
    auto can_proceed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !idle_.empty() || open_ < options_.pool_size;
    };
    if (!mu_.AwaitWithDeadline(absl::Condition(&can_proceed), deadline)) {
      return absl::UnavailableError(absl::StrCat("database connection pool exhausted (",
                                                 options_.pool_size, " connections in use)"));
    }
    if (!idle_.empty()) {
      // Most recently used first: it is the likeliest to be alive and warm.
      slot = std::move(idle_.back());
      idle_.pop_back();
    } else {
      ++open_;  // reserve the slot before connecting outside the lock
    }
  }
  if (slot != nullptr && absl::Now() - slot->last_used > options_.validate_after_idle) {
    bool valid = false;
    try {
      valid = slot->conn->isValid();
    } catch (const sql::SQLException&) {
      valid = false;
    }
    if (!valid) {
      slot.reset();
      absl::MutexLock lock(&mu_);
      ++discarded_;  // the slot stays reserved (open_ unchanged) for the reconnect
    }
  }
  if (slot == nullptr) {
    absl::StatusOr<std::unique_ptr<Slot>> fresh = Connect();
    if (!fresh.ok()) {
      absl::MutexLock lock(&mu_);
      --open_;
      return fresh.status();
    }
    slot = *std::move(fresh);
  }
  return PooledConnection(this, std::move(slot));
}

void ConnectionPool::Release(std::unique_ptr<Slot> slot, bool broken) {
  std::vector<std::unique_ptr<Slot>> to_close;
  {
    absl::MutexLock lock(&mu_);
    if (broken) {
      // The server likely went away for everyone: drop the idle ones too, so
      // that no request is handed a dead connection after a restart.
      to_close = std::move(idle_);
      idle_.clear();
      to_close.push_back(std::move(slot));
      open_ -= static_cast<int>(to_close.size());
      discarded_ += static_cast<int64_t>(to_close.size());
    } else {
      slot->last_used = absl::Now();
      idle_.push_back(std::move(slot));
    }
  }
  if (broken) log::Warn("db_connections_dropped", {{"count", to_close.size()}});
  // Closing happens outside the lock: it may block on the network.
  to_close.clear();
}

}  // namespace loyalty::db
