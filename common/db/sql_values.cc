#include "common/db/sql_values.h"

#include <cppconn/resultset.h>

namespace loyalty::db {

std::string SqlTime(absl::Time t) { return absl::FormatTime("%Y-%m-%d %H:%M:%E6S", t, absl::UTCTimeZone()); }

absl::Time ParseSqlTime(const std::string& text) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime("%Y-%m-%d %H:%M:%E*S", text, absl::UTCTimeZone(), &t, &err)) {
    return absl::InfinitePast();
  }
  return t;
}

std::string Str(const sql::ResultSet& rs, int column) { return std::string(rs.getString(column)); }

}  // namespace loyalty::db
