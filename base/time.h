// Time formatting shared by every layer.
#pragma once

#include <cstdint>
#include <string>

namespace backpack {

// "2026-11-27T03:08:00Z" for Unix seconds (UTC).
std::string FormatRfc3339(int64_t unix_seconds);

}  // namespace backpack
