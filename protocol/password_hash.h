// Password hashing with scrypt (memory-hard; OpenSSL's EVP_PBE_scrypt).
//
// Stored form, self-describing so parameters can rise later without breaking
// old hashes:  $scrypt$ln=<log2 N>,r=<r>,p=<p>$<base64url salt>$<base64url key>
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace backpack::protocol {

struct ScryptParams {
  int log2_n = 15;  // N = 32768: 32 MiB and roughly 0.1 s per hash
  int r = 8;
  int p = 1;
};

// `salt` must be at least 16 random bytes (the caller supplies randomness).
Result<std::string> HashPassword(std::string_view password, std::string_view salt,
                                 const ScryptParams& params);

// True when `password` matches `stored`; false for a mismatch or a malformed
// stored string. Runs in time independent of where the keys differ.
bool VerifyPassword(std::string_view password, std::string_view stored);

}  // namespace backpack::protocol
