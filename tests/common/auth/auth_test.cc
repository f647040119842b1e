// common/auth: key stores, the keys file, minting, the Authenticator and the
// allowed_roles check. loyalty-keygen end to end. Needs no database.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/auth/api_key.h"
#include "common/auth/authenticator.h"
#include "common/auth/file_key_store.h"
#include "common/auth/key_mint.h"
#include "common/log/log.h"
#include "gtest/gtest.h"
#include "loyalty/ledger/v1/ledger.pb.h"

namespace loyalty::auth {
namespace {

using common::v1::ROLE_BACKOFFICE;
using common::v1::ROLE_FINANCE;
using common::v1::ROLE_PARTNER;
using common::v1::ROLE_SERVICE;

std::string TempPath() {
  char path[] = "/tmp/loyalty-auth-test-XXXXXX";
  const int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  ::close(fd);
  std::remove(path);
  return path;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void WriteAll(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".new";
  std::ofstream(tmp) << text;
  ASSERT_EQ(std::rename(tmp.c_str(), path.c_str()), 0);
}

std::vector<absl::string_view> Header(const std::string& value) { return {value}; }

MintedKey Mint(Role role, const std::string& partner = "") {
  absl::StatusOr<MintedKey> k = MintApiKey(role, partner, "test");
  EXPECT_TRUE(k.ok()) << k.status();
  return *k;
}

// ---- Minting ----------------------------------------------------------------

TEST(MintApiKey, MakesWellFormedDistinctKeysWhoseHashMatches) {
  std::set<std::string> seen;
  for (int i = 0; i < 50; ++i) {
    MintedKey k = Mint(ROLE_PARTNER, "vet-clinic");
    std::optional<ParsedApiKey> parsed = ParseApiKey(k.api_key);
    ASSERT_TRUE(parsed.has_value()) << k.api_key;
    EXPECT_EQ(parsed->key_id, k.record.key_id);
    EXPECT_TRUE(crypto::DigestEquals(crypto::Sha256(parsed->secret), k.record.secret_sha256));
    EXPECT_EQ(k.record.role, ROLE_PARTNER);
    EXPECT_EQ(k.record.partner_id, "vet-clinic");
    EXPECT_TRUE(seen.insert(k.api_key).second);
  }
}

TEST(MintApiKey, RefusesInvalidRolePartnerCombinations) {
  EXPECT_EQ(MintApiKey(ROLE_PARTNER, "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MintApiKey(ROLE_PARTNER, "bad id!").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MintApiKey(ROLE_BACKOFFICE, "vet").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MintApiKey(common::v1::ROLE_UNSPECIFIED, "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MintApiKey(static_cast<Role>(42), "").status().code(), absl::StatusCode::kInvalidArgument);
}

// ---- Authenticator ----------------------------------------------------------

class AuthenticatorTest : public ::testing::Test {
 protected:
  AuthenticatorTest() {
    AuthenticatorOptions options;
    options.cache_ttl = absl::Seconds(10);
    options.max_cached_keys = 3;
    options.now = [this] { return now_; };
    authenticator_ = std::make_unique<Authenticator>(store_, options);
  }

  MintedKey Add(Role role, const std::string& partner = "") {
    MintedKey k = Mint(role, partner);
    EXPECT_TRUE(store_.Put(k.record).ok());
    return k;
  }

  absl::StatusOr<Principal> Auth(const std::string& key) {
    return authenticator_->Authenticate(Header("Bearer " + key));
  }

  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
  InMemoryKeyStore store_;
  std::unique_ptr<Authenticator> authenticator_;
};

TEST_F(AuthenticatorTest, AValidKeyResolvesToItsPrincipal) {
  MintedKey partner = Add(ROLE_PARTNER, "vet-clinic");
  MintedKey finance = Add(ROLE_FINANCE);
  absl::StatusOr<Principal> p = Auth(partner.api_key);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->key_id, partner.record.key_id);
  EXPECT_TRUE(p->is_partner());
  EXPECT_EQ(p->partner_id, "vet-clinic");
  EXPECT_EQ(p->idempotency_scope(), "key:" + partner.record.key_id);
  absl::StatusOr<Principal> f = Auth(finance.api_key);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE(f->is_finance());
  EXPECT_EQ(f->partner_id, "");
}

TEST_F(AuthenticatorTest, RefusalsAreUnauthenticatedAndNeverShowTheSecret) {
  MintedKey good = Add(ROLE_SERVICE);
  const std::string secret = good.api_key.substr(20);
  std::string wrong_secret = secret;
  wrong_secret[0] = wrong_secret[0] == 'A' ? 'B' : 'A';
  MintedKey revoked = Add(ROLE_BACKOFFICE);
  ASSERT_TRUE(store_.Revoke(revoked.record.key_id).ok());
  MintedKey expiring = Mint(ROLE_BACKOFFICE);
  expiring.record.expires_at = now_ - absl::Seconds(1);
  ASSERT_TRUE(store_.Put(expiring.record).ok());
  const MintedKey unknown = Mint(ROLE_BACKOFFICE);  // never stored

  struct Case {
    std::vector<std::string> headers;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{}, "authorization: missing"},
      {{"Bearer " + good.api_key, "Bearer " + good.api_key}, "sent more than once"},
      {{"Basic " + good.api_key}, "malformed"},
      {{"Bearer lk_" + good.record.key_id + "_" + secret + "x"}, "malformed"},
      {{"Bearer lk_" + good.record.key_id + "_" + wrong_secret}, "wrong secret for API key " + good.record.key_id},
      {{"Bearer " + unknown.api_key}, "unknown API key " + unknown.record.key_id},
      {{"Bearer " + revoked.api_key}, "has been revoked"},
      {{"Bearer " + expiring.api_key}, "has expired"},
  };
  for (const Case& c : cases) {
    std::vector<absl::string_view> headers(c.headers.begin(), c.headers.end());
    absl::StatusOr<Principal> p = authenticator_->Authenticate(headers);
    EXPECT_EQ(p.status().code(), absl::StatusCode::kUnauthenticated) << c.message << ": " << p.status();
    EXPECT_TRUE(absl::StrContains(p.status().message(), c.message)) << p.status();
    for (const std::string& h : c.headers) {
      EXPECT_FALSE(absl::StrContains(p.status().message(), h.substr(h.size() - 43))) << p.status();
    }
  }
  EXPECT_TRUE(Auth(good.api_key).ok());
}

TEST_F(AuthenticatorTest, CachesLookupsForTheTtlButChecksTheSecretEveryTime) {
  MintedKey k = Add(ROLE_PARTNER, "vet");
  ASSERT_TRUE(Auth(k.api_key).ok());
  ASSERT_TRUE(Auth(k.api_key).ok());
  EXPECT_EQ(store_.find_calls(), 1);
  std::string forged = k.api_key;
  forged.back() = forged.back() == 'A' ? 'B' : 'A';
  EXPECT_EQ(Auth(forged).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(store_.find_calls(), 1);

  // A revocation applies once the cached record has expired.
  ASSERT_TRUE(store_.Revoke(k.record.key_id).ok());
  now_ += absl::Seconds(9);
  EXPECT_TRUE(Auth(k.api_key).ok());
  now_ += absl::Seconds(2);
  absl::StatusOr<Principal> later = Auth(k.api_key);
  EXPECT_EQ(later.status().code(), absl::StatusCode::kUnauthenticated) << later.status();
  EXPECT_EQ(store_.find_calls(), 2);

  // Unknown keys are not cached: each attempt asks the store.
  const MintedKey unknown = Mint(ROLE_FINANCE);
  EXPECT_FALSE(Auth(unknown.api_key).ok());
  EXPECT_FALSE(Auth(unknown.api_key).ok());
  EXPECT_EQ(store_.find_calls(), 4);
}

TEST_F(AuthenticatorTest, TheCacheIsBounded) {
  std::vector<MintedKey> keys;
  for (int i = 0; i < 10; ++i) keys.push_back(Add(ROLE_SERVICE));
  for (const MintedKey& k : keys) {
    ASSERT_TRUE(Auth(k.api_key).ok());
    EXPECT_LE(authenticator_->cached_keys(), 3u);
  }
  for (const MintedKey& k : keys) EXPECT_TRUE(Auth(k.api_key).ok());
}

TEST_F(AuthenticatorTest, StoreFailuresPassThrough) {
  class DownStore final : public KeyStore {
   public:
    absl::StatusOr<ApiKeyRecord> Find(absl::string_view) override {
      return absl::UnavailableError("settlement is down");
    }
  } down;
  Authenticator authenticator(down);
  absl::StatusOr<Principal> p = authenticator.Authenticate(Header("Bearer " + Mint(ROLE_SERVICE).api_key));
  EXPECT_EQ(p.status().code(), absl::StatusCode::kUnavailable) << p.status();
}

// ---- Authorize --------------------------------------------------------------

const google::protobuf::MethodDescriptor& LedgerMethod(const std::string& name) {
  const google::protobuf::MethodDescriptor* m =
      ledger::v1::EarnRequest::descriptor()->file()->FindServiceByName("LedgerService")->FindMethodByName(name);
  EXPECT_NE(m, nullptr) << name;
  return *m;
}

TEST(Authorize, FollowsTheAllowedRolesOption) {
  const Principal partner = Principal::Partner("0123456789abcdef", "vet");
  const Principal backoffice = Principal::Of("0123456789abcdee", ROLE_BACKOFFICE);
  const Principal finance = Principal::Of("0123456789abcded", ROLE_FINANCE);
  EXPECT_TRUE(Authorize(partner, LedgerMethod("Earn")).ok());
  EXPECT_TRUE(Authorize(backoffice, LedgerMethod("Adjust")).ok());
  EXPECT_TRUE(Authorize(finance, LedgerMethod("ReadJournal")).ok());
  absl::Status denied = Authorize(partner, LedgerMethod("Adjust"));
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(denied.message(),
            "role ROLE_PARTNER may not call loyalty.ledger.v1.LedgerService/Adjust (allowed: ROLE_BACKOFFICE)");
  EXPECT_EQ(Authorize(finance, LedgerMethod("Earn")).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(AllowedRoles(LedgerMethod("GrantBonus")), (std::vector<Role>{ROLE_BACKOFFICE, ROLE_SERVICE}));
}

// ---- The keys file ----------------------------------------------------------

TEST(KeysFile, AppendedKeysAuthenticateAndTheFileHoldsNoSecret) {
  const std::string path = TempPath();
  MintedKey a = Mint(ROLE_PARTNER, "vet-clinic");
  MintedKey b = Mint(ROLE_FINANCE);
  ASSERT_TRUE(AppendToKeysFile(path, a.record).ok());
  ASSERT_TRUE(AppendToKeysFile(path, b.record).ok());
  EXPECT_EQ(AppendToKeysFile(path, a.record).code(), absl::StatusCode::kAlreadyExists);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string text = ReadAll(path);
  EXPECT_FALSE(absl::StrContains(text, a.api_key.substr(20)));
  EXPECT_FALSE(absl::StrContains(text, b.api_key.substr(20)));
  EXPECT_TRUE(absl::StrContains(text, "\"ROLE_PARTNER\"")) << text;
  EXPECT_TRUE(absl::StrContains(text, crypto::ToHex(a.record.secret_sha256))) << text;

  absl::StatusOr<std::unique_ptr<FileKeyStore>> store = FileKeyStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->size(), 2u);
  Authenticator authenticator(**store);
  absl::StatusOr<Principal> p = authenticator.Authenticate(Header("Bearer " + a.api_key));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->partner_id, "vet-clinic");
  std::remove(path.c_str());
  std::remove((path + ".lock").c_str());
}

TEST(KeysFile, BadFilesAreRefusedNamingTheEntry) {
  EXPECT_EQ(FileKeyStore::Open("/nonexistent/keys.json").status().code(), absl::StatusCode::kNotFound);
  const std::string path = TempPath();
  const std::string hash(64, 'a');
  struct Case {
    std::string json;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"not json", ""},
      {R"({"keys":[{"keyId":"0123456789abcdef","secret":"plaintext","role":"ROLE_FINANCE"}]})", "secret"},
      {R"({"keys":[{"keyId":"0123456789ABCDEF","secretSha256":")" + hash + R"(","role":"ROLE_FINANCE"}]})",
       "keys[0] (keyId '0123456789ABCDEF'): key_id"},
      {R"({"keys":[{"keyId":"0123456789abcdef","secretSha256":"abc","role":"ROLE_FINANCE"}]})", "secretSha256"},
      {R"({"keys":[{"keyId":"0123456789abcdef","secretSha256":")" + hash + R"("}]})", "role: required"},
      {R"({"keys":[{"keyId":"0123456789abcdef","secretSha256":")" + hash + R"(","role":"ROLE_PARTNER"}]})",
       "partner_id"},
      {R"({"keys":[{"keyId":"0123456789abcdef","secretSha256":")" + hash +
           R"(","role":"ROLE_FINANCE"},{"keyId":"0123456789abcdef","secretSha256":")" + hash +
           R"(","role":"ROLE_SERVICE"}]})",
       "keys[1]: keyId '0123456789abcdef' appears twice"},
  };
  for (const Case& c : cases) {
    WriteAll(path, c.json);
    absl::StatusOr<std::unique_ptr<FileKeyStore>> store = FileKeyStore::Open(path);
    EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument) << c.json;
    EXPECT_TRUE(absl::StrContains(store.status().message(), c.message)) << store.status();
  }
  WriteAll(path, "{}");
  absl::StatusOr<std::unique_ptr<FileKeyStore>> empty = FileKeyStore::Open(path);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ((*empty)->size(), 0u);
  std::remove(path.c_str());
}

TEST(KeysFile, ChangesAreReloadedAndABadRewriteKeepsTheOldKeys) {
  const std::string path = TempPath();
  MintedKey a = Mint(ROLE_SERVICE);
  ASSERT_TRUE(AppendToKeysFile(path, a.record).ok());
  FileKeyStoreOptions options;
  options.refresh_interval = absl::ZeroDuration();
  absl::StatusOr<std::unique_ptr<FileKeyStore>> store = FileKeyStore::Open(path, options);
  ASSERT_TRUE(store.ok()) << store.status();
  MintedKey b = Mint(ROLE_BACKOFFICE);
  EXPECT_EQ((*store)->Find(b.record.key_id).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(AppendToKeysFile(path, b.record).ok());
  EXPECT_TRUE((*store)->Find(b.record.key_id).ok());

  // Revoked by rewriting the file.
  a.record.revoked = true;
  absl::StatusOr<std::string> json = KeysFileJson({a.record, b.record});
  ASSERT_TRUE(json.ok());
  WriteAll(path, *json);
  absl::StatusOr<ApiKeyRecord> found = (*store)->Find(a.record.key_id);
  ASSERT_TRUE(found.ok());
  EXPECT_TRUE(found->revoked);

  // A rewrite that does not parse is ignored; the log does not quote it.
  std::vector<std::string> logged;
  log::SetSinkForTesting([&](absl::string_view line) { logged.emplace_back(line); });
  WriteAll(path, "{ \"keys\": [ lk_0123456789abcdef_" + std::string(43, 'S'));
  EXPECT_TRUE((*store)->Find(b.record.key_id).ok());
  log::SetSinkForTesting(nullptr);
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_TRUE(absl::StrContains(logged[0], "event=api_keys_reload_failed")) << logged[0];
  EXPECT_FALSE(absl::StrContains(logged[0], std::string(43, 'S'))) << logged[0];
  EXPECT_EQ((*store)->size(), 2u);
  std::remove(path.c_str());
  std::remove((path + ".lock").c_str());
}

// ---- loyalty-keygen ---------------------------------------------------------

struct KeygenRun {
  int exit_code;
  std::string out;
};

KeygenRun Keygen(const std::string& args) {
  const std::string out_path = TempPath();
  const std::string cmd = absl::StrCat(LOYALTY_KEYGEN, " ", args, " >", out_path, " 2>/dev/null");
  const int rc = std::system(cmd.c_str());
  KeygenRun run{WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, ReadAll(out_path)};
  std::remove(out_path.c_str());
  return run;
}

TEST(Keygen, PrintsTheKeyOnceAndStoresOnlyItsHash) {
  const std::string path = TempPath();
  KeygenRun run = Keygen(absl::StrCat("--role=partner --partner_id=vet-clinic --description=POS --keys_file=", path));
  ASSERT_EQ(run.exit_code, 0) << run.out;
  std::vector<std::string> lines = absl::StrSplit(run.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 1u) << run.out;
  const std::string key = lines[0];
  ASSERT_TRUE(ParseApiKey(key).has_value()) << key;
  EXPECT_FALSE(absl::StrContains(ReadAll(path), key.substr(20)));

  absl::StatusOr<std::unique_ptr<FileKeyStore>> store = FileKeyStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  Authenticator authenticator(**store);
  absl::StatusOr<Principal> p = authenticator.Authenticate(Header("Bearer " + key));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->is_partner());
  EXPECT_EQ(p->partner_id, "vet-clinic");

  // Without --keys_file the hashed entry follows the key.
  KeygenRun printed = Keygen("--role=finance");
  ASSERT_EQ(printed.exit_code, 0);
  lines = absl::StrSplit(printed.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << printed.out;
  EXPECT_TRUE(absl::StrContains(lines[1], "\"secretSha256\":\"")) << lines[1];
  EXPECT_TRUE(absl::StrContains(lines[1], "\"ROLE_FINANCE\"")) << lines[1];
  EXPECT_FALSE(absl::StrContains(lines[1], lines[0].substr(20)));

  EXPECT_EQ(Keygen("--role=partner").exit_code, 2);
  EXPECT_EQ(Keygen("--role=finance --partner_id=vet").exit_code, 2);
  EXPECT_EQ(Keygen("--role=root").exit_code, 2);
  EXPECT_EQ(Keygen("--nope").exit_code, 2);
  std::remove(path.c_str());
  std::remove((path + ".lock").c_str());
}

}  // namespace
}  // namespace loyalty::auth
