#pragma once
// Voucher codes (catalog.proto header): 13 random Crockford base32
// characters (65 bits, CSPRNG) plus one check character, 14 in all, shown
// grouped as XXXX-XXXX-XXXX-XX. The check character is Luhn mod 32 over the
// alphabet's values: it catches every single-character substitution and
// every transposition of adjacent characters but one value pair. Pure code.

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace loyalty::catalog {

inline constexpr size_t kVoucherRandomLength = 13;
inline constexpr size_t kVoucherCodeLength = kVoucherRandomLength + 1;

// A new random voucher code, normalised (no dashes).
std::string NewVoucherCode();
// The Luhn mod 32 check character for `payload` (Crockford characters).
char CheckCharacter(absl::string_view payload);
// Upper-cases, drops dashes and spaces, maps the Crockford aliases (O->0,
// I/L->1), then checks length, alphabet and the check character;
// INVALID_ARGUMENT naming `field` otherwise.
absl::StatusOr<std::string> NormaliseVoucherCode(absl::string_view field, absl::string_view input);
// XXXX-XXXX-XXXX-XX for display.
std::string FormatVoucherCode(absl::string_view normalised);

// Coupon codes: an optional prefix of 0..6 Crockford characters, 10 random
// ones (50 bits) and a check character over all of them.
inline constexpr size_t kCouponRandomLength = 10;
inline constexpr size_t kMaxCouponPrefixLength = 6;

// INVALID_ARGUMENT naming `field` unless 0..6 Crockford characters
// (upper-cased).
absl::StatusOr<std::string> NormaliseCouponPrefix(absl::string_view field, absl::string_view prefix);
// REQUIRES: `prefix` normalised.
std::string NewCouponCode(absl::string_view prefix);
// As NormaliseVoucherCode, for 11..17 characters.
absl::StatusOr<std::string> NormaliseCouponCode(absl::string_view field, absl::string_view input);

}  // namespace loyalty::catalog
