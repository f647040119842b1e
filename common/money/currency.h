#pragma once
// ISO 4217 currencies the platform accepts, with their minor-unit digits.
// Money is always int64 minor units plus one of these codes.

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace loyalty::money {

// Minor-unit digits of an accepted currency ("EUR" -> 2, "JPY" -> 0), or
// nullopt for a code that is unknown or not accepted.
std::optional<int> MinorDigits(absl::string_view currency);

// 10^digits for an accepted currency, or nullopt.
std::optional<int64_t> MinorUnitsPerMajor(absl::string_view currency);

// "-45.90 EUR" for (-4590, "EUR"): exact, with the currency's minor digits
// ("1200 JPY"; an unknown code shows the minor units as they are).
std::string FormatMinor(int64_t amount_minor, absl::string_view currency);

}  // namespace loyalty::money
