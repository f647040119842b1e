#include "services/membership/validation.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "common/validation/text.h"

namespace loyalty::membership {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

// Code points of well-formed UTF-8 without control characters; -1 otherwise.
long CountCodePoints(absl::string_view s) { return loyalty::CountCodePoints(s, /*allow_controls=*/false); }

struct Region {
  const char* code;
  const char* calling_code;
  bool drop_trunk_zero;
};

// Regions the programme runs in, and their neighbours. Italy keeps its
// leading 0 in international format; NANP numbers have no trunk 0.
constexpr Region kRegions[] = {
    {"AT", "43", true}, {"BE", "32", true}, {"CH", "41", true}, {"DE", "49", true},
    {"DK", "45", false}, {"ES", "34", false}, {"FR", "33", true}, {"GB", "44", true},
    {"IE", "353", true}, {"IT", "39", false}, {"LU", "352", false}, {"NL", "31", true},
    {"NO", "47", false}, {"PL", "48", false}, {"PT", "351", false}, {"SE", "46", true},
    {"US", "1", false}, {"CA", "1", false},
};

}  // namespace

absl::StatusOr<std::string> NormaliseEmail(absl::string_view field, absl::string_view email) {
  std::string e = absl::AsciiStrToLower(absl::StripAsciiWhitespace(email));
  if (e.empty()) return Invalid(field, "empty");
  if (CountCodePoints(e) < 0) return Invalid(field, "not valid UTF-8, or contains control characters");
  if (e.size() > kMaxEmailLength) return Invalid(field, "longer than 254 characters");
  const size_t at = e.find('@');
  if (at == std::string::npos || e.find('@', at + 1) != std::string::npos) {
    return Invalid(field, "must contain exactly one @");
  }
  absl::string_view local(e.data(), at);
  absl::string_view domain(e.data() + at + 1, e.size() - at - 1);
  if (local.empty() || local.size() > 64) return Invalid(field, "the part before @ must be 1..64 characters");
  for (char c : local) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '(' || c == ')' || c == ',' ||
        c == ':' || c == ';' || c == '<' || c == '>' || c == '[' || c == ']' || c == '\\' || c == '"') {
      return Invalid(field, "invalid character before @");
    }
  }
  if (local.front() == '.' || local.back() == '.' || absl::StrContains(local, "..")) {
    return Invalid(field, "misplaced dot before @");
  }
  std::vector<absl::string_view> labels = absl::StrSplit(domain, '.');
  if (labels.size() < 2) return Invalid(field, "the domain must contain a dot");
  for (absl::string_view label : labels) {
    if (label.empty() || label.size() > 63) return Invalid(field, "empty or overlong domain label");
    if (label.front() == '-' || label.back() == '-') return Invalid(field, "domain label starts or ends with -");
    for (char c : label) {
      if (!absl::ascii_isalnum(c) && c != '-') return Invalid(field, "invalid character in the domain");
    }
  }
  if (labels.back().size() < 2 || std::all_of(labels.back().begin(), labels.back().end(),
                                              [](char c) { return absl::ascii_isdigit(c); })) {
    return Invalid(field, "invalid top-level domain");
  }
  return e;
}

absl::StatusOr<std::string> NormalisePhone(absl::string_view field, absl::string_view phone,
                                           absl::string_view region) {
  std::string digits;
  bool plus = false;
  absl::string_view p = absl::StripAsciiWhitespace(phone);
  if (p.empty()) return Invalid(field, "empty");
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '+' && i == 0) {
      plus = true;
    } else if (absl::ascii_isdigit(c)) {
      digits.push_back(c);
    } else if (c != ' ' && c != '-' && c != '.' && c != '/' && c != '(' && c != ')') {
      return Invalid(field, "only digits, a leading + and separators are allowed");
    }
  }
  if (!plus && absl::StartsWith(digits, "00")) {
    plus = true;
    digits.erase(0, 2);
  }
  if (!plus) {
    if (region.empty()) {
      return Invalid(field, "not in E.164 (+<country code><number>); give phone_region for a national number");
    }
    const std::string r = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(region));
    const Region* found = nullptr;
    for (const Region& candidate : kRegions) {
      if (r == candidate.code) found = &candidate;
    }
    if (found == nullptr) return Invalid("phone_region", absl::StrCat("unsupported region \"", r, "\""));
    if (found->drop_trunk_zero) {
      if (digits.empty() || digits[0] != '0') {
        return Invalid(field, "a national number must start with the trunk prefix 0");
      }
      digits.erase(0, 1);
    } else if (std::string(found->calling_code) == "1" && digits.size() == 11 && digits[0] == '1') {
      digits.erase(0, 1);
    }
    if (std::string(found->calling_code) == "1" && digits.size() != 10) {
      return Invalid(field, "a US or Canadian number has 10 digits");
    }
    digits = absl::StrCat(found->calling_code, digits);
  }
  if (digits.empty() || digits[0] == '0') return Invalid(field, "the country code cannot start with 0");
  if (digits.size() < 8 || digits.size() > 15) return Invalid(field, "E.164 numbers have 8..15 digits");
  return absl::StrCat("+", digits);
}

absl::StatusOr<std::string> NormaliseText(absl::string_view field, absl::string_view text,
                                          size_t min_chars, size_t max_chars) {
  absl::string_view t = absl::StripAsciiWhitespace(text);
  const long n = CountCodePoints(t);
  if (n < 0) return Invalid(field, "not valid UTF-8 text (control characters are not allowed)");
  if (static_cast<size_t>(n) < min_chars) {
    return min_chars == 1 ? Invalid(field, "required") : Invalid(field, absl::StrCat("shorter than ", min_chars, " characters"));
  }
  if (static_cast<size_t>(n) > max_chars) return Invalid(field, absl::StrCat("longer than ", max_chars, " characters"));
  return std::string(t);
}

absl::StatusOr<std::string> NormaliseLanguage(absl::string_view field, absl::string_view tag,
                                              const std::vector<std::string>& supported) {
  absl::string_view t = absl::StripAsciiWhitespace(tag);
  if (t.empty()) return Invalid(field, "required");
  for (const std::string& s : supported) {
    if (absl::EqualsIgnoreCase(s, t)) return s;
  }
  return Invalid(field, absl::StrCat("unsupported language \"", t, "\"; supported: ", absl::StrJoin(supported, ", ")));
}

absl::Status ValidateBirthDate(absl::string_view field, const common::v1::Date& date, absl::Time now) {
  if (date.year() < 1900 || date.year() > 9999) return Invalid(field, "year must be 1900 or later");
  const absl::CivilDay day(date.year(), date.month(), date.day());
  if (date.month() < 1 || date.month() > 12 || day.year() != date.year() || day.month() != date.month() ||
      day.day() != date.day()) {
    return Invalid(field, "not a calendar date");
  }
  const absl::CivilDay latest_today = absl::ToCivilDay(now, absl::FixedTimeZone(14 * 3600));
  if (day > latest_today) return Invalid(field, "in the future");
  return absl::OkStatus();
}

absl::Status ValidateDocumentVersion(absl::string_view field, absl::string_view version) {
  if (version.empty()) return Invalid(field, "required");
  if (version.size() > kMaxDocumentVersionLength) return Invalid(field, "longer than 32 characters");
  for (char c : version) {
    if (c <= 0x20 || c >= 0x7f) return Invalid(field, "printable ASCII without spaces only");
  }
  return absl::OkStatus();
}

}  // namespace loyalty::membership
