#pragma once
// What membership asks of the ledger. An interface so that domain code stays
// free of gRPC; grpc_ledger_client.cc implements it over LedgerService.

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "loyalty/ledger/v1/ledger.pb.h"

namespace loyalty::membership {

struct LedgerStatement {
  ledger::v1::AccountBalance balance;
  std::vector<ledger::v1::Lot> lots;
  std::vector<ledger::v1::Transfer> transfers;  // oldest first
};

struct JournalPage {
  std::vector<ledger::v1::Transfer> transfers;  // sequence order
  int64_t last_sequence = 0;
  int64_t head_sequence = 0;
};

class LedgerClient {
 public:
  virtual ~LedgerClient() = default;
  // Qualifying points per member in [start, end). UNAVAILABLE when the ledger
  // cannot be reached.
  virtual absl::StatusOr<absl::flat_hash_map<std::string, int64_t>> QualifyingPoints(
      const std::vector<std::string>& member_ids, absl::Time start, absl::Time end) = 0;
  // Balance, all lots and the full statement of a member (privacy export).
  virtual absl::StatusOr<LedgerStatement> Statement(const std::string& member_id) = 0;
  // Journal transfers with sequence > after_sequence (the change feed).
  virtual absl::StatusOr<JournalPage> ReadJournal(int64_t after_sequence, int page_size) = 0;
  // Grants an operator-funded bonus; idempotent by `key` at the ledger.
  // Returns the BONUS transfer id.
  virtual absl::StatusOr<std::string> GrantBonus(const std::string& key, const std::string& member_id,
                                                 int64_t points, ledger::v1::BonusKind kind,
                                                 const std::string& reason, const std::string& reference) = 0;
};

}  // namespace loyalty::membership
