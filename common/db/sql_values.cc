#include "common/db/sql_values.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <memory>

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

void SetBlob(sql::PreparedStatement& s, int i, const std::string& bytes, std::istringstream& holder) {
  holder.str(bytes);
  s.setBlob(i, &holder);
}

std::string ReadBlob(const sql::ResultSet& rs, int column) {
  if (rs.isNull(column)) return {};
  std::unique_ptr<std::istream> in(rs.getBlob(column));
  std::ostringstream out;
  out << in->rdbuf();
  return out.str();
}

}  // namespace loyalty::db
