#include "services/ledger/expiry.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "services/ledger/account_names.h"

namespace loyalty::ledger {

absl::StatusOr<v1::RunExpiryResponse> ApplyRunExpiry(const CommandContext& context,
                                                     const v1::RunExpiryRequest& req) {
  BatchState& state = context.state;
  if (req.max_lots() < 0 || req.max_lots() > 10000) {
    return absl::InvalidArgumentError("max_lots: must be in [1, 10000] (0 means 1000)");
  }
  const int limit = std::min(req.max_lots() == 0 ? 1000 : req.max_lots(), kMaxExpiryBatch);
  absl::Time as_of = state.now();
  if (req.has_as_of()) {
    as_of = FromProtoTime(req.as_of());
    if (as_of > state.now()) return absl::InvalidArgumentError("as_of: must not be in the future");
  }
  ASSIGN_OR_RETURN(std::vector<LotRow*> lots, state.ExpiredLots(as_of, limit));
  v1::RunExpiryResponse response;
  for (LotRow* lot : lots) {
    ASSIGN_OR_RETURN(AccountRow * member, state.Account(MemberAccount(lot->member_id)));
    // Points on hold stay until the hold closes; the rest of the lot expires.
    const int64_t points = std::min(lot->remaining_points, member->available());
    if (points <= 0) continue;
    ASSIGN_OR_RETURN(AccountRow * breakage, state.Account(BreakageAccount(lot->issuer_partner_id)));
    v1::Transfer t;
    t.set_transfer_id(NewId("tr"));
    t.set_code(v1::TRANSFER_CODE_EXPIRE);
    t.set_debit_account(member->account);
    t.set_credit_account(breakage->account);
    t.set_points(points);
    t.set_member_id(lot->member_id);
    t.set_partner_id(lot->issuer_partner_id);
    t.set_related_transfer_id(lot->source_transfer_id);
    v1::Allocation* a = t.add_allocations();
    a->set_lot_id(lot->lot_id);
    a->set_issuer_partner_id(lot->issuer_partner_id);
    a->set_points(points);
    lot->remaining_points -= points;
    lot->dirty = true;
    Post(*member, *breakage, points);
    response.set_last_sequence(state.Append(std::move(t)).sequence());
    response.set_lots_expired(response.lots_expired() + 1);
    response.set_points_expired(response.points_expired() + points);
  }
  // A full batch that expired something may have more behind it. (Lots held
  // in full are skipped and do not keep the loop going.)
  response.set_has_more(static_cast<int>(lots.size()) == limit && response.lots_expired() > 0);
  return response;
}

}  // namespace loyalty::ledger
