#include "common/money/currency.h"

#include <array>
#include <utility>

namespace loyalty::money {
namespace {

// The currencies of the coalition's markets. Add a code here (with its
// ISO 4217 exponent) before a partner may settle or earn in it.
constexpr std::array<std::pair<absl::string_view, int>, 24> kCurrencies = {{
    {"AUD", 2}, {"BGN", 2}, {"BRL", 2}, {"CAD", 2}, {"CHF", 2}, {"CZK", 2},
    {"DKK", 2}, {"EUR", 2}, {"GBP", 2}, {"HUF", 2}, {"ISK", 0}, {"JPY", 0},
    {"KRW", 0}, {"MXN", 2}, {"NOK", 2}, {"NZD", 2}, {"PLN", 2}, {"RON", 2},
    {"SEK", 2}, {"SGD", 2}, {"TRY", 2}, {"USD", 2}, {"ZAR", 2}, {"BHD", 3},
}};

}  // namespace

std::optional<int> MinorDigits(absl::string_view currency) {
  for (const auto& [code, digits] : kCurrencies) {
    if (code == currency) return digits;
  }
  return std::nullopt;
}

std::optional<int64_t> MinorUnitsPerMajor(absl::string_view currency) {
  std::optional<int> digits = MinorDigits(currency);
  if (!digits.has_value()) return std::nullopt;
  int64_t factor = 1;
  for (int i = 0; i < *digits; ++i) factor *= 10;
  return factor;
}

}  // namespace loyalty::money
