#pragma once
// Configuration from command-line flags and environment variables.
//
// Every setting is declared with a FlagSpec. Its value comes from, in order:
//   1. the flag `--name=value` (or `--name value`),
//   2. the environment variable LOYALTY_<NAME> (upper case),
//   3. the declared default.
// An undeclared flag is an error, so a typo never silently falls back to a
// default. Secret settings are redacted by Describe().

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/status/statusor.h"

namespace loyalty::config {

struct FlagSpec {
  std::string name;           // e.g. "db_port"
  std::string default_value;  // as text
  std::string help;           // one line
  bool secret = false;        // never printed
};

using EnvLookup = std::function<std::optional<std::string>(absl::string_view name)>;

// Reads the real process environment.
std::optional<std::string> ProcessEnv(absl::string_view name);

// "db_port" -> "LOYALTY_DB_PORT".
std::string EnvName(absl::string_view flag_name);

class Config {
 public:
  // Parses argv[1..argc). Fails with INVALID_ARGUMENT naming the flag for an
  // unknown flag, a flag without a value, or a duplicate declaration.
  static absl::StatusOr<Config> Load(std::vector<FlagSpec> specs, int argc,
                                     const char* const* argv,
                                     const EnvLookup& env = ProcessEnv);

  // REQUIRES: `name` was declared (checked; an undeclared name aborts, as it
  // is a programming error).
  const std::string& GetString(absl::string_view name) const;
  // INVALID_ARGUMENT naming the flag when the text is not an integer or is
  // outside [min, max].
  absl::StatusOr<int64_t> GetInt(absl::string_view name, int64_t min = INT64_MIN,
                                 int64_t max = INT64_MAX) const;
  absl::StatusOr<bool> GetBool(absl::string_view name) const;

  // Where a value came from: "flag", "env" or "default".
  absl::string_view SourceOf(absl::string_view name) const;

  bool help_requested() const { return help_requested_; }
  std::string Help(absl::string_view program) const;
  // "name=value(source) ..." with secrets shown as "<redacted>".
  std::string Describe() const;

 private:
  struct Entry {
    FlagSpec spec;
    std::string value;
    absl::string_view source;
  };
  const Entry& Find(absl::string_view name) const;

  std::map<std::string, Entry, std::less<>> entries_;
  bool help_requested_ = false;
};

}  // namespace loyalty::config
