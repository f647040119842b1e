#include "services/catalog/grpc_clients.h"

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/rpc/client_call.h"
#include "common/status/grpc_status.h"
#include "common/time/proto_time.h"
#include "loyalty/ledger/v1/ledger.grpc.pb.h"
#include "loyalty/membership/v1/membership.grpc.pb.h"
#include "loyalty/settlement/v1/settlement.grpc.pb.h"

namespace loyalty::catalog {
namespace {

namespace lv1 = ::loyalty::ledger::v1;
namespace mv1 = ::loyalty::membership::v1;

// Whether `peer` has what `request` names (a Get RPC): OK, NOT_FOUND
// ("<what> not found"), or rpc::RemoteError.
template <typename Stub, typename Req, typename Resp>
absl::Status Exists(Stub& stub, grpc::Status (Stub::*get)(grpc::ClientContext*, const Req&, Resp*),
                    const Req& request, const rpc::CallOptions& options, absl::string_view what,
                    absl::string_view peer, absl::string_view method) {
  Resp resp;
  grpc::ClientContext ctx;
  rpc::Prepare(ctx, options);
  grpc::Status s = (stub.*get)(&ctx, request, &resp);
  if (s.error_code() == grpc::StatusCode::NOT_FOUND) return absl::NotFoundError(absl::StrCat(what, " not found"));
  if (!s.ok()) return rpc::RemoteError(s, peer, method);
  return absl::OkStatus();
}

HoldOutcome OutcomeOf(const lv1::Hold& h, int64_t available) {
  HoldOutcome out;
  out.hold_id = h.hold_id();
  out.state = h.state();
  out.expires_at = FromProtoTime(h.expires_at());
  out.closing_transfer_id = h.closing_transfer_id();
  if (h.has_closed_at()) out.closed_at = FromProtoTime(h.closed_at());
  out.available_points = available;
  return out;
}

class GrpcLedgerClient final : public LedgerClient {
 public:
  GrpcLedgerClient(std::shared_ptr<grpc::Channel> channel, rpc::CallOptions options)
      : stub_(lv1::LedgerService::NewStub(std::move(channel))), options_(std::move(options)) {}

  absl::StatusOr<HoldOutcome> Authorize(const std::string& key, const std::string& member_id,
                                        const std::string& partner_id, int64_t points, absl::Duration ttl,
                                        const std::string& reference) override {
    lv1::AuthorizeRequest req;
    req.set_idempotency_key(key);
    req.set_member_id(member_id);
    req.set_partner_id(partner_id);
    req.set_points(points);
    req.set_ttl_seconds(absl::ToInt64Seconds(ttl));
    req.set_reference(reference);
    lv1::AuthorizeResponse resp;
    grpc::ClientContext ctx;
    rpc::Prepare(ctx, options_);
    grpc::Status s = stub_->Authorize(&ctx, req, &resp);
    if (!s.ok()) return rpc::RemoteError(s, "ledger", "Authorize");
    return OutcomeOf(resp.hold(), resp.balance().available_points());
  }

  absl::StatusOr<HoldOutcome> Capture(const std::string& key, const std::string& hold_id,
                                      const std::string& reference) override {
    lv1::CaptureRequest req;
    req.set_idempotency_key(key);
    req.set_hold_id(hold_id);
    req.set_reference(reference);
    lv1::CaptureResponse resp;
    grpc::ClientContext ctx;
    rpc::Prepare(ctx, options_);
    grpc::Status s = stub_->Capture(&ctx, req, &resp);
    if (!s.ok()) return rpc::RemoteError(s, "ledger", "Capture");
    HoldOutcome out = OutcomeOf(resp.hold(), resp.balance().available_points());
    if (out.closing_transfer_id.empty()) out.closing_transfer_id = resp.transfer().transfer_id();
    return out;
  }

  absl::StatusOr<HoldOutcome> Void(const std::string& key, const std::string& hold_id,
                                   const std::string& reason) override {
    lv1::VoidRequest req;
    req.set_idempotency_key(key);
    req.set_hold_id(hold_id);
    req.set_reason(reason);
    lv1::VoidResponse resp;
    grpc::ClientContext ctx;
    rpc::Prepare(ctx, options_);
    grpc::Status s = stub_->Void(&ctx, req, &resp);
    if (!s.ok()) return rpc::RemoteError(s, "ledger", "Void");
    return OutcomeOf(resp.hold(), resp.balance().available_points());
  }

  absl::StatusOr<HoldOutcome> GetHold(const std::string& hold_id) override {
    lv1::GetHoldRequest req;
    req.set_hold_id(hold_id);
    lv1::GetHoldResponse resp;
    grpc::ClientContext ctx;
    rpc::Prepare(ctx, options_);
    grpc::Status s = stub_->GetHold(&ctx, req, &resp);
    if (!s.ok()) return rpc::RemoteError(s, "ledger", "GetHold");
    return OutcomeOf(resp.hold(), -1);
  }

  absl::StatusOr<int64_t> AvailablePoints(const std::string& member_id) override {
    lv1::GetBalanceRequest req;
    req.set_member_id(member_id);
    lv1::GetBalanceResponse resp;
    grpc::ClientContext ctx;
    rpc::Prepare(ctx, options_);
    grpc::Status s = stub_->GetBalance(&ctx, req, &resp);
    if (!s.ok()) return rpc::RemoteError(s, "ledger", "GetBalance");
    return resp.balance().available_points();
  }

  absl::StatusOr<std::string> GrantBonus(const std::string& key, const std::string& member_id, int64_t points,
                                         const std::string& funding_partner_id, const std::string& reason,
                                         const std::string& reference) override {
    lv1::GrantBonusRequest req;
    req.set_idempotency_key(key);
    req.set_member_id(member_id);
    req.set_points(points);
    req.set_bonus_kind(lv1::BONUS_KIND_COUPON);
    req.set_reason(reason);
    req.set_funding_partner_id(funding_partner_id);
    req.set_reference(reference);
    lv1::GrantBonusResponse resp;
    grpc::ClientContext ctx;
    rpc::Prepare(ctx, options_);
    grpc::Status s = stub_->GrantBonus(&ctx, req, &resp);
    if (!s.ok()) return rpc::RemoteError(s, "ledger", "GrantBonus");
    return resp.transfer().transfer_id();
  }

  absl::StatusOr<lv1::QuoteEarnResponse> QuoteEarn(const lv1::QuoteEarnRequest& req) override {
    lv1::QuoteEarnResponse resp;
    grpc::ClientContext ctx;
    rpc::Prepare(ctx, options_);
    grpc::Status s = stub_->QuoteEarn(&ctx, req, &resp);
    if (!s.ok()) return rpc::RemoteError(s, "ledger", "QuoteEarn");
    return resp;
  }

 private:
  std::unique_ptr<lv1::LedgerService::Stub> stub_;
  rpc::CallOptions options_;
};

class GrpcMemberDirectory final : public MemberDirectory {
 public:
  GrpcMemberDirectory(std::shared_ptr<grpc::Channel> channel, rpc::CallOptions options, absl::Duration ladder_ttl)
      : stub_(mv1::MembershipService::NewStub(std::move(channel))),
        options_(std::move(options)),
        ladder_ttl_(ladder_ttl) {}

  absl::StatusOr<MemberTier> TierOf(const std::string& member_id) override {
    mv1::GetMemberRequest req;
    req.set_member_id(member_id);
    mv1::GetMemberResponse resp;
    grpc::ClientContext ctx;
    rpc::Prepare(ctx, options_);
    grpc::Status s = stub_->GetMember(&ctx, req, &resp);
    if (!s.ok()) return rpc::RemoteError(s, "membership", "GetMember");
    MemberTier out;
    out.tier_id = resp.member().tier().tier_id();
    absl::StatusOr<int> rank = RankOf(out.tier_id);
    if (!rank.ok()) return rank.status();
    out.rank = *rank;
    return out;
  }

  absl::StatusOr<bool> VisibleTo(const std::string& member_id, const std::string& partner_id) override {
    {
      mv1::GetMemberRequest req;
      req.set_member_id(member_id);
      mv1::GetMemberResponse resp;
      grpc::ClientContext ctx;
      rpc::Prepare(ctx, options_);
      grpc::Status s = stub_->GetMember(&ctx, req, &resp);
      if (!s.ok()) return rpc::RemoteError(s, "membership", "GetMember");
      if (resp.member().enrolling_partner_id() == partner_id) return true;
    }
    mv1::GetConsentsRequest req;
    req.set_member_id(member_id);
    mv1::GetConsentsResponse resp;
    grpc::ClientContext ctx;
    rpc::Prepare(ctx, options_);
    grpc::Status s = stub_->GetConsents(&ctx, req, &resp);
    if (!s.ok()) return rpc::RemoteError(s, "membership", "GetConsents");
    for (const auto& d : resp.consents().data_sharing()) {
      if (d.partner_id() == partner_id && d.granted()) return true;
    }
    return false;
  }

  absl::Status SegmentExists(const std::string& segment_id) override {
    mv1::GetSegmentRequest req;
    req.set_segment_id(segment_id);
    return Exists(*stub_, &mv1::MembershipService::Stub::GetSegment, req, options_, "segment", "membership",
                  "GetSegment");
  }

  absl::StatusOr<int> RankOf(const std::string& tier_id) override {
    {
      absl::MutexLock lock(&mu_);
      if (absl::Now() < ladder_until_) {
        auto it = ranks_.find(tier_id);
        if (it != ranks_.end()) return it->second;
      }
    }
    mv1::GetTierLadderRequest req;
    mv1::GetTierLadderResponse resp;
    grpc::ClientContext ctx;
    rpc::Prepare(ctx, options_);
    grpc::Status s = stub_->GetTierLadder(&ctx, req, &resp);
    if (!s.ok()) return rpc::RemoteError(s, "membership", "GetTierLadder");
    absl::MutexLock lock(&mu_);
    ranks_.clear();
    for (const auto& t : resp.ladder().tiers()) ranks_[t.tier_id()] = t.rank();
    ladder_until_ = absl::Now() + ladder_ttl_;
    auto it = ranks_.find(tier_id);
    if (it == ranks_.end()) return absl::NotFoundError(absl::StrCat("tier ", tier_id, " not found"));
    return it->second;
  }

 private:
  std::unique_ptr<mv1::MembershipService::Stub> stub_;
  rpc::CallOptions options_;
  absl::Duration ladder_ttl_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, int> ranks_ ABSL_GUARDED_BY(mu_);
  absl::Time ladder_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace

std::unique_ptr<LedgerClient> NewGrpcLedgerClient(std::shared_ptr<grpc::Channel> channel, rpc::CallOptions options) {
  return std::make_unique<GrpcLedgerClient>(std::move(channel), std::move(options));
}

std::unique_ptr<MemberDirectory> NewGrpcMemberDirectory(std::shared_ptr<grpc::Channel> channel,
                                                        rpc::CallOptions options, absl::Duration ladder_ttl) {
  return std::make_unique<GrpcMemberDirectory>(std::move(channel), std::move(options), ladder_ttl);
}

namespace {

class GrpcPartnerDirectory final : public PartnerDirectory {
 public:
  GrpcPartnerDirectory(std::shared_ptr<grpc::Channel> channel, rpc::CallOptions options)
      : stub_(settlement::v1::SettlementService::NewStub(std::move(channel))), options_(std::move(options)) {}

  absl::Status PartnerExists(const std::string& partner_id) override {
    settlement::v1::GetPartnerRequest req;
    req.set_partner_id(partner_id);
    return Exists(*stub_, &settlement::v1::SettlementService::Stub::GetPartner, req, options_, "partner",
                  "settlement", "GetPartner");
  }

 private:
  std::unique_ptr<settlement::v1::SettlementService::Stub> stub_;
  const rpc::CallOptions options_;
};

}  // namespace

std::unique_ptr<PartnerDirectory> NewGrpcPartnerDirectory(std::shared_ptr<grpc::Channel> channel,
                                                          rpc::CallOptions options) {
  return std::make_unique<GrpcPartnerDirectory>(std::move(channel), std::move(options));
}

}  // namespace loyalty::catalog
