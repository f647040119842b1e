#include "services/settlement/settlement_service.h"
