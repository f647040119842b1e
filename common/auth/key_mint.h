#pragma once
// Making new API keys (loyalty-keygen, quickstart's development keys, tests).

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/auth/key_store.h"

namespace loyalty::auth {

struct MintedKey {
  // The plaintext key "lk_<key_id>_<secret>": shown once to its owner, never
  // stored or logged by the platform.
  std::string api_key;
  // What a key store keeps: SHA-256 of the secret, role, partner.
  ApiKeyRecord record;
};

// A new key from the operating system's CSPRNG (OpenSSL RAND_bytes): a 64-bit
// key id and a 256-bit secret. INVALID_ARGUMENT when role/partner_id do not
// make a valid record (see ValidateRecord).
absl::StatusOr<MintedKey> MintApiKey(Role role, std::string partner_id,
                                     std::string description = "", absl::Time now = absl::Now());

// The record of an existing plaintext key (tests use fixed keys).
// INVALID_ARGUMENT when `api_key` is malformed or the record invalid.
absl::StatusOr<ApiKeyRecord> RecordForKey(absl::string_view api_key, Role role,
                                          std::string partner_id = "");

}  // namespace loyalty::auth
