#include "partners/cli_support/cli_support.h"

#include <climits>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/money/currency.h"
#include "common/rpc/client_call.h"

namespace loyalty::partners {

bool ParseAmount(const std::string& text, const std::string& currency, int64_t* minor) {
  const std::optional<int> digits = money::MinorDigits(currency);
  if (!digits.has_value()) return false;
  const std::vector<std::string> parts = absl::StrSplit(text, '.');
  if (parts.empty() || parts.size() > 2 || parts[0].empty()) return false;
  std::string fraction = parts.size() == 2 ? parts[1] : "";
  if (static_cast<int>(fraction.size()) > *digits) return false;
  fraction.append(static_cast<size_t>(*digits) - fraction.size(), '0');
  for (char c : parts[0] + fraction) {
    if (c < '0' || c > '9') return false;
  }
  int64_t major = 0;
  int64_t frac = 0;
  if (!absl::SimpleAtoi(parts[0], &major)) return false;
  if (!fraction.empty() && !absl::SimpleAtoi(fraction, &frac)) return false;
  int64_t scale = 1;
  for (int i = 0; i < *digits; ++i) scale *= 10;
  if (major > (INT64_MAX - frac) / scale) return false;
  *minor = major * scale + frac;
  return true;
}

bool ParseLines(const std::vector<std::string>& words, const std::string& currency,
                google::protobuf::RepeatedPtrField<ledger::v1::PurchaseLine>* lines) {
  for (const std::string& word : words) {
    const std::pair<std::string, std::string> kv = absl::StrSplit(word, absl::MaxSplits('=', 1));
    int64_t minor = 0;
    if (kv.first.empty() || !ParseAmount(kv.second, currency, &minor)) {
      std::cerr << "line " << word << ": want CATEGORY=AMOUNT\n";
      return false;
    }
    ledger::v1::PurchaseLine* line = lines->Add();
    line->set_category(kv.first);
    line->set_quantity(1);
    line->mutable_amount()->set_amount_minor(minor);
    line->mutable_amount()->set_currency(currency);
  }
  return true;
}

int Fail(const sdk::Error& error) {
  std::cerr << error.ToString() << "\n";
  if (!error.field.empty()) std::cerr << "  (field: " << error.field << ")\n";
  return error.retryable() ? kExitTryAgain : kExitRefused;
}

sdk::ClientOptions Options(const std::string& target, const std::string& api_key) {
  sdk::ClientOptions o;
  o.target = target;
  o.api_key = api_key;
  auto credentials = rpc::ClientCredentialsFromEnv();
  if (!credentials.ok()) {
    // No silent fallback to plaintext.
    std::cerr << credentials.status().message() << "\n";
    std::exit(kExitUsage);
  }
  o.credentials = *credentials;
  return o;
}

int MemberOfCard(const sdk::MembershipClient& membership, const std::string& card, std::string* member_id) {
  auto found = membership.LookupByCard(card);
  if (!found.ok()) return Fail(found.error());
  *member_id = found->member().member_id();
  return kExitOk;
}

int ParseCommandLine(int argc, char** argv, const std::map<std::string, std::string*>& options, CommandLine* out) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (out->words.empty() && a.rfind("--", 0) == 0) {
      const std::pair<std::string, std::string> kv = absl::StrSplit(a.substr(2), absl::MaxSplits('=', 1));
      if (kv.first == "help") {
        out->help = true;
        return kExitOk;
      }
      auto target = options.find(kv.first);
      if (target == options.end()) {
        std::cerr << "unknown option --" << kv.first << "\n";
        return kExitUsage;
      }
      *target->second = kv.second;
      continue;
    }
    out->words.push_back(a);
  }
  if (out->words.empty()) return kExitUsage;
  if (const char* key = std::getenv("LOYALTY_API_KEY"); key != nullptr) out->api_key = key;
  if (out->api_key.empty()) {
    std::cerr << "LOYALTY_API_KEY is not set\n";
    return kExitUsage;
  }
  return kExitOk;
}

std::string DescribeBalance(const ledger::v1::AccountBalance& b) {
  return absl::StrCat(b.available_points(), " points available (", b.posted_points(), " posted, ",
                      b.pending_points(), " on hold)");
}

}  // namespace loyalty::partners
