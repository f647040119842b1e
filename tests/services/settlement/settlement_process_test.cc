// The settlement binary against the ledger binary, as deployed: main.cc's
// wiring (--ledger_address, the service key from LOYALTY_LEDGER_API_KEY, the
// prepaid journal follower) and loyaltyctl's period close and reconciliation.
#include <grpcpp/grpcpp.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/testing/service_process.h"
#include "common/testing/test_db.h"
#include "common/testing/test_keys.h"
#include "common/time/proto_time.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "loyalty/ledger/internal/v1/earn_rules_file.pb.h"
#include "loyalty/ledger/v1/ledger.grpc.pb.h"
#include "loyalty/settlement/v1/settlement.grpc.pb.h"

namespace loyalty::settlement {
namespace {

namespace lv1 = ::loyalty::ledger::v1;

std::string WriteRulesFile() {
  ledger::internal::v1::EarnRulesFile file;
  auto* p = file.add_partners();
  p->set_partner_id("vet");
  p->set_status(v1::PARTNER_STATUS_ACTIVE);
  auto* c = p->add_contracts();
  c->set_contract_id("vet-c1");
  c->set_version(1);
  *c->mutable_effective_from() = google::protobuf::util::TimeUtil::SecondsToTimestamp(0);
  c->set_earn_currency("EUR");
  c->set_earn_rate_milli_points_per_unit(1000);
  std::string json;
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(file, &json).ok());
  char path[] = "/tmp/loyalty-rules-XXXXXX.json";
  const int fd = mkstemps(path, 5);
  EXPECT_GE(fd, 0);
  std::FILE* f = fdopen(fd, "w");
  std::fputs(json.c_str(), f);
  std::fclose(f);
  return path;
}

template <typename Stub, typename Request, typename Response>
grpc::Status Call(Stub& stub, grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                  const Request& request, Response* response, const std::string& api_key) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  context.AddMetadata("authorization", "Bearer " + api_key);
  return (stub.*method)(&context, request, response);
}

// loyaltyctl against the settlement at `address`.
int Loyaltyctl(const std::string& address, const std::string& api_key, const std::string& args) {
  const std::string cmd = absl::StrCat("LOYALTY_API_KEY=", api_key, " ", LOYALTY_LOYALTYCTL, " ", args,
                                       " --settlement=", address, " >/dev/null 2>&1");
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

TEST(SettlementProcess, FollowsTheLedgerClosesAndReconciles) {
  auto ledger_db = testing::TestDatabase::Create("sproc_l");
  auto settlement_db = testing::TestDatabase::Create("sproc_s");
  ASSERT_TRUE(ledger_db.ok() && settlement_db.ok());
  testing::TestKeyring keys({"vet"});
  absl::StatusOr<std::string> keys_file = keys.WriteKeysFile();
  ASSERT_TRUE(keys_file.ok()) << keys_file.status();
  const std::string rules = WriteRulesFile();
  auto ledger = testing::ServiceProcess::Start(
      absl::StrCat(LOYALTY_BIN_DIR, "/ledger/loyalty-ledger"),
      {absl::StrCat("--earn_rules_file=", rules), "--hold_sweep_interval_ms=0", "--expiry_interval_ms=0"},
      testing::ServiceDbEnv(**ledger_db, *keys_file));
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  testing::ServiceProcess::EnvVars env = testing::ServiceDbEnv(**settlement_db, *keys_file);
  env.emplace_back("LOYALTY_LEDGER_API_KEY", keys.service());
  auto settlement = testing::ServiceProcess::Start(
      absl::StrCat(LOYALTY_BIN_DIR, "/settlement/loyalty-settlement"),
      {absl::StrCat("--ledger_address=", (*ledger)->address()), "--journal_poll_ms=100"}, env);
  ASSERT_TRUE(settlement.ok()) << settlement.status();
  auto s = v1::SettlementService::NewStub(
      grpc::CreateChannel((*settlement)->address(), grpc::InsecureChannelCredentials()));
  auto l = lv1::LedgerService::NewStub(grpc::CreateChannel((*ledger)->address(), grpc::InsecureChannelCredentials()));
  const absl::Time now = absl::Now();

  v1::CreatePartnerRequest cp;
  cp.set_idempotency_key("vet");
  v1::Partner* p = cp.mutable_partner();
  p->set_partner_id("vet");
  p->set_legal_name("Vet GmbH");
  p->set_display_name("Vet");
  p->set_business_category(v1::BUSINESS_CATEGORY_VET_CLINIC);
  p->set_country("DE");
  p->set_settlement_currency("EUR");
  p->mutable_billing_contact()->set_name("Accounts");
  p->mutable_billing_contact()->set_email("accounts@vet.example");
  v1::CreatePartnerResponse created;
  grpc::Status st = Call(*s, &v1::SettlementService::Stub::CreatePartner, cp, &created, keys.backoffice());
  ASSERT_TRUE(st.ok()) << st.error_message() << (*settlement)->LogTail();
  v1::CreateContractVersionRequest cc;
  cc.set_idempotency_key("vet-1");
  v1::Contract* c = cc.mutable_contract();
  c->set_partner_id("vet");
  *c->mutable_effective_from() = ToProtoTime(now - absl::Hours(24));
  c->set_earn_currency("EUR");
  c->set_earn_rate_milli_points_per_unit(1000);
  c->mutable_issue_price_per_1000_points()->set_amount_minor(10000);
  c->mutable_issue_price_per_1000_points()->set_currency("EUR");
  c->mutable_reimbursement_per_1000_points()->set_amount_minor(8000);
  c->mutable_reimbursement_per_1000_points()->set_currency("EUR");
  c->set_funding_model(v1::FUNDING_MODEL_PREPAID);
  v1::CreateContractVersionResponse contract;
  st = Call(*s, &v1::SettlementService::Stub::CreateContractVersion, cc, &contract, keys.backoffice());
  ASSERT_TRUE(st.ok()) << st.error_message();
  v1::PurchasePointBlockRequest pb;
  pb.set_idempotency_key("block-1");
  pb.set_partner_id("vet");
  pb.set_points(1000);
  pb.mutable_price()->set_amount_minor(9000);
  pb.mutable_price()->set_currency("EUR");
  v1::PurchasePointBlockResponse block;
  st = Call(*s, &v1::SettlementService::Stub::PurchasePointBlock, pb, &block, keys.finance());
  ASSERT_TRUE(st.ok()) << st.error_message();

  lv1::EarnRequest earn;
  earn.set_idempotency_key("e1");
  earn.set_partner_id("vet");
  earn.set_member_id("m1");
  earn.mutable_amount()->set_amount_minor(1000);  // 10 points
  earn.mutable_amount()->set_currency("EUR");
  earn.set_receipt_reference("r1");
  lv1::EarnResponse earned;
  st = Call(*l, &lv1::LedgerService::Stub::Earn, earn, &earned, keys.partner("vet"));
  ASSERT_TRUE(st.ok()) << st.error_message();

  // The follower (every 100 ms, with the service key) draws the block down.
  v1::GetPrepaidBalanceRequest gb;
  gb.set_partner_id("vet");
  v1::GetPrepaidBalanceResponse balance;
  for (int i = 0; i < 100; ++i) {
    st = Call(*s, &v1::SettlementService::Stub::GetPrepaidBalance, gb, &balance, keys.partner("vet"));
    ASSERT_TRUE(st.ok()) << st.error_message();
    if (balance.balance().issued_points() == 10) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(balance.balance().issued_points(), 10) << (*settlement)->LogTail();
  EXPECT_EQ(balance.balance().remaining_points(), 990);
  EXPECT_EQ(balance.balance().as_of_sequence(), 1);

  v1::CreatePeriodRequest cperiod;
  cperiod.set_idempotency_key("period");
  cperiod.set_name("today");
  *cperiod.mutable_start_time() = ToProtoTime(now - absl::Hours(48));
  *cperiod.mutable_end_time() = ToProtoTime(absl::Now() + absl::Milliseconds(500));
  v1::CreatePeriodResponse period;
  st = Call(*s, &v1::SettlementService::Stub::CreatePeriod, cperiod, &period, keys.finance());
  ASSERT_TRUE(st.ok()) << st.error_message();
  absl::SleepFor(absl::Seconds(1));
  const std::string id = period.period().period_id();
  EXPECT_EQ(Loyaltyctl((*settlement)->address(), keys.finance(), "periods close --period_id=" + id), 0)
      << (*settlement)->LogTail();
  EXPECT_EQ(Loyaltyctl((*settlement)->address(), keys.finance(), "reconcile period --period_id=" + id), 0)
      << (*settlement)->LogTail();
  // PERMISSION_DENIED: loyaltyctl's exit code 4.
  EXPECT_EQ(Loyaltyctl((*settlement)->address(), keys.partner("vet"), "reconcile period --period_id=" + id), 4);

  v1::GetStatementRequest gs;
  gs.mutable_key()->set_period_id(id);
  gs.mutable_key()->set_partner_id("vet");
  v1::GetStatementResponse statement;
  st = Call(*s, &v1::SettlementService::Stub::GetStatement, gs, &statement, keys.finance());
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(statement.statement().issued_points(), 10);
  EXPECT_EQ(statement.statement().net_amount().amount_minor(), 0);  // prepaid: paid with the block
  EXPECT_EQ(statement.statement().last_sequence(), 1);
  EXPECT_EQ(statement.statement().end_hash(), earned.transfer().hash());

  EXPECT_TRUE((*settlement)->Stop().ok()) << (*settlement)->LogTail();
  EXPECT_TRUE((*ledger)->Stop().ok());
  std::remove(rules.c_str());
}

}  // namespace
}  // namespace loyalty::settlement
