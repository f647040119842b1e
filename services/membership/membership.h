#pragma once
// Membership's use cases, as the gRPC adapter and main.cc reach them: a thin
// aggregate that builds the shared dependencies (MembershipDeps) once and
// one object per use-case group, and exposes each. Domain code: no gRPC or
// MySQL includes; storage goes through MembershipStore, the ledger through
// LedgerClient.
//
//   members()          enrol, read, look up, update, status, cards, snapshot feed
//   consents()         consents and accepted documents
//   referrals()        referral code and referrals made
//   tier_admin()       tier ladder, evaluation, paid tiers, tier history
//   segment_admin()    saved segments and segment queries
//   privacy()          export, erasure, audit log
//   journal_consumer() background: the ledger journal and referral rewards
//   segment_refresh()  background: materialising saved segments
//
// Rules every group keeps (membership_shared.h): mutations are idempotent by
// key, partners see only members visible to them, redacted, and backoffice
// reads of personal data are audited.
//
// Thread-safety: immutable after construction; every group is safe from any
// number of threads. Not copyable or movable (the groups refer to deps_).

#include "services/membership/consents.h"
#include "services/membership/journal_consumer.h"
#include "services/membership/ledger_client.h"
#include "services/membership/members.h"
#include "services/membership/membership_deps.h"
#include "services/membership/membership_shared.h"
#include "services/membership/membership_store.h"
#include "services/membership/privacy.h"
#include "services/membership/referrals.h"
#include "services/membership/segment_admin.h"
#include "services/membership/segment_refresh.h"
#include "services/membership/tier_admin.h"

namespace loyalty::membership {

class Membership {
 public:
  Membership(MembershipStore& store, LedgerClient& ledger, MembershipOptions options = {})
      : deps_{store, ledger, std::move(options)} {}
  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

  Members& members() { return members_; }
  Consents& consents() { return consents_; }
  Referrals& referrals() { return referrals_; }
  TierAdmin& tier_admin() { return tier_admin_; }
  SegmentAdmin& segment_admin() { return segment_admin_; }
  Privacy& privacy() { return privacy_; }
  JournalConsumer& journal_consumer() { return journal_consumer_; }
  SegmentRefresh& segment_refresh() { return segment_refresh_; }

 private:
  MembershipDeps deps_;  // first: every group below refers to it
  Members members_{deps_};
  Consents consents_{deps_};
  Referrals referrals_{deps_};
  TierAdmin tier_admin_{deps_};
  SegmentAdmin segment_admin_{deps_};
  Privacy privacy_{deps_};
  JournalConsumer journal_consumer_{deps_};
  SegmentRefresh segment_refresh_{deps_};
};

}  // namespace loyalty::membership
