#include "absl/strings/string_view.h"
#include "common/db/migrations.h"

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/sha256.h"
#include "common/db/transaction.h"
#include "common/log/log.h"
#include "common/status/status_macros.h"

namespace loyalty::db {
namespace {

constexpr absl::string_view kCreateMigrationsTable =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INT NOT NULL PRIMARY KEY,"
    " name VARCHAR(255) NOT NULL,"
    " checksum CHAR(64) NOT NULL,"
    " applied_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)"
    ") ENGINE=InnoDB";
constexpr absl::string_view kCreateLockTable =
    "CREATE TABLE IF NOT EXISTS schema_migrations_lock ("
    " id TINYINT NOT NULL PRIMARY KEY,"
    " owner VARCHAR(128) NULL,"
    " expires_at TIMESTAMP(6) NULL"
    ") ENGINE=InnoDB";
constexpr absl::string_view kInsertLockRow =
    "INSERT IGNORE INTO schema_migrations_lock (id, owner, expires_at) VALUES (1, NULL, NULL)";
constexpr absl::string_view kTakeLock =
    "UPDATE schema_migrations_lock SET owner = ?, "
    " expires_at = NOW(6) + INTERVAL ? SECOND"
    " WHERE id = 1 AND (owner IS NULL OR owner = ? OR expires_at < NOW(6))";
constexpr absl::string_view kReleaseLock =
    "UPDATE schema_migrations_lock SET owner = NULL, expires_at = NULL WHERE id = 1 AND owner = ?";
constexpr absl::string_view kSelectApplied =
    "SELECT version, name, checksum FROM schema_migrations ORDER BY version";
constexpr absl::string_view kInsertApplied =
    "INSERT INTO schema_migrations (version, name, checksum) VALUES (?, ?, ?)";

struct Applied {
  std::string name;
  std::string checksum;
};

struct Parsed {
  int version;
  const MigrationFile* file;
  std::string checksum;
};

absl::StatusOr<int> ParseVersion(absl::string_view name) {
  // NNNN_description.sql
  size_t underscore = name.find('_');
  int version = 0;
  if (underscore == absl::string_view::npos || underscore == 0 ||
      !absl::SimpleAtoi(name.substr(0, underscore), &version) || version <= 0 ||
      !absl::EndsWith(name, ".sql")) {
    return absl::InvalidArgumentError(
        absl::StrCat("migration file '", name, "' is not named NNNN_description.sql"));
  }
  return version;
}

// Start-up on a Galera cluster: replicas starting together on different
// nodes conflict on the lock row, on the migration tables and on DDL, and
// the loser of each conflict gets 1213 (ABORTED). Every step below is safe
// to run again, so each is retried, with more patience than a request has.
constexpr RetryPolicy kMigrationRetry{.max_attempts = kMaxTransactionAttempts,
                                      .initial_backoff = absl::Milliseconds(10),
                                      .max_backoff = absl::Milliseconds(500)};

absl::Status Run(ConnectionPool& pool, absl::string_view context,
                 const std::function<absl::Status(PooledConnection&)>& body) {
  return RetryAborted(kMigrationRetry, [&] { return RunWithConnection(pool, context, body); });
}

absl::Status Exec(PooledConnection& conn, absl::string_view sql) {
  conn.Prepare(sql).execute();
  return absl::OkStatus();
}

absl::StatusOr<std::map<int, Applied>> ReadApplied(ConnectionPool& pool) {
  std::map<int, Applied> applied;
  RETURN_IF_ERROR(Run(pool, "read schema_migrations", [&](PooledConnection& c) {
    std::unique_ptr<sql::ResultSet> rs(c.Prepare(kSelectApplied).executeQuery());
    while (rs->next()) {
      applied[rs->getInt(1)] = Applied{rs->getString(2), rs->getString(3)};
    }
    return absl::OkStatus();
  }));
  return applied;
}

// FAILED_PRECONDITION if an applied file changed. Returns the pending files.
absl::StatusOr<std::vector<const Parsed*>> Pending(const std::vector<Parsed>& files,
                                                   const std::map<int, Applied>& applied) {
  std::vector<const Parsed*> pending;
  for (const Parsed& p : files) {
    auto it = applied.find(p.version);
    if (it == applied.end()) {
      pending.push_back(&p);
      continue;
    }
    if (it->second.checksum != p.checksum || it->second.name != p.file->name) {
      return absl::FailedPreconditionError(absl::StrCat(
          "migration ", p.file->name, " was changed after it was applied (applied as '",
          it->second.name, "' with checksum ", it->second.checksum, ", file now has ",
          p.checksum, "); never edit an applied migration, add a new one"));
    }
  }
  return pending;
}

std::string LockOwner() {
  char host[64] = {0};
  gethostname(host, sizeof(host) - 1);
  std::random_device rd;
  return absl::StrCat(host, ":", getpid(), ":", absl::Hex(rd(), absl::kZeroPad8));
}

// Tries to take (or renew) the lease; true when this owner holds it.
absl::StatusOr<bool> TakeLock(ConnectionPool& pool, const std::string& owner,
                              absl::Duration lease) {
  bool taken = false;
  RETURN_IF_ERROR(Run(pool, "take migration lock", [&](PooledConnection& c) {
    sql::PreparedStatement& take = c.Prepare(kTakeLock);
    take.setString(1, owner);
    take.setInt64(2, absl::ToInt64Seconds(lease));
    take.setString(3, owner);
    taken = take.executeUpdate() == 1;
    return absl::OkStatus();
  }));
  return taken;
}

void ReleaseLock(ConnectionPool& pool, const std::string& owner) {
  absl::Status s = Run(pool, "release migration lock", [&](PooledConnection& c) {
    sql::PreparedStatement& release = c.Prepare(kReleaseLock);
    release.setString(1, owner);
    release.executeUpdate();
    return absl::OkStatus();
  });
  if (!s.ok()) log::Warn("migration_lock_release_failed", {{"error", s.ToString()}});
}

absl::Status ApplyOne(ConnectionPool& pool, const Parsed& p, const std::string& owner,
                      const MigrationOptions& options) {
  for (const std::string& stmt : SplitSqlStatements(p.file->sql)) {
    // Renew the lease before each statement so a long migration keeps it.
    ASSIGN_OR_RETURN(bool still_held, TakeLock(pool, owner, options.lock_lease));
    if (!still_held) {
      return absl::AbortedError(absl::StrCat("lost the migration lock while applying ", p.file->name));
    }
    RETURN_IF_ERROR(Run(pool, absl::StrCat("apply ", p.file->name),
                                      [&](PooledConnection& c) { return Exec(c, stmt); }));
  }
  return Run(pool, "record migration", [&](PooledConnection& c) {
    sql::PreparedStatement& insert = c.Prepare(kInsertApplied);
    insert.setInt(1, p.version);
    insert.setString(2, p.file->name);
    insert.setString(3, p.checksum);
    insert.executeUpdate();
    return absl::OkStatus();
  });
}

}  // namespace

std::string Sha256Hex(absl::string_view text) { return crypto::Sha256Hex(text); }

std::vector<std::string> SplitSqlStatements(absl::string_view script) {
  std::vector<std::string> out;
  std::string current;
  auto flush = [&] {
    absl::string_view trimmed = absl::StripAsciiWhitespace(current);
    if (!trimmed.empty()) out.emplace_back(trimmed);
    current.clear();
  };
  const size_t n = script.size();
  for (size_t i = 0; i < n; ++i) {
    const char c = script[i];
    const char next = i + 1 < n ? script[i + 1] : '\0';
    if ((c == '-' && next == '-' && (i + 2 >= n || absl::ascii_isspace(script[i + 2]))) ||
        c == '#') {
      while (i < n && script[i] != '\n') ++i;  // line comment, dropped
      current.push_back('\n');
      continue;
    }
    if (c == '/' && next == '*') {
      size_t end = script.find("*/", i + 2);
      i = end == absl::string_view::npos ? n : end + 1;  // block comment, dropped
      current.push_back(' ');
      continue;
    }
    if (c == '\'' || c == '"' || c == '`') {
      // Copy the quoted text verbatim; a doubled quote or a backslash escapes.
      current.push_back(c);
      for (++i; i < n; ++i) {
        current.push_back(script[i]);
        if (script[i] == '\\' && c != '`' && i + 1 < n) {
          current.push_back(script[++i]);
        } else if (script[i] == c) {
          if (i + 1 < n && script[i + 1] == c) {
            current.push_back(script[++i]);
          } else {
            break;
          }
        }
      }
      continue;
    }
    if (c == ';') {
      flush();
      continue;
    }
    current.push_back(c);
  }
  flush();
  return out;
}

absl::Status EnsureDatabase(const DbOptions& server, absl::string_view database) {
  if (database.empty() || database.size() > 64 ||
      !std::all_of(database.begin(), database.end(), [](char ch) {
        return absl::ascii_islower(ch) || absl::ascii_isdigit(ch) || ch == '_';
      })) {
    return absl::InvalidArgumentError(
        absl::StrCat("database name '", database, "' must match [a-z0-9_]{1,64}"));
  }
  DbOptions options = server;
  options.database.clear();
  options.pool_size = 1;
  ASSIGN_OR_RETURN(std::unique_ptr<ConnectionPool> pool, ConnectionPool::Create(options));
  // An identifier cannot be a placeholder; the name is validated above to a
  // safe character set, so quoting it with backticks is enough.
  const std::string create =
      absl::StrCat("CREATE DATABASE IF NOT EXISTS `", database,
                   "` CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin");
  return Run(*pool, "create database",
                           [&](PooledConnection& c) { return Exec(c, create); });
}

absl::StatusOr<MigrationReport> ApplyMigrations(ConnectionPool& pool,
                                                absl::Span<const MigrationFile> files,
                                                const MigrationOptions& options) {
  std::vector<Parsed> parsed;
  for (const MigrationFile& f : files) {
    ASSIGN_OR_RETURN(int version, ParseVersion(f.name));
    for (const Parsed& other : parsed) {
      if (other.version == version) {
        return absl::InvalidArgumentError(absl::StrCat(
            "migrations ", other.file->name, " and ", f.name, " share version ", version));
      }
    }
    parsed.push_back(Parsed{version, &f, Sha256Hex(f.sql)});
  }
  std::sort(parsed.begin(), parsed.end(),
            [](const Parsed& a, const Parsed& b) { return a.version < b.version; });

  RETURN_IF_ERROR(Run(pool, "create migration tables", [](PooledConnection& c) {
    RETURN_IF_ERROR(Exec(c, kCreateMigrationsTable));
    RETURN_IF_ERROR(Exec(c, kCreateLockTable));
    return Exec(c, kInsertLockRow);
  }));

  MigrationReport report;
  // Fast path, taken by every replica after the first: nothing to do.
  ASSIGN_OR_RETURN(auto applied, ReadApplied(pool));
  ASSIGN_OR_RETURN(auto pending, Pending(parsed, applied));
  if (pending.empty()) {
    report.already_applied = static_cast<int>(parsed.size());
    return report;
  }

  const std::string owner = LockOwner();
  const absl::Time give_up = absl::Now() + options.lock_wait;
  while (true) {
    ASSIGN_OR_RETURN(bool taken, TakeLock(pool, owner, options.lock_lease));
    if (taken) break;
    if (absl::Now() > give_up) {
      return absl::UnavailableError("timed out waiting for the schema migration lock");
    }
    absl::SleepFor(options.poll_interval);
  }

  // Under the lock, read again: another replica may have applied them.
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(applied, ReadApplied(pool));
    ASSIGN_OR_RETURN(pending, Pending(parsed, applied));
    report.already_applied = static_cast<int>(parsed.size() - pending.size());
    for (const Parsed* p : pending) {
      RETURN_IF_ERROR(ApplyOne(pool, *p, owner, options));
      report.applied.push_back(p->file->name);
      log::Info("migration_applied", {{"name", p->file->name}});
    }
    return absl::OkStatus();
  }();
  ReleaseLock(pool, owner);
  if (!status.ok()) return status;
  return report;
}

}  // namespace loyalty::db
