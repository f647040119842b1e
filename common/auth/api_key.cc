#include "absl/strings/string_view.h"
#include "common/auth/api_key.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"

namespace loyalty::auth {
namespace {

bool IsHexLower(char c) { return absl::ascii_isdigit(c) || (c >= 'a' && c <= 'f'); }
bool IsBase64Url(char c) { return absl::ascii_isalnum(c) || c == '-' || c == '_'; }

}  // namespace

std::optional<ParsedApiKey> ParseApiKey(absl::string_view key) {
  if (!absl::ConsumePrefix(&key, kApiKeyPrefix)) return std::nullopt;
  if (key.size() != kKeyIdLength + 1 + kSecretLength || key[kKeyIdLength] != '_') {
    return std::nullopt;
  }
  absl::string_view id = key.substr(0, kKeyIdLength);
  absl::string_view secret = key.substr(kKeyIdLength + 1);
  for (char c : id) {
    if (!IsHexLower(c)) return std::nullopt;
  }
  for (char c : secret) {
    if (!IsBase64Url(c)) return std::nullopt;
  }
  return ParsedApiKey{std::string(id), std::string(secret)};
}

std::optional<ParsedApiKey> ParseBearer(absl::string_view authorization) {
  authorization = absl::StripAsciiWhitespace(authorization);
  if (authorization.size() < 7 || !absl::StartsWithIgnoreCase(authorization, "bearer ")) {
    return std::nullopt;
  }
  return ParseApiKey(absl::StripLeadingAsciiWhitespace(authorization.substr(7)));
}

}  // namespace loyalty::auth
