#include "services/settlement/grpc_ledger_client.h"

#include "absl/strings/str_cat.h"
#include "common/rpc/client_call.h"
#include "common/status/grpc_status.h"
#include "loyalty/ledger/v1/ledger.grpc.pb.h"

namespace loyalty::settlement {
namespace {

namespace lv1 = ::loyalty::ledger::v1;

class GrpcLedgerClient final : public LedgerClient {
 public:
  GrpcLedgerClient(std::shared_ptr<grpc::Channel> channel, rpc::CallOptions options)
      : stub_(lv1::LedgerService::NewStub(std::move(channel))), options_(std::move(options)) {}

  absl::StatusOr<JournalPage> ReadJournal(int64_t after_sequence, int64_t up_to_sequence, int page_size) override {
    lv1::ReadJournalRequest req;
    req.set_after_sequence(after_sequence);
    req.set_up_to_sequence(up_to_sequence);
    req.set_page_size(page_size);
    lv1::ReadJournalResponse resp;
    grpc::ClientContext ctx;
    rpc::Prepare(ctx, options_);
    const grpc::Status s = stub_->ReadJournal(&ctx, req, &resp);
    if (!s.ok()) return rpc::RemoteError(s, "ledger", "ReadJournal");
    JournalPage page;
    page.transfers.reserve(resp.transfers_size());
    for (auto& t : *resp.mutable_transfers()) page.transfers.push_back(std::move(t));
    page.last_sequence = resp.last_sequence();
    page.head_sequence = resp.head_sequence();
    return page;
  }

  absl::StatusOr<lv1::VerifyChainResponse> VerifyChain(int64_t from_sequence, int64_t to_sequence) override {
    lv1::VerifyChainRequest req;
    req.set_from_sequence(from_sequence);
    req.set_to_sequence(to_sequence);
    lv1::VerifyChainResponse resp;
    grpc::ClientContext ctx;
    rpc::Prepare(ctx, options_);
    const grpc::Status s = stub_->VerifyChain(&ctx, req, &resp);
    if (!s.ok()) return rpc::RemoteError(s, "ledger", "VerifyChain");
    return resp;
  }

  absl::StatusOr<lv1::GetPointsLiabilityResponse> GetPointsLiability() override {
    lv1::GetPointsLiabilityResponse resp;
    grpc::ClientContext ctx;
    rpc::Prepare(ctx, options_);
    const grpc::Status s = stub_->GetPointsLiability(&ctx, lv1::GetPointsLiabilityRequest(), &resp);
    if (!s.ok()) return rpc::RemoteError(s, "ledger", "GetPointsLiability");
    return resp;
  }

 private:
  std::unique_ptr<lv1::LedgerService::Stub> stub_;
  rpc::CallOptions options_;
};

}  // namespace

LedgerClientPtr NewGrpcLedgerClient(std::shared_ptr<grpc::Channel> channel, rpc::CallOptions options) {
  return std::make_unique<GrpcLedgerClient>(std::move(channel), std::move(options));
}

}  // namespace loyalty::settlement
