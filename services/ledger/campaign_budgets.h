#pragma once
// Campaign budgets at earn time: points leased from the catalog, spent by
// the writer, returned when used up or at shutdown.
//
// A campaign with a budget (Campaign.budget_points > 0) only gives a bonus
// out of points this ledger holds on lease (catalog LeaseCampaignBudget). The
// catalog never grants more than the budget, so however many ledgers run, the
// bonuses never overspend it. The refresher (rules_feed.h) keeps a few
// thousand points on lease per active budgeted campaign and returns leases
// that are used up; at shutdown it returns what is left. A ledger that dies
// with points on lease leaves them unspent (underspend, never overspend).
//
// Thread safety: all methods may be called from any thread.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace loyalty::ledger {

struct BudgetLease {
  std::string lease_id;
  int64_t granted = 0;
  int64_t used = 0;
  int64_t remaining() const { return granted - used; }
};

class CampaignBudgets {
 public:
  // Takes `points` from the campaign's leases (oldest first); false, and
  // nothing taken, when they hold fewer.
  bool TryConsume(const std::string& campaign_id, int64_t points);

  // Points on lease and not yet spent.
  int64_t Remaining(const std::string& campaign_id);

  // A lease the catalog granted.
  void Add(const std::string& campaign_id, BudgetLease lease);

  // Leases fully spent, removed: to be returned to the catalog as used.
  std::vector<std::pair<std::string, BudgetLease>> TakeSpent();

  // Every lease of a campaign not in `keep`, removed (shutdown: keep nothing;
  // or campaigns no longer active): to be returned with their unused points.
  std::vector<std::pair<std::string, BudgetLease>> TakeAllExcept(const std::vector<std::string>& keep = {});

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::vector<BudgetLease>> leases_ ABSL_GUARDED_BY(mu_);
};

}  // namespace loyalty::ledger
