#include "common/auth/grpc_auth.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "common/status/grpc_status.h"
#include "common/status/status_macros.h"

namespace loyalty::auth {
namespace {

constexpr absl::string_view kAuthorization = "authorization";

absl::StatusOr<Principal> AuthenticateValues(Authenticator& authenticator,
                                             absl::Span<const absl::string_view> values,
                                             const std::optional<std::string>& certificate_partner,
                                             const google::protobuf::MethodDescriptor& method) {
  ASSIGN_OR_RETURN(Principal principal, authenticator.Authenticate(values));
  // A client certificate issued to a partner binds the connection to it: only
  // that partner's keys may be used over it.
  if (certificate_partner.has_value() &&
      (!principal.is_partner() || principal.partner_id != *certificate_partner)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "the client certificate is for partner '", *certificate_partner, "'; API key ",
        principal.key_id, " is not one of that partner's keys"));
  }
  RETURN_IF_ERROR(Authorize(principal, method));
  RETURN_IF_ERROR(authenticator.Admit(principal));
  return principal;
}

// See NewUnimplementedAuthGate.
class UnimplementedAuthGate final : public grpc::experimental::Interceptor {
 public:
  UnimplementedAuthGate(Authenticator& authenticator, const google::protobuf::MethodDescriptor* method,
                        grpc::ServerContextBase* context)
      : authenticator_(authenticator), method_(method), context_(context) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      for (absl::string_view v : AuthorizationValues(*methods->GetRecvInitialMetadata())) {
        authorization_.emplace_back(v);
      }
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS) &&
        methods->GetSendStatus().error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      std::vector<absl::string_view> values(authorization_.begin(), authorization_.end());
      absl::StatusOr<Principal> principal = AuthenticateValues(
          authenticator_, values, CertificatePartner(context_->auth_context().get()), *method_);
      if (!principal.ok()) methods->ModifySendStatus(ToGrpcStatus(principal.status()));
    }
    methods->Proceed();
  }

 private:
  Authenticator& authenticator_;
  const google::protobuf::MethodDescriptor* method_;
  grpc::ServerContextBase* context_;
  std::vector<std::string> authorization_;
};

class UnimplementedAuthGateFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  UnimplementedAuthGateFactory(Authenticator& authenticator, std::set<std::string> services)
      : authenticator_(authenticator), services_(std::move(services)) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    // "/pkg.Service/Method" -> service "pkg.Service", method "pkg.Service.Method".
    absl::string_view path = info->method();
    absl::ConsumePrefix(&path, "/");
    const size_t slash = path.find('/');
    if (slash != absl::string_view::npos && services_.count(std::string(path.substr(0, slash))) > 0) {
      const google::protobuf::MethodDescriptor* method =
          google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
              absl::StrReplaceAll(path, {{"/", "."}}));
      if (method != nullptr) return new UnimplementedAuthGate(authenticator_, method, info->server_context());
    }
    return nullptr;  // not gated: health, reflection, unknown methods
  }

 private:
  Authenticator& authenticator_;
  const std::set<std::string> services_;
};

}  // namespace

std::vector<absl::string_view> AuthorizationValues(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) {
  std::vector<absl::string_view> values;
  auto [begin, end] = metadata.equal_range(grpc::string_ref(kAuthorization.data(), kAuthorization.size()));
  for (auto it = begin; it != end; ++it) values.emplace_back(it->second.data(), it->second.size());
  return values;
}

std::optional<std::string> CertificatePartner(const grpc::AuthContext* context) {
  if (context == nullptr || !context->IsPeerAuthenticated()) return std::nullopt;
  for (const grpc::string_ref& cn : context->FindPropertyValues("x509_common_name")) {
    absl::string_view name(cn.data(), cn.size());
    if (absl::ConsumePrefix(&name, kPartnerCertificatePrefix) && !name.empty()) return std::string(name);
  }
  return std::nullopt;
}

absl::StatusOr<Principal> Authenticate(Authenticator& authenticator,
                                       const grpc::ServerContext& context,
                                       const google::protobuf::MethodDescriptor& method) {
  const std::vector<absl::string_view> values = AuthorizationValues(context.client_metadata());
  return AuthenticateValues(authenticator, values, CertificatePartner(context.auth_context().get()), method);
}

RpcGuard::RpcGuard(Authenticator& authenticator, absl::string_view service_full_name)
    : authenticator_(authenticator),
      service_(google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          std::string(service_full_name))) {
  if (service_ == nullptr) {
    std::fprintf(stderr, "RpcGuard: service '%.*s' is not linked into this binary\n",
                 static_cast<int>(service_full_name.size()), service_full_name.data());
    std::abort();
  }
  for (int i = 0; i < service_->method_count(); ++i) {
    methods_.emplace(service_->method(i)->name(), service_->method(i));
  }
}

absl::StatusOr<Principal> RpcGuard::Check(const grpc::ServerContext& context,
                                          absl::string_view method) const {
  auto it = methods_.find(method);
  if (it == methods_.end()) {
    return absl::InternalError(absl::StrCat("RpcGuard: no method ", method, " in ", service_->full_name()));
  }
  // A caller who has gone (deadline passed, cancelled) gets nothing done:
  // the thread goes back to the pool before any work is started.
  if (context.deadline() <= std::chrono::system_clock::now()) {
    return absl::DeadlineExceededError("the deadline passed before the call was handled; nothing was done");
  }
  if (context.IsCancelled()) return absl::CancelledError("the call was cancelled; nothing was done");
  return Authenticate(authenticator_, context, *it->second);
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewUnimplementedAuthGate(
    Authenticator& authenticator, std::set<std::string> service_full_names) {
  return std::make_unique<UnimplementedAuthGateFactory>(authenticator, std::move(service_full_names));
}

}  // namespace loyalty::auth
