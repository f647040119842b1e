#include "services/catalog/campaigns.h"

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/crypto/random.h"
#include "common/idempotency/idempotency.h"
#include "common/paging/page_token.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "common/validation/enums.h"
#include "common/validation/ids.h"
#include "common/validation/text.h"
#include "services/catalog/catalog_shared.h"
#include "services/catalog/validation.h"

namespace loyalty::catalog {
namespace {

constexpr int kCampaignsPageDefault = 50;
constexpr int kCampaignsPageMax = 500;
constexpr int64_t kMaxLeasePoints = 1'000'000;
constexpr size_t kMaxHolderLength = 128;


// A campaign is open to a partner when it names it or names no partner.
bool CampaignOpenTo(const auth::Principal& p, const v1::Campaign& c) {
  if (!p.is_partner() || c.partner_ids().empty()) return true;
  return std::find(c.partner_ids().begin(), c.partner_ids().end(), p.partner_id) != c.partner_ids().end();
}

}  // namespace

absl::Status Campaigns::CheckCampaignReferences(const v1::Campaign& c,
                                                const google::protobuf::RepeatedPtrField<std::string>* paths) {
  auto checked = [&](absl::string_view field) {
    return paths == nullptr || std::find(paths->begin(), paths->end(), field) != paths->end();
  };
  if (checked("partner_ids")) {
    for (int i = 0; i < c.partner_ids_size(); ++i) {
      RETURN_IF_ERROR(CheckPartnerExists(deps_, absl::StrCat("campaign.partner_ids[", i, "]"), c.partner_ids(i)));
    }
  }
  if (checked("tier_ids")) {
    for (int i = 0; i < c.tier_ids_size(); ++i) {
      absl::StatusOr<int> rank = deps_.members.RankOf(c.tier_ids(i));
      if (absl::IsNotFound(rank.status())) {
        return absl::NotFoundError(absl::StrCat("campaign.tier_ids[", i, "]: tier ", c.tier_ids(i), " not found"));
      }
      RETURN_IF_ERROR(rank.status());
    }
  }
  if (checked("segment_ids")) {
    for (int i = 0; i < c.segment_ids_size(); ++i) {
      absl::Status s = deps_.members.SegmentExists(c.segment_ids(i));
      if (absl::IsNotFound(s)) {
        return absl::NotFoundError(
            absl::StrCat("campaign.segment_ids[", i, "]: segment ", c.segment_ids(i), " not found"));
      }
      RETURN_IF_ERROR(s);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::CreateCampaignResponse> Campaigns::CreateCampaign(const Principal& p,
                                                                     const v1::CreateCampaignRequest& r) {
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  RETURN_IF_ERROR(ValidateCampaign("campaign.", r.campaign()));
  return Mutate<v1::CreateCampaignResponse>(
      deps_, p, "CreateCampaign", r.idempotency_key(), r,
      [&](CatalogTx& tx, v1::CreateCampaignResponse& out) -> absl::Status {
        const absl::Time now = deps_.Now();
        v1::Campaign c = r.campaign();
        c.set_campaign_id(crypto::NewOpaqueId("cp"));
        c.set_state(v1::CAMPAIGN_STATE_DRAFT);
        c.set_budget_allocated_points(0);
        c.set_budget_remaining_points(c.budget_points());
        *c.mutable_created_at() = ToProtoTime(now);
        *c.mutable_updated_at() = ToProtoTime(now);
        c.set_version(1);
        RETURN_IF_ERROR(tx.InsertCampaign(c));
        *out.mutable_campaign() = std::move(c);
        return absl::OkStatus();
      },
      [&] { return CheckCampaignReferences(r.campaign(), nullptr); });
}

absl::StatusOr<v1::UpdateCampaignResponse> Campaigns::UpdateCampaign(const Principal& p,
                                                                     const v1::UpdateCampaignRequest& r) {
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  RETURN_IF_ERROR(ValidateId("campaign_id", r.campaign_id()));
  RETURN_IF_ERROR(ValidateCampaignMask(r.update_mask()));
  if (r.expected_version() < 0) return absl::InvalidArgumentError("expected_version: must be >= 0");
  return Mutate<v1::UpdateCampaignResponse>(
      deps_, p, "UpdateCampaign", r.idempotency_key(), r,
      [&](CatalogTx& tx, v1::UpdateCampaignResponse& out) -> absl::Status {
        ASSIGN_OR_RETURN(std::optional<v1::Campaign> cur, tx.GetCampaign(r.campaign_id(), /*for_update=*/true));
        if (!cur.has_value()) return CampaignNotFound(r.campaign_id());
        if (cur->state() == v1::CAMPAIGN_STATE_ENDED) {
          return absl::FailedPreconditionError(absl::StrCat("campaign ", r.campaign_id(), " has ended"));
        }
        if (r.expected_version() != 0 && r.expected_version() != cur->version()) {
          return absl::AbortedError(
              absl::StrCat("campaign changed: version is ", cur->version(), ", expected ", r.expected_version()));
        }
        v1::Campaign next = *cur;
        ApplyCampaignMask(r.update_mask(), r.campaign(), next);
        RETURN_IF_ERROR(ValidateCampaign("campaign.", next));
        if (next.budget_points() > 0 && next.budget_points() < cur->budget_allocated_points()) {
          return absl::FailedPreconditionError(
              absl::StrCat("budget_points below what is already allocated (", cur->budget_allocated_points(), ")"));
        }
        if (cur->budget_points() > 0 && next.budget_points() == 0 && cur->budget_allocated_points() > 0) {
          return absl::FailedPreconditionError("a campaign with leased budget cannot become unlimited");
        }
        next.set_version(cur->version() + 1);
        *next.mutable_updated_at() = ToProtoTime(deps_.Now());
        next.set_budget_remaining_points(
            next.budget_points() > 0 ? next.budget_points() - next.budget_allocated_points() : 0);
        RETURN_IF_ERROR(tx.UpdateCampaign(next));
        if (next.state() == v1::CAMPAIGN_STATE_ACTIVE) RETURN_IF_ERROR(tx.EarnRulesVersion(/*bump=*/true).status());
        *out.mutable_campaign() = std::move(next);
        return absl::OkStatus();
      },
      [&] { return CheckCampaignReferences(r.campaign(), &r.update_mask().paths()); });
}

absl::StatusOr<v1::SetCampaignStateResponse> Campaigns::SetCampaignState(const Principal& p,
                                                                         const v1::SetCampaignStateRequest& r) {
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  RETURN_IF_ERROR(ValidateId("campaign_id", r.campaign_id()));
  RETURN_IF_ERROR(ValidateEnum("state", r.state(), v1::CampaignState_IsValid, /*required=*/true));
  RETURN_IF_ERROR(ValidateText("reason", r.reason(), 0, kMaxReasonLength));
  return Mutate<v1::SetCampaignStateResponse>(
      deps_, p, "SetCampaignState", r.idempotency_key(), r,
      [&](CatalogTx& tx, v1::SetCampaignStateResponse& out) -> absl::Status {
        ASSIGN_OR_RETURN(std::optional<v1::Campaign> cur, tx.GetCampaign(r.campaign_id(), /*for_update=*/true));
        if (!cur.has_value()) return CampaignNotFound(r.campaign_id());
        const v1::CampaignState from = cur->state(), to = r.state();
        const bool allowed = (from == v1::CAMPAIGN_STATE_DRAFT && to == v1::CAMPAIGN_STATE_ACTIVE) ||
                             (from == v1::CAMPAIGN_STATE_ACTIVE && to == v1::CAMPAIGN_STATE_PAUSED) ||
                             (from == v1::CAMPAIGN_STATE_PAUSED && to == v1::CAMPAIGN_STATE_ACTIVE) ||
                             (from != v1::CAMPAIGN_STATE_ENDED && to == v1::CAMPAIGN_STATE_ENDED);
        if (!allowed) {
          return absl::FailedPreconditionError(absl::StrCat("campaign state ", v1::CampaignState_Name(from),
                                                            " cannot become ", v1::CampaignState_Name(to)));
        }
        cur->set_state(to);
        cur->set_version(cur->version() + 1);
        *cur->mutable_updated_at() = ToProtoTime(deps_.Now());
        RETURN_IF_ERROR(tx.UpdateCampaign(*cur));
        RETURN_IF_ERROR(tx.EarnRulesVersion(/*bump=*/true).status());
        *out.mutable_campaign() = *std::move(cur);
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::GetCampaignResponse> Campaigns::GetCampaign(const Principal& p, const v1::GetCampaignRequest& r) {
  RETURN_IF_ERROR(ValidateId("campaign_id", r.campaign_id()));
  v1::GetCampaignResponse out;
  RETURN_IF_ERROR(deps_.store.Run("GetCampaign", [&](CatalogTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(std::optional<v1::Campaign> c, tx.GetCampaign(r.campaign_id(), false));
    if (!c.has_value() || !CampaignOpenTo(p, *c)) return CampaignNotFound(r.campaign_id());
    *out.mutable_campaign() = *std::move(c);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::ListCampaignsResponse> Campaigns::ListCampaigns(const Principal& p,
                                                                   const v1::ListCampaignsRequest& r) {
  if (!r.partner_id().empty()) RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  if (p.is_partner() && !r.partner_id().empty() && r.partner_id() != p.partner_id) {
    return absl::PermissionDeniedError("partner_id: a partner may only list campaigns open to itself");
  }
  ASSIGN_OR_RETURN(int limit, paging::PageSize(r.page_size(), kCampaignsPageDefault, kCampaignsPageMax));
  CampaignFilter filter;
  filter.partner_id = p.is_partner() ? p.partner_id : r.partner_id();
  std::string scope = absl::StrCat("campaigns|", filter.partner_id);
  for (int s : r.states()) {
    filter.states.push_back(static_cast<v1::CampaignState>(s));
    absl::StrAppend(&scope, "|", s);
  }
  ASSIGN_OR_RETURN(filter.after_campaign_id, KeyCursor(r.page_token(), scope));
  v1::ListCampaignsResponse out;
  RETURN_IF_ERROR(deps_.store.Run("ListCampaigns", [&](CatalogTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(std::vector<v1::Campaign> rows, tx.ListCampaigns(filter, limit + 1));
    const bool more = static_cast<int>(rows.size()) > limit;
    if (more) rows.resize(limit);
    for (auto& c : rows) *out.add_campaigns() = std::move(c);
    if (more) out.set_next_page_token(paging::EncodeKeyPageToken(scope, out.campaigns().rbegin()->campaign_id()));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::GetActiveEarnRulesResponse> Campaigns::GetActiveEarnRules(const Principal& /*p*/,
                                                                             const v1::GetActiveEarnRulesRequest& r) {
  if (r.known_version() < 0) return absl::InvalidArgumentError("known_version: must be >= 0");
  v1::GetActiveEarnRulesResponse out;
  // One transaction: the version and the rules come from the same snapshot.
  RETURN_IF_ERROR(deps_.store.Run("GetActiveEarnRules", [&](CatalogTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(int64_t version, tx.EarnRulesVersion(/*bump=*/false));
    out.set_version(version);
    if (version <= r.known_version()) {
      out.set_not_modified(true);
      return absl::OkStatus();
    }
    ASSIGN_OR_RETURN(std::vector<v1::Campaign> rules, tx.ListEarnRules(deps_.Now()));
    for (auto& c : rules) {
      // Budget figures are informational, not part of the versioned rules.
      c.clear_budget_allocated_points();
      c.clear_budget_remaining_points();
      *out.add_campaigns() = std::move(c);
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::LeaseCampaignBudgetResponse> Campaigns::LeaseCampaignBudget(
    const Principal& p, const v1::LeaseCampaignBudgetRequest& r) {
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  RETURN_IF_ERROR(ValidateId("campaign_id", r.campaign_id()));
  if (r.requested_points() < 1 || r.requested_points() > kMaxLeasePoints) {
    return absl::InvalidArgumentError("requested_points: must be 1..1000000");
  }
  RETURN_IF_ERROR(ValidateText("holder", r.holder(), 1, kMaxHolderLength));
  return Mutate<v1::LeaseCampaignBudgetResponse>(
      deps_, p, "LeaseCampaignBudget", r.idempotency_key(), r,
      [&](CatalogTx& tx, v1::LeaseCampaignBudgetResponse& out) -> absl::Status {
        ASSIGN_OR_RETURN(std::optional<v1::Campaign> c, tx.GetCampaign(r.campaign_id(), /*for_update=*/true));
        if (!c.has_value()) return CampaignNotFound(r.campaign_id());
        if (c->state() != v1::CAMPAIGN_STATE_ACTIVE) {
          return absl::FailedPreconditionError(absl::StrCat("campaign ", r.campaign_id(), " is not active"));
        }
        if (c->budget_points() == 0) return absl::FailedPreconditionError("campaign budget is unlimited");
        const int64_t remaining = c->budget_points() - c->budget_allocated_points();
        if (remaining <= 0) return absl::FailedPreconditionError("campaign budget exhausted");
        const int64_t granted = std::min(remaining, r.requested_points());
        // Conditional: never above the budget, whatever else runs.
        ASSIGN_OR_RETURN(bool allocated, tx.AllocateBudget(r.campaign_id(), granted));
        if (!allocated) return absl::AbortedError("campaign budget changed; retry");
        v1::CampaignBudgetLease lease;
        lease.set_campaign_budget_lease_id(crypto::NewOpaqueId("bl"));
        lease.set_campaign_id(r.campaign_id());
        lease.set_holder(r.holder());
        lease.set_granted_points(granted);
        *lease.mutable_created_at() = ToProtoTime(deps_.Now());
        RETURN_IF_ERROR(tx.InsertLease(lease));
        *out.mutable_lease() = std::move(lease);
        out.set_budget_remaining_points(remaining - granted);
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::ReturnCampaignBudgetResponse> Campaigns::ReturnCampaignBudget(
    const Principal& p, const v1::ReturnCampaignBudgetRequest& r) {
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  RETURN_IF_ERROR(ValidateId("campaign_budget_lease_id", r.campaign_budget_lease_id()));
  if (r.used_points() < 0) return absl::InvalidArgumentError("used_points: must be >= 0");
  if (r.unused_points() < 0) return absl::InvalidArgumentError("unused_points: must be >= 0");
  return Mutate<v1::ReturnCampaignBudgetResponse>(
      deps_, p, "ReturnCampaignBudget", r.idempotency_key(), r,
      [&](CatalogTx& tx, v1::ReturnCampaignBudgetResponse& out) -> absl::Status {
        ASSIGN_OR_RETURN(std::optional<v1::CampaignBudgetLease> lease, tx.GetLease(r.campaign_budget_lease_id()));
        if (!lease.has_value()) {
          return absl::NotFoundError(absl::StrCat("lease ", r.campaign_budget_lease_id(), " not found"));
        }
        if (lease->has_closed_at()) return absl::FailedPreconditionError("lease already closed");
        if (r.used_points() + r.unused_points() != lease->granted_points()) {
          return absl::InvalidArgumentError(
              absl::StrCat("used_points + unused_points: must equal granted_points (", lease->granted_points(), ")"));
        }
        ASSIGN_OR_RETURN(std::optional<v1::Campaign> c, tx.GetCampaign(lease->campaign_id(), /*for_update=*/true));
        if (!c.has_value()) return CampaignNotFound(lease->campaign_id());
        if (r.unused_points() > 0) RETURN_IF_ERROR(tx.ReleaseBudget(lease->campaign_id(), r.unused_points()));
        *lease->mutable_closed_at() = ToProtoTime(deps_.Now());
        lease->set_used_points(r.used_points());
        lease->set_returned_points(r.unused_points());
        RETURN_IF_ERROR(tx.CloseLease(*lease));
        *out.mutable_lease() = *std::move(lease);
        out.set_budget_remaining_points(c->budget_points() - c->budget_allocated_points() + r.unused_points());
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::QuoteEarnResponse> Campaigns::QuoteEarn(const Principal& p, const v1::QuoteEarnRequest& r) {
  if (p.is_partner() && r.partner_id() != p.partner_id) {
    return absl::PermissionDeniedError("partner_id: must be the calling partner's own id");
  }
  RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  // The two requests have the same fields and numbers (catalog.proto).
  ledger::v1::QuoteEarnRequest request;
  if (!request.ParseFromString(r.SerializeAsString())) return absl::InternalError("QuoteEarn request mapping");
  ASSIGN_OR_RETURN(ledger::v1::QuoteEarnResponse quoted, deps_.ledger.QuoteEarn(request));
  v1::QuoteEarnResponse out;
  if (!out.ParseFromString(quoted.SerializeAsString())) return absl::InternalError("QuoteEarn response mapping");
  return out;
}

}  // namespace loyalty::catalog
