#pragma once
// The gRPC adapter of the membership service.
//
// The membership RPCs are not built yet: every one answers UNIMPLEMENTED (the
// generated base class's default), which is the honest answer until its
// issue lands. Health and reflection are served by the shared bootstrap.

#include "loyalty/membership/v1/membership.grpc.pb.h"

namespace loyalty::membership {

class MembershipService final : public v1::MembershipService::Service {};

}  // namespace loyalty::membership
