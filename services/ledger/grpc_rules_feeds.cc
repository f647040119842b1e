#include "services/ledger/grpc_rules_feeds.h"

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"

#include <memory>

#include "loyalty/catalog/v1/catalog.grpc.pb.h"
#include "loyalty/membership/v1/membership.grpc.pb.h"
#include "loyalty/settlement/v1/settlement.grpc.pb.h"

namespace loyalty::ledger {
namespace {

namespace cv1 = ::loyalty::catalog::v1;
namespace mv1 = ::loyalty::membership::v1;
namespace sv1 = ::loyalty::settlement::v1;

constexpr int kPartnerPage = 2000;  // the largest pages the feeds allow
constexpr int kMemberPage = 5000;
constexpr absl::Duration kMemberLookupDeadline = absl::Seconds(2);

// One unary call with the service credential and deadline; a failure is
// mapped by rpc::RemoteError.
template <typename Stub, typename Req, typename Resp>
std::function<absl::StatusOr<Resp>(const Req&)> Unary(
    std::shared_ptr<Stub> stub, grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
    rpc::CallOptions options, const char* service, const char* name) {
  return [stub, method, options, service, name](const Req& req) -> absl::StatusOr<Resp> {
    Resp resp;
    grpc::ClientContext ctx;
    rpc::Prepare(ctx, options);
    grpc::Status s = ((*stub).*method)(&ctx, req, &resp);
    if (!s.ok()) return rpc::RemoteError(s, service, name);
    return resp;
  };
}

template <typename Service>
std::shared_ptr<typename Service::Stub> StubFor(const rpc::ChannelFactory& channel_to, const std::string& address) {
  return Service::NewStub(channel_to(address));
}

}  // namespace

RulesFeeds NewGrpcRulesFeeds(const RulesFeedAddresses& addresses, const rpc::CallOptions& options,
                             const rpc::ChannelFactory& channel_to) {
  RulesFeeds feeds;
  if (!addresses.settlement.empty()) {
    auto call = Unary(StubFor<sv1::SettlementService>(channel_to, addresses.settlement),
                      &sv1::SettlementService::Stub::ListPartnerSnapshots, options, "settlement", "ListPartnerSnapshots");
    feeds.partners = [call](int64_t after_version) {
      sv1::ListPartnerSnapshotsRequest req;
      req.set_after_version(after_version);
      req.set_page_size(kPartnerPage);
      return call(req);
    };
  }
  if (!addresses.membership.empty()) {
    auto call = Unary(StubFor<mv1::MembershipService>(channel_to, addresses.membership),
                      &mv1::MembershipService::Stub::ListMemberSnapshots, options, "membership", "ListMemberSnapshots");
    feeds.members = [call](int64_t after_version) {
      mv1::ListMemberSnapshotsRequest req;
      req.set_after_version(after_version);
      req.set_page_size(kMemberPage);
      return call(req);
    };
  }
  if (!addresses.catalog.empty()) {
    auto call = Unary(StubFor<cv1::CatalogService>(channel_to, addresses.catalog),
                      &cv1::CatalogService::Stub::GetActiveEarnRules, options, "catalog", "GetActiveEarnRules");
    feeds.campaigns = [call](int64_t known_version) {
      cv1::GetActiveEarnRulesRequest req;
      req.set_known_version(known_version);
      return call(req);
    };
    auto lease = Unary(StubFor<cv1::CatalogService>(channel_to, addresses.catalog),
                       &cv1::CatalogService::Stub::LeaseCampaignBudget, options, "catalog", "LeaseCampaignBudget");
    // The refresher's key: fresh per lease, the same while an answer is
    // unknown. Never a key from before a restart, which would hand back an
    // old lease whose points may already be spent.
    feeds.lease_budget = [lease, holder = addresses.holder](const std::string& campaign_id, int64_t points,
                                                           const std::string& key) -> absl::StatusOr<BudgetLease> {
      cv1::LeaseCampaignBudgetRequest req;
      req.set_idempotency_key(key);
      req.set_campaign_id(campaign_id);
      req.set_requested_points(points);
      req.set_holder(holder);
      ASSIGN_OR_RETURN(cv1::LeaseCampaignBudgetResponse resp, lease(req));
      return BudgetLease{resp.lease().campaign_budget_lease_id(), resp.lease().granted_points(), 0};
    };
    auto give_back = Unary(StubFor<cv1::CatalogService>(channel_to, addresses.catalog),
                           &cv1::CatalogService::Stub::ReturnCampaignBudget, options, "catalog",
                           "ReturnCampaignBudget");
    feeds.return_budget = [give_back](const BudgetLease& l) -> absl::Status {
      cv1::ReturnCampaignBudgetRequest req;
      req.set_idempotency_key(absl::StrCat("return-", l.lease_id));
      req.set_campaign_budget_lease_id(l.lease_id);
      req.set_used_points(l.used);
      req.set_unused_points(l.remaining());
      return give_back(req).status();
    };
  }
  return feeds;
}

MemberDirectory::Lookup NewGrpcMemberLookup(const std::string& membership_address, rpc::CallOptions options,
                                            const rpc::ChannelFactory& channel_to) {
  if (membership_address.empty()) return {};
  // On the caller's path: a short deadline, the caller retries later.
  options.deadline = std::min(options.deadline, kMemberLookupDeadline);
  std::shared_ptr<mv1::MembershipService::Stub> stub = StubFor<mv1::MembershipService>(channel_to, membership_address);
  return [stub, options](const std::string& member_id) -> absl::Status {
    mv1::GetMemberSnapshotRequest req;
    req.set_member_id(member_id);
    mv1::GetMemberSnapshotResponse resp;
    grpc::ClientContext ctx;
    rpc::Prepare(ctx, options);
    grpc::Status s = stub->GetMemberSnapshot(&ctx, req, &resp);
    if (s.error_code() == grpc::StatusCode::NOT_FOUND) return absl::NotFoundError("member never issued");
    if (!s.ok()) return rpc::RemoteError(s, "membership", "GetMemberSnapshot");
    return absl::OkStatus();
  };
}

}  // namespace loyalty::ledger
