#pragma once
// The gRPC adapter of the ledger service.
//
// The ledger RPCs are not built yet: every one answers UNIMPLEMENTED (the
// generated base class's default), which is the honest answer until its
// issue lands. Health and reflection are served by the shared bootstrap.

#include "loyalty/ledger/v1/ledger.grpc.pb.h"

namespace loyalty::ledger {

class LedgerService final : public v1::LedgerService::Service {};

}  // namespace loyalty::ledger
