// loyalty-membership: wiring only. See common/server/service_main.h.
#include <memory>
#include <vector>

#include "common/log/log.h"
#include "common/log/outage_log.h"

#include "absl/strings/str_split.h"
#include "common/auth/grpc_auth.h"
#include "common/server/periodic_job.h"
#include "common/server/service_main.h"
#include "common/status/status_macros.h"
#include "grpcpp/create_channel.h"
#include "services/membership/grpc_ledger_client.h"
#include "services/membership/membership.h"
#include "services/membership/membership_service.h"
#include "services/membership/mysql_membership_store.h"

namespace loyalty::membership {
const std::vector<db::MigrationFile>& Migrations();

namespace {

std::vector<std::string> List(const std::string& text) {
  return absl::StrSplit(text, ',', absl::SkipWhitespace());
}

class Instance final : public server::ServiceInstance {
 public:
  Instance(db::ConnectionPool& pool, auth::Authenticator& authenticator, std::unique_ptr<LedgerClient> ledger,
           MembershipOptions options, absl::Duration journal_poll, absl::Duration segment_refresh_interval)
      : store_(NewMysqlMembershipStore(pool)),
        ledger_(std::move(ledger)),
        membership_(*store_, *ledger_, std::move(options)),
        guard_(authenticator, v1::MembershipService::service_full_name()),
        service_(membership_, [this](const grpc::ServerContext& ctx, absl::string_view method) {
          return guard_.Check(ctx, method);
        }),
        journal_("journal_follow", journal_poll, [this] { return FollowJournal(); }),
        segment_refresher_("segment_refresh", segment_refresh_interval, [this] { return RefreshSegments(); }) {}
  ~Instance() override {
    BeginShutdown();
    journal_.Join();
    segment_refresher_.Join();
  }

  std::vector<grpc::Service*> services() override { return {&service_}; }
  void BeginShutdown() override {
    journal_.Stop();
    segment_refresher_.Stop();
  }

 private:
  // Follows the ledger journal (activity, referral rewards). Errors are
  // logged and retried on the next tick; a full page is followed at once.
  server::PeriodicJob::Next FollowJournal() {
    constexpr int kPage = 1000;
    absl::StatusOr<int> consumed = membership_.journal_consumer().ConsumeLedgerJournal(kPage);
    journal_follow_log_.Record(consumed.status());
    absl::StatusOr<int> granted = membership_.journal_consumer().GrantReferralRewards(100);
    referral_rewards_log_.Record(granted.status());
    if (granted.ok() && *granted > 0) {
      log::Info("referral_rewards_granted", {{"count", *granted}});
    }
    return consumed.ok() && *consumed == kPage ? server::PeriodicJob::kAtOnce : server::PeriodicJob::kAfterInterval;
  }

  // Materialises saved segments (MemberSnapshot.segment_ids): one full pass
  // over the members, then a pause. Its own job, because a pass over many
  // members takes a while and needs no ledger. Several replicas share a pass
  // chunk by chunk (see segment_refresh.h). A few chunks per step, so that
  // shutdown is noticed between them; errors are logged and retried after
  // the interval.
  server::PeriodicJob::Next RefreshSegments() {
    constexpr int kChunksPerCall = 20;
    absl::StatusOr<SegmentRefreshResult> step = membership_.segment_refresh().RefreshSegments(kChunksPerCall);
    segment_refresh_log_.Record(step.status());
    if (step.ok()) {
      pass_.members_examined += step->members_examined;
      pass_.rows_added += step->rows_added;
      pass_.rows_removed += step->rows_removed;
      pass_.members_changed += step->members_changed;
      if (!step->pass_completed) return server::PeriodicJob::kAtOnce;
      // A pass that changed nothing is the common case: not worth a line
      // a minute at info.
      log::Write(pass_.members_changed > 0 ? log::Level::kInfo : log::Level::kDebug, "segments_refreshed",
                 {{"pass", step->pass},
                  {"members_examined", pass_.members_examined},
                  {"rows_added", pass_.rows_added},
                  {"rows_removed", pass_.rows_removed},
                  {"members_changed", pass_.members_changed}});
    }
    pass_ = SegmentRefreshResult{};
    return server::PeriodicJob::kAfterInterval;
  }

  std::unique_ptr<MembershipStore> store_;
  std::unique_ptr<LedgerClient> ledger_;
  Membership membership_;
  auth::RpcGuard guard_;
  MembershipService service_;
  // Failures of the background jobs, logged once per outage.
  log::OutageLog journal_follow_log_{"journal_follow"};
  log::OutageLog referral_rewards_log_{"referral_rewards"};
  log::OutageLog segment_refresh_log_{"segment_refresh"};
  SegmentRefreshResult pass_;  // the pass so far; segment_refresher_'s only
  // Last: they start once everything above exists.
  server::PeriodicJob journal_;
  server::PeriodicJob segment_refresher_;
};

absl::StatusOr<server::ServiceInstancePtr> Build(const server::ServiceContext& ctx) {
  MembershipOptions options;
  options.supported_languages = List(ctx.config.GetString("languages"));
  options.terms_versions = List(ctx.config.GetString("terms_versions"));
  options.privacy_versions = List(ctx.config.GetString("privacy_versions"));
  if (options.supported_languages.empty()) return absl::InvalidArgumentError("--languages: at least one");
  if (options.terms_versions.empty()) return absl::InvalidArgumentError("--terms_versions: at least one");
  if (options.privacy_versions.empty()) return absl::InvalidArgumentError("--privacy_versions: at least one");
  ASSIGN_OR_RETURN(int64_t deadline_ms, ctx.config.GetInt("ledger_deadline_ms", 100, 60'000));
  ASSIGN_OR_RETURN(int64_t poll_ms, ctx.config.GetInt("journal_poll_ms", 0, 3'600'000));
  ASSIGN_OR_RETURN(int64_t segment_refresh_ms, ctx.config.GetInt("segment_refresh_interval_ms", 0, 86'400'000));
  ASSIGN_OR_RETURN(options.referral_reward_points, ctx.config.GetInt("referral_reward_points", 1, 1'000'000));
  rpc::CallOptions ledger_options;
  ledger_options.api_key = ctx.config.GetString("ledger_api_key");
  if (ledger_options.api_key.empty()) {
    // Without a service credential every ledger call is refused: tier
    // evaluation and export answer an error, and the journal is not followed.
    log::Warn("ledger_api_key_missing", {{"effect", "tiers, export, activity and referral rewards unavailable"}});
    poll_ms = 0;
  }
  ledger_options.deadline = absl::Milliseconds(deadline_ms);
  // The channel connects lazily and reconnects by itself: the ledger may
  // start after membership.
  auto channel = ctx.channel_to(ctx.config.GetString("ledger_address"));
  return std::make_unique<Instance>(ctx.pool, ctx.authenticator,
                                    NewGrpcLedgerClient(std::move(channel), std::move(ledger_options)),
                                    std::move(options), absl::Milliseconds(poll_ms),
                                    absl::Milliseconds(segment_refresh_ms));
}

}  // namespace
}  // namespace loyalty::membership

int main(int argc, char** argv) {
  using namespace loyalty;
  return server::ServiceMain(argc, argv, {
      .name = "membership",
      .grpc_service_name = membership::v1::MembershipService::service_full_name(),
      .default_port = 7101,
      .migrations = &membership::Migrations(),
      .extra_flags = {
          {"ledger_address", "127.0.0.1:7102", "host:port of the ledger service"},
          {"ledger_api_key", "", "service API key membership presents to the ledger", true},
          {"ledger_deadline_ms", "5000", "deadline of each call to the ledger"},
          {"journal_poll_ms", "2000", "how often the ledger journal is followed (activity, referral rewards); 0 = off"},
          {"segment_refresh_interval_ms", "60000",
           "pause between passes that materialise saved segments (MemberSnapshot.segment_ids); 0 = off"},
          {"referral_reward_points", "500", "points a referrer gets when the referred member first earns"},
          {"languages", "en,de,fr,it,nl,es,de-AT,de-CH,fr-CH,en-GB", "supported preferred languages (BCP 47)"},
          {"terms_versions", "2025-01", "terms versions members may accept (comma-separated)"},
          {"privacy_versions", "2025-01", "privacy notice versions members may accept (comma-separated)"},
      },
      .build = membership::Build,
  });
}
