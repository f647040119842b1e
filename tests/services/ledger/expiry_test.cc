// Lot expiry against a real MariaDB (services/ledger/expiry.h).
#include <cppconn/prepared_statement.h>

#include <atomic>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/testing/test_db.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "services/ledger/holds.h"
#include "services/ledger/mysql_ledger_store.h"
#include "tests/services/ledger/ledger_fixture.h"
#include "tests/services/ledger/ledger_test_base.h"

namespace loyalty::ledger {
namespace {

using google::protobuf::util::TimeUtil;
using testing::EarnOf;

TEST_F(LedgerTest, ExpiryMovesExpiredLotsToBreakageOnceAndSparesHeldPoints) {
  Earn("m1", 3000, "vet");  // 30
  Earn("m2", 1000, "groomer");  // 10
  auto hold = Authorize("m1", 12);
  ASSERT_TRUE(hold.ok());
  // Make every lot expired.
  ASSERT_TRUE(loyalty::testing::ExecForTest(
                  t_->db->pool(), "UPDATE lots SET expires_at = NOW(6) - INTERVAL 1 DAY")
                  .ok());
  v1::RunExpiryRequest req;
  req.set_idempotency_key("expiry-1");
  req.set_max_lots(1);
  auto first = ledger().RunExpiry(caller_, req);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->lots_expired(), 1);
  EXPECT_TRUE(first->has_more());
  req.set_idempotency_key("expiry-2");
  req.set_max_lots(100);
  auto second = ledger().RunExpiry(caller_, req);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first->points_expired() + second->points_expired(), 18 + 10);  // 12 of m1 held
  req.set_idempotency_key("expiry-3");
  EXPECT_EQ(ledger().RunExpiry(caller_, req)->points_expired(), 0);  // nothing twice
  EXPECT_EQ(Available("m1"), 0);
  v1::GetAccountRequest acct;
  acct.set_account("breakage:vet");
  EXPECT_EQ(ledger().GetAccount(caller_, acct)->account().balance().posted_points(), 18);
  // The held points can still be captured.
  ASSERT_TRUE(Capture(hold->hold().hold_id(), 0).ok());
  *req.mutable_as_of() = TimeUtil::SecondsToTimestamp(4102444800);
  req.set_idempotency_key("expiry-future");
  EXPECT_EQ(ledger().RunExpiry(caller_, req).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(LedgerTest, HeldLotsDoNotStallExpiry) {
  Earn("held", 1000);  // the oldest lot, entirely on hold
  ASSERT_TRUE(Authorize("held", 10).ok());
  Earn("free", 1000);
  ASSERT_TRUE(loyalty::testing::ExecForTest(
                  t_->db->pool(), "UPDATE lots SET expires_at = NOW(6) - INTERVAL 1 DAY").ok());
  v1::RunExpiryRequest req;
  req.set_idempotency_key("exp-1");
  req.set_max_lots(1);
  auto run = ledger().RunExpiry(caller_, req);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->points_expired(), 10);  // the free member's lot, not stuck behind the held one
  EXPECT_EQ(Available("free"), 0);
  EXPECT_EQ(Available("held"), 0);
}

}  // namespace
}  // namespace loyalty::ledger
