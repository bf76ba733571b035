// The table behind bundled_contexts.h, made at build time from
// protocol/contexts/contexts.txt. Not for use elsewhere.
#pragma once

#include <cstddef>
#include <string_view>

namespace backpack::protocol::internal {

struct BundledContextFile {
  std::string_view url;
  std::string_view bytes;
};

extern const BundledContextFile kBundledContextFiles[];
extern const size_t kBundledContextFileCount;

}  // namespace backpack::protocol::internal
