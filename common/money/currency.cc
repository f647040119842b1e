#include "common/money/currency.h"

#include "absl/strings/str_cat.h"

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

std::string FormatMinor(int64_t amount_minor, absl::string_view currency) {
  const int digits = MinorDigits(currency).value_or(0);
  if (digits == 0) return absl::StrCat(amount_minor, " ", currency);
  uint64_t scale = 1;
  for (int i = 0; i < digits; ++i) scale *= 10;
  const uint64_t abs = amount_minor < 0 ? 0 - static_cast<uint64_t>(amount_minor) : static_cast<uint64_t>(amount_minor);
  std::string fraction = absl::StrCat(abs % scale);
  fraction.insert(0, static_cast<size_t>(digits) - fraction.size(), '0');
  return absl::StrCat(amount_minor < 0 ? "-" : "", abs / scale, ".", fraction, " ", currency);
}

}  // namespace loyalty::money
