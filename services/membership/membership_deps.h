#pragma once
// What every membership use case shares: the store, the ledger client, the
// options and the clock. One MembershipDeps is built by the Membership
// aggregate (membership.h) and handed by reference to each use-case class.
//
// Thread-safety: immutable after construction; the store and the ledger
// client are thread-safe, so use cases may run on any number of threads.

#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "services/membership/ledger_client.h"
#include "services/membership/membership_store.h"
#include "services/membership/segments.h"

namespace loyalty::membership {

struct MembershipOptions {
  std::vector<std::string> supported_languages = {"en", "de", "fr", "it", "nl", "es", "de-AT", "de-CH", "fr-CH", "en-GB"};
  // Terms and privacy notice versions members may accept.
  std::vector<std::string> terms_versions = {"2025-01"};
  std::vector<std::string> privacy_versions = {"2025-01"};
  // Points granted to a referrer when the referred member first earns.
  int64_t referral_reward_points = 500;
  // Members per segment refresh transaction (tests make it small).
  int segment_refresh_chunk_members = kSegmentRefreshChunkMembers;
  std::function<absl::Time()> now = [] { return absl::Now(); };
};

struct MembershipDeps {
  MembershipStore& store;
  LedgerClient& ledger;
  MembershipOptions options;

  // options.now(), truncated to the microsecond the database stores.
  absl::Time Now() const;
};

}  // namespace loyalty::membership
