#include <string>

#include "common/auth/api_key.h"
#include "gtest/gtest.h"

namespace loyalty::auth {
namespace {

const std::string kSecret(43, 'A');
const std::string kKey = "lk_0123456789abcdef_" + kSecret;

TEST(ApiKey, ParsesWellFormedKey) {
  auto parsed = ParseApiKey(kKey);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->key_id, "0123456789abcdef");
  EXPECT_EQ(parsed->secret, kSecret);
}

TEST(ApiKey, RejectsMalformedKeys) {
  EXPECT_FALSE(ParseApiKey("").has_value());
  EXPECT_FALSE(ParseApiKey("lk_0123456789abcdef").has_value());
  EXPECT_FALSE(ParseApiKey("xx_0123456789abcdef_" + kSecret).has_value());
  EXPECT_FALSE(ParseApiKey("lk_0123456789ABCDEF_" + kSecret).has_value());
  EXPECT_FALSE(ParseApiKey(kKey + "A").has_value());
  EXPECT_FALSE(ParseApiKey("lk_0123456789abcdef_" + std::string(42, 'A') + "=").has_value());
}

TEST(ApiKey, ParsesBearerHeader) {
  EXPECT_TRUE(ParseBearer("Bearer " + kKey).has_value());
  EXPECT_TRUE(ParseBearer("bearer  " + kKey).has_value());
  EXPECT_FALSE(ParseBearer(kKey).has_value());
  EXPECT_FALSE(ParseBearer("Basic abc").has_value());
}

}  // namespace
}  // namespace loyalty::auth
