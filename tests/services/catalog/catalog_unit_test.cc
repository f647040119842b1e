// Pure rules of the catalog: voucher codes and reward validation. Needs
// nothing.

#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "common/crypto/random.h"
#include "common/time/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/catalog/codes.h"
#include "services/catalog/validation.h"

namespace loyalty::catalog {
namespace {

using ::testing::HasSubstr;

TEST(VoucherCode, HundredThousandAreUniqueAndWellFormed) {
  constexpr int kCount = 100'000;
  absl::flat_hash_set<std::string> seen;
  seen.reserve(kCount);
  for (int i = 0; i < kCount; ++i) {
    std::string code = NewVoucherCode();
    ASSERT_EQ(code.size(), kVoucherCodeLength);
    ASSERT_TRUE(seen.insert(code).second) << "duplicate " << code;
  }
  // Every code passes its own check; a sample is enough for the parser.
  int checked = 0;
  for (const std::string& code : seen) {
    ASSERT_TRUE(NormaliseVoucherCode("voucher_code", code).ok()) << code;
    if (++checked == 1000) break;
  }
}

TEST(VoucherCode, CarriesAtLeastSixtyRandomBits) {
  // 13 characters of a 32-symbol alphabet.
  EXPECT_GE(kVoucherRandomLength * 5, 60u);
}

TEST(VoucherCode, ParsesGroupedLowerCaseAndAliases) {
  const std::string code = NewVoucherCode();
  std::string messy = FormatVoucherCode(code);
  for (char& c : messy) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto parsed = NormaliseVoucherCode("voucher_code", messy);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, code);
  EXPECT_EQ(FormatVoucherCode(code).size(), kVoucherCodeLength + 3);
}

TEST(VoucherCode, CheckCharacterCatchesEverySingleSubstitution) {
  const std::string code = NewVoucherCode();
  for (size_t i = 0; i < code.size(); ++i) {
    for (char c : crypto::kCrockfordBase32) {
      if (c == code[i]) continue;
      std::string typo = code;
      typo[i] = c;
      auto parsed = NormaliseVoucherCode("voucher_code", typo);
      ASSERT_FALSE(parsed.ok()) << typo;
      EXPECT_THAT(parsed.status().message(), HasSubstr("voucher_code"));
    }
  }
}

TEST(VoucherCode, RejectsWrongLengthAndAlphabet) {
  EXPECT_FALSE(NormaliseVoucherCode("voucher_code", "").ok());
  EXPECT_FALSE(NormaliseVoucherCode("voucher_code", "ABC").ok());
  EXPECT_FALSE(NormaliseVoucherCode("voucher_code", NewVoucherCode() + "0").ok());
  EXPECT_FALSE(NormaliseVoucherCode("voucher_code", "UUUUUUUUUUUUUU").ok());  // U is not Crockford
}

v1::Reward ValidReward() {
  v1::Reward r;
  auto* name = r.add_names();
  name->set_language("en");
  name->set_text("Free check-up");
  r.set_reward_type(v1::REWARD_TYPE_FREE_ITEM);
  r.set_points_price(500);
  r.set_partner_id("vet");
  r.set_stock_available(10);
  NormaliseReward(r);
  return r;
}

void ExpectInvalid(const v1::Reward& r, absl::string_view field) {
  absl::Status s = ValidateReward("reward.", r);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << field;
  EXPECT_THAT(s.message(), HasSubstr(std::string(field))) << s;
}

TEST(RewardValidation, NamesTheField) {
  EXPECT_TRUE(ValidateReward("reward.", ValidReward()).ok());
  {
    v1::Reward r = ValidReward();
    r.set_points_price(-5);
    ExpectInvalid(r, "reward.points_price");
  }
  {
    v1::Reward r = ValidReward();
    *r.mutable_valid_from() = ToProtoTime(absl::FromUnixSeconds(2'000'000));
    *r.mutable_valid_until() = ToProtoTime(absl::FromUnixSeconds(1'000'000));
    ExpectInvalid(r, "reward.valid_until");
  }
  {
    v1::Reward r = ValidReward();
    r.mutable_names(0)->set_text("");
    ExpectInvalid(r, "reward.names[0].text");
  }
  {
    v1::Reward r = ValidReward();
    r.clear_names();
    ExpectInvalid(r, "reward.names");
  }
  {
    v1::Reward r = ValidReward();
    auto* d = r.add_descriptions();
    d->set_language("en");
    d->set_text(std::string(2001, 'x'));
    ExpectInvalid(r, "reward.descriptions[0].text");
  }
  {
    v1::Reward r = ValidReward();
    r.set_stock_available(-1);
    ExpectInvalid(r, "reward.stock_available");
  }
  {
    v1::Reward r = ValidReward();
    r.set_reward_type(v1::REWARD_TYPE_PERCENT_DISCOUNT);
    ExpectInvalid(r, "reward.discount_bp");
  }
  {
    v1::Reward r = ValidReward();
    r.set_voucher_validity_days(91);
    ExpectInvalid(r, "reward.voucher_validity_days");
  }
  {
    v1::Reward r = ValidReward();
    r.set_per_member_limit(2);
    ExpectInvalid(r, "reward.per_member_limit_period");
  }
}

TEST(RewardValidation, MaskAcceptsOnlyUpdatableFields) {
  google::protobuf::FieldMask mask;
  EXPECT_FALSE(ValidateRewardMask(mask).ok());
  mask.add_paths("points_price");
  EXPECT_TRUE(ValidateRewardMask(mask).ok());
  mask.add_paths("stock_available");
  absl::Status s = ValidateRewardMask(mask);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("stock_available"));
}

}  // namespace
}  // namespace loyalty::catalog
