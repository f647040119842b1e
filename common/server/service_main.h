#pragma once
// The whole life of a service process, shared by the four services so that
// each main.cc is wiring only:
//   flags/env -> logging -> database (waits for it, creates the schema) ->
//   migrations -> the service's objects -> gRPC server -> SIGTERM -> drain.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/auth/authenticator.h"
#include "common/config/config.h"
#include "common/db/migrations.h"
#include "common/db/pool.h"
#include "common/rpc/client_call.h"
#include "common/server/server.h"
#include "grpcpp/impl/codegen/service_type.h"

namespace loyalty::server {

// What a service builds once its database is ready. Destroyed after the gRPC
// server has drained, so background loops stop after the last call.
class ServiceInstance {
 public:
  virtual ~ServiceInstance() = default;
  virtual std::vector<grpc::Service*> services() = 0;
  // Called when shutdown begins, before draining (stop accepting new work).
  virtual void BeginShutdown() {}
};
using ServiceInstancePtr = std::unique_ptr<ServiceInstance>;

struct ServiceContext {
  const config::Config& config;
  db::ConnectionPool& pool;
  // Built from --api_keys_file; lives as long as the process. A gRPC adapter
  // guards each handler with auth::RpcGuard(authenticator, <service name>)
  // (common/auth/grpc_auth.h).
  auth::Authenticator& authenticator;
  // Opens a channel to another of our services ("host:port") with the
  // transport security of --peer_ca_file: TLS (presenting this service's own
  // certificate when it has one) or plaintext. Connects lazily.
  rpc::ChannelFactory channel_to;
};

struct ServiceDefinition {
  std::string name;   // "ledger"
  std::string grpc_service_name;  // "loyalty.ledger.v1.LedgerService", for health
  int default_port;   // 7102
  const std::vector<db::MigrationFile>* migrations;
  std::vector<config::FlagSpec> extra_flags;
  std::function<absl::StatusOr<ServiceInstancePtr>(const ServiceContext&)> build;
};

// The flags every service has (listen, db_*, threads, logging, api_keys_*).
std::vector<config::FlagSpec> CommonFlagSpecs(const std::string& service_name, int default_port);

// Database options from the common flags.
absl::StatusOr<db::DbOptions> DbOptionsFromConfig(const config::Config& config);

// The key store and Authenticator from the common flags (api_keys_file,
// api_keys_refresh_ms, api_key_cache_ms). INVALID_ARGUMENT when no key source
// is configured: a service never runs without authentication.
struct AuthSetup {
  auth::KeyStorePtr store;
  std::unique_ptr<auth::Authenticator> authenticator;
};
absl::StatusOr<AuthSetup> AuthFromConfig(const config::Config& config);

// TLS from the common flags tls_cert_file, tls_key_file and
// tls_client_ca_file; nullopt (plaintext) when none is set. INVALID_ARGUMENT
// naming the flag when a file is missing or not PEM, or only one of cert and
// key is given.
absl::StatusOr<std::optional<TlsOptions>> TlsFromConfig(const config::Config& config);

// ServiceContext::channel_to from --peer_ca_file (and the service's own
// --tls_cert_file/--tls_key_file as its client certificate).
absl::StatusOr<rpc::ChannelFactory> ChannelFactoryFromConfig(
    const config::Config& config);

// Returns the process exit code: 0 after a clean shutdown, 2 for bad flags,
// 1 for any other failure to start.
int ServiceMain(int argc, char** argv, ServiceDefinition definition);

}  // namespace loyalty::server
