// JSON-LD 1.1: context processing, expansion and deserialisation to RDF
// (toRdf), as far as Verifiable Credentials (VCDM 1.1 and 2.0), Open Badges
// 3.0, Data Integrity proofs, status lists and DID documents need; then
// RDFC-1.0 canonical N-Quads (protocol/rdf_canon.h), which is what an
// eddsa-rdfc-2022 or Ed25519Signature2020 proof hashes.
//
// Contexts are never fetched here: every context URL goes through the
// caller's DocumentLoader (BundledContextLoader() in
// protocol/bundled_contexts.h serves the contexts compiled into the binary).
// Hostile input is bounded (Limits): nesting depth, context loads, context
// processing steps, nodes and quads, and the canonicalisation work.
//
// Safe mode: expansion silently drops what it cannot interpret (a property
// no context defines, a relative IRI, a value with nothing to attach to).
// For a signature that means unsigned data could ride along, so Data
// Integrity verifiers must refuse such documents: Options::safe_mode turns
// every drop into an InvalidArgument error naming what was dropped; without
// it, drops are reported through the `dropped` out-parameter.
//
// Pure code: no I/O, no clock. All functions are thread-safe; a ContextCache
// may be shared by any number of threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "protocol/rdf_canon.h"

namespace backpack::protocol::jsonld {

// A document the loader returns: the URL it was finally served from (after
// any redirect; relative URLs inside it resolve against this) and its bytes.
struct LoadedDocument {
  std::string url;
  std::string body;
};

// Resolves a context URL. Must be thread-safe when a ContextCache is shared.
// Its error's code is kept (NotFound for "no such context here",
// Unavailable for "try again later").
using DocumentLoader = std::function<Result<LoadedDocument>(const std::string& url)>;

struct Limits {
  // Nesting of the input document (objects and arrays) and of each context.
  int max_depth = 64;
  // Size of one loaded context document.
  size_t max_context_bytes = 512 * 1024;
  // Remote contexts that include one another, deepest chain.
  size_t max_remote_context_depth = 16;
  // Context documents loaded (cache misses) in one call.
  size_t max_context_loads = 64;
  // Local contexts processed in one call that the cache did not answer
  // (inline, property- and type-scoped contexts; each walks its terms).
  size_t max_context_steps = 2'000;
  // Node and value objects in the expanded document.
  size_t max_nodes = 50'000;
  // Quads produced by toRdf.
  size_t max_quads = 100'000;
};

// Something expansion or toRdf left out. `kind` is one of:
//   "invalid property"            a key no context maps to an IRI
//   "relative @id reference"      an @id that stays relative (no base)
//   "relative @type reference"    a type that stays relative
//   "relative @vocab reference", "reserved @id value", "reserved term",
//   "reserved @reverse value",
//   "free-floating value"         a scalar, value or list with no subject
//   "empty object", "object with only @id", "object with only @language",
//   "null @value value", "invalid @language value", "keyword not allowed",
//   "relative subject reference", "relative property reference",
//   "relative object reference", "relative graph reference",
//   "relative type reference", "blank node predicate", "invalid literal"
// `detail` names the key or value.
struct Dropped {
  std::string kind;
  std::string detail;
};

class ContextCache;

struct Options {
  // Base IRI of the document, for relative @id values; empty: none (relative
  // IRIs then stay relative and are dropped from RDF).
  std::string base;
  // Refuse, rather than drop, anything listed under Dropped.
  bool safe_mode = false;
  // Processed contexts are kept here across calls when set (strongly
  // recommended: processing the Verifiable Credentials and Open Badges
  // contexts costs far more than expanding a credential). Without one, each
  // call processes its contexts afresh.
  ContextCache* cache = nullptr;
  Limits limits;
  rdf::CanonOptions canon;
};

// Keeps parsed context documents and processed active contexts (keyed by
// the context they started from and the context URL or scoped-context
// definition applied), so a credential's contexts are processed once per
// process. Entries are immutable once built; lookups and inserts are
// thread-safe. Keep one cache per DocumentLoader: entries are keyed by URL,
// not by loader. Bounded: beyond `max_entries` nothing more is cached.
class ContextCache {
 public:
  explicit ContextCache(size_t max_entries = 4096);
  ~ContextCache();
  ContextCache(const ContextCache&) = delete;
  ContextCache& operator=(const ContextCache&) = delete;

  // Processed contexts and documents held.
  size_t size() const;

 private:
  friend class Processor;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Expanded document form (JSON-LD 1.1 Expansion), an array of node objects.
// `dropped`, when given, receives what was left out (capped at 1000 entries).
Result<nlohmann::json> Expand(const nlohmann::json& document, const DocumentLoader& loader,
                              const Options& options, std::vector<Dropped>* dropped = nullptr);

// The document as an RDF dataset (Expansion, then Deserialize JSON-LD to
// RDF). Blank nodes are labelled b0, b1, ... in document order; triples whose
// subject, predicate or object is not an absolute IRI or blank node are left
// out (and reported). Numbers: xsd:integer for integral values below 10^21,
// else xsd:double written as %.15e with trailing zeros removed ("1.5E0"), as
// JavaScript processors write them; "@json" values as rdf:JSON in JCS form.
Result<rdf::Dataset> ToRdf(const nlohmann::json& document, const DocumentLoader& loader, const Options& options,
                           std::vector<Dropped>* dropped = nullptr);

// ToRdf, then RDFC-1.0: the canonical N-Quads a Data Integrity proof hashes.
// For a proof, call it on the document without its `proof`, and on the proof
// options (the proof without `proofValue`, with the document's @context).
Result<std::string> CanonicalNQuads(const nlohmann::json& document, const DocumentLoader& loader,
                                    const Options& options, std::vector<Dropped>* dropped = nullptr);

// A DocumentLoader that serves fixed documents (URL -> JSON text), for tests
// and for callers with their own pinned contexts; NotFound for anything else.
DocumentLoader StaticDocumentLoader(std::vector<std::pair<std::string, std::string>> documents);

}  // namespace backpack::protocol::jsonld
