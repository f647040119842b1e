// Adjustments against a real MariaDB (services/ledger/adjust.h).
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

// ---- Adjust --------------------------------------------------------------------

TEST_F(LedgerTest, AdjustNeedsAReasonAndNeverOverdraws) {
  v1::AdjustRequest a;
  a.set_idempotency_key("adj-1");
  a.set_member_id("m1");
  a.set_direction(v1::ADJUST_DIRECTION_CREDIT);
  a.set_points(25);
  EXPECT_EQ(ledger().Adjust(caller_, a).status().code(), absl::StatusCode::kInvalidArgument);
  a.set_reason("goodwill after a lost parcel");  // same key: bad input did not use it up
  auto credit = ledger().Adjust(caller_, a);
  ASSERT_TRUE(credit.ok()) << credit.status();
  EXPECT_EQ(credit->transfer().debit_account(), "operator:adjustments");
  EXPECT_EQ(credit->lot().issuer_partner_id(), "");
  a.set_idempotency_key("adj-2");
  a.set_direction(v1::ADJUST_DIRECTION_DEBIT);
  a.set_points(26);
  EXPECT_EQ(ledger().Adjust(caller_, a).status().code(), absl::StatusCode::kFailedPrecondition);
  a.set_idempotency_key("adj-3");
  a.set_points(20);
  ASSERT_TRUE(ledger().Adjust(caller_, a).ok());
  EXPECT_EQ(Available("m1"), 5);

  v1::GrantBonusRequest b;
  b.set_idempotency_key("bonus-1");
  b.set_member_id("m1");
  b.set_points(100);
  b.set_reason("referral");
  EXPECT_EQ(ledger().GrantBonus(caller_, b).status().code(), absl::StatusCode::kInvalidArgument);
  b.set_bonus_kind(v1::BONUS_KIND_REFERRAL);
  b.set_funding_partner_id("vet");
  auto bonus = ledger().GrantBonus(caller_, b);
  ASSERT_TRUE(bonus.ok()) << bonus.status();
  EXPECT_EQ(bonus->transfer().debit_account(), "issuance:vet");
  EXPECT_EQ(Available("m1"), 105);
}

}  // namespace
}  // namespace loyalty::ledger
