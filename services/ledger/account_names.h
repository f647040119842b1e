#pragma once
// Account names: "<kind>:<id>".
//   member:<member_id>                     a member's wallet
//   issuance:<partner_id>                  debited when the partner issues points
//   redemption:<partner_id>                credited when the partner honours points
//   breakage:<partner_id>                  expired points the partner issued
//   operator:adjustments|bonus|breakage    the operator's own accounts
// Account names sort by kind first (the tables use a binary collation), so
// one kind is one range of names.

#include <string>

#include "absl/strings/string_view.h"
#include "loyalty/ledger/v1/ledger.pb.h"

namespace loyalty::ledger {

std::string MemberAccount(const std::string& member_id);
std::string IssuanceAccount(const std::string& partner_id);
std::string RedemptionAccount(const std::string& partner_id);
std::string BreakageAccount(const std::string& partner_id);  // "" -> operator:breakage
inline constexpr char kOperatorAdjustments[] = "operator:adjustments";
inline constexpr char kOperatorBonus[] = "operator:bonus";
inline constexpr char kOperatorBreakage[] = "operator:breakage";

// "issuance:" for ACCOUNT_KIND_ISSUANCE, ...; "" for UNSPECIFIED.
absl::string_view AccountKindPrefix(v1::AccountKind kind);
// The kind a name starts with; UNSPECIFIED when it names none.
v1::AccountKind AccountKindOf(absl::string_view account);
// Issuance, redemption and breakage accounts belong to one partner.
bool IsPartnerAccountKind(v1::AccountKind kind);

}  // namespace loyalty::ledger
