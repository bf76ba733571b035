#include "daemon/collections.h"
