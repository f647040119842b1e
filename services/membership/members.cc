#include "services/membership/members.h"

#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "common/paging/page_token.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "common/validation/enums.h"
#include "common/validation/text.h"
#include "services/membership/codes.h"
#include "services/membership/membership_shared.h"
#include "services/membership/tiers.h"
#include "services/membership/validation.h"

namespace loyalty::membership {
namespace {

constexpr int kMaxCardDraws = 5;

// Backoffice reads of personal data are audited (partners' reads are scoped
// by consent instead).
absl::Status AuditRead(MembershipTx& tx, const auth::Principal& p, absl::string_view method,
                       const std::string& member_id, absl::Time now) {
  if (!p.is_backoffice()) return absl::OkStatus();
  return tx.InsertAudit(member_id, AuditOf(p, method, "member", member_id, now));
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

// An enrolment's inputs, validated and normalised.
struct EnrolInput {
  std::string given_name;
  std::string family_name;
  std::string email;
  std::string phone;
  std::string language;
  std::string referral_code;
};

absl::StatusOr<EnrolInput> ValidateEnrol(const auth::Principal& p, const v1::EnrolRequest& r,
                                         const MembershipOptions& options, absl::Time now) {
  EnrolInput in;
  ASSIGN_OR_RETURN(in.given_name, NormaliseText("given_name", r.given_name(), 1, kMaxNameChars));
  ASSIGN_OR_RETURN(in.family_name, NormaliseText("family_name", r.family_name(), 0, kMaxNameChars));
  if (r.email().empty() && r.phone().empty()) {
    return absl::InvalidArgumentError("email: email or phone is required");
  }
  if (!r.email().empty()) {
    ASSIGN_OR_RETURN(in.email, NormaliseEmail("email", r.email()));
  }
  if (!r.phone_region().empty()) {
    RETURN_IF_ERROR(ValidateCountryCode("phone_region", absl::AsciiStrToUpper(r.phone_region())));
  }
  if (!r.phone().empty()) {
    ASSIGN_OR_RETURN(in.phone, NormalisePhone("phone", r.phone(), r.phone_region()));
  }
  if (r.has_birth_date()) RETURN_IF_ERROR(ValidateBirthDate("birth_date", r.birth_date(), now));
  ASSIGN_OR_RETURN(in.language,
                   NormaliseLanguage("preferred_language", r.preferred_language(), options.supported_languages));
  RETURN_IF_ERROR(ValidateId("enrolling_partner_id", r.enrolling_partner_id()));
  if (p.is_partner() && r.enrolling_partner_id() != p.partner_id) {
    return absl::PermissionDeniedError("enrolling_partner_id: a partner enrols members for itself only");
  }
  RETURN_IF_ERROR(ValidateConsentInputs("", r.channel_consents(), r.data_sharing()));
  RETURN_IF_ERROR(RequireKnownVersion("terms_version", r.terms_version(), options.terms_versions));
  RETURN_IF_ERROR(RequireKnownVersion("privacy_version", r.privacy_version(), options.privacy_versions));
  if (!r.referral_code().empty()) {
    ASSIGN_OR_RETURN(in.referral_code, NormaliseReferralCode("referral_code", r.referral_code()));
  }
  return in;
}

// The member a referral code names; INVALID_ARGUMENT when unknown or closed.
absl::StatusOr<std::optional<v1::Member>> FindReferrer(MembershipTx& tx, const std::string& referral_code) {
  std::optional<v1::Member> referrer;
  if (referral_code.empty()) return referrer;
  ASSIGN_OR_RETURN(std::optional<std::string> referrer_id, tx.FindMemberIdByReferralCode(referral_code));
  if (referrer_id.has_value()) {
    ASSIGN_OR_RETURN(referrer, tx.GetMember(*referrer_id, false));
  }
  if (!referrer.has_value() || referrer->status() == v1::MEMBER_STATUS_CLOSED) {
    return absl::InvalidArgumentError("referral_code: unknown or no longer valid");
  }
  return referrer;
}

// The new member row (its id is drawn before its referral code).
absl::StatusOr<v1::Member> NewMember(MembershipTx& tx, const v1::EnrolRequest& r, const EnrolInput& in,
                                     const v1::TierLadder& ladder, const std::optional<v1::Member>& referrer,
                                     absl::Time now) {
  v1::Member m;
  m.set_member_id(NewMemberId());
  m.set_status(v1::MEMBER_STATUS_ACTIVE);
  m.set_given_name(in.given_name);
  m.set_family_name(in.family_name);
  m.set_email(in.email);
  m.set_phone(in.phone);
  if (r.has_birth_date()) *m.mutable_birth_date() = r.birth_date();
  m.set_preferred_language(in.language);
  m.set_enrolling_partner_id(r.enrolling_partner_id());
  *m.mutable_tier() = InitialTier(ladder, now);
  ASSIGN_OR_RETURN(std::string own_code, DrawReferralCode(tx));
  m.set_referral_code(own_code);
  if (referrer.has_value()) m.set_referred_by_member_id(referrer->member_id());
  *m.mutable_created_at() = ToProtoTime(now);
  *m.mutable_updated_at() = ToProtoTime(now);
  m.set_version(1);
  return m;
}

// The terms and privacy versions accepted at enrolment.
v1::Consents AcceptedDocuments(const v1::EnrolRequest& r, absl::Time now) {
  v1::Consents docs;
  docs.set_terms_version(r.terms_version());
  *docs.mutable_terms_accepted_at() = ToProtoTime(now);
  docs.set_privacy_version(r.privacy_version());
  *docs.mutable_privacy_accepted_at() = ToProtoTime(now);
  return docs;
}

// Consents, documents, the initial tier change and the referral of a member
// just inserted.
absl::Status RecordEnrolment(MembershipTx& tx, const auth::Principal& p, const v1::EnrolRequest& r,
                             const v1::Member& m, const std::optional<v1::Member>& referrer,
                             const std::string& referral_code, absl::Time now) {
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
  return absl::OkStatus();
}

}  // namespace

// ---- enrolment -----------------------------------------------------------------

absl::StatusOr<v1::EnrolResponse> Members::Enrol(const Principal& p, const v1::EnrolRequest& r) {
  const absl::Time now = deps_.Now();
  ASSIGN_OR_RETURN(EnrolInput in, ValidateEnrol(p, r, deps_.options, now));
  return Mutate<v1::EnrolResponse>(deps_, p, "Enrol", r.idempotency_key(), r,
      [&](MembershipTx& tx, v1::EnrolResponse& out, std::string& member_id) -> absl::Status {
        RETURN_IF_ERROR(CheckContactFree(tx, LookupKind::kEmail, "email", in.email, ""));
        RETURN_IF_ERROR(CheckContactFree(tx, LookupKind::kPhone, "phone", in.phone, ""));
        ASSIGN_OR_RETURN(std::optional<v1::Member> referrer, FindReferrer(tx, in.referral_code));
        ASSIGN_OR_RETURN(v1::TierLadder ladder, tx.GetLadder(false));
        ASSIGN_OR_RETURN(v1::Member m, NewMember(tx, r, in, ladder, referrer, now));
        member_id = m.member_id();
        RETURN_IF_ERROR(tx.InsertMember(m, AcceptedDocuments(r, now)));
        ASSIGN_OR_RETURN(v1::Card card, DrawCard(tx, m.member_id(), now));
        RETURN_IF_ERROR(RecordEnrolment(tx, p, r, m, referrer, in.referral_code, now));
        RETURN_IF_ERROR(AuditChange(tx, p, "Enrol", "member", m.member_id(), m.member_id(), nullptr, &m,
                                    r.idempotency_key(), "", now));
        *out.mutable_member() = Present(p, m, ladder);
        *out.mutable_card() = card;
        return absl::OkStatus();
      });
}

// ---- reading and looking up --------------------------------------------------------

absl::StatusOr<v1::GetMemberResponse> Members::GetMember(const Principal& p, const v1::GetMemberRequest& r) {
  RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  v1::GetMemberResponse out;
  RETURN_IF_ERROR(deps_.store.Run("GetMember", [&](MembershipTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(v1::Member m, LoadVisible(tx, p, r.member_id(), false));
    ASSIGN_OR_RETURN(v1::TierLadder ladder, tx.GetLadder(false));
    ASSIGN_OR_RETURN(std::vector<v1::Card> cards, tx.ListCards(m.member_id()));
    for (v1::Card& c : cards) {
      if (p.is_partner() && c.state() != v1::CARD_STATE_ACTIVE) continue;
      *out.add_cards() = std::move(c);
    }
    *out.mutable_member() = Present(p, std::move(m), ladder);
    return AuditRead(tx, p, "GetMember", r.member_id(), deps_.Now());
  }));
  return out;
}

absl::StatusOr<v1::LookupMemberResponse> Members::LookupMember(const Principal& p,
                                                               const v1::LookupMemberRequest& r) {
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
  RETURN_IF_ERROR(deps_.store.Run("LookupMember", [&](MembershipTx& tx) -> absl::Status {
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
    return AuditRead(tx, p, "LookupMember", member_id, deps_.Now());
  }));
  return out;
}
// ---- changes -------------------------------------------------------------------------

absl::StatusOr<v1::UpdateMemberResponse> Members::UpdateMember(const Principal& p,
                                                               const v1::UpdateMemberRequest& r) {
  RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  if (r.update_mask().paths().empty()) return absl::InvalidArgumentError("update_mask: name at least one field");
  if (r.expected_version() < 0) return absl::InvalidArgumentError("expected_version: must not be negative");
  const absl::Time now = deps_.Now();
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
                                         deps_.options.supported_languages));
    } else {
      return absl::InvalidArgumentError(absl::StrCat("update_mask: \"", path, "\" cannot be updated"));
    }
  }
  return Mutate<v1::UpdateMemberResponse>(deps_, p, "UpdateMember", r.idempotency_key(), r,
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

absl::StatusOr<v1::SetMemberStatusResponse> Members::SetMemberStatus(const Principal& p,
                                                                     const v1::SetMemberStatusRequest& r) {
  RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  if (r.status() == v1::MEMBER_STATUS_UNSPECIFIED || !v1::MemberStatus_IsValid(r.status())) {
    return absl::InvalidArgumentError("status: ACTIVE, SUSPENDED or CLOSED");
  }
  ASSIGN_OR_RETURN(std::string reason, NormaliseText("reason", r.reason(), 1, kMaxReasonChars));
  const absl::Time now = deps_.Now();
  return Mutate<v1::SetMemberStatusResponse>(deps_, p, "SetMemberStatus", r.idempotency_key(), r,
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
// ---- cards ---------------------------------------------------------------------------

absl::StatusOr<v1::IssueCardResponse> Members::IssueCard(const Principal& p, const v1::IssueCardRequest& r) {
  RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  std::string replaces;
  if (!r.replaces_card_number().empty()) {
    ASSIGN_OR_RETURN(replaces, NormaliseCardNumber("replaces_card_number", r.replaces_card_number()));
  }
  ASSIGN_OR_RETURN(std::string reason, NormaliseText("reason", r.reason(), 0, kMaxReasonChars));
  const absl::Time now = deps_.Now();
  return Mutate<v1::IssueCardResponse>(deps_, p, "IssueCard", r.idempotency_key(), r,
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

absl::StatusOr<v1::BlockCardResponse> Members::BlockCard(const Principal& p, const v1::BlockCardRequest& r) {
  ASSIGN_OR_RETURN(std::string number, NormaliseCardNumber("card_number", r.card_number()));
  RETURN_IF_ERROR(ValidateEnum("block_reason", r.block_reason(), v1::CardBlockReason_IsValid, /*required=*/true));
  ASSIGN_OR_RETURN(std::string note, NormaliseText("note", r.note(), 0, kMaxReasonChars));
  const absl::Time now = deps_.Now();
  return Mutate<v1::BlockCardResponse>(deps_, p, "BlockCard", r.idempotency_key(), r,
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
// ---- the snapshot feed ----------------------------------------------------------------

absl::StatusOr<v1::ListMemberSnapshotsResponse> Members::ListMemberSnapshots(
    const Principal& /*p*/, const v1::ListMemberSnapshotsRequest& r) {
  if (r.after_version() < 0) return absl::InvalidArgumentError("after_version: must be >= 0");
  ASSIGN_OR_RETURN(int size, paging::PageSize(r.page_size(), 1000, 5000));
  v1::ListMemberSnapshotsResponse out;
  RETURN_IF_ERROR(deps_.store.Run("ListMemberSnapshots", [&](MembershipTx& tx) -> absl::Status {
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

absl::StatusOr<v1::GetMemberSnapshotResponse> Members::GetMemberSnapshot(
    const Principal& /*p*/, const v1::GetMemberSnapshotRequest& r) {
  RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  v1::GetMemberSnapshotResponse out;
  RETURN_IF_ERROR(deps_.store.Run("GetMemberSnapshot", [&](MembershipTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(std::optional<v1::MemberSnapshot> snapshot, tx.GetSnapshot(r.member_id()));
    if (!snapshot.has_value()) return absl::NotFoundError("member_id: membership never issued this id");
    *out.mutable_snapshot() = *std::move(snapshot);
    return absl::OkStatus();
  }));
  return out;
}
}  // namespace loyalty::membership
