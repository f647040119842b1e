#pragma once
// A ledger wired to a throwaway MariaDB schema: migrations applied, the real
// MySQL store, the batch writer and a rules snapshot built in code.
//
// Partners: vet (EUR, 1 point per EUR), food (EUR, 2 points per EUR),
// groomer (EUR), closed-shop (suspended), prepaid (EUR, 1 point per EUR,
// prepaid with 100 points bought). Members: "gold-1" at tier gold
// (1.5x), "frozen" suspended; everyone else active at the base tier.
// Campaign "double-dog": +100% on category "dog" at food. Campaign "capped":
// +10 points per purchase at groomer, budgeted (no bonus without a lease;
// the snapshot has no budgets unless a test adds them).

#include <memory>
#include <string>

#include "common/db/pool.h"
#include "common/testing/test_db.h"
#include "services/ledger/batch_writer.h"
#include "services/ledger/ledger.h"
#include "services/ledger/ledger_store.h"
#include "services/ledger/member_directory.h"
#include "services/ledger/rules_cache.h"

namespace loyalty::ledger::testing {

RulesSnapshotPtr TestRules();

struct LedgerUnderTest {
  // Declared in dependency order: destroyed writer first, database last.
  std::unique_ptr<loyalty::testing::TestDatabase> db;
  std::unique_ptr<db::ConnectionPool> pool;
  std::unique_ptr<LedgerStore> store;
  std::unique_ptr<RulesCache> rules;
  std::unique_ptr<BatchWriter> writer;
  std::unique_ptr<MemberDirectory> members;
  std::unique_ptr<Ledger> ledger;
};

// REQUIRES: the test database is reachable (ASSERTs inside).
// `member_lookup` stands in for membership (see member_directory.h); by
// default member ids are not checked, as with a rules file and no feed.
std::unique_ptr<LedgerUnderTest> MakeLedger(bool batching = true, int pool_size = 8,
                                            MemberDirectory::Lookup member_lookup = {});

// The invariants every test ends with; returns "" when all hold, else a
// description of each violation:
//  - per ledger, posted and pending balances sum to zero;
//  - posted balances equal a replay of the journal;
//  - member balances (posted, and available) are never negative;
//  - each member's open lots add up to its posted balance;
//  - member_partners holds exactly each member's first earn at each partner;
//  - every transfer's allocations add up to its points;
//  - the hash chain verifies from the first transfer to the head.
std::string CheckInvariants(LedgerUnderTest& t);
// All of the above but the chain, read straight from a ledger schema (for
// tests that run the ledger binary; its chain is checked with loyaltyctl).
std::string CheckStoredInvariants(db::ConnectionPool& pool);

// A valid earn request.
v1::EarnRequest EarnOf(const std::string& key, const std::string& partner,
                       const std::string& member, int64_t amount_minor,
                       const std::string& category = "food");

}  // namespace loyalty::ledger::testing
