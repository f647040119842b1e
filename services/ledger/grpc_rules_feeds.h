#pragma once
// RulesFeeds over gRPC: settlement's ListPartnerSnapshots, membership's
// ListMemberSnapshots and catalog's GetActiveEarnRules, called with the
// ledger's service credential. An empty address leaves that feed unset, so
// the part comes from the rules file.

#include <string>

#include "common/rpc/client_call.h"
#include "services/ledger/member_directory.h"
#include "services/ledger/rules_feed.h"

namespace loyalty::ledger {

struct RulesFeedAddresses {
  std::string settlement;
  std::string membership;
  std::string catalog;
  // This ledger, as catalog budget leases name their holder (host:port).
  std::string holder;
};

// `channel_to` opens a channel to an address (ServiceContext::channel_to).
RulesFeeds NewGrpcRulesFeeds(const RulesFeedAddresses& addresses, const rpc::CallOptions& options,
                             const rpc::ChannelFactory& channel_to);

// Membership's GetMemberSnapshot as the MemberDirectory's lookup; empty (ids
// not checked) when there is no membership address.
MemberDirectory::Lookup NewGrpcMemberLookup(const std::string& membership_address, rpc::CallOptions options,
                                            const rpc::ChannelFactory& channel_to);

}  // namespace loyalty::ledger
