#include "protocol/bundled_contexts.h"

#include <string>

#include "protocol/bundled_contexts_data.h"

namespace backpack::protocol {

std::optional<std::string_view> BundledContext(std::string_view url) {
  for (size_t i = 0; i < internal::kBundledContextFileCount; ++i) {
    if (internal::kBundledContextFiles[i].url == url) return internal::kBundledContextFiles[i].bytes;
  }
  return std::nullopt;
}

std::vector<std::string_view> BundledContextUrls() {
  std::vector<std::string_view> urls;
  for (size_t i = 0; i < internal::kBundledContextFileCount; ++i) urls.push_back(internal::kBundledContextFiles[i].url);
  return urls;
}

jsonld::DocumentLoader BundledContextLoader() {
  return [](const std::string& url) -> Result<jsonld::LoadedDocument> {
    auto bytes = BundledContext(url);
    if (!bytes) return NotFound("context not bundled: " + url);
    return jsonld::LoadedDocument{url, std::string(*bytes)};
  };
}

}  // namespace backpack::protocol
