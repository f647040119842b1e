#include "common/validation/ids.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace loyalty {

absl::Status ValidateId(absl::string_view field, absl::string_view id) {
  if (id.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  if (id.size() > kMaxIdLength) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": longer than ", kMaxIdLength, " characters"));
  }
  for (char c : id) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_' && c != '.') {
      return absl::InvalidArgumentError(absl::StrCat(field, ": only letters, digits and - _ . are allowed"));
    }
  }
  return absl::OkStatus();
}

}  // namespace loyalty
