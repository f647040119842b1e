// The whole platform, as quickstart runs it: the four service binaries wired
// to each other (the ledger following the other three for its earn rules),
// then the demo, twice. The demo must succeed, and the second run must
// change nothing: the same statements, the same netting, the same journal.
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
        {"catalog", {"--ledger_address=" + addr("ledger"), "--membership_address=" + addr("membership")}},
    };
    for (const char* name : {"membership", "ledger", "settlement", "catalog"}) {
      auto db = testing::TestDatabase::Create(absl::StrCat("demo", name).substr(0, 12));
      ASSERT_TRUE(db.ok()) << db.status();
      const db::DbOptions& o = (*db)->options();
      std::vector<std::string> a = args.at(name);
      a.push_back("--listen=" + addr(name));
      auto process = testing::ServiceProcess::Start(
          absl::StrCat(LOYALTY_BIN_DIR, "/services/", name, "/loyalty-", name), a,
          {{"LOYALTY_DB_HOST", o.host},
           {"LOYALTY_DB_PORT", std::to_string(o.port)},
           {"LOYALTY_DB_SOCKET", o.socket},
           {"LOYALTY_DB_USER", o.user},
           {"LOYALTY_DB_PASSWORD", o.password},
           {"LOYALTY_DB_NAME", (*db)->name()},
           {"LOYALTY_API_KEYS_FILE", *keys_file},
           {"LOYALTY_LEDGER_API_KEY", service_key},
           {"LOYALTY_SERVICE_API_KEY", service_key}});
      ASSERT_TRUE(process.ok()) << name << ": " << process.status();
      dbs_.push_back(*std::move(db));
      processes_[name] = *std::move(process);
    }
    // The demo's keys file, in quickstart's "<label> <key>" format.
    dev_keys_ = absl::StrCat(::testing::TempDir(), "/demo-dev-keys.txt");
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

}  // namespace
}  // namespace loyalty
