#pragma once
// The catalog's use cases, as the gRPC adapter calls them: one class per
// use-case group, built here in one place. Domain code: no gRPC or MySQL
// includes; storage goes through CatalogStore, the ledger through
// LedgerClient, member tiers through MemberDirectory (CatalogDeps).
//
//   rewards()   Rewards      rewards.h      rewards, stock, redeemable lists
//   redeem()    RedeemSaga   redeem_saga.h  Redeem: hold, stock, voucher
//   vouchers()  Vouchers     vouchers.h     get, list, honour, cancel
//   coupons()   Coupons      coupons.h      batches, codes, redeem + bonus
//   campaigns() Campaigns    campaigns.h    campaigns, earn rules, budgets
//   jobs()      CatalogJobs  catalog_jobs.h recovery, repair, expiry, grants
//
// Every mutation is idempotent by key (scoped to the calling credential):
// the answer (a business refusal included) is stored with its effects, and a
// retry gets the same answer. INVALID_ARGUMENT and PERMISSION_DENIED are not
// stored, so a caller can correct the request and reuse the key; transient
// failures (UNAVAILABLE, ABORTED) are not stored either (Mutate,
// catalog_shared.h).
//
// Redeem is a saga (docs/adr/0011-catalog.md): its `redemptions` row is
// written before anything else and records each step, so that
// jobs().Recover() can finish or compensate a saga cut short by a crash.
// Thread-safe: all state is in the store. Not copyable: the use-case
// classes refer to the Catalog's own CatalogDeps.

#include "services/catalog/campaigns.h"
#include "services/catalog/catalog_deps.h"
#include "services/catalog/catalog_jobs.h"
#include "services/catalog/catalog_store.h"
#include "services/catalog/coupons.h"
#include "services/catalog/ledger_client.h"
#include "services/catalog/redeem_saga.h"
#include "services/catalog/rewards.h"
#include "services/catalog/vouchers.h"

namespace loyalty::catalog {

class Catalog {
 public:
  Catalog(CatalogStore& store, LedgerClient& ledger, MemberDirectory& members, CatalogOptions options = {})
      : deps_{store, ledger, members, std::move(options)},
        rewards_(deps_),
        redeem_(deps_),
        vouchers_(deps_),
        coupons_(deps_),
        campaigns_(deps_),
        jobs_(deps_, redeem_, vouchers_, coupons_) {}
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  Rewards& rewards() { return rewards_; }
  RedeemSaga& redeem() { return redeem_; }
  Vouchers& vouchers() { return vouchers_; }
  Coupons& coupons() { return coupons_; }
  Campaigns& campaigns() { return campaigns_; }
  // The background work main.cc runs in a loop.
  CatalogJobs& jobs() { return jobs_; }

 private:
  CatalogDeps deps_;  // first: the use cases below refer to it
  Rewards rewards_;
  RedeemSaga redeem_;
  Vouchers vouchers_;
  Coupons coupons_;
  Campaigns campaigns_;
  CatalogJobs jobs_;
};

}  // namespace loyalty::catalog
