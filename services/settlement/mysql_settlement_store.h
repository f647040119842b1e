#pragma once
// SettlementStore on MariaDB (Connector/C++). All of settlement's SQL, in
// this file and the mysql_*_store.cc files that mysql_settlement_tx.h lists.

#include <memory>

#include "common/db/pool.h"
#include "services/settlement/settlement_store.h"

namespace loyalty::settlement {

// `pool` must outlive the store.
SettlementStorePtr NewMysqlSettlementStore(db::ConnectionPool& pool);

}  // namespace loyalty::settlement
