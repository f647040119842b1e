// The partner SDK and the vet clinic POS against the real membership and
// ledger binaries: enrol, look up by card, earn (twice with the same invoice:
// posted once), redeem at the till, a refusal, a return after the points were
// partly spent, and a partner acting for another.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/testing/service_process.h"
#include "common/testing/test_db.h"
#include "common/testing/test_keys.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "loyalty/ledger/internal/v1/earn_rules_file.pb.h"
#include "partners/sdk/loyalty_sdk.h"

namespace loyalty {
namespace {

std::string WriteRulesFile() {
  ledger::internal::v1::EarnRulesFile file;
  for (const char* id : {"vet", "food"}) {
    auto* p = file.add_partners();
    p->set_partner_id(id);
    p->set_status(settlement::v1::PARTNER_STATUS_ACTIVE);
    auto* c = p->add_contracts();
    c->set_contract_id(absl::StrCat(id, "-c1"));
    c->set_version(1);
    *c->mutable_effective_from() = google::protobuf::util::TimeUtil::SecondsToTimestamp(0);
    c->set_earn_currency("EUR");
    c->set_earn_rate_milli_points_per_unit(1000);
  }
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

struct PosRun {
  int exit_code = -1;
  std::string out;
};

class SdkE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    auto keys_file = keys_.WriteKeysFile();
    ASSERT_TRUE(keys_file.ok()) << keys_file.status();
    auto mdb = testing::TestDatabase::Create("sdkmemb");
    ASSERT_TRUE(mdb.ok()) << mdb.status();
    membership_db_ = *std::move(mdb);
    auto ldb = testing::TestDatabase::Create("sdkledg");
    ASSERT_TRUE(ldb.ok()) << ldb.status();
    ledger_db_ = *std::move(ldb);
    auto membership = testing::ServiceProcess::Start(
        absl::StrCat(LOYALTY_BIN_DIR, "/services/membership/loyalty-membership"), {"--journal_poll_ms=0"},
        testing::ServiceDbEnv(*membership_db_, *keys_file));
    ASSERT_TRUE(membership.ok()) << membership.status();
    membership_ = *std::move(membership);
    auto ledger = testing::ServiceProcess::Start(
        absl::StrCat(LOYALTY_BIN_DIR, "/services/ledger/loyalty-ledger"),
        {absl::StrCat("--earn_rules_file=", WriteRulesFile()), "--hold_sweep_interval_ms=0",
         "--expiry_interval_ms=0"},
        testing::ServiceDbEnv(*ledger_db_, *keys_file));
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    ledger_ = *std::move(ledger);
  }

  sdk::ClientOptions Options(const std::string& target, const std::string& key) {
    sdk::ClientOptions o;
    o.target = target;
    o.api_key = key;
    return o;
  }

  PosRun Pos(const std::string& args) {
    const std::string cmd = absl::StrCat("LOYALTY_API_KEY=", keys_.partner("vet"), " ", LOYALTY_BIN_DIR,
                                         "/partners/vet_clinic_pos/loyalty-vet-pos --partner=vet --ledger=",
                                         ledger_->address(), " --membership=", membership_->address(), " ",
                                         args, " 2>&1");
    PosRun run;
    std::FILE* p = popen(cmd.c_str(), "r");
    if (p == nullptr) return run;
    char buf[512];
    while (std::fgets(buf, sizeof buf, p) != nullptr) run.out += buf;
    const int rc = pclose(p);
    run.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    return run;
  }

  testing::TestKeyring keys_{{"vet", "food"}};
  std::unique_ptr<testing::TestDatabase> membership_db_;
  std::unique_ptr<testing::TestDatabase> ledger_db_;
  std::unique_ptr<testing::ServiceProcess> membership_;
  std::unique_ptr<testing::ServiceProcess> ledger_;
};

TEST_F(SdkE2E, AVetClinicDayThroughTheSdkAndThePos) {
  sdk::MembershipClient membership(Options(membership_->address(), keys_.partner("vet")));
  membership::v1::EnrolRequest enrol;
  enrol.set_given_name("Rex's owner");
  enrol.set_email("owner@example.com");
  enrol.set_preferred_language("en");
  enrol.set_enrolling_partner_id("vet");
  enrol.set_terms_version("2025-01");
  enrol.set_privacy_version("2025-01");
  auto enrolled = membership.Enrol(enrol);
  ASSERT_TRUE(enrolled.ok()) << enrolled.error().ToString();
  const std::string card = enrolled->card().card_number();
  const std::string member = enrolled->member().member_id();
  ASSERT_FALSE(card.empty());
  // The SDK kept the key it generated: enrolling again under it is a replay.
  enrol.set_idempotency_key(enrolled.idempotency_key());
  auto replay = membership.Enrol(enrol);
  ASSERT_TRUE(replay.ok()) << replay.error().ToString();
  EXPECT_EQ(replay->member().member_id(), member);

  PosRun lookup = Pos("lookup " + card);
  EXPECT_EQ(lookup.exit_code, 0) << lookup.out;
  EXPECT_NE(lookup.out.find(member), std::string::npos) << lookup.out;
  EXPECT_NE(lookup.out.find("never earned"), std::string::npos) << lookup.out;

  PosRun earn = Pos("earn " + card + " INV-1 45.90 veterinary=45.90");
  ASSERT_EQ(earn.exit_code, 0) << earn.out;
  EXPECT_NE(earn.out.find("earned 45 points on invoice INV-1"), std::string::npos) << earn.out;
  // The till crashed and runs it again: same answer, posted once.
  PosRun again = Pos("earn " + card + " INV-1 45.90 veterinary=45.90");
  ASSERT_EQ(again.exit_code, 0) << again.out;
  EXPECT_EQ(again.out, earn.out);

  PosRun redeem = Pos("redeem " + card + " 20 TILL-1");
  ASSERT_EQ(redeem.exit_code, 0) << redeem.out;
  EXPECT_NE(redeem.out.find("balance 25 points available"), std::string::npos) << redeem.out;
  PosRun too_much = Pos("redeem " + card + " 1000 TILL-2");
  EXPECT_EQ(too_much.exit_code, 1) << too_much.out;
  EXPECT_NE(too_much.out.find("REJECTED"), std::string::npos) << too_much.out;

  // Return the whole invoice: 45 points, 20 of them already spent.
  const std::string marker = "(transfer ";
  const size_t at = earn.out.find(marker);
  ASSERT_NE(at, std::string::npos);
  const std::string transfer = earn.out.substr(at + marker.size(), earn.out.find(')', at) - at - marker.size());
  PosRun ret = Pos("return " + transfer + " RET-1");
  ASSERT_EQ(ret.exit_code, 0) << ret.out;
  EXPECT_NE(ret.out.find("45 points reversed, 20 already spent"), std::string::npos) << ret.out;

  sdk::LedgerClient ledger(Options(ledger_->address(), keys_.partner("vet")));
  auto balance = ledger.GetBalance(member);
  ASSERT_TRUE(balance.ok()) << balance.error().ToString();
  EXPECT_EQ(balance->balance().available_points(), 0);

  // Another partner's key cannot earn as the vet clinic.
  sdk::LedgerClient food(Options(ledger_->address(), keys_.partner("food")));
  ledger::v1::EarnRequest as_vet;
  as_vet.set_partner_id("vet");
  as_vet.set_member_id(member);
  as_vet.mutable_amount()->set_amount_minor(1000);
  as_vet.mutable_amount()->set_currency("EUR");
  as_vet.set_receipt_reference("X");
  auto denied = food.Earn(as_vet);
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.error().code, sdk::ErrorCode::kPermissionDenied) << denied.error().ToString();
  // A bad amount names its field.
  as_vet.mutable_amount()->set_amount_minor(-5);
  auto bad = ledger.Earn(as_vet);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, sdk::ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad.error().field, "amount.amount_minor") << bad.error().ToString();
}

}  // namespace
}  // namespace loyalty
