// The catalog gRPC adapter over an in-process channel, wired to the REAL
// ledger (in process, its own throwaway schema) through the gRPC ledger
// client and a service key: authentication and roles, then Redeem, honour
// and cancel end to end, 100 concurrent redemptions of 10 units, with the
// ledger's invariants checked at the end.
// Membership is the fake directory (tier limits only).

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/auth/grpc_auth.h"
#include "common/db/migrations.h"
#include "common/testing/test_db.h"
#include "common/testing/test_keys.h"
#include "gtest/gtest.h"
#include "loyalty/catalog/v1/catalog.grpc.pb.h"
#include "loyalty/ledger/v1/ledger.grpc.pb.h"
#include "services/catalog/catalog.h"
#include "services/catalog/catalog_service.h"
#include "services/catalog/grpc_clients.h"
#include "services/catalog/mysql_catalog_store.h"
#include "services/ledger/ledger_service.h"
#include "tests/services/catalog/fakes.h"
#include "tests/services/ledger/ledger_fixture.h"

namespace loyalty::catalog {
const std::vector<db::MigrationFile>& Migrations();

namespace {

using Stub = v1::CatalogService::Stub;
using LedgerStub = ledger::v1::LedgerService::Stub;
constexpr auto kDeadline = std::chrono::seconds(10);

class CatalogServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ledger_ = ledger::testing::MakeLedger();
    ASSERT_NE(ledger_, nullptr);
    ledger_service_ = std::make_unique<ledger::LedgerService>(*ledger_->ledger, keys_.authenticator());
    grpc::ServerBuilder ledger_builder;
    ledger_builder.RegisterService(ledger_service_.get());
    ledger_server_ = ledger_builder.BuildAndStart();
    ASSERT_NE(ledger_server_, nullptr);
    auto ledger_channel = ledger_server_->InProcessChannel(grpc::ChannelArguments());
    ledger_stub_ = ledger::v1::LedgerService::NewStub(ledger_channel);

    auto db = loyalty::testing::TestDatabase::Create("csvc");
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    ASSERT_TRUE(db::ApplyMigrations(db_->pool(), Migrations()).ok());
    store_ = NewMysqlCatalogStore(db_->pool());
    rpc::CallOptions options;
    options.api_key = keys_.service();
    ledger_client_ = NewGrpcLedgerClient(ledger_channel, options);
    catalog_ = std::make_unique<Catalog>(*store_, *ledger_client_, members_);
    guard_ = std::make_unique<auth::RpcGuard>(keys_.authenticator(), v1::CatalogService::service_full_name());
    service_ = std::make_unique<CatalogService>(
        *catalog_, [this](const grpc::ServerContext& ctx, absl::string_view m) { return guard_->Check(ctx, m); },
        server::WatchOptions{.poll_interval = absl::Milliseconds(20), .heartbeat = absl::Milliseconds(200)});
    grpc::ServerBuilder builder;
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = v1::CatalogService::NewStub(server_->InProcessChannel(grpc::ChannelArguments()));
  }

  void TearDown() override {
    stub_.reset();
    if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now() + kDeadline);
    ledger_stub_.reset();
    if (ledger_server_ != nullptr) ledger_server_->Shutdown(std::chrono::system_clock::now() + kDeadline);
    if (ledger_ != nullptr) {
      EXPECT_EQ(ledger::testing::CheckInvariants(*ledger_), "");
    }
  }

  template <typename Request, typename Response>
  grpc::Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                    const Request& request, Response* response, const std::string& api_key) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kDeadline);
    if (!api_key.empty()) context.AddMetadata("authorization", "Bearer " + api_key);
    return (stub_.get()->*method)(&context, request, response);
  }

  void Earn(const std::string& key, const std::string& member, int64_t amount_minor) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kDeadline);
    context.AddMetadata("authorization", "Bearer " + keys_.backoffice());
    ledger::v1::EarnResponse response;
    grpc::Status s = ledger_stub_->Earn(&context, ledger::testing::EarnOf(key, "vet", member, amount_minor),
                                        &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  ledger::v1::Hold Hold(const std::string& hold_id) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kDeadline);
    context.AddMetadata("authorization", "Bearer " + keys_.backoffice());
    ledger::v1::GetHoldRequest req;
    req.set_hold_id(hold_id);
    ledger::v1::GetHoldResponse resp;
    grpc::Status s = ledger_stub_->GetHold(&context, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.hold();
  }

  // An ACTIVE reward honoured by vet.
  v1::Reward ActiveReward(int64_t stock, int64_t price) {
    v1::CreateRewardRequest create;
    create.set_idempotency_key(absl::StrCat("create-", ++keys_used_));
    v1::Reward* r = create.mutable_reward();
    auto* name = r->add_names();
    name->set_language("en");
    name->set_text("Check-up");
    r->set_reward_type(v1::REWARD_TYPE_FREE_ITEM);
    r->set_points_price(price);
    r->set_partner_id("vet");
    r->set_stock_available(stock);
    v1::CreateRewardResponse created;
    EXPECT_TRUE(Call(&Stub::CreateReward, create, &created, keys_.backoffice()).ok());
    v1::SetRewardStateRequest activate;
    activate.set_idempotency_key(absl::StrCat("activate-", ++keys_used_));
    activate.set_reward_id(created.reward().reward_id());
    activate.set_state(v1::REWARD_STATE_ACTIVE);
    v1::SetRewardStateResponse active;
    EXPECT_TRUE(Call(&Stub::SetRewardState, activate, &active, keys_.backoffice()).ok());
    return active.reward();
  }

  loyalty::testing::TestKeyring keys_{{"vet", "food"}};
  std::unique_ptr<ledger::testing::LedgerUnderTest> ledger_;
  std::unique_ptr<ledger::LedgerService> ledger_service_;
  std::unique_ptr<grpc::Server> ledger_server_;
  std::unique_ptr<LedgerStub> ledger_stub_;
  std::unique_ptr<loyalty::testing::TestDatabase> db_;
  std::unique_ptr<CatalogStore> store_;
  std::unique_ptr<LedgerClient> ledger_client_;
  testing::FakeMembers members_;
  std::unique_ptr<Catalog> catalog_;
  std::unique_ptr<auth::RpcGuard> guard_;
  std::unique_ptr<CatalogService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Stub> stub_;
  int keys_used_ = 0;
};

TEST_F(CatalogServiceTest, AuthenticatesAndChecksRoles) {
  v1::CreateRewardRequest create;
  v1::CreateRewardResponse created;
  EXPECT_EQ(Call(&Stub::CreateReward, create, &created, "").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Call(&Stub::CreateReward, create, &created, keys_.partner("vet")).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Call(&Stub::CreateReward, create, &created, keys_.backoffice()).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(CatalogServiceTest, WatchEarnRulesStreamsEachChangeAndHeartbeats) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kDeadline);
  context.AddMetadata("authorization", "Bearer " + keys_.service());
  auto reader = stub_->WatchEarnRules(&context, v1::WatchEarnRulesRequest());
  v1::WatchEarnRulesResponse first;
  ASSERT_TRUE(reader->Read(&first));
  EXPECT_FALSE(first.not_modified());
  EXPECT_EQ(first.campaigns_size(), 0);

  v1::CreateCampaignRequest create;
  create.set_idempotency_key("c1");
  create.mutable_campaign()->set_name("double");
  create.mutable_campaign()->set_bonus_rate_bp(10000);
  v1::CreateCampaignResponse created;
  ASSERT_TRUE(Call(&Stub::CreateCampaign, create, &created, keys_.backoffice()).ok());
  v1::SetCampaignStateRequest activate;
  activate.set_idempotency_key("a1");
  activate.set_campaign_id(created.campaign().campaign_id());
  activate.set_state(v1::CAMPAIGN_STATE_ACTIVE);
  v1::SetCampaignStateResponse active;
  ASSERT_TRUE(Call(&Stub::SetCampaignState, activate, &active, keys_.backoffice()).ok());

  v1::WatchEarnRulesResponse changed;
  ASSERT_TRUE(reader->Read(&changed));
  EXPECT_GT(changed.version(), first.version());
  ASSERT_EQ(changed.campaigns_size(), 1);
  EXPECT_EQ(changed.campaigns(0).campaign_id(), created.campaign().campaign_id());
  v1::WatchEarnRulesResponse heartbeat;
  ASSERT_TRUE(reader->Read(&heartbeat));
  EXPECT_TRUE(heartbeat.not_modified());
  EXPECT_EQ(heartbeat.version(), changed.version());
  EXPECT_EQ(heartbeat.campaigns_size(), 0);

  service_->BeginShutdown();
  while (reader->Read(&heartbeat)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(CatalogServiceTest, RedeemHonourAndCancelAgainstTheRealLedger) {
  Earn("e1", "anna", 100000);  // 1000 points at vet
  v1::Reward reward = ActiveReward(5, 300);

  v1::RedeemRequest redeem;
  redeem.set_idempotency_key("r1");
  redeem.set_member_id("anna");
  redeem.set_reward_id(reward.reward_id());
  redeem.set_channel_partner_id("vet");
  v1::RedeemResponse first;
  grpc::Status s = Call(&Stub::Redeem, redeem, &first, keys_.partner("vet"));
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(first.available_points(), 700);
  ledger::v1::Hold hold = Hold(first.voucher().hold_id());
  EXPECT_EQ(hold.state(), ledger::v1::HOLD_STATE_PENDING);
  EXPECT_EQ(hold.points(), 300);
  EXPECT_EQ(hold.partner_id(), "vet");
  // Voucher validity (30 days) is within the ledger's service hold limit.
  EXPECT_EQ(hold.expires_at().seconds(), first.voucher().expires_at().seconds());

  // Not enough points is the ledger's refusal, passed on.
  redeem.set_idempotency_key("r2");
  v1::Reward pricey = ActiveReward(5, 900);
  redeem.set_reward_id(pricey.reward_id());
  v1::RedeemResponse refused;
  s = Call(&Stub::Redeem, redeem, &refused, keys_.partner("vet"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();

  v1::HonourVoucherRequest honour;
  honour.set_idempotency_key("h1");
  honour.set_voucher_code(first.voucher().voucher_code());
  honour.set_partner_id("food");
  v1::HonourVoucherResponse honoured;
  EXPECT_EQ(Call(&Stub::HonourVoucher, honour, &honoured, keys_.partner("food")).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  honour.set_partner_id("vet");
  s = Call(&Stub::HonourVoucher, honour, &honoured, keys_.partner("vet"));
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(honoured.voucher().state(), v1::VOUCHER_STATE_HONOURED);
  EXPECT_EQ(Hold(first.voucher().hold_id()).state(), ledger::v1::HOLD_STATE_CAPTURED);
  honour.set_idempotency_key("h2");
  s = Call(&Stub::HonourVoucher, honour, &honoured, keys_.partner("vet"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("voucher used at"), std::string::npos) << s.error_message();

  redeem.set_idempotency_key("r3");
  redeem.set_reward_id(reward.reward_id());
  v1::RedeemResponse second;
  ASSERT_TRUE(Call(&Stub::Redeem, redeem, &second, keys_.partner("vet")).ok());
  v1::CancelVoucherRequest cancel;
  cancel.set_idempotency_key("c1");
  cancel.set_voucher_code(second.voucher().voucher_code());
  v1::CancelVoucherResponse cancelled;
  s = Call(&Stub::CancelVoucher, cancel, &cancelled, keys_.backoffice());
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(cancelled.available_points(), 700);
  EXPECT_EQ(Hold(second.voucher().hold_id()).state(), ledger::v1::HOLD_STATE_VOIDED);
}

TEST_F(CatalogServiceTest, ConcurrentRedemptionsAgainstTheRealLedger) {
  constexpr int kMembers = 100;
  constexpr int kStock = 10;
  for (int i = 0; i < kMembers; ++i) Earn(absl::StrCat("e", i), absl::StrCat("m", i), 50000);
  v1::Reward reward = ActiveReward(kStock, 100);
  std::atomic<int> ok{0}, out{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kMembers; ++i) {
    threads.emplace_back([&, i] {
      v1::RedeemRequest r;
      r.set_idempotency_key(absl::StrCat("k", i));
      r.set_member_id(absl::StrCat("m", i));
      r.set_reward_id(reward.reward_id());
      v1::RedeemResponse resp;
      grpc::Status s = Call(&Stub::Redeem, r, &resp, keys_.backoffice());
      if (s.ok()) {
        ++ok;
        EXPECT_EQ(Hold(resp.voucher().hold_id()).state(), ledger::v1::HOLD_STATE_PENDING);
      } else if (s.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
        ++out;
      } else {
        ADD_FAILURE() << s.error_code() << " " << s.error_message();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kStock);
  EXPECT_EQ(out.load(), kMembers - kStock);
  v1::GetRewardRequest get;
  get.set_reward_id(reward.reward_id());
  v1::GetRewardResponse after;
  ASSERT_TRUE(Call(&Stub::GetReward, get, &after, keys_.backoffice()).ok());
  EXPECT_EQ(after.reward().stock_available(), 0);
  EXPECT_EQ(after.reward().stock_reserved(), kStock);
  // Every refused redemption left no hold behind: 10 pending holds in all.
  auto pending = loyalty::testing::QueryIntForTest(*ledger_->pool, "SELECT COUNT(*) FROM holds WHERE state = 1");
  ASSERT_TRUE(pending.ok()) << pending.status();
  EXPECT_EQ(*pending, kStock);
}

}  // namespace
}  // namespace loyalty::catalog
