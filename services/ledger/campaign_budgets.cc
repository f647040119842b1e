#include "services/ledger/campaign_budgets.h"

#include <algorithm>

namespace loyalty::ledger {

bool CampaignBudgets::TryConsume(const std::string& campaign_id, int64_t points) {
  if (points <= 0) return true;
  absl::MutexLock lock(&mu_);
  auto it = leases_.find(campaign_id);
  if (it == leases_.end()) return false;
  int64_t available = 0;
  for (const BudgetLease& l : it->second) available += l.remaining();
  if (available < points) return false;
  for (BudgetLease& l : it->second) {
    const int64_t take = std::min(points, l.remaining());
    l.used += take;
    points -= take;
    if (points == 0) break;
  }
  return true;
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
    auto spent = std::stable_partition(leases.begin(), leases.end(),
                                       [](const BudgetLease& l) { return l.remaining() > 0; });
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
    for (BudgetLease& l : it->second) out.emplace_back(it->first, std::move(l));
    leases_.erase(it++);
  }
  return out;
}

}  // namespace loyalty::ledger
