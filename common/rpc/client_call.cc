#include "common/rpc/client_call.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/status/grpc_status.h"

namespace loyalty::rpc {

void Prepare(grpc::ClientContext& ctx, const CallOptions& options) {
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::microseconds(absl::ToInt64Microseconds(options.deadline)));
  if (!options.api_key.empty()) ctx.AddMetadata("authorization", absl::StrCat("Bearer ", options.api_key));
}

absl::Status RemoteError(const grpc::Status& status, absl::string_view service,
                         absl::string_view method) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return absl::UnavailableError(absl::StrCat(service, " unreachable; retry later"));
    default:
      return absl::InternalError(
          absl::StrCat(service, " ", method, " failed: ", FromGrpcStatus(status).ToString()));
  }
}

}  // namespace loyalty::rpc
