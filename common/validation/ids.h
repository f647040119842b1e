#pragma once
// The one rule for identifiers that callers send (partner, member, tier,
// transfer, hold and segment ids), shared by every service.

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace loyalty {

inline constexpr size_t kMaxIdLength = 64;

// OK for 1..64 characters of [A-Za-z0-9._-]; otherwise INVALID_ARGUMENT
// naming `field`.
absl::Status ValidateId(absl::string_view field, absl::string_view id);

}  // namespace loyalty
