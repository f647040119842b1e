#pragma once
// Helpers shared by several of membership's use-case classes (members.h,
// consents.h, referrals.h, tier_admin.h, segment_admin.h, privacy.h): the
// idempotent Mutate wrapper, partner visibility and redaction, the audit
// trail, consent writes, and saving a changed member. Domain code: no gRPC
// or MySQL includes.
//
// Mutate: every mutation is idempotent by key (scoped to the calling
// credential). The request is fingerprinted, its answer (a business failure
// included) is stored in the same transaction as its effects, and a retry
// gets the same answer. INVALID_ARGUMENT, PERMISSION_DENIED and
// UNAUTHENTICATED are not stored, so a caller can correct the request and
// reuse the key. A stored record names the member it concerns, so that an
// erasure can wipe the stored copy; a retry after that is
// FAILED_PRECONDITION.
//
// Partner visibility (membership.proto): a partner sees a member that
// enrolled with it or granted it data sharing; any other member is NOT_FOUND,
// with the same message as a member that does not exist. Partners never see
// birth date, status reason, referrer or erasure time (named in
// redacted_fields).
//
// Thread-safety: stateless functions; each runs inside the caller's
// transaction (MembershipTx) or opens its own through the store.

#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/auth/principal.h"
#include "common/idempotency/idempotency.h"
#include "google/protobuf/message.h"
#include "loyalty/membership/v1/membership.pb.h"
#include "services/membership/membership_deps.h"
#include "services/membership/membership_store.h"

namespace loyalty::membership {

// Status payload (and gRPC trailing metadata) carrying the id of the member
// that already holds an email or phone.
inline constexpr absl::string_view kExistingMemberIdKey = "loyalty-existing-member-id";

// ---- the idempotent mutation ----------------------------------------------------

// The body of an idempotent mutation: fills the response and names the
// member it concerns (so an erasure can wipe the stored copy).
template <typename Response>
using MutateBody = std::function<absl::Status(MembershipTx&, Response&, std::string& member_id)>;

// Membership's part of the one idempotency mechanism (idempotency::RunOnce):
// a record names the member it concerns (`member_id`, as the body set it, or
// the member a duplicate email or phone belongs to), and a record wiped by an
// erasure answers FAILED_PRECONDITION. `request` and `member_id` must outlive
// the hooks.
idempotency::RunOnceHooks<IdempotencyRecord> MutateHooks(const google::protobuf::Message& request,
                                                         const std::string& member_id);

template <typename Response>
absl::StatusOr<Response> Mutate(MembershipDeps& deps, const auth::Principal& p, absl::string_view method,
                                const std::string& key, const google::protobuf::Message& request,
                                MutateBody<Response> body) {
  std::string member_id;  // the member the call concerns, as the body names it
  const std::function<absl::Status(MembershipTx&, Response&)> run = [&](MembershipTx& tx, Response& response) {
    member_id.clear();
    return body(tx, response, member_id);
  };
  return idempotency::RunOnce<MembershipTx, IdempotencyRecord>(deps.store, method, p.idempotency_scope(), key,
                                                               request, run,
                                                               MutateHooks(request, member_id));
}

// ---- members and visibility --------------------------------------------------------

absl::Status MemberNotFound();

// NOT_FOUND unless the principal may see the member. Erased members are
// invisible to partners.
absl::Status CheckVisible(MembershipTx& tx, const auth::Principal& p, const v1::Member& m);

// Loads a member the principal may see.
absl::StatusOr<v1::Member> LoadVisible(MembershipTx& tx, const auth::Principal& p, const std::string& member_id,
                                       bool for_update);

// FAILED_PRECONDITION for a closed member.
absl::Status CheckNotClosed(const v1::Member& m);

// The member as this principal may see it, with tier display fields.
v1::Member Present(const auth::Principal& p, v1::Member m, const v1::TierLadder& ladder);

// Writes a changed member: version and updated_at move, the feed version too
// when a snapshot field changed.
absl::Status SaveMember(MembershipTx& tx, const v1::Member& before, v1::Member& after, absl::Time now);

// ---- the audit trail ---------------------------------------------------------------

// An audit event of `method` by `p` on an entity, at `now`.
common::v1::AuditEvent AuditOf(const auth::Principal& p, absl::string_view method, absl::string_view entity_type,
                               const std::string& entity_id, absl::Time now);

// Records a change with its before and after images (either may be null).
absl::Status AuditChange(MembershipTx& tx, const auth::Principal& p, absl::string_view method,
                         absl::string_view entity_type, const std::string& entity_id, const std::string& member_id,
                         const google::protobuf::Message* before, const google::protobuf::Message* after,
                         const std::string& key, const std::string& reason, absl::Time now);

// ---- consents (written at enrolment and by UpdateConsents) ---------------------------

absl::Status ValidateConsentInputs(absl::string_view prefix,
                                   const google::protobuf::RepeatedPtrField<v1::ChannelConsent>& channels,
                                   const google::protobuf::RepeatedPtrField<v1::DataSharingConsent>& sharing);

// INVALID_ARGUMENT unless `version` is one of `known`.
absl::Status RequireKnownVersion(absl::string_view field, const std::string& version,
                                 const std::vector<std::string>& known);

// Writes consent changes and their history events.
absl::Status ApplyConsents(MembershipTx& tx, const auth::Principal& p, const std::string& member_id,
                           const google::protobuf::RepeatedPtrField<v1::ChannelConsent>& channels,
                           const google::protobuf::RepeatedPtrField<v1::DataSharingConsent>& sharing,
                           v1::ConsentSource source, absl::Time now);

// Records the acceptance of a terms or privacy document version.
absl::Status RecordDocument(MembershipTx& tx, const auth::Principal& p, const std::string& member_id,
                            v1::ConsentEventKind kind, const std::string& version, v1::ConsentSource source,
                            absl::Time now);

}  // namespace loyalty::membership
