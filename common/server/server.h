#pragma once
// The gRPC server bootstrap shared by all four services.
//
// Threading model: the synchronous gRPC API with a bounded thread pool
// (ResourceQuota max threads). Handlers may block on the database; when all
// threads are busy new calls get RESOURCE_EXHAUSTED instead of queueing
// without bound. See docs/adr/0002-sync-grpc-bounded-threads.md.
//
// Every server has: the standard gRPC health service (grpc.health.v1.Health),
// server reflection, a maximum message size, one structured log line per RPC
// (method, status, latency, caller key id, never the secret), and graceful shutdown: health
// turns NOT_SERVING, new calls are refused, in-flight calls get up to
// `shutdown_grace` to finish.
//
// Health, for the whole server ("") and for each of health_service_names,
// is SERVING while the database is available (SetDatabaseAvailable) and the
// server is not shutting down; NOT_SERVING otherwise.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/auth/authenticator.h"
#include "grpcpp/server.h"

namespace loyalty::server {

inline constexpr int kMaxThreads = 1024;
inline constexpr int kMaxMessageBytesLimit = 64 << 20;

// TLS on the listening port (PEM text, not paths). With client_ca_pem set,
// every client must present a certificate signed by that CA (mutual TLS).
struct TlsOptions {
  std::string cert_chain_pem;
  std::string private_key_pem;  // secret
  std::string client_ca_pem;
};

struct ServerOptions {
  std::string listen = "127.0.0.1:0";  // port 0 picks a free port
  // Plaintext when unset.
  std::optional<TlsOptions> tls;
  int max_threads = 64;
  int max_message_bytes = 4 << 20;
  absl::Duration shutdown_grace = absl::Seconds(10);
  // Full gRPC service names ("loyalty.ledger.v1.LedgerService") the health
  // service reports on, besides the whole server ("").
  std::vector<std::string> health_service_names;
  // When set, calls to these services (full names) that end UNIMPLEMENTED
  // answer UNAUTHENTICATED or PERMISSION_DENIED first, for a caller without a
  // valid key or role (see auth::NewUnimplementedAuthGate). Implemented
  // handlers guard themselves with auth::RpcGuard. Must outlive the server.
  auth::Authenticator* authenticator = nullptr;
  std::vector<std::string> authenticated_services;
};

class Server {
 public:
  // Builds and starts the server. `services` must outlive it.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerOptions& options,
                                                       const std::vector<grpc::Service*>& services);
  ~Server();

  int port() const { return port_; }
  // Health follows the database: NOT_SERVING while it is unavailable.
  // Ignored once shutdown has begun. Thread-safe.
  void SetDatabaseAvailable(bool available);
  // Health turns NOT_SERVING for good, at once, so that balancers stop
  // sending; calls are still served until Shutdown(). Idempotent.
  void BeginShutdown();
  // Graceful shutdown as described above (BeginShutdown first). Idempotent.
  void Shutdown();
  // Blocks until the server has shut down.
  void Wait();

 private:
  Server(ServerOptions options, std::unique_ptr<grpc::Server> server, int port)
      : options_(std::move(options)), server_(std::move(server)), port_(port) {}
  // Sets "" and every health_service_names entry.
  void SetServing(bool serving) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const ServerOptions options_;
  std::unique_ptr<grpc::Server> server_;
  int port_;
  absl::Mutex mu_;
  bool database_available_ ABSL_GUARDED_BY(mu_) = true;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

// Blocks SIGINT and SIGTERM in the calling thread and every thread it starts
// afterwards. Call first thing in main(), before any thread exists.
void BlockTerminationSignals();

// Waits for SIGINT or SIGTERM (which must be blocked); returns its number.
int WaitForTerminationSignal();

}  // namespace loyalty::server
