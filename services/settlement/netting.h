#pragma once
// Multilateral netting and the accounting export files: pure functions, no
// I/O. See docs/adr/0010-settlement.md.
//
// Netting: every statement is an obligation between its partner and the
// operator ("operator"). Per currency, each party's net position is the sum
// of its obligations (positive = pays). Payments are then chosen greedily:
// first every payer whose position exactly equals a receiver's is paired
// with it (one payment settles both), then the largest remaining payer pays
// the largest remaining receiver, min(owed, due), until all are zero. That
// gives at most (parties with a non-zero position - 1) payments. (The true
// minimum is NP-hard in general; the exact-pair pass catches the common
// case the plain greedy misses.) Ties break by party id, so the result is
// deterministic.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "loyalty/settlement/v1/settlement.pb.h"

namespace loyalty::settlement {

inline constexpr char kOperatorPartyId[] = "operator";

// The netting of `statements` (all of one period; any currencies), one
// result per currency by currency code. gross_total is the sum of the
// absolute line amounts; net_total the sum of the payments.
absl::StatusOr<std::vector<v1::NettingResult>> ComputeNetting(const std::vector<v1::Statement>& statements);

// The two export files of a period (statement lines, then payments) in
// `format`. Deterministic: the same inputs give the same bytes. The format
// is documented in the README ("Settlement", "Export files").
absl::StatusOr<std::vector<v1::ExportFile>> ExportFiles(const v1::Period& period,
                                                        const std::vector<v1::Statement>& statements,
                                                        const std::vector<v1::NettingResult>& netting,
                                                        v1::ExportFormat format);

}  // namespace loyalty::settlement
