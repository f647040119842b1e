// Unit tests of a pure membership rule (no database, no gRPC): validation and normalisation (validation.h).

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
#include "services/membership/validation.h"
#include "tests/services/membership/rules_fixture.h"

namespace loyalty::membership {
namespace {

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

}  // namespace
}  // namespace loyalty::membership
