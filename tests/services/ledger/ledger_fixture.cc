#include "tests/services/ledger/ledger_fixture.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <map>

#include "absl/strings/str_cat.h"
#include "common/db/migrations.h"
#include "common/db/transaction.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "services/ledger/journal.h"
#include "services/ledger/mysql_ledger_store.h"

namespace loyalty::ledger {
const std::vector<db::MigrationFile>& Migrations();
}  // namespace loyalty::ledger

namespace loyalty::ledger::testing {
namespace {

using google::protobuf::util::TimeUtil;

settlement::v1::PartnerSnapshot Partner(const std::string& id, int64_t rate,
                                        settlement::v1::PartnerStatus status) {
  settlement::v1::PartnerSnapshot p;
  p.set_partner_id(id);
  p.set_status(status);
  p.set_settlement_currency("EUR");
  auto* c = p.add_contracts();
  c->set_contract_id(id + "-c1");
  c->set_partner_id(id);
  c->set_version(1);
  *c->mutable_effective_from() = TimeUtil::SecondsToTimestamp(0);
  c->set_earn_currency("EUR");
  c->set_earn_rate_milli_points_per_unit(rate);
  return p;
}

}  // namespace

RulesSnapshotPtr TestRules() {
  internal::v1::EarnRulesFile file;
  *file.add_partners() = Partner("vet", 1000, settlement::v1::PARTNER_STATUS_ACTIVE);
  *file.add_partners() = Partner("food", 2000, settlement::v1::PARTNER_STATUS_ACTIVE);
  *file.add_partners() = Partner("groomer", 1000, settlement::v1::PARTNER_STATUS_ACTIVE);
  *file.add_partners() = Partner("closed-shop", 1000, settlement::v1::PARTNER_STATUS_SUSPENDED);
  // Prepaid: bought 100 points, counted from the first sequence.
  settlement::v1::PartnerSnapshot prepaid = Partner("prepaid", 1000, settlement::v1::PARTNER_STATUS_ACTIVE);
  prepaid.mutable_contracts(0)->set_funding_model(settlement::v1::FUNDING_MODEL_PREPAID);
  prepaid.set_prepaid_remaining_points(100);
  *file.add_partners() = prepaid;
  auto* gold = file.mutable_tier_ladder()->add_tiers();
  gold->set_tier_id("gold");
  gold->set_tier_multiplier_bp(15000);
  auto* m = file.add_members();
  m->set_member_id("gold-1");
  m->set_status(membership::v1::MEMBER_STATUS_ACTIVE);
  m->set_tier_id("gold");
  auto* frozen = file.add_members();
  frozen->set_member_id("frozen");
  frozen->set_status(membership::v1::MEMBER_STATUS_SUSPENDED);
  auto* campaign = file.add_campaigns();
  campaign->set_campaign_id("double-dog");
  campaign->set_name("Double points on dog food");
  campaign->set_state(catalog::v1::CAMPAIGN_STATE_ACTIVE);
  campaign->set_bonus_rate_bp(10000);
  campaign->add_partner_ids("food");
  campaign->add_categories("dog");
  // Budgeted: +10 points per groomer purchase, out of leased budget only.
  auto* capped = file.add_campaigns();
  capped->set_campaign_id("capped");
  capped->set_name("Ten extra at the groomer, while the budget lasts");
  capped->set_state(catalog::v1::CAMPAIGN_STATE_ACTIVE);
  capped->set_fixed_bonus_points(10);
  capped->add_partner_ids("groomer");
  capped->set_budget_points(1000);
  file.set_lot_expiry_days(365);
  return *SnapshotFromFile(file, 1, 365);
}

std::unique_ptr<LedgerUnderTest> MakeLedger(bool batching, int pool_size, MemberDirectory::Lookup member_lookup) {
  auto t = std::make_unique<LedgerUnderTest>();
  auto db = loyalty::testing::TestDatabase::Create("ledger");
  EXPECT_TRUE(db.ok()) << db.status();
  if (!db.ok()) return nullptr;
  t->db = *std::move(db);
  auto applied = db::ApplyMigrations(t->db->pool(), Migrations());
  EXPECT_TRUE(applied.ok()) << applied.status();
  auto pool = t->db->NewPool(pool_size);
  EXPECT_TRUE(pool.ok());
  t->pool = *std::move(pool);
  t->store = NewMysqlLedgerStore(*t->pool);
  t->rules = std::make_unique<RulesCache>(TestRules());
  BatchWriterOptions options;
  options.batching = batching;
  t->writer = std::make_unique<BatchWriter>(*t->store, *t->rules, options);
  t->members = std::make_unique<MemberDirectory>(std::move(member_lookup));
  t->ledger = std::make_unique<Ledger>(*t->store, *t->rules, *t->writer, *t->members);
  return t;
}

v1::EarnRequest EarnOf(const std::string& key, const std::string& partner,
                       const std::string& member, int64_t amount_minor,
                       const std::string& category) {
  v1::EarnRequest r;
  r.set_idempotency_key(key);
  r.set_partner_id(partner);
  r.set_member_id(member);
  r.mutable_amount()->set_amount_minor(amount_minor);
  r.mutable_amount()->set_currency("EUR");
  auto* line = r.add_lines();
  line->set_category(category);
  line->set_quantity(1);
  *line->mutable_amount() = r.amount();
  r.set_receipt_reference(key);
  return r;
}

std::string CheckStoredInvariants(db::ConnectionPool& pool) {
  std::string problems;
  auto fail = [&](const std::string& what) { absl::StrAppend(&problems, what, "\n"); };
  std::map<std::string, std::pair<int64_t, int64_t>> accounts;  // posted, available
  std::map<std::string, int64_t> replayed;
  std::map<std::string, int64_t> lots_by_member;
  int64_t posted_sum = 0, pending_sum = 0;
  absl::Status s = db::RunWithConnection(pool, "invariants", [&](db::PooledConnection& c) {
    std::unique_ptr<sql::ResultSet> rs(
        c.Prepare("SELECT account, credits_posted - debits_posted, "
                  "credits_pending - debits_pending, credits_posted - debits_posted - debits_pending "
                  "FROM accounts").executeQuery());
    while (rs->next()) {
      const std::string name = rs->getString(1);
      accounts[name] = {rs->getInt64(2), rs->getInt64(4)};
      posted_sum += rs->getInt64(2);
      pending_sum += rs->getInt64(3);
    }
    std::unique_ptr<sql::ResultSet> lots(
        c.Prepare("SELECT member_id, SUM(remaining_points) FROM lots GROUP BY member_id")
            .executeQuery());
    while (lots->next()) lots_by_member[lots->getString(1)] = lots->getInt64(2);
    // Every member's first earn at each partner is in member_partners, and
    // nothing else is (first-purchase campaigns rely on it).
    std::unique_ptr<sql::ResultSet> firsts(
        c.Prepare("SELECT COUNT(*) FROM (SELECT member_id, partner_id, MIN(sequence) AS first_sequence "
                  "FROM transfers WHERE code = 1 GROUP BY member_id, partner_id) e "
                  "LEFT JOIN member_partners m USING (member_id, partner_id, first_sequence) "
                  "WHERE m.member_id IS NULL")
            .executeQuery());
    if (firsts->next() && firsts->getInt64(1) != 0) {
      fail(absl::StrCat(firsts->getInt64(1), " first earns at a partner missing from member_partners"));
    }
    std::unique_ptr<sql::ResultSet> extra(
        c.Prepare("SELECT COUNT(*) FROM member_partners m WHERE NOT EXISTS (SELECT 1 FROM transfers t "
                  "WHERE t.member_id = m.member_id AND t.partner_id = m.partner_id AND t.code = 1)")
            .executeQuery());
    if (extra->next() && extra->getInt64(1) != 0) {
      fail(absl::StrCat(extra->getInt64(1), " member_partners rows without an earn"));
    }
    std::unique_ptr<sql::ResultSet> transfers(
        c.Prepare("SELECT body FROM transfers ORDER BY sequence").executeQuery());
    while (transfers->next()) {
      v1::Transfer tr;
      tr.ParseFromString(transfers->getString(1));
      switch (tr.code()) {
        case v1::TRANSFER_CODE_HOLD:
        case v1::TRANSFER_CODE_HOLD_VOID:
        case v1::TRANSFER_CODE_HOLD_EXPIRE:
          continue;  // pending only
        default:
          break;
      }
      replayed[tr.debit_account()] -= tr.points();
      replayed[tr.credit_account()] += tr.points();
      if (tr.allocations_size() > 0) {
        int64_t allocated = 0;
        for (const auto& a : tr.allocations()) allocated += a.points();
        if (allocated != tr.points()) {
          fail(absl::StrCat("transfer ", tr.sequence(), " allocations ", allocated, " != points ",
                            tr.points()));
        }
      } else if (tr.code() != v1::TRANSFER_CODE_ADJUST || tr.points() > 0) {
        if (tr.code() != v1::TRANSFER_CODE_REVERSE_EARN) {
          fail(absl::StrCat("transfer ", tr.sequence(), " (", v1::TransferCode_Name(tr.code()),
                            ") has no allocations"));
        }
      }
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s.ToString();
  if (posted_sum != 0) fail(absl::StrCat("posted balances sum to ", posted_sum));
  if (pending_sum != 0) fail(absl::StrCat("pending balances sum to ", pending_sum));
  for (const auto& [name, balances] : accounts) {
    if (replayed[name] != balances.first) {
      fail(absl::StrCat(name, " posted ", balances.first, " but the journal replays to ",
                        replayed[name]));
    }
    if (name.rfind("member:", 0) == 0) {
      if (balances.first < 0 || balances.second < 0) {
        fail(absl::StrCat(name, " is negative: posted ", balances.first, ", available ",
                          balances.second));
      }
      const std::string member = name.substr(7);
      if (lots_by_member[member] != balances.first) {
        fail(absl::StrCat(name, " posted ", balances.first, " but its lots hold ",
                          lots_by_member[member]));
      }
    }
  }
  return problems;
}

std::string CheckInvariants(LedgerUnderTest& t) {
  std::string problems = CheckStoredInvariants(t.db->pool());
  auto fail = [&](const std::string& what) { absl::StrAppend(&problems, what, "\n"); };
  auto chain = t.ledger->VerifyChain(v1::VerifyChainRequest());
  if (!chain.ok()) {
    fail(chain.status().ToString());
  } else if (chain->first_bad_sequence() != 0) {
    fail(absl::StrCat("chain broken at ", chain->first_bad_sequence(), ": ", chain->detail()));
  }
  return problems;
}

}  // namespace loyalty::ledger::testing
