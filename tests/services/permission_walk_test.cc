// The permission table, walked: every RPC of every service is called with a
// key of each role and with no key. The expected answer comes from the RPC's
// `(loyalty.common.v1.allowed_roles)` option, read here straight from the
// descriptor:
//   - no key                 -> UNAUTHENTICATED;
//   - a role not in the list -> PERMISSION_DENIED;
//   - a role in the list     -> anything else (INVALID_ARGUMENT for an empty
//                               request, UNIMPLEMENTED for a skeleton, ...).
// Requests are empty messages, except that a partner names itself in a
// top-level `partner_id` field, so that partner scoping does not hide what
// the table allows. Each server is the real bootstrap (common/server), health
// unauthenticated included.
//
// To add a service (or replace a skeleton by its adapter), add a WalkTarget to
// kTargets: a name and a function that builds the grpc::Service to serve.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/server/server.h"
#include "common/testing/service_process.h"
#include "common/testing/test_keys.h"
#include "gtest/gtest.h"
#include "loyalty/catalog/v1/catalog.grpc.pb.h"
#include "loyalty/common/v1/options.pb.h"
#include "loyalty/ledger/v1/ledger.grpc.pb.h"
#include "loyalty/membership/v1/membership.grpc.pb.h"
#include "loyalty/settlement/v1/settlement.grpc.pb.h"
#include "common/auth/grpc_auth.h"
#include "common/db/migrations.h"
#include "common/testing/test_db.h"
#include "grpcpp/create_channel.h"
#include "services/catalog/catalog.h"
#include "services/catalog/catalog_service.h"
#include "services/catalog/mysql_catalog_store.h"
#include "services/ledger/ledger_service.h"
#include "services/settlement/grpc_ledger_client.h"
#include "services/settlement/mysql_settlement_store.h"
#include "services/settlement/settlement_service.h"
#include "tests/services/catalog/fakes.h"
#include "tests/services/ledger/ledger_fixture.h"

namespace loyalty {
namespace catalog {
const std::vector<db::MigrationFile>& Migrations();
}  // namespace catalog
namespace settlement {
const std::vector<db::MigrationFile>& Migrations();
}  // namespace settlement
namespace {

using common::v1::Role;

constexpr char kPartnerId[] = "vet";
constexpr absl::Duration kUnaryDeadline = absl::Seconds(10);
// A stream the caller may open runs until its deadline.
constexpr absl::Duration kStreamDeadline = absl::Milliseconds(1500);

// A service as the walk serves it, with whatever it needs kept alive.
class Hosted {
 public:
  virtual ~Hosted() = default;
  virtual grpc::Service* service() = 0;
};
using HostedPtr = std::unique_ptr<Hosted>;

// A generated base class: every RPC answers UNIMPLEMENTED (a skeleton).
template <typename GeneratedService>
class Skeleton final : public Hosted {
 public:
  grpc::Service* service() override { return &service_; }

 private:
  GeneratedService service_;
};

class HostedLedger final : public Hosted {
 public:
  explicit HostedLedger(auth::Authenticator& authenticator)
      : ledger_(ledger::testing::MakeLedger()),
        service_(ledger_ != nullptr ? std::make_unique<ledger::LedgerService>(*ledger_->ledger, authenticator)
                                    : nullptr) {}
  grpc::Service* service() override { return service_.get(); }

 private:
  std::unique_ptr<ledger::testing::LedgerUnderTest> ledger_;
  std::unique_ptr<ledger::LedgerService> service_;
};

// The catalog adapter on a throwaway schema; the ledger and membership it
// calls are the catalog tests' fakes.
class HostedCatalog final : public Hosted {
 public:
  explicit HostedCatalog(auth::Authenticator& authenticator) {
    auto db = testing::TestDatabase::Create("walkcat");
    if (!db.ok() || !db::ApplyMigrations((*db)->pool(), catalog::Migrations()).ok()) return;
    db_ = *std::move(db);
    store_ = catalog::NewMysqlCatalogStore(db_->pool());
    catalog_ = std::make_unique<catalog::Catalog>(*store_, ledger_, members_);
    guard_ = std::make_unique<auth::RpcGuard>(authenticator, catalog::v1::CatalogService::service_full_name());
    service_ = std::make_unique<catalog::CatalogService>(
        *catalog_, [this](const grpc::ServerContext& ctx, absl::string_view m) { return guard_->Check(ctx, m); });
  }
  grpc::Service* service() override { return service_.get(); }

 private:
  std::unique_ptr<testing::TestDatabase> db_;
  std::unique_ptr<catalog::CatalogStore> store_;
  catalog::testing::TestClock clock_;
  catalog::testing::FakeLedger ledger_{clock_};
  catalog::testing::FakeMembers members_;
  std::unique_ptr<catalog::Catalog> catalog_;
  std::unique_ptr<auth::RpcGuard> guard_;
  std::unique_ptr<catalog::CatalogService> service_;
};

// The settlement adapter on a throwaway schema; its ledger address points
// nowhere (empty requests never get that far).
class HostedSettlement final : public Hosted {
 public:
  explicit HostedSettlement(auth::Authenticator& authenticator) {
    auto db = loyalty::testing::TestDatabase::Create("walk_settle");
    EXPECT_TRUE(db.ok()) << db.status();
    if (!db.ok()) return;
    db_ = *std::move(db);
    EXPECT_TRUE(db::ApplyMigrations(db_->pool(), settlement::Migrations()).ok());
    store_ = settlement::NewMysqlSettlementStore(db_->pool());
    ledger_ = settlement::NewGrpcLedgerClient(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", loyalty::testing::PickFreePort()),
                            grpc::InsecureChannelCredentials()),
        {});
    settlement_ = std::make_unique<settlement::Settlement>(*store_, *ledger_);
    guard_ = std::make_unique<auth::RpcGuard>(authenticator,
                                              settlement::v1::SettlementService::service_full_name());
    service_ = std::make_unique<settlement::SettlementService>(
        *settlement_, [this](const grpc::ServerContext& ctx, absl::string_view m) { return guard_->Check(ctx, m); });
  }
  grpc::Service* service() override { return service_.get(); }

 private:
  std::unique_ptr<loyalty::testing::TestDatabase> db_;
  settlement::SettlementStorePtr store_;
  settlement::LedgerClientPtr ledger_;
  std::unique_ptr<settlement::Settlement> settlement_;
  std::unique_ptr<auth::RpcGuard> guard_;
  std::unique_ptr<settlement::SettlementService> service_;
};

struct WalkTarget {
  std::string name;
  std::string full_name;  // "loyalty.ledger.v1.LedgerService"
  std::function<HostedPtr(auth::Authenticator&)> make;
};

const std::vector<WalkTarget>& Targets() {
  static const auto* targets = new std::vector<WalkTarget>{
      {"ledger", ledger::v1::LedgerService::service_full_name(),
       [](auth::Authenticator& a) -> HostedPtr { return std::make_unique<HostedLedger>(a); }},
      // Skeletons until their services land: the bootstrap's gate answers
      // UNAUTHENTICATED / PERMISSION_DENIED before UNIMPLEMENTED.
      {"membership", membership::v1::MembershipService::service_full_name(),
       [](auth::Authenticator&) -> HostedPtr {
         return std::make_unique<Skeleton<membership::v1::MembershipService::Service>>();
       }},
      // The settlement adapter: its unbuilt RPCs answer UNIMPLEMENTED after
      // the same gate.
      {"settlement", settlement::v1::SettlementService::service_full_name(),
       [](auth::Authenticator& a) -> HostedPtr { return std::make_unique<HostedSettlement>(a); }},
      {"catalog", catalog::v1::CatalogService::service_full_name(),
       [](auth::Authenticator& a) -> HostedPtr { return std::make_unique<HostedCatalog>(a); }},
  };
  return *targets;
}

// The request: empty, with partner_id = the caller's own for a partner.
std::string RequestBytes(const google::protobuf::MethodDescriptor& method, bool as_partner) {
  std::unique_ptr<google::protobuf::Message> request(
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(method.input_type())->New());
  const google::protobuf::FieldDescriptor* partner = method.input_type()->FindFieldByName("partner_id");
  if (as_partner && partner != nullptr && !partner->is_repeated() &&
      partner->type() == google::protobuf::FieldDescriptor::TYPE_STRING) {
    request->GetReflection()->SetString(request.get(), partner, kPartnerId);
  }
  return request->SerializeAsString();
}

// One call of any shape; returns its final status.
absl::Status Call(const std::string& address, const google::protobuf::MethodDescriptor& method,
                  const std::string& request, const std::string& api_key) {
  const bool streams = method.server_streaming() || method.client_streaming();
  return testing::CallRaw(address, absl::StrCat("/", method.service()->full_name(), "/", method.name()),
                          request, api_key, streams ? kStreamDeadline : kUnaryDeadline);
}

class PermissionWalkTest : public ::testing::TestWithParam<WalkTarget> {};

TEST_P(PermissionWalkTest, EveryRpcAnswersEachRoleAsItsAllowedRolesSay) {
  const WalkTarget& target = GetParam();
  testing::TestKeyring keys({kPartnerId});
  HostedPtr hosted = target.make(keys.authenticator());
  ASSERT_NE(hosted->service(), nullptr);
  server::ServerOptions options;
  options.health_service_names = {target.full_name};
  options.authenticator = &keys.authenticator();
  options.authenticated_services = {target.full_name};
  absl::StatusOr<std::unique_ptr<server::Server>> server = server::Server::Start(options, {hosted->service()});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = absl::StrCat("127.0.0.1:", (*server)->port());

  // Health needs no key.
  EXPECT_TRUE(testing::CheckServing(address, "", absl::Seconds(5)).ok());
  EXPECT_TRUE(testing::CheckServing(address, target.full_name, absl::Seconds(5)).ok());

  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(target.full_name);
  ASSERT_NE(service, nullptr);
  ASSERT_GT(service->method_count(), 0);
  const std::vector<Role> roles = {common::v1::ROLE_PARTNER, common::v1::ROLE_BACKOFFICE,
                                   common::v1::ROLE_FINANCE, common::v1::ROLE_SERVICE};
  int allowed_calls = 0, denied_calls = 0;
  for (int m = 0; m < service->method_count(); ++m) {
    const google::protobuf::MethodDescriptor& method = *service->method(m);
    const std::string rpc = absl::StrCat(service->full_name(), "/", method.name());
    const google::protobuf::MethodOptions& opts = method.options();
    std::vector<Role> allowed;
    for (int i = 0; i < opts.ExtensionSize(common::v1::allowed_roles); ++i) {
      allowed.push_back(opts.GetExtension(common::v1::allowed_roles, i));
    }
    EXPECT_FALSE(allowed.empty()) << rpc << " has no allowed_roles: nobody could call it";

    absl::Status anonymous = Call(address, method, RequestBytes(method, false), "");
    EXPECT_EQ(anonymous.code(), absl::StatusCode::kUnauthenticated) << rpc << " without a key: " << anonymous;

    for (Role role : roles) {
      const bool may = std::find(allowed.begin(), allowed.end(), role) != allowed.end();
      absl::Status s = Call(address, method, RequestBytes(method, role == common::v1::ROLE_PARTNER),
                            keys.ForRole(role));
      const std::string what = absl::StrCat(rpc, " as ", common::v1::Role_Name(role), ": ", s.ToString());
      if (may) {
        ++allowed_calls;
        EXPECT_NE(s.code(), absl::StatusCode::kPermissionDenied) << what;
        EXPECT_NE(s.code(), absl::StatusCode::kUnauthenticated) << what;
      } else {
        ++denied_calls;
        EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << what;
        EXPECT_NE(s.message().find(common::v1::Role_Name(role)), absl::string_view::npos) << what;
        EXPECT_NE(s.message().find(rpc), absl::string_view::npos) << what;
      }
    }
  }
  // Every service has both kinds of rows, so both branches above ran.
  EXPECT_GT(allowed_calls, 0);
  EXPECT_GT(denied_calls, 0);
  (*server)->Shutdown();
}

INSTANTIATE_TEST_SUITE_P(AllServices, PermissionWalkTest, ::testing::ValuesIn(Targets()),
                         [](const ::testing::TestParamInfo<WalkTarget>& p) { return p.param.name; });

// A few rows of the table, spelled out, so that a lost option (which would
// make the walk above vacuous for that method) is noticed.
TEST(PermissionTable, KnownRows) {
  auto roles_of = [](const std::string& rpc) {
    const google::protobuf::MethodDescriptor* m =
        google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(rpc);
    std::vector<Role> roles;
    if (m == nullptr) return roles;
    for (int i = 0; i < m->options().ExtensionSize(common::v1::allowed_roles); ++i) {
      roles.push_back(m->options().GetExtension(common::v1::allowed_roles, i));
    }
    return roles;
  };
  EXPECT_EQ(roles_of("loyalty.ledger.v1.LedgerService.Adjust"), std::vector<Role>{common::v1::ROLE_BACKOFFICE});
  EXPECT_EQ(roles_of("loyalty.ledger.v1.LedgerService.Earn"),
            (std::vector<Role>{common::v1::ROLE_PARTNER, common::v1::ROLE_BACKOFFICE, common::v1::ROLE_SERVICE}));
  EXPECT_EQ(roles_of("loyalty.ledger.v1.LedgerService.ReadJournal"),
            (std::vector<Role>{common::v1::ROLE_BACKOFFICE, common::v1::ROLE_FINANCE, common::v1::ROLE_SERVICE}));
}

}  // namespace
}  // namespace loyalty
