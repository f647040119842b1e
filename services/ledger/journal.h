#pragma once
// The hash-chained journal. Pure domain code.
//
// Each transfer is stored with `body`: its deterministic protobuf
// serialization with prev_hash and hash cleared. Then
//   hash = SHA-256(prev_hash bytes || body)
// with the genesis prev_hash all zeros. Tampering with a body, a hash, or
// any column the body duplicates is detected by VerifyChainRows.

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "loyalty/ledger/v1/ledger.pb.h"

namespace loyalty::ledger {

inline constexpr absl::string_view kGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

// The canonical bytes of `transfer` (hash fields excluded).
std::string TransferBody(const v1::Transfer& transfer);

// hex(SHA-256(bytes(prev_hash_hex) || body)).
std::string ChainHash(absl::string_view prev_hash_hex, absl::string_view body);

// One stored journal row as read back for verification.
struct JournalRow {
  int64_t sequence = 0;
  // The queryable columns, as stored.
  std::string transfer_id;
  int code = 0;
  std::string debit_account;
  std::string credit_account;
  int64_t points = 0;
  std::string partner_id;
  std::string member_id;
  std::string reference;
  std::string related_transfer_id;
  std::string hold_id;
  int64_t created_at_micros = 0;
  std::string body;
  std::string prev_hash;
  std::string hash;
};

struct ChainVerification {
  int64_t verified_count = 0;
  std::string last_hash;
  int64_t first_bad_sequence = 0;  // 0 when all verified
  std::string expected_hash;
  std::string stored_hash;
  std::string detail;
};

// Verifies consecutive rows starting after a row whose hash is
// `prev_hash_hex`. Checks the sequence is gap-free, each prev_hash links,
// each hash recomputes, and the columns match the body.
ChainVerification VerifyChainRows(absl::string_view prev_hash_hex, int64_t first_sequence,
                                  const std::vector<JournalRow>& rows);

}  // namespace loyalty::ledger
