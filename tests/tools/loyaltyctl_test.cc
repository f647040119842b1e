// loyaltyctl: its message translations (fields from the command line,
// tables), then the binary against the real membership and ledger: help,
// tables and JSON, generated idempotency keys, long jobs with --all, and the
// exit codes scripts rely on.
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/testing/service_process.h"
#include "common/testing/test_db.h"
#include "common/testing/test_keys.h"
#include "gtest/gtest.h"
#include "loyalty/catalog/v1/catalog.pb.h"
#include "loyalty/ledger/v1/ledger.pb.h"
#include "loyalty/membership/v1/membership.grpc.pb.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/server_builder.h"
#include "tools/loyaltyctl/messages.h"

namespace loyalty {
namespace {

namespace lv1 = ::loyalty::ledger::v1;

TEST(LoyaltyctlMessages, FieldsAreSetByPathWithTypes) {
  lv1::EarnRequest earn;
  ASSERT_TRUE(ctl::SetField(earn, "member_id", "m1").ok());
  ASSERT_TRUE(ctl::SetField(earn, "amount.amount_minor", "4590").ok());
  ASSERT_TRUE(ctl::SetField(earn, "amount.currency", "EUR").ok());
  ASSERT_TRUE(ctl::SetField(earn, "occurred_at", "2026-11-01T10:00:00Z").ok());
  EXPECT_EQ(earn.member_id(), "m1");
  EXPECT_EQ(earn.amount().amount_minor(), 4590);
  EXPECT_EQ(earn.occurred_at().seconds(), 1793527200);
  lv1::AdjustRequest adjust;
  ASSERT_TRUE(ctl::SetField(adjust, "direction", "credit").ok());
  EXPECT_EQ(adjust.direction(), lv1::ADJUST_DIRECTION_CREDIT);
  ASSERT_TRUE(ctl::SetField(adjust, "direction", "ADJUST_DIRECTION_DEBIT").ok());
  EXPECT_EQ(adjust.direction(), lv1::ADJUST_DIRECTION_DEBIT);
  lv1::GetQualifyingPointsRequest q;
  ASSERT_TRUE(ctl::SetField(q, "member_ids", "a").ok());
  ASSERT_TRUE(ctl::SetField(q, "member_ids", "b").ok());
  EXPECT_EQ(q.member_ids_size(), 2);

  absl::Status unknown = ctl::SetField(earn, "amount.cents", "1");
  EXPECT_EQ(unknown.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.message().find("--amount.cents"), std::string::npos) << unknown;
  EXPECT_FALSE(ctl::SetField(earn, "amount.amount_minor", "12.5").ok());
  EXPECT_FALSE(ctl::SetField(adjust, "direction", "sideways").ok());
  catalog::v1::Reward reward;  // PERCENT_DISCOUNT and FIXED_DISCOUNT: ambiguous
  EXPECT_FALSE(ctl::SetField(reward, "reward_type", "discount").ok());
  EXPECT_TRUE(ctl::SetField(reward, "reward_type", "fixed_discount").ok());
  EXPECT_EQ(reward.reward_type(), catalog::v1::REWARD_TYPE_FIXED_DISCOUNT);
  EXPECT_FALSE(ctl::SetField(earn, "occurred_at", "yesterday").ok());
  EXPECT_FALSE(ctl::SetField(earn, "amount", "5").ok());
}

TEST(LoyaltyctlMessages, ListsRenderAsTablesWithMoneyAndTimes) {
  lv1::ListTransfersResponse resp;
  auto* t = resp.add_transfers();
  t->set_transfer_id("tr_1");
  t->set_code(lv1::TRANSFER_CODE_EARN);
  t->set_points(45);
  t->mutable_created_at()->set_seconds(1793527200);
  auto* t2 = resp.add_transfers();
  t2->set_transfer_id("tr_22");
  t2->set_points(5);
  resp.set_next_page_token("tok");
  const std::string table = ctl::RenderTable(resp);
  EXPECT_NE(table.find("TRANSFER_ID"), std::string::npos) << table;
  EXPECT_NE(table.find("TRANSFER_CODE_EARN"), std::string::npos) << table;
  EXPECT_NE(table.find("2026-11-01T10:00:00Z"), std::string::npos) << table;
  EXPECT_EQ(table.find("MEMBER_ID"), std::string::npos) << "empty columns are left out:\n" << table;
  EXPECT_NE(table.find("next_page_token: tok"), std::string::npos) << table;

  membership::v1::GetMemberResponse member;
  member.mutable_member()->set_member_id("mb_1");
  member.mutable_member()->mutable_birth_date()->set_year(1990);
  member.mutable_member()->mutable_birth_date()->set_month(3);
  member.mutable_member()->mutable_birth_date()->set_day(7);
  member.add_cards()->set_card_number("7000");
  const std::string text = ctl::RenderTable(member);
  EXPECT_NE(text.find("CARD_NUMBER"), std::string::npos) << text;
  EXPECT_NE(text.find("member.birth_date: 1990-03-07"), std::string::npos) << text;

  lv1::EarnBreakdown breakdown;
  breakdown.mutable_eligible_amount()->set_amount_minor(-4590);
  breakdown.mutable_eligible_amount()->set_currency("EUR");
  EXPECT_NE(ctl::RenderTable(breakdown).find("eligible_amount: -45.90 EUR"), std::string::npos)
      << ctl::RenderTable(breakdown);
}

struct CtlRun {
  int exit_code = -1;
  std::string out;  // stdout and stderr
};

class LoyaltyctlE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    auto keys_file = keys_.WriteKeysFile();
    ASSERT_TRUE(keys_file.ok()) << keys_file.status();
    auto db = testing::TestDatabase::Create("ctlledg");
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    auto ledger = testing::ServiceProcess::Start(
        absl::StrCat(LOYALTY_BIN_DIR, "/services/ledger/loyalty-ledger"),
        {"--hold_sweep_interval_ms=0", "--expiry_interval_ms=0"},
        testing::ServiceDbEnv(*db_, *keys_file));
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    ledger_ = *std::move(ledger);
  }

  CtlRun Ctl(const std::string& key, const std::string& args) {
    const std::string cmd = absl::StrCat("LOYALTY_API_KEY=", key, " ", LOYALTY_BIN_DIR, "/tools/loyaltyctl ",
                                         args, " --ledger=", ledger_->address(), " 2>&1");
    CtlRun run;
    std::FILE* p = popen(cmd.c_str(), "r");
    if (p == nullptr) return run;
    char buf[512];
    while (std::fgets(buf, sizeof buf, p) != nullptr) run.out += buf;
    const int rc = pclose(p);
    run.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    return run;
  }

  testing::TestKeyring keys_{{"vet"}};
  std::unique_ptr<testing::TestDatabase> db_;
  std::unique_ptr<testing::ServiceProcess> ledger_;
};

TEST_F(LoyaltyctlE2E, BackofficeAdjustsAndReadsWithTheExitCodesScriptsNeed) {
  const std::string bo = keys_.backoffice();
  CtlRun help = Ctl(bo, "help");
  EXPECT_EQ(help.exit_code, 0) << help.out;
  EXPECT_NE(help.out.find("reconcile"), std::string::npos) << help.out;
  CtlRun adjust_help = Ctl(bo, "points adjust --help");
  EXPECT_EQ(adjust_help.exit_code, 0) << adjust_help.out;
  EXPECT_NE(adjust_help.out.find("--reason"), std::string::npos) << adjust_help.out;

  CtlRun credit = Ctl(bo, "points adjust --member_id=m1 --direction=credit --points=50 --reason=goodwill");
  ASSERT_EQ(credit.exit_code, 0) << credit.out;
  EXPECT_NE(credit.out.find("idempotency key: ctl-"), std::string::npos) << credit.out;
  // Retrying with the printed key does not credit twice.
  CtlRun again = Ctl(bo, "points adjust --member_id=m1 --direction=credit --points=50 --reason=goodwill "
                      "--idempotency_key=fixed-1");
  ASSERT_EQ(again.exit_code, 0) << again.out;
  CtlRun replay = Ctl(bo, "points adjust --member_id=m1 --direction=credit --points=50 --reason=goodwill "
                       "--idempotency_key=fixed-1");
  ASSERT_EQ(replay.exit_code, 0) << replay.out;

  CtlRun balance = Ctl(bo, "points balance --member_id=m1 --output=json");
  ASSERT_EQ(balance.exit_code, 0) << balance.out;
  EXPECT_NE(balance.out.find("\"available_points\": \"100\""), std::string::npos) << balance.out;
  CtlRun history = Ctl(bo, "points history --member_id=m1 --page_size=1 --all");
  ASSERT_EQ(history.exit_code, 0) << history.out;
  EXPECT_NE(history.out.find("TRANSFER_ID"), std::string::npos) << history.out;
  EXPECT_NE(history.out.find("round 1 done"), std::string::npos) << history.out;
  CtlRun verify = Ctl(bo, "chain verify");
  EXPECT_EQ(verify.exit_code, 0) << verify.out;
  EXPECT_NE(verify.out.find("verified_count: 2"), std::string::npos) << verify.out;
  CtlRun expire = Ctl(bo, "points expire --all");
  EXPECT_EQ(expire.exit_code, 0) << expire.out;

  // Exit codes.
  EXPECT_EQ(Ctl(bo, "points balance --member_id=nobody").exit_code, 1);
  EXPECT_EQ(Ctl(bo, "points adjust --member_id=m1 --direction=debit --points=1000 --reason=x").exit_code, 1);
  EXPECT_EQ(Ctl(bo, "points adjust --member_id=m1 --points=5").exit_code, 2);  // no direction, no reason
  EXPECT_EQ(Ctl(bo, "points balance --nope=1").exit_code, 2);
  EXPECT_EQ(Ctl(bo, "points teleport").exit_code, 2);
  EXPECT_EQ(Ctl(keys_.partner("vet"), "points adjust --member_id=m1 --direction=credit --points=5 --reason=x")
                .exit_code,
            4);
  EXPECT_EQ(Ctl("lk_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "chain verify").exit_code, 4);
  const int closed = testing::PickFreePort();
  EXPECT_EQ(Ctl(bo, absl::StrCat("partners list --settlement=127.0.0.1:", closed, " --deadline_ms=2000")).exit_code,
            3);
}

// A resumable batch job (RunTierEvaluation) with --all: every batch is run,
// each from where the last stopped and under a key of its own, until the job
// says it is done. (It used to stop after the first batch and exit 0.)
class ScriptedMembership final : public loyalty::membership::v1::MembershipService::Service {
 public:
  grpc::Status RunTierEvaluation(grpc::ServerContext*, const loyalty::membership::v1::RunTierEvaluationRequest* r,
                                 loyalty::membership::v1::RunTierEvaluationResponse* out) override {
    absl::MutexLock lock(&mu_);
    resume_tokens_.push_back(r->resume_token());
    keys_.push_back(r->idempotency_key());
    out->set_evaluated_count(2);
    const int round = static_cast<int>(resume_tokens_.size());
    if (round < 3) out->set_next_resume_token(absl::StrCat("after-", round));
    return grpc::Status::OK;
  }
  std::vector<std::string> resume_tokens() {
    absl::MutexLock lock(&mu_);
    return resume_tokens_;
  }
  std::vector<std::string> keys() {
    absl::MutexLock lock(&mu_);
    return keys_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> resume_tokens_;
  std::vector<std::string> keys_;
};

TEST_F(LoyaltyctlE2E, AllFollowsAResumableJobToItsEnd) {
  ScriptedMembership membership;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&membership);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  CtlRun run = Ctl(keys_.backoffice(), absl::StrCat("members tiers --all --idempotency_key=tiers-1 --membership=127.0.0.1:",
                                                    port));
  server->Shutdown();
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_EQ(membership.resume_tokens(), (std::vector<std::string>{"", "after-1", "after-2"})) << run.out;
  EXPECT_EQ(membership.keys(), (std::vector<std::string>{"tiers-1", "tiers-1-2", "tiers-1-3"})) << run.out;
}

}  // namespace
}  // namespace loyalty
