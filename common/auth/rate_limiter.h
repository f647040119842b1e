#pragma once
// Per-partner rate limits: one token bucket per partner id.
//
// A partner's calls each take one token; the bucket refills at `per_second`
// tokens a second up to `burst`. A call that finds the bucket empty is
// RESOURCE_EXHAUSTED (naming the partner and when to retry) and does nothing
// else. Backoffice, finance and service callers are not limited: they are our
// own staff and jobs, and a limit there would stall settlement or a refresh.
//
// Limits, the first that applies:
//   --partner_rate_limits=vet-clinic=50/100,pet-food=500/1000   overrides
//     (the operator's word, e.g. to throttle a misbehaving till at once);
//   the partner's limit in settlement's directory (rate_limit_per_second,
//     rate_limit_burst), learnt with its keys (SetPublishedLimit);
//   --partner_rate_limit_rps / --partner_rate_limit_burst   everyone.
// A rate of 0 means unlimited in the flags; the directory's 0 means "the
// default".
//
// Arithmetic is in micro-tokens (int64), so refills are exact and no float
// rounding builds up. Thread safety: Admit is safe from many threads.

#include <cstdint>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace loyalty::auth {

struct RateLimit {
  int64_t per_second = 0;  // 0: unlimited
  int64_t burst = 0;       // bucket size; at least 1 when limited
};

struct RateLimiterOptions {
  RateLimit default_limit;
  absl::flat_hash_map<std::string, RateLimit> per_partner;
  std::function<absl::Time()> now = [] { return absl::Now(); };
};

// Parses "id=rate/burst,id=rate/burst" (ids as in ValidateId; rate and burst
// integers, 0 <= rate <= 1,000,000, rate <= burst <= 10,000,000; "/burst" may
// be left out: burst = 2 * rate). INVALID_ARGUMENT naming the bad entry.
absl::StatusOr<absl::flat_hash_map<std::string, RateLimit>> ParseRateLimits(absl::string_view spec);

// INVALID_ARGUMENT unless 0 <= per_second <= 1,000,000 and, when limited,
// per_second <= burst <= 10,000,000.
absl::Status ValidateRateLimit(const RateLimit& limit);

class RateLimiter {
 public:
  explicit RateLimiter(RateLimiterOptions options);

  // Takes one token from `partner_id`'s bucket, or RESOURCE_EXHAUSTED.
  absl::Status Admit(const std::string& partner_id);

  RateLimit LimitFor(const std::string& partner_id);

  // The partner's limit as settlement's directory publishes it: a rate of 0
  // clears it (the default applies again). Out-of-range values are brought
  // into range (a burst below the rate is raised to twice the rate).
  void SetPublishedLimit(const std::string& partner_id, int64_t per_second, int64_t burst);

 private:
  RateLimit LimitForLocked(const std::string& partner_id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  struct Bucket {
    int64_t micro_tokens = 0;
    absl::Time last;
  };

  const RateLimiterOptions options_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, RateLimit> published_ ABSL_GUARDED_BY(mu_);
};

}  // namespace loyalty::auth
