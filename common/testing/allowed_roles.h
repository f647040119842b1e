#pragma once
// Tests of a service's domain that need "this role may not call that RPC":
// roles have one source of truth, the RPC's allowed_roles option in the
// protos, which auth::RpcGuard checks before the domain runs (ADR 0014). So
// the check in a domain test is the guard's own, on the RPC by full name:
//
//   EXPECT_EQ(testing::RoleCheck(kVet, "loyalty.membership.v1.MembershipService.EraseMember").code(),
//             absl::StatusCode::kPermissionDenied);
//
// The RPC's descriptor comes from the generated pool, so the test must link
// the service's proto library. An unknown name is NOT_FOUND.

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/auth/authenticator.h"
#include "google/protobuf/descriptor.h"

namespace loyalty::testing {

inline absl::Status RoleCheck(const auth::Principal& principal, const std::string& rpc_full_name) {
  const google::protobuf::MethodDescriptor* method =
      google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(rpc_full_name);
  if (method == nullptr) return absl::NotFoundError(absl::StrCat("no RPC ", rpc_full_name));
  return auth::Authorize(principal, *method);
}

}  // namespace loyalty::testing
