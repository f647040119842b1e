#include "services/membership/consents.h"

#include <algorithm>
#include <string>
#include <vector>

#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "common/validation/enums.h"
#include "services/membership/membership_shared.h"
#include "services/membership/validation.h"

namespace loyalty::membership {
namespace {

constexpr int kMaxConsentHistory = 1000;

// A partner sees consents naming itself and coalition-wide ones.
void FilterConsentsForPartner(const auth::Principal& p, v1::Consents* c) {
  if (!p.is_partner()) return;
  auto* ch = c->mutable_channel_consents();
  ch->erase(std::remove_if(ch->begin(), ch->end(),
                           [&](const v1::ChannelConsent& x) {
                             return !x.partner_id().empty() && x.partner_id() != p.partner_id;
                           }),
            ch->end());
  auto* ds = c->mutable_data_sharing();
  ds->erase(std::remove_if(ds->begin(), ds->end(),
                           [&](const v1::DataSharingConsent& x) { return x.partner_id() != p.partner_id; }),
            ds->end());
}

}  // namespace

absl::StatusOr<v1::GetConsentsResponse> Consents::GetConsents(const Principal& p, const v1::GetConsentsRequest& r) {
  v1::GetConsentsResponse out;
  RETURN_IF_ERROR(deps_.store.Run("GetConsents", [&](MembershipTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(v1::Member m, LoadVisible(tx, p, r.member_id(), false));
    ASSIGN_OR_RETURN(*out.mutable_consents(), tx.GetConsents(m.member_id()));
    FilterConsentsForPartner(p, out.mutable_consents());
    if (r.include_history()) {
      ASSIGN_OR_RETURN(std::vector<v1::ConsentEvent> events, tx.ListConsentEvents(m.member_id(), kMaxConsentHistory));
      for (v1::ConsentEvent& e : events) {
        const bool partner_scoped = e.kind() == v1::CONSENT_EVENT_KIND_CHANNEL ||
                                    e.kind() == v1::CONSENT_EVENT_KIND_DATA_SHARING;
        if (p.is_partner() && partner_scoped && !e.partner_id().empty() && e.partner_id() != p.partner_id) continue;
        *out.add_history() = std::move(e);
      }
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::UpdateConsentsResponse> Consents::UpdateConsents(const Principal& p,
                                                                    const v1::UpdateConsentsRequest& r) {
  RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  RETURN_IF_ERROR(ValidateEnum("source", r.source(), v1::ConsentSource_IsValid, /*required=*/true));
  RETURN_IF_ERROR(ValidateConsentInputs("", r.channel_consents(), r.data_sharing()));
  if (!r.terms_version().empty()) {
    RETURN_IF_ERROR(RequireKnownVersion("terms_version", r.terms_version(), deps_.options.terms_versions));
  }
  if (!r.privacy_version().empty()) {
    RETURN_IF_ERROR(RequireKnownVersion("privacy_version", r.privacy_version(), deps_.options.privacy_versions));
  }
  if (p.is_partner()) {
    if (r.source() != v1::CONSENT_SOURCE_PARTNER) {
      return absl::PermissionDeniedError("source: partner callers record consents with source PARTNER");
    }
    for (const auto& c : r.channel_consents()) {
      if (!c.partner_id().empty() && c.partner_id() != p.partner_id) {
        return absl::PermissionDeniedError("channel_consents: a partner may only set its own or coalition-wide consents");
      }
    }
    for (const auto& d : r.data_sharing()) {
      if (d.partner_id() != p.partner_id) {
        return absl::PermissionDeniedError("data_sharing: a partner may only set consents naming itself");
      }
    }
  }
  const absl::Time now = deps_.Now();
  return Mutate<v1::UpdateConsentsResponse>(deps_, p, "UpdateConsents", r.idempotency_key(), r,
      [&](MembershipTx& tx, v1::UpdateConsentsResponse& out, std::string& member_id) -> absl::Status {
        ASSIGN_OR_RETURN(v1::Member m, LoadVisible(tx, p, r.member_id(), true));
        member_id = m.member_id();
        RETURN_IF_ERROR(CheckNotClosed(m));
        ASSIGN_OR_RETURN(v1::Consents before, tx.GetConsents(m.member_id()));
        RETURN_IF_ERROR(ApplyConsents(tx, p, m.member_id(), r.channel_consents(), r.data_sharing(), r.source(), now));
        v1::Consents docs = before;
        if (!r.terms_version().empty()) {
          docs.set_terms_version(r.terms_version());
          *docs.mutable_terms_accepted_at() = ToProtoTime(now);
          RETURN_IF_ERROR(RecordDocument(tx, p, m.member_id(), v1::CONSENT_EVENT_KIND_TERMS, r.terms_version(),
                                         r.source(), now));
        }
        if (!r.privacy_version().empty()) {
          docs.set_privacy_version(r.privacy_version());
          *docs.mutable_privacy_accepted_at() = ToProtoTime(now);
          RETURN_IF_ERROR(RecordDocument(tx, p, m.member_id(), v1::CONSENT_EVENT_KIND_PRIVACY, r.privacy_version(),
                                         r.source(), now));
        }
        if (!r.terms_version().empty() || !r.privacy_version().empty()) {
          RETURN_IF_ERROR(tx.SetDocumentVersions(m.member_id(), docs));
        }
        ASSIGN_OR_RETURN(v1::Consents after, tx.GetConsents(m.member_id()));
        RETURN_IF_ERROR(AuditChange(tx, p, "UpdateConsents", "consents", m.member_id(), m.member_id(), &before, &after,
                                    r.idempotency_key(), "", now));
        FilterConsentsForPartner(p, &after);
        *out.mutable_consents() = std::move(after);
        return absl::OkStatus();
      });
}
}  // namespace loyalty::membership
