#include "services/settlement/settlement_common.h"

#include <algorithm>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/random.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "common/validation/ids.h"
#include "google/protobuf/util/json_util.h"
#include "services/settlement/settlement_deps.h"

namespace loyalty::settlement {
namespace {

constexpr absl::string_view kService = "loyalty.settlement.v1.SettlementService/";

std::string ToJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(m, &out, options).ok()) return "{}";
  return out;
}

}  // namespace

absl::Time SettlementDeps::Now() const { return TruncateToMicros(options.now()); }

std::string NewId(absl::string_view prefix) {
  return absl::StrCat(prefix, "_", absl::AsciiStrToLower(crypto::RandomString(crypto::kCrockfordBase32, 20)));
}

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
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

absl::Status OwnPartnerOnly(const auth::Principal& p, const std::string& partner_id, absl::string_view what) {
  if (p.is_partner() && partner_id != p.partner_id) {
    return absl::PermissionDeniedError(absl::StrCat("a partner may read only its own ", what));
  }
  return absl::OkStatus();
}

ContractHistory WithUntil(ContractHistory history) {
  for (size_t i = 0; i + 1 < history.size(); ++i) {
    *history[i].mutable_effective_until() = history[i + 1].effective_from();
  }
  return history;
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

absl::StatusOr<std::vector<v1::Statement>> PeriodStatements(SettlementTx& tx, const std::string& period_id) {
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

}  // namespace loyalty::settlement
