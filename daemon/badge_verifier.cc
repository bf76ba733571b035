#include "daemon/badge_verifier.h"
