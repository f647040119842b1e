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

// The record a call claims its key with.
IdempotencyRecord NewClaim(const auth::Principal& p, absl::string_view method, const std::string& key,
                           const google::protobuf::Message& request) {
  IdempotencyRecord claim;
  claim.scope = p.idempotency_scope();
  claim.key = key;
  claim.method = std::string(method);
  claim.fingerprint = idempotency::Fingerprint(request);
  request.SerializeToString(&claim.request);
  return claim;
}

// Turns a stored record into this call's answer.
absl::Status Replay(const IdempotencyRecord& rec, const IdempotencyRecord& claim,
                    const google::protobuf::Message& request, google::protobuf::Message& response) {
  RETURN_IF_ERROR(idempotency::CheckSameRequest(claim.key, rec.method, rec.fingerprint, rec.erased ? "" : rec.request,
                                                claim.method, claim.fingerprint, request));
  if (rec.erased) {
    return absl::FailedPreconditionError("the member this request concerned has been erased");
  }
  absl::Status answer = idempotency::StoredAnswer(rec.status_code, rec.status_message, rec.response, response);
  if (!answer.ok() && !rec.status_detail.empty()) {
    answer.SetPayload(kExistingMemberIdKey, absl::Cord(rec.status_detail));
  }
  return answer;
}

// Remembers a refusal, in its own transaction (the body's writes were
// rolled back), unless a concurrent request with this key got there first;
// then that one's answer is returned.
absl::Status RememberRefusal(MembershipStore& store, absl::string_view method, const IdempotencyRecord& claim,
                             const absl::Status& status, const std::string& member_id,
                             const google::protobuf::Message& request, google::protobuf::Message& response) {
  IdempotencyRecord failed = claim;
  failed.status_code = static_cast<int>(status.code());
  failed.status_message = std::string(status.message());
  if (auto detail = status.GetPayload(kExistingMemberIdKey); detail.has_value()) {
    failed.status_detail = std::string(*detail);
    failed.member_id = failed.status_detail;  // the request holds that member's email or phone
  }
  if (failed.member_id.empty()) failed.member_id = member_id;
  std::optional<absl::Status> replayed;
  absl::Status stored = store.Run(method, [&](MembershipTx& tx) -> absl::Status {
    replayed.reset();
    ASSIGN_OR_RETURN(std::optional<IdempotencyRecord> existing, tx.ClaimKey(claim));
    if (existing.has_value()) {
      replayed = Replay(*existing, claim, request, response);
      return absl::OkStatus();
    }
    return tx.SaveOutcome(failed);
  });
  if (!stored.ok() && !replayed.has_value()) return idempotency::RefusalNotRecorded(status, stored);
  if (replayed.has_value()) return *replayed;  // a refusal, or OK with the response filled
  return status;
}

}  // namespace

absl::Time MembershipDeps::Now() const { return TruncateToMicros(options.now()); }

absl::Status MutateMessage(MembershipStore& store, const auth::Principal& p, absl::string_view method,
                           const std::string& key, const google::protobuf::Message& request,
                           google::protobuf::Message& response,
                           const std::function<absl::Status(MembershipTx&, std::string& member_id)>& body) {
  RETURN_IF_ERROR(idempotency::ValidateKey(key));
  const IdempotencyRecord claim = NewClaim(p, method, key, request);
  std::optional<absl::Status> replayed;  // set when a stored answer was found
  std::string member_id;
  absl::Status status = store.Run(method, [&](MembershipTx& tx) -> absl::Status {
    response.Clear();
    replayed.reset();
    member_id.clear();
    ASSIGN_OR_RETURN(std::optional<IdempotencyRecord> existing, tx.ClaimKey(claim));
    if (existing.has_value()) {
      replayed = Replay(*existing, claim, request, response);
      return absl::OkStatus();
    }
    RETURN_IF_ERROR(body(tx, member_id));
    IdempotencyRecord done = claim;
    response.SerializeToString(&done.response);
    done.member_id = member_id;
    return tx.SaveOutcome(done);
  });
  if (replayed.has_value()) return *replayed;  // a refusal, or OK with the response filled
  if (status.ok() || !idempotency::ShouldRemember(status)) return status;
  return RememberRefusal(store, method, claim, status, member_id, request, response);
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

absl::Status RequireRole(const auth::Principal& p, std::initializer_list<common::v1::Role> roles) {
  for (common::v1::Role r : roles) {
    if (p.role == r) return absl::OkStatus();
  }
  return absl::PermissionDeniedError("this credential's role may not call this method");
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
