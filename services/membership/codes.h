#pragma once
// Identifiers and codes handed to members: member ids, card numbers and
// referral codes. All random (CSPRNG), so none is sequential or guessable.

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace loyalty::membership {

inline constexpr size_t kCardNumberLength = 16;
inline constexpr size_t kReferralCodeLength = 10;

// "mb_" + 24 lower-case base32 characters (120 bits).
std::string NewMemberId();
// "<prefix>_" + 20 lower-case base32 characters (100 bits): tier changes,
// consent events, referrals, segments, audit events.
std::string NewOpaqueId(absl::string_view prefix);

// 16 digits: the programme prefix 7, 14 random digits, a Luhn check digit.
std::string NewCardNumber();
// The Luhn check digit ('0'..'9') for `payload` (digits only).
char LuhnCheckDigit(absl::string_view payload);
// 16 digits with a valid check digit (separators already removed).
bool IsValidCardNumber(absl::string_view digits);
// Removes spaces and dashes, then checks length, digits and the check digit;
// INVALID_ARGUMENT naming `field` otherwise.
absl::StatusOr<std::string> NormaliseCardNumber(absl::string_view field, absl::string_view input);

// 10 Crockford base32 characters (50 bits), upper case.
std::string NewReferralCode();
// Upper-cased and trimmed; 8..16 characters of [0-9A-Z]; INVALID_ARGUMENT
// naming `field` otherwise.
absl::StatusOr<std::string> NormaliseReferralCode(absl::string_view field, absl::string_view input);

}  // namespace loyalty::membership
