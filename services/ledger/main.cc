// loyalty-ledger: wiring only. See common/server/service_main.h.
#include <memory>
#include <vector>

#include "common/server/service_main.h"
#include "services/ledger/ledger_service.h"

namespace loyalty::ledger {
const std::vector<db::MigrationFile>& Migrations();

namespace {

class Instance final : public server::ServiceInstance {
 public:
  std::vector<grpc::Service*> services() override { return {&service_}; }

 private:
  LedgerService service_;
};

}  // namespace
}  // namespace loyalty::ledger

int main(int argc, char** argv) {
  using namespace loyalty;
  return server::ServiceMain(argc, argv, {
      .name = "ledger",
      .grpc_service_name = ledger::v1::LedgerService::service_full_name(),
      .default_port = 7102,
      .migrations = &ledger::Migrations(),
      .extra_flags = {},
      .build = [](const server::ServiceContext&) -> absl::StatusOr<server::ServiceInstancePtr> {
        return std::make_unique<ledger::Instance>();
      },
  });
}
