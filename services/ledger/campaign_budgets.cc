#include "services/ledger/campaign_budgets.h"

#include <algorithm>

namespace loyalty::ledger {

std::optional<CampaignBudgets::Reservation> CampaignBudgets::TryReserve(const std::string& campaign_id,
                                                                        int64_t points) {
  Reservation reservation{campaign_id, {}};
  if (points <= 0) return reservation;
  absl::MutexLock lock(&mu_);
  auto it = leases_.find(campaign_id);
  if (it == leases_.end()) return std::nullopt;
  int64_t available = 0;
  for (const BudgetLease& l : it->second) available += l.remaining();
  if (available < points) return std::nullopt;
  for (BudgetLease& l : it->second) {
    const int64_t take = std::min(points, l.remaining());
    if (take == 0) continue;
    l.reserved += take;
    reservation.takes.emplace_back(l.lease_id, take);
    points -= take;
    if (points == 0) break;
  }
  return reservation;
}

void CampaignBudgets::ForEachTake(const Reservation& reservation,
                                  const std::function<void(BudgetLease&, int64_t)>& f) {
  auto it = leases_.find(reservation.campaign_id);
  if (it == leases_.end()) return;
  for (const auto& [lease_id, points] : reservation.takes) {
    for (BudgetLease& l : it->second) {
      if (l.lease_id == lease_id) f(l, points);
    }
  }
}

void CampaignBudgets::Confirm(const Reservation& reservation) {
  absl::MutexLock lock(&mu_);
  ForEachTake(reservation, [](BudgetLease& l, int64_t points) {
    l.reserved -= points;
    l.used += points;
  });
}

void CampaignBudgets::Release(const Reservation& reservation) {
  absl::MutexLock lock(&mu_);
  ForEachTake(reservation, [](BudgetLease& l, int64_t points) { l.reserved -= points; });
}

int64_t CampaignBudgets::Remaining(const std::string& campaign_id) {
  absl::MutexLock lock(&mu_);
  auto it = leases_.find(campaign_id);
  if (it == leases_.end()) return 0;
  int64_t available = 0;
  for (const BudgetLease& l : it->second) available += l.remaining();
  return available;
}

void CampaignBudgets::Add(const std::string& campaign_id, BudgetLease lease) {
  absl::MutexLock lock(&mu_);
  leases_[campaign_id].push_back(std::move(lease));
}

std::vector<std::pair<std::string, BudgetLease>> CampaignBudgets::TakeSpent() {
  std::vector<std::pair<std::string, BudgetLease>> out;
  absl::MutexLock lock(&mu_);
  for (auto& [id, leases] : leases_) {
    auto spent = std::stable_partition(leases.begin(), leases.end(), [](const BudgetLease& l) {
      return l.remaining() > 0 || l.reserved > 0;
    });
    for (auto it = spent; it != leases.end(); ++it) out.emplace_back(id, std::move(*it));
    leases.erase(spent, leases.end());
  }
  return out;
}

std::vector<std::pair<std::string, BudgetLease>> CampaignBudgets::TakeAllExcept(
    const std::vector<std::string>& keep) {
  std::vector<std::pair<std::string, BudgetLease>> out;
  absl::MutexLock lock(&mu_);
  for (auto it = leases_.begin(); it != leases_.end();) {
    if (std::find(keep.begin(), keep.end(), it->first) != keep.end()) {
      ++it;
      continue;
    }
    // A lease a batch still reserves from stays until that batch is over.
    auto reserved = std::stable_partition(it->second.begin(), it->second.end(),
                                          [](const BudgetLease& l) { return l.reserved > 0; });
    for (auto l = reserved; l != it->second.end(); ++l) out.emplace_back(it->first, std::move(*l));
    it->second.erase(reserved, it->second.end());
    if (it->second.empty()) {
      leases_.erase(it++);
    } else {
      ++it;
    }
  }
  return out;
}

bool BudgetReservations::TryReserve(const std::string& campaign_id, int64_t points) {
  if (budgets_ == nullptr) return false;
  std::optional<CampaignBudgets::Reservation> r = budgets_->TryReserve(campaign_id, points);
  if (!r.has_value()) return false;
  held_.push_back(*std::move(r));
  return true;
}

void BudgetReservations::ConfirmAll() {
  for (const auto& r : held_) budgets_->Confirm(r);
  held_.clear();
}

void BudgetReservations::ReleaseAll() {
  for (const auto& r : held_) budgets_->Release(r);
  held_.clear();
}

}  // namespace loyalty::ledger
