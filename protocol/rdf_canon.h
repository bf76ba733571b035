// RDF datasets, canonical N-Quads and RDF Dataset Canonicalization
// (RDFC-1.0, the algorithm formerly called URDNA2015).
//
// Canonicalisation gives every blank node a label that depends only on the
// shape of the dataset, so two isomorphic datasets serialise to the same
// bytes: what a Data Integrity proof (eddsa-rdfc-2022, Ed25519Signature2020)
// hashes. The general problem is as hard as graph isomorphism; a hostile
// dataset ("poison graph") can make the algorithm's permutation search run
// for ever, so the work is bounded (CanonOptions) and exceeding it is an
// error, never a wrong answer.
//
// Pure code: no I/O, no clock. Every function is thread-safe.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace backpack::protocol::rdf {

inline constexpr std::string_view kRdfType = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type";
inline constexpr std::string_view kRdfFirst = "http://www.w3.org/1999/02/22-rdf-syntax-ns#first";
inline constexpr std::string_view kRdfRest = "http://www.w3.org/1999/02/22-rdf-syntax-ns#rest";
inline constexpr std::string_view kRdfNil = "http://www.w3.org/1999/02/22-rdf-syntax-ns#nil";
inline constexpr std::string_view kRdfJson = "http://www.w3.org/1999/02/22-rdf-syntax-ns#JSON";
inline constexpr std::string_view kRdfLangString = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString";
inline constexpr std::string_view kXsdString = "http://www.w3.org/2001/XMLSchema#string";
inline constexpr std::string_view kXsdBoolean = "http://www.w3.org/2001/XMLSchema#boolean";
inline constexpr std::string_view kXsdInteger = "http://www.w3.org/2001/XMLSchema#integer";
inline constexpr std::string_view kXsdDouble = "http://www.w3.org/2001/XMLSchema#double";

enum class TermKind : uint8_t { kDefaultGraph, kIri, kBlankNode, kLiteral };

// One RDF term. `value` is the IRI, the blank node label (without "_:") or
// the literal's lexical form. Literals always carry a datatype: xsd:string
// for simple literals, rdf:langString when `language` is set.
struct Term {
  TermKind kind = TermKind::kDefaultGraph;
  std::string value;
  std::string datatype;
  std::string language;

  static Term Iri(std::string iri) { return {TermKind::kIri, std::move(iri), {}, {}}; }
  static Term BlankNode(std::string label) { return {TermKind::kBlankNode, std::move(label), {}, {}}; }
  static Term Literal(std::string lexical, std::string datatype, std::string language = {}) {
    return {TermKind::kLiteral, std::move(lexical), std::move(datatype), std::move(language)};
  }
  static Term DefaultGraph() { return {}; }

  bool is_blank() const { return kind == TermKind::kBlankNode; }
  friend bool operator==(const Term&, const Term&) = default;
  friend auto operator<=>(const Term&, const Term&) = default;
};

struct Quad {
  Term subject;
  Term predicate;
  Term object;
  Term graph;  // TermKind::kDefaultGraph for the default graph

  friend bool operator==(const Quad&, const Quad&) = default;
  friend auto operator<=>(const Quad&, const Quad&) = default;
};

// A dataset as a list of quads; duplicates are allowed here and count once.
using Dataset = std::vector<Quad>;

// One quad in canonical N-Quads form (RDFC-1.0 appendix A), with its final
// line feed. Blank nodes are written with the labels they carry.
std::string ToNQuad(const Quad& quad);
// Every quad in the order given, each on its own line.
std::string ToNQuads(const Dataset& dataset);

// Parses N-Quads (RDF 1.1 N-Quads grammar: IRIs, blank nodes, literals with
// datatype or language, optional graph label, comments, ECHAR/UCHAR escapes).
// Refuses more than `max_quads` statements. For test vectors and tools.
Result<Dataset> ParseNQuads(std::string_view text, size_t max_quads = 1'000'000);

struct CanonOptions {
  // Refuse datasets larger than this (after removing duplicate quads).
  size_t max_quads = 200'000;
  // Refuse datasets with more distinct blank nodes than this.
  size_t max_blank_nodes = 20'000;
  // Budget for the N-degree search: one unit per Hash N-Degree Quads call
  // and per permutation examined. Ordinary credentials need none at all
  // (every blank node is told apart by its own quads); a graph of many
  // interchangeable blank nodes can need factorially many.
  uint64_t max_work = 200'000;
  // Deepest recursion of Hash N-Degree Quads (it follows chains of blank
  // nodes that look alike, one level per node).
  size_t max_recursion_depth = 1'000;
  // Write literals as URDNA2015 did before RDFC-1.0 fixed the escaping: only
  // '"', '\\', LF and CR escaped, other control characters (TAB among
  // them) and DEL written raw. Signers built on older JavaScript libraries
  // produced that form; it differs from RDFC-1.0 only for literals holding
  // such characters. A verifier may retry with it when a proof over such a
  // document fails.
  bool legacy_urdna2015_escaping = false;
};

struct CanonicalDataset {
  // The canonical N-Quads document: canonical lines sorted in code point
  // order, each ending in a line feed; duplicates removed.
  std::string nquads;
  // Input blank node label -> canonical label ("c14n0", "c14n1", ...).
  std::map<std::string, std::string> labels;
};

// RDFC-1.0 with SHA-256. InvalidArgument when the dataset exceeds a limit
// of `options` (the message says which); never a partial result.
Result<CanonicalDataset> Canonicalize(const Dataset& dataset, const CanonOptions& options = {});
// Just the canonical N-Quads document.
Result<std::string> CanonicalNQuads(const Dataset& dataset, const CanonOptions& options = {});

}  // namespace backpack::protocol::rdf
