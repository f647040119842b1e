#pragma once
// loyaltyctl --out PATH: where a command's output goes instead of stdout.
//
// A response that carries files (ExportPeriod's ExportFile: a repeated
// message with `file_name` and `content` bytes) has those files written: the
// only file to PATH, several into the folder PATH (made if missing), each
// under its suggested name. Any other response has its rendered text (table
// or JSON) written to PATH. Files are made readable by their owner only:
// exports hold financial and personal data. Not thread-safe (one command at
// a time).

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/message.h"

namespace loyalty::ctl {

struct OutFile {
  std::string name;     // suggested file name, from the response
  std::string content;  // the file's bytes
};

// The files `response` carries, in order; empty when it carries none.
std::vector<OutFile> FilesOf(const google::protobuf::Message& response);

// Writes `response`'s files, or `rendered` when it carries none, to `path`
// as described above. Returns one "wrote PATH (N bytes)" line per file
// written. INVALID_ARGUMENT for a file name that is not a plain name;
// UNAVAILABLE naming the path when it cannot be written.
absl::StatusOr<std::string> WriteOut(const std::string& path, const google::protobuf::Message& response,
                                     const std::string& rendered);

}  // namespace loyalty::ctl
