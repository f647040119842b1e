#include "services/membership/codes.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/random.h"

namespace loyalty::membership {
namespace {
constexpr absl::string_view kLowerBase32 = "0123456789abcdefghjkmnpqrstvwxyz";
}  // namespace

std::string NewMemberId() { return absl::StrCat("mb_", crypto::RandomString(kLowerBase32, 24)); }

std::string NewOpaqueId(absl::string_view prefix) { return crypto::NewOpaqueId(prefix); }

char LuhnCheckDigit(absl::string_view payload) {
  int sum = 0;
  bool double_it = true;  // the digit left of the check digit is doubled
  for (size_t i = payload.size(); i-- > 0;) {
    int d = payload[i] - '0';
    if (double_it) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double_it = !double_it;
  }
  return static_cast<char>('0' + (10 - sum % 10) % 10);
}

bool IsValidCardNumber(absl::string_view digits) {
  if (digits.size() != kCardNumberLength) return false;
  for (char c : digits) {
    if (!absl::ascii_isdigit(c)) return false;
  }
  return LuhnCheckDigit(digits.substr(0, kCardNumberLength - 1)) == digits.back();
}

std::string NewCardNumber() {
  std::string payload = absl::StrCat("7", crypto::RandomString(crypto::kDigits, kCardNumberLength - 2));
  payload.push_back(LuhnCheckDigit(payload));
  return payload;
}

absl::StatusOr<std::string> NormaliseCardNumber(absl::string_view field, absl::string_view input) {
  std::string digits;
  for (char c : input) {
    if (c == ' ' || c == '-') continue;
    if (!absl::ascii_isdigit(c)) return absl::InvalidArgumentError(absl::StrCat(field, ": digits only"));
    digits.push_back(c);
  }
  if (digits.size() != kCardNumberLength) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": a card number has 16 digits"));
  }
  if (!IsValidCardNumber(digits)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": check digit does not match (mistyped?)"));
  }
  return digits;
}

std::string NewReferralCode() { return crypto::RandomString(crypto::kCrockfordBase32, kReferralCodeLength); }

absl::StatusOr<std::string> NormaliseReferralCode(absl::string_view field, absl::string_view input) {
  std::string code = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(input));
  if (code.size() < 8 || code.size() > 16) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": a referral code has 8..16 characters"));
  }
  for (char c : code) {
    if (!absl::ascii_isdigit(c) && !absl::ascii_isupper(c)) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": letters and digits only"));
    }
  }
  return code;
}

}  // namespace loyalty::membership
