// Implemented alongside the badge verifier.
#include "tests/support/test_issuer.h"
