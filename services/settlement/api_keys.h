#pragma once
// Partner and staff credentials: create, rotate, revoke and list API keys,
// and AuthenticateApiKey, which the other services ask about keys their
// keys file does not know.
//
// Invariants: only the secret's SHA-256 is stored, and the secret is
// returned once (never with a replayed answer); a rotation leaves the old
// key ROTATING until its grace period ends; a key past expires_at is
// EXPIRED; unknown, revoked and expired keys look the same to
// AuthenticateApiKey. Every change is idempotent by key and audited.
//
// Thread-safe: no mutable state besides the store.

#include "absl/status/statusor.h"
#include "common/auth/principal.h"
#include "loyalty/settlement/v1/settlement.pb.h"
#include "services/settlement/settlement_deps.h"

namespace loyalty::settlement {

class ApiKeys {
 public:
  using Principal = auth::Principal;

  explicit ApiKeys(const SettlementDeps& deps);

  absl::StatusOr<v1::CreateApiKeyResponse> CreateApiKey(const Principal& p, const v1::CreateApiKeyRequest& r);
  absl::StatusOr<v1::RotateApiKeyResponse> RotateApiKey(const Principal& p, const v1::RotateApiKeyRequest& r);
  absl::StatusOr<v1::RevokeApiKeyResponse> RevokeApiKey(const Principal& p, const v1::RevokeApiKeyRequest& r);
  absl::StatusOr<v1::ListApiKeysResponse> ListApiKeys(const Principal& p, const v1::ListApiKeysRequest& r);
  absl::StatusOr<v1::AuthenticateApiKeyResponse> AuthenticateApiKey(const Principal& p,
                                                                    const v1::AuthenticateApiKeyRequest& r);

 private:
  const SettlementDeps& deps_;
};

}  // namespace loyalty::settlement
