// loyalty-settlement: wiring only. See common/server/service_main.h.
#include <memory>
#include <vector>

#include "common/auth/grpc_auth.h"
#include "common/log/log.h"
#include "common/log/outage_log.h"
#include "common/server/periodic_job.h"
#include "common/server/service_main.h"
#include "common/status/status_macros.h"
#include "services/settlement/grpc_ledger_client.h"
#include "services/settlement/mysql_settlement_store.h"
#include "services/settlement/settlement.h"
#include "services/settlement/settlement_service.h"

namespace loyalty::settlement {
const std::vector<db::MigrationFile>& Migrations();

namespace {

class Instance final : public server::ServiceInstance {
 public:
  Instance(db::ConnectionPool& pool, auth::Authenticator& authenticator, LedgerClientPtr ledger,
           SettlementOptions options, absl::Duration journal_poll)
      : store_(NewMysqlSettlementStore(pool)),
        ledger_(std::move(ledger)),
        settlement_(*store_, *ledger_, std::move(options)),
        guard_(authenticator, v1::SettlementService::service_full_name()),
        service_(settlement_, [this](const grpc::ServerContext& ctx, absl::string_view method) {
          return guard_.Check(ctx, method);
        }),
        journal_("journal_follow", journal_poll, [this] { return FollowJournal(); }) {}
  ~Instance() override {
    BeginShutdown();
    journal_.Join();
  }

  std::vector<grpc::Service*> services() override { return {&service_}; }
  void BeginShutdown() override { journal_.Stop(); }

 private:
  // Follows the ledger journal for prepaid balances and alerts. Errors are
  // logged and retried on the next tick; a full page is followed at once.
  server::PeriodicJob::Next FollowJournal() {
    constexpr int kPage = 2000;
    absl::StatusOr<int> consumed = settlement_.prepaid().FollowJournal(kPage);
    journal_follow_log_.Record(consumed.status());
    return consumed.ok() && *consumed == kPage ? server::PeriodicJob::kAtOnce : server::PeriodicJob::kAfterInterval;
  }

  SettlementStorePtr store_;
  LedgerClientPtr ledger_;
  Settlement settlement_;
  auth::RpcGuard guard_;
  SettlementService service_;
  log::OutageLog journal_follow_log_{"journal_follow"};  // failures once per outage
  server::PeriodicJob journal_;  // last: starts once everything above exists
};

absl::StatusOr<server::ServiceInstancePtr> Build(const server::ServiceContext& ctx) {
  SettlementOptions options;
  ASSIGN_OR_RETURN(int64_t page_size, ctx.config.GetInt("close_page_size", 1, kMaxJournalPageSize));
  options.close_page_size = static_cast<int>(page_size);
  ASSIGN_OR_RETURN(int64_t deadline_ms, ctx.config.GetInt("ledger_deadline_ms", 100, 600'000));
  ASSIGN_OR_RETURN(int64_t poll_ms, ctx.config.GetInt("journal_poll_ms", 0, 3'600'000));
  rpc::CallOptions ledger_options;
  ledger_options.api_key = ctx.config.GetString("ledger_api_key");
  ledger_options.deadline = absl::Milliseconds(deadline_ms);
  if (ledger_options.api_key.empty()) {
    // Without a service credential every ledger call is refused.
    log::Warn("ledger_api_key_missing",
              {{"effect", "ClosePeriod and Reconcile unavailable, prepaid balances not followed"}});
    poll_ms = 0;
  }
  // The channel connects lazily and reconnects by itself: the ledger may
  // start after settlement.
  auto channel = ctx.channel_to(ctx.config.GetString("ledger_address"));
  return std::make_unique<Instance>(ctx.pool, ctx.authenticator,
                                    NewGrpcLedgerClient(std::move(channel), std::move(ledger_options)),
                                    std::move(options), absl::Milliseconds(poll_ms));
}

}  // namespace
}  // namespace loyalty::settlement

int main(int argc, char** argv) {
  using namespace loyalty;
  return server::ServiceMain(argc, argv, {
      .name = "settlement",
      .grpc_service_name = settlement::v1::SettlementService::service_full_name(),
      .default_port = 7103,
      .migrations = &settlement::Migrations(),
      .extra_flags = {
          {"ledger_address", "127.0.0.1:7102", "host:port of the ledger service"},
          {"ledger_api_key", "", "service API key settlement presents to the ledger", true},
          {"ledger_deadline_ms", "30000", "deadline of each call to the ledger"},
          {"journal_poll_ms", "2000", "how often the ledger journal is followed for prepaid balances; 0 = off"},
          {"close_page_size", "2000", "journal transfers counted per close transaction (1..5000)"},
      },
      .build = settlement::Build,
  });
}
