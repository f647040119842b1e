#include "common/paging/page_token.h"

#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/crypto/sha256.h"

namespace loyalty::paging {
namespace {

std::string ScopeTag(absl::string_view scope) { return crypto::Sha256Hex(scope).substr(0, 12); }

absl::Status Malformed() {
  return absl::InvalidArgumentError("page_token: malformed, or issued for other filters");
}

}  // namespace

std::string EncodePageToken(absl::string_view scope, int64_t position) {
  return absl::WebSafeBase64Escape(absl::StrCat(position, ".", ScopeTag(scope)));
}

absl::StatusOr<int64_t> DecodePageToken(absl::string_view token, absl::string_view scope) {
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw)) return Malformed();
  std::vector<std::string> parts = absl::StrSplit(raw, absl::MaxSplits('.', 1));
  int64_t position = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &position) || parts[1] != ScopeTag(scope)) {
    return Malformed();
  }
  return position;
}

std::string EncodeKeyPageToken(absl::string_view scope, absl::string_view key) {
  return absl::WebSafeBase64Escape(absl::StrCat(ScopeTag(scope), ".", key));
}

absl::StatusOr<std::string> DecodeKeyPageToken(absl::string_view token, absl::string_view scope) {
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw)) return Malformed();
  std::vector<std::string> parts = absl::StrSplit(raw, absl::MaxSplits('.', 1));
  if (parts.size() != 2 || parts[0] != ScopeTag(scope)) return Malformed();
  return parts[1];
}

absl::StatusOr<int> PageSize(int requested, int default_size, int max_size) {
  if (requested < 0) return absl::InvalidArgumentError("page_size: must not be negative");
  if (requested == 0) return default_size;
  return requested > max_size ? max_size : requested;
}

}  // namespace loyalty::paging
