#pragma once
// Cryptographically secure random values (OpenSSL RAND_bytes), for ids,
// codes and secrets that must not be guessable.

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace loyalty::crypto {

// `n` random bytes. Aborts if the system CSPRNG fails: continuing with
// predictable values would be worse.
std::string RandomBytes(size_t n);

// A uniformly random integer in [0, bound), bound > 0 (rejection sampling, no
// modulo bias).
uint64_t RandomBelow(uint64_t bound);

// `length` characters drawn uniformly from `alphabet` (2..256 characters).
std::string RandomString(absl::string_view alphabet, size_t length);

// "<prefix>_" + 20 lower-case base32 characters (100 bits): opaque ids of
// entities (segments, rewards, redemptions...).
std::string NewOpaqueId(absl::string_view prefix);

// Crockford base32 upper-case alphabet (no I, L, O, U): readable codes.
inline constexpr absl::string_view kCrockfordBase32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
inline constexpr absl::string_view kDigits = "0123456789";

}  // namespace loyalty::crypto
