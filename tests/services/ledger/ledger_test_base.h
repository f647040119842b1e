#pragma once
// The fixture of the ledger's tests against a real MariaDB (ledger_test.cc,
// earn_test.cc, holds_test.cc, reverse_test.cc, adjust_test.cc,
// expiry_test.cc): a fresh ledger per test (ledger_fixture.h), small helpers
// to earn, authorize and capture, and the invariants checked after each test.

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/services/ledger/ledger_fixture.h"

namespace loyalty::ledger {

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    t_ = testing::MakeLedger();
    ASSERT_NE(t_, nullptr);
  }
  void TearDown() override {
    if (t_ != nullptr) {
      EXPECT_EQ(testing::CheckInvariants(*t_), "");
    }
  }

  Ledger& ledger() { return *t_->ledger; }

  int64_t Earn(const std::string& member, int64_t amount_minor, const std::string& partner = "vet") {
    auto r = ledger().Earn(caller_, testing::EarnOf(NextKey(), partner, member, amount_minor));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->points() : -1;
  }

  int64_t Available(const std::string& member) {
    v1::GetBalanceRequest req;
    req.set_member_id(member);
    auto r = ledger().GetBalance(req);
    return r.ok() ? r->balance().available_points() : -1;
  }

  absl::StatusOr<v1::AuthorizeResponse> Authorize(const std::string& member, int64_t points,
                                                  const std::string& partner = "food",
                                                  int64_t ttl_seconds = 60) {
    v1::AuthorizeRequest req;
    req.set_idempotency_key(NextKey());
    req.set_member_id(member);
    req.set_partner_id(partner);
    req.set_points(points);
    req.set_ttl_seconds(ttl_seconds);
    return ledger().Authorize(caller_, req);
  }

  absl::StatusOr<v1::CaptureResponse> Capture(const std::string& hold_id, int64_t points) {
    v1::CaptureRequest req;
    req.set_idempotency_key(NextKey());
    req.set_hold_id(hold_id);
    req.set_points(points);
    return ledger().Capture(caller_, req);
  }

  std::string NextKey() { return absl::StrCat("k-", ++key_counter_); }

  std::unique_ptr<testing::LedgerUnderTest> t_;
  Caller caller_;
  int key_counter_ = 0;
};

}  // namespace loyalty::ledger
