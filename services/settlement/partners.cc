#include "services/settlement/partners.h"

#include <set>
#include <string>

#include "absl/strings/ascii.h"
#include "common/paging/page_token.h"
#include "common/validation/enums.h"
#include "common/validation/money.h"
#include "services/settlement/netting.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "common/validation/ids.h"
#include "common/validation/text.h"
#include "services/settlement/settlement_common.h"

namespace loyalty::settlement {
namespace {

constexpr absl::Duration kSnapshotContractHorizon = absl::Hours(24 * 8);
// Input limits (settlement.proto); text lengths in characters.
constexpr size_t kMinPartnerIdLength = 2;
constexpr size_t kMaxPartnerIdLength = 40;
constexpr int kMaxAddressLines = 4;
constexpr size_t kMaxAddressLineChars = 100;


// A new partner's id: a lower-case slug of 2..40 characters, never the
// netting party "operator".
absl::Status ValidatePartnerId(absl::string_view field, absl::string_view id) {
  RETURN_IF_ERROR(ValidateSlug(field, id, kMinPartnerIdLength, kMaxPartnerIdLength));
  if (id == kOperatorPartyId) return Invalid(field, "'operator' is reserved");
  return absl::OkStatus();
}

absl::Status ValidateContact(const v1::BillingContact& c) {
  RETURN_IF_ERROR(ValidateText("partner.billing_contact.name", c.name(), 1, 100));
  const std::string& email = c.email();
  const size_t at = email.find('@');
  if (email.size() > 254 || at == std::string::npos || at == 0 || at + 1 >= email.size() ||
      email.find('@', at + 1) != std::string::npos || email.find('.', at) == std::string::npos ||
      email != absl::AsciiStrToLower(email) || email.find(' ') != std::string::npos) {
    return Invalid("partner.billing_contact.email", "a lower-case email address of at most 254 characters");
  }
  if (!c.phone().empty()) {
    bool ok = c.phone().size() >= 8 && c.phone().size() <= 16 && c.phone()[0] == '+';
    for (size_t i = 1; ok && i < c.phone().size(); ++i) ok = absl::ascii_isdigit(c.phone()[i]);
    if (!ok) return Invalid("partner.billing_contact.phone", "E.164, e.g. +41441234567");
  }
  if (c.address_lines_size() > kMaxAddressLines) {
    return Invalid("partner.billing_contact.address_lines", absl::StrCat("at most ", kMaxAddressLines, " lines"));
  }
  for (int i = 0; i < c.address_lines_size(); ++i) {
    RETURN_IF_ERROR(ValidateText(absl::StrCat("partner.billing_contact.address_lines[", i, "]"), c.address_lines(i),
                                 0, kMaxAddressLineChars));
  }
  return absl::OkStatus();
}

// The directory fields of a partner (create, and update of the same names).
absl::Status ValidateDirectoryField(const v1::Partner& p, absl::string_view field) {
  if (field == "legal_name") return ValidateText("partner.legal_name", p.legal_name(), 1, 200);
  if (field == "display_name") return ValidateText("partner.display_name", p.display_name(), 1, 100);
  if (field == "business_category") {
    return ValidateEnum("partner.business_category", p.business_category(), v1::BusinessCategory_IsValid,
                        /*required=*/true);
  }
  if (field == "country") return ValidateCountryCode("partner.country", p.country());
  if (field == "billing_contact") return ValidateContact(p.billing_contact());
  if (field == "vat_id") return ValidateText("partner.vat_id", p.vat_id(), 0, 32);
  if (field == "rate_limit_per_second") {
    return p.rate_limit_per_second() < 0 ? Invalid("partner.rate_limit_per_second", ">= 0") : absl::OkStatus();
  }
  if (field == "rate_limit_burst") {
    return p.rate_limit_burst() < 0 ? Invalid("partner.rate_limit_burst", ">= 0") : absl::OkStatus();
  }
  return Invalid("update_mask", absl::StrCat("'", field, "' is not updatable"));
}

constexpr absl::string_view kDirectoryFields[] = {"legal_name",   "display_name", "business_category",
                                                  "country",      "billing_contact", "vat_id",
                                                  "rate_limit_per_second", "rate_limit_burst"};

void CopyDirectoryField(const v1::Partner& from, absl::string_view field, v1::Partner* to) {
  if (field == "legal_name") to->set_legal_name(from.legal_name());
  if (field == "display_name") to->set_display_name(from.display_name());
  if (field == "business_category") to->set_business_category(from.business_category());
  if (field == "country") to->set_country(from.country());
  if (field == "billing_contact") *to->mutable_billing_contact() = from.billing_contact();
  if (field == "vat_id") to->set_vat_id(from.vat_id());
  if (field == "rate_limit_per_second") to->set_rate_limit_per_second(from.rate_limit_per_second());
  if (field == "rate_limit_burst") to->set_rate_limit_burst(from.rate_limit_burst());
}

bool TransitionAllowed(v1::PartnerStatus from, v1::PartnerStatus to) {
  switch (from) {
    case v1::PARTNER_STATUS_ONBOARDING:
      return to == v1::PARTNER_STATUS_ACTIVE || to == v1::PARTNER_STATUS_TERMINATED;
    case v1::PARTNER_STATUS_ACTIVE:
      return to == v1::PARTNER_STATUS_SUSPENDED || to == v1::PARTNER_STATUS_TERMINATED;
    case v1::PARTNER_STATUS_SUSPENDED:
      return to == v1::PARTNER_STATUS_ACTIVE || to == v1::PARTNER_STATUS_TERMINATED;
    default:
      return false;
  }
}



}  // namespace

Partners::Partners(const SettlementDeps& deps) : deps_(deps) {}

absl::StatusOr<v1::CreatePartnerResponse> Partners::CreatePartner(const Principal& p,
                                                                  const v1::CreatePartnerRequest& r) {
  const v1::Partner& in = r.partner();
  RETURN_IF_ERROR(ValidatePartnerId("partner.partner_id", in.partner_id()));
  for (absl::string_view field : kDirectoryFields) RETURN_IF_ERROR(ValidateDirectoryField(in, field));
  RETURN_IF_ERROR(ValidateCurrency("partner.settlement_currency", in.settlement_currency()));
  const absl::Time now = deps_.Now();
  return Mutate<v1::CreatePartnerResponse>(
      deps_.store, p, "CreatePartner", r.idempotency_key(), r, [&](SettlementTx& tx, v1::CreatePartnerResponse& out) {
        v1::Partner partner = in;
        partner.set_status(v1::PARTNER_STATUS_ONBOARDING);
        partner.clear_status_reason();
        *partner.mutable_created_at() = ToProtoTime(now);
        *partner.mutable_updated_at() = ToProtoTime(now);
        partner.set_version(1);
        RETURN_IF_ERROR(tx.InsertPartner(partner));
        RETURN_IF_ERROR(Audit(tx, p, "CreatePartner", "partner", partner.partner_id(), nullptr, &partner,
                              r.idempotency_key(), "", now));
        *out.mutable_partner() = std::move(partner);
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::GetPartnerResponse> Partners::GetPartner(const Principal& p, const v1::GetPartnerRequest& r) {
  RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  RETURN_IF_ERROR(OwnPartnerOnly(p, r.partner_id(), "partner"));
  v1::GetPartnerResponse out;
  RETURN_IF_ERROR(deps_.store.Run("GetPartner", [&](SettlementTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(*out.mutable_partner(), LoadPartner(tx, r.partner_id(), false));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::ListPartnersResponse> Partners::ListPartners(const Principal& /*p*/,
                                                                const v1::ListPartnersRequest& r) {
  ASSIGN_OR_RETURN(int page_size, paging::PageSize(r.page_size(), 50, 500));
  std::string scope = absl::StrCat("partners:", r.business_category());
  for (int s : r.statuses()) absl::StrAppend(&scope, ",", s);
  std::string after;
  if (!r.page_token().empty()) {
    ASSIGN_OR_RETURN(after, paging::DecodeKeyPageToken(r.page_token(), scope));
  }
  const std::set<int> statuses(r.statuses().begin(), r.statuses().end());
  v1::ListPartnersResponse out;
  RETURN_IF_ERROR(deps_.store.Run("ListPartners", [&](SettlementTx& tx) -> absl::Status {
    out.Clear();
    // Filters apply after the keyset scan: a page may hold fewer than
    // page_size partners, and its token continues after the last scanned.
    ASSIGN_OR_RETURN(std::vector<v1::Partner> scanned, tx.ListPartners(after, page_size + 1));
    const bool more = static_cast<int>(scanned.size()) > page_size;
    if (more) scanned.pop_back();
    for (auto& partner : scanned) {
      if (!statuses.empty() && !statuses.contains(partner.status())) continue;
      if (r.business_category() != 0 && partner.business_category() != r.business_category()) continue;
      *out.add_partners() = partner;
    }
    if (more) out.set_next_page_token(paging::EncodeKeyPageToken(scope, scanned.back().partner_id()));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::UpdatePartnerResponse> Partners::UpdatePartner(const Principal& p,
                                                                  const v1::UpdatePartnerRequest& r) {
  RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  if (r.update_mask().paths_size() == 0) return Invalid("update_mask", "names no field");
  for (const std::string& path : r.update_mask().paths()) RETURN_IF_ERROR(ValidateDirectoryField(r.partner(), path));
  const absl::Time now = deps_.Now();
  return Mutate<v1::UpdatePartnerResponse>(
      deps_.store, p, "UpdatePartner", r.idempotency_key(), r, [&](SettlementTx& tx, v1::UpdatePartnerResponse& out) {
        ASSIGN_OR_RETURN(v1::Partner before, LoadPartner(tx, r.partner_id(), true));
        if (r.expected_version() != 0 && r.expected_version() != before.version()) {
          return absl::AbortedError(absl::StrCat("expected_version ", r.expected_version(), " is stale; partner is at ",
                                                 before.version()));
        }
        v1::Partner after = before;
        for (const std::string& path : r.update_mask().paths()) CopyDirectoryField(r.partner(), path, &after);
        after.set_version(before.version() + 1);
        *after.mutable_updated_at() = ToProtoTime(now);
        RETURN_IF_ERROR(tx.UpdatePartner(after));
        RETURN_IF_ERROR(Audit(tx, p, "UpdatePartner", "partner", after.partner_id(), &before, &after,
                              r.idempotency_key(), "", now));
        *out.mutable_partner() = std::move(after);
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::SetPartnerStatusResponse> Partners::SetPartnerStatus(const Principal& p,
                                                                        const v1::SetPartnerStatusRequest& r) {
  RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  RETURN_IF_ERROR(ValidateEnum("status", r.status(), v1::PartnerStatus_IsValid, /*required=*/true));
  RETURN_IF_ERROR(ValidateText("reason", r.reason(), 1, 500));
  const absl::Time now = deps_.Now();
  return Mutate<v1::SetPartnerStatusResponse>(
      deps_.store, p, "SetPartnerStatus", r.idempotency_key(), r,
      [&](SettlementTx& tx, v1::SetPartnerStatusResponse& out) {
        ASSIGN_OR_RETURN(v1::Partner before, LoadPartner(tx, r.partner_id(), true));
        if (!TransitionAllowed(before.status(), r.status())) {
          return absl::FailedPreconditionError(absl::StrCat("status: ", v1::PartnerStatus_Name(before.status()),
                                                            " cannot become ", v1::PartnerStatus_Name(r.status())));
        }
        if (r.status() == v1::PARTNER_STATUS_ACTIVE) {
          ASSIGN_OR_RETURN(ContractHistory contracts, tx.ListContracts(r.partner_id()));
          if (contracts.empty() || FromProtoTime(contracts.front().effective_from()) > now) {
            return absl::FailedPreconditionError("status: ACTIVE needs a contract in force");
          }
        }
        v1::Partner after = before;
        after.set_status(r.status());
        after.set_status_reason(r.reason());
        after.set_version(before.version() + 1);
        *after.mutable_updated_at() = ToProtoTime(now);
        RETURN_IF_ERROR(tx.UpdatePartner(after));
        RETURN_IF_ERROR(Audit(tx, p, "SetPartnerStatus", "partner", after.partner_id(), &before, &after,
                              r.idempotency_key(), r.reason(), now));
        *out.mutable_partner() = std::move(after);
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::ListPartnerSnapshotsResponse> Partners::ListPartnerSnapshots(
    const Principal& /*p*/, const v1::ListPartnerSnapshotsRequest& r) {
  if (r.after_version() < 0) return Invalid("after_version", "must be >= 0");
  ASSIGN_OR_RETURN(int page_size, paging::PageSize(r.page_size(), 500, 2000));
  const absl::Time horizon = deps_.Now() - kSnapshotContractHorizon;
  v1::ListPartnerSnapshotsResponse out;
  RETURN_IF_ERROR(deps_.store.Run("ListPartnerSnapshots", [&](SettlementTx& tx) -> absl::Status {
    out.Clear();
    out.set_last_version(r.after_version());
    ASSIGN_OR_RETURN(auto changed, tx.ListChangedPartners(r.after_version(), page_size + 1));
    ASSIGN_OR_RETURN(int64_t prepaid_as_of, tx.GetCursor(kPrepaidCursor, false));
    out.set_has_more(static_cast<int>(changed.size()) > page_size);
    if (out.has_more()) changed.pop_back();
    for (auto& [version, partner] : changed) {
      v1::PartnerSnapshot* s = out.add_snapshots();
      s->set_partner_id(partner.partner_id());
      s->set_status(partner.status());
      s->set_settlement_currency(partner.settlement_currency());
      s->set_version(version);
      ASSIGN_OR_RETURN(std::optional<PrepaidRow> prepaid, tx.GetPrepaid(partner.partner_id(), false));
      if (prepaid.has_value()) {
        s->set_prepaid_remaining_points(prepaid->purchased_points - prepaid->issued_points);
        s->set_prepaid_as_of_sequence(prepaid_as_of);
      }
      ASSIGN_OR_RETURN(ContractHistory history, tx.ListContracts(partner.partner_id()));
      for (const auto& c : WithUntil(std::move(history))) {
        if (c.has_effective_until() && FromProtoTime(c.effective_until()) <= horizon) continue;
        *s->add_contracts() = c;
      }
      out.set_last_version(version);
    }
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace loyalty::settlement
