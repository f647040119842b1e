#include "common/crypto/random.h"

#include <openssl/rand.h>

#include <cstdlib>
#include <cstring>

#include "common/log/log.h"

namespace loyalty::crypto {

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    log::Error("rand_bytes_failed");
    std::abort();
  }
  return out;
}

uint64_t RandomBelow(uint64_t bound) {
  if (bound <= 1) return 0;
  // Largest multiple of bound that fits; values at or above it are redrawn.
  const uint64_t limit = UINT64_MAX - (UINT64_MAX % bound);
  while (true) {
    uint64_t v;
    std::string bytes = RandomBytes(sizeof v);
    std::memcpy(&v, bytes.data(), sizeof v);
    if (v < limit) return v % bound;
  }
}

std::string RandomString(absl::string_view alphabet, size_t length) {
  std::string out;
  out.reserve(length);
  for (size_t i = 0; i < length; ++i) out.push_back(alphabet[RandomBelow(alphabet.size())]);
  return out;
}

std::string NewOpaqueId(absl::string_view prefix) {
  static constexpr absl::string_view kLowerBase32 = "0123456789abcdefghjkmnpqrstvwxyz";
  std::string out(prefix);
  out.push_back('_');
  out += RandomString(kLowerBase32, 20);
  return out;
}

}  // namespace loyalty::crypto
