#include "common/rpc/client_call.h"

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status/grpc_status.h"
#include "common/status/status_macros.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"

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
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      // What the other side (or the transport) said, so that a log tells a
      // peer that is down from a peer whose own database is down.
      return absl::UnavailableError(absl::StrCat(service, " unavailable (", method, ": ",
                                                 status.error_message(), "); retry later"));
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      // The call may have been done: only a retry with the same key is safe.
      return absl::UnavailableError(
          absl::StrCat(service, " did not answer in time; retry later with the same idempotency key"));
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::OUT_OF_RANGE:
      return FromGrpcStatus(status);
    default:
      return absl::InternalError(
          absl::StrCat(service, " ", method, " failed: ", FromGrpcStatus(status).ToString()));
  }
}

namespace {

absl::StatusOr<std::string> ReadPemFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in || text.str().find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read a PEM file at '", path, "'"));
  }
  return text.str();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ClientCredentials(const std::string& ca_file,
                                                                            const std::string& cert_file,
                                                                            const std::string& key_file) {
  if (ca_file.empty()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPemFile(ca_file));
  if (!cert_file.empty() || !key_file.empty()) {
    ASSIGN_OR_RETURN(ssl.pem_cert_chain, ReadPemFile(cert_file));
    ASSIGN_OR_RETURN(ssl.pem_private_key, ReadPemFile(key_file));
  }
  return grpc::SslCredentials(ssl);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ClientCredentialsFromEnv() {
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v == nullptr ? "" : v;
  };
  auto credentials =
      ClientCredentials(env("LOYALTY_TLS_CA_FILE"), env("LOYALTY_TLS_CERT_FILE"), env("LOYALTY_TLS_KEY_FILE"));
  if (!credentials.ok()) {
    return absl::Status(credentials.status().code(), absl::StrCat("LOYALTY_TLS_*: ", credentials.status().message()));
  }
  return credentials;
}

absl::StatusOr<std::string> CallUnaryBytes(const std::shared_ptr<grpc::Channel>& channel,
                                           const std::string& method, const std::string& request,
                                           const CallOptions& options) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  Prepare(ctx, options);
  grpc::CompletionQueue cq;
  void* tag = nullptr;
  bool ok = false;
  auto step_ok = [&] { return cq.Next(&tag, &ok) && ok; };
  // The generic streaming call, used for one request and one response (the
  // generic unary helper trips -Wnull-dereference inside gRPC's headers).
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call = stub.PrepareCall(&ctx, method, &cq);
  call->StartCall(nullptr);
  grpc::ByteBuffer response_buffer;
  if (step_ok()) {
    grpc::Slice slice(request);
    grpc::ByteBuffer request_buffer(&slice, 1);
    call->WriteLast(request_buffer, grpc::WriteOptions(), nullptr);
    if (step_ok()) {
      call->Read(&response_buffer, nullptr);
      step_ok();
    }
  }
  grpc::Status status;
  call->Finish(&status, nullptr);
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  if (!status.ok()) return FromGrpcStatus(status);
  std::vector<grpc::Slice> slices;
  if (!response_buffer.Dump(&slices).ok()) return absl::InternalError("unreadable response");
  std::string out;
  for (const grpc::Slice& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

}  // namespace loyalty::rpc
