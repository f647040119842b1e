#pragma once
// Input rules and normalisation for member data. Pure functions: no gRPC, no
// MySQL. Every error is INVALID_ARGUMENT and names the field.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/validation/ids.h"  // ValidateId
#include "loyalty/common/v1/common.pb.h"

namespace loyalty::membership {

inline constexpr size_t kMaxNameChars = 100;
inline constexpr size_t kMaxEmailLength = 254;
inline constexpr size_t kMaxReasonChars = 500;
inline constexpr size_t kMaxDocumentVersionLength = 32;
inline constexpr size_t kMaxPaymentReferenceChars = 64;

// Trimmed and lower-cased; "field: ..." errors for anything that is not a
// plausible address (one @, a dotted domain, no spaces or control characters,
// at most 254 characters).
absl::StatusOr<std::string> NormaliseEmail(absl::string_view field, absl::string_view email);

// E.164 ("+4915112345678"). Accepts spaces, dashes, dots, slashes and
// parentheses as separators, a leading "00" for "+", and a national number
// when `region` (ISO 3166-1 alpha-2) is given: its trunk prefix 0 is dropped
// and the country code added.
absl::StatusOr<std::string> NormalisePhone(absl::string_view field, absl::string_view phone,
                                           absl::string_view region);

// Trimmed; valid UTF-8 without control characters; `min_chars`..`max_chars`
// code points.
absl::StatusOr<std::string> NormaliseText(absl::string_view field, absl::string_view text,
                                          size_t min_chars, size_t max_chars);

// A BCP 47 tag from `supported` (matched case-insensitively, returned in the
// canonical case of the supported list).
absl::StatusOr<std::string> NormaliseLanguage(absl::string_view field, absl::string_view tag,
                                              const std::vector<std::string>& supported);

// A real calendar date, year >= 1900, not after today (in the earliest time
// zone, UTC+14, so nobody born today somewhere is refused).
absl::Status ValidateBirthDate(absl::string_view field, const common::v1::Date& date, absl::Time now);


// Terms/privacy document versions: 1..32 printable ASCII characters.
absl::Status ValidateDocumentVersion(absl::string_view field, absl::string_view version);

}  // namespace loyalty::membership
