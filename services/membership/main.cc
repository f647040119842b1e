// loyalty-membership: wiring only. See common/server/service_main.h.
#include <memory>
#include <vector>

#include "common/server/service_main.h"
#include "services/membership/membership_service.h"

namespace loyalty::membership {
const std::vector<db::MigrationFile>& Migrations();

namespace {

class Instance final : public server::ServiceInstance {
 public:
  std::vector<grpc::Service*> services() override { return {&service_}; }

 private:
  MembershipService service_;
};

}  // namespace
}  // namespace loyalty::membership

int main(int argc, char** argv) {
  using namespace loyalty;
  return server::ServiceMain(argc, argv, {
      .name = "membership",
      .grpc_service_name = membership::v1::MembershipService::service_full_name(),
      .default_port = 7101,
      .migrations = &membership::Migrations(),
      .extra_flags = {},
      .build = [](const server::ServiceContext&) -> absl::StatusOr<server::ServiceInstancePtr> {
        return std::make_unique<membership::Instance>();
      },
  });
}
