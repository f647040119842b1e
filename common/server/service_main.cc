#include "common/server/service_main.h"

#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "common/auth/file_key_store.h"
#include "common/crypto/sha256.h"
#include "common/time/proto_time.h"
#include "loyalty/settlement/v1/settlement.grpc.pb.h"
#include "common/log/log.h"
#include "common/server/database_watch.h"
#include "common/server/server.h"
#include "common/status/status_macros.h"

namespace loyalty::server {
namespace {

absl::Status WaitForDatabase(const db::DbOptions& options, absl::Duration wait) {
  const absl::Time give_up = absl::Now() + wait;
  while (true) {
    absl::Status status = db::EnsureDatabase(options, options.database);
    if (status.ok() || status.code() != absl::StatusCode::kUnavailable ||
        absl::Now() > give_up) {
      return status;
    }
    log::Warn("db_not_ready", {{"error", status.ToString()}});
    absl::SleepFor(absl::Seconds(1));
  }
}

absl::Status Run(const ServiceDefinition& def, const config::Config& config) {
  // Keys first: without them the service would refuse every call, so it
  // refuses to start instead, before waiting for the database.
  ASSIGN_OR_RETURN(AuthSetup auth, AuthFromConfig(config));
  ASSIGN_OR_RETURN(db::DbOptions db_options, DbOptionsFromConfig(config));
  ASSIGN_OR_RETURN(int64_t wait_ms, config.GetInt("db_startup_wait_ms", 0, 3'600'000));
  RETURN_IF_ERROR(WaitForDatabase(db_options, absl::Milliseconds(wait_ms)));
  ASSIGN_OR_RETURN(std::unique_ptr<db::ConnectionPool> pool, db::ConnectionPool::Create(db_options));
  ASSIGN_OR_RETURN(db::MigrationReport report, db::ApplyMigrations(*pool, *def.migrations));
  log::Info("migrations_done", {{"applied", report.applied.size()},
                                {"already_applied", report.already_applied}});

  ASSIGN_OR_RETURN(auto channel_to, ChannelFactoryFromConfig(config));
  ASSIGN_OR_RETURN(ServiceInstancePtr instance,
                   def.build(ServiceContext{config, *pool, *auth.authenticator, std::move(channel_to)}));

  ServerOptions server_options;
  server_options.listen = config.GetString("listen");
  ASSIGN_OR_RETURN(server_options.tls, TlsFromConfig(config));
  ASSIGN_OR_RETURN(int64_t max_threads, config.GetInt("max_threads", 2, kMaxThreads));
  ASSIGN_OR_RETURN(int64_t max_message, config.GetInt("max_message_bytes", 1024, kMaxMessageBytesLimit));
  ASSIGN_OR_RETURN(int64_t grace_ms, config.GetInt("shutdown_grace_ms", 0, 600'000));
  ASSIGN_OR_RETURN(int64_t health_interval_ms, config.GetInt("db_health_interval_ms", 0, 60'000));
  server_options.max_threads = static_cast<int>(max_threads);
  server_options.max_message_bytes = static_cast<int>(max_message);
  server_options.shutdown_grace = absl::Milliseconds(grace_ms);
  server_options.health_service_names = {def.grpc_service_name};
  server_options.authenticator = auth.authenticator.get();
  server_options.authenticated_services = {def.grpc_service_name};
  ASSIGN_OR_RETURN(std::unique_ptr<Server> server,
                   Server::Start(server_options, instance->services()));
  log::Info("serving", {{"service", def.name}, {"listen", config.GetString("listen")},
                        {"port", server->port()}});
  std::unique_ptr<DatabaseWatch> database_watch;
  if (health_interval_ms > 0) {
    database_watch = std::make_unique<DatabaseWatch>(
        db_options, DatabaseWatchOptions{.interval = absl::Milliseconds(health_interval_ms)},
        [&server = *server](bool available) { server.SetDatabaseAvailable(available); });
  }

  const int sig = WaitForTerminationSignal();
  // Health first, before anything else, so that balancers stop sending.
  server->BeginShutdown();
  log::Info("shutting_down", {{"signal", sig}, {"health", "NOT_SERVING"}});
  database_watch.reset();
  instance->BeginShutdown();
  server->Shutdown();
  server->Wait();
  server.reset();
  instance.reset();
  log::Info("stopped", {{"service", def.name}});
  return absl::OkStatus();
}

}  // namespace

std::vector<config::FlagSpec> CommonFlagSpecs(const std::string& service_name, int default_port) {
  return {
      {"listen", absl::StrCat("127.0.0.1:", default_port), "address:port to serve gRPC on"},
      {"db_host", "127.0.0.1", "MariaDB host (ignored when db_socket is set)"},
      {"db_port", "3307", "MariaDB TCP port"},
      {"db_socket", "", "MariaDB unix socket path; when set, used instead of host and port"},
      {"db_user", "loyalty", "MariaDB user"},
      {"db_password", "loyalty-dev", "MariaDB password (default fits the private dev database)", true},
      {"db_name", absl::StrCat("loyalty_", service_name), "schema owned by this service"},
      {"db_pool_size", "16", "maximum database connections"},
      {"db_startup_wait_ms", "30000", "how long to wait for the database at start"},
      {"max_threads", "64", "maximum gRPC handler threads"},
      {"max_message_bytes", "4194304", "maximum gRPC message size in bytes"},
      {"shutdown_grace_ms", "10000", "time in-flight calls get to finish on SIGTERM"},
      {"db_health_interval_ms", "1000",
       "how often the database is probed; health is NOT_SERVING after two failed probes; 0 = never"},
      {"log_level", "info", "debug, info, warn or error"},
      {"api_keys_file", "",
       "JSON file of hashed API keys (written by loyalty-keygen); required"},
      {"api_keys_refresh_ms", "2000", "how often the API keys file is checked for changes"},
      {"api_key_cache_ms", "10000", "how long a looked-up API key is reused; 0 = no cache"},
      {"tls_cert_file", "", "PEM certificate chain; with --tls_key_file, serve TLS instead of plaintext"},
      {"tls_key_file", "", "PEM private key of --tls_cert_file"},
      {"tls_client_ca_file", "",
       "PEM CA bundle; when set, every client must present a certificate it signed (mutual TLS)"},
      {"key_directory_address", "",
       "settlement's host:port: API keys issued with CreateApiKey are looked up there (empty = the file only)"},
      {"key_directory_api_key", "", "service API key presented to the key directory", true},
      {"peer_ca_file", "",
       "PEM CA bundle; when set, calls to other services use TLS and verify their certificates"},
      {"partner_rate_limit_rps", "1000", "calls per second each partner may make; 0 = unlimited"},
      {"partner_rate_limit_burst", "2000", "calls a partner may make at once after a quiet spell"},
      {"partner_rate_limits", "", "per-partner overrides: partner=rate/burst,... (rate 0 = unlimited)"},
  };
}

static absl::StatusOr<std::string> ReadPem(const config::Config& config, absl::string_view flag) {
  const std::string& path = config.GetString(flag);
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in || text.str().find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read a PEM file at '", path, "'"));
  }
  return text.str();
}

absl::StatusOr<std::optional<TlsOptions>> TlsFromConfig(const config::Config& config) {
  const bool cert = !config.GetString("tls_cert_file").empty();
  const bool key = !config.GetString("tls_key_file").empty();
  const bool client_ca = !config.GetString("tls_client_ca_file").empty();
  if (!cert && !key && !client_ca) {
    log::Info("tls", {{"mode", "off"}});
    return std::nullopt;
  }
  if (!cert || !key) {
    return absl::InvalidArgumentError(
        "tls_cert_file and tls_key_file: both are needed to serve TLS (and for tls_client_ca_file)");
  }
  TlsOptions tls;
  ASSIGN_OR_RETURN(tls.cert_chain_pem, ReadPem(config, "tls_cert_file"));
  ASSIGN_OR_RETURN(tls.private_key_pem, ReadPem(config, "tls_key_file"));
  if (client_ca) {
    ASSIGN_OR_RETURN(tls.client_ca_pem, ReadPem(config, "tls_client_ca_file"));
  }
  log::Info("tls", {{"mode", client_ca ? "mutual" : "server"}});
  return tls;
}

absl::StatusOr<rpc::ChannelFactory> ChannelFactoryFromConfig(const config::Config& config) {
  // The service's own certificate doubles as its client certificate.
  const bool own_cert = !config.GetString("tls_cert_file").empty() && !config.GetString("tls_key_file").empty();
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      rpc::ClientCredentials(config.GetString("peer_ca_file"), own_cert ? config.GetString("tls_cert_file") : "",
                             own_cert ? config.GetString("tls_key_file") : "");
  if (!credentials.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("peer_ca_file: ", credentials.status().message()));
  }
  return [credentials = *credentials](const std::string& address) {
    return grpc::CreateChannel(address, credentials);
  };
}

// Settlement's AuthenticateApiKey as the Authenticator's second key source.
static std::function<absl::StatusOr<auth::ApiKeyRecord>(const std::string&, const crypto::Sha256Digest&)>
NewKeyDirectory(std::shared_ptr<grpc::Channel> channel, rpc::CallOptions options) {
  std::shared_ptr<settlement::v1::SettlementService::Stub> stub = settlement::v1::SettlementService::NewStub(channel);
  return [stub, options](const std::string& key_id,
                         const crypto::Sha256Digest& digest) -> absl::StatusOr<auth::ApiKeyRecord> {
    settlement::v1::AuthenticateApiKeyRequest req;
    req.set_key_hash(crypto::ToHex(digest));
    settlement::v1::AuthenticateApiKeyResponse resp;
    grpc::ClientContext ctx;
    rpc::Prepare(ctx, options);
    grpc::Status s = stub->AuthenticateApiKey(&ctx, req, &resp);
    if (s.error_code() == grpc::StatusCode::NOT_FOUND) return absl::NotFoundError("unknown API key");
    if (!s.ok()) return rpc::RemoteError(s, "key directory", "AuthenticateApiKey");
    auth::ApiKeyRecord record;
    record.key_id = resp.key_id();
    record.secret_sha256 = digest;  // it matched this secret's hash
    record.role = resp.role();
    record.partner_id = resp.partner_id();
    if (resp.has_expires_at()) record.expires_at = FromProtoTime(resp.expires_at());
    record.published_rate_per_second = resp.rate_limit_per_second();
    record.published_rate_burst = resp.rate_limit_burst();
    if (key_id != record.key_id) return absl::NotFoundError("unknown API key");
    return record;
  };
}

static absl::StatusOr<std::shared_ptr<auth::RateLimiter>> RateLimiterFromConfig(const config::Config& config) {
  auth::RateLimiterOptions options;
  ASSIGN_OR_RETURN(options.default_limit.per_second, config.GetInt("partner_rate_limit_rps", 0, 1'000'000));
  ASSIGN_OR_RETURN(options.default_limit.burst, config.GetInt("partner_rate_limit_burst", 0, 10'000'000));
  if (absl::Status valid = auth::ValidateRateLimit(options.default_limit); !valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("partner_rate_limit_burst: ", valid.message()));
  }
  ASSIGN_OR_RETURN(options.per_partner, auth::ParseRateLimits(config.GetString("partner_rate_limits")));
  log::Info("partner_rate_limits", {{"default_rps", options.default_limit.per_second},
                                    {"default_burst", options.default_limit.burst},
                                    {"overrides", options.per_partner.size()}});
  return std::make_shared<auth::RateLimiter>(std::move(options));
}

absl::StatusOr<AuthSetup> AuthFromConfig(const config::Config& config) {
  const std::string& path = config.GetString("api_keys_file");
  if (path.empty()) {
    return absl::InvalidArgumentError(
        "--api_keys_file (or LOYALTY_API_KEYS_FILE) is required: every RPC needs an API key, "
        "and the service has nowhere to look keys up. Create a keys file with loyalty-keygen "
        "(see README, Authentication)");
  }
  ASSIGN_OR_RETURN(int64_t refresh_ms, config.GetInt("api_keys_refresh_ms", 0, 3'600'000));
  ASSIGN_OR_RETURN(int64_t cache_ms, config.GetInt("api_key_cache_ms", 0, 3'600'000));
  auth::FileKeyStoreOptions store_options;
  store_options.refresh_interval = absl::Milliseconds(refresh_ms);
  ASSIGN_OR_RETURN(std::unique_ptr<auth::FileKeyStore> store,
                   auth::FileKeyStore::Open(path, store_options));
  log::Info("api_keys_loaded", {{"path", path}, {"keys", store->size()}});
  if (store->size() == 0) {
    log::Warn("no_api_keys", {{"detail", "the API keys file is empty: every call will be refused"}});
  }
  auth::AuthenticatorOptions auth_options;
  auth_options.cache_ttl = absl::Milliseconds(cache_ms);
  if (const std::string& directory = config.GetString("key_directory_address"); !directory.empty()) {
    if (config.GetString("key_directory_api_key").empty()) {
      return absl::InvalidArgumentError("key_directory_api_key: required with --key_directory_address");
    }
    ASSIGN_OR_RETURN(rpc::ChannelFactory channel_to, ChannelFactoryFromConfig(config));
    auth_options.directory = NewKeyDirectory(
        channel_to(directory), {.api_key = config.GetString("key_directory_api_key"), .deadline = absl::Seconds(2)});
    log::Info("key_directory", {{"address", directory}});
  }
  ASSIGN_OR_RETURN(auth_options.rate_limiter, RateLimiterFromConfig(config));
  AuthSetup setup;
  setup.authenticator = std::make_unique<auth::Authenticator>(*store, auth_options);
  setup.store = std::move(store);
  return setup;
}

absl::StatusOr<db::DbOptions> DbOptionsFromConfig(const config::Config& config) {
  db::DbOptions options;
  options.host = config.GetString("db_host");
  ASSIGN_OR_RETURN(int64_t port, config.GetInt("db_port", 1, 65535));
  options.port = static_cast<int>(port);
  options.socket = config.GetString("db_socket");
  options.user = config.GetString("db_user");
  options.password = config.GetString("db_password");
  options.database = config.GetString("db_name");
  ASSIGN_OR_RETURN(int64_t pool_size, config.GetInt("db_pool_size", 1, db::kMaxPoolSize));
  options.pool_size = static_cast<int>(pool_size);
  return options;
}

int ServiceMain(int argc, char** argv, ServiceDefinition definition) {
  BlockTerminationSignals();
  // Lock-order cycle detection costs a graph update on every Mutex
  // operation; tests run with it (the default), servers do not.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::vector<config::FlagSpec> specs = CommonFlagSpecs(definition.name, definition.default_port);
  for (config::FlagSpec& extra : definition.extra_flags) specs.push_back(std::move(extra));
  absl::StatusOr<config::Config> config = config::Config::Load(std::move(specs), argc, argv);
  const std::string program = absl::StrCat("loyalty-", definition.name);
  if (!config.ok()) {
    std::fprintf(stderr, "%s: %s\n(see --help)\n", program.c_str(),
                 std::string(config.status().message()).c_str());
    return 2;
  }
  if (config->help_requested()) {
    std::fputs(config->Help(program).c_str(), stdout);
    return 0;
  }
  log::Level level;
  if (!log::ParseLevel(config->GetString("log_level"), &level)) {
    std::fprintf(stderr, "%s: --log_level: unknown level\n", program.c_str());
    return 2;
  }
  log::SetMinLevel(level);
  log::Info("starting", {{"service", definition.name}, {"config", config->Describe()}});
  absl::Status status = Run(definition, *config);
  if (!status.ok()) {
    log::Error("fatal", {{"service", definition.name}, {"error", status.ToString()}});
    return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  return 0;
}

}  // namespace loyalty::server
