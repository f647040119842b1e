#pragma once
// Keeps the earn-rules cache fed from the services that own the rules.
//
// Each part of the rules has one source:
//   partners (status, contracts, prepaid)  settlement  ListPartnerSnapshots
//   members (status, tier) and the ladder  membership  ListMemberSnapshots
//   campaigns                              catalog     GetActiveEarnRules
// A part whose feed is configured comes only from that feed; a part without
// one comes from the --earn_rules_file (development, tests, or a service not
// deployed yet). Refresh() polls every feed from its last version, merges the
// changes, and swaps a new snapshot into the cache when anything changed, so
// earn never calls another service on the request path.
//
// Until every configured feed has been read to its end once, the snapshot is
// not ready: earn and burn answer UNAVAILABLE rather than treat a suspended
// member as active, or a known partner as unknown. A feed that fails later
// keeps the last state it delivered (logged); the next refresh resumes from
// its version. See docs/adr/0006-ledger-earn-rules-cache.md.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "loyalty/catalog/v1/catalog.pb.h"
#include "loyalty/ledger/internal/v1/earn_rules_file.pb.h"
#include "loyalty/membership/v1/membership.pb.h"
#include "loyalty/settlement/v1/settlement.pb.h"
#include "services/ledger/campaign_budgets.h"
#include "services/ledger/rules_cache.h"

namespace loyalty::ledger {

// The feeds; an empty function means "that part comes from the file".
struct RulesFeeds {
  std::function<absl::StatusOr<settlement::v1::ListPartnerSnapshotsResponse>(int64_t after_version)>
      partners;
  std::function<absl::StatusOr<membership::v1::ListMemberSnapshotsResponse>(int64_t after_version)>
      members;
  std::function<absl::StatusOr<catalog::v1::GetActiveEarnRulesResponse>(int64_t known_version)>
      campaigns;
  // The ledger's own figure for a prepaid partner: net points issued when the
  // journal stood at a sequence (LedgerStore::NetIssuanceAt). Settlement
  // publishes the points that remained at that sequence; the two add up to
  // the partner's limit. Unset: a partner counted from a later sequence has
  // no known limit and issues nothing.
  std::function<absl::StatusOr<int64_t>(const std::string& partner_id, int64_t sequence)> net_issuance_at;
  // Catalog budget leases (campaign_budgets.h): a new lease of up to
  // `points` (granted may be less, or 0 when the budget is spent) under the
  // idempotency key `key`, and the return of a lease with its used and
  // unused points. Unset: budgeted campaigns give no bonus.
  std::function<absl::StatusOr<BudgetLease>(const std::string& campaign_id, int64_t points, const std::string& key)>
      lease_budget;
  std::function<absl::Status(const BudgetLease& lease)> return_budget;
};

// How many points of a budgeted campaign the ledger keeps on lease: a new
// lease of kBudgetLeaseChunk when fewer than kBudgetLeaseLowWater are left.
inline constexpr int64_t kBudgetLeaseChunk = 10'000;
inline constexpr int64_t kBudgetLeaseLowWater = 2'500;

// Most pages read from one feed in one Refresh(); the rest is read by the
// next call, so one refresh never blocks the loop for long.
inline constexpr int kMaxFeedPagesPerRefresh = 100;

// Not thread-safe: one background thread calls Refresh().
class RulesRefresher {
 public:
  RulesRefresher(RulesCache& cache, RulesFeeds feeds, int default_lot_expiry_days);

  // The file's parts that have no feed, and the programme policy. Call
  // before the first Refresh(), and again when the file changes.
  // INVALID_ARGUMENT (and nothing changes) when the file is malformed.
  absl::Status SetFile(const internal::v1::EarnRulesFile& file, int64_t file_version);

  // Reads every feed and swaps a new snapshot in when anything changed. Each
  // feed is polled even when another fails; returns the first failure.
  absl::Status Refresh();

  // Returns every lease with its unused points (shutdown), and retries the
  // returns that failed before. Best effort: what still fails is logged with
  // its lease id; its unreturned points stay unspent.
  void ReturnLeases();

  // True once every configured feed has been read to its end.
  bool ready() const { return MissingFeeds().empty(); }

 private:
  absl::Status PollPartners(bool& changed);
  absl::Status PollMembers(bool& changed);
  absl::Status PollCampaigns(bool& changed);
  std::string MissingFeeds() const;
  absl::Status Publish();
  absl::Status PrepaidLimits(RulesSnapshot& snapshot);
  absl::Status MaintainLeases();
  void Return(const std::string& campaign_id, const BudgetLease& lease);

  RulesCache& cache_;
  RulesFeeds feeds_;
  int default_lot_expiry_days_;

  bool unpublished_ = false;  // the last Publish failed
  std::shared_ptr<CampaignBudgets> budgets_ = std::make_shared<CampaignBudgets>();
  // The key of a lease asked for and not definitely answered (the call
  // failed or timed out), by campaign: the next request uses it again, so a
  // lease the catalog granted unheard is found, not granted twice.
  absl::flat_hash_map<std::string, std::string> lease_keys_;
  // Leases whose return failed, retried at every refresh (their keys are
  // derived from the lease id, so a retry is safe).
  std::vector<std::pair<std::string, BudgetLease>> unreturned_;

  internal::v1::EarnRulesFile file_;
  int64_t file_version_ = 0;

  absl::flat_hash_map<std::string, settlement::v1::PartnerSnapshot> partners_;
  int64_t partners_version_ = 0;
  bool partners_loaded_ = false;

  absl::flat_hash_map<std::string, membership::v1::MemberSnapshot> members_;
  membership::v1::TierLadder ladder_;
  int64_t members_version_ = 0;
  bool members_loaded_ = false;

  // Prepaid limits by partner, with the snapshot version they were computed
  // for (recomputed only when settlement sends a new snapshot).
  absl::flat_hash_map<std::string, std::pair<int64_t, int64_t>> prepaid_limits_;

  std::vector<catalog::v1::Campaign> campaigns_;
  int64_t campaigns_version_ = 0;
  bool campaigns_loaded_ = false;
};

}  // namespace loyalty::ledger
