// Unit tests of the pure membership rules (no database, no gRPC):
// validation and normalisation (validation.h), member ids, card numbers and
// referral codes (codes.h), and the tier ladder and tier evaluation
// (tiers.h; the evaluation rules are documented at the top of that header),
// and the segment refresh diff (segments.h).

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
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "loyalty/common/v1/common.pb.h"
#include "loyalty/membership/v1/membership.pb.h"
#include "services/membership/codes.h"
#include "services/membership/segments.h"
#include "services/membership/tiers.h"
#include "services/membership/validation.h"

namespace loyalty::membership {
namespace {

using ::google::protobuf::util::MessageDifferencer;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

// INVALID_ARGUMENT whose message starts with "<field>: " (and, if given,
// contains `fragment`).
::testing::AssertionResult InvalidNaming(const absl::Status& s, absl::string_view field,
                                         absl::string_view fragment = "") {
  if (s.code() != absl::StatusCode::kInvalidArgument) {
    return ::testing::AssertionFailure() << "expected INVALID_ARGUMENT, got " << s;
  }
  const std::string prefix = absl::StrCat(field, ": ");
  if (!absl::StartsWith(s.message(), prefix)) {
    return ::testing::AssertionFailure() << "message does not start with \"" << prefix << "\": " << s;
  }
  if (!fragment.empty() && !absl::StrContains(s.message(), fragment)) {
    return ::testing::AssertionFailure() << "message does not contain \"" << fragment << "\": " << s;
  }
  return ::testing::AssertionSuccess();
}

template <typename T>
::testing::AssertionResult InvalidNaming(const absl::StatusOr<T>& s, absl::string_view field,
                                         absl::string_view fragment = "") {
  if (s.ok()) return ::testing::AssertionFailure() << "expected an error, got a value";
  return InvalidNaming(s.status(), field, fragment);
}

absl::Time Utc(int y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone());
}

common::v1::Date MakeDate(int y, int m, int d) {
  common::v1::Date date;
  date.set_year(y);
  date.set_month(m);
  date.set_day(d);
  return date;
}

std::string Repeat(absl::string_view s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) absl::StrAppend(&out, s);
  return out;
}

v1::TierDefinition Def(const std::string& id, const std::string& name, int rank, int64_t threshold,
                       int64_t multiplier_bp, int retention_months) {
  v1::TierDefinition t;
  t.set_tier_id(id);
  t.set_name(name);
  t.set_rank(rank);
  t.set_qualifying_points_threshold(threshold);
  t.set_tier_multiplier_bp(multiplier_bp);
  t.set_retention_months(retention_months);
  return t;
}

// silver (rank 0, 0, 1.0x), gold (rank 1, 2000, 1.25x, 12 months),
// platinum (rank 2, 10000, 1.5x, 12 months); 12-month window.
v1::TierLadder TestLadder() {
  v1::TierLadder ladder;
  ladder.set_version(1);
  ladder.set_qualification_window_months(12);
  *ladder.add_tiers() = Def("silver", "Silver", 0, 0, 10'000, 0);
  *ladder.add_tiers() = Def("gold", "Gold", 1, 2'000, 12'500, 12);
  *ladder.add_tiers() = Def("platinum", "Platinum", 2, 10'000, 15'000, 12);
  return ladder;
}

// The same tiers, listed out of rank order.
v1::TierLadder ShuffledTestLadder() {
  v1::TierLadder sorted = TestLadder();
  v1::TierLadder ladder = sorted;
  ladder.clear_tiers();
  *ladder.add_tiers() = sorted.tiers(2);
  *ladder.add_tiers() = sorted.tiers(0);
  *ladder.add_tiers() = sorted.tiers(1);
  return ladder;
}

// A stored member tier.
v1::MemberTier Held(const std::string& tier_id, v1::TierBasis basis, absl::Time since,
                    std::optional<absl::Time> retained_until = std::nullopt,
                    std::optional<absl::Time> paid_until = std::nullopt,
                    std::optional<absl::Time> evaluated_at = std::nullopt) {
  v1::MemberTier t;
  t.set_tier_id(tier_id);
  t.set_basis(basis);
  *t.mutable_since() = ToProtoTime(since);
  if (retained_until) *t.mutable_retained_until() = ToProtoTime(*retained_until);
  if (paid_until) *t.mutable_paid_until() = ToProtoTime(*paid_until);
  if (evaluated_at) *t.mutable_evaluated_at() = ToProtoTime(*evaluated_at);
  DecorateTier(TestLadder(), &t);
  return t;
}

int RankOf(const v1::TierLadder& ladder, const std::string& tier_id) {
  const v1::TierDefinition* t = FindTier(ladder, tier_id);
  return t == nullptr ? -1 : t->rank();
}

// The highest tier whose threshold is <= points, computed independently of
// tiers.cc.
const v1::TierDefinition* ExpectedQualified(const v1::TierLadder& ladder, int64_t points) {
  const v1::TierDefinition* best = nullptr;
  for (const auto& t : ladder.tiers()) {
    if (t.qualifying_points_threshold() <= points && (best == nullptr || t.rank() > best->rank())) best = &t;
  }
  return best;
}

// ===========================================================================
// validation.h: NormaliseEmail
// ===========================================================================

TEST(NormaliseEmailTest, TrimsAndLowerCases) {
  absl::StatusOr<std::string> e = NormaliseEmail("email", "  Jane.Doe+Promo@Example.COM \t\n");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(*e, "jane.doe+promo@example.com");
}

TEST(NormaliseEmailTest, AcceptsPlausibleAddresses) {
  for (const char* ok : {"a@b.co", "first.last@mail.example.org", "x_y-z@sub-domain.example.co.uk",
                         "o'brien@example.ie", "123@456.example.com", "user@xn--bcher-kva.de"}) {
    absl::StatusOr<std::string> e = NormaliseEmail("email", ok);
    ASSERT_TRUE(e.ok()) << ok << ": " << e.status();
    EXPECT_EQ(*e, ok);
  }
}

TEST(NormaliseEmailTest, RefusesEmpty) {
  EXPECT_TRUE(InvalidNaming(NormaliseEmail("email", ""), "email", "empty"));
  EXPECT_TRUE(InvalidNaming(NormaliseEmail("email", " \t\n "), "email", "empty"));
}

TEST(NormaliseEmailTest, RequiresExactlyOneAt) {
  EXPECT_TRUE(InvalidNaming(NormaliseEmail("email", "jane.example.com"), "email", "@"));
  EXPECT_TRUE(InvalidNaming(NormaliseEmail("email", "jane@doe@example.com"), "email", "@"));
  EXPECT_TRUE(InvalidNaming(NormaliseEmail("email", "@@example.com"), "email", "@"));
}

TEST(NormaliseEmailTest, RequiresADottedDomain) {
  EXPECT_TRUE(InvalidNaming(NormaliseEmail("email", "jane@localhost"), "email", "dot"));
  EXPECT_TRUE(InvalidNaming(NormaliseEmail("email", "jane@"), "email"));
}

TEST(NormaliseEmailTest, RefusesBadLocalPart) {
  EXPECT_TRUE(InvalidNaming(NormaliseEmail("email", "@example.com"), "email"));
  EXPECT_TRUE(InvalidNaming(NormaliseEmail("email", ".jane@example.com"), "email", "dot"));
  EXPECT_TRUE(InvalidNaming(NormaliseEmail("email", "jane.@example.com"), "email", "dot"));
  EXPECT_TRUE(InvalidNaming(NormaliseEmail("email", "ja..ne@example.com"), "email", "dot"));
  for (const std::string& bad :
       {std::string("ja ne@example.com"), std::string("ja\tne@example.com"), std::string("ja\x01ne@example.com"),
        std::string("ja\x7fne@example.com"), std::string("ja(ne@example.com"), std::string("ja)ne@example.com"),
        std::string("ja,ne@example.com"), std::string("ja:ne@example.com"), std::string("ja;ne@example.com"),
        std::string("ja<ne@example.com"), std::string("ja>ne@example.com"), std::string("ja[ne@example.com"),
        std::string("ja]ne@example.com"), std::string("ja\\ne@example.com"), std::string("ja\"ne@example.com"),
        std::string("ja\0ne@example.com", 17)}) {
    EXPECT_TRUE(InvalidNaming(NormaliseEmail("email", bad), "email", "character")) << bad;
  }
}

TEST(NormaliseEmailTest, RefusesNonAsciiControlCharacters) {
  // U+0085 (a C1 control) and bytes that are not UTF-8.
  EXPECT_TRUE(InvalidNaming(NormaliseEmail("email", "a\xc2\x85@example.com"), "email"));
  EXPECT_TRUE(InvalidNaming(NormaliseEmail("email", "\xff@example.com"), "email"));
}

TEST(NormaliseEmailTest, RefusesBadDomain) {
  for (const char* bad :
       {"jane@exa_mple.com", "jane@exa mple.com", "jane@-example.com", "jane@example-.com", "jane@example..com",
        "jane@.example.com", "jane@example.com.", "jane@example.c", "jane@192.168.0.1", "jane@example.c0m!",
        "jane@[127.0.0.1]"}) {
    EXPECT_TRUE(InvalidNaming(NormaliseEmail("email", bad), "email")) << bad;
  }
}

TEST(NormaliseEmailTest, LengthLimits) {
  // Local part: 1..64.
  const std::string local64 = Repeat("a", 64);
  EXPECT_TRUE(NormaliseEmail("email", local64 + "@example.com").ok());
  EXPECT_TRUE(InvalidNaming(NormaliseEmail("email", local64 + "a@example.com"), "email", "64"));
  // Domain label: 1..63.
  EXPECT_TRUE(NormaliseEmail("email", "a@" + Repeat("b", 63) + ".com").ok());
  EXPECT_TRUE(InvalidNaming(NormaliseEmail("email", "a@" + Repeat("b", 64) + ".com"), "email"));
  // Whole address: at most 254, counted after trimming.
  const std::string domain189 = Repeat("b", 63) + "." + Repeat("c", 63) + "." + Repeat("d", 61);
  const std::string e254 = local64 + "@" + domain189;
  ASSERT_EQ(e254.size(), 254u);
  absl::StatusOr<std::string> ok = NormaliseEmail("email", "  " + e254 + "  ");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(*ok, e254);
  const std::string e255 = local64 + "@" + Repeat("b", 63) + "." + Repeat("c", 63) + "." + Repeat("d", 62);
  ASSERT_EQ(e255.size(), 255u);
  EXPECT_TRUE(InvalidNaming(NormaliseEmail("email", e255), "email", "254"));
}

TEST(NormaliseEmailTest, ErrorsNameTheFieldPassedIn) {
  EXPECT_TRUE(InvalidNaming(NormaliseEmail("contact.email", "nope"), "contact.email"));
  EXPECT_TRUE(InvalidNaming(NormaliseEmail("new_email", ""), "new_email"));
  EXPECT_TRUE(InvalidNaming(NormaliseEmail("x", "a@b"), "x"));
}

// ===========================================================================
// validation.h: NormalisePhone
// ===========================================================================

TEST(NormalisePhoneTest, E164WithSeparators) {
  for (const char* in : {"+4915112345678", "+49 151 12345678", "+49-151-123-456-78", "+49.151.12345678",
                         "+49/151/12345678", "+49 (151) 1234 5678", "  +49 151 12345678  "}) {
    absl::StatusOr<std::string> p = NormalisePhone("phone", in, "");
    ASSERT_TRUE(p.ok()) << in << ": " << p.status();
    EXPECT_EQ(*p, "+4915112345678") << in;
  }
}

TEST(NormalisePhoneTest, DoubleZeroPrefixMeansPlus) {
  absl::StatusOr<std::string> p = NormalisePhone("phone", "0049 151 12345678", "");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*p, "+4915112345678");
  // An international number ignores the region.
  p = NormalisePhone("phone", "0041 44 668 18 00", "DE");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*p, "+41446681800");
  p = NormalisePhone("phone", "+33 1 23 45 67 89", "DE");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*p, "+33123456789");
}

TEST(NormalisePhoneTest, NationalNumberDropsTrunkZero) {
  struct Case {
    const char* region;
    const char* in;
    const char* want;
  };
  for (const Case& c : std::vector<Case>{
           {"DE", "030 1234567", "+49301234567"},
           {"de", "030 1234567", "+49301234567"},
           {"DE", "0151 / 123 456 78", "+4915112345678"},
           {"AT", "01 5123456", "+4315123456"},
           {"GB", "020 7946 0958", "+442079460958"},
           {"FR", "01 23 45 67 89", "+33123456789"},
           {"NL", "020-1234567", "+31201234567"},
           {"CH", "044 668 18 00", "+41446681800"},
           {"IE", "01 234 5678", "+35312345678"},
       }) {
    absl::StatusOr<std::string> p = NormalisePhone("phone", c.in, c.region);
    ASSERT_TRUE(p.ok()) << c.region << " " << c.in << ": " << p.status();
    EXPECT_EQ(*p, c.want) << c.region << " " << c.in;
  }
}

TEST(NormalisePhoneTest, ItalyKeepsItsLeadingZero) {
  absl::StatusOr<std::string> p = NormalisePhone("phone", "06 1234 5678", "IT");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*p, "+390612345678");
  p = NormalisePhone("phone", "347 123 4567", "IT");  // mobile, no 0
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*p, "+393471234567");
}

TEST(NormalisePhoneTest, NorthAmericanTenDigitNumbers) {
  for (const char* in : {"(212) 555-0123", "212-555-0123", "212.555.0123", "1 212 555 0123", "1-212-555-0123"}) {
    absl::StatusOr<std::string> p = NormalisePhone("phone", in, "US");
    ASSERT_TRUE(p.ok()) << in << ": " << p.status();
    EXPECT_EQ(*p, "+12125550123") << in;
  }
  absl::StatusOr<std::string> p = NormalisePhone("phone", "(416) 555-0199", "CA");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*p, "+14165550199");
}

TEST(NormalisePhoneTest, UnsupportedRegionNamesPhoneRegion) {
  absl::StatusOr<std::string> p = NormalisePhone("mobile", "030 1234567", "XX");
  EXPECT_TRUE(InvalidNaming(p, "phone_region", "XX"));
  EXPECT_TRUE(InvalidNaming(NormalisePhone("mobile", "030 1234567", "DEU"), "phone_region"));
}

TEST(NormalisePhoneTest, NationalNumberWithoutRegionIsRefused) {
  EXPECT_TRUE(InvalidNaming(NormalisePhone("mobile", "030 1234567", ""), "mobile", "phone_region"));
}

TEST(NormalisePhoneTest, TrunkPrefixRequiredWhereTheRegionHasOne) {
  EXPECT_TRUE(InvalidNaming(NormalisePhone("phone", "301234567", "DE"), "phone", "trunk"));
}

TEST(NormalisePhoneTest, DigitCountLimits) {
  // E.164: 8..15 digits including the country code.
  EXPECT_TRUE(InvalidNaming(NormalisePhone("phone", "+4912345", ""), "phone", "8..15"));   // 7
  EXPECT_TRUE(NormalisePhone("phone", "+49123456", "").ok());                              // 8
  EXPECT_TRUE(NormalisePhone("phone", "+491234567890123", "").ok());                       // 15
  EXPECT_TRUE(InvalidNaming(NormalisePhone("phone", "+4912345678901234", ""), "phone", "8..15"));  // 16
  EXPECT_TRUE(InvalidNaming(NormalisePhone("phone", "0 12", "DE"), "phone", "8..15"));
  EXPECT_TRUE(InvalidNaming(NormalisePhone("phone", "+", ""), "phone"));
}

TEST(NormalisePhoneTest, RefusesLettersAndStrayCharacters) {
  for (const char* bad : {"+49 151 CALLNOW", "+49 151 1234567x", "49+15112345678", "++4915112345678",
                          "+49_151_12345678", "+49\t151\t12345678", "+49 151 1234#5678"}) {
    EXPECT_TRUE(InvalidNaming(NormalisePhone("phone", bad, ""), "phone")) << bad;
  }
}

TEST(NormalisePhoneTest, RefusesEmptyAndZeroCountryCode) {
  EXPECT_TRUE(InvalidNaming(NormalisePhone("phone", "", "DE"), "phone", "empty"));
  EXPECT_TRUE(InvalidNaming(NormalisePhone("phone", "   ", "DE"), "phone", "empty"));
  EXPECT_TRUE(InvalidNaming(NormalisePhone("phone", "+0151123456789", ""), "phone", "country code"));
  EXPECT_TRUE(InvalidNaming(NormalisePhone("phone", "000151123456789", ""), "phone", "country code"));
}

// ===========================================================================
// validation.h: NormaliseText
// ===========================================================================

TEST(NormaliseTextTest, TrimsAsciiWhitespaceKeepsInnerSpaces) {
  absl::StatusOr<std::string> t = NormaliseText("given_name", " \t Mary Ann \n", 1, 100);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, "Mary Ann");
}

TEST(NormaliseTextTest, CountsCodePointsNotBytes) {
  const std::string zoe = "Zo\xc3\xab";  // "Zoë": 3 code points, 4 bytes
  ASSERT_EQ(zoe.size(), 4u);
  absl::StatusOr<std::string> t = NormaliseText("given_name", zoe, 1, 3);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, zoe);
  EXPECT_TRUE(InvalidNaming(NormaliseText("given_name", zoe, 4, 100), "given_name", "shorter than 4"));
  EXPECT_TRUE(InvalidNaming(NormaliseText("given_name", zoe, 1, 2), "given_name", "longer than 2"));
}

TEST(NormaliseTextTest, HundredAccentedCharactersAllowedHundredAndOneRefused) {
  const std::string e_acute = "\xc3\xa9";  // é
  const std::string n100 = Repeat(e_acute, 100);
  ASSERT_EQ(n100.size(), 200u);
  absl::StatusOr<std::string> t = NormaliseText("family_name", n100, 0, kMaxNameChars);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, n100);
  EXPECT_TRUE(
      InvalidNaming(NormaliseText("family_name", n100 + e_acute, 0, kMaxNameChars), "family_name", "longer than 100"));

  // Three- and four-byte characters as well.
  const std::string cjk = "\xe6\x9d\x8e";        // 李
  const std::string emoji = "\xf0\x9f\x98\x80";  // U+1F600
  EXPECT_TRUE(NormaliseText("n", Repeat(cjk, 100), 1, 100).ok());
  EXPECT_TRUE(InvalidNaming(NormaliseText("n", Repeat(cjk, 101), 1, 100), "n"));
  EXPECT_TRUE(NormaliseText("n", Repeat(emoji, 100), 1, 100).ok());
  EXPECT_TRUE(InvalidNaming(NormaliseText("n", Repeat(emoji, 101), 1, 100), "n"));
  // Plain ASCII at the boundary.
  EXPECT_TRUE(NormaliseText("n", Repeat("a", 100), 1, 100).ok());
  EXPECT_TRUE(InvalidNaming(NormaliseText("n", Repeat("a", 101), 1, 100), "n"));
}

TEST(NormaliseTextTest, RequiredAndOptional) {
  EXPECT_TRUE(InvalidNaming(NormaliseText("given_name", "", 1, 100), "given_name", "required"));
  EXPECT_TRUE(InvalidNaming(NormaliseText("given_name", "  \t ", 1, 100), "given_name", "required"));
  absl::StatusOr<std::string> t = NormaliseText("family_name", "   ", 0, 100);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, "");
  EXPECT_TRUE(InvalidNaming(NormaliseText("reason", "a", 2, 500), "reason", "shorter than 2"));
}

TEST(NormaliseTextTest, RefusesControlCharacters) {
  for (const std::string& bad : {std::string("Jane\tDoe"), std::string("Jane\nDoe"), std::string("Jane\rDoe"),
                                 std::string("a\x01" "b"), std::string("a\x1b" "b"), std::string("a\x7f" "b"),
                                 std::string("a\0b", 3),
                                 std::string("a\xc2\x85" "b"),   // U+0085 NEL (C1)
                                 std::string("a\xc2\x9f" "b")}) {  // U+009F (C1)
    EXPECT_TRUE(InvalidNaming(NormaliseText("given_name", bad, 1, 100), "given_name", "UTF-8")) << bad;
  }
  // U+00A0 (no-break space) is not a control character.
  EXPECT_TRUE(NormaliseText("given_name", "a\xc2\xa0" "b", 1, 100).ok());
}

TEST(NormaliseTextTest, RefusesInvalidUtf8) {
  for (const std::string& bad : {
           std::string("\xff"),                  // never valid
           std::string("a\x80" "b"),             // lone continuation byte
           std::string("a\xc3"),                 // truncated 2-byte sequence
           std::string("\xe2\x82" "a"),          // truncated 3-byte sequence
           std::string("\xc3" "a"),              // lead byte followed by ASCII
           std::string("\xc0\xaf"),              // overlong '/'
           std::string("\xe0\x80\xaf"),          // overlong '/' (3 bytes)
           std::string("\xf0\x80\x80\xaf"),      // overlong '/' (4 bytes)
           std::string("\xed\xa0\x80"),          // UTF-16 surrogate U+D800
           std::string("\xf4\x90\x80\x80"),      // U+110000, out of range
           std::string("\xf8\x88\x80\x80\x80"),  // 5-byte form
       }) {
    EXPECT_TRUE(InvalidNaming(NormaliseText("given_name", bad, 0, 100), "given_name", "UTF-8"));
  }
  // The largest code point is fine.
  EXPECT_TRUE(NormaliseText("given_name", "\xf4\x8f\xbf\xbf", 1, 1).ok());
}

// ===========================================================================
// validation.h: NormaliseLanguage
// ===========================================================================

TEST(NormaliseLanguageTest, MatchesCaseInsensitivelyReturnsCanonicalCase) {
  const std::vector<std::string> supported = {"en", "de", "fr-CH"};
  struct Case {
    const char* in;
    const char* want;
  };
  for (const Case& c : std::vector<Case>{{"en", "en"}, {"EN", "en"}, {"De", "de"}, {"fr-ch", "fr-CH"},
                                         {"FR-CH", "fr-CH"}, {" fr-Ch ", "fr-CH"}}) {
    absl::StatusOr<std::string> l = NormaliseLanguage("language", c.in, supported);
    ASSERT_TRUE(l.ok()) << c.in << ": " << l.status();
    EXPECT_EQ(*l, c.want) << c.in;
  }
}

TEST(NormaliseLanguageTest, RefusesUnknownAndEmpty) {
  const std::vector<std::string> supported = {"en", "de", "fr-CH"};
  absl::StatusOr<std::string> l = NormaliseLanguage("preferred_language", "es", supported);
  EXPECT_TRUE(InvalidNaming(l, "preferred_language", "es"));
  EXPECT_TRUE(InvalidNaming(l, "preferred_language", "fr-CH"));  // lists the supported tags
  EXPECT_TRUE(InvalidNaming(NormaliseLanguage("preferred_language", "fr", supported), "preferred_language"));
  EXPECT_TRUE(InvalidNaming(NormaliseLanguage("preferred_language", "en-US", supported), "preferred_language"));
  EXPECT_TRUE(InvalidNaming(NormaliseLanguage("preferred_language", "", supported), "preferred_language", "required"));
  EXPECT_TRUE(InvalidNaming(NormaliseLanguage("preferred_language", "en", {}), "preferred_language"));
}

// ===========================================================================
// validation.h: ValidateBirthDate
// ===========================================================================

TEST(ValidateBirthDateTest, LeapDays) {
  const absl::Time now = Utc(2024, 6, 15, 12);
  EXPECT_TRUE(ValidateBirthDate("birth_date", MakeDate(2000, 2, 29), now).ok());  // 400-year leap
  EXPECT_TRUE(ValidateBirthDate("birth_date", MakeDate(2024, 2, 29), now).ok());
  EXPECT_TRUE(ValidateBirthDate("birth_date", MakeDate(1996, 2, 29), now).ok());
  EXPECT_TRUE(InvalidNaming(ValidateBirthDate("birth_date", MakeDate(2023, 2, 29), now), "birth_date", "calendar"));
  EXPECT_TRUE(InvalidNaming(ValidateBirthDate("birth_date", MakeDate(1900, 2, 29), now), "birth_date", "calendar"));
  EXPECT_TRUE(InvalidNaming(ValidateBirthDate("birth_date", MakeDate(2024, 2, 30), now), "birth_date", "calendar"));
}

TEST(ValidateBirthDateTest, RefusesImpossibleDates) {
  const absl::Time now = Utc(2024, 6, 15, 12);
  for (const common::v1::Date& d : {MakeDate(2000, 13, 1), MakeDate(2000, 0, 1), MakeDate(2000, 1, 0),
                                    MakeDate(2000, 1, 32), MakeDate(2001, 4, 31), MakeDate(2000, -1, 10),
                                    MakeDate(2000, 1, -1)}) {
    EXPECT_TRUE(InvalidNaming(ValidateBirthDate("dob", d, now), "dob")) << d.ShortDebugString();
  }
  EXPECT_TRUE(ValidateBirthDate("dob", MakeDate(2001, 4, 30), now).ok());
  EXPECT_TRUE(ValidateBirthDate("dob", MakeDate(1999, 12, 31), now).ok());
}

TEST(ValidateBirthDateTest, YearFrom1900) {
  const absl::Time now = Utc(2024, 6, 15, 12);
  EXPECT_TRUE(ValidateBirthDate("birth_date", MakeDate(1900, 1, 1), now).ok());
  EXPECT_TRUE(InvalidNaming(ValidateBirthDate("birth_date", MakeDate(1899, 12, 31), now), "birth_date", "1900"));
  EXPECT_TRUE(InvalidNaming(ValidateBirthDate("birth_date", MakeDate(0, 1, 1), now), "birth_date"));
  EXPECT_TRUE(InvalidNaming(ValidateBirthDate("birth_date", MakeDate(10000, 1, 1), now), "birth_date"));
}

TEST(ValidateBirthDateTest, TodayAllowedFutureRefused) {
  // 12:00 UTC on 15 June is already 16 June 02:00 at UTC+14: both days are
  // "today" somewhere; 17 June is not.
  const absl::Time noon = Utc(2024, 6, 15, 12);
  EXPECT_TRUE(ValidateBirthDate("birth_date", MakeDate(2024, 6, 15), noon).ok());
  EXPECT_TRUE(ValidateBirthDate("birth_date", MakeDate(2024, 6, 16), noon).ok());
  EXPECT_TRUE(InvalidNaming(ValidateBirthDate("birth_date", MakeDate(2024, 6, 17), noon), "birth_date", "future"));
  EXPECT_TRUE(InvalidNaming(ValidateBirthDate("birth_date", MakeDate(2025, 1, 1), noon), "birth_date", "future"));
  // 09:00 UTC is 23:00 at UTC+14: 16 June has not started anywhere yet.
  const absl::Time morning = Utc(2024, 6, 15, 9);
  EXPECT_TRUE(ValidateBirthDate("birth_date", MakeDate(2024, 6, 15), morning).ok());
  EXPECT_TRUE(InvalidNaming(ValidateBirthDate("birth_date", MakeDate(2024, 6, 16), morning), "birth_date", "future"));
  // Midnight UTC: today in UTC is still allowed.
  EXPECT_TRUE(ValidateBirthDate("birth_date", MakeDate(2024, 6, 15), Utc(2024, 6, 15)).ok());
  // With the real clock.
  const absl::Time real_now = absl::Now();
  const absl::CivilDay today = absl::ToCivilDay(real_now, absl::UTCTimeZone());
  EXPECT_TRUE(ValidateBirthDate("birth_date", MakeDate(static_cast<int>(today.year()), today.month(), today.day()),
                                real_now)
                  .ok());
  const absl::CivilDay later = today + 2;
  EXPECT_FALSE(ValidateBirthDate("birth_date", MakeDate(static_cast<int>(later.year()), later.month(), later.day()),
                                 real_now)
                   .ok());
}

// ===========================================================================
// validation.h: ValidateId, ValidateDocumentVersion
// ===========================================================================

TEST(ValidateIdTest, AcceptsIdCharacters) {
  for (const std::string& ok : {std::string("gold"), std::string("mb_0123abc"), std::string("A.b-C_9"),
                                std::string("x"), Repeat("a", 64)}) {
    EXPECT_TRUE(ValidateId("partner_id", ok).ok()) << ok;
  }
}

TEST(ValidateIdTest, RefusesEmptyLongAndOtherCharacters) {
  EXPECT_TRUE(InvalidNaming(ValidateId("partner_id", ""), "partner_id", "required"));
  EXPECT_TRUE(InvalidNaming(ValidateId("partner_id", Repeat("a", 65)), "partner_id", "64"));
  for (const std::string& bad : {std::string("a b"), std::string("a/b"), std::string("a@b"), std::string("a:b"),
                                 std::string("caf\xc3\xa9"), std::string(" a"), std::string("a\n"),
                                 std::string("a\0b", 3)}) {
    EXPECT_TRUE(InvalidNaming(ValidateId("member_id", bad), "member_id")) << bad;
  }
}

TEST(ValidateDocumentVersionTest, PrintableAsciiOneToThirtyTwo) {
  for (const std::string& ok :
       {std::string("1"), std::string("2024-01"), std::string("v1.2+build/3~rc"), Repeat("x", 32)}) {
    EXPECT_TRUE(ValidateDocumentVersion("terms_version", ok).ok()) << ok;
  }
  EXPECT_TRUE(InvalidNaming(ValidateDocumentVersion("terms_version", ""), "terms_version", "required"));
  EXPECT_TRUE(InvalidNaming(ValidateDocumentVersion("terms_version", Repeat("x", 33)), "terms_version", "32"));
  for (const std::string& bad : {std::string("v 1"), std::string("v\t1"), std::string("v\x7f"),
                                 std::string("v\xc3\xa9"), std::string("v\n")}) {
    EXPECT_TRUE(InvalidNaming(ValidateDocumentVersion("privacy_version", bad), "privacy_version")) << bad;
  }
}

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

// ===========================================================================
// tiers.h: ValidateLadder
// ===========================================================================

TEST(ValidateLadderTest, TestLadderIsValid) {
  EXPECT_TRUE(ValidateLadder(TestLadder()).ok()) << ValidateLadder(TestLadder());
  // Listed out of rank order is fine: nothing requires sorted input.
  EXPECT_TRUE(ValidateLadder(ShuffledTestLadder()).ok()) << ValidateLadder(ShuffledTestLadder());
  // A base tier alone is a ladder.
  v1::TierLadder base_only;
  base_only.set_qualification_window_months(12);
  *base_only.add_tiers() = Def("member", "Member", 0, 0, 10'000, 0);
  EXPECT_TRUE(ValidateLadder(base_only).ok());
}

TEST(ValidateLadderTest, WindowOneToThirtySix) {
  for (int w : {1, 12, 36}) {
    v1::TierLadder l = TestLadder();
    l.set_qualification_window_months(w);
    EXPECT_TRUE(ValidateLadder(l).ok()) << w;
  }
  for (int w : {0, -1, 37, 120}) {
    v1::TierLadder l = TestLadder();
    l.set_qualification_window_months(w);
    EXPECT_TRUE(InvalidNaming(ValidateLadder(l), "ladder.qualification_window_months")) << w;
  }
}

TEST(ValidateLadderTest, TierCount) {
  v1::TierLadder l = TestLadder();
  l.clear_tiers();
  EXPECT_TRUE(InvalidNaming(ValidateLadder(l), "ladder.tiers"));
  for (int i = 0; i < kMaxTiers; ++i) {
    *l.add_tiers() = Def(absl::StrCat("t", i), absl::StrCat("T", i), i, i * 100, 10'000, 1);
  }
  EXPECT_TRUE(ValidateLadder(l).ok()) << ValidateLadder(l);
  *l.add_tiers() = Def("t20", "T20", 20, 2000, 10'000, 1);
  EXPECT_TRUE(InvalidNaming(ValidateLadder(l), "ladder.tiers", "20"));
}

TEST(ValidateLadderTest, TierIdRules) {
  for (const std::string& bad : {std::string(""), std::string("Gold"), std::string("gold tier"), std::string("gold!"),
                                 std::string("g.old"), Repeat("g", 33)}) {
    v1::TierLadder l = TestLadder();
    l.mutable_tiers(1)->set_tier_id(bad);
    EXPECT_TRUE(InvalidNaming(ValidateLadder(l), "ladder.tiers[1].tier_id")) << bad;
  }
  for (const std::string& ok : {std::string("gold-2"), std::string("gold_2"), Repeat("g", 32)}) {
    v1::TierLadder l = TestLadder();
    l.mutable_tiers(1)->set_tier_id(ok);
    EXPECT_TRUE(ValidateLadder(l).ok()) << ok;
  }
}

TEST(ValidateLadderTest, DuplicateTierId) {
  v1::TierLadder l = TestLadder();
  l.mutable_tiers(2)->set_tier_id("gold");
  EXPECT_TRUE(InvalidNaming(ValidateLadder(l), "ladder.tiers[2].tier_id", "duplicate"));
}

TEST(ValidateLadderTest, NameOneToSixtyFour) {
  v1::TierLadder l = TestLadder();
  l.mutable_tiers(2)->set_name("");
  EXPECT_TRUE(InvalidNaming(ValidateLadder(l), "ladder.tiers[2].name"));
  l.mutable_tiers(2)->set_name(Repeat("P", 65));
  EXPECT_TRUE(InvalidNaming(ValidateLadder(l), "ladder.tiers[2].name"));
  l.mutable_tiers(2)->set_name(Repeat("P", 64));
  EXPECT_TRUE(ValidateLadder(l).ok());
}

TEST(ValidateLadderTest, RankRules) {
  v1::TierLadder l = TestLadder();
  l.mutable_tiers(1)->set_rank(-1);
  EXPECT_TRUE(InvalidNaming(ValidateLadder(l), "ladder.tiers[1].rank"));

  l = TestLadder();
  l.mutable_tiers(2)->set_rank(1);
  EXPECT_TRUE(InvalidNaming(ValidateLadder(l), "ladder.tiers[2].rank", "duplicate"));

  // Ranks need not be contiguous.
  l = TestLadder();
  l.mutable_tiers(1)->set_rank(5);
  l.mutable_tiers(2)->set_rank(10);
  EXPECT_TRUE(ValidateLadder(l).ok()) << ValidateLadder(l);
}

TEST(ValidateLadderTest, RankZeroRequiredWithThresholdZero) {
  v1::TierLadder l = TestLadder();
  l.mutable_tiers(0)->set_rank(3);
  l.mutable_tiers(0)->set_qualifying_points_threshold(20'000);
  EXPECT_TRUE(InvalidNaming(ValidateLadder(l), "ladder.tiers", "rank-0"));

  l = TestLadder();
  l.mutable_tiers(0)->set_qualifying_points_threshold(1);
  EXPECT_TRUE(InvalidNaming(ValidateLadder(l), "ladder.tiers[0].qualifying_points_threshold"));

  l = TestLadder();
  l.mutable_tiers(1)->set_qualifying_points_threshold(-5);
  EXPECT_TRUE(InvalidNaming(ValidateLadder(l), "ladder.tiers[1].qualifying_points_threshold"));
}

TEST(ValidateLadderTest, ThresholdsMustIncreaseWithRank) {
  v1::TierLadder l = TestLadder();
  l.mutable_tiers(2)->set_qualifying_points_threshold(2'000);  // equal to gold
  absl::Status s = ValidateLadder(l);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StartsWith(s.message(), "ladder.tiers")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "qualifying_points_threshold")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "platinum")) << s;

  l = TestLadder();
  l.mutable_tiers(2)->set_qualifying_points_threshold(1'500);  // below gold
  s = ValidateLadder(l);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "qualifying_points_threshold")) << s;

  // Thresholds listed in increasing order, but the ranks run the other way.
  l = TestLadder();
  l.mutable_tiers(1)->set_rank(2);
  l.mutable_tiers(2)->set_rank(1);
  s = ValidateLadder(l);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "qualifying_points_threshold")) << s;
}

TEST(ValidateLadderTest, MultiplierRange) {
  for (int64_t bp : {kMinMultiplierBp, int64_t{12'345}, kMaxMultiplierBp}) {
    v1::TierLadder l = TestLadder();
    l.mutable_tiers(1)->set_tier_multiplier_bp(bp);
    EXPECT_TRUE(ValidateLadder(l).ok()) << bp;
  }
  for (int64_t bp : {int64_t{0}, int64_t{9'999}, int64_t{100'001}, int64_t{-10'000}}) {
    v1::TierLadder l = TestLadder();
    l.mutable_tiers(1)->set_tier_multiplier_bp(bp);
    EXPECT_TRUE(InvalidNaming(ValidateLadder(l), "ladder.tiers[1].tier_multiplier_bp")) << bp;
  }
}

TEST(ValidateLadderTest, RetentionRange) {
  for (int m : {0, 1, 36}) {
    v1::TierLadder l = TestLadder();
    l.mutable_tiers(2)->set_retention_months(m);
    EXPECT_TRUE(ValidateLadder(l).ok()) << m;
  }
  for (int m : {-1, 37}) {
    v1::TierLadder l = TestLadder();
    l.mutable_tiers(2)->set_retention_months(m);
    EXPECT_TRUE(InvalidNaming(ValidateLadder(l), "ladder.tiers[2].retention_months")) << m;
  }
}

TEST(ValidateLadderTest, AnnualFeeNotNegative) {
  v1::TierLadder l = TestLadder();
  l.mutable_tiers(2)->mutable_annual_fee()->set_amount_minor(9'900);
  l.mutable_tiers(2)->mutable_annual_fee()->set_currency("EUR");
  EXPECT_TRUE(ValidateLadder(l).ok());
  l.mutable_tiers(2)->mutable_annual_fee()->set_amount_minor(-1);
  EXPECT_TRUE(InvalidNaming(ValidateLadder(l), "ladder.tiers[2].annual_fee.amount_minor"));
}

TEST(LadderHelpersTest, SortedBaseAndFind) {
  const v1::TierLadder shuffled = ShuffledTestLadder();
  const v1::TierLadder sorted = SortedLadder(shuffled);
  ASSERT_EQ(sorted.tiers_size(), 3);
  EXPECT_EQ(sorted.tiers(0).tier_id(), "silver");
  EXPECT_EQ(sorted.tiers(1).tier_id(), "gold");
  EXPECT_EQ(sorted.tiers(2).tier_id(), "platinum");
  EXPECT_EQ(sorted.qualification_window_months(), 12);
  EXPECT_EQ(BaseTier(shuffled).tier_id(), "silver");
  ASSERT_NE(FindTier(shuffled, "gold"), nullptr);
  EXPECT_EQ(FindTier(shuffled, "gold")->rank(), 1);
  EXPECT_EQ(FindTier(shuffled, "diamond"), nullptr);
}

// ===========================================================================
// tiers.h: AddMonths
// ===========================================================================

TEST(AddMonthsTest, ClampsToTheEndOfTheMonth) {
  EXPECT_EQ(AddMonths(Utc(2023, 1, 31), 1), Utc(2023, 2, 28));
  EXPECT_EQ(AddMonths(Utc(2024, 1, 31), 1), Utc(2024, 2, 29));
  EXPECT_EQ(AddMonths(Utc(2024, 8, 31), 1), Utc(2024, 9, 30));
  EXPECT_EQ(AddMonths(Utc(2024, 2, 29), 12), Utc(2025, 2, 28));
  EXPECT_EQ(AddMonths(Utc(2024, 2, 29), 48), Utc(2028, 2, 29));
  EXPECT_EQ(AddMonths(Utc(2024, 1, 30), 1), Utc(2024, 2, 29));
  EXPECT_EQ(AddMonths(Utc(2024, 1, 15), 1), Utc(2024, 2, 15));
}

TEST(AddMonthsTest, AcrossYearsAndNegative) {
  EXPECT_EQ(AddMonths(Utc(2024, 12, 15), 1), Utc(2025, 1, 15));
  EXPECT_EQ(AddMonths(Utc(2024, 11, 30), 3), Utc(2025, 2, 28));
  EXPECT_EQ(AddMonths(Utc(2024, 3, 31), -1), Utc(2024, 2, 29));
  EXPECT_EQ(AddMonths(Utc(2023, 3, 31), -1), Utc(2023, 2, 28));
  EXPECT_EQ(AddMonths(Utc(2024, 3, 31), -13), Utc(2023, 2, 28));
  EXPECT_EQ(AddMonths(Utc(2024, 1, 10), -1), Utc(2023, 12, 10));
  EXPECT_EQ(AddMonths(Utc(2024, 5, 31), -12), Utc(2023, 5, 31));
  EXPECT_EQ(AddMonths(Utc(2024, 5, 31), -36), Utc(2021, 5, 31));
  EXPECT_EQ(AddMonths(Utc(2024, 5, 31), 0), Utc(2024, 5, 31));
}

TEST(AddMonthsTest, KeepsTimeOfDayAndSubSeconds) {
  const absl::Time t = Utc(2024, 1, 31, 13, 45, 7) + absl::Microseconds(123'456);
  EXPECT_EQ(AddMonths(t, 1), Utc(2024, 2, 29, 13, 45, 7) + absl::Microseconds(123'456));
  EXPECT_EQ(AddMonths(t, -2), Utc(2023, 11, 30, 13, 45, 7) + absl::Microseconds(123'456));
  // Before the Unix epoch (negative Unix time) as well.
  const absl::Time before_epoch = Utc(1969, 12, 31, 23, 59, 59) + absl::Milliseconds(500);
  EXPECT_EQ(AddMonths(before_epoch, 2), Utc(1970, 2, 28, 23, 59, 59) + absl::Milliseconds(500));
  EXPECT_EQ(AddMonths(Utc(2024, 7, 1, 23, 59, 59), 1), Utc(2024, 8, 1, 23, 59, 59));
}

// ===========================================================================
// tiers.h: DecorateTier, InitialTier
// ===========================================================================

TEST(DecorateTierTest, FillsDisplayFields) {
  const v1::TierLadder ladder = TestLadder();
  v1::MemberTier t;
  t.set_tier_id("silver");
  t.set_qualifying_points(500);
  DecorateTier(ladder, &t);
  EXPECT_EQ(t.tier_name(), "Silver");
  EXPECT_EQ(t.rank(), 0);
  EXPECT_EQ(t.tier_multiplier_bp(), 10'000);
  EXPECT_EQ(t.next_tier_id(), "gold");
  EXPECT_EQ(t.points_to_next_tier(), 1'500);

  t.set_tier_id("gold");
  t.set_qualifying_points(2'500);
  DecorateTier(ladder, &t);
  EXPECT_EQ(t.tier_name(), "Gold");
  EXPECT_EQ(t.rank(), 1);
  EXPECT_EQ(t.tier_multiplier_bp(), 12'500);
  EXPECT_EQ(t.next_tier_id(), "platinum");
  EXPECT_EQ(t.points_to_next_tier(), 7'500);

  // Never negative (a retained member may hold more than the next threshold
  // only transiently, but the field is clamped anyway).
  t.set_qualifying_points(12'000);
  DecorateTier(ladder, &t);
  EXPECT_EQ(t.points_to_next_tier(), 0);

  // Top of the ladder: no next tier; stale values are overwritten.
  t.set_tier_id("platinum");
  t.set_qualifying_points(100);
  DecorateTier(ladder, &t);
  EXPECT_EQ(t.tier_name(), "Platinum");
  EXPECT_EQ(t.rank(), 2);
  EXPECT_EQ(t.tier_multiplier_bp(), 15'000);
  EXPECT_EQ(t.next_tier_id(), "");
  EXPECT_EQ(t.points_to_next_tier(), 0);
}

TEST(DecorateTierTest, NextTierIsTheNextRankNotTheNextListed) {
  const v1::TierLadder ladder = ShuffledTestLadder();
  v1::MemberTier t;
  t.set_tier_id("silver");
  DecorateTier(ladder, &t);
  EXPECT_EQ(t.next_tier_id(), "gold");
  EXPECT_EQ(t.points_to_next_tier(), 2'000);
  t.set_tier_id("gold");
  DecorateTier(ladder, &t);
  EXPECT_EQ(t.next_tier_id(), "platinum");
  EXPECT_EQ(t.points_to_next_tier(), 10'000);
}

TEST(InitialTierTest, BaseTierDecorated) {
  for (const v1::TierLadder& ladder : {TestLadder(), ShuffledTestLadder()}) {
    const absl::Time now = Utc(2024, 3, 1, 9, 30) + absl::Microseconds(7);
    const v1::MemberTier t = InitialTier(ladder, now);
    EXPECT_EQ(t.tier_id(), "silver");
    EXPECT_EQ(t.basis(), v1::TIER_BASIS_BASE);
    EXPECT_EQ(FromProtoTime(t.since()), now);
    EXPECT_FALSE(t.has_retained_until());
    EXPECT_FALSE(t.has_paid_until());
    EXPECT_EQ(t.qualifying_points(), 0);
    EXPECT_EQ(t.tier_name(), "Silver");
    EXPECT_EQ(t.rank(), 0);
    EXPECT_EQ(t.tier_multiplier_bp(), 10'000);
    EXPECT_EQ(t.next_tier_id(), "gold");
    EXPECT_EQ(t.points_to_next_tier(), 2'000);
  }
}

// ===========================================================================
// tiers.h: EvaluateTier
// ===========================================================================

TEST(EvaluateTierTest, UpgradeFromBase) {
  const v1::TierLadder ladder = TestLadder();
  const absl::Time enrolled = Utc(2023, 5, 1, 8);
  const absl::Time as_of = Utc(2024, 2, 29, 12, 0, 0);
  const v1::MemberTier current = InitialTier(ladder, enrolled);

  const Evaluation e = EvaluateTier(ladder, current, 2'500, as_of);
  EXPECT_EQ(e.tier.tier_id(), "gold");
  EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_QUALIFIED);
  ASSERT_TRUE(e.tier.has_retained_until());
  EXPECT_EQ(FromProtoTime(e.tier.retained_until()), Utc(2025, 2, 28, 12));  // as_of + 12 months, clamped
  EXPECT_FALSE(e.tier.has_paid_until());
  EXPECT_EQ(FromProtoTime(e.tier.since()), as_of);
  EXPECT_EQ(FromProtoTime(e.tier.evaluated_at()), as_of);
  EXPECT_EQ(e.tier.qualifying_points(), 2'500);
  EXPECT_EQ(e.tier.tier_name(), "Gold");
  EXPECT_EQ(e.tier.rank(), 1);
  EXPECT_EQ(e.tier.tier_multiplier_bp(), 12'500);
  EXPECT_EQ(e.tier.next_tier_id(), "platinum");
  EXPECT_EQ(e.tier.points_to_next_tier(), 7'500);

  ASSERT_TRUE(e.change.has_value());
  const v1::TierChange& c = *e.change;
  EXPECT_EQ(c.from_tier_id(), "silver");
  EXPECT_EQ(c.to_tier_id(), "gold");
  EXPECT_EQ(c.reason(), v1::TIER_CHANGE_REASON_QUALIFIED);
  EXPECT_EQ(c.qualifying_points(), 2'500);
  EXPECT_EQ(FromProtoTime(c.window_start_time()), Utc(2023, 2, 28, 12));  // as_of - 12 months
  EXPECT_EQ(FromProtoTime(c.window_end_time()), as_of);
  EXPECT_EQ(FromProtoTime(c.changed_at()), as_of);
  ASSERT_TRUE(c.has_valid_until());
  EXPECT_EQ(FromProtoTime(c.valid_until()), Utc(2025, 2, 28, 12));
}

TEST(EvaluateTierTest, WindowFollowsTheLadder) {
  v1::TierLadder ladder = TestLadder();
  ladder.set_qualification_window_months(3);
  const absl::Time as_of = Utc(2024, 5, 31, 6);
  const Evaluation e = EvaluateTier(ladder, InitialTier(ladder, Utc(2024, 1, 1)), 2'000, as_of);
  ASSERT_TRUE(e.change.has_value());
  EXPECT_EQ(FromProtoTime(e.change->window_start_time()), Utc(2024, 2, 29, 6));
  EXPECT_EQ(FromProtoTime(e.change->window_end_time()), as_of);
}

TEST(EvaluateTierTest, ThresholdBoundaries) {
  const v1::TierLadder ladder = TestLadder();
  const absl::Time as_of = Utc(2024, 6, 1);
  const v1::MemberTier base = InitialTier(ladder, Utc(2024, 1, 1));
  struct Case {
    int64_t points;
    const char* tier;
  };
  for (const Case& c : std::vector<Case>{{0, "silver"},
                                         {1'999, "silver"},
                                         {2'000, "gold"},
                                         {9'999, "gold"},
                                         {10'000, "platinum"},
                                         {1'000'000, "platinum"}}) {
    const Evaluation e = EvaluateTier(ladder, base, c.points, as_of);
    EXPECT_EQ(e.tier.tier_id(), c.tier) << c.points;
    EXPECT_EQ(e.change.has_value(), std::string(c.tier) != "silver") << c.points;
    EXPECT_EQ(e.tier.qualifying_points(), c.points);
  }
}

TEST(EvaluateTierTest, StayingOnBaseChangesNothingButThePoints) {
  const v1::TierLadder ladder = TestLadder();
  const v1::MemberTier base = InitialTier(ladder, Utc(2024, 1, 1));
  const Evaluation e = EvaluateTier(ladder, base, 1'200, Utc(2024, 6, 1));
  EXPECT_FALSE(e.change.has_value());
  EXPECT_EQ(e.tier.tier_id(), "silver");
  EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_BASE);
  EXPECT_FALSE(e.tier.has_retained_until());
  EXPECT_EQ(FromProtoTime(e.tier.since()), Utc(2024, 1, 1));
  EXPECT_EQ(FromProtoTime(e.tier.evaluated_at()), Utc(2024, 6, 1));
  EXPECT_EQ(e.tier.points_to_next_tier(), 800);
}

TEST(EvaluateTierTest, UpgradeSkipsRanksToTheHighestQualified) {
  const v1::TierLadder ladder = TestLadder();
  const absl::Time as_of = Utc(2024, 6, 1);
  const Evaluation e = EvaluateTier(ladder, InitialTier(ladder, Utc(2024, 1, 1)), 10'000, as_of);
  EXPECT_EQ(e.tier.tier_id(), "platinum");
  EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_QUALIFIED);
  EXPECT_EQ(FromProtoTime(e.tier.retained_until()), Utc(2025, 6, 1));
  EXPECT_EQ(e.tier.next_tier_id(), "");
  EXPECT_EQ(e.tier.points_to_next_tier(), 0);
  ASSERT_TRUE(e.change.has_value());
  EXPECT_EQ(e.change->from_tier_id(), "silver");
  EXPECT_EQ(e.change->to_tier_id(), "platinum");
  EXPECT_EQ(e.change->reason(), v1::TIER_CHANGE_REASON_QUALIFIED);
}

TEST(EvaluateTierTest, UpgradeWhileRetained) {
  const v1::TierLadder ladder = TestLadder();
  const v1::MemberTier gold = Held("gold", v1::TIER_BASIS_RETAINED, Utc(2023, 9, 1), Utc(2024, 9, 1), std::nullopt,
                                   Utc(2024, 3, 1));
  const absl::Time as_of = Utc(2024, 6, 10, 3);
  const Evaluation e = EvaluateTier(ladder, gold, 11'000, as_of);
  EXPECT_EQ(e.tier.tier_id(), "platinum");
  EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_QUALIFIED);
  EXPECT_EQ(FromProtoTime(e.tier.retained_until()), Utc(2025, 6, 10, 3));
  EXPECT_EQ(FromProtoTime(e.tier.since()), as_of);
  ASSERT_TRUE(e.change.has_value());
  EXPECT_EQ(e.change->from_tier_id(), "gold");
  EXPECT_EQ(e.change->reason(), v1::TIER_CHANGE_REASON_QUALIFIED);
  EXPECT_EQ(FromProtoTime(e.change->valid_until()), Utc(2025, 6, 10, 3));
}

TEST(EvaluateTierTest, RequalifyingExtendsRetention) {
  const v1::TierLadder ladder = TestLadder();
  const absl::Time upgraded = Utc(2024, 2, 29, 12);
  const Evaluation first = EvaluateTier(ladder, InitialTier(ladder, Utc(2023, 1, 1)), 2'500, upgraded);
  ASSERT_EQ(first.tier.tier_id(), "gold");

  const absl::Time later = Utc(2024, 8, 15, 12);
  const Evaluation e = EvaluateTier(ladder, first.tier, 3'000, later);
  EXPECT_FALSE(e.change.has_value());
  EXPECT_EQ(e.tier.tier_id(), "gold");
  EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_QUALIFIED);
  EXPECT_EQ(FromProtoTime(e.tier.retained_until()), Utc(2025, 8, 15, 12));
  EXPECT_EQ(FromProtoTime(e.tier.since()), upgraded);  // same tier: since unchanged
  EXPECT_EQ(FromProtoTime(e.tier.evaluated_at()), later);
  EXPECT_EQ(e.tier.qualifying_points(), 3'000);
  EXPECT_EQ(e.tier.points_to_next_tier(), 7'000);
}

TEST(EvaluateTierTest, RequalifyingNeverShortensRetention) {
  const v1::TierLadder ladder = TestLadder();
  // Retention earned under an older ladder with a longer retention period.
  const v1::MemberTier gold = Held("gold", v1::TIER_BASIS_QUALIFIED, Utc(2024, 1, 1), Utc(2026, 12, 31),
                                   std::nullopt, Utc(2024, 1, 1));
  const Evaluation e = EvaluateTier(ladder, gold, 5'000, Utc(2024, 8, 1));
  EXPECT_FALSE(e.change.has_value());
  EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_QUALIFIED);
  EXPECT_EQ(FromProtoTime(e.tier.retained_until()), Utc(2026, 12, 31));
}

TEST(EvaluateTierTest, RetainedMemberWhoRequalifiesIsQualifiedAgain) {
  const v1::TierLadder ladder = TestLadder();
  const v1::MemberTier gold = Held("gold", v1::TIER_BASIS_RETAINED, Utc(2023, 1, 1), Utc(2024, 12, 1),
                                   std::nullopt, Utc(2024, 5, 1));
  const Evaluation e = EvaluateTier(ladder, gold, 2'000, Utc(2024, 6, 1));
  EXPECT_FALSE(e.change.has_value());
  EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_QUALIFIED);
  EXPECT_EQ(FromProtoTime(e.tier.retained_until()), Utc(2025, 6, 1));
}

TEST(EvaluateTierTest, KeepsTierWhileRetained) {
  const v1::TierLadder ladder = TestLadder();
  const absl::Time until = Utc(2025, 2, 28, 12);
  const v1::MemberTier gold =
      Held("gold", v1::TIER_BASIS_QUALIFIED, Utc(2024, 2, 29, 12), until, std::nullopt, Utc(2024, 2, 29, 12));

  for (const absl::Time as_of : {Utc(2024, 11, 1), until - absl::Microseconds(1)}) {
    const Evaluation e = EvaluateTier(ladder, gold, 500, as_of);
    EXPECT_FALSE(e.change.has_value()) << as_of;
    EXPECT_EQ(e.tier.tier_id(), "gold");
    EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_RETAINED);
    EXPECT_EQ(FromProtoTime(e.tier.retained_until()), until);  // not extended
    EXPECT_EQ(FromProtoTime(e.tier.since()), Utc(2024, 2, 29, 12));
    EXPECT_EQ(FromProtoTime(e.tier.evaluated_at()), as_of);
    EXPECT_EQ(e.tier.qualifying_points(), 500);
    EXPECT_EQ(e.tier.points_to_next_tier(), 9'500);
  }
  // Retained means as_of < retained_until: at retained_until it is over.
  const Evaluation at_end = EvaluateTier(ladder, gold, 500, until);
  EXPECT_EQ(at_end.tier.tier_id(), "silver");
  ASSERT_TRUE(at_end.change.has_value());
  EXPECT_EQ(at_end.change->reason(), v1::TIER_CHANGE_REASON_DOWNGRADED);
}

TEST(EvaluateTierTest, PlatinumDropsExactlyOneRankEvenWithZeroPoints) {
  const v1::TierLadder ladder = TestLadder();
  const v1::MemberTier platinum = Held("platinum", v1::TIER_BASIS_QUALIFIED, Utc(2023, 6, 1), Utc(2024, 6, 1),
                                       std::nullopt, Utc(2024, 3, 1));
  const absl::Time review = Utc(2024, 6, 2, 1);
  const Evaluation e = EvaluateTier(ladder, platinum, 0, review);
  EXPECT_EQ(e.tier.tier_id(), "gold");
  EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_RETAINED);
  // Held without qualifying: no retention left.
  ASSERT_TRUE(e.tier.has_retained_until());
  EXPECT_EQ(FromProtoTime(e.tier.retained_until()), review);
  EXPECT_EQ(FromProtoTime(e.tier.since()), review);
  EXPECT_EQ(e.tier.tier_name(), "Gold");
  EXPECT_EQ(e.tier.tier_multiplier_bp(), 12'500);
  EXPECT_EQ(e.tier.points_to_next_tier(), 10'000);
  ASSERT_TRUE(e.change.has_value());
  EXPECT_EQ(e.change->from_tier_id(), "platinum");
  EXPECT_EQ(e.change->to_tier_id(), "gold");
  EXPECT_EQ(e.change->reason(), v1::TIER_CHANGE_REASON_DOWNGRADED);
  EXPECT_EQ(e.change->qualifying_points(), 0);
  EXPECT_EQ(FromProtoTime(e.change->window_start_time()), Utc(2023, 6, 2, 1));
  EXPECT_EQ(FromProtoTime(e.change->window_end_time()), review);
  EXPECT_EQ(FromProtoTime(e.change->changed_at()), review);
  ASSERT_TRUE(e.change->has_valid_until());
  EXPECT_EQ(FromProtoTime(e.change->valid_until()), review);

  // The next review drops one more rank, to the base tier.
  const absl::Time next_review = Utc(2024, 7, 2, 1);
  const Evaluation e2 = EvaluateTier(ladder, e.tier, 0, next_review);
  EXPECT_EQ(e2.tier.tier_id(), "silver");
  EXPECT_EQ(e2.tier.basis(), v1::TIER_BASIS_BASE);
  EXPECT_FALSE(e2.tier.has_retained_until());
  ASSERT_TRUE(e2.change.has_value());
  EXPECT_EQ(e2.change->from_tier_id(), "gold");
  EXPECT_EQ(e2.change->to_tier_id(), "silver");
  EXPECT_EQ(e2.change->reason(), v1::TIER_CHANGE_REASON_DOWNGRADED);
  EXPECT_FALSE(e2.change->has_valid_until());  // unset for the base tier

  // And then it stays there.
  const Evaluation e3 = EvaluateTier(ladder, e2.tier, 0, Utc(2024, 8, 2));
  EXPECT_EQ(e3.tier.tier_id(), "silver");
  EXPECT_FALSE(e3.change.has_value());
}

TEST(EvaluateTierTest, DowngradeIntoATierThePointsStillQualifyFor) {
  const v1::TierLadder ladder = TestLadder();
  const v1::MemberTier platinum = Held("platinum", v1::TIER_BASIS_QUALIFIED, Utc(2023, 6, 1), Utc(2024, 6, 1),
                                       std::nullopt, Utc(2024, 3, 1));
  const absl::Time review = Utc(2024, 6, 1);
  const Evaluation e = EvaluateTier(ladder, platinum, 3'000, review);
  EXPECT_EQ(e.tier.tier_id(), "gold");
  EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_QUALIFIED);
  EXPECT_EQ(FromProtoTime(e.tier.retained_until()), Utc(2025, 6, 1));
  ASSERT_TRUE(e.change.has_value());
  EXPECT_EQ(e.change->reason(), v1::TIER_CHANGE_REASON_DOWNGRADED);
  EXPECT_EQ(FromProtoTime(e.change->valid_until()), Utc(2025, 6, 1));
}

TEST(EvaluateTierTest, GoldDropsToBase) {
  const v1::TierLadder ladder = TestLadder();
  const v1::MemberTier gold = Held("gold", v1::TIER_BASIS_QUALIFIED, Utc(2023, 6, 1), Utc(2024, 6, 1),
                                   std::nullopt, Utc(2024, 3, 1));
  const Evaluation e = EvaluateTier(ladder, gold, 1'999, Utc(2024, 6, 3));
  EXPECT_EQ(e.tier.tier_id(), "silver");
  EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_BASE);
  EXPECT_FALSE(e.tier.has_retained_until());
  EXPECT_EQ(e.tier.next_tier_id(), "gold");
  EXPECT_EQ(e.tier.points_to_next_tier(), 1);
  ASSERT_TRUE(e.change.has_value());
  EXPECT_EQ(e.change->reason(), v1::TIER_CHANGE_REASON_DOWNGRADED);
  EXPECT_FALSE(e.change->has_valid_until());
}

TEST(EvaluateTierTest, DowngradeWithRankGapsGoesToTheNextLowerRank) {
  v1::TierLadder ladder = TestLadder();
  ladder.mutable_tiers(1)->set_rank(5);
  ladder.mutable_tiers(2)->set_rank(10);
  ASSERT_TRUE(ValidateLadder(ladder).ok());
  v1::MemberTier platinum = Held("platinum", v1::TIER_BASIS_QUALIFIED, Utc(2023, 6, 1), Utc(2024, 6, 1),
                                 std::nullopt, Utc(2024, 3, 1));
  DecorateTier(ladder, &platinum);
  const Evaluation e = EvaluateTier(ladder, platinum, 0, Utc(2024, 7, 1));
  EXPECT_EQ(e.tier.tier_id(), "gold");
  EXPECT_EQ(e.tier.rank(), 5);
}

TEST(EvaluateTierTest, EvaluatingTwiceAfterADowngradeDoesNotDropTwice) {
  const v1::TierLadder ladder = TestLadder();
  const v1::MemberTier platinum = Held("platinum", v1::TIER_BASIS_QUALIFIED, Utc(2023, 6, 1), Utc(2024, 6, 1),
                                       std::nullopt, Utc(2024, 3, 1));
  const absl::Time review = Utc(2024, 6, 2, 1);
  const Evaluation once = EvaluateTier(ladder, platinum, 0, review);
  ASSERT_EQ(once.tier.tier_id(), "gold");
  const Evaluation twice = EvaluateTier(ladder, once.tier, 0, review);
  EXPECT_EQ(twice.tier.tier_id(), "gold");
  EXPECT_FALSE(twice.change.has_value());
  EXPECT_TRUE(MessageDifferencer::Equals(once.tier, twice.tier))
      << once.tier.ShortDebugString() << "\nvs\n"
      << twice.tier.ShortDebugString();
  // Nor does a (late) review dated before the last one.
  const Evaluation earlier = EvaluateTier(ladder, once.tier, 0, review - absl::Hours(1));
  EXPECT_EQ(earlier.tier.tier_id(), "gold");
  EXPECT_FALSE(earlier.change.has_value());
}

// A table of situations: evaluating the result again with the same points
// and as_of changes nothing, and yields no change record.
TEST(EvaluateTierTest, IdempotentInEverySituation) {
  const v1::TierLadder ladder = TestLadder();
  const absl::Time as_of = Utc(2024, 6, 15, 10, 20, 30) + absl::Microseconds(42);
  struct Case {
    const char* name;
    v1::MemberTier current;
    int64_t points;
  };
  const std::vector<Case> cases = {
      {"base stays", InitialTier(ladder, Utc(2024, 1, 1)), 100},
      {"base upgrades to gold", InitialTier(ladder, Utc(2024, 1, 1)), 2'000},
      {"base upgrades to platinum", InitialTier(ladder, Utc(2024, 1, 1)), 50'000},
      {"gold requalifies",
       Held("gold", v1::TIER_BASIS_QUALIFIED, Utc(2024, 1, 1), Utc(2025, 1, 1), std::nullopt, Utc(2024, 1, 1)), 2'500},
      {"gold retained",
       Held("gold", v1::TIER_BASIS_QUALIFIED, Utc(2024, 1, 1), Utc(2025, 1, 1), std::nullopt, Utc(2024, 1, 1)), 10},
      {"gold expires to silver",
       Held("gold", v1::TIER_BASIS_QUALIFIED, Utc(2023, 1, 1), Utc(2024, 1, 1), std::nullopt, Utc(2023, 12, 1)), 10},
      {"platinum drops to retained gold",
       Held("platinum", v1::TIER_BASIS_QUALIFIED, Utc(2023, 1, 1), Utc(2024, 6, 15), std::nullopt, Utc(2024, 1, 1)),
       0},
      {"platinum drops to qualified gold",
       Held("platinum", v1::TIER_BASIS_QUALIFIED, Utc(2023, 1, 1), Utc(2024, 1, 1), std::nullopt, Utc(2024, 1, 1)),
       4'000},
      {"retained gold with no time left drops",
       Held("gold", v1::TIER_BASIS_RETAINED, Utc(2024, 1, 1), Utc(2024, 1, 1), std::nullopt, Utc(2024, 1, 1)), 0},
      {"paid gold holds",
       Held("gold", v1::TIER_BASIS_PAID, Utc(2024, 1, 1), std::nullopt, Utc(2025, 1, 1), Utc(2024, 1, 1)), 0},
      {"paid gold upgrades",
       Held("gold", v1::TIER_BASIS_PAID, Utc(2024, 1, 1), std::nullopt, Utc(2025, 1, 1), Utc(2024, 1, 1)), 10'000},
      {"paid gold expires to silver",
       Held("gold", v1::TIER_BASIS_PAID, Utc(2023, 1, 1), std::nullopt, Utc(2024, 1, 1), Utc(2023, 12, 1)), 0},
      {"paid platinum expires to gold",
       Held("platinum", v1::TIER_BASIS_PAID, Utc(2023, 1, 1), std::nullopt, Utc(2024, 6, 15), Utc(2023, 12, 1)),
       3'000},
      {"paid gold expires, still qualifies",
       Held("gold", v1::TIER_BASIS_PAID, Utc(2023, 1, 1), Utc(2024, 3, 1), Utc(2024, 1, 1), Utc(2023, 12, 1)), 2'000},
  };
  for (const Case& c : cases) {
    const Evaluation once = EvaluateTier(ladder, c.current, c.points, as_of);
    const Evaluation twice = EvaluateTier(ladder, once.tier, c.points, as_of);
    EXPECT_FALSE(twice.change.has_value()) << c.name << ": " << twice.change->ShortDebugString();
    EXPECT_TRUE(MessageDifferencer::Equals(once.tier, twice.tier))
        << c.name << ":\n  once:  " << once.tier.ShortDebugString() << "\n  twice: " << twice.tier.ShortDebugString();
    // Evaluating the same input again is deterministic too.
    const Evaluation again = EvaluateTier(ladder, c.current, c.points, as_of);
    EXPECT_TRUE(MessageDifferencer::Equals(once.tier, again.tier)) << c.name;
    EXPECT_EQ(once.change.has_value(), again.change.has_value()) << c.name;
  }
}

TEST(EvaluateTierTest, PaidTierHoldsRegardlessOfPoints) {
  const v1::TierLadder ladder = TestLadder();
  const absl::Time paid_until = Utc(2024, 12, 31);
  const v1::MemberTier gold =
      Held("gold", v1::TIER_BASIS_PAID, Utc(2024, 1, 1), std::nullopt, paid_until, Utc(2024, 1, 1));
  for (int64_t points : {int64_t{0}, int64_t{1'999}, int64_t{2'000}, int64_t{9'999}}) {
    const Evaluation e = EvaluateTier(ladder, gold, points, Utc(2024, 12, 30, 23, 59, 59));
    EXPECT_FALSE(e.change.has_value()) << points;
    EXPECT_EQ(e.tier.tier_id(), "gold") << points;
    EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_PAID) << points;
    ASSERT_TRUE(e.tier.has_paid_until());
    EXPECT_EQ(FromProtoTime(e.tier.paid_until()), paid_until);
    EXPECT_EQ(e.tier.qualifying_points(), points);
  }
  // A paid platinum member with only gold points keeps platinum.
  const v1::MemberTier platinum =
      Held("platinum", v1::TIER_BASIS_PAID, Utc(2024, 1, 1), std::nullopt, paid_until, Utc(2024, 1, 1));
  const Evaluation e = EvaluateTier(ladder, platinum, 3'000, Utc(2024, 6, 1));
  EXPECT_FALSE(e.change.has_value());
  EXPECT_EQ(e.tier.tier_id(), "platinum");
  EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_PAID);
}

TEST(EvaluateTierTest, HigherQualifiedTierUpgradesAPaidMember) {
  const v1::TierLadder ladder = TestLadder();
  const v1::MemberTier gold =
      Held("gold", v1::TIER_BASIS_PAID, Utc(2024, 1, 1), std::nullopt, Utc(2024, 12, 31), Utc(2024, 1, 1));
  const absl::Time as_of = Utc(2024, 6, 1, 12);
  const Evaluation e = EvaluateTier(ladder, gold, 12'000, as_of);
  EXPECT_EQ(e.tier.tier_id(), "platinum");
  EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_QUALIFIED);
  EXPECT_EQ(FromProtoTime(e.tier.retained_until()), Utc(2025, 6, 1, 12));
  EXPECT_EQ(FromProtoTime(e.tier.since()), as_of);
  ASSERT_TRUE(e.change.has_value());
  EXPECT_EQ(e.change->from_tier_id(), "gold");
  EXPECT_EQ(e.change->to_tier_id(), "platinum");
  EXPECT_EQ(e.change->reason(), v1::TIER_CHANGE_REASON_QUALIFIED);
  EXPECT_EQ(FromProtoTime(e.change->valid_until()), Utc(2025, 6, 1, 12));
}

TEST(EvaluateTierTest, PaidExpiryFallsToTheQualifiedTier) {
  const v1::TierLadder ladder = TestLadder();
  const absl::Time paid_until = Utc(2024, 12, 31);
  const v1::MemberTier gold =
      Held("gold", v1::TIER_BASIS_PAID, Utc(2024, 1, 1), std::nullopt, paid_until, Utc(2024, 12, 1));
  // paid_until is exclusive: at paid_until the paid tier is over.
  const Evaluation e = EvaluateTier(ladder, gold, 500, paid_until);
  EXPECT_EQ(e.tier.tier_id(), "silver");
  EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_BASE);
  EXPECT_FALSE(e.tier.has_paid_until());
  EXPECT_FALSE(e.tier.has_retained_until());
  ASSERT_TRUE(e.change.has_value());
  EXPECT_EQ(e.change->from_tier_id(), "gold");
  EXPECT_EQ(e.change->to_tier_id(), "silver");
  EXPECT_EQ(e.change->reason(), v1::TIER_CHANGE_REASON_PAID_EXPIRED);
  EXPECT_EQ(e.change->qualifying_points(), 500);
  EXPECT_EQ(FromProtoTime(e.change->window_end_time()), paid_until);
  EXPECT_FALSE(e.change->has_valid_until());

  // A paid platinum member goes straight to the tier the points qualify for.
  const v1::MemberTier platinum =
      Held("platinum", v1::TIER_BASIS_PAID, Utc(2024, 1, 1), std::nullopt, paid_until, Utc(2024, 12, 1));
  const Evaluation p = EvaluateTier(ladder, platinum, 2'500, Utc(2025, 1, 2));
  EXPECT_EQ(p.tier.tier_id(), "gold");
  EXPECT_EQ(p.tier.basis(), v1::TIER_BASIS_QUALIFIED);
  EXPECT_EQ(FromProtoTime(p.tier.retained_until()), Utc(2026, 1, 2));
  ASSERT_TRUE(p.change.has_value());
  EXPECT_EQ(p.change->reason(), v1::TIER_CHANGE_REASON_PAID_EXPIRED);
  EXPECT_EQ(FromProtoTime(p.change->valid_until()), Utc(2026, 1, 2));
}

TEST(EvaluateTierTest, PaidExpiryOnTheSameTierBecomesQualified) {
  const v1::TierLadder ladder = TestLadder();
  const v1::MemberTier gold =
      Held("gold", v1::TIER_BASIS_PAID, Utc(2024, 1, 1), std::nullopt, Utc(2024, 12, 31), Utc(2024, 12, 1));
  const Evaluation e = EvaluateTier(ladder, gold, 2'500, Utc(2025, 1, 5));
  EXPECT_FALSE(e.change.has_value());
  EXPECT_EQ(e.tier.tier_id(), "gold");
  EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_QUALIFIED);
  EXPECT_FALSE(e.tier.has_paid_until());
  EXPECT_EQ(FromProtoTime(e.tier.retained_until()), Utc(2026, 1, 5));
  EXPECT_EQ(FromProtoTime(e.tier.since()), Utc(2024, 1, 1));
}

TEST(EvaluateTierTest, PaidTierHoldsUntilPaidUntilEvenAfterAnUpgrade) {
  // A paid member who qualifies higher keeps the higher tier at least until
  // the paid period ends, so no review drops them below what they paid for
  // before paid_until (tiers.h).
  const v1::TierLadder ladder = TestLadder();
  const absl::Time paid_until = Utc(2025, 12, 31);
  const v1::MemberTier gold =
      Held("gold", v1::TIER_BASIS_PAID, Utc(2024, 1, 1), std::nullopt, paid_until, Utc(2024, 1, 1));
  const Evaluation up = EvaluateTier(ladder, gold, 12'000, Utc(2024, 6, 1));
  ASSERT_EQ(up.tier.tier_id(), "platinum");
  EXPECT_EQ(FromProtoTime(up.tier.retained_until()), paid_until);
  for (absl::Time at : {Utc(2025, 6, 2), Utc(2025, 7, 2), Utc(2025, 12, 30)}) {
    const Evaluation held = EvaluateTier(ladder, up.tier, 0, at);
    EXPECT_EQ(held.tier.tier_id(), "platinum") << at;
    EXPECT_FALSE(held.change.has_value());
  }
  const Evaluation after = EvaluateTier(ladder, up.tier, 0, Utc(2026, 1, 1));
  EXPECT_EQ(after.tier.tier_id(), "gold");  // one rank per review, after the paid period
}

TEST(EvaluateTierTest, ShuffledLadderGivesTheSameResults) {
  const v1::TierLadder sorted = TestLadder();
  const v1::TierLadder shuffled = ShuffledTestLadder();
  const absl::Time as_of = Utc(2024, 6, 1);
  const std::vector<v1::MemberTier> states = {
      InitialTier(sorted, Utc(2024, 1, 1)),
      Held("gold", v1::TIER_BASIS_QUALIFIED, Utc(2023, 1, 1), Utc(2024, 1, 1), std::nullopt, Utc(2024, 1, 1)),
      Held("platinum", v1::TIER_BASIS_QUALIFIED, Utc(2023, 1, 1), Utc(2024, 1, 1), std::nullopt, Utc(2024, 1, 1)),
      Held("platinum", v1::TIER_BASIS_QUALIFIED, Utc(2023, 1, 1), Utc(2025, 1, 1), std::nullopt, Utc(2024, 1, 1)),
      Held("gold", v1::TIER_BASIS_PAID, Utc(2023, 1, 1), std::nullopt, Utc(2025, 1, 1), Utc(2024, 1, 1)),
      Held("gold", v1::TIER_BASIS_PAID, Utc(2023, 1, 1), std::nullopt, Utc(2024, 1, 1), Utc(2024, 1, 1)),
  };
  for (const v1::MemberTier& s : states) {
    for (int64_t points : {int64_t{0}, int64_t{2'000}, int64_t{10'000}}) {
      const Evaluation a = EvaluateTier(sorted, s, points, as_of);
      const Evaluation b = EvaluateTier(shuffled, s, points, as_of);
      EXPECT_TRUE(MessageDifferencer::Equals(a.tier, b.tier)) << s.ShortDebugString() << " points " << points;
      ASSERT_EQ(a.change.has_value(), b.change.has_value());
      if (a.change) {
        EXPECT_TRUE(MessageDifferencer::Equals(*a.change, *b.change));
      }
    }
  }
}

// Random members through many reviews (and occasional paid grants, the way
// GrantPaidTier sets them): the documented rules hold at every step.
TEST(EvaluateTierTest, RandomWalkKeepsTheRules) {
  const v1::TierLadder ladder = TestLadder();
  const std::vector<int64_t> point_choices = {0, 500, 1'999, 2'000, 2'500, 9'999, 10'000, 15'000};
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    std::mt19937_64 rng(seed);
    auto below = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
    absl::Time t = Utc(2022, 1, 31, 9) + absl::Microseconds(below(1'000'000));
    v1::MemberTier tier = InitialTier(ladder, t);
    for (int step = 0; step < 80; ++step) {
      SCOPED_TRACE(absl::StrCat("seed ", seed, " step ", step, " tier ", tier.ShortDebugString()));
      // Advance the clock; sometimes land exactly on a retention or paid end.
      const int how = below(10);
      if (how == 0 && tier.has_retained_until() && FromProtoTime(tier.retained_until()) > t) {
        t = FromProtoTime(tier.retained_until());
      } else if (how == 1 && tier.has_paid_until() && FromProtoTime(tier.paid_until()) > t) {
        t = FromProtoTime(tier.paid_until());
      } else if (how != 2) {  // how == 2: same as_of as the last review
        t = AddMonths(t, below(8)) + absl::Hours(below(24 * 28)) + absl::Microseconds(below(1'000'000));
      }
      // Occasionally grant a paid tier at or above the held one.
      if (below(12) == 0) {
        const int held_rank = RankOf(ladder, tier.tier_id());
        std::vector<const v1::TierDefinition*> options;
        for (const auto& d : ladder.tiers()) {
          if (d.rank() >= std::max(1, held_rank)) options.push_back(&d);
        }
        if (!options.empty()) {
          const v1::TierDefinition* d = options[below(static_cast<int>(options.size()))];
          if (d->tier_id() != tier.tier_id()) *tier.mutable_since() = ToProtoTime(t);
          tier.set_tier_id(d->tier_id());
          tier.set_basis(v1::TIER_BASIS_PAID);
          *tier.mutable_paid_until() = ToProtoTime(AddMonths(t, 1 + below(14)));
          DecorateTier(ladder, &tier);
        }
      }
      const int64_t points = point_choices[below(static_cast<int>(point_choices.size()))];
      const v1::MemberTier before = tier;
      const int held = RankOf(ladder, before.tier_id());
      const v1::TierDefinition* qualified = ExpectedQualified(ladder, points);
      ASSERT_NE(qualified, nullptr);
      const bool paid = before.basis() == v1::TIER_BASIS_PAID;
      const bool paid_active = paid && before.has_paid_until() && FromProtoTime(before.paid_until()) > t;
      const bool retained = before.has_retained_until() && FromProtoTime(before.retained_until()) > t;

      const Evaluation e = EvaluateTier(ladder, before, points, t);
      const int after = RankOf(ladder, e.tier.tier_id());
      ASSERT_GE(after, 0);

      // A change record exactly when the tier changed, describing it.
      ASSERT_EQ(e.change.has_value(), e.tier.tier_id() != before.tier_id());
      if (e.change) {
        EXPECT_EQ(e.change->from_tier_id(), before.tier_id());
        EXPECT_EQ(e.change->to_tier_id(), e.tier.tier_id());
        EXPECT_EQ(e.change->qualifying_points(), points);
        EXPECT_EQ(FromProtoTime(e.change->window_end_time()), t);
        EXPECT_EQ(FromProtoTime(e.change->window_start_time()), AddMonths(t, -12));
        EXPECT_EQ(FromProtoTime(e.change->changed_at()), t);
        EXPECT_EQ(FromProtoTime(e.tier.since()), t);
        EXPECT_EQ(e.change->has_valid_until(), after != 0);
      } else {
        EXPECT_TRUE(MessageDifferencer::Equals(e.tier.since(), before.since()));
      }
      EXPECT_EQ(e.tier.qualifying_points(), points);

      // Never below the qualified tier; upgrades go to the qualified tier.
      EXPECT_GE(after, qualified->rank());
      if (after > held) {
        EXPECT_EQ(e.tier.tier_id(), qualified->tier_id());
        EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_QUALIFIED);
        EXPECT_EQ(e.change->reason(),
                  paid && !paid_active ? v1::TIER_CHANGE_REASON_PAID_EXPIRED : v1::TIER_CHANGE_REASON_QUALIFIED);
      }
      if (paid_active) {
        EXPECT_GE(after, held);
        if (after == held) {
          EXPECT_EQ(e.tier.basis(), v1::TIER_BASIS_PAID);
        }
      } else if (paid) {
        EXPECT_EQ(after, qualified->rank());
        EXPECT_FALSE(e.tier.has_paid_until());
      } else {
        // Downgrades: only once retention is over, and by one rank.
        if (after < held) {
          EXPECT_FALSE(retained);
          EXPECT_EQ(after, held - 1);
          EXPECT_EQ(e.change->reason(), v1::TIER_CHANGE_REASON_DOWNGRADED);
        }
        if (retained) {
          EXPECT_GE(after, held);
        }
      }
      // Basis is consistent with the tier and the points.
      switch (e.tier.basis()) {
        case v1::TIER_BASIS_BASE:
          EXPECT_EQ(after, 0);
          EXPECT_FALSE(e.tier.has_retained_until());
          break;
        case v1::TIER_BASIS_QUALIFIED: {
          EXPECT_EQ(e.tier.tier_id(), qualified->tier_id());
          const int months = FindTier(ladder, e.tier.tier_id())->retention_months();
          EXPECT_GE(FromProtoTime(e.tier.retained_until()), AddMonths(t, months));
          break;
        }
        case v1::TIER_BASIS_RETAINED:
          EXPECT_GT(after, qualified->rank());
          EXPECT_TRUE(e.tier.has_retained_until());
          break;
        case v1::TIER_BASIS_PAID:
          EXPECT_TRUE(paid_active);
          break;
        default:
          ADD_FAILURE() << "unexpected basis " << e.tier.basis();
      }
      // Retention on an unchanged tier never shrinks.
      if (!e.change && before.has_retained_until() && e.tier.has_retained_until()) {
        EXPECT_GE(FromProtoTime(e.tier.retained_until()), FromProtoTime(before.retained_until()));
      }
      // Decorated.
      EXPECT_EQ(e.tier.rank(), after);
      EXPECT_EQ(e.tier.tier_name(), FindTier(ladder, e.tier.tier_id())->name());

      // Idempotent.
      const Evaluation again = EvaluateTier(ladder, e.tier, points, t);
      EXPECT_FALSE(again.change.has_value());
      EXPECT_TRUE(MessageDifferencer::Equals(again.tier, e.tier))
          << "\n  once:  " << e.tier.ShortDebugString() << "\n  again: " << again.tier.ShortDebugString();

      tier = e.tier;
    }
  }
}

// ---------------------------------------------------------------------------
// Segment refresh diff (DiffSegmentMembers)
// ---------------------------------------------------------------------------

SegmentCandidate Candidate(const std::string& id, const std::string& tier, int birth_month = 0) {
  SegmentCandidate c;
  c.member_id = id;
  c.tier_id = tier;
  c.enrolling_partner_id = "vet-clinic";
  c.status = v1::MEMBER_STATUS_ACTIVE;
  c.birth_month = birth_month;
  return c;
}

v1::Segment SegmentOf(const std::string& id, const std::string& tier, int birth_month = 0) {
  v1::Segment s;
  s.set_segment_id(id);
  if (!tier.empty()) s.mutable_filter()->add_tier_ids(tier);
  s.mutable_filter()->set_birthday_month(birth_month);
  return s;
}

TEST(DiffSegmentMembersTest, AddsMatchesRemovesTheRestAndNamesEachChangedMemberOnce) {
  const std::vector<v1::Segment> segments = {SegmentOf("sg_gold", "gold"), SegmentOf("sg_may", "", 5)};
  const std::vector<SegmentCandidate> members = {Candidate("m1", "gold", 5), Candidate("m2", "silver", 5),
                                                 Candidate("m3", "silver", 1), Candidate("m4", "gold", 1)};
  const std::vector<SegmentMembership> stored = {
      {"sg_gold", "m3"},  // no longer gold
      {"sg_may", "m2"},   // unchanged
      {"sg_gold", "m4"},  // unchanged
      {"sg_gone", "m4"},  // a segment that no longer exists
  };
  SegmentChanges c = DiffSegmentMembers(segments, members, {}, stored);
  const std::vector<SegmentMembership> added = {{"sg_gold", "m1"}, {"sg_may", "m1"}};
  const std::vector<SegmentMembership> removed = {{"sg_gold", "m3"}, {"sg_gone", "m4"}};
  EXPECT_EQ(c.added, added);
  EXPECT_EQ(c.removed, removed);
  EXPECT_EQ(c.changed_member_ids, (std::vector<std::string>{"m1", "m3", "m4"}));
}

TEST(DiffSegmentMembersTest, NothingToDoWhenTheStoredSetMatches) {
  const std::vector<v1::Segment> segments = {SegmentOf("sg_gold", "gold")};
  const std::vector<SegmentCandidate> members = {Candidate("m1", "gold"), Candidate("m2", "silver")};
  SegmentChanges c = DiffSegmentMembers(segments, members, {}, {{"sg_gold", "m1"}});
  EXPECT_TRUE(c.added.empty());
  EXPECT_TRUE(c.removed.empty());
  EXPECT_TRUE(c.changed_member_ids.empty());
}

TEST(DiffSegmentMembersTest, ConsentsComeFromTheGrantedMapAndStatusDefaultsToActive) {
  v1::Segment s = SegmentOf("sg_news", "");
  auto* need = s.mutable_filter()->add_required_consents();
  need->set_channel(v1::CONTACT_CHANNEL_EMAIL);
  need->set_partner_id("pet-food");
  SegmentCandidate closed = Candidate("m3", "silver");
  closed.status = v1::MEMBER_STATUS_CLOSED;
  const std::vector<SegmentCandidate> members = {Candidate("m1", "silver"), Candidate("m2", "silver"), closed};
  const GrantedByMember granted = GroupGrantedChannels({{"m1", v1::CONTACT_CHANNEL_EMAIL, "pet-food"},
                                                        {"m2", v1::CONTACT_CHANNEL_SMS, "pet-food"},
                                                        {"m3", v1::CONTACT_CHANNEL_EMAIL, "pet-food"}});
  EXPECT_TRUE(NeedsConsents({s}));
  EXPECT_FALSE(NeedsConsents({SegmentOf("sg_gold", "gold")}));
  SegmentChanges c = DiffSegmentMembers({s}, members, granted, {});
  EXPECT_EQ(c.added, (std::vector<SegmentMembership>{{"sg_news", "m1"}}));
  EXPECT_EQ(c.changed_member_ids, (std::vector<std::string>{"m1"}));
}

TEST(DiffSegmentMembersTest, NoSegmentsRemoveEverythingStored) {
  SegmentChanges c = DiffSegmentMembers({}, {Candidate("m1", "gold")}, {}, {{"sg_a", "m1"}, {"sg_b", "m1"}});
  EXPECT_EQ(c.removed, (std::vector<SegmentMembership>{{"sg_a", "m1"}, {"sg_b", "m1"}}));
  EXPECT_EQ(c.changed_member_ids, (std::vector<std::string>{"m1"}));
}

}  // namespace
}  // namespace loyalty::membership
