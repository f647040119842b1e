#pragma once
// MembershipStore on MariaDB (Connector/C++). All of membership's SQL.

#include <memory>

#include "common/db/pool.h"
#include "services/membership/membership_store.h"

namespace loyalty::membership {

std::unique_ptr<MembershipStore> NewMysqlMembershipStore(db::ConnectionPool& pool);

}  // namespace loyalty::membership
