#pragma once
// Input rules of the catalog's messages. Pure functions; every error is
// INVALID_ARGUMENT naming the offending field (e.g. "reward.points_price").
// Text lengths count characters (code points), as catalog.proto does.

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/validation/text.h"  // ValidateCategory
#include "google/protobuf/field_mask.pb.h"
#include "loyalty/catalog/v1/catalog.pb.h"

namespace loyalty::catalog {

inline constexpr size_t kMaxNameLength = 100;
inline constexpr size_t kMaxDescriptionLength = 2000;
inline constexpr size_t kMaxLanguageTagLength = 16;
inline constexpr size_t kMaxReasonLength = 500;
inline constexpr int kMaxLanguages = 20;
inline constexpr int64_t kMaxPointsPrice = 100'000'000;
inline constexpr int64_t kMaxStock = 1'000'000'000;
inline constexpr int kMinVoucherValidityDays = 1;
inline constexpr int kMaxVoucherValidityDays = 90;
inline constexpr int kDefaultVoucherValidityDays = 30;

// Fills defaults: voucher_validity_days 0 -> 30.
void NormaliseReward(v1::Reward& reward);
// `prefix` is prepended to field names ("reward.").
absl::Status ValidateReward(absl::string_view prefix, const v1::Reward& reward);
// The paths UpdateReward accepts (catalog.proto).
absl::Status ValidateRewardMask(const google::protobuf::FieldMask& mask);
// Copies the masked fields of `from` into `to`.
void ApplyRewardMask(const google::protobuf::FieldMask& mask, const v1::Reward& from, v1::Reward& to);

inline constexpr int64_t kMaxBonusRateBp = 1'000'000;  // +10,000 %
inline constexpr int64_t kMaxBonusPoints = 100'000'000;
inline constexpr int kMaxCampaignListEntries = 200;

// `prefix` is prepended to field names ("campaign.").
absl::Status ValidateCampaign(absl::string_view prefix, const v1::Campaign& campaign);
absl::Status ValidateCampaignMask(const google::protobuf::FieldMask& mask);
void ApplyCampaignMask(const google::protobuf::FieldMask& mask, const v1::Campaign& from, v1::Campaign& to);

}  // namespace loyalty::catalog
