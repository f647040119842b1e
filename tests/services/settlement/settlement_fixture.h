#pragma once
// The fixture of settlement_test: settlement's use cases on the real
// MariaDB store, with the real ledger (its MySQL store and batch writer,
// served over an in-process gRPC channel and read through settlement's gRPC
// ledger client). Shared by the per-use-case test sources
// (partners_test.cc, contracts_test.cc, period_close_test.cc,
// prepaid_test.cc, disputes_test.cc, api_keys_test.cc).

#include <grpcpp/grpcpp.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/auth/grpc_auth.h"
#include "common/auth/principal.h"
#include "common/db/migrations.h"
#include "common/testing/test_db.h"
#include "common/testing/test_keys.h"
#include "gtest/gtest.h"
#include "services/ledger/ledger_service.h"
#include "services/settlement/ledger_client.h"
#include "services/settlement/settlement.h"
#include "services/settlement/settlement_service.h"
#include "tests/services/ledger/ledger_fixture.h"

namespace loyalty::settlement {
const std::vector<db::MigrationFile>& Migrations();

namespace lv1 = ::loyalty::ledger::v1;
using auth::Principal;

common::v1::Money Eur(int64_t minor);
v1::Partner PartnerOf(const std::string& id, v1::BusinessCategory category);
v1::Contract TermsOf(const std::string& partner, absl::Time from, int64_t issue, int64_t reimburse,
                     int64_t breakage_bp, int64_t fee);

// Fails ReadJournal with UNAVAILABLE on one call: a close that dies midway.
class FlakyLedger final : public LedgerClient {
 public:
  explicit FlakyLedger(LedgerClient& real) : real_(real) {}
  void FailCall(int n) { fail_at_ = n; calls_ = 0; }
  absl::StatusOr<JournalPage> ReadJournal(int64_t after, int64_t up_to, int page_size) override {
    if (++calls_ == fail_at_) return absl::UnavailableError("ledger unreachable (injected)");
    return real_.ReadJournal(after, up_to, page_size);
  }
  absl::StatusOr<lv1::VerifyChainResponse> VerifyChain(int64_t from, int64_t to) override {
    return real_.VerifyChain(from, to);
  }
  absl::StatusOr<lv1::GetPointsLiabilityResponse> GetPointsLiability() override {
    return real_.GetPointsLiability();
  }

 private:
  LedgerClient& real_;
  int fail_at_ = 0;
  int calls_ = 0;
};

class SettlementTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  v1::Partner Create(const std::string& id, v1::BusinessCategory category = v1::BUSINESS_CATEGORY_VET_CLINIC);
  absl::StatusOr<v1::Contract> AddContract(const std::string& key, const v1::Contract& terms);
  absl::StatusOr<v1::Period> NewPeriod(const std::string& name, absl::Time start, absl::Time end);
  absl::StatusOr<v1::ClosePeriodResponse> Close(const std::string& key, const std::string& period_id,
                                                int64_t cutoff);
  v1::Statement StatementOf(const std::string& period_id, const std::string& partner_id);

  // --- the ledger, driven as partners would (domain calls) ---
  lv1::Transfer Earn(const std::string& key, const std::string& partner, const std::string& member,
                     int64_t amount_minor, std::optional<absl::Time> occurred_at = std::nullopt);
  lv1::Transfer Redeem(const std::string& key, const std::string& partner, const std::string& member,
                       int64_t points);
  void Reverse(const std::string& key, const std::string& transfer_id, int64_t points);
  // Runs loyaltyctl against this settlement (served on a local
  // port with the finance key); returns its exit code.
  int RunCtl(const std::string& args);

  int64_t LedgerHead();

  loyalty::testing::TestKeyring keys_{{"vet"}};
  std::unique_ptr<ledger::testing::LedgerUnderTest> ledger_;
  std::unique_ptr<ledger::LedgerService> ledger_service_;
  std::unique_ptr<grpc::Server> server_;
  LedgerClientPtr ledger_client_;
  std::unique_ptr<FlakyLedger> flaky_;
  std::unique_ptr<loyalty::testing::TestDatabase> db_;
  SettlementStorePtr store_;
  std::unique_ptr<Settlement> settlement_;
  std::unique_ptr<auth::RpcGuard> guard_;
  std::unique_ptr<SettlementService> service_;
  std::unique_ptr<grpc::Server> ctl_server_;
  int ctl_port_ = 0;
  absl::Duration clock_offset_ = absl::Hours(24);
  ledger::Caller ledger_caller_{.principal = "key:test-driver"};
  const Principal backoffice_ = Principal::Of("bo-key", common::v1::ROLE_BACKOFFICE);
  const Principal finance_ = Principal::Of("fin-key", common::v1::ROLE_FINANCE);
  const Principal vet_ = Principal::Partner("vet-key", "vet");
};

}  // namespace loyalty::settlement
