#include "daemon/collection_api.h"
