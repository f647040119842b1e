#pragma once
// Campaigns and earn rules: bonus rules for partners, tiers and segments,
// with an optional points budget the ledger leases in slices. Owns
// creating and updating campaigns, their state machine (DRAFT -> ACTIVE <->
// PAUSED, anything -> ENDED), reading and listing them, the versioned
// active earn rules the ledger caches, budget leases, and the earn quote
// (delegated to the ledger). Domain code: no gRPC or MySQL includes.
//
// Invariants: an ENDED campaign never changes again; budget allocated
// never exceeds budget_points (a conditional UPDATE); every change to an
// active campaign bumps the earn-rules version, so the version and the
// rules read in one transaction match. Every mutation is idempotent by key.
// A partner sees the campaigns open to it.
//
// Thread-safe: all state is in the store.

#include <string>

#include "absl/status/statusor.h"
#include "common/auth/principal.h"
#include "loyalty/catalog/v1/catalog.pb.h"
#include "services/catalog/catalog_deps.h"

namespace loyalty::catalog {

class Campaigns {
 public:
  using Principal = auth::Principal;

  explicit Campaigns(CatalogDeps& deps) : deps_(deps) {}

  absl::StatusOr<v1::CreateCampaignResponse> CreateCampaign(const Principal& p, const v1::CreateCampaignRequest& r);
  absl::StatusOr<v1::UpdateCampaignResponse> UpdateCampaign(const Principal& p, const v1::UpdateCampaignRequest& r);
  absl::StatusOr<v1::SetCampaignStateResponse> SetCampaignState(const Principal& p,
                                                                const v1::SetCampaignStateRequest& r);
  absl::StatusOr<v1::GetCampaignResponse> GetCampaign(const Principal& p, const v1::GetCampaignRequest& r);
  absl::StatusOr<v1::ListCampaignsResponse> ListCampaigns(const Principal& p, const v1::ListCampaignsRequest& r);
  absl::StatusOr<v1::GetActiveEarnRulesResponse> GetActiveEarnRules(const Principal& p,
                                                                    const v1::GetActiveEarnRulesRequest& r);
  absl::StatusOr<v1::LeaseCampaignBudgetResponse> LeaseCampaignBudget(const Principal& p,
                                                                      const v1::LeaseCampaignBudgetRequest& r);
  absl::StatusOr<v1::ReturnCampaignBudgetResponse> ReturnCampaignBudget(const Principal& p,
                                                                        const v1::ReturnCampaignBudgetRequest& r);
  // Delegates to the ledger's QuoteEarn, so the preview is exactly what
  // Earn computes from the ledger's cached rules.
  absl::StatusOr<v1::QuoteEarnResponse> QuoteEarn(const Principal& p, const v1::QuoteEarnRequest& r);

 private:
  // NOT_FOUND naming the field for a partner settlement does not know, or a
  // tier or saved segment membership does not know; `paths` limits the check
  // to those fields (null: all).
  absl::Status CheckCampaignReferences(const v1::Campaign& c,
                                       const google::protobuf::RepeatedPtrField<std::string>* paths);

  CatalogDeps& deps_;
};

}  // namespace loyalty::catalog
