// loyalty-catalog: wiring only. See common/server/service_main.h.
#include <memory>
#include <vector>

#include "common/auth/grpc_auth.h"
#include "common/log/log.h"
#include "common/log/outage_log.h"
#include "common/server/periodic_job.h"
#include "common/server/service_main.h"
#include "common/status/status_macros.h"
#include "services/catalog/catalog.h"
#include "services/catalog/catalog_service.h"
#include "services/catalog/grpc_clients.h"
#include "services/catalog/mysql_catalog_store.h"

namespace loyalty::catalog {
const std::vector<db::MigrationFile>& Migrations();

namespace {

constexpr int kSweepBatch = 200;

class Instance final : public server::ServiceInstance {
 public:
  Instance(db::ConnectionPool& pool, auth::Authenticator& authenticator, std::unique_ptr<LedgerClient> ledger,
           std::unique_ptr<MemberDirectory> members, std::unique_ptr<PartnerDirectory> partners,
           CatalogOptions options, absl::Duration sweep_every)
      : store_(NewMysqlCatalogStore(pool)),
        ledger_(std::move(ledger)),
        members_(std::move(members)),
        partners_(std::move(partners)),
        catalog_(*store_, *ledger_, *members_, WithPartners(std::move(options), partners_.get())),
        guard_(authenticator, v1::CatalogService::service_full_name()),
        service_(catalog_, [this](const grpc::ServerContext& ctx, absl::string_view method) {
          return guard_.Check(ctx, method);
        }),
        sweep_("catalog_sweep", sweep_every, [this] { return Sweep(); }) {}
  ~Instance() override {
    BeginShutdown();
    sweep_.Join();
  }

  std::vector<grpc::Service*> services() override { return {&service_}; }
  void BeginShutdown() override {
    service_.BeginShutdown();
    sweep_.Stop();
  }

 private:
  static CatalogOptions WithPartners(CatalogOptions options, PartnerDirectory* partners) {
    options.partners = partners;
    return options;
  }

  // Repairs interrupted Redeem sagas (on startup, then periodically),
  // grants coupon bonuses still due and releases expired vouchers. Errors
  // are logged and retried next time; a full batch of expiries runs again at once.
  server::PeriodicJob::Next Sweep() {
    saga_recovery_log_.Record(catalog_.jobs().Recover(kSweepBatch).status());
    voucher_repair_log_.Record(catalog_.jobs().RepairVouchers(kSweepBatch).status());
    coupon_grants_log_.Record(catalog_.jobs().GrantDueCouponBonuses(kSweepBatch).status());
    absl::StatusOr<int> expired = catalog_.jobs().ExpireVouchers(kSweepBatch);
    voucher_expiry_log_.Record(expired.status());
    if (expired.ok() && *expired > 0) {
      log::Info("vouchers_expired", {{"count", *expired}});
    }
    return expired.ok() && *expired == kSweepBatch ? server::PeriodicJob::kAtOnce
                                                    : server::PeriodicJob::kAfterInterval;
  }

  std::unique_ptr<CatalogStore> store_;
  std::unique_ptr<LedgerClient> ledger_;
  std::unique_ptr<MemberDirectory> members_;
  std::unique_ptr<PartnerDirectory> partners_;
  Catalog catalog_;
  auth::RpcGuard guard_;
  CatalogService service_;
  // Each job's failures are logged once per outage.
  log::OutageLog saga_recovery_log_{"saga_recovery"};
  log::OutageLog voucher_repair_log_{"voucher_repair"};
  log::OutageLog coupon_grants_log_{"coupon_grants"};
  log::OutageLog voucher_expiry_log_{"voucher_expiry"};
  server::PeriodicJob sweep_;  // last: starts once everything above exists
};

absl::StatusOr<server::ServiceInstancePtr> Build(const server::ServiceContext& ctx) {
  ASSIGN_OR_RETURN(int64_t deadline_ms, ctx.config.GetInt("ledger_deadline_ms", 100, 60'000));
  ASSIGN_OR_RETURN(int64_t sweep_ms, ctx.config.GetInt("sweep_ms", 0, 3'600'000));
  ASSIGN_OR_RETURN(int64_t grace_ms, ctx.config.GetInt("saga_grace_ms", 1'000, 3'600'000));
  if (grace_ms <= 2 * deadline_ms) {
    return absl::InvalidArgumentError("--saga_grace_ms: must exceed twice --ledger_deadline_ms");
  }
  rpc::CallOptions ledger_options;
  ledger_options.api_key = ctx.config.GetString("ledger_api_key");
  ledger_options.deadline = absl::Milliseconds(deadline_ms);
  rpc::CallOptions membership_options = ledger_options;
  if (!ctx.config.GetString("membership_api_key").empty()) {
    membership_options.api_key = ctx.config.GetString("membership_api_key");
  }
  if (ledger_options.api_key.empty()) {
    // Without a service credential every ledger call is refused: Redeem,
    // honour and cancel answer an error; the sweeper still runs and retries.
    log::Warn("ledger_api_key_missing", {{"effect", "redeem, honour, cancel and voucher expiry unavailable"}});
  }
  CatalogOptions options;
  options.saga_grace = absl::Milliseconds(grace_ms);
  // Channels connect lazily and reconnect by themselves: the ledger and
  // membership may start after the catalog.
  auto ledger_channel = ctx.channel_to(ctx.config.GetString("ledger_address"));
  auto membership_channel = ctx.channel_to(ctx.config.GetString("membership_address"));
  std::unique_ptr<PartnerDirectory> partners;
  if (const std::string& settlement = ctx.config.GetString("settlement_address"); !settlement.empty()) {
    partners = NewGrpcPartnerDirectory(ctx.channel_to(settlement), membership_options);
  } else {
    log::Warn("settlement_address_missing", {{"effect", "partner ids of rewards and campaigns are not checked"}});
  }
  return std::make_unique<Instance>(ctx.pool, ctx.authenticator,
                                    NewGrpcLedgerClient(std::move(ledger_channel), ledger_options),
                                    NewGrpcMemberDirectory(std::move(membership_channel), membership_options),
                                    std::move(partners), std::move(options), absl::Milliseconds(sweep_ms));
}

}  // namespace
}  // namespace loyalty::catalog

int main(int argc, char** argv) {
  using namespace loyalty;
  return server::ServiceMain(argc, argv, {
      .name = "catalog",
      .grpc_service_name = catalog::v1::CatalogService::service_full_name(),
      .default_port = 7104,
      .migrations = &catalog::Migrations(),
      .extra_flags = {
          {"ledger_address", "127.0.0.1:7102", "host:port of the ledger service"},
          {"ledger_api_key", "", "service API key the catalog presents to the ledger", true},
          {"ledger_deadline_ms", "5000", "deadline of each call to the ledger and membership"},
          {"membership_address", "127.0.0.1:7101", "host:port of the membership service (tier limits)"},
          {"membership_api_key", "", "service API key for membership and settlement; empty = the ledger's", true},
          {"settlement_address", "", "host:port of settlement, to check partner ids of rewards and campaigns; "
                                     "empty = not checked"},
          {"sweep_ms", "5000", "how often interrupted sagas are repaired and expired vouchers released; 0 = off"},
          {"saga_grace_ms", "60000", "a Redeem saga untouched this long is presumed interrupted and compensated"},
      },
      .build = catalog::Build,
  });
}
