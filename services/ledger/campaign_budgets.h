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
// The writer spends in two steps, because a batch may be rolled back and run
// again: a command reserves points (BudgetReservations), and the batch's
// outcome confirms them (committed, or perhaps committed: an unknown outcome
// counts as spent, so a budget is never overspent) or releases them (rolled
// back, or about to be re-run). A lease with points reserved is never
// returned, so what is reported to the catalog as used was given.
//
// Thread safety: all methods may be called from any thread.

#include <cstdint>
#include <functional>
#include <optional>
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
  int64_t reserved = 0;  // by batches whose outcome is not known yet
  int64_t remaining() const { return granted - used - reserved; }
};

class CampaignBudgets {
 public:
  // Points reserved from one campaign's leases: (lease_id, points) pairs.
  struct Reservation {
    std::string campaign_id;
    std::vector<std::pair<std::string, int64_t>> takes;
  };

  // Reserves `points` from the campaign's leases (oldest first); nullopt,
  // and nothing reserved, when they hold fewer.
  std::optional<Reservation> TryReserve(const std::string& campaign_id, int64_t points);
  // The reserved points are spent.
  void Confirm(const Reservation& reservation);
  // The reserved points are free again.
  void Release(const Reservation& reservation);

  // Points on lease, neither spent nor reserved.
  int64_t Remaining(const std::string& campaign_id);

  // A lease the catalog granted.
  void Add(const std::string& campaign_id, BudgetLease lease);

  // Leases fully spent (nothing reserved), removed: to be returned to the
  // catalog as used.
  std::vector<std::pair<std::string, BudgetLease>> TakeSpent();

  // Every lease of a campaign not in `keep` with nothing reserved, removed
  // (shutdown: keep nothing; or campaigns no longer active): to be returned
  // with their unused points.
  std::vector<std::pair<std::string, BudgetLease>> TakeAllExcept(const std::vector<std::string>& keep = {});

 private:
  // Applies `f(lease, points)` to each lease of the reservation still held.
  void ForEachTake(const Reservation& reservation, const std::function<void(BudgetLease&, int64_t)>& f)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::vector<BudgetLease>> leases_ ABSL_GUARDED_BY(mu_);
};

// The reservations of one batch attempt (see above). Not thread-safe: one
// writer thread uses it. Whatever is neither confirmed nor released when it
// is destroyed is released.
class BudgetReservations {
 public:
  explicit BudgetReservations(CampaignBudgets* budgets) : budgets_(budgets) {}  // may be null: no leases
  ~BudgetReservations() { ReleaseAll(); }
  BudgetReservations(const BudgetReservations&) = delete;
  BudgetReservations& operator=(const BudgetReservations&) = delete;

  // Reserves `points` of the campaign; false, and nothing reserved, when
  // its leases hold fewer.
  bool TryReserve(const std::string& campaign_id, int64_t points);
  void ConfirmAll();
  void ReleaseAll();

 private:
  CampaignBudgets* const budgets_;
  std::vector<CampaignBudgets::Reservation> held_;
};

}  // namespace loyalty::ledger
