#include "services/membership/referrals.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/paging/page_token.h"
#include "common/status/status_macros.h"
#include "services/membership/membership_shared.h"
#include "services/membership/validation.h"

namespace loyalty::membership {

absl::StatusOr<v1::GetReferralCodeResponse> Referrals::GetReferralCode(const Principal& p,
                                                                       const v1::GetReferralCodeRequest& r) {
  v1::GetReferralCodeResponse out;
  RETURN_IF_ERROR(deps_.store.Run("GetReferralCode", [&](MembershipTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(v1::Member m, LoadVisible(tx, p, r.member_id(), false));
    out.set_referral_code(m.referral_code());
    ASSIGN_OR_RETURN(int64_t count, tx.CountReferrals(m.member_id()));
    out.set_referral_count(count);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::ListReferralsResponse> Referrals::ListReferrals(const Principal& p,
                                                                   const v1::ListReferralsRequest& r) {
  RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  ASSIGN_OR_RETURN(int size, paging::PageSize(r.page_size(), 50, 500));
  const std::string scope = absl::StrCat("referrals/", r.member_id());
  PageCursor cursor;
  if (!r.page_token().empty()) {
    ASSIGN_OR_RETURN(cursor.before_id, paging::DecodePageToken(r.page_token(), scope));
  }
  v1::ListReferralsResponse out;
  RETURN_IF_ERROR(deps_.store.Run("ListReferrals", [&](MembershipTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(v1::Member m, LoadVisible(tx, p, r.member_id(), false));
    ASSIGN_OR_RETURN(auto rows, tx.ListReferrals(m.member_id(), cursor, size + 1));
    for (int i = 0; i < static_cast<int>(rows.size()) && i < size; ++i) *out.add_referrals() = rows[i].second;
    if (static_cast<int>(rows.size()) > size) {
      out.set_next_page_token(paging::EncodePageToken(scope, rows[size - 1].first));
    }
    return absl::OkStatus();
  }));
  return out;
}
}  // namespace loyalty::membership
