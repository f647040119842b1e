// Model-based randomized test of the ledger against a real MariaDB.
//
// A reference model that is small enough to be obviously right (per member:
// posted points and points on hold; per hold: points and state; per
// redemption: points and how much was reversed) and the real Ledger (group
// commit on) run the same seeded random operations: earn, authorise, capture
// (full, partial, too much, of a closed hold), void, reverse a redemption
// (partial, full, too much), adjust, replays of earlier requests under their
// key, key reuse with a changed request, and bursts of concurrent requests on
// one member that the batch writer commits together. Every outcome's status
// code must be the one the model predicts; at the end every member's
// balances, every hold and every redemption are compared, and the ledger's
// invariants must hold.
//
// Environment: LEDGER_MODEL_SEED (default: from the clock; printed),
// LEDGER_MODEL_OPS (serial run, default 2000), LEDGER_MODEL_THREAD_OPS
// (concurrent run, per thread, default 400).

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/services/ledger/ledger_fixture.h"

namespace loyalty::ledger {
namespace {

using google::protobuf::Message;
using google::protobuf::util::MessageDifferencer;
using testing::EarnOf;

// Long enough that no hold expires during a run.
constexpr int64_t kHoldTtlSeconds = 600;
// A run stops after this many disagreements: past the first, the model and
// the ledger have diverged and the rest is noise.
constexpr int kMaxFailures = 10;

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* value = std::getenv(name);
  int64_t out = 0;
  if (value == nullptr || !absl::SimpleAtoi(value, &out)) return fallback;
  return out;
}

uint64_t Seed() {
  const char* value = std::getenv("LEDGER_MODEL_SEED");
  uint64_t seed = 0;
  if (value != nullptr && absl::SimpleAtoi(value, &seed)) return seed;
  return static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
}

// ---- The reference model ------------------------------------------------------

struct ModelMember {
  int64_t posted = 0;
  int64_t held = 0;  // points of PENDING holds
  int64_t available() const { return posted - held; }
};

enum class HoldState { kPending, kCaptured, kVoided };

struct ModelHold {
  std::string hold_id;
  std::string hold_transfer_id;
  std::string member;
  int64_t points = 0;
  HoldState state = HoldState::kPending;
  int64_t captured = 0;
};

struct ModelRedeem {
  std::string transfer_id;
  std::string member;
  int64_t points = 0;
  int64_t reversed = 0;
};

// TestRules(): vet and groomer pay 1 point per EUR, food 2 (milli-points per
// unit / 1000); "gold-1" gets 1.5x (+ floor(base / 2)). Lines are category
// "food", so the "dog" campaign never applies.
int64_t EarnPoints(const std::string& partner, const std::string& member, int64_t amount_minor) {
  const int64_t base = amount_minor * (partner == "food" ? 2 : 1) / 100;
  return base + (member == "gold-1" ? base / 2 : 0);
}

v1::HoldState ToProto(HoldState s) {
  switch (s) {
    case HoldState::kPending:
      return v1::HOLD_STATE_PENDING;
    case HoldState::kCaptured:
      return v1::HOLD_STATE_CAPTURED;
    case HoldState::kVoided:
      return v1::HOLD_STATE_VOIDED;
  }
  return v1::HOLD_STATE_UNSPECIFIED;
}

// ---- One run: a model, its members, and the ops it sends ---------------------

class ModelRun {
 public:
  ModelRun(Ledger& ledger, std::string prefix, const std::vector<std::string>& members, uint64_t seed)
      : ledger_(ledger), prefix_(std::move(prefix)), seed_(seed), rng_(seed) {
    for (const std::string& m : members) {
      member_ids_.push_back(m);
      members_[m];
    }
  }

  // Gives every member an account (so GetBalance answers at the end), then
  // runs `ops` random operations.
  void Run(int ops) {
    for (const std::string& m : member_ids_) {
      const v1::EarnRequest req = EarnOf(NextKey(), "vet", m, 10000);
      auto got = Send(&Ledger::Earn, req);
      if (Expect("seed Earn", got, absl::StatusCode::kOk)) members_[m].posted += got->points();
    }
    for (op_ = 1; op_ <= ops && failures_ < kMaxFailures; ++op_) {
      const int64_t r = Uniform(0, 99);
      if (r < 24) {
        OpEarn();
      } else if (r < 44) {
        OpAuthorize();
      } else if (r < 60) {
        OpCapture();
      } else if (r < 67) {
        OpVoid();
      } else if (r < 77) {
        OpReverse();
      } else if (r < 87) {
        OpAdjust();
      } else if (r < 94) {
        OpReplay();
      } else if (r < 96) {
        OpConflict();
      } else {
        OpBurst();
      }
    }
    if (failures_ >= kMaxFailures) {
      ADD_FAILURE() << prefix_ << ": stopped after " << failures_ << " disagreements (seed " << seed_
                    << ")";
    }
  }

  // Compares the ledger's state with the model.
  void CheckLedger() {
    for (const auto& [member, m] : members_) {
      v1::GetBalanceRequest req;
      req.set_member_id(member);
      auto got = ledger_.GetBalance(req);
      ASSERT_TRUE(got.ok()) << member << ": " << got.status();
      const std::string what = absl::StrCat("final balance of ", member);
      CheckBalance(what, got->balance(), member);
    }
    for (const ModelHold& h : holds_) {
      v1::GetHoldRequest req;
      req.set_hold_id(h.hold_id);
      auto got = ledger_.GetHold(caller_, req);
      ASSERT_TRUE(got.ok()) << h.hold_id << ": " << got.status();
      EXPECT_EQ(got->hold().state(), ToProto(h.state)) << prefix_ << " hold " << h.hold_id;
      EXPECT_EQ(got->hold().captured_points(), h.captured) << prefix_ << " hold " << h.hold_id;
      EXPECT_EQ(got->hold().points(), h.points) << prefix_ << " hold " << h.hold_id;
    }
    for (const ModelRedeem& d : redeems_) {
      v1::GetTransferRequest req;
      req.set_transfer_id(d.transfer_id);
      auto got = ledger_.GetTransfer(caller_, req);
      ASSERT_TRUE(got.ok()) << d.transfer_id << ": " << got.status();
      EXPECT_EQ(got->transfer().points(), d.points) << prefix_ << " redeem " << d.transfer_id;
      EXPECT_EQ(got->reversed_points(), d.reversed) << prefix_ << " redeem " << d.transfer_id;
    }
  }

  // What the run did, by method and expected code.
  std::string Stats() const {
    std::string out = absl::StrCat(prefix_, ": ", submitted_, " requests;");
    for (const auto& [k, n] : stats_) absl::StrAppend(&out, " ", k, "=", n);
    return out;
  }
  int64_t submitted() const { return submitted_; }

 private:
  // An answer as the ledger gave it.
  struct Answer {
    absl::Status status;
    std::unique_ptr<Message> response;
  };
  // A request already answered, kept for replays under its key.
  struct Sent {
    std::string what;
    Answer original;
    std::function<Answer()> resend;  // the same request under the same key
    // The same key with one field changed, and that field's name.
    std::function<absl::Status()> conflict;
    std::string conflict_field;
  };

  int64_t Uniform(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }
  template <typename T>
  const T& PickFrom(const std::vector<T>& v) {
    return v[static_cast<size_t>(Uniform(0, static_cast<int64_t>(v.size()) - 1))];
  }
  const std::string& PickMember() { return PickFrom(member_ids_); }
  std::string NextKey() { return absl::StrCat(prefix_, "-k", ++keys_); }

  void Fail(const std::string& message) {
    ++failures_;
    ADD_FAILURE() << prefix_ << " op " << op_ << " (seed " << seed_ << "): " << message;
  }
  void Check(bool ok, const std::string& what, const std::string& detail) {
    if (!ok) Fail(absl::StrCat(what, ": ", detail));
  }

  template <typename Response>
  bool Expect(const std::string& what, const absl::StatusOr<Response>& got, absl::StatusCode want) {
    ++stats_[absl::StrCat(what.substr(0, what.find(' ')), ":", absl::StatusCodeToString(want))];
    if (got.status().code() == want) return true;
    Fail(absl::StrCat(what, ": got ", got.status().ToString(), ", the model expects ",
                      absl::StatusCodeToString(want)));
    return false;
  }

  void CheckBalance(const std::string& what, const v1::AccountBalance& b, const std::string& member) {
    const ModelMember& m = members_.at(member);
    if (b.posted_points() != m.posted || b.available_points() != m.available() ||
        b.pending_points() != m.held) {
      Fail(absl::StrCat(what, ": ledger has posted ", b.posted_points(), ", available ",
                        b.available_points(), ", pending ", b.pending_points(),
                        "; the model has posted ", m.posted, ", available ", m.available(),
                        ", held ", m.held));
    }
  }

  template <typename Request, typename Response>
  absl::StatusOr<Response> Send(absl::StatusOr<Response> (Ledger::*method)(const Caller&, const Request&),
                                const Request& req) {
    ++submitted_;
    return (ledger_.*method)(caller_, req);
  }

  // Keeps an answered request for replays. INVALID_ARGUMENT does not use up
  // its key (the ledger answers it afresh each time), so it is not kept.
  template <typename Request, typename Response>
  void Remember(absl::StatusOr<Response> (Ledger::*method)(const Caller&, const Request&),
                const std::string& what, const Request& req, const absl::StatusOr<Response>& got,
                std::function<void(Request&)> change = nullptr, std::string changed_field = "") {
    if (got.status().code() == absl::StatusCode::kInvalidArgument) return;
    Sent s;
    s.what = what;
    s.original.status = got.status();
    if (got.ok()) s.original.response = std::make_unique<Response>(*got);
    s.resend = [this, method, req]() {
      absl::StatusOr<Response> again = Send(method, req);
      Answer a;
      a.status = again.status();
      if (again.ok()) a.response = std::make_unique<Response>(*std::move(again));
      return a;
    };
    if (change) {
      s.conflict = [this, method, req, change]() {
        Request other = req;
        change(other);
        return Send(method, other).status();
      };
      s.conflict_field = std::move(changed_field);
    }
    sent_.push_back(std::move(s));
  }

  // ---- Operations ----

  void OpEarn() {
    std::string member = PickMember();
    std::string partner = PickFrom(std::vector<std::string>{"vet", "food", "groomer"});
    absl::StatusCode want = absl::StatusCode::kOk;
    const int64_t r = Uniform(0, 99);
    if (r < 3) {
      member = "frozen";
      want = absl::StatusCode::kFailedPrecondition;
    } else if (r < 6) {
      partner = "closed-shop";
      want = absl::StatusCode::kFailedPrecondition;
    } else if (r < 8) {
      partner = "no-such-shop";
      want = absl::StatusCode::kNotFound;
    }
    const int64_t q = Uniform(0, 9);
    const int64_t amount = q == 0 ? Uniform(1, 99) : q < 6 ? Uniform(100, 9999) : Uniform(10000, 100000);
    const v1::EarnRequest req = EarnOf(NextKey(), partner, member, amount);
    const std::string what = absl::StrCat("Earn ", amount, " at ", partner, " for ", member);
    auto got = Send(&Ledger::Earn, req);
    if (Expect(what, got, want) && got.ok()) {
      const int64_t points = EarnPoints(partner, member, amount);
      members_.at(member).posted += points;
      Check(got->points() == points, what, absl::StrCat("points ", got->points(), ", model ", points));
      Check(points == 0 || got->lot().remaining_points() == points, what, "lot");
      CheckBalance(what, got->balance(), member);
    }
    Remember(&Ledger::Earn, what, req, got,
             std::function<void(v1::EarnRequest&)>([](v1::EarnRequest& x) {
               x.mutable_amount()->set_amount_minor(x.amount().amount_minor() + 100);
               x.mutable_lines(0)->mutable_amount()->set_amount_minor(x.amount().amount_minor());
             }),
             "amount.amount_minor");
  }

  void OpAuthorize() {
    std::string member = PickMember();
    std::string partner = PickFrom(std::vector<std::string>{"food", "vet"});
    const int64_t available = members_.at(member).available();
    int64_t points = Uniform(0, 9) < 7 ? Uniform(1, std::max<int64_t>(1, available))
                                        : available + Uniform(1, 50);
    absl::StatusCode want =
        points <= available ? absl::StatusCode::kOk : absl::StatusCode::kFailedPrecondition;
    const int64_t r = Uniform(0, 99);
    if (r < 3) {
      member = "frozen";
      want = absl::StatusCode::kFailedPrecondition;
    } else if (r < 5) {
      partner = "closed-shop";
      want = absl::StatusCode::kFailedPrecondition;
    }
    v1::AuthorizeRequest req;
    req.set_idempotency_key(NextKey());
    req.set_member_id(member);
    req.set_partner_id(partner);
    req.set_points(points);
    req.set_ttl_seconds(kHoldTtlSeconds);
    req.set_reference(absl::StrCat("till-", keys_));
    const std::string what = absl::StrCat("Authorize ", points, " of ", member, " at ", partner);
    auto got = Send(&Ledger::Authorize, req);
    if (Expect(what, got, want) && got.ok()) {
      ModelHold h;
      h.hold_id = got->hold().hold_id();
      h.hold_transfer_id = got->hold().hold_transfer_id();
      h.member = member;
      h.points = points;
      holds_.push_back(h);
      members_.at(member).held += points;
      Check(got->hold().points() == points && got->hold().state() == v1::HOLD_STATE_PENDING, what,
            got->hold().ShortDebugString());
      CheckBalance(what, got->balance(), member);
    }
    Remember(&Ledger::Authorize, what, req, got,
             std::function<void(v1::AuthorizeRequest&)>(
                 [](v1::AuthorizeRequest& x) { x.set_points(x.points() + 1); }),
             "points");
  }

  // A hold to close: mostly an open one, sometimes any (maybe closed), or
  // nullptr for one that does not exist.
  ModelHold* PickHold() {
    std::vector<ModelHold*> open;
    for (ModelHold& h : holds_) {
      if (h.state == HoldState::kPending) open.push_back(&h);
    }
    const int64_t r = Uniform(0, 99);
    if (r < 3) return nullptr;
    if (r < 80 && !open.empty()) return PickFrom(open);
    return &holds_[static_cast<size_t>(Uniform(0, static_cast<int64_t>(holds_.size()) - 1))];
  }

  void OpCapture() {
    if (holds_.empty()) return OpAuthorize();
    ModelHold* h = PickHold();
    v1::CaptureRequest req;
    req.set_idempotency_key(NextKey());
    absl::StatusCode want = absl::StatusCode::kOk;
    int64_t points = 0;  // 0 = the whole hold
    if (h == nullptr) {
      req.set_hold_id(absl::StrCat("hold_missing-", keys_));
      want = absl::StatusCode::kNotFound;
    } else {
      req.set_hold_id(h->hold_id);
      const int64_t q = Uniform(0, 9);
      points = q < 4 ? 0 : q < 9 ? Uniform(1, h->points) : h->points + Uniform(1, 10);
      if (h->state != HoldState::kPending) {
        want = absl::StatusCode::kFailedPrecondition;
      } else if (points > h->points) {
        want = absl::StatusCode::kInvalidArgument;
      }
    }
    req.set_points(points);
    const std::string what = absl::StrCat("Capture ", points, " of ", req.hold_id());
    auto got = Send(&Ledger::Capture, req);
    if (Expect(what, got, want) && got.ok()) {
      const int64_t captured = points == 0 ? h->points : points;
      ModelMember& m = members_.at(h->member);
      m.posted -= captured;
      m.held -= h->points;
      h->state = HoldState::kCaptured;
      h->captured = captured;
      redeems_.push_back({got->transfer().transfer_id(), h->member, captured, 0});
      Check(got->transfer().code() == v1::TRANSFER_CODE_REDEEM && got->transfer().points() == captured,
            what, got->transfer().ShortDebugString());
      Check(got->hold().state() == v1::HOLD_STATE_CAPTURED, what, got->hold().ShortDebugString());
      CheckBalance(what, got->balance(), h->member);
    }
    Remember(&Ledger::Capture, what, req, got);
  }

  void OpVoid() {
    if (holds_.empty()) return OpAuthorize();
    ModelHold* h = PickHold();
    v1::VoidRequest req;
    req.set_idempotency_key(NextKey());
    absl::StatusCode want = absl::StatusCode::kOk;
    if (h == nullptr) {
      req.set_hold_id(absl::StrCat("hold_missing-", keys_));
      want = absl::StatusCode::kNotFound;
    } else {
      req.set_hold_id(h->hold_id);
      if (h->state != HoldState::kPending) want = absl::StatusCode::kFailedPrecondition;
    }
    req.set_reason("customer changed their mind");
    const std::string what = absl::StrCat("Void ", req.hold_id());
    auto got = Send(&Ledger::Void, req);
    if (Expect(what, got, want) && got.ok()) {
      members_.at(h->member).held -= h->points;
      h->state = HoldState::kVoided;
      Check(got->hold().state() == v1::HOLD_STATE_VOIDED &&
                got->transfer().code() == v1::TRANSFER_CODE_HOLD_VOID,
            what, got->hold().ShortDebugString());
      CheckBalance(what, got->balance(), h->member);
    }
    Remember(&Ledger::Void, what, req, got);
  }

  void OpReverse() {
    if (redeems_.empty()) return OpCapture();
    v1::ReverseRequest req;
    req.set_idempotency_key(NextKey());
    req.set_reason("returned goods");
    absl::StatusCode want = absl::StatusCode::kOk;
    ModelRedeem* d = nullptr;
    int64_t amount = 0;  // what the model moves back
    int64_t reversible = 0;
    const int64_t r = Uniform(0, 99);
    if (r < 4) {
      // Only EARN and REDEEM can be reversed.
      req.set_transfer_id(PickFrom(holds_).hold_transfer_id);
      req.set_points(1);
      want = absl::StatusCode::kFailedPrecondition;
    } else if (r < 7) {
      req.set_transfer_id(absl::StrCat("tr_missing-", keys_));
      req.set_points(1);
      want = absl::StatusCode::kNotFound;
    } else {
      d = &redeems_[static_cast<size_t>(Uniform(0, static_cast<int64_t>(redeems_.size()) - 1))];
      req.set_transfer_id(d->transfer_id);
      reversible = d->points - d->reversed;
      const int64_t q = Uniform(0, 9);
      if (q < 3) {
        amount = reversible;  // portion unset: everything still reversible
      } else {
        amount = q < 8 ? Uniform(1, std::max<int64_t>(1, reversible)) : reversible + Uniform(1, 10);
        req.set_points(amount);
      }
      if (reversible <= 0 || amount > reversible) want = absl::StatusCode::kFailedPrecondition;
    }
    const std::string what = absl::StrCat("Reverse ", req.has_points() ? absl::StrCat(req.points()) : "all",
                                          " of ", req.transfer_id());
    auto got = Send(&Ledger::Reverse, req);
    if (Expect(what, got, want) && got.ok()) {
      members_.at(d->member).posted += amount;
      d->reversed += amount;
      Check(got->transfer().code() == v1::TRANSFER_CODE_REVERSE_REDEEM &&
                got->transfer().points() == amount && got->reversed_points() == amount &&
                got->remaining_reversible_points() == reversible - amount,
            what, got->ShortDebugString());
      CheckBalance(what, got->balance(), d->member);
    }
    Remember(&Ledger::Reverse, what, req, got);
  }

  void OpAdjust() {
    const std::string& member = PickMember();
    const int64_t available = members_.at(member).available();
    const bool credit = Uniform(0, 1) == 0;
    v1::AdjustRequest req;
    req.set_idempotency_key(NextKey());
    req.set_member_id(member);
    req.set_reason("model test adjustment");
    req.set_reference(absl::StrCat("case-", keys_));
    absl::StatusCode want = absl::StatusCode::kOk;
    int64_t points = 0;
    if (credit) {
      req.set_direction(v1::ADJUST_DIRECTION_CREDIT);
      points = Uniform(1, 500);
      if (Uniform(0, 3) == 0) req.set_funding_partner_id("vet");
    } else {
      req.set_direction(v1::ADJUST_DIRECTION_DEBIT);
      points = Uniform(0, 9) < 6 ? Uniform(1, std::max<int64_t>(1, available)) : available + Uniform(1, 100);
      if (points > available) want = absl::StatusCode::kFailedPrecondition;
    }
    req.set_points(points);
    if (Uniform(0, 99) < 5) {
      req.clear_reason();  // mandatory
      want = absl::StatusCode::kInvalidArgument;
    }
    const std::string what = absl::StrCat("Adjust ", credit ? "+" : "-", points, " ", member,
                                          req.reason().empty() ? " without a reason" : "");
    auto got = Send(&Ledger::Adjust, req);
    if (Expect(what, got, want)) {
      if (got.ok()) {
        members_.at(member).posted += credit ? points : -points;
        Check(got->transfer().code() == v1::TRANSFER_CODE_ADJUST && got->transfer().points() == points,
              what, got->transfer().ShortDebugString());
        Check(!credit || got->lot().remaining_points() == points, what, got->lot().ShortDebugString());
        CheckBalance(what, got->balance(), member);
      } else if (want == absl::StatusCode::kInvalidArgument) {
        Check(absl::StartsWith(got.status().message(), "reason"), what, got.status().ToString());
      }
    }
    Remember(&Ledger::Adjust, what, req, got,
             std::function<void(v1::AdjustRequest&)>(
                 [](v1::AdjustRequest& x) { x.set_points(x.points() + 1); }),
             "points");
  }

  // An earlier request again, same key: the very same answer, whatever
  // happened since.
  void OpReplay() {
    if (sent_.empty()) return OpEarn();
    Sent& s = sent_[static_cast<size_t>(Uniform(0, static_cast<int64_t>(sent_.size()) - 1))];
    ++stats_[absl::StrCat("Replay:", absl::StatusCodeToString(s.original.status.code()))];
    const Answer again = s.resend();
    const std::string what = absl::StrCat("replay of ", s.what);
    if (again.status != s.original.status) {
      Fail(absl::StrCat(what, ": got ", again.status.ToString(), ", first answer was ",
                        s.original.status.ToString()));
    } else if (again.status.ok() && !MessageDifferencer::Equals(*again.response, *s.original.response)) {
      Fail(absl::StrCat(what, ": a different response: ", again.response->ShortDebugString(),
                        " vs ", s.original.response->ShortDebugString()));
    }
  }

  // An earlier key with a changed request: ALREADY_EXISTS naming the field,
  // and nothing moves.
  void OpConflict() {
    std::vector<Sent*> candidates;
    for (Sent& s : sent_) {
      if (s.conflict) candidates.push_back(&s);
    }
    if (candidates.empty()) return OpReplay();
    Sent& s = *PickFrom(candidates);
    ++stats_["Conflict:ALREADY_EXISTS"];
    const absl::Status got = s.conflict();
    if (got.code() != absl::StatusCode::kAlreadyExists ||
        !absl::StrContains(got.message(), s.conflict_field)) {
      Fail(absl::StrCat("key of ", s.what, " reused with another ", s.conflict_field, ": got ",
                        got.ToString()));
    }
  }

  // Several requests on one member sent at once, so that the batch writer
  // commits them together (same member, same lots, in one batch). They are
  // chosen so that each succeeds in any order: earns, a credit, closing
  // distinct open holds, reversing distinct redemptions within what remains,
  // and one hold within what was available before (none of the others lowers
  // the available balance). The model applies their sum afterwards; the
  // balances they answer depend on the order, so they are not compared.
  void OpBurst() {
    const std::string member = PickMember();
    struct Call {
      std::string what;
      std::function<std::string()> send;  // "" or what went wrong
      std::function<void()> apply;        // the model's update, when it went right
    };
    std::vector<Call> calls;
    for (int64_t i = Uniform(1, 2); i > 0; --i) {
      const int64_t amount = Uniform(100, 50000);
      const std::string partner = PickFrom(std::vector<std::string>{"vet", "food", "groomer"});
      const int64_t points = EarnPoints(partner, member, amount);
      const v1::EarnRequest req = EarnOf(NextKey(), partner, member, amount);
      calls.push_back({absl::StrCat("burst Earn ", amount, " at ", partner), [this, req, points]() {
                         auto got = ledger_.Earn(caller_, req);
                         if (!got.ok()) return got.status().ToString();
                         if (got->points() != points) return absl::StrCat("points ", got->points(), ", model ", points);
                         return std::string();
                       },
                       [this, member, points]() { members_.at(member).posted += points; }});
    }
    if (Uniform(0, 1) == 0) {
      v1::AdjustRequest req;
      req.set_idempotency_key(NextKey());
      req.set_member_id(member);
      req.set_direction(v1::ADJUST_DIRECTION_CREDIT);
      req.set_points(Uniform(1, 300));
      req.set_reason("burst credit");
      calls.push_back({absl::StrCat("burst Adjust +", req.points()), [this, req]() {
                         auto got = ledger_.Adjust(caller_, req);
                         return got.ok() ? std::string() : got.status().ToString();
                       },
                       [this, member, req]() { members_.at(member).posted += req.points(); }});
    }
    std::vector<size_t> open;
    for (size_t i = 0; i < holds_.size(); ++i) {
      if (holds_[i].member == member && holds_[i].state == HoldState::kPending) open.push_back(i);
    }
    std::shuffle(open.begin(), open.end(), rng_);
    for (size_t n = 0; n < open.size() && n < 2; ++n) {
      const size_t h = open[n];
      if (Uniform(0, 2) == 0) {
        v1::VoidRequest req;
        req.set_idempotency_key(NextKey());
        req.set_hold_id(holds_[h].hold_id);
        calls.push_back({absl::StrCat("burst Void ", req.hold_id()), [this, req]() {
                           auto got = ledger_.Void(caller_, req);
                           return got.ok() ? std::string() : got.status().ToString();
                         },
                         [this, h]() {
                           members_.at(holds_[h].member).held -= holds_[h].points;
                           holds_[h].state = HoldState::kVoided;
                         }});
      } else {
        const int64_t points = Uniform(0, 1) == 0 ? 0 : Uniform(1, holds_[h].points);
        const int64_t captured = points == 0 ? holds_[h].points : points;
        v1::CaptureRequest req;
        req.set_idempotency_key(NextKey());
        req.set_hold_id(holds_[h].hold_id);
        req.set_points(points);
        auto transfer_id = std::make_shared<std::string>();
        calls.push_back({absl::StrCat("burst Capture ", points, " of ", req.hold_id()),
                         [this, req, captured, transfer_id]() {
                           auto got = ledger_.Capture(caller_, req);
                           if (!got.ok()) return got.status().ToString();
                           *transfer_id = got->transfer().transfer_id();
                           if (got->transfer().points() != captured) {
                             return absl::StrCat("captured ", got->transfer().points(), ", model ", captured);
                           }
                           return std::string();
                         },
                         [this, h, captured, transfer_id]() {
                           ModelHold& hold = holds_[h];
                           ModelMember& m = members_.at(hold.member);
                           m.posted -= captured;
                           m.held -= hold.points;
                           hold.state = HoldState::kCaptured;
                           hold.captured = captured;
                           redeems_.push_back({*transfer_id, hold.member, captured, 0});
                         }});
      }
    }
    std::vector<size_t> reversible;
    for (size_t i = 0; i < redeems_.size(); ++i) {
      if (redeems_[i].member == member && redeems_[i].points > redeems_[i].reversed) reversible.push_back(i);
    }
    std::shuffle(reversible.begin(), reversible.end(), rng_);
    for (size_t n = 0; n < reversible.size() && n < 2; ++n) {
      const size_t d = reversible[n];
      const int64_t points = Uniform(1, redeems_[d].points - redeems_[d].reversed);
      v1::ReverseRequest req;
      req.set_idempotency_key(NextKey());
      req.set_transfer_id(redeems_[d].transfer_id);
      req.set_points(points);
      calls.push_back({absl::StrCat("burst Reverse ", points, " of ", req.transfer_id()), [this, req]() {
                         auto got = ledger_.Reverse(caller_, req);
                         if (!got.ok()) return got.status().ToString();
                         if (got->reversed_points() != req.points()) {
                           return absl::StrCat("reversed ", got->reversed_points());
                         }
                         return std::string();
                       },
                       [this, d, points]() {
                         members_.at(redeems_[d].member).posted += points;
                         redeems_[d].reversed += points;
                       }});
    }
    const int64_t available = members_.at(member).available();
    if (available > 0) {
      v1::AuthorizeRequest req;
      req.set_idempotency_key(NextKey());
      req.set_member_id(member);
      req.set_partner_id("food");
      req.set_points(Uniform(1, available));
      req.set_ttl_seconds(kHoldTtlSeconds);
      auto hold = std::make_shared<v1::Hold>();
      calls.push_back({absl::StrCat("burst Authorize ", req.points()), [this, req, hold]() {
                         auto got = ledger_.Authorize(caller_, req);
                         if (!got.ok()) return got.status().ToString();
                         *hold = got->hold();
                         return std::string();
                       },
                       [this, member, req, hold]() {
                         holds_.push_back({hold->hold_id(), hold->hold_transfer_id(), member, req.points(),
                                           HoldState::kPending, 0});
                         members_.at(member).held += req.points();
                       }});
    }

    std::vector<std::string> errors(calls.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < calls.size(); ++i) {
      threads.emplace_back([&calls, &errors, i] { errors[i] = calls[i].send(); });
    }
    for (auto& th : threads) th.join();
    submitted_ += static_cast<int64_t>(calls.size());
    ++stats_[absl::StrCat("Burst:", calls.size())];
    for (size_t i = 0; i < calls.size(); ++i) {
      if (errors[i].empty()) {
        calls[i].apply();
      } else {
        Fail(absl::StrCat(calls[i].what, " for ", member, ": ", errors[i]));
      }
    }
  }

  Ledger& ledger_;
  const std::string prefix_;
  const uint64_t seed_;
  std::mt19937_64 rng_;
  Caller caller_;
  std::vector<std::string> member_ids_;
  std::map<std::string, ModelMember> members_;
  std::vector<ModelHold> holds_;
  std::vector<ModelRedeem> redeems_;
  std::vector<Sent> sent_;
  std::map<std::string, int> stats_;
  int64_t keys_ = 0;
  int64_t submitted_ = 0;
  int op_ = 0;
  int failures_ = 0;
};

TEST(LedgerModel, RandomOperationsMatchTheModel) {
  const uint64_t seed = Seed();
  const int ops = static_cast<int>(EnvInt("LEDGER_MODEL_OPS", 2000));
  std::cout << "LEDGER_MODEL_SEED=" << seed << " LEDGER_MODEL_OPS=" << ops << std::endl;
  RecordProperty("seed", std::to_string(seed));
  auto t = testing::MakeLedger();
  ASSERT_NE(t, nullptr);
  ModelRun run(*t->ledger, "s",
               {"m-1", "m-2", "m-3", "m-4", "m-5", "m-6", "m-7", "gold-1"}, seed);
  const absl::Time start = absl::Now();
  run.Run(ops);
  std::cout << run.Stats() << " in " << absl::FormatDuration(absl::Now() - start) << std::endl;
  run.CheckLedger();
  EXPECT_EQ(testing::CheckInvariants(*t), "") << "seed " << seed;
}

// Four callers at once, each on its own members with its own model: the
// batch writer groups their requests, and every answer must still be the one
// its model predicts.
TEST(LedgerModel, ConcurrentCallersEachMatchTheirModel) {
  const uint64_t seed = Seed();
  const int ops = static_cast<int>(EnvInt("LEDGER_MODEL_THREAD_OPS", 400));
  constexpr int kThreads = 4;
  std::cout << "LEDGER_MODEL_SEED=" << seed << " LEDGER_MODEL_THREAD_OPS=" << ops << std::endl;
  RecordProperty("seed", std::to_string(seed));
  auto t = testing::MakeLedger();
  ASSERT_NE(t, nullptr);
  std::vector<std::unique_ptr<ModelRun>> runs;
  for (int i = 0; i < kThreads; ++i) {
    std::vector<std::string> members;
    for (int j = 1; j <= 4; ++j) members.push_back(absl::StrCat("c", i, "-m", j));
    runs.push_back(std::make_unique<ModelRun>(*t->ledger, absl::StrCat("c", i), members,
                                              seed + static_cast<uint64_t>(i) + 1));
  }
  const absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  for (auto& run : runs) threads.emplace_back([&run, ops] { run->Run(ops); });
  for (auto& th : threads) th.join();
  const absl::Duration took = absl::Now() - start;
  int64_t submitted = 0;
  for (auto& run : runs) {
    std::cout << run->Stats() << std::endl;
    submitted += run->submitted();
    run->CheckLedger();
  }
  const int64_t batches = t->writer->batches_committed();
  std::cout << submitted << " requests in " << batches << " batches, "
            << absl::FormatDuration(took) << std::endl;
  EXPECT_LT(batches, submitted) << "no two requests were ever committed together";
  EXPECT_EQ(testing::CheckInvariants(*t), "") << "seed " << seed;
}

}  // namespace
}  // namespace loyalty::ledger
