// Test support: where the third-party test vectors are (see
// ../shared/vectors/README.md beside the project), and reading their files.
// Suites that read them skip, saying so, when the folder is absent.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>

namespace backpack::testing {

// $BACKPACK_VECTORS_DIR when set, else shared/vectors beside the project's
// root (this file is <root>/tests/support/vectors.h).
inline std::filesystem::path VectorsDir() {
  if (const char* dir = std::getenv("BACKPACK_VECTORS_DIR")) return dir;
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path().parent_path() / "shared" /
         "vectors";
}

// A file's bytes, or nullopt when it cannot be read.
inline std::optional<std::string> ReadVectorFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace backpack::testing
