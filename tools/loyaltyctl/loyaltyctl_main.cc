// loyaltyctl: the backoffice and finance command line for every service.
//
//   loyaltyctl GROUP ACTION [--FIELD VALUE ...] [--json '{...}'] [options]
//   loyaltyctl call SERVICE METHOD [--FIELD VALUE ...]     any RPC
//   loyaltyctl help | loyaltyctl GROUP --help | loyaltyctl GROUP ACTION --help
//   loyaltyctl --version
//
// Every flag is written --name=value or --name value (a value that starts
// with "--" needs the first form); --all, --help and --version take none.
// Request fields are set by name from the RPC's request message (see
// tools/loyaltyctl/messages.h); --help on an action lists them. Options:
//   --output=table|json   readable tables (default) or proto3 JSON for scripts
//   --out=PATH            write the output (an export's files) to PATH, not
//                         stdout (tools/loyaltyctl/out_file.h)
//   --all                 follow next_page_token, or repeat while has_more
//                         (long jobs), with progress on stderr
//   --membership= --ledger= --settlement= --catalog=   HOST:PORT of each
//                         service (defaults 127.0.0.1:7101..7104)
//   --deadline_ms=N       per call (default 30000; 600000 for the period
//                         close and reconciliation)
//   --retries=N           UNAVAILABLE and ABORTED answers (and, for a call with
//                         an idempotency key, DEADLINE_EXCEEDED) are retried
//                         N times (default 4) with the same request and key,
//                         so an interrupted close or expiry batch resumes
// The API key comes from LOYALTY_API_KEY (a flag would show in `ps`). TLS:
// LOYALTY_TLS_CA_FILE (verify the services), plus LOYALTY_TLS_CERT_FILE and
// LOYALTY_TLS_KEY_FILE for mutual TLS; plaintext without them
// (rpc::ClientCredentialsFromEnv). A mutating RPC without --idempotency_key
// gets a generated one, printed on stderr so that the same command can be
// retried with it. Failed calls are printed as CODE_NAME: message.
//
// Exit codes: 0 done; 1 refused (NOT_FOUND, FAILED_PRECONDITION,
// ALREADY_EXISTS); 2 bad usage or INVALID_ARGUMENT; 3 unavailable or timed
// out (retry); 4 UNAUTHENTICATED or PERMISSION_DENIED; 5 any other error;
// 6 the call worked but found a problem (reconciliation mismatches, a broken
// hash chain).
#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/crypto/random.h"
#include "common/rpc/client_call.h"
#include "common/status/status_macros.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "grpcpp/create_channel.h"
#include "loyalty/catalog/v1/catalog.pb.h"
#include "loyalty/ledger/v1/ledger.pb.h"
#include "loyalty/membership/v1/membership.pb.h"
#include "loyalty/settlement/v1/settlement.pb.h"
#include "tools/loyaltyctl/messages.h"
#include "tools/loyaltyctl/out_file.h"

namespace loyalty::ctl {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

constexpr int64_t kDefaultDeadlineMs = 30'000;
// Closing or reconciling a large period reads the period's whole journal in
// one call (loyalty-settlementctl gave them this deadline too).
constexpr int64_t kPeriodJobDeadlineMs = 600'000;
constexpr int kDefaultRetries = 4;
constexpr int kMaxRetries = 10;
constexpr absl::Duration kFirstRetryDelay = absl::Milliseconds(200);
constexpr absl::Duration kMaxRetryDelay = absl::Seconds(5);
constexpr int kMaxRounds = 100'000;

struct Command {
  const char* group;
  const char* action;
  const char* service;  // membership, ledger, settlement, catalog
  const char* method;
  const char* summary;
  int64_t deadline_ms = kDefaultDeadlineMs;
  // Proto3 JSON merged into the request before the command line's fields.
  const char* preset_json = nullptr;
};

constexpr Command kCommands[] = {
    {"partners", "list", "settlement", "ListPartners", "list partners"},
    {"partners", "get", "settlement", "GetPartner", "one partner"},
    {"partners", "create", "settlement", "CreatePartner", "add a partner to the directory"},
    {"partners", "update", "settlement", "UpdatePartner", "change a partner's details"},
    {"partners", "status", "settlement", "SetPartnerStatus", "activate, suspend or terminate a partner"},
    {"contracts", "list", "settlement", "ListContracts", "a partner's contract versions"},
    {"contracts", "get", "settlement", "GetContract", "the contract in force (or a version)"},
    {"contracts", "create", "settlement", "CreateContractVersion", "a new contract version"},
    {"prepaid", "buy", "settlement", "PurchasePointBlock", "a prepaid partner buys a block of points"},
    {"prepaid", "balance", "settlement", "GetPrepaidBalance", "a prepaid partner's remaining points"},
    {"alerts", "list", "settlement", "ListAlerts", "low-balance and other alerts"},
    {"keys", "list", "settlement", "ListApiKeys", "a partner's API keys"},
    {"keys", "create", "settlement", "CreateApiKey", "issue an API key (shown once)"},
    {"keys", "rotate", "settlement", "RotateApiKey", "replace an API key"},
    {"keys", "revoke", "settlement", "RevokeApiKey", "revoke an API key"},
    {"members", "list", "membership", "QuerySegment",
     "members (ids, tier, partner; no contact data): all ACTIVE ones, or --segment_id, or --filter.*", kDefaultDeadlineMs,
     R"({"filter": {}})"},
    {"members", "get", "membership", "GetMember", "a member's profile and cards"},
    {"members", "lookup", "membership", "LookupMember", "find a member by --card_number, --email or --phone"},
    {"members", "status", "membership", "SetMemberStatus", "suspend, reactivate or close a member"},
    {"members", "export", "membership", "ExportMemberData", "everything held about a member"},
    {"members", "erase", "membership", "EraseMember", "anonymise a member irreversibly"},
    {"members", "tiers", "membership", "RunTierEvaluation", "evaluate every member's tier (use --all)"},
    {"points", "balance", "ledger", "GetBalance", "a member's balance"},
    {"points", "history", "ledger", "ListTransfers", "a member's or an account's transfers"},
    {"points", "lots", "ledger", "ListLots", "a member's lots"},
    {"points", "adjust", "ledger", "Adjust", "credit or debit a member, with a reason"},
    {"points", "expire", "ledger", "RunExpiry", "move expired lots to breakage (use --all)"},
    {"points", "liability", "ledger", "GetPointsLiability", "outstanding points by issuer"},
    {"rewards", "list", "catalog", "ListRewards", "rewards"},
    {"rewards", "get", "catalog", "GetReward", "one reward"},
    {"rewards", "create", "catalog", "CreateReward", "a new reward (draft)"},
    {"rewards", "state", "catalog", "SetRewardState", "activate, pause or retire a reward"},
    {"rewards", "stock", "catalog", "AdjustRewardStock", "add or remove stock"},
    {"campaigns", "list", "catalog", "ListCampaigns", "campaigns"},
    {"campaigns", "get", "catalog", "GetCampaign", "one campaign"},
    {"campaigns", "create", "catalog", "CreateCampaign", "a new campaign"},
    {"campaigns", "state", "catalog", "SetCampaignState", "activate, pause or end a campaign"},
    {"periods", "list", "settlement", "ListPeriods", "settlement periods"},
    {"periods", "get", "settlement", "GetPeriod", "one period"},
    {"periods", "create", "settlement", "CreatePeriod", "open a period"},
    {"periods", "close", "settlement", "ClosePeriod", "close a period: statements from the journal (resumable)",
     kPeriodJobDeadlineMs},
    {"periods", "finalize", "settlement", "FinalizePeriod", "make a closed period's statements final"},
    {"statements", "list", "settlement", "ListStatements", "statements of a period"},
    {"statements", "get", "settlement", "GetStatement", "one statement with its lines"},
    {"netting", "compute", "settlement", "ComputeNetting", "the payments that settle a period"},
    {"export", "period", "settlement", "ExportPeriod", "accounting files (CSV or JSON)"},
    {"reconcile", "period", "settlement", "Reconcile", "check statements against the ledger", kPeriodJobDeadlineMs},
    {"chain", "verify", "ledger", "VerifyChain", "recompute the journal's hash chain"},
};

struct Options {
  std::string output = "table";
  std::string out;  // --out PATH; empty = stdout
  bool all = false;
  std::map<std::string, std::string> targets = {{"membership", "127.0.0.1:7101"},
                                                {"ledger", "127.0.0.1:7102"},
                                                {"settlement", "127.0.0.1:7103"},
                                                {"catalog", "127.0.0.1:7104"}};
  int64_t deadline_ms = 0;  // 0 = the command's default
  int retries = kDefaultRetries;
  bool help = false;
  bool version = false;
  std::string json;
  std::vector<std::pair<std::string, std::string>> fields;
  std::vector<std::string> words;  // GROUP ACTION, or call SERVICE METHOD
};

std::string ServiceFullName(const std::string& service) {
  std::string type = service;
  type[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(type[0])));
  return absl::StrCat("loyalty.", service, ".v1.", type, "Service");
}

void LinkDescriptors() {
  // Referencing one message of each API links its generated descriptors in.
  (void)membership::v1::EnrolRequest::descriptor();
  (void)ledger::v1::EarnRequest::descriptor();
  (void)settlement::v1::CreatePartnerRequest::descriptor();
  (void)catalog::v1::CreateRewardRequest::descriptor();
}

int Usage(const std::string& why) {
  if (!why.empty()) std::cerr << "loyaltyctl: " << why << "\n";
  std::cerr << "usage: loyaltyctl GROUP ACTION [--FIELD VALUE ...] [--json JSON] [--output table|json] [--out PATH]\n"
               "                  [--all] [--deadline_ms N] [--retries N]\n"
               "       loyaltyctl call SERVICE METHOD [...]\n"
               "       loyaltyctl help | GROUP --help | GROUP ACTION --help | --version\n"
               "Flags: --name=value or --name value. API key: LOYALTY_API_KEY. TLS: LOYALTY_TLS_CA_FILE,\n"
               "LOYALTY_TLS_CERT_FILE, LOYALTY_TLS_KEY_FILE. Service addresses: --membership --ledger --settlement\n"
               "--catalog.\n";
  return 2;
}

int Version() {
  std::cout << "loyaltyctl " << LOYALTY_VERSION;
#ifdef LOYALTY_GIT_COMMIT
  std::cout << " (commit " << LOYALTY_GIT_COMMIT << ")";
#endif
  std::cout << "\n";
  return 0;
}

int Help(const std::string& group) {
  std::string last;
  for (const Command& c : kCommands) {
    if (!group.empty() && group != c.group) continue;
    if (last != c.group) std::cout << c.group << "\n";
    last = c.group;
    std::cout << "  " << c.action << std::string(12 - std::string(c.action).size(), ' ') << c.summary << "  ("
              << c.service << " " << c.method << ")\n";
  }
  std::cout << "call SERVICE METHOD    any RPC of membership, ledger, settlement or catalog\n"
               "Every action: --help lists its fields; --output=json; --out=PATH; --all follows pages and\n"
               "long jobs; --retries=N (default 4) for UNAVAILABLE and ABORTED, with the same key.\n"
               "Exit codes: 0 ok, 1 refused, 2 usage/invalid, 3 unavailable, 4 not allowed, 5 error,\n"
               "6 problems found (reconciliation, chain).\n";
  if (last.empty() && !group.empty()) return Usage(absl::StrCat("no group '", group, "'"));
  return 0;
}

int ExitCodeOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAlreadyExists:
      return 1;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return 2;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kAborted:
      return 3;
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
      return 4;
    default:
      return 5;
  }
}

// The response says the job found problems: reconciliation mismatches, or a
// chain that does not verify.
bool FoundProblems(const Message& response) {
  const auto* d = response.GetDescriptor();
  const auto* r = response.GetReflection();
  if (const FieldDescriptor* f = d->FindFieldByName("mismatches"); f != nullptr && f->is_repeated()) {
    if (r->FieldSize(response, f) > 0) return true;
  }
  if (const FieldDescriptor* f = d->FindFieldByName("first_bad_sequence");
      f != nullptr && f->cpp_type() == FieldDescriptor::CPPTYPE_INT64) {
    if (r->GetInt64(response, f) > 0) return true;
  }
  return false;
}

// Appends `page`'s lists to `into`; every other field takes the page's value
// (totals, tokens, has_more), for --all.
void AppendPage(Message& into, const Message& page) {
  const auto* d = page.GetDescriptor();
  const auto* r = page.GetReflection();
  std::vector<const FieldDescriptor*> singular;
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->is_repeated() && !f->is_map() && f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      for (int k = 0; k < r->FieldSize(page, f); ++k) {
        into.GetReflection()->AddMessage(&into, f)->CopyFrom(r->GetRepeatedMessage(page, f, k));
      }
    } else if (!f->is_repeated()) {
      singular.push_back(f);
    }
  }
  std::unique_ptr<Message> copy(page.New());
  copy->CopyFrom(page);
  into.GetReflection()->SwapFields(&into, copy.get(), singular);
}

// The request from --json, then the fields; an idempotency key generated
// (and shown) when the request takes one and none was given.
absl::StatusOr<std::unique_ptr<Message>> BuildRequest(const google::protobuf::MethodDescriptor& method,
                                                      const char* preset_json, const Options& options) {
  auto* factory = google::protobuf::MessageFactory::generated_factory();
  std::unique_ptr<Message> request(factory->GetPrototype(method.input_type())->New());
  if (preset_json != nullptr) RETURN_IF_ERROR(MergeJson(*request, preset_json));
  if (!options.json.empty()) RETURN_IF_ERROR(MergeJson(*request, options.json));
  for (const auto& [path, value] : options.fields) RETURN_IF_ERROR(SetField(*request, path, value));
  const FieldDescriptor* key_field = method.input_type()->FindFieldByName("idempotency_key");
  if (key_field != nullptr && request->GetReflection()->GetString(*request, key_field).empty()) {
    const std::string key = absl::StrCat("ctl-", crypto::RandomString(crypto::kCrockfordBase32, 20));
    std::cerr << "idempotency key: " << key << " (pass --idempotency_key=" << key
              << " to retry this command safely)\n";
    request->GetReflection()->SetString(request.get(), key_field, key);
  }
  return request;
}

// Worth another try with the same request: the service was unreachable or
// busy, or asked for a retry; a timeout only when the idempotency key makes
// a second try safe (the first may have been done).
bool Transient(absl::StatusCode code, bool keyed) {
  return code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kAborted ||
         (keyed && code == absl::StatusCode::kDeadlineExceeded);
}

absl::StatusOr<std::string> CallWithRetries(const std::shared_ptr<grpc::Channel>& channel, const std::string& path,
                                            const Message& request, bool keyed, const rpc::CallOptions& call,
                                            int retries) {
  absl::Duration delay = kFirstRetryDelay;
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<std::string> bytes = rpc::CallUnaryBytes(channel, path, request.SerializeAsString(), call);
    if (bytes.ok() || attempt > retries || !Transient(bytes.status().code(), keyed)) return bytes;
    std::cerr << absl::StatusCodeToString(bytes.status().code()) << ": " << bytes.status().message()
              << "; retrying (" << attempt + 1 << " of " << retries + 1 << ")"
              << (keyed ? " with the same idempotency key" : "") << "\n";
    absl::SleepFor(delay);
    delay = std::min(delay * 2, kMaxRetryDelay);
  }
}

// For --all: sets up the request for the round after `round` from `page`;
// false when the job or the listing is complete.
// The first round's key is `base_key`; every later round gets
// "<base_key>-<round>".
bool NextRound(const google::protobuf::MethodDescriptor& method, const Message& page, int round,
               const std::string& base_key, Message& request) {
  const FieldDescriptor* key_field = method.input_type()->FindFieldByName("idempotency_key");
  const FieldDescriptor* page_token = method.input_type()->FindFieldByName("page_token");
  const FieldDescriptor* next_token = method.output_type()->FindFieldByName("next_page_token");
  const FieldDescriptor* has_more = method.output_type()->FindFieldByName("has_more");
  // Resumable batch jobs (RunTierEvaluation): resume_token in, next_resume_token out.
  const FieldDescriptor* resume_token = method.input_type()->FindFieldByName("resume_token");
  const FieldDescriptor* next_resume = method.output_type()->FindFieldByName("next_resume_token");
  const auto* r = page.GetReflection();
  const auto* rr = request.GetReflection();
  if (page_token != nullptr && next_token != nullptr && !r->GetString(page, next_token).empty()) {
    rr->SetString(&request, page_token, r->GetString(page, next_token));
    return true;
  }
  const bool resume =
      resume_token != nullptr && next_resume != nullptr && !r->GetString(page, next_resume).empty();
  if (!resume && !(has_more != nullptr && r->GetBool(page, has_more))) return false;
  // The next batch of the job, from where this one stopped (or, for a long
  // job in bounded rounds, the next round), under a key of its own.
  if (resume) rr->SetString(&request, resume_token, r->GetString(page, next_resume));
  if (key_field != nullptr) rr->SetString(&request, key_field, absl::StrCat(base_key, "-", round + 1));
  return true;
}

// The result on stdout, or in the file(s) of --out with a line saying so.
int Emit(const Message& result, const Options& options) {
  std::string text = options.output == "json" ? RenderJson(result) + "\n" : RenderTable(result);
  if (options.out.empty()) {
    std::cout << text;
  } else {
    absl::StatusOr<std::string> wrote = WriteOut(options.out, result, text);
    if (!wrote.ok()) {
      std::cerr << absl::StatusCodeToString(wrote.status().code()) << ": " << wrote.status().message() << "\n";
      return 5;
    }
    std::cout << *wrote;
  }
  return FoundProblems(result) ? 6 : 0;
}

int Run(const std::string& service, const std::string& method_name, const Command* command,
        const Options& options) {
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  const auto* svc = pool->FindServiceByName(ServiceFullName(service));
  if (svc == nullptr) return Usage(absl::StrCat("no service '", service, "'"));
  const auto* method = svc->FindMethodByName(method_name);
  if (method == nullptr) return Usage(absl::StrCat("no method '", method_name, "' in ", svc->full_name()));
  if (method->client_streaming() || method->server_streaming()) {
    return Usage(absl::StrCat(method_name, " is a stream; loyaltyctl calls unary RPCs only"));
  }
  if (options.help) {
    std::cout << svc->full_name() << "/" << method->name() << "\nfields of " << method->input_type()->name()
              << ":\n"
              << DescribeFields(*method->input_type());
    return 0;
  }
  absl::StatusOr<std::unique_ptr<Message>> built =
      BuildRequest(*method, command == nullptr ? nullptr : command->preset_json, options);
  if (!built.ok()) return Usage(std::string(built.status().message()));
  std::unique_ptr<Message> request = *std::move(built);
  const FieldDescriptor* key_field = method->input_type()->FindFieldByName("idempotency_key");
  const bool keyed = key_field != nullptr;
  const std::string base_key = keyed ? request->GetReflection()->GetString(*request, key_field) : "";

  const char* key = std::getenv("LOYALTY_API_KEY");
  if (key == nullptr || *key == '\0') return Usage("LOYALTY_API_KEY is not set");
  const int64_t deadline_ms =
      options.deadline_ms > 0 ? options.deadline_ms : (command == nullptr ? kDefaultDeadlineMs : command->deadline_ms);
  rpc::CallOptions call{.api_key = key, .deadline = absl::Milliseconds(deadline_ms)};
  auto credentials = rpc::ClientCredentialsFromEnv();
  if (!credentials.ok()) return Usage(std::string(credentials.status().message()));
  auto channel = grpc::CreateChannel(options.targets.at(service), *credentials);
  const std::string path = absl::StrCat("/", svc->full_name(), "/", method->name());

  auto* factory = google::protobuf::MessageFactory::generated_factory();
  std::unique_ptr<Message> result(factory->GetPrototype(method->output_type())->New());
  for (int round = 1;; ++round) {
    absl::StatusOr<std::string> bytes = CallWithRetries(channel, path, *request, keyed, call, options.retries);
    if (!bytes.ok()) {
      std::cerr << absl::StatusCodeToString(bytes.status().code()) << ": " << bytes.status().message() << "\n";
      if (round > 1) std::cerr << "(stopped at round " << round << "; the rounds before it are done)\n";
      return ExitCodeOf(bytes.status().code());
    }
    std::unique_ptr<Message> page(factory->GetPrototype(method->output_type())->New());
    if (!page->ParseFromString(*bytes)) {
      std::cerr << "unreadable response\n";
      return 5;
    }
    if (round == 1) {
      result->CopyFrom(*page);
    } else {
      AppendPage(*result, *page);
    }
    if (!options.all || !NextRound(*method, *page, round, base_key, *request)) break;
    std::cerr << "round " << round << " done, continuing...\n";
    if (round >= kMaxRounds) {
      std::cerr << "stopping after " << round << " rounds\n";
      break;
    }
  }
  return Emit(*result, options);
}

// Reads one flag (`--name=value` or `--name value`) at argv[*i] into
// `options`; advances *i past a separate value.
absl::Status ParseFlag(int argc, char** argv, int* i, Options& options) {
  const std::string arg = argv[*i];
  const size_t eq = arg.find('=');
  const std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
  if (name == "all" || name == "help" || name == "version") {
    if (eq != std::string::npos) return absl::InvalidArgumentError(absl::StrCat("--", name, " takes no value"));
    (name == "all" ? options.all : name == "help" ? options.help : options.version) = true;
    return absl::OkStatus();
  }
  std::string value;
  if (eq != std::string::npos) {
    value = arg.substr(eq + 1);
  } else if (*i + 1 < argc && !absl::StartsWith(argv[*i + 1], "--")) {
    value = argv[++*i];
  } else {
    return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value (--", name, "=VALUE)"));
  }
  if (name == "output") {
    if (value != "table" && value != "json") return absl::InvalidArgumentError("--output: table or json");
    options.output = value;
  } else if (name == "out") {
    if (value.empty()) return absl::InvalidArgumentError("--out: a path");
    options.out = value;
  } else if (options.targets.contains(name)) {
    options.targets[name] = value;
  } else if (name == "deadline_ms") {
    if (!absl::SimpleAtoi(value, &options.deadline_ms) || options.deadline_ms <= 0) {
      return absl::InvalidArgumentError("--deadline_ms: a positive number");
    }
  } else if (name == "retries") {
    if (!absl::SimpleAtoi(value, &options.retries) || options.retries < 0 || options.retries > kMaxRetries) {
      return absl::InvalidArgumentError(absl::StrCat("--retries: 0..", kMaxRetries));
    }
  } else if (name == "json") {
    options.json = value;
  } else if (name == "api_key") {
    return absl::InvalidArgumentError("pass the key in LOYALTY_API_KEY, not on the command line");
  } else {
    options.fields.emplace_back(name, value);
  }
  return absl::OkStatus();
}

absl::StatusOr<Options> ParseArgs(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h") {
      options.help = true;
    } else if (!absl::StartsWith(a, "--") || a == "--") {
      options.words.push_back(a);
    } else {
      RETURN_IF_ERROR(ParseFlag(argc, argv, &i, options));
    }
  }
  return options;
}

}  // namespace
}  // namespace loyalty::ctl

int main(int argc, char** argv) {
  using namespace loyalty::ctl;
  LinkDescriptors();
  absl::StatusOr<Options> parsed = ParseArgs(argc, argv);
  if (!parsed.ok()) return Usage(std::string(parsed.status().message()));
  const Options& options = *parsed;
  const std::vector<std::string>& words = options.words;
  if (options.version) return Version();
  if (words.empty() || words[0] == "help") return Help(words.size() > 1 ? words[1] : "") == 0 ? 0 : 2;
  if (words[0] == "call") {
    if (words.size() != 3) return Usage("call SERVICE METHOD");
    return Run(words[1], words[2], nullptr, options);
  }
  if (words.size() == 1) return options.help ? Help(words[0]) : Usage(absl::StrCat(words[0], ": which action?"));
  for (const Command& c : kCommands) {
    if (words[0] == c.group && words[1] == c.action) {
      if (words.size() != 2) return Usage("unexpected words after the action (fields are --FIELD VALUE)");
      return Run(c.service, c.method, &c, options);
    }
  }
  return Usage(absl::StrCat("no command '", words[0], " ", words[1], "' (see loyaltyctl help)"));
}
