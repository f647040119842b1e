#pragma once
// Opaque keyset page tokens, bound to the query they were issued for.
//
// A token carries a position (e.g. the last row id returned) and a short hash
// of the query's filters ("scope"). Decoding it under other filters is
// INVALID_ARGUMENT, as common.proto promises.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace loyalty::paging {

std::string EncodePageToken(absl::string_view scope, int64_t position);
// INVALID_ARGUMENT naming page_token when malformed or issued for another
// scope.
absl::StatusOr<int64_t> DecodePageToken(absl::string_view token, absl::string_view scope);

// The same for a string position (e.g. the last id returned).
std::string EncodeKeyPageToken(absl::string_view scope, absl::string_view key);
absl::StatusOr<std::string> DecodeKeyPageToken(absl::string_view token, absl::string_view scope);

// 0 -> `default_size`; above `max_size` -> `max_size`; negative ->
// INVALID_ARGUMENT naming page_size.
absl::StatusOr<int> PageSize(int requested, int default_size, int max_size);

}  // namespace loyalty::paging
