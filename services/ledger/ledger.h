#pragma once
// The ledger's use cases, as the gRPC adapter calls them. Domain code: no
// gRPC or MySQL includes (the v1 messages are plain protobuf).
//
// Mutating calls validate what needs no state, then go through the batch
// writer (group commit). Queries read the store directly.
//
// Authorisation: the adapter has already checked the caller's role against
// the RPC's allowed_roles. Here a partner caller (Caller::partner_id set) is
// scoped to its own partner ("partner (own)" in ledger.proto): it may earn,
// quote and authorize only as itself, capture, void and reverse only its own
// holds and transfers, and read only its own transfers, holds and accounts.
// Anything else is PERMISSION_DENIED. A refusal found before the batch (the
// request names another partner) does not use up the idempotency key; one
// found on a stored hold or transfer is recorded under it like any other
// business refusal.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "services/ledger/batch_writer.h"
#include "services/ledger/ledger_commands.h"
#include "services/ledger/ledger_store.h"
#include "services/ledger/member_directory.h"
#include "services/ledger/posting.h"  // the row -> proto converters
#include "services/ledger/rules_cache.h"

namespace loyalty::ledger {

inline constexpr int kMaxTransfersPage = 500;
inline constexpr int kMaxLotsPage = 1000;
inline constexpr int kMaxAccountsPage = 1000;
inline constexpr int kMaxJournalPage = 5000;
inline constexpr int kMaxQualifyingMembers = 1000;
inline constexpr int64_t kMaxVerifyRange = 1'000'000;

class Ledger {
 public:
  // `members` decides which member ids may be credited (see
  // member_directory.h).
  Ledger(LedgerStore& store, RulesCache& rules, BatchWriter& writer, MemberDirectory& members)
      : store_(store), rules_(rules), writer_(writer), members_(members) {}

  absl::StatusOr<v1::EarnResponse> Earn(const Caller& caller, const v1::EarnRequest& request);
  absl::StatusOr<v1::QuoteEarnResponse> QuoteEarn(const Caller& caller, const v1::QuoteEarnRequest& request);
  absl::StatusOr<v1::AuthorizeResponse> Authorize(const Caller& caller, const v1::AuthorizeRequest& request);
  absl::StatusOr<v1::CaptureResponse> Capture(const Caller& caller, const v1::CaptureRequest& request);
  absl::StatusOr<v1::VoidResponse> Void(const Caller& caller, const v1::VoidRequest& request);
  absl::StatusOr<v1::ReverseResponse> Reverse(const Caller& caller, const v1::ReverseRequest& request);
  absl::StatusOr<v1::AdjustResponse> Adjust(const Caller& caller, const v1::AdjustRequest& request);
  absl::StatusOr<v1::GrantBonusResponse> GrantBonus(const Caller& caller, const v1::GrantBonusRequest& request);
  absl::StatusOr<v1::RunExpiryResponse> RunExpiry(const Caller& caller, const v1::RunExpiryRequest& request);
  absl::StatusOr<v1::RunHoldExpiryResponse> RunHoldExpiry(const Caller& caller, const v1::RunHoldExpiryRequest& request);
  // The sweeper's pass: like RunHoldExpiry, with no idempotency record.
  absl::StatusOr<v1::RunHoldExpiryResponse> SweepExpiredHolds(int max_holds);
  // The scheduled expiry job's pass: like RunExpiry as of now, with no
  // idempotency record (it is safe to repeat: expired lots are empty).
  absl::StatusOr<v1::RunExpiryResponse> ExpireLots(int max_lots);

  absl::StatusOr<v1::GetBalanceResponse> GetBalance(const v1::GetBalanceRequest& request);
  absl::StatusOr<v1::GetTransferResponse> GetTransfer(const Caller& caller, const v1::GetTransferRequest& request);
  absl::StatusOr<v1::ListTransfersResponse> ListTransfers(const Caller& caller,
                                                      const v1::ListTransfersRequest& request);
  absl::StatusOr<v1::GetHoldResponse> GetHold(const Caller& caller, const v1::GetHoldRequest& request);
  absl::StatusOr<v1::ListLotsResponse> ListLots(const v1::ListLotsRequest& request);
  absl::StatusOr<v1::GetQualifyingPointsResponse> GetQualifyingPoints(
      const v1::GetQualifyingPointsRequest& request);
  absl::StatusOr<v1::GetPointsLiabilityResponse> GetPointsLiability();
  absl::StatusOr<v1::GetAccountResponse> GetAccount(const Caller& caller, const v1::GetAccountRequest& request);
  // Accounts by name, a page at a time (keyset). A partner sees only its own
  // issuance, redemption and breakage accounts.
  absl::StatusOr<v1::ListAccountsResponse> ListAccounts(const Caller& caller,
                                                        const v1::ListAccountsRequest& request);
  absl::StatusOr<v1::ReadJournalResponse> ReadJournal(const v1::ReadJournalRequest& request);
  absl::StatusOr<v1::VerifyChainResponse> VerifyChain(const v1::VerifyChainRequest& request);

 private:
  // Runs `body` through the batch writer under its request's idempotency key.
  template <typename Body>
  absl::StatusOr<typename Body::Response> Submit(const Caller& caller, Body body);
  // The ledger's own jobs: no client, so no idempotency record.
  template <typename Body>
  absl::StatusOr<typename Body::Response> RunHousekeeping(const std::string& principal, Body body);
  // Executes `command` (whose body is a Body) and reads back its answer.
  template <typename Body>
  absl::StatusOr<typename Body::Response> Run(std::shared_ptr<Command> command);

  // Refuses a credit to a member id membership never issued (NOT_FOUND).
  absl::Status CheckMemberIssued(const std::string& member_id);

  LedgerStore& store_;
  RulesCache& rules_;
  BatchWriter& writer_;
  MemberDirectory& members_;
};

}  // namespace loyalty::ledger
