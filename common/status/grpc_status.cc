#include "common/status/grpc_status.h"

#include <atomic>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"

namespace loyalty {
namespace {

bool HidesDetails(absl::StatusCode code) {
  return code == absl::StatusCode::kInternal ||
         code == absl::StatusCode::kUnknown ||
         code == absl::StatusCode::kDataLoss;
}

std::string NextErrorRef() {
  static std::atomic<uint64_t> counter{0};
  return absl::StrCat(log::ProcessTag(), "-", counter.fetch_add(1) + 1);
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl and gRPC share the canonical code numbering.
  const auto code = static_cast<grpc::StatusCode>(status.code());
  if (HidesDetails(status.code())) {
    const std::string ref = NextErrorRef();
    log::Error("internal_error", {{"ref", ref},
                                  {"code", absl::StatusCodeToString(status.code())},
                                  {"detail", std::string(status.message())}});
    return grpc::Status(code, absl::StrCat("internal error (ref: ", ref, ")"));
  }
  return grpc::Status(code, std::string(status.message()));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

}  // namespace loyalty
