// Unit tests of a pure membership rule (no database, no gRPC): member ids, card numbers and referral codes (codes.h).

#include <algorithm>
#include <cstdint>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/time/proto_time.h"
#include "gtest/gtest.h"
#include "loyalty/common/v1/common.pb.h"
#include "loyalty/membership/v1/membership.pb.h"
#include "services/membership/codes.h"
#include "services/membership/validation.h"
#include "tests/services/membership/rules_fixture.h"

namespace loyalty::membership {
namespace {

// ===========================================================================
// codes.h
// ===========================================================================

TEST(LuhnTest, KnownCheckDigits) {
  EXPECT_EQ(LuhnCheckDigit("7992739871"), '3');       // the textbook example
  EXPECT_EQ(LuhnCheckDigit("411111111111111"), '1');  // 4111 1111 1111 1111
  EXPECT_EQ(LuhnCheckDigit("555555555555444"), '4');  // 5555 5555 5555 4444
  EXPECT_EQ(LuhnCheckDigit("601111111111111"), '7');  // 6011 1111 1111 1117
  EXPECT_EQ(LuhnCheckDigit("37828224631000"), '5');   // 3782 822463 10005
  EXPECT_EQ(LuhnCheckDigit("453914880343646"), '7');  // 4539 1488 0343 6467
  EXPECT_EQ(LuhnCheckDigit("0"), '0');
  EXPECT_EQ(LuhnCheckDigit("7"), '5');  // 7*2 = 14 -> 1+4 = 5 -> 5
  EXPECT_EQ(LuhnCheckDigit("9"), '1');  // 18 -> 9 -> 1
}

TEST(LuhnTest, DetectsEverySingleDigitError) {
  std::mt19937_64 rng(12345);
  std::uniform_int_distribution<int> digit(0, 9);
  for (int round = 0; round < 50; ++round) {
    std::string payload = "7";
    for (int i = 0; i < 14; ++i) payload.push_back(static_cast<char>('0' + digit(rng)));
    const std::string card = payload + LuhnCheckDigit(payload);
    ASSERT_TRUE(IsValidCardNumber(card)) << card;
    for (size_t pos = 0; pos < card.size(); ++pos) {
      for (char d = '0'; d <= '9'; ++d) {
        if (d == card[pos]) continue;
        std::string typo = card;
        typo[pos] = d;
        EXPECT_FALSE(IsValidCardNumber(typo)) << card << " -> " << typo;
      }
    }
    // Adjacent transpositions other than 09 <-> 90 are detected too.
    for (size_t pos = 0; pos + 1 < card.size(); ++pos) {
      if (card[pos] == card[pos + 1]) continue;
      if ((card[pos] == '0' && card[pos + 1] == '9') || (card[pos] == '9' && card[pos + 1] == '0')) continue;
      std::string swapped = card;
      std::swap(swapped[pos], swapped[pos + 1]);
      EXPECT_FALSE(IsValidCardNumber(swapped)) << card << " -> " << swapped;
    }
  }
}

TEST(IsValidCardNumberTest, LengthDigitsAndCheckDigit) {
  EXPECT_TRUE(IsValidCardNumber("4111111111111111"));
  EXPECT_TRUE(IsValidCardNumber("4539148803436467"));
  EXPECT_TRUE(IsValidCardNumber("7992739871000004") == (LuhnCheckDigit("799273987100000") == '4'));
  EXPECT_FALSE(IsValidCardNumber("4111111111111112"));
  EXPECT_FALSE(IsValidCardNumber("378282246310005"));    // valid Luhn, 15 digits
  EXPECT_FALSE(IsValidCardNumber("41111111111111110"));  // 17 digits
  EXPECT_FALSE(IsValidCardNumber("4111 1111 1111 1111"));
  EXPECT_FALSE(IsValidCardNumber("411111111111111a"));
  EXPECT_FALSE(IsValidCardNumber(""));
}

TEST(NormaliseCardNumberTest, RemovesSpacesAndDashes) {
  for (const char* in : {"4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111", " 4111 1111-1111 1111 ",
                         "41-11 11--11 1111 1111"}) {
    absl::StatusOr<std::string> c = NormaliseCardNumber("card_number", in);
    ASSERT_TRUE(c.ok()) << in << ": " << c.status();
    EXPECT_EQ(*c, "4111111111111111") << in;
  }
}

TEST(NormaliseCardNumberTest, RefusesWithTheFieldNamed) {
  EXPECT_TRUE(InvalidNaming(NormaliseCardNumber("card_number", "4111 1111 1111 1112"), "card_number", "check digit"));
  EXPECT_TRUE(InvalidNaming(NormaliseCardNumber("card", "4111 1111 1111 111"), "card", "16"));
  EXPECT_TRUE(InvalidNaming(NormaliseCardNumber("card", "4111 1111 1111 1111 1"), "card", "16"));
  EXPECT_TRUE(InvalidNaming(NormaliseCardNumber("card", ""), "card"));
  EXPECT_TRUE(InvalidNaming(NormaliseCardNumber("card", "4111.1111.1111.1111"), "card", "digits"));
  EXPECT_TRUE(InvalidNaming(NormaliseCardNumber("card", "4111 1111 1111 111O"), "card", "digits"));
  EXPECT_TRUE(InvalidNaming(NormaliseCardNumber("card", "4111\t1111 1111 1111"), "card"));
}

TEST(NewCardNumberTest, ShapePrefixAndCheckDigit) {
  for (int i = 0; i < 200; ++i) {
    const std::string c = NewCardNumber();
    ASSERT_EQ(c.size(), kCardNumberLength) << c;
    EXPECT_EQ(c.size(), 16u);
    EXPECT_EQ(c[0], '7') << c;
    EXPECT_TRUE(std::all_of(c.begin(), c.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) << c;
    EXPECT_EQ(c.back(), LuhnCheckDigit(absl::string_view(c).substr(0, 15))) << c;
    EXPECT_TRUE(IsValidCardNumber(c)) << c;
    absl::StatusOr<std::string> n = NormaliseCardNumber("card_number", c);
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_EQ(*n, c);
  }
}

TEST(NewCardNumberTest, ThousandDrawsAreDistinctAndNotSequential) {
  std::vector<std::string> cards;
  for (int i = 0; i < 1000; ++i) cards.push_back(NewCardNumber());
  EXPECT_EQ(std::set<std::string>(cards.begin(), cards.end()).size(), 1000u);

  // The 14 random digits as numbers: no two draws are neighbours (neither in
  // draw order nor anywhere in the set), and consecutive draws do not move by
  // a constant step.
  std::vector<int64_t> body;
  for (const std::string& c : cards) body.push_back(std::stoll(c.substr(1, 14)));
  std::set<int64_t> steps;
  for (size_t i = 1; i < body.size(); ++i) {
    EXPECT_GT(std::llabs(body[i] - body[i - 1]), 1) << cards[i - 1] << " then " << cards[i];
    steps.insert(body[i] - body[i - 1]);
  }
  EXPECT_GT(steps.size(), 900u);
  std::vector<int64_t> sorted = body;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 1; i < sorted.size(); ++i) EXPECT_GT(sorted[i] - sorted[i - 1], 1);

  // Every random position uses many digits, and the check digit varies.
  for (size_t pos = 1; pos < 16; ++pos) {
    std::set<char> seen;
    for (const std::string& c : cards) seen.insert(c[pos]);
    EXPECT_GE(seen.size(), 8u) << "position " << pos;
  }
}

TEST(ReferralCodeTest, NewCodesAreCrockfordBase32AndDistinct) {
  const std::string crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  std::set<std::string> seen;
  std::set<char> chars;
  for (int i = 0; i < 1000; ++i) {
    const std::string code = NewReferralCode();
    ASSERT_EQ(code.size(), kReferralCodeLength) << code;
    EXPECT_EQ(code.size(), 10u);
    for (char c : code) {
      EXPECT_NE(crockford.find(c), std::string::npos) << code;
      chars.insert(c);
    }
    EXPECT_EQ(code.find_first_of("ILOU"), std::string::npos) << code;
    absl::StatusOr<std::string> n = NormaliseReferralCode("referral_code", code);
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_EQ(*n, code);
    seen.insert(code);
  }
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_EQ(chars.size(), 32u);  // the whole alphabet is used
}

TEST(ReferralCodeTest, NormaliseTrimsAndUpperCases) {
  absl::StatusOr<std::string> n = NormaliseReferralCode("referral_code", "  ab12cd34ef \n");
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, "AB12CD34EF");
  EXPECT_TRUE(NormaliseReferralCode("referral_code", "ABCD1234").ok());          // 8
  EXPECT_TRUE(NormaliseReferralCode("referral_code", "ABCD1234ABCD1234").ok());  // 16
}

TEST(ReferralCodeTest, NormaliseRefusesWithTheFieldNamed) {
  EXPECT_TRUE(InvalidNaming(NormaliseReferralCode("referral_code", "ABCD123"), "referral_code", "8..16"));
  EXPECT_TRUE(InvalidNaming(NormaliseReferralCode("referral_code", "ABCD1234ABCD12345"), "referral_code", "8..16"));
  EXPECT_TRUE(InvalidNaming(NormaliseReferralCode("referral_code", ""), "referral_code"));
  EXPECT_TRUE(InvalidNaming(NormaliseReferralCode("code", "ABCD-1234"), "code", "letters and digits"));
  EXPECT_TRUE(InvalidNaming(NormaliseReferralCode("code", "ABCD 1234"), "code", "letters and digits"));
  EXPECT_TRUE(InvalidNaming(NormaliseReferralCode("code", "ABC\xc3\x89" "1234"), "code"));
}

TEST(IdsTest, NewMemberIdFormat) {
  const std::regex re("mb_[0-9abcdefghjkmnpqrstvwxyz]{24}");
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = NewMemberId();
    EXPECT_TRUE(std::regex_match(id, re)) << id;
    EXPECT_TRUE(ValidateId("member_id", id).ok()) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(IdsTest, NewOpaqueIdFormat) {
  const std::regex re("tc_[0-9abcdefghjkmnpqrstvwxyz]{20}");
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = NewOpaqueId("tc");
    EXPECT_TRUE(std::regex_match(id, re)) << id;
    EXPECT_TRUE(ValidateId("tier_change_id", id).ok()) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_TRUE(std::regex_match(NewOpaqueId("audit"), std::regex("audit_[0-9a-z]{20}")));
}

}  // namespace
}  // namespace loyalty::membership
