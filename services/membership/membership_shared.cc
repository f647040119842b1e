#include "services/membership/membership_shared.h"

#include <algorithm>
#include <optional>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/idempotency/idempotency.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "common/validation/enums.h"
#include "google/protobuf/util/json_util.h"
#include "services/membership/codes.h"
#include "services/membership/tiers.h"
#include "services/membership/validation.h"

namespace loyalty::membership {
namespace {

constexpr absl::string_view kService = "loyalty.membership.v1.MembershipService/";

std::string Action(absl::string_view method) { return absl::StrCat(kService, method); }

std::string ToJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(m, &out, options).ok()) return "{}";
  return out;
}

bool Contains(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

// What a partner may see of a member (see membership_shared.h).
void RedactForPartner(v1::Member* m) {
  m->clear_birth_date();
  m->clear_status_reason();
  m->clear_referred_by_member_id();
  m->clear_erased_at();
  for (const char* field : {"birth_date", "status_reason", "referred_by_member_id", "erased_at"}) {
    m->add_redacted_fields(field);
  }
}

// The snapshot fields the ledger caches; a change to any of them takes a new
// feed version.
bool SnapshotDiffers(const v1::Member& a, const v1::Member& b) {
  return a.status() != b.status() || a.tier().tier_id() != b.tier().tier_id() ||
         a.birth_date().month() != b.birth_date().month() || a.enrolling_partner_id() != b.enrolling_partner_id();
}

}  // namespace

absl::Time MembershipDeps::Now() const { return TruncateToMicros(options.now()); }

idempotency::RunOnceHooks<IdempotencyRecord> MutateHooks(const google::protobuf::Message& request,
                                                         const std::string& member_id) {
  idempotency::RunOnceHooks<IdempotencyRecord> hooks;
  hooks.annotate = [&member_id](IdempotencyRecord& record, const absl::Status& outcome) {
    if (auto detail = outcome.GetPayload(kExistingMemberIdKey); detail.has_value()) {
      record.status_detail = std::string(*detail);
      record.member_id = record.status_detail;  // the request holds that member's email or phone
    }
    if (record.member_id.empty()) record.member_id = member_id;
  };
  hooks.replay = [&request](const IdempotencyRecord& stored, const IdempotencyRecord& claim,
                            google::protobuf::Message& response) -> absl::Status {
    RETURN_IF_ERROR(idempotency::CheckSameRequest(claim.key, stored.method, stored.fingerprint,
                                                  stored.erased ? "" : stored.request, claim.method,
                                                  claim.fingerprint, request));
    if (stored.erased) return absl::FailedPreconditionError("the member this request concerned has been erased");
    absl::Status answer = idempotency::StoredAnswer(stored.status_code, stored.status_message, stored.response, response);
    if (!answer.ok() && !stored.status_detail.empty()) {
      answer.SetPayload(kExistingMemberIdKey, absl::Cord(stored.status_detail));
    }
    return answer;
  };
  return hooks;
}

// ---- members and visibility --------------------------------------------------------

absl::Status MemberNotFound() { return absl::NotFoundError("member not found"); }

// NOT_FOUND unless the principal may see the member. Erased members are
// invisible to partners.
absl::Status CheckVisible(MembershipTx& tx, const auth::Principal& p, const v1::Member& m) {
  if (!p.is_partner()) return absl::OkStatus();
  if (m.has_erased_at()) return MemberNotFound();
  if (m.enrolling_partner_id() == p.partner_id) return absl::OkStatus();
  ASSIGN_OR_RETURN(bool shares, tx.SharesWith(m.member_id(), p.partner_id));
  return shares ? absl::OkStatus() : MemberNotFound();
}

// Loads a member the principal may see.
absl::StatusOr<v1::Member> LoadVisible(MembershipTx& tx, const auth::Principal& p, const std::string& member_id,
                                       bool for_update) {
  RETURN_IF_ERROR(ValidateId("member_id", member_id));
  ASSIGN_OR_RETURN(std::optional<v1::Member> m, tx.GetMember(member_id, for_update));
  if (!m.has_value()) return MemberNotFound();
  RETURN_IF_ERROR(CheckVisible(tx, p, *m));
  return *std::move(m);
}

absl::Status CheckNotClosed(const v1::Member& m) {
  if (m.status() == v1::MEMBER_STATUS_CLOSED) {
    return absl::FailedPreconditionError(absl::StrCat("member ", m.member_id(), " is closed"));
  }
  return absl::OkStatus();
}

// The member as this principal may see it, with tier display fields.
v1::Member Present(const auth::Principal& p, v1::Member m, const v1::TierLadder& ladder) {
  DecorateTier(ladder, m.mutable_tier());
  if (p.is_partner()) RedactForPartner(&m);
  return m;
}

// Writes a changed member: version and updated_at move, the feed version too
// when a snapshot field changed.
absl::Status SaveMember(MembershipTx& tx, const v1::Member& before, v1::Member& after, absl::Time now) {
  after.set_version(before.version() + 1);
  *after.mutable_updated_at() = ToProtoTime(now);
  return tx.UpdateMember(after, SnapshotDiffers(before, after));
}

// ---- the audit trail ---------------------------------------------------------------

common::v1::AuditEvent AuditOf(const auth::Principal& p, absl::string_view method, absl::string_view entity_type,
                               const std::string& entity_id, absl::Time now) {
  common::v1::AuditEvent e;
  e.set_audit_event_id(NewOpaqueId("ae"));
  *e.mutable_occurred_at() = ToProtoTime(now);
  e.set_actor_key_id(p.key_id);
  e.set_actor_role(p.role);
  e.set_actor_partner_id(p.partner_id);
  e.set_action(Action(method));
  e.set_entity_type(std::string(entity_type));
  e.set_entity_id(entity_id);
  return e;
}

absl::Status AuditChange(MembershipTx& tx, const auth::Principal& p, absl::string_view method,
                         absl::string_view entity_type, const std::string& entity_id, const std::string& member_id,
                         const google::protobuf::Message* before, const google::protobuf::Message* after,
                         const std::string& key, const std::string& reason, absl::Time now) {
  common::v1::AuditEvent e = AuditOf(p, method, entity_type, entity_id, now);
  if (before != nullptr) e.set_before_json(ToJson(*before));
  if (after != nullptr) e.set_after_json(ToJson(*after));
  e.set_idempotency_key(key);
  e.set_reason(reason);
  return tx.InsertAudit(member_id, e);
}

// ---- consents -----------------------------------------------------------------------

absl::Status ValidateConsentInputs(absl::string_view prefix, const google::protobuf::RepeatedPtrField<v1::ChannelConsent>& channels,
                                   const google::protobuf::RepeatedPtrField<v1::DataSharingConsent>& sharing) {
  for (int i = 0; i < channels.size(); ++i) {
    const std::string f = absl::StrCat(prefix, "channel_consents[", i, "]");
    RETURN_IF_ERROR(ValidateEnum(f + ".channel", channels[i].channel(), v1::ContactChannel_IsValid, /*required=*/true));
    if (!channels[i].partner_id().empty()) RETURN_IF_ERROR(ValidateId(f + ".partner_id", channels[i].partner_id()));
  }
  for (int i = 0; i < sharing.size(); ++i) {
    RETURN_IF_ERROR(ValidateId(absl::StrCat(prefix, "data_sharing[", i, "].partner_id"), sharing[i].partner_id()));
  }
  return absl::OkStatus();
}

// Writes consent changes and their history events.
absl::Status ApplyConsents(MembershipTx& tx, const auth::Principal& p, const std::string& member_id,
                           const google::protobuf::RepeatedPtrField<v1::ChannelConsent>& channels,
                           const google::protobuf::RepeatedPtrField<v1::DataSharingConsent>& sharing,
                           v1::ConsentSource source, absl::Time now) {
  const auto at = ToProtoTime(now);
  for (v1::ChannelConsent c : channels) {
    *c.mutable_updated_at() = at;
    c.set_source(source);
    RETURN_IF_ERROR(tx.PutChannelConsent(member_id, c));
    v1::ConsentEvent e;
    e.set_consent_event_id(NewOpaqueId("ce"));
    *e.mutable_occurred_at() = at;
    e.set_kind(v1::CONSENT_EVENT_KIND_CHANNEL);
    e.set_source(source);
    e.set_actor_key_id(p.key_id);
    e.set_channel(c.channel());
    e.set_partner_id(c.partner_id());
    e.set_granted(c.granted());
    RETURN_IF_ERROR(tx.InsertConsentEvent(member_id, e));
  }
  for (v1::DataSharingConsent d : sharing) {
    *d.mutable_updated_at() = at;
    d.set_source(source);
    RETURN_IF_ERROR(tx.PutDataSharing(member_id, d));
    v1::ConsentEvent e;
    e.set_consent_event_id(NewOpaqueId("ce"));
    *e.mutable_occurred_at() = at;
    e.set_kind(v1::CONSENT_EVENT_KIND_DATA_SHARING);
    e.set_source(source);
    e.set_actor_key_id(p.key_id);
    e.set_partner_id(d.partner_id());
    e.set_granted(d.granted());
    RETURN_IF_ERROR(tx.InsertConsentEvent(member_id, e));
  }
  return absl::OkStatus();
}

absl::Status RecordDocument(MembershipTx& tx, const auth::Principal& p, const std::string& member_id,
                            v1::ConsentEventKind kind, const std::string& version, v1::ConsentSource source,
                            absl::Time now) {
  v1::ConsentEvent e;
  e.set_consent_event_id(NewOpaqueId("ce"));
  *e.mutable_occurred_at() = ToProtoTime(now);
  e.set_kind(kind);
  e.set_source(source);
  e.set_actor_key_id(p.key_id);
  e.set_document_version(version);
  return tx.InsertConsentEvent(member_id, e);
}

absl::Status RequireKnownVersion(absl::string_view field, const std::string& version,
                                 const std::vector<std::string>& known) {
  RETURN_IF_ERROR(ValidateDocumentVersion(field, version));
  if (!Contains(known, version)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": unknown version \"", version, "\"; known: ", absl::StrJoin(known, ", ")));
  }
  return absl::OkStatus();
}

}  // namespace loyalty::membership
