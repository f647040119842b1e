#pragma once
// API keys for tests: one key per role and one per partner id, held in an
// InMemoryKeyStore behind an Authenticator (for in-process servers), and
// written as a keys file on request (for service binaries, --api_keys_file).

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/auth/authenticator.h"
#include "common/auth/key_store.h"

namespace loyalty::testing {

class TestKeyring {
 public:
  // Mints the keys (aborts if the random generator fails).
  explicit TestKeyring(std::vector<std::string> partner_ids = {"vet"});
  ~TestKeyring();  // removes the keys files it wrote

  const std::string& backoffice() const { return backoffice_; }
  const std::string& finance() const { return finance_; }
  const std::string& service() const { return service_; }
  // REQUIRES: `partner_id` was given to the constructor.
  const std::string& partner(const std::string& partner_id) const;
  // The key of `role`; for ROLE_PARTNER, the first partner's.
  const std::string& ForRole(auth::Role role) const;
  const std::vector<std::string>& partner_ids() const { return partner_ids_; }

  auth::InMemoryKeyStore& store() { return store_; }
  // No cache, so a revocation in store() applies at once.
  auth::Authenticator& authenticator() { return *authenticator_; }

  // Writes every key's record (hashes only) to a new temporary keys file,
  // removed by the destructor; returns its path.
  absl::StatusOr<std::string> WriteKeysFile();

 private:
  std::string Mint(auth::Role role, const std::string& partner_id);

  std::vector<std::string> partner_ids_;
  std::string backoffice_, finance_, service_;
  std::map<std::string, std::string> partners_;
  std::vector<auth::ApiKeyRecord> records_;
  auth::InMemoryKeyStore store_;
  std::unique_ptr<auth::Authenticator> authenticator_;
  std::vector<std::string> files_;
};

}  // namespace loyalty::testing
