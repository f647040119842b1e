#pragma once
// A TCP proxy between a client (a connection pool, a service binary) and the
// real MariaDB, for fault-injection tests.
//
//   auto proxy = FaultProxy::Start("127.0.0.1", 3308);
//   options.port = (*proxy)->port();          // the client connects here
//   (*proxy)->Arm(FaultProxy::Fault::kCutAtCommit);
//
// It forwards bytes unchanged and reads just enough of the MySQL protocol to
// see each command a client sends (a packet with sequence id 0): a COMMIT
// query, START TRANSACTION, and prepared-statement executions. An armed fault
// fires once, on the first command that matches it (or, with `skip`, on the
// one after `skip` matching commands have passed), on whichever connection
// sends it; then the proxy passes everything through again:
//   - kCutAtCommit: a COMMIT is not forwarded; both sides are closed. The
//     transaction is not committed, and the client sees a lost connection.
//   - kCutAfterCommit: a COMMIT is forwarded; the server's answer is
//     dropped and both sides are closed. The transaction is committed, but
//     the client cannot know it.
//   - kCutMidStatement: half of a statement executed inside a transaction is
//     forwarded, then both sides are closed. Nothing is committed.
//   - kFailCommit: the COMMIT is answered with error 1213, as Galera answers
//     a transaction that lost certification; the proxy sends ROLLBACK to the
//     server instead. Nothing is committed; the connection stays usable.
// SetDelay() holds every client command back for a while before forwarding
// it, and SetRefusing() turns the database "off" for the client: existing
// connections are cut and new ones closed at once.
//
// Thread-safe. One thread accepts, and one thread serves each connection.

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/db/migrations.h"
#include "common/db/pool.h"
#include "common/testing/test_db.h"

namespace loyalty::testing {

class FaultProxy {
 public:
  enum class Fault { kNone, kCutAtCommit, kCutAfterCommit, kCutMidStatement, kFailCommit };

  // Listens on 127.0.0.1 (a free port) and forwards to upstream_host:port.
  static absl::StatusOr<std::unique_ptr<FaultProxy>> Start(const std::string& upstream_host,
                                                           int upstream_port);
  // Closes every connection and stops the threads.
  ~FaultProxy();

  int port() const { return port_; }

  // Arms `fault` for the next matching command after `skip` of them have
  // passed (replacing any armed fault). Arming kNone disarms.
  void Arm(Fault fault, int skip = 0);
  // The fault still waiting for its command (kNone once it has fired).
  Fault armed() const;
  // How many faults have fired since Start.
  int fired() const { return fired_.load(); }
  // Every client command waits `delay` before it is forwarded.
  void SetDelay(absl::Duration delay);
  // While refusing, every connection is cut and new ones are closed at once.
  void SetRefusing(bool refusing);
  // Commands seen from clients (all connections), for tests of the proxy.
  int64_t commands_seen() const { return commands_.load(); }

 private:
  struct Connection;
  FaultProxy(int listen_fd, int port, std::string upstream_host, int upstream_port);
  void AcceptLoop();
  void Serve(std::shared_ptr<Connection> connection);
  // Decides what to do with one complete client packet.
  enum class Action { kForward, kCutBefore, kForwardThenDropReply, kForwardHalfThenCut, kRollBackAndFail };
  Action OnClientCommand(Connection& connection, const std::string& packet);

  const int listen_fd_;
  const int port_;
  const std::string upstream_host_;
  const int upstream_port_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> fired_{0};
  std::atomic<int64_t> commands_{0};
  mutable absl::Mutex mu_;
  Fault armed_ ABSL_GUARDED_BY(mu_) = Fault::kNone;
  int skip_ ABSL_GUARDED_BY(mu_) = 0;  // matching commands still to let pass
  absl::Duration delay_ ABSL_GUARDED_BY(mu_) = absl::ZeroDuration();
  bool refusing_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::weak_ptr<Connection>> connections_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
  std::thread acceptor_;
};

// What a caller saw when `call` ran once with a fault armed, then again
// (the same request, the same idempotency key) while it answered UNAVAILABLE
// or ABORTED, as a client retries.
struct FaultedCall {
  bool fired = false;        // the fault hit this call (else it never reached
                             // the matching command: the call has fewer)
  absl::Status first;        // the answer under the fault
  absl::Status last;         // the final answer
  int attempts = 0;
};

// Arms `fault` (after `skip` matching commands), runs `call`, disarms, and
// retries `call` up to `max_attempts` times while it is UNAVAILABLE or ABORTED.
FaultedCall CallUnderFault(FaultProxy& proxy, FaultProxy::Fault fault, int skip,
                           const std::function<absl::Status()>& call, int max_attempts = 50);

// "cut-at-commit", ... for messages.
std::string FaultName(FaultProxy::Fault fault);

// A fresh schema on the test MariaDB, migrated, with a FaultProxy in front of
// it: the code under test gets `pool` (through the proxy); checks read
// `db->pool()` (straight from the database).
struct ProxiedDatabase {
  std::unique_ptr<TestDatabase> db;
  std::unique_ptr<FaultProxy> proxy;
  std::unique_ptr<db::ConnectionPool> pool;

  static absl::StatusOr<ProxiedDatabase> Create(const std::string& prefix,
                                                const std::vector<db::MigrationFile>& migrations);
};

}  // namespace loyalty::testing
