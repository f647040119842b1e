// Holds against a real MariaDB (services/ledger/holds.h): authorize,
// capture in part, void, expiry before and by the sweeper.
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

// ---- Holds ------------------------------------------------------------------

TEST_F(LedgerTest, AuthorizeCapturePartialConsumesEarliestExpiringLotsFirst) {
  Earn("m1", 3000, "vet");      // lot A: 30 from vet
  Earn("m1", 2000, "groomer");  // lot B: 20 from groomer, expires a little later
  auto hold = Authorize("m1", 40);
  ASSERT_TRUE(hold.ok()) << hold.status();
  EXPECT_EQ(hold->hold().state(), v1::HOLD_STATE_PENDING);
  EXPECT_EQ(hold->balance().available_points(), 10);
  EXPECT_EQ(hold->balance().posted_points(), 50);

  auto captured = Capture(hold->hold().hold_id(), 35);
  ASSERT_TRUE(captured.ok()) << captured.status();
  const v1::Transfer& t = captured->transfer();
  EXPECT_EQ(t.code(), v1::TRANSFER_CODE_REDEEM);
  EXPECT_EQ(t.credit_account(), "redemption:food");
  EXPECT_EQ(t.points(), 35);
  ASSERT_EQ(t.allocations_size(), 2);
  EXPECT_EQ(t.allocations(0).issuer_partner_id(), "vet");
  EXPECT_EQ(t.allocations(0).points(), 30);
  EXPECT_EQ(t.allocations(1).issuer_partner_id(), "groomer");
  EXPECT_EQ(t.allocations(1).points(), 5);
  EXPECT_EQ(captured->hold().state(), v1::HOLD_STATE_CAPTURED);
  // The uncaptured 5 went back.
  EXPECT_EQ(captured->balance().available_points(), 15);
  EXPECT_EQ(captured->balance().pending_points(), 0);

  // A second capture, and a void, of a closed hold are refused.
  EXPECT_EQ(Capture(hold->hold().hold_id(), 1).status().code(), absl::StatusCode::kFailedPrecondition);
  v1::VoidRequest v;
  v.set_idempotency_key(NextKey());
  v.set_hold_id(hold->hold().hold_id());
  EXPECT_EQ(ledger().Void(caller_, v).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(LedgerTest, HoldRefusals) {
  Earn("m1", 1000);
  EXPECT_EQ(Authorize("m1", 11).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Authorize("m1", 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Authorize("m1", 5, "closed-shop").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Authorize("m1", 5, "ghost").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Authorize("frozen", 1).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Capture("hold_missing", 1).status().code(), absl::StatusCode::kNotFound);
  auto hold = Authorize("m1", 5);
  ASSERT_TRUE(hold.ok());
  EXPECT_EQ(Capture(hold->hold().hold_id(), 6).status().code(), absl::StatusCode::kInvalidArgument);
  // The hold's points are not available to a second hold.
  EXPECT_EQ(Authorize("m1", 6).status().code(), absl::StatusCode::kFailedPrecondition);
  // The TTL is capped, not refused.
  auto long_hold = Authorize("m1", 1, "food", 1'000'000);
  ASSERT_TRUE(long_hold.ok());
  EXPECT_LE(TimeUtil::TimestampToSeconds(long_hold->hold().expires_at()) -
                TimeUtil::TimestampToSeconds(long_hold->hold().created_at()),
            kMaxHoldTtlSeconds);
}

TEST_F(LedgerTest, VoidReleasesTheHold) {
  Earn("m1", 1000);
  auto hold = Authorize("m1", 7);
  ASSERT_TRUE(hold.ok());
  EXPECT_EQ(Available("m1"), 3);
  v1::VoidRequest v;
  v.set_idempotency_key("void-1");
  v.set_hold_id(hold->hold().hold_id());
  auto voided = ledger().Void(caller_, v);
  ASSERT_TRUE(voided.ok()) << voided.status();
  EXPECT_EQ(voided->hold().state(), v1::HOLD_STATE_VOIDED);
  EXPECT_EQ(voided->transfer().code(), v1::TRANSFER_CODE_HOLD_VOID);
  EXPECT_EQ(Available("m1"), 10);
  EXPECT_EQ(Capture(hold->hold().hold_id(), 0).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(LedgerTest, ExpiredHoldIsRefusedBeforeTheSweeperAndReleasedByIt) {
  Earn("m1", 1000);
  auto hold = Authorize("m1", 4, "food", 1);
  ASSERT_TRUE(hold.ok());
  absl::SleepFor(absl::Milliseconds(1100));
  absl::Status late = Capture(hold->hold().hold_id(), 0).status();
  EXPECT_EQ(late.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(late.message(), "expired")) << late;
  v1::GetHoldRequest get;
  get.set_hold_id(hold->hold().hold_id());
  EXPECT_EQ(ledger().GetHold(caller_, get)->hold().state(), v1::HOLD_STATE_EXPIRED);
  EXPECT_EQ(Available("m1"), 6);  // still held until the sweeper runs
  auto swept = ledger().SweepExpiredHolds(100);
  ASSERT_TRUE(swept.ok()) << swept.status();
  EXPECT_EQ(swept->holds_released(), 1);
  EXPECT_EQ(Available("m1"), 10);
  EXPECT_EQ(ledger().SweepExpiredHolds(100)->holds_released(), 0);
}

}  // namespace
}  // namespace loyalty::ledger
