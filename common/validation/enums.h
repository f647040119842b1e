#pragma once
// The shared rule for enum fields that callers send. proto3 enums are open:
// a value the generated code does not know survives parsing, so a field whose
// comment lists its values must refuse the others, not just 0.

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace loyalty {

// `is_valid` is the generated X_IsValid. INVALID_ARGUMENT naming `field`
// when `value` is unknown, or 0 (X_UNSPECIFIED) and `required`.
inline absl::Status ValidateEnum(absl::string_view field, int value, bool (*is_valid)(int), bool required) {
  if (value == 0 && required) return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  if (!is_valid(value)) return absl::InvalidArgumentError(absl::StrCat(field, ": unknown value ", value));
  return absl::OkStatus();
}

}  // namespace loyalty
