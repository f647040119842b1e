#pragma once
// Calls from one of our services to another: the credential and deadline
// every call carries, and how a failed call looks to the caller.
//
//   rpc::CallOptions options{.api_key = key, .deadline = absl::Seconds(2)};
//   grpc::ClientContext ctx;
//   rpc::Prepare(ctx, options);
//   grpc::Status s = stub->Method(&ctx, req, &resp);
//   if (!s.ok()) return rpc::RemoteError(s, "ledger", "GetBalance");

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/status.h"

namespace loyalty::rpc {

// Opens a channel to another of our services, "host:port", with the
// deployment's transport security (server::ServiceContext::channel_to).
using ChannelFactory = std::function<std::shared_ptr<grpc::Channel>(const std::string& address)>;

struct CallOptions {
  std::string api_key;  // service credential; secret, never logged
  absl::Duration deadline = absl::Seconds(5);
};

// Sets the deadline and, when there is a key, "authorization: Bearer <key>".
void Prepare(grpc::ClientContext& ctx, const CallOptions& options);

// A failed call to another of our services, as our domain should see it.
// The one rule for every client of every service:
//   - the other service unreachable, unavailable (e.g. its database is
//     down) or overloaded: UNAVAILABLE, "<service> unavailable (<method>:
//     <what it said>); retry later";
//   - a timeout, whose outcome is unknown: UNAVAILABLE, "retry later with the
//     same idempotency key";
//   - its business answer about the request (INVALID_ARGUMENT, NOT_FOUND,
//     FAILED_PRECONDITION, ALREADY_EXISTS, ABORTED, OUT_OF_RANGE): passed on
//     as is, code and message; the domain decides what it means;
//   - anything else (UNAUTHENTICATED or PERMISSION_DENIED: a bad service
//     credential; INTERNAL, UNKNOWN, UNIMPLEMENTED: a bug): INTERNAL naming
//     the service, the method and the remote status, so it is logged rather
//     than passed on as if it were the caller's fault.
absl::Status RemoteError(const grpc::Status& status, absl::string_view service,
                         absl::string_view method);

// Client transport security from PEM files: `ca_file` verifies the server
// (TLS); with `cert_file` and `key_file` too, the client presents that
// certificate (mutual TLS). Plaintext when `ca_file` is empty.
// INVALID_ARGUMENT naming the file when one cannot be read or is not PEM.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ClientCredentials(const std::string& ca_file,
                                                                            const std::string& cert_file,
                                                                            const std::string& key_file);

// The staff and partner tools' transport security (loyaltyctl,
// loyalty-healthcheck, the reference integrations): ClientCredentials from
// the files named by LOYALTY_TLS_CA_FILE and, for mutual TLS,
// LOYALTY_TLS_CERT_FILE and LOYALTY_TLS_KEY_FILE; plaintext when
// LOYALTY_TLS_CA_FILE is unset or empty. Errors as ClientCredentials, the
// message prefixed with "LOYALTY_TLS_*: ".
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ClientCredentialsFromEnv();

// One unary call by method path ("/loyalty.ledger.v1.LedgerService/GetBalance")
// with serialized request bytes, for tools that work from descriptors
// (loyaltyctl). Returns the serialized response, or the call's status as is
// (code and message), not mapped by RemoteError.
absl::StatusOr<std::string> CallUnaryBytes(const std::shared_ptr<grpc::Channel>& channel,
                                           const std::string& method, const std::string& request,
                                           const CallOptions& options);

}  // namespace loyalty::rpc
