#pragma once
// The table-driven validation tests of the services (tests/services/<svc>/
// <svc>_validation_test.cc): one row per documented input constraint of a
// proto, each sending one request that breaks exactly that constraint. A row
// passes when the call is refused INVALID_ARGUMENT with a message that starts
// with the field path, and nothing it could change has changed.

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace loyalty::testing::validation {

// n copies of a two-byte character: n characters, 2n bytes.
inline std::string Accented(size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += "\xc3\xa9";  // U+00E9
  return s;
}

struct Row {
  std::string name;
  std::string field;  // the message must start with it
  std::function<absl::Status()> call;
};

// A row calling `call(request)` once `mutate` has broken `request`.
template <typename Request, typename Call>
Row Make(std::string name, std::string field, Request request, std::function<void(Request&)> mutate, Call call) {
  mutate(request);
  return Row{std::move(name), std::move(field), [request, call] { return call(request); }};
}

// Runs every row. `state` describes everything a call could change (the
// schema's table checksums, the fakes' counters); `sentinel` must appear in
// it, so that an empty description cannot pass.
inline void ExpectEachRefusedWritingNothing(const std::vector<Row>& rows, const std::function<std::string()>& state,
                                            absl::string_view sentinel) {
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    const std::string before = state();
    ASSERT_TRUE(absl::StrContains(before, sentinel)) << before;
    const absl::Status s = row.call();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_TRUE(absl::StartsWith(s.message(), row.field)) << "expected field " << row.field << ": " << s;
    EXPECT_EQ(state(), before) << "a refused request wrote something";
  }
}

}  // namespace loyalty::testing::validation
