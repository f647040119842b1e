#pragma once
// The ledger journal consumer: membership's background work driven by the
// ledger's journal (main.cc runs it in a loop). It records member activity
// (earn, redeem), marks a referral reward due on the referred member's first
// earn, and grants due referral rewards through the ledger. Domain code: no
// gRPC or MySQL includes.
//
// Invariants:
// - The journal cursor is durable and advanced in the same transaction as
//   the page's effects; a page another replica applied first is skipped.
// - A referral reward is granted under the key "referral:<referral_id>", so
//   a grant is made at most once. The referral is marked attempted before
//   the ledger is asked; from then on only the ledger's answer under that
//   key settles it (REWARDED, or VOID for a closed referrer the ledger
//   refuses), never a guess (ADR 0009).
//
// Thread-safety: no state of its own; safe from any number of threads and
// replicas.

#include "absl/status/statusor.h"
#include "services/membership/membership_deps.h"

namespace loyalty::membership {

class JournalConsumer {
 public:
  explicit JournalConsumer(MembershipDeps& deps) : deps_(deps) {}

  // One pass of the ledger journal consumer: reads the page after the durable
  // cursor, records member activity (earn, redeem) and marks referral rewards
  // due on a referred member's first earn, and advances the cursor, all in
  // one transaction. Returns the number of transfers consumed.
  absl::StatusOr<int> ConsumeLedgerJournal(int page_size);
  // Grants due referral rewards through the ledger, idempotently (key
  // "referral:<referral_id>"), at most `max` per call. Returns how many were
  // granted.
  absl::StatusOr<int> GrantReferralRewards(int max);

 private:
  MembershipDeps& deps_;
};

}  // namespace loyalty::membership
