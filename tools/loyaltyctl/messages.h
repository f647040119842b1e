#pragma once
// loyaltyctl's two translations, from descriptors, so that every RPC of
// every service works the same way:
// - command-line fields to a request message (SetField);
// - a response message to a readable table or to JSON (Render*).

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace loyalty::ctl {

// Sets `path` ("member_id", "amount.amount_minor", "lines") on `message` from
// text. Scalars as written; bools true/false; enums by full name
// (MEMBER_STATUS_SUSPENDED) or by their last part, any case (suspended);
// google.protobuf.Timestamp as RFC 3339; a repeated field gets one element
// per call. INVALID_ARGUMENT naming the path when it cannot be set.
absl::Status SetField(google::protobuf::Message& message, absl::string_view path, absl::string_view text);

// Merges proto3 JSON into `message` (the --json option).
absl::Status MergeJson(google::protobuf::Message& message, absl::string_view json);

// The request's fields and their types, one per line, for --help.
std::string DescribeFields(const google::protobuf::Descriptor& descriptor);

// Readable text: the first repeated message field as a table (one row per
// element, one column per scalar leaf, empty columns left out), then the
// other fields as "name: value" lines, then every other list (later ones,
// lists inside nested messages or inside the rows of a table) as a table of
// its own under a "name:" line, each row of an inner list led by the first
// column of the row it belongs to. Money is shown as a decimal with its
// currency, timestamps in RFC 3339 (UTC), enums by name, bytes by their size.
std::string RenderTable(const google::protobuf::Message& message);

// Proto3 JSON with the .proto field names, indented; fields at their zero
// value are printed too (0, "", false, the enum's UNSPECIFIED).
std::string RenderJson(const google::protobuf::Message& message);

}  // namespace loyalty::ctl
