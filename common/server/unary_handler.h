#pragma once
// The one shape of a unary RPC handler in every service's gRPC adapter:
// authorise the caller of `method`, hand the request to the domain, map the
// answer back (common/status/grpc_status.h).
//
//   grpc::Status CatalogService::Redeem(grpc::ServerContext* ctx, const v1::RedeemRequest* req,
//                                       v1::RedeemResponse* resp) {
//     return server::HandleUnary(*ctx, "Redeem", authorize_, resp,
//                                [&](const auth::Principal& p) { return catalog_.redeem().Redeem(p, *req); });
//   }
//
// `authorize(context, method)` returns absl::StatusOr<Caller> (the caller as
// the domain wants it: auth::Principal, or the ledger's Caller); `call(caller)`
// returns absl::StatusOr<Response>. A refusal of either is the RPC's status.

#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/status/grpc_status.h"
#include "grpcpp/server_context.h"

namespace loyalty::server {

template <typename Authorize, typename Response, typename Call>
grpc::Status HandleUnary(const grpc::ServerContext& context, absl::string_view method, const Authorize& authorize,
                         Response* response, Call&& call) {
  auto caller = authorize(context, method);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  absl::StatusOr<Response> result = std::forward<Call>(call)(*caller);
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

}  // namespace loyalty::server
