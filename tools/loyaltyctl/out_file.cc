#include "tools/loyaltyctl/out_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"

namespace loyalty::ctl {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

constexpr mode_t kFileMode = 0600;
constexpr mode_t kFolderMode = 0700;

// A repeated message field whose elements are files.
const FieldDescriptor* FilesField(const Descriptor& d) {
  for (int i = 0; i < d.field_count(); ++i) {
    const FieldDescriptor* f = d.field(i);
    if (!f->is_repeated() || f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) continue;
    const FieldDescriptor* name = f->message_type()->FindFieldByName("file_name");
    const FieldDescriptor* content = f->message_type()->FindFieldByName("content");
    if (name != nullptr && content != nullptr && content->type() == FieldDescriptor::TYPE_BYTES &&
        name->cpp_type() == FieldDescriptor::CPPTYPE_STRING && !name->is_repeated() && !content->is_repeated()) {
      return f;
    }
  }
  return nullptr;
}

absl::Status WriteFile(const std::string& path, const std::string& content) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, kFileMode);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("--out ", path, ": ", std::strerror(errno)));
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      ::close(fd);
      return absl::UnavailableError(absl::StrCat("--out ", path, ": ", std::strerror(error)));
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) return absl::UnavailableError(absl::StrCat("--out ", path, ": ", std::strerror(errno)));
  return absl::OkStatus();
}

bool PlainName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && !absl::StrContains(name, '/');
}

std::string Wrote(const std::string& path, size_t bytes) {
  return absl::StrCat("wrote ", path, " (", bytes, " bytes)\n");
}

}  // namespace

std::vector<OutFile> FilesOf(const Message& response) {
  std::vector<OutFile> files;
  const FieldDescriptor* field = FilesField(*response.GetDescriptor());
  if (field == nullptr) return files;
  const auto& r = *response.GetReflection();
  for (int k = 0; k < r.FieldSize(response, field); ++k) {
    const Message& file = r.GetRepeatedMessage(response, field, k);
    const Descriptor& d = *file.GetDescriptor();
    files.push_back(OutFile{file.GetReflection()->GetString(file, d.FindFieldByName("file_name")),
                            file.GetReflection()->GetString(file, d.FindFieldByName("content"))});
  }
  return files;
}

absl::StatusOr<std::string> WriteOut(const std::string& path, const Message& response, const std::string& rendered) {
  const std::vector<OutFile> files = FilesOf(response);
  if (files.empty()) {
    if (absl::Status s = WriteFile(path, rendered); !s.ok()) return s;
    return Wrote(path, rendered.size());
  }
  if (files.size() == 1) {
    if (absl::Status s = WriteFile(path, files[0].content); !s.ok()) return s;
    return Wrote(path, files[0].content.size());
  }
  for (const OutFile& f : files) {
    if (!PlainName(f.name)) return absl::InvalidArgumentError(absl::StrCat("the response names a file '", f.name, "'"));
  }
  if (::mkdir(path.c_str(), kFolderMode) != 0 && errno != EEXIST) {
    return absl::UnavailableError(absl::StrCat("--out ", path, ": ", std::strerror(errno)));
  }
  std::string report;
  for (const OutFile& f : files) {
    const std::string file_path = absl::StrCat(path, "/", f.name);
    if (absl::Status s = WriteFile(file_path, f.content); !s.ok()) return s;
    report += Wrote(file_path, f.content.size());
  }
  return report;
}

}  // namespace loyalty::ctl
