// The whole platform, as quickstart runs it: the four service binaries wired
// to each other (the ledger following the other three for its earn rules),
// then the demo, twice. The demo must succeed, and the second run must
// change nothing: the same statements, the same netting, the same journal.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <fstream>
#include <map>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/testing/service_process.h"
#include "common/testing/test_db.h"
#include "common/testing/test_keys.h"
#include "gtest/gtest.h"

namespace loyalty {
namespace {

struct DemoRun {
  int exit_code = -1;
  std::string out;
};

class DemoE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    auto keys_file = keys_.WriteKeysFile();
    ASSERT_TRUE(keys_file.ok()) << keys_file.status();
    for (const char* name : {"membership", "ledger", "settlement", "catalog"}) ports_[name] = testing::PickFreePort();
    auto addr = [&](const std::string& name) { return absl::StrCat("127.0.0.1:", ports_[name]); };
    const std::string service_key = keys_.service();
    const std::map<std::string, std::vector<std::string>> args = {
        {"membership", {"--ledger_address=" + addr("ledger"), "--journal_poll_ms=500"}},
        {"ledger",
         {"--membership_address=" + addr("membership"), "--settlement_address=" + addr("settlement"),
          "--catalog_address=" + addr("catalog"), "--earn_rules_refresh_ms=300"}},
        {"settlement", {"--ledger_address=" + addr("ledger"), "--journal_poll_ms=500"}},
        {"catalog",
         {"--ledger_address=" + addr("ledger"), "--membership_address=" + addr("membership"),
          "--settlement_address=" + addr("settlement")}},
    };
    for (const char* name : {"membership", "ledger", "settlement", "catalog"}) {
      auto db = testing::TestDatabase::Create(absl::StrCat("demo", name).substr(0, 12));
      ASSERT_TRUE(db.ok()) << db.status();
      std::vector<std::string> a = args.at(name);
      a.push_back("--listen=" + addr(name));
      testing::ServiceProcess::EnvVars env = testing::ServiceDbEnv(**db, *keys_file);
      env.emplace_back("LOYALTY_LEDGER_API_KEY", service_key);
      env.emplace_back("LOYALTY_SERVICE_API_KEY", service_key);
      auto process = testing::ServiceProcess::Start(
          absl::StrCat(LOYALTY_BIN_DIR, "/services/", name, "/loyalty-", name), a, env);
      ASSERT_TRUE(process.ok()) << name << ": " << process.status();
      dbs_.push_back(*std::move(db));
      processes_[name] = *std::move(process);
    }
    // The demo's keys file, in quickstart's "<label> <key>" format.
    // A file of its own: ctest runs this suite's tests side by side.
    char path[] = "/tmp/loyalty-demo-keys-XXXXXX";
    const int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    close(fd);
    dev_keys_ = path;
    std::ofstream out(dev_keys_);
    out << "# development keys\nbackoffice " << keys_.backoffice() << "\nfinance " << keys_.finance()
        << "\nservice " << keys_.service() << "\n";
    for (const char* p : {"vet-clinic", "pet-food", "groomer"}) out << "partner:" << p << " " << keys_.partner(p) << "\n";
  }

  DemoRun Demo() {
    std::string cmd = absl::StrCat("LOYALTY_DEV_KEYS_FILE=", dev_keys_);
    for (const auto& [name, port] : ports_) {
      absl::StrAppend(&cmd, " LOYALTY_", absl::AsciiStrToUpper(name), "_ADDR=127.0.0.1:", port);
    }
    absl::StrAppend(&cmd, " ", LOYALTY_BIN_DIR, "/partners/demo/loyalty-demo 2>&1");
    DemoRun run;
    std::FILE* p = popen(cmd.c_str(), "r");
    if (p == nullptr) return run;
    char buf[1024];
    while (std::fgets(buf, sizeof buf, p) != nullptr) run.out += buf;
    const int rc = pclose(p);
    run.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    return run;
  }

  // The pet-food e-shop reference integration, with the pet-food key.
  DemoRun Eshop(const std::string& args) {
    std::string cmd = absl::StrCat("LOYALTY_API_KEY=", keys_.partner("pet-food"), " ", LOYALTY_BIN_DIR,
                                   "/partners/petfood_eshop/loyalty-eshop");
    for (const char* name : {"membership", "ledger", "catalog"}) {
      absl::StrAppend(&cmd, " --", name, "=127.0.0.1:", ports_[name]);
    }
    absl::StrAppend(&cmd, " ", args, " 2>&1");
    DemoRun run;
    std::FILE* p = popen(cmd.c_str(), "r");
    if (p == nullptr) return run;
    char buf[1024];
    while (std::fgets(buf, sizeof buf, p) != nullptr) run.out += buf;
    const int rc = pclose(p);
    run.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    return run;
  }

  // The word after `marker` in `text` ("" when absent).
  static std::string After(const std::string& text, const std::string& marker) {
    const size_t at = text.find(marker);
    if (at == std::string::npos) return "";
    const size_t start = at + marker.size();
    return text.substr(start, text.find_first_of(" \n,)", start) - start);
  }

  void TearDown() override {
    if (!dev_keys_.empty()) std::remove(dev_keys_.c_str());
  }

  std::string Logs() {
    std::string out;
    for (const auto& [name, process] : processes_) absl::StrAppend(&out, "--- ", name, "\n", process->LogTail(3000));
    return out;
  }

  testing::TestKeyring keys_{{"vet-clinic", "pet-food", "groomer"}};
  std::map<std::string, int> ports_;
  std::vector<std::unique_ptr<testing::TestDatabase>> dbs_;
  std::map<std::string, std::unique_ptr<testing::ServiceProcess>> processes_;
  std::string dev_keys_;
};

TEST_F(DemoE2E, RunsADayAndARerunChangesNothing) {
  DemoRun first = Demo();
  ASSERT_EQ(first.exit_code, 0) << first.out << "\n" << Logs();
  if (std::getenv("DEMO_E2E_PRINT") != nullptr) std::cout << first.out;  // for the README
  // The day's figures, worked out by hand from the demo's contracts:
  // vet 1 pt/EUR (EUR 180 -> 180); pet-food 2 pt/EUR plus the double-dog-food
  // campaign (EUR 60 -> 120 + 120); Anna is Gold (1.25x) at the groomer
  // (EUR 40 -> 40 + 10).
  EXPECT_NE(first.out.find("-> 180 points (base 180, tier 0, campaigns 0)"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("-> 240 points (base 120, tier 0, campaigns 120)"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("tier review: Anna is now Gold"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("-> 50 points (base 40, tier 10, campaigns 0)"), std::string::npos) << first.out;
  // Ben spent 200 of his 240 on the voucher; returning half the order
  // (120 points) takes back the 40 left and records 80 as shortfall.
  EXPECT_NE(first.out.find("120 points it earned, 40 are taken back and 80 were already spent"), std::string::npos)
      << first.out;
  // The vet's points honoured at the pet-food maker.
  EXPECT_NE(first.out.find("vet-clinic  pet-food     100"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("== Netting (EUR)"), std::string::npos) << first.out;

  DemoRun second = Demo();
  ASSERT_EQ(second.exit_code, 0) << second.out;
  EXPECT_EQ(second.out, first.out);
}

TEST_F(DemoE2E, ThePetFoodEshopCheckoutWorksOnTheSeededPlatform) {
  DemoRun demo = Demo();
  ASSERT_EQ(demo.exit_code, 0) << demo.out << "\n" << Logs();
  ASSERT_NE(demo.out.find("Ben Keller enrolled"), std::string::npos) << demo.out;
  const std::string card = After(demo.out.substr(demo.out.find("Ben Keller enrolled")), ", card ");
  ASSERT_FALSE(card.empty()) << demo.out;

  // EUR 150 of dog food: 300 base + 300 from the double-points campaign.
  DemoRun quote = Eshop("quote " + card + " 150.00 dog-food=150.00");
  ASSERT_EQ(quote.exit_code, 0) << quote.out;
  EXPECT_NE(quote.out.find("this basket earns 600 points"), std::string::npos) << quote.out;
  DemoRun earn = Eshop("earn " + card + " ORDER-9001 150.00 dog-food=150.00");
  ASSERT_EQ(earn.exit_code, 0) << earn.out;
  EXPECT_NE(earn.out.find("earned 600 points on order ORDER-9001"), std::string::npos) << earn.out;

  DemoRun rewards = Eshop("rewards " + card);
  ASSERT_EQ(rewards.exit_code, 0) << rewards.out;
  const size_t line = rewards.out.find("5 kg bag of dog food");
  ASSERT_NE(line, std::string::npos) << rewards.out;
  const size_t start = rewards.out.rfind('\n', line) + 3;  // "  <reward_id>  <name>"
  const std::string reward = rewards.out.substr(start, rewards.out.find(' ', start) - start);

  // A cancelled order gives the points back; the next order's voucher is honoured.
  DemoRun first = Eshop("redeem " + card + " " + reward + " ORDER-9002");
  ASSERT_EQ(first.exit_code, 0) << first.out << "\n" << Logs();
  EXPECT_NE(first.out.find("member has 400 points left"), std::string::npos) << first.out;
  const std::string cancelled_code = After(first.out, "voucher ");
  EXPECT_EQ(Eshop("redeem " + card + " " + reward + " ORDER-9002").out, first.out);  // a retry: the same voucher
  DemoRun cancel = Eshop("cancel " + cancelled_code + " ORDER-9002");
  ASSERT_EQ(cancel.exit_code, 0) << cancel.out;
  EXPECT_NE(cancel.out.find("points and stock returned"), std::string::npos) << cancel.out;

  DemoRun second = Eshop("redeem " + card + " " + reward + " ORDER-9003");
  ASSERT_EQ(second.exit_code, 0) << second.out;
  EXPECT_NE(second.out.find("member has 400 points left"), std::string::npos) << second.out;
  const std::string code = After(second.out, "voucher ");
  DemoRun honour = Eshop("honour " + code + " ORDER-9003");
  ASSERT_EQ(honour.exit_code, 0) << honour.out;
  EXPECT_NE(honour.out.find("honoured on order ORDER-9003"), std::string::npos) << honour.out;
  // A used voucher cannot be honoured again under another order.
  DemoRun again = Eshop("honour " + code + " ORDER-9004");
  EXPECT_EQ(again.exit_code, 1) << again.out;
  EXPECT_NE(again.out.find("REJECTED"), std::string::npos) << again.out;
}

}  // namespace
}  // namespace loyalty
