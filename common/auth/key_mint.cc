#include "common/auth/key_mint.h"

#include <openssl/rand.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/auth/api_key.h"
#include "common/status/status_macros.h"

namespace loyalty::auth {
namespace {

constexpr int kKeyIdBytes = kKeyIdLength / 2;  // 8 bytes, 16 hex characters
constexpr int kSecretBytes = 32;               // 256 bits, 43 base64url characters

absl::StatusOr<std::string> RandomBytes(int n) {
  std::string bytes(static_cast<size_t>(n), '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), n) != 1) {
    return absl::UnavailableError("the system random number generator failed");
  }
  return bytes;
}

}  // namespace

absl::StatusOr<MintedKey> MintApiKey(Role role, std::string partner_id, std::string description,
                                     absl::Time now) {
  ASSIGN_OR_RETURN(std::string id_bytes, RandomBytes(kKeyIdBytes));
  ASSIGN_OR_RETURN(std::string secret_bytes, RandomBytes(kSecretBytes));
  std::string secret;
  absl::WebSafeBase64Escape(secret_bytes, &secret);  // unpadded: 43 characters
  MintedKey minted;
  minted.api_key = absl::StrCat(kApiKeyPrefix, absl::BytesToHexString(id_bytes), "_", secret);
  ASSIGN_OR_RETURN(minted.record, RecordForKey(minted.api_key, role, std::move(partner_id)));
  minted.record.description = std::move(description);
  minted.record.created_at = now;
  RETURN_IF_ERROR(ValidateRecord(minted.record));
  return minted;
}

absl::StatusOr<ApiKeyRecord> RecordForKey(absl::string_view api_key, Role role,
                                          std::string partner_id) {
  std::optional<ParsedApiKey> parsed = ParseApiKey(api_key);
  if (!parsed.has_value()) {
    return absl::InvalidArgumentError("api_key: expected lk_<16 hex key id>_<43 base64url secret>");
  }
  ApiKeyRecord record;
  record.key_id = parsed->key_id;
  record.secret_sha256 = crypto::Sha256(parsed->secret);
  record.role = role;
  record.partner_id = std::move(partner_id);
  RETURN_IF_ERROR(ValidateRecord(record));
  return record;
}

}  // namespace loyalty::auth
