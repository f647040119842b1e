#include "services/membership/grpc_ledger_client.h"

#include "absl/strings/str_cat.h"
#include "common/rpc/client_call.h"
#include "common/status/grpc_status.h"
#include "common/time/proto_time.h"
#include "loyalty/ledger/v1/ledger.grpc.pb.h"

namespace loyalty::membership {
namespace {

namespace lv1 = ::loyalty::ledger::v1;

// A failed ledger call, mapped by rpc::RemoteError.
#define LEDGER_CALL(call, method)                                                \
  do {                                                                           \
    const grpc::Status ledger_status = (call);                                   \
    if (!ledger_status.ok()) return rpc::RemoteError(ledger_status, "ledger", method); \
  } while (false)

constexpr int kPageSize = 500;
constexpr int kMaxPages = 200;  // 100k transfers: far beyond any member's history

class GrpcLedgerClient final : public LedgerClient {
 public:
  GrpcLedgerClient(std::shared_ptr<grpc::Channel> channel, rpc::CallOptions options)
      : stub_(lv1::LedgerService::NewStub(std::move(channel))), options_(std::move(options)) {}

  absl::StatusOr<absl::flat_hash_map<std::string, int64_t>> QualifyingPoints(
      const std::vector<std::string>& member_ids, absl::Time start, absl::Time end) override {
    absl::flat_hash_map<std::string, int64_t> out;
    if (member_ids.empty()) return out;
    lv1::GetQualifyingPointsRequest req;
    for (const auto& id : member_ids) req.add_member_ids(id);
    *req.mutable_start_time() = ToProtoTime(start);
    *req.mutable_end_time() = ToProtoTime(end);
    lv1::GetQualifyingPointsResponse resp;
    grpc::ClientContext ctx;
    rpc::Prepare(ctx, options_);
    LEDGER_CALL(stub_->GetQualifyingPoints(&ctx, req, &resp), "GetQualifyingPoints");
    for (const auto& m : resp.members()) out[m.member_id()] = m.qualifying_points();
    return out;
  }

  absl::StatusOr<LedgerStatement> Statement(const std::string& member_id) override {
    LedgerStatement out;
    {
      lv1::GetBalanceRequest req;
      req.set_member_id(member_id);
      lv1::GetBalanceResponse resp;
      grpc::ClientContext ctx;
      rpc::Prepare(ctx, options_);
      const grpc::Status s = stub_->GetBalance(&ctx, req, &resp);
      if (s.error_code() == grpc::StatusCode::NOT_FOUND) {
        // Membership issued the member; the ledger has no account for it
        // yet (never earned, or its feed has not brought the member): the
        // balance is zero.
        out.balance.set_account(absl::StrCat("member:", member_id));
      } else {
        LEDGER_CALL(s, "GetBalance");
        out.balance = resp.balance();
      }
    }
    std::string token;
    for (int page = 0; page < kMaxPages; ++page) {
      lv1::ListLotsRequest req;
      req.set_member_id(member_id);
      req.set_include_depleted(true);
      req.set_page_size(kPageSize);
      req.set_page_token(token);
      lv1::ListLotsResponse resp;
      grpc::ClientContext ctx;
      rpc::Prepare(ctx, options_);
      LEDGER_CALL(stub_->ListLots(&ctx, req, &resp), "ListLots");
      for (auto& lot : *resp.mutable_lots()) out.lots.push_back(std::move(lot));
      token = resp.next_page_token();
      if (token.empty()) break;
    }
    token.clear();
    for (int page = 0; page < kMaxPages; ++page) {
      lv1::ListTransfersRequest req;
      req.set_member_id(member_id);
      req.set_oldest_first(true);
      req.set_page_size(kPageSize);
      req.set_page_token(token);
      lv1::ListTransfersResponse resp;
      grpc::ClientContext ctx;
      rpc::Prepare(ctx, options_);
      LEDGER_CALL(stub_->ListTransfers(&ctx, req, &resp), "ListTransfers");
      for (auto& t : *resp.mutable_transfers()) out.transfers.push_back(std::move(t));
      token = resp.next_page_token();
      if (token.empty()) break;
    }
    return out;
  }

  absl::StatusOr<JournalPage> ReadJournal(int64_t after_sequence, int page_size) override {
    lv1::ReadJournalRequest req;
    req.set_after_sequence(after_sequence);
    req.set_page_size(page_size);
    lv1::ReadJournalResponse resp;
    grpc::ClientContext ctx;
    rpc::Prepare(ctx, options_);
    LEDGER_CALL(stub_->ReadJournal(&ctx, req, &resp), "ReadJournal");
    JournalPage page;
    for (auto& t : *resp.mutable_transfers()) page.transfers.push_back(std::move(t));
    page.last_sequence = resp.last_sequence();
    page.head_sequence = resp.head_sequence();
    return page;
  }

  absl::StatusOr<std::string> GrantBonus(const std::string& key, const std::string& member_id, int64_t points,
                                         lv1::BonusKind kind, const std::string& reason,
                                         const std::string& reference) override {
    lv1::GrantBonusRequest req;
    req.set_idempotency_key(key);
    req.set_member_id(member_id);
    req.set_points(points);
    req.set_bonus_kind(kind);
    req.set_reason(reason);
    req.set_reference(reference);
    lv1::GrantBonusResponse resp;
    grpc::ClientContext ctx;
    rpc::Prepare(ctx, options_);
    // A refusal (e.g. the member was suspended meanwhile) is the ledger's
    // business answer, passed on by rpc::RemoteError so the caller can decide.
    LEDGER_CALL(stub_->GrantBonus(&ctx, req, &resp), "GrantBonus");
    return resp.transfer().transfer_id();
  }

 private:
  std::unique_ptr<lv1::LedgerService::Stub> stub_;
  rpc::CallOptions options_;
};

}  // namespace

std::unique_ptr<LedgerClient> NewGrpcLedgerClient(std::shared_ptr<grpc::Channel> channel,
                                                  rpc::CallOptions options) {
  return std::make_unique<GrpcLedgerClient>(std::move(channel), std::move(options));
}

}  // namespace loyalty::membership
