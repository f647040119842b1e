#include "services/ledger/rules_cache.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "google/protobuf/util/json_util.h"

namespace loyalty::ledger {

absl::Status ValidatePartnerSnapshot(const settlement::v1::PartnerSnapshot& partner) {
  if (partner.partner_id().empty()) return absl::InvalidArgumentError("partners: empty partner_id");
  for (const auto& contract : partner.contracts()) {
    if (contract.earn_rate_milli_points_per_unit() < 0 ||
        contract.earn_rate_milli_points_per_unit() > kMaxEarnRateMilli) {
      return absl::InvalidArgumentError(absl::StrCat("partner ", partner.partner_id(),
                                                     ": earn rate out of range"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<RulesSnapshot>> BuildSnapshot(const internal::v1::EarnRulesFile& file,
                                                            int64_t version, int default_lot_expiry_days) {
  auto snapshot = std::make_shared<RulesSnapshot>();
  snapshot->version = version;
  snapshot->lot_expiry_days = file.lot_expiry_days() > 0 ? file.lot_expiry_days() : default_lot_expiry_days;
  for (const auto& partner : file.partners()) {
    RETURN_IF_ERROR(ValidatePartnerSnapshot(partner));
    // Remaining points counted from the first sequence are the whole limit;
    // a later count needs the ledger's issuance until then (rules_feed.cc).
    if (partner.prepaid_as_of_sequence() == 0) {
      snapshot->prepaid_limit_points[partner.partner_id()] = partner.prepaid_remaining_points();
    }
    if (!snapshot->partners.emplace(partner.partner_id(), partner).second) {
      return absl::InvalidArgumentError(absl::StrCat("partners: duplicate ", partner.partner_id()));
    }
  }
  for (const auto& member : file.members()) {
    snapshot->members[member.member_id()] = member;
  }
  for (const auto& tier : file.tier_ladder().tiers()) {
    snapshot->tiers[tier.tier_id()] = tier;
  }
  for (const auto& campaign : file.campaigns()) {
    if (campaign.state() == catalog::v1::CAMPAIGN_STATE_ACTIVE) snapshot->campaigns.push_back(campaign);
  }
  IndexTimeZones(*snapshot);
  return snapshot;
}

absl::StatusOr<RulesSnapshotPtr> SnapshotFromFile(const internal::v1::EarnRulesFile& file,
                                                  int64_t version, int default_lot_expiry_days) {
  ASSIGN_OR_RETURN(std::shared_ptr<RulesSnapshot> snapshot,
                   BuildSnapshot(file, version, default_lot_expiry_days));
  return RulesSnapshotPtr(std::move(snapshot));
}

absl::StatusOr<internal::v1::EarnRulesFile> ReadRulesFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read earn rules file ", path));
  std::stringstream text;
  text << in.rdbuf();
  internal::v1::EarnRulesFile file;
  auto status = google::protobuf::util::JsonStringToMessage(text.str(), &file);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("earn rules file ", path, ": ", std::string(status.message())));
  }
  return file;
}

}  // namespace loyalty::ledger
