#include "services/catalog/validation.h"

#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "common/validation/enums.h"
#include "common/validation/ids.h"
#include "common/validation/money.h"
#include "common/validation/text.h"

namespace loyalty::catalog {
namespace {

absl::Status Invalid(absl::string_view prefix, absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(prefix, field, ": ", why));
}

// A well-formed BCP 47 tag ("en", "de-CH", "zh-Hant-TW"): a language subtag
// of 2..8 letters, then subtags of 1..8 letters or digits, joined by '-'.
bool IsLanguageTag(absl::string_view tag) {
  if (tag.empty() || tag.size() > kMaxLanguageTagLength) return false;
  const std::vector<absl::string_view> subtags = absl::StrSplit(tag, '-');
  for (size_t i = 0; i < subtags.size(); ++i) {
    const absl::string_view sub = subtags[i];
    if (sub.empty() || sub.size() > 8 || (i == 0 && sub.size() < 2)) return false;
    for (char c : sub) {
      if (i == 0 ? !absl::ascii_isalpha(c) : !absl::ascii_isalnum(c)) return false;
    }
  }
  return true;
}

absl::Status ValidateTexts(absl::string_view prefix, absl::string_view field,
                           const google::protobuf::RepeatedPtrField<v1::LocalizedText>& texts, size_t max_length,
                           bool non_empty) {
  if (texts.size() > kMaxLanguages) return Invalid(prefix, field, "too many languages");
  std::set<std::string> seen;
  for (int i = 0; i < texts.size(); ++i) {
    const std::string f = absl::StrCat(field, "[", i, "]");
    const auto& t = texts[i];
    if (!IsLanguageTag(t.language())) {
      return Invalid(prefix, f + ".language",
                     absl::StrCat("a BCP 47 tag of at most ", kMaxLanguageTagLength, " characters is required"));
    }
    if (!seen.insert(t.language()).second) return Invalid(prefix, f + ".language", "duplicate language");
    RETURN_IF_ERROR(ValidateText(absl::StrCat(prefix, f, ".text"), t.text(), non_empty ? 1 : 0, max_length));
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

const std::set<std::string>& CampaignMaskPaths() {
  static const auto* paths = new std::set<std::string>{
      "name",          "description",       "bonus_rate_bp",      "fixed_bonus_points", "partner_ids",
      "categories",    "tier_ids",          "segment_ids",        "min_purchase",       "start_time",
      "end_time",      "days_of_week",      "daily_start_minute", "daily_end_minute",   "time_zone",
      "birthday_month_only", "first_purchase_at_partner_only", "budget_points", "max_bonus_points_per_purchase"};
  return *paths;
}

absl::Status ValidateIds(absl::string_view prefix, absl::string_view field,
                         const google::protobuf::RepeatedPtrField<std::string>& ids) {
  if (ids.size() > kMaxCampaignListEntries) return Invalid(prefix, field, "too many entries");
  for (int i = 0; i < ids.size(); ++i) {
    if (absl::Status s = ValidateId(absl::StrCat(prefix, field, "[", i, "]"), ids[i]); !s.ok()) return s;
  }
  return absl::OkStatus();
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
  RETURN_IF_ERROR(ValidateEnum(absl::StrCat(prefix, "reward_type"), r.reward_type(), v1::RewardType_IsValid,
                               /*required=*/true));
  if (r.points_price() <= 0) return Invalid(prefix, "points_price", "must be > 0");
  if (r.points_price() > kMaxPointsPrice) return Invalid(prefix, "points_price", "too large");
  if (absl::Status s = ValidateId(absl::StrCat(prefix, "partner_id"), r.partner_id()); !s.ok()) return s;
  if (!r.category().empty()) RETURN_IF_ERROR(ValidateCategory(absl::StrCat(prefix, "category"), r.category()));
  if (r.stock_available() < 0) return Invalid(prefix, "stock_available", "must be >= 0");
  if (r.stock_available() > kMaxStock) return Invalid(prefix, "stock_available", "too large");
  if (r.unlimited_stock() && r.stock_available() != 0) {
    return Invalid(prefix, "stock_available", "must be 0 when unlimited_stock");
  }
  if (r.per_member_limit() < 0) return Invalid(prefix, "per_member_limit", "must be >= 0");
  RETURN_IF_ERROR(ValidateEnum(absl::StrCat(prefix, "per_member_limit_period"), r.per_member_limit_period(),
                               v1::LimitPeriod_IsValid, /*required=*/false));
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
      if (!r.has_face_value()) return Invalid(prefix, "face_value", "a positive amount is required");
      RETURN_IF_ERROR(ValidateMoney(absl::StrCat(prefix, "face_value"), r.face_value(), AmountRule::kPositive));
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

absl::Status ValidateCampaign(absl::string_view prefix, const v1::Campaign& c) {
  RETURN_IF_ERROR(ValidateText(absl::StrCat(prefix, "name"), c.name(), 1, kMaxNameLength));
  RETURN_IF_ERROR(ValidateText(absl::StrCat(prefix, "description"), c.description(), 0, kMaxDescriptionLength));
  if (c.bonus_case() == v1::Campaign::kBonusRateBp &&
      (c.bonus_rate_bp() <= 0 || c.bonus_rate_bp() > kMaxBonusRateBp)) {
    return Invalid(prefix, "bonus_rate_bp", "must be 1..1000000");
  }
  if (c.bonus_case() == v1::Campaign::kFixedBonusPoints &&
      (c.fixed_bonus_points() <= 0 || c.fixed_bonus_points() > kMaxBonusPoints)) {
    return Invalid(prefix, "fixed_bonus_points", "must be > 0");
  }
  if (absl::Status s = ValidateIds(prefix, "partner_ids", c.partner_ids()); !s.ok()) return s;
  if (absl::Status s = ValidateIds(prefix, "tier_ids", c.tier_ids()); !s.ok()) return s;
  if (absl::Status s = ValidateIds(prefix, "segment_ids", c.segment_ids()); !s.ok()) return s;
  if (c.categories().size() > kMaxCampaignListEntries) return Invalid(prefix, "categories", "too many entries");
  for (int i = 0; i < c.categories().size(); ++i) {
    RETURN_IF_ERROR(ValidateCategory(absl::StrCat(prefix, "categories[", i, "]"), c.categories(i)));
  }
  if (c.has_min_purchase()) {
    RETURN_IF_ERROR(ValidateMoney(absl::StrCat(prefix, "min_purchase"), c.min_purchase(), AmountRule::kPositive));
  }
  if (c.has_start_time() && c.has_end_time() && FromProtoTime(c.end_time()) <= FromProtoTime(c.start_time())) {
    return Invalid(prefix, "end_time", "must be after start_time");
  }
  for (int i = 0; i < c.days_of_week().size(); ++i) {
    RETURN_IF_ERROR(ValidateEnum(absl::StrCat(prefix, "days_of_week[", i, "]"), c.days_of_week(i),
                                 v1::DayOfWeek_IsValid, /*required=*/true));
  }
  if (c.daily_start_minute() < 0 || c.daily_start_minute() > 1439) {
    return Invalid(prefix, "daily_start_minute", "must be 0..1439");
  }
  if (c.daily_end_minute() < 0 || c.daily_end_minute() > 1440) {
    return Invalid(prefix, "daily_end_minute", "must be 0..1440");
  }
  if (c.daily_end_minute() != 0 && c.daily_end_minute() <= c.daily_start_minute()) {
    return Invalid(prefix, "daily_end_minute", "must be after daily_start_minute");
  }
  const bool scheduled = !c.days_of_week().empty() || c.daily_start_minute() != 0 || c.daily_end_minute() != 0;
  if (scheduled && c.time_zone().empty()) {
    return Invalid(prefix, "time_zone", "required with days_of_week or a daily window");
  }
  if (!c.time_zone().empty()) {
    absl::TimeZone tz;
    if (c.time_zone().size() > 64 || !absl::LoadTimeZone(c.time_zone(), &tz)) {
      return Invalid(prefix, "time_zone", "unknown time zone");
    }
  }
  if (c.budget_points() < 0) return Invalid(prefix, "budget_points", "must be >= 0");
  if (c.max_bonus_points_per_purchase() < 0) return Invalid(prefix, "max_bonus_points_per_purchase", "must be >= 0");
  return absl::OkStatus();
}

absl::Status ValidateCampaignMask(const google::protobuf::FieldMask& mask) {
  if (mask.paths().empty()) return absl::InvalidArgumentError("update_mask: name at least one field");
  for (const std::string& path : mask.paths()) {
    if (!CampaignMaskPaths().contains(path)) {
      return absl::InvalidArgumentError(absl::StrCat("update_mask: ", path, " cannot be updated"));
    }
  }
  return absl::OkStatus();
}

void ApplyCampaignMask(const google::protobuf::FieldMask& mask, const v1::Campaign& from, v1::Campaign& to) {
  const google::protobuf::Descriptor* d = v1::Campaign::descriptor();
  const google::protobuf::Reflection* r = v1::Campaign::GetReflection();
  for (const std::string& path : mask.paths()) {
    const google::protobuf::FieldDescriptor* f = d->FindFieldByName(path);
    if (f == nullptr) continue;
    if (f->is_repeated()) {
      r->ClearField(&to, f);
      const int n = r->FieldSize(from, f);
      for (int i = 0; i < n; ++i) {
        // Repeated string, enum: copy element-wise.
        if (f->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_STRING) {
          r->AddString(&to, f, r->GetRepeatedString(from, f, i));
        } else if (f->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_ENUM) {
          r->AddEnumValue(&to, f, r->GetRepeatedEnumValue(from, f, i));
        }
      }
    } else if (f->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) {
      if (r->HasField(from, f)) {
        r->MutableMessage(&to, f)->CopyFrom(r->GetMessage(from, f));
      } else {
        r->ClearField(&to, f);
      }
    } else if (f->containing_oneof() != nullptr && !r->HasField(from, f)) {
      // Clearing one bonus kind only if it is the one set.
      if (r->HasField(to, f)) r->ClearField(&to, f);
    } else {
      switch (f->cpp_type()) {
        case google::protobuf::FieldDescriptor::CPPTYPE_INT64:
          r->SetInt64(&to, f, r->GetInt64(from, f));
          break;
        case google::protobuf::FieldDescriptor::CPPTYPE_INT32:
          r->SetInt32(&to, f, r->GetInt32(from, f));
          break;
        case google::protobuf::FieldDescriptor::CPPTYPE_BOOL:
          r->SetBool(&to, f, r->GetBool(from, f));
          break;
        case google::protobuf::FieldDescriptor::CPPTYPE_STRING:
          r->SetString(&to, f, r->GetString(from, f));
          break;
        default:
          break;
      }
    }
  }
}

}  // namespace loyalty::catalog
