// loyalty-ledgerctl: ledger operations for finance and backoffice scripts.
//
//   loyalty-ledgerctl verify-chain [--from=N] [--to=N]
//   loyalty-ledgerctl run-expiry   [--max_lots=N]
//
// Common flags: --target=HOST:PORT (default 127.0.0.1:7102), --api_key=KEY
// (or env LOYALTY_API_KEY; sent as "authorization: Bearer"), --deadline_ms.
// Keys: verify-chain takes any role; run-expiry needs backoffice or service.
// Exit codes: 0 ok; 1 the chain does not verify; 2 bad usage; 3 the call failed.
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/config/config.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "loyalty/ledger/v1/ledger.grpc.pb.h"

namespace {

namespace v1 = loyalty::ledger::v1;

constexpr int kExitOk = 0;
constexpr int kExitChainBroken = 1;
constexpr int kExitUsage = 2;
constexpr int kExitCallFailed = 3;
constexpr int kMaxExpiryRounds = 100'000;

void Usage() {
  std::fputs(
      "usage: loyalty-ledgerctl COMMAND [--name=value ...]\n"
      "  verify-chain  recompute the journal's hash chain (--from, --to; 0 = whole journal)\n"
      "  run-expiry    move expired lots to breakage in bounded batches (--max_lots)\n"
      "common: --target=HOST:PORT --api_key=KEY --deadline_ms=N (see --help of a command)\n",
      stderr);
}

struct Client {
  std::unique_ptr<v1::LedgerService::Stub> stub;
  std::string api_key;
  int64_t deadline_ms;

  void Prepare(grpc::ClientContext* context) const {
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms));
    if (!api_key.empty()) context->AddMetadata("authorization", "Bearer " + api_key);
  }
};

int Fail(const char* what, const grpc::Status& status) {
  std::fprintf(stderr, "loyalty-ledgerctl: %s failed: %d %s\n", what,
               static_cast<int>(status.error_code()), status.error_message().c_str());
  return kExitCallFailed;
}

int VerifyChain(const Client& client, const loyalty::config::Config& config) {
  auto from = config.GetInt("from", 0);
  auto to = config.GetInt("to", 0);
  if (!from.ok() || !to.ok()) {
    std::fprintf(stderr, "loyalty-ledgerctl: %s\n", (!from.ok() ? from : to).status().ToString().c_str());
    return kExitUsage;
  }
  v1::VerifyChainRequest request;
  request.set_from_sequence(*from);
  request.set_to_sequence(*to);
  v1::VerifyChainResponse response;
  grpc::ClientContext context;
  client.Prepare(&context);
  grpc::Status status = client.stub->VerifyChain(&context, request, &response);
  if (!status.ok()) return Fail("VerifyChain", status);
  if (response.first_bad_sequence() != 0) {
    std::printf("BROKEN at sequence %lld: %s\n  expected %s\n  stored   %s\n",
                static_cast<long long>(response.first_bad_sequence()), response.detail().c_str(),
                response.expected_hash().c_str(), response.stored_hash().c_str());
    return kExitChainBroken;
  }
  std::printf("OK: %lld transfers verified (%lld..%lld), last hash %s\n",
              static_cast<long long>(response.verified_count()),
              static_cast<long long>(response.from_sequence()),
              static_cast<long long>(response.to_sequence()), response.last_hash().c_str());
  return kExitOk;
}

int RunExpiry(const Client& client, const loyalty::config::Config& config) {
  auto max_lots = config.GetInt("max_lots", 1, 10'000);
  if (!max_lots.ok()) {
    std::fprintf(stderr, "loyalty-ledgerctl: %s\n", max_lots.status().ToString().c_str());
    return kExitUsage;
  }
  // One key per batch, fixed for the batch's retries; a rerun of the whole
  // job continues where the last stopped (expired lots are empty).
  std::random_device rd;
  const std::string run = absl::StrCat("ledgerctl-expiry-", rd(), "-", rd());
  int64_t lots = 0, points = 0;
  for (int round = 1; round <= kMaxExpiryRounds; ++round) {
    v1::RunExpiryRequest request;
    request.set_idempotency_key(absl::StrCat(run, "-", round));
    request.set_max_lots(static_cast<int32_t>(*max_lots));
    v1::RunExpiryResponse response;
    grpc::Status status;
    for (int attempt = 0; attempt < 5; ++attempt) {
      grpc::ClientContext context;
      client.Prepare(&context);
      status = client.stub->RunExpiry(&context, request, &response);
      if (status.error_code() != grpc::StatusCode::UNAVAILABLE &&
          status.error_code() != grpc::StatusCode::ABORTED) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200 << attempt));
    }
    if (!status.ok()) return Fail("RunExpiry", status);
    lots += response.lots_expired();
    points += response.points_expired();
    std::fprintf(stderr, "batch %d: %lld lots, %lld points expired\n", round,
                 static_cast<long long>(response.lots_expired()),
                 static_cast<long long>(response.points_expired()));
    if (!response.has_more()) break;
  }
  std::printf("OK: %lld lots, %lld points moved to breakage\n", static_cast<long long>(lots),
              static_cast<long long>(points));
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    Usage();
    return argc < 2 ? kExitUsage : kExitOk;
  }
  const std::string command = argv[1];
  std::vector<loyalty::config::FlagSpec> specs = {
      {"target", "127.0.0.1:7102", "ledger address"},
      {"api_key", "", "API key (lk_<id>_<secret>)", true},
      {"deadline_ms", "30000", "deadline of each call"},
  };
  if (command == "verify-chain") {
    specs.push_back({"from", "0", "first sequence (0 = 1)"});
    specs.push_back({"to", "0", "last sequence (0 = head)"});
  } else if (command == "run-expiry") {
    specs.push_back({"max_lots", "1000", "lots per batch"});
  } else {
    Usage();
    return kExitUsage;
  }
  auto config = loyalty::config::Config::Load(std::move(specs), argc - 1, argv + 1);
  if (!config.ok()) {
    std::fprintf(stderr, "loyalty-ledgerctl: %s\n", config.status().ToString().c_str());
    return kExitUsage;
  }
  if (config->help_requested()) {
    std::fputs(config->Help("loyalty-ledgerctl " + command).c_str(), stdout);
    return kExitOk;
  }
  auto deadline = config->GetInt("deadline_ms", 100, 3'600'000);
  if (!deadline.ok()) {
    std::fprintf(stderr, "loyalty-ledgerctl: %s\n", deadline.status().ToString().c_str());
    return kExitUsage;
  }
  Client client{v1::LedgerService::NewStub(grpc::CreateChannel(
                    config->GetString("target"), grpc::InsecureChannelCredentials())),
                config->GetString("api_key"), *deadline};
  return command == "verify-chain" ? VerifyChain(client, *config) : RunExpiry(client, *config);
}
