// The typed commands (services/ledger/ledger_commands.h): the RPC name each
// is recorded under must stay what the idempotency records already stored
// say, or a retry of an old key would be refused as another method.
#include "services/ledger/ledger_commands.h"

#include "gtest/gtest.h"

namespace loyalty::ledger {
namespace {

TEST(LedgerCommands, EachCommandIsRecordedUnderItsRpcName) {
  EXPECT_EQ(MethodOf(EarnCommand{}), "Earn");
  EXPECT_EQ(MethodOf(AuthorizeCommand{}), "Authorize");
  EXPECT_EQ(MethodOf(CaptureCommand{}), "Capture");
  EXPECT_EQ(MethodOf(VoidCommand{}), "Void");
  EXPECT_EQ(MethodOf(ReverseCommand{}), "Reverse");
  EXPECT_EQ(MethodOf(AdjustCommand{}), "Adjust");
  EXPECT_EQ(MethodOf(GrantBonusCommand{}), "GrantBonus");
  EXPECT_EQ(MethodOf(RunExpiryCommand{}), "RunExpiry");
  EXPECT_EQ(MethodOf(RunHoldExpiryCommand{}), "RunHoldExpiry");
  EXPECT_EQ(std::variant_size_v<CommandBody>, 9u);
}

TEST(LedgerCommands, ACommandHasNoAnswerUntilApplied) {
  Command command;
  EXPECT_TRUE(std::holds_alternative<std::monostate>(command.response));
  EXPECT_TRUE(command.record_idempotency);
}

}  // namespace
}  // namespace loyalty::ledger
