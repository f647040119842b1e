// loyalty-catalog: wiring only. See common/server/service_main.h.
#include <memory>
#include <vector>

#include "common/server/service_main.h"
#include "services/catalog/catalog_service.h"

namespace loyalty::catalog {
const std::vector<db::MigrationFile>& Migrations();

namespace {

class Instance final : public server::ServiceInstance {
 public:
  std::vector<grpc::Service*> services() override { return {&service_}; }

 private:
  CatalogService service_;
};

}  // namespace
}  // namespace loyalty::catalog

int main(int argc, char** argv) {
  using namespace loyalty;
  return server::ServiceMain(argc, argv, {
      .name = "catalog",
      .grpc_service_name = catalog::v1::CatalogService::service_full_name(),
      .default_port = 7104,
      .migrations = &catalog::Migrations(),
      .extra_flags = {},
      .build = [](const server::ServiceContext&) -> absl::StatusOr<server::ServiceInstancePtr> {
        return std::make_unique<catalog::Instance>();
      },
  });
}
