#include "services/membership/membership.h"

#include <algorithm>
#include <optional>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/idempotency/idempotency.h"
#include "common/log/log.h"
#include "common/paging/page_token.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "common/validation/enums.h"
#include "common/validation/money.h"
#include "common/validation/text.h"
#include "google/protobuf/util/json_util.h"
#include "services/membership/codes.h"
#include "services/membership/segments.h"
#include "services/membership/tiers.h"
#include "services/membership/validation.h"

namespace loyalty::membership {
namespace {

constexpr absl::string_view kService = "loyalty.membership.v1.MembershipService/";
constexpr int kMaxCardDraws = 5;
constexpr int kMaxConsentHistory = 1000;
constexpr int kMaxExportRows = 10'000;

absl::Status MemberNotFound() { return absl::NotFoundError("member not found"); }

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

// What a partner may see of a member (see membership.h).
void RedactForPartner(v1::Member* m) {
  m->clear_birth_date();
  m->clear_status_reason();
  m->clear_referred_by_member_id();
  m->clear_erased_at();
  for (const char* field : {"birth_date", "status_reason", "referred_by_member_id", "erased_at"}) {
    m->add_redacted_fields(field);
  }
}

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

// Backoffice reads of personal data are audited (partners' reads are scoped
// by consent instead).
absl::Status AuditRead(MembershipTx& tx, const auth::Principal& p, absl::string_view method,
                       const std::string& member_id, absl::Time now) {
  if (!p.is_backoffice()) return absl::OkStatus();
  return tx.InsertAudit(member_id, AuditOf(p, method, "member", member_id, now));
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

absl::Status RequireRole(const auth::Principal& p, std::initializer_list<common::v1::Role> roles) {
  for (common::v1::Role r : roles) {
    if (p.role == r) return absl::OkStatus();
  }
  return absl::PermissionDeniedError("this credential's role may not call this method");
}

// Fills the ALREADY_EXISTS for an email or phone held by another member.
absl::Status DuplicateContact(absl::string_view field, const std::string& existing_member_id) {
  absl::Status s = absl::AlreadyExistsError(
      absl::StrCat(field, ": already used by another member (id in trailing metadata ", kExistingMemberIdKey, ")"));
  s.SetPayload(kExistingMemberIdKey, absl::Cord(existing_member_id));
  return s;
}

absl::Status CheckContactFree(MembershipTx& tx, LookupKind kind, absl::string_view field, const std::string& value,
                              const std::string& self_member_id) {
  if (value.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::optional<std::string> holder, tx.FindMemberId(kind, value));
  if (holder.has_value() && *holder != self_member_id) return DuplicateContact(field, *holder);
  return absl::OkStatus();
}

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

absl::StatusOr<v1::Card> DrawCard(MembershipTx& tx, const std::string& member_id, absl::Time now) {
  for (int attempt = 0; attempt < kMaxCardDraws; ++attempt) {
    v1::Card card;
    card.set_card_number(NewCardNumber());
    card.set_member_id(member_id);
    card.set_state(v1::CARD_STATE_ACTIVE);
    *card.mutable_issued_at() = ToProtoTime(now);
    absl::Status s = tx.InsertCard(card);
    if (s.ok()) return card;
    if (!absl::IsAlreadyExists(s)) return s;
  }
  return absl::InternalError("could not draw a free card number");
}

absl::StatusOr<std::string> DrawReferralCode(MembershipTx& tx) {
  for (int attempt = 0; attempt < kMaxCardDraws; ++attempt) {
    std::string code = NewReferralCode();
    ASSIGN_OR_RETURN(std::optional<std::string> holder, tx.FindMemberIdByReferralCode(code));
    if (!holder.has_value()) return code;
  }
  return absl::InternalError("could not draw a free referral code");
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

bool ShouldRemember(const absl::Status& s) {
  return idempotency::IsFinalOutcome(s) && !absl::IsInvalidArgument(s) && !absl::IsPermissionDenied(s) &&
         !absl::IsUnauthenticated(s);
}

// The snapshot fields the ledger caches; a change to any of them takes a new
// feed version.
bool SnapshotDiffers(const v1::Member& a, const v1::Member& b) {
  return a.status() != b.status() || a.tier().tier_id() != b.tier().tier_id() ||
         a.birth_date().month() != b.birth_date().month() || a.enrolling_partner_id() != b.enrolling_partner_id();
}

// Writes a changed member: version and updated_at move, the feed version too
// when a snapshot field changed.
absl::Status SaveMember(MembershipTx& tx, const v1::Member& before, v1::Member& after, absl::Time now) {
  after.set_version(before.version() + 1);
  *after.mutable_updated_at() = ToProtoTime(now);
  return tx.UpdateMember(after, SnapshotDiffers(before, after));
}

}  // namespace

absl::Time Membership::Now() const { return TruncateToMicros(options_.now()); }

template <typename Response>
absl::StatusOr<Response> Membership::Mutate(const Principal& p, absl::string_view method, const std::string& key,
                                            const google::protobuf::Message& request, Body<Response> body) {
  RETURN_IF_ERROR(idempotency::ValidateKey(key));
  IdempotencyRecord claim;
  claim.scope = p.idempotency_scope();
  claim.key = key;
  claim.method = std::string(method);
  claim.fingerprint = idempotency::Fingerprint(request);
  request.SerializeToString(&claim.request);

  Response response;
  std::optional<absl::Status> replayed;  // set when a stored answer was found
  // Turns a stored record into this call's answer.
  auto replay = [&](const IdempotencyRecord& rec) -> absl::Status {
    RETURN_IF_ERROR(idempotency::CheckSameRequest(key, rec.method, rec.fingerprint, rec.erased ? "" : rec.request,
                                                  claim.method, claim.fingerprint, request));
    if (rec.erased) {
      return absl::FailedPreconditionError("the member this request concerned has been erased");
    }
    absl::Status answer = idempotency::StoredAnswer(rec.status_code, rec.status_message, rec.response, response);
    if (!answer.ok() && !rec.status_detail.empty()) {
      answer.SetPayload(kExistingMemberIdKey, absl::Cord(rec.status_detail));
    }
    return answer;
  };

  std::string member_id;
  absl::Status status = store_.Run(method, [&](MembershipTx& tx) -> absl::Status {
    response.Clear();
    replayed.reset();
    member_id.clear();
    ASSIGN_OR_RETURN(std::optional<IdempotencyRecord> existing, tx.ClaimKey(claim));
    if (existing.has_value()) {
      replayed = replay(*existing);
      return absl::OkStatus();
    }
    RETURN_IF_ERROR(body(tx, response, member_id));
    IdempotencyRecord done = claim;
    response.SerializeToString(&done.response);
    done.member_id = member_id;
    return tx.SaveOutcome(done);
  });
  if (replayed.has_value()) {
    if (!replayed->ok()) return *replayed;
    return response;
  }
  if (status.ok()) return response;
  if (!ShouldRemember(status)) return status;

  // Remember the refusal, in its own transaction (the body's writes were
  // rolled back), unless a concurrent request with this key got there first.
  IdempotencyRecord failed = claim;
  failed.status_code = static_cast<int>(status.code());
  failed.status_message = std::string(status.message());
  if (auto detail = status.GetPayload(kExistingMemberIdKey); detail.has_value()) {
    failed.status_detail = std::string(*detail);
    failed.member_id = failed.status_detail;  // the request holds that member's email or phone
  }
  if (failed.member_id.empty()) failed.member_id = member_id;
  absl::Status stored = store_.Run(method, [&](MembershipTx& tx) -> absl::Status {
    replayed.reset();
    ASSIGN_OR_RETURN(std::optional<IdempotencyRecord> existing, tx.ClaimKey(claim));
    if (existing.has_value()) {
      replayed = replay(*existing);
      return absl::OkStatus();
    }
    return tx.SaveOutcome(failed);
  });
  if (!stored.ok() && !replayed.has_value()) return idempotency::RefusalNotRecorded(status, stored);
  if (replayed.has_value()) {
    if (!replayed->ok()) return *replayed;
    return response;
  }
  return status;
}

// ---- members --------------------------------------------------------------------

absl::StatusOr<v1::EnrolResponse> Membership::Enrol(const Principal& p, const v1::EnrolRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {common::v1::ROLE_PARTNER, common::v1::ROLE_BACKOFFICE}));
  const absl::Time now = Now();
  ASSIGN_OR_RETURN(std::string given, NormaliseText("given_name", r.given_name(), 1, kMaxNameChars));
  ASSIGN_OR_RETURN(std::string family, NormaliseText("family_name", r.family_name(), 0, kMaxNameChars));
  if (r.email().empty() && r.phone().empty()) {
    return absl::InvalidArgumentError("email: email or phone is required");
  }
  std::string email, phone;
  if (!r.email().empty()) {
    ASSIGN_OR_RETURN(email, NormaliseEmail("email", r.email()));
  }
  if (!r.phone_region().empty()) {
    RETURN_IF_ERROR(ValidateCountryCode("phone_region", absl::AsciiStrToUpper(r.phone_region())));
  }
  if (!r.phone().empty()) {
    ASSIGN_OR_RETURN(phone, NormalisePhone("phone", r.phone(), r.phone_region()));
  }
  if (r.has_birth_date()) RETURN_IF_ERROR(ValidateBirthDate("birth_date", r.birth_date(), now));
  ASSIGN_OR_RETURN(std::string language,
                   NormaliseLanguage("preferred_language", r.preferred_language(), options_.supported_languages));
  RETURN_IF_ERROR(ValidateId("enrolling_partner_id", r.enrolling_partner_id()));
  if (p.is_partner() && r.enrolling_partner_id() != p.partner_id) {
    return absl::PermissionDeniedError("enrolling_partner_id: a partner enrols members for itself only");
  }
  RETURN_IF_ERROR(ValidateConsentInputs("", r.channel_consents(), r.data_sharing()));
  RETURN_IF_ERROR(RequireKnownVersion("terms_version", r.terms_version(), options_.terms_versions));
  RETURN_IF_ERROR(RequireKnownVersion("privacy_version", r.privacy_version(), options_.privacy_versions));
  std::string referral_code;
  if (!r.referral_code().empty()) {
    ASSIGN_OR_RETURN(referral_code, NormaliseReferralCode("referral_code", r.referral_code()));
  }

  return Mutate<v1::EnrolResponse>(p, "Enrol", r.idempotency_key(), r,
      [&](MembershipTx& tx, v1::EnrolResponse& out, std::string& member_id) -> absl::Status {
        RETURN_IF_ERROR(CheckContactFree(tx, LookupKind::kEmail, "email", email, ""));
        RETURN_IF_ERROR(CheckContactFree(tx, LookupKind::kPhone, "phone", phone, ""));
        std::optional<v1::Member> referrer;
        if (!referral_code.empty()) {
          ASSIGN_OR_RETURN(std::optional<std::string> referrer_id, tx.FindMemberIdByReferralCode(referral_code));
          if (referrer_id.has_value()) {
            ASSIGN_OR_RETURN(referrer, tx.GetMember(*referrer_id, false));
          }
          if (!referrer.has_value() || referrer->status() == v1::MEMBER_STATUS_CLOSED) {
            return absl::InvalidArgumentError("referral_code: unknown or no longer valid");
          }
        }
        ASSIGN_OR_RETURN(v1::TierLadder ladder, tx.GetLadder(false));
        v1::Member m;
        m.set_member_id(NewMemberId());
        member_id = m.member_id();
        m.set_status(v1::MEMBER_STATUS_ACTIVE);
        m.set_given_name(given);
        m.set_family_name(family);
        m.set_email(email);
        m.set_phone(phone);
        if (r.has_birth_date()) *m.mutable_birth_date() = r.birth_date();
        m.set_preferred_language(language);
        m.set_enrolling_partner_id(r.enrolling_partner_id());
        *m.mutable_tier() = InitialTier(ladder, now);
        ASSIGN_OR_RETURN(std::string own_code, DrawReferralCode(tx));
        m.set_referral_code(own_code);
        if (referrer.has_value()) m.set_referred_by_member_id(referrer->member_id());
        *m.mutable_created_at() = ToProtoTime(now);
        *m.mutable_updated_at() = ToProtoTime(now);
        m.set_version(1);
        v1::Consents docs;
        docs.set_terms_version(r.terms_version());
        *docs.mutable_terms_accepted_at() = ToProtoTime(now);
        docs.set_privacy_version(r.privacy_version());
        *docs.mutable_privacy_accepted_at() = ToProtoTime(now);
        RETURN_IF_ERROR(tx.InsertMember(m, docs));
        ASSIGN_OR_RETURN(v1::Card card, DrawCard(tx, m.member_id(), now));
        RETURN_IF_ERROR(ApplyConsents(tx, p, m.member_id(), r.channel_consents(), r.data_sharing(),
                                      v1::CONSENT_SOURCE_ENROLMENT, now));
        RETURN_IF_ERROR(RecordDocument(tx, p, m.member_id(), v1::CONSENT_EVENT_KIND_TERMS, r.terms_version(),
                                       v1::CONSENT_SOURCE_ENROLMENT, now));
        RETURN_IF_ERROR(RecordDocument(tx, p, m.member_id(), v1::CONSENT_EVENT_KIND_PRIVACY, r.privacy_version(),
                                       v1::CONSENT_SOURCE_ENROLMENT, now));
        v1::TierChange initial;
        initial.set_tier_change_id(NewOpaqueId("tc"));
        initial.set_member_id(m.member_id());
        initial.set_to_tier_id(m.tier().tier_id());
        initial.set_reason(v1::TIER_CHANGE_REASON_ENROLMENT);
        *initial.mutable_changed_at() = ToProtoTime(now);
        initial.set_actor_key_id(p.key_id);
        RETURN_IF_ERROR(tx.InsertTierChange(initial));
        if (referrer.has_value()) {
          v1::Referral ref;
          ref.set_referral_id(NewOpaqueId("rf"));
          ref.set_referrer_member_id(referrer->member_id());
          ref.set_referred_member_id(m.member_id());
          ref.set_referral_code(referral_code);
          ref.set_state(v1::REFERRAL_STATE_PENDING);
          *ref.mutable_enrolled_at() = ToProtoTime(now);
          RETURN_IF_ERROR(tx.InsertReferral(ref));
        }
        RETURN_IF_ERROR(AuditChange(tx, p, "Enrol", "member", m.member_id(), m.member_id(), nullptr, &m,
                                    r.idempotency_key(), "", now));
        *out.mutable_member() = Present(p, m, ladder);
        *out.mutable_card() = card;
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::GetMemberResponse> Membership::GetMember(const Principal& p, const v1::GetMemberRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {common::v1::ROLE_PARTNER, common::v1::ROLE_BACKOFFICE, common::v1::ROLE_SERVICE}));
  RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  v1::GetMemberResponse out;
  RETURN_IF_ERROR(store_.Run("GetMember", [&](MembershipTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(v1::Member m, LoadVisible(tx, p, r.member_id(), false));
    ASSIGN_OR_RETURN(v1::TierLadder ladder, tx.GetLadder(false));
    ASSIGN_OR_RETURN(std::vector<v1::Card> cards, tx.ListCards(m.member_id()));
    for (v1::Card& c : cards) {
      if (p.is_partner() && c.state() != v1::CARD_STATE_ACTIVE) continue;
      *out.add_cards() = std::move(c);
    }
    *out.mutable_member() = Present(p, std::move(m), ladder);
    return AuditRead(tx, p, "GetMember", r.member_id(), Now());
  }));
  return out;
}

absl::StatusOr<v1::LookupMemberResponse> Membership::LookupMember(const Principal& p,
                                                                  const v1::LookupMemberRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {common::v1::ROLE_PARTNER, common::v1::ROLE_BACKOFFICE, common::v1::ROLE_SERVICE}));
  std::string card_number, email, phone;
  switch (r.key_case()) {
    case v1::LookupMemberRequest::kCardNumber: {
      ASSIGN_OR_RETURN(card_number, NormaliseCardNumber("card_number", r.card_number()));
      break;
    }
    case v1::LookupMemberRequest::kPhone: {
      ASSIGN_OR_RETURN(phone, NormalisePhone("phone", r.phone(), ""));
      break;
    }
    case v1::LookupMemberRequest::kEmail: {
      ASSIGN_OR_RETURN(email, NormaliseEmail("email", r.email()));
      break;
    }
    case v1::LookupMemberRequest::KEY_NOT_SET:
      return absl::InvalidArgumentError("key: one of card_number, phone or email is required");
  }
  v1::LookupMemberResponse out;
  RETURN_IF_ERROR(store_.Run("LookupMember", [&](MembershipTx& tx) -> absl::Status {
    out.Clear();
    std::string member_id;
    if (!card_number.empty()) {
      ASSIGN_OR_RETURN(std::optional<v1::Card> card, tx.GetCard(card_number, false));
      if (!card.has_value()) return MemberNotFound();
      if (p.is_partner() && card->state() != v1::CARD_STATE_ACTIVE) return MemberNotFound();
      member_id = card->member_id();
      *out.mutable_card() = *card;
    } else {
      ASSIGN_OR_RETURN(std::optional<std::string> id,
                       tx.FindMemberId(email.empty() ? LookupKind::kPhone : LookupKind::kEmail,
                                       email.empty() ? phone : email));
      if (!id.has_value()) return MemberNotFound();
      member_id = *id;
    }
    ASSIGN_OR_RETURN(std::optional<v1::Member> m, tx.GetMember(member_id, false));
    if (!m.has_value() || m->has_erased_at()) return MemberNotFound();
    RETURN_IF_ERROR(CheckVisible(tx, p, *m));
    ASSIGN_OR_RETURN(v1::TierLadder ladder, tx.GetLadder(false));
    *out.mutable_member() = Present(p, *std::move(m), ladder);
    return AuditRead(tx, p, "LookupMember", member_id, Now());
  }));
  return out;
}

absl::StatusOr<v1::UpdateMemberResponse> Membership::UpdateMember(const Principal& p,
                                                                  const v1::UpdateMemberRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {common::v1::ROLE_PARTNER, common::v1::ROLE_BACKOFFICE}));
  RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  if (r.update_mask().paths().empty()) return absl::InvalidArgumentError("update_mask: name at least one field");
  if (r.expected_version() < 0) return absl::InvalidArgumentError("expected_version: must not be negative");
  const absl::Time now = Now();
  // Validate and normalise every named field before touching anything.
  v1::Member changes;
  absl::flat_hash_set<std::string> paths;
  for (const std::string& path : r.update_mask().paths()) {
    paths.insert(path);
    const v1::Member& in = r.member();
    if (path == "given_name") {
      ASSIGN_OR_RETURN(*changes.mutable_given_name(), NormaliseText("member.given_name", in.given_name(), 1, kMaxNameChars));
    } else if (path == "family_name") {
      ASSIGN_OR_RETURN(*changes.mutable_family_name(),
                       NormaliseText("member.family_name", in.family_name(), 0, kMaxNameChars));
    } else if (path == "email") {
      if (!in.email().empty()) {
        ASSIGN_OR_RETURN(*changes.mutable_email(), NormaliseEmail("member.email", in.email()));
      }
    } else if (path == "phone") {
      if (!in.phone().empty()) {
        ASSIGN_OR_RETURN(*changes.mutable_phone(), NormalisePhone("member.phone", in.phone(), ""));
      }
    } else if (path == "birth_date") {
      if (in.has_birth_date()) {
        RETURN_IF_ERROR(ValidateBirthDate("member.birth_date", in.birth_date(), now));
        *changes.mutable_birth_date() = in.birth_date();
      }
    } else if (path == "preferred_language") {
      ASSIGN_OR_RETURN(*changes.mutable_preferred_language(),
                       NormaliseLanguage("member.preferred_language", in.preferred_language(),
                                         options_.supported_languages));
    } else {
      return absl::InvalidArgumentError(absl::StrCat("update_mask: \"", path, "\" cannot be updated"));
    }
  }
  return Mutate<v1::UpdateMemberResponse>(p, "UpdateMember", r.idempotency_key(), r,
      [&](MembershipTx& tx, v1::UpdateMemberResponse& out, std::string& member_id) -> absl::Status {
        ASSIGN_OR_RETURN(v1::Member before, LoadVisible(tx, p, r.member_id(), true));
        member_id = before.member_id();
        RETURN_IF_ERROR(CheckNotClosed(before));
        if (r.expected_version() != 0 && r.expected_version() != before.version()) {
          return absl::AbortedError(absl::StrCat("expected_version: member is at version ", before.version()));
        }
        v1::Member after = before;
        if (paths.contains("given_name")) after.set_given_name(changes.given_name());
        if (paths.contains("family_name")) after.set_family_name(changes.family_name());
        if (paths.contains("email")) after.set_email(changes.email());
        if (paths.contains("phone")) after.set_phone(changes.phone());
        if (paths.contains("birth_date")) {
          if (changes.has_birth_date()) {
            *after.mutable_birth_date() = changes.birth_date();
          } else {
            after.clear_birth_date();
          }
        }
        if (paths.contains("preferred_language")) after.set_preferred_language(changes.preferred_language());
        if (after.email().empty() && after.phone().empty()) {
          return absl::InvalidArgumentError("member.email: a member keeps an email or a phone");
        }
        RETURN_IF_ERROR(CheckContactFree(tx, LookupKind::kEmail, "member.email", after.email(), after.member_id()));
        RETURN_IF_ERROR(CheckContactFree(tx, LookupKind::kPhone, "member.phone", after.phone(), after.member_id()));
        RETURN_IF_ERROR(SaveMember(tx, before, after, now));
        RETURN_IF_ERROR(AuditChange(tx, p, "UpdateMember", "member", after.member_id(), after.member_id(), &before,
                                    &after, r.idempotency_key(), "", now));
        ASSIGN_OR_RETURN(v1::TierLadder ladder, tx.GetLadder(false));
        *out.mutable_member() = Present(p, after, ladder);
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::SetMemberStatusResponse> Membership::SetMemberStatus(const Principal& p,
                                                                        const v1::SetMemberStatusRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {common::v1::ROLE_BACKOFFICE}));
  RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  if (r.status() == v1::MEMBER_STATUS_UNSPECIFIED || !v1::MemberStatus_IsValid(r.status())) {
    return absl::InvalidArgumentError("status: ACTIVE, SUSPENDED or CLOSED");
  }
  ASSIGN_OR_RETURN(std::string reason, NormaliseText("reason", r.reason(), 1, kMaxReasonChars));
  const absl::Time now = Now();
  return Mutate<v1::SetMemberStatusResponse>(p, "SetMemberStatus", r.idempotency_key(), r,
      [&](MembershipTx& tx, v1::SetMemberStatusResponse& out, std::string& member_id) -> absl::Status {
        ASSIGN_OR_RETURN(v1::Member before, LoadVisible(tx, p, r.member_id(), true));
        member_id = before.member_id();
        RETURN_IF_ERROR(CheckNotClosed(before));
        v1::Member after = before;
        after.set_status(r.status());
        after.set_status_reason(reason);
        RETURN_IF_ERROR(SaveMember(tx, before, after, now));
        RETURN_IF_ERROR(AuditChange(tx, p, "SetMemberStatus", "member", after.member_id(), after.member_id(),
                                    &before, &after, r.idempotency_key(), reason, now));
        ASSIGN_OR_RETURN(v1::TierLadder ladder, tx.GetLadder(false));
        *out.mutable_member() = Present(p, after, ladder);
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::IssueCardResponse> Membership::IssueCard(const Principal& p, const v1::IssueCardRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {common::v1::ROLE_PARTNER, common::v1::ROLE_BACKOFFICE}));
  RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  std::string replaces;
  if (!r.replaces_card_number().empty()) {
    ASSIGN_OR_RETURN(replaces, NormaliseCardNumber("replaces_card_number", r.replaces_card_number()));
  }
  ASSIGN_OR_RETURN(std::string reason, NormaliseText("reason", r.reason(), 0, kMaxReasonChars));
  const absl::Time now = Now();
  return Mutate<v1::IssueCardResponse>(p, "IssueCard", r.idempotency_key(), r,
      [&](MembershipTx& tx, v1::IssueCardResponse& out, std::string& member_id) -> absl::Status {
        ASSIGN_OR_RETURN(v1::Member m, LoadVisible(tx, p, r.member_id(), true));
        member_id = m.member_id();
        RETURN_IF_ERROR(CheckNotClosed(m));
        std::optional<v1::Card> old;
        if (!replaces.empty()) {
          ASSIGN_OR_RETURN(old, tx.GetCard(replaces, true));
          if (!old.has_value() || old->member_id() != m.member_id()) {
            return absl::NotFoundError("replaces_card_number: not a card of this member");
          }
        }
        ASSIGN_OR_RETURN(v1::Card card, DrawCard(tx, m.member_id(), now));
        if (old.has_value() && old->state() == v1::CARD_STATE_ACTIVE) {
          v1::Card before = *old;
          old->set_state(v1::CARD_STATE_REPLACED);
          *old->mutable_deactivated_at() = ToProtoTime(now);
          old->set_replaced_by_card_number(card.card_number());
          RETURN_IF_ERROR(tx.UpdateCard(*old));
          RETURN_IF_ERROR(AuditChange(tx, p, "IssueCard", "card", old->card_number(), m.member_id(), &before,
                                      &*old, r.idempotency_key(), reason, now));
        }
        RETURN_IF_ERROR(AuditChange(tx, p, "IssueCard", "card", card.card_number(), m.member_id(), nullptr, &card,
                                    r.idempotency_key(), reason, now));
        *out.mutable_card() = card;
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::BlockCardResponse> Membership::BlockCard(const Principal& p, const v1::BlockCardRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {common::v1::ROLE_PARTNER, common::v1::ROLE_BACKOFFICE}));
  ASSIGN_OR_RETURN(std::string number, NormaliseCardNumber("card_number", r.card_number()));
  RETURN_IF_ERROR(ValidateEnum("block_reason", r.block_reason(), v1::CardBlockReason_IsValid, /*required=*/true));
  ASSIGN_OR_RETURN(std::string note, NormaliseText("note", r.note(), 0, kMaxReasonChars));
  const absl::Time now = Now();
  return Mutate<v1::BlockCardResponse>(p, "BlockCard", r.idempotency_key(), r,
      [&](MembershipTx& tx, v1::BlockCardResponse& out, std::string& member_id) -> absl::Status {
        ASSIGN_OR_RETURN(std::optional<v1::Card> card, tx.GetCard(number, true));
        if (!card.has_value()) return absl::NotFoundError("card not found");
        member_id = card->member_id();
        ASSIGN_OR_RETURN(std::optional<v1::Member> m, tx.GetMember(card->member_id(), false));
        if (!m.has_value()) return absl::NotFoundError("card not found");
        if (!CheckVisible(tx, p, *m).ok()) return absl::NotFoundError("card not found");
        if (card->state() == v1::CARD_STATE_BLOCKED) {
          return absl::FailedPreconditionError("card is already blocked");
        }
        v1::Card before = *card;
        card->set_state(v1::CARD_STATE_BLOCKED);
        card->set_block_reason(r.block_reason());
        if (!card->has_deactivated_at()) *card->mutable_deactivated_at() = ToProtoTime(now);
        RETURN_IF_ERROR(tx.UpdateCard(*card));
        RETURN_IF_ERROR(AuditChange(tx, p, "BlockCard", "card", card->card_number(), card->member_id(), &before,
                                    &*card, r.idempotency_key(), note, now));
        *out.mutable_card() = *card;
        return absl::OkStatus();
      });
}

// ---- tiers -----------------------------------------------------------------------

absl::StatusOr<v1::GetTierLadderResponse> Membership::GetTierLadder(const Principal& p) {
  RETURN_IF_ERROR(RequireRole(p, {common::v1::ROLE_PARTNER, common::v1::ROLE_BACKOFFICE, common::v1::ROLE_FINANCE,
                                  common::v1::ROLE_SERVICE}));
  v1::GetTierLadderResponse out;
  RETURN_IF_ERROR(store_.Run("GetTierLadder", [&](MembershipTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(*out.mutable_ladder(), tx.GetLadder(false));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::SetTierLadderResponse> Membership::SetTierLadder(const Principal& p,
                                                                    const v1::SetTierLadderRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {common::v1::ROLE_BACKOFFICE}));
  RETURN_IF_ERROR(ValidateLadder(r.ladder()));
  if (r.expected_version() < 0) return absl::InvalidArgumentError("expected_version: must not be negative");
  const absl::Time now = Now();
  return Mutate<v1::SetTierLadderResponse>(p, "SetTierLadder", r.idempotency_key(), r,
      [&](MembershipTx& tx, v1::SetTierLadderResponse& out, std::string&) -> absl::Status {
        ASSIGN_OR_RETURN(v1::TierLadder before, tx.GetLadder(true));
        if (r.expected_version() != 0 && r.expected_version() != before.version()) {
          return absl::AbortedError(absl::StrCat("expected_version: the ladder is at version ", before.version()));
        }
        for (const auto& old : before.tiers()) {
          if (FindTier(r.ladder(), old.tier_id()) != nullptr) continue;
          ASSIGN_OR_RETURN(int64_t holders, tx.CountMembersHoldingTier(old.tier_id()));
          if (holders > 0) {
            return absl::FailedPreconditionError(
                absl::StrCat("tier ", old.tier_id(), " is held by ", holders, " members and cannot be removed"));
          }
        }
        v1::TierLadder after = SortedLadder(r.ladder());
        after.set_version(before.version() + 1);
        *after.mutable_updated_at() = ToProtoTime(now);
        RETURN_IF_ERROR(tx.SaveLadder(after));
        RETURN_IF_ERROR(AuditChange(tx, p, "SetTierLadder", "tier_ladder", "ladder", "", &before, &after,
                                    r.idempotency_key(), "", now));
        *out.mutable_ladder() = after;
        return absl::OkStatus();
      });
}

namespace {

// Applies an evaluation to a locked member; returns the change if any.
absl::StatusOr<std::optional<v1::TierChange>> ApplyEvaluation(MembershipTx& tx, const auth::Principal& p,
                                                              const v1::TierLadder& ladder, const v1::Member& before,
                                                              int64_t points, absl::Time as_of, absl::Time now,
                                                              v1::MemberTier* tier_out) {
  Evaluation eval = EvaluateTier(ladder, before.tier(), points, as_of);
  v1::Member after = before;
  *after.mutable_tier() = eval.tier;
  // Display fields are derived from the ladder at read time, not stored.
  if (eval.change.has_value()) {
    eval.change->set_tier_change_id(NewOpaqueId("tc"));
    eval.change->set_member_id(before.member_id());
    eval.change->set_actor_key_id(p.key_id);
    RETURN_IF_ERROR(tx.InsertTierChange(*eval.change));
  }
  RETURN_IF_ERROR(SaveMember(tx, before, after, now));
  if (tier_out != nullptr) *tier_out = eval.tier;
  return eval.change;
}

}  // namespace

absl::StatusOr<v1::EvaluateTierResponse> Membership::EvaluateTier(const Principal& p,
                                                                  const v1::EvaluateTierRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {common::v1::ROLE_BACKOFFICE, common::v1::ROLE_SERVICE}));
  RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  const absl::Time now = Now();
  const absl::Time as_of = r.has_as_of() ? FromProtoTime(r.as_of()) : now;
  if (as_of > now) return absl::InvalidArgumentError("as_of: must not be in the future");
  // The ledger is asked outside any transaction; the figure is then applied
  // under the member's row lock.
  v1::TierLadder ladder;
  RETURN_IF_ERROR(store_.Run("EvaluateTier.read", [&](MembershipTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(std::optional<v1::Member> m, tx.GetMember(r.member_id(), false));
    if (!m.has_value()) return MemberNotFound();
    ASSIGN_OR_RETURN(ladder, tx.GetLadder(false));
    return absl::OkStatus();
  }));
  const absl::Time start = AddMonths(as_of, -ladder.qualification_window_months());
  ASSIGN_OR_RETURN(auto points, ledger_.QualifyingPoints({r.member_id()}, start, as_of));
  const int64_t qp = points.contains(r.member_id()) ? points[r.member_id()] : 0;
  return Mutate<v1::EvaluateTierResponse>(p, "EvaluateTier", r.idempotency_key(), r,
      [&](MembershipTx& tx, v1::EvaluateTierResponse& out, std::string& member_id) -> absl::Status {
        ASSIGN_OR_RETURN(std::optional<v1::Member> m, tx.GetMember(r.member_id(), true));
        if (!m.has_value()) return MemberNotFound();
        member_id = m->member_id();
        RETURN_IF_ERROR(CheckNotClosed(*m));
        ASSIGN_OR_RETURN(v1::TierLadder current, tx.GetLadder(false));
        if (current.qualification_window_months() != ladder.qualification_window_months()) {
          return absl::AbortedError("the tier ladder changed during the evaluation; retry");
        }
        ASSIGN_OR_RETURN(auto change, ApplyEvaluation(tx, p, current, *m, qp, as_of, now, out.mutable_tier()));
        if (change.has_value()) *out.mutable_change() = *change;
        return absl::OkStatus();
      });
}

namespace {

std::string RunToken(absl::Time as_of, const std::string& last_member_id) {
  return absl::WebSafeBase64Escape(absl::StrCat(absl::ToUnixMicros(as_of), "/", last_member_id));
}

}  // namespace

absl::StatusOr<v1::RunTierEvaluationResponse> Membership::RunTierEvaluation(
    const Principal& p, const v1::RunTierEvaluationRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {common::v1::ROLE_BACKOFFICE, common::v1::ROLE_SERVICE}));
  RETURN_IF_ERROR(idempotency::ValidateKey(r.idempotency_key()));
  if (r.batch_size() < 0 || r.batch_size() > 5000) return absl::InvalidArgumentError("batch_size: must be 1..5000");
  const int batch = r.batch_size() == 0 ? 1000 : r.batch_size();
  const absl::Time now = Now();
  absl::Time as_of = r.has_as_of() ? FromProtoTime(r.as_of()) : now;
  std::string after_member;
  if (!r.resume_token().empty()) {
    std::string raw;
    std::vector<std::string> parts;
    int64_t micros = 0;
    if (absl::WebSafeBase64Unescape(r.resume_token(), &raw)) parts = absl::StrSplit(raw, absl::MaxSplits('/', 1));
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &micros)) {
      return absl::InvalidArgumentError("resume_token: malformed");
    }
    const absl::Time token_as_of = absl::FromUnixMicros(micros);
    if (r.has_as_of() && TruncateToMicros(as_of) != token_as_of) {
      return absl::InvalidArgumentError("resume_token: issued for a run with another as_of");
    }
    as_of = token_as_of;
    after_member = parts[1];
  }
  as_of = TruncateToMicros(as_of);
  if (as_of > now) return absl::InvalidArgumentError("as_of: must not be in the future");

  std::vector<std::string> ids;
  v1::TierLadder ladder;
  RETURN_IF_ERROR(store_.Run("RunTierEvaluation.read", [&](MembershipTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(ids, tx.ListOpenMemberIds(after_member, batch));
    ASSIGN_OR_RETURN(ladder, tx.GetLadder(false));
    return absl::OkStatus();
  }));
  const absl::Time start = AddMonths(as_of, -ladder.qualification_window_months());
  absl::flat_hash_map<std::string, int64_t> points;
  constexpr size_t kLedgerChunk = 1000;
  for (size_t i = 0; i < ids.size(); i += kLedgerChunk) {
    std::vector<std::string> chunk(ids.begin() + i, ids.begin() + std::min(ids.size(), i + kLedgerChunk));
    ASSIGN_OR_RETURN(auto part, ledger_.QualifyingPoints(chunk, start, as_of));
    points.insert(part.begin(), part.end());
  }
  return Mutate<v1::RunTierEvaluationResponse>(p, "RunTierEvaluation", r.idempotency_key(), r,
      [&](MembershipTx& tx, v1::RunTierEvaluationResponse& out, std::string&) -> absl::Status {
        ASSIGN_OR_RETURN(v1::TierLadder current, tx.GetLadder(false));
        if (current.qualification_window_months() != ladder.qualification_window_months()) {
          return absl::AbortedError("the tier ladder changed during the evaluation; retry");
        }
        for (const std::string& id : ids) {
          ASSIGN_OR_RETURN(std::optional<v1::Member> m, tx.GetMember(id, true));
          if (!m.has_value() || m->status() == v1::MEMBER_STATUS_CLOSED) continue;
          const int64_t qp = points.contains(id) ? points[id] : 0;
          ASSIGN_OR_RETURN(auto change, ApplyEvaluation(tx, p, current, *m, qp, as_of, now, nullptr));
          out.set_evaluated_count(out.evaluated_count() + 1);
          if (change.has_value()) out.set_changed_count(out.changed_count() + 1);
        }
        if (static_cast<int>(ids.size()) == batch) out.set_next_resume_token(RunToken(as_of, ids.back()));
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::GrantPaidTierResponse> Membership::GrantPaidTier(const Principal& p,
                                                                    const v1::GrantPaidTierRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {common::v1::ROLE_BACKOFFICE}));
  RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  RETURN_IF_ERROR(ValidateId("tier_id", r.tier_id()));
  const absl::Time now = Now();
  if (!r.has_valid_until()) return absl::InvalidArgumentError("valid_until: required");
  const absl::Time until = FromProtoTime(r.valid_until());
  if (until <= now) return absl::InvalidArgumentError("valid_until: must be in the future");
  if (until > AddMonths(now, 60)) return absl::InvalidArgumentError("valid_until: at most 5 years ahead");
  // A grant without a fee (unset, or 0 without a currency) is free.
  if (r.fee().amount_minor() != 0 || !r.fee().currency().empty()) {
    RETURN_IF_ERROR(ValidateMoney("fee", r.fee(), AmountRule::kNonNegative));
  }
  RETURN_IF_ERROR(ValidateText("payment_reference", r.payment_reference(), 0, kMaxPaymentReferenceChars));
  return Mutate<v1::GrantPaidTierResponse>(p, "GrantPaidTier", r.idempotency_key(), r,
      [&](MembershipTx& tx, v1::GrantPaidTierResponse& out, std::string& member_id) -> absl::Status {
        ASSIGN_OR_RETURN(std::optional<v1::Member> m, tx.GetMember(r.member_id(), true));
        if (!m.has_value()) return MemberNotFound();
        member_id = m->member_id();
        if (m->status() != v1::MEMBER_STATUS_ACTIVE) {
          return absl::FailedPreconditionError(absl::StrCat("member ", m->member_id(), " is not active"));
        }
        ASSIGN_OR_RETURN(v1::TierLadder ladder, tx.GetLadder(false));
        const v1::TierDefinition* tier = FindTier(ladder, r.tier_id());
        if (tier == nullptr) return absl::NotFoundError(absl::StrCat("tier ", r.tier_id(), " not found"));
        const v1::TierDefinition* held = FindTier(ladder, m->tier().tier_id());
        if (held != nullptr && held->rank() > tier->rank()) {
          return absl::FailedPreconditionError(
              absl::StrCat("member already holds the higher tier ", held->tier_id()));
        }
        v1::Member after = *m;
        v1::MemberTier* t = after.mutable_tier();
        const bool same_paid = t->basis() == v1::TIER_BASIS_PAID && t->tier_id() == tier->tier_id() &&
                               t->has_paid_until() && FromProtoTime(t->paid_until()) >= until;
        if (!same_paid) {
          if (t->tier_id() != tier->tier_id()) *t->mutable_since() = ToProtoTime(now);
          t->set_tier_id(tier->tier_id());
          t->set_basis(v1::TIER_BASIS_PAID);
          *t->mutable_paid_until() = ToProtoTime(until);
          v1::TierChange change;
          change.set_tier_change_id(NewOpaqueId("tc"));
          change.set_member_id(m->member_id());
          change.set_from_tier_id(m->tier().tier_id());
          change.set_to_tier_id(tier->tier_id());
          change.set_reason(v1::TIER_CHANGE_REASON_PAID_GRANT);
          *change.mutable_changed_at() = ToProtoTime(now);
          *change.mutable_valid_until() = ToProtoTime(until);
          change.set_actor_key_id(p.key_id);
          RETURN_IF_ERROR(tx.InsertTierChange(change));
          RETURN_IF_ERROR(SaveMember(tx, *m, after, now));
          RETURN_IF_ERROR(AuditChange(tx, p, "GrantPaidTier", "member", m->member_id(), m->member_id(), &*m, &after,
                                      r.idempotency_key(), r.payment_reference(), now));
          *out.mutable_change() = change;
        }
        *out.mutable_tier() = after.tier();
        DecorateTier(ladder, out.mutable_tier());
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::ListTierHistoryResponse> Membership::ListTierHistory(const Principal& p,
                                                                        const v1::ListTierHistoryRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {common::v1::ROLE_PARTNER, common::v1::ROLE_BACKOFFICE}));
  RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  ASSIGN_OR_RETURN(int size, paging::PageSize(r.page_size(), 50, 500));
  const std::string scope = absl::StrCat("tier_history/", r.member_id());
  PageCursor cursor;
  if (!r.page_token().empty()) {
    ASSIGN_OR_RETURN(cursor.before_id, paging::DecodePageToken(r.page_token(), scope));
  }
  v1::ListTierHistoryResponse out;
  RETURN_IF_ERROR(store_.Run("ListTierHistory", [&](MembershipTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(v1::Member m, LoadVisible(tx, p, r.member_id(), false));
    ASSIGN_OR_RETURN(auto rows, tx.ListTierChanges(m.member_id(), cursor, size + 1));
    for (int i = 0; i < static_cast<int>(rows.size()) && i < size; ++i) *out.add_changes() = rows[i].second;
    if (static_cast<int>(rows.size()) > size) {
      out.set_next_page_token(paging::EncodePageToken(scope, rows[size - 1].first));
    }
    return absl::OkStatus();
  }));
  return out;
}

// ---- consents ------------------------------------------------------------------

absl::StatusOr<v1::GetConsentsResponse> Membership::GetConsents(const Principal& p, const v1::GetConsentsRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {common::v1::ROLE_PARTNER, common::v1::ROLE_BACKOFFICE, common::v1::ROLE_SERVICE}));
  v1::GetConsentsResponse out;
  RETURN_IF_ERROR(store_.Run("GetConsents", [&](MembershipTx& tx) -> absl::Status {
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

absl::StatusOr<v1::UpdateConsentsResponse> Membership::UpdateConsents(const Principal& p,
                                                                      const v1::UpdateConsentsRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {common::v1::ROLE_PARTNER, common::v1::ROLE_BACKOFFICE}));
  RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  RETURN_IF_ERROR(ValidateEnum("source", r.source(), v1::ConsentSource_IsValid, /*required=*/true));
  RETURN_IF_ERROR(ValidateConsentInputs("", r.channel_consents(), r.data_sharing()));
  if (!r.terms_version().empty()) {
    RETURN_IF_ERROR(RequireKnownVersion("terms_version", r.terms_version(), options_.terms_versions));
  }
  if (!r.privacy_version().empty()) {
    RETURN_IF_ERROR(RequireKnownVersion("privacy_version", r.privacy_version(), options_.privacy_versions));
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
  const absl::Time now = Now();
  return Mutate<v1::UpdateConsentsResponse>(p, "UpdateConsents", r.idempotency_key(), r,
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

// ---- referrals --------------------------------------------------------------------

absl::StatusOr<v1::GetReferralCodeResponse> Membership::GetReferralCode(const Principal& p,
                                                                        const v1::GetReferralCodeRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {common::v1::ROLE_PARTNER, common::v1::ROLE_BACKOFFICE}));
  v1::GetReferralCodeResponse out;
  RETURN_IF_ERROR(store_.Run("GetReferralCode", [&](MembershipTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(v1::Member m, LoadVisible(tx, p, r.member_id(), false));
    out.set_referral_code(m.referral_code());
    ASSIGN_OR_RETURN(int64_t count, tx.CountReferrals(m.member_id()));
    out.set_referral_count(count);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::ListReferralsResponse> Membership::ListReferrals(const Principal& p,
                                                                    const v1::ListReferralsRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {common::v1::ROLE_PARTNER, common::v1::ROLE_BACKOFFICE}));
  RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  ASSIGN_OR_RETURN(int size, paging::PageSize(r.page_size(), 50, 500));
  const std::string scope = absl::StrCat("referrals/", r.member_id());
  PageCursor cursor;
  if (!r.page_token().empty()) {
    ASSIGN_OR_RETURN(cursor.before_id, paging::DecodePageToken(r.page_token(), scope));
  }
  v1::ListReferralsResponse out;
  RETURN_IF_ERROR(store_.Run("ListReferrals", [&](MembershipTx& tx) -> absl::Status {
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

// ---- segments ------------------------------------------------------------------------

absl::StatusOr<v1::CreateSegmentResponse> Membership::CreateSegment(const Principal& p,
                                                                    const v1::CreateSegmentRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {common::v1::ROLE_BACKOFFICE}));
  ASSIGN_OR_RETURN(std::string name, NormaliseText("name", r.name(), 1, 100));
  ASSIGN_OR_RETURN(std::string description, NormaliseText("description", r.description(), 0, 1000));
  const absl::Time now = Now();
  return Mutate<v1::CreateSegmentResponse>(p, "CreateSegment", r.idempotency_key(), r,
      [&](MembershipTx& tx, v1::CreateSegmentResponse& out, std::string&) -> absl::Status {
        ASSIGN_OR_RETURN(v1::TierLadder ladder, tx.GetLadder(false));
        RETURN_IF_ERROR(ValidateSegmentFilter("filter", r.filter(), ladder));
        v1::Segment seg;
        seg.set_segment_id(NewOpaqueId("sg"));
        seg.set_name(name);
        seg.set_description(description);
        *seg.mutable_filter() = r.filter();
        *seg.mutable_created_at() = ToProtoTime(now);
        *seg.mutable_updated_at() = ToProtoTime(now);
        seg.set_version(1);
        RETURN_IF_ERROR(tx.InsertSegment(seg));
        RETURN_IF_ERROR(AuditChange(tx, p, "CreateSegment", "segment", seg.segment_id(), "", nullptr, &seg,
                                    r.idempotency_key(), "", now));
        *out.mutable_segment() = seg;
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::UpdateSegmentResponse> Membership::UpdateSegment(const Principal& p,
                                                                    const v1::UpdateSegmentRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {common::v1::ROLE_BACKOFFICE}));
  RETURN_IF_ERROR(ValidateId("segment_id", r.segment_id()));
  if (r.update_mask().paths().empty()) return absl::InvalidArgumentError("update_mask: name at least one field");
  absl::flat_hash_set<std::string> paths;
  std::string name, description;
  for (const std::string& path : r.update_mask().paths()) {
    if (path == "name") {
      ASSIGN_OR_RETURN(name, NormaliseText("segment.name", r.segment().name(), 1, 100));
    } else if (path == "description") {
      ASSIGN_OR_RETURN(description, NormaliseText("segment.description", r.segment().description(), 0, 1000));
    } else if (path != "filter") {
      return absl::InvalidArgumentError(absl::StrCat("update_mask: \"", path, "\" cannot be updated"));
    }
    paths.insert(path);
  }
  const absl::Time now = Now();
  return Mutate<v1::UpdateSegmentResponse>(p, "UpdateSegment", r.idempotency_key(), r,
      [&](MembershipTx& tx, v1::UpdateSegmentResponse& out, std::string&) -> absl::Status {
        ASSIGN_OR_RETURN(std::optional<v1::Segment> before, tx.GetSegment(r.segment_id(), true));
        if (!before.has_value()) return absl::NotFoundError(absl::StrCat("segment ", r.segment_id(), " not found"));
        if (r.expected_version() != 0 && r.expected_version() != before->version()) {
          return absl::AbortedError(absl::StrCat("expected_version: segment is at version ", before->version()));
        }
        v1::Segment after = *before;
        if (paths.contains("name")) after.set_name(name);
        if (paths.contains("description")) after.set_description(description);
        if (paths.contains("filter")) {
          ASSIGN_OR_RETURN(v1::TierLadder ladder, tx.GetLadder(false));
          RETURN_IF_ERROR(ValidateSegmentFilter("segment.filter", r.segment().filter(), ladder));
          *after.mutable_filter() = r.segment().filter();
        }
        after.set_version(before->version() + 1);
        *after.mutable_updated_at() = ToProtoTime(now);
        RETURN_IF_ERROR(tx.UpdateSegment(after));
        RETURN_IF_ERROR(AuditChange(tx, p, "UpdateSegment", "segment", after.segment_id(), "", &*before, &after,
                                    r.idempotency_key(), "", now));
        *out.mutable_segment() = after;
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::GetSegmentResponse> Membership::GetSegment(const Principal& p, const v1::GetSegmentRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {common::v1::ROLE_BACKOFFICE, common::v1::ROLE_SERVICE}));
  RETURN_IF_ERROR(ValidateId("segment_id", r.segment_id()));
  v1::GetSegmentResponse out;
  RETURN_IF_ERROR(store_.Run("GetSegment", [&](MembershipTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(std::optional<v1::Segment> seg, tx.GetSegment(r.segment_id(), false));
    if (!seg.has_value()) return absl::NotFoundError(absl::StrCat("segment ", r.segment_id(), " not found"));
    *out.mutable_segment() = *std::move(seg);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::ListSegmentsResponse> Membership::ListSegments(const Principal& p,
                                                                  const v1::ListSegmentsRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {common::v1::ROLE_BACKOFFICE, common::v1::ROLE_SERVICE}));
  ASSIGN_OR_RETURN(int size, paging::PageSize(r.page_size(), 50, 500));
  std::string after;
  if (!r.page_token().empty()) {
    ASSIGN_OR_RETURN(after, paging::DecodeKeyPageToken(r.page_token(), "segments"));
  }
  v1::ListSegmentsResponse out;
  RETURN_IF_ERROR(store_.Run("ListSegments", [&](MembershipTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(std::vector<v1::Segment> rows, tx.ListSegments(after, size + 1));
    for (int i = 0; i < static_cast<int>(rows.size()) && i < size; ++i) *out.add_segments() = rows[i];
    if (static_cast<int>(rows.size()) > size) {
      out.set_next_page_token(paging::EncodeKeyPageToken("segments", rows[size - 1].segment_id()));
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::QuerySegmentResponse> Membership::QuerySegment(const Principal& p,
                                                                  const v1::QuerySegmentRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {common::v1::ROLE_BACKOFFICE, common::v1::ROLE_SERVICE}));
  ASSIGN_OR_RETURN(int size, paging::PageSize(r.page_size(), 500, 1000));
  if (r.target_case() == v1::QuerySegmentRequest::TARGET_NOT_SET) {
    return absl::InvalidArgumentError("target: a segment_id or a filter is required");
  }
  if (r.has_segment_id()) RETURN_IF_ERROR(ValidateId("segment_id", r.segment_id()));
  v1::QuerySegmentResponse out;
  RETURN_IF_ERROR(store_.Run("QuerySegment", [&](MembershipTx& tx) -> absl::Status {
    out.Clear();
    v1::SegmentFilter filter;
    if (r.has_segment_id()) {
      ASSIGN_OR_RETURN(std::optional<v1::Segment> seg, tx.GetSegment(r.segment_id(), false));
      if (!seg.has_value()) return absl::NotFoundError(absl::StrCat("segment ", r.segment_id(), " not found"));
      filter = seg->filter();
    } else {
      ASSIGN_OR_RETURN(v1::TierLadder ladder, tx.GetLadder(false));
      RETURN_IF_ERROR(ValidateSegmentFilter("filter", r.filter(), ladder));
      filter = r.filter();
    }
    // The token is bound to the query (saved segment id or the filter itself).
    const std::string scope = r.has_segment_id() ? absl::StrCat("segment/", r.segment_id())
                                                 : absl::StrCat("filter/", filter.SerializeAsString());
    std::string after;
    if (!r.page_token().empty()) {
      ASSIGN_OR_RETURN(after, paging::DecodeKeyPageToken(r.page_token(), scope));
    }
    // One bounded primary-key range per call; filters are applied to it.
    ASSIGN_OR_RETURN(std::vector<SegmentCandidate> rows, tx.ScanMembers(after, kSegmentScanRows));
    if (rows.empty()) return absl::OkStatus();
    GrantedByMember granted;
    if (!filter.required_consents().empty()) {
      ASSIGN_OR_RETURN(std::vector<GrantedChannel> channels, tx.GrantedChannelsInRange(after, rows.back().member_id));
      granted = GroupGrantedChannels(channels);
    }
    static const absl::flat_hash_set<std::string> kNone;
    std::string last_examined;
    for (const SegmentCandidate& c : rows) {
      last_examined = c.member_id;
      auto it = granted.find(c.member_id);
      if (!MatchesSegment(filter, c, it == granted.end() ? kNone : it->second)) continue;
      v1::SegmentMember* m = out.add_members();
      m->set_member_id(c.member_id);
      m->set_tier_id(c.tier_id);
      m->set_enrolling_partner_id(c.enrolling_partner_id);
      m->set_preferred_language(c.preferred_language);
      if (out.members_size() == size) break;
    }
    // More to read if the page filled before the range ended, or the range
    // was full (the table may go on).
    const bool more =
        last_examined != rows.back().member_id || static_cast<int>(rows.size()) == kSegmentScanRows;
    if (more) out.set_next_page_token(paging::EncodeKeyPageToken(scope, last_examined));
    return absl::OkStatus();
  }));
  return out;
}

// ---- privacy -----------------------------------------------------------------------

absl::StatusOr<v1::ExportMemberDataResponse> Membership::ExportMemberData(const Principal& p,
                                                                          const v1::ExportMemberDataRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {common::v1::ROLE_BACKOFFICE}));
  RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  // The ledger part first: if the ledger is down the export fails whole.
  {
    absl::Status exists = store_.Run("ExportMemberData.check", [&](MembershipTx& tx) -> absl::Status {
      ASSIGN_OR_RETURN(std::optional<v1::Member> m, tx.GetMember(r.member_id(), false));
      return m.has_value() ? absl::OkStatus() : MemberNotFound();
    });
    RETURN_IF_ERROR(exists);
  }
  ASSIGN_OR_RETURN(LedgerStatement statement, ledger_.Statement(r.member_id()));
  v1::ExportMemberDataResponse out;
  const absl::Time now = Now();
  RETURN_IF_ERROR(store_.Run("ExportMemberData", [&](MembershipTx& tx) -> absl::Status {
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

absl::StatusOr<v1::EraseMemberResponse> Membership::EraseMember(const Principal& p, const v1::EraseMemberRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {common::v1::ROLE_BACKOFFICE}));
  RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  ASSIGN_OR_RETURN(std::string reason, NormaliseText("reason", r.reason(), 1, kMaxReasonChars));
  const absl::Time now = Now();
  return Mutate<v1::EraseMemberResponse>(p, "EraseMember", r.idempotency_key(), r,
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

// ---- feeds and audit -----------------------------------------------------------------

absl::StatusOr<v1::ListMemberSnapshotsResponse> Membership::ListMemberSnapshots(
    const Principal& p, const v1::ListMemberSnapshotsRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {common::v1::ROLE_BACKOFFICE, common::v1::ROLE_SERVICE}));
  if (r.after_version() < 0) return absl::InvalidArgumentError("after_version: must be >= 0");
  ASSIGN_OR_RETURN(int size, paging::PageSize(r.page_size(), 1000, 5000));
  v1::ListMemberSnapshotsResponse out;
  RETURN_IF_ERROR(store_.Run("ListMemberSnapshots", [&](MembershipTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(std::vector<v1::MemberSnapshot> snaps, tx.ListSnapshots(r.after_version(), size + 1));
    out.set_has_more(static_cast<int>(snaps.size()) > size);
    if (out.has_more()) snaps.resize(size);
    out.set_last_version(snaps.empty() ? r.after_version() : snaps.back().version());
    for (v1::MemberSnapshot& s : snaps) *out.add_snapshots() = std::move(s);
    ASSIGN_OR_RETURN(*out.mutable_ladder(), tx.GetLadder(false));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::GetMemberSnapshotResponse> Membership::GetMemberSnapshot(
    const Principal& p, const v1::GetMemberSnapshotRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {common::v1::ROLE_BACKOFFICE, common::v1::ROLE_SERVICE}));
  RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  v1::GetMemberSnapshotResponse out;
  RETURN_IF_ERROR(store_.Run("GetMemberSnapshot", [&](MembershipTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(std::optional<v1::MemberSnapshot> snapshot, tx.GetSnapshot(r.member_id()));
    if (!snapshot.has_value()) return absl::NotFoundError("member_id: membership never issued this id");
    *out.mutable_snapshot() = *std::move(snapshot);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::ListAuditEventsResponse> Membership::ListAuditEvents(const Principal& p,
                                                                        const v1::ListAuditEventsRequest& r) {
  RETURN_IF_ERROR(RequireRole(p, {common::v1::ROLE_BACKOFFICE}));
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
  RETURN_IF_ERROR(store_.Run("ListAuditEvents", [&](MembershipTx& tx) -> absl::Status {
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

// ---- background: the ledger journal -------------------------------------------------

namespace {
constexpr absl::string_view kJournalCursor = "ledger_journal";
}  // namespace

absl::StatusOr<int> Membership::ConsumeLedgerJournal(int page_size) {
  int64_t after = 0;
  RETURN_IF_ERROR(store_.Run("journal.cursor", [&](MembershipTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(after, tx.LockCursor(std::string(kJournalCursor)));
    return absl::OkStatus();
  }));
  ASSIGN_OR_RETURN(JournalPage page, ledger_.ReadJournal(after, page_size));
  if (page.transfers.empty()) return 0;
  int applied = 0;
  RETURN_IF_ERROR(store_.Run("journal.apply", [&](MembershipTx& tx) -> absl::Status {
    applied = 0;
    ASSIGN_OR_RETURN(int64_t current, tx.LockCursor(std::string(kJournalCursor)));
    if (current != after) return absl::OkStatus();  // another replica applied this page
    for (const ledger::v1::Transfer& t : page.transfers) {
      ++applied;
      if (t.member_id().empty()) continue;
      const bool earn = t.code() == ledger::v1::TRANSFER_CODE_EARN;
      if (earn || t.code() == ledger::v1::TRANSFER_CODE_REDEEM) {
        RETURN_IF_ERROR(tx.RecordActivity(t.member_id(), FromProtoTime(t.created_at())));
      }
      if (earn) RETURN_IF_ERROR(tx.MarkReferralRewardDue(t.member_id()).status());
    }
    return tx.SetCursor(std::string(kJournalCursor), page.last_sequence, Now());
  }));
  return applied;
}

absl::StatusOr<int> Membership::GrantReferralRewards(int max) {
  std::vector<v1::Referral> due;
  RETURN_IF_ERROR(store_.Run("referrals.due", [&](MembershipTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(due, tx.ListDueReferrals(max));
    return absl::OkStatus();
  }));
  int granted = 0;
  for (v1::Referral& ref : due) {
    // A closed referrer is never rewarded.
    std::optional<v1::Member> referrer;
    RETURN_IF_ERROR(store_.Run("referrals.referrer", [&](MembershipTx& tx) -> absl::Status {
      ASSIGN_OR_RETURN(referrer, tx.GetMember(ref.referrer_member_id(), false));
      return absl::OkStatus();
    }));
    bool attempted = false;
    RETURN_IF_ERROR(store_.Run("referrals.attempted", [&](MembershipTx& tx) -> absl::Status {
      ASSIGN_OR_RETURN(attempted, tx.ReferralRewardAttempted(ref.referral_id()));
      return absl::OkStatus();
    }));
    const bool closed = !referrer.has_value() || referrer->status() == v1::MEMBER_STATUS_CLOSED;
    if (closed && !attempted) {
      // The ledger was never asked: nothing can land, so it is void.
      ref.set_state(v1::REFERRAL_STATE_VOID);
      RETURN_IF_ERROR(store_.Run("referrals.void", [&](MembershipTx& tx) { return tx.CompleteReferral(ref); }));
      continue;
    }
    if (!attempted) {
      // Committed before the ledger is asked: from now on only the ledger's
      // answer under the reward's key settles this referral.
      RETURN_IF_ERROR(store_.Run("referrals.attempt", [&](MembershipTx& tx) {
        return tx.MarkReferralRewardAttempted(ref.referral_id());
      }));
    }
    // For a closed referrer, the same key fences a grant still in flight:
    // the ledger answers the grant it made, or refuses a new one.
    absl::StatusOr<std::string> transfer = ledger_.GrantBonus(
        absl::StrCat("referral:", ref.referral_id()), ref.referrer_member_id(), options_.referral_reward_points,
        ledger::v1::BONUS_KIND_REFERRAL, "referral reward: referred member's first earn", ref.referral_id());
    if (closed && (absl::IsFailedPrecondition(transfer.status()) || absl::IsNotFound(transfer.status()))) {
      ref.set_state(v1::REFERRAL_STATE_VOID);
      RETURN_IF_ERROR(store_.Run("referrals.void", [&](MembershipTx& tx) { return tx.CompleteReferral(ref); }));
      continue;
    }
    if (!transfer.ok()) {
      // Retried on the next pass (the grant is idempotent at the ledger).
      log::Warn("referral_reward_deferred", {{"referral_id", ref.referral_id()},
                                             {"code", absl::StatusCodeToString(transfer.status().code())}});
      if (absl::IsUnavailable(transfer.status())) return transfer.status();
      continue;
    }
    ref.set_state(v1::REFERRAL_STATE_REWARDED);
    *ref.mutable_rewarded_at() = ToProtoTime(Now());
    ref.set_reward_points(options_.referral_reward_points);
    ref.set_reward_transfer_id(*transfer);
    RETURN_IF_ERROR(store_.Run("referrals.complete", [&](MembershipTx& tx) { return tx.CompleteReferral(ref); }));
    ++granted;
  }
  return granted;
}

// ---- background: segment materialisation ------------------------------------------

namespace {

// Saved segments read per statement while loading them all for a chunk.
constexpr int kSegmentLoadPage = 500;

absl::StatusOr<std::vector<v1::Segment>> LoadAllSegments(MembershipTx& tx) {
  std::vector<v1::Segment> all;
  std::string after;
  while (true) {
    ASSIGN_OR_RETURN(std::vector<v1::Segment> page, tx.ListSegments(after, kSegmentLoadPage));
    const bool more = static_cast<int>(page.size()) == kSegmentLoadPage;
    if (!page.empty()) after = page.back().segment_id();
    for (v1::Segment& seg : page) all.push_back(std::move(seg));
    if (!more) return all;
  }
}

// One refresh chunk's outcome; written only by the (retried) body.
struct RefreshChunk {
  int64_t pass = 0;
  bool pass_over = false;  // the pass this caller joined ended before this chunk
  bool pass_completed = false;
  SegmentChanges changes;
  int64_t examined = 0;
};

}  // namespace

absl::StatusOr<SegmentRefreshResult> Membership::RefreshSegments(int max_chunks) {
  if (max_chunks < 1) return absl::InvalidArgumentError("max_chunks: at least 1");
  const int chunk_members = options_.segment_refresh_chunk_members;
  if (chunk_members < 1) return absl::InvalidArgumentError("segment_refresh_chunk_members: at least 1");
  SegmentRefreshResult result;
  while (result.chunks < max_chunks && !result.pass_completed) {
    RefreshChunk chunk;
    RETURN_IF_ERROR(store_.Run("segments.refresh", [&](MembershipTx& tx) -> absl::Status {
      chunk = RefreshChunk{};
      const absl::Time now = Now();
      // The lock comes first: every read below sees the chunks committed
      // before it, by this replica or another.
      ASSIGN_OR_RETURN(SegmentRefreshCursor cursor, tx.LockSegmentRefresh());
      chunk.pass = cursor.pass + 1;
      if (result.pass != 0 && chunk.pass != result.pass) {
        chunk.pass_over = true;
        return absl::OkStatus();
      }
      if (cursor.after_member_id.empty()) RETURN_IF_ERROR(tx.BeginSegmentPass(now));
      ASSIGN_OR_RETURN(std::vector<v1::Segment> segments, LoadAllSegments(tx));
      const std::string after = cursor.after_member_id;
      ASSIGN_OR_RETURN(std::vector<SegmentCandidate> members, tx.ScanMembers(after, chunk_members));
      chunk.examined = static_cast<int64_t>(members.size());
      if (!members.empty()) {
        const std::string& last = members.back().member_id;
        GrantedByMember granted;
        if (NeedsConsents(segments)) {
          ASSIGN_OR_RETURN(std::vector<GrantedChannel> channels, tx.GrantedChannelsInRange(after, last));
          granted = GroupGrantedChannels(channels);
        }
        ASSIGN_OR_RETURN(std::vector<SegmentMembership> stored, tx.SegmentMembersInRange(after, last));
        chunk.changes = DiffSegmentMembers(segments, members, granted, stored);
        for (const SegmentMembership& row : chunk.changes.removed) RETURN_IF_ERROR(tx.RemoveSegmentMember(row));
        for (const SegmentMembership& row : chunk.changes.added) RETURN_IF_ERROR(tx.AddSegmentMember(row, now));
        RETURN_IF_ERROR(tx.BumpSnapshotVersions(chunk.changes.changed_member_ids));
        cursor.after_member_id = last;
      }
      // A short range means the table ended: the pass ends with this chunk.
      if (static_cast<int>(members.size()) < chunk_members) {
        RETURN_IF_ERROR(tx.CompleteSegmentPass(now));
        cursor.pass += 1;
        cursor.after_member_id.clear();
        chunk.pass_completed = true;
      }
      return tx.SetSegmentRefresh(cursor, now);
    }));
    if (chunk.pass_over) {
      result.pass_completed = true;
      break;
    }
    result.pass = chunk.pass;
    result.pass_completed = chunk.pass_completed;
    ++result.chunks;
    result.members_examined += chunk.examined;
    result.rows_added += static_cast<int64_t>(chunk.changes.added.size());
    result.rows_removed += static_cast<int64_t>(chunk.changes.removed.size());
    result.members_changed += static_cast<int64_t>(chunk.changes.changed_member_ids.size());
  }
  return result;
}

}  // namespace loyalty::membership
