// Contracts (services/settlement/contracts.h) on the real store.

#include "tests/services/settlement/settlement_fixture.h"

#include "absl/strings/match.h"
#include "common/time/proto_time.h"
#include "gtest/gtest.h"

namespace loyalty::settlement {
namespace {

TEST_F(SettlementTest, ContractsAreVersionedNeverEditedAndValidated) {
  Create("vet");
  Create("food", v1::BUSINESS_CATEGORY_PET_FOOD);
  const absl::Time t0 = absl::Now() - absl::Hours(24 * 30);
  auto v1c = AddContract("c1", TermsOf("vet", t0, 10000, 8000, 5000, 0));
  ASSERT_TRUE(v1c.ok()) << v1c.status();
  EXPECT_EQ(v1c->version(), 1);

  struct Bad {
    std::function<void(v1::Contract&)> mutate;
    std::string field;
  };
  for (const Bad& bad : std::vector<Bad>{
           {[](v1::Contract& c) { c.mutable_issue_price_per_1000_points()->set_amount_minor(0); },
            "contract.issue_price_per_1000_points.amount_minor"},
           {[](v1::Contract& c) { c.mutable_reimbursement_per_1000_points()->set_amount_minor(-5); },
            "contract.reimbursement_per_1000_points.amount_minor"},
           {[](v1::Contract& c) { c.set_earn_rate_milli_points_per_unit(0); },
            "contract.earn_rate_milli_points_per_unit"},
           {[](v1::Contract& c) { c.set_earn_currency("XYZ"); }, "contract.earn_currency"},
           {[](v1::Contract& c) { c.mutable_monthly_fee()->set_currency("CHF"); }, "contract.monthly_fee.currency"},
           {[](v1::Contract& c) { c.set_breakage_share_bp(10001); }, "contract.breakage_share_bp"},
           {[&](v1::Contract& c) { *c.mutable_effective_from() = ToProtoTime(t0 - absl::Hours(1)); },
            "contract.effective_from"},
       }) {
    v1::Contract terms = TermsOf("vet", t0 + absl::Hours(24), 12000, 9000, 5000, 0);
    bad.mutate(terms);
    auto s = AddContract("bad", terms).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad.field;
    EXPECT_TRUE(absl::StartsWith(s.message(), bad.field)) << s;
  }
  EXPECT_EQ(AddContract("c-none", TermsOf("nobody", t0, 1, 1, 0, 0)).status().code(), absl::StatusCode::kNotFound);

  const absl::Time t1 = t0 + absl::Hours(24 * 10);
  auto v2c = AddContract("c2", TermsOf("vet", t1, 12000, 9000, 5000, 0));
  ASSERT_TRUE(v2c.ok()) << v2c.status();
  EXPECT_EQ(v2c->version(), 2);
  // The same key replays the same version.
  auto replay = AddContract("c2", TermsOf("vet", t1, 12000, 9000, 5000, 0));
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->contract_id(), v2c->contract_id());

  // The version in force at a time; effective_until on the older one.
  v1::GetContractRequest get;
  get.mutable_as_of()->set_partner_id("vet");
  *get.mutable_as_of()->mutable_time() = ToProtoTime(t1 - absl::Seconds(1));
  auto at = settlement_->contracts().GetContract(vet_, get);
  ASSERT_TRUE(at.ok()) << at.status();
  EXPECT_EQ(at->contract().contract_id(), v1c->contract_id());
  EXPECT_EQ(FromProtoTime(at->contract().effective_until()), TruncateToMicros(t1));
  *get.mutable_as_of()->mutable_time() = ToProtoTime(t1);
  EXPECT_EQ(settlement_->contracts().GetContract(vet_, get)->contract().contract_id(), v2c->contract_id());
  *get.mutable_as_of()->mutable_time() = ToProtoTime(t0 - absl::Seconds(1));
  EXPECT_EQ(settlement_->contracts().GetContract(vet_, get).status().code(), absl::StatusCode::kNotFound);
  // Another partner's contract is not visible to a partner.
  get.mutable_as_of()->set_partner_id("food");
  EXPECT_EQ(settlement_->contracts().GetContract(vet_, get).status().code(), absl::StatusCode::kPermissionDenied);
  v1::GetContractRequest by_id;
  by_id.set_contract_id(v1c->contract_id());
  EXPECT_EQ(settlement_->contracts().GetContract(Principal::Partner("food-key", "food"), by_id).status().code(),
            absl::StatusCode::kNotFound);

  v1::ListContractsRequest list;
  list.set_partner_id("vet");
  list.set_page_size(1);
  auto page1 = settlement_->contracts().ListContracts(finance_, list);
  ASSERT_TRUE(page1.ok()) << page1.status();
  ASSERT_EQ(page1->contracts_size(), 1);
  EXPECT_EQ(page1->contracts(0).version(), 2);  // newest first
  list.set_page_token(page1->next_page_token());
  auto page2 = settlement_->contracts().ListContracts(finance_, list);
  ASSERT_TRUE(page2.ok()) << page2.status();
  ASSERT_EQ(page2->contracts_size(), 1);
  EXPECT_EQ(page2->contracts(0).version(), 1);
  EXPECT_TRUE(page2->next_page_token().empty());

  // A version effective inside a closed period is refused.
  auto period = NewPeriod("p1", t1 + absl::Hours(24), absl::Now() - absl::Hours(1));
  ASSERT_TRUE(period.ok()) << period.status();
  ASSERT_TRUE(Close("close-p1", period->period_id(), 0).ok());
  auto inside = AddContract("c3", TermsOf("vet", t1 + absl::Hours(48), 13000, 9000, 5000, 0));
  EXPECT_EQ(inside.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(inside.status().message(), "already closed")) << inside.status();
  EXPECT_TRUE(AddContract("c4", TermsOf("vet", absl::Now() + absl::Hours(1), 13000, 9000, 5000, 0)).ok());
}

}  // namespace
}  // namespace loyalty::settlement
