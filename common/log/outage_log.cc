#include "common/log/outage_log.h"

#include "absl/strings/str_cat.h"
#include "common/log/log.h"

namespace loyalty::log {

void OutageLog::Record(const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  if (status.ok()) {
    if (failures_ > 0) {
      Info(absl::StrCat(name_, "_recovered"),
           {{"failed_tries", failures_},
            {"outage_ms", absl::ToInt64Milliseconds(absl::Now() - since_)}});
    }
    failures_ = 0;
    last_code_ = absl::StatusCode::kOk;
    return;
  }
  if (failures_ == 0) since_ = absl::Now();
  ++failures_;
  if (status.code() != last_code_) {
    last_code_ = status.code();
    Warn(absl::StrCat(name_, "_failing"), {{"error", status.ToString()}, {"failed_tries", failures_}});
  }
}

bool OutageLog::failing() const {
  absl::MutexLock lock(&mu_);
  return failures_ > 0;
}

}  // namespace loyalty::log
