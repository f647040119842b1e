#include "services/membership/membership_service.h"
