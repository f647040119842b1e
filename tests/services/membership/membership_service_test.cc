// The membership gRPC adapter over an in-process channel: authentication,
// the allowed_roles table, partner scope and the trailing metadata of a
// duplicate. The domain runs on the real MariaDB; the ledger address points
// nowhere, so ledger-backed calls must answer UNAVAILABLE.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "common/auth/grpc_auth.h"
#include "common/db/migrations.h"
#include "common/testing/service_process.h"
#include "common/testing/test_db.h"
#include "common/testing/test_keys.h"
#include "gtest/gtest.h"
#include "loyalty/membership/v1/membership.grpc.pb.h"
#include "services/membership/grpc_ledger_client.h"
#include "services/membership/membership_service.h"
#include "services/membership/mysql_membership_store.h"

namespace loyalty::membership {
const std::vector<db::MigrationFile>& Migrations();

namespace {

using Stub = v1::MembershipService::Stub;
constexpr auto kDeadline = std::chrono::seconds(10);

class MembershipServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = loyalty::testing::TestDatabase::Create("msvc");
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    ASSERT_TRUE(db::ApplyMigrations(db_->pool(), Migrations()).ok());
    store_ = NewMysqlMembershipStore(db_->pool());
    rpc::CallOptions ledger_options;
    ledger_options.api_key = keys_.service();
    ledger_options.deadline = absl::Seconds(2);
    ledger_ = NewGrpcLedgerClient(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", loyalty::testing::PickFreePort()),
                            grpc::InsecureChannelCredentials()),
        ledger_options);
    membership_ = std::make_unique<Membership>(*store_, *ledger_);
    guard_ = std::make_unique<auth::RpcGuard>(keys_.authenticator(), v1::MembershipService::service_full_name());
    service_ = std::make_unique<MembershipService>(
        *membership_, [this](const grpc::ServerContext& ctx, absl::string_view m) { return guard_->Check(ctx, m); });
    grpc::ServerBuilder builder;
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = v1::MembershipService::NewStub(server_->InProcessChannel(grpc::ChannelArguments()));
  }

  void TearDown() override {
    stub_.reset();
    if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now() + kDeadline);
  }

  template <typename Request, typename Response>
  grpc::Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                    const Request& request, Response* response, const std::string& api_key,
                    std::string* existing_id = nullptr) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kDeadline);
    if (!api_key.empty()) context.AddMetadata("authorization", "Bearer " + api_key);
    grpc::Status s = (stub_.get()->*method)(&context, request, response);
    if (existing_id != nullptr) {
      auto it = context.GetServerTrailingMetadata().find(std::string(kExistingMemberIdKey));
      if (it != context.GetServerTrailingMetadata().end()) existing_id->assign(it->second.data(), it->second.size());
    }
    return s;
  }

  v1::EnrolRequest EnrolOf(const std::string& key, const std::string& email, const std::string& partner) {
    v1::EnrolRequest r;
    r.set_idempotency_key(key);
    r.set_given_name("Anna");
    r.set_email(email);
    r.set_preferred_language("en");
    r.set_enrolling_partner_id(partner);
    r.set_terms_version("2025-01");
    r.set_privacy_version("2025-01");
    return r;
  }

  loyalty::testing::TestKeyring keys_{{"vet-clinic", "pet-food"}};
  std::unique_ptr<loyalty::testing::TestDatabase> db_;
  std::unique_ptr<MembershipStore> store_;
  std::unique_ptr<LedgerClient> ledger_;
  std::unique_ptr<Membership> membership_;
  std::unique_ptr<auth::RpcGuard> guard_;
  std::unique_ptr<MembershipService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Stub> stub_;
};

TEST_F(MembershipServiceTest, AuthenticatesAuthorisesAndScopesPartners) {
  v1::EnrolResponse enrolled;
  EXPECT_EQ(Call(&Stub::Enrol, EnrolOf("k1", "a@example.com", "vet-clinic"), &enrolled, "").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Call(&Stub::Enrol, EnrolOf("k1", "a@example.com", "vet-clinic"), &enrolled, keys_.finance()).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Call(&Stub::Enrol, EnrolOf("k1", "a@example.com", "pet-food"), &enrolled, keys_.partner("vet-clinic"))
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  grpc::Status ok = Call(&Stub::Enrol, EnrolOf("k1", "a@example.com", "vet-clinic"), &enrolled,
                         keys_.partner("vet-clinic"));
  ASSERT_TRUE(ok.ok()) << ok.error_message();

  // Another partner does not see the member; backoffice does.
  v1::GetMemberRequest get;
  get.set_member_id(enrolled.member().member_id());
  v1::GetMemberResponse got;
  EXPECT_EQ(Call(&Stub::GetMember, get, &got, keys_.partner("pet-food")).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(Call(&Stub::GetMember, get, &got, keys_.backoffice()).ok());

  // Backoffice-only RPCs refuse partner keys.
  v1::SetMemberStatusRequest status;
  status.set_idempotency_key("s1");
  status.set_member_id(enrolled.member().member_id());
  status.set_status(v1::MEMBER_STATUS_SUSPENDED);
  status.set_reason("check");
  v1::SetMemberStatusResponse status_out;
  EXPECT_EQ(Call(&Stub::SetMemberStatus, status, &status_out, keys_.partner("vet-clinic")).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(Call(&Stub::SetMemberStatus, status, &status_out, keys_.backoffice()).ok());
}

TEST_F(MembershipServiceTest, DuplicateEmailCarriesTheExistingIdInTrailingMetadata) {
  v1::EnrolResponse first, second;
  ASSERT_TRUE(Call(&Stub::Enrol, EnrolOf("k1", "a@example.com", "vet-clinic"), &first, keys_.partner("vet-clinic")).ok());
  std::string existing;
  grpc::Status dup = Call(&Stub::Enrol, EnrolOf("k2", "a@example.com", "pet-food"), &second,
                          keys_.partner("pet-food"), &existing);
  EXPECT_EQ(dup.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(existing, first.member().member_id());
  EXPECT_EQ(dup.error_message().find("a@example.com"), std::string::npos);
}

TEST_F(MembershipServiceTest, LedgerBackedCallsAreUnavailableWhileTheLedgerIsDown) {
  v1::EnrolResponse enrolled;
  ASSERT_TRUE(Call(&Stub::Enrol, EnrolOf("k1", "a@example.com", "vet-clinic"), &enrolled, keys_.backoffice()).ok());
  v1::EvaluateTierRequest eval;
  eval.set_idempotency_key("e1");
  eval.set_member_id(enrolled.member().member_id());
  v1::EvaluateTierResponse out;
  EXPECT_EQ(Call(&Stub::EvaluateTier, eval, &out, keys_.service()).error_code(), grpc::StatusCode::UNAVAILABLE);
  v1::ExportMemberDataRequest ex;
  ex.set_member_id(enrolled.member().member_id());
  v1::ExportMemberDataResponse ex_out;
  EXPECT_EQ(Call(&Stub::ExportMemberData, ex, &ex_out, keys_.backoffice()).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace loyalty::membership
