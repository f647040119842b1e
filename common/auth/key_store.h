#pragma once
// Where API keys are looked up: an interface, so that the services can take
// keys from a file today (FileKeyStore) and from settlement's partner
// credentials over gRPC later, behind the same Authenticator.
//
// A store holds only SHA-256(secret) per key id, never a secret
// (docs/adr/0005-api-key-format.md, docs/adr/0008-authentication-and-roles.md).
//
// Thread safety: every implementation is safe to call from many threads.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/auth/principal.h"
#include "common/crypto/sha256.h"

namespace loyalty::auth {

inline constexpr size_t kMaxPartnerIdLength = 64;
inline constexpr size_t kMaxKeyDescriptionLength = 200;

// One credential as a store keeps it.
struct ApiKeyRecord {
  std::string key_id;                // 16 lower-case hex characters
  crypto::Sha256Digest secret_sha256{};
  Role role = common::v1::ROLE_UNSPECIFIED;
  std::string partner_id;            // set if and only if role == ROLE_PARTNER
  std::string description;           // for people; never used for decisions
  bool revoked = false;
  std::optional<absl::Time> created_at;  // informational
  std::optional<absl::Time> expires_at;  // nullopt: never expires
  // The partner's rate limit as settlement's directory publishes it with the
  // key (calls per second and burst; 0 = the default). Keys files carry none.
  int64_t published_rate_per_second = 0;
  int64_t published_rate_burst = 0;

  // The identity this key resolves to.
  Principal ToPrincipal() const;
};

// INVALID_ARGUMENT naming the problem when `record` is not a usable
// credential: malformed key id, unspecified role, partner_id missing for a
// partner or present for another role, oversize description.
absl::Status ValidateRecord(const ApiKeyRecord& record);

// INVALID_ARGUMENT unless `partner_id` is 1..64 of [A-Za-z0-9._-] (the ids
// the services accept).
absl::Status ValidatePartnerId(absl::string_view partner_id);

class KeyStore {
 public:
  virtual ~KeyStore() = default;

  // The record of `key_id`, revoked or expired ones included (the
  // Authenticator decides). NOT_FOUND when the store has no such key;
  // UNAVAILABLE when the source cannot be reached (a remote store).
  virtual absl::StatusOr<ApiKeyRecord> Find(absl::string_view key_id) = 0;
};
using KeyStorePtr = std::unique_ptr<KeyStore>;

// Keys held in memory: for tests, and for wiring keys made in code.
class InMemoryKeyStore final : public KeyStore {
 public:
  // Adds or replaces the record of record.key_id.
  // REQUIRES: ValidateRecord(record).ok() (checked: INVALID_ARGUMENT).
  absl::Status Put(ApiKeyRecord record);
  // Marks a key revoked; NOT_FOUND when unknown.
  absl::Status Revoke(absl::string_view key_id);

  // KeyStore:
  absl::StatusOr<ApiKeyRecord> Find(absl::string_view key_id) override;

  // How many Find calls were made (tests check the Authenticator's cache).
  int64_t find_calls() const;

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, ApiKeyRecord> keys_ ABSL_GUARDED_BY(mu_);
  int64_t find_calls_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace loyalty::auth
