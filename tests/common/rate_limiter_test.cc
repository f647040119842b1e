// Per-partner token buckets, on a fake clock.
#include "common/auth/rate_limiter.h"

#include <atomic>
#include <thread>
#include <vector>

#include "common/auth/authenticator.h"
#include "common/auth/key_store.h"
#include "gtest/gtest.h"

namespace loyalty::auth {
namespace {

struct FakeClock {
  absl::Time t = absl::FromUnixSeconds(1'800'000'000);
  std::function<absl::Time()> Fn() {
    return [this] { return t; };
  }
};

TEST(RateLimiter, ABurstIsAdmittedThenRefusedUntilTokensRefill) {
  FakeClock clock;
  RateLimiter limiter({.default_limit = {.per_second = 10, .burst = 20}, .per_partner = {},
                       .now = clock.Fn()});
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(limiter.Admit("vet").ok()) << i;
  absl::Status refused = limiter.Admit("vet");
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(refused.message().find("'vet'"), std::string::npos) << refused;
  EXPECT_NE(refused.message().find("retry in 100 ms"), std::string::npos) << refused;

  clock.t += absl::Milliseconds(99);  // not yet a whole token
  EXPECT_FALSE(limiter.Admit("vet").ok());
  clock.t += absl::Milliseconds(1);
  EXPECT_TRUE(limiter.Admit("vet").ok());
  EXPECT_FALSE(limiter.Admit("vet").ok());

  // A long quiet spell refills to the burst, never beyond.
  clock.t += absl::Hours(24 * 365);
  int admitted = 0;
  while (limiter.Admit("vet").ok()) ++admitted;
  EXPECT_EQ(admitted, 20);
}

TEST(RateLimiter, EachPartnerHasItsOwnBucketAndOverridesApply) {
  FakeClock clock;
  auto overrides = ParseRateLimits("food=1/2, free=0");
  ASSERT_TRUE(overrides.ok()) << overrides.status();
  RateLimiter limiter({.default_limit = {.per_second = 5, .burst = 5}, .per_partner = *overrides,
                       .now = clock.Fn()});
  EXPECT_TRUE(limiter.Admit("food").ok());
  EXPECT_TRUE(limiter.Admit("food").ok());
  EXPECT_FALSE(limiter.Admit("food").ok());
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(limiter.Admit("vet").ok());  // food's use is not vet's
  EXPECT_FALSE(limiter.Admit("vet").ok());
  for (int i = 0; i < 10'000; ++i) ASSERT_TRUE(limiter.Admit("free").ok());  // 0 = unlimited
}

TEST(RateLimiter, ConcurrentCallersNeverGetMoreThanTheBurst) {
  FakeClock clock;  // frozen: no refill during the test
  RateLimiter limiter({.default_limit = {.per_second = 100, .burst = 250}, .per_partner = {},
                       .now = clock.Fn()});
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) {
        if (limiter.Admit("vet").ok()) admitted.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(admitted.load(), 250);
}

TEST(RateLimiter, BadSpecsAreRefusedNamingTheEntry) {
  for (const char* spec : {"vet", "vet=", "vet=x/2", "vet=10/5", "vet=-1/5", "=5/10", "vet=1/2,vet=3/4",
                           "Vet Clinic=1/2", "vet=2000000/3000000"}) {
    absl::StatusOr<absl::flat_hash_map<std::string, RateLimit>> parsed = ParseRateLimits(spec);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << spec;
    EXPECT_NE(parsed.status().message().find("partner_rate_limits"), std::string::npos) << spec;
  }
  auto ok = ParseRateLimits("vet=10, food=5/50");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->at("vet").burst, 20);
  EXPECT_EQ(ok->at("food").burst, 50);
  EXPECT_TRUE(ParseRateLimits("").ok());
}

TEST(RateLimiter, OnlyPartnersAreLimitedByTheAuthenticator) {
  FakeClock clock;
  InMemoryKeyStore store;
  AuthenticatorOptions options;
  options.rate_limiter = std::make_shared<RateLimiter>(RateLimiterOptions{
      .default_limit = {.per_second = 1, .burst = 1}, .per_partner = {}, .now = clock.Fn()});
  Authenticator authenticator(store, options);
  const Principal partner = Principal::Partner("k1", "vet");
  EXPECT_TRUE(authenticator.Admit(partner).ok());
  EXPECT_EQ(authenticator.Admit(partner).code(), absl::StatusCode::kResourceExhausted);
  Principal backoffice = partner;
  backoffice.role = common::v1::ROLE_BACKOFFICE;
  backoffice.partner_id.clear();
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(authenticator.Admit(backoffice).ok());
}

}  // namespace
}  // namespace loyalty::auth
