// loyalty-durability-client: the client half of tests/soak/durability_soak.sh
// (the durability soak: "never acknowledge a write the database did not
// commit"). Two commands:
//
//   loyalty-durability-client load --round=LABEL --records=FILE [flags]
//     C callers (threads, synchronous gRPC) run a mix of Earn, Authorize and
//     Capture (of holds the same caller authorised) against the ledger for
//     --duration_s, while the soak script kills MariaDB or the ledger. An
//     answer that is not final (UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED,
//     CANCELLED, UNKNOWN, RESOURCE_EXHAUSTED) is retried with the very same
//     request and idempotency key, with jittered backoff, until it is final
//     or --op_timeout_s passes. After --duration_s no operation starts; the
//     callers finish the ones in flight and capture every hold still open
//     (the drain). Then one line per operation goes to FILE (written whole,
//     then renamed), and one JSON line with the round's figures to stdout.
//
//   loyalty-durability-client verify --records_dir=DIR [flags]
//     Reads every DIR/*.ops file and checks them against the ledger's schema
//     (MariaDB, read directly):
//       lost        answered OK, but its transfer (or hold) is not stored, or
//                   the stored one differs (member, points, kind);
//       duplicated  more than one transfer for one earn receipt / authorize
//                   reference / capture reference, more than one hold for one
//                   authorize key, more than one REDEEM for one hold, or an
//                   idempotency record whose answer is not the one given;
//       phantom     refused (final answer not OK), yet written;
//       bad answers final answers the soak cannot cause: anything but OK, or
//                   FAILED_PRECONDITION (not enough points) for Authorize;
//       violations  member balances (posted and pending) differ from what the
//                   OK answers imply; a transfer no OK answer names; the
//                   ledger's stored invariants
//                   (tests/services/ledger/ledger_fixture.h:
//                   CheckStoredInvariants: sums to zero, journal replay, lots,
//                   nothing negative); pending holds differ from the pending
//                   balances;
//       unresolved  operations that never got a final answer.
//     And, for the operations that were OK only after a retry, whether the
//     write had been stored before the first (non-final) answer, so the retry
//     got the stored answer (replayed), or was stored by a retry (reapplied).
//     Prints a table per fault kind (the part of the round label before the
//     first '-') and exits 0 only when lost, duplicated, phantom, bad
//     answers, violations and unresolved are all 0 and --chain is ok (or
//     skipped; the script runs loyaltyctl chain verify and passes its
//     verdict).
//
// Secrets come from the environment: LOYALTY_API_KEY, LOYALTY_DB_PASSWORD
// (see common/config/config.h: every flag may be LOYALTY_<NAME>).
//
// Exit codes: 0 ok; 1 load: some operation stayed unresolved / verify: a
// check failed; 2 bad usage; 3 the records or the database could not be read.
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <dirent.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/config/config.h"
#include "common/db/pool.h"
#include "common/db/transaction.h"
#include "common/status/status_macros.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "loyalty/ledger/v1/ledger.grpc.pb.h"
#include "tests/services/ledger/ledger_fixture.h"

namespace loyalty::soak {
namespace {

namespace v1 = ::loyalty::ledger::v1;
using Clock = std::chrono::steady_clock;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitIo = 3;

constexpr int kNumCodes = 17;  // grpc::StatusCode 0..16
constexpr int kMaxCallers = 256;
// A caller captures before it authorises again once it holds this many.
constexpr size_t kMaxOpenHoldsPerCaller = 4;
constexpr int64_t kHoldTtlSeconds = 3600;  // far beyond a round: no hold expires
constexpr int64_t kMaxEarnEuros = 50;      // 1 point per EUR in the soak's rules
constexpr int64_t kMaxAuthorizePoints = 30;
constexpr int kBackoffInitialMs = 20;
constexpr int kBackoffMaxMs = 1000;
constexpr int kReconnectBackoffMs = 100;
constexpr int kMaxReconnectBackoffMs = 1000;
constexpr int kMaxShownProblems = 20;

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

int64_t UnixMillis(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// Answers that do not tell whether the write happened: the caller must ask
// again with the same key. UNKNOWN covers a stream cut by a dying server;
// RESOURCE_EXHAUSTED a full write queue or a rate limit.
bool NotFinal(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return true;
    default:
      return false;
  }
}

// ---------------------------------------------------------------------------
// Operation records: one line per operation, tab-separated.
// ---------------------------------------------------------------------------

enum class Kind : char { kEarn = 'E', kAuthorize = 'A', kCapture = 'C' };

struct OpRecord {
  std::string round;
  std::string key;  // idempotency key; also the receipt / reference
  Kind kind = Kind::kEarn;
  std::string member_id;
  std::string partner_id;
  int64_t requested = 0;  // Earn: EUR cents; Authorize: points; Capture: 0
  std::string hold_in;    // Capture: the hold captured
  int attempts = 0;
  int first_code = -1;
  int final_code = -1;    // -1: never final (gave up)
  std::string transfer_id;  // EARN, HOLD or REDEEM transfer of an OK answer
  std::string hold_id;      // Authorize: the hold placed
  int64_t points = 0;       // points the OK answer moved or held
  int64_t elapsed_ms = 0;
  int64_t first_answer_unix_ms = 0;  // when the first answer came (system clock)

  bool ok() const { return final_code == 0; }
  bool acked_first() const { return first_code == 0; }
  bool resolved() const { return final_code >= 0; }
};

constexpr int kRecordFields = 15;

std::string ToLine(const OpRecord& r) {
  return absl::StrCat(r.round, "\t", r.key, "\t", std::string(1, static_cast<char>(r.kind)), "\t",
                      r.member_id, "\t", r.partner_id, "\t", r.requested, "\t",
                      r.hold_in.empty() ? "-" : r.hold_in, "\t", r.attempts, "\t", r.first_code, "\t",
                      r.final_code, "\t", r.transfer_id.empty() ? "-" : r.transfer_id, "\t",
                      r.hold_id.empty() ? "-" : r.hold_id, "\t", r.points, "\t", r.elapsed_ms, "\t",
                      r.first_answer_unix_ms);
}

absl::StatusOr<OpRecord> FromLine(absl::string_view line) {
  std::vector<std::string> f = absl::StrSplit(line, '\t');
  if (f.size() != kRecordFields || f[2].size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat("malformed record: ", line));
  }
  auto dash = [](const std::string& s) { return s == "-" ? std::string() : s; };
  OpRecord r;
  r.round = f[0];
  r.key = f[1];
  r.kind = static_cast<Kind>(f[2][0]);
  r.member_id = f[3];
  r.partner_id = f[4];
  r.hold_in = dash(f[6]);
  r.transfer_id = dash(f[10]);
  r.hold_id = dash(f[11]);
  if (!absl::SimpleAtoi(f[5], &r.requested) || !absl::SimpleAtoi(f[7], &r.attempts) ||
      !absl::SimpleAtoi(f[8], &r.first_code) || !absl::SimpleAtoi(f[9], &r.final_code) ||
      !absl::SimpleAtoi(f[12], &r.points) || !absl::SimpleAtoi(f[13], &r.elapsed_ms) ||
      !absl::SimpleAtoi(f[14], &r.first_answer_unix_ms)) {
    return absl::InvalidArgumentError(absl::StrCat("malformed number in record: ", line));
  }
  return r;
}

// ---------------------------------------------------------------------------
// load
// ---------------------------------------------------------------------------

struct LoadOptions {
  std::string target;
  std::string api_key;
  std::string round;
  std::string records;
  int callers = 0;
  int duration_s = 0;
  int members = 0;
  int partners = 0;
  std::string member_prefix;
  std::string partner_prefix;
  int attempt_deadline_ms = 0;
  int op_timeout_s = 0;
  uint64_t seed = 0;
  // A fresh channel after a failed connection (see Caller::CallUntilFinal);
  // false: gRPC's default channel, left to reconnect by itself.
  bool fresh_channel = true;
};

// Counts of every attempt's answer, for the round's report.
struct AttemptCounts {
  std::array<std::atomic<int64_t>, kNumCodes> by_code{};
  absl::Mutex mu;
  std::map<int, std::string> first_message ABSL_GUARDED_BY(mu);
  std::map<int, std::string> last_message ABSL_GUARDED_BY(mu);

  void Add(const grpc::Status& s) {
    const int code = CodeIndex(s.error_code());
    by_code[code].fetch_add(1, std::memory_order_relaxed);
    if (code == 0) return;
    absl::MutexLock lock(&mu);
    first_message.emplace(code, s.error_message());
    last_message[code] = s.error_message();
  }
};

// A channel of the caller's own: a local subchannel pool, so that a new
// channel really makes a new connection (with the global pool, channels to one
// address share a subchannel and its reconnect backoff).
std::shared_ptr<grpc::Channel> NewChannel(const std::string& target, bool fresh) {
  if (!fresh) return grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  grpc::ChannelArguments args;
  // No transparent retries: every attempt the ledger sees is one we count.
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, kReconnectBackoffMs);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, kMaxReconnectBackoffMs);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

class Caller {
 public:
  Caller(const LoadOptions& o, int index, AttemptCounts& counts)
      : o_(o), index_(index), counts_(counts), rng_(o.seed * 1000003 + index) {
    Connect();
  }

  // Issues operations until `stop_issuing`, then drains; returns every
  // operation's record.
  std::vector<OpRecord> Run(Clock::time_point stop_issuing) {
    while (Clock::now() < stop_issuing) {
      const double u = Uniform01();
      if (!open_holds_.empty() && (open_holds_.size() >= kMaxOpenHoldsPerCaller || u < 0.3)) {
        CaptureOldest();
      } else if (u < 0.65) {
        Earn();
      } else {
        Authorize();
      }
    }
    while (!open_holds_.empty()) CaptureOldest();  // the drain: no hold left open
    return std::move(records_);
  }

 private:
  struct OpenHold {
    std::string hold_id;
    std::string member_id;
    std::string partner_id;
  };

  void Connect() {
    channel_ = NewChannel(o_.target, o_.fresh_channel);
    stub_ = v1::LedgerService::NewStub(channel_);
  }

  double Uniform01() { return std::uniform_real_distribution<double>(0, 1)(rng_); }
  int64_t Uniform(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng_); }
  std::string Member() { return absl::StrCat(o_.member_prefix, Uniform(1, o_.members)); }
  std::string Partner() { return absl::StrCat(o_.partner_prefix, Uniform(1, o_.partners)); }

  OpRecord NewRecord(Kind kind) {
    OpRecord r;
    r.round = o_.round;
    // Unique per soak run: the round label, the caller, its sequence.
    r.key = absl::StrCat(o_.round, "-c", index_, "-n", next_++, "-", std::string(1, static_cast<char>(kind)));
    r.kind = kind;
    return r;
  }

  // Calls `method` with `request` until the answer is final or the
  // operation's time runs out; the same request (and key) every time.
  template <typename Request, typename Response>
  grpc::Status CallUntilFinal(
      grpc::Status (v1::LedgerService::Stub::*method)(grpc::ClientContext*, const Request&, Response*),
      const Request& request, Response* response, OpRecord& record) {
    const Clock::time_point start = Clock::now();
    const Clock::time_point give_up = start + std::chrono::seconds(o_.op_timeout_s);
    int backoff_ms = kBackoffInitialMs;
    grpc::Status status;
    while (true) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(o_.attempt_deadline_ms));
      ctx.AddMetadata("authorization", absl::StrCat("Bearer ", o_.api_key));
      response->Clear();
      status = ((*stub_).*method)(&ctx, request, response);
      ++record.attempts;
      counts_.Add(status);
      if (record.attempts == 1) {
        record.first_code = CodeIndex(status.error_code());
        record.first_answer_unix_ms = UnixMillis(std::chrono::system_clock::now());
      }
      if (!NotFinal(status.error_code())) {
        record.final_code = CodeIndex(status.error_code());
        break;
      }
      if (Clock::now() + std::chrono::milliseconds(backoff_ms) >= give_up) break;  // unresolved
      // gRPC waits out its own reconnect backoff (seconds, after a ledger
      // restart) before it tries again; a fresh channel connects at once.
      if (o_.fresh_channel && channel_->GetState(false) == GRPC_CHANNEL_TRANSIENT_FAILURE) Connect();
      std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms / 2 + Uniform(0, backoff_ms / 2)));
      backoff_ms = std::min(backoff_ms * 2, kBackoffMaxMs);
    }
    record.elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    return status;
  }

  void Earn() {
    OpRecord r = NewRecord(Kind::kEarn);
    r.member_id = Member();
    r.partner_id = Partner();
    r.requested = Uniform(1, kMaxEarnEuros) * 100;
    v1::EarnRequest req;
    req.set_idempotency_key(r.key);
    req.set_partner_id(r.partner_id);
    req.set_member_id(r.member_id);
    req.mutable_amount()->set_amount_minor(r.requested);
    req.mutable_amount()->set_currency("EUR");
    req.set_receipt_reference(r.key);
    v1::EarnResponse resp;
    if (CallUntilFinal(&v1::LedgerService::Stub::Earn, req, &resp, r).ok()) {
      r.transfer_id = resp.transfer().transfer_id();
      r.points = resp.points();
    }
    records_.push_back(std::move(r));
  }

  void Authorize() {
    OpRecord r = NewRecord(Kind::kAuthorize);
    r.member_id = Member();
    r.partner_id = Partner();
    r.requested = Uniform(1, kMaxAuthorizePoints);
    v1::AuthorizeRequest req;
    req.set_idempotency_key(r.key);
    req.set_member_id(r.member_id);
    req.set_partner_id(r.partner_id);
    req.set_points(r.requested);
    req.set_ttl_seconds(kHoldTtlSeconds);
    req.set_reference(r.key);
    v1::AuthorizeResponse resp;
    if (CallUntilFinal(&v1::LedgerService::Stub::Authorize, req, &resp, r).ok()) {
      r.hold_id = resp.hold().hold_id();
      r.transfer_id = resp.hold().hold_transfer_id();
      r.points = resp.hold().points();
      open_holds_.push_back({r.hold_id, r.member_id, r.partner_id});
    }
    records_.push_back(std::move(r));
  }

  void CaptureOldest() {
    OpenHold hold = std::move(open_holds_.front());
    open_holds_.erase(open_holds_.begin());
    OpRecord r = NewRecord(Kind::kCapture);
    r.member_id = hold.member_id;
    r.partner_id = hold.partner_id;
    r.hold_in = hold.hold_id;
    v1::CaptureRequest req;
    req.set_idempotency_key(r.key);
    req.set_hold_id(hold.hold_id);
    req.set_points(0);  // the whole hold
    req.set_reference(r.key);
    v1::CaptureResponse resp;
    if (CallUntilFinal(&v1::LedgerService::Stub::Capture, req, &resp, r).ok()) {
      r.transfer_id = resp.transfer().transfer_id();
      r.points = resp.transfer().points();
    }
    records_.push_back(std::move(r));
  }

  const LoadOptions& o_;
  const int index_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::LedgerService::Stub> stub_;
  AttemptCounts& counts_;
  std::mt19937_64 rng_;
  int64_t next_ = 1;
  std::vector<OpenHold> open_holds_;
  std::vector<OpRecord> records_;
};

absl::Status WriteRecords(const std::string& path, const std::vector<OpRecord>& records) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", tmp));
    for (const OpRecord& r : records) out << ToLine(r) << '\n';
    out.flush();
    if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot rename ", tmp, " to ", path));
  }
  return absl::OkStatus();
}


std::string CodeCountsJson(const std::array<std::atomic<int64_t>, kNumCodes>& codes) {
  std::vector<std::string> parts;
  for (int c = 0; c < kNumCodes; ++c) {
    if (codes[c] != 0) parts.push_back(absl::StrCat("\"", CodeName(c), "\":", codes[c].load()));
  }
  return absl::StrCat("{", absl::StrJoin(parts, ","), "}");
}

// {"CODE":"message",...} without the braces; quotes and backslashes in the
// messages are replaced, so the line stays valid JSON.
std::string MessagesJson(const std::map<int, std::string>& messages) {
  std::vector<std::string> parts;
  for (const auto& [code, msg] : messages) {
    std::string m = msg;
    std::replace(m.begin(), m.end(), '"', '\'');
    std::replace(m.begin(), m.end(), '\\', '/');
    parts.push_back(absl::StrCat("\"", CodeName(code), "\":\"", m, "\""));
  }
  return absl::StrJoin(parts, ",");
}

int Load(const LoadOptions& o) {
  AttemptCounts counts;
  std::vector<std::vector<OpRecord>> per_caller(static_cast<size_t>(o.callers));
  const Clock::time_point start = Clock::now();
  const Clock::time_point stop_issuing = start + std::chrono::seconds(o.duration_s);
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < o.callers; ++i) {
      threads.emplace_back([&, i] {
        Caller caller(o, i, counts);
        per_caller[static_cast<size_t>(i)] = caller.Run(stop_issuing);
      });
    }
    for (std::thread& t : threads) t.join();
  }
  const double wall_s = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<OpRecord> all;
  for (auto& v : per_caller) std::move(v.begin(), v.end(), std::back_inserter(all));
  if (absl::Status s = WriteRecords(o.records, all); !s.ok()) {
    std::fprintf(stderr, "loyalty-durability-client: %s\n", s.ToString().c_str());
    return kExitIo;
  }
  int64_t ok = 0, acked_first = 0, retried = 0, unresolved = 0, max_attempts = 0, max_ms = 0;
  std::array<int64_t, kNumCodes> final_codes{};
  for (const OpRecord& r : all) {
    ok += r.ok();
    acked_first += r.acked_first();
    retried += r.attempts > 1;
    unresolved += !r.resolved();
    if (r.resolved()) ++final_codes[static_cast<size_t>(r.final_code)];
    max_attempts = std::max<int64_t>(max_attempts, r.attempts);
    max_ms = std::max(max_ms, r.elapsed_ms);
  }
  std::vector<std::string> finals;
  for (int c = 0; c < kNumCodes; ++c) {
    if (final_codes[c] != 0) finals.push_back(absl::StrCat("\"", CodeName(c), "\":", final_codes[c]));
  }
  std::string first_messages, last_messages;
  {
    absl::MutexLock lock(&counts.mu);
    first_messages = MessagesJson(counts.first_message);
    last_messages = MessagesJson(counts.last_message);
  }
  std::printf(
      "{\"round\":\"%s\",\"ops\":%zu,\"ok\":%" PRId64 ",\"acked_first\":%" PRId64 ",\"retried\":%" PRId64
      ",\"unresolved\":%" PRId64 ",\"max_attempts\":%" PRId64 ",\"max_op_ms\":%" PRId64
      ",\"wall_s\":%.1f,\"final\":{%s},\"attempts\":%s,\"first_errors\":{%s},\"last_errors\":{%s}}\n",
      o.round.c_str(), all.size(), ok, acked_first, retried, unresolved, max_attempts, max_ms, wall_s,
      absl::StrJoin(finals, ",").c_str(), CodeCountsJson(counts.by_code).c_str(), first_messages.c_str(),
      last_messages.c_str());
  std::fflush(stdout);
  return unresolved == 0 ? kExitOk : kExitFailed;
}

// ---------------------------------------------------------------------------
// verify
// ---------------------------------------------------------------------------

// Every statement the verifier runs; all read-only.
constexpr const char* kSelectTransfers =
    "SELECT transfer_id, code, reference, hold_id, member_id, partner_id, points, "
    "CAST(ROUND(UNIX_TIMESTAMP(created_at) * 1000) AS SIGNED) FROM transfers";
constexpr const char* kSelectHolds =
    "SELECT hold_id, reference, member_id, points, captured_points, state, hold_transfer_id, "
    "closing_transfer_id FROM holds";
constexpr const char* kSelectReceipts = "SELECT partner_id, receipt_reference, transfer_id FROM earn_receipts";
constexpr const char* kSelectIdempotency = "SELECT idempotency_key, method, status_code FROM idempotency";
constexpr const char* kSelectMemberBalances =
    "SELECT account, credits_posted - debits_posted, debits_pending FROM accounts "
    "WHERE account LIKE 'member:%'";

struct StoredTransfer {
  int code = 0;
  std::string reference;
  std::string hold_id;
  std::string member_id;
  std::string partner_id;
  int64_t points = 0;
  int64_t created_unix_ms = 0;  // the batch's time (the session is in UTC)
};

struct StoredHold {
  std::string reference;
  std::string member_id;
  int64_t points = 0;
  int64_t captured_points = 0;
  int state = 0;
  std::string hold_transfer_id;
  std::string closing_transfer_id;
};

struct Stored {
  absl::flat_hash_map<std::string, StoredTransfer> transfers;  // by transfer_id
  absl::flat_hash_map<std::string, StoredHold> holds;          // by hold_id
  absl::flat_hash_map<std::string, int> transfers_per_ref;     // "<code>|<reference>"
  absl::flat_hash_map<std::string, int> redeems_per_hold;
  absl::flat_hash_map<std::string, int> holds_per_ref;
  absl::flat_hash_map<std::string, std::string> receipts;      // "<partner>|<receipt>" -> transfer
  absl::flat_hash_map<std::string, int> idempotency_code;      // key -> status_code
  std::map<std::string, std::pair<int64_t, int64_t>> members;  // member -> posted, pending
};

std::string RefKey(int code, const std::string& reference) { return absl::StrCat(code, "|", reference); }

absl::StatusOr<Stored> ReadStored(db::ConnectionPool& pool) {
  Stored s;
  RETURN_IF_ERROR(db::RunWithConnection(pool, "soak verify", [&](db::PooledConnection& c) -> absl::Status {
    std::unique_ptr<sql::ResultSet> t(c.Prepare(kSelectTransfers).executeQuery());
    while (t->next()) {
      StoredTransfer st{t->getInt(2), t->getString(3), t->getString(4), t->getString(5), t->getString(6),
                        t->getInt64(7), t->getInt64(8)};
      ++s.transfers_per_ref[RefKey(st.code, st.reference)];
      if (st.code == v1::TRANSFER_CODE_REDEEM) ++s.redeems_per_hold[st.hold_id];
      s.transfers.emplace(t->getString(1), std::move(st));
    }
    std::unique_ptr<sql::ResultSet> h(c.Prepare(kSelectHolds).executeQuery());
    while (h->next()) {
      StoredHold sh{h->getString(2), h->getString(3), h->getInt64(4), h->getInt64(5),
                    h->getInt(6), h->getString(7), h->getString(8)};
      ++s.holds_per_ref[sh.reference];
      s.holds.emplace(h->getString(1), std::move(sh));
    }
    std::unique_ptr<sql::ResultSet> r(c.Prepare(kSelectReceipts).executeQuery());
    while (r->next()) {
      s.receipts.emplace(absl::StrCat(std::string(r->getString(1)), "|", std::string(r->getString(2))),
                         r->getString(3));
    }
    std::unique_ptr<sql::ResultSet> i(c.Prepare(kSelectIdempotency).executeQuery());
    while (i->next()) s.idempotency_code.emplace(i->getString(1), i->getInt(3));
    std::unique_ptr<sql::ResultSet> m(c.Prepare(kSelectMemberBalances).executeQuery());
    while (m->next()) {
      s.members[std::string(m->getString(1)).substr(7)] = {m->getInt64(2), m->getInt64(3)};
    }
    return absl::OkStatus();
  }));
  return s;
}

// Figures for one fault kind (or the total).
struct Tally {
  std::set<std::string> rounds;
  int64_t ops = 0, ok = 0, acked_first = 0, retried = 0, unresolved = 0;
  int64_t lost = 0, duplicated = 0, phantom = 0, bad_answers = 0;
  int64_t refused = 0;  // final, not OK, expected (Authorize without enough points)
  // OK in the end after a first answer that was not: the write was stored
  // before that first answer (the retry got the stored answer: replayed), or
  // by a retry (reapplied).
  int64_t replayed = 0, reapplied = 0;
  int64_t max_attempts = 0, max_op_ms = 0;

  void Add(const Tally& o) {
    rounds.insert(o.rounds.begin(), o.rounds.end());
    ops += o.ops, ok += o.ok, acked_first += o.acked_first, retried += o.retried;
    unresolved += o.unresolved, lost += o.lost, duplicated += o.duplicated, phantom += o.phantom;
    bad_answers += o.bad_answers, refused += o.refused;
    replayed += o.replayed, reapplied += o.reapplied;
    max_attempts = std::max(max_attempts, o.max_attempts), max_op_ms = std::max(max_op_ms, o.max_op_ms);
  }
};

class Verifier {
 public:
  explicit Verifier(const Stored& stored) : s_(stored) {}

  void Check(const OpRecord& r) {
    Tally& t = tallies_[r.round.substr(0, r.round.find('-'))];
    t.rounds.insert(r.round);
    ++t.ops;
    t.ok += r.ok();
    t.acked_first += r.acked_first();
    t.retried += r.attempts > 1;
    t.max_attempts = std::max<int64_t>(t.max_attempts, r.attempts);
    t.max_op_ms = std::max(t.max_op_ms, r.elapsed_ms);
    if (!r.resolved()) {
      ++t.unresolved;
      Problem(absl::StrCat("unresolved: ", r.key, " after ", r.attempts, " attempts"));
      return;
    }
    const int code = StoredCode(r.kind);
    const int written = Count(s_.transfers_per_ref, RefKey(code, r.key));
    const int holds = r.kind == Kind::kAuthorize ? Count(s_.holds_per_ref, r.key) : 0;
    const int redeems = r.kind == Kind::kCapture ? Count(s_.redeems_per_hold, r.hold_in) : 0;
    if (written > 1 || holds > 1 || redeems > 1) {
      ++t.duplicated;
      Problem(absl::StrCat("duplicated: ", r.key, " has ", written, " transfers, ", holds, " holds, its hold ",
                           redeems, " captures"));
    }
    if (!r.ok()) {
      const bool expected = r.kind == Kind::kAuthorize && r.final_code == static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION);
      if (expected) {
        ++t.refused;
      } else {
        ++t.bad_answers;
        Problem(absl::StrCat("unexpected final answer ", CodeName(r.final_code), ": ", r.key));
      }
      if (written > 0) {
        ++t.phantom;
        Problem(absl::StrCat("phantom: ", r.key, " was refused (", CodeName(r.final_code), ") but written"));
      }
      return;
    }
    if (!StoredAsAnswered(r)) {
      ++t.lost;
      Problem(absl::StrCat("lost: ", r.key, " answered OK (transfer ", r.transfer_id, ", hold ", r.hold_id,
                           ") but is not stored as answered"));
    }
    if (!IdempotencyAgrees(r)) {
      ++t.duplicated;  // a retry would not find the answer given: it could apply the write again
      Problem(absl::StrCat("idempotency record of ", r.key, " is missing or not OK"));
    }
    if (!r.acked_first()) {
      auto it = s_.transfers.find(r.transfer_id);
      if (it != s_.transfers.end() && it->second.created_unix_ms < r.first_answer_unix_ms) {
        ++t.replayed;
      } else {
        ++t.reapplied;
      }
    }
    Expect(r);
  }

  // Member balances against the OK answers, and pending holds against the
  // pending balances.
  void CheckBalances() {
    std::map<std::string, int64_t> held;
    for (const auto& [hold_id, h] : s_.holds) {
      if (h.state == v1::HOLD_STATE_PENDING) held[h.member_id] += h.points;
    }
    for (const auto& [member, e] : expected_) {
      auto it = s_.members.find(member);
      const std::pair<int64_t, int64_t> stored = it == s_.members.end() ? std::pair<int64_t, int64_t>{0, 0} : it->second;
      const int64_t pending = e.held - e.released;
      if (stored.first != e.posted || stored.second != pending) {
        Violation(absl::StrCat("member:", member, " posted ", stored.first, " pending ", stored.second,
                               ", the OK answers give posted ", e.posted, " pending ", pending));
      }
    }
    for (const auto& [member, balances] : s_.members) {
      if (!expected_.count(member)) Violation(absl::StrCat("member:", member, " was never written by the soak"));
      if (held[member] != balances.second) {
        Violation(absl::StrCat("member:", member, " pending ", balances.second, " but its pending holds hold ",
                               held[member]));
      }
    }
    // Every transfer the soak did not ask for (nothing else writes).
    for (const auto& [id, tr] : s_.transfers) {
      if (!answered_transfers_.count(id)) {
        Violation(absl::StrCat("transfer ", id, " (code ", tr.code, ", reference ", tr.reference,
                               ") was not in any OK answer"));
      }
    }
  }

  void Violation(const std::string& what) {
    ++violations_;
    Problem(absl::StrCat("violation: ", what));
  }

  const std::map<std::string, Tally>& tallies() const { return tallies_; }
  int64_t violations() const { return violations_; }
  const std::vector<std::string>& problems() const { return problems_; }
  int64_t problem_count() const { return problem_count_; }

 private:
  struct Expected {
    int64_t posted = 0;
    int64_t held = 0;
    int64_t released = 0;
  };

  static int StoredCode(Kind kind) {
    switch (kind) {
      case Kind::kEarn: return v1::TRANSFER_CODE_EARN;
      case Kind::kAuthorize: return v1::TRANSFER_CODE_HOLD;
      case Kind::kCapture: return v1::TRANSFER_CODE_REDEEM;
    }
    return 0;
  }

  static int Count(const absl::flat_hash_map<std::string, int>& m, const std::string& key) {
    auto it = m.find(key);
    return it == m.end() ? 0 : it->second;
  }

  // The OK answer's transfer (and hold) are stored, and are what was answered.
  bool StoredAsAnswered(const OpRecord& r) {
    auto t = s_.transfers.find(r.transfer_id);
    if (t == s_.transfers.end()) return false;
    const StoredTransfer& st = t->second;
    if (st.code != StoredCode(r.kind) || st.reference != r.key || st.member_id != r.member_id ||
        st.points != r.points) {
      return false;
    }
    switch (r.kind) {
      case Kind::kEarn: {
        auto rc = s_.receipts.find(absl::StrCat(r.partner_id, "|", r.key));
        return rc != s_.receipts.end() && rc->second == r.transfer_id;
      }
      case Kind::kAuthorize: {
        auto h = s_.holds.find(r.hold_id);
        return st.hold_id == r.hold_id && h != s_.holds.end() && h->second.hold_transfer_id == r.transfer_id &&
               h->second.points == r.points;
      }
      case Kind::kCapture: {
        auto h = s_.holds.find(r.hold_in);
        return st.hold_id == r.hold_in && h != s_.holds.end() &&
               h->second.state == v1::HOLD_STATE_CAPTURED && h->second.closing_transfer_id == r.transfer_id;
      }
    }
    return false;
  }

  bool IdempotencyAgrees(const OpRecord& r) const {
    auto it = s_.idempotency_code.find(r.key);
    return it != s_.idempotency_code.end() && it->second == 0;
  }

  void Expect(const OpRecord& r) {
    Expected& e = expected_[r.member_id];
    answered_transfers_.insert(r.transfer_id);
    switch (r.kind) {
      case Kind::kEarn: e.posted += r.points; break;
      case Kind::kAuthorize: e.held += r.points; break;
      case Kind::kCapture: {
        e.posted -= r.points;
        // The whole hold is captured: its points leave pending.
        auto h = s_.holds.find(r.hold_in);
        e.released += h == s_.holds.end() ? r.points : h->second.points;
        break;
      }
    }
  }

  void Problem(const std::string& what) {
    ++problem_count_;
    if (static_cast<int>(problems_.size()) < kMaxShownProblems) problems_.push_back(what);
  }

  const Stored& s_;
  std::map<std::string, Tally> tallies_;
  std::map<std::string, Expected> expected_;
  std::set<std::string> answered_transfers_;
  int64_t violations_ = 0;
  std::vector<std::string> problems_;
  int64_t problem_count_ = 0;
};

absl::StatusOr<std::vector<OpRecord>> ReadRecords(const std::string& dir) {
  std::vector<std::string> files;
  std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(dir.c_str()), closedir);
  if (d == nullptr) return absl::NotFoundError(absl::StrCat("cannot open ", dir));
  while (dirent* e = readdir(d.get())) {
    const std::string name = e->d_name;
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".ops") == 0) files.push_back(dir + "/" + name);
  }
  std::sort(files.begin(), files.end());
  std::vector<OpRecord> records;
  for (const std::string& file : files) {
    std::ifstream in(file);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", file));
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      ASSIGN_OR_RETURN(OpRecord r, FromLine(line));
      records.push_back(std::move(r));
    }
  }
  return records;
}

struct VerifyOptions {
  std::string records_dir;
  db::DbOptions db;
  std::string chain;  // ok | broken | failed | skipped
  bool quiet = false;
};

void PrintTable(const std::map<std::string, Tally>& tallies, int64_t violations, const std::string& chain) {
  std::printf("%-7s %6s %7s %9s %7s %8s %9s %10s %4s %10s %7s %7s %9s %8s\n", "fault", "rounds", "ops",
              "acked-1st", "retried", "replayed", "reapplied", "unresolved", "lost", "duplicated", "phantom",
              "bad-ans", "max-tries", "max-op-s");
  auto row = [](const std::string& name, const Tally& t) {
    std::printf("%-7s %6zu %7" PRId64 " %9" PRId64 " %7" PRId64 " %8" PRId64 " %9" PRId64 " %10" PRId64
                " %4" PRId64 " %10" PRId64 " %7" PRId64 " %7" PRId64 " %9" PRId64 " %8.1f\n",
                name.c_str(), t.rounds.size(), t.ops, t.acked_first, t.retried, t.replayed, t.reapplied,
                t.unresolved, t.lost, t.duplicated, t.phantom, t.bad_answers, t.max_attempts,
                static_cast<double>(t.max_op_ms) / 1000);
  };
  Tally total;
  for (const auto& [name, t] : tallies) {
    row(name, t);
    total.Add(t);
  }
  row("total", total);
  std::printf("OK answers %" PRId64 "; authorizations refused for want of points %" PRId64 "\n", total.ok,
              total.refused);
  std::printf("replayed: OK after a first answer that was not, the write stored before that first answer;\n"
              "reapplied: the same, the write stored by a retry\n");
  std::printf("invariant violations: %" PRId64 "    chain: %s\n", violations, chain.c_str());
}

int Verify(const VerifyOptions& o) {
  absl::StatusOr<std::vector<OpRecord>> records = ReadRecords(o.records_dir);
  if (!records.ok()) {
    std::fprintf(stderr, "loyalty-durability-client: %s\n", records.status().ToString().c_str());
    return kExitIo;
  }
  auto pool = db::ConnectionPool::Create(o.db);
  if (!pool.ok()) {
    std::fprintf(stderr, "loyalty-durability-client: %s\n", pool.status().ToString().c_str());
    return kExitIo;
  }
  absl::StatusOr<Stored> stored = ReadStored(**pool);
  if (!stored.ok()) {
    std::fprintf(stderr, "loyalty-durability-client: reading the ledger schema: %s\n",
                 stored.status().ToString().c_str());
    return kExitIo;
  }
  Verifier v(*stored);
  for (const OpRecord& r : *records) v.Check(r);
  v.CheckBalances();
  const std::string invariants = ledger::testing::CheckStoredInvariants(**pool);
  for (absl::string_view line : absl::StrSplit(invariants, '\n', absl::SkipEmpty())) {
    v.Violation(absl::StrCat("stored invariant: ", line));
  }
  Tally total;
  for (const auto& [name, t] : v.tallies()) total.Add(t);
  const bool pass = total.unresolved == 0 && total.lost == 0 && total.duplicated == 0 && total.phantom == 0 &&
                    total.bad_answers == 0 && v.violations() == 0 && (o.chain == "ok" || o.chain == "skipped");
  if (o.quiet) {
    std::printf("ops %" PRId64 " acked-1st %" PRId64 " retried %" PRId64 " replayed %" PRId64
                " unresolved %" PRId64 " lost %" PRId64
                " duplicated %" PRId64 " phantom %" PRId64 " bad-answers %" PRId64 " violations %" PRId64
                " chain %s transfers %zu: %s\n",
                total.ops, total.acked_first, total.retried, total.replayed, total.unresolved, total.lost, total.duplicated,
                total.phantom, total.bad_answers, v.violations(), o.chain.c_str(), stored->transfers.size(),
                pass ? "PASS" : "FAIL");
  } else {
    PrintTable(v.tallies(), v.violations(), o.chain);
    std::printf("transfers in the journal: %zu, holds: %zu, members: %zu\n", stored->transfers.size(),
                stored->holds.size(), stored->members.size());
  }
  for (const std::string& p : v.problems()) std::printf("  %s\n", p.c_str());
  if (v.problem_count() > static_cast<int64_t>(v.problems().size())) {
    std::printf("  ... and %" PRId64 " more\n", v.problem_count() - static_cast<int64_t>(v.problems().size()));
  }
  std::printf("result: %s\n", pass ? "PASS" : "FAIL");
  std::fflush(stdout);
  return pass ? kExitOk : kExitFailed;
}

// ---------------------------------------------------------------------------
// Flags
// ---------------------------------------------------------------------------

void Usage() {
  std::fputs(
      "usage: loyalty-durability-client load|verify [--name=value ...] (--help after the command)\n"
      "  load    run one round of Earn/Authorize/Capture, retrying unanswered calls with the same key\n"
      "  verify  check every round's records against the ledger's schema\n",
      stderr);
}

int UsageError(const absl::Status& s) {
  std::fprintf(stderr, "loyalty-durability-client: %s\n", s.ToString().c_str());
  return kExitUsage;
}

absl::StatusOr<int> IntFlag(const config::Config& c, absl::string_view name, int64_t lo, int64_t hi) {
  ASSIGN_OR_RETURN(int64_t v, c.GetInt(name, lo, hi));
  return static_cast<int>(v);
}

absl::StatusOr<LoadOptions> ReadLoadOptions(const config::Config& c) {
  LoadOptions o;
  o.target = c.GetString("target");
  o.api_key = c.GetString("api_key");
  o.round = c.GetString("round");
  o.records = c.GetString("records");
  o.member_prefix = c.GetString("member_prefix");
  o.partner_prefix = c.GetString("partner_prefix");
  if (o.round.empty() || o.records.empty()) return absl::InvalidArgumentError("--round and --records are required");
  ASSIGN_OR_RETURN(o.callers, IntFlag(c, "callers", 1, kMaxCallers));
  ASSIGN_OR_RETURN(o.duration_s, IntFlag(c, "duration_s", 1, 3600));
  ASSIGN_OR_RETURN(o.members, IntFlag(c, "members", 1, 1'000'000));
  ASSIGN_OR_RETURN(o.partners, IntFlag(c, "partners", 1, 1000));
  ASSIGN_OR_RETURN(o.attempt_deadline_ms, IntFlag(c, "attempt_deadline_ms", 100, 600'000));
  ASSIGN_OR_RETURN(o.op_timeout_s, IntFlag(c, "op_timeout_s", 1, 86'400));
  ASSIGN_OR_RETURN(int64_t seed, c.GetInt("seed", 0));
  o.seed = static_cast<uint64_t>(seed);
  ASSIGN_OR_RETURN(o.fresh_channel, c.GetBool("fresh_channel"));
  return o;
}

absl::StatusOr<VerifyOptions> ReadVerifyOptions(const config::Config& c) {
  VerifyOptions o;
  o.records_dir = c.GetString("records_dir");
  if (o.records_dir.empty()) return absl::InvalidArgumentError("--records_dir is required");
  o.db.host = c.GetString("db_host");
  ASSIGN_OR_RETURN(o.db.port, IntFlag(c, "db_port", 1, 65535));
  o.db.user = c.GetString("db_user");
  o.db.password = c.GetString("db_password");
  o.db.database = c.GetString("db_name");
  o.db.pool_size = 2;
  o.db.read_timeout = absl::Seconds(300);
  o.chain = c.GetString("chain");
  if (o.chain != "ok" && o.chain != "broken" && o.chain != "failed" && o.chain != "skipped") {
    return absl::InvalidArgumentError("--chain must be ok, broken, failed or skipped");
  }
  ASSIGN_OR_RETURN(o.quiet, c.GetBool("quiet"));
  return o;
}

int Main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    Usage();
    return argc < 2 ? kExitUsage : kExitOk;
  }
  const std::string command = argv[1];
  std::vector<config::FlagSpec> specs;
  if (command == "load") {
    specs = {
        {"target", "127.0.0.1:7291", "ledger address"},
        {"api_key", "", "API key sent as 'authorization: Bearer' (use LOYALTY_API_KEY)", true},
        {"round", "", "round label, '<fault>-<n>'; starts every idempotency key"},
        {"records", "", "file the operations are written to"},
        {"callers", "20", "concurrent callers (threads)"},
        {"duration_s", "6", "seconds during which new operations start"},
        {"members", "100", "member ids PREFIX1..PREFIXN"},
        {"partners", "3", "partner ids PREFIX1..PREFIXN"},
        {"member_prefix", "soak-m", "member id prefix"},
        {"partner_prefix", "soak-p", "partner id prefix"},
        {"attempt_deadline_ms", "3000", "deadline of one attempt"},
        {"op_timeout_s", "300", "an operation not final after this long is unresolved"},
        {"seed", "1", "random seed (mixed with the caller index)"},
        {"fresh_channel", "true",
         "after a failed connection, retry on a new channel; false: gRPC's default channel reconnects by itself"},
    };
  } else if (command == "verify") {
    specs = {
        {"records_dir", "", "folder of the *.ops files written by load"},
        {"db_host", "127.0.0.1", "MariaDB host"},
        {"db_port", "3331", "MariaDB port"},
        {"db_user", "loyalty", "MariaDB user"},
        {"db_password", "", "MariaDB password (use LOYALTY_DB_PASSWORD)", true},
        {"db_name", "loyalty_soak", "the ledger's schema"},
        {"chain", "skipped", "verdict of loyaltyctl chain verify: ok, broken, failed or skipped"},
        {"quiet", "false", "one line instead of the table"},
    };
  } else {
    Usage();
    return kExitUsage;
  }
  auto config = config::Config::Load(std::move(specs), argc - 1, argv + 1);
  if (!config.ok()) return UsageError(config.status());
  if (config->help_requested()) {
    std::fputs(config->Help("loyalty-durability-client " + command).c_str(), stdout);
    return kExitOk;
  }
  if (command == "load") {
    absl::StatusOr<LoadOptions> o = ReadLoadOptions(*config);
    if (!o.ok()) return UsageError(o.status());
    return Load(*o);
  }
  absl::StatusOr<VerifyOptions> o = ReadVerifyOptions(*config);
  if (!o.ok()) return UsageError(o.status());
  return Verify(*o);
}

}  // namespace
}  // namespace loyalty::soak

int main(int argc, char** argv) { return loyalty::soak::Main(argc, argv); }
