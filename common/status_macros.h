#pragma once

// Early-return helpers for absl::Status / absl::StatusOr code.

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define HMREC_CONCAT_IMPL(a, b) a##b
#define HMREC_CONCAT(a, b) HMREC_CONCAT_IMPL(a, b)

// Returns the status of `expr` from the enclosing function if it is not OK.
#define RETURN_IF_ERROR(expr)                      \
  do {                                             \
    ::absl::Status hmrec_status_ = (expr);         \
    if (!hmrec_status_.ok()) return hmrec_status_; \
  } while (0)

// Evaluates a StatusOr expression; returns its status on error, otherwise
// moves its value into `lhs` (which may be a declaration).
#define ASSIGN_OR_RETURN(lhs, expr) ASSIGN_OR_RETURN_IMPL(HMREC_CONCAT(hmrec_statusor_, __LINE__), lhs, expr)

#define ASSIGN_OR_RETURN_IMPL(statusor, lhs, expr) \
  auto statusor = (expr);                          \
  if (!statusor.ok()) return statusor.status();    \
  lhs = std::move(statusor).value()
