#pragma once
// Prepaid partners: point blocks bought in advance, the balance they leave,
// low-balance and exhausted alerts, and the journal follower that draws the
// balances down as the ledger issues points.
//
// Invariants: a balance's purchased points are the sum of its blocks; its
// issued points are the net issuance (issued minus reversed) priced under a
// PREPAID contract version, counted once per journal transfer: the follower
// reads the page after the durable 'prepaid' cursor and applies it and the
// new cursor in one transaction. An alert is raised only when the level
// rises (none -> low -> exhausted); a purchase lowers it silently.
//
// Thread-safe: no mutable state besides the store and the ledger client;
// concurrent followers (replicas) apply each page once.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/auth/principal.h"
#include "loyalty/ledger/v1/ledger.pb.h"
#include "loyalty/settlement/v1/settlement.pb.h"
#include "services/settlement/settlement_deps.h"
#include "services/settlement/statement.h"

namespace loyalty::settlement {

// Net prepaid issuance per partner of a page of transfers: issued minus
// reversed points priced under a PREPAID contract version. `contracts` maps
// partner_id to its history (as CountTransfer).
std::map<std::string, int64_t> PrepaidIssuance(const std::vector<ledger::v1::Transfer>& transfers,
                                               const std::map<std::string, ContractHistory>& contracts);

class Prepaid {
 public:
  using Principal = auth::Principal;

  explicit Prepaid(const SettlementDeps& deps);

  absl::StatusOr<v1::PurchasePointBlockResponse> PurchasePointBlock(const Principal& p,
                                                                    const v1::PurchasePointBlockRequest& r);
  absl::StatusOr<v1::GetPrepaidBalanceResponse> GetPrepaidBalance(const Principal& p,
                                                                  const v1::GetPrepaidBalanceRequest& r);
  absl::StatusOr<v1::ListAlertsResponse> ListAlerts(const Principal& p, const v1::ListAlertsRequest& r);

  // Background work (main.cc runs it in a loop): one pass of the prepaid
  // journal follower. Reads the page after the durable 'prepaid' cursor,
  // adds prepaid partners' net issuance to their balances, raises
  // low-balance and exhausted alerts (and logs them), and advances the
  // cursor, all in one transaction. Returns the transfers consumed.
  absl::StatusOr<int> FollowJournal(int page_size);

 private:
  const SettlementDeps& deps_;
};

}  // namespace loyalty::settlement
