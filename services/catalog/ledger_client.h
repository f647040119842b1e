#pragma once
// What the catalog asks of the ledger: the holds behind vouchers. An
// interface so that domain code stays free of gRPC (grpc_ledger_client.cc
// implements it over LedgerService) and tests can inject a ledger that fails
// at chosen points.
//
// Every mutating call is idempotent at the ledger by `key` (scoped to the
// catalog's service credential), so repeating a call whose answer was lost
// returns the original answer. Errors as rpc::RemoteError maps them: the
// ledger's business refusals (FAILED_PRECONDITION, NOT_FOUND,
// INVALID_ARGUMENT...) pass through with their message; an unreachable
// ledger is UNAVAILABLE; anything else INTERNAL.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "loyalty/ledger/v1/ledger.pb.h"

namespace loyalty::catalog {

struct HoldOutcome {
  std::string hold_id;
  ledger::v1::HoldState state = ledger::v1::HOLD_STATE_UNSPECIFIED;
  absl::Time expires_at;
  // REDEEM (capture), HOLD_VOID or HOLD_EXPIRE transfer; empty while open.
  std::string closing_transfer_id;
  absl::Time closed_at;
  // The member's available points after the call; -1 when not reported
  // (GetHold).
  int64_t available_points = -1;
};

class LedgerClient {
 public:
  virtual ~LedgerClient() = default;
  // Places a hold of `points` from member:<member_id> towards
  // redemption:<partner_id> for `ttl`.
  virtual absl::StatusOr<HoldOutcome> Authorize(const std::string& key, const std::string& member_id,
                                                const std::string& partner_id, int64_t points, absl::Duration ttl,
                                                const std::string& reference) = 0;
  // Captures the whole hold.
  virtual absl::StatusOr<HoldOutcome> Capture(const std::string& key, const std::string& hold_id,
                                              const std::string& reference) = 0;
  // Releases the hold.
  virtual absl::StatusOr<HoldOutcome> Void(const std::string& key, const std::string& hold_id,
                                           const std::string& reason) = 0;
  virtual absl::StatusOr<HoldOutcome> GetHold(const std::string& hold_id) = 0;
  // The member's available points.
  virtual absl::StatusOr<int64_t> AvailablePoints(const std::string& member_id) = 0;
  // Grants bonus points (BONUS_KIND_COUPON), funded by `funding_partner_id`
  // (empty = the operator). Returns the BONUS transfer id.
  virtual absl::StatusOr<std::string> GrantBonus(const std::string& key, const std::string& member_id,
                                                 int64_t points, const std::string& funding_partner_id,
                                                 const std::string& reason, const std::string& reference) = 0;
  // Previews an earn (posts nothing).
  virtual absl::StatusOr<ledger::v1::QuoteEarnResponse> QuoteEarn(const ledger::v1::QuoteEarnRequest& request) = 0;
};

// What the catalog needs to know of a member for tier limits. An interface
// for the same reasons as LedgerClient.
struct MemberTier {
  std::string tier_id;
  // Position on the tier ladder, 0 = base.
  int rank = 0;
};

class MemberDirectory {
 public:
  virtual ~MemberDirectory() = default;
  // The member's current tier. NOT_FOUND for an unknown member; UNAVAILABLE
  // when membership cannot be reached.
  virtual absl::StatusOr<MemberTier> TierOf(const std::string& member_id) = 0;
  // The ladder rank of `tier_id`; NOT_FOUND for an unknown tier.
  virtual absl::StatusOr<int> RankOf(const std::string& tier_id) = 0;
  // Whether a partner may see the member (membership.proto: it enrolled with
  // the partner or shares data with it). NOT_FOUND for an unknown member.
  virtual absl::StatusOr<bool> VisibleTo(const std::string& member_id, const std::string& partner_id) = 0;
  // OK when membership has the saved segment; NOT_FOUND when it does not.
  virtual absl::Status SegmentExists(const std::string& segment_id) = 0;
};

// Settlement's partner directory, as far as the catalog needs it.
class PartnerDirectory {
 public:
  virtual ~PartnerDirectory() = default;
  // OK when settlement knows the partner (in any status); NOT_FOUND when it
  // does not; UNAVAILABLE when settlement cannot be reached.
  virtual absl::Status PartnerExists(const std::string& partner_id) = 0;
};

}  // namespace loyalty::catalog
