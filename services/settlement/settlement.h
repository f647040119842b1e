#pragma once
// Settlement's use cases, as the gRPC adapter calls them: a thin aggregate
// that keeps construction in one place and exposes one class per use-case
// group. Domain code: no gRPC or MySQL includes; storage goes through
// SettlementStore, the ledger through LedgerClient (settlement_deps.h).
//
//   partners()           the partner directory and the snapshot feed
//   contracts()          contract versions
//   prepaid()            point blocks, balances, alerts, journal follower
//   api_keys()           credentials and AuthenticateApiKey
//   period_close()       periods, close (resumable) and finalise
//   statement_queries()  statements, netting, export
//   disputes()           disputes of statement lines
//   reconciliation()     reconciliation against the ledger
//   audit_events()       the audit trail
//
// Every mutation is idempotent by key (settlement_common.h). Roles are
// checked by the adapter's RpcGuard against the proto's allowed_roles; the
// use-case classes scope partner callers to their own partner_id.
//
// Thread-safe: no mutable state besides the store and the ledger client.
// Not copyable or movable: the use-case classes refer to its deps.

#include "services/settlement/api_keys.h"
#include "services/settlement/audit_events.h"
#include "services/settlement/contracts.h"
#include "services/settlement/disputes.h"
#include "services/settlement/ledger_client.h"
#include "services/settlement/partners.h"
#include "services/settlement/period_close.h"
#include "services/settlement/prepaid.h"
#include "services/settlement/reconciliation.h"
#include "services/settlement/settlement_deps.h"
#include "services/settlement/settlement_store.h"
#include "services/settlement/statement_queries.h"

namespace loyalty::settlement {

class Settlement {
 public:
  Settlement(SettlementStore& store, LedgerClient& ledger, SettlementOptions options = {})
      : deps_{store, ledger, std::move(options)},
        partners_(deps_),
        contracts_(deps_),
        prepaid_(deps_),
        api_keys_(deps_),
        period_close_(deps_),
        statement_queries_(deps_),
        disputes_(deps_),
        reconciliation_(deps_),
        audit_events_(deps_) {}
  Settlement(const Settlement&) = delete;
  Settlement& operator=(const Settlement&) = delete;

  Partners& partners() { return partners_; }
  Contracts& contracts() { return contracts_; }
  Prepaid& prepaid() { return prepaid_; }
  ApiKeys& api_keys() { return api_keys_; }
  PeriodClose& period_close() { return period_close_; }
  StatementQueries& statement_queries() { return statement_queries_; }
  Disputes& disputes() { return disputes_; }
  Reconciliation& reconciliation() { return reconciliation_; }
  AuditEvents& audit_events() { return audit_events_; }

 private:
  const SettlementDeps deps_;  // first: the members below refer to it
  Partners partners_;
  Contracts contracts_;
  Prepaid prepaid_;
  ApiKeys api_keys_;
  PeriodClose period_close_;
  StatementQueries statement_queries_;
  Disputes disputes_;
  Reconciliation reconciliation_;
  AuditEvents audit_events_;
};

}  // namespace loyalty::settlement
