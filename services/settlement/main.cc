// loyalty-settlement: wiring only. See common/server/service_main.h.
#include <memory>
#include <vector>

#include "common/server/service_main.h"
#include "services/settlement/settlement_service.h"

namespace loyalty::settlement {
const std::vector<db::MigrationFile>& Migrations();

namespace {

class Instance final : public server::ServiceInstance {
 public:
  std::vector<grpc::Service*> services() override { return {&service_}; }

 private:
  SettlementService service_;
};

}  // namespace
}  // namespace loyalty::settlement

int main(int argc, char** argv) {
  using namespace loyalty;
  return server::ServiceMain(argc, argv, {
      .name = "settlement",
      .grpc_service_name = settlement::v1::SettlementService::service_full_name(),
      .default_port = 7103,
      .migrations = &settlement::Migrations(),
      .extra_flags = {},
      .build = [](const server::ServiceContext&) -> absl::StatusOr<server::ServiceInstancePtr> {
        return std::make_unique<settlement::Instance>();
      },
  });
}
