#include "services/ledger/ledger_commands.h"

#include "absl/strings/str_cat.h"

namespace loyalty::ledger {

absl::string_view MethodOf(const CommandBody& body) {
  return std::visit([](const auto& command) { return std::decay_t<decltype(command)>::kMethod; }, body);
}

Caller Caller::Of(const auth::Principal& principal) {
  Caller caller;
  caller.principal = principal.idempotency_scope();
  caller.is_service = principal.is_service();
  if (principal.is_partner()) caller.partner_id = principal.partner_id;
  return caller;
}

absl::Status CheckOwnPartner(const Caller& caller, absl::string_view field,
                             const std::string& partner_id) {
  if (caller.partner_id.empty() || partner_id == caller.partner_id) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(field, ": '", partner_id,
                                                  "' is not the calling partner; this API key acts for '",
                                                  caller.partner_id, "' only"));
}

absl::Status CheckOwnedByCaller(const Caller& caller, absl::string_view field,
                                absl::string_view what, const std::string& owner) {
  if (caller.partner_id.empty() || owner == caller.partner_id) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(field, ": ", what,
                                                  " belongs to another partner; this API key acts for '",
                                                  caller.partner_id, "' only"));
}

}  // namespace loyalty::ledger
