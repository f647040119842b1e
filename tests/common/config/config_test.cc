#include <map>

#include "absl/strings/string_view.h"
#include "absl/strings/match.h"
#include "common/config/config.h"
#include "gtest/gtest.h"

namespace loyalty::config {
namespace {

std::vector<FlagSpec> Specs() {
  return {{"db_port", "3307", "port"},
          {"db_password", "dev", "password", true},
          {"listen", "127.0.0.1:7102", "address"},
          {"verbose", "false", "bool"}};
}

EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](absl::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(Config, DefaultsThenEnvThenFlags) {
  const char* argv[] = {"prog", "--listen=0.0.0.0:1", "--db_port", "4000"};
  auto c = Config::Load(Specs(), 4, argv,
                        FakeEnv({{"LOYALTY_DB_PORT", "3999"}, {"LOYALTY_DB_PASSWORD", "pw"}}));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->GetString("listen"), "0.0.0.0:1");
  EXPECT_EQ(c->SourceOf("listen"), "flag");
  EXPECT_EQ(*c->GetInt("db_port"), 4000);  // flag beats env
  EXPECT_EQ(c->GetString("db_password"), "pw");
  EXPECT_EQ(c->SourceOf("db_password"), "env");
  EXPECT_EQ(*c->GetBool("verbose"), false);
  EXPECT_EQ(c->SourceOf("verbose"), "default");
}

TEST(Config, UnknownFlagIsRefused) {
  const char* argv[] = {"prog", "--db_prot=1"};
  auto c = Config::Load(Specs(), 2, argv, FakeEnv({}));
  ASSERT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(c.status().message(), "--db_prot"));
}

TEST(Config, MissingValueAndPositionalAreRefused) {
  const char* argv1[] = {"prog", "--db_port"};
  EXPECT_FALSE(Config::Load(Specs(), 2, argv1, FakeEnv({})).ok());
  const char* argv2[] = {"prog", "stray"};
  EXPECT_FALSE(Config::Load(Specs(), 2, argv2, FakeEnv({})).ok());
}

TEST(Config, BadIntegerNamesTheFlagAndRangeIsChecked) {
  const char* argv[] = {"prog", "--db_port=abc"};
  auto c = Config::Load(Specs(), 2, argv, FakeEnv({}));
  ASSERT_TRUE(c.ok());
  auto port = c->GetInt("db_port");
  EXPECT_EQ(port.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(port.status().message(), "--db_port"));
  const char* argv2[] = {"prog", "--db_port=70000"};
  auto c2 = Config::Load(Specs(), 2, argv2, FakeEnv({}));
  EXPECT_FALSE(c2->GetInt("db_port", 1, 65535).ok());
  EXPECT_FALSE(c2->GetBool("listen").ok());
}

TEST(Config, SecretsAreRedacted) {
  const char* argv[] = {"prog", "--db_password=hunter2", "--help"};
  auto c = Config::Load(Specs(), 3, argv, FakeEnv({}));
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->help_requested());
  EXPECT_FALSE(absl::StrContains(c->Describe(), "hunter2"));
  EXPECT_TRUE(absl::StrContains(c->Describe(), "db_password=<redacted>"));
  EXPECT_FALSE(absl::StrContains(c->Help("prog"), "'dev'"));
  EXPECT_TRUE(absl::StrContains(c->Help("prog"), "LOYALTY_DB_PORT"));
}

TEST(Config, EnvName) { EXPECT_EQ(EnvName("db_pool_size"), "LOYALTY_DB_POOL_SIZE"); }

}  // namespace
}  // namespace loyalty::config
