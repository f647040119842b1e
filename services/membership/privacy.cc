#include "services/membership/privacy.h"

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/paging/page_token.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "common/validation/text.h"
#include "services/membership/membership_shared.h"
#include "services/membership/validation.h"

namespace loyalty::membership {
namespace {

constexpr int kMaxExportRows = 10'000;

}  // namespace

// ---- export and erasure ---------------------------------------------------------------

absl::StatusOr<v1::ExportMemberDataResponse> Privacy::ExportMemberData(const Principal& p,
                                                                       const v1::ExportMemberDataRequest& r) {
  RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  // The ledger part first: if the ledger is down the export fails whole.
  {
    absl::Status exists = deps_.store.Run("ExportMemberData.check", [&](MembershipTx& tx) -> absl::Status {
      ASSIGN_OR_RETURN(std::optional<v1::Member> m, tx.GetMember(r.member_id(), false));
      return m.has_value() ? absl::OkStatus() : MemberNotFound();
    });
    RETURN_IF_ERROR(exists);
  }
  ASSIGN_OR_RETURN(LedgerStatement statement, deps_.ledger.Statement(r.member_id()));
  v1::ExportMemberDataResponse out;
  const absl::Time now = deps_.Now();
  RETURN_IF_ERROR(deps_.store.Run("ExportMemberData", [&](MembershipTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(v1::Member m, LoadVisible(tx, p, r.member_id(), false));
    ASSIGN_OR_RETURN(v1::TierLadder ladder, tx.GetLadder(false));
    *out.mutable_exported_at() = ToProtoTime(now);
    *out.mutable_member() = Present(p, m, ladder);
    ASSIGN_OR_RETURN(std::vector<v1::Card> cards, tx.ListCards(m.member_id()));
    for (v1::Card& c : cards) *out.add_cards() = std::move(c);
    ASSIGN_OR_RETURN(*out.mutable_consents(), tx.GetConsents(m.member_id()));
    ASSIGN_OR_RETURN(std::vector<v1::ConsentEvent> events, tx.ListConsentEvents(m.member_id(), kMaxExportRows));
    for (v1::ConsentEvent& e : events) *out.add_consent_history() = std::move(e);
    ASSIGN_OR_RETURN(auto changes, tx.ListTierChanges(m.member_id(), {}, kMaxExportRows));
    for (auto& [id, c] : changes) *out.add_tier_history() = std::move(c);
    ASSIGN_OR_RETURN(auto made, tx.ListReferrals(m.member_id(), {}, kMaxExportRows));
    for (auto& [id, ref] : made) *out.add_referrals_made() = std::move(ref);
    ASSIGN_OR_RETURN(std::optional<v1::Referral> by, tx.GetReferralOf(m.member_id()));
    if (by.has_value()) *out.mutable_referred_by() = *by;
    *out.mutable_balance() = statement.balance;
    for (const auto& lot : statement.lots) *out.add_lots() = lot;
    for (const auto& t : statement.transfers) *out.add_transfers() = t;
    common::v1::AuditEvent e = AuditOf(p, "ExportMemberData", "member", m.member_id(), now);
    return tx.InsertAudit(m.member_id(), e);
  }));
  return out;
}

absl::StatusOr<v1::EraseMemberResponse> Privacy::EraseMember(const Principal& p, const v1::EraseMemberRequest& r) {
  RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  ASSIGN_OR_RETURN(std::string reason, NormaliseText("reason", r.reason(), 1, kMaxReasonChars));
  const absl::Time now = deps_.Now();
  return Mutate<v1::EraseMemberResponse>(deps_, p, "EraseMember", r.idempotency_key(), r,
      [&](MembershipTx& tx, v1::EraseMemberResponse& out, std::string&) -> absl::Status {
        // member_id stays empty: this record holds no personal data and must
        // survive the scrub it performs.
        ASSIGN_OR_RETURN(std::optional<v1::Member> m, tx.GetMember(r.member_id(), true));
        if (!m.has_value()) return MemberNotFound();
        if (m->has_erased_at()) return absl::FailedPreconditionError("member is already erased");
        v1::Member after;
        after.set_member_id(m->member_id());
        after.set_status(v1::MEMBER_STATUS_CLOSED);
        after.set_status_reason("erased");
        after.set_preferred_language(m->preferred_language());
        after.set_enrolling_partner_id(m->enrolling_partner_id());
        after.set_referral_code(m->referral_code());
        after.set_referred_by_member_id(m->referred_by_member_id());
        *after.mutable_tier() = m->tier();
        *after.mutable_created_at() = m->created_at();
        *after.mutable_erased_at() = ToProtoTime(now);
        RETURN_IF_ERROR(SaveMember(tx, *m, after, now));
        RETURN_IF_ERROR(tx.ScrubPersonalData(m->member_id()));
        common::v1::AuditEvent e = AuditOf(p, "EraseMember", "member", m->member_id(), now);
        e.set_idempotency_key(r.idempotency_key());
        e.set_reason(reason);
        RETURN_IF_ERROR(tx.InsertAudit(m->member_id(), e));
        ASSIGN_OR_RETURN(v1::TierLadder ladder, tx.GetLadder(false));
        *out.mutable_member() = Present(p, after, ladder);
        return absl::OkStatus();
      });
}
// ---- the audit log ----------------------------------------------------------------------

absl::StatusOr<v1::ListAuditEventsResponse> Privacy::ListAuditEvents(const Principal& /*p*/,
                                                                     const v1::ListAuditEventsRequest& r) {
  ASSIGN_OR_RETURN(int size, paging::PageSize(r.page_size(), 100, 1000));
  MembershipTx::AuditFilter filter;
  filter.member_id = r.member_id();
  filter.actor_key_id = r.actor_key_id();
  if (r.has_start_time()) filter.start = FromProtoTime(r.start_time());
  if (r.has_end_time()) filter.end = FromProtoTime(r.end_time());
  if (filter.start && filter.end && *filter.start > *filter.end) {
    return absl::InvalidArgumentError("end_time: before start_time");
  }
  const std::string scope = absl::StrCat("audit/", r.member_id(), "/", r.actor_key_id(), "/",
                                         r.start_time().ShortDebugString(), "/", r.end_time().ShortDebugString());
  PageCursor cursor;
  if (!r.page_token().empty()) {
    ASSIGN_OR_RETURN(cursor.before_id, paging::DecodePageToken(r.page_token(), scope));
  }
  v1::ListAuditEventsResponse out;
  RETURN_IF_ERROR(deps_.store.Run("ListAuditEvents", [&](MembershipTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(auto rows, tx.ListAudit(filter, cursor, size + 1));
    for (int i = 0; i < static_cast<int>(rows.size()) && i < size; ++i) *out.add_events() = rows[i].second;
    if (static_cast<int>(rows.size()) > size) {
      out.set_next_page_token(paging::EncodePageToken(scope, rows[size - 1].first));
    }
    return absl::OkStatus();
  }));
  return out;
}
}  // namespace loyalty::membership
