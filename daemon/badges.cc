#include "daemon/badges.h"
