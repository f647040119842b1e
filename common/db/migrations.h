#pragma once
// Versioned schema migrations.
//
// Each service ships `migrations/NNNN_description.sql` files, embedded into
// its binary at build time (loyalty_migrations_library in CMake). On start:
//   - `schema_migrations` records each applied file: version, name, SHA-256.
//   - Files are applied in version order, each exactly once.
//   - An applied file whose text has changed is refused (FAILED_PRECONDITION
//     naming the file): history is never rewritten; add a new file instead.
//   - Two replicas starting together are safe: one takes a lease row in
//     `schema_migrations_lock` (no GET_LOCK, which Galera does not replicate),
//     the other waits and then finds everything applied. A lease expires, so a
//     crashed holder does not block forever.
//
// DDL commits implicitly in MariaDB, so a file that fails half-way is not
// rolled back. Write statements that can run again: CREATE TABLE IF NOT
// EXISTS, ADD COLUMN IF NOT EXISTS, CREATE INDEX IF NOT EXISTS.
// Statements are split on ';' outside quotes and comments; no DELIMITER.

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/db/pool.h"

namespace loyalty::db {

struct MigrationFile {
  std::string name;  // "0001_init.sql"
  std::string sql;
};

struct MigrationOptions {
  absl::Duration lock_lease = absl::Seconds(60);
  absl::Duration lock_wait = absl::Seconds(120);
  absl::Duration poll_interval = absl::Milliseconds(200);
};

struct MigrationReport {
  std::vector<std::string> applied;  // names applied by this call
  int already_applied = 0;
};

absl::StatusOr<MigrationReport> ApplyMigrations(ConnectionPool& pool,
                                                absl::Span<const MigrationFile> files,
                                                const MigrationOptions& options = {});

// Splits a script into statements (exposed for tests).
std::vector<std::string> SplitSqlStatements(absl::string_view script);

// Lower-case hex SHA-256 of `text`.
std::string Sha256Hex(absl::string_view text);

// Creates `database` if it does not exist, using a connection without a
// default schema. The name must match [a-z0-9_]{1,64}.
absl::Status EnsureDatabase(const DbOptions& server, absl::string_view database);

}  // namespace loyalty::db
