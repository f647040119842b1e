#include "common/validation/money.h"

#include "absl/strings/str_cat.h"
#include "common/money/currency.h"

namespace loyalty {

absl::Status ValidateCurrency(absl::string_view field, absl::string_view currency) {
  if (currency.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  if (!money::MinorDigits(currency).has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": unknown currency '", currency, "'"));
  }
  return absl::OkStatus();
}

absl::Status ValidateMoney(absl::string_view field, const common::v1::Money& money, AmountRule rule) {
  if (rule == AmountRule::kPositive && money.amount_minor() <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".amount_minor: must be > 0"));
  }
  if (rule == AmountRule::kNonNegative && money.amount_minor() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".amount_minor: must be >= 0"));
  }
  return ValidateCurrency(absl::StrCat(field, ".currency"), money.currency());
}

}  // namespace loyalty
