#include "common/testing/test_keys.h"

#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "common/auth/file_key_store.h"
#include "common/auth/key_mint.h"

namespace loyalty::testing {

TestKeyring::TestKeyring(std::vector<std::string> partner_ids) : partner_ids_(std::move(partner_ids)) {
  backoffice_ = Mint(common::v1::ROLE_BACKOFFICE, "");
  finance_ = Mint(common::v1::ROLE_FINANCE, "");
  service_ = Mint(common::v1::ROLE_SERVICE, "");
  for (const std::string& p : partner_ids_) partners_[p] = Mint(common::v1::ROLE_PARTNER, p);
  auth::AuthenticatorOptions options;
  options.cache_ttl = absl::ZeroDuration();
  authenticator_ = std::make_unique<auth::Authenticator>(store_, options);
}

TestKeyring::~TestKeyring() {
  for (const std::string& f : files_) {
    std::remove(f.c_str());
    std::remove((f + ".lock").c_str());
  }
}

std::string TestKeyring::Mint(auth::Role role, const std::string& partner_id) {
  absl::StatusOr<auth::MintedKey> minted = auth::MintApiKey(role, partner_id, "test key");
  if (!minted.ok() || !store_.Put(minted->record).ok()) {
    std::fprintf(stderr, "TestKeyring: cannot mint a key: %s\n", minted.status().ToString().c_str());
    std::abort();
  }
  records_.push_back(minted->record);
  return minted->api_key;
}

const std::string& TestKeyring::partner(const std::string& partner_id) const {
  auto it = partners_.find(partner_id);
  if (it == partners_.end()) {
    std::fprintf(stderr, "TestKeyring: no key for partner '%s'\n", partner_id.c_str());
    std::abort();
  }
  return it->second;
}

const std::string& TestKeyring::ForRole(auth::Role role) const {
  switch (role) {
    case common::v1::ROLE_BACKOFFICE:
      return backoffice_;
    case common::v1::ROLE_FINANCE:
      return finance_;
    case common::v1::ROLE_SERVICE:
      return service_;
    case common::v1::ROLE_PARTNER:
      return partner(partner_ids_.at(0));
    default:
      std::fprintf(stderr, "TestKeyring: no key for role %d\n", static_cast<int>(role));
      std::abort();
  }
}

absl::StatusOr<std::string> TestKeyring::WriteKeysFile() {
  char dir_template[] = "/tmp/loyalty-keys-XXXXXX";
  const int fd = mkstemp(dir_template);
  if (fd < 0) return absl::UnavailableError("cannot create a temporary keys file");
  ::close(fd);
  std::remove(dir_template);  // AppendToKeysFile creates it (mode 0600)
  const std::string path = dir_template;
  files_.push_back(path);
  for (const auth::ApiKeyRecord& r : records_) {
    if (absl::Status s = auth::AppendToKeysFile(path, r); !s.ok()) return s;
  }
  return path;
}

}  // namespace loyalty::testing
