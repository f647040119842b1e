#pragma once
// LedgerClient over LedgerService, with a service credential and deadlines.

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "common/rpc/client_call.h"
#include "grpcpp/channel.h"
#include "services/settlement/ledger_client.h"

namespace loyalty::settlement {

LedgerClientPtr NewGrpcLedgerClient(std::shared_ptr<grpc::Channel> channel, rpc::CallOptions options);

}  // namespace loyalty::settlement
