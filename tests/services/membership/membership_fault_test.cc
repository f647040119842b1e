// Membership's Enrol with a FaultProxy between the store and the real
// MariaDB: at each of its transactions, each fault (connection cut at
// COMMIT, cut after the COMMIT was applied, cut mid-statement, COMMIT
// refused with 1213 as Galera does). The caller never gets OK for a member
// that is not in the database, and retries with the same key leave exactly
// one member, one card and one idempotency record.
#include "absl/strings/str_cat.h"
#include "common/db/migrations.h"
#include "common/testing/fault_proxy.h"
#include "common/testing/test_db.h"
#include "gtest/gtest.h"
#include "services/membership/membership.h"
#include "services/membership/mysql_membership_store.h"

namespace loyalty::membership {
const std::vector<db::MigrationFile>& Migrations();

namespace {

using Fault = loyalty::testing::FaultProxy::Fault;
using loyalty::testing::FaultName;

const auth::Principal kVet = auth::Principal::Partner("vet0000000000001", "vet-clinic");

// Enrol never calls the ledger.
class NoLedger final : public LedgerClient {
 public:
  absl::StatusOr<absl::flat_hash_map<std::string, int64_t>> QualifyingPoints(const std::vector<std::string>&,
                                                                              absl::Time, absl::Time) override {
    return absl::UnavailableError("no ledger in this test");
  }
  absl::StatusOr<LedgerStatement> Statement(const std::string&) override {
    return absl::UnavailableError("no ledger in this test");
  }
  absl::StatusOr<JournalPage> ReadJournal(int64_t, int) override {
    return absl::UnavailableError("no ledger in this test");
  }
  absl::StatusOr<std::string> GrantBonus(const std::string&, const std::string&, int64_t, ledger::v1::BonusKind,
                                         const std::string&, const std::string&) override {
    return absl::UnavailableError("no ledger in this test");
  }
};

class MembershipFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto proxied = loyalty::testing::ProxiedDatabase::Create("memberfault", Migrations());
    ASSERT_TRUE(proxied.ok()) << proxied.status();
    db_ = std::move(proxied->db);
    proxy_ = std::move(proxied->proxy);
    pool_ = std::move(proxied->pool);
    store_ = NewMysqlMembershipStore(*pool_);
    membership_ = std::make_unique<Membership>(*store_, ledger_, MembershipOptions{});
  }

  int64_t Count(const std::string& sql, const std::vector<std::string>& params = {}) {
    auto n = loyalty::testing::QueryIntForTest(db_->pool(), sql, params);  // straight to the database
    EXPECT_TRUE(n.ok()) << n.status();
    return n.value_or(-1);
  }

  v1::EnrolRequest EnrolOf(const std::string& key) {
    v1::EnrolRequest r;
    r.set_idempotency_key(key);
    r.set_given_name("Anna");
    r.set_family_name("Berg");
    r.set_email(absl::StrCat(key, "@example.com"));
    r.set_preferred_language("de");
    r.set_enrolling_partner_id("vet-clinic");
    r.set_terms_version("2025-01");
    r.set_privacy_version("2025-01");
    return r;
  }

  std::unique_ptr<loyalty::testing::TestDatabase> db_;
  std::unique_ptr<loyalty::testing::FaultProxy> proxy_;
  std::unique_ptr<db::ConnectionPool> pool_;
  std::unique_ptr<MembershipStore> store_;
  NoLedger ledger_;
  std::unique_ptr<Membership> membership_;
};

TEST_F(MembershipFaultTest, EnrolIsNeverAcknowledgedUnlessCommittedAndEnrolsOncePerKey) {
  int faulted = 0;
  for (Fault fault : {Fault::kCutAtCommit, Fault::kCutAfterCommit, Fault::kCutMidStatement, Fault::kFailCommit}) {
    // Each of Enrol's transactions in turn, until the call has none left.
    for (int skip = 0;; ++skip) {
      const std::string key = absl::StrCat(FaultName(fault), "-", skip);
      v1::EnrolResponse acknowledged;
      auto call = [&]() -> absl::Status {
        absl::StatusOr<v1::EnrolResponse> r = membership_->members().Enrol(kVet, EnrolOf(key));
        if (!r.ok()) return r.status();
        // Answered OK: the member must be in the database now.
        EXPECT_EQ(Count("SELECT COUNT(*) FROM members WHERE member_id = ?", {r->member().member_id()}), 1)
            << key << ": acknowledged but not committed";
        acknowledged = *std::move(r);
        return absl::OkStatus();
      };
      loyalty::testing::FaultedCall run = loyalty::testing::CallUnderFault(*proxy_, fault, skip, call);
      ASSERT_TRUE(run.last.ok()) << key << ": " << run.last;
      EXPECT_TRUE(run.first.ok() || absl::IsUnavailable(run.first) || absl::IsAborted(run.first))
          << key << ": " << run.first;
      const std::string email = absl::StrCat(key, "@example.com");
      EXPECT_EQ(Count("SELECT COUNT(*) FROM members WHERE email = ?", {email}), 1) << key;
      EXPECT_EQ(Count("SELECT COUNT(*) FROM cards WHERE member_id = ?", {acknowledged.member().member_id()}), 1)
          << key;
      EXPECT_EQ(acknowledged.member().email(), email);
      if (!run.fired) break;
      ++faulted;
    }
  }
  EXPECT_GE(faulted, 4);  // every fault hit at least one transaction
  EXPECT_EQ(Count("SELECT COUNT(*) FROM members"), Count("SELECT COUNT(*) FROM idempotency"));
}

TEST_F(MembershipFaultTest, ARefusalThatCouldNotBeRecordedIsUnavailableNotFinal) {
  ASSERT_TRUE(membership_->members().Enrol(kVet, EnrolOf("first")).ok());
  // Another key, the same email: ALREADY_EXISTS, recorded under the key in
  // a transaction of its own (the body's was rolled back), which is cut.
  v1::EnrolRequest again = EnrolOf("second");
  again.set_email("first@example.com");
  proxy_->Arm(Fault::kCutAtCommit);
  absl::StatusOr<v1::EnrolResponse> refused = membership_->members().Enrol(kVet, again);
  EXPECT_EQ(proxy_->fired(), 1);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_EQ(Count("SELECT COUNT(*) FROM idempotency WHERE idem_key = ?", {"second"}), 0);
  // The retry gets the refusal, now recorded, and so does the next one.
  EXPECT_EQ(membership_->members().Enrol(kVet, again).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM idempotency WHERE idem_key = ?", {"second"}), 1);
  EXPECT_EQ(membership_->members().Enrol(kVet, again).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM members"), 1);
}

}  // namespace
}  // namespace loyalty::membership
