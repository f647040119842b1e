// The ledger's behaviour against a real MariaDB: every path, its errors, and
// the invariants after each test.
// The sections have their own sources (earn_test.cc, holds_test.cc,
// reverse_test.cc, adjust_test.cc, expiry_test.cc); here are idempotency,
// queries and the journal, and concurrency.
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

// ---- Idempotency ------------------------------------------------------------

TEST_F(LedgerTest, SameKeySameRequestReplaysDifferentRequestIsRefused) {
  v1::EarnRequest req = EarnOf("same-key", "vet", "m1", 5000);
  auto first = ledger().Earn(caller_, req);
  auto again = ledger().Earn(caller_, req);
  ASSERT_TRUE(first.ok() && again.ok());
  EXPECT_EQ(first->transfer().transfer_id(), again->transfer().transfer_id());
  EXPECT_EQ(first->SerializeAsString(), again->SerializeAsString());
  EXPECT_EQ(Available("m1"), 50);

  v1::EarnRequest changed = req;
  changed.mutable_amount()->set_amount_minor(6000);
  changed.mutable_lines(0)->mutable_amount()->set_amount_minor(6000);
  absl::Status s = ledger().Earn(caller_, changed).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(absl::StrContains(s.message(), "amount.amount_minor")) << s;

  // Another caller has its own key space.
  Caller other{.principal = "key:other"};
  v1::EarnRequest other_req = EarnOf("same-key", "vet", "m1", 5000);
  other_req.set_receipt_reference("other-receipt");
  EXPECT_TRUE(ledger().Earn(other, other_req).ok());
  // The same receipt under a new key is refused.
  v1::EarnRequest dup_receipt = EarnOf("fresh-key", "vet", "m1", 5000);
  dup_receipt.set_receipt_reference("same-key");
  EXPECT_EQ(ledger().Earn(caller_, dup_receipt).status().code(), absl::StatusCode::kAlreadyExists);
  // A key used for another method.
  v1::AuthorizeRequest auth;
  auth.set_idempotency_key("same-key");
  auth.set_member_id("m1");
  auth.set_partner_id("food");
  auth.set_points(1);
  absl::Status method = ledger().Authorize(caller_, auth).status();
  EXPECT_EQ(method.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(absl::StrContains(method.message(), "method")) << method;
}

TEST_F(LedgerTest, BusinessRefusalIsReplayedUnderItsKey) {
  v1::AuthorizeRequest req;
  req.set_idempotency_key("too-early");
  req.set_member_id("m1");
  req.set_partner_id("food");
  req.set_points(30);
  EXPECT_EQ(ledger().Authorize(caller_, req).status().code(), absl::StatusCode::kFailedPrecondition);
  Earn("m1", 10000);  // now there would be enough
  absl::Status replay = ledger().Authorize(caller_, req).status();
  EXPECT_EQ(replay.code(), absl::StatusCode::kFailedPrecondition) << replay;
  EXPECT_TRUE(absl::StrContains(replay.message(), "not enough points")) << replay;
  EXPECT_EQ(Available("m1"), 100);
}

// ---- Queries and the journal -------------------------------------------------

TEST_F(LedgerTest, StatementPagingLotsAndQualifyingPoints) {
  for (int i = 0; i < 5; ++i) Earn("m1", 1000 * (i + 1));
  auto hold = Authorize("m1", 3);
  ASSERT_TRUE(Capture(hold->hold().hold_id(), 0).ok());
  v1::ListTransfersRequest list;
  list.set_member_id("m1");
  list.set_page_size(4);
  auto page1 = ledger().ListTransfers(caller_, list);
  ASSERT_TRUE(page1.ok()) << page1.status();
  ASSERT_EQ(page1->transfers_size(), 4);
  EXPECT_GT(page1->transfers(0).sequence(), page1->transfers(1).sequence());  // newest first
  list.set_page_token(page1->next_page_token());
  auto page2 = ledger().ListTransfers(caller_, list);
  ASSERT_TRUE(page2.ok());
  EXPECT_EQ(page2->transfers_size(), 3);  // 5 earns + hold + redeem = 7
  EXPECT_TRUE(page2->next_page_token().empty());
  list.clear_page_token();
  list.add_codes(v1::TRANSFER_CODE_REDEEM);
  EXPECT_EQ(ledger().ListTransfers(caller_, list)->transfers_size(), 1);
  list.set_page_token("garbage");
  EXPECT_EQ(ledger().ListTransfers(caller_, list).status().code(), absl::StatusCode::kInvalidArgument);

  // An account's history: every transfer that debits or credits it.
  v1::ListTransfersRequest by_account;
  by_account.set_account("issuance:vet");
  EXPECT_EQ(ledger().ListTransfers(caller_, by_account)->transfers_size(), 5);
  by_account.set_account("redemption:food");
  EXPECT_EQ(ledger().ListTransfers(caller_, by_account)->transfers_size(), 2);  // hold + redeem
  by_account.set_account("member:m1");
  EXPECT_EQ(ledger().ListTransfers(caller_, by_account)->transfers_size(), 7);
  by_account.set_account("nonsense");
  EXPECT_EQ(ledger().ListTransfers(caller_, by_account).status().code(), absl::StatusCode::kInvalidArgument);

  // Text with quotes, backslashes, control characters and non-ASCII survives
  // the write path byte for byte.
  const std::string odd = "rcpt \"7\"\\x\t\n\x01 caf\xc3\xa9 \xe2\x9c\x93";
  v1::EarnRequest tricky = EarnOf("tricky", "vet", "m1", 1000);
  tricky.set_receipt_reference(odd);
  (*tricky.mutable_metadata())["note"] = odd;
  auto stored = ledger().Earn(caller_, tricky);
  ASSERT_TRUE(stored.ok()) << stored.status();
  v1::GetTransferRequest get;
  get.set_transfer_id(stored->transfer().transfer_id());
  auto fetched = ledger().GetTransfer(caller_, get);
  ASSERT_TRUE(fetched.ok());
  EXPECT_EQ(fetched->transfer().reference(), odd);
  EXPECT_EQ(fetched->transfer().metadata().at("note"), odd);
  v1::ListTransfersRequest by_reference;
  by_reference.set_member_id("m1");
  by_reference.set_reference(odd);
  EXPECT_EQ(ledger().ListTransfers(caller_, by_reference)->transfers_size(), 1);

  v1::ListLotsRequest lots;
  lots.set_member_id("m1");
  auto open = ledger().ListLots(lots);
  ASSERT_TRUE(open.ok());
  EXPECT_EQ(open->lots_size(), 6);  // 6 earns; the first lot still has 7 left
  EXPECT_EQ(open->lots(0).remaining_points(), 7);

  v1::GetQualifyingPointsRequest q;
  q.add_member_ids("m1");
  q.add_member_ids("nobody");
  *q.mutable_start_time() = TimeUtil::GetCurrentTime();
  q.mutable_start_time()->set_seconds(q.start_time().seconds() - 3600);
  *q.mutable_end_time() = TimeUtil::GetCurrentTime();
  q.mutable_end_time()->set_seconds(q.end_time().seconds() + 3600);
  auto qp = ledger().GetQualifyingPoints(q);
  ASSERT_TRUE(qp.ok()) << qp.status();
  EXPECT_EQ(qp->members(0).qualifying_points(), 160);  // redemptions do not reduce it
  EXPECT_EQ(qp->members(1).qualifying_points(), 0);
}

TEST_F(LedgerTest, JournalIsGapFreeAndTamperingIsDetected) {
  for (int i = 0; i < 4; ++i) Earn(absl::StrCat("m", i), 1000);
  v1::ReadJournalRequest read;
  read.set_after_sequence(1);
  read.set_page_size(2);
  auto page = ledger().ReadJournal(read);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->transfers_size(), 2);
  EXPECT_EQ(page->transfers(0).sequence(), 2);
  EXPECT_EQ(page->transfers(0).prev_hash(), page->transfers(0).prev_hash());
  EXPECT_EQ(page->head_sequence(), 4);
  EXPECT_EQ(page->last_sequence(), 3);

  auto ok = ledger().VerifyChain(v1::VerifyChainRequest());
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->verified_count(), 4);
  EXPECT_EQ(ok->first_bad_sequence(), 0);

  // Someone with database access moves a point.
  ASSERT_TRUE(loyalty::testing::ExecForTest(t_->db->pool(),
                                            "UPDATE transfers SET points = points + 1 WHERE sequence = 3")
                  .ok());
  auto bad = ledger().VerifyChain(v1::VerifyChainRequest());
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->first_bad_sequence(), 3) << bad->detail();
  ASSERT_TRUE(loyalty::testing::ExecForTest(t_->db->pool(),
                                            "UPDATE transfers SET points = points - 1 WHERE sequence = 3")
                  .ok());
  // Or rewrites a body and its hash, which breaks the link to the next.
  ASSERT_TRUE(loyalty::testing::ExecForTest(
                  t_->db->pool(),
                  "UPDATE transfers SET hash = REPEAT('a', 64) WHERE sequence = 2").ok());
  auto relinked = ledger().VerifyChain(v1::VerifyChainRequest());
  ASSERT_TRUE(relinked.ok());
  EXPECT_EQ(relinked->first_bad_sequence(), 2);
  ASSERT_TRUE(loyalty::testing::ExecForTest(
                  t_->db->pool(),
                  "UPDATE transfers t JOIN transfers n ON n.sequence = 3 SET t.hash = n.prev_hash "
                  "WHERE t.sequence = 2").ok());
  // Or moves a transfer in time (e.g. into a qualifying window).
  ASSERT_TRUE(loyalty::testing::ExecForTest(
                  t_->db->pool(),
                  "UPDATE transfers SET created_at = created_at - INTERVAL 1 DAY WHERE sequence = 4").ok());
  auto moved = ledger().VerifyChain(v1::VerifyChainRequest());
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(moved->first_bad_sequence(), 4) << moved->detail();
  ASSERT_TRUE(loyalty::testing::ExecForTest(
                  t_->db->pool(),
                  "UPDATE transfers SET created_at = created_at + INTERVAL 1 DAY WHERE sequence = 4").ok());
  v1::VerifyChainRequest beyond;
  beyond.set_to_sequence(99);
  EXPECT_EQ(ledger().VerifyChain(beyond).status().code(), absl::StatusCode::kOutOfRange);
}

TEST_F(LedgerTest, IdsAndReceiptsCompareByteForByte) {
  // Not case-insensitive, not PAD SPACE: these are four different keys.
  Earn("Bob", 1000);
  Earn("bob", 2000);
  EXPECT_EQ(Available("Bob"), 10);
  EXPECT_EQ(Available("bob"), 20);
  v1::EarnRequest r1 = EarnOf("rc-1", "vet", "m1", 1000);
  r1.set_receipt_reference("R1");
  v1::EarnRequest r1_space = EarnOf("rc-2", "vet", "m1", 1000);
  r1_space.set_receipt_reference("R1 ");
  EXPECT_TRUE(ledger().Earn(caller_, r1).ok());
  auto second = ledger().Earn(caller_, r1_space);
  EXPECT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(Available("m1"), 20);
}

TEST_F(LedgerTest, AFullyReturnedPurchaseStopsQualifyingEvenWhenNothingIsClawedBack) {
  auto earn = ledger().Earn(caller_, EarnOf("buy", "vet", "m1", 4000));  // 40
  ASSERT_TRUE(earn.ok());
  auto hold = Authorize("m1", 40);
  ASSERT_TRUE(Capture(hold->hold().hold_id(), 0).ok());  // all spent
  v1::ReverseRequest r;
  r.set_idempotency_key("return");
  r.set_transfer_id(earn->transfer().transfer_id());
  auto rev = ledger().Reverse(caller_, r);
  ASSERT_TRUE(rev.ok()) << rev.status();
  EXPECT_EQ(rev->shortfall_points(), 40);
  EXPECT_EQ(rev->remaining_reversible_points(), 0);
  v1::GetQualifyingPointsRequest q;
  q.add_member_ids("m1");
  *q.mutable_start_time() = TimeUtil::SecondsToTimestamp(TimeUtil::GetCurrentTime().seconds() - 60);
  *q.mutable_end_time() = TimeUtil::SecondsToTimestamp(TimeUtil::GetCurrentTime().seconds() + 60);
  EXPECT_EQ(ledger().GetQualifyingPoints(q)->members(0).qualifying_points(), 0);
}

TEST_F(LedgerTest, OverlongReferencesAreRefusedNotInternal) {
  Earn("m1", 1000);
  auto hold = Authorize("m1", 5);
  ASSERT_TRUE(hold.ok());
  v1::CaptureRequest c;
  c.set_idempotency_key("cap-long");
  c.set_hold_id(hold->hold().hold_id());
  c.set_reference(std::string(200, 'r'));
  absl::Status s = ledger().Capture(caller_, c).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StartsWith(s.message(), "reference")) << s;
}

// ---- Concurrency ---------------------------------------------------------------

TEST_F(LedgerTest, FiftyParallelRedemptionsAgainstTenSucceedExactlyTenTimes) {
  Earn("m1", 10000);  // 100 points = 10 redemptions of 10
  std::atomic<int> captured{0}, refused{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 50; ++i) {
    threads.emplace_back([&, i] {
      v1::AuthorizeRequest a;
      a.set_idempotency_key(absl::StrCat("par-a-", i));
      a.set_member_id("m1");
      a.set_partner_id("food");
      a.set_points(10);
      auto hold = ledger().Authorize(caller_, a);
      if (!hold.ok()) {
        EXPECT_EQ(hold.status().code(), absl::StatusCode::kFailedPrecondition) << hold.status();
        ++refused;
        return;
      }
      v1::CaptureRequest c;
      c.set_idempotency_key(absl::StrCat("par-c-", i));
      c.set_hold_id(hold->hold().hold_id());
      auto done = ledger().Capture(caller_, c);
      EXPECT_TRUE(done.ok()) << done.status();
      if (done.ok()) ++captured;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(captured.load(), 10);
  EXPECT_EQ(refused.load(), 40);
  EXPECT_EQ(Available("m1"), 0);
}

TEST_F(LedgerTest, RetryStormOfOneKeyPostsOnce) {
  const v1::EarnRequest req = EarnOf("storm", "vet", "m1", 7000);
  std::vector<std::string> transfer_ids(20);
  std::vector<std::thread> threads;
  for (int i = 0; i < 20; ++i) {
    threads.emplace_back([&, i] {
      auto r = ledger().Earn(caller_, req);
      EXPECT_TRUE(r.ok()) << r.status();
      if (r.ok()) transfer_ids[i] = r->transfer().transfer_id();
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& id : transfer_ids) EXPECT_EQ(id, transfer_ids[0]);
  EXPECT_EQ(Available("m1"), 70);
  EXPECT_EQ(*loyalty::testing::QueryIntForTest(t_->db->pool(), "SELECT COUNT(*) FROM transfers"), 1);
}

TEST(LedgerNaive, OneTransactionPerRequestGivesTheSameAnswers) {
  auto t = testing::MakeLedger(/*batching=*/false);
  ASSERT_NE(t, nullptr);
  Caller caller;
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      for (int j = 0; j < 10; ++j) {
        auto r = t->ledger->Earn(caller, EarnOf(absl::StrCat("n-", i, "-", j), "vet", "m1", 100));
        EXPECT_TRUE(r.ok()) << r.status();
      }
    });
  }
  for (auto& th : threads) th.join();
  v1::GetBalanceRequest b;
  b.set_member_id("m1");
  EXPECT_EQ(t->ledger->GetBalance(b)->balance().posted_points(), 80);
  EXPECT_EQ(testing::CheckInvariants(*t), "");
}

}  // namespace
}  // namespace loyalty::ledger
