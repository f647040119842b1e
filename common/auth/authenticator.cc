#include "common/auth/authenticator.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/auth/api_key.h"
#include "loyalty/common/v1/options.pb.h"

namespace loyalty::auth {
namespace {

constexpr absl::string_view kExpectedHeader =
    "send metadata 'authorization: Bearer lk_<16 hex key id>_<43 base64url secret>'";

absl::Status Unauthenticated(absl::string_view why) {
  return absl::UnauthenticatedError(absl::StrCat("authorization: ", why));
}

}  // namespace

Authenticator::Authenticator(KeyStore& store, AuthenticatorOptions options)
    : store_(store), options_(std::move(options)) {}

absl::StatusOr<Principal> Authenticator::Authenticate(
    absl::Span<const absl::string_view> authorization) {
  if (authorization.empty()) return Unauthenticated(absl::StrCat("missing; ", kExpectedHeader));
  if (authorization.size() > 1) return Unauthenticated("sent more than once");
  // The header's text is never echoed: it may hold a secret.
  std::optional<ParsedApiKey> key = ParseBearer(authorization[0]);
  if (!key.has_value()) return Unauthenticated(absl::StrCat("malformed; ", kExpectedHeader));

  const absl::Time now = options_.now();
  const crypto::Sha256Digest digest = crypto::Sha256(key->secret);
  absl::StatusOr<ApiKeyRecord> record = Lookup(key->key_id, digest, now);
  if (!record.ok()) {
    if (record.status().code() == absl::StatusCode::kNotFound) {
      return Unauthenticated(absl::StrCat("unknown API key ", key->key_id));
    }
    return record.status();
  }
  // Compared before the revoked/expired checks, so that those answers go only
  // to someone who holds the secret.
  if (!crypto::DigestEquals(digest, record->secret_sha256)) {
    return Unauthenticated(absl::StrCat("wrong secret for API key ", key->key_id));
  }
  if (record->revoked) return Unauthenticated(absl::StrCat("API key ", key->key_id, " has been revoked"));
  if (record->expires_at.has_value() && now >= *record->expires_at) {
    return Unauthenticated(absl::StrCat("API key ", key->key_id, " has expired"));
  }
  return record->ToPrincipal();
}

absl::StatusOr<ApiKeyRecord> Authenticator::Lookup(const std::string& key_id, const crypto::Sha256Digest& digest,
                                                   absl::Time now) {
  if (options_.cache_ttl > absl::ZeroDuration()) {
    absl::MutexLock lock(&mu_);
    // Found keys, and (with a directory) key ids nobody knows: a flood of
    // made-up keys costs one directory call per key id and cache_ttl.
    auto it = cache_.find(key_id);
    if (it != cache_.end() && now < it->second.expires) return it->second.record;
  }
  // Outside the lock: a remote store may take a while.
  absl::StatusOr<ApiKeyRecord> found = store_.Find(key_id);
  if (!found.ok() && found.status().code() == absl::StatusCode::kNotFound && options_.directory) {
    found = options_.directory(key_id, digest);
    if (found.ok() && found->key_id != key_id) found = absl::NotFoundError("key id mismatch");
    if (found.ok() && options_.rate_limiter != nullptr && found->role == common::v1::ROLE_PARTNER &&
        crypto::DigestEquals(digest, found->secret_sha256)) {
      options_.rate_limiter->SetPublishedLimit(found->partner_id, found->published_rate_per_second,
                                               found->published_rate_burst);
    }
  }
  const bool cacheable = found.ok() || (options_.directory && found.status().code() == absl::StatusCode::kNotFound);
  if (!cacheable || options_.cache_ttl <= absl::ZeroDuration() || options_.max_cached_keys == 0) {
    return found;
  }
  absl::MutexLock lock(&mu_);
  if (cache_.size() >= options_.max_cached_keys && !cache_.contains(key_id)) {
    absl::erase_if(cache_, [now](const auto& entry) { return now >= entry.second.expires; });
    while (cache_.size() >= options_.max_cached_keys) cache_.erase(cache_.begin());
  }
  cache_.insert_or_assign(key_id, CacheEntry{found, now + options_.cache_ttl});
  return found;
}

absl::Status Authenticator::Admit(const Principal& principal) {
  if (options_.rate_limiter == nullptr || !principal.is_partner()) return absl::OkStatus();
  return options_.rate_limiter->Admit(principal.partner_id);
}

void Authenticator::ClearCache() {
  absl::MutexLock lock(&mu_);
  cache_.clear();
}

size_t Authenticator::cached_keys() {
  absl::MutexLock lock(&mu_);
  return cache_.size();
}

std::vector<Role> AllowedRoles(const google::protobuf::MethodDescriptor& method) {
  const google::protobuf::MethodOptions& options = method.options();
  std::vector<Role> roles;
  const int n = options.ExtensionSize(common::v1::allowed_roles);
  roles.reserve(n);
  for (int i = 0; i < n; ++i) roles.push_back(options.GetExtension(common::v1::allowed_roles, i));
  return roles;
}

std::string RpcName(const google::protobuf::MethodDescriptor& method) {
  return absl::StrCat(method.service()->full_name(), "/", method.name());
}

absl::Status Authorize(const Principal& principal, const google::protobuf::MethodDescriptor& method) {
  const std::vector<Role> allowed = AllowedRoles(method);
  if (std::find(allowed.begin(), allowed.end(), principal.role) != allowed.end()) {
    return absl::OkStatus();
  }
  std::vector<std::string> names;
  for (Role r : allowed) names.push_back(common::v1::Role_Name(r));
  return absl::PermissionDeniedError(absl::StrCat(
      "role ", common::v1::Role_Name(principal.role), " may not call ", RpcName(method), " (allowed: ",
      names.empty() ? "nobody" : absl::StrJoin(names, ", "), ")"));
}

}  // namespace loyalty::auth
