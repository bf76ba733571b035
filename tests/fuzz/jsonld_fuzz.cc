// Arbitrary bytes through JSON-LD expansion, toRdf and RDFC-1.0 (as JSON),
// or through the N-Quads parser and RDFC-1.0 (otherwise). Contexts come from
// the bundled set, and https://fuzz.example/ctx serves the input itself, so
// remote-context paths (loops included) see hostile documents too. Must
// never crash and must finish in bounded time. Besides, the library keeps its
// promises: canonical output parses back and canonicalises to itself; safe
// mode succeeds exactly when the lenient run dropped nothing, with the same
// output.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "protocol/bundled_contexts.h"
#include "protocol/jcs.h"
#include "protocol/json_depth.h"
#include "protocol/jsonld.h"
#include "protocol/rdf_canon.h"
#include "tests/fuzz/fuzz_support.h"

namespace jsonld = backpack::protocol::jsonld;
namespace rdf = backpack::protocol::rdf;

using backpack::fuzz::Require;

namespace {

rdf::CanonOptions SmallCanonOptions() {
  rdf::CanonOptions options;
  options.max_work = 20'000;
  options.max_quads = 5'000;
  return options;
}

// Canonical N-Quads are a fixed point of parse + canonicalise.
void RequireFixedPoint(const std::string& canonical) {
  auto reparsed = rdf::ParseNQuads(canonical);
  Require(reparsed.ok());
  auto again = rdf::CanonicalNQuads(*reparsed, SmallCanonOptions());
  Require(again.ok() && *again == canonical);
}

void FuzzJsonLd(const nlohmann::json& document, std::string_view bytes) {
  const auto bundled = backpack::protocol::BundledContextLoader();
  const std::string self(bytes);
  const jsonld::DocumentLoader loader = [&](const std::string& url) -> backpack::Result<jsonld::LoadedDocument> {
    if (url == "https://fuzz.example/ctx") return jsonld::LoadedDocument{url, self};
    return bundled(url);
  };
  jsonld::Options options;
  options.limits.max_nodes = 5'000;
  options.limits.max_quads = 5'000;
  options.limits.max_context_steps = 500;
  options.canon = SmallCanonOptions();

  (void)jsonld::Expand(document, loader, options);
  std::vector<jsonld::Dropped> dropped;
  auto lenient = jsonld::CanonicalNQuads(document, loader, options, &dropped);
  if (lenient.ok()) RequireFixedPoint(*lenient);

  options.safe_mode = true;
  auto safe = jsonld::CanonicalNQuads(document, loader, options);
  if (safe.ok()) Require(lenient.ok() && *lenient == *safe && dropped.empty());
  if (lenient.ok() && dropped.empty()) Require(safe.ok());

  (void)backpack::protocol::CanonicalJson(document);
}

void FuzzNQuads(std::string_view bytes) {
  auto parsed = rdf::ParseNQuads(bytes, 5'000);
  if (!parsed.ok()) return;
  // Serialising and parsing again gives the same dataset.
  auto round_trip = rdf::ParseNQuads(rdf::ToNQuads(*parsed));
  Require(round_trip.ok() && *round_trip == *parsed);
  auto canonical = rdf::CanonicalNQuads(*parsed, SmallCanonOptions());
  if (canonical.ok()) RequireFixedPoint(*canonical);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (backpack::protocol::JsonNestingDepth(bytes, 64) <= 64) {
    const auto document = nlohmann::json::parse(bytes, nullptr, /*allow_exceptions=*/false);
    if (!document.is_discarded()) {
      FuzzJsonLd(document, bytes);
      return 0;
    }
  }
  FuzzNQuads(bytes);
  return 0;
}
