// loyalty-settlementctl: settlement's finance batch jobs from the command line.
//
//   loyalty-settlementctl close     --period_id=ID [--cutoff_sequence=N] [--idempotency_key=K]
//   loyalty-settlementctl reconcile --period_id=ID
//
// Common flags: --target=HOST:PORT (default 127.0.0.1:7103), --api_key=KEY
// (or env LOYALTY_API_KEY; sent as "authorization: Bearer"), --deadline_ms.
// Keys: finance (close, reconcile) or backoffice (reconcile).
// Exit codes: 0 ok; 1 reconciliation found mismatches; 2 bad usage; 3 the
// call failed.
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/config/config.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "loyalty/settlement/v1/settlement.grpc.pb.h"

namespace {

namespace v1 = loyalty::settlement::v1;

constexpr int kExitOk = 0;
constexpr int kExitMismatch = 1;
constexpr int kExitUsage = 2;
constexpr int kExitCallFailed = 3;
constexpr int kMaxCloseAttempts = 8;

void Usage() {
  std::fputs(
      "usage: loyalty-settlementctl COMMAND [--name=value ...]\n"
      "  close      close a period: count the ledger journal, produce DRAFT statements (resumable)\n"
      "  reconcile  check a closed period against the ledger; exit 1 on any mismatch\n"
      "common: --target=HOST:PORT --api_key=KEY --deadline_ms=N (see --help of a command)\n",
      stderr);
}

struct Client {
  std::unique_ptr<v1::SettlementService::Stub> stub;
  std::string api_key;
  int64_t deadline_ms;

  void Prepare(grpc::ClientContext* context) const {
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms));
    if (!api_key.empty()) context->AddMetadata("authorization", "Bearer " + api_key);
  }
};

int Fail(const char* what, const grpc::Status& status) {
  std::fprintf(stderr, "loyalty-settlementctl: %s failed: %d %s\n", what, static_cast<int>(status.error_code()),
               status.error_message().c_str());
  return kExitCallFailed;
}

int Close(const Client& client, const loyalty::config::Config& config) {
  auto cutoff = config.GetInt("cutoff_sequence", 0);
  if (!cutoff.ok()) {
    std::fprintf(stderr, "loyalty-settlementctl: %s\n", cutoff.status().ToString().c_str());
    return kExitUsage;
  }
  v1::ClosePeriodRequest request;
  request.set_period_id(config.GetString("period_id"));
  request.set_cutoff_sequence(*cutoff);
  std::string key = config.GetString("idempotency_key");
  if (key.empty()) {
    std::random_device rd;
    key = absl::StrCat("settlementctl-close-", rd(), "-", rd());
  }
  request.set_idempotency_key(key);
  v1::ClosePeriodResponse response;
  grpc::Status status;
  // The same key on every retry: the close resumes where it stopped.
  for (int attempt = 0; attempt < kMaxCloseAttempts; ++attempt) {
    grpc::ClientContext context;
    client.Prepare(&context);
    status = client.stub->ClosePeriod(&context, request, &response);
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE && status.error_code() != grpc::StatusCode::ABORTED &&
        status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
      break;
    }
    std::fprintf(stderr, "close interrupted (%s); resuming with key %s\n", status.error_message().c_str(),
                 key.c_str());
    std::this_thread::sleep_for(std::chrono::milliseconds(200 << attempt));
  }
  if (!status.ok()) return Fail("ClosePeriod", status);
  const v1::Period& p = response.period();
  std::printf("OK: period %s (%s) CLOSED: sequences %lld..%lld, end hash %s, %lld transfers, %lld statements\n",
              p.name().c_str(), p.period_id().c_str(), static_cast<long long>(p.first_sequence()),
              static_cast<long long>(p.cutoff_sequence()), p.end_hash().c_str(),
              static_cast<long long>(response.transfers_processed()),
              static_cast<long long>(response.statements_created()));
  return kExitOk;
}

int Reconcile(const Client& client, const loyalty::config::Config& config) {
  v1::ReconcileRequest request;
  request.set_period_id(config.GetString("period_id"));
  v1::ReconcileResponse response;
  grpc::ClientContext context;
  client.Prepare(&context);
  grpc::Status status = client.stub->Reconcile(&context, request, &response);
  if (!status.ok()) return Fail("Reconcile", status);
  std::printf("period %s, sequences %lld..%lld\n", response.period_id().c_str(),
              static_cast<long long>(response.first_sequence()), static_cast<long long>(response.last_sequence()));
  for (const auto& c : response.checks()) {
    std::printf("  %-40s items %-8lld mismatches %lld\n", v1::ReconciliationCheck_Name(c.check()).c_str(),
                static_cast<long long>(c.items_checked()), static_cast<long long>(c.mismatch_count()));
  }
  for (const auto& m : response.mismatches()) {
    std::printf("MISMATCH %s partner=%s code=%s expected=%lld actual=%lld difference=%lld sequence=%lld: %s\n",
                v1::ReconciliationCheck_Name(m.check()).c_str(), m.partner_id().c_str(),
                m.transfer_code() == 0 ? "" : loyalty::ledger::v1::TransferCode_Name(m.transfer_code()).c_str(),
                static_cast<long long>(m.expected_points()), static_cast<long long>(m.actual_points()),
                static_cast<long long>(m.difference_points()), static_cast<long long>(m.sequence()),
                m.detail().c_str());
  }
  if (response.mismatches_size() > 0) return kExitMismatch;
  std::printf("OK: no mismatches\n");
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
      {"target", "127.0.0.1:7103", "settlement address"},
      {"api_key", "", "API key (lk_<id>_<secret>)", true},
      {"deadline_ms", "600000", "deadline of each call"},
      {"period_id", "", "the period"},
  };
  if (command == "close") {
    specs.push_back({"cutoff_sequence", "0", "last journal sequence (0 = last transfer before the period end)"});
    specs.push_back({"idempotency_key", "", "reuse a key to resume an interrupted close (default: a new one)"});
  } else if (command != "reconcile") {
    Usage();
    return kExitUsage;
  }
  auto config = loyalty::config::Config::Load(std::move(specs), argc - 1, argv + 1);
  if (!config.ok()) {
    std::fprintf(stderr, "loyalty-settlementctl: %s\n", config.status().ToString().c_str());
    return kExitUsage;
  }
  if (config->help_requested()) {
    std::fputs(config->Help("loyalty-settlementctl " + command).c_str(), stdout);
    return kExitOk;
  }
  auto deadline = config->GetInt("deadline_ms", 100, 3'600'000);
  if (!deadline.ok() || config->GetString("period_id").empty()) {
    std::fprintf(stderr, "loyalty-settlementctl: --period_id and a valid --deadline_ms are required\n");
    return kExitUsage;
  }
  Client client{v1::SettlementService::NewStub(
                    grpc::CreateChannel(config->GetString("target"), grpc::InsecureChannelCredentials())),
                config->GetString("api_key"), *deadline};
  return command == "close" ? Close(client, *config) : Reconcile(client, *config);
}
