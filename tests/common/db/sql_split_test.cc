#include "common/db/migrations.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace loyalty::db {
namespace {

using ::testing::ElementsAre;

TEST(SqlSplit, SplitsOnSemicolonsOutsideQuotesAndComments) {
  const char* script = R"sql(
-- a comment; with a semicolon
CREATE TABLE a (x INT);  # another; comment
/* block; comment */ INSERT INTO a VALUES (1);
INSERT INTO b VALUES ('it''s; fine', "x;y", `we;ird`, 'back\'slash;');
)sql";
  EXPECT_THAT(SplitSqlStatements(script),
              ElementsAre("CREATE TABLE a (x INT)", "INSERT INTO a VALUES (1)",
                          "INSERT INTO b VALUES ('it''s; fine', \"x;y\", `we;ird`, "
                          "'back\\'slash;')"));
}

TEST(SqlSplit, EmptyAndTrailingStatements) {
  EXPECT_TRUE(SplitSqlStatements("  ;; -- only comments\n").empty());
  EXPECT_THAT(SplitSqlStatements("SELECT 1"), ElementsAre("SELECT 1"));
}

TEST(Sha256, KnownVector) {
  EXPECT_EQ(Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace loyalty::db
