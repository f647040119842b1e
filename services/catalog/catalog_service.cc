#include "services/catalog/catalog_service.h"
