// API keys issued by settlement (CreateApiKey) are accepted by the other
// services: their Authenticator asks settlement's AuthenticateApiKey for a
// key id its keys file does not know, and caches the answer briefly. A
// revoked key stops working once that cache expires.
#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/testing/service_process.h"
#include "common/testing/test_db.h"
#include "common/testing/test_keys.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "loyalty/ledger/v1/ledger.grpc.pb.h"
#include "loyalty/settlement/v1/settlement.grpc.pb.h"

namespace loyalty {
namespace {

namespace lv1 = ::loyalty::ledger::v1;
namespace sv1 = ::loyalty::settlement::v1;

void Prepare(grpc::ClientContext& ctx, const std::string& key) {
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  ctx.AddMetadata("authorization", "Bearer " + key);
}

TEST(KeyDirectory, KeysIssuedBySettlementWorkEverywhereWithTheirLimitUntilRevoked) {
  testing::TestKeyring keys({"vet"});
  auto keys_file = keys.WriteKeysFile();
  ASSERT_TRUE(keys_file.ok()) << keys_file.status();
  auto sdb = testing::TestDatabase::Create("keydirset");
  ASSERT_TRUE(sdb.ok()) << sdb.status();
  auto ldb = testing::TestDatabase::Create("keydirled");
  ASSERT_TRUE(ldb.ok()) << ldb.status();
  auto settlement = testing::ServiceProcess::Start(
      absl::StrCat(LOYALTY_BIN_DIR, "/settlement/loyalty-settlement"), {"--journal_poll_ms=0"},
      testing::ServiceDbEnv(**sdb, *keys_file));
  ASSERT_TRUE(settlement.ok()) << settlement.status();
  testing::ServiceProcess::EnvVars ledger_env = testing::ServiceDbEnv(**ldb, *keys_file);
  ledger_env.emplace_back("LOYALTY_KEY_DIRECTORY_API_KEY", keys.service());
  auto ledger = testing::ServiceProcess::Start(
      absl::StrCat(LOYALTY_BIN_DIR, "/ledger/loyalty-ledger"),
      {absl::StrCat("--key_directory_address=", (*settlement)->address()), "--api_key_cache_ms=200",
       "--hold_sweep_interval_ms=0", "--expiry_interval_ms=0"},
      ledger_env);
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  auto settle = sv1::SettlementService::NewStub(
      grpc::CreateChannel((*settlement)->address(), grpc::InsecureChannelCredentials()));
  auto ledger_stub =
      lv1::LedgerService::NewStub(grpc::CreateChannel((*ledger)->address(), grpc::InsecureChannelCredentials()));

  sv1::CreatePartnerRequest partner;
  partner.set_idempotency_key("p1");
  partner.mutable_partner()->set_partner_id("vet");
  partner.mutable_partner()->set_legal_name("Vet GmbH");
  partner.mutable_partner()->set_display_name("Vet");
  partner.mutable_partner()->set_business_category(sv1::BUSINESS_CATEGORY_VET_CLINIC);
  partner.mutable_partner()->set_country("DE");
  partner.mutable_partner()->set_settlement_currency("EUR");
  partner.mutable_partner()->mutable_billing_contact()->set_name("Billing");
  partner.mutable_partner()->mutable_billing_contact()->set_email("billing@vet.example");
  // One call a second: the directory's limit reaches the ledger with the key.
  partner.mutable_partner()->set_rate_limit_per_second(1);
  partner.mutable_partner()->set_rate_limit_burst(1);
  {
    sv1::CreatePartnerResponse resp;
    grpc::ClientContext ctx;
    Prepare(ctx, keys.backoffice());
    grpc::Status s = settle->CreatePartner(&ctx, partner, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  sv1::CreateApiKeyRequest create;
  create.set_idempotency_key("k1");
  create.set_role(common::v1::ROLE_PARTNER);
  create.set_partner_id("vet");
  create.set_label("till 1");
  sv1::CreateApiKeyResponse issued;
  {
    grpc::ClientContext ctx;
    Prepare(ctx, keys.backoffice());
    grpc::Status s = settle->CreateApiKey(&ctx, create, &issued);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  ASSERT_FALSE(issued.secret().empty());

  auto balance = [&](const std::string& key) {
    lv1::GetBalanceRequest req;
    req.set_member_id("m1");
    lv1::GetBalanceResponse resp;
    grpc::ClientContext ctx;
    Prepare(ctx, key);
    return ledger_stub->GetBalance(&ctx, req, &resp);
  };
  // Past authentication: a member who never earned is NOT_FOUND.
  grpc::Status first = balance(issued.secret());
  EXPECT_EQ(first.error_code(), grpc::StatusCode::NOT_FOUND) << first.error_message() << (*ledger)->LogTail();
  // The partner's one call this second is spent (the default would allow 1,000).
  grpc::Status throttled = balance(issued.secret());
  EXPECT_EQ(throttled.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << throttled.error_message();
  // A made-up key of the same shape is refused.
  std::string forged = issued.secret();
  forged.back() = forged.back() == 'A' ? 'B' : 'A';
  EXPECT_EQ(balance(forged).error_code(), grpc::StatusCode::UNAUTHENTICATED);

  sv1::RevokeApiKeyRequest revoke;
  revoke.set_idempotency_key("r1");
  revoke.set_key_id(issued.api_key().key_id());
  revoke.set_reason("till stolen");
  {
    sv1::RevokeApiKeyResponse resp;
    grpc::ClientContext ctx;
    Prepare(ctx, keys.backoffice());
    grpc::Status s = settle->RevokeApiKey(&ctx, revoke, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  absl::SleepFor(absl::Milliseconds(400));  // past the ledger's 200 ms cache
  EXPECT_EQ(balance(issued.secret()).error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

}  // namespace
}  // namespace loyalty
