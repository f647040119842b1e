#pragma once
// The one mapping from absl::Status (used everywhere inside the services) to
// grpc::Status (returned at the gRPC boundary).
//
// Codes map one to one. Messages of caller-facing codes (INVALID_ARGUMENT,
// NOT_FOUND, FAILED_PRECONDITION, ...) are passed through: they are written
// for the caller. Messages of INTERNAL, UNKNOWN and DATA_LOSS may carry
// server details (SQL text, file names), so they are logged with a reference
// id and the caller only sees "internal error (ref: <id>)".

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/status/status_macros.h"
#include "grpcpp/support/status.h"

namespace loyalty {

grpc::Status ToGrpcStatus(const absl::Status& status);

// For clients and tests: the inverse mapping (message kept as is).
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace loyalty

// In a gRPC handler: return the mapped status if `expr` fails.
#define RETURN_IF_ERROR_GRPC(expr) \
  LOYALTY_RETURN_IF_ERROR_GRPC_IMPL(LOYALTY_STATUS_CONCAT(loyalty_grpc_status_, __COUNTER__), expr)
#define LOYALTY_RETURN_IF_ERROR_GRPC_IMPL(tmp, expr)          \
  do {                                                       \
    ::absl::Status tmp = (expr);                             \
    if (!tmp.ok()) return ::loyalty::ToGrpcStatus(tmp);      \
  } while (false)

#define LOYALTY_ASSIGN_OR_RETURN_GRPC_IMPL(tmp, lhs, rexpr)          \
  auto tmp = (rexpr);                                                \
  if (!tmp.ok()) return ::loyalty::ToGrpcStatus(tmp.status());       \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN_GRPC(lhs, rexpr)                                     \
  LOYALTY_ASSIGN_OR_RETURN_GRPC_IMPL(                                         \
      LOYALTY_STATUS_CONCAT(loyalty_grpc_statusor_, __COUNTER__), lhs, rexpr)
