// loyalty-ledger-load: a closed-loop load generator for the ledger service.
//
// N "callers" each keep exactly one operation in flight and issue the next
// one as soon as the previous completes. The calls are asynchronous (one
// grpc::CompletionQueue per worker thread), so 64 callers need no 64 threads.
//
// Scenarios:
//   earn      Earn at a partner drawn uniformly from --partners, a member
//             drawn uniformly from --members, EUR 10.00..200.00, one line.
//   earn_hot  The same, every earn at partner 1 (one hot issuance account).
//   redeem    Setup (not measured): one EUR 500.00 earn per member. Then the
//             measured operation is Authorize(1..5 points, ttl 60 s) followed,
//             on success, by Capture of the whole hold.
//
// Only operations that complete inside the measured window (after warm-up,
// before the end) count towards throughput, latency and status counts.
// Latency is taken from a log-linear histogram (relative error < 1.6%).
//
// Exit codes: 0 ok; 1 more than 1% of operations failed (in redeem,
// FAILED_PRECONDITION "not enough points" does not count as a failure), or
// none completed; 2 bad flags; 3 the target cannot be reached.
#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/alarm.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "loyalty/ledger/v1/ledger.grpc.pb.h"

namespace loyalty::load {
namespace {

namespace ledgerpb = ::loyalty::ledger::v1;
using Clock = std::chrono::steady_clock;

constexpr int kMaxDurationS = 600;
constexpr int kNumCodes = 17;  // grpc::StatusCode 0..16

const char* const kUsage = R"(usage: loyalty-ledger-load [--flag=value ...]

Closed-loop load generator for the ledger service (async gRPC client).

  --target=HOST:PORT     ledger address (default 127.0.0.1:7102)
  --scenario=NAME        earn | earn_hot | redeem | quote (default earn);
                         quote sends the earn basket to QuoteEarn: the
                         service's ceiling without the writer and database
  --callers=N            operations kept in flight (default 64, max 10000)
  --duration_s=N         measured seconds after warm-up (default 10, max 600)
  --warmup_s=N           seconds of load before measuring (default 2, max 600)
  --members=N            member ids PREFIX1..PREFIXN (default 10000)
  --partners=N           partner ids PREFIX1..PREFIXN (default 5)
  --partner_prefix=S     (default bench-p)
  --member_prefix=S      (default bench-m)
  --api_key=KEY          if set, sends "authorization: Bearer KEY"
  --run_id=ID            goes into idempotency keys and receipt references,
                         [A-Za-z0-9_-]{1,24}; default random
  --deadline_ms=N        per-RPC deadline (default 5000)
  --threads=N            worker threads, one completion queue and one
                         connection each (default 1)
  --max_ops=N            also stop after N operations started; 0 = no limit
  --setup=BOOL           redeem: run the earn-per-member setup (default true)
  --setup_callers=N      redeem setup concurrency (default 16)
  --setup_amount_minor=N redeem setup earn per member, EUR cents (default 50000)
  --json                 also print one JSON line with the results
  --help                 this text

An operation is one Earn (earn, earn_hot) or Authorize+Capture (redeem).
Exit: 0 ok; 1 more than 1% of operations failed (redeem: FAILED_PRECONDITION
excluded) or none completed; 2 bad flags; 3 target unreachable.
)";

const char* CodeName(int code) {
  static const char* const kNames[kNumCodes] = {
      "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
      "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
      "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
      "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  return code >= 0 && code < kNumCodes ? kNames[code] : "INVALID_CODE";
}

int CodeIndex(grpc::StatusCode code) {
  const int c = static_cast<int>(code);
  return c >= 0 && c < kNumCodes ? c : static_cast<int>(grpc::StatusCode::UNKNOWN);
}

// ---------------------------------------------------------------------------
// Flags
// ---------------------------------------------------------------------------

enum class Scenario { kEarn, kEarnHot, kRedeem, kQuote };

const char* ScenarioName(Scenario s) {
  switch (s) {
    case Scenario::kEarn: return "earn";
    case Scenario::kEarnHot: return "earn_hot";
    case Scenario::kRedeem: return "redeem";
    case Scenario::kQuote: return "quote";
  }
  return "?";
}

struct Options {
  std::string target = "127.0.0.1:7102";
  Scenario scenario = Scenario::kEarn;
  int callers = 64;
  int duration_s = 10;
  int warmup_s = 2;
  int members = 10000;
  int partners = 5;
  std::string partner_prefix = "bench-p";
  std::string member_prefix = "bench-m";
  std::string api_key;
  std::string run_id;
  int deadline_ms = 5000;
  int threads = 1;
  int64_t max_ops = 0;
  bool setup = true;
  int setup_callers = 16;
  int64_t setup_amount_minor = 50000;
  bool json = false;
  bool help = false;
};

bool ValidId(absl::string_view s, size_t max_len) {
  if (s.empty() || s.size() > max_len) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

absl::Status ParseInt(absl::string_view name, absl::string_view value, int64_t lo, int64_t hi,
                      int64_t* out) {
  int64_t v = 0;
  if (!absl::SimpleAtoi(value, &v) || v < lo || v > hi) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, " must be an integer in [", lo, ", ", hi, "], got \"", value,
                     "\""));
  }
  *out = v;
  return absl::OkStatus();
}

absl::Status ParseInt32(absl::string_view name, absl::string_view value, int lo, int hi,
                        int* out) {
  int64_t v = 0;
  absl::Status s = ParseInt(name, value, lo, hi, &v);
  if (s.ok()) *out = static_cast<int>(v);
  return s;
}

absl::Status ParseBool(absl::string_view name, absl::string_view value, bool* out) {
  if (value == "true" || value == "1" || value == "yes") {
    *out = true;
  } else if (value == "false" || value == "0" || value == "no") {
    *out = false;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("--", name, " must be true or false"));
  }
  return absl::OkStatus();
}

std::string RandomRunId() {
  std::random_device rd;
  const uint64_t a = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  const uint64_t t = static_cast<uint64_t>(
      std::chrono::system_clock::now().time_since_epoch().count());
  return absl::StrFormat("%012x", (a ^ (t * 0x9E3779B97F4A7C15ULL)) & 0xFFFFFFFFFFFFULL);
}

absl::StatusOr<Options> ParseFlags(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (!absl::StartsWith(arg, "--")) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument \"", arg, "\""));
    }
    arg.remove_prefix(2);
    absl::string_view name = arg;
    absl::string_view value;
    bool has_value = false;
    if (size_t eq = arg.find('='); eq != absl::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    if (name == "help" || name == "h") {
      o.help = true;
      continue;
    }
    if (name == "json") {
      if (!has_value) {
        o.json = true;
        continue;
      }
      if (absl::Status s = ParseBool(name, value, &o.json); !s.ok()) return s;
      continue;
    }
    if (!has_value) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value (--", name,
                                                     "=VALUE)"));
    }
    absl::Status s;
    if (name == "target") {
      if (value.empty()) s = absl::InvalidArgumentError("--target is empty");
      o.target = std::string(value);
    } else if (name == "scenario") {
      if (value == "earn") {
        o.scenario = Scenario::kEarn;
      } else if (value == "earn_hot") {
        o.scenario = Scenario::kEarnHot;
      } else if (value == "redeem") {
        o.scenario = Scenario::kRedeem;
      } else if (value == "quote") {
        o.scenario = Scenario::kQuote;
      } else {
        s = absl::InvalidArgumentError(
            absl::StrCat("--scenario must be earn, earn_hot, redeem or quote, got \"", value, "\""));
      }
    } else if (name == "callers") {
      s = ParseInt32(name, value, 1, 10000, &o.callers);
    } else if (name == "duration_s") {
      s = ParseInt32(name, value, 1, kMaxDurationS, &o.duration_s);
    } else if (name == "warmup_s") {
      s = ParseInt32(name, value, 0, kMaxDurationS, &o.warmup_s);
    } else if (name == "members") {
      s = ParseInt32(name, value, 1, 100000000, &o.members);
    } else if (name == "partners") {
      s = ParseInt32(name, value, 1, 100000, &o.partners);
    } else if (name == "partner_prefix") {
      if (!ValidId(value, 40)) {
        s = absl::InvalidArgumentError("--partner_prefix must be [A-Za-z0-9_-]{1,40}");
      }
      o.partner_prefix = std::string(value);
    } else if (name == "member_prefix") {
      if (!ValidId(value, 40)) {
        s = absl::InvalidArgumentError("--member_prefix must be [A-Za-z0-9_-]{1,40}");
      }
      o.member_prefix = std::string(value);
    } else if (name == "api_key") {
      o.api_key = std::string(value);
    } else if (name == "run_id") {
      if (!ValidId(value, 24)) {
        s = absl::InvalidArgumentError("--run_id must be [A-Za-z0-9_-]{1,24}");
      }
      o.run_id = std::string(value);
    } else if (name == "deadline_ms") {
      s = ParseInt32(name, value, 1, 600000, &o.deadline_ms);
    } else if (name == "threads") {
      s = ParseInt32(name, value, 1, 64, &o.threads);
    } else if (name == "max_ops") {
      s = ParseInt(name, value, 0, int64_t{1} << 40, &o.max_ops);
    } else if (name == "setup") {
      s = ParseBool(name, value, &o.setup);
    } else if (name == "setup_callers") {
      s = ParseInt32(name, value, 1, 1000, &o.setup_callers);
    } else if (name == "setup_amount_minor") {
      s = ParseInt(name, value, 1, int64_t{1} << 40, &o.setup_amount_minor);
    } else {
      s = absl::InvalidArgumentError(absl::StrCat("unknown flag --", name, " (see --help)"));
    }
    if (!s.ok()) return s;
  }
  if (o.run_id.empty()) o.run_id = RandomRunId();
  return o;
}

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------

// Log-linear histogram of microseconds: exact below 128, then 64 buckets per
// power of two (relative bucket width <= 1/64).
class Histogram {
 public:
  static constexpr int kSubBits = 7;
  static constexpr int kBuckets = (64 << (kSubBits - 1)) + (1 << kSubBits);

  void Add(uint64_t us) {
    ++buckets_[Index(us)];
    ++count_;
    max_ = std::max(max_, us);
  }

  void Merge(const Histogram& other) {
    for (int i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
    count_ += other.count_;
    max_ = std::max(max_, other.max_);
  }

  int64_t count() const { return count_; }
  uint64_t max() const { return max_; }

  // The q-quantile (0 < q <= 1), as the upper bound of its bucket, capped by
  // the maximum seen. 0 when empty.
  uint64_t Quantile(double q) const {
    if (count_ == 0) return 0;
    int64_t rank = static_cast<int64_t>(q * static_cast<double>(count_) + 0.999999);
    rank = std::clamp<int64_t>(rank, 1, count_);
    int64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += buckets_[i];
      if (seen >= rank) return std::min(UpperBound(i), max_);
    }
    return max_;
  }

 private:
  static int Index(uint64_t v) {
    if (v < (uint64_t{1} << kSubBits)) return static_cast<int>(v);
    const int shift = std::bit_width(v) - kSubBits;
    return (shift << (kSubBits - 1)) + static_cast<int>(v >> shift);
  }
  static uint64_t UpperBound(int idx) {
    if (idx < (1 << kSubBits)) return static_cast<uint64_t>(idx);
    const int shift = (idx >> (kSubBits - 1)) - 1;
    const uint64_t mantissa = static_cast<uint64_t>(idx - (shift << (kSubBits - 1)));
    return ((mantissa + 1) << shift) - 1;
  }

  std::array<int64_t, kBuckets> buckets_{};
  int64_t count_ = 0;
  uint64_t max_ = 0;
};

enum Method { kEarnRpc = 0, kAuthorizeRpc = 1, kCaptureRpc = 2, kQuoteRpc = 3, kNumMethods = 4 };
const char* const kMethodNames[kNumMethods] = {"Earn", "Authorize", "Capture", "QuoteEarn"};

struct Stats {
  Histogram ok_latency;      // operations that ended OK
  Histogram failed_latency;  // operations that ended with an error
  std::array<int64_t, kNumCodes> op_codes{};  // final code of each operation
  std::array<std::array<int64_t, kNumCodes>, kNumMethods> rpc_codes{};
  std::map<int, std::string> first_message;   // first error text per code

  int64_t ops() const { return ok_latency.count() + failed_latency.count(); }

  void Merge(const Stats& o) {
    ok_latency.Merge(o.ok_latency);
    failed_latency.Merge(o.failed_latency);
    for (int c = 0; c < kNumCodes; ++c) {
      op_codes[c] += o.op_codes[c];
      for (int m = 0; m < kNumMethods; ++m) rpc_codes[m][c] += o.rpc_codes[m][c];
    }
    for (const auto& [code, msg] : o.first_message) first_message.emplace(code, msg);
  }
};

// ---------------------------------------------------------------------------
// Workers and callers
// ---------------------------------------------------------------------------

// What a phase does and when it stops.
struct Phase {
  bool setup = false;               // one earn per member, not timed
  Clock::time_point measure_start;  // ops completing in [start, end) count
  Clock::time_point measure_end;
  Clock::time_point stop_issuing;   // no new op starts after this
  std::atomic<int64_t>* next_member = nullptr;  // setup: member cursor
  std::atomic<int64_t>* ops_started = nullptr;  // for --max_ops
};

class Worker;

// One closed-loop caller: at most one RPC (or back-off alarm) outstanding, so
// the caller itself is the completion-queue tag.
struct Caller {
  enum class Stage { kIdle, kEarn, kAuthorize, kCapture, kQuote, kBackoff };

  Worker* worker = nullptr;
  int index = 0;
  uint64_t seq = 0;
  Stage stage = Stage::kIdle;
  Clock::time_point op_start;
  std::string op_key;  // idempotency key prefix of the current operation

  std::unique_ptr<grpc::ClientContext> ctx;
  grpc::Status status;
  ledgerpb::EarnRequest earn_req;
  ledgerpb::EarnResponse earn_resp;
  ledgerpb::AuthorizeRequest auth_req;
  ledgerpb::AuthorizeResponse auth_resp;
  ledgerpb::CaptureRequest cap_req;
  ledgerpb::CaptureResponse cap_resp;
  ledgerpb::QuoteEarnRequest quote_req;
  ledgerpb::QuoteEarnResponse quote_resp;
  std::unique_ptr<grpc::ClientAsyncResponseReader<ledgerpb::EarnResponse>> earn_rpc;
  std::unique_ptr<grpc::ClientAsyncResponseReader<ledgerpb::QuoteEarnResponse>> quote_rpc;
  std::unique_ptr<grpc::ClientAsyncResponseReader<ledgerpb::AuthorizeResponse>> auth_rpc;
  std::unique_ptr<grpc::ClientAsyncResponseReader<ledgerpb::CaptureResponse>> cap_rpc;
  grpc::Alarm alarm;
};

class Worker {
 public:
  Worker(const Options& options, int index, std::shared_ptr<grpc::Channel> channel)
      : options_(options),
        index_(index),
        stub_(ledgerpb::LedgerService::NewStub(channel)),
        rng_(std::random_device{}() ^ (static_cast<uint64_t>(index) * 0x9E3779B97F4A7C15ULL)) {}

  // Runs `callers` closed-loop callers until the phase ends; blocks.
  void Run(const Phase& phase, int callers) {
    phase_ = &phase;
    stats_ = Stats{};
    cq_ = std::make_unique<grpc::CompletionQueue>();
    callers_.clear();
    callers_.reserve(static_cast<size_t>(callers));
    for (int i = 0; i < callers; ++i) {
      auto c = std::make_unique<Caller>();
      c->worker = this;
      c->index = i;
      callers_.push_back(std::move(c));
    }
    active_ = callers;
    if (active_ == 0) {
      cq_->Shutdown();
    } else {
      for (auto& c : callers_) StartNext(c.get());
    }
    void* tag = nullptr;
    bool ok = false;
    while (cq_->Next(&tag, &ok)) OnEvent(static_cast<Caller*>(tag), ok);
    callers_.clear();
    cq_.reset();
    ++phase_number_;
  }

  const Stats& stats() const { return stats_; }

 private:
  std::string PartnerId(int n) const { return absl::StrCat(options_.partner_prefix, n); }
  std::string MemberId(int64_t n) const { return absl::StrCat(options_.member_prefix, n); }

  int64_t Uniform(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }

  std::unique_ptr<grpc::ClientContext> NewContext() const {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::milliseconds(options_.deadline_ms));
    if (!options_.api_key.empty()) {
      ctx->AddMetadata("authorization", absl::StrCat("Bearer ", options_.api_key));
    }
    return ctx;
  }

  // Starts the caller's next operation, or retires the caller.
  void StartNext(Caller* c) {
    c->stage = Caller::Stage::kIdle;
    std::optional<int64_t> setup_member;
    if (phase_->setup) {
      const int64_t m = phase_->next_member->fetch_add(1) + 1;
      if (m <= options_.members) setup_member = m;
    }
    const bool more = phase_->setup
                          ? setup_member.has_value()
                          : (Clock::now() < phase_->stop_issuing &&
                             (options_.max_ops == 0 ||
                              phase_->ops_started->fetch_add(1) < options_.max_ops));
    if (!more) {
      if (--active_ == 0) cq_->Shutdown();
      return;
    }
    ++c->seq;
    // p<phase>-w<worker>-c<caller>-<seq>: unique within the run.
    c->op_key = absl::StrCat(options_.run_id, "-", phase_->setup ? "s" : "m", phase_number_,
                             "-", index_, "-", c->index, "-", c->seq);
    c->op_start = Clock::now();
    if (phase_->setup) {
      const int partner = static_cast<int>((*setup_member - 1) % options_.partners) + 1;
      IssueEarn(c, partner, *setup_member, options_.setup_amount_minor);
    } else if (options_.scenario == Scenario::kRedeem) {
      IssueAuthorize(c);
    } else if (options_.scenario == Scenario::kQuote) {
      IssueQuote(c, static_cast<int>(Uniform(1, options_.partners)), Uniform(1, options_.members),
                 Uniform(1000, 20000));
    } else {
      const int partner = options_.scenario == Scenario::kEarnHot
                              ? 1
                              : static_cast<int>(Uniform(1, options_.partners));
      IssueEarn(c, partner, Uniform(1, options_.members), Uniform(1000, 20000));
    }
  }

  // The benchmark's basket: one line of pet food, in EUR.
  static void Basket(int64_t amount_minor, loyalty::common::v1::Money* amount,
                     google::protobuf::RepeatedPtrField<ledgerpb::PurchaseLine>* lines) {
    amount->set_amount_minor(amount_minor);
    amount->set_currency("EUR");
    ledgerpb::PurchaseLine* line = lines->Add();
    line->set_sku("bench-sku");
    line->set_category("food");
    line->set_quantity(1);
    *line->mutable_amount() = *amount;
  }

  void IssueEarn(Caller* c, int partner, int64_t member, int64_t amount_minor) {
    c->stage = Caller::Stage::kEarn;
    ledgerpb::EarnRequest& r = c->earn_req;
    r.Clear();
    r.set_idempotency_key(absl::StrCat("ll-", c->op_key));
    r.set_partner_id(PartnerId(partner));
    r.set_member_id(MemberId(member));
    Basket(amount_minor, r.mutable_amount(), r.mutable_lines());
    r.set_receipt_reference(absl::StrCat("rcpt-", c->op_key));
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(now);
    r.mutable_occurred_at()->set_seconds(secs.count());
    r.mutable_occurred_at()->set_nanos(static_cast<int32_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(now - secs).count()));
    c->earn_resp.Clear();
    c->ctx = NewContext();
    c->earn_rpc = stub_->PrepareAsyncEarn(c->ctx.get(), r, cq_.get());
    c->earn_rpc->StartCall();
    c->earn_rpc->Finish(&c->earn_resp, &c->status, c);
  }

  // The same basket as IssueEarn, to QuoteEarn (no key, nothing posted).
  void IssueQuote(Caller* c, int partner, int64_t member, int64_t amount_minor) {
    c->stage = Caller::Stage::kQuote;
    ledgerpb::QuoteEarnRequest& r = c->quote_req;
    r.Clear();
    r.set_partner_id(PartnerId(partner));
    r.set_member_id(MemberId(member));
    Basket(amount_minor, r.mutable_amount(), r.mutable_lines());
    c->quote_resp.Clear();
    c->ctx = NewContext();
    c->quote_rpc = stub_->PrepareAsyncQuoteEarn(c->ctx.get(), r, cq_.get());
    c->quote_rpc->StartCall();
    c->quote_rpc->Finish(&c->quote_resp, &c->status, c);
  }

  void IssueAuthorize(Caller* c) {
    c->stage = Caller::Stage::kAuthorize;
    ledgerpb::AuthorizeRequest& r = c->auth_req;
    r.Clear();
    r.set_idempotency_key(absl::StrCat("ll-", c->op_key, "-a"));
    r.set_member_id(MemberId(Uniform(1, options_.members)));
    r.set_partner_id(PartnerId(static_cast<int>(Uniform(1, options_.partners))));
    r.set_points(Uniform(1, 5));
    r.set_ttl_seconds(60);
    r.set_reference(absl::StrCat("till-", c->op_key));
    c->auth_resp.Clear();
    c->ctx = NewContext();
    c->auth_rpc = stub_->PrepareAsyncAuthorize(c->ctx.get(), r, cq_.get());
    c->auth_rpc->StartCall();
    c->auth_rpc->Finish(&c->auth_resp, &c->status, c);
  }

  void IssueCapture(Caller* c, const std::string& hold_id) {
    c->stage = Caller::Stage::kCapture;
    ledgerpb::CaptureRequest& r = c->cap_req;
    r.Clear();
    r.set_idempotency_key(absl::StrCat("ll-", c->op_key, "-c"));
    r.set_hold_id(hold_id);
    r.set_points(0);  // the whole hold
    r.set_reference(absl::StrCat("rcpt-", c->op_key));
    c->cap_resp.Clear();
    c->ctx = NewContext();
    c->cap_rpc = stub_->PrepareAsyncCapture(c->ctx.get(), r, cq_.get());
    c->cap_rpc->StartCall();
    c->cap_rpc->Finish(&c->cap_resp, &c->status, c);
  }

  void CountRpc(Method m, const grpc::Status& s) {
    const int code = CodeIndex(s.error_code());
    ++stats_.rpc_codes[m][code];
    if (code != 0 && !stats_.first_message.count(code)) {
      stats_.first_message.emplace(code,
                                   absl::StrCat(kMethodNames[m], ": ", s.error_message()));
    }
  }

  void OnEvent(Caller* c, bool ok) {
    switch (c->stage) {
      case Caller::Stage::kEarn:
        CountRpcIfMeasured(kEarnRpc, c->status);
        FinishOp(c, c->status);
        return;
      case Caller::Stage::kAuthorize:
        CountRpcIfMeasured(kAuthorizeRpc, c->status);
        if (c->status.ok() && !c->auth_resp.hold().hold_id().empty()) {
          IssueCapture(c, c->auth_resp.hold().hold_id());
          return;
        }
        if (c->status.ok()) {
          FinishOp(c, grpc::Status(grpc::StatusCode::INTERNAL,
                                   "Authorize answered OK without a hold_id"));
          return;
        }
        FinishOp(c, c->status);
        return;
      case Caller::Stage::kCapture:
        CountRpcIfMeasured(kCaptureRpc, c->status);
        FinishOp(c, c->status);
        return;
      case Caller::Stage::kQuote:
        CountRpcIfMeasured(kQuoteRpc, c->status);
        FinishOp(c, c->status);
        return;
      case Caller::Stage::kBackoff:
        (void)ok;
        StartNext(c);
        return;
      case Caller::Stage::kIdle:
        return;
    }
  }

  // RPC counts follow the same window as operations: an RPC counts if it
  // completed inside the measured window (setup RPCs always count, into the
  // setup phase's own statistics).
  void CountRpcIfMeasured(Method m, const grpc::Status& s) {
    if (InWindow(Clock::now())) CountRpc(m, s);
  }

  bool InWindow(Clock::time_point t) const {
    return phase_->setup || (t >= phase_->measure_start && t < phase_->measure_end);
  }

  void FinishOp(Caller* c, const grpc::Status& s) {
    const Clock::time_point end = Clock::now();
    if (InWindow(end)) {
      const auto us = std::chrono::duration_cast<std::chrono::microseconds>(end - c->op_start);
      const uint64_t lat = static_cast<uint64_t>(std::max<int64_t>(0, us.count()));
      const int code = CodeIndex(s.error_code());
      ++stats_.op_codes[code];
      if (s.ok()) {
        stats_.ok_latency.Add(lat);
      } else {
        stats_.failed_latency.Add(lat);
        if (!stats_.first_message.count(code)) {
          stats_.first_message.emplace(code, s.error_message());
        }
      }
    }
    c->ctx.reset();
    // A server or database that is down answers at once; do not spin on it.
    if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
      c->stage = Caller::Stage::kBackoff;
      c->alarm.Set(cq_.get(), std::chrono::system_clock::now() + std::chrono::milliseconds(10),
                   c);
      return;
    }
    StartNext(c);
  }

  const Options& options_;
  const int index_;
  std::unique_ptr<ledgerpb::LedgerService::Stub> stub_;
  std::mt19937_64 rng_;
  const Phase* phase_ = nullptr;
  int phase_number_ = 0;
  std::unique_ptr<grpc::CompletionQueue> cq_;
  std::vector<std::unique_ptr<Caller>> callers_;
  int active_ = 0;
  Stats stats_;
};

// Runs a phase on all workers, spreading `callers` over them; returns the
// merged statistics.
Stats RunPhase(std::vector<std::unique_ptr<Worker>>& workers, const Phase& phase, int callers) {
  std::vector<std::thread> threads;
  const int n = static_cast<int>(workers.size());
  for (int i = 0; i < n; ++i) {
    const int share = callers / n + (i < callers % n ? 1 : 0);
    threads.emplace_back([&workers, &phase, i, share] { workers[static_cast<size_t>(i)]->Run(phase, share); });
  }
  for (auto& t : threads) t.join();
  Stats total;
  for (auto& w : workers) total.Merge(w->stats());
  return total;
}

// ---------------------------------------------------------------------------
// Reporting
// ---------------------------------------------------------------------------

std::string Ms(uint64_t us) { return absl::StrFormat("%.2f", static_cast<double>(us) / 1000.0); }

std::string CodeCounts(const std::array<int64_t, kNumCodes>& codes, bool include_ok) {
  std::vector<std::string> parts;
  for (int c = include_ok ? 0 : 1; c < kNumCodes; ++c) {
    if (codes[c] != 0) parts.push_back(absl::StrCat(CodeName(c), "=", codes[c]));
  }
  return parts.empty() ? "none" : absl::StrJoin(parts, " ");
}

std::string JsonEscape(absl::string_view s) {
  std::string out;
  for (char ch : s) {
    const unsigned char u = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (u < 0x20) {
      out += absl::StrFormat("\\u%04x", u);
    } else {
      out += ch;
    }
  }
  return out;
}

int Main(int argc, char** argv) {
  absl::StatusOr<Options> parsed = ParseFlags(argc, argv);
  if (!parsed.ok()) {
    std::fprintf(stderr, "loyalty-ledger-load: %s\n",
                 std::string(parsed.status().message()).c_str());
    return 2;
  }
  const Options& o = *parsed;
  if (o.help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  // Debian's Abseil is built with deadlock detection on, which costs a graph
  // update per mutex in gRPC's hot path; the generator should stay cheap.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  // One channel (and so one HTTP/2 connection) per worker thread.
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < o.threads; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("loyalty.load.channel_index", i);  // distinct args: own connection
    // No transparent retries: every attempt the server sees is one we count.
    args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
    auto channel = grpc::CreateCustomChannel(o.target, grpc::InsecureChannelCredentials(), args);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) {
      std::fprintf(stderr, "loyalty-ledger-load: cannot connect to %s within 5 s\n",
                   o.target.c_str());
      return 3;
    }
    workers.push_back(std::make_unique<Worker>(o, i, channel));
  }

  std::printf("ledger load: scenario=%s target=%s callers=%d threads=%d run_id=%s\n",
              ScenarioName(o.scenario), o.target.c_str(), o.callers, o.threads,
              o.run_id.c_str());
  std::printf("  members=%d (%s1..)  partners=%d (%s1..)  deadline=%d ms\n", o.members,
              o.member_prefix.c_str(), o.partners, o.partner_prefix.c_str(), o.deadline_ms);
  std::fflush(stdout);

  std::atomic<int64_t> next_member{0};
  std::atomic<int64_t> ops_started{0};
  Stats setup_stats;
  double setup_s = 0;
  if (o.scenario == Scenario::kRedeem && o.setup) {
    Phase setup;
    setup.setup = true;
    setup.next_member = &next_member;
    setup.ops_started = &ops_started;
    const int setup_callers = std::min(o.setup_callers, o.members);
    const auto t0 = Clock::now();
    setup_stats = RunPhase(workers, setup, setup_callers);
    setup_s = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("  setup: one earn of %s EUR cents for each of %d members in %.1f s, "
                "codes: %s\n",
                absl::StrCat(o.setup_amount_minor).c_str(), o.members, setup_s,
                CodeCounts(setup_stats.op_codes, true).c_str());
    if (setup_stats.op_codes[0] != o.members) {
      std::printf("  setup: WARNING %" PRId64 " of %d setup earns failed; first errors:\n",
                  setup_stats.ops() - setup_stats.op_codes[0], o.members);
      for (const auto& [code, msg] : setup_stats.first_message) {
        std::printf("    %s: %s\n", CodeName(code), msg.c_str());
      }
    }
    std::fflush(stdout);
  }

  Phase run;
  const auto start = Clock::now();
  run.measure_start = start + std::chrono::seconds(o.warmup_s);
  run.measure_end = run.measure_start + std::chrono::seconds(o.duration_s);
  run.stop_issuing = run.measure_end;
  run.ops_started = &ops_started;
  ops_started = 0;
  Stats s = RunPhase(workers, run, o.callers);
  const double wall_s = std::chrono::duration<double>(Clock::now() - start).count();

  // With --max_ops the load may stop before the window ends: divide by the
  // part of the window that actually had load.
  const double measured_s = std::min<double>(
      o.duration_s,
      std::max(0.0, wall_s - o.warmup_s));
  const int64_t ops = s.ops();
  const int64_t ok = s.op_codes[0];
  const int64_t fp = s.op_codes[static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION)];
  const int64_t failed = ops - ok;
  const int64_t counted_failures = o.scenario == Scenario::kRedeem ? failed - fp : failed;
  const double ops_per_s = measured_s > 0 ? static_cast<double>(ops) / measured_s : 0;
  const double ok_per_s = measured_s > 0 ? static_cast<double>(ok) / measured_s : 0;
  const Histogram& h = s.ok_latency;

  std::printf("  window: %.2f s measured after %d s warm-up (wall %.1f s)\n", measured_s,
              o.warmup_s, wall_s);
  std::printf("  ops: %" PRId64 " completed, %" PRId64 " ok, %" PRId64 " failed\n", ops, ok,
              failed);
  std::printf("  throughput: %.1f ops/s (ok: %.1f ops/s)\n", ops_per_s, ok_per_s);
  if (h.count() > 0) {
    std::printf("  latency of ok ops (ms): p50 %s  p95 %s  p99 %s  max %s\n",
                Ms(h.Quantile(0.50)).c_str(), Ms(h.Quantile(0.95)).c_str(),
                Ms(h.Quantile(0.99)).c_str(), Ms(h.max()).c_str());
  } else {
    std::printf("  latency of ok ops (ms): n/a (no successful op)\n");
  }
  if (s.failed_latency.count() > 0) {
    std::printf("  latency of failed ops (ms): p50 %s  p99 %s  max %s\n",
                Ms(s.failed_latency.Quantile(0.50)).c_str(),
                Ms(s.failed_latency.Quantile(0.99)).c_str(), Ms(s.failed_latency.max()).c_str());
  }
  std::printf("  non-OK codes: %s\n", CodeCounts(s.op_codes, false).c_str());
  if (o.scenario == Scenario::kRedeem) {
    std::printf("  not enough points (FAILED_PRECONDITION): %" PRId64 "\n", fp);
    for (int m : {kAuthorizeRpc, kCaptureRpc}) {
      std::printf("  %s rpcs: %s\n", kMethodNames[m], CodeCounts(s.rpc_codes[m], true).c_str());
    }
  }
  for (const auto& [code, msg] : s.first_message) {
    std::printf("  first %s: %s\n", CodeName(code), msg.c_str());
  }

  const double failure_ratio =
      ops > 0 ? static_cast<double>(counted_failures) / static_cast<double>(ops) : 1.0;
  const bool pass = ops > 0 && failure_ratio <= 0.01;
  std::printf("  result: %s (%.2f%% of ops failed%s)\n", pass ? "PASS" : "FAIL",
              100.0 * failure_ratio,
              o.scenario == Scenario::kRedeem ? ", FAILED_PRECONDITION excluded" : "");

  if (o.json) {
    std::vector<std::string> codes;
    for (int c = 1; c < kNumCodes; ++c) {
      if (s.op_codes[c] != 0) codes.push_back(absl::StrCat("\"", CodeName(c), "\":", s.op_codes[c]));
    }
    std::vector<std::string> setup_codes;
    for (int c = 0; c < kNumCodes; ++c) {
      if (setup_stats.op_codes[c] != 0) {
        setup_codes.push_back(absl::StrCat("\"", CodeName(c), "\":", setup_stats.op_codes[c]));
      }
    }
    auto ms_or_null = [&h](double q) {
      return h.count() > 0 ? Ms(h.Quantile(q)) : std::string("null");
    };
    std::string first;
    for (const auto& [code, msg] : s.first_message) {
      if (!first.empty()) first += ",";
      absl::StrAppend(&first, "\"", CodeName(code), "\":\"", JsonEscape(msg), "\"");
    }
    std::printf(
        "{\"scenario\":\"%s\",\"target\":\"%s\",\"run_id\":\"%s\",\"callers\":%d,"
        "\"threads\":%d,\"duration_s\":%.3f,\"warmup_s\":%d,\"ops\":%" PRId64
        ",\"ok\":%" PRId64 ",\"failed\":%" PRId64 ",\"failed_precondition\":%" PRId64
        ",\"ops_per_s\":%.1f,\"ok_per_s\":%.1f,\"p50_ms\":%s,\"p95_ms\":%s,\"p99_ms\":%s,"
        "\"max_ms\":%s,\"errors\":{%s},\"first_errors\":{%s},\"setup_s\":%.2f,"
        "\"setup_codes\":{%s},\"pass\":%s}\n",
        ScenarioName(o.scenario), JsonEscape(o.target).c_str(), o.run_id.c_str(), o.callers,
        o.threads, measured_s, o.warmup_s, ops, ok, failed, fp, ops_per_s, ok_per_s,
        ms_or_null(0.50).c_str(), ms_or_null(0.95).c_str(), ms_or_null(0.99).c_str(),
        ms_or_null(1.0).c_str(), absl::StrJoin(codes, ",").c_str(), first.c_str(), setup_s,
        absl::StrJoin(setup_codes, ",").c_str(), pass ? "true" : "false");
  }
  std::fflush(stdout);
  return pass ? 0 : 1;
}

}  // namespace
}  // namespace loyalty::load

int main(int argc, char** argv) { return loyalty::load::Main(argc, argv); }
