#include "services/settlement/settlement.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/auth/key_mint.h"
#include "common/crypto/random.h"
#include "common/crypto/sha256.h"
#include "common/idempotency/idempotency.h"
#include "common/log/log.h"
#include "common/paging/page_token.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "common/validation/enums.h"
#include "common/validation/ids.h"
#include "common/validation/money.h"
#include "common/validation/text.h"
#include "google/protobuf/util/json_util.h"
#include "services/settlement/netting.h"

namespace loyalty::settlement {
namespace {

namespace lv1 = ::loyalty::ledger::v1;

constexpr absl::string_view kService = "loyalty.settlement.v1.SettlementService/";
// Bounds on what one call loads (TIGER_STYLE: a limit on everything).
constexpr int kMaxPartners = 10'000;
constexpr int kMaxPeriods = 10'000;
constexpr int kMaxStatementsPerPeriod = 10'000;
constexpr int kMaxContractVersions = 1'000;
constexpr int kMaxClosePages = 1'000'000;
constexpr absl::Duration kSnapshotContractHorizon = absl::Hours(24 * 8);
// Input limits (settlement.proto); text lengths in characters.
constexpr size_t kMinPartnerIdLength = 2;
constexpr size_t kMaxPartnerIdLength = 40;
constexpr int kMaxAddressLines = 4;
constexpr size_t kMaxAddressLineChars = 100;
constexpr size_t kMaxNoteChars = 1000;

std::string NewId(absl::string_view prefix) {
  return absl::StrCat(prefix, "_", absl::AsciiStrToLower(crypto::RandomString(crypto::kCrockfordBase32, 20)));
}

std::string ToJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(m, &out, options).ok()) return "{}";
  return out;
}

absl::Status Audit(SettlementTx& tx, const auth::Principal& p, absl::string_view method,
                   absl::string_view entity_type, const std::string& entity_id,
                   const google::protobuf::Message* before, const google::protobuf::Message* after,
                   const std::string& key, const std::string& reason, absl::Time now) {
  common::v1::AuditEvent e;
  e.set_audit_event_id(NewId("ae"));
  *e.mutable_occurred_at() = ToProtoTime(now);
  e.set_actor_key_id(p.key_id);
  e.set_actor_role(p.role);
  e.set_actor_partner_id(p.partner_id);
  e.set_action(absl::StrCat(kService, method));
  e.set_entity_type(std::string(entity_type));
  e.set_entity_id(entity_id);
  if (before != nullptr) e.set_before_json(ToJson(*before));
  if (after != nullptr) e.set_after_json(ToJson(*after));
  e.set_idempotency_key(key);
  e.set_reason(reason);
  return tx.InsertAudit(e);
}

// Statuses remembered under a key (see settlement.h).
bool ShouldRemember(const absl::Status& s) {
  return idempotency::IsFinalOutcome(s) && s.code() != absl::StatusCode::kInvalidArgument &&
         s.code() != absl::StatusCode::kPermissionDenied;
}

absl::Status OwnPartnerOnly(const auth::Principal& p, const std::string& partner_id, absl::string_view what) {
  if (p.is_partner() && partner_id != p.partner_id) {
    return absl::PermissionDeniedError(absl::StrCat("a partner may read only its own ", what));
  }
  return absl::OkStatus();
}

// ---- validation -------------------------------------------------------------

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

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

absl::Status ValidateMoney(absl::string_view field, const common::v1::Money& m, const std::string& currency,
                           bool positive) {
  if (positive ? m.amount_minor() <= 0 : m.amount_minor() < 0) {
    return Invalid(absl::StrCat(field, ".amount_minor"), positive ? "must be > 0" : "must be >= 0");
  }
  if (m.currency() != currency) {
    return Invalid(absl::StrCat(field, ".currency"),
                   absl::StrCat("must be the partner's settlement currency ", currency));
  }
  return absl::OkStatus();
}

// The contract terms (everything but the partner and period checks).
absl::Status ValidateTerms(const v1::Contract& c, const std::string& currency) {
  if (!c.has_effective_from()) return Invalid("contract.effective_from", "required");
  RETURN_IF_ERROR(ValidateCurrency("contract.earn_currency", c.earn_currency()));
  if (c.earn_rate_milli_points_per_unit() <= 0) return Invalid("contract.earn_rate_milli_points_per_unit", "must be > 0");
  RETURN_IF_ERROR(ValidateMoney("contract.issue_price_per_1000_points", c.issue_price_per_1000_points(), currency,
                                true));
  RETURN_IF_ERROR(ValidateMoney("contract.reimbursement_per_1000_points", c.reimbursement_per_1000_points(),
                                currency, true));
  if (c.breakage_share_bp() < 0 || c.breakage_share_bp() > 10'000) {
    return Invalid("contract.breakage_share_bp", "must be within 0..10000");
  }
  if (c.has_monthly_fee()) {
    RETURN_IF_ERROR(ValidateMoney("contract.monthly_fee", c.monthly_fee(), currency, false));
  }
  if (c.funding_model() != v1::FUNDING_MODEL_PREPAID && c.funding_model() != v1::FUNDING_MODEL_POSTPAID) {
    return Invalid("contract.funding_model", "PREPAID or POSTPAID");
  }
  if (c.prepaid_low_balance_threshold_points() < 0) {
    return Invalid("contract.prepaid_low_balance_threshold_points", "must be >= 0");
  }
  RETURN_IF_ERROR(ValidateText("contract.note", c.note(), 0, kMaxNoteChars));
  return absl::OkStatus();
}

// Fills effective_until from the next version.
ContractHistory WithUntil(ContractHistory history) {
  for (size_t i = 0; i + 1 < history.size(); ++i) {
    *history[i].mutable_effective_until() = history[i + 1].effective_from();
  }
  return history;
}

bool IsClosedOrClosing(v1::PeriodStatus s) {
  return s == v1::PERIOD_STATUS_CLOSING || s == v1::PERIOD_STATUS_CLOSED || s == v1::PERIOD_STATUS_FINAL;
}

absl::Status PeriodNotFound(const std::string& id) {
  return absl::NotFoundError(absl::StrCat("period '", id, "' not found"));
}

absl::StatusOr<v1::Period> LoadPeriod(SettlementTx& tx, const std::string& period_id, bool for_update) {
  RETURN_IF_ERROR(ValidateId("period_id", period_id));
  ASSIGN_OR_RETURN(std::optional<v1::Period> period, tx.GetPeriod(period_id, for_update));
  if (!period.has_value()) return PeriodNotFound(period_id);
  return *std::move(period);
}

absl::StatusOr<v1::Partner> LoadPartner(SettlementTx& tx, const std::string& partner_id, bool for_update) {
  ASSIGN_OR_RETURN(std::optional<v1::Partner> partner, tx.GetPartner(partner_id, for_update));
  if (!partner.has_value()) return absl::NotFoundError(absl::StrCat("partner '", partner_id, "' not found"));
  return *std::move(partner);
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


constexpr char kPrepaidCursor[] = "prepaid";
constexpr int kRecentBlocks = 20;
constexpr int kMaxPrepaidPartners = 10'000;
constexpr int kMaxBlocksPerPartner = 100'000;

// Net prepaid issuance per partner of a page of transfers: issued minus
// reversed points priced under a PREPAID contract version.
std::map<std::string, int64_t> PrepaidIssuance(const std::vector<lv1::Transfer>& transfers,
                                               const std::map<std::string, ContractHistory>& contracts) {
  std::vector<PointsCount> points;
  std::vector<MatrixCount> matrix;
  for (const auto& t : transfers) CountTransfer(t, contracts, points, matrix);
  std::map<std::string, int64_t> out;
  for (const PointsCount& row : points) {
    if (row.line_type != v1::STATEMENT_LINE_TYPE_ISSUED && row.line_type != v1::STATEMENT_LINE_TYPE_ISSUE_REVERSED) {
      continue;
    }
    auto it = contracts.find(row.partner_id);
    if (it == contracts.end()) continue;
    bool prepaid = false;
    for (const auto& c : it->second) {
      if (c.contract_id() == row.contract_id) prepaid = c.funding_model() == v1::FUNDING_MODEL_PREPAID;
    }
    if (!prepaid) continue;
    out[row.partner_id] += row.line_type == v1::STATEMENT_LINE_TYPE_ISSUED ? row.points : -row.points;
  }
  return out;
}

// The prepaid low-balance threshold of the version in force at `now` (0 if
// it is not prepaid).
int64_t ThresholdAt(const ContractHistory& history, absl::Time now) {
  const v1::Contract* c = ContractAt(history, now);
  if (c == nullptr || c->funding_model() != v1::FUNDING_MODEL_PREPAID) return 0;
  return c->prepaid_low_balance_threshold_points();
}

v1::PrepaidBalance BalanceOf(const PrepaidRow& row, int64_t threshold, int64_t as_of_sequence) {
  v1::PrepaidBalance b;
  b.set_partner_id(row.partner_id);
  b.set_purchased_points(row.purchased_points);
  b.set_issued_points(row.issued_points);
  b.set_remaining_points(row.purchased_points - row.issued_points);
  b.set_low_balance_threshold_points(threshold);
  b.set_as_of_sequence(as_of_sequence);
  return b;
}

// Sets row.alert_level from the balance; when it rises, stores an alert and
// adds it to `raised` (logged once the transaction committed). A purchase
// lowers the level without an alert.
absl::Status UpdateAlertLevel(SettlementTx& tx, PrepaidRow& row, int64_t threshold, absl::Time now,
                              std::vector<v1::Alert>* raised) {
  const int64_t remaining = row.purchased_points - row.issued_points;
  const int level = remaining <= 0 ? 2 : (threshold > 0 && remaining < threshold ? 1 : 0);
  const int previous = row.alert_level;
  row.alert_level = level;
  if (level <= previous) return absl::OkStatus();
  v1::Alert a;
  a.set_alert_id(NewId("al"));
  a.set_partner_id(row.partner_id);
  a.set_kind(level == 2 ? v1::ALERT_KIND_PREPAID_EXHAUSTED : v1::ALERT_KIND_PREPAID_LOW_BALANCE);
  a.set_message(level == 2 ? absl::StrCat("prepaid points exhausted: ", remaining, " remaining")
                           : absl::StrCat("prepaid balance low: ", remaining, " points remaining, threshold ",
                                          threshold));
  *a.mutable_created_at() = ToProtoTime(now);
  a.set_remaining_points(remaining);
  a.set_threshold_points(threshold);
  RETURN_IF_ERROR(tx.InsertAlert(a));
  raised->push_back(std::move(a));
  return absl::OkStatus();
}

void LogAlert(const v1::Alert& a) {
  log::Warn("prepaid_alert", {{"partner_id", a.partner_id()},
                              {"kind", v1::AlertKind_Name(a.kind())},
                              {"remaining_points", a.remaining_points()},
                              {"threshold_points", a.threshold_points()}});
}

}  // namespace

absl::Time Settlement::Now() const { return TruncateToMicros(options_.now()); }

template <typename Response>
absl::StatusOr<Response> Settlement::Mutate(const Principal& p, absl::string_view method, const std::string& key,
                                            const google::protobuf::Message& request, Body<Response> body) {
  return idempotency::RunOnce<SettlementTx, IdempotencyRecord>(store_, method, p.idempotency_scope(), key, request, body,
                                                          ShouldRemember);
}

// ---- partners -------------------------------------------------------------------

absl::StatusOr<v1::CreatePartnerResponse> Settlement::CreatePartner(const Principal& p,
                                                                    const v1::CreatePartnerRequest& r) {
  const v1::Partner& in = r.partner();
  RETURN_IF_ERROR(ValidatePartnerId("partner.partner_id", in.partner_id()));
  for (absl::string_view field : kDirectoryFields) RETURN_IF_ERROR(ValidateDirectoryField(in, field));
  RETURN_IF_ERROR(ValidateCurrency("partner.settlement_currency", in.settlement_currency()));
  const absl::Time now = Now();
  return Mutate<v1::CreatePartnerResponse>(
      p, "CreatePartner", r.idempotency_key(), r, [&](SettlementTx& tx, v1::CreatePartnerResponse& out) {
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

absl::StatusOr<v1::GetPartnerResponse> Settlement::GetPartner(const Principal& p, const v1::GetPartnerRequest& r) {
  RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  RETURN_IF_ERROR(OwnPartnerOnly(p, r.partner_id(), "partner"));
  v1::GetPartnerResponse out;
  RETURN_IF_ERROR(store_.Run("GetPartner", [&](SettlementTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(*out.mutable_partner(), LoadPartner(tx, r.partner_id(), false));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::ListPartnersResponse> Settlement::ListPartners(const Principal& /*p*/,
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
  RETURN_IF_ERROR(store_.Run("ListPartners", [&](SettlementTx& tx) -> absl::Status {
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

absl::StatusOr<v1::UpdatePartnerResponse> Settlement::UpdatePartner(const Principal& p,
                                                                    const v1::UpdatePartnerRequest& r) {
  RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  if (r.update_mask().paths_size() == 0) return Invalid("update_mask", "names no field");
  for (const std::string& path : r.update_mask().paths()) RETURN_IF_ERROR(ValidateDirectoryField(r.partner(), path));
  const absl::Time now = Now();
  return Mutate<v1::UpdatePartnerResponse>(
      p, "UpdatePartner", r.idempotency_key(), r, [&](SettlementTx& tx, v1::UpdatePartnerResponse& out) {
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

absl::StatusOr<v1::SetPartnerStatusResponse> Settlement::SetPartnerStatus(const Principal& p,
                                                                          const v1::SetPartnerStatusRequest& r) {
  RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  RETURN_IF_ERROR(ValidateEnum("status", r.status(), v1::PartnerStatus_IsValid, /*required=*/true));
  RETURN_IF_ERROR(ValidateText("reason", r.reason(), 1, 500));
  const absl::Time now = Now();
  return Mutate<v1::SetPartnerStatusResponse>(
      p, "SetPartnerStatus", r.idempotency_key(), r, [&](SettlementTx& tx, v1::SetPartnerStatusResponse& out) {
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

// ---- contracts ------------------------------------------------------------------

absl::StatusOr<v1::CreateContractVersionResponse> Settlement::CreateContractVersion(
    const Principal& p, const v1::CreateContractVersionRequest& r) {
  const v1::Contract& in = r.contract();
  RETURN_IF_ERROR(ValidateId("contract.partner_id", in.partner_id()));
  if (!in.has_effective_from()) return Invalid("contract.effective_from", "required");
  const absl::Time now = Now();
  // Microseconds, as stored (DATETIME(6)).
  const absl::Time effective_from = TruncateToMicros(FromProtoTime(in.effective_from()));
  // Validation that needs the partner and the periods runs inside the
  // transaction; its INVALID_ARGUMENT is not remembered under the key.
  return Mutate<v1::CreateContractVersionResponse>(
      p, "CreateContractVersion", r.idempotency_key(), r,
      [&](SettlementTx& tx, v1::CreateContractVersionResponse& out) -> absl::Status {
        // Locks the partner: versions of one partner are numbered in turn.
        ASSIGN_OR_RETURN(v1::Partner partner, LoadPartner(tx, in.partner_id(), true));
        RETURN_IF_ERROR(ValidateTerms(in, partner.settlement_currency()));
        if (partner.status() == v1::PARTNER_STATUS_TERMINATED) {
          return absl::FailedPreconditionError("partner is terminated");
        }
        ASSIGN_OR_RETURN(ContractHistory history, tx.ListContracts(in.partner_id()));
        if (static_cast<int>(history.size()) >= kMaxContractVersions) {
          return absl::FailedPreconditionError("too many contract versions");
        }
        if (!history.empty() && effective_from <= FromProtoTime(history.back().effective_from())) {
          return Invalid("contract.effective_from", "must be after the latest version's effective_from");
        }
        ASSIGN_OR_RETURN(std::vector<v1::Period> periods, tx.ListPeriods(kMaxPeriods));
        for (const v1::Period& period : periods) {
          if (IsClosedOrClosing(period.status()) && effective_from < FromProtoTime(period.end_time())) {
            return Invalid("contract.effective_from",
                           absl::StrCat("falls in or before period '", period.name(), "', which is already closed"));
          }
        }
        v1::Contract c = in;
        c.set_contract_id(NewId("ct"));
        c.set_version(static_cast<int32_t>(history.size()) + 1);
        *c.mutable_effective_from() = ToProtoTime(effective_from);
        c.clear_effective_until();
        *c.mutable_created_at() = ToProtoTime(now);
        c.set_created_by_key_id(p.key_id);
        if (!c.has_monthly_fee()) c.mutable_monthly_fee()->set_currency(partner.settlement_currency());
        RETURN_IF_ERROR(tx.InsertContract(c));
        RETURN_IF_ERROR(tx.TouchPartner(c.partner_id()));
        RETURN_IF_ERROR(Audit(tx, p, "CreateContractVersion", "contract", c.contract_id(), nullptr, &c,
                              r.idempotency_key(), "", now));
        *out.mutable_contract() = std::move(c);
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::GetContractResponse> Settlement::GetContract(const Principal& p, const v1::GetContractRequest& r) {
  v1::GetContractResponse out;
  switch (r.selector_case()) {
    case v1::GetContractRequest::kContractId:
      RETURN_IF_ERROR(ValidateId("contract_id", r.contract_id()));
      break;
    case v1::GetContractRequest::kAsOf:
      RETURN_IF_ERROR(ValidateId("as_of.partner_id", r.as_of().partner_id()));
      RETURN_IF_ERROR(OwnPartnerOnly(p, r.as_of().partner_id(), "contract"));
      break;
    default:
      return Invalid("selector", "contract_id or as_of");
  }
  const absl::Time at = r.as_of().has_time() ? FromProtoTime(r.as_of().time()) : Now();
  RETURN_IF_ERROR(store_.Run("GetContract", [&](SettlementTx& tx) -> absl::Status {
    std::string partner_id = r.as_of().partner_id();
    std::string contract_id = r.contract_id();
    if (r.selector_case() == v1::GetContractRequest::kContractId) {
      ASSIGN_OR_RETURN(std::optional<v1::Contract> c, tx.GetContract(contract_id));
      // Another partner's contract is NOT_FOUND, not a confirmation it exists.
      if (!c.has_value() || (p.is_partner() && c->partner_id() != p.partner_id)) {
        return absl::NotFoundError(absl::StrCat("contract '", contract_id, "' not found"));
      }
      partner_id = c->partner_id();
    }
    ASSIGN_OR_RETURN(ContractHistory history, tx.ListContracts(partner_id));
    history = WithUntil(std::move(history));
    for (const auto& c : history) {
      if (!contract_id.empty() && c.contract_id() == contract_id) *out.mutable_contract() = c;
      if (contract_id.empty() && FromProtoTime(c.effective_from()) <= at) *out.mutable_contract() = c;
    }
    if (!out.has_contract()) {
      return absl::NotFoundError(absl::StrCat("partner '", partner_id, "' has no contract in force at that time"));
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::ListContractsResponse> Settlement::ListContracts(const Principal& p,
                                                                    const v1::ListContractsRequest& r) {
  RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  RETURN_IF_ERROR(OwnPartnerOnly(p, r.partner_id(), "contracts"));
  ASSIGN_OR_RETURN(int page_size, paging::PageSize(r.page_size(), 50, 500));
  const std::string scope = absl::StrCat("contracts:", r.partner_id());
  int64_t skip = 0;
  if (!r.page_token().empty()) {
    ASSIGN_OR_RETURN(skip, paging::DecodePageToken(r.page_token(), scope));
  }
  v1::ListContractsResponse out;
  RETURN_IF_ERROR(store_.Run("ListContracts", [&](SettlementTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(v1::Partner partner, LoadPartner(tx, r.partner_id(), false));
    (void)partner;
    ASSIGN_OR_RETURN(ContractHistory history, tx.ListContracts(r.partner_id()));
    history = WithUntil(std::move(history));
    std::reverse(history.begin(), history.end());  // newest first
    // Versions are immutable and only appended (at the front of this
    // order): the token counts versions from the oldest end.
    const int64_t total = static_cast<int64_t>(history.size());
    const int64_t start = skip == 0 ? 0 : total - skip;
    int64_t i = std::max<int64_t>(start, 0);
    for (; i < total && out.contracts_size() < page_size; ++i) *out.add_contracts() = history[i];
    if (i < total) out.set_next_page_token(paging::EncodePageToken(scope, total - i));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::ListPartnerSnapshotsResponse> Settlement::ListPartnerSnapshots(
    const Principal& /*p*/, const v1::ListPartnerSnapshotsRequest& r) {
  if (r.after_version() < 0) return Invalid("after_version", "must be >= 0");
  ASSIGN_OR_RETURN(int page_size, paging::PageSize(r.page_size(), 500, 2000));
  const absl::Time horizon = Now() - kSnapshotContractHorizon;
  v1::ListPartnerSnapshotsResponse out;
  RETURN_IF_ERROR(store_.Run("ListPartnerSnapshots", [&](SettlementTx& tx) -> absl::Status {
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

// ---- prepaid blocks and alerts -------------------------------------------------------

absl::StatusOr<v1::PurchasePointBlockResponse> Settlement::PurchasePointBlock(const Principal& p,
                                                                              const v1::PurchasePointBlockRequest& r) {
  RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  if (r.points() <= 0) return Invalid("points", "must be > 0");
  if (r.price().amount_minor() < 0) return Invalid("price.amount_minor", "must be >= 0");
  RETURN_IF_ERROR(ValidateText("reference", r.reference(), 0, 64));
  const absl::Time now = Now();
  return Mutate<v1::PurchasePointBlockResponse>(
      p, "PurchasePointBlock", r.idempotency_key(), r,
      [&](SettlementTx& tx, v1::PurchasePointBlockResponse& out) -> absl::Status {
        ASSIGN_OR_RETURN(v1::Partner partner, LoadPartner(tx, r.partner_id(), true));
        if (r.price().currency() != partner.settlement_currency()) {
          return Invalid("price.currency", absl::StrCat("must be the partner's settlement currency ",
                                                        partner.settlement_currency()));
        }
        if (partner.status() == v1::PARTNER_STATUS_TERMINATED) {
          return absl::FailedPreconditionError("partner is terminated");
        }
        ASSIGN_OR_RETURN(ContractHistory history, tx.ListContracts(r.partner_id()));
        const v1::Contract* in_force = ContractAt(history, now);
        if (in_force == nullptr || FromProtoTime(in_force->effective_from()) > now ||
            in_force->funding_model() != v1::FUNDING_MODEL_PREPAID) {
          return absl::FailedPreconditionError("the contract in force is not prepaid");
        }
        v1::PointBlock block;
        block.set_point_block_id(NewId("pb"));
        block.set_partner_id(r.partner_id());
        block.set_points(r.points());
        *block.mutable_price() = r.price();
        *block.mutable_purchased_at() = ToProtoTime(now);
        block.set_reference(r.reference());
        ASSIGN_OR_RETURN(std::optional<PrepaidRow> row, tx.GetPrepaid(r.partner_id(), true));
        PrepaidRow next = row.value_or(PrepaidRow{r.partner_id(), 0, 0, 0});
        next.purchased_points += r.points();
        const int64_t threshold = ThresholdAt(history, now);
        std::vector<v1::Alert> none;  // a purchase raises no alert
        RETURN_IF_ERROR(UpdateAlertLevel(tx, next, threshold, now, &none));
        RETURN_IF_ERROR(tx.PutPrepaid(next));
        RETURN_IF_ERROR(tx.InsertPointBlock(block));
        RETURN_IF_ERROR(tx.TouchPartner(r.partner_id()));
        RETURN_IF_ERROR(Audit(tx, p, "PurchasePointBlock", "point_block", block.point_block_id(), nullptr, &block,
                              r.idempotency_key(), "", now));
        ASSIGN_OR_RETURN(int64_t as_of, tx.GetCursor(kPrepaidCursor, false));
        *out.mutable_point_block() = std::move(block);
        *out.mutable_balance() = BalanceOf(next, threshold, as_of);
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::GetPrepaidBalanceResponse> Settlement::GetPrepaidBalance(const Principal& p,
                                                                            const v1::GetPrepaidBalanceRequest& r) {
  RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  RETURN_IF_ERROR(OwnPartnerOnly(p, r.partner_id(), "prepaid balance"));
  const absl::Time now = Now();
  v1::GetPrepaidBalanceResponse out;
  RETURN_IF_ERROR(store_.Run("GetPrepaidBalance", [&](SettlementTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(v1::Partner partner, LoadPartner(tx, r.partner_id(), false));
    ASSIGN_OR_RETURN(ContractHistory history, tx.ListContracts(r.partner_id()));
    ASSIGN_OR_RETURN(std::optional<PrepaidRow> row, tx.GetPrepaid(r.partner_id(), false));
    const int64_t threshold = ThresholdAt(history, now);
    if (!row.has_value()) {
      const v1::Contract* c = ContractAt(history, now);
      if (c == nullptr || c->funding_model() != v1::FUNDING_MODEL_PREPAID) {
        return absl::FailedPreconditionError("partner is postpaid and never bought a block");
      }
      row = PrepaidRow{partner.partner_id(), 0, 0, 0};
    }
    ASSIGN_OR_RETURN(int64_t as_of, tx.GetCursor(kPrepaidCursor, false));
    *out.mutable_balance() = BalanceOf(*row, threshold, as_of);
    ASSIGN_OR_RETURN(std::vector<v1::PointBlock> blocks, tx.ListPointBlocks(r.partner_id(), kRecentBlocks));
    for (auto& b : blocks) *out.add_recent_blocks() = std::move(b);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::ListAlertsResponse> Settlement::ListAlerts(const Principal& p, const v1::ListAlertsRequest& r) {
  if (!r.partner_id().empty()) RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  if (p.is_partner() && r.partner_id() != p.partner_id) {
    return absl::PermissionDeniedError("partner_id: a partner lists only its own alerts");
  }
  ASSIGN_OR_RETURN(int page_size, paging::PageSize(r.page_size(), 50, 500));
  std::string scope = absl::StrCat("alerts:", r.partner_id(), ":", r.start_time().seconds());
  for (int k : r.kinds()) absl::StrAppend(&scope, ",", k);
  int64_t before_id = 0;
  if (!r.page_token().empty()) {
    ASSIGN_OR_RETURN(before_id, paging::DecodePageToken(r.page_token(), scope));
  }
  const std::set<int> kinds(r.kinds().begin(), r.kinds().end());
  v1::ListAlertsResponse out;
  RETURN_IF_ERROR(store_.Run("ListAlerts", [&](SettlementTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(auto rows, tx.ListAlerts(r.partner_id(), before_id, page_size + 1));
    const bool more = static_cast<int>(rows.size()) > page_size;
    if (more) rows.pop_back();
    for (auto& [id, a] : rows) {
      if (!kinds.empty() && !kinds.contains(a.kind())) continue;
      if (r.has_start_time() && FromProtoTime(a.created_at()) < FromProtoTime(r.start_time())) continue;
      *out.add_alerts() = std::move(a);
    }
    if (more) out.set_next_page_token(paging::EncodePageToken(scope, rows.back().first));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<int> Settlement::FollowJournal(int page_size) {
  int64_t after = 0;
  RETURN_IF_ERROR(store_.Run("FollowJournal.cursor", [&](SettlementTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(after, tx.GetCursor(kPrepaidCursor, false));
    return absl::OkStatus();
  }));
  ASSIGN_OR_RETURN(JournalPage page, ledger_.ReadJournal(after, 0, std::clamp(page_size, 1, kMaxJournalPageSize)));
  if (page.transfers.empty()) return 0;
  if (page.transfers.front().sequence() != after + 1) {
    return absl::InternalError(absl::StrCat("the ledger journal has a gap after sequence ", after));
  }
  const absl::Time now = Now();
  int consumed = 0;
  std::vector<v1::Alert> raised;
  RETURN_IF_ERROR(store_.Run("FollowJournal", [&](SettlementTx& tx) -> absl::Status {
    consumed = 0;
    raised.clear();
    ASSIGN_OR_RETURN(int64_t position, tx.GetCursor(kPrepaidCursor, true));
    if (position != after) return absl::OkStatus();  // another replica applied this page
    std::map<std::string, ContractHistory> contracts;
    for (const auto& t : page.transfers) {
      if (!t.partner_id().empty() && !contracts.contains(t.partner_id())) {
        ASSIGN_OR_RETURN(contracts[t.partner_id()], tx.ListContracts(t.partner_id()));
      }
    }
    for (const auto& [partner_id, delta] : PrepaidIssuance(page.transfers, contracts)) {
      if (delta == 0) continue;
      ASSIGN_OR_RETURN(std::optional<PrepaidRow> row, tx.GetPrepaid(partner_id, true));
      PrepaidRow next = row.value_or(PrepaidRow{partner_id, 0, 0, 0});
      next.issued_points += delta;
      RETURN_IF_ERROR(UpdateAlertLevel(tx, next, ThresholdAt(contracts[partner_id], now), now, &raised));
      RETURN_IF_ERROR(tx.PutPrepaid(next));
      RETURN_IF_ERROR(tx.TouchPartner(partner_id));
    }
    RETURN_IF_ERROR(tx.SetCursor(kPrepaidCursor, page.transfers.back().sequence(), now));
    consumed = static_cast<int>(page.transfers.size());
    return absl::OkStatus();
  }));
  for (const v1::Alert& a : raised) LogAlert(a);  // only alerts that were committed
  return consumed;
}

// ---- credentials ------------------------------------------------------------------------

namespace {

constexpr int64_t kDefaultGraceSeconds = 86'400;
constexpr int64_t kMaxGraceSeconds = 604'800;
constexpr int32_t kAuthCacheTtlSeconds = 30;

// The state as of `now`: a key past its expires_at is EXPIRED.
v1::ApiKey Effective(v1::ApiKey k, absl::Time now) {
  if (k.state() != v1::API_KEY_STATE_REVOKED && k.has_expires_at() && FromProtoTime(k.expires_at()) <= now) {
    k.set_state(v1::API_KEY_STATE_EXPIRED);
  }
  return k;
}

bool Usable(const v1::ApiKey& k) {
  return k.state() == v1::API_KEY_STATE_ACTIVE || k.state() == v1::API_KEY_STATE_ROTATING;
}

// Fresh key material (key id, secret, the secret's SHA-256). Made before
// the idempotent transaction so that the secret is returned once and never
// stored with the remembered response.
absl::StatusOr<auth::MintedKey> Mint(absl::Time now) {
  // The role only shapes the unused record; id and secret are random.
  return auth::MintApiKey(common::v1::ROLE_BACKOFFICE, "", "", now);
}

}  // namespace

absl::StatusOr<v1::CreateApiKeyResponse> Settlement::CreateApiKey(const Principal& p,
                                                                  const v1::CreateApiKeyRequest& r) {
  switch (r.role()) {
    case common::v1::ROLE_PARTNER:
      RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
      break;
    case common::v1::ROLE_BACKOFFICE:
    case common::v1::ROLE_FINANCE:
    case common::v1::ROLE_SERVICE:
      if (!r.partner_id().empty()) return Invalid("partner_id", "only for ROLE_PARTNER");
      break;
    default:
      return Invalid("role", "required");
  }
  const absl::Time now = Now();
  if (r.has_expires_at() && FromProtoTime(r.expires_at()) <= now) return Invalid("expires_at", "in the past");
  RETURN_IF_ERROR(ValidateText("label", r.label(), 0, 100));
  ASSIGN_OR_RETURN(auth::MintedKey minted, Mint(now));
  ASSIGN_OR_RETURN(v1::CreateApiKeyResponse out,
                   Mutate<v1::CreateApiKeyResponse>(
                       p, "CreateApiKey", r.idempotency_key(), r,
                       [&](SettlementTx& tx, v1::CreateApiKeyResponse& response) -> absl::Status {
                         if (r.role() == common::v1::ROLE_PARTNER) {
                           ASSIGN_OR_RETURN(v1::Partner partner, LoadPartner(tx, r.partner_id(), false));
                           if (partner.status() == v1::PARTNER_STATUS_TERMINATED) {
                             return absl::FailedPreconditionError("partner is terminated");
                           }
                         }
                         v1::ApiKey k;
                         k.set_key_id(minted.record.key_id);
                         k.set_role(r.role());
                         k.set_partner_id(r.partner_id());
                         k.set_label(r.label());
                         k.set_state(v1::API_KEY_STATE_ACTIVE);
                         *k.mutable_created_at() = ToProtoTime(now);
                         if (r.has_expires_at()) *k.mutable_expires_at() = ToProtoTime(FromProtoTime(r.expires_at()));
                         k.set_created_by_key_id(p.key_id);
                         RETURN_IF_ERROR(tx.InsertApiKey(k, crypto::ToHex(minted.record.secret_sha256)));
                         RETURN_IF_ERROR(Audit(tx, p, "CreateApiKey", "api_key", k.key_id(), nullptr, &k,
                                               r.idempotency_key(), "", now));
                         *response.mutable_api_key() = std::move(k);
                         return absl::OkStatus();
                       }));
  if (out.api_key().key_id() == minted.record.key_id) out.set_secret(minted.api_key);  // not a replay
  return out;
}

absl::StatusOr<v1::RotateApiKeyResponse> Settlement::RotateApiKey(const Principal& p,
                                                                  const v1::RotateApiKeyRequest& r) {
  RETURN_IF_ERROR(ValidateId("key_id", r.key_id()));
  if (r.grace_period_seconds() < 0 || r.grace_period_seconds() > kMaxGraceSeconds) {
    return Invalid("grace_period_seconds", "within 0..604800");
  }
  const int64_t grace = r.grace_period_seconds() == 0 ? kDefaultGraceSeconds : r.grace_period_seconds();
  const absl::Time now = Now();
  ASSIGN_OR_RETURN(auth::MintedKey minted, Mint(now));
  ASSIGN_OR_RETURN(
      v1::RotateApiKeyResponse out,
      Mutate<v1::RotateApiKeyResponse>(
          p, "RotateApiKey", r.idempotency_key(), r,
          [&](SettlementTx& tx, v1::RotateApiKeyResponse& response) -> absl::Status {
            ASSIGN_OR_RETURN(std::optional<v1::ApiKey> found, tx.GetApiKey(r.key_id(), true));
            if (!found.has_value()) return absl::NotFoundError(absl::StrCat("key '", r.key_id(), "' not found"));
            const v1::ApiKey before = Effective(*found, now);
            if (before.state() != v1::API_KEY_STATE_ACTIVE) {
              return absl::FailedPreconditionError(
                  absl::StrCat("key is ", v1::ApiKeyState_Name(before.state()), ", not ACTIVE"));
            }
            v1::ApiKey next;
            next.set_key_id(minted.record.key_id);
            next.set_role(before.role());
            next.set_partner_id(before.partner_id());
            next.set_label(before.label());
            next.set_state(v1::API_KEY_STATE_ACTIVE);
            *next.mutable_created_at() = ToProtoTime(now);
            next.set_replaces_key_id(before.key_id());
            next.set_created_by_key_id(p.key_id);
            v1::ApiKey old = before;
            old.set_state(v1::API_KEY_STATE_ROTATING);
            absl::Time until = now + absl::Seconds(grace);
            if (old.has_expires_at()) until = std::min(until, FromProtoTime(old.expires_at()));
            *old.mutable_expires_at() = ToProtoTime(until);
            old.set_replaced_by_key_id(next.key_id());
            RETURN_IF_ERROR(tx.InsertApiKey(next, crypto::ToHex(minted.record.secret_sha256)));
            RETURN_IF_ERROR(tx.UpdateApiKey(old));
            RETURN_IF_ERROR(Audit(tx, p, "RotateApiKey", "api_key", old.key_id(), &before, &old,
                                  r.idempotency_key(), "", now));
            RETURN_IF_ERROR(Audit(tx, p, "RotateApiKey", "api_key", next.key_id(), nullptr, &next,
                                  r.idempotency_key(), "", now));
            *response.mutable_api_key() = std::move(next);
            *response.mutable_previous_api_key() = std::move(old);
            return absl::OkStatus();
          }));
  if (out.api_key().key_id() == minted.record.key_id) out.set_secret(minted.api_key);
  return out;
}

absl::StatusOr<v1::RevokeApiKeyResponse> Settlement::RevokeApiKey(const Principal& p,
                                                                  const v1::RevokeApiKeyRequest& r) {
  RETURN_IF_ERROR(ValidateId("key_id", r.key_id()));
  RETURN_IF_ERROR(ValidateText("reason", r.reason(), 1, 500));
  const absl::Time now = Now();
  return Mutate<v1::RevokeApiKeyResponse>(
      p, "RevokeApiKey", r.idempotency_key(), r, [&](SettlementTx& tx, v1::RevokeApiKeyResponse& out) -> absl::Status {
        ASSIGN_OR_RETURN(std::optional<v1::ApiKey> found, tx.GetApiKey(r.key_id(), true));
        if (!found.has_value()) return absl::NotFoundError(absl::StrCat("key '", r.key_id(), "' not found"));
        if (found->state() == v1::API_KEY_STATE_REVOKED) return absl::FailedPreconditionError("key already revoked");
        v1::ApiKey after = *found;
        after.set_state(v1::API_KEY_STATE_REVOKED);
        *after.mutable_revoked_at() = ToProtoTime(now);
        RETURN_IF_ERROR(tx.UpdateApiKey(after));
        RETURN_IF_ERROR(Audit(tx, p, "RevokeApiKey", "api_key", after.key_id(), &*found, &after, r.idempotency_key(),
                              r.reason(), now));
        *out.mutable_api_key() = std::move(after);
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::ListApiKeysResponse> Settlement::ListApiKeys(const Principal& /*p*/,
                                                                const v1::ListApiKeysRequest& r) {
  if (!r.partner_id().empty()) RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  ASSIGN_OR_RETURN(int page_size, paging::PageSize(r.page_size(), 50, 500));
  const std::string scope = absl::StrCat("keys:", r.partner_id(), ":", r.role(), ":", r.include_inactive());
  int64_t before_id = 0;
  if (!r.page_token().empty()) {
    ASSIGN_OR_RETURN(before_id, paging::DecodePageToken(r.page_token(), scope));
  }
  const absl::Time now = Now();
  v1::ListApiKeysResponse out;
  RETURN_IF_ERROR(store_.Run("ListApiKeys", [&](SettlementTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(auto rows, tx.ListApiKeys(r.partner_id(), before_id, page_size + 1));
    const bool more = static_cast<int>(rows.size()) > page_size;
    if (more) rows.pop_back();
    for (auto& [id, k] : rows) {
      v1::ApiKey key = Effective(std::move(k), now);
      if (r.role() != common::v1::ROLE_UNSPECIFIED && key.role() != r.role()) continue;
      if (!r.include_inactive() && !Usable(key)) continue;
      *out.add_api_keys() = std::move(key);
    }
    if (more) out.set_next_page_token(paging::EncodePageToken(scope, rows.back().first));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::AuthenticateApiKeyResponse> Settlement::AuthenticateApiKey(
    const Principal& /*p*/, const v1::AuthenticateApiKeyRequest& r) {
  bool hex = r.key_hash().size() == 64;
  for (char c : r.key_hash()) hex = hex && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  if (!hex) return Invalid("key_hash", "64 lower-case hex characters");
  const absl::Time now = Now();
  v1::AuthenticateApiKeyResponse out;
  RETURN_IF_ERROR(store_.Run("AuthenticateApiKey", [&](SettlementTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(std::optional<v1::ApiKey> found, tx.FindApiKeyByHash(r.key_hash()));
    // Unknown, revoked and expired keys look the same to the caller.
    if (!found.has_value() || !Usable(Effective(*found, now))) return absl::NotFoundError("unknown key");
    out.set_key_id(found->key_id());
    out.set_role(found->role());
    out.set_partner_id(found->partner_id());
    if (found->has_expires_at()) *out.mutable_expires_at() = found->expires_at();
    out.set_cache_ttl_seconds(kAuthCacheTtlSeconds);
    if (found->role() == common::v1::ROLE_PARTNER) {
      ASSIGN_OR_RETURN(v1::Partner partner, LoadPartner(tx, found->partner_id(), false));
      out.set_partner_status(partner.status());
      out.set_rate_limit_per_second(partner.rate_limit_per_second());
      out.set_rate_limit_burst(partner.rate_limit_burst());
    }
    return absl::OkStatus();
  }));
  return out;
}

// ---- periods ----------------------------------------------------------------------

absl::StatusOr<v1::CreatePeriodResponse> Settlement::CreatePeriod(const Principal& p,
                                                                  const v1::CreatePeriodRequest& r) {
  RETURN_IF_ERROR(ValidateText("name", r.name(), 1, 32));
  if (!r.has_start_time()) return Invalid("start_time", "required");
  if (!r.has_end_time()) return Invalid("end_time", "required");
  const absl::Time start = FromProtoTime(r.start_time());
  const absl::Time end = FromProtoTime(r.end_time());
  if (end <= start) return Invalid("end_time", "must be after start_time");
  const absl::Time now = Now();
  return Mutate<v1::CreatePeriodResponse>(
      p, "CreatePeriod", r.idempotency_key(), r, [&](SettlementTx& tx, v1::CreatePeriodResponse& out) {
        ASSIGN_OR_RETURN(std::vector<v1::Period> periods, tx.ListPeriods(kMaxPeriods));
        for (const v1::Period& other : periods) {
          if (start < FromProtoTime(other.end_time()) && FromProtoTime(other.start_time()) < end) {
            return absl::FailedPreconditionError(absl::StrCat("overlaps period '", other.name(), "'"));
          }
        }
        v1::Period period;
        period.set_period_id(NewId("pe"));
        period.set_name(r.name());
        *period.mutable_start_time() = ToProtoTime(start);
        *period.mutable_end_time() = ToProtoTime(end);
        period.set_status(v1::PERIOD_STATUS_OPEN);
        *period.mutable_created_at() = ToProtoTime(now);
        RETURN_IF_ERROR(tx.InsertPeriod(period));
        RETURN_IF_ERROR(Audit(tx, p, "CreatePeriod", "period", period.period_id(), nullptr, &period,
                              r.idempotency_key(), "", now));
        *out.mutable_period() = std::move(period);
        return absl::OkStatus();
      });
}

absl::Status Settlement::StartClose(const Principal& p, const v1::Period& period, int64_t requested_cutoff) {
  const absl::Time now = Now();
  const absl::Time start = FromProtoTime(period.start_time());
  const absl::Time end = FromProtoTime(period.end_time());
  if (end > now) return absl::FailedPreconditionError("period has not ended yet");
  if (requested_cutoff < 0) return Invalid("cutoff_sequence", "must be >= 0");
  // The previous cut-off: the latest among earlier periods, all closed.
  int64_t previous_cutoff = 0;
  std::string previous_hash;
  RETURN_IF_ERROR(store_.Run("ClosePeriod.previous", [&](SettlementTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<v1::Period> periods, tx.ListPeriods(kMaxPeriods));
    for (const v1::Period& other : periods) {
      if (FromProtoTime(other.start_time()) >= start) continue;
      if (other.status() != v1::PERIOD_STATUS_CLOSED && other.status() != v1::PERIOD_STATUS_FINAL) {
        return absl::FailedPreconditionError(absl::StrCat("earlier period '", other.name(), "' is still open"));
      }
      if (other.cutoff_sequence() >= previous_cutoff) {
        previous_cutoff = other.cutoff_sequence();
        previous_hash = other.end_hash();
      }
    }
    return absl::OkStatus();
  }));
  ASSIGN_OR_RETURN(JournalPage probe, ledger_.ReadJournal(previous_cutoff, 0, 1));
  const int64_t head = probe.head_sequence;
  int64_t cutoff = requested_cutoff;
  if (cutoff != 0 && cutoff < previous_cutoff) {
    return Invalid("cutoff_sequence", absl::StrCat("below the previous period's cut-off ", previous_cutoff));
  }
  if (cutoff > head) return Invalid("cutoff_sequence", absl::StrCat("beyond the ledger head ", head));
  if (cutoff == 0) {
    // The last transfer committed before end_time.
    cutoff = previous_cutoff;
    for (int pages = 0; cutoff < head && pages < kMaxClosePages; ++pages) {
      ASSIGN_OR_RETURN(JournalPage page, ledger_.ReadJournal(cutoff, head, kMaxJournalPageSize));
      if (page.transfers.empty()) break;
      bool past_end = false;
      for (const auto& t : page.transfers) {
        if (FromProtoTime(t.created_at()) >= end) {
          past_end = true;
          break;
        }
        cutoff = t.sequence();
      }
      if (past_end) break;
    }
  }
  return store_.Run("ClosePeriod.start", [&](SettlementTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(v1::Period before, LoadPeriod(tx, period.period_id(), true));
    if (before.status() != v1::PERIOD_STATUS_OPEN) return absl::OkStatus();  // a concurrent close started it
    v1::Period after = before;
    after.set_status(v1::PERIOD_STATUS_CLOSING);
    after.set_first_sequence(previous_cutoff + 1);
    after.set_cutoff_sequence(cutoff);
    after.set_processed_sequence(previous_cutoff);
    after.set_end_hash(previous_hash);
    RETURN_IF_ERROR(tx.UpdatePeriod(after));
    return Audit(tx, p, "ClosePeriod", "period", after.period_id(), &before, &after, "", "close started", now);
  });
}

absl::Status Settlement::CountJournal(const Principal& p, const std::string& period_id, int64_t requested_cutoff) {
  std::optional<v1::Period> period;
  RETURN_IF_ERROR(store_.Run("ClosePeriod.load", [&](SettlementTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(period, tx.GetPeriod(period_id, false));
    return absl::OkStatus();
  }));
  if (!period.has_value()) return PeriodNotFound(period_id);
  if (period->status() == v1::PERIOD_STATUS_OPEN) {
    RETURN_IF_ERROR(StartClose(p, *period, requested_cutoff));
  } else if (period->status() != v1::PERIOD_STATUS_CLOSING) {
    return absl::OkStatus();  // the closing transaction answers
  }
  std::map<std::string, ContractHistory> contracts;  // immutable versions, cached for the close
  for (int pages = 0; pages < kMaxClosePages; ++pages) {
    RETURN_IF_ERROR(store_.Run("ClosePeriod.load", [&](SettlementTx& tx) -> absl::Status {
      ASSIGN_OR_RETURN(period, tx.GetPeriod(period_id, false));
      return absl::OkStatus();
    }));
    if (period->status() != v1::PERIOD_STATUS_CLOSING) return absl::OkStatus();
    if (requested_cutoff != 0 && requested_cutoff != period->cutoff_sequence()) {
      return absl::FailedPreconditionError(
          absl::StrCat("a close with cutoff_sequence ", period->cutoff_sequence(), " is in progress"));
    }
    const int64_t after = period->processed_sequence();
    if (after >= period->cutoff_sequence()) return absl::OkStatus();
    ASSIGN_OR_RETURN(JournalPage page, ledger_.ReadJournal(after, period->cutoff_sequence(),
                                                           std::clamp(options_.close_page_size, 1, kMaxJournalPageSize)));
    if (page.transfers.empty() || page.transfers.front().sequence() != after + 1) {
      return absl::InternalError(absl::StrCat("the ledger journal has a gap after sequence ", after));
    }
    std::vector<PointsCount> points;
    std::vector<MatrixCount> matrix;
    RETURN_IF_ERROR(store_.Run("ClosePeriod.page", [&](SettlementTx& tx) -> absl::Status {
      points.clear();
      matrix.clear();
      for (const auto& t : page.transfers) {
        if (!t.partner_id().empty() && !contracts.contains(t.partner_id())) {
          ASSIGN_OR_RETURN(contracts[t.partner_id()], tx.ListContracts(t.partner_id()));
        }
        CountTransfer(t, contracts, points, matrix);
      }
      // The cursor and the counts move together, or not at all.
      ASSIGN_OR_RETURN(v1::Period locked, LoadPeriod(tx, period_id, true));
      if (locked.status() != v1::PERIOD_STATUS_CLOSING || locked.processed_sequence() != after) {
        return absl::OkStatus();  // another close counted this page; re-read
      }
      RETURN_IF_ERROR(tx.AddPoints(period_id, MergePoints(std::move(points))));
      RETURN_IF_ERROR(tx.AddMatrix(period_id, MergeMatrix(std::move(matrix))));
      locked.set_processed_sequence(page.transfers.back().sequence());
      locked.set_end_hash(page.transfers.back().hash());
      return tx.UpdatePeriod(locked);
    }));
  }
  return absl::InternalError("close did not finish within its page bound");
}

absl::StatusOr<v1::ClosePeriodResponse> Settlement::ClosePeriod(const Principal& p, const v1::ClosePeriodRequest& r) {
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  RETURN_IF_ERROR(ValidateId("period_id", r.period_id()));
  if (r.cutoff_sequence() < 0) return Invalid("cutoff_sequence", "must be >= 0");
  // Counting is idempotent by the period's own cursor, so it runs before the
  // key is claimed; transient failures (ledger down) return at once and a
  // retry resumes. A business refusal is remembered under the key.
  absl::Status counted = CountJournal(p, r.period_id(), r.cutoff_sequence());
  if (!counted.ok() && !ShouldRemember(counted)) return counted;
  const absl::Time now = Now();
  return Mutate<v1::ClosePeriodResponse>(
      p, "ClosePeriod", r.idempotency_key(), r, [&](SettlementTx& tx, v1::ClosePeriodResponse& out) -> absl::Status {
        RETURN_IF_ERROR(counted);
        ASSIGN_OR_RETURN(v1::Period before, LoadPeriod(tx, r.period_id(), true));
        if (before.status() != v1::PERIOD_STATUS_CLOSING) {
          return absl::FailedPreconditionError(
              absl::StrCat("period is ", v1::PeriodStatus_Name(before.status()), ", not closable"));
        }
        if (before.processed_sequence() != before.cutoff_sequence()) {
          return absl::AbortedError("close still counting; retry");
        }
        ASSIGN_OR_RETURN(std::vector<PointsCount> points, tx.ListPoints(r.period_id()));
        ASSIGN_OR_RETURN(std::vector<MatrixCount> matrix, tx.ListMatrix(r.period_id()));
        // Statement per partner with activity, or with a contract in force
        // during the period (the fee).
        std::map<std::string, StatementInput> inputs;
        for (auto& row : points) inputs[row.partner_id].points.push_back(row);
        // Adjustments of accepted disputes that this period carries.
        ASSIGN_OR_RETURN(std::vector<v1::Dispute> adjustments,
                         tx.ListAdjustments(r.period_id(), kMaxStatementsPerPeriod));
        for (auto& d : adjustments) inputs[d.partner_id()].adjustments.push_back(std::move(d));
        const absl::Time end = FromProtoTime(before.end_time());
        std::string after_id;
        for (;;) {
          ASSIGN_OR_RETURN(std::vector<v1::Partner> partners, tx.ListPartners(after_id, 500));
          for (const auto& partner : partners) {
            if (partner.status() == v1::PARTNER_STATUS_TERMINATED && !inputs.contains(partner.partner_id())) continue;
            ASSIGN_OR_RETURN(ContractHistory history, tx.ListContracts(partner.partner_id()));
            const bool in_force = !history.empty() && FromProtoTime(history.front().effective_from()) < end;
            if (in_force || inputs.contains(partner.partner_id())) {
              StatementInput& in = inputs[partner.partner_id()];
              in.partner = partner;
              in.contracts = std::move(history);
            }
          }
          if (partners.size() < 500) break;
          after_id = partners.back().partner_id();
          if (inputs.size() > static_cast<size_t>(kMaxPartners)) {
            return absl::FailedPreconditionError("too many partners for one close");
          }
        }
        for (const auto& m : matrix) {
          if (auto it = inputs.find(m.redeemer_partner_id); it != inputs.end()) it->second.matrix.push_back(m);
          if (m.issuer_partner_id != m.redeemer_partner_id) {
            if (auto it = inputs.find(m.issuer_partner_id); it != inputs.end()) it->second.matrix.push_back(m);
          }
        }
        // Inserted in reverse partner order, so that newest-first listing
        // shows a period's statements by partner_id.
        int64_t created = 0;
        for (auto it = inputs.rbegin(); it != inputs.rend(); ++it) {
          StatementInput& in = it->second;
          if (in.partner.partner_id().empty()) {
            return absl::FailedPreconditionError(absl::StrCat(
                "the journal names partner '", it->first, "', which is not in the directory; create it and retry"));
          }
          in.period = before;
          in.statement_id = NewId("st");
          in.created_at = now;
          ASSIGN_OR_RETURN(v1::Statement statement, BuildStatement(in));
          RETURN_IF_ERROR(tx.InsertStatement(statement));
          ++created;
        }
        v1::Period after = before;
        after.set_status(v1::PERIOD_STATUS_CLOSED);
        *after.mutable_closed_at() = ToProtoTime(now);
        RETURN_IF_ERROR(tx.UpdatePeriod(after));
        RETURN_IF_ERROR(Audit(tx, p, "ClosePeriod", "period", after.period_id(), &before, &after,
                              r.idempotency_key(), "", now));
        *out.mutable_period() = after;
        out.set_statements_created(created);
        out.set_transfers_processed(std::max<int64_t>(0, after.cutoff_sequence() - after.first_sequence() + 1));
        return absl::OkStatus();
      });
}

absl::StatusOr<std::vector<v1::Statement>> Settlement::PeriodStatements(SettlementTx& tx,
                                                                        const std::string& period_id) {
  StatementFilter filter;
  filter.period_id = period_id;
  ASSIGN_OR_RETURN(auto rows, tx.ListStatements(filter, 0, kMaxStatementsPerPeriod + 1));
  if (static_cast<int>(rows.size()) > kMaxStatementsPerPeriod) {
    return absl::FailedPreconditionError("too many statements in the period");
  }
  std::vector<v1::Statement> out;
  for (auto& [id, s] : rows) out.push_back(std::move(s));
  std::sort(out.begin(), out.end(),
            [](const v1::Statement& a, const v1::Statement& b) { return a.partner_id() < b.partner_id(); });
  return out;
}

absl::StatusOr<v1::FinalizePeriodResponse> Settlement::FinalizePeriod(const Principal& p,
                                                                      const v1::FinalizePeriodRequest& r) {
  RETURN_IF_ERROR(ValidateId("period_id", r.period_id()));
  const absl::Time now = Now();
  return Mutate<v1::FinalizePeriodResponse>(
      p, "FinalizePeriod", r.idempotency_key(), r, [&](SettlementTx& tx, v1::FinalizePeriodResponse& out) {
        ASSIGN_OR_RETURN(v1::Period before, LoadPeriod(tx, r.period_id(), true));
        if (before.status() != v1::PERIOD_STATUS_CLOSED) {
          return absl::FailedPreconditionError(
              absl::StrCat("period is ", v1::PeriodStatus_Name(before.status()), ", not CLOSED"));
        }
        ASSIGN_OR_RETURN(std::vector<v1::Statement> statements, PeriodStatements(tx, r.period_id()));
        for (v1::Statement& s : statements) {
          s.set_status(v1::STATEMENT_STATUS_FINAL);
          *s.mutable_issued_at() = ToProtoTime(now);
          RETURN_IF_ERROR(tx.UpdateStatement(s));
        }
        v1::Period after = before;
        after.set_status(v1::PERIOD_STATUS_FINAL);
        *after.mutable_finalized_at() = ToProtoTime(now);
        RETURN_IF_ERROR(tx.UpdatePeriod(after));
        RETURN_IF_ERROR(Audit(tx, p, "FinalizePeriod", "period", after.period_id(), &before, &after,
                              r.idempotency_key(), "", now));
        *out.mutable_period() = std::move(after);
        out.set_statements_finalized(static_cast<int64_t>(statements.size()));
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::GetPeriodResponse> Settlement::GetPeriod(const Principal& /*p*/, const v1::GetPeriodRequest& r) {
  v1::GetPeriodResponse out;
  RETURN_IF_ERROR(store_.Run("GetPeriod", [&](SettlementTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(*out.mutable_period(), LoadPeriod(tx, r.period_id(), false));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::ListPeriodsResponse> Settlement::ListPeriods(const Principal& /*p*/, const v1::ListPeriodsRequest& r) {
  ASSIGN_OR_RETURN(int page_size, paging::PageSize(r.page_size(), 50, 500));
  std::string scope = "periods";
  for (int s : r.statuses()) absl::StrAppend(&scope, ",", s);
  int64_t skip = 0;
  if (!r.page_token().empty()) {
    ASSIGN_OR_RETURN(skip, paging::DecodePageToken(r.page_token(), scope));
  }
  const std::set<int> statuses(r.statuses().begin(), r.statuses().end());
  v1::ListPeriodsResponse out;
  RETURN_IF_ERROR(store_.Run("ListPeriods", [&](SettlementTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(std::vector<v1::Period> periods, tx.ListPeriods(kMaxPeriods));
    std::reverse(periods.begin(), periods.end());  // newest start first
    std::vector<v1::Period> matching;
    for (auto& period : periods) {
      if (statuses.empty() || statuses.contains(period.status())) matching.push_back(std::move(period));
    }
    int64_t i = skip;
    for (; i < static_cast<int64_t>(matching.size()) && out.periods_size() < page_size; ++i) {
      *out.add_periods() = matching[i];
    }
    if (i < static_cast<int64_t>(matching.size())) out.set_next_page_token(paging::EncodePageToken(scope, i));
    return absl::OkStatus();
  }));
  return out;
}

// ---- statements ---------------------------------------------------------------------

absl::StatusOr<v1::GetStatementResponse> Settlement::GetStatement(const Principal& p,
                                                                  const v1::GetStatementRequest& r) {
  switch (r.selector_case()) {
    case v1::GetStatementRequest::kStatementId:
      RETURN_IF_ERROR(ValidateId("statement_id", r.statement_id()));
      break;
    case v1::GetStatementRequest::kKey:
      RETURN_IF_ERROR(ValidateId("key.period_id", r.key().period_id()));
      RETURN_IF_ERROR(ValidateId("key.partner_id", r.key().partner_id()));
      RETURN_IF_ERROR(OwnPartnerOnly(p, r.key().partner_id(), "statements"));
      break;
    default:
      return Invalid("selector", "statement_id or key");
  }
  v1::GetStatementResponse out;
  RETURN_IF_ERROR(store_.Run("GetStatement", [&](SettlementTx& tx) -> absl::Status {
    std::optional<v1::Statement> s;
    if (r.selector_case() == v1::GetStatementRequest::kStatementId) {
      ASSIGN_OR_RETURN(s, tx.GetStatement(r.statement_id()));
    } else {
      ASSIGN_OR_RETURN(s, tx.GetStatementByKey(r.key().period_id(), r.key().partner_id()));
    }
    if (!s.has_value()) return absl::NotFoundError("statement not found");
    if (p.is_partner()) {
      if (s->partner_id() != p.partner_id) {
        return absl::PermissionDeniedError("a partner may read only its own statements");
      }
      if (s->status() == v1::STATEMENT_STATUS_DRAFT) return absl::NotFoundError("statement not found");
    }
    *out.mutable_statement() = *std::move(s);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::ListStatementsResponse> Settlement::ListStatements(const Principal& p,
                                                                      const v1::ListStatementsRequest& r) {
  if (!r.period_id().empty()) RETURN_IF_ERROR(ValidateId("period_id", r.period_id()));
  if (!r.partner_id().empty()) RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  if (p.is_partner() && r.partner_id() != p.partner_id) {
    return absl::PermissionDeniedError("partner_id: a partner lists only its own statements");
  }
  ASSIGN_OR_RETURN(int page_size, paging::PageSize(r.page_size(), 50, 500));
  std::string scope = absl::StrCat("statements:", r.period_id(), ":", r.partner_id());
  for (int s : r.statuses()) absl::StrAppend(&scope, ",", s);
  int64_t before_id = 0;
  if (!r.page_token().empty()) {
    ASSIGN_OR_RETURN(before_id, paging::DecodePageToken(r.page_token(), scope));
  }
  const std::set<int> statuses(r.statuses().begin(), r.statuses().end());
  v1::ListStatementsResponse out;
  RETURN_IF_ERROR(store_.Run("ListStatements", [&](SettlementTx& tx) -> absl::Status {
    out.Clear();
    StatementFilter filter{r.period_id(), r.partner_id()};
    ASSIGN_OR_RETURN(auto rows, tx.ListStatements(filter, before_id, page_size + 1));
    const bool more = static_cast<int>(rows.size()) > page_size;
    if (more) rows.pop_back();
    for (auto& [id, s] : rows) {
      if (p.is_partner() && s.status() == v1::STATEMENT_STATUS_DRAFT) continue;
      if (!statuses.empty() && !statuses.contains(s.status())) continue;
      s.clear_lines();
      s.clear_issuer_redeemer();
      *out.add_statements() = std::move(s);
    }
    if (more) out.set_next_page_token(paging::EncodePageToken(scope, rows.back().first));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::ComputeNettingResponse> Settlement::ComputeNetting(const Principal& /*p*/,
                                                                      const v1::ComputeNettingRequest& r) {
  std::vector<v1::Statement> statements;
  RETURN_IF_ERROR(store_.Run("ComputeNetting", [&](SettlementTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(v1::Period period, LoadPeriod(tx, r.period_id(), false));
    if (period.status() != v1::PERIOD_STATUS_CLOSED && period.status() != v1::PERIOD_STATUS_FINAL) {
      return absl::FailedPreconditionError("period is not CLOSED or FINAL");
    }
    ASSIGN_OR_RETURN(statements, PeriodStatements(tx, r.period_id()));
    return absl::OkStatus();
  }));
  ASSIGN_OR_RETURN(std::vector<v1::NettingResult> results, settlement::ComputeNetting(statements));
  v1::ComputeNettingResponse out;
  for (auto& result : results) *out.add_results() = std::move(result);
  return out;
}

absl::StatusOr<v1::ExportPeriodResponse> Settlement::ExportPeriod(const Principal& /*p*/,
                                                                  const v1::ExportPeriodRequest& r) {
  if (r.format() != v1::EXPORT_FORMAT_CSV && r.format() != v1::EXPORT_FORMAT_JSON) {
    return Invalid("format", "CSV or JSON");
  }
  v1::Period period;
  std::vector<v1::Statement> statements;
  RETURN_IF_ERROR(store_.Run("ExportPeriod", [&](SettlementTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(period, LoadPeriod(tx, r.period_id(), false));
    if (period.status() != v1::PERIOD_STATUS_FINAL) return absl::FailedPreconditionError("period is not FINAL");
    ASSIGN_OR_RETURN(statements, PeriodStatements(tx, r.period_id()));
    return absl::OkStatus();
  }));
  ASSIGN_OR_RETURN(std::vector<v1::NettingResult> netting, settlement::ComputeNetting(statements));
  ASSIGN_OR_RETURN(std::vector<v1::ExportFile> files, ExportFiles(period, statements, netting, r.format()));
  v1::ExportPeriodResponse out;
  for (auto& f : files) *out.add_files() = std::move(f);
  return out;
}

// ---- disputes ---------------------------------------------------------------------------

namespace {

constexpr int kMaxDisputesPerStatement = 1'000;

// The status a statement takes from its disputes: DISPUTED while one is
// open, ADJUSTED once one was accepted, FINAL otherwise.
v1::StatementStatus StatusFromDisputes(const std::vector<v1::Dispute>& disputes) {
  bool accepted = false;
  for (const auto& d : disputes) {
    if (d.status() == v1::DISPUTE_STATUS_OPEN) return v1::STATEMENT_STATUS_DISPUTED;
    if (d.status() == v1::DISPUTE_STATUS_ACCEPTED) accepted = true;
  }
  return accepted ? v1::STATEMENT_STATUS_ADJUSTED : v1::STATEMENT_STATUS_FINAL;
}

}  // namespace

absl::StatusOr<v1::DisputeStatementLineResponse> Settlement::DisputeStatementLine(
    const Principal& p, const v1::DisputeStatementLineRequest& r) {
  RETURN_IF_ERROR(ValidateId("statement_id", r.statement_id()));
  RETURN_IF_ERROR(ValidateId("line_id", r.line_id()));
  RETURN_IF_ERROR(ValidateText("reason", r.reason(), 1, 2000));
  const absl::Time now = Now();
  return Mutate<v1::DisputeStatementLineResponse>(
      p, "DisputeStatementLine", r.idempotency_key(), r,
      [&](SettlementTx& tx, v1::DisputeStatementLineResponse& out) -> absl::Status {
        ASSIGN_OR_RETURN(std::optional<v1::Statement> statement, tx.GetStatement(r.statement_id()));
        if (!statement.has_value() || (p.is_partner() && statement->status() == v1::STATEMENT_STATUS_DRAFT &&
                                       statement->partner_id() == p.partner_id)) {
          return absl::NotFoundError("statement not found");
        }
        if (p.is_partner() && statement->partner_id() != p.partner_id) {
          return absl::PermissionDeniedError("a partner may dispute only its own statements");
        }
        if (r.has_disputed_amount() && r.disputed_amount().currency() != statement->currency()) {
          return Invalid("disputed_amount.currency", absl::StrCat("must be the statement currency ",
                                                                  statement->currency()));
        }
        if (statement->status() == v1::STATEMENT_STATUS_DRAFT) {
          return absl::FailedPreconditionError("statement is not finalised");
        }
        v1::StatementLine* line = nullptr;
        for (auto& l : *statement->mutable_lines()) {
          if (l.line_id() == r.line_id()) line = &l;
        }
        if (line == nullptr) return absl::NotFoundError(absl::StrCat("line '", r.line_id(), "' not found"));
        ASSIGN_OR_RETURN(std::vector<v1::Dispute> disputes,
                         tx.ListStatementDisputes(statement->statement_id(), kMaxDisputesPerStatement));
        for (const auto& d : disputes) {
          if (d.line_id() == r.line_id() && d.status() == v1::DISPUTE_STATUS_OPEN) {
            return absl::FailedPreconditionError(
                absl::StrCat("line '", r.line_id(), "' already has open dispute ", d.dispute_id()));
          }
        }
        v1::Dispute d;
        d.set_dispute_id(NewId("di"));
        d.set_statement_id(statement->statement_id());
        d.set_line_id(r.line_id());
        d.set_partner_id(statement->partner_id());
        d.set_period_id(statement->period_id());
        d.set_reason(r.reason());
        if (r.has_disputed_amount()) *d.mutable_disputed_amount() = r.disputed_amount();
        d.set_status(v1::DISPUTE_STATUS_OPEN);
        *d.mutable_opened_at() = ToProtoTime(now);
        RETURN_IF_ERROR(tx.InsertDispute(d));
        // Amounts are never edited: only the status and the line's dispute
        // reference change.
        const v1::Statement before = *statement;
        line->set_dispute_id(d.dispute_id());
        statement->set_status(v1::STATEMENT_STATUS_DISPUTED);
        RETURN_IF_ERROR(tx.UpdateStatement(*statement));
        RETURN_IF_ERROR(Audit(tx, p, "DisputeStatementLine", "dispute", d.dispute_id(), nullptr, &d,
                              r.idempotency_key(), r.reason(), now));
        RETURN_IF_ERROR(Audit(tx, p, "DisputeStatementLine", "statement", statement->statement_id(), &before,
                              &*statement, r.idempotency_key(), r.reason(), now));
        *out.mutable_dispute() = std::move(d);
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::ResolveDisputeResponse> Settlement::ResolveDispute(const Principal& p,
                                                                      const v1::ResolveDisputeRequest& r) {
  RETURN_IF_ERROR(ValidateId("dispute_id", r.dispute_id()));
  const bool accepted = r.resolution() == v1::DISPUTE_STATUS_ACCEPTED;
  if (!accepted && r.resolution() != v1::DISPUTE_STATUS_REJECTED) return Invalid("resolution", "ACCEPTED or REJECTED");
  if (accepted && !r.has_adjustment()) return Invalid("adjustment", "required when ACCEPTED");
  if (!accepted && r.has_adjustment()) return Invalid("adjustment", "only when ACCEPTED");
  RETURN_IF_ERROR(ValidateText("resolution_note", r.resolution_note(), 1, 2000));
  const absl::Time now = Now();
  return Mutate<v1::ResolveDisputeResponse>(
      p, "ResolveDispute", r.idempotency_key(), r,
      [&](SettlementTx& tx, v1::ResolveDisputeResponse& out) -> absl::Status {
        ASSIGN_OR_RETURN(std::optional<v1::Dispute> found, tx.GetDispute(r.dispute_id(), true));
        if (!found.has_value()) return absl::NotFoundError(absl::StrCat("dispute '", r.dispute_id(), "' not found"));
        ASSIGN_OR_RETURN(std::optional<v1::Statement> statement, tx.GetStatement(found->statement_id()));
        if (!statement.has_value()) return absl::InternalError("dispute without its statement");
        if (accepted && r.adjustment().currency() != statement->currency()) {
          return Invalid("adjustment.currency", absl::StrCat("must be the statement currency ", statement->currency()));
        }
        if (found->status() != v1::DISPUTE_STATUS_OPEN) {
          return absl::FailedPreconditionError(
              absl::StrCat("dispute is ", v1::DisputeStatus_Name(found->status()), ", not OPEN"));
        }
        v1::Dispute d = *found;
        d.set_status(r.resolution());
        *d.mutable_resolved_at() = ToProtoTime(now);
        d.set_resolution_note(r.resolution_note());
        if (accepted) {
          // The next open period carries the adjustment.
          ASSIGN_OR_RETURN(std::vector<v1::Period> periods, tx.ListPeriods(kMaxPeriods));
          for (const v1::Period& period : periods) {
            if (period.status() == v1::PERIOD_STATUS_OPEN) {
              d.set_adjustment_period_id(period.period_id());
              break;
            }
          }
          if (d.adjustment_period_id().empty()) {
            return absl::FailedPreconditionError("no open period to carry the adjustment; create one first");
          }
          *d.mutable_adjustment() = r.adjustment();
        }
        RETURN_IF_ERROR(tx.UpdateDispute(d));
        ASSIGN_OR_RETURN(std::vector<v1::Dispute> disputes,
                         tx.ListStatementDisputes(statement->statement_id(), kMaxDisputesPerStatement));
        for (auto& other : disputes) {
          if (other.dispute_id() == d.dispute_id()) other = d;
        }
        const v1::Statement before = *statement;
        statement->set_status(StatusFromDisputes(disputes));
        RETURN_IF_ERROR(tx.UpdateStatement(*statement));
        RETURN_IF_ERROR(Audit(tx, p, "ResolveDispute", "dispute", d.dispute_id(), &*found, &d, r.idempotency_key(),
                              r.resolution_note(), now));
        RETURN_IF_ERROR(Audit(tx, p, "ResolveDispute", "statement", statement->statement_id(), &before, &*statement,
                              r.idempotency_key(), r.resolution_note(), now));
        *out.mutable_dispute() = std::move(d);
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::ListDisputesResponse> Settlement::ListDisputes(const Principal& p,
                                                                  const v1::ListDisputesRequest& r) {
  if (!r.partner_id().empty()) RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  if (p.is_partner() && r.partner_id() != p.partner_id) {
    return absl::PermissionDeniedError("partner_id: a partner lists only its own disputes");
  }
  ASSIGN_OR_RETURN(int page_size, paging::PageSize(r.page_size(), 50, 500));
  std::string scope = absl::StrCat("disputes:", r.partner_id(), ":", r.period_id());
  for (int st : r.statuses()) absl::StrAppend(&scope, ",", st);
  int64_t before_id = 0;
  if (!r.page_token().empty()) {
    ASSIGN_OR_RETURN(before_id, paging::DecodePageToken(r.page_token(), scope));
  }
  const std::set<int> statuses(r.statuses().begin(), r.statuses().end());
  v1::ListDisputesResponse out;
  RETURN_IF_ERROR(store_.Run("ListDisputes", [&](SettlementTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(auto rows, tx.ListDisputes(r.partner_id(), before_id, page_size + 1));
    const bool more = static_cast<int>(rows.size()) > page_size;
    if (more) rows.pop_back();
    for (auto& [id, d] : rows) {
      if (!r.period_id().empty() && d.period_id() != r.period_id()) continue;
      if (!statuses.empty() && !statuses.contains(d.status())) continue;
      *out.add_disputes() = std::move(d);
    }
    if (more) out.set_next_page_token(paging::EncodePageToken(scope, rows.back().first));
    return absl::OkStatus();
  }));
  return out;
}

// ---- reconciliation ---------------------------------------------------------------------

absl::StatusOr<v1::ReconcileResponse> Settlement::Reconcile(const Principal& /*p*/, const v1::ReconcileRequest& r) {
  v1::Period period;
  std::vector<v1::Statement> statements;
  RETURN_IF_ERROR(store_.Run("Reconcile", [&](SettlementTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(period, LoadPeriod(tx, r.period_id(), false));
    if (period.status() != v1::PERIOD_STATUS_CLOSED && period.status() != v1::PERIOD_STATUS_FINAL) {
      return absl::FailedPreconditionError("period is not CLOSED or FINAL");
    }
    ASSIGN_OR_RETURN(statements, PeriodStatements(tx, r.period_id()));
    return absl::OkStatus();
  }));
  v1::ReconcileResponse out;
  out.set_period_id(period.period_id());
  *out.mutable_generated_at() = ToProtoTime(Now());
  out.set_first_sequence(period.first_sequence());
  out.set_last_sequence(period.cutoff_sequence());
  auto mismatch = [&](v1::ReconciliationCheck check) {
    v1::ReconciliationMismatch* m = out.add_mismatches();
    m->set_check(check);
    return m;
  };
  auto result = [&](v1::ReconciliationCheck check, int64_t items, int64_t before) {
    v1::ReconciliationCheckResult* c = out.add_checks();
    c->set_check(check);
    c->set_items_checked(items);
    c->set_mismatch_count(out.mismatches_size() - before);
  };

  // 1. Statement totals against the ledger's transfers in the range, per
  //    partner and transfer code (points; every priced line comes from them).
  {
    const int before = out.mismatches_size();
    std::map<std::pair<std::string, int>, int64_t> expected, actual;
    for (const auto& s : statements) {
      for (const auto& l : s.lines()) {
        if (l.transfer_code() != lv1::TRANSFER_CODE_UNSPECIFIED) {
          expected[{s.partner_id(), l.transfer_code()}] += l.points();
        }
      }
    }
    const std::map<std::string, ContractHistory> no_contracts;  // pricing is not compared here
    int64_t after = period.first_sequence() - 1;
    while (after < period.cutoff_sequence()) {
      ASSIGN_OR_RETURN(JournalPage page, ledger_.ReadJournal(after, period.cutoff_sequence(), kMaxJournalPageSize));
      if (page.transfers.empty()) return absl::InternalError("the ledger journal ended before the cut-off");
      std::vector<PointsCount> points;
      std::vector<MatrixCount> matrix;
      for (const auto& t : page.transfers) CountTransfer(t, no_contracts, points, matrix);
      for (const auto& row : points) actual[{row.partner_id, row.transfer_code}] += row.points;
      after = page.transfers.back().sequence();
    }
    std::set<std::pair<std::string, int>> keys;
    for (const auto& [k, v] : expected) keys.insert(k);
    for (const auto& [k, v] : actual) keys.insert(k);
    for (const auto& key : keys) {
      const int64_t want = expected[key], got = actual[key];
      if (want == got) continue;
      v1::ReconciliationMismatch* m = mismatch(v1::RECONCILIATION_CHECK_STATEMENT_TOTALS);
      m->set_partner_id(key.first);
      m->set_transfer_code(static_cast<lv1::TransferCode>(key.second));
      m->set_expected_points(want);
      m->set_actual_points(got);
      m->set_difference_points(got - want);
      m->set_detail(absl::StrCat("statement counts ", want, " points of ",
                                 lv1::TransferCode_Name(static_cast<lv1::TransferCode>(key.second)), " for '",
                                 key.first, "'; the ledger has ", got));
    }
    result(v1::RECONCILIATION_CHECK_STATEMENT_TOTALS, static_cast<int64_t>(keys.size()), before);
  }

  // 2. The hash chain over the range, ending at the statements' end hash.
  {
    const int before = out.mismatches_size();
    int64_t items = 0;
    if (period.cutoff_sequence() >= period.first_sequence()) {
      items = period.cutoff_sequence() - period.first_sequence() + 1;
      ASSIGN_OR_RETURN(lv1::VerifyChainResponse chain,
                       ledger_.VerifyChain(period.first_sequence(), period.cutoff_sequence()));
      if (chain.first_bad_sequence() != 0) {
        v1::ReconciliationMismatch* m = mismatch(v1::RECONCILIATION_CHECK_HASH_CHAIN);
        m->set_sequence(chain.first_bad_sequence());
        m->set_detail(absl::StrCat("chain breaks at sequence ", chain.first_bad_sequence(), ": ", chain.detail()));
      } else if (chain.last_hash() != period.end_hash()) {
        v1::ReconciliationMismatch* m = mismatch(v1::RECONCILIATION_CHECK_HASH_CHAIN);
        m->set_sequence(period.cutoff_sequence());
        m->set_detail(absl::StrCat("hash at the cut-off is ", chain.last_hash(), ", the statements name ",
                                   period.end_hash()));
      }
    }
    result(v1::RECONCILIATION_CHECK_HASH_CHAIN, items, before);
  }

  // 3. Prepaid blocks: each balance's purchases equal its blocks, and its
  //    issuance equals the ledger's, recounted from the start of the journal
  //    up to the follower's cursor.
  {
    const int before = out.mismatches_size();
    std::vector<PrepaidRow> rows;
    std::map<std::string, int64_t> blocks;
    std::map<std::string, ContractHistory> contracts;
    int64_t as_of = 0;
    RETURN_IF_ERROR(store_.Run("Reconcile.prepaid", [&](SettlementTx& tx) -> absl::Status {
      blocks.clear();
      contracts.clear();
      ASSIGN_OR_RETURN(rows, tx.ListPrepaid(kMaxPrepaidPartners));
      ASSIGN_OR_RETURN(as_of, tx.GetCursor(kPrepaidCursor, false));
      for (const auto& row : rows) {
        ASSIGN_OR_RETURN(std::vector<v1::PointBlock> list, tx.ListPointBlocks(row.partner_id, kMaxBlocksPerPartner));
        for (const auto& b : list) blocks[row.partner_id] += b.points();
      }
      ASSIGN_OR_RETURN(std::vector<v1::Partner> partners, tx.ListPartners("", kMaxPartners));
      for (const auto& partner : partners) {
        ASSIGN_OR_RETURN(contracts[partner.partner_id()], tx.ListContracts(partner.partner_id()));
      }
      return absl::OkStatus();
    }));
    std::map<std::string, int64_t> issued;
    for (int64_t after = 0; after < as_of;) {
      ASSIGN_OR_RETURN(JournalPage page, ledger_.ReadJournal(after, as_of, kMaxJournalPageSize));
      if (page.transfers.empty()) return absl::InternalError("the ledger journal ended before the prepaid cursor");
      for (const auto& [partner_id, delta] : PrepaidIssuance(page.transfers, contracts)) issued[partner_id] += delta;
      after = page.transfers.back().sequence();
    }
    for (const auto& row : rows) {
      const std::pair<int64_t, int64_t> pairs[] = {{row.purchased_points, blocks[row.partner_id]},
                                                   {row.issued_points, issued[row.partner_id]}};
      for (int i = 0; i < 2; ++i) {
        if (pairs[i].first == pairs[i].second) continue;
        v1::ReconciliationMismatch* m = mismatch(v1::RECONCILIATION_CHECK_PREPAID_BLOCKS);
        m->set_partner_id(row.partner_id);
        m->set_expected_points(pairs[i].first);
        m->set_actual_points(pairs[i].second);
        m->set_difference_points(pairs[i].second - pairs[i].first);
        m->set_sequence(as_of);
        m->set_detail(i == 0 ? "purchased points differ from the sum of the blocks"
                             : "issued points differ from the ledger's prepaid issuance");
      }
    }
    result(v1::RECONCILIATION_CHECK_PREPAID_BLOCKS, static_cast<int64_t>(rows.size()), before);
  }

  // 4. Points liability: member balances = open lots = the issuers' sum.
  //    The ledger answers as of its head, not as of the cut-off.
  {
    const int before = out.mismatches_size();
    ASSIGN_OR_RETURN(lv1::GetPointsLiabilityResponse liability, ledger_.GetPointsLiability());
    int64_t by_issuer = 0;
    for (const auto& i : liability.issuers()) by_issuer += i.outstanding_points();
    if (liability.member_balance_points() != liability.lot_remaining_points()) {
      v1::ReconciliationMismatch* m = mismatch(v1::RECONCILIATION_CHECK_POINTS_LIABILITY);
      m->set_expected_points(liability.member_balance_points());
      m->set_actual_points(liability.lot_remaining_points());
      m->set_difference_points(liability.lot_remaining_points() - liability.member_balance_points());
      m->set_detail("open lots do not add up to member balances");
    }
    if (by_issuer != liability.lot_remaining_points()) {
      v1::ReconciliationMismatch* m = mismatch(v1::RECONCILIATION_CHECK_POINTS_LIABILITY);
      m->set_expected_points(liability.lot_remaining_points());
      m->set_actual_points(by_issuer);
      m->set_difference_points(by_issuer - liability.lot_remaining_points());
      m->set_detail("issuer attribution does not add up to open lots");
    }
    result(v1::RECONCILIATION_CHECK_POINTS_LIABILITY, liability.issuers_size() + 1, before);
  }
  if (out.mismatches_size() > 0) {
    log::Warn("reconciliation_mismatch", {{"period_id", period.period_id()}, {"mismatches", out.mismatches_size()}});
    v1::Alert alert;
    alert.set_alert_id(NewId("al"));
    alert.set_kind(v1::ALERT_KIND_RECONCILIATION_MISMATCH);
    alert.set_period_id(period.period_id());
    alert.set_message(absl::StrCat("reconciliation of period '", period.name(), "' found ", out.mismatches_size(),
                                   " mismatches"));
    *alert.mutable_created_at() = out.generated_at();
    RETURN_IF_ERROR(store_.Run("Reconcile.alert", [&](SettlementTx& tx) { return tx.InsertAlert(alert); }));
  }
  return out;
}

absl::StatusOr<v1::ListAuditEventsResponse> Settlement::ListAuditEvents(const Principal& /*p*/,
                                                                        const v1::ListAuditEventsRequest& r) {
  ASSIGN_OR_RETURN(int page_size, paging::PageSize(r.page_size(), 100, 1000));
  AuditFilter filter;
  filter.entity_type = r.entity_type();
  filter.entity_id = r.entity_id();
  filter.actor_key_id = r.actor_key_id();
  if (r.has_start_time()) filter.start = FromProtoTime(r.start_time());
  if (r.has_end_time()) filter.end = FromProtoTime(r.end_time());
  if (filter.start.has_value() && filter.end.has_value() && *filter.end < *filter.start) {
    return Invalid("end_time", "before start_time");
  }
  const std::string scope = absl::StrCat("audit:", r.entity_type(), ":", r.entity_id(), ":", r.actor_key_id(), ":",
                                         r.start_time().seconds(), ":", r.end_time().seconds());
  int64_t before_id = 0;
  if (!r.page_token().empty()) {
    ASSIGN_OR_RETURN(before_id, paging::DecodePageToken(r.page_token(), scope));
  }
  v1::ListAuditEventsResponse out;
  RETURN_IF_ERROR(store_.Run("ListAuditEvents", [&](SettlementTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(auto rows, tx.ListAudit(filter, before_id, page_size + 1));
    const bool more = static_cast<int>(rows.size()) > page_size;
    if (more) rows.pop_back();
    for (auto& [id, e] : rows) *out.add_events() = std::move(e);
    if (more) out.set_next_page_token(paging::EncodePageToken(scope, rows.back().first));
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace loyalty::settlement
