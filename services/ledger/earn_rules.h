#pragma once
// Earn computation inputs and the computation itself. Pure: no I/O.
//
// The inputs come from the owning services through local caches (see
// rules_cache.h): partner status and contract rate (settlement), member
// status and tier (membership), campaigns (catalog). Earn never makes a
// per-request call to another service.
//
// Computation (integer arithmetic; each component rounded down on its own,
// ROUNDING_RULE_FLOOR_PER_COMPONENT):
//   base   = floor(eligible_amount_minor * earn_rate_milli_points_per_unit
//                  / (1000 * 10^minor_digits(currency)))
//   tier   = floor(base * (tier_multiplier_bp - 10000) / 10000)
//   bonus  = per campaign: floor(campaign_base * bonus_rate_bp / 10000) or
//            fixed_bonus_points, capped by max_bonus_points_per_purchase
//   points = base + tier + sum(bonus)

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "loyalty/catalog/v1/catalog.pb.h"
#include "loyalty/ledger/v1/ledger.pb.h"
#include "loyalty/membership/v1/membership.pb.h"
#include "loyalty/settlement/v1/settlement.pb.h"
#include "services/ledger/campaign_budgets.h"

namespace loyalty::ledger {

inline constexpr int64_t kBasisPoints = 10'000;
inline constexpr int64_t kMaxAmountMinor = 1'000'000'000'000;  // 10^12 minor units
inline constexpr int kDefaultLotExpiryDays = 365;
// Most points one earn may post (also the per-transfer limit).
inline constexpr int64_t kMaxEarnPoints = 1'000'000'000'000;
// Largest contract rate accepted: a million points per currency unit.
inline constexpr int64_t kMaxEarnRateMilli = 1'000'000'000;
// PurchaseLine limits (ledger.proto), in characters.
inline constexpr size_t kMaxSkuLength = 64;
inline constexpr size_t kMaxLineDescriptionLength = 200;

// An immutable view of everything earn needs, swapped whole on refresh.
struct RulesSnapshot {
  int64_t version = 0;
  // Non-empty while a configured rules feed has not been read to its end:
  // earn and burn are then UNAVAILABLE (see rules_feed.h). Names the feeds.
  std::string not_ready;
  int lot_expiry_days = kDefaultLotExpiryDays;
  absl::flat_hash_map<std::string, settlement::v1::PartnerSnapshot> partners;
  // Only members that are not "active at the base tier" need to be here.
  absl::flat_hash_map<std::string, membership::v1::MemberSnapshot> members;
  absl::flat_hash_map<std::string, membership::v1::TierDefinition> tiers;
  std::vector<catalog::v1::Campaign> campaigns;  // ACTIVE only
  // The campaigns' time zones, loaded once per snapshot (IndexTimeZones).
  // A campaign whose zone is missing here has a schedule that never matches.
  absl::flat_hash_map<std::string, absl::TimeZone> time_zones;
  // Prepaid partners: the most points they may have issued in total (net of
  // returns), i.e. every block bought. Settlement publishes what remained at
  // a journal sequence; the refresher adds back what the ledger had issued
  // by then (rules_feed.h). Consulted only for a partner whose contract in
  // force is prepaid; such a partner absent here may issue nothing.
  absl::flat_hash_map<std::string, int64_t> prepaid_limit_points;
  // Points leased from the catalog for budgeted campaigns, shared by every
  // snapshot (campaign_budgets.h). Null: budgeted campaigns give no bonus.
  std::shared_ptr<CampaignBudgets> budgets;
};
using RulesSnapshotPtr = std::shared_ptr<const RulesSnapshot>;

// What an earn computes, before anything is posted.
struct EarnComputation {
  v1::EarnBreakdown breakdown;
  int64_t points = 0;
  absl::Time expires_at;
  // Set when the contract in force is prepaid: the partner's net issuance
  // after this earn must not exceed it (checked by the writer, which knows
  // the issuance account's balance).
  std::optional<int64_t> prepaid_limit_points;
  // Campaigns among the bonuses whose bonus the writer still has to confirm:
  // first purchase at the partner, and budgeted ones (paid out of leases).
  // Decided here, from the snapshot the earn was computed with, so that a
  // campaign that ends before the batch runs cannot make a conditional
  // bonus unconditional.
  absl::flat_hash_set<std::string> first_purchase_campaigns;
  absl::flat_hash_set<std::string> budgeted_campaigns;
};

// Loads the time zone of every campaign into rules.time_zones. A zone that
// cannot be loaded is logged; its schedule never matches.
void IndexTimeZones(RulesSnapshot& rules);

// The shape of a basket as ledger.proto documents it: at most
// kMaxPurchaseLines lines, each with sku 0..64 characters, category a
// lower-case slug of 1..64, quantity >= 1, amount >= 0 and description
// 0..200 characters. INVALID_ARGUMENT naming the line ("lines[3].quantity").
// (Currencies and the sum against the purchase amount: ComputeEarn.)
absl::Status ValidatePurchaseLines(const google::protobuf::RepeatedPtrField<v1::PurchaseLine>& lines);

// Validates the purchase against the rules and computes the points.
// INVALID_ARGUMENT names the field; NOT_FOUND for an unknown partner;
// FAILED_PRECONDITION for a partner that is not active, a suspended or
// closed member, or no contract in force at occurred_at.
absl::StatusOr<EarnComputation> ComputeEarn(const RulesSnapshot& rules,
                                            const std::string& partner_id,
                                            const std::string& member_id,
                                            const common::v1::Money& amount,
                                            const google::protobuf::RepeatedPtrField<v1::PurchaseLine>& lines,
                                            absl::Time occurred_at);

// The limit on `partner_id`'s total net issuance when its contract in force
// at `at` is prepaid (0 when its blocks are unknown); nullopt otherwise.
std::optional<int64_t> PrepaidLimit(const RulesSnapshot& rules, const std::string& partner_id, absl::Time at);

// FAILED_PRECONDITION when issuing `points` more would take a prepaid
// partner's net issuance (`issued_so_far`) past `limit`. The refusal is not
// recorded under the idempotency key (IsUnrecordedRefusal): once the partner
// buys a block, the same request with the same key goes through.
absl::Status CheckPrepaidIssue(const std::string& partner_id, int64_t issued_so_far, int64_t points,
                               int64_t limit);
// True for a refusal that depends on a state expected to change soon.
bool IsUnrecordedRefusal(const absl::Status& status);

// Campaign bonuses that depend on state only the writer sees. ComputeEarn
// includes them as if they applied; these take them out again.
//
// True if a bonus of a first-purchase-at-partner campaign is in `comp`.
// Such a bonus stands only if the member has never earned at the partner
// before (any earn in the journal counts, even one since reversed).
bool HasFirstPurchaseBonus(const EarnComputation& comp);
// Removes those bonuses (the member has earned at the partner before).
void DropFirstPurchaseBonuses(EarnComputation& comp);
// Zeroes the bonuses of budgeted campaigns that this ledger's leases cannot
// cover (the campaign has stopped, or no lease has arrived yet): a bonus is
// never given beyond the budget. The writer is the only consumer, so what
// this sees still holds when ReserveBudgets() runs in the same command.
void DropUnfundedBonuses(const RulesSnapshot& rules, EarnComputation& comp);
// Reserves the budgeted bonuses from the leases, for the batch to confirm
// once it committed; ABORTED if a lease changed.
absl::Status ReserveBudgets(const EarnComputation& comp, BudgetReservations& budgets);

// floor(a * b / c) computed in 128 bits, so it cannot overflow for int64
// inputs. REQUIRES: c != 0 and the result fits in int64.
int64_t MulDivFloor(int64_t a, int64_t b, int64_t c);

// UNAVAILABLE while the snapshot is not ready (a feed not loaded yet); the
// caller retries. Checked before anything is recorded under a key.
absl::Status CheckRulesReady(const RulesSnapshot& rules);

// FAILED_PRECONDITION when the member may not earn or spend (suspended or
// closed). Unknown members are active.
absl::Status CheckMemberActive(const RulesSnapshot& rules, const std::string& member_id);
// NOT_FOUND / FAILED_PRECONDITION unless the partner is known and active.
absl::Status CheckPartnerActive(const RulesSnapshot& rules, const std::string& partner_id);

}  // namespace loyalty::ledger
