#include "services/catalog/codes.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/random.h"

namespace loyalty::catalog {
namespace {

constexpr int kBase = 32;

// The value 0..31 of a Crockford character, or -1.
int ValueOf(char c) {
  const size_t pos = crypto::kCrockfordBase32.find(c);
  return pos == absl::string_view::npos ? -1 : static_cast<int>(pos);
}

}  // namespace

char CheckCharacter(absl::string_view payload) {
  // Luhn mod N: from the right, every other value is doubled and its base-N
  // digits summed.
  int sum = 0;
  bool double_it = true;
  for (size_t i = payload.size(); i-- > 0;) {
    int v = ValueOf(payload[i]);
    if (double_it) {
      v *= 2;
      v = v / kBase + v % kBase;
    }
    sum += v;
    double_it = !double_it;
  }
  return crypto::kCrockfordBase32[(kBase - sum % kBase) % kBase];
}

std::string NewVoucherCode() {
  std::string code = crypto::RandomString(crypto::kCrockfordBase32, kVoucherRandomLength);
  code.push_back(CheckCharacter(code));
  return code;
}

absl::StatusOr<std::string> NormaliseVoucherCode(absl::string_view field, absl::string_view input) {
  std::string out;
  out.reserve(kVoucherCodeLength);
  for (char c : input) {
    if (c == '-' || c == ' ') continue;
    c = absl::ascii_toupper(static_cast<unsigned char>(c));
    if (c == 'O') c = '0';
    if (c == 'I' || c == 'L') c = '1';
    if (ValueOf(c) < 0) return absl::InvalidArgumentError(absl::StrCat(field, ": not a voucher code"));
    out.push_back(c);
    if (out.size() > kVoucherCodeLength) break;
  }
  if (out.size() != kVoucherCodeLength) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": a voucher code has ", kVoucherCodeLength, " characters"));
  }
  if (CheckCharacter(absl::string_view(out).substr(0, kVoucherRandomLength)) != out.back()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": bad check character (mistyped code?)"));
  }
  return out;
}

namespace {

// Upper-case, no separators, aliases mapped; false on a foreign character.
bool Clean(absl::string_view input, size_t max_length, std::string& out) {
  out.clear();
  for (char c : input) {
    if (c == '-' || c == ' ') continue;
    c = absl::ascii_toupper(static_cast<unsigned char>(c));
    if (c == 'O') c = '0';
    if (c == 'I' || c == 'L') c = '1';
    if (ValueOf(c) < 0) return false;
    out.push_back(c);
    if (out.size() > max_length) return true;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::string> NormaliseCouponPrefix(absl::string_view field, absl::string_view prefix) {
  std::string out;
  if (!Clean(prefix, kMaxCouponPrefixLength, out) || out.size() > kMaxCouponPrefixLength) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": 0..6 Crockford base32 characters"));
  }
  return out;
}

std::string NewCouponCode(absl::string_view prefix) {
  std::string code = absl::StrCat(prefix, crypto::RandomString(crypto::kCrockfordBase32, kCouponRandomLength));
  code.push_back(CheckCharacter(code));
  return code;
}

absl::StatusOr<std::string> NormaliseCouponCode(absl::string_view field, absl::string_view input) {
  constexpr size_t kMin = kCouponRandomLength + 1, kMax = kMaxCouponPrefixLength + kCouponRandomLength + 1;
  std::string out;
  if (!Clean(input, kMax, out)) return absl::InvalidArgumentError(absl::StrCat(field, ": not a coupon code"));
  if (out.size() < kMin || out.size() > kMax) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": not a coupon code (length)"));
  }
  if (CheckCharacter(absl::string_view(out).substr(0, out.size() - 1)) != out.back()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": bad check character (mistyped code?)"));
  }
  return out;
}

std::string FormatVoucherCode(absl::string_view c) {
  if (c.size() != kVoucherCodeLength) return std::string(c);
  return absl::StrCat(c.substr(0, 4), "-", c.substr(4, 4), "-", c.substr(8, 4), "-", c.substr(12));
}

}  // namespace loyalty::catalog
