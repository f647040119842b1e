#pragma once
// Shared rules for money that callers send (common.proto Money): an ISO 4217
// code the platform accepts (common/money/currency.h) and the sign the
// containing field allows. Errors are INVALID_ARGUMENT naming the field path
// ("amount.currency: unknown currency 'XXX'").

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "loyalty/common/v1/common.pb.h"

namespace loyalty {

// What a Money field's comment allows for amount_minor.
enum class AmountRule {
  kPositive,     // "> 0"
  kNonNegative,  // ">= 0"
  kSigned,       // "signed"
};

// OK for an accepted ISO 4217 code (upper case, e.g. "EUR").
absl::Status ValidateCurrency(absl::string_view field, absl::string_view currency);

// OK when `money.amount_minor` obeys `rule` and `money.currency` is accepted.
// Errors name "<field>.amount_minor" or "<field>.currency".
absl::Status ValidateMoney(absl::string_view field, const common::v1::Money& money, AmountRule rule);

}  // namespace loyalty
