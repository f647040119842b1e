#pragma once
// Structured logging: one logfmt line per event on stderr,
//   ts=2026-11-23T10:00:00.123456Z level=info event=rpc method=/x status=OK
//
// Only the fields a call site passes explicitly are written, so nothing leaks
// by accident: never pass personal data (names, emails, phones, card numbers)
// or secrets (passwords, API keys) as a field. Identifiers are fine.
//
// Thread-safe: each line is emitted with a single write.

#include <concepts>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/strings/str_cat.h"

namespace loyalty::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// One key=value pair. Integers are formatted in decimal.
struct Field {
  Field(absl::string_view k, absl::string_view v) : key(k), value(v) {}
  Field(absl::string_view k, const char* v) : key(k), value(v) {}
  Field(absl::string_view k, const std::string& v) : key(k), value(v) {}
  template <std::integral T>
  Field(absl::string_view k, T v) : key(k), value(absl::StrCat(v)) {}

  absl::string_view key;
  std::string value;
};

using Fields = std::initializer_list<Field>;

void Write(Level level, absl::string_view event, Fields fields);
inline void Debug(absl::string_view event, Fields fields = {}) { Write(Level::kDebug, event, fields); }
inline void Info(absl::string_view event, Fields fields = {}) { Write(Level::kInfo, event, fields); }
inline void Warn(absl::string_view event, Fields fields = {}) { Write(Level::kWarn, event, fields); }
inline void Error(absl::string_view event, Fields fields = {}) { Write(Level::kError, event, fields); }

// Lines below this level are dropped. Default kInfo.
void SetMinLevel(Level level);
// Parses "debug", "info", "warn", "error".
bool ParseLevel(absl::string_view text, Level* level);

// Replaces the stderr sink (tests capture lines this way). Pass nullptr to
// restore stderr.
void SetSinkForTesting(std::function<void(absl::string_view line)> sink);

// Formats one line without the timestamp; exposed for tests.
std::string FormatLine(Level level, absl::string_view event, Fields fields);

// A short random tag fixed for the life of the process (used in error refs).
const std::string& ProcessTag();

}  // namespace loyalty::log
