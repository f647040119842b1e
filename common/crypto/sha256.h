#pragma once
// SHA-256 (OpenSSL libcrypto).

#include <array>
#include <string>

#include "absl/strings/string_view.h"

namespace loyalty::crypto {

using Sha256Digest = std::array<unsigned char, 32>;

Sha256Digest Sha256(absl::string_view data);
// Lower-case hex of SHA-256(data).
std::string Sha256Hex(absl::string_view data);
// Lower-case hex of 32 raw bytes.
std::string ToHex(const Sha256Digest& digest);
// Parses 64 hex characters; false when malformed.
bool FromHex(absl::string_view hex, Sha256Digest* digest);
// Compares two digests in time independent of where they differ (for
// credential checks, so response timing reveals nothing about a stored hash).
bool DigestEquals(const Sha256Digest& a, const Sha256Digest& b);

}  // namespace loyalty::crypto
