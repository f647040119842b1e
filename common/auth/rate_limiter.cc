#include "common/auth/rate_limiter.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/validation/ids.h"

namespace loyalty::auth {
namespace {

constexpr int64_t kMicro = 1'000'000;
constexpr int64_t kMaxRate = 1'000'000;
constexpr int64_t kMaxBurst = 10'000'000;

}  // namespace

absl::Status ValidateRateLimit(const RateLimit& limit) {
  if (limit.per_second < 0 || limit.per_second > kMaxRate) {
    return absl::InvalidArgumentError(absl::StrCat("rate must be 0..", kMaxRate, " per second"));
  }
  if (limit.per_second > 0 && (limit.burst < limit.per_second || limit.burst > kMaxBurst)) {
    return absl::InvalidArgumentError(absl::StrCat("burst must be rate..", kMaxBurst));
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::flat_hash_map<std::string, RateLimit>> ParseRateLimits(absl::string_view spec) {
  absl::flat_hash_map<std::string, RateLimit> out;
  for (absl::string_view entry : absl::StrSplit(spec, ',', absl::SkipWhitespace())) {
    const std::pair<absl::string_view, absl::string_view> id_limit = absl::StrSplit(entry, '=');
    const std::pair<absl::string_view, absl::string_view> rate_burst = absl::StrSplit(id_limit.second, '/');
    const std::string id(absl::StripAsciiWhitespace(id_limit.first));
    RateLimit limit;
    bool ok = ValidateId("partner_rate_limits", id).ok() &&
              absl::SimpleAtoi(rate_burst.first, &limit.per_second);
    if (ok && rate_burst.second.empty()) {
      limit.burst = 2 * limit.per_second;
    } else if (ok) {
      ok = absl::SimpleAtoi(rate_burst.second, &limit.burst);
    }
    if (!ok || !ValidateRateLimit(limit).ok() || !out.emplace(id, limit).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "partner_rate_limits: bad or repeated entry '", entry,
          "' (want partner=rate/burst, 0 <= rate <= burst; rate 0 = unlimited)"));
    }
  }
  return out;
}

RateLimiter::RateLimiter(RateLimiterOptions options) : options_(std::move(options)) {}

RateLimit RateLimiter::LimitForLocked(const std::string& partner_id) const {
  if (auto it = options_.per_partner.find(partner_id); it != options_.per_partner.end()) return it->second;
  if (auto it = published_.find(partner_id); it != published_.end()) return it->second;
  return options_.default_limit;
}

RateLimit RateLimiter::LimitFor(const std::string& partner_id) {
  absl::MutexLock lock(&mu_);
  return LimitForLocked(partner_id);
}

void RateLimiter::SetPublishedLimit(const std::string& partner_id, int64_t per_second, int64_t burst) {
  absl::MutexLock lock(&mu_);
  if (per_second <= 0) {
    published_.erase(partner_id);
    return;
  }
  RateLimit limit;
  limit.per_second = std::min(per_second, kMaxRate);
  limit.burst = burst < limit.per_second ? 2 * limit.per_second : burst;
  limit.burst = std::min(limit.burst, kMaxBurst);
  published_.insert_or_assign(partner_id, limit);
}

absl::Status RateLimiter::Admit(const std::string& partner_id) {
  const absl::Time now = options_.now();
  RateLimit limit;
  int64_t missing = 0;
  {
    absl::MutexLock lock(&mu_);
    limit = LimitForLocked(partner_id);
    if (limit.per_second <= 0) return absl::OkStatus();
    const int64_t capacity = limit.burst * kMicro;
    auto [it, fresh] = buckets_.try_emplace(partner_id, Bucket{capacity, now});
    Bucket& b = it->second;
    if (!fresh && now > b.last) {
      // Elapsed micros * rate: at most ~ (capacity / rate) micros matter, so
      // clamp the elapsed time before multiplying to stay far from overflow.
      const int64_t elapsed_us =
          std::min(absl::ToInt64Microseconds(now - b.last), capacity / limit.per_second + 1);
      b.micro_tokens = std::min(capacity, b.micro_tokens + elapsed_us * limit.per_second);
      b.last = now;
    }
    b.micro_tokens = std::min(b.micro_tokens, capacity);  // the limit may have been lowered
    if (b.micro_tokens >= kMicro) {
      b.micro_tokens -= kMicro;
      return absl::OkStatus();
    }
    missing = kMicro - b.micro_tokens;
  }
  const int64_t retry_ms = (missing / limit.per_second + 999) / 1000;
  return absl::ResourceExhaustedError(absl::StrCat("rate limit of ", limit.per_second,
                                                   " calls/s exceeded for partner '", partner_id,
                                                   "'; retry in ", std::max<int64_t>(retry_ms, 1), " ms"));
}

}  // namespace loyalty::auth
