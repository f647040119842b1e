#pragma once
// Statement arithmetic: pure functions, no I/O. See docs/adr/0010-settlement.md.
//
// A close counts journal transfers into PointsCount rows (one per partner and
// statement line key, the contract being the one in force at the transfer's
// occurred_at); BuildStatement then prices each row once:
//
//   amount = sign x floor(points x price_per_1000_points / 1000)
//
// (breakage share: floor(points x issue_price x breakage_share_bp / 10^7)),
// computed on the non-negative magnitude with 128-bit intermediates, then
// signed: positive = owed by the partner to the operator. Rounding happens
// once per statement line, never per transfer.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "loyalty/ledger/v1/ledger.pb.h"
#include "loyalty/settlement/v1/settlement.pb.h"

namespace loyalty::settlement {

namespace v1 = ::loyalty::settlement::v1;

// Points of one statement line key, accumulated over a close.
struct PointsCount {
  std::string partner_id;
  v1::StatementLineType line_type = v1::STATEMENT_LINE_TYPE_UNSPECIFIED;
  ledger::v1::TransferCode transfer_code = ledger::v1::TRANSFER_CODE_UNSPECIFIED;
  std::string counterparty_partner_id;  // HONOURED / HONOUR_REVERSED: the issuer
  std::string contract_id;              // "" = the partner has no contract at all
  int64_t points = 0;
  int64_t transfer_count = 0;
};

// One cell of the issuer x redeemer matrix.
struct MatrixCount {
  std::string issuer_partner_id;
  std::string redeemer_partner_id;
  int64_t honoured_points = 0;
  int64_t reversed_points = 0;
};

// A partner's contract versions, oldest first (version 1, 2, ...).
using ContractHistory = std::vector<v1::Contract>;

// The version in force at `t`: the latest with effective_from <= t; before
// the first version, the first version (the ledger refuses earns without a
// contract, so this only prices redemptions and expiries of points that
// predate it). nullptr when there is no version at all.
const v1::Contract* ContractAt(const ContractHistory& contracts, absl::Time t);

// What one journal transfer contributes (appended to `points` and `matrix`).
// `contracts` maps partner_id to its history. HOLD* and operator-only
// transfers contribute nothing.
void CountTransfer(const ledger::v1::Transfer& transfer, const std::map<std::string, ContractHistory>& contracts,
                   std::vector<PointsCount>& points, std::vector<MatrixCount>& matrix);

// Sums rows with the same key (partner, line type, code, counterparty,
// contract); the result is sorted by that key.
std::vector<PointsCount> MergePoints(std::vector<PointsCount> rows);
std::vector<MatrixCount> MergeMatrix(std::vector<MatrixCount> rows);

// floor(points x price / divisor) on magnitudes; INVALID_ARGUMENT if the
// result does not fit int64.
absl::StatusOr<int64_t> PriceFloor(int64_t points, int64_t price_minor, int64_t divisor);

// Everything a partner's statement is built from.
struct StatementInput {
  v1::Partner partner;
  ContractHistory contracts;
  v1::Period period;                     // with first/cutoff sequence and end_hash
  std::vector<PointsCount> points;       // this partner's rows
  std::vector<MatrixCount> matrix;       // rows with this partner on either side
  std::vector<v1::Dispute> adjustments;  // accepted disputes this period carries
  std::string statement_id;
  absl::Time created_at;
};

// The DRAFT statement: lines priced as above, the platform fee pro rata per
// contract version in force during the period (fee x overlap / period
// length, floored), one DISPUTE_ADJUSTMENT line per carried adjustment
// (signed as given), totals and net amount.
absl::StatusOr<v1::Statement> BuildStatement(const StatementInput& input);

}  // namespace loyalty::settlement
