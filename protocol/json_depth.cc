#include "protocol/json_depth.h"

#include <algorithm>

namespace backpack::protocol {

int JsonNestingDepth(std::string_view text, int stop_after) {
  bool in_string = false;
  bool escaped = false;
  int depth = 0;
  int deepest = 0;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      deepest = std::max(deepest, ++depth);
      if (deepest > stop_after) return deepest;
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

}  // namespace backpack::protocol
