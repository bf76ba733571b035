// Test support: Debian's chromium, headless, as the real browser that page
// tests load their pages in.
#pragma once

#include <string>

#include "tests/support/test_http.h"

namespace backpack::testing {

struct ChromiumRender {
  std::string dom;    // the DOM after loading (--dump-dom)
  std::string log;    // chromium's own log (CSP violations show up here)
  std::string error;  // non-empty when chromium is missing or failed
};

// Loads `url` in a fresh headless profile under `dir` and dumps the DOM. A
// missing chromium is an error (the test packages install it), never a skip.
ChromiumRender RenderInChromium(const TempDir& dir, const std::string& url);

}  // namespace backpack::testing
