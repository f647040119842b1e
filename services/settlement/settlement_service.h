#pragma once
// The gRPC adapter of the settlement service.
//
// The settlement RPCs are not built yet: every one answers UNIMPLEMENTED (the
// generated base class's default), which is the honest answer until its
// issue lands. Health and reflection are served by the shared bootstrap.

#include "loyalty/settlement/v1/settlement.grpc.pb.h"

namespace loyalty::settlement {

class SettlementService final : public v1::SettlementService::Service {};

}  // namespace loyalty::settlement
