#include "absl/strings/string_view.h"
#include "common/config/config.h"

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace loyalty::config {

std::optional<std::string> ProcessEnv(absl::string_view name) {
  const char* v = std::getenv(std::string(name).c_str());
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

std::string EnvName(absl::string_view flag_name) {
  return absl::StrCat("LOYALTY_", absl::AsciiStrToUpper(flag_name));
}

absl::StatusOr<Config> Config::Load(std::vector<FlagSpec> specs, int argc,
                                    const char* const* argv, const EnvLookup& env) {
  Config config;
  for (FlagSpec& spec : specs) {
    std::string name = spec.name;
    Entry entry{std::move(spec), "", "default"};
    entry.value = entry.spec.default_value;
    if (auto from_env = env(EnvName(name)); from_env.has_value()) {
      entry.value = *from_env;
      entry.source = "env";
    }
    if (!config.entries_.emplace(name, std::move(entry)).second) {
      return absl::InvalidArgumentError(absl::StrCat("flag --", name, " declared twice"));
    }
  }
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      config.help_requested_ = true;
      continue;
    }
    if (!absl::ConsumePrefix(&arg, "--")) {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument '", arg, "': settings are --name=value"));
    }
    absl::string_view name = arg;
    std::optional<std::string> value;
    if (size_t eq = arg.find('='); eq != absl::string_view::npos) {
      name = arg.substr(0, eq);
      value = std::string(arg.substr(eq + 1));
    }
    auto it = config.entries_.find(name);
    if (it == config.entries_.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
    if (!value.has_value()) {
      if (i + 1 >= argc) {
        return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
      }
      value = argv[++i];
    }
    it->second.value = *std::move(value);
    it->second.source = "flag";
  }
  return config;
}

const Config::Entry& Config::Find(absl::string_view name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    // A lookup of an undeclared setting is a bug in the caller, not bad input.
    std::fprintf(stderr, "config: setting '%.*s' was never declared\n",
                 static_cast<int>(name.size()), name.data());
    std::abort();
  }
  return it->second;
}

const std::string& Config::GetString(absl::string_view name) const { return Find(name).value; }

absl::StatusOr<int64_t> Config::GetInt(absl::string_view name, int64_t min, int64_t max) const {
  const Entry& e = Find(name);
  int64_t v = 0;
  if (!absl::SimpleAtoi(e.value, &v)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, ": '", e.spec.secret ? "<redacted>" : e.value,
                     "' is not an integer"));
  }
  if (v < min || v > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, ": ", v, " is outside [", min, ", ", max, "]"));
  }
  return v;
}

absl::StatusOr<bool> Config::GetBool(absl::string_view name) const {
  const Entry& e = Find(name);
  const std::string v = absl::AsciiStrToLower(e.value);
  if (v == "1" || v == "true" || v == "yes" || v == "on") return true;
  if (v == "0" || v == "false" || v == "no" || v == "off" || v.empty()) return false;
  return absl::InvalidArgumentError(absl::StrCat("--", name, ": '", e.value, "' is not a boolean"));
}

absl::string_view Config::SourceOf(absl::string_view name) const { return Find(name).source; }

std::string Config::Help(absl::string_view program) const {
  std::string out = absl::StrCat("usage: ", program, " [--name=value ...]\n\n",
                                 "Each flag may also come from the environment variable shown.\n\n");
  for (const auto& [name, e] : entries_) {
    absl::StrAppendFormat(&out, "  --%-22s %s\n  %-24s env %s, default '%s'\n", name,
                          e.spec.help, "", EnvName(name),
                          e.spec.secret ? "<redacted>" : e.spec.default_value);
  }
  return out;
}

std::string Config::Describe() const {
  std::string out;
  for (const auto& [name, e] : entries_) {
    if (!out.empty()) out.push_back(' ');
    absl::StrAppend(&out, name, "=", e.spec.secret ? "<redacted>" : e.value, "(", e.source, ")");
  }
  return out;
}

}  // namespace loyalty::config
