#pragma once
// LedgerClient over LedgerService and MemberDirectory over
// MembershipService, with a service credential and deadlines.

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "services/catalog/ledger_client.h"

namespace loyalty::catalog {

struct GrpcClientOptions {
  std::string api_key;  // service credential; secret, never logged
  absl::Duration deadline = absl::Seconds(5);
};

std::unique_ptr<LedgerClient> NewGrpcLedgerClient(std::shared_ptr<grpc::Channel> channel, GrpcClientOptions options);

// Reads the member (GetMember) per call and the tier ladder (GetTierLadder),
// cached for `ladder_ttl`. Called only for rewards with a minimum tier.
std::unique_ptr<MemberDirectory> NewGrpcMemberDirectory(std::shared_ptr<grpc::Channel> channel,
                                                        GrpcClientOptions options,
                                                        absl::Duration ladder_ttl = absl::Minutes(1));

// GetPartner per call (backoffice writes only: rewards and campaigns).
std::unique_ptr<PartnerDirectory> NewGrpcPartnerDirectory(std::shared_ptr<grpc::Channel> channel,
                                                          GrpcClientOptions options);

}  // namespace loyalty::catalog
