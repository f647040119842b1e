#pragma once
// The gRPC adapter of the catalog service.
//
// The catalog RPCs are not built yet: every one answers UNIMPLEMENTED (the
// generated base class's default), which is the honest answer until its
// issue lands. Health and reflection are served by the shared bootstrap.

#include "loyalty/catalog/v1/catalog.grpc.pb.h"

namespace loyalty::catalog {

class CatalogService final : public v1::CatalogService::Service {};

}  // namespace loyalty::catalog
