#include "common/validation/text.h"

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace loyalty {

long CountCodePoints(absl::string_view s, bool allow_controls) {
  long count = 0;
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      len = 1;
      cp = c;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return -1;
    }
    if (i + len > s.size()) return -1;
    for (size_t k = 1; k < len; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return -1;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates and out-of-range code points are malformed.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
      return -1;
    }
    if (!allow_controls && (cp < 0x20 || (cp >= 0x7f && cp < 0xa0))) return -1;
    i += len;
    ++count;
  }
  return count;
}

absl::Status ValidateText(absl::string_view field, absl::string_view text, size_t min_chars,
                          size_t max_chars) {
  const long n = CountCodePoints(text);
  if (n < 0) return absl::InvalidArgumentError(absl::StrCat(field, ": not valid UTF-8"));
  const long significant = CountCodePoints(absl::StripAsciiWhitespace(text));
  if (static_cast<size_t>(significant) < min_chars) {
    return absl::InvalidArgumentError(min_chars == 1 ? absl::StrCat(field, ": required")
                                                     : absl::StrCat(field, ": shorter than ", min_chars,
                                                                    " characters"));
  }
  if (static_cast<size_t>(n) > max_chars) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": longer than ", max_chars, " characters"));
  }
  return absl::OkStatus();
}

absl::Status ValidateSlug(absl::string_view field, absl::string_view slug, size_t min_chars,
                          size_t max_chars) {
  bool ok = slug.size() >= min_chars && slug.size() <= max_chars;
  for (size_t i = 0; ok && i < slug.size(); ++i) {
    const char c = slug[i];
    ok = absl::ascii_islower(c) || absl::ascii_isdigit(c) || (i > 0 && c == '-');
  }
  if (ok) return absl::OkStatus();
  if (slug.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  return absl::InvalidArgumentError(absl::StrCat(field, ": must match [a-z0-9][a-z0-9-]{", min_chars - 1, ",",
                                                 max_chars - 1, "}"));
}

absl::Status ValidateCountryCode(absl::string_view field, absl::string_view code) {
  if (code.size() != 2 || !absl::ascii_isupper(code[0]) || !absl::ascii_isupper(code[1])) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ISO 3166-1 alpha-2 code, upper case"));
  }
  return absl::OkStatus();
}

absl::Status ValidateCategory(absl::string_view field, absl::string_view category) {
  return ValidateSlug(field, category, 1, kMaxCategoryLength);
}

}  // namespace loyalty
