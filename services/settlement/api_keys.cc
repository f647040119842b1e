#include "services/settlement/api_keys.h"

#include <algorithm>
#include <string>

#include "common/auth/key_mint.h"
#include "common/crypto/sha256.h"
#include "common/paging/page_token.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "common/validation/ids.h"
#include "common/validation/text.h"
#include "services/settlement/settlement_common.h"

namespace loyalty::settlement {
namespace {

constexpr int64_t kDefaultGraceSeconds = 86'400;
constexpr int64_t kMaxGraceSeconds = 604'800;
constexpr int32_t kAuthCacheTtlSeconds = 30;

// The state as of `now`: a key past its expires_at is EXPIRED.
v1::ApiKey Effective(v1::ApiKey k, absl::Time now) {
  if (k.state() != v1::API_KEY_STATE_REVOKED && k.has_expires_at() && FromProtoTime(k.expires_at()) <= now) {
    k.set_state(v1::API_KEY_STATE_EXPIRED);
  }
  return k;
}

bool Usable(const v1::ApiKey& k) {
  return k.state() == v1::API_KEY_STATE_ACTIVE || k.state() == v1::API_KEY_STATE_ROTATING;
}

// Fresh key material (key id, secret, the secret's SHA-256). Made before
// the idempotent transaction so that the secret is returned once and never
// stored with the remembered response.
absl::StatusOr<auth::MintedKey> Mint(absl::Time now) {
  // The role only shapes the unused record; id and secret are random.
  return auth::MintApiKey(common::v1::ROLE_BACKOFFICE, "", "", now);
}

}  // namespace

ApiKeys::ApiKeys(const SettlementDeps& deps) : deps_(deps) {}

absl::StatusOr<v1::CreateApiKeyResponse> ApiKeys::CreateApiKey(const Principal& p,
                                                               const v1::CreateApiKeyRequest& r) {
  switch (r.role()) {
    case common::v1::ROLE_PARTNER:
      RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
      break;
    case common::v1::ROLE_BACKOFFICE:
    case common::v1::ROLE_FINANCE:
    case common::v1::ROLE_SERVICE:
      if (!r.partner_id().empty()) return Invalid("partner_id", "only for ROLE_PARTNER");
      break;
    default:
      return Invalid("role", "required");
  }
  const absl::Time now = deps_.Now();
  if (r.has_expires_at() && FromProtoTime(r.expires_at()) <= now) return Invalid("expires_at", "in the past");
  RETURN_IF_ERROR(ValidateText("label", r.label(), 0, 100));
  ASSIGN_OR_RETURN(auth::MintedKey minted, Mint(now));
  ASSIGN_OR_RETURN(v1::CreateApiKeyResponse out,
                   Mutate<v1::CreateApiKeyResponse>(
                       deps_.store, p, "CreateApiKey", r.idempotency_key(), r,
                       [&](SettlementTx& tx, v1::CreateApiKeyResponse& response) -> absl::Status {
                         if (r.role() == common::v1::ROLE_PARTNER) {
                           ASSIGN_OR_RETURN(v1::Partner partner, LoadPartner(tx, r.partner_id(), false));
                           if (partner.status() == v1::PARTNER_STATUS_TERMINATED) {
                             return absl::FailedPreconditionError("partner is terminated");
                           }
                         }
                         v1::ApiKey k;
                         k.set_key_id(minted.record.key_id);
                         k.set_role(r.role());
                         k.set_partner_id(r.partner_id());
                         k.set_label(r.label());
                         k.set_state(v1::API_KEY_STATE_ACTIVE);
                         *k.mutable_created_at() = ToProtoTime(now);
                         if (r.has_expires_at()) *k.mutable_expires_at() = ToProtoTime(FromProtoTime(r.expires_at()));
                         k.set_created_by_key_id(p.key_id);
                         RETURN_IF_ERROR(tx.InsertApiKey(k, crypto::ToHex(minted.record.secret_sha256)));
                         RETURN_IF_ERROR(Audit(tx, p, "CreateApiKey", "api_key", k.key_id(), nullptr, &k,
                                               r.idempotency_key(), "", now));
                         *response.mutable_api_key() = std::move(k);
                         return absl::OkStatus();
                       }));
  if (out.api_key().key_id() == minted.record.key_id) out.set_secret(minted.api_key);  // not a replay
  return out;
}

absl::StatusOr<v1::RotateApiKeyResponse> ApiKeys::RotateApiKey(const Principal& p,
                                                               const v1::RotateApiKeyRequest& r) {
  RETURN_IF_ERROR(ValidateId("key_id", r.key_id()));
  if (r.grace_period_seconds() < 0 || r.grace_period_seconds() > kMaxGraceSeconds) {
    return Invalid("grace_period_seconds", "within 0..604800");
  }
  const int64_t grace = r.grace_period_seconds() == 0 ? kDefaultGraceSeconds : r.grace_period_seconds();
  const absl::Time now = deps_.Now();
  ASSIGN_OR_RETURN(auth::MintedKey minted, Mint(now));
  ASSIGN_OR_RETURN(
      v1::RotateApiKeyResponse out,
      Mutate<v1::RotateApiKeyResponse>(
          deps_.store, p, "RotateApiKey", r.idempotency_key(), r,
          [&](SettlementTx& tx, v1::RotateApiKeyResponse& response) -> absl::Status {
            ASSIGN_OR_RETURN(std::optional<v1::ApiKey> found, tx.GetApiKey(r.key_id(), true));
            if (!found.has_value()) return absl::NotFoundError(absl::StrCat("key '", r.key_id(), "' not found"));
            const v1::ApiKey before = Effective(*found, now);
            if (before.state() != v1::API_KEY_STATE_ACTIVE) {
              return absl::FailedPreconditionError(
                  absl::StrCat("key is ", v1::ApiKeyState_Name(before.state()), ", not ACTIVE"));
            }
            v1::ApiKey next;
            next.set_key_id(minted.record.key_id);
            next.set_role(before.role());
            next.set_partner_id(before.partner_id());
            next.set_label(before.label());
            next.set_state(v1::API_KEY_STATE_ACTIVE);
            *next.mutable_created_at() = ToProtoTime(now);
            next.set_replaces_key_id(before.key_id());
            next.set_created_by_key_id(p.key_id);
            v1::ApiKey old = before;
            old.set_state(v1::API_KEY_STATE_ROTATING);
            absl::Time until = now + absl::Seconds(grace);
            if (old.has_expires_at()) until = std::min(until, FromProtoTime(old.expires_at()));
            *old.mutable_expires_at() = ToProtoTime(until);
            old.set_replaced_by_key_id(next.key_id());
            RETURN_IF_ERROR(tx.InsertApiKey(next, crypto::ToHex(minted.record.secret_sha256)));
            RETURN_IF_ERROR(tx.UpdateApiKey(old));
            RETURN_IF_ERROR(Audit(tx, p, "RotateApiKey", "api_key", old.key_id(), &before, &old,
                                  r.idempotency_key(), "", now));
            RETURN_IF_ERROR(Audit(tx, p, "RotateApiKey", "api_key", next.key_id(), nullptr, &next,
                                  r.idempotency_key(), "", now));
            *response.mutable_api_key() = std::move(next);
            *response.mutable_previous_api_key() = std::move(old);
            return absl::OkStatus();
          }));
  if (out.api_key().key_id() == minted.record.key_id) out.set_secret(minted.api_key);
  return out;
}

absl::StatusOr<v1::RevokeApiKeyResponse> ApiKeys::RevokeApiKey(const Principal& p,
                                                               const v1::RevokeApiKeyRequest& r) {
  RETURN_IF_ERROR(ValidateId("key_id", r.key_id()));
  RETURN_IF_ERROR(ValidateText("reason", r.reason(), 1, 500));
  const absl::Time now = deps_.Now();
  return Mutate<v1::RevokeApiKeyResponse>(
      deps_.store, p, "RevokeApiKey", r.idempotency_key(), r,
      [&](SettlementTx& tx, v1::RevokeApiKeyResponse& out) -> absl::Status {
        ASSIGN_OR_RETURN(std::optional<v1::ApiKey> found, tx.GetApiKey(r.key_id(), true));
        if (!found.has_value()) return absl::NotFoundError(absl::StrCat("key '", r.key_id(), "' not found"));
        if (found->state() == v1::API_KEY_STATE_REVOKED) return absl::FailedPreconditionError("key already revoked");
        v1::ApiKey after = *found;
        after.set_state(v1::API_KEY_STATE_REVOKED);
        *after.mutable_revoked_at() = ToProtoTime(now);
        RETURN_IF_ERROR(tx.UpdateApiKey(after));
        RETURN_IF_ERROR(Audit(tx, p, "RevokeApiKey", "api_key", after.key_id(), &*found, &after, r.idempotency_key(),
                              r.reason(), now));
        *out.mutable_api_key() = std::move(after);
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::ListApiKeysResponse> ApiKeys::ListApiKeys(const Principal& /*p*/,
                                                             const v1::ListApiKeysRequest& r) {
  if (!r.partner_id().empty()) RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  ASSIGN_OR_RETURN(int page_size, paging::PageSize(r.page_size(), 50, 500));
  const std::string scope = absl::StrCat("keys:", r.partner_id(), ":", r.role(), ":", r.include_inactive());
  int64_t before_id = 0;
  if (!r.page_token().empty()) {
    ASSIGN_OR_RETURN(before_id, paging::DecodePageToken(r.page_token(), scope));
  }
  const absl::Time now = deps_.Now();
  v1::ListApiKeysResponse out;
  RETURN_IF_ERROR(deps_.store.Run("ListApiKeys", [&](SettlementTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(auto rows, tx.ListApiKeys(r.partner_id(), before_id, page_size + 1));
    const bool more = static_cast<int>(rows.size()) > page_size;
    if (more) rows.pop_back();
    for (auto& [id, k] : rows) {
      v1::ApiKey key = Effective(std::move(k), now);
      if (r.role() != common::v1::ROLE_UNSPECIFIED && key.role() != r.role()) continue;
      if (!r.include_inactive() && !Usable(key)) continue;
      *out.add_api_keys() = std::move(key);
    }
    if (more) out.set_next_page_token(paging::EncodePageToken(scope, rows.back().first));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::AuthenticateApiKeyResponse> ApiKeys::AuthenticateApiKey(
    const Principal& /*p*/, const v1::AuthenticateApiKeyRequest& r) {
  bool hex = r.key_hash().size() == 64;
  for (char c : r.key_hash()) hex = hex && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  if (!hex) return Invalid("key_hash", "64 lower-case hex characters");
  const absl::Time now = deps_.Now();
  v1::AuthenticateApiKeyResponse out;
  RETURN_IF_ERROR(deps_.store.Run("AuthenticateApiKey", [&](SettlementTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(std::optional<v1::ApiKey> found, tx.FindApiKeyByHash(r.key_hash()));
    // Unknown, revoked and expired keys look the same to the caller.
    if (!found.has_value() || !Usable(Effective(*found, now))) return absl::NotFoundError("unknown key");
    out.set_key_id(found->key_id());
    out.set_role(found->role());
    out.set_partner_id(found->partner_id());
    if (found->has_expires_at()) *out.mutable_expires_at() = found->expires_at();
    out.set_cache_ttl_seconds(kAuthCacheTtlSeconds);
    if (found->role() == common::v1::ROLE_PARTNER) {
      ASSIGN_OR_RETURN(v1::Partner partner, LoadPartner(tx, found->partner_id(), false));
      out.set_partner_status(partner.status());
      out.set_rate_limit_per_second(partner.rate_limit_per_second());
      out.set_rate_limit_burst(partner.rate_limit_burst());
    }
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace loyalty::settlement
