// loyalty-healthcheck HOST:PORT [SERVICE] [--timeout_ms N] [--version]
//
// Asks a server's standard gRPC health service (grpc.health.v1.Health/Check)
// about SERVICE ("" = the whole server, the default). Prints
// "HOST:PORT: SERVING" and exits 0 when it is; otherwise prints why (the
// call's status code by name, or the serving status by name) and exits 1.
// Exit 2: bad usage, or unreadable TLS files.
//
// Flags are written --name=value or --name value. Transport security as
// loyaltyctl's (rpc::ClientCredentialsFromEnv): TLS when LOYALTY_TLS_CA_FILE
// names the CA bundle that signed the server's certificate, plus
// LOYALTY_TLS_CERT_FILE and LOYALTY_TLS_KEY_FILE when the server requires a
// client certificate (mutual TLS); plaintext otherwise. The health check
// needs no API key.
#include <chrono>
#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/rpc/client_call.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"

namespace {

namespace health = grpc::health::v1;

constexpr int kExitServing = 0;
constexpr int kExitNotServing = 1;
constexpr int kExitUsage = 2;
constexpr int kDefaultTimeoutMs = 2000;
constexpr int kMaxTimeoutMs = 600'000;

struct Args {
  std::string address;
  std::string service;
  int timeout_ms = kDefaultTimeoutMs;
  bool version = false;
};

int Usage(const std::string& why) {
  std::fprintf(stderr,
               "loyalty-healthcheck: %s\n"
               "usage: loyalty-healthcheck HOST:PORT [SERVICE] [--timeout_ms N] [--version]\n"
               "TLS: LOYALTY_TLS_CA_FILE, plus LOYALTY_TLS_CERT_FILE and LOYALTY_TLS_KEY_FILE for mutual TLS\n",
               why.c_str());
  return kExitUsage;
}

absl::Status ParseArgs(int argc, char** argv, Args& args) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--version") {
      args.version = true;
    } else if (arg == "--timeout_ms" || absl::StartsWith(arg, "--timeout_ms=")) {
      std::string value;
      if (arg != "--timeout_ms") {
        value = arg.substr(sizeof("--timeout_ms=") - 1);
      } else if (i + 1 < argc) {
        value = argv[++i];
      }
      if (!absl::SimpleAtoi(value, &args.timeout_ms) || args.timeout_ms <= 0 || args.timeout_ms > kMaxTimeoutMs) {
        return absl::InvalidArgumentError(absl::StrCat("--timeout_ms: 1..", kMaxTimeoutMs));
      }
    } else if (absl::StartsWith(arg, "--")) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag ", arg));
    } else if (args.address.empty()) {
      args.address = arg;
    } else if (args.service.empty()) {
      args.service = arg;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument ", arg));
    }
  }
  if (args.address.empty() && !args.version) return absl::InvalidArgumentError("HOST:PORT is required");
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (absl::Status s = ParseArgs(argc, argv, args); !s.ok()) return Usage(std::string(s.message()));
  if (args.version) {
    std::printf("loyalty-healthcheck %s", LOYALTY_VERSION);
#ifdef LOYALTY_GIT_COMMIT
    std::printf(" (commit %s)", LOYALTY_GIT_COMMIT);
#endif
    std::printf("\n");
    return kExitServing;
  }
  auto credentials = loyalty::rpc::ClientCredentialsFromEnv();
  if (!credentials.ok()) return Usage(std::string(credentials.status().message()));
  auto stub = health::Health::NewStub(grpc::CreateChannel(args.address, *credentials));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(args.timeout_ms));
  health::HealthCheckRequest request;
  request.set_service(args.service);
  health::HealthCheckResponse response;
  const grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) {
    std::fprintf(stderr, "%s: %s: %s\n", args.address.c_str(),
                 absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())).c_str(),
                 status.error_message().c_str());
    return kExitNotServing;
  }
  if (response.status() != health::HealthCheckResponse::SERVING) {
    std::fprintf(stderr, "%s: %s\n", args.address.c_str(),
                 health::HealthCheckResponse::ServingStatus_Name(response.status()).c_str());
    return kExitNotServing;
  }
  std::printf("%s: SERVING\n", args.address.c_str());
  return kExitServing;
}
