// Micro-benchmarks of the database path under the services (Google
// Benchmark; not a test). Needs the test MariaDB (LOYALTY_TEST_DB_*):
//   build/tests/bench/loyalty-db-bench
// Compares a round trip over TCP and over the unix socket, and a transaction
// with one insert, to show what one statement costs on this machine.
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <memory>

#include "benchmark/benchmark.h"
#include "common/db/transaction.h"
#include "common/testing/test_db.h"

namespace loyalty {
namespace {

std::unique_ptr<testing::TestDatabase>& Db() {
  static auto* db = new std::unique_ptr<testing::TestDatabase>(*testing::TestDatabase::Create("bench"));
  return *db;
}

std::unique_ptr<db::ConnectionPool> Pool(bool over_socket) {
  db::DbOptions options = Db()->options();
  if (!over_socket) options.socket.clear();
  options.pool_size = 1;
  return *db::ConnectionPool::Create(options);
}

void BM_SelectOne(benchmark::State& state) {
  auto pool = Pool(state.range(0) == 1);
  auto conn = pool->Acquire();
  for (auto _ : state) {
    std::unique_ptr<sql::ResultSet> rs(conn->Prepare("SELECT 1").executeQuery());
    rs->next();
    benchmark::DoNotOptimize(rs->getInt(1));
  }
  state.SetLabel(state.range(0) == 1 ? "unix socket" : "tcp 127.0.0.1");
}
BENCHMARK(BM_SelectOne)->Arg(0)->Arg(1);

void BM_InsertTransaction(benchmark::State& state) {
  auto pool = Pool(state.range(0) == 1);
  (void)testing::ExecForTest(*pool, "CREATE TABLE IF NOT EXISTS bench_rows (id BIGINT PRIMARY KEY AUTO_INCREMENT, v BIGINT)");
  for (auto _ : state) {
    absl::Status s = db::RunInTransaction(*pool, "bench", [](db::Transaction& tx) {
      sql::PreparedStatement& insert = tx.Prepare("INSERT INTO bench_rows (v) VALUES (?)");
      insert.setInt64(1, 7);
      insert.executeUpdate();
      return absl::OkStatus();
    });
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  }
  state.SetLabel(state.range(0) == 1 ? "unix socket, durable commit" : "tcp, durable commit");
}
BENCHMARK(BM_InsertTransaction)->Arg(0)->Arg(1);

}  // namespace
}  // namespace loyalty

BENCHMARK_MAIN();
