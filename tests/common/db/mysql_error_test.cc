#include <cppconn/exception.h>

#include "absl/strings/string_view.h"
#include "common/db/mysql_error.h"
#include "gtest/gtest.h"

namespace loyalty::db {
namespace {

absl::StatusCode CodeFor(int mysql_error, absl::string_view message = "x") {
  return FromSqlError(mysql_error, "HY000", message, "test").code();
}

TEST(MysqlError, DuplicateKeyIsAlreadyExists) {
  EXPECT_EQ(CodeFor(1062), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(CodeFor(1586), absl::StatusCode::kAlreadyExists);
}

TEST(MysqlError, DeadlockAndLockWaitAreAborted) {
  EXPECT_EQ(CodeFor(1213), absl::StatusCode::kAborted);
  EXPECT_EQ(CodeFor(1205), absl::StatusCode::kAborted);
}

TEST(MysqlError, LostOrRefusedConnectionIsUnavailable) {
  for (int code : {2002, 2003, 2006, 2013, 2055, 1927, 1053, 1040, 4031}) {
    EXPECT_EQ(CodeFor(code), absl::StatusCode::kUnavailable) << code;
    EXPECT_TRUE(IsConnectionError(code, "")) << code;
  }
  EXPECT_EQ(CodeFor(0, "Connection has been closed"), absl::StatusCode::kUnavailable);
}

TEST(MysqlError, OthersAreInternalAndNotConnectionErrors) {
  for (int code : {1064, 1146, 1054, 1406, 1045}) {
    EXPECT_EQ(CodeFor(code), absl::StatusCode::kInternal) << code;
    EXPECT_FALSE(IsConnectionError(code, "")) << code;
  }
  EXPECT_EQ(CodeFor(1452), absl::StatusCode::kFailedPrecondition);
}

TEST(MysqlError, ExceptionKeepsContextAndCode) {
  sql::SQLException e("Duplicate entry 'k' for key 'PRIMARY'", "23000", 1062);
  absl::Status s = FromSqlException(e, "insert member");
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(s.message().find("insert member"), absl::string_view::npos);
  EXPECT_NE(s.message().find("1062"), absl::string_view::npos);
  // The server's text (which quotes key values) never reaches the caller.
  EXPECT_EQ(s.message().find("Duplicate entry 'k'"), absl::string_view::npos);
  // INTERNAL keeps it: that message is logged, and hidden from callers.
  sql::SQLException syntax("You have an error near 'x'", "42000", 1064);
  EXPECT_NE(FromSqlException(syntax, "q").message().find("near 'x'"), absl::string_view::npos);
}

}  // namespace
}  // namespace loyalty::db
