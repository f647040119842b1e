#include "common/server/server.h"

#include <signal.h>

#include <chrono>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/auth/api_key.h"
#include "common/auth/grpc_auth.h"
#include "common/log/log.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/resource_quota.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/support/server_interceptor.h"

namespace loyalty::server {
namespace {

std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const std::optional<TlsOptions>& tls) {
  if (!tls.has_value()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions ssl(
      tls->client_ca_pem.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                 : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  ssl.pem_root_certs = tls->client_ca_pem;
  ssl.pem_key_cert_pairs.push_back({tls->private_key_pem, tls->cert_chain_pem});
  return grpc::SslServerCredentials(ssl);
}

// Logs one line per RPC when its status is sent. A request body that does
// not parse (not protobuf, or a string field that is not UTF-8) is answered by
// gRPC itself with INTERNAL and an empty message before any handler runs;
// this turns it into INVALID_ARGUMENT, which is what it is: the caller's
// mistake, logged as such and not as a server fault.
class RpcLogInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit RpcLogInterceptor(grpc::experimental::ServerRpcInfo* info)
      : info_(info), start_(std::chrono::steady_clock::now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      auto* md = methods->GetRecvInitialMetadata();
      auto it = md->find("authorization");
      if (it != md->end()) {
        // Only the public key id is kept; the secret is never read here.
        auto parsed = auth::ParseBearer(absl::string_view(it->second.data(), it->second.size()));
        caller_ = parsed ? absl::StrCat("key:", parsed->key_id) : "malformed";
      }
    }
    // One request message per call (unary, server streaming): none received
    // means it did not parse. (In a client stream, none also ends it.)
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() == nullptr &&
        (info_->type() == grpc::experimental::ServerRpcInfo::Type::UNARY ||
         info_->type() == grpc::experimental::ServerRpcInfo::Type::SERVER_STREAMING)) {
      unparsed_request_ = true;
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      grpc::Status status = methods->GetSendStatus();
      if (unparsed_request_ && status.error_code() == grpc::StatusCode::INTERNAL) {
        status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                              "request: the message does not parse (malformed protobuf, or a string field "
                              "that is not valid UTF-8)");
        methods->ModifySendStatus(status);
      }
      const auto latency = std::chrono::duration_cast<std::chrono::microseconds>(
          std::chrono::steady_clock::now() - start_);
      const bool server_fault = status.error_code() == grpc::StatusCode::INTERNAL ||
                                status.error_code() == grpc::StatusCode::UNKNOWN ||
                                status.error_code() == grpc::StatusCode::DATA_LOSS;
      log::Write(server_fault ? log::Level::kError : log::Level::kInfo, "rpc",
                 {{"method", info_->method()},
                  {"status", StatusCodeName(status.error_code())},
                  {"latency_us", static_cast<int64_t>(latency.count())},
                  {"caller", caller_}});
    }
    methods->Proceed();
  }

  static absl::string_view StatusCodeName(grpc::StatusCode code) {
    static constexpr absl::string_view kNames[] = {
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
        "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
        "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
        "UNAUTHENTICATED"};
    const int i = static_cast<int>(code);
    return i >= 0 && i < static_cast<int>(std::size(kNames)) ? kNames[i] : "UNKNOWN";
  }

 private:
  grpc::experimental::ServerRpcInfo* info_;
  std::chrono::steady_clock::time_point start_;
  std::string caller_ = "anonymous";
  bool unparsed_request_ = false;
};

class RpcLogInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new RpcLogInterceptor(info);
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& options,
                                                      const std::vector<grpc::Service*>& services) {
  if (options.max_threads < 2 || options.max_threads > kMaxThreads) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_threads must be in [2, ", kMaxThreads, "], got ", options.max_threads));
  }
  if (options.max_message_bytes < 1024 || options.max_message_bytes > kMaxMessageBytesLimit) {
    return absl::InvalidArgumentError(absl::StrCat("max_message_bytes must be in [1024, ",
                                                   kMaxMessageBytesLimit, "]"));
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.listen, ServerCredentials(options.tls), &port);
  grpc::ResourceQuota quota("loyalty-server");
  quota.SetMaxThreads(options.max_threads);
  builder.SetResourceQuota(quota);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  // The gate first, so that the log line shows the status it settled on.
  if (options.authenticator != nullptr && !options.authenticated_services.empty()) {
    interceptors.push_back(auth::NewUnimplementedAuthGate(
        *options.authenticator, std::set<std::string>(options.authenticated_services.begin(),
                                                      options.authenticated_services.end())));
  }
  interceptors.push_back(std::make_unique<RpcLogInterceptorFactory>());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  for (grpc::Service* service : services) builder.RegisterService(service);

  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    return absl::UnavailableError(absl::StrCat("could not listen on ", options.listen));
  }
  std::unique_ptr<Server> started(new Server(options, std::move(server), port));
  {
    absl::MutexLock lock(&started->mu_);
    started->SetServing(true);
  }
  return started;
}

void Server::SetServing(bool serving) {
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  health->SetServingStatus(serving);
  for (const std::string& name : options_.health_service_names) health->SetServingStatus(name, serving);
}

void Server::SetDatabaseAvailable(bool available) {
  absl::MutexLock lock(&mu_);
  if (shutting_down_ || database_available_ == available) return;
  database_available_ = available;
  SetServing(available);
}

void Server::BeginShutdown() {
  absl::MutexLock lock(&mu_);
  if (shutting_down_) return;
  shutting_down_ = true;
  SetServing(false);
}

Server::~Server() {
  Shutdown();
  Wait();
}

void Server::Shutdown() {
  // Tell load balancers first, then stop taking calls and drain.
  BeginShutdown();
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  server_->Shutdown(std::chrono::system_clock::now() +
                    absl::ToChronoMilliseconds(options_.shutdown_grace));
}

void Server::Wait() { server_->Wait(); }

void BlockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int WaitForTerminationSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  return sig;
}

}  // namespace loyalty::server
