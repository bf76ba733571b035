// A pre-parse guard for untrusted JSON: how deeply it nests, measured on the
// raw text without building anything, so hostile input is refused before a
// recursive parser sees it.
#pragma once

#include <string_view>

namespace backpack::protocol {

// The deepest nesting of objects and arrays in `text`, ignoring brackets
// inside strings. Stops counting once the depth passes `stop_after` (returns
// stop_after + 1), so the scan is linear and cheap for any input.
int JsonNestingDepth(std::string_view text, int stop_after);

}  // namespace backpack::protocol
