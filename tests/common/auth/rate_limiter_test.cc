// Per-partner token buckets, on a fake clock.
#include "common/auth/rate_limiter.h"

#include <atomic>
#include <thread>
#include <vector>

#include "common/auth/authenticator.h"
#include "common/auth/key_mint.h"
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

TEST(RateLimiter, DirectoryLimitsApplyBelowTheOperatorsOverrides) {
  FakeClock clock;  // frozen unless advanced
  auto overrides = ParseRateLimits("food=1/2");
  ASSERT_TRUE(overrides.ok());
  RateLimiter limiter({.default_limit = {.per_second = 5, .burst = 5}, .per_partner = *overrides,
                       .now = clock.Fn()});
  limiter.SetPublishedLimit("vet", 2, 3);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Admit("vet").ok()) << i;
  EXPECT_FALSE(limiter.Admit("vet").ok());
  // The operator's override wins over the directory.
  limiter.SetPublishedLimit("food", 100, 100);
  EXPECT_EQ(limiter.LimitFor("food").per_second, 1);
  // A rate of 0 in the directory means the default again.
  limiter.SetPublishedLimit("vet", 0, 0);
  EXPECT_EQ(limiter.LimitFor("vet").per_second, 5);
  clock.t += absl::Seconds(1);
  int admitted = 0;
  while (limiter.Admit("vet").ok()) ++admitted;
  EXPECT_EQ(admitted, 5);
  // Lowering a limit lowers the tokens on hand at once.
  limiter.SetPublishedLimit("shop", 10, 10);
  ASSERT_TRUE(limiter.Admit("shop").ok());  // 9 left
  limiter.SetPublishedLimit("shop", 1, 1);
  EXPECT_TRUE(limiter.Admit("shop").ok());
  EXPECT_FALSE(limiter.Admit("shop").ok());
  // Values out of range are brought into range.
  limiter.SetPublishedLimit("odd", 10, 1);
  EXPECT_EQ(limiter.LimitFor("odd").burst, 20);
}

TEST(RateLimiter, TheAuthenticatorPassesOnTheLimitTheKeyDirectoryPublishes) {
  FakeClock clock;
  InMemoryKeyStore store;  // empty: every key comes from the directory
  absl::StatusOr<MintedKey> key = MintApiKey(common::v1::ROLE_PARTNER, "vet", "", clock.t);
  ASSERT_TRUE(key.ok()) << key.status();
  int64_t published_rate = 1;
  AuthenticatorOptions options;
  options.now = clock.Fn();
  options.cache_ttl = absl::Seconds(10);
  options.rate_limiter = std::make_shared<RateLimiter>(
      RateLimiterOptions{.default_limit = {}, .per_partner = {}, .now = clock.Fn()});  // default: unlimited
  options.directory = [&](const std::string& key_id, const crypto::Sha256Digest&) -> absl::StatusOr<ApiKeyRecord> {
    if (key_id != key->record.key_id) return absl::NotFoundError("unknown");
    ApiKeyRecord record = key->record;
    record.published_rate_per_second = published_rate;
    record.published_rate_burst = 1;
    return record;
  };
  Authenticator authenticator(store, options);
  const std::string header = "Bearer " + key->api_key;
  const absl::string_view values[] = {header};
  absl::StatusOr<Principal> p = authenticator.Authenticate(values);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(authenticator.Admit(*p).ok());
  EXPECT_EQ(authenticator.Admit(*p).code(), absl::StatusCode::kResourceExhausted);

  // The directory lifts the limit; the next look-up (after the cache) sees it.
  published_rate = 0;
  ASSERT_TRUE(authenticator.Authenticate(values).ok());
  EXPECT_FALSE(authenticator.Admit(*p).ok());  // still cached
  clock.t += absl::Seconds(11);
  ASSERT_TRUE(authenticator.Authenticate(values).ok());
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(authenticator.Admit(*p).ok()) << i;
}

}  // namespace
}  // namespace loyalty::auth
