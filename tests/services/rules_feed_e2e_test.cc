// Membership and ledger binaries together: the ledger reads members and the
// tier ladder from membership's ListMemberSnapshots feed (with its own
// service key), so a member suspended in membership can no longer earn at the
// ledger, and earns again once reinstated. No call per earn: the ledger sees
// the change at its next refresh. Saved segments travel the same way: a
// campaign aimed at a segment pays its members once membership has
// refreshed the segment. The ledger credits only member ids membership
// issued: one enrolled a moment ago at once (it asks membership), a made-up
// one never. Membership's privacy export works right after enrolment.
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/testing/service_process.h"
#include "common/testing/test_db.h"
#include "common/testing/test_keys.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "loyalty/ledger/internal/v1/earn_rules_file.pb.h"
#include "loyalty/ledger/v1/ledger.grpc.pb.h"
#include "loyalty/membership/v1/membership.grpc.pb.h"
#include "tests/services/ledger/rules_file.h"

namespace loyalty {
namespace {

namespace lv1 = ::loyalty::ledger::v1;
namespace mv1 = ::loyalty::membership::v1;

// Partners still come from the file; members come from membership's feed,
// so the file's members (one suspended here) must be ignored. With a
// `segment_id`, a campaign gives +25 points to that saved segment's members.
std::string WriteRulesFile(const std::string& file_member, const std::string& segment_id = "") {
  ledger::internal::v1::EarnRulesFile file;
  ledger::testing::AddPartner(file, "vet");
  auto* m = file.add_members();
  m->set_member_id(file_member);
  m->set_status(mv1::MEMBER_STATUS_SUSPENDED);
  if (!segment_id.empty()) {
    auto* campaign = file.add_campaigns();
    campaign->set_campaign_id("march-birthdays");
    campaign->set_name("25 extra for members born in March");
    campaign->set_state(catalog::v1::CAMPAIGN_STATE_ACTIVE);
    campaign->set_fixed_bonus_points(25);
    campaign->add_segment_ids(segment_id);
  }
  return ledger::testing::WriteRulesFile(file);
}

void Authorize(grpc::ClientContext& ctx, const std::string& key) {
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  ctx.AddMetadata("authorization", "Bearer " + key);
}

class RulesFeedE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    auto mdb = testing::TestDatabase::Create("feedmemb");
    ASSERT_TRUE(mdb.ok()) << mdb.status();
    membership_db_ = *std::move(mdb);
    auto ldb = testing::TestDatabase::Create("feedledg");
    ASSERT_TRUE(ldb.ok()) << ldb.status();
    ledger_db_ = *std::move(ldb);
    auto keys_file = keys_.WriteKeysFile();
    ASSERT_TRUE(keys_file.ok()) << keys_file.status();

    // Membership first; it reaches the ledger (for privacy exports) on a
    // port chosen now. It does not follow the journal here. Segments are
    // refreshed often.
    const int ledger_port = testing::PickFreePort();
    testing::ServiceProcess::EnvVars membership_env = testing::ServiceDbEnv(*membership_db_, *keys_file);
    membership_env.emplace_back("LOYALTY_LEDGER_API_KEY", keys_.service());
    auto membership = testing::ServiceProcess::Start(
        absl::StrCat(LOYALTY_BIN_DIR, "/membership/loyalty-membership"),
        {"--journal_poll_ms=0", "--segment_refresh_interval_ms=100",
         absl::StrCat("--ledger_address=127.0.0.1:", ledger_port)},
        membership_env);
    ASSERT_TRUE(membership.ok()) << membership.status();
    membership_ = *std::move(membership);
    membership_stub_ = mv1::MembershipService::NewStub(
        grpc::CreateChannel(membership_->address(), grpc::InsecureChannelCredentials()));

    // A saved segment (members born in March) that the campaign targets.
    mv1::CreateSegmentRequest seg;
    seg.set_idempotency_key("segment-march");
    seg.set_name("Born in March");
    seg.mutable_filter()->set_birthday_month(3);
    mv1::CreateSegmentResponse seg_resp;
    grpc::ClientContext seg_ctx;
    Authorize(seg_ctx, keys_.backoffice());
    grpc::Status created = membership_stub_->CreateSegment(&seg_ctx, seg, &seg_resp);
    ASSERT_TRUE(created.ok()) << created.error_message();
    segment_id_ = seg_resp.segment().segment_id();

    testing::ServiceProcess::EnvVars ledger_env = testing::ServiceDbEnv(*ledger_db_, *keys_file);
    ledger_env.emplace_back("LOYALTY_SERVICE_API_KEY", keys_.service());
    auto ledger = testing::ServiceProcess::Start(
        absl::StrCat(LOYALTY_BIN_DIR, "/ledger/loyalty-ledger"),
        {absl::StrCat("--earn_rules_file=", WriteRulesFile("file-only-member", segment_id_)),
         absl::StrCat("--membership_address=", membership_->address()), "--earn_rules_refresh_ms=100",
         "--hold_sweep_interval_ms=0", "--expiry_interval_ms=0", absl::StrCat("--listen=127.0.0.1:", ledger_port)},
        ledger_env);
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    ledger_ = *std::move(ledger);

    ledger_stub_ = lv1::LedgerService::NewStub(
        grpc::CreateChannel(ledger_->address(), grpc::InsecureChannelCredentials()));
  }

  std::string Enrol(const std::string& key, const std::string& email, int birth_month = 0) {
    mv1::EnrolRequest r;
    r.set_idempotency_key(key);
    if (birth_month != 0) {
      r.mutable_birth_date()->set_year(1990);
      r.mutable_birth_date()->set_month(birth_month);
      r.mutable_birth_date()->set_day(14);
    }
    r.set_given_name("Anna");
    r.set_email(email);
    r.set_preferred_language("en");
    r.set_enrolling_partner_id("vet");
    r.set_terms_version("2025-01");
    r.set_privacy_version("2025-01");
    mv1::EnrolResponse resp;
    grpc::ClientContext ctx;
    Authorize(ctx, keys_.partner("vet"));
    grpc::Status s = membership_stub_->Enrol(&ctx, r, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.member().member_id();
  }

  void SetStatus(const std::string& key, const std::string& member_id, mv1::MemberStatus status) {
    mv1::SetMemberStatusRequest r;
    r.set_idempotency_key(key);
    r.set_member_id(member_id);
    r.set_status(status);
    r.set_reason("fraud check");
    mv1::SetMemberStatusResponse resp;
    grpc::ClientContext ctx;
    Authorize(ctx, keys_.backoffice());
    grpc::Status s = membership_stub_->SetMemberStatus(&ctx, r, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  grpc::Status Earn(const std::string& key, const std::string& member_id, int64_t* points = nullptr) {
    lv1::EarnRequest r;
    r.set_idempotency_key(key);
    r.set_partner_id("vet");
    r.set_member_id(member_id);
    r.mutable_amount()->set_amount_minor(1000);
    r.mutable_amount()->set_currency("EUR");
    r.set_receipt_reference(key);
    lv1::EarnResponse resp;
    grpc::ClientContext ctx;
    Authorize(ctx, keys_.partner("vet"));
    grpc::Status s = ledger_stub_->Earn(&ctx, r, &resp);
    if (points != nullptr) *points = resp.points();
    return s;
  }

  // Tries fresh keys until the ledger answers `want` (the feed is read every
  // 100 ms), or gives up after 15 s and returns the last answer.
  grpc::Status EarnUntil(const std::string& prefix, const std::string& member_id, grpc::StatusCode want) {
    grpc::Status s;
    for (int attempt = 0; attempt < 150; ++attempt) {
      s = Earn(absl::StrCat(prefix, "-", attempt), member_id);
      if (s.error_code() == want) return s;
      absl::SleepFor(absl::Milliseconds(100));
    }
    return s;
  }

  testing::TestKeyring keys_{{"vet"}};
  std::string segment_id_;
  std::unique_ptr<testing::TestDatabase> membership_db_;
  std::unique_ptr<testing::TestDatabase> ledger_db_;
  std::unique_ptr<testing::ServiceProcess> membership_;
  std::unique_ptr<testing::ServiceProcess> ledger_;
  std::unique_ptr<mv1::MembershipService::Stub> membership_stub_;
  std::unique_ptr<lv1::LedgerService::Stub> ledger_stub_;
};

TEST_F(RulesFeedE2E, SuspensionInMembershipReachesTheLedger) {
  const std::string member = Enrol("enrol-1", "anna@example.com");
  ASSERT_FALSE(member.empty());
  grpc::Status active = EarnUntil("active", member, grpc::StatusCode::OK);
  ASSERT_TRUE(active.ok()) << active.error_message() << "\n" << ledger_->LogTail();

  SetStatus("suspend-1", member, mv1::MEMBER_STATUS_SUSPENDED);
  grpc::Status refused = EarnUntil("suspended", member, grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << refused.error_message() << "\n" << ledger_->LogTail();
  EXPECT_NE(refused.error_message().find("suspended"), std::string::npos) << refused.error_message();

  SetStatus("reinstate-1", member, mv1::MEMBER_STATUS_ACTIVE);
  grpc::Status again = EarnUntil("reinstated", member, grpc::StatusCode::OK);
  EXPECT_TRUE(again.ok()) << again.error_message();

  // Members come from the feed only: the rules file's suspended member is
  // ignored, and as membership never issued that id it earns nothing.
  EXPECT_EQ(Earn("file-member", "file-only-member").error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(RulesFeedE2E, AMemberEnrolledAMomentAgoEarnsAtOnceAndAMadeUpIdEarnsNothing) {
  // The ledger's feed is read every 100 ms; these calls come before that.
  const std::string member = Enrol("enrol-now", "now@example.com");
  ASSERT_FALSE(member.empty());
  int64_t points = 0;
  grpc::Status earned = Earn("at-once", member, &points);
  ASSERT_TRUE(earned.ok()) << earned.error_message() << "\n" << ledger_->LogTail();
  EXPECT_EQ(points, 10);  // 10 EUR at 1 point per EUR

  // The privacy export right after enrolment sees the member's points (or a
  // zero balance), never INTERNAL.
  const std::string fresh = Enrol("enrol-export", "export@example.com");
  mv1::ExportMemberDataRequest export_request;
  export_request.set_member_id(fresh);
  mv1::ExportMemberDataResponse exported;
  grpc::ClientContext export_ctx;
  Authorize(export_ctx, keys_.backoffice());
  grpc::Status export_status = membership_stub_->ExportMemberData(&export_ctx, export_request, &exported);
  ASSERT_TRUE(export_status.ok()) << export_status.error_message() << "\n" << membership_->LogTail();
  EXPECT_EQ(exported.balance().posted_points(), 0);
  EXPECT_EQ(exported.balance().account(), "member:" + fresh);

  // A mistyped or made-up id: NOT_FOUND, and nothing written at the ledger.
  const std::string typo = member.substr(0, member.size() - 1) + (member.back() == 'x' ? "y" : "x");
  for (const std::string& id : {typo, std::string("mb_madeup0000000000000000000")}) {
    grpc::Status refused = Earn(absl::StrCat("typo-", id), id);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::NOT_FOUND) << id << ": " << refused.error_message();
    EXPECT_NE(refused.error_message().find("member_id"), std::string::npos) << refused.error_message();
    EXPECT_EQ(*testing::QueryIntForTest(ledger_db_->pool(), "SELECT COUNT(*) FROM transfers WHERE member_id = ?", {id}),
              0);
    EXPECT_EQ(*testing::QueryIntForTest(ledger_db_->pool(), "SELECT COUNT(*) FROM accounts WHERE account = ?",
                                        {"member:" + id}),
              0);
  }
}

TEST_F(RulesFeedE2E, ASegmentCampaignPaysItsMembersOnceMembershipHasRefreshedTheSegment) {
  const std::string march = Enrol("enrol-march", "march@example.com", 3);
  const std::string june = Enrol("enrol-june", "june@example.com", 6);
  ASSERT_FALSE(march.empty());
  ASSERT_FALSE(june.empty());
  // Membership materialises the segment on its next refresh and publishes
  // the member's segment_ids; the ledger sees them at its next feed read.
  int64_t points = 0;
  for (int attempt = 0; attempt < 150 && points != 35; ++attempt) {
    grpc::Status s = Earn(absl::StrCat("march-", attempt), march, &points);
    ASSERT_TRUE(s.ok()) << s.error_message();
    if (points != 35) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(points, 35) << "10 base + 25 for the segment\n" << ledger_->LogTail();
  // The member born in June is not in the segment.
  grpc::Status s = Earn("june-1", june, &points);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(points, 10);
}

TEST_F(RulesFeedE2E, EarnIsUnavailableWhileMembershipHasNeverAnswered) {
  // A second ledger pointed at a membership address where nobody listens.
  auto keys_file = keys_.WriteKeysFile();
  ASSERT_TRUE(keys_file.ok());
  auto db = testing::TestDatabase::Create("feedlonely");
  ASSERT_TRUE(db.ok()) << db.status();
  testing::ServiceProcess::EnvVars env = testing::ServiceDbEnv(**db, *keys_file);
  env.emplace_back("LOYALTY_SERVICE_API_KEY", keys_.service());
  auto lonely = testing::ServiceProcess::Start(
      absl::StrCat(LOYALTY_BIN_DIR, "/ledger/loyalty-ledger"),
      {absl::StrCat("--earn_rules_file=", WriteRulesFile("x")),
       absl::StrCat("--membership_address=127.0.0.1:", testing::PickFreePort()), "--feed_deadline_ms=200",
       "--hold_sweep_interval_ms=0", "--expiry_interval_ms=0"},
      env);
  ASSERT_TRUE(lonely.ok()) << lonely.status();
  auto stub = lv1::LedgerService::NewStub(
      grpc::CreateChannel((*lonely)->address(), grpc::InsecureChannelCredentials()));
  lv1::EarnRequest r;
  r.set_idempotency_key("k1");
  r.set_partner_id("vet");
  r.set_member_id("m1");
  r.mutable_amount()->set_amount_minor(1000);
  r.mutable_amount()->set_currency("EUR");
  r.set_receipt_reference("r1");
  lv1::EarnResponse resp;
  grpc::ClientContext ctx;
  Authorize(ctx, keys_.partner("vet"));
  grpc::Status s = stub->Earn(&ctx, r, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_NE(s.error_message().find("membership"), std::string::npos) << s.error_message();
}

}  // namespace
}  // namespace loyalty
