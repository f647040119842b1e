#include "common/auth/file_key_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/status/status_macros.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "loyalty/common/internal/v1/api_keys_file.pb.h"

namespace loyalty::auth {
namespace {

using google::protobuf::util::TimeUtil;
namespace internal = common::internal::v1;

absl::Time FromProto(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(ts));
}
google::protobuf::Timestamp ToProto(absl::Time t) {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

internal::ApiKeyEntry ToEntry(const ApiKeyRecord& r) {
  internal::ApiKeyEntry e;
  e.set_key_id(r.key_id);
  e.set_secret_sha256(crypto::ToHex(r.secret_sha256));
  e.set_role(r.role);
  e.set_partner_id(r.partner_id);
  e.set_description(r.description);
  if (r.created_at.has_value()) *e.mutable_created_at() = ToProto(*r.created_at);
  if (r.expires_at.has_value()) *e.mutable_expires_at() = ToProto(*r.expires_at);
  e.set_revoked(r.revoked);
  return e;
}

absl::StatusOr<ApiKeyRecord> FromEntry(const internal::ApiKeyEntry& e) {
  ApiKeyRecord r;
  r.key_id = e.key_id();
  if (!crypto::FromHex(e.secret_sha256(), &r.secret_sha256)) {
    return absl::InvalidArgumentError("secretSha256: expected 64 hex characters (SHA-256 of the secret)");
  }
  r.role = e.role();
  r.partner_id = e.partner_id();
  r.description = e.description();
  r.revoked = e.revoked();
  if (e.has_created_at()) r.created_at = FromProto(e.created_at());
  if (e.has_expires_at()) r.expires_at = FromProto(e.expires_at());
  RETURN_IF_ERROR(ValidateRecord(r));
  return r;
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read API keys file ", path));
  std::string text;
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxKeysFileBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("API keys file ", path, ": larger than ", kMaxKeysFileBytes, " bytes"));
    }
  }
  return text;
}

std::string ErrnoText() { return std::strerror(errno); }

}  // namespace

absl::StatusOr<std::vector<ApiKeyRecord>> ParseKeysFile(absl::string_view json) {
  internal::ApiKeysFile file;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;  // a typo must not silently drop a field
  auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &file, options);
  if (!status.ok()) {
    // The parser quotes the text around the error on the lines after the
    // first; drop them, in case someone pasted a plaintext key into the file.
    const std::string message(status.message());
    return absl::InvalidArgumentError(message.substr(0, message.find('\n')));
  }
  if (static_cast<size_t>(file.keys_size()) > kMaxKeysInFile) {
    return absl::InvalidArgumentError(absl::StrCat("more than ", kMaxKeysInFile, " keys"));
  }
  std::vector<ApiKeyRecord> records;
  records.reserve(file.keys_size());
  absl::flat_hash_set<std::string> seen;
  for (int i = 0; i < file.keys_size(); ++i) {
    absl::StatusOr<ApiKeyRecord> r = FromEntry(file.keys(i));
    if (!r.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("keys[", i, "] (keyId '", file.keys(i).key_id(),
                                                     "'): ", r.status().message()));
    }
    if (!seen.insert(r->key_id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("keys[", i, "]: keyId '", r->key_id, "' appears twice"));
    }
    records.push_back(*std::move(r));
  }
  return records;
}

absl::StatusOr<std::string> KeysFileJson(const std::vector<ApiKeyRecord>& records) {
  internal::ApiKeysFile file;
  for (const ApiKeyRecord& r : records) *file.add_keys() = ToEntry(r);
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = false;
  std::string out;
  auto status = google::protobuf::util::MessageToJsonString(file, &out, options);
  if (!status.ok()) return absl::InternalError(std::string(status.message()));
  return out;
}

absl::StatusOr<std::string> KeyEntryJson(const ApiKeyRecord& record) {
  std::string out;
  auto status = google::protobuf::util::MessageToJsonString(ToEntry(record), &out);
  if (!status.ok()) return absl::InternalError(std::string(status.message()));
  return out;
}

absl::Status AppendToKeysFile(const std::string& path, const ApiKeyRecord& record) {
  RETURN_IF_ERROR(ValidateRecord(record));
  const std::string lock_path = path + ".lock";
  const int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0) {
    return absl::UnavailableError(absl::StrCat("cannot open ", lock_path, ": ", ErrnoText()));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }  // also releases the flock
  } closer{lock_fd};
  if (::flock(lock_fd, LOCK_EX) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot lock ", lock_path, ": ", ErrnoText()));
  }
  std::vector<ApiKeyRecord> records;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path));
    absl::StatusOr<std::vector<ApiKeyRecord>> parsed = ParseKeysFile(text);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("API keys file ", path, ": ", parsed.status().message()));
    }
    records = *std::move(parsed);
  }
  for (const ApiKeyRecord& r : records) {
    if (r.key_id == record.key_id) {
      return absl::AlreadyExistsError(absl::StrCat("key_id ", record.key_id, " is already in ", path));
    }
  }
  records.push_back(record);
  ASSIGN_OR_RETURN(std::string json, KeysFileJson(records));
  json.push_back('\n');
  const std::string tmp = absl::StrCat(path, ".tmp.", ::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("cannot create ", tmp, ": ", ErrnoText()));
  size_t written = 0;
  while (written < json.size()) {
    const ssize_t n = ::write(fd, json.data() + written, json.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string error = ErrnoText();
      ::close(fd);
      ::unlink(tmp.c_str());
      return absl::UnavailableError(absl::StrCat("cannot write ", tmp, ": ", error));
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return absl::UnavailableError(absl::StrCat("cannot write ", tmp, ": ", ErrnoText()));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string error = ErrnoText();
    ::unlink(tmp.c_str());
    return absl::UnavailableError(absl::StrCat("cannot replace ", path, ": ", error));
  }
  // The rename is durable only once the folder is: a key reported as written
  // must survive a power loss.
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0 || ::fsync(dir_fd) != 0) {
    const std::string error = ErrnoText();
    if (dir_fd >= 0) ::close(dir_fd);
    return absl::UnavailableError(absl::StrCat("cannot make ", path, " durable: ", error));
  }
  ::close(dir_fd);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<FileKeyStore>> FileKeyStore::Open(std::string path,
                                                                 FileKeyStoreOptions options) {
  if (path.empty()) return absl::InvalidArgumentError("API keys file: no path given");
  std::unique_ptr<FileKeyStore> store(new FileKeyStore(std::move(path), options));
  RETURN_IF_ERROR(store->Load().status());
  return store;
}

absl::StatusOr<bool> FileKeyStore::Load() {
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("cannot read API keys file ", path_, ": ", ErrnoText()));
  }
  const FileVersion version{static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
                            static_cast<int64_t>(st.st_size), static_cast<uint64_t>(st.st_ino)};
  {
    absl::MutexLock lock(&mu_);
    if (keys_ != nullptr && version == version_) return false;
  }
  ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path_));
  absl::StatusOr<std::vector<ApiKeyRecord>> records = ParseKeysFile(text);
  if (!records.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("API keys file ", path_, ": ", records.status().message()));
  }
  auto index = std::make_shared<Index>();
  for (ApiKeyRecord& r : *records) {
    std::string id = r.key_id;
    index->emplace(std::move(id), std::move(r));
  }
  absl::MutexLock lock(&mu_);
  keys_ = std::move(index);
  version_ = version;
  return true;
}

void FileKeyStore::MaybeReload() {
  const absl::Time now = absl::Now();
  {
    absl::MutexLock lock(&mu_);
    if (now < next_check_) return;
    next_check_ = now + options_.refresh_interval;
  }
  if (!reload_mu_.TryLock()) return;  // another thread is at it
  absl::StatusOr<bool> reloaded = Load();
  reload_mu_.Unlock();
  if (!reloaded.ok()) {
    log::Warn("api_keys_reload_failed", {{"error", reloaded.status().ToString()}, {"keys_kept", size()}});
  } else if (*reloaded) {
    log::Info("api_keys_reloaded", {{"path", path_}, {"keys", size()}});
  }
}

std::shared_ptr<const FileKeyStore::Index> FileKeyStore::Current() const {
  absl::MutexLock lock(&mu_);
  return keys_;
}

size_t FileKeyStore::size() const { return Current()->size(); }

absl::StatusOr<ApiKeyRecord> FileKeyStore::Find(absl::string_view key_id) {
  MaybeReload();
  std::shared_ptr<const Index> keys = Current();
  auto it = keys->find(key_id);
  if (it == keys->end()) return absl::NotFoundError(absl::StrCat("no API key ", key_id));
  return it->second;
}

}  // namespace loyalty::auth
