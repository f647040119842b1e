// The ledger binary end to end: it answers over gRPC, says UNAVAILABLE while
// its database is down and recovers by itself when it comes back, and
// loyaltyctl verifies its chain. Restarts the test MariaDB, so ctest
// runs it alone (RUN_SERIAL).
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/testing/service_process.h"
#include "common/testing/test_db.h"
#include "common/testing/test_keys.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "loyalty/ledger/internal/v1/earn_rules_file.pb.h"
#include "loyalty/ledger/v1/ledger.grpc.pb.h"
#include "tests/services/ledger/rules_file.h"

namespace loyalty::ledger {
namespace {

std::string WriteRulesFile() {
  internal::v1::EarnRulesFile file;
  testing::AddPartner(file, "vet");
  return testing::WriteRulesFile(file);
}

v1::EarnRequest Earn(const std::string& key, int64_t amount_minor) {
  v1::EarnRequest r;
  r.set_idempotency_key(key);
  r.set_partner_id("vet");
  r.set_member_id("m1");
  r.mutable_amount()->set_amount_minor(amount_minor);
  r.mutable_amount()->set_currency("EUR");
  r.set_receipt_reference(key);
  return r;
}

grpc::Status Call(v1::LedgerService::Stub& stub, const v1::EarnRequest& request,
                  v1::EarnResponse* response, const std::string& api_key) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  context.AddMetadata("authorization", "Bearer " + api_key);
  return stub.Earn(&context, request, response);
}

// loyaltyctl against the ledger at `address`. The key goes through the
// environment (LOYALTY_API_KEY), not the command line.
int Loyaltyctl(const std::string& address, const std::string& api_key, const std::string& args) {
  const std::string cmd = absl::StrCat("LOYALTY_API_KEY=", api_key, " ", LOYALTY_LOYALTYCTL, " ", args,
                                       " --ledger=", address, " >/dev/null 2>&1");
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

TEST(LedgerProcess, UnavailableWhileTheDatabaseIsDownThenRecovers) {
  auto db = loyalty::testing::TestDatabase::Create("ledgerproc");
  ASSERT_TRUE(db.ok()) << db.status();
  const std::string rules = WriteRulesFile();
  loyalty::testing::TestKeyring keys({"vet"});
  absl::StatusOr<std::string> keys_file = keys.WriteKeysFile();
  ASSERT_TRUE(keys_file.ok()) << keys_file.status();
  const std::string& vet = keys.partner("vet");
  auto process = loyalty::testing::ServiceProcess::Start(
      absl::StrCat(LOYALTY_BIN_DIR, "/ledger/loyalty-ledger"),
      {absl::StrCat("--earn_rules_file=", rules), "--hold_sweep_interval_ms=0",
       "--expiry_interval_ms=0"},
      loyalty::testing::ServiceDbEnv(**db, *keys_file));
  ASSERT_TRUE(process.ok()) << process.status();
  auto stub = v1::LedgerService::NewStub(
      grpc::CreateChannel((*process)->address(), grpc::InsecureChannelCredentials()));

  v1::EarnResponse first;
  ASSERT_TRUE(Call(*stub, Earn("before", 1000), &first, vet).ok());
  EXPECT_EQ(first.points(), 10);

  ASSERT_TRUE(loyalty::testing::RunTestDbScript("stop").ok());
  v1::EarnResponse during;
  grpc::Status down = Call(*stub, Earn("during", 2000), &during, vet);
  EXPECT_EQ(down.error_code(), grpc::StatusCode::UNAVAILABLE) << down.error_message();
  ASSERT_TRUE(loyalty::testing::RunTestDbScript("start").ok());

  // The client retries with the same key; the ledger recovers by itself.
  grpc::Status after;
  for (int attempt = 0; attempt < 20; ++attempt) {
    after = Call(*stub, Earn("during", 2000), &during, vet);
    if (after.ok()) break;
    EXPECT_EQ(after.error_code(), grpc::StatusCode::UNAVAILABLE) << after.error_message();
    absl::SleepFor(absl::Milliseconds(250));
  }
  ASSERT_TRUE(after.ok()) << after.error_message();
  EXPECT_EQ(during.balance().posted_points(), 30);  // posted exactly once

  // Keys: a partner may verify the chain but not run expiry; backoffice may.
  // (loyaltyctl's exit codes: 4 not allowed, 2 usage, 6 a broken chain.)
  EXPECT_EQ(Loyaltyctl((*process)->address(), vet, "chain verify"), 0);
  EXPECT_EQ(Loyaltyctl((*process)->address(), vet, "points expire --max_lots=10 --all"), 4);
  // No key: refused before calling; a key the ledger does not know: refused
  // by the ledger.
  EXPECT_EQ(Loyaltyctl((*process)->address(), "", "chain verify"), 2);
  EXPECT_EQ(Loyaltyctl((*process)->address(), "lk_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                       "chain verify"),
            4);
  EXPECT_EQ(Loyaltyctl((*process)->address(), keys.backoffice(), "points expire --max_lots=10 --all"), 0);
  EXPECT_EQ(Loyaltyctl((*process)->address(), keys.backoffice(), "no-such-command"), 2);
  ASSERT_TRUE(loyalty::testing::ExecForTest((*db)->pool(),
                                   "UPDATE transfers SET points = 99 WHERE sequence = 1").ok());
  EXPECT_EQ(Loyaltyctl((*process)->address(), keys.finance(), "chain verify"), 6);

  EXPECT_TRUE((*process)->Stop().ok()) << (*process)->LogTail();
  std::remove(rules.c_str());
}

// The ledger's own background job releases a hold that passed its expiry:
// the hold sweeper runs in the process without being asked.
TEST(LedgerProcess, TheSweeperReleasesAnExpiredHoldByItself) {
  auto db = loyalty::testing::TestDatabase::Create("ledgersweep");
  ASSERT_TRUE(db.ok()) << db.status();
  const std::string rules = WriteRulesFile();
  loyalty::testing::TestKeyring keys({"vet"});
  absl::StatusOr<std::string> keys_file = keys.WriteKeysFile();
  ASSERT_TRUE(keys_file.ok()) << keys_file.status();
  const std::string& vet = keys.partner("vet");
  auto process = loyalty::testing::ServiceProcess::Start(
      absl::StrCat(LOYALTY_BIN_DIR, "/ledger/loyalty-ledger"),
      {absl::StrCat("--earn_rules_file=", rules), "--hold_sweep_interval_ms=200", "--expiry_interval_ms=0"},
      loyalty::testing::ServiceDbEnv(**db, *keys_file));
  ASSERT_TRUE(process.ok()) << process.status();
  auto stub = v1::LedgerService::NewStub(
      grpc::CreateChannel((*process)->address(), grpc::InsecureChannelCredentials()));
  auto prepare = [&](grpc::ClientContext& context) {
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    context.AddMetadata("authorization", "Bearer " + vet);
  };

  v1::EarnResponse earned;
  ASSERT_TRUE(Call(*stub, Earn("earn", 1000), &earned, vet).ok());
  ASSERT_EQ(earned.points(), 10);  // 1 point per euro: 10.00 EUR

  v1::AuthorizeRequest authorize;
  authorize.set_idempotency_key("hold");
  authorize.set_member_id("m1");
  authorize.set_partner_id("vet");
  authorize.set_points(4);
  authorize.set_ttl_seconds(1);
  v1::AuthorizeResponse held;
  {
    grpc::ClientContext context;
    prepare(context);
    grpc::Status s = stub->Authorize(&context, authorize, &held);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  v1::GetHoldRequest get;
  get.set_hold_id(held.hold().hold_id());
  v1::GetHoldResponse hold;
  for (int attempt = 0; attempt < 150; ++attempt) {  // up to 30 s
    grpc::ClientContext context;
    prepare(context);
    ASSERT_TRUE(stub->GetHold(&context, get, &hold).ok());
    // EXPIRED shows as soon as expires_at passed; the closing transfer
    // only once the sweeper has released the points.
    if (!hold.hold().closing_transfer_id().empty()) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_EQ(hold.hold().state(), v1::HOLD_STATE_EXPIRED) << hold.DebugString();
  EXPECT_FALSE(hold.hold().closing_transfer_id().empty()) << hold.DebugString();
  EXPECT_TRUE((*process)->Stop().ok()) << (*process)->LogTail();
  std::remove(rules.c_str());
}

}  // namespace
}  // namespace loyalty::ledger
