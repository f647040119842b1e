// The catalog's Redeem saga with a FaultProxy between its store and the real
// MariaDB: at each of the saga's transactions, each fault (connection cut at
// COMMIT, cut after the COMMIT was applied, cut mid-statement, COMMIT
// refused with 1213 as Galera does). The ledger is the fake of fakes.h (its
// own failures are catalog_test's subject).
//
// The caller never gets a voucher that is not in the database; retries with
// the same key (with the saga recovery running in between, as the sweeper
// does) end with exactly one voucher, its points held once, every other
// hold released, and stock reserved once.
#include "absl/strings/str_cat.h"
#include "common/db/migrations.h"
#include "common/testing/fault_proxy.h"
#include "common/testing/test_db.h"
#include "gtest/gtest.h"
#include "services/catalog/catalog.h"
#include "services/catalog/mysql_catalog_store.h"
#include "tests/services/catalog/fakes.h"

namespace loyalty::catalog {
const std::vector<db::MigrationFile>& Migrations();

namespace {

using Fault = loyalty::testing::FaultProxy::Fault;
using loyalty::testing::FaultName;

const auth::Principal kBackoffice = auth::Principal::Of("bo000000000000001", common::v1::ROLE_BACKOFFICE);
constexpr int64_t kPrice = 100;
constexpr int64_t kStartingPoints = 1000;

class CatalogFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto proxied = loyalty::testing::ProxiedDatabase::Create("catalogfault", Migrations());
    ASSERT_TRUE(proxied.ok()) << proxied.status();
    db_ = std::move(proxied->db);
    proxy_ = std::move(proxied->proxy);
    pool_ = std::move(proxied->pool);
    store_ = NewMysqlCatalogStore(*pool_);
    CatalogOptions options;
    options.now = [this] { return clock_.Now(); };
    catalog_ = std::make_unique<Catalog>(*store_, ledger_, members_, options);
    reward_id_ = ActiveReward();
  }

  std::string ActiveReward() {
    v1::CreateRewardRequest create;
    create.set_idempotency_key("create");
    v1::Reward& r = *create.mutable_reward();
    auto* name = r.add_names();
    name->set_language("en");
    name->set_text("Free check-up");
    r.set_reward_type(v1::REWARD_TYPE_FREE_ITEM);
    r.set_points_price(kPrice);
    r.set_partner_id("vet");
    r.set_category("vet-care");
    r.set_stock_available(1000);
    r.set_voucher_validity_days(30);
    auto created = catalog_->rewards().CreateReward(kBackoffice, create);
    EXPECT_TRUE(created.ok()) << created.status();
    v1::SetRewardStateRequest activate;
    activate.set_idempotency_key("activate");
    activate.set_reward_id(created->reward().reward_id());
    activate.set_state(v1::REWARD_STATE_ACTIVE);
    EXPECT_TRUE(catalog_->rewards().SetRewardState(kBackoffice, activate).ok());
    return created->reward().reward_id();
  }

  int64_t Count(const std::string& sql, const std::vector<std::string>& params = {}) {
    auto n = loyalty::testing::QueryIntForTest(db_->pool(), sql, params);  // straight to the database
    EXPECT_TRUE(n.ok()) << n.status();
    return n.value_or(-1);
  }

  std::unique_ptr<loyalty::testing::TestDatabase> db_;
  std::unique_ptr<loyalty::testing::FaultProxy> proxy_;
  std::unique_ptr<db::ConnectionPool> pool_;
  std::unique_ptr<CatalogStore> store_;
  testing::TestClock clock_;
  testing::FakeLedger ledger_{clock_};
  testing::FakeMembers members_;
  std::unique_ptr<Catalog> catalog_;
  std::string reward_id_;
};

TEST_F(CatalogFaultTest, RedeemIsNeverAcknowledgedUnlessCommittedAndIssuesOneVoucherPerKey) {
  int faulted = 0;
  int64_t issued = 0;
  for (Fault fault : {Fault::kCutAtCommit, Fault::kCutAfterCommit, Fault::kCutMidStatement, Fault::kFailCommit}) {
    for (int skip = 0;; ++skip) {
      const std::string member = absl::StrCat(FaultName(fault), "-", skip);
      ledger_.SetPoints(member, kStartingPoints);
      v1::RedeemRequest request;
      request.set_idempotency_key(member);
      request.set_member_id(member);
      request.set_reward_id(reward_id_);
      bool first = true;
      auto call = [&]() -> absl::Status {
        if (!first) {
          // Between a client's retries the sweeper runs: a saga cut short
          // (its row says STARTED) is compensated once its grace has passed.
          clock_.Advance(absl::Minutes(2));
          EXPECT_TRUE(catalog_->jobs().Recover(100).ok());
        }
        first = false;
        absl::StatusOr<v1::RedeemResponse> r = catalog_->redeem().Redeem(kBackoffice, request);
        if (!r.ok()) return r.status();
        EXPECT_EQ(Count("SELECT COUNT(*) FROM vouchers WHERE voucher_code = ? AND state = ?",
                        {r->voucher().voucher_code(), std::to_string(v1::VOUCHER_STATE_ISSUED)}),
                  1)
            << member << ": a voucher answered but not committed";
        return absl::OkStatus();
      };
      loyalty::testing::FaultedCall run = loyalty::testing::CallUnderFault(*proxy_, fault, skip, call);
      ASSERT_TRUE(run.last.ok()) << member << ": " << run.last;
      EXPECT_TRUE(run.first.ok() || absl::IsUnavailable(run.first) || absl::IsAborted(run.first))
          << member << ": " << run.first;
      ++issued;
      EXPECT_EQ(Count("SELECT COUNT(*) FROM vouchers WHERE member_id = ?", {member}), 1) << member;
      EXPECT_EQ(Count("SELECT COUNT(*) FROM redemptions WHERE member_id = ? AND state = 2", {member}), 1) << member;
      // The voucher's points are held once; every other hold was released.
      int pending = 0;
      for (const auto& [id, hold] : ledger_.Holds()) {
        if (hold.member_id != member) continue;
        if (hold.state == ledger::v1::HOLD_STATE_PENDING) {
          ++pending;
        } else {
          EXPECT_EQ(hold.state, ledger::v1::HOLD_STATE_VOIDED) << member << " " << id;
        }
      }
      EXPECT_EQ(pending, 1) << member;
      EXPECT_EQ(*ledger_.AvailablePoints(member), kStartingPoints - kPrice) << member;
      EXPECT_EQ(Count("SELECT stock_reserved FROM rewards WHERE reward_id = ?", {reward_id_}), issued);
      if (!run.fired) break;
      ++faulted;
    }
  }
  EXPECT_GE(faulted, 8);  // the saga has several transactions, each was hit
  EXPECT_EQ(Count("SELECT COUNT(*) FROM redemptions WHERE state <> 2 AND state <> 4"), 0) << "unfinished sagas";
}

TEST_F(CatalogFaultTest, ARefusalThatCouldNotBeRecordedIsUnavailableNotFinal) {
  // The ledger refuses the hold (the member has no points): the saga records
  // the refusal under the key in a second transaction, which is cut.
  ledger_.SetPoints("poor", 0);
  v1::RedeemRequest redeem;
  redeem.set_idempotency_key("poor-1");
  redeem.set_member_id("poor");
  redeem.set_reward_id(reward_id_);
  // Its transactions: read the reward, claim the key, record the refusal.
  proxy_->Arm(Fault::kCutAtCommit, /*skip=*/2);
  absl::StatusOr<v1::RedeemResponse> first = catalog_->redeem().Redeem(kBackoffice, redeem);
  EXPECT_EQ(proxy_->fired(), 1);
  EXPECT_EQ(first.status().code(), absl::StatusCode::kUnavailable) << first.status();
  // The sweeper settles the saga; the retry gets the refusal, now recorded.
  clock_.Advance(absl::Minutes(2));
  ASSERT_TRUE(catalog_->jobs().Recover(100).ok());
  EXPECT_EQ(catalog_->redeem().Redeem(kBackoffice, redeem).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(catalog_->redeem().Redeem(kBackoffice, redeem).status().code(), absl::StatusCode::kFailedPrecondition);

  // The same for a plain mutation: retiring a reward that does not exist is
  // NOT_FOUND, recorded in a transaction of its own (the body's was rolled
  // back), which is cut.
  v1::SetRewardStateRequest retire;
  retire.set_idempotency_key("retire-nothing");
  retire.set_reward_id("rw_doesnotexist");
  retire.set_state(v1::REWARD_STATE_RETIRED);
  proxy_->Arm(Fault::kCutAtCommit);
  absl::StatusOr<v1::SetRewardStateResponse> refused = catalog_->rewards().SetRewardState(kBackoffice, retire);
  EXPECT_EQ(proxy_->fired(), 2);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_EQ(Count("SELECT COUNT(*) FROM idempotency WHERE idem_key = ?", {"retire-nothing"}), 0);
  EXPECT_EQ(catalog_->rewards().SetRewardState(kBackoffice, retire).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM idempotency WHERE idem_key = ?", {"retire-nothing"}), 1);
}

}  // namespace
}  // namespace loyalty::catalog
