#pragma once
// What settlement asks of the ledger. An interface so that domain code stays
// free of gRPC; grpc_ledger_client.cc implements it over LedgerService.

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "loyalty/ledger/v1/ledger.pb.h"

namespace loyalty::settlement {

struct JournalPage {
  std::vector<ledger::v1::Transfer> transfers;  // sequence order, contiguous
  int64_t last_sequence = 0;
  int64_t head_sequence = 0;
};

class LedgerClient {
 public:
  virtual ~LedgerClient() = default;
  // Transfers with after_sequence < sequence <= up_to_sequence (0 = no
  // bound), at most page_size. UNAVAILABLE when the ledger cannot be reached.
  virtual absl::StatusOr<JournalPage> ReadJournal(int64_t after_sequence, int64_t up_to_sequence,
                                                  int page_size) = 0;
  // LedgerService.VerifyChain over [from_sequence, to_sequence].
  virtual absl::StatusOr<ledger::v1::VerifyChainResponse> VerifyChain(int64_t from_sequence,
                                                                      int64_t to_sequence) = 0;
  virtual absl::StatusOr<ledger::v1::GetPointsLiabilityResponse> GetPointsLiability() = 0;
};
using LedgerClientPtr = std::unique_ptr<LedgerClient>;

}  // namespace loyalty::settlement
