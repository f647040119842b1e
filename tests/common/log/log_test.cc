#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/strings/match.h"
#include "common/log/log.h"
#include "gtest/gtest.h"

namespace loyalty::log {
namespace {

TEST(Log, FormatsLogfmtAndQuotes) {
  std::string line = FormatLine(Level::kInfo, "rpc",
                                {{"method", "/loyalty.ledger.v1.LedgerService/Earn"},
                                 {"latency_us", 120},
                                 {"note", "two words"},
                                 {"q", "a\"b"},
                                 {"empty", ""}});
  EXPECT_EQ(line,
            "level=info event=rpc method=/loyalty.ledger.v1.LedgerService/Earn latency_us=120 "
            "note=\"two words\" q=\"a\\\"b\" empty=\"\"");
}

TEST(Log, NewlinesCannotForgeALine) {
  std::string line = FormatLine(Level::kWarn, "x", {{"v", "a\nlevel=error event=forged"}});
  EXPECT_FALSE(absl::StrContains(line, "\n"));
}

TEST(Log, MinLevelFiltersAndSinkCaptures) {
  std::vector<std::string> lines;
  SetSinkForTesting([&](absl::string_view l) { lines.emplace_back(l); });
  SetMinLevel(Level::kWarn);
  Info("dropped");
  Warn("kept", {{"n", 1}});
  SetMinLevel(Level::kInfo);
  SetSinkForTesting(nullptr);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(absl::StartsWith(lines[0], "ts="));
  EXPECT_TRUE(absl::StrContains(lines[0], "level=warn event=kept n=1"));
}

TEST(Log, ParseLevel) {
  Level l;
  EXPECT_TRUE(ParseLevel("DEBUG", &l));
  EXPECT_EQ(l, Level::kDebug);
  EXPECT_FALSE(ParseLevel("loud", &l));
}

}  // namespace
}  // namespace loyalty::log
