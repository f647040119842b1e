#include "services/ledger/earn_rules.h"

#include <algorithm>

#include "absl/numeric/int128.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/money/currency.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "common/validation/text.h"
#include "services/ledger/ledger_state.h"

namespace loyalty::ledger {
namespace {

const settlement::v1::Contract* ContractAt(const settlement::v1::PartnerSnapshot& partner,
                                           absl::Time at) {
  const settlement::v1::Contract* best = nullptr;
  for (const auto& c : partner.contracts()) {
    if (FromProtoTime(c.effective_from()) > at) continue;
    if (c.has_effective_until() && FromProtoTime(c.effective_until()) <= at) continue;
    if (best == nullptr || c.version() > best->version()) best = &c;
  }
  return best;
}

bool Contains(const google::protobuf::RepeatedPtrField<std::string>& list, const std::string& v) {
  for (const auto& x : list) {
    if (x == v) return true;
  }
  return false;
}

// The campaign's time zone for its weekly and daily schedule; UTC when it
// names none (the catalog requires one whenever a schedule is set). A zone
// this machine does not know makes the schedule never match: a bonus is
// not given at the wrong hours.
std::optional<absl::TimeZone> ScheduleZone(const RulesSnapshot& rules, const catalog::v1::Campaign& c) {
  if (c.time_zone().empty()) return absl::UTCTimeZone();
  // Loaded once per snapshot (IndexTimeZones), never on the earn path.
  if (auto it = rules.time_zones.find(c.time_zone()); it != rules.time_zones.end()) return it->second;
  return std::nullopt;
}

// Whether `at` falls on one of the campaign's days and inside its daily
// window, both read in the campaign's time zone.
bool InSchedule(const RulesSnapshot& rules, const catalog::v1::Campaign& c, absl::Time at) {
  const bool windowed = c.daily_start_minute() != 0 || c.daily_end_minute() != 0;
  if (c.days_of_week_size() == 0 && !windowed) return true;
  const std::optional<absl::TimeZone> tz = ScheduleZone(rules, c);
  if (!tz.has_value()) return false;
  const absl::CivilSecond local = absl::ToCivilSecond(at, *tz);
  if (c.days_of_week_size() > 0) {
    // absl::Weekday: monday = 0 ... sunday = 6; the proto uses ISO (1 = Monday).
    const int dow = static_cast<int>(absl::GetWeekday(absl::CivilDay(local))) + 1;
    bool ok = false;
    for (int d : c.days_of_week()) ok = ok || d == dow;
    if (!ok) return false;
  }
  if (windowed) {
    const int minute = local.hour() * 60 + local.minute();
    const int end = c.daily_end_minute() == 0 ? 24 * 60 : c.daily_end_minute();
    if (minute < c.daily_start_minute() || minute >= end) return false;
  }
  return true;
}


// Whether the campaign applies to this purchase, and its eligible amount.
bool CampaignApplies(const RulesSnapshot& rules, const catalog::v1::Campaign& c, const std::string& partner_id,
                     const membership::v1::MemberSnapshot* member, const std::string& tier_id,
                     const common::v1::Money& amount,
                     const google::protobuf::RepeatedPtrField<v1::PurchaseLine>& lines,
                     absl::Time at, int64_t* eligible_minor) {
  if (c.state() != catalog::v1::CAMPAIGN_STATE_ACTIVE) return false;
  if (c.partner_ids_size() > 0 && !Contains(c.partner_ids(), partner_id)) return false;
  if (c.tier_ids_size() > 0 && !Contains(c.tier_ids(), tier_id)) return false;
  if (c.has_start_time() && at < FromProtoTime(c.start_time())) return false;
  if (c.has_end_time() && at >= FromProtoTime(c.end_time())) return false;
  if (!InSchedule(rules, c, at)) return false;
  if (c.segment_ids_size() > 0) {
    if (member == nullptr) return false;
    bool ok = false;
    for (const auto& s : member->segment_ids()) ok = ok || Contains(c.segment_ids(), s);
    if (!ok) return false;
  }
  if (c.birthday_month_only()) {
    const std::optional<absl::TimeZone> tz = ScheduleZone(rules, c);
    if (member == nullptr || !tz.has_value() || member->birth_month() != absl::ToCivilMonth(at, *tz).month()) {
      return false;
    }
  }
  // first_purchase_at_partner_only: applies here tentatively; the member's
  // earn history decides (DropFirstPurchaseBonuses), in the writer for an
  // earn and from the journal for a quote.
  int64_t eligible = amount.amount_minor();
  if (c.categories_size() > 0) {
    eligible = 0;
    for (const auto& line : lines) {
      if (Contains(c.categories(), line.category())) eligible += line.amount().amount_minor();
    }
  }
  if (eligible <= 0) return false;
  if (c.has_min_purchase() && c.min_purchase().currency() == amount.currency() &&
      amount.amount_minor() < c.min_purchase().amount_minor()) {
    return false;
  }
  *eligible_minor = eligible;
  return true;
}

}  // namespace

int64_t MulDivFloor(int64_t a, int64_t b, int64_t c) {
  const absl::int128 product = absl::int128(a) * b;
  absl::int128 q = product / c;
  if (product % c != 0 && ((product < 0) != (c < 0))) --q;  // floor, not truncation
  // Saturate rather than wrap; callers bound the result anyway.
  if (q > absl::int128(INT64_MAX)) return INT64_MAX;
  if (q < absl::int128(INT64_MIN)) return INT64_MIN;
  return static_cast<int64_t>(q);
}

absl::Status CheckPartnerActive(const RulesSnapshot& rules, const std::string& partner_id) {
  auto it = rules.partners.find(partner_id);
  if (it == rules.partners.end()) {
    return absl::NotFoundError(absl::StrCat("partner_id: unknown partner '", partner_id, "'"));
  }
  if (it->second.status() != settlement::v1::PARTNER_STATUS_ACTIVE) {
    return absl::FailedPreconditionError(
        absl::StrCat("partner '", partner_id, "' is not active (",
                     settlement::v1::PartnerStatus_Name(it->second.status()), ")"));
  }
  return absl::OkStatus();
}

std::optional<int64_t> PrepaidLimit(const RulesSnapshot& rules, const std::string& partner_id, absl::Time at) {
  auto partner = rules.partners.find(partner_id);
  if (partner == rules.partners.end()) return std::nullopt;
  const settlement::v1::Contract* contract = ContractAt(partner->second, at);
  if (contract == nullptr || contract->funding_model() != settlement::v1::FUNDING_MODEL_PREPAID) return std::nullopt;
  auto limit = rules.prepaid_limit_points.find(partner_id);
  return limit == rules.prepaid_limit_points.end() ? 0 : limit->second;  // unknown blocks: none
}

constexpr char kUnrecordedPayload[] = "type.loyalty/ledger.unrecorded-refusal";

absl::Status CheckPrepaidIssue(const std::string& partner_id, int64_t issued_so_far, int64_t points,
                               int64_t limit) {
  if (issued_so_far + points <= limit) return absl::OkStatus();
  absl::Status refused = absl::FailedPreconditionError(absl::StrCat(
      "partner '", partner_id, "' has not enough prepaid points: ", std::max<int64_t>(limit - issued_so_far, 0),
      " left, this needs ", points, "; the partner must buy a block"));
  refused.SetPayload(kUnrecordedPayload, absl::Cord("1"));
  return refused;
}

bool IsUnrecordedRefusal(const absl::Status& status) {
  return status.GetPayload(kUnrecordedPayload).has_value();
}

absl::Status CheckRulesReady(const RulesSnapshot& rules) {
  if (rules.not_ready.empty()) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat("earn rules not loaded yet from ", rules.not_ready,
                                             "; retry later"));
}

absl::Status CheckMemberActive(const RulesSnapshot& rules, const std::string& member_id) {
  auto it = rules.members.find(member_id);
  if (it == rules.members.end()) return absl::OkStatus();
  const auto status = it->second.status();
  if (status == membership::v1::MEMBER_STATUS_SUSPENDED ||
      status == membership::v1::MEMBER_STATUS_CLOSED) {
    return absl::FailedPreconditionError(
        absl::StrCat("member '", member_id, "' is ",
                     status == membership::v1::MEMBER_STATUS_SUSPENDED ? "suspended" : "closed"));
  }
  return absl::OkStatus();
}

void IndexTimeZones(RulesSnapshot& rules) {
  for (const catalog::v1::Campaign& c : rules.campaigns) {
    if (c.time_zone().empty() || rules.time_zones.contains(c.time_zone())) continue;
    absl::TimeZone tz;
    if (absl::LoadTimeZone(c.time_zone(), &tz)) {
      rules.time_zones.emplace(c.time_zone(), tz);
    } else {
      log::Warn("campaign_time_zone_unknown", {{"campaign_id", c.campaign_id()}, {"time_zone", c.time_zone()}});
    }
  }
}

bool HasFirstPurchaseBonus(const EarnComputation& comp) {
  for (const v1::CampaignBonus& bonus : comp.breakdown.campaign_bonuses()) {
    if (comp.first_purchase_campaigns.contains(bonus.campaign_id())) return true;
  }
  return false;
}

void DropFirstPurchaseBonuses(EarnComputation& comp) {
  // Removed, not zeroed: the campaign does not apply to this purchase at all
  // (a zero bonus in the breakdown means a budget that ran out).
  auto* bonuses = comp.breakdown.mutable_campaign_bonuses();
  int kept = 0;
  for (int i = 0; i < bonuses->size(); ++i) {
    if (comp.first_purchase_campaigns.contains(bonuses->Get(i).campaign_id())) {
      comp.points -= bonuses->Get(i).bonus_points();
      continue;
    }
    if (kept != i) bonuses->SwapElements(kept, i);
    ++kept;
  }
  bonuses->DeleteSubrange(kept, bonuses->size() - kept);
  comp.breakdown.set_total_points(comp.points);
}

void DropUnfundedBonuses(const RulesSnapshot& rules, EarnComputation& comp) {
  int64_t dropped = 0;
  for (v1::CampaignBonus& bonus : *comp.breakdown.mutable_campaign_bonuses()) {
    if (bonus.bonus_points() == 0 || !comp.budgeted_campaigns.contains(bonus.campaign_id())) continue;
    if (rules.budgets != nullptr && rules.budgets->Remaining(bonus.campaign_id()) >= bonus.bonus_points()) continue;
    dropped += bonus.bonus_points();
    bonus.set_bonus_points(0);
  }
  comp.points -= dropped;
  comp.breakdown.set_total_points(comp.points);
}

absl::Status ReserveBudgets(const EarnComputation& comp, BudgetReservations& budgets) {
  for (const v1::CampaignBonus& bonus : comp.breakdown.campaign_bonuses()) {
    if (bonus.bonus_points() == 0 || !comp.budgeted_campaigns.contains(bonus.campaign_id())) continue;
    if (!budgets.TryReserve(bonus.campaign_id(), bonus.bonus_points())) {
      return absl::AbortedError("campaign budget changed during the batch; retry");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidatePurchaseLines(const google::protobuf::RepeatedPtrField<v1::PurchaseLine>& lines) {
  if (lines.size() > kMaxPurchaseLines) {
    return absl::InvalidArgumentError(absl::StrCat("lines: more than ", kMaxPurchaseLines));
  }
  for (int i = 0; i < lines.size(); ++i) {
    const v1::PurchaseLine& line = lines[i];
    const std::string f = absl::StrCat("lines[", i, "]");
    RETURN_IF_ERROR(ValidateText(f + ".sku", line.sku(), 0, kMaxSkuLength));
    RETURN_IF_ERROR(ValidateCategory(f + ".category", line.category()));
    if (line.quantity() < 1) return absl::InvalidArgumentError(absl::StrCat(f, ".quantity: must be >= 1"));
    if (line.amount().amount_minor() < 0) {
      return absl::InvalidArgumentError(absl::StrCat(f, ".amount.amount_minor: must be >= 0"));
    }
    RETURN_IF_ERROR(ValidateText(f + ".description", line.description(), 0, kMaxLineDescriptionLength));
  }
  return absl::OkStatus();
}

namespace {

// INVALID_ARGUMENT unless the amount is positive, in a known currency, and
// its lines (if any) are in that currency and add up to it. Returns the
// currency's minor units per major unit.
absl::StatusOr<int64_t> ValidateEarnAmount(const common::v1::Money& amount,
                                           const google::protobuf::RepeatedPtrField<v1::PurchaseLine>& lines) {
  if (amount.amount_minor() <= 0) {
    return absl::InvalidArgumentError("amount.amount_minor: must be positive");
  }
  if (amount.amount_minor() > kMaxAmountMinor) {
    return absl::InvalidArgumentError("amount.amount_minor: too large");
  }
  const std::optional<int64_t> minor_per_major = money::MinorUnitsPerMajor(amount.currency());
  if (!minor_per_major.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("amount.currency: unknown currency '", amount.currency(), "'"));
  }
  RETURN_IF_ERROR(ValidatePurchaseLines(lines));
  if (lines.empty()) return *minor_per_major;
  int64_t sum = 0;
  for (int i = 0; i < lines.size(); ++i) {
    const auto& line = lines[i];
    if (line.amount().currency() != amount.currency()) {
      return absl::InvalidArgumentError(
          absl::StrCat("lines[", i, "].amount.currency: must equal amount.currency"));
    }
    if (line.amount().amount_minor() > kMaxAmountMinor) {
      return absl::InvalidArgumentError(
          absl::StrCat("lines[", i, "].amount.amount_minor: out of range"));
    }
    sum += line.amount().amount_minor();
  }
  if (sum != amount.amount_minor()) {
    return absl::InvalidArgumentError(
        absl::StrCat("lines: amounts sum to ", sum, ", not amount.amount_minor ",
                     amount.amount_minor()));
  }
  return *minor_per_major;
}

// The partner's contract in force at `occurred_at`, earning in the
// purchase's currency.
absl::StatusOr<const settlement::v1::Contract*> EarnContract(const RulesSnapshot& rules,
                                                             const std::string& partner_id,
                                                             const common::v1::Money& amount,
                                                             absl::Time occurred_at) {
  const settlement::v1::PartnerSnapshot& partner = rules.partners.at(partner_id);
  const settlement::v1::Contract* contract = ContractAt(partner, occurred_at);
  if (contract == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("partner '", partner_id, "' has no contract in force at occurred_at"));
  }
  if (contract->earn_currency() != amount.currency()) {
    return absl::InvalidArgumentError(absl::StrCat("amount.currency: partner earns in ",
                                                   contract->earn_currency(), ", not ",
                                                   amount.currency()));
  }
  return contract;
}

// Sets the member's tier and its bonus on `b` (base_points already set);
// returns the member's snapshot, or nullptr for an unknown member.
const membership::v1::MemberSnapshot* ApplyTier(const RulesSnapshot& rules, const std::string& member_id,
                                                v1::EarnBreakdown& b) {
  const membership::v1::MemberSnapshot* member = nullptr;
  if (auto it = rules.members.find(member_id); it != rules.members.end()) member = &it->second;
  int64_t multiplier = kBasisPoints;
  if (member != nullptr && !member->tier_id().empty()) {
    b.set_tier_id(member->tier_id());
    if (auto t = rules.tiers.find(member->tier_id()); t != rules.tiers.end()) {
      multiplier = std::max<int64_t>(kBasisPoints, t->second.tier_multiplier_bp());
    }
  }
  b.set_tier_multiplier_bp(multiplier);
  b.set_tier_bonus_points(MulDivFloor(b.base_points(), multiplier - kBasisPoints, kBasisPoints));
  return member;
}

// Adds campaign `c`'s bonus on `eligible_minor` of the purchase to `b`;
// returns its points (capped per purchase).
int64_t AddCampaignBonus(const catalog::v1::Campaign& c, int64_t eligible_minor, const std::string& currency,
                         int64_t rate, int64_t divisor, v1::EarnBreakdown& b) {
  v1::CampaignBonus* bonus = b.add_campaign_bonuses();
  bonus->set_campaign_id(c.campaign_id());
  bonus->set_campaign_name(c.name());
  bonus->mutable_eligible_amount()->set_amount_minor(eligible_minor);
  bonus->mutable_eligible_amount()->set_currency(currency);
  const int64_t eligible_base = MulDivFloor(eligible_minor, rate, divisor);
  bonus->set_eligible_base_points(eligible_base);
  int64_t points = 0;
  if (c.bonus_case() == catalog::v1::Campaign::kBonusRateBp) {
    bonus->set_bonus_rate_bp(c.bonus_rate_bp());
    points = MulDivFloor(eligible_base, c.bonus_rate_bp(), kBasisPoints);
  } else if (c.bonus_case() == catalog::v1::Campaign::kFixedBonusPoints) {
    bonus->set_fixed_bonus_points(c.fixed_bonus_points());
    points = c.fixed_bonus_points();
  }
  points = std::clamp<int64_t>(points, 0, kMaxEarnPoints);
  bonus->set_uncapped_bonus_points(points);
  if (c.max_bonus_points_per_purchase() > 0) {
    points = std::min(points, c.max_bonus_points_per_purchase());
  }
  bonus->set_bonus_points(points);
  return points;
}

}  // namespace

absl::StatusOr<EarnComputation> ComputeEarn(
    const RulesSnapshot& rules, const std::string& partner_id, const std::string& member_id,
    const common::v1::Money& amount,
    const google::protobuf::RepeatedPtrField<v1::PurchaseLine>& lines, absl::Time occurred_at) {
  ASSIGN_OR_RETURN(const int64_t minor_per_major, ValidateEarnAmount(amount, lines));
  RETURN_IF_ERROR(CheckPartnerActive(rules, partner_id));
  RETURN_IF_ERROR(CheckMemberActive(rules, member_id));
  ASSIGN_OR_RETURN(const settlement::v1::Contract* contract, EarnContract(rules, partner_id, amount, occurred_at));
  const int64_t divisor = 1000 * minor_per_major;
  const int64_t rate = contract->earn_rate_milli_points_per_unit();

  EarnComputation out;
  out.prepaid_limit_points = PrepaidLimit(rules, partner_id, occurred_at);
  v1::EarnBreakdown& b = out.breakdown;
  b.set_contract_id(contract->contract_id());
  b.set_earn_rate_milli_points_per_unit(rate);
  *b.mutable_eligible_amount() = amount;
  b.set_base_points(MulDivFloor(amount.amount_minor(), rate, divisor));
  const membership::v1::MemberSnapshot* member = ApplyTier(rules, member_id, b);

  int64_t total = b.base_points() + b.tier_bonus_points();
  for (const catalog::v1::Campaign& c : rules.campaigns) {
    int64_t eligible_minor = 0;
    if (!CampaignApplies(rules, c, partner_id, member, b.tier_id(), amount, lines, occurred_at,
                         &eligible_minor)) {
      continue;
    }
    total += AddCampaignBonus(c, eligible_minor, amount.currency(), rate, divisor, b);
    if (c.first_purchase_at_partner_only()) out.first_purchase_campaigns.insert(c.campaign_id());
    if (c.budget_points() > 0) out.budgeted_campaigns.insert(c.campaign_id());
  }
  if (total < 0 || total > kMaxEarnPoints) {
    return absl::InvalidArgumentError(
        absl::StrCat("amount: would earn ", total, " points, more than ", kMaxEarnPoints));
  }
  b.set_rounding_rule(v1::ROUNDING_RULE_FLOOR_PER_COMPONENT);
  b.set_total_points(total);
  b.set_earn_rules_version(rules.version);
  out.points = total;
  out.expires_at = occurred_at + absl::Hours(24) * rules.lot_expiry_days;
  return out;
}

}  // namespace loyalty::ledger
