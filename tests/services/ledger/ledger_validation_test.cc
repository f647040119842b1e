// Every documented input constraint of ledger.proto, one row each: the row
// sends one request that breaks exactly that constraint, and expects
// INVALID_ARGUMENT whose message starts with the field path, and every table
// of the schema unchanged (no transfer, lot, hold, account, receipt or
// idempotency record). Against a real MariaDB (ledger_fixture.h).
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/testing/test_db.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "tests/common/validation_rows.h"
#include "tests/services/ledger/ledger_fixture.h"

namespace loyalty::ledger {
namespace {

namespace validation = ::loyalty::testing::validation;
using validation::Accented;
using validation::Make;
using validation::Row;

using google::protobuf::util::TimeUtil;
using testing::EarnOf;

class LedgerValidationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    t_ = testing::MakeLedger();
    ASSERT_NE(t_, nullptr);
    // State for the rows that need it: 100 points for m1, an open hold.
    auto earned = ledger().Earn(caller_, EarnOf("setup-earn", "vet", "m1", 10000));
    ASSERT_TRUE(earned.ok()) << earned.status();
    earn_transfer_id_ = earned->transfer().transfer_id();
    v1::AuthorizeRequest hold = AuthorizeBase();
    hold.set_idempotency_key("setup-hold");
    auto held = ledger().Authorize(caller_, hold);
    ASSERT_TRUE(held.ok()) << held.status();
    hold_id_ = held->hold().hold_id();
  }
  void TearDown() override {
    if (t_ != nullptr) {
      EXPECT_EQ(testing::CheckInvariants(*t_), "");
    }
  }

  Ledger& ledger() { return *t_->ledger; }

  std::string Tables() {
    auto tables = loyalty::testing::TableChecksumsForTest(t_->db->pool());
    EXPECT_TRUE(tables.ok()) << tables.status();
    return tables.ok() ? *tables : "";
  }

  void RunRows(const std::vector<Row>& rows) {
    validation::ExpectEachRefusedWritingNothing(rows, [this] { return Tables(); }, "transfers ");
  }

  v1::EarnRequest EarnBase() { return EarnOf("earn-bad", "vet", "m2", 1000); }
  v1::QuoteEarnRequest QuoteBase() {
    const v1::EarnRequest e = EarnBase();
    v1::QuoteEarnRequest q;
    q.set_partner_id(e.partner_id());
    q.set_member_id(e.member_id());
    *q.mutable_amount() = e.amount();
    *q.mutable_lines() = e.lines();
    return q;
  }
  v1::AuthorizeRequest AuthorizeBase() {
    v1::AuthorizeRequest r;
    r.set_idempotency_key("authorize-bad");
    r.set_member_id("m1");
    r.set_partner_id("food");
    r.set_points(10);
    r.set_ttl_seconds(60);
    return r;
  }
  v1::CaptureRequest CaptureBase() {
    v1::CaptureRequest r;
    r.set_idempotency_key("capture-bad");
    r.set_hold_id(hold_id_);
    return r;
  }
  v1::VoidRequest VoidBase() {
    v1::VoidRequest r;
    r.set_idempotency_key("void-bad");
    r.set_hold_id(hold_id_);
    return r;
  }
  v1::ReverseRequest ReverseBase() {
    v1::ReverseRequest r;
    r.set_idempotency_key("reverse-bad");
    r.set_transfer_id(earn_transfer_id_);
    return r;
  }
  v1::AdjustRequest AdjustBase() {
    v1::AdjustRequest r;
    r.set_idempotency_key("adjust-bad");
    r.set_member_id("m1");
    r.set_direction(v1::ADJUST_DIRECTION_CREDIT);
    r.set_points(5);
    r.set_reason("goodwill");
    return r;
  }
  v1::GrantBonusRequest BonusBase() {
    v1::GrantBonusRequest r;
    r.set_idempotency_key("bonus-bad");
    r.set_member_id("m1");
    r.set_points(5);
    r.set_bonus_kind(v1::BONUS_KIND_GOODWILL);
    r.set_reason("goodwill");
    return r;
  }

  std::unique_ptr<testing::LedgerUnderTest> t_;
  Caller caller_;
  std::string earn_transfer_id_;
  std::string hold_id_;
};

TEST_F(LedgerValidationTest, MutationsRefuseEachDocumentedViolationAndWriteNothing) {
  auto earn = [this](const v1::EarnRequest& r) { return ledger().Earn(caller_, r).status(); };
  auto authorize = [this](const v1::AuthorizeRequest& r) { return ledger().Authorize(caller_, r).status(); };
  auto capture = [this](const v1::CaptureRequest& r) { return ledger().Capture(caller_, r).status(); };
  auto void_hold = [this](const v1::VoidRequest& r) { return ledger().Void(caller_, r).status(); };
  auto reverse = [this](const v1::ReverseRequest& r) { return ledger().Reverse(caller_, r).status(); };
  auto adjust = [this](const v1::AdjustRequest& r) { return ledger().Adjust(caller_, r).status(); };
  auto bonus = [this](const v1::GrantBonusRequest& r) { return ledger().GrantBonus(caller_, r).status(); };
  auto expiry = [this](const v1::RunExpiryRequest& r) { return ledger().RunExpiry(caller_, r).status(); };
  auto hold_expiry = [this](const v1::RunHoldExpiryRequest& r) {
    return ledger().RunHoldExpiry(caller_, r).status();
  };
  using Earn = v1::EarnRequest;
  using Auth = v1::AuthorizeRequest;
  using Cap = v1::CaptureRequest;
  using Rev = v1::ReverseRequest;
  using Adj = v1::AdjustRequest;
  using Bon = v1::GrantBonusRequest;
  v1::RunExpiryRequest expiry_base;
  expiry_base.set_idempotency_key("expiry-bad");
  v1::RunHoldExpiryRequest hold_expiry_base;
  hold_expiry_base.set_idempotency_key("hold-expiry-bad");

  const std::vector<Row> rows = {
      // EarnRequest and the common rules (idempotency key, ids, Money).
      Make<Earn>("earn: empty key", "idempotency_key", EarnBase(), [](Earn& r) { r.set_idempotency_key(""); }, earn),
      Make<Earn>("earn: key of 129", "idempotency_key", EarnBase(),
                 [](Earn& r) { r.set_idempotency_key(std::string(129, 'k')); }, earn),
      Make<Earn>("earn: key with a space", "idempotency_key", EarnBase(),
                 [](Earn& r) { r.set_idempotency_key("two words"); }, earn),
      Make<Earn>("earn: empty partner", "partner_id", EarnBase(), [](Earn& r) { r.set_partner_id(""); }, earn),
      Make<Earn>("earn: partner id with ':'", "partner_id", EarnBase(), [](Earn& r) { r.set_partner_id("a:b"); },
                 earn),
      Make<Earn>("earn: partner id of 65", "partner_id", EarnBase(),
                 [](Earn& r) { r.set_partner_id(std::string(65, 'p')); }, earn),
      Make<Earn>("earn: empty member", "member_id", EarnBase(), [](Earn& r) { r.set_member_id(""); }, earn),
      Make<Earn>("earn: member id of 65", "member_id", EarnBase(),
                 [](Earn& r) { r.set_member_id(std::string(65, 'm')); }, earn),
      Make<Earn>("earn: no amount", "amount", EarnBase(),
                 [](Earn& r) {
                   r.clear_amount();
                   r.clear_lines();
                 },
                 earn),
      Make<Earn>("earn: amount 0", "amount.amount_minor", EarnBase(),
                 [](Earn& r) {
                   r.mutable_amount()->set_amount_minor(0);
                   r.clear_lines();
                 },
                 earn),
      Make<Earn>("earn: unknown currency", "amount.currency", EarnBase(),
                 [](Earn& r) {
                   r.mutable_amount()->set_currency("XYZ");
                   r.clear_lines();
                 },
                 earn),
      Make<Earn>("earn: not the contract's currency", "amount.currency", EarnBase(),
                 [](Earn& r) {
                   r.mutable_amount()->set_currency("USD");
                   r.clear_lines();
                 },
                 earn),
      Make<Earn>("earn: 201 lines", "lines", EarnBase(),
                 [](Earn& r) {
                   r.clear_lines();
                   for (int i = 0; i < 201; ++i) {
                     auto* line = r.add_lines();
                     line->set_category("food");
                     line->set_quantity(1);
                     line->mutable_amount()->set_currency("EUR");
                     line->mutable_amount()->set_amount_minor(i == 0 ? 1000 : 0);
                   }
                 },
                 earn),
      Make<Earn>("earn: lines not summing to amount", "lines", EarnBase(),
                 [](Earn& r) { r.mutable_lines(0)->mutable_amount()->set_amount_minor(999); }, earn),
      Make<Earn>("earn: sku of 65", "lines[0].sku", EarnBase(),
                 [](Earn& r) { r.mutable_lines(0)->set_sku(std::string(65, 's')); }, earn),
      Make<Earn>("earn: category not a slug", "lines[0].category", EarnBase(),
                 [](Earn& r) { r.mutable_lines(0)->set_category("Pet Food!"); }, earn),
      Make<Earn>("earn: upper-case category", "lines[0].category", EarnBase(),
                 [](Earn& r) { r.mutable_lines(0)->set_category("Food"); }, earn),
      Make<Earn>("earn: empty category", "lines[0].category", EarnBase(),
                 [](Earn& r) { r.mutable_lines(0)->set_category(""); }, earn),
      Make<Earn>("earn: category of 65", "lines[0].category", EarnBase(),
                 [](Earn& r) { r.mutable_lines(0)->set_category(std::string(65, 'c')); }, earn),
      Make<Earn>("earn: quantity 0", "lines[0].quantity", EarnBase(),
                 [](Earn& r) { r.mutable_lines(0)->set_quantity(0); }, earn),
      Make<Earn>("earn: quantity -1 on the second line", "lines[1].quantity", EarnBase(),
                 [](Earn& r) {
                   auto* line = r.add_lines();
                   *line = r.lines(0);
                   line->set_quantity(-1);
                   line->mutable_amount()->set_amount_minor(0);
                 },
                 earn),
      Make<Earn>("earn: negative line amount", "lines[0].amount.amount_minor", EarnBase(),
                 [](Earn& r) { r.mutable_lines(0)->mutable_amount()->set_amount_minor(-1); }, earn),
      Make<Earn>("earn: line in another currency", "lines[0].amount.currency", EarnBase(),
                 [](Earn& r) { r.mutable_lines(0)->mutable_amount()->set_currency("USD"); }, earn),
      Make<Earn>("earn: description of 201", "lines[0].description", EarnBase(),
                 [](Earn& r) { r.mutable_lines(0)->set_description(std::string(201, 'd')); }, earn),
      Make<Earn>("earn: description of 201 two-byte characters", "lines[0].description", EarnBase(),
                 [](Earn& r) { r.mutable_lines(0)->set_description(Accented(201)); }, earn),
      Make<Earn>("earn: no receipt", "receipt_reference", EarnBase(), [](Earn& r) { r.set_receipt_reference(""); },
                 earn),
      Make<Earn>("earn: receipt of 65", "receipt_reference", EarnBase(),
                 [](Earn& r) { r.set_receipt_reference(std::string(65, 'r')); }, earn),
      Make<Earn>("earn: occurred_at in the future", "occurred_at", EarnBase(),
                 [](Earn& r) { *r.mutable_occurred_at() = TimeUtil::GetCurrentTime() + TimeUtil::MinutesToDuration(10); },
                 earn),
      Make<Earn>("earn: occurred_at 8 days ago", "occurred_at", EarnBase(),
                 [](Earn& r) { *r.mutable_occurred_at() = TimeUtil::GetCurrentTime() - TimeUtil::HoursToDuration(8 * 24); },
                 earn),
      Make<Earn>("earn: 17 metadata entries", "metadata", EarnBase(),
                 [](Earn& r) {
                   for (int i = 0; i < 17; ++i) (*r.mutable_metadata())[absl::StrCat("k", i)] = "v";
                 },
                 earn),
      Make<Earn>("earn: metadata key BadKey", "metadata: key 'BadKey' must match [a-z0-9_.-]{1,64}", EarnBase(),
                 [](Earn& r) { (*r.mutable_metadata())["BadKey"] = "v"; }, earn),
      Make<Earn>("earn: metadata key with a space", "metadata", EarnBase(),
                 [](Earn& r) { (*r.mutable_metadata())["till no"] = "v"; }, earn),
      Make<Earn>("earn: empty metadata key", "metadata", EarnBase(), [](Earn& r) { (*r.mutable_metadata())[""] = "v"; },
                 earn),
      Make<Earn>("earn: metadata key of 65", "metadata", EarnBase(),
                 [](Earn& r) { (*r.mutable_metadata())[std::string(65, 'k')] = "v"; }, earn),
      Make<Earn>("earn: metadata value of 257", "metadata[till]", EarnBase(),
                 [](Earn& r) { (*r.mutable_metadata())["till"] = Accented(257); }, earn),

      // AuthorizeRequest.
      Make<Auth>("authorize: empty key", "idempotency_key", AuthorizeBase(),
                 [](Auth& r) { r.set_idempotency_key(""); }, authorize),
      Make<Auth>("authorize: empty member", "member_id", AuthorizeBase(), [](Auth& r) { r.set_member_id(""); },
                 authorize),
      Make<Auth>("authorize: empty partner", "partner_id", AuthorizeBase(), [](Auth& r) { r.set_partner_id(""); },
                 authorize),
      Make<Auth>("authorize: points 0", "points", AuthorizeBase(), [](Auth& r) { r.set_points(0); }, authorize),
      Make<Auth>("authorize: negative ttl", "ttl_seconds", AuthorizeBase(), [](Auth& r) { r.set_ttl_seconds(-1); },
                 authorize),
      Make<Auth>("authorize: reference of 65", "reference", AuthorizeBase(),
                 [](Auth& r) { r.set_reference(Accented(65)); }, authorize),
      Make<Auth>("authorize: metadata key BadKey", "metadata", AuthorizeBase(),
                 [](Auth& r) { (*r.mutable_metadata())["BadKey"] = "v"; }, authorize),

      // CaptureRequest.
      Make<Cap>("capture: empty key", "idempotency_key", CaptureBase(), [](Cap& r) { r.set_idempotency_key(""); },
                capture),
      Make<Cap>("capture: empty hold", "hold_id", CaptureBase(), [](Cap& r) { r.set_hold_id(""); }, capture),
      Make<Cap>("capture: negative points", "points", CaptureBase(), [](Cap& r) { r.set_points(-1); }, capture),
      Make<Cap>("capture: more than the hold", "points", CaptureBase(), [](Cap& r) { r.set_points(11); }, capture),
      Make<Cap>("capture: reference of 65", "reference", CaptureBase(),
                [](Cap& r) { r.set_reference(std::string(65, 'r')); }, capture),

      // VoidRequest.
      Make<v1::VoidRequest>("void: empty hold", "hold_id", VoidBase(), [](v1::VoidRequest& r) { r.set_hold_id(""); },
                            void_hold),
      Make<v1::VoidRequest>("void: reason of 501", "reason", VoidBase(),
                            [](v1::VoidRequest& r) { r.set_reason(Accented(501)); }, void_hold),

      // ReverseRequest.
      Make<Rev>("reverse: empty transfer", "transfer_id", ReverseBase(), [](Rev& r) { r.set_transfer_id(""); },
                reverse),
      Make<Rev>("reverse: points 0", "points", ReverseBase(), [](Rev& r) { r.set_points(0); }, reverse),
      Make<Rev>("reverse: refund 0", "refund_amount.amount_minor", ReverseBase(),
                [](Rev& r) {
                  r.mutable_refund_amount()->set_amount_minor(0);
                  r.mutable_refund_amount()->set_currency("EUR");
                },
                reverse),
      Make<Rev>("reverse: refund in another currency", "refund_amount.currency", ReverseBase(),
                [](Rev& r) {
                  r.mutable_refund_amount()->set_amount_minor(100);
                  r.mutable_refund_amount()->set_currency("USD");
                },
                reverse),
      Make<Rev>("reverse: reference of 65", "reference", ReverseBase(),
                [](Rev& r) { r.set_reference(std::string(65, 'r')); }, reverse),
      Make<Rev>("reverse: reason of 501", "reason", ReverseBase(), [](Rev& r) { r.set_reason(std::string(501, 'x')); },
                reverse),

      // AdjustRequest.
      Make<Adj>("adjust: empty member", "member_id", AdjustBase(), [](Adj& r) { r.set_member_id(""); }, adjust),
      Make<Adj>("adjust: no direction", "direction", AdjustBase(),
                [](Adj& r) { r.set_direction(v1::ADJUST_DIRECTION_UNSPECIFIED); }, adjust),
      Make<Adj>("adjust: unknown direction", "direction", AdjustBase(),
                [](Adj& r) { r.set_direction(static_cast<v1::AdjustDirection>(7)); }, adjust),
      Make<Adj>("adjust: points 0", "points", AdjustBase(), [](Adj& r) { r.set_points(0); }, adjust),
      Make<Adj>("adjust: empty reason", "reason", AdjustBase(), [](Adj& r) { r.set_reason(""); }, adjust),
      Make<Adj>("adjust: blank reason", "reason", AdjustBase(), [](Adj& r) { r.set_reason("   "); }, adjust),
      Make<Adj>("adjust: reason of 501", "reason", AdjustBase(), [](Adj& r) { r.set_reason(Accented(501)); }, adjust),
      Make<Adj>("adjust: funding partner with ':'", "funding_partner_id", AdjustBase(),
                [](Adj& r) { r.set_funding_partner_id("a:b"); }, adjust),
      Make<Adj>("adjust: reference of 65", "reference", AdjustBase(),
                [](Adj& r) { r.set_reference(std::string(65, 'r')); }, adjust),

      // GrantBonusRequest.
      Make<Bon>("bonus: empty member", "member_id", BonusBase(), [](Bon& r) { r.set_member_id(""); }, bonus),
      Make<Bon>("bonus: points 0", "points", BonusBase(), [](Bon& r) { r.set_points(0); }, bonus),
      Make<Bon>("bonus: no kind", "bonus_kind", BonusBase(),
                [](Bon& r) { r.set_bonus_kind(v1::BONUS_KIND_UNSPECIFIED); }, bonus),
      Make<Bon>("bonus: unknown kind", "bonus_kind", BonusBase(),
                [](Bon& r) { r.set_bonus_kind(static_cast<v1::BonusKind>(99)); }, bonus),
      Make<Bon>("bonus: empty reason", "reason", BonusBase(), [](Bon& r) { r.set_reason(""); }, bonus),
      Make<Bon>("bonus: reason of 501", "reason", BonusBase(), [](Bon& r) { r.set_reason(std::string(501, 'x')); },
                bonus),
      Make<Bon>("bonus: funding partner of 65", "funding_partner_id", BonusBase(),
                [](Bon& r) { r.set_funding_partner_id(std::string(65, 'p')); }, bonus),
      Make<Bon>("bonus: reference of 65", "reference", BonusBase(),
                [](Bon& r) { r.set_reference(std::string(65, 'r')); }, bonus),

      // RunExpiryRequest, RunHoldExpiryRequest.
      Make<v1::RunExpiryRequest>("expiry: empty key", "idempotency_key", expiry_base,
                                 [](v1::RunExpiryRequest& r) { r.set_idempotency_key(""); }, expiry),
      Make<v1::RunExpiryRequest>("expiry: max_lots -1", "max_lots", expiry_base,
                                 [](v1::RunExpiryRequest& r) { r.set_max_lots(-1); }, expiry),
      Make<v1::RunExpiryRequest>("expiry: max_lots 10001", "max_lots", expiry_base,
                                 [](v1::RunExpiryRequest& r) { r.set_max_lots(10001); }, expiry),
      Make<v1::RunExpiryRequest>("expiry: as_of in the future", "as_of", expiry_base,
                                 [](v1::RunExpiryRequest& r) {
                                   *r.mutable_as_of() = TimeUtil::GetCurrentTime() + TimeUtil::HoursToDuration(1);
                                 },
                                 expiry),
      Make<v1::RunHoldExpiryRequest>("hold expiry: max_holds -1", "max_holds", hold_expiry_base,
                                     [](v1::RunHoldExpiryRequest& r) { r.set_max_holds(-1); }, hold_expiry),
      Make<v1::RunHoldExpiryRequest>("hold expiry: max_holds 10001", "max_holds", hold_expiry_base,
                                     [](v1::RunHoldExpiryRequest& r) { r.set_max_holds(10001); }, hold_expiry),
  };
  RunRows(rows);
}

TEST_F(LedgerValidationTest, ReadsRefuseEachDocumentedViolation) {
  using Quote = v1::QuoteEarnRequest;
  auto quote = [this](const Quote& r) { return ledger().QuoteEarn(caller_, r).status(); };
  auto qualifying = [this](const v1::GetQualifyingPointsRequest& r) {
    return ledger().GetQualifyingPoints(r).status();
  };
  v1::GetQualifyingPointsRequest window;
  window.add_member_ids("m1");
  *window.mutable_start_time() = TimeUtil::SecondsToTimestamp(0);
  *window.mutable_end_time() = TimeUtil::GetCurrentTime();
  using Qual = v1::GetQualifyingPointsRequest;

  const std::vector<Row> rows = {
      Make<Quote>("quote: empty partner", "partner_id", QuoteBase(), [](Quote& r) { r.set_partner_id(""); }, quote),
      Make<Quote>("quote: amount 0", "amount.amount_minor", QuoteBase(),
                  [](Quote& r) {
                    r.mutable_amount()->set_amount_minor(0);
                    r.clear_lines();
                  },
                  quote),
      Make<Quote>("quote: 201 lines", "lines", QuoteBase(),
                  [](Quote& r) {
                    for (int i = 0; i < 200; ++i) *r.add_lines() = r.lines(0);
                  },
                  quote),
      Make<Quote>("quote: category not a slug", "lines[0].category", QuoteBase(),
                  [](Quote& r) { r.mutable_lines(0)->set_category("Pet Food!"); }, quote),
      Make<Quote>("quote: quantity 0", "lines[0].quantity", QuoteBase(),
                  [](Quote& r) { r.mutable_lines(0)->set_quantity(0); }, quote),
      Make<Quote>("quote: description of 201", "lines[0].description", QuoteBase(),
                  [](Quote& r) { r.mutable_lines(0)->set_description(std::string(201, 'd')); }, quote),
      Make<Quote>("quote: occurred_at in the future", "occurred_at", QuoteBase(),
                  [](Quote& r) {
                    *r.mutable_occurred_at() = TimeUtil::GetCurrentTime() + TimeUtil::MinutesToDuration(10);
                  },
                  quote),
      Make<Qual>("qualifying: no members", "member_ids", window, [](Qual& r) { r.clear_member_ids(); }, qualifying),
      Make<Qual>("qualifying: 1001 members", "member_ids", window,
                 [](Qual& r) {
                   for (int i = 0; i < 1000; ++i) r.add_member_ids(absl::StrCat("x", i));
                 },
                 qualifying),
      Make<Qual>("qualifying: a member twice", "member_ids[1]", window, [](Qual& r) { r.add_member_ids("m1"); },
                 qualifying),
      Make<Qual>("qualifying: a bad member id", "member_ids[1]", window, [](Qual& r) { r.add_member_ids("a:b"); },
                 qualifying),
      Make<Qual>("qualifying: no window", "start_time", window, [](Qual& r) { r.clear_start_time(); }, qualifying),
      Make<Qual>("qualifying: inverted window", "end_time", window,
                 [](Qual& r) { *r.mutable_end_time() = TimeUtil::SecondsToTimestamp(0); }, qualifying),
      Row{"balance: empty member", "member_id", [this] { return ledger().GetBalance({}).status(); }},
      Row{"transfer: empty id", "transfer_id", [this] { return ledger().GetTransfer(caller_, {}).status(); }},
      Row{"hold: empty id", "hold_id", [this] { return ledger().GetHold(caller_, {}).status(); }},
      Row{"lots: empty member", "member_id", [this] { return ledger().ListLots({}).status(); }},
      Row{"lots: bad issuer", "issuer_partner_id",
          [this] {
            v1::ListLotsRequest r;
            r.set_member_id("m1");
            r.set_issuer_partner_id("a:b");
            return ledger().ListLots(r).status();
          }},
      Row{"transfers: bad member id", "member_id",
          [this] {
            v1::ListTransfersRequest r;
            r.set_member_id(std::string(65, 'm'));
            return ledger().ListTransfers(caller_, r).status();
          }},
      Row{"transfers: bad partner id", "partner_id",
          [this] {
            v1::ListTransfersRequest r;
            r.set_partner_id("a:b");
            return ledger().ListTransfers(caller_, r).status();
          }},
      Row{"transfers: no filter", "member_id, account or partner_id",
          [this] { return ledger().ListTransfers(caller_, {}).status(); }},
      Row{"account: malformed name", "account",
          [this] {
            v1::GetAccountRequest r;
            r.set_account("issuance");
            return ledger().GetAccount(caller_, r).status();
          }},
      Row{"account: bad id", "account",
          [this] {
            v1::GetAccountRequest r;
            r.set_account("issuance:bad id");
            return ledger().GetAccount(caller_, r).status();
          }},
      Row{"journal: after_sequence -1", "after_sequence",
          [this] {
            v1::ReadJournalRequest r;
            r.set_after_sequence(-1);
            return ledger().ReadJournal(r).status();
          }},
      Row{"journal: up_to before after", "up_to_sequence",
          [this] {
            v1::ReadJournalRequest r;
            r.set_after_sequence(2);
            r.set_up_to_sequence(1);
            return ledger().ReadJournal(r).status();
          }},
      Row{"chain: from_sequence -1", "from_sequence",
          [this] {
            v1::VerifyChainRequest r;
            r.set_from_sequence(-1);
            return ledger().VerifyChain(r).status();
          }},
  };
  RunRows(rows);
}

// The limits are inclusive, and lengths count characters, not bytes.
TEST_F(LedgerValidationTest, LimitsAreInclusiveAndCountCharacters) {
  v1::EarnRequest r = EarnBase();
  r.set_idempotency_key(std::string(128, 'k'));
  r.set_receipt_reference(Accented(64));
  auto* line = r.mutable_lines(0);
  line->set_sku(Accented(64));
  line->set_category(std::string(64, 'c'));
  line->set_description(Accented(200));
  for (int i = 0; i < 15; ++i) (*r.mutable_metadata())[absl::StrCat("k.", i)] = "v";
  (*r.mutable_metadata())[std::string(63, 'k') + "_"] = Accented(256);
  auto earned = ledger().Earn(caller_, r);
  ASSERT_TRUE(earned.ok()) << earned.status();
  EXPECT_EQ(earned->transfer().metadata().size(), 16u);

  v1::AdjustRequest adjust = AdjustBase();
  adjust.set_reason(Accented(500));
  adjust.set_reference(Accented(64));
  EXPECT_TRUE(ledger().Adjust(caller_, adjust).ok());
}

}  // namespace
}  // namespace loyalty::ledger
