// loyalty-ledger: wiring only. See common/server/service_main.h.
#include <sys/stat.h>

#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/log/outage_log.h"
#include "common/server/periodic_job.h"
#include "common/server/service_main.h"
#include "common/status/status_macros.h"
#include "services/ledger/batch_writer.h"
#include "services/ledger/grpc_rules_feeds.h"
#include "services/ledger/ledger.h"
#include "services/ledger/ledger_service.h"
#include "services/ledger/mysql_ledger_store.h"
#include "services/ledger/rules_cache.h"
#include "services/ledger/rules_feed.h"

namespace loyalty::ledger {
const std::vector<db::MigrationFile>& Migrations();

namespace {

struct Settings {
  std::string rules_file;
  absl::Duration rules_refresh;
  RulesFeedAddresses feeds;
  rpc::CallOptions feed_call;
  int lot_expiry_days;
  BatchWriterOptions writer;
  absl::Duration sweep_interval;
  absl::Duration expiry_interval;
};

absl::StatusOr<Settings> ReadSettings(const config::Config& config) {
  Settings s;
  s.rules_file = config.GetString("earn_rules_file");
  ASSIGN_OR_RETURN(int64_t refresh_ms, config.GetInt("earn_rules_refresh_ms", 100, 3'600'000));
  s.rules_refresh = absl::Milliseconds(refresh_ms);
  s.feeds.settlement = config.GetString("settlement_address");
  s.feeds.membership = config.GetString("membership_address");
  s.feeds.catalog = config.GetString("catalog_address");
  s.feeds.holder = absl::StrCat("ledger@", config.GetString("listen"));
  s.feed_call.api_key = config.GetString("service_api_key");
  ASSIGN_OR_RETURN(int64_t feed_deadline_ms, config.GetInt("feed_deadline_ms", 100, 60'000));
  s.feed_call.deadline = absl::Milliseconds(feed_deadline_ms);
  ASSIGN_OR_RETURN(int64_t expiry_days, config.GetInt("lot_expiry_days", 1, 36'500));
  s.lot_expiry_days = static_cast<int>(expiry_days);
  ASSIGN_OR_RETURN(s.writer.batching, config.GetBool("batching"));
  ASSIGN_OR_RETURN(int64_t max_batch, config.GetInt("max_batch", 1, kMaxBatchLimit));
  s.writer.max_batch = static_cast<int>(max_batch);
  ASSIGN_OR_RETURN(int64_t sweep_ms, config.GetInt("hold_sweep_interval_ms", 0, 3'600'000));
  s.sweep_interval = absl::Milliseconds(sweep_ms);
  ASSIGN_OR_RETURN(int64_t expiry_ms, config.GetInt("expiry_interval_ms", 0, 86'400'000));
  s.expiry_interval = absl::Milliseconds(expiry_ms);
  return s;
}

int64_t FileVersion(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

absl::StatusOr<internal::v1::EarnRulesFile> LoadFile(const Settings& s) {
  if (s.rules_file.empty()) return internal::v1::EarnRulesFile();
  return ReadRulesFile(s.rules_file);
}

class Instance final : public server::ServiceInstance {
 public:
  Instance(db::ConnectionPool& pool, auth::Authenticator& authenticator, Settings settings,
           std::unique_ptr<RulesCache> rules, std::unique_ptr<RulesRefresher> refresher,
           MemberDirectory::Lookup member_lookup)
      : settings_(std::move(settings)),
        store_(NewMysqlLedgerStore(pool)),
        rules_(std::move(rules)),
        refresher_(std::move(refresher)),
        writer_(*store_, *rules_, settings_.writer),
        members_(std::move(member_lookup)),
        ledger_(*store_, *rules_, writer_, members_),
        service_(ledger_, authenticator),
        rules_file_version_(FileVersion(settings_.rules_file)),
        next_sweep_(absl::Now()),
        next_expiry_(absl::Now() + settings_.expiry_interval) {}
  ~Instance() override {
    BeginShutdown();
    housekeeping_.Join();
    rules_job_.Join();
    // Calls have drained, but a caller who gave up at its deadline may have
    // left its batch committing: finish it, so that no lease is still
    // reserved; then give the catalog back the budget not spent.
    writer_.Stop();
    refresher_->ReturnLeases();
  }

  std::vector<grpc::Service*> services() override { return {&service_}; }
  void BeginShutdown() override {
    housekeeping_.Stop();
    rules_job_.Stop();
  }

 private:
  // The hold sweeper and the lot expiry job, on one thread that looks every
  // 100 ms whether either is due.
  server::PeriodicJob::Next Housekeeping() {
    const absl::Time now = absl::Now();
    if (settings_.sweep_interval > absl::ZeroDuration() && now >= next_sweep_) {
      next_sweep_ = now + settings_.sweep_interval;
      auto swept = ledger_.SweepExpiredHolds(1000);
      hold_sweep_log_.Record(swept.status());
      if (swept.ok() && swept->holds_released() > 0) {
        log::Info("holds_expired", {{"count", swept->holds_released()}});
      }
    }
    if (settings_.expiry_interval > absl::ZeroDuration() && now >= next_expiry_) {
      // Bounded batches until nothing is left, so one run never holds the
      // journal for long; a failed batch is retried at the next interval.
      next_expiry_ = now + settings_.expiry_interval;
      for (int round = 0; round < 100 && !housekeeping_.stopping(); ++round) {
        auto expired = ledger_.ExpireLots(kMaxExpiryBatch);
        lot_expiry_log_.Record(expired.status());
        if (!expired.ok()) break;
        if (expired->lots_expired() > 0) {
          log::Info("lots_expired", {{"lots", expired->lots_expired()},
                                     {"points", expired->points_expired()}});
        }
        if (!expired->has_more()) break;
      }
    }
    return server::PeriodicJob::kAfterInterval;
  }

  // The rules file when its mtime changed, then every feed.
  server::PeriodicJob::Next RefreshRules() {
    if (!settings_.rules_file.empty()) {
      const int64_t version = FileVersion(settings_.rules_file);
      if (version != rules_file_version_) {
        rules_file_version_ = version;
        auto file = LoadFile(settings_);
        absl::Status set = file.ok() ? refresher_->SetFile(*file, version) : file.status();
        if (set.ok()) {
          log::Info("earn_rules_file_reloaded", {{"version", version}});
        } else {
          log::Warn("earn_rules_file_reload_failed", {{"error", set.ToString()}});
        }
      }
    }
    const bool was_ready = refresher_->ready();
    rules_feed_log_.Record(refresher_->Refresh());
    if (!was_ready && refresher_->ready()) log::Info("earn_rules_feeds_loaded");
    return server::PeriodicJob::kAfterInterval;
  }

  Settings settings_;
  std::unique_ptr<LedgerStore> store_;
  std::unique_ptr<RulesCache> rules_;  // fed by refresher_
  std::unique_ptr<RulesRefresher> refresher_;
  BatchWriter writer_;
  MemberDirectory members_;
  Ledger ledger_;
  LedgerService service_;
  // Failures of the background jobs, logged once per outage.
  log::OutageLog hold_sweep_log_{"hold_sweep"};
  log::OutageLog lot_expiry_log_{"lot_expiry"};
  log::OutageLog rules_feed_log_{"earn_rules_feed"};
  int64_t rules_file_version_;  // rules_job_'s
  absl::Time next_sweep_;       // housekeeping_'s
  absl::Time next_expiry_;      // housekeeping_'s
  // Last, so that they start once everything above exists. The rules
  // refresher has a thread of its own so that a long lot expiry run never
  // delays new rules or the renewal of campaign budget leases; it is the only
  // caller of refresher_ until both jobs are joined.
  server::PeriodicJob housekeeping_{"ledger_housekeeping", absl::Milliseconds(100),
                                    [this] { return Housekeeping(); }, absl::Milliseconds(100)};
  server::PeriodicJob rules_job_{"earn_rules_refresh", settings_.rules_refresh, [this] { return RefreshRules(); },
                                 settings_.rules_refresh};
};

absl::StatusOr<server::ServiceInstancePtr> Build(const server::ServiceContext& ctx) {
  ASSIGN_OR_RETURN(Settings settings, ReadSettings(ctx.config));
  const bool any_feed = !settings.feeds.settlement.empty() || !settings.feeds.membership.empty() ||
                        !settings.feeds.catalog.empty();
  if (any_feed && settings.feed_call.api_key.empty()) {
    return absl::InvalidArgumentError(
        "service_api_key: required to read the rules feeds (set LOYALTY_SERVICE_API_KEY)");
  }
  if (settings.rules_file.empty() && settings.feeds.settlement.empty()) {
    log::Warn("no_partner_rules", {{"detail", "no --earn_rules_file and no --settlement_address: "
                                              "every partner is unknown"}});
  }
  // The first snapshot: the file (a bad file stops the start), then one
  // pass over the feeds. A feed that is down now is retried in the
  // background; until it answers, earn and burn are UNAVAILABLE.
  ASSIGN_OR_RETURN(internal::v1::EarnRulesFile file, LoadFile(settings));
  ASSIGN_OR_RETURN(RulesSnapshotPtr empty, SnapshotFromFile(internal::v1::EarnRulesFile(), 0,
                                                            settings.lot_expiry_days));
  auto cache = std::make_unique<RulesCache>(empty);
  RulesFeeds feeds = NewGrpcRulesFeeds(settings.feeds, settings.feed_call, ctx.channel_to);
  // Prepaid limits need the ledger's own issuance figures; read through a
  // store of the same pool (the Instance has its own).
  feeds.net_issuance_at = [store = std::shared_ptr<LedgerStore>(NewMysqlLedgerStore(ctx.pool))](
                              const std::string& partner_id, int64_t sequence) {
    return store->NetIssuanceAt(partner_id, sequence);
  };
  auto refresher = std::make_unique<RulesRefresher>(*cache, std::move(feeds), settings.lot_expiry_days);
  RETURN_IF_ERROR(refresher->SetFile(file, FileVersion(settings.rules_file)));
  if (absl::Status first = refresher->Refresh(); !first.ok()) {
    log::Warn("earn_rules_feed_failed", {{"error", first.ToString()}});
  }
  RulesSnapshotPtr rules = cache->Current();
  log::Info("earn_rules_loaded", {{"partners", rules->partners.size()},
                                  {"members", rules->members.size()},
                                  {"campaigns", rules->campaigns.size()},
                                  {"waiting_for", rules->not_ready},
                                  {"batching", settings.writer.batching ? "on" : "off"}});
  MemberDirectory::Lookup member_lookup =
      NewGrpcMemberLookup(settings.feeds.membership, settings.feed_call, ctx.channel_to);
  if (!member_lookup) {
    log::Warn("member_ids_unchecked", {{"detail", "no --membership_address: points may be credited to any member id"}});
  }
  return std::make_unique<Instance>(ctx.pool, ctx.authenticator, std::move(settings), std::move(cache),
                                    std::move(refresher), std::move(member_lookup));
}

}  // namespace
}  // namespace loyalty::ledger

int main(int argc, char** argv) {
  using namespace loyalty;
  return server::ServiceMain(argc, argv, {
      .name = "ledger",
      .grpc_service_name = ledger::v1::LedgerService::service_full_name(),
      .default_port = 7102,
      .migrations = &ledger::Migrations(),
      .extra_flags =
          {
              {"earn_rules_file", "", "JSON EarnRulesFile: the rules parts that have no feed"},
              {"earn_rules_refresh_ms", "2000", "how often to poll the rules feeds and the rules file"},
              {"settlement_address", "", "host:port of settlement; partners come from its feed"},
              {"membership_address", "", "host:port of membership; members and tiers come from its feed"},
              {"catalog_address", "", "host:port of catalog; campaigns come from its feed"},
              {"service_api_key", "", "service API key the ledger presents to the feeds", true},
              {"feed_deadline_ms", "5000", "deadline of one feed call"},
              {"lot_expiry_days", "365", "days until earned points expire, unless the rules say"},
              {"batching", "true", "group commit; false runs one transaction per request"},
              {"max_batch", "512", "most requests committed in one transaction"},
              {"hold_sweep_interval_ms", "1000", "how often expired holds are released; 0 = never"},
              {"expiry_interval_ms", "60000", "how often expired lots go to breakage; 0 = never"},
          },
      .build = ledger::Build,
  });
}
