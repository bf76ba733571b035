// What crash_writer writes for sequence number `seq`, shared with the test
// that checks it after the crash.
#pragma once

#include <cstdint>
#include <string>

namespace backpack::storage {

inline std::string CrashKey(uint64_t seq) {
  std::string digits = std::to_string(seq);
  return "seq/" + std::string(20 - digits.size(), '0') + digits;
}
inline std::string CrashValue(uint64_t seq) { return "value-" + std::to_string(seq); }

}  // namespace backpack::storage
