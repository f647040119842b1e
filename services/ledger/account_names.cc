#include "services/ledger/account_names.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace loyalty::ledger {

std::string MemberAccount(const std::string& member_id) { return absl::StrCat("member:", member_id); }
std::string IssuanceAccount(const std::string& partner_id) { return absl::StrCat("issuance:", partner_id); }
std::string RedemptionAccount(const std::string& partner_id) { return absl::StrCat("redemption:", partner_id); }
std::string BreakageAccount(const std::string& partner_id) {
  return partner_id.empty() ? std::string(kOperatorBreakage) : absl::StrCat("breakage:", partner_id);
}

absl::string_view AccountKindPrefix(v1::AccountKind kind) {
  switch (kind) {
    case v1::ACCOUNT_KIND_MEMBER:
      return "member:";
    case v1::ACCOUNT_KIND_ISSUANCE:
      return "issuance:";
    case v1::ACCOUNT_KIND_REDEMPTION:
      return "redemption:";
    case v1::ACCOUNT_KIND_BREAKAGE:
      return "breakage:";
    case v1::ACCOUNT_KIND_OPERATOR:
      return "operator:";
    default:
      return "";
  }
}

v1::AccountKind AccountKindOf(absl::string_view account) {
  for (v1::AccountKind kind : {v1::ACCOUNT_KIND_MEMBER, v1::ACCOUNT_KIND_ISSUANCE, v1::ACCOUNT_KIND_REDEMPTION,
                               v1::ACCOUNT_KIND_BREAKAGE, v1::ACCOUNT_KIND_OPERATOR}) {
    if (absl::StartsWith(account, AccountKindPrefix(kind))) return kind;
  }
  return v1::ACCOUNT_KIND_UNSPECIFIED;
}

bool IsPartnerAccountKind(v1::AccountKind kind) {
  return kind == v1::ACCOUNT_KIND_ISSUANCE || kind == v1::ACCOUNT_KIND_REDEMPTION || kind == v1::ACCOUNT_KIND_BREAKAGE;
}

}  // namespace loyalty::ledger
