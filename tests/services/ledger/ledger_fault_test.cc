// The ledger binary with a FaultProxy between it and the real MariaDB.
//
// For Earn, Authorize, Capture and Void, and each fault (connection cut at
// COMMIT, cut after COMMIT was applied, cut mid-statement, COMMIT refused
// with 1213 as Galera does): the caller never gets OK for a write that is
// not in the database, and retries with the same key leave exactly one
// record. Afterwards the balances match the journal, sum to zero, and the
// chain verifies.
//
// And callers whose deadline passes while the database is slow do not hold
// the server's threads: other callers are still served.
#include <atomic>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/testing/fault_proxy.h"
#include "common/testing/service_process.h"
#include "common/testing/test_db.h"
#include "common/testing/test_keys.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "loyalty/ledger/v1/ledger.grpc.pb.h"
#include "tests/services/ledger/ledger_fixture.h"
#include "tests/services/ledger/rules_file.h"

namespace loyalty::ledger {
namespace {

using Fault = loyalty::testing::FaultProxy::Fault;
using loyalty::testing::FaultName;

constexpr Fault kFaults[] = {Fault::kCutAtCommit, Fault::kCutAfterCommit, Fault::kCutMidStatement,
                             Fault::kFailCommit};
constexpr int kMaxRetries = 50;


class LedgerFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = loyalty::testing::TestDatabase::Create("ledgerfault");
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    auto proxy = loyalty::testing::FaultProxy::Start("127.0.0.1", db_->options().port);
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    proxy_ = *std::move(proxy);
    internal::v1::EarnRulesFile rules;
    testing::AddPartner(rules, "vet");
    testing::AddPartner(rules, "food");
    rules_file_ = testing::WriteRulesFile(rules);
  }

  void TearDown() override { std::remove(rules_file_.c_str()); }

  // Starts the ledger with only the traffic of the test's own calls: no
  // sweeper, no expiry, no health probe.
  void StartLedger(std::vector<std::string> args = {}) {
    absl::StatusOr<std::string> keys_file = keys_.WriteKeysFile();
    ASSERT_TRUE(keys_file.ok()) << keys_file.status();
    loyalty::testing::ServiceProcess::EnvVars env =
        loyalty::testing::ServiceDbEnv(*db_, *keys_file, proxy_->port());
    env.emplace_back("LOYALTY_DB_HEALTH_INTERVAL_MS", "0");
    args.push_back(absl::StrCat("--earn_rules_file=", rules_file_));
    args.push_back("--hold_sweep_interval_ms=0");
    args.push_back("--expiry_interval_ms=0");
    auto process = loyalty::testing::ServiceProcess::Start(
        absl::StrCat(LOYALTY_BIN_DIR, "/ledger/loyalty-ledger"), args, env);
    ASSERT_TRUE(process.ok()) << process.status();
    ledger_ = *std::move(process);
    stub_ = v1::LedgerService::NewStub(grpc::CreateChannel(ledger_->address(), grpc::InsecureChannelCredentials()));
  }

  template <typename Request, typename Response>
  using Method = grpc::Status (v1::LedgerService::Stub::*)(grpc::ClientContext*, const Request&, Response*);

  template <typename Request, typename Response>
  grpc::Status Call(Method<Request, Response> method, const Request& request, Response* response,
                    absl::Duration deadline = absl::Seconds(10), const std::string& key = "") {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMicroseconds(deadline));
    ctx.AddMetadata("authorization", "Bearer " + (key.empty() ? keys_.partner("vet") : key));
    return ((*stub_).*method)(&ctx, request, response);
  }

  // One call under `fault`, then retries with the same request until OK.
  // Every answer is either OK, or UNAVAILABLE/ABORTED (retry with the same
  // key); an OK is checked against the database with `in_database`.
  template <typename Request, typename Response>
  absl::StatusOr<Response> CallUnderFault(Fault fault, Method<Request, Response> method, const Request& request,
                                          const std::function<bool(const Response&)>& in_database) {
    const int fired_before = proxy_->fired();
    proxy_->Arm(fault);
    Response response;
    grpc::Status status = Call(method, request, &response);
    proxy_->Arm(Fault::kNone);
    if (proxy_->fired() != fired_before + 1) {
      return absl::InternalError(absl::StrCat(FaultName(fault), " did not fire: the call's transaction was not hit"));
    }
    answers_[FaultName(fault)].push_back(status.error_code());
    for (int attempt = 0; !status.ok() && attempt < kMaxRetries; ++attempt) {
      if (status.error_code() != grpc::StatusCode::UNAVAILABLE && status.error_code() != grpc::StatusCode::ABORTED) {
        return absl::InternalError(absl::StrCat("not a retryable answer: ", status.error_code(), " ",
                                                status.error_message()));
      }
      absl::SleepFor(absl::Milliseconds(100));
      response.Clear();
      status = Call(method, request, &response);
    }
    if (!status.ok()) return absl::InternalError(absl::StrCat("never OK: ", status.error_message()));
    if (!in_database(response)) return absl::InternalError("answered OK, but the write is not in the database");
    return response;
  }

  int64_t Count(const std::string& sql, const std::vector<std::string>& params) {
    absl::StatusOr<int64_t> n = loyalty::testing::QueryIntForTest(db_->pool(), sql, params);
    EXPECT_TRUE(n.ok()) << n.status();
    return n.value_or(-1);
  }

  v1::EarnRequest EarnOf(const std::string& key, const std::string& member, int64_t amount_minor) {
    v1::EarnRequest r;
    r.set_idempotency_key(key);
    r.set_partner_id("vet");
    r.set_member_id(member);
    r.mutable_amount()->set_amount_minor(amount_minor);
    r.mutable_amount()->set_currency("EUR");
    r.set_receipt_reference(key);
    return r;
  }

  v1::AuthorizeRequest AuthorizeOf(const std::string& key, const std::string& member, int64_t points) {
    v1::AuthorizeRequest r;
    r.set_idempotency_key(key);
    r.set_partner_id("vet");
    r.set_member_id(member);
    r.set_points(points);
    r.set_ttl_seconds(600);
    return r;
  }

  // Earns 100 points for `member` and places a hold of 30, without faults.
  std::string EarnAndHold(const std::string& member) {
    v1::EarnResponse earned;
    EXPECT_TRUE(Call(&v1::LedgerService::Stub::Earn, EarnOf(member + "-earn", member, 10'000), &earned).ok());
    v1::AuthorizeResponse held;
    EXPECT_TRUE(Call(&v1::LedgerService::Stub::Authorize, AuthorizeOf(member + "-hold", member, 30), &held).ok());
    return held.hold().hold_id();
  }

  bool TransferIn(const std::string& transfer_id) {
    return Count("SELECT COUNT(*) FROM transfers WHERE transfer_id = ?", {transfer_id}) == 1;
  }

  // The ledger's invariants (tests/services/ledger/ledger_fixture.h), and
  // the chain verifies (loyaltyctl chain verify, over gRPC).
  void ExpectInvariants() {
    EXPECT_EQ(testing::CheckStoredInvariants(db_->pool()), "");
    const std::string cmd = absl::StrCat("LOYALTY_API_KEY=", keys_.finance(), " ", LOYALTY_LOYALTYCTL,
                                         " chain verify --ledger=", ledger_->address(), " >/dev/null 2>&1");
    EXPECT_EQ(std::system(cmd.c_str()), 0) << "the chain does not verify";
  }

  loyalty::testing::TestKeyring keys_{{"vet", "food"}};
  std::unique_ptr<loyalty::testing::TestDatabase> db_;
  std::unique_ptr<loyalty::testing::FaultProxy> proxy_;
  std::string rules_file_;
  std::unique_ptr<loyalty::testing::ServiceProcess> ledger_;
  std::unique_ptr<v1::LedgerService::Stub> stub_;
  // The first answer under each fault, to show what the callers saw.
  std::map<std::string, std::vector<grpc::StatusCode>> answers_;
};

TEST_F(LedgerFaultTest, EarnIsNeverAcknowledgedUnlessCommittedAndPostsOncePerKey) {
  ASSERT_NO_FATAL_FAILURE(StartLedger());
  for (Fault fault : kFaults) {
    const std::string member = absl::StrCat("earn-", FaultName(fault));
    auto earned = CallUnderFault<v1::EarnRequest, v1::EarnResponse>(
        fault, &v1::LedgerService::Stub::Earn, EarnOf(member, member, 4'200),
        [&](const v1::EarnResponse& r) { return TransferIn(r.transfer().transfer_id()); });
    ASSERT_TRUE(earned.ok()) << FaultName(fault) << ": " << earned.status() << "\n" << ledger_->LogTail();
    EXPECT_EQ(earned->points(), 42);  // 42 EUR at 1 point per EUR
    EXPECT_EQ(Count("SELECT COUNT(*) FROM transfers WHERE member_id = ? AND code = 1", {member}), 1) << member;
    EXPECT_EQ(Count("SELECT credits_posted FROM accounts WHERE account = ?", {"member:" + member}), 42);
  }
  // A COMMIT cut before it reached the server is never OK; one cut after it
  // was applied is not OK either (the outcome was unknown to the ledger).
  EXPECT_EQ(answers_["cut-at-commit"][0], grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(answers_["cut-after-commit"][0], grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(answers_["cut-mid-statement"][0], grpc::StatusCode::UNAVAILABLE);
  // A refused COMMIT is retried inside the ledger: the caller sees OK.
  EXPECT_EQ(answers_["commit-refused"][0], grpc::StatusCode::OK);
  ExpectInvariants();
}

TEST_F(LedgerFaultTest, AuthorizeHoldsOncePerKey) {
  ASSERT_NO_FATAL_FAILURE(StartLedger());
  for (Fault fault : kFaults) {
    const std::string member = absl::StrCat("auth-", FaultName(fault));
    v1::EarnResponse earned;
    ASSERT_TRUE(Call(&v1::LedgerService::Stub::Earn, EarnOf(member + "-earn", member, 10'000), &earned).ok());
    auto held = CallUnderFault<v1::AuthorizeRequest, v1::AuthorizeResponse>(
        fault, &v1::LedgerService::Stub::Authorize, AuthorizeOf(member, member, 30),
        [&](const v1::AuthorizeResponse& r) {
          return Count("SELECT COUNT(*) FROM holds WHERE hold_id = ?", {r.hold().hold_id()}) == 1;
        });
    ASSERT_TRUE(held.ok()) << FaultName(fault) << ": " << held.status() << "\n" << ledger_->LogTail();
    EXPECT_EQ(Count("SELECT COUNT(*) FROM holds WHERE member_id = ?", {member}), 1) << member;
    // 100 earned, 30 held once.
    EXPECT_EQ(Count("SELECT debits_pending FROM accounts WHERE account = ?", {"member:" + member}), 30);
    EXPECT_EQ(held->balance().available_points(), 70);
  }
  ExpectInvariants();
}

TEST_F(LedgerFaultTest, CaptureRedeemsOncePerKey) {
  ASSERT_NO_FATAL_FAILURE(StartLedger());
  for (Fault fault : kFaults) {
    const std::string member = absl::StrCat("capture-", FaultName(fault));
    const std::string hold_id = EarnAndHold(member);
    ASSERT_FALSE(hold_id.empty());
    v1::CaptureRequest capture;
    capture.set_idempotency_key(member);
    capture.set_hold_id(hold_id);
    capture.set_points(20);
    auto captured = CallUnderFault<v1::CaptureRequest, v1::CaptureResponse>(
        fault, &v1::LedgerService::Stub::Capture, capture,
        [&](const v1::CaptureResponse& r) { return TransferIn(r.transfer().transfer_id()); });
    ASSERT_TRUE(captured.ok()) << FaultName(fault) << ": " << captured.status() << "\n" << ledger_->LogTail();
    EXPECT_EQ(Count("SELECT COUNT(*) FROM transfers WHERE hold_id = ? AND code = 2", {hold_id}), 1) << member;
    EXPECT_EQ(Count("SELECT captured_points FROM holds WHERE hold_id = ?", {hold_id}), 20);
    // 100 earned, 20 redeemed, the other 10 of the hold released.
    EXPECT_EQ(Count("SELECT credits_posted - debits_posted - debits_pending FROM accounts WHERE account = ?",
                    {"member:" + member}),
              80);
  }
  ExpectInvariants();
}

TEST_F(LedgerFaultTest, VoidReleasesOncePerKey) {
  ASSERT_NO_FATAL_FAILURE(StartLedger());
  for (Fault fault : kFaults) {
    const std::string member = absl::StrCat("void-", FaultName(fault));
    const std::string hold_id = EarnAndHold(member);
    ASSERT_FALSE(hold_id.empty());
    v1::VoidRequest void_request;
    void_request.set_idempotency_key(member);
    void_request.set_hold_id(hold_id);
    auto voided = CallUnderFault<v1::VoidRequest, v1::VoidResponse>(
        fault, &v1::LedgerService::Stub::Void, void_request, [&](const v1::VoidResponse& r) {
          return r.hold().state() == v1::HOLD_STATE_VOIDED &&
                 Count("SELECT COUNT(*) FROM holds WHERE hold_id = ? AND state = ?",
                       {hold_id, std::to_string(v1::HOLD_STATE_VOIDED)}) == 1;
        });
    ASSERT_TRUE(voided.ok()) << FaultName(fault) << ": " << voided.status() << "\n" << ledger_->LogTail();
    EXPECT_EQ(Count("SELECT COUNT(*) FROM transfers WHERE hold_id = ? AND code = 9", {hold_id}), 1) << member;
    EXPECT_EQ(Count("SELECT debits_pending FROM accounts WHERE account = ?", {"member:" + member}), 0);
  }
  ExpectInvariants();
}

TEST_F(LedgerFaultTest, CallersWhoseDeadlinePassedDoNotHoldTheServersThreads) {
  // 24 tills with 1 ms deadlines earn at "food", over and over, while every
  // command to the database waits 300 ms, so a batch takes two seconds or
  // more. A call held until its batch commits would hold its thread that
  // long: the 64 threads would run out and other callers would be refused
  // ("Server Threadpool Exhausted").
  ASSERT_NO_FATAL_FAILURE(StartLedger({"--partner_rate_limit_rps=0"}));
  proxy_->SetDelay(absl::Milliseconds(300));
  std::atomic<bool> stop{false};
  std::atomic<int> storm_calls{0};
  std::vector<std::thread> storm;
  for (int t = 0; t < 24; ++t) {
    storm.emplace_back([&, t] {
      for (int i = 0; !stop.load(); ++i) {
        v1::EarnRequest r = EarnOf(absl::StrCat("storm-", t, "-", i), "stormy", 100);
        r.set_partner_id("food");
        v1::EarnResponse ignored;
        (void)Call(&v1::LedgerService::Stub::Earn, r, &ignored, absl::Milliseconds(1), keys_.partner("food"));
        storm_calls.fetch_add(1);
        absl::SleepFor(absl::Microseconds(500));  // then again, as an impatient till would
      }
    });
  }
  // Meanwhile a patient caller at the vet earns, one call after the other.
  // On a starved machine a call may find no thread for a moment
  // (RESOURCE_EXHAUSTED); it retries then, as a client would.
  std::vector<std::string> refused;
  int patient_retries = 0;
  for (int i = 0; i < 3; ++i) {
    v1::EarnResponse earned;
    grpc::Status s;
    for (int attempt = 0; attempt < 20; ++attempt) {
      s = Call(&v1::LedgerService::Stub::Earn, EarnOf(absl::StrCat("patient-", i), "patient", 1'000), &earned,
               absl::Seconds(30));
      if (s.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) break;
      ++patient_retries;
      absl::SleepFor(absl::Milliseconds(50));
    }
    if (!s.ok()) refused.push_back(absl::StrCat(s.error_code(), " ", s.error_message()));
  }
  RecordProperty("patient_retries_for_threads", patient_retries);
  stop = true;
  for (std::thread& t : storm) t.join();
  proxy_->SetDelay(absl::ZeroDuration());
  EXPECT_TRUE(refused.empty()) << refused.size() << " refused, e.g. " << refused[0];
  EXPECT_GT(storm_calls.load(), 500);

  // Every call of the tills ended within a moment of its deadline, long
  // before the batches it could have joined were committed.
  const std::string storm_key = absl::StrCat("caller=key:", keys_.partner("food").substr(3, 16));
  std::istringstream log(ledger_->LogTail(100'000'000));
  int64_t max_latency_us = 0;
  int answered = 0;
  int exhausted = 0;
  for (std::string line; std::getline(log, line);) {
    if (line.find("event=rpc") == std::string::npos || line.find(storm_key) == std::string::npos) continue;
    ++answered;
    if (line.find("status=RESOURCE_EXHAUSTED") != std::string::npos) ++exhausted;
    const size_t at = line.find("latency_us=");
    if (at != std::string::npos) max_latency_us = std::max<int64_t>(max_latency_us, std::stoll(line.substr(at + 11)));
  }
  EXPECT_GT(answered, 500);
  EXPECT_LT(max_latency_us, 1'000'000);
  RecordProperty("storm_calls_answered", answered);
  RecordProperty("storm_calls_refused_threadpool_exhausted", exhausted);
  RecordProperty("storm_call_max_latency_us", static_cast<int>(max_latency_us));
  ExpectInvariants();
}

}  // namespace
}  // namespace loyalty::ledger
