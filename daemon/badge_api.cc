#include "daemon/badge_api.h"
