#pragma once
// Whether membership issued a member id, checked before the ledger credits a
// member (Earn, GrantBonus, a CREDIT Adjust) or quotes for one (QuoteEarn):
// points never go to a wallet nobody owns, such as a mistyped or made-up id.
// See docs/adr/0006-ledger-earn-rules-cache.md.
//
// With a membership feed, the rules snapshot holds every member membership
// has issued, as of its last poll; such a member costs nothing. A member not
// in it was enrolled since the poll, or never issued: membership is asked
// once (GetMemberSnapshot), and an id it confirms is remembered (the set is
// cleared when it grows past kMaxConfirmedMembers; by then the feed has
// brought them). So the hot path asks no other service in the normal case,
// a member enrolled a moment ago earns at once, and an unknown id is
// NOT_FOUND. Answers "never issued" are not remembered: on a cluster a read
// may lag a moment behind an enrolment on another node.
//
// Without a lookup (no membership feed: the rules file only) ids are not
// checked.
//
// Thread-safe.

#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "services/ledger/earn_rules.h"

namespace loyalty::ledger {

// Members confirmed by a lookup and not yet in the snapshot; beyond this the
// set is cleared (the feed has brought them long since).
inline constexpr size_t kMaxConfirmedMembers = 100'000;

class MemberDirectory {
 public:
  // Asks membership about one id: OK when issued, NOT_FOUND when not, any
  // other status when it cannot tell (UNAVAILABLE...).
  using Lookup = std::function<absl::Status(const std::string& member_id)>;

  // An empty `lookup` checks nothing.
  explicit MemberDirectory(Lookup lookup) : lookup_(std::move(lookup)) {}

  // OK when membership issued `member_id` (the value of request field
  // `field`); NOT_FOUND naming the field when it did not; UNAVAILABLE when
  // membership cannot be asked.
  absl::Status CheckIssued(const RulesSnapshot& rules, absl::string_view field, const std::string& member_id);

  // False when ids are not checked (no lookup).
  bool checks_ids() const { return static_cast<bool>(lookup_); }
  // Lookups made so far (for tests and metrics).
  int64_t lookups() const;

 private:
  const Lookup lookup_;
  mutable absl::Mutex mu_;
  absl::flat_hash_set<std::string> confirmed_ ABSL_GUARDED_BY(mu_);
  int64_t lookups_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace loyalty::ledger
