#pragma once
// LedgerClient over LedgerService, with a service credential and deadlines.

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "services/settlement/ledger_client.h"

namespace loyalty::settlement {

struct GrpcLedgerClientOptions {
  std::string api_key;  // service credential; secret, never logged
  absl::Duration deadline = absl::Seconds(30);
};

LedgerClientPtr NewGrpcLedgerClient(std::shared_ptr<grpc::Channel> channel, GrpcLedgerClientOptions options);

}  // namespace loyalty::settlement
