#pragma once
// A KeyStore read from a JSON file (--api_keys_file): the proto3 JSON of
// loyalty.common.internal.v1.ApiKeysFile (protos/loyalty/common/internal/v1/
// api_keys_file.proto). The file holds SHA-256 digests of the secrets only;
// loyalty-keygen writes it.
//
// The file is checked for changes (mtime, size, inode) at most every
// `refresh_interval`, on a lookup, and re-read when it changed, so keys are
// added and revoked without a restart. A re-read that fails keeps the keys
// loaded before and logs a warning; at Open, a bad file is an error.
//
// Thread safety: safe from many threads. A lookup never waits for a re-read
// running on another thread; it uses the keys loaded so far.

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/auth/key_store.h"

namespace loyalty::auth {

inline constexpr size_t kMaxKeysFileBytes = 16 << 20;
inline constexpr size_t kMaxKeysInFile = 100'000;

struct FileKeyStoreOptions {
  // How often a lookup may check the file for changes. Zero: every lookup.
  absl::Duration refresh_interval = absl::Seconds(2);
};

class FileKeyStore final : public KeyStore {
 public:
  // Loads `path`. NOT_FOUND when it cannot be read; INVALID_ARGUMENT naming
  // the entry (by index and key_id) when it is malformed.
  static absl::StatusOr<std::unique_ptr<FileKeyStore>> Open(std::string path,
                                                            FileKeyStoreOptions options = {});

  // KeyStore:
  absl::StatusOr<ApiKeyRecord> Find(absl::string_view key_id) override;

  // Number of keys currently loaded.
  size_t size() const;

 private:
  using Index = absl::flat_hash_map<std::string, ApiKeyRecord>;
  struct FileVersion {
    int64_t mtime_ns = 0;
    int64_t size = 0;
    uint64_t inode = 0;
    bool operator==(const FileVersion&) const = default;
  };

  FileKeyStore(std::string path, FileKeyStoreOptions options)
      : path_(std::move(path)), options_(options) {}
  // Re-reads the file if it changed; true when it did.
  absl::StatusOr<bool> Load();
  void MaybeReload();
  std::shared_ptr<const Index> Current() const;

  const std::string path_;
  const FileKeyStoreOptions options_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const Index> keys_ ABSL_GUARDED_BY(mu_);
  FileVersion version_ ABSL_GUARDED_BY(mu_);
  absl::Time next_check_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // Held (TryLock) by the one thread that re-reads the file.
  absl::Mutex reload_mu_;
};

// The file format, shared with loyalty-keygen.

// Parses and validates a keys file: every entry passes ValidateRecord, has a
// 64-hex secret_sha256 and a key_id not seen before.
absl::StatusOr<std::vector<ApiKeyRecord>> ParseKeysFile(absl::string_view json);
// The whole file, pretty-printed (one field per line).
absl::StatusOr<std::string> KeysFileJson(const std::vector<ApiKeyRecord>& records);
// One entry as a single JSON object (what loyalty-keygen prints).
absl::StatusOr<std::string> KeyEntryJson(const ApiKeyRecord& record);

// Adds `record` to the keys file at `path`, creating it (mode 0600) when
// missing. Concurrent writers are serialised by an flock on "<path>.lock"; the
// new file replaces the old one by rename, so a service never reads half a
// file. ALREADY_EXISTS when the key id is already in the file.
absl::Status AppendToKeysFile(const std::string& path, const ApiKeyRecord& record);

}  // namespace loyalty::auth
