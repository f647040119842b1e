#pragma once
// API key format, shared by every service and client.
//
//   lk_<key_id>_<secret>
//
// key_id: 16 lower-case hex characters, public. It names the key in logs,
//         audit records and the key table, and is the lookup index.
// secret: 43 characters of base64url (256 random bits). Never logged; stored
//         only as SHA-256(secret) (the secret is random and long, so a plain
//         hash is enough; no password-style stretching is needed).
//
// Callers send it as gRPC metadata `authorization: Bearer lk_<key_id>_<secret>`.

#include <optional>

#include "absl/strings/string_view.h"
#include <string>

namespace loyalty::auth {

inline constexpr absl::string_view kApiKeyPrefix = "lk_";
inline constexpr size_t kKeyIdLength = 16;
inline constexpr size_t kSecretLength = 43;

struct ParsedApiKey {
  std::string key_id;
  std::string secret;
};

// Parses "lk_<id>_<secret>"; nullopt when malformed.
std::optional<ParsedApiKey> ParseApiKey(absl::string_view key);

// Parses the value of an `authorization` header ("Bearer <key>").
std::optional<ParsedApiKey> ParseBearer(absl::string_view authorization);

}  // namespace loyalty::auth
