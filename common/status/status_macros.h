#pragma once
// RETURN_IF_ERROR and ASSIGN_OR_RETURN for absl::Status / absl::StatusOr.
// Debian 12's Abseil (20220623) does not ship them.
//
//   RETURN_IF_ERROR(store_->Insert(row));
//   ASSIGN_OR_RETURN(Member member, store_->Get(id));
//
// Both propagate the status unchanged; they add no context and do not log.

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define LOYALTY_STATUS_CONCAT_INNER(a, b) a##b
#define LOYALTY_STATUS_CONCAT(a, b) LOYALTY_STATUS_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr) \
  LOYALTY_RETURN_IF_ERROR_IMPL(LOYALTY_STATUS_CONCAT(loyalty_status_, __COUNTER__), expr)
#define LOYALTY_RETURN_IF_ERROR_IMPL(tmp, expr) \
  do {                                          \
    ::absl::Status tmp = (expr);                \
    if (!tmp.ok()) return tmp;                  \
  } while (false)

#define LOYALTY_ASSIGN_OR_RETURN_IMPL(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                  \
  if (!tmp.ok()) return std::move(tmp).status();       \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, rexpr)                                          \
  LOYALTY_ASSIGN_OR_RETURN_IMPL(                                              \
      LOYALTY_STATUS_CONCAT(loyalty_statusor_, __COUNTER__), lhs, rexpr)
