#include "services/catalog/validation.h"

#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/money/currency.h"
#include "common/time/proto_time.h"
#include "common/validation/ids.h"

namespace loyalty::catalog {
namespace {

absl::Status Invalid(absl::string_view prefix, absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(prefix, field, ": ", why));
}

absl::Status ValidateTexts(absl::string_view prefix, absl::string_view field,
                           const google::protobuf::RepeatedPtrField<v1::LocalizedText>& texts, size_t max_length,
                           bool non_empty) {
  if (texts.size() > kMaxLanguages) return Invalid(prefix, field, "too many languages");
  std::set<std::string> seen;
  for (int i = 0; i < texts.size(); ++i) {
    const std::string f = absl::StrCat(field, "[", i, "]");
    const auto& t = texts[i];
    if (t.language().empty() || t.language().size() > 16) {
      return Invalid(prefix, f + ".language", "a BCP 47 tag is required");
    }
    if (!seen.insert(t.language()).second) return Invalid(prefix, f + ".language", "duplicate language");
    if (non_empty && t.text().empty()) return Invalid(prefix, f + ".text", "must not be empty");
    if (t.text().size() > max_length) {
      return Invalid(prefix, f + ".text", absl::StrCat("at most ", max_length, " characters"));
    }
  }
  return absl::OkStatus();
}

const std::set<std::string>& MaskPaths() {
  static const auto* paths = new std::set<std::string>{
      "names",          "descriptions",     "category",    "points_price", "per_member_limit",
      "per_member_limit_period", "min_tier_id", "valid_from", "valid_until", "discount_bp",
      "face_value",     "voucher_validity_days", "reward_type"};
  return *paths;
}

}  // namespace

void NormaliseReward(v1::Reward& r) {
  if (r.voucher_validity_days() == 0) r.set_voucher_validity_days(kDefaultVoucherValidityDays);
}

absl::Status ValidateReward(absl::string_view prefix, const v1::Reward& r) {
  if (r.names().empty()) return Invalid(prefix, "names", "at least one name is required");
  if (absl::Status s = ValidateTexts(prefix, "names", r.names(), kMaxNameLength, true); !s.ok()) return s;
  if (absl::Status s = ValidateTexts(prefix, "descriptions", r.descriptions(), kMaxDescriptionLength, false); !s.ok()) {
    return s;
  }
  if (r.reward_type() == v1::REWARD_TYPE_UNSPECIFIED || !v1::RewardType_IsValid(r.reward_type())) {
    return Invalid(prefix, "reward_type", "required");
  }
  if (r.points_price() <= 0) return Invalid(prefix, "points_price", "must be > 0");
  if (r.points_price() > kMaxPointsPrice) return Invalid(prefix, "points_price", "too large");
  if (absl::Status s = ValidateId(absl::StrCat(prefix, "partner_id"), r.partner_id()); !s.ok()) return s;
  if (r.category().size() > kMaxCategoryLength) return Invalid(prefix, "category", "at most 64 characters");
  if (r.stock_available() < 0) return Invalid(prefix, "stock_available", "must be >= 0");
  if (r.stock_available() > kMaxStock) return Invalid(prefix, "stock_available", "too large");
  if (r.unlimited_stock() && r.stock_available() != 0) {
    return Invalid(prefix, "stock_available", "must be 0 when unlimited_stock");
  }
  if (r.per_member_limit() < 0) return Invalid(prefix, "per_member_limit", "must be >= 0");
  if (!v1::LimitPeriod_IsValid(r.per_member_limit_period())) {
    return Invalid(prefix, "per_member_limit_period", "unknown period");
  }
  if (r.per_member_limit() > 0 && r.per_member_limit_period() == v1::LIMIT_PERIOD_UNSPECIFIED) {
    return Invalid(prefix, "per_member_limit_period", "required when per_member_limit is set");
  }
  if (!r.min_tier_id().empty()) {
    if (absl::Status s = ValidateId(absl::StrCat(prefix, "min_tier_id"), r.min_tier_id()); !s.ok()) return s;
  }
  if (r.has_valid_from() && r.has_valid_until() && FromProtoTime(r.valid_until()) <= FromProtoTime(r.valid_from())) {
    return Invalid(prefix, "valid_until", "must be after valid_from");
  }
  if (r.voucher_validity_days() < kMinVoucherValidityDays || r.voucher_validity_days() > kMaxVoucherValidityDays) {
    return Invalid(prefix, "voucher_validity_days", "must be 1..90");
  }
  switch (r.reward_type()) {
    case v1::REWARD_TYPE_PERCENT_DISCOUNT:
      if (r.discount_bp() < 1 || r.discount_bp() > 10000) return Invalid(prefix, "discount_bp", "must be 1..10000");
      break;
    case v1::REWARD_TYPE_FIXED_DISCOUNT:
    case v1::REWARD_TYPE_GIFT_VOUCHER:
    case v1::REWARD_TYPE_DONATION:
      if (!r.has_face_value() || r.face_value().amount_minor() <= 0) {
        return Invalid(prefix, "face_value", "a positive amount is required");
      }
      if (!money::MinorDigits(r.face_value().currency()).has_value()) {
        return Invalid(prefix, "face_value.currency", "unknown currency");
      }
      break;
    default:
      break;
  }
  return absl::OkStatus();
}

absl::Status ValidateRewardMask(const google::protobuf::FieldMask& mask) {
  if (mask.paths().empty()) return absl::InvalidArgumentError("update_mask: name at least one field");
  for (const std::string& path : mask.paths()) {
    if (!MaskPaths().contains(path)) {
      return absl::InvalidArgumentError(absl::StrCat("update_mask: ", path, " cannot be updated here"));
    }
  }
  return absl::OkStatus();
}

void ApplyRewardMask(const google::protobuf::FieldMask& mask, const v1::Reward& from, v1::Reward& to) {
  for (const std::string& path : mask.paths()) {
    if (path == "names") *to.mutable_names() = from.names();
    if (path == "descriptions") *to.mutable_descriptions() = from.descriptions();
    if (path == "category") to.set_category(from.category());
    if (path == "points_price") to.set_points_price(from.points_price());
    if (path == "per_member_limit") to.set_per_member_limit(from.per_member_limit());
    if (path == "per_member_limit_period") to.set_per_member_limit_period(from.per_member_limit_period());
    if (path == "min_tier_id") to.set_min_tier_id(from.min_tier_id());
    if (path == "valid_from") {
      if (from.has_valid_from()) {
        *to.mutable_valid_from() = from.valid_from();
      } else {
        to.clear_valid_from();
      }
    }
    if (path == "valid_until") {
      if (from.has_valid_until()) {
        *to.mutable_valid_until() = from.valid_until();
      } else {
        to.clear_valid_until();
      }
    }
    if (path == "discount_bp") to.set_discount_bp(from.discount_bp());
    if (path == "face_value") {
      if (from.has_face_value()) {
        *to.mutable_face_value() = from.face_value();
      } else {
        to.clear_face_value();
      }
    }
    if (path == "voucher_validity_days") to.set_voucher_validity_days(from.voucher_validity_days());
    if (path == "reward_type") to.set_reward_type(from.reward_type());
  }
}

}  // namespace loyalty::catalog
