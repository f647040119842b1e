#include "common/testing/test_db.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/connection.h>
#include <cppconn/statement.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/db/migrations.h"
#include "common/db/transaction.h"
#include "common/status/status_macros.h"

namespace loyalty::testing {
namespace {

std::string Env(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

}  // namespace

db::DbOptions TestServerOptions() {
  db::DbOptions options;
  options.host = Env("LOYALTY_TEST_DB_HOST", "127.0.0.1");
  int port = 3308;
  (void)absl::SimpleAtoi(Env("LOYALTY_TEST_DB_PORT", "3308"), &port);
  options.port = port;
  options.socket = Env("LOYALTY_TEST_DB_SOCKET", "");
  options.user = Env("LOYALTY_TEST_DB_USER", "loyalty");
  options.password = Env("LOYALTY_TEST_DB_PASSWORD", "loyalty-test");
  options.pool_size = 8;
  options.acquire_timeout = absl::Seconds(10);
  return options;
}

absl::StatusOr<std::unique_ptr<TestDatabase>> TestDatabase::Create(const std::string& prefix) {
  static std::atomic<int> counter{0};
  std::random_device rd;
  const std::string name = absl::StrCat("loyalty_", prefix, "_", getpid(), "_", counter++, "_",
                                        absl::Hex(rd() & 0xffff));
  db::DbOptions options = TestServerOptions();
  RETURN_IF_ERROR(db::EnsureDatabase(options, name));
  options.database = name;
  return std::unique_ptr<TestDatabase>(new TestDatabase(name, std::move(options)));
}

TestDatabase::~TestDatabase() {
  pool_.reset();
  if (Env("LOYALTY_TEST_KEEP_DB", "0") == "1") return;
  db::DbOptions server = options_;
  server.database.clear();
  server.pool_size = 1;
  auto pool = db::ConnectionPool::Create(server);
  if (!pool.ok()) return;
  (void)ExecForTest(**pool, absl::StrCat("DROP DATABASE IF EXISTS `", name_, "`"));
}

db::ConnectionPool& TestDatabase::pool() {
  if (pool_ == nullptr) pool_ = *NewPool(options_.pool_size);
  return *pool_;
}

absl::StatusOr<std::unique_ptr<db::ConnectionPool>> TestDatabase::NewPool(int size) const {
  db::DbOptions options = options_;
  options.pool_size = size;
  return db::ConnectionPool::Create(options);
}

absl::Status RunTestDbScript(const std::string& action) {
  const std::string script = Env("LOYALTY_DEV_DB_SCRIPT", "");
  const std::string dir = Env("LOYALTY_TEST_DB_DIR", "");
  if (script.empty() || dir.empty()) {
    return absl::FailedPreconditionError(
        "LOYALTY_DEV_DB_SCRIPT and LOYALTY_TEST_DB_DIR are not set: run through deploy/test.sh");
  }
  const std::string cmd = absl::StrCat(
      "DEV_DB_PORT='", Env("LOYALTY_TEST_DB_PORT", "3308"), "' DEV_DB_PASSWORD='",
      Env("LOYALTY_TEST_DB_PASSWORD", "loyalty-test"), "' '", script, "' ", action, " '", dir,
      "' >/dev/null 2>&1");
  const int rc = std::system(cmd.c_str());
  if (rc != 0) return absl::InternalError(absl::StrCat("dev-db.sh ", action, " exited with ", rc));
  return absl::OkStatus();
}

db::DbOptions OverTcp(db::DbOptions options, int port) {
  options.socket.clear();
  options.host = "127.0.0.1";
  options.port = port;
  return options;
}

absl::Status ExecForTest(db::ConnectionPool& pool, const std::string& sql) {
  return db::RunWithConnection(pool, "test exec", [&](db::PooledConnection& c) {
    c.Prepare(sql).execute();
    return absl::OkStatus();
  });
}

absl::StatusOr<int64_t> QueryIntForTest(db::ConnectionPool& pool, const std::string& sql,
                                        const std::vector<std::string>& params) {
  int64_t value = 0;
  RETURN_IF_ERROR(db::RunWithConnection(pool, "test query", [&](db::PooledConnection& c) {
    sql::PreparedStatement& stmt = c.Prepare(sql);
    for (size_t i = 0; i < params.size(); ++i) stmt.setString(static_cast<unsigned>(i + 1), params[i]);
    std::unique_ptr<sql::ResultSet> rs(stmt.executeQuery());
    if (!rs->next()) return absl::NotFoundError("no row");
    value = rs->getInt64(1);
    return absl::OkStatus();
  }));
  return value;
}

absl::StatusOr<std::string> TableChecksumsForTest(db::ConnectionPool& pool) {
  std::string out;
  RETURN_IF_ERROR(db::RunWithConnection(pool, "test checksums", [&](db::PooledConnection& c) {
    std::vector<std::string> tables;
    std::unique_ptr<sql::ResultSet> names(
        c.Prepare("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
                  "AND table_type = 'BASE TABLE' ORDER BY table_name")
            .executeQuery());
    while (names->next()) tables.push_back(names->getString(1));
    std::unique_ptr<sql::Statement> stmt(c.raw().createStatement());
    for (const std::string& table : tables) {
      // A table name cannot be a bound parameter; these come from the
      // server's own catalogue, quoted.
      std::unique_ptr<sql::ResultSet> count(
          stmt->executeQuery(absl::StrCat("SELECT COUNT(*) FROM `", table, "`")));
      count->next();
      const int64_t rows = count->getInt64(1);
      std::unique_ptr<sql::ResultSet> sum(stmt->executeQuery(absl::StrCat("CHECKSUM TABLE `", table, "`")));
      sum->next();
      absl::StrAppend(&out, table, " ", rows, " ", std::string(sum->getString(2)), "\n");
    }
    return absl::OkStatus();
  }));
  return out;
}

std::vector<std::pair<std::string, std::string>> ServiceDbEnv(const TestDatabase& db,
                                                              const std::string& keys_file, int tcp_port) {
  const db::DbOptions o = tcp_port != 0 ? OverTcp(db.options(), tcp_port) : db.options();
  return {{"LOYALTY_DB_HOST", o.host},
          {"LOYALTY_DB_PORT", std::to_string(o.port)},
          {"LOYALTY_DB_SOCKET", o.socket},
          {"LOYALTY_DB_USER", o.user},
          {"LOYALTY_DB_PASSWORD", o.password},
          {"LOYALTY_DB_NAME", db.name()},
          {"LOYALTY_API_KEYS_FILE", keys_file}};
}

}  // namespace loyalty::testing
