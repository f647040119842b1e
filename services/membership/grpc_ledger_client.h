#pragma once
// LedgerClient over LedgerService, with a service credential and deadlines.

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "services/membership/ledger_client.h"

namespace loyalty::membership {

struct GrpcLedgerClientOptions {
  std::string api_key;  // service credential; secret, never logged
  absl::Duration deadline = absl::Seconds(5);
};

std::unique_ptr<LedgerClient> NewGrpcLedgerClient(std::shared_ptr<grpc::Channel> channel,
                                                  GrpcLedgerClientOptions options);

}  // namespace loyalty::membership
