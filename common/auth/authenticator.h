#pragma once
// Authentication (who is calling) and authorisation (may this role call this
// RPC) for every service. No gRPC here; common/auth/grpc_auth.h applies it to
// a grpc::ServerContext.
//
// Authentication: the caller sends `authorization: Bearer lk_<key_id>_<secret>`.
// The key id is looked up in a KeyStore; SHA-256(secret) is compared with the
// stored digest in constant time. Unknown, revoked, expired, missing or
// malformed keys are UNAUTHENTICATED. Error messages name the key id at most,
// never the secret. Records found are cached for `cache_ttl` (bounded by
// `max_cached_keys`), so a revocation takes effect within that time (plus the
// store's own refresh delay); the secret is checked on every call, cached or
// not.
//
// Authorisation: each RPC lists the roles that may call it in its
// `(loyalty.common.v1.allowed_roles)` method option (protos/loyalty/common/v1/
// options.proto). Any other role is PERMISSION_DENIED. Scoping a partner to
// its own partner_id is the service's job (see Principal).
//
// See docs/adr/0008-authentication-and-roles.md.
//
// Thread safety: an Authenticator is safe to use from many threads.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/auth/key_store.h"
#include "common/auth/principal.h"
#include "common/auth/rate_limiter.h"
#include "google/protobuf/descriptor.h"

namespace loyalty::auth {

inline constexpr size_t kMaxCachedKeysLimit = 1'000'000;

struct AuthenticatorOptions {
  // How long a record found in the store is reused. Zero: no cache.
  absl::Duration cache_ttl = absl::Seconds(10);
  // Most records cached; beyond it expired entries are dropped first, then
  // arbitrary ones.
  size_t max_cached_keys = 10'000;
  // The clock (tests advance a fake one).
  std::function<absl::Time()> now = [] { return absl::Now(); };
  // Per-partner rate limits (rate_limiter.h); none when null.
  std::shared_ptr<RateLimiter> rate_limiter;
  // A second key source, asked only for a key id the store does not know:
  // settlement's key directory (keys issued with CreateApiKey), which looks
  // keys up by the presented secret's hash. Its answers, found or not, are
  // cached for cache_ttl like the store's, so an unknown key costs one call
  // per cache_ttl. A partner's rate limit that comes with an answer is handed
  // to rate_limiter (SetPublishedLimit), so a change in the directory takes
  // effect within cache_ttl. Null: the store only.
  std::function<absl::StatusOr<ApiKeyRecord>(const std::string& key_id, const crypto::Sha256Digest& secret_sha256)>
      directory;
};

class Authenticator {
 public:
  // `store` must outlive the Authenticator.
  explicit Authenticator(KeyStore& store, AuthenticatorOptions options = {});
  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  // `authorization`: every value of the `authorization` metadata of the call
  // (none when it was not sent). Exactly one "Bearer <key>" is accepted.
  // UNAUTHENTICATED when missing, repeated, malformed, unknown, revoked,
  // expired or when the secret does not match; UNAVAILABLE (or whatever the
  // store says) when the store cannot answer.
  absl::StatusOr<Principal> Authenticate(absl::Span<const absl::string_view> authorization);

  // After authorisation: a partner's call takes a token from its bucket, or
  // is RESOURCE_EXHAUSTED. Other roles, and no limiter, are always admitted.
  absl::Status Admit(const Principal& principal);

  // Drops every cached record (tests, or after a mass revocation).
  void ClearCache();
  // Records cached now (tests check the bound).
  size_t cached_keys();

 private:
  struct CacheEntry {
    absl::StatusOr<ApiKeyRecord> record;  // NOT_FOUND cached too (directory)
    absl::Time expires;
  };
  absl::StatusOr<ApiKeyRecord> Lookup(const std::string& key_id, const crypto::Sha256Digest& digest,
                                      absl::Time now);

  KeyStore& store_;
  const AuthenticatorOptions options_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, CacheEntry> cache_ ABSL_GUARDED_BY(mu_);
};

// The roles in `method`'s allowed_roles option, in declaration order. Empty
// when the option is absent: nobody may call it.
std::vector<Role> AllowedRoles(const google::protobuf::MethodDescriptor& method);

// OK when principal.role is one of AllowedRoles(method); otherwise
// PERMISSION_DENIED naming the role, the method and the roles allowed.
absl::Status Authorize(const Principal& principal, const google::protobuf::MethodDescriptor& method);

// "loyalty.ledger.v1.LedgerService/Earn", the name gRPC uses (without the
// leading slash).
std::string RpcName(const google::protobuf::MethodDescriptor& method);

}  // namespace loyalty::auth
