// TLS and mutual TLS on a service binary (the ledger stands in for all four:
// the transport comes from common/server). Certificates are made for the
// test with the openssl command: a CA, a server certificate for localhost, a
// client certificate for partner "vet" (CN partner:vet), one for a staff tool,
// and one from a CA the server does not trust. loyalty-healthcheck is
// checked against the same servers.
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/testing/service_process.h"
#include "common/testing/test_db.h"
#include "common/testing/test_keys.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "loyalty/ledger/v1/ledger.grpc.pb.h"

namespace loyalty {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class TlsE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/loyalty-tls-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = new std::string(tmpl);
    const std::string& d = *dir_;
    const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    const std::string script = absl::StrCat(
        "set -e; cd ", d, ";",
        "openssl req -x509 ", key, " -keyout ca.key -out ca.pem -days 2 -subj /CN=loyalty-test-ca;",
        "openssl req -x509 ", key, " -keyout rogue-ca.key -out rogue-ca.pem -days 2 -subj /CN=rogue-ca;",
        "openssl req ", key, " -keyout server.key -out server.csr -subj /CN=localhost",
        " -addext subjectAltName=DNS:localhost,IP:127.0.0.1;",
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem",
        " -days 2 -copy_extensions copy;",
        "for c in partner:vet backoffice-tool; do n=$(echo $c | tr : -);",
        " openssl req ", key, " -keyout $n.key -out $n.csr -subj /CN=$c;",
        " openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out $n.pem -days 2; done;",
        "openssl req ", key, " -keyout rogue.key -out rogue.csr -subj /CN=partner:vet;",
        "openssl x509 -req -in rogue.csr -CA rogue-ca.pem -CAkey rogue-ca.key -CAcreateserial",
        " -out rogue.pem -days 2",
        " >/dev/null 2>&1");
    ASSERT_EQ(std::system(("bash -c '" + script + "' >/dev/null 2>&1").c_str()), 0) << script;
  }
  static void TearDownTestSuite() {
    std::system(("rm -rf " + *dir_).c_str());
    delete dir_;
  }

  void SetUp() override {
    auto db = testing::TestDatabase::Create("tls");
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    auto keys_file = keys_.WriteKeysFile();
    ASSERT_TRUE(keys_file.ok()) << keys_file.status();
    keys_file_ = *keys_file;
  }

  // Ready when a staff tool's TLS call gets an answer from the service.
  absl::StatusOr<std::unique_ptr<testing::ServiceProcess>> StartLedger(std::vector<std::string> args) {
    args.push_back("--hold_sweep_interval_ms=0");
    args.push_back("--expiry_interval_ms=0");
    return StartService("ledger", *db_, args, {});
  }

  absl::StatusOr<std::unique_ptr<testing::ServiceProcess>> StartService(
      const std::string& name, const testing::TestDatabase& db, const std::vector<std::string>& args,
      const testing::ServiceProcess::EnvVars& extra_env) {
    auto ready = [this](const std::string& address) -> absl::Status {
      grpc::Status s = Call(address, "backoffice-tool", keys_.backoffice());
      return s.error_code() != grpc::StatusCode::UNAVAILABLE ? absl::OkStatus()
                                                             : absl::UnavailableError(s.error_message());
    };
    testing::ServiceProcess::EnvVars env = testing::ServiceDbEnv(db, keys_file_);
    env.insert(env.end(), extra_env.begin(), extra_env.end());
    return testing::ServiceProcess::Start(absl::StrCat(LOYALTY_BIN_DIR, "/", name, "/loyalty-", name), args, env,
                                          absl::Seconds(20), ready);
  }

  std::vector<std::string> ServerTls(bool mutual) {
    std::vector<std::string> args = {absl::StrCat("--tls_cert_file=", *dir_, "/server.pem"),
                                     absl::StrCat("--tls_key_file=", *dir_, "/server.key")};
    if (mutual) args.push_back(absl::StrCat("--tls_client_ca_file=", *dir_, "/ca.pem"));
    return args;
  }

  // The call reached the ledger's domain code: GetBalance of a member that
  // never earned is NOT_FOUND.
  static bool GotThrough(const grpc::Status& s) { return s.error_code() == grpc::StatusCode::NOT_FOUND; }

  // GetBalance over TLS, presenting client certificate `client` ("" = none).
  grpc::Status Call(const testing::ServiceProcess& server, const std::string& client,
                    const std::string& api_key) {
    return Call(server.address(), client, api_key);
  }
  grpc::Status Call(const std::string& address, const std::string& client, const std::string& api_key) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = Slurp(*dir_ + "/ca.pem");
    if (!client.empty()) {
      ssl.pem_private_key = Slurp(*dir_ + "/" + client + ".key");
      ssl.pem_cert_chain = Slurp(*dir_ + "/" + client + ".pem");
    }
    grpc::ChannelArguments channel_args;
    channel_args.SetSslTargetNameOverride("localhost");
    auto channel = grpc::CreateCustomChannel(address, grpc::SslCredentials(ssl), channel_args);
    return GetBalance(channel, api_key);
  }

  static grpc::Status GetBalance(const std::shared_ptr<grpc::Channel>& channel, const std::string& api_key) {
    auto stub = ledger::v1::LedgerService::NewStub(channel);
    ledger::v1::GetBalanceRequest req;
    req.set_member_id("m1");
    ledger::v1::GetBalanceResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    ctx.AddMetadata("authorization", "Bearer " + api_key);
    return stub->GetBalance(&ctx, req, &resp);
  }

  struct Run {
    int exit_code = -1;
    std::string out;  // stdout and stderr
  };
  // loyalty-healthcheck against `address`, with the TLS files `ca` and
  // `client` (".pem"/".key" of a certificate made above; "" = none) in the
  // LOYALTY_TLS_* variables, as a deploy script would set them.
  static Run Healthcheck(const std::string& address, const std::string& ca, const std::string& client) {
    std::string env = "env -u LOYALTY_TLS_CA_FILE -u LOYALTY_TLS_CERT_FILE -u LOYALTY_TLS_KEY_FILE";
    if (!ca.empty()) absl::StrAppend(&env, " LOYALTY_TLS_CA_FILE=", *dir_, "/", ca);
    if (!client.empty()) {
      absl::StrAppend(&env, " LOYALTY_TLS_CERT_FILE=", *dir_, "/", client, ".pem LOYALTY_TLS_KEY_FILE=", *dir_, "/",
                      client, ".key");
    }
    const std::string cmd = absl::StrCat(env, " ", LOYALTY_HEALTHCHECK, " ", address, " --timeout_ms 3000 2>&1");
    Run run;
    std::FILE* p = popen(cmd.c_str(), "r");
    if (p == nullptr) return run;
    char buf[512];
    while (std::fgets(buf, sizeof buf, p) != nullptr) run.out += buf;
    const int rc = pclose(p);
    run.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    return run;
  }

  static std::string* dir_;
  testing::TestKeyring keys_{{"vet", "food"}};
  std::unique_ptr<testing::TestDatabase> db_;
  std::string keys_file_;
};

std::string* TlsE2E::dir_ = nullptr;

TEST_F(TlsE2E, ServerTlsServesTlsClientsAndRefusesPlaintext) {
  auto server = StartLedger(ServerTls(false));
  ASSERT_TRUE(server.ok()) << server.status();
  grpc::Status tls = Call(**server, "", keys_.partner("vet"));
  EXPECT_TRUE(GotThrough(tls)) << tls.error_message() << "\n" << (*server)->LogTail();
  grpc::Status plain = GetBalance(
      grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials()), keys_.partner("vet"));
  EXPECT_EQ(plain.error_code(), grpc::StatusCode::UNAVAILABLE) << plain.error_message();
}

TEST_F(TlsE2E, MutualTlsBindsAPartnerCertificateToThatPartnersKeys) {
  auto server = StartLedger(ServerTls(true));
  ASSERT_TRUE(server.ok()) << server.status();
  // The partner's own key over its own certificate.
  grpc::Status own = Call(**server, "partner-vet", keys_.partner("vet"));
  EXPECT_TRUE(GotThrough(own)) << own.error_message() << "\n" << (*server)->LogTail();
  // Another partner's key, or a staff key, over vet's certificate.
  grpc::Status other = Call(**server, "partner-vet", keys_.partner("food"));
  EXPECT_EQ(other.error_code(), grpc::StatusCode::PERMISSION_DENIED) << other.error_message();
  EXPECT_NE(other.error_message().find("client certificate is for partner 'vet'"), std::string::npos)
      << other.error_message();
  EXPECT_EQ(Call(**server, "partner-vet", keys_.backoffice()).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // A staff certificate does not restrict the key.
  EXPECT_TRUE(GotThrough(Call(**server, "backoffice-tool", keys_.backoffice())));
  EXPECT_TRUE(GotThrough(Call(**server, "backoffice-tool", keys_.partner("food"))));
  // No certificate, or one from a CA the server does not trust: no connection.
  EXPECT_EQ(Call(**server, "", keys_.partner("vet")).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Call(**server, "rogue", keys_.partner("vet")).error_code(), grpc::StatusCode::UNAVAILABLE);
  // The API key is still required.
  EXPECT_EQ(Call(**server, "partner-vet", "").error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

// Service to service: the ledger reads membership's member feed over mutual
// TLS, verifying membership with --peer_ca_file and presenting its own
// certificate.
TEST_F(TlsE2E, ServicesCallEachOtherOverMutualTls) {
  auto membership_db = testing::TestDatabase::Create("tlsmemb");
  ASSERT_TRUE(membership_db.ok()) << membership_db.status();
  auto membership = StartService("membership", **membership_db, ServerTls(true), {});
  ASSERT_TRUE(membership.ok()) << membership.status();
  std::vector<std::string> args = ServerTls(true);
  args.push_back(absl::StrCat("--peer_ca_file=", *dir_, "/ca.pem"));
  args.push_back(absl::StrCat("--membership_address=", (*membership)->address()));
  args.push_back("--earn_rules_refresh_ms=100");
  auto ledger = StartService("ledger", *db_, args, {{"LOYALTY_SERVICE_API_KEY", keys_.service()}});
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  // Membership logs each feed call it answered; the ledger says it is no
  // longer waiting for the feed.
  bool answered = false;
  for (int i = 0; i < 100 && !answered; ++i) {
    answered = (*membership)->LogTail(100'000).find("ListMemberSnapshots status=OK") != std::string::npos;
    if (!answered) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(answered) << (*membership)->LogTail() << "\n" << (*ledger)->LogTail();
  EXPECT_EQ((*ledger)->LogTail(100'000).find("earn_rules_feed_failed"), std::string::npos) << (*ledger)->LogTail();
}

// The health checker speaks the services' TLS, configured as loyaltyctl's
// (LOYALTY_TLS_*), and says SERVING only over a connection the server
// accepts.
TEST_F(TlsE2E, HealthcheckChecksOverTlsAndMutualTls) {
  auto server = StartLedger(ServerTls(false));
  ASSERT_TRUE(server.ok()) << server.status();
  Run tls = Healthcheck((*server)->address(), "ca.pem", "");
  EXPECT_EQ(tls.exit_code, 0) << tls.out;
  EXPECT_EQ(tls.out, absl::StrCat((*server)->address(), ": SERVING\n"));
  // Plaintext against a TLS server, or a server certificate the given CA did
  // not sign: not serving, and the status code by name.
  Run plain = Healthcheck((*server)->address(), "", "");
  EXPECT_EQ(plain.exit_code, 1) << plain.out;
  EXPECT_NE(plain.out.find("UNAVAILABLE"), std::string::npos) << plain.out;
  Run rogue = Healthcheck((*server)->address(), "rogue-ca.pem", "");
  EXPECT_EQ(rogue.exit_code, 1) << rogue.out;
  // An unreadable CA file is a usage error, not a plaintext fallback.
  Run missing = Healthcheck((*server)->address(), "nope.pem", "");
  EXPECT_EQ(missing.exit_code, 2) << missing.out;
  EXPECT_NE(missing.out.find("LOYALTY_TLS_*"), std::string::npos) << missing.out;
  server->reset();  // one ledger on the schema at a time

  auto mutual = StartLedger(ServerTls(true));
  ASSERT_TRUE(mutual.ok()) << mutual.status();
  Run with_cert = Healthcheck((*mutual)->address(), "ca.pem", "backoffice-tool");
  EXPECT_EQ(with_cert.exit_code, 0) << with_cert.out;
  EXPECT_EQ(with_cert.out, absl::StrCat((*mutual)->address(), ": SERVING\n"));
  EXPECT_EQ(Healthcheck((*mutual)->address(), "ca.pem", "").exit_code, 1);
  EXPECT_EQ(Healthcheck((*mutual)->address(), "ca.pem", "rogue").exit_code, 1);
}

TEST_F(TlsE2E, HalfATlsConfigurationStopsTheStart) {
  auto server = StartLedger({absl::StrCat("--tls_cert_file=", *dir_, "/server.pem")});
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.status().message().find("tls_cert_file and tls_key_file"), std::string::npos)
      << server.status();
  auto missing = StartLedger({absl::StrCat("--tls_cert_file=", *dir_, "/server.pem"),
                              absl::StrCat("--tls_key_file=", *dir_, "/nope.key")});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("tls_key_file: cannot read"), std::string::npos)
      << missing.status();
}

}  // namespace
}  // namespace loyalty
