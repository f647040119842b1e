#pragma once
// Converting values to and from SQL parameters and result columns, the same
// way in every store.

#include <sstream>
#include <string>

#include "absl/time/time.h"

namespace sql {
class PreparedStatement;
class ResultSet;
}  // namespace sql

namespace loyalty::db {

// "YYYY-MM-DD hh:mm:ss.ffffff" in UTC, for DATETIME(6) parameters.
std::string SqlTime(absl::Time t);
// Parses a DATETIME(6) column read as text (UTC); InfinitePast if malformed.
absl::Time ParseSqlTime(const std::string& text);
// Column `column` (1-based) as std::string (Connector/C++ returns SQLString).
std::string Str(const sql::ResultSet& rs, int column);
// Binds `bytes` to BLOB parameter `i`; `holder` is the stream Connector/C++
// reads it from when the statement runs, so it must outlive the execution.
void SetBlob(sql::PreparedStatement& s, int i, const std::string& bytes, std::istringstream& holder);
// A BLOB column's bytes; "" for NULL.
std::string ReadBlob(const sql::ResultSet& rs, int column);

}  // namespace loyalty::db
