// The ledger's gRPC adapter over an in-process channel, against a real
// MariaDB: codes and messages as a client sees them, authentication, roles
// and partner scoping, idempotency scoped by the caller's API key id, the
// queries, the journal stream, and INTERNAL errors that never show SQL.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/testing/test_db.h"
#include "common/testing/test_keys.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "loyalty/ledger/v1/ledger.grpc.pb.h"
#include "services/ledger/ledger_service.h"
#include "tests/services/ledger/ledger_fixture.h"

namespace loyalty::ledger {
namespace {

using google::protobuf::util::MessageDifferencer;
using testing::EarnOf;
using Stub = v1::LedgerService::Stub;

constexpr auto kDeadline = std::chrono::seconds(10);

class LedgerServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    t_ = testing::MakeLedger();
    ASSERT_NE(t_, nullptr);
    service_ = std::make_unique<LedgerService>(*t_->ledger, keys_.authenticator());
    grpc::ServerBuilder builder;
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = v1::LedgerService::NewStub(server_->InProcessChannel(grpc::ChannelArguments()));
  }

  void TearDown() override {
    stub_.reset();
    if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now() + kDeadline);
    if (t_ != nullptr) {
      EXPECT_EQ(testing::CheckInvariants(*t_), "");
    }
  }

  // One unary call with a deadline and the caller's API key: the backoffice
  // key unless `api_key` is given; none at all when it is "".
  template <typename Request, typename Response>
  grpc::Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                    const Request& request, Response* response,
                    const std::optional<std::string>& api_key = std::nullopt) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kDeadline);
    const std::string key = api_key.value_or(keys_.backoffice());
    if (!key.empty()) context.AddMetadata("authorization", "Bearer " + key);
    return (stub_.get()->*method)(&context, request, response);
  }

  // A successful earn; returns its response.
  v1::EarnResponse Earn(const std::string& key, const std::string& member, int64_t amount_minor,
                        const std::string& partner = "vet") {
    v1::EarnResponse response;
    grpc::Status s = Call(&Stub::Earn, EarnOf(key, partner, member, amount_minor), &response);
    EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
    return response;
  }

  // All transfers of a StreamJournal call, which must end OK.
  std::vector<v1::Transfer> Stream(const v1::StreamJournalRequest& request) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kDeadline);
    context.AddMetadata("authorization", "Bearer " + keys_.finance());
    std::unique_ptr<grpc::ClientReader<v1::StreamJournalResponse>> reader =
        stub_->StreamJournal(&context, request);
    std::vector<v1::Transfer> out;
    v1::StreamJournalResponse message;
    while (reader->Read(&message)) {
      for (const v1::Transfer& tr : message.transfers()) out.push_back(tr);
    }
    grpc::Status s = reader->Finish();
    EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
    return out;
  }

  int64_t Available(const std::string& member) {
    v1::GetBalanceRequest req;
    req.set_member_id(member);
    v1::GetBalanceResponse response;
    grpc::Status s = Call(&Stub::GetBalance, req, &response);
    return s.ok() ? response.balance().available_points() : -1;
  }

  // Declared in destruction order: stub, server, service, keys, ledger.
  std::unique_ptr<testing::LedgerUnderTest> t_;
  loyalty::testing::TestKeyring keys_{{"vet", "food", "groomer"}};
  std::unique_ptr<LedgerService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Stub> stub_;
};

TEST_F(LedgerServiceTest, EarnAnswersWithItsBreakdown) {
  // gold-1 earns 1.5x: EUR 12.34 at vet = 12 base + 6 tier bonus.
  v1::EarnResponse gold = Earn("e1", "gold-1", 1234);
  EXPECT_EQ(gold.points(), 18);
  EXPECT_EQ(gold.breakdown().contract_id(), "vet-c1");
  EXPECT_EQ(gold.breakdown().earn_rate_milli_points_per_unit(), 1000);
  EXPECT_EQ(gold.breakdown().base_points(), 12);
  EXPECT_EQ(gold.breakdown().tier_id(), "gold");
  EXPECT_EQ(gold.breakdown().tier_multiplier_bp(), 15000);
  EXPECT_EQ(gold.breakdown().tier_bonus_points(), 6);
  EXPECT_EQ(gold.breakdown().total_points(), 18);
  EXPECT_EQ(gold.breakdown().rounding_rule(), v1::ROUNDING_RULE_FLOOR_PER_COMPONENT);
  EXPECT_EQ(gold.transfer().code(), v1::TRANSFER_CODE_EARN);
  EXPECT_EQ(gold.transfer().sequence(), 1);
  EXPECT_EQ(gold.transfer().debit_account(), "issuance:vet");
  EXPECT_EQ(gold.transfer().credit_account(), "member:gold-1");
  EXPECT_EQ(gold.transfer().hash().size(), 64u);
  EXPECT_EQ(gold.lot().remaining_points(), 18);
  EXPECT_EQ(gold.balance().available_points(), 18);

  // The campaign: +100% on "dog" lines at food (2 points per EUR).
  v1::EarnResponse dog = Earn("e2", "m1", 1050, "food");
  EXPECT_EQ(dog.points(), 21);
  EXPECT_EQ(dog.breakdown().campaign_bonuses_size(), 0);
  v1::EarnResponse dog2;
  ASSERT_TRUE(Call(&Stub::Earn, EarnOf("e3", "food", "m1", 1050, "dog"), &dog2).ok());
  ASSERT_EQ(dog2.breakdown().campaign_bonuses_size(), 1);
  EXPECT_EQ(dog2.breakdown().campaign_bonuses(0).campaign_id(), "double-dog");
  EXPECT_EQ(dog2.breakdown().campaign_bonuses(0).bonus_points(), 21);
  EXPECT_EQ(dog2.points(), 42);
  EXPECT_EQ(dog2.balance().available_points(), 63);
}

TEST_F(LedgerServiceTest, ErrorsKeepTheirCodesAndNameTheField) {
  v1::EarnResponse out;
  auto invalid = [&](v1::EarnRequest req, const std::string& field) {
    grpc::Status s = Call(&Stub::Earn, req, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << field << ": " << s.error_message();
    EXPECT_TRUE(absl::StartsWith(s.error_message(), field)) << field << ": " << s.error_message();
  };
  v1::EarnRequest req = EarnOf("bad-1", "vet", "m1", 0);
  req.clear_lines();
  invalid(req, "amount.amount_minor");
  req = EarnOf("bad-2", "vet", "m1", 1000);
  req.mutable_amount()->set_currency("XYZ");
  req.clear_lines();
  invalid(req, "amount.currency");
  v1::EarnRequest keyless = EarnOf("", "vet", "m1", 1000);
  keyless.set_receipt_reference("r-keyless");
  invalid(keyless, "idempotency_key");
  v1::EarnRequest no_receipt = EarnOf("bad-4", "vet", "m1", 1000);
  no_receipt.clear_receipt_reference();
  invalid(no_receipt, "receipt_reference");
  invalid(EarnOf("bad-3", "vet", "not a member id", 1000), "member_id");

  grpc::Status unknown = Call(&Stub::Earn, EarnOf("nf-1", "no-such-shop", "m1", 1000), &out);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND) << unknown.error_message();
  EXPECT_TRUE(absl::StartsWith(unknown.error_message(), "partner_id")) << unknown.error_message();
  grpc::Status closed = Call(&Stub::Earn, EarnOf("fp-1", "closed-shop", "m1", 1000), &out);
  EXPECT_EQ(closed.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << closed.error_message();

  Earn("ok-1", "m1", 1000);  // 10 points
  v1::AuthorizeRequest auth;
  auth.set_idempotency_key("auth-1");
  auth.set_member_id("m1");
  auth.set_partner_id("food");
  auth.set_points(11);
  v1::AuthorizeResponse held;
  grpc::Status short_of_points = Call(&Stub::Authorize, auth, &held);
  EXPECT_EQ(short_of_points.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(absl::StrContains(short_of_points.error_message(), "not enough points"))
      << short_of_points.error_message();

  v1::EarnRequest reused = EarnOf("ok-1", "vet", "m1", 2000);
  grpc::Status conflict = Call(&Stub::Earn, reused, &out);
  EXPECT_EQ(conflict.error_code(), grpc::StatusCode::ALREADY_EXISTS) << conflict.error_message();
  EXPECT_TRUE(absl::StrContains(conflict.error_message(), "amount.amount_minor"))
      << conflict.error_message();

  v1::CaptureRequest capture;
  capture.set_idempotency_key("cap-1");
  capture.set_hold_id("hold_missing");
  v1::CaptureResponse captured;
  EXPECT_EQ(Call(&Stub::Capture, capture, &captured).error_code(), grpc::StatusCode::NOT_FOUND);
  v1::GetBalanceRequest nobody;
  nobody.set_member_id("nobody-at-all");
  v1::GetBalanceResponse balance;
  EXPECT_EQ(Call(&Stub::GetBalance, nobody, &balance).error_code(), grpc::StatusCode::NOT_FOUND);
  v1::VerifyChainRequest beyond;
  beyond.set_to_sequence(99);
  v1::VerifyChainResponse verified;
  EXPECT_EQ(Call(&Stub::VerifyChain, beyond, &verified).error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(Available("m1"), 10);
}

TEST_F(LedgerServiceTest, IdempotencyKeysAreScopedByTheApiKeyId) {
  // The same idempotency key from different callers. Each caller's till has
  // its own receipt (a receipt earns once per partner, whatever the key).
  v1::EarnRequest req = EarnOf("shared-key", "vet", "m1", 5000);
  req.set_receipt_reference("r-one");
  v1::EarnRequest req_two = req;
  req_two.set_receipt_reference("r-two");
  v1::EarnResponse one, two, one_again;
  grpc::Status s = Call(&Stub::Earn, req, &one, keys_.partner("vet"));
  ASSERT_TRUE(s.ok()) << s.error_message();
  s = Call(&Stub::Earn, req_two, &two, keys_.service());
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_NE(two.transfer().transfer_id(), one.transfer().transfer_id()) << "key two posts again";
  s = Call(&Stub::Earn, req, &one_again, keys_.partner("vet"));
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(one_again.transfer().transfer_id(), one.transfer().transfer_id());
  EXPECT_TRUE(MessageDifferencer::Equals(one_again, one));
  EXPECT_EQ(Available("m1"), 100);

  // Within one key id, a changed request under the key is refused.
  v1::EarnRequest changed = req;
  changed.set_member_id("m2");
  v1::EarnResponse refused;
  s = Call(&Stub::Earn, changed, &refused, keys_.partner("vet"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS) << s.error_message();
  EXPECT_TRUE(absl::StrContains(s.error_message(), "member_id")) << s.error_message();
  EXPECT_EQ(*loyalty::testing::QueryIntForTest(t_->db->pool(), "SELECT COUNT(*) FROM transfers"), 2);
}

TEST_F(LedgerServiceTest, CallsWithoutAValidKeyAreUnauthenticated) {
  v1::EarnRequest req = EarnOf("u-1", "vet", "m1", 5000);
  const std::string& good = keys_.partner("vet");
  const std::string key_id = good.substr(3, 16);
  const std::string secret = good.substr(20);
  const std::string other_secret = std::string(secret.rbegin(), secret.rend());
  struct Case {
    std::string what;
    std::string key;  // sent as "Bearer <key>"; "" sends nothing
    std::string message;
  };
  const std::vector<Case> cases = {
      {"no key", "", "authorization: missing"},
      {"malformed", "lk_not-a-key", "authorization: malformed"},
      {"unknown key id", "lk_00000000000000ff_" + secret, "unknown API key 00000000000000ff"},
      {"wrong secret", "lk_" + key_id + "_" + other_secret, "wrong secret for API key " + key_id},
  };
  for (const Case& c : cases) {
    v1::EarnResponse out;
    grpc::Status s = Call(&Stub::Earn, req, &out, c.key);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << c.what << ": " << s.error_message();
    EXPECT_TRUE(absl::StrContains(s.error_message(), c.message)) << c.what << ": " << s.error_message();
    EXPECT_FALSE(absl::StrContains(s.error_message(), secret)) << c.what;
    EXPECT_FALSE(absl::StrContains(s.error_message(), other_secret)) << c.what;
  }
  // Reads are guarded too, streams included.
  v1::GetBalanceRequest balance_req;
  balance_req.set_member_id("m1");
  v1::GetBalanceResponse balance;
  EXPECT_EQ(Call(&Stub::GetBalance, balance_req, &balance, "").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kDeadline);
  auto reader = stub_->StreamJournal(&context, v1::StreamJournalRequest());
  v1::StreamJournalResponse message;
  EXPECT_FALSE(reader->Read(&message));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);

  // A revoked key stops working (this keyring's authenticator has no cache).
  v1::EarnResponse out;
  ASSERT_TRUE(Call(&Stub::Earn, req, &out, good).ok());
  ASSERT_TRUE(keys_.store().Revoke(key_id).ok());
  grpc::Status revoked = Call(&Stub::Earn, req, &out, good);
  EXPECT_EQ(revoked.error_code(), grpc::StatusCode::UNAUTHENTICATED) << revoked.error_message();
  EXPECT_TRUE(absl::StrContains(revoked.error_message(), "has been revoked")) << revoked.error_message();
  EXPECT_EQ(*loyalty::testing::QueryIntForTest(t_->db->pool(), "SELECT COUNT(*) FROM transfers"), 1);
}

TEST_F(LedgerServiceTest, RolesOutsideTheMethodsAllowedRolesAreDenied) {
  Earn("e1", "m1", 5000);  // 50
  v1::AdjustRequest adjust;
  adjust.set_idempotency_key("adj-1");
  adjust.set_member_id("m1");
  adjust.set_direction(v1::ADJUST_DIRECTION_CREDIT);
  adjust.set_points(10);
  adjust.set_reason("goodwill");
  v1::AdjustResponse adjusted;
  // Adjust is backoffice only.
  for (const std::string& key : {keys_.partner("vet"), keys_.finance(), keys_.service()}) {
    grpc::Status s = Call(&Stub::Adjust, adjust, &adjusted, key);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
    EXPECT_TRUE(absl::StrContains(s.error_message(), "may not call loyalty.ledger.v1.LedgerService/Adjust"))
        << s.error_message();
  }
  grpc::Status partner = Call(&Stub::Adjust, adjust, &adjusted, keys_.partner("vet"));
  EXPECT_TRUE(absl::StrContains(partner.error_message(), "role ROLE_PARTNER")) << partner.error_message();
  EXPECT_TRUE(absl::StrContains(partner.error_message(), "allowed: ROLE_BACKOFFICE")) << partner.error_message();
  // The refusals did not use up the key: backoffice adjusts with it.
  ASSERT_TRUE(Call(&Stub::Adjust, adjust, &adjusted, keys_.backoffice()).ok());
  EXPECT_EQ(Available("m1"), 60);

  // Finance reads but does not earn; partners do not read lots or the journal.
  v1::EarnResponse earned;
  EXPECT_EQ(Call(&Stub::Earn, EarnOf("e2", "vet", "m1", 100), &earned, keys_.finance()).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::ListLotsRequest lots_req;
  lots_req.set_member_id("m1");
  v1::ListLotsResponse lots;
  EXPECT_TRUE(Call(&Stub::ListLots, lots_req, &lots, keys_.finance()).ok());
  EXPECT_EQ(Call(&Stub::ListLots, lots_req, &lots, keys_.partner("vet")).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::ReadJournalResponse page;
  EXPECT_EQ(Call(&Stub::ReadJournal, v1::ReadJournalRequest(), &page, keys_.partner("vet")).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(Call(&Stub::ReadJournal, v1::ReadJournalRequest(), &page, keys_.finance()).ok());
}

TEST_F(LedgerServiceTest, APartnerActsAndReadsOnlyAsItself) {
  const std::string& vet = keys_.partner("vet");
  const std::string& food = keys_.partner("food");
  v1::EarnResponse at_vet, at_food;
  ASSERT_TRUE(Call(&Stub::Earn, EarnOf("e1", "vet", "m1", 5000), &at_vet, vet).ok());     // 50
  ASSERT_TRUE(Call(&Stub::Earn, EarnOf("e2", "food", "m1", 1000), &at_food, food).ok());  // 20

  auto expect_denied = [](const grpc::Status& s, const std::string& what, const std::string& text) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << what << ": " << s.error_message();
    EXPECT_TRUE(absl::StrContains(s.error_message(), text)) << what << ": " << s.error_message();
    EXPECT_TRUE(absl::StrContains(s.error_message(), "acts for 'vet'") ||
                absl::StrContains(s.error_message(), "(vet)") ||
                absl::StrContains(s.error_message(), "'vet'"))
        << what << ": " << s.error_message();
  };

  // Acting as another partner.
  v1::EarnResponse earned;
  expect_denied(Call(&Stub::Earn, EarnOf("x1", "food", "m1", 1000), &earned, vet), "Earn", "partner_id");
  v1::QuoteEarnRequest quote;
  quote.set_partner_id("food");
  quote.set_member_id("m1");
  *quote.mutable_amount() = EarnOf("q", "food", "m1", 1000).amount();
  v1::QuoteEarnResponse quoted;
  expect_denied(Call(&Stub::QuoteEarn, quote, &quoted, vet), "QuoteEarn", "partner_id");
  quote.set_partner_id("vet");
  EXPECT_TRUE(Call(&Stub::QuoteEarn, quote, &quoted, vet).ok());
  v1::AuthorizeRequest auth;
  auth.set_idempotency_key("a1");
  auth.set_member_id("m1");
  auth.set_partner_id("food");
  auth.set_points(5);
  v1::AuthorizeResponse held;
  expect_denied(Call(&Stub::Authorize, auth, &held, vet), "Authorize", "partner_id");
  // The refusal did not use up the key: food authorizes with it.
  ASSERT_TRUE(Call(&Stub::Authorize, auth, &held, food).ok());

  // Another partner's hold and transfers.
  v1::GetHoldRequest get_hold;
  get_hold.set_hold_id(held.hold().hold_id());
  v1::GetHoldResponse got_hold;
  expect_denied(Call(&Stub::GetHold, get_hold, &got_hold, vet), "GetHold", "belongs to another partner");
  EXPECT_TRUE(Call(&Stub::GetHold, get_hold, &got_hold, food).ok());
  v1::CaptureRequest capture;
  capture.set_idempotency_key("c1");
  capture.set_hold_id(held.hold().hold_id());
  v1::CaptureResponse captured;
  expect_denied(Call(&Stub::Capture, capture, &captured, vet), "Capture", "belongs to another partner");
  v1::VoidRequest void_req;
  void_req.set_idempotency_key("v1");
  void_req.set_hold_id(held.hold().hold_id());
  v1::VoidResponse voided;
  expect_denied(Call(&Stub::Void, void_req, &voided, vet), "Void", "belongs to another partner");
  v1::ReverseRequest reverse;
  reverse.set_idempotency_key("r1");
  reverse.set_transfer_id(at_food.transfer().transfer_id());
  reverse.set_points(1);
  v1::ReverseResponse reversed;
  expect_denied(Call(&Stub::Reverse, reverse, &reversed, vet), "Reverse", "belongs to another partner");
  v1::GetTransferRequest get_transfer;
  get_transfer.set_transfer_id(at_food.transfer().transfer_id());
  v1::GetTransferResponse got_transfer;
  expect_denied(Call(&Stub::GetTransfer, get_transfer, &got_transfer, vet), "GetTransfer",
                "belongs to another partner");
  get_transfer.set_transfer_id(at_vet.transfer().transfer_id());
  EXPECT_TRUE(Call(&Stub::GetTransfer, get_transfer, &got_transfer, vet).ok());
  // Nothing moved: the hold is still pending and the earn unreversed.
  EXPECT_EQ(got_hold.hold().state(), v1::HOLD_STATE_PENDING);
  ASSERT_TRUE(Call(&Stub::GetHold, get_hold, &got_hold, food).ok());
  EXPECT_EQ(got_hold.hold().state(), v1::HOLD_STATE_PENDING);
  EXPECT_EQ(Available("m1"), 65);
  // Its owner captures it.
  ASSERT_TRUE(Call(&Stub::Capture, capture, &captured, food).ok());

  // Listing: only with its own partner_id, and then only its own transfers.
  v1::ListTransfersRequest list;
  list.set_member_id("m1");
  v1::ListTransfersResponse listed;
  expect_denied(Call(&Stub::ListTransfers, list, &listed, vet), "ListTransfers", "partner_id");
  list.set_partner_id("food");
  expect_denied(Call(&Stub::ListTransfers, list, &listed, vet), "ListTransfers", "partner_id");
  list.set_partner_id("vet");
  ASSERT_TRUE(Call(&Stub::ListTransfers, list, &listed, vet).ok());
  ASSERT_EQ(listed.transfers_size(), 1);
  EXPECT_EQ(listed.transfers(0).transfer_id(), at_vet.transfer().transfer_id());

  // Accounts: its own partner accounts only.
  v1::GetAccountRequest account;
  v1::GetAccountResponse got_account;
  account.set_account("issuance:vet");
  EXPECT_TRUE(Call(&Stub::GetAccount, account, &got_account, vet).ok());
  for (const char* other : {"issuance:food", "redemption:food", "member:m1", "operator:adjustments"}) {
    account.set_account(other);
    expect_denied(Call(&Stub::GetAccount, account, &got_account, vet), other, "account");
  }
  // Any member's balance (member ids come from a consent-scoped lookup).
  v1::GetBalanceRequest balance_req;
  balance_req.set_member_id("m1");
  v1::GetBalanceResponse balance;
  EXPECT_TRUE(Call(&Stub::GetBalance, balance_req, &balance, vet).ok());
}

TEST_F(LedgerServiceTest, TillFlowOverTheWire) {
  Earn("e1", "m1", 5000);  // 50
  v1::AuthorizeRequest auth;
  auth.set_idempotency_key("auth-1");
  auth.set_member_id("m1");
  auth.set_partner_id("food");
  auth.set_points(30);
  auth.set_ttl_seconds(300);
  v1::AuthorizeResponse hold;
  ASSERT_TRUE(Call(&Stub::Authorize, auth, &hold).ok());
  EXPECT_EQ(hold.balance().available_points(), 20);

  v1::CaptureRequest capture;
  capture.set_idempotency_key("cap-1");
  capture.set_hold_id(hold.hold().hold_id());
  capture.set_points(20);
  v1::CaptureResponse captured;
  ASSERT_TRUE(Call(&Stub::Capture, capture, &captured).ok());
  EXPECT_EQ(captured.transfer().code(), v1::TRANSFER_CODE_REDEEM);
  EXPECT_EQ(captured.transfer().points(), 20);
  EXPECT_EQ(captured.balance().available_points(), 30);

  v1::VoidRequest void_req;
  void_req.set_idempotency_key("void-1");
  void_req.set_hold_id(hold.hold().hold_id());
  v1::VoidResponse voided;
  grpc::Status late = Call(&Stub::Void, void_req, &voided);
  EXPECT_EQ(late.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(absl::StrContains(late.error_message(), "already captured")) << late.error_message();

  v1::ReverseRequest reverse;
  reverse.set_idempotency_key("rev-1");
  reverse.set_transfer_id(captured.transfer().transfer_id());
  reverse.set_points(5);
  v1::ReverseResponse reversed;
  ASSERT_TRUE(Call(&Stub::Reverse, reverse, &reversed).ok());
  EXPECT_EQ(reversed.remaining_reversible_points(), 15);
  reverse.set_idempotency_key("rev-2");
  reverse.set_points(16);
  EXPECT_EQ(Call(&Stub::Reverse, reverse, &reversed).error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  v1::GetHoldRequest get_hold;
  get_hold.set_hold_id(hold.hold().hold_id());
  v1::GetHoldResponse got_hold;
  ASSERT_TRUE(Call(&Stub::GetHold, get_hold, &got_hold).ok());
  EXPECT_EQ(got_hold.hold().state(), v1::HOLD_STATE_CAPTURED);
  EXPECT_EQ(got_hold.hold().captured_points(), 20);
  EXPECT_EQ(Available("m1"), 35);
}

TEST_F(LedgerServiceTest, QueriesAnswer) {
  v1::EarnResponse first = Earn("e1", "m1", 3000, "vet");   // 30
  Earn("e2", "m1", 2000, "groomer");                        // 20
  Earn("e3", "m2", 1000, "food");                           // 20
  v1::AdjustRequest adjust;
  adjust.set_idempotency_key("adj-1");
  adjust.set_member_id("m1");
  adjust.set_direction(v1::ADJUST_DIRECTION_DEBIT);
  adjust.set_points(10);
  adjust.set_reason("test");
  v1::AdjustResponse adjusted;
  ASSERT_TRUE(Call(&Stub::Adjust, adjust, &adjusted).ok());

  v1::GetBalanceRequest balance_req;
  balance_req.set_member_id("m1");
  v1::GetBalanceResponse balance;
  ASSERT_TRUE(Call(&Stub::GetBalance, balance_req, &balance).ok());
  EXPECT_EQ(balance.member_id(), "m1");
  EXPECT_EQ(balance.balance().posted_points(), 40);
  EXPECT_EQ(balance.balance().available_points(), 40);
  EXPECT_EQ(balance.balance().as_of_sequence(), 4);
  EXPECT_TRUE(balance.has_next_expiry_at());
  EXPECT_EQ(balance.next_expiry_points(), 20);  // the vet lot, 10 of it adjusted away

  v1::GetTransferRequest transfer_req;
  transfer_req.set_transfer_id(first.transfer().transfer_id());
  v1::GetTransferResponse transfer;
  ASSERT_TRUE(Call(&Stub::GetTransfer, transfer_req, &transfer).ok());
  EXPECT_TRUE(MessageDifferencer::Equals(transfer.transfer(), first.transfer()))
      << transfer.transfer().ShortDebugString() << "\nvs\n" << first.transfer().ShortDebugString();
  EXPECT_EQ(transfer.reversed_points(), 0);
  transfer_req.set_transfer_id("tr_nothing");
  EXPECT_EQ(Call(&Stub::GetTransfer, transfer_req, &transfer).error_code(), grpc::StatusCode::NOT_FOUND);

  v1::ListLotsRequest lots_req;
  lots_req.set_member_id("m1");
  v1::ListLotsResponse lots;
  ASSERT_TRUE(Call(&Stub::ListLots, lots_req, &lots).ok());
  ASSERT_EQ(lots.lots_size(), 2);
  EXPECT_EQ(lots.lots(0).issuer_partner_id(), "vet");
  EXPECT_EQ(lots.lots(0).remaining_points(), 20);
  EXPECT_EQ(lots.lots(1).issuer_partner_id(), "groomer");
  EXPECT_EQ(lots.lots(1).remaining_points(), 20);

  v1::ListTransfersRequest list_req;
  list_req.set_member_id("m1");
  v1::ListTransfersResponse list;
  ASSERT_TRUE(Call(&Stub::ListTransfers, list_req, &list).ok());
  EXPECT_EQ(list.transfers_size(), 3);

  v1::ReadJournalRequest read_req;
  read_req.set_page_size(2);
  v1::ReadJournalResponse page;
  ASSERT_TRUE(Call(&Stub::ReadJournal, read_req, &page).ok());
  ASSERT_EQ(page.transfers_size(), 2);
  EXPECT_EQ(page.transfers(0).sequence(), 1);
  EXPECT_EQ(page.transfers(1).sequence(), 2);
  EXPECT_EQ(page.transfers(1).prev_hash(), page.transfers(0).hash());
  EXPECT_EQ(page.last_sequence(), 2);
  EXPECT_EQ(page.head_sequence(), 4);

  v1::VerifyChainResponse chain;
  ASSERT_TRUE(Call(&Stub::VerifyChain, v1::VerifyChainRequest(), &chain).ok());
  EXPECT_EQ(chain.from_sequence(), 1);
  EXPECT_EQ(chain.to_sequence(), 4);
  EXPECT_EQ(chain.verified_count(), 4);
  EXPECT_EQ(chain.first_bad_sequence(), 0);
  EXPECT_EQ(chain.last_hash(), adjusted.transfer().hash());

  v1::GetAccountRequest account_req;
  account_req.set_account("issuance:vet");
  v1::GetAccountResponse account;
  ASSERT_TRUE(Call(&Stub::GetAccount, account_req, &account).ok());
  EXPECT_EQ(account.account().kind(), v1::ACCOUNT_KIND_ISSUANCE);
  EXPECT_EQ(account.account().balance().posted_points(), -30);
}

TEST_F(LedgerServiceTest, StreamJournalDeliversInOrderAndEndsAtUpToSequence) {
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    ids.push_back(Earn(absl::StrCat("e", i), absl::StrCat("m", i % 3), 1000 + i).transfer().transfer_id());
  }
  v1::StreamJournalRequest all;
  all.set_up_to_sequence(6);
  std::vector<v1::Transfer> got = Stream(all);
  ASSERT_EQ(got.size(), 6u);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].sequence(), static_cast<int64_t>(i) + 1);
    EXPECT_EQ(got[i].transfer_id(), ids[i]);
    if (i > 0) {
      EXPECT_EQ(got[i].prev_hash(), got[i - 1].hash());
    }
  }

  // A window in the middle: after 2, up to 4.
  v1::StreamJournalRequest window;
  window.set_after_sequence(2);
  window.set_up_to_sequence(4);
  got = Stream(window);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].transfer_id(), ids[2]);
  EXPECT_EQ(got[1].transfer_id(), ids[3]);

  // Following the head: the stream waits for the 7th transfer, then ends.
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kDeadline);
  context.AddMetadata("authorization", "Bearer " + keys_.service());
  v1::StreamJournalRequest follow;
  follow.set_after_sequence(6);
  follow.set_up_to_sequence(7);
  std::unique_ptr<grpc::ClientReader<v1::StreamJournalResponse>> reader =
      stub_->StreamJournal(&context, follow);
  const std::string seventh = Earn("e6", "m0", 5000).transfer().transfer_id();
  std::vector<v1::Transfer> followed;
  v1::StreamJournalResponse message;
  while (reader->Read(&message)) {
    for (const v1::Transfer& tr : message.transfers()) followed.push_back(tr);
  }
  grpc::Status s = reader->Finish();
  EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  ASSERT_EQ(followed.size(), 1u);
  EXPECT_EQ(followed[0].sequence(), 7);
  EXPECT_EQ(followed[0].transfer_id(), seventh);
}

TEST_F(LedgerServiceTest, InternalErrorsDoNotLeakSql) {
  Earn("e1", "m1", 1000);
  // Someone moves a table away under the running service.
  ASSERT_TRUE(loyalty::testing::ExecForTest(t_->db->pool(), "RENAME TABLE lots TO lots_moved_away").ok());
  auto expect_hidden = [&](const grpc::Status& s, const std::string& call) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INTERNAL) << call << ": " << s.error_message();
    EXPECT_TRUE(absl::StartsWith(s.error_message(), "internal error (ref: ")) << call << ": "
                                                                               << s.error_message();
    for (const char* secret : {"lots", "SELECT", "INSERT", "Table", "exist", "sql", "SQL"}) {
      EXPECT_FALSE(absl::StrContains(s.error_message(), secret)) << call << ": " << s.error_message();
    }
    EXPECT_FALSE(absl::StrContains(s.error_message(), t_->db->name())) << call << ": " << s.error_message();
  };
  v1::ListLotsRequest lots_req;
  lots_req.set_member_id("m1");
  v1::ListLotsResponse lots;
  expect_hidden(Call(&Stub::ListLots, lots_req, &lots), "ListLots");
  v1::GetBalanceRequest balance_req;
  balance_req.set_member_id("m1");
  v1::GetBalanceResponse balance;
  expect_hidden(Call(&Stub::GetBalance, balance_req, &balance), "GetBalance");
  v1::EarnResponse earned;
  const v1::EarnRequest retried = EarnOf("e2", "vet", "m1", 2000);
  expect_hidden(Call(&Stub::Earn, retried, &earned), "Earn");

  // The table comes back; the failed earn was not recorded under its key, so
  // the client's retry posts it (once).
  ASSERT_TRUE(loyalty::testing::ExecForTest(t_->db->pool(), "RENAME TABLE lots_moved_away TO lots").ok());
  grpc::Status s = Call(&Stub::Earn, retried, &earned);
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  EXPECT_EQ(earned.points(), 20);
  EXPECT_EQ(Available("m1"), 30);
}

}  // namespace
}  // namespace loyalty::ledger
