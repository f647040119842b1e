#pragma once
// LedgerClient over LedgerService and MemberDirectory over
// MembershipService, with a service credential and deadlines.

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "common/rpc/client_call.h"
#include "grpcpp/channel.h"
#include "services/catalog/ledger_client.h"

namespace loyalty::catalog {

std::unique_ptr<LedgerClient> NewGrpcLedgerClient(std::shared_ptr<grpc::Channel> channel, rpc::CallOptions options);

// Reads the member (GetMember) per call and the tier ladder (GetTierLadder),
// cached for `ladder_ttl`. Called only for rewards with a minimum tier.
std::unique_ptr<MemberDirectory> NewGrpcMemberDirectory(std::shared_ptr<grpc::Channel> channel,
                                                        rpc::CallOptions options,
                                                        absl::Duration ladder_ttl = absl::Minutes(1));

// GetPartner per call (backoffice writes only: rewards and campaigns).
std::unique_ptr<PartnerDirectory> NewGrpcPartnerDirectory(std::shared_ptr<grpc::Channel> channel,
                                                          rpc::CallOptions options);

}  // namespace loyalty::catalog
