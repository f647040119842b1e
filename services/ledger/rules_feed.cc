#include "services/ledger/rules_feed.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/crypto/random.h"
#include "common/log/log.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"

namespace loyalty::ledger {

RulesRefresher::RulesRefresher(RulesCache& cache, RulesFeeds feeds, int default_lot_expiry_days)
    : cache_(cache), feeds_(std::move(feeds)), default_lot_expiry_days_(default_lot_expiry_days) {}

absl::Status RulesRefresher::SetFile(const internal::v1::EarnRulesFile& file, int64_t file_version) {
  // Validated on its own first, so a bad file changes nothing.
  RETURN_IF_ERROR(BuildSnapshot(file, file_version, default_lot_expiry_days_).status());
  file_ = file;
  file_version_ = file_version;
  return Publish();
}

absl::Status RulesRefresher::Refresh() {
  bool changed = false;
  absl::Status first = absl::OkStatus();
  for (absl::Status s : {PollPartners(changed), PollMembers(changed), PollCampaigns(changed)}) {
    if (!s.ok() && first.ok()) first = s;
  }
  if (absl::Status leased = MaintainLeases(); !leased.ok() && first.ok()) first = leased;
  // A publish that failed (a prepaid limit the ledger could not compute) is
  // tried again on every refresh until it succeeds, change or not.
  if (changed || unpublished_) {
    absl::Status published = Publish();
    unpublished_ = !published.ok();
    if (!published.ok() && first.ok()) first = published;
  }
  return first;
}

absl::Status RulesRefresher::PollPartners(bool& changed) {
  if (!feeds_.partners) return absl::OkStatus();
  for (int page = 0; page < kMaxFeedPagesPerRefresh; ++page) {
    ASSIGN_OR_RETURN(settlement::v1::ListPartnerSnapshotsResponse resp, feeds_.partners(partners_version_));
    for (auto& snapshot : *resp.mutable_snapshots()) {
      // A partner the ledger cannot use keeps its last good snapshot (or
      // stays unknown), rather than blocking every other partner's change.
      if (absl::Status valid = ValidatePartnerSnapshot(snapshot); !valid.ok()) {
        log::Error("partner_snapshot_rejected", {{"partner_id", snapshot.partner_id()},
                                                 {"version", snapshot.version()},
                                                 {"error", valid.ToString()}});
        continue;
      }
      std::string id = snapshot.partner_id();
      partners_[std::move(id)] = std::move(snapshot);
      changed = true;
    }
    partners_version_ = std::max(partners_version_, resp.last_version());
    if (!resp.has_more()) {
      if (!partners_loaded_) changed = true;
      partners_loaded_ = true;
      break;
    }
  }
  return absl::OkStatus();
}

absl::Status RulesRefresher::PollMembers(bool& changed) {
  if (!feeds_.members) return absl::OkStatus();
  for (int page = 0; page < kMaxFeedPagesPerRefresh; ++page) {
    ASSIGN_OR_RETURN(membership::v1::ListMemberSnapshotsResponse resp, feeds_.members(members_version_));
    for (auto& snapshot : *resp.mutable_snapshots()) {
      std::string id = snapshot.member_id();
      members_[std::move(id)] = std::move(snapshot);
      changed = true;
    }
    if (resp.has_ladder() && resp.ladder().version() != ladder_.version()) {
      ladder_ = resp.ladder();
      changed = true;
    }
    members_version_ = std::max(members_version_, resp.last_version());
    if (!resp.has_more()) {
      if (!members_loaded_) changed = true;
      members_loaded_ = true;
      break;
    }
  }
  return absl::OkStatus();
}

absl::Status RulesRefresher::PollCampaigns(bool& changed) {
  if (!feeds_.campaigns) return absl::OkStatus();
  ASSIGN_OR_RETURN(catalog::v1::GetActiveEarnRulesResponse resp, feeds_.campaigns(campaigns_version_));
  if (!resp.not_modified() && (resp.version() != campaigns_version_ || !campaigns_loaded_)) {
    campaigns_.assign(std::make_move_iterator(resp.mutable_campaigns()->begin()),
                      std::make_move_iterator(resp.mutable_campaigns()->end()));
    campaigns_version_ = resp.version();
    changed = true;
  }
  if (!campaigns_loaded_) changed = true;
  campaigns_loaded_ = true;
  return absl::OkStatus();
}

std::string RulesRefresher::MissingFeeds() const {
  std::vector<std::string> missing;
  if (feeds_.partners && !partners_loaded_) missing.push_back("settlement");
  if (feeds_.members && !members_loaded_) missing.push_back("membership");
  if (feeds_.campaigns && !campaigns_loaded_) missing.push_back("catalog");
  return absl::StrJoin(missing, ", ");
}

absl::Status RulesRefresher::Publish() {
  // The file, with each fed part replaced by the feed's current state. The
  // snapshot builder validates the result the same way whatever the source.
  internal::v1::EarnRulesFile merged = file_;
  if (feeds_.partners) {
    merged.clear_partners();
    for (const auto& [id, partner] : partners_) *merged.add_partners() = partner;
  }
  if (feeds_.members) {
    merged.clear_members();
    for (const auto& [id, member] : members_) *merged.add_members() = member;
    *merged.mutable_tier_ladder() = ladder_;
  }
  if (feeds_.campaigns) {
    merged.clear_campaigns();
    for (const auto& campaign : campaigns_) *merged.add_campaigns() = campaign;
  }
  // Every source's version only grows, so their sum grows on every change:
  // it is the earn_rules_version an earn's breakdown reports.
  const int64_t version =
      file_version_ + partners_version_ + members_version_ + ladder_.version() + campaigns_version_;
  auto built = BuildSnapshot(merged, version, default_lot_expiry_days_);
  if (!built.ok()) {
    // Only the file can get here (feed records are validated as they
    // arrive); the last good snapshot stays.
    log::Error("earn_rules_rejected", {{"error", built.status().ToString()}});
    return built.status();
  }
  RETURN_IF_ERROR(PrepaidLimits(**built));
  (*built)->budgets = budgets_;
  (*built)->not_ready = MissingFeeds();
  cache_.Replace(*std::move(built));
  return absl::OkStatus();
}

absl::Status RulesRefresher::MaintainLeases() {
  if (!feeds_.lease_budget) return absl::OkStatus();
  const absl::Time now = absl::Now();
  std::vector<std::string> budgeted;
  for (const catalog::v1::Campaign& c : campaigns_) {
    if (c.state() != catalog::v1::CAMPAIGN_STATE_ACTIVE || c.budget_points() <= 0) continue;
    if (c.has_end_time() && FromProtoTime(c.end_time()) <= now) continue;
    budgeted.push_back(c.campaign_id());
  }
  // Leases of campaigns that stopped, and leases used up, go back, with
  // those whose return failed before.
  std::vector<std::pair<std::string, BudgetLease>> to_return = std::move(unreturned_);
  unreturned_.clear();
  for (auto& taken : budgets_->TakeAllExcept(budgeted)) to_return.push_back(std::move(taken));
  for (auto& taken : budgets_->TakeSpent()) to_return.push_back(std::move(taken));
  for (const auto& [id, lease] : to_return) Return(id, lease);
  absl::Status first = absl::OkStatus();
  // A lease asked for and never heard of, for a campaign that has stopped:
  // asked for once more with its key, to learn it and give it back.
  for (auto it = lease_keys_.begin(); it != lease_keys_.end();) {
    if (std::find(budgeted.begin(), budgeted.end(), it->first) != budgeted.end()) {
      ++it;
      continue;
    }
    absl::StatusOr<BudgetLease> lease = feeds_.lease_budget(it->first, kBudgetLeaseChunk, it->second);
    if (absl::IsUnavailable(lease.status())) {
      ++it;  // still unknown
      continue;
    }
    if (lease.ok() && lease->granted > 0) Return(it->first, *lease);
    lease_keys_.erase(it++);
  }
  for (const std::string& id : budgeted) {
    if (budgets_->Remaining(id) >= kBudgetLeaseLowWater) continue;
    auto [key, fresh] = lease_keys_.try_emplace(id, "");
    if (fresh) key->second = absl::StrCat("lease-", crypto::RandomString(crypto::kCrockfordBase32, 24));
    absl::StatusOr<BudgetLease> lease = feeds_.lease_budget(id, kBudgetLeaseChunk, key->second);
    if (absl::IsUnavailable(lease.status())) {  // rpc::RemoteError: also a timeout
      if (first.ok()) first = lease.status();
      continue;  // outcome unknown: ask again with the same key
    }
    lease_keys_.erase(id);
    if (!lease.ok()) {
      if (first.ok()) first = lease.status();
      continue;
    }
    if (lease->granted > 0) {
      log::Info("campaign_budget_leased", {{"campaign_id", id}, {"points", lease->granted}});
      budgets_->Add(id, *std::move(lease));
    }
  }
  return first;
}

void RulesRefresher::Return(const std::string& campaign_id, const BudgetLease& lease) {
  if (!feeds_.return_budget) return;
  if (absl::Status s = feeds_.return_budget(lease); !s.ok()) {
    if (!absl::IsUnavailable(s)) {
      // The catalog refused it (an unknown or closed lease): asking again
      // would not help.
      log::Warn("campaign_budget_return_refused", {{"campaign_id", campaign_id},
                                                   {"lease_id", lease.lease_id},
                                                   {"error", s.ToString()}});
      return;
    }
    log::Debug("campaign_budget_return_failed", {{"campaign_id", campaign_id},
                                                 {"lease_id", lease.lease_id},
                                                 {"error", s.ToString()}});
    unreturned_.emplace_back(campaign_id, lease);
  }
}

void RulesRefresher::ReturnLeases() {
  std::vector<std::pair<std::string, BudgetLease>> to_return = std::move(unreturned_);
  unreturned_.clear();
  for (auto& taken : budgets_->TakeAllExcept()) to_return.push_back(std::move(taken));
  for (const auto& [id, lease] : to_return) Return(id, lease);
  for (const auto& [id, lease] : unreturned_) {
    log::Warn("campaign_budget_not_returned", {{"campaign_id", id},
                                               {"lease_id", lease.lease_id},
                                               {"used_points", lease.used},
                                               {"unused_points", lease.remaining()}});
  }
}

absl::Status RulesRefresher::PrepaidLimits(RulesSnapshot& snapshot) {
  for (const auto& [id, partner] : snapshot.partners) {
    if (partner.prepaid_as_of_sequence() == 0) continue;  // BuildSnapshot set it
    auto cached = prepaid_limits_.find(id);
    if (cached == prepaid_limits_.end() || cached->second.first != partner.version()) {
      if (!feeds_.net_issuance_at) continue;  // unknown: the partner issues nothing
      absl::StatusOr<int64_t> issued = feeds_.net_issuance_at(id, partner.prepaid_as_of_sequence());
      if (!issued.ok()) {
        // Keep the last snapshot rather than publish a limit we do not know.
        log::Warn("prepaid_limit_unknown", {{"partner_id", id}, {"error", issued.status().ToString()}});
        return issued.status();
      }
      cached = prepaid_limits_.insert_or_assign(id, std::make_pair(partner.version(),
                                                                   partner.prepaid_remaining_points() + *issued))
                   .first;
    }
    snapshot.prepaid_limit_points[id] = cached->second.second;
  }
  return absl::OkStatus();
}

}  // namespace loyalty::ledger
