#pragma once
// A throwaway schema on the test MariaDB for one test (or one fixture).
//
// The server comes from the environment that deploy/test.sh sets:
//   LOYALTY_TEST_DB_HOST, LOYALTY_TEST_DB_PORT, LOYALTY_TEST_DB_SOCKET,
//   LOYALTY_TEST_DB_USER, LOYALTY_TEST_DB_PASSWORD
// with defaults matching that script. There is no fallback to a fake: a test
// that needs the database fails when it cannot be reached.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/db/pool.h"

namespace loyalty::testing {

// Server options from the environment (no database selected).
db::DbOptions TestServerOptions();

class TestDatabase {
 public:
  // Creates a fresh, uniquely named schema. The name starts with `prefix`.
  static absl::StatusOr<std::unique_ptr<TestDatabase>> Create(const std::string& prefix = "t");
  // Drops the schema (unless LOYALTY_TEST_KEEP_DB=1).
  ~TestDatabase();

  const std::string& name() const { return name_; }
  // Options that select this schema.
  const db::DbOptions& options() const { return options_; }
  // A pool on this schema, created on first use.
  db::ConnectionPool& pool();
  // A new, separate pool on this schema.
  absl::StatusOr<std::unique_ptr<db::ConnectionPool>> NewPool(int size) const;

 private:
  TestDatabase(std::string name, db::DbOptions options)
      : name_(std::move(name)), options_(std::move(options)) {}
  std::string name_;
  db::DbOptions options_;
  std::unique_ptr<db::ConnectionPool> pool_;
};

// Runs `deploy/dev-db.sh ACTION DIR` on the test server (ACTION: stop, start,
// restart) with the port and password it was started with. Needs
// LOYALTY_DEV_DB_SCRIPT and LOYALTY_TEST_DB_DIR, which deploy/test.sh sets;
// FAILED_PRECONDITION without them. Tests using it must be RUN_SERIAL.
absl::Status RunTestDbScript(const std::string& action);

// `options` reaching the same server over TCP at 127.0.0.1:port instead (a
// FaultProxy in front of it).
db::DbOptions OverTcp(db::DbOptions options, int port);

// Runs one statement without parameters on `pool` (test setup only).
absl::Status ExecForTest(db::ConnectionPool& pool, const std::string& sql);
// Runs a query that returns one integer; `params` are bound to its ?s.
absl::StatusOr<int64_t> QueryIntForTest(db::ConnectionPool& pool, const std::string& sql,
                                        const std::vector<std::string>& params = {});

// One line per table of the pool's schema, "<table> <rows> <checksum>", in
// table order: equal before and after a call when the call wrote nothing
// (CHECKSUM TABLE covers every column of every row).
absl::StatusOr<std::string> TableChecksumsForTest(db::ConnectionPool& pool);

// The environment a service binary needs to run on `db` with the API keys
// in `keys_file`: LOYALTY_DB_* and LOYALTY_API_KEYS_FILE (the shape of
// ServiceProcess::EnvVars; append service-specific variables to it). With
// `tcp_port` set, the service reaches the database over TCP at
// 127.0.0.1:tcp_port instead (a FaultProxy in front of it).
std::vector<std::pair<std::string, std::string>> ServiceDbEnv(const TestDatabase& db,
                                                              const std::string& keys_file,
                                                              int tcp_port = 0);

}  // namespace loyalty::testing
