#include "services/catalog/catalog_shared.h"

#include "absl/strings/str_cat.h"
#include "common/paging/page_token.h"
#include "common/time/proto_time.h"

namespace loyalty::catalog {

absl::Time CatalogDeps::Now() const { return TruncateToMicros(options.now()); }

absl::Status CheckPartnerExists(const CatalogDeps& deps, absl::string_view field, const std::string& partner_id) {
  if (deps.options.partners == nullptr) return absl::OkStatus();
  absl::Status s = deps.options.partners->PartnerExists(partner_id);
  if (absl::IsNotFound(s)) return absl::NotFoundError(absl::StrCat(field, ": partner ", partner_id, " not found"));
  return s;
}

absl::Status RewardNotFound(const std::string& id) {
  return absl::NotFoundError(absl::StrCat("reward ", id, " not found"));
}

absl::Status CampaignNotFound(const std::string& id) {
  return absl::NotFoundError(absl::StrCat("campaign ", id, " not found"));
}

absl::Time PeriodStart(v1::LimitPeriod period, absl::Time now) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  const absl::CivilDay day = absl::ToCivilDay(now, utc);
  switch (period) {
    case v1::LIMIT_PERIOD_DAY:
      return absl::FromCivil(day, utc);
    case v1::LIMIT_PERIOD_WEEK:
      return absl::FromCivil(absl::PrevWeekday(day + 1, absl::Weekday::monday), utc);
    case v1::LIMIT_PERIOD_MONTH:
      return absl::FromCivil(absl::CivilMonth(day), utc);
    case v1::LIMIT_PERIOD_YEAR:
      return absl::FromCivil(absl::CivilYear(day), utc);
    default:
      return absl::UnixEpoch();
  }
}

absl::Status StatusOf(const Redemption& r) {
  if (r.status_code == 0) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(r.status_code), r.status_message);
}

absl::StatusOr<std::string> KeyCursor(const std::string& token, const std::string& scope) {
  if (token.empty()) return std::string();
  return paging::DecodeKeyPageToken(token, scope);
}

}  // namespace loyalty::catalog
