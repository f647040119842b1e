#include "services/membership/journal_consumer.h"

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"

namespace loyalty::membership {
namespace {
constexpr absl::string_view kJournalCursor = "ledger_journal";
}  // namespace

absl::StatusOr<int> JournalConsumer::ConsumeLedgerJournal(int page_size) {
  int64_t after = 0;
  RETURN_IF_ERROR(deps_.store.Run("journal.cursor", [&](MembershipTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(after, tx.LockCursor(std::string(kJournalCursor)));
    return absl::OkStatus();
  }));
  ASSIGN_OR_RETURN(JournalPage page, deps_.ledger.ReadJournal(after, page_size));
  if (page.transfers.empty()) return 0;
  int applied = 0;
  RETURN_IF_ERROR(deps_.store.Run("journal.apply", [&](MembershipTx& tx) -> absl::Status {
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
    return tx.SetCursor(std::string(kJournalCursor), page.last_sequence, deps_.Now());
  }));
  return applied;
}

absl::StatusOr<int> JournalConsumer::GrantReferralRewards(int max) {
  std::vector<v1::Referral> due;
  RETURN_IF_ERROR(deps_.store.Run("referrals.due", [&](MembershipTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(due, tx.ListDueReferrals(max));
    return absl::OkStatus();
  }));
  int granted = 0;
  for (v1::Referral& ref : due) {
    // A closed referrer is never rewarded.
    std::optional<v1::Member> referrer;
    RETURN_IF_ERROR(deps_.store.Run("referrals.referrer", [&](MembershipTx& tx) -> absl::Status {
      ASSIGN_OR_RETURN(referrer, tx.GetMember(ref.referrer_member_id(), false));
      return absl::OkStatus();
    }));
    bool attempted = false;
    RETURN_IF_ERROR(deps_.store.Run("referrals.attempted", [&](MembershipTx& tx) -> absl::Status {
      ASSIGN_OR_RETURN(attempted, tx.ReferralRewardAttempted(ref.referral_id()));
      return absl::OkStatus();
    }));
    const bool closed = !referrer.has_value() || referrer->status() == v1::MEMBER_STATUS_CLOSED;
    if (closed && !attempted) {
      // The ledger was never asked: nothing can land, so it is void.
      ref.set_state(v1::REFERRAL_STATE_VOID);
      RETURN_IF_ERROR(deps_.store.Run("referrals.void", [&](MembershipTx& tx) { return tx.CompleteReferral(ref); }));
      continue;
    }
    if (!attempted) {
      // Committed before the ledger is asked: from now on only the ledger's
      // answer under the reward's key settles this referral.
      RETURN_IF_ERROR(deps_.store.Run("referrals.attempt", [&](MembershipTx& tx) {
        return tx.MarkReferralRewardAttempted(ref.referral_id());
      }));
    }
    // For a closed referrer, the same key fences a grant still in flight:
    // the ledger answers the grant it made, or refuses a new one.
    absl::StatusOr<std::string> transfer = deps_.ledger.GrantBonus(
        absl::StrCat("referral:", ref.referral_id()), ref.referrer_member_id(), deps_.options.referral_reward_points,
        ledger::v1::BONUS_KIND_REFERRAL, "referral reward: referred member's first earn", ref.referral_id());
    if (closed && (absl::IsFailedPrecondition(transfer.status()) || absl::IsNotFound(transfer.status()))) {
      ref.set_state(v1::REFERRAL_STATE_VOID);
      RETURN_IF_ERROR(deps_.store.Run("referrals.void", [&](MembershipTx& tx) { return tx.CompleteReferral(ref); }));
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
    *ref.mutable_rewarded_at() = ToProtoTime(deps_.Now());
    ref.set_reward_points(deps_.options.referral_reward_points);
    ref.set_reward_transfer_id(*transfer);
    RETURN_IF_ERROR(deps_.store.Run("referrals.complete", [&](MembershipTx& tx) { return tx.CompleteReferral(ref); }));
    ++granted;
  }
  return granted;
}
}  // namespace loyalty::membership
