#include "tests/support/chromium.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <sstream>

namespace backpack::testing {
namespace {

// The chromium binary on PATH, or "".
std::string FindChromium() {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    for (const char* name : {"chromium", "chromium-browser"}) {
      const std::string candidate = dir + "/" + name;
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
  }
  return {};
}

}  // namespace

ChromiumRender RenderInChromium(const TempDir& dir, const std::string& url) {
  ChromiumRender render;
  const std::string chromium = FindChromium();
  if (chromium.empty()) {
    render.error = "chromium is not installed; run ./deploy/bootstrap.sh test to install the test packages";
    return render;
  }
  static std::atomic<int> renders{0};
  const std::string n = std::to_string(++renders);
  const std::string profile = dir.MakeSubdir("chromium-profile-" + n);
  const std::string out = dir.path() + "/dom-" + n + ".html";
  const std::string err = dir.path() + "/chromium-" + n + ".log";
  // Background networking off: this machine's closed network would refuse it.
  const std::string command = "timeout 120 '" + chromium +
                              "' --headless --no-sandbox --disable-gpu --disable-quic --no-first-run"
                              " --disable-background-networking --disable-component-update --disable-sync"
                              " --enable-logging=stderr --user-data-dir='" +
                              profile + "' --dump-dom '" + url + "' > '" + out + "' 2> '" + err + "'";
  const int status = Shell(command);
  render.log = ReadFile(err);
  render.dom = ReadFile(out);
  if (status != 0) render.error = "chromium failed (status " + std::to_string(status) + "): " + render.log;
  return render;
}

}  // namespace backpack::testing
