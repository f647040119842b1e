#pragma once
// The Authenticator at the gRPC boundary. Every handler of a service's gRPC
// adapter starts with
//
//   ASSIGN_OR_RETURN_GRPC(auth::Principal principal, guard_.Check(*context, "Earn"));
//
// which authenticates the caller (UNAUTHENTICATED) and checks its role against
// the RPC's allowed_roles option (PERMISSION_DENIED), then passes the
// Principal on to domain code, which scopes partners to their own partner_id.
// The health and reflection services are not guarded.
//
// Domain targets depend on loyalty_auth_principal only; this header needs
// gRPC (target loyalty_auth_grpc).

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/auth/authenticator.h"
#include "common/auth/principal.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/security/auth_context.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_interceptor.h"
#include "grpcpp/support/string_ref.h"

namespace loyalty::auth {

// Every value of the `authorization` key in received metadata.
std::vector<absl::string_view> AuthorizationValues(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata);

// Mutual TLS: a client certificate whose subject common name is
// "partner:<partner_id>" binds its connections to that partner. Only that
// partner's API keys are accepted over them (PERMISSION_DENIED otherwise).
// Certificates without that prefix (staff, services) do not restrict keys.
inline constexpr absl::string_view kPartnerCertificatePrefix = "partner:";

// The partner named by the verified client certificate, if any.
std::optional<std::string> CertificatePartner(const grpc::AuthContext* context);

// Authenticates the caller of `context`, then authorises it for `method`,
// then takes a rate-limit token (partners only).
absl::StatusOr<Principal> Authenticate(Authenticator& authenticator,
                                       const grpc::ServerContext& context,
                                       const google::protobuf::MethodDescriptor& method);

// Authenticate() for the methods of one gRPC service, by short method name.
// Thread safety: Check is safe from many threads.
class RpcGuard {
 public:
  // `service_full_name`, e.g. v1::LedgerService::service_full_name(), must be
  // a service whose generated code is linked into the binary (checked: a
  // missing one aborts, as it is a programming error). `authenticator` must
  // outlive the guard.
  RpcGuard(Authenticator& authenticator, absl::string_view service_full_name);

  // Authenticates and authorises the caller of `method` ("Earn"). A call
  // whose deadline has passed, or that was cancelled, is refused first
  // (DEADLINE_EXCEEDED, CANCELLED): its caller has gone, so nothing is done.
  // An unknown method name is a programming error: INTERNAL.
  absl::StatusOr<Principal> Check(const grpc::ServerContext& context, absl::string_view method) const;

  const google::protobuf::ServiceDescriptor& service() const { return *service_; }

 private:
  Authenticator& authenticator_;
  const google::protobuf::ServiceDescriptor* service_;
  absl::flat_hash_map<std::string, const google::protobuf::MethodDescriptor*> methods_;
};

// A server interceptor for services whose handlers are not written yet: when
// a call to one of `service_full_names` ends UNIMPLEMENTED (the generated base
// class's answer, which did nothing), the caller still gets UNAUTHENTICATED or
// PERMISSION_DENIED first, as it would from a finished handler. Statuses other
// than UNIMPLEMENTED are never touched: a real handler guards itself with
// RpcGuard before doing anything.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewUnimplementedAuthGate(
    Authenticator& authenticator, std::set<std::string> service_full_names);

}  // namespace loyalty::auth
