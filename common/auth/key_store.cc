#include "common/auth/key_store.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/auth/api_key.h"

namespace loyalty::auth {

Principal ApiKeyRecord::ToPrincipal() const {
  if (role == common::v1::ROLE_PARTNER) return Principal::Partner(key_id, partner_id);
  return Principal::Of(key_id, role);
}

absl::Status ValidatePartnerId(absl::string_view partner_id) {
  if (partner_id.empty() || partner_id.size() > kMaxPartnerIdLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("partner_id: 1 to ", kMaxPartnerIdLength, " characters required"));
  }
  for (char c : partner_id) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_' && c != '.') {
      return absl::InvalidArgumentError("partner_id: only letters, digits and - _ . are allowed");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateRecord(const ApiKeyRecord& record) {
  bool id_ok = record.key_id.size() == kKeyIdLength;
  for (char c : record.key_id) {
    id_ok = id_ok && (absl::ascii_isdigit(c) || (c >= 'a' && c <= 'f'));
  }
  if (!id_ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("key_id: expected ", kKeyIdLength, " lower-case hex characters"));
  }
  if (record.role == common::v1::ROLE_UNSPECIFIED || !common::v1::Role_IsValid(record.role)) {
    return absl::InvalidArgumentError("role: required (ROLE_PARTNER, ROLE_BACKOFFICE, ROLE_FINANCE or ROLE_SERVICE)");
  }
  if (record.role == common::v1::ROLE_PARTNER) {
    if (absl::Status s = ValidatePartnerId(record.partner_id); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(s.message(), " (for ROLE_PARTNER)"));
    }
  } else if (!record.partner_id.empty()) {
    return absl::InvalidArgumentError("partner_id: only ROLE_PARTNER keys have one");
  }
  if (record.description.size() > kMaxKeyDescriptionLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("description: longer than ", kMaxKeyDescriptionLength, " characters"));
  }
  return absl::OkStatus();
}

absl::Status InMemoryKeyStore::Put(ApiKeyRecord record) {
  if (absl::Status s = ValidateRecord(record); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  std::string id = record.key_id;
  keys_.insert_or_assign(std::move(id), std::move(record));
  return absl::OkStatus();
}

absl::Status InMemoryKeyStore::Revoke(absl::string_view key_id) {
  absl::MutexLock lock(&mu_);
  auto it = keys_.find(key_id);
  if (it == keys_.end()) return absl::NotFoundError(absl::StrCat("no API key ", key_id));
  it->second.revoked = true;
  return absl::OkStatus();
}

absl::StatusOr<ApiKeyRecord> InMemoryKeyStore::Find(absl::string_view key_id) {
  absl::MutexLock lock(&mu_);
  ++find_calls_;
  auto it = keys_.find(key_id);
  if (it == keys_.end()) return absl::NotFoundError(absl::StrCat("no API key ", key_id));
  return it->second;
}

int64_t InMemoryKeyStore::find_calls() const {
  absl::MutexLock lock(&mu_);
  return find_calls_;
}

}  // namespace loyalty::auth
