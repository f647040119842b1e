#include "services/ledger/ledger_service.h"
