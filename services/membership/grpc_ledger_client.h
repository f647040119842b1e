#pragma once
// LedgerClient over LedgerService, with a service credential and deadlines.

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "common/rpc/client_call.h"
#include "grpcpp/channel.h"
#include "services/membership/ledger_client.h"

namespace loyalty::membership {

std::unique_ptr<LedgerClient> NewGrpcLedgerClient(std::shared_ptr<grpc::Channel> channel,
                                                  rpc::CallOptions options);

}  // namespace loyalty::membership
