#pragma once
// Shared rules for the strings callers send: lengths counted in characters
// (Unicode code points, as every proto comment counts them, not bytes) and
// lower-case slugs. Pure functions, no I/O; every error is INVALID_ARGUMENT
// and starts with the field path it was given ("lines[3].description: ...").

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace loyalty {

// Number of code points in `text` when it is well-formed UTF-8 (no overlong
// forms, surrogates or values past U+10FFFF); -1 otherwise. When
// `allow_controls` is false, C0 controls, DEL and C1 controls also give -1.
long CountCodePoints(absl::string_view text, bool allow_controls = true);

// OK for well-formed UTF-8 of `min_chars`..`max_chars` characters. Text of
// only ASCII spaces counts as empty for the minimum ("field: required" when
// min_chars is 1). Errors: "field: required", "field: shorter than N
// characters", "field: longer than N characters", "field: not valid UTF-8".
absl::Status ValidateText(absl::string_view field, absl::string_view text, size_t min_chars,
                          size_t max_chars);

// OK for a lower-case slug of `min_chars`..`max_chars` characters:
// [a-z0-9] then [a-z0-9-]. REQUIRES: 1 <= min_chars <= max_chars. The error
// names the pattern, e.g. "category: must match [a-z0-9][a-z0-9-]{0,63}".
absl::Status ValidateSlug(absl::string_view field, absl::string_view slug, size_t min_chars,
                          size_t max_chars);

// An ISO 3166-1 alpha-2 code as the protos send it: two upper-case ASCII
// letters ("DE"). Only the form is checked, not the assignment list.
absl::Status ValidateCountryCode(absl::string_view field, absl::string_view code);

// Coalition product category codes (ledger PurchaseLine.category, catalog
// Reward.category and Campaign.categories): a lower-case slug of 1..64
// characters, e.g. "pet-food".
inline constexpr size_t kMaxCategoryLength = 64;
absl::Status ValidateCategory(absl::string_view field, absl::string_view category);

}  // namespace loyalty
