#pragma once
// CatalogStore on MariaDB (Connector/C++). All of the catalog's SQL.

#include <memory>

#include "common/db/pool.h"
#include "services/catalog/catalog_store.h"

namespace loyalty::catalog {

std::unique_ptr<CatalogStore> NewMysqlCatalogStore(db::ConnectionPool& pool);

}  // namespace loyalty::catalog
