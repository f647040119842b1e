#pragma once
// The ledger store on MariaDB (Connector/C++). All of the ledger's SQL.

#include <memory>

#include "common/db/pool.h"
#include "services/ledger/ledger_store.h"

namespace loyalty::ledger {

// `pool` must outlive the store.
std::unique_ptr<LedgerStore> NewMysqlLedgerStore(db::ConnectionPool& pool);

}  // namespace loyalty::ledger
