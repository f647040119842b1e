#include "services/settlement/contracts.h"

#include <algorithm>
#include <string>

#include "common/paging/page_token.h"
#include "common/validation/money.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "common/validation/ids.h"
#include "common/validation/text.h"
#include "services/settlement/settlement_common.h"

namespace loyalty::settlement {
namespace {

constexpr int kMaxContractVersions = 1'000;
constexpr size_t kMaxNoteChars = 1000;

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

bool IsClosedOrClosing(v1::PeriodStatus s) {
  return s == v1::PERIOD_STATUS_CLOSING || s == v1::PERIOD_STATUS_CLOSED || s == v1::PERIOD_STATUS_FINAL;
}

}  // namespace

Contracts::Contracts(const SettlementDeps& deps) : deps_(deps) {}

absl::StatusOr<v1::CreateContractVersionResponse> Contracts::CreateContractVersion(
    const Principal& p, const v1::CreateContractVersionRequest& r) {
  const v1::Contract& in = r.contract();
  RETURN_IF_ERROR(ValidateId("contract.partner_id", in.partner_id()));
  if (!in.has_effective_from()) return Invalid("contract.effective_from", "required");
  const absl::Time now = deps_.Now();
  // Microseconds, as stored (DATETIME(6)).
  const absl::Time effective_from = TruncateToMicros(FromProtoTime(in.effective_from()));
  // Validation that needs the partner and the periods runs inside the
  // transaction; its INVALID_ARGUMENT is not remembered under the key.
  return Mutate<v1::CreateContractVersionResponse>(
      deps_.store, p, "CreateContractVersion", r.idempotency_key(), r,
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

absl::StatusOr<v1::GetContractResponse> Contracts::GetContract(const Principal& p, const v1::GetContractRequest& r) {
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
  const absl::Time at = r.as_of().has_time() ? FromProtoTime(r.as_of().time()) : deps_.Now();
  RETURN_IF_ERROR(deps_.store.Run("GetContract", [&](SettlementTx& tx) -> absl::Status {
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

absl::StatusOr<v1::ListContractsResponse> Contracts::ListContracts(const Principal& p,
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
  RETURN_IF_ERROR(deps_.store.Run("ListContracts", [&](SettlementTx& tx) -> absl::Status {
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

}  // namespace loyalty::settlement
