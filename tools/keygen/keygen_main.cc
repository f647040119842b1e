// loyalty-keygen: mints an API key for one role (and partner).
//
//   loyalty-keygen --role=partner --partner_id=vet-clinic [--description=TEXT]
//                  [--keys_file=PATH] [--expires_days=N]
//
// Prints the plaintext key "lk_<key_id>_<secret>" once, alone on the first
// line of stdout: hand it to its owner, it is not kept anywhere. With
// --keys_file the hashed entry (SHA-256 of the secret, role, partner) is added
// to that JSON keys file, created with mode 0600 if missing; the services
// reading it (--api_keys_file) pick the key up within --api_keys_refresh_ms.
// Without --keys_file the entry is printed as JSON on the second line, for
// adding to a keys file by hand.
//
// Exit codes: 0 ok; 2 bad usage; 1 the key could not be made or stored.
#include <cstdio>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/auth/file_key_store.h"
#include "common/auth/key_mint.h"
#include "common/config/config.h"

namespace {

using loyalty::auth::Role;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int64_t kMaxExpiresDays = 3650;

bool ParseRole(std::string text, Role* role) {
  text = absl::AsciiStrToLower(text);
  if (text == "partner") *role = loyalty::common::v1::ROLE_PARTNER;
  else if (text == "backoffice") *role = loyalty::common::v1::ROLE_BACKOFFICE;
  else if (text == "finance") *role = loyalty::common::v1::ROLE_FINANCE;
  else if (text == "service") *role = loyalty::common::v1::ROLE_SERVICE;
  else return false;
  return true;
}

int Usage(const std::string& message) {
  std::fprintf(stderr, "loyalty-keygen: %s\n(see --help)\n", message.c_str());
  return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  // The environment fallback (LOYALTY_<NAME>) is off: a stray LOYALTY_ROLE
  // must not silently choose a key's role.
  auto no_env = [](absl::string_view) -> std::optional<std::string> { return std::nullopt; };
  absl::StatusOr<loyalty::config::Config> config = loyalty::config::Config::Load(
      {
          {"role", "", "partner, backoffice, finance or service (required)"},
          {"partner_id", "", "the partner a partner key acts for (required for --role=partner)"},
          {"description", "", "whose key this is, for people reading the keys file"},
          {"keys_file", "", "add the hashed entry to this JSON keys file (created 0600 if missing)"},
          {"expires_days", "0", "days until the key expires; 0 = never"},
      },
      argc, argv, no_env);
  if (!config.ok()) return Usage(std::string(config.status().message()));
  if (config->help_requested()) {
    std::fputs(config->Help("loyalty-keygen").c_str(), stdout);
    std::fputs("\nPrints the new key on the first line of stdout; it is shown only once.\n", stdout);
    return kExitOk;
  }
  Role role;
  if (!ParseRole(config->GetString("role"), &role)) {
    return Usage("--role: one of partner, backoffice, finance, service");
  }
  absl::StatusOr<int64_t> expires_days = config->GetInt("expires_days", 0, kMaxExpiresDays);
  if (!expires_days.ok()) return Usage(std::string(expires_days.status().message()));

  const absl::Time now = absl::Now();
  absl::StatusOr<loyalty::auth::MintedKey> minted = loyalty::auth::MintApiKey(
      role, config->GetString("partner_id"), config->GetString("description"), now);
  if (!minted.ok()) {
    const bool usage = minted.status().code() == absl::StatusCode::kInvalidArgument;
    std::fprintf(stderr, "loyalty-keygen: %s\n", std::string(minted.status().message()).c_str());
    return usage ? kExitUsage : kExitFailed;
  }
  if (*expires_days > 0) minted->record.expires_at = now + absl::Hours(24 * *expires_days);

  const std::string& keys_file = config->GetString("keys_file");
  if (!keys_file.empty()) {
    absl::Status stored = loyalty::auth::AppendToKeysFile(keys_file, minted->record);
    if (!stored.ok()) {
      std::fprintf(stderr, "loyalty-keygen: %s\n", stored.ToString().c_str());
      return kExitFailed;
    }
  }
  absl::StatusOr<std::string> entry = loyalty::auth::KeyEntryJson(minted->record);
  if (!entry.ok()) {
    std::fprintf(stderr, "loyalty-keygen: %s\n", entry.status().ToString().c_str());
    return kExitFailed;
  }
  std::printf("%s\n", minted->api_key.c_str());
  if (keys_file.empty()) {
    std::printf("%s\n", entry->c_str());
  } else {
    std::fprintf(stderr, "loyalty-keygen: added key %s (%s%s) to %s\n", minted->record.key_id.c_str(),
                 loyalty::common::v1::Role_Name(role).c_str(),
                 minted->record.partner_id.empty() ? ""
                                                   : absl::StrCat(" ", minted->record.partner_id).c_str(),
                 keys_file.c_str());
  }
  return kExitOk;
}
