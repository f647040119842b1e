// loyaltyctl: its message translations (fields from the command line,
// tables, --out files), then the binary against the real ledger and a
// scripted membership: help, both flag forms, --version, tables and JSON,
// generated idempotency keys, retries, long jobs with --all, --out, and the
// exit codes scripts rely on.
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/testing/service_process.h"
#include "common/testing/test_db.h"
#include "common/testing/test_keys.h"
#include "gtest/gtest.h"
#include "loyalty/catalog/v1/catalog.pb.h"
#include "loyalty/ledger/v1/ledger.pb.h"
#include "loyalty/membership/v1/membership.grpc.pb.h"
#include "loyalty/settlement/v1/settlement.pb.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/server_builder.h"
#include "tools/loyaltyctl/messages.h"
#include "tools/loyaltyctl/out_file.h"

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

namespace sv1 = ::loyalty::settlement::v1;

// Lists other than the first (reconciliation mismatches), lists inside
// nested messages (a statement's lines) and lists inside the rows of a table
// are tables too, never a bare count.
TEST(LoyaltyctlMessages, NestedListsRenderAsTables) {
  sv1::ReconcileResponse report;
  report.set_period_id("p1");
  report.add_checks()->set_items_checked(7);
  for (int64_t difference : {1, -3}) {
    sv1::ReconciliationMismatch* m = report.add_mismatches();
    m->set_partner_id("vet");
    m->set_difference_points(difference);
  }
  const std::string reconcile = ctl::RenderTable(report);
  EXPECT_NE(reconcile.find("ITEMS_CHECKED"), std::string::npos) << reconcile;
  EXPECT_NE(reconcile.find("\nmismatches:\n"), std::string::npos) << reconcile;
  EXPECT_NE(reconcile.find("DIFFERENCE_POINTS"), std::string::npos) << reconcile;
  EXPECT_NE(reconcile.find("-3"), std::string::npos) << reconcile;
  EXPECT_EQ(reconcile.find("[2"), std::string::npos) << reconcile;

  sv1::GetStatementResponse one;
  one.mutable_statement()->set_statement_id("st_1");
  for (const char* id : {"l1", "l2", "l3", "l4"}) one.mutable_statement()->add_lines()->set_line_id(id);
  const std::string statement = ctl::RenderTable(one);
  EXPECT_NE(statement.find("statement.statement_id: st_1"), std::string::npos) << statement;
  EXPECT_NE(statement.find("statement.lines:\nLINE_ID"), std::string::npos) << statement;
  EXPECT_NE(statement.find("l4"), std::string::npos) << statement;
  EXPECT_EQ(statement.find("[4"), std::string::npos) << statement;

  sv1::ListStatementsResponse list;
  for (const char* id : {"st_a", "st_b"}) {
    sv1::Statement* st = list.add_statements();
    st->set_statement_id(id);
    st->add_lines()->set_line_id(std::string(id) + "-line");
  }
  const std::string rows = ctl::RenderTable(list);
  EXPECT_NE(rows.find("STATEMENT_ID"), std::string::npos) << rows;
  // Each line led by the statement it belongs to.
  EXPECT_NE(rows.find("statements.lines:\nSTATEMENTS.STATEMENT_ID  LINE_ID"), std::string::npos) << rows;
  const size_t line = rows.find("\nst_b ", rows.find("statements.lines:"));
  ASSERT_NE(line, std::string::npos) << rows;
  EXPECT_NE(rows.substr(line + 1, rows.find('\n', line + 1) - line - 1).find("st_b-line"), std::string::npos) << rows;
}

TEST(LoyaltyctlMessages, JsonHasZeroFieldsAndTablesShowBytesBySize) {
  lv1::GetBalanceResponse balance;
  balance.set_member_id("m1");
  balance.mutable_balance()->set_posted_points(5);
  const std::string json = ctl::RenderJson(balance);
  EXPECT_NE(json.find("\"pending_points\": \"0\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"next_expiry_points\": \"0\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"posted_points\": \"5\""), std::string::npos) << json;

  sv1::ExportPeriodResponse exported;
  exported.add_files()->set_content("a,b\n1,2\n");
  const std::string table = ctl::RenderTable(exported);
  EXPECT_NE(table.find("(8 bytes)"), std::string::npos) << table;
  EXPECT_EQ(table.find("1,2"), std::string::npos) << table;
}

TEST(LoyaltyctlMessages, MembersListPresetSelectsAllActiveMembersUnlessASegmentIsGiven) {
  membership::v1::QuerySegmentRequest all;
  ASSERT_TRUE(ctl::MergeJson(all, R"({"filter": {}})").ok());
  EXPECT_EQ(all.target_case(), membership::v1::QuerySegmentRequest::kFilter);
  ASSERT_TRUE(ctl::SetField(all, "segment_id", "seg_1").ok());
  EXPECT_EQ(all.target_case(), membership::v1::QuerySegmentRequest::kSegmentId);
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(LoyaltyctlOutFile, ExportFilesGoToTheFileOrTheFolderAndTextToTheFile) {
  char tmpl[] = "/tmp/loyaltyctl-out-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;

  sv1::ExportPeriodResponse two;
  for (const char* name : {"2026-11_statement_lines.csv", "2026-11_payments.csv"}) {
    sv1::ExportFile* f = two.add_files();
    f->set_file_name(name);
    f->set_content(absl::StrCat("content of ", name, "\n"));
  }
  auto wrote = ctl::WriteOut(dir + "/export", two, "ignored");
  ASSERT_TRUE(wrote.ok()) << wrote.status();
  EXPECT_EQ(Slurp(dir + "/export/2026-11_payments.csv"), "content of 2026-11_payments.csv\n");
  EXPECT_EQ(Slurp(dir + "/export/2026-11_statement_lines.csv"), "content of 2026-11_statement_lines.csv\n");
  EXPECT_NE(wrote->find("wrote " + dir + "/export/2026-11_payments.csv (32 bytes)"), std::string::npos) << *wrote;
  struct stat st {};
  ASSERT_EQ(stat((dir + "/export/2026-11_payments.csv").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  sv1::ExportPeriodResponse one;
  one.add_files()->set_content("only\n");
  ASSERT_TRUE(ctl::WriteOut(dir + "/one.csv", one, "ignored").ok());
  EXPECT_EQ(Slurp(dir + "/one.csv"), "only\n");

  lv1::GetBalanceResponse balance;
  auto text = ctl::WriteOut(dir + "/balance.txt", balance, "rendered\n");
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(Slurp(dir + "/balance.txt"), "rendered\n");

  sv1::ExportPeriodResponse bad = two;
  bad.mutable_files(1)->set_file_name("../escape.csv");
  EXPECT_EQ(ctl::WriteOut(dir + "/bad", bad, "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ctl::WriteOut(dir + "/no/such/folder/x", balance, "x").status().code(), absl::StatusCode::kUnavailable);
  std::system(("rm -rf " + dir).c_str());
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

// Every flag as --name=value or --name value; --version; failed calls by
// their code's name; JSON with zero fields; --out instead of stdout.
TEST_F(LoyaltyctlE2E, FlagFormsVersionCodeNamesAndOut) {
  const std::string bo = keys_.backoffice();
  CtlRun version = Ctl(bo, "--version");
  EXPECT_EQ(version.exit_code, 0) << version.out;
  EXPECT_EQ(version.out.rfind(absl::StrCat("loyaltyctl ", LOYALTY_VERSION), 0), 0u) << version.out;

  CtlRun credit = Ctl(bo, "points adjust --member_id m2 --direction credit --points 7 --reason 'two words' "
                          "--idempotency_key k-m2");
  ASSERT_EQ(credit.exit_code, 0) << credit.out;
  CtlRun spaced = Ctl(bo, "points balance --member_id m2 --output json --deadline_ms 5000");
  ASSERT_EQ(spaced.exit_code, 0) << spaced.out;
  EXPECT_NE(spaced.out.find("\"available_points\": \"7\""), std::string::npos) << spaced.out;
  EXPECT_NE(spaced.out.find("\"pending_points\": \"0\""), std::string::npos) << "zero fields too:\n" << spaced.out;
  CtlRun equals = Ctl(bo, "points balance --member_id=m2 --output=json --deadline_ms=5000");
  EXPECT_EQ(equals.out, spaced.out);
  EXPECT_EQ(Ctl(bo, "points balance --member_id").exit_code, 2);  // no value
  EXPECT_EQ(Ctl(bo, "points balance --member_id --output=json").exit_code, 2);
  EXPECT_EQ(Ctl(bo, "points balance --member_id=m2 --all=yes").exit_code, 2);

  CtlRun missing = Ctl(bo, "points balance --member_id nobody");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(missing.out.rfind("NOT_FOUND: ", 0), 0u) << missing.out;
  CtlRun denied = Ctl(keys_.partner("vet"), "points adjust --member_id=m2 --direction=credit --points=5 --reason=x");
  EXPECT_NE(denied.out.find("PERMISSION_DENIED: "), std::string::npos) << denied.out;

  char tmpl[] = "/tmp/loyaltyctl-out-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string path = absl::StrCat(tmpl, "/balance.json");
  CtlRun out = Ctl(bo, absl::StrCat("points balance --member_id m2 --output json --out ", path));
  ASSERT_EQ(out.exit_code, 0) << out.out;
  EXPECT_NE(out.out.find(absl::StrCat("wrote ", path)), std::string::npos) << out.out;
  EXPECT_EQ(out.out.find("available_points"), std::string::npos) << "not on stdout:\n" << out.out;
  std::ifstream in(path);
  std::stringstream written;
  written << in.rdbuf();
  EXPECT_EQ(written.str(), spaced.out);
  std::system(absl::StrCat("rm -rf ", tmpl).c_str());
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

  // UNAVAILABLE twice, then done.
  grpc::Status SetMemberStatus(grpc::ServerContext*, const loyalty::membership::v1::SetMemberStatusRequest* r,
                               loyalty::membership::v1::SetMemberStatusResponse*) override {
    absl::MutexLock lock(&mu_);
    keys_.push_back(r->idempotency_key());
    if (keys_.size() <= 2) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "database unavailable");
    return grpc::Status::OK;
  }

  grpc::Status QuerySegment(grpc::ServerContext*, const loyalty::membership::v1::QuerySegmentRequest* r,
                            loyalty::membership::v1::QuerySegmentResponse* out) override {
    absl::MutexLock lock(&mu_);
    queries_.push_back(*r);
    out->add_members()->set_member_id("mb_1");
    out->add_members()->set_member_id("mb_2");
    return grpc::Status::OK;
  }
  std::vector<loyalty::membership::v1::QuerySegmentRequest> queries() {
    absl::MutexLock lock(&mu_);
    return queries_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> resume_tokens_;
  std::vector<std::string> keys_;
  std::vector<loyalty::membership::v1::QuerySegmentRequest> queries_;
};

std::unique_ptr<grpc::Server> Serve(ScriptedMembership& membership, int* port) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), port);
  builder.RegisterService(&membership);
  return builder.BuildAndStart();
}

TEST_F(LoyaltyctlE2E, AllFollowsAResumableJobToItsEnd) {
  ScriptedMembership membership;
  int port = 0;
  std::unique_ptr<grpc::Server> server = Serve(membership, &port);
  ASSERT_NE(server, nullptr);
  CtlRun run = Ctl(keys_.backoffice(), absl::StrCat("members tiers --all --idempotency_key=tiers-1 --membership=127.0.0.1:",
                                                    port));
  server->Shutdown();
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_EQ(membership.resume_tokens(), (std::vector<std::string>{"", "after-1", "after-2"})) << run.out;
  EXPECT_EQ(membership.keys(), (std::vector<std::string>{"tiers-1", "tiers-1-2", "tiers-1-3"})) << run.out;
}

// UNAVAILABLE is retried with the same request and key (an interrupted
// close or expiry batch resumes); --retries=0 gives up at once.
TEST_F(LoyaltyctlE2E, TransientFailuresAreRetriedWithTheSameKey) {
  ScriptedMembership membership;
  int port = 0;
  std::unique_ptr<grpc::Server> server = Serve(membership, &port);
  ASSERT_NE(server, nullptr);
  const std::string target = absl::StrCat(" --membership 127.0.0.1:", port);
  CtlRun once = Ctl(keys_.backoffice(),
                    "members status --member_id mb_1 --status suspended --reason x --retries 0" + target);
  EXPECT_EQ(once.exit_code, 3) << once.out;
  CtlRun run = Ctl(keys_.backoffice(), "members status --member_id mb_1 --status suspended --reason x" + target);
  server->Shutdown();
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_NE(run.out.find("UNAVAILABLE: database unavailable; retrying (2 of 5) with the same idempotency key"),
            std::string::npos)
      << run.out;
  const std::vector<std::string> keys = membership.keys();
  ASSERT_EQ(keys.size(), 3u);  // one try, then a refused try and its retry
  EXPECT_NE(keys[1], keys[0]);
  EXPECT_EQ(keys[2], keys[1]);
}

// There is no ListMembers RPC: `members list` is QuerySegment, by default
// over every ACTIVE member (an empty filter), or over --segment_id.
TEST_F(LoyaltyctlE2E, MembersListQueriesEveryActiveMemberOrASegment) {
  ScriptedMembership membership;
  int port = 0;
  std::unique_ptr<grpc::Server> server = Serve(membership, &port);
  ASSERT_NE(server, nullptr);
  const std::string target = absl::StrCat(" --membership 127.0.0.1:", port);
  CtlRun all = Ctl(keys_.backoffice(), "members list" + target);
  EXPECT_EQ(all.exit_code, 0) << all.out;
  EXPECT_NE(all.out.find("MEMBER_ID"), std::string::npos) << all.out;
  EXPECT_NE(all.out.find("mb_2"), std::string::npos) << all.out;
  CtlRun segment = Ctl(keys_.backoffice(), "members list --segment_id seg_1" + target);
  EXPECT_EQ(segment.exit_code, 0) << segment.out;
  server->Shutdown();
  const auto queries = membership.queries();
  ASSERT_EQ(queries.size(), 2u);
  EXPECT_EQ(queries[0].target_case(), loyalty::membership::v1::QuerySegmentRequest::kFilter);
  EXPECT_EQ(queries[1].segment_id(), "seg_1");
}

}  // namespace
}  // namespace loyalty
