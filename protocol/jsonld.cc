// JSON-LD 1.1 Processing Algorithms (W3C Recommendation), sections 4
// (context processing), 5 (expansion) and 8 (deserialisation to RDF), in
// processing mode json-ld-1.1. Not here: compaction, flattening, framing,
// fromRdf, rdfDirection. toRdf builds the dataset by walking the expanded
// document directly rather than through a node map: the set of quads is the
// same (blank node labels aside, which canonicalisation replaces).
#include "protocol/jsonld.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "protocol/jcs.h"
#include "protocol/json_depth.h"

namespace backpack::protocol::jsonld {
namespace {

using Json = nlohmann::json;

constexpr size_t kMaxReportedDrops = 1000;

// ---------------------------------------------------------------------------
// Keywords, IRIs, language tags

bool IsKeyword(std::string_view s) {
  static const std::unordered_set<std::string_view> kKeywords = {
      "@base",    "@container", "@context",  "@default", "@direction", "@embed",    "@explicit",
      "@graph",   "@id",        "@import",   "@included", "@index",    "@json",     "@language",
      "@list",    "@nest",      "@none",     "@omitDefault", "@prefix", "@preserve", "@protected",
      "@propagate", "@requireAll", "@reverse", "@set",     "@type",      "@value",    "@version",
      "@vocab"};
  return s.size() > 1 && s[0] == '@' && kKeywords.count(s) > 0;
}

// "@" 1*ALPHA: reserved for future keywords; such terms and values are ignored.
bool HasKeywordForm(std::string_view s) {
  if (s.size() < 2 || s[0] != '@') return false;
  return std::all_of(s.begin() + 1, s.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)); });
}

bool IsScheme(std::string_view s) {
  if (s.empty() || !std::isalpha(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
  });
}

bool IsAbsoluteIri(std::string_view s) {
  const size_t colon = s.find(':');
  return colon != std::string_view::npos && IsScheme(s.substr(0, colon));
}

bool IsBlankNodeId(std::string_view s) { return s.size() >= 2 && s[0] == '_' && s[1] == ':'; }

// HasWhiteSpace from a point where a UTF-8 sequence may start: decodes each
// multi-byte sequence (leniently: the bytes after a lead byte are taken as
// its continuation whatever they are) and compares its code point.
bool HasWhiteSpaceFrom(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == ' ' || (c >= 0x09 && c <= 0x0d)) return true;
    if (c < 0x80) continue;
    uint32_t cp = 0;
    size_t n = 0;
    if ((c & 0xe0) == 0xc0) {
      cp = c & 0x1f;
      n = 1;
    } else if ((c & 0xf0) == 0xe0) {
      cp = c & 0x0f;
      n = 2;
    } else if ((c & 0xf8) == 0xf0) {
      cp = c & 0x07;
      n = 3;
    }
    for (size_t k = 0; k < n && i + 1 < s.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[++i]) & 0x3f);
    if (cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
        cp == 0x202f || cp == 0x205f || cp == 0x3000 || cp == 0xfeff) {
      return true;
    }
  }
  return false;
}

// White space as JavaScript's \s knows it (ASCII, NBSP, the Unicode spaces,
// line and paragraph separators, BOM). JavaScript processors refuse IRIs
// containing any of it, so we do too, to agree on what a document means.
// IRIs are checked many times per document and are nearly always ASCII, so
// the ASCII prefix is scanned first; decoding starts at the first byte
// above 0x7f (a sequence boundary, since every byte before it is ASCII).
bool HasWhiteSpace(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) return HasWhiteSpaceFrom(s.substr(i));
    if (c == ' ' || (c >= 0x09 && c <= 0x0d)) return true;
  }
  return false;
}

// Byte classes for IsWellFormedIri: bytes IRIREF excludes (controls, space,
// DEL, <>"{}|^`\), '#', the bytes above 0x7f (which may encode white
// space), and the rest.
enum IriByte : uint8_t { kIriPlain, kIriRefused, kIriHash, kIriNonAscii };

constexpr std::array<uint8_t, 256> MakeIriByteClasses() {
  std::array<uint8_t, 256> classes{};
  for (int c = 0; c < 256; ++c) {
    if (c <= 0x20 || c == 0x7f || c == '<' || c == '>' || c == '"' || c == '{' || c == '}' || c == '|' ||
        c == '^' || c == '`' || c == '\\') {
      classes[c] = kIriRefused;
    } else if (c == '#') {
      classes[c] = kIriHash;
    } else if (c >= 0x80) {
      classes[c] = kIriNonAscii;
    }
  }
  return classes;
}
constexpr std::array<uint8_t, 256> kIriByteClasses = MakeIriByteClasses();

// An absolute IRI or a blank node identifier, as processors judge an
// expanded key or @id: a scheme, and no white space.
bool IsAbsoluteOrBlank(std::string_view s) {
  return (IsBlankNodeId(s) || IsAbsoluteIri(s)) && !HasWhiteSpace(s);
}

// An absolute IRI that N-Quads can carry: no white space, controls or the
// characters IRIREF excludes, at most one '#'. One pass: ASCII white space
// is among the refused bytes, and the first byte above 0x7f hands the rest
// to the Unicode white space check.
bool IsWellFormedIri(std::string_view s) {
  if (!IsAbsoluteIri(s)) return false;
  bool seen_hash = false;
  bool unicode_checked = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const uint8_t kind = kIriByteClasses[static_cast<unsigned char>(s[i])];
    if (kind == kIriPlain) continue;
    if (kind == kIriRefused) return false;
    if (kind == kIriHash) {
      if (seen_hash) return false;
      seen_hash = true;
    } else if (!unicode_checked) {
      if (HasWhiteSpaceFrom(s.substr(i))) return false;
      unicode_checked = true;
    }
  }
  return true;
}

bool IsWellFormedBlankNode(std::string_view s) {
  if (!IsBlankNodeId(s) || s.size() < 3) return false;
  for (char ch : s.substr(2)) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7f || c == '<' || c == '>' || c == '"' || c == '\\') return false;
  }
  return true;
}

// BCP 47 shape: 1*8ALPHA *("-" 1*8alphanum).
bool IsWellFormedLanguage(std::string_view s) {
  size_t i = 0;
  size_t part = 0;
  bool first = true;
  while (i <= s.size()) {
    if (i == s.size() || s[i] == '-') {
      if (part == 0 || part > 8) return false;
      if (i == s.size()) return true;
      part = 0;
      first = false;
      ++i;
      continue;
    }
    const auto c = static_cast<unsigned char>(s[i]);
    if (first ? !std::isalpha(c) : !std::isalnum(c)) return false;
    ++part;
    ++i;
  }
  return false;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// RFC 3986 reference resolution (section 5.2), without normalisation.
struct UriParts {
  std::string_view scheme, authority, path, query, fragment;
  bool has_scheme = false, has_authority = false, has_query = false, has_fragment = false;
};

UriParts SplitUri(std::string_view s) {
  UriParts p;
  const size_t colon = s.find(':');
  const size_t delim = s.find_first_of("/?#");
  if (colon != std::string_view::npos && (delim == std::string_view::npos || colon < delim) &&
      IsScheme(s.substr(0, colon))) {
    p.scheme = s.substr(0, colon);
    p.has_scheme = true;
    s.remove_prefix(colon + 1);
  }
  if (s.substr(0, 2) == "//") {
    s.remove_prefix(2);
    const size_t end = s.find_first_of("/?#");
    p.authority = s.substr(0, end);
    p.has_authority = true;
    s = end == std::string_view::npos ? std::string_view() : s.substr(end);
  }
  if (const size_t hash = s.find('#'); hash != std::string_view::npos) {
    p.fragment = s.substr(hash + 1);
    p.has_fragment = true;
    s = s.substr(0, hash);
  }
  if (const size_t q = s.find('?'); q != std::string_view::npos) {
    p.query = s.substr(q + 1);
    p.has_query = true;
    s = s.substr(0, q);
  }
  p.path = s;
  return p;
}

std::string RemoveDotSegments(std::string_view in) {
  std::vector<std::string_view> out;
  const bool absolute = !in.empty() && in[0] == '/';
  size_t i = absolute ? 1 : 0;
  bool trailing = false;
  while (i <= in.size()) {
    size_t end = in.find('/', i);
    if (end == std::string_view::npos) end = in.size();
    const std::string_view seg = in.substr(i, end - i);
    const bool last = end == in.size();
    if (seg == ".") {
      trailing = last;
    } else if (seg == "..") {
      if (!out.empty()) out.pop_back();
      trailing = last;
    } else {
      out.push_back(seg);
      trailing = false;
    }
    i = end + 1;
  }
  std::string result = absolute ? "/" : "";
  for (size_t k = 0; k < out.size(); ++k) {
    if (k > 0) result += '/';
    result += out[k];
  }
  if (trailing && !out.empty()) result += '/';
  return result;
}

std::string ResolveIri(std::string_view base, std::string_view ref) {
  const UriParts r = SplitUri(ref);
  if (r.has_scheme) {
    std::string t(r.scheme);
    t += ':';
    if (r.has_authority) {
      t += "//";
      t += r.authority;
    }
    t += RemoveDotSegments(r.path);
    if (r.has_query) {
      t += '?';
      t += r.query;
    }
    if (r.has_fragment) {
      t += '#';
      t += r.fragment;
    }
    return t;
  }
  const UriParts b = SplitUri(base);
  if (!b.has_scheme) return std::string(ref);
  std::string authority;
  bool has_authority;
  std::string path;
  std::string_view query;
  bool has_query;
  if (r.has_authority) {
    authority = r.authority;
    has_authority = true;
    path = RemoveDotSegments(r.path);
    query = r.query;
    has_query = r.has_query;
  } else {
    authority = b.authority;
    has_authority = b.has_authority;
    if (r.path.empty()) {
      path = b.path;
      query = r.has_query ? r.query : b.query;
      has_query = r.has_query || b.has_query;
    } else {
      if (r.path[0] == '/') {
        path = RemoveDotSegments(r.path);
      } else {
        std::string merged;
        if (b.has_authority && b.path.empty()) {
          merged = "/";
        } else {
          const size_t slash = b.path.rfind('/');
          if (slash != std::string_view::npos) merged = b.path.substr(0, slash + 1);
        }
        merged += r.path;
        path = RemoveDotSegments(merged);
      }
      query = r.query;
      has_query = r.has_query;
    }
  }
  std::string t(b.scheme);
  t += ':';
  if (has_authority) {
    t += "//";
    t += authority;
  }
  t += path;
  if (has_query) {
    t += '?';
    t += query;
  }
  if (r.has_fragment) {
    t += '#';
    t += r.fragment;
  }
  return t;
}

// ---------------------------------------------------------------------------
// Active contexts

constexpr uint8_t kContainerList = 1;
constexpr uint8_t kContainerSet = 2;
constexpr uint8_t kContainerGraph = 4;
constexpr uint8_t kContainerIndex = 8;
constexpr uint8_t kContainerLanguage = 16;
constexpr uint8_t kContainerId = 32;
constexpr uint8_t kContainerType = 64;

struct TermDefinition {
  std::string iri;  // IRI mapping: an IRI, a blank node identifier or a keyword
  bool has_iri = false;
  bool prefix = false;
  bool is_protected = false;
  bool reverse = false;
  std::optional<std::string> type;
  uint8_t container = 0;
  bool has_language = false;
  std::optional<std::string> language;  // with has_language: nullopt is an explicit null
  bool has_direction = false;
  std::optional<std::string> direction;
  std::optional<std::string> index;
  std::optional<std::string> nest;
  std::shared_ptr<const Json> context;  // scoped context
  std::string base_url;
  bool context_cacheable = false;  // `context` lives in a cached document
  // Derived from `iri` when the definition is complete (SetIriKind), so
  // expansion need not judge the same IRI for every key it expands.
  bool iri_is_keyword = false;
  bool iri_is_absolute_or_blank = false;
};

void SetIriKind(TermDefinition& def) {
  def.iri_is_keyword = def.has_iri && IsKeyword(def.iri);
  def.iri_is_absolute_or_blank = def.has_iri && IsAbsoluteOrBlank(def.iri);
}

bool SameExceptProtected(const TermDefinition& a, const TermDefinition& b) {
  if (a.iri != b.iri || a.has_iri != b.has_iri || a.prefix != b.prefix || a.reverse != b.reverse ||
      a.type != b.type || a.container != b.container || a.has_language != b.has_language ||
      a.language != b.language || a.has_direction != b.has_direction || a.direction != b.direction ||
      a.index != b.index || a.nest != b.nest) {
    return false;
  }
  if (!a.context || !b.context) return !a.context && !b.context;
  return a.context == b.context || *a.context == *b.context;
}

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct ActiveContext {
  std::unordered_map<std::string, std::shared_ptr<const TermDefinition>, StringHash, std::equal_to<>> terms;
  std::optional<std::string> base;
  std::string original_base;
  std::optional<std::string> vocab;
  std::optional<std::string> language;
  std::optional<std::string> direction;
  std::shared_ptr<const ActiveContext> previous;
  // Built only from stable inputs (remote documents, scoped contexts in
  // them), so it may key cache entries.
  bool cacheable = true;

  const TermDefinition* Find(std::string_view term) const {
    auto it = terms.find(term);
    return it == terms.end() ? nullptr : it->second.get();
  }
  bool HasProtected() const {
    return std::any_of(terms.begin(), terms.end(), [](const auto& t) { return t.second->is_protected; });
  }
};
using ContextPtr = std::shared_ptr<const ActiveContext>;

// Where a local context came from: its owner keeps it alive; cacheable when
// it is part of a cached remote document.
struct Source {
  std::shared_ptr<const void> owner;
  bool cacheable = false;
};

std::string PointerKey(const void* p) { return std::to_string(reinterpret_cast<uintptr_t>(p)); }

bool IsValueObject(const Json& j) { return j.is_object() && j.contains("@value"); }
bool IsListObject(const Json& j) { return j.is_object() && j.contains("@list"); }
bool IsGraphObject(const Json& j) {
  if (!j.is_object() || !j.contains("@graph")) return false;
  for (const auto& [k, v] : j.items()) {
    if (k != "@graph" && k != "@id" && k != "@index" && k != "@context") return false;
  }
  return true;
}

void AddValue(Json& object, const std::string& key, Json value) {
  Json& slot = object[key];
  if (!slot.is_array()) slot = Json::array();
  if (value.is_array()) {
    for (auto& v : value) slot.push_back(std::move(v));
  } else {
    slot.push_back(std::move(value));
  }
}

// Why an expanded object says nothing on its own (empty, a value or list
// with no subject, a bare reference), or nullptr.
const char* Insubstantial(const Json& j) {
  if (!j.is_object()) return nullptr;
  if (j.empty()) return "empty object";
  if (j.contains("@value") || j.contains("@list")) return "free-floating value";
  if (j.size() == 1 && j.contains("@id")) return "object with only @id";
  return nullptr;
}

Json AsArray(Json v) {
  if (v.is_array()) return v;
  Json a = Json::array();
  a.push_back(std::move(v));
  return a;
}

// The items of an array, or the value itself.
std::vector<const Json*> Items(const Json& v) {
  std::vector<const Json*> out;
  if (v.is_array()) {
    out.reserve(v.size());
    for (const auto& x : v) out.push_back(&x);
  } else {
    out.push_back(&v);
  }
  return out;
}

std::string Describe(const Json& j) {
  std::string s = j.is_string() ? j.get<std::string>() : j.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (s.size() > 120) s = s.substr(0, 117) + "...";
  return s;
}

Status JsonLdError(std::string_view code, const std::string& detail) {
  return InvalidArgument("JSON-LD: " + std::string(code) + (detail.empty() ? "" : ": " + detail));
}

// xsd:double the way JavaScript processors write it: toExponential(15) with
// trailing zeros of the mantissa removed ("1.5E0", "1.0E21", "-2.5E-7").
std::string FormatDouble(double d) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.15E", d);
  std::string s(buf);
  const size_t e = s.find('E');
  std::string mantissa = s.substr(0, e);
  const size_t dot = mantissa.find('.');
  if (dot != std::string::npos) {
    size_t end = mantissa.size();
    while (end > dot + 2 && mantissa[end - 1] == '0') --end;
    mantissa.resize(end);
  }
  const int exponent = std::atoi(s.c_str() + e + 1);
  return mantissa + "E" + std::to_string(exponent);
}

std::string FormatIntegral(double d) {
  if (d == 0) return "0";  // also -0
  char buf[400];
  std::snprintf(buf, sizeof(buf), "%.0f", d);
  return buf;
}

}  // namespace

// ---------------------------------------------------------------------------
// The cache

struct ContextCache::Impl {
  struct Document {
    std::shared_ptr<const Json> context;  // the document's @context value
    std::string url;
  };
  struct Entry {
    ContextPtr parent;  // keeps the key's pointer valid
    ContextPtr result;
    std::vector<Dropped> notes;
  };

  explicit Impl(size_t max) : max_entries(max) {}

  std::optional<Document> FindDocument(const std::string& url) const {
    std::lock_guard lock(mu);
    auto it = documents.find(url);
    if (it == documents.end()) return std::nullopt;
    return it->second;
  }
  void AddDocument(const std::string& url, const Document& doc) {
    std::lock_guard lock(mu);
    if (documents.size() + processed.size() < max_entries) documents.emplace(url, doc);
  }
  std::optional<Entry> FindProcessed(const std::string& key) const {
    std::lock_guard lock(mu);
    auto it = processed.find(key);
    if (it == processed.end()) return std::nullopt;
    return it->second;
  }
  void AddProcessed(const std::string& key, Entry entry) {
    std::lock_guard lock(mu);
    if (documents.size() + processed.size() < max_entries) processed.emplace(key, std::move(entry));
  }
  ContextPtr Initial(const std::string& base) {
    std::lock_guard lock(mu);
    auto it = initial.find(base);
    if (it != initial.end()) return it->second;
    auto ctx = std::make_shared<ActiveContext>();
    if (!base.empty()) ctx->base = base;
    ctx->original_base = base;
    ContextPtr frozen = ctx;
    if (initial.size() < 64) initial.emplace(base, frozen);
    return frozen;
  }

  const size_t max_entries;
  mutable std::mutex mu;
  std::unordered_map<std::string, Document> documents;
  std::unordered_map<std::string, Entry> processed;
  std::unordered_map<std::string, ContextPtr> initial;
};

ContextCache::ContextCache(size_t max_entries) : impl_(std::make_unique<Impl>(max_entries)) {}
ContextCache::~ContextCache() = default;

size_t ContextCache::size() const {
  std::lock_guard lock(impl_->mu);
  return impl_->documents.size() + impl_->processed.size();
}

// ---------------------------------------------------------------------------
// The processor: one per call.

class Processor {
 public:
  Processor(const DocumentLoader& loader, const Options& options, std::vector<Dropped>* dropped)
      : loader_(loader), options_(options), limits_(options.limits), dropped_(dropped) {
    if (options.cache) {
      cache_ = options.cache->impl_.get();
    } else {
      own_cache_ = std::make_unique<ContextCache>();
      cache_ = own_cache_->impl_.get();
    }
  }

  ~Processor() {
    if (dropped_) {
      for (auto& d : notes_) {
        if (dropped_->size() >= kMaxReportedDrops) break;
        dropped_->push_back(std::move(d));
      }
    }
  }

  Result<Json> ExpandDocument(const Json& document) {
    ContextPtr initial = cache_->Initial(options_.base);
    auto expanded = Expand(initial, nullptr, document, options_.base, false, 0);
    if (!expanded.ok()) return expanded.status();
    Json result = std::move(expanded).value();
    if (result.is_object() && result.size() == 1 && result.contains("@graph")) {
      Json graph = std::move(result["@graph"]);
      result = std::move(graph);
    }
    if (result.is_null()) return Json::array();
    return AsArray(std::move(result));
  }

  Result<rdf::Dataset> ToRdf(const Json& expanded) {
    const rdf::Term default_graph = rdf::Term::DefaultGraph();
    // Quads are large: growing the vector moves every one. A document has
    // about as many quads as expansion counted nodes and values.
    dataset_.reserve(std::min<size_t>({limits_.max_quads, nodes_ + nodes_ / 2 + 8, 4096}));
    for (const auto& node : expanded) {
      auto subject = NodeToRdf(node, default_graph, 0);
      if (!subject.ok()) return subject.status();
    }
    return std::move(dataset_);
  }

 private:
  // ---- reporting

  Status Note(const char* kind, std::string detail) {
    if (options_.safe_mode) {
      return InvalidArgument("JSON-LD safe mode: " + std::string(kind) + ": " + detail);
    }
    ++notes_total_;
    if (notes_.size() < kMaxReportedDrops) notes_.push_back({kind, std::move(detail)});
    return Status::Ok();
  }

  // ---- IRI expansion (4.2 / 5.2)

  // State of the context definition being processed, for IRI expansion that
  // creates the term definitions it depends on.
  struct TermScope {
    ActiveContext* ctx;
    const Json* local;
    std::unordered_map<std::string, bool>* defined;
    const std::string* base_url;
    bool protected_default;
    bool override_protected;
    const std::vector<std::string>* remote;
    const Source* src;
  };

  // nullopt stands for JSON null.
  Result<std::optional<std::string>> ExpandIriScoped(const ActiveContext& ctx, const std::string& value,
                                                     bool document_relative, bool vocab, TermScope* scope) {
    if (IsKeyword(value)) return std::optional<std::string>(value);
    if (HasKeywordForm(value)) return std::optional<std::string>();
    if (scope && scope->local->contains(value)) {
      auto it = scope->defined->find(value);
      if (it == scope->defined->end() || !it->second) BP_RETURN_IF_ERROR(CreateTermDefinition(*scope, value));
    }
    const TermDefinition* def = ctx.Find(value);
    if (def && def->has_iri && IsKeyword(def->iri)) return std::optional<std::string>(def->iri);
    if (vocab && def) {
      if (!def->has_iri) return std::optional<std::string>();
      return std::optional<std::string>(def->iri);
    }
    const size_t colon = value.find(':');
    if (colon != std::string::npos && colon > 0) {
      const std::string prefix = value.substr(0, colon);
      const std::string_view suffix = std::string_view(value).substr(colon + 1);
      if (prefix == "_" || suffix.substr(0, 2) == "//") return std::optional<std::string>(value);
      if (scope && scope->local->contains(prefix)) {
        auto it = scope->defined->find(prefix);
        if (it == scope->defined->end() || !it->second) BP_RETURN_IF_ERROR(CreateTermDefinition(*scope, prefix));
      }
      const TermDefinition* pdef = ctx.Find(prefix);
      if (pdef && pdef->has_iri && pdef->prefix) return std::optional<std::string>(pdef->iri + std::string(suffix));
      if (IsAbsoluteIri(value)) return std::optional<std::string>(value);
    }
    if (vocab && ctx.vocab) return std::optional<std::string>(*ctx.vocab + value);
    if (document_relative && ctx.base) return std::optional<std::string>(ResolveIri(*ctx.base, value));
    return std::optional<std::string>(value);
  }

  // Whether `key` IRI-expands to the keyword `keyword`: the keyword itself or
  // an alias of it (the only ways to reach a keyword), without allocating.
  static bool ExpandsToKeyword(const ActiveContext& ctx, const std::string& key, std::string_view keyword) {
    if (key == keyword) return true;
    if (key.empty() || key[0] == '@') return false;
    const TermDefinition* def = ctx.Find(key);
    return def && def->has_iri && def->iri == keyword;
  }

  std::optional<std::string> ExpandIri(const ActiveContext& ctx, const std::string& value, bool document_relative,
                                       bool vocab) {
    auto r = ExpandIriScoped(ctx, value, document_relative, vocab, nullptr);
    return r.ok() ? std::move(r).value() : std::nullopt;  // without a scope it cannot fail
  }

  // ---- loading

  Result<ContextCache::Impl::Document> LoadContext(const std::string& url) {
    if (auto doc = cache_->FindDocument(url)) return *doc;
    if (++loads_ > limits_.max_context_loads) {
      return JsonLdError("context overflow", "more than " + std::to_string(limits_.max_context_loads) +
                                                 " context documents in one document");
    }
    if (!loader_) return NotFound("JSON-LD: no document loader for context " + url);
    auto loaded = loader_(url);
    if (!loaded.ok()) {
      return Status(loaded.status().code(),
                    "JSON-LD: loading remote context failed: " + url + ": " + loaded.status().message());
    }
    const std::string& body = loaded->body;
    if (body.size() > limits_.max_context_bytes) {
      return JsonLdError("loading remote context failed",
                         url + " is larger than " + std::to_string(limits_.max_context_bytes) + " bytes");
    }
    if (JsonNestingDepth(body, limits_.max_depth) > limits_.max_depth) {
      return JsonLdError("loading remote context failed", url + " nests too deeply");
    }
    auto parsed = std::make_shared<Json>(Json::parse(body, nullptr, /*allow_exceptions=*/false));
    if (parsed->is_discarded()) return JsonLdError("loading remote context failed", url + " is not JSON");
    if (!parsed->is_object() || !parsed->contains("@context")) {
      return JsonLdError("invalid remote context", url + " has no top-level @context");
    }
    ContextCache::Impl::Document doc;
    doc.context = std::shared_ptr<const Json>(parsed, &(*parsed)["@context"]);
    doc.url = loaded->url.empty() ? url : loaded->url;
    cache_->AddDocument(url, doc);
    return doc;
  }

  // ---- context processing (4.1)

  Result<ContextPtr> ProcessContext(const ContextPtr& active, const Json& local, const std::string& base_url,
                                    const Source& src, const std::vector<std::string>& remote,
                                    bool override_protected, bool propagate, bool validate) {
    std::string key;
    if (active->cacheable) {
      if (src.cacheable) {
        key = "j" + PointerKey(&local);
      } else if (local.is_string()) {
        key = "u" + local.get<std::string>() + '\x1f' + base_url;
      } else if (local.is_array() && !local.empty() &&
                 std::all_of(local.begin(), local.end(), [](const Json& j) { return j.is_string(); })) {
        key = "a";
        for (const auto& j : local) key += j.get<std::string>() + '\x1f';
        key += base_url;
      }
    }
    if (!key.empty()) {
      key += '|';
      key += override_protected ? '1' : '0';
      key += propagate ? '1' : '0';
      key += validate ? '1' : '0';
      key += PointerKey(active.get());
      if (auto hit = cache_->FindProcessed(key)) {
        for (const auto& n : hit->notes) BP_RETURN_IF_ERROR(Note(n.kind.c_str(), n.detail));
        return hit->result;
      }
    }
    const size_t mark = notes_.size();
    const size_t total_mark = notes_total_;
    auto result = ProcessContextUncached(active, local, base_url, src, remote, override_protected, propagate, validate);
    if (!result.ok()) return result;
    if (!key.empty()) {
      ContextPtr r = *result;
      if (r->cacheable && notes_total_ - total_mark == notes_.size() - mark) {
        ContextCache::Impl::Entry entry{active, r, {notes_.begin() + static_cast<ptrdiff_t>(mark), notes_.end()}};
        cache_->AddProcessed(key, std::move(entry));
      }
    } else if ((*result)->cacheable && result.value() != active) {
      // Built from unstable input: must never key the cache.
      auto copy = std::make_shared<ActiveContext>(**result);
      copy->cacheable = false;
      return ContextPtr(std::move(copy));
    }
    return result;
  }

  Result<ContextPtr> ProcessContextUncached(const ContextPtr& active, const Json& local, const std::string& base_url,
                                            const Source& src, const std::vector<std::string>& remote,
                                            bool override_protected, bool propagate, bool validate) {
    ContextPtr result = active;
    if (local.is_object()) {
      if (auto it = local.find("@propagate"); it != local.end()) {
        if (!it->is_boolean()) return JsonLdError("invalid @propagate value", Describe(*it));
        propagate = it->get<bool>();
      }
    }
    if (!propagate && !result->previous) {
      auto copy = std::make_shared<ActiveContext>(*result);
      copy->previous = active;
      result = std::move(copy);
    }
    for (const Json* item_ptr : Items(local)) {
      const Json& item = *item_ptr;
      if (item.is_null()) {
        if (!override_protected && result->HasProtected()) {
          return JsonLdError("invalid context nullification", "a context with protected terms cannot be reset");
        }
        auto fresh = std::make_shared<ActiveContext>();
        if (!result->original_base.empty()) fresh->base = result->original_base;
        fresh->original_base = result->original_base;
        fresh->cacheable = result->cacheable;
        if (!propagate) fresh->previous = result;
        result = std::move(fresh);
        continue;
      }
      if (item.is_string()) {
        const std::string& ref = item.get_ref<const std::string&>();
        std::string url = IsAbsoluteIri(base_url) ? ResolveIri(base_url, ref) : ref;
        if (!IsAbsoluteIri(url)) return JsonLdError("loading document failed", "relative context URL " + ref);
        if (!validate && std::find(remote.begin(), remote.end(), url) != remote.end()) continue;
        if (remote.size() + 1 > limits_.max_remote_context_depth) {
          return JsonLdError("context overflow", "remote contexts nest deeper than " +
                                                     std::to_string(limits_.max_remote_context_depth) + " at " + url);
        }
        auto doc = LoadContext(url);
        if (!doc.ok()) return doc.status();
        std::vector<std::string> nested = remote;
        nested.push_back(url);
        Source doc_src{doc->context, true};
        auto next = ProcessContext(result, *doc->context, doc->url, doc_src, nested, override_protected, true, validate);
        if (!next.ok()) return next;
        result = std::move(next).value();
        continue;
      }
      if (!item.is_object()) return JsonLdError("invalid local context", Describe(item));
      auto next = ApplyDefinition(result, item, base_url, src, remote, override_protected);
      if (!next.ok()) return next;
      result = std::move(next).value();
    }
    return result;
  }

  Result<ContextPtr> ApplyDefinition(const ContextPtr& active, const Json& item, const std::string& base_url,
                                     Source src, const std::vector<std::string>& remote, bool override_protected) {
    if (++steps_ > limits_.max_context_steps) {
      return JsonLdError("context overflow", "more than " + std::to_string(limits_.max_context_steps) +
                                                 " local contexts processed for one document");
    }
    const Json* ctx = &item;
    std::shared_ptr<Json> merged;
    if (auto it = item.find("@version"); it != item.end()) {
      if (!it->is_number() || std::abs(it->get<double>() - 1.1) > 1e-9) {
        return JsonLdError("invalid @version value", Describe(*it));
      }
    }
    if (auto it = item.find("@import"); it != item.end()) {
      if (!it->is_string()) return JsonLdError("invalid @import value", Describe(*it));
      const std::string url =
          IsAbsoluteIri(base_url) ? ResolveIri(base_url, it->get<std::string>()) : it->get<std::string>();
      auto doc = LoadContext(url);
      if (!doc.ok()) return doc.status();
      if (!doc->context->is_object()) return JsonLdError("invalid remote context", url + " is not a definition");
      if (doc->context->contains("@import")) return JsonLdError("invalid context entry", "nested @import in " + url);
      merged = std::make_shared<Json>(*doc->context);
      for (const auto& [k, v] : item.items()) {
        if (k != "@import") (*merged)[k] = v;
      }
      ctx = merged.get();
      src = Source{merged, false};
    }
    auto next = std::make_shared<ActiveContext>(*active);
    next->cacheable = active->cacheable && src.cacheable;
    if (auto it = ctx->find("@base"); it != ctx->end() && remote.empty()) {
      if (it->is_null()) {
        next->base.reset();
      } else if (!it->is_string()) {
        return JsonLdError("invalid base IRI", Describe(*it));
      } else if (IsAbsoluteIri(it->get<std::string>())) {
        next->base = it->get<std::string>();
      } else if (next->base) {
        next->base = ResolveIri(*next->base, it->get<std::string>());
      } else {
        return JsonLdError("invalid base IRI", Describe(*it));
      }
    }
    if (auto it = ctx->find("@vocab"); it != ctx->end()) {
      if (it->is_null()) {
        next->vocab.reset();
      } else if (!it->is_string()) {
        return JsonLdError("invalid vocab mapping", Describe(*it));
      } else {
        auto v = ExpandIri(*next, it->get<std::string>(), true, true);
        if (!v || !IsAbsoluteOrBlank(*v)) BP_RETURN_IF_ERROR(Note("relative @vocab reference", it->get<std::string>()));
        if (v) next->vocab = *v;
      }
    }
    if (auto it = ctx->find("@language"); it != ctx->end()) {
      if (it->is_null()) {
        next->language.reset();
      } else if (!it->is_string()) {
        return JsonLdError("invalid default language", Describe(*it));
      } else {
        if (!IsWellFormedLanguage(it->get<std::string>())) {
          BP_RETURN_IF_ERROR(Note("invalid @language value", it->get<std::string>()));
        }
        next->language = Lower(it->get<std::string>());
      }
    }
    if (auto it = ctx->find("@direction"); it != ctx->end()) {
      if (it->is_null()) {
        next->direction.reset();
      } else if (it->is_string() && (*it == "ltr" || *it == "rtl")) {
        next->direction = it->get<std::string>();
      } else {
        return JsonLdError("invalid base direction", Describe(*it));
      }
    }
    if (auto it = ctx->find("@propagate"); it != ctx->end() && !it->is_boolean()) {
      return JsonLdError("invalid @propagate value", Describe(*it));
    }
    bool protected_default = false;
    if (auto it = ctx->find("@protected"); it != ctx->end()) {
      if (!it->is_boolean()) return JsonLdError("invalid @protected value", Describe(*it));
      protected_default = it->get<bool>();
    }
    std::unordered_map<std::string, bool> defined;
    TermScope scope{next.get(), ctx, &defined, &base_url, protected_default, override_protected, &remote, &src};
    for (const auto& [key, value] : ctx->items()) {
      if (key == "@base" || key == "@direction" || key == "@import" || key == "@language" || key == "@propagate" ||
          key == "@protected" || key == "@version" || key == "@vocab") {
        continue;
      }
      BP_RETURN_IF_ERROR(CreateTermDefinition(scope, key));
    }
    return ContextPtr(std::move(next));
  }

  // Create Term Definition (4.2).
  Status CreateTermDefinition(TermScope& scope, const std::string& term) {
    auto& defined = *scope.defined;
    if (auto it = defined.find(term); it != defined.end()) {
      if (it->second) return Status::Ok();
      return JsonLdError("cyclic IRI mapping", term);
    }
    if (term.empty()) return JsonLdError("invalid term definition", "empty term");
    defined[term] = false;
    const Json& value_in = (*scope.local)[term];
    ActiveContext& ctx = *scope.ctx;

    if (term == "@type") {
      bool ok = value_in.is_object() && !value_in.empty();
      if (ok) {
        for (const auto& [k, v] : value_in.items()) {
          if (!((k == "@container" && v == "@set") || k == "@protected")) ok = false;
        }
      }
      if (!ok) return JsonLdError("keyword redefinition", "@type");
    } else if (IsKeyword(term)) {
      return JsonLdError("keyword redefinition", term);
    } else if (HasKeywordForm(term)) {
      defined[term] = true;
      return Note("reserved term", term);
    }

    std::shared_ptr<const TermDefinition> previous;
    if (auto it = ctx.terms.find(term); it != ctx.terms.end()) {
      previous = it->second;
      ctx.terms.erase(it);
    }

    Json value_storage;
    const Json* value = &value_in;
    bool simple_term = false;
    if (value_in.is_null()) {
      value_storage = Json{{"@id", nullptr}};
      value = &value_storage;
    } else if (value_in.is_string()) {
      value_storage = Json{{"@id", value_in}};
      value = &value_storage;
      simple_term = true;
    } else if (!value_in.is_object()) {
      return JsonLdError("invalid term definition", term);
    }

    auto def = std::make_shared<TermDefinition>();
    def->is_protected = scope.protected_default;
    if (auto it = value->find("@protected"); it != value->end()) {
      if (!it->is_boolean()) return JsonLdError("invalid @protected value", term);
      def->is_protected = it->get<bool>();
    }
    if (auto it = value->find("@type"); it != value->end()) {
      if (!it->is_string()) return JsonLdError("invalid type mapping", term);
      auto type = ExpandIriScoped(ctx, it->get<std::string>(), false, true, &scope);
      if (!type.ok()) return type.status();
      const auto& t = *type;
      if (!t || !(*t == "@id" || *t == "@json" || *t == "@none" || *t == "@vocab" ||
                  (IsAbsoluteIri(*t) && !IsBlankNodeId(*t)))) {
        return JsonLdError("invalid type mapping", term + ": " + it->get<std::string>());
      }
      def->type = *t;
    }
    if (auto it = value->find("@reverse"); it != value->end()) {
      if (value->contains("@id") || value->contains("@nest")) return JsonLdError("invalid reverse property", term);
      if (!it->is_string()) return JsonLdError("invalid IRI mapping", term);
      if (HasKeywordForm(it->get<std::string>())) {
        defined[term] = true;
        return Note("reserved @reverse value", term);
      }
      auto iri = ExpandIriScoped(ctx, it->get<std::string>(), false, true, &scope);
      if (!iri.ok()) return iri.status();
      if (!*iri || (!IsAbsoluteIri(**iri) && !IsBlankNodeId(**iri))) return JsonLdError("invalid IRI mapping", term);
      def->iri = **iri;
      def->has_iri = true;
      if (auto c = value->find("@container"); c != value->end()) {
        if (c->is_null()) {
        } else if (*c == "@set") {
          def->container = kContainerSet;
        } else if (*c == "@index") {
          def->container = kContainerIndex;
        } else {
          return JsonLdError("invalid reverse property", term);
        }
      }
      if (auto idx = value->find("@index"); idx != value->end()) {
        if (!(def->container & kContainerIndex) || !idx->is_string()) return JsonLdError("invalid term definition", term);
        def->index = idx->get<std::string>();
      }
      def->reverse = true;
      SetIriKind(*def);
      ctx.terms[term] = std::move(def);
      defined[term] = true;
      return Status::Ok();
    }

    auto id_it = value->find("@id");
    if (id_it != value->end() && !(id_it->is_string() && id_it->get_ref<const std::string&>() == term)) {
      if (id_it->is_null()) {
        def->has_iri = false;
      } else {
        if (!id_it->is_string()) return JsonLdError("invalid IRI mapping", term);
        const std::string& id = id_it->get_ref<const std::string&>();
        if (!IsKeyword(id) && HasKeywordForm(id)) {
          defined[term] = true;
          return Note("reserved @id value", term + ": " + id);
        }
        auto iri = ExpandIriScoped(ctx, id, false, true, &scope);
        if (!iri.ok()) return iri.status();
        if (!*iri || !(IsKeyword(**iri) || IsAbsoluteIri(**iri) || IsBlankNodeId(**iri))) {
          return JsonLdError("invalid IRI mapping", term + ": " + id);
        }
        if (**iri == "@context") return JsonLdError("invalid keyword alias", term);
        def->iri = **iri;
        def->has_iri = true;
        const size_t colon = term.find(':');
        const bool inner_colon = colon != std::string::npos && colon > 0 && colon + 1 < term.size();
        if (inner_colon || term.find('/') != std::string::npos) {
          defined[term] = true;
          auto self = ExpandIriScoped(ctx, term, false, true, &scope);
          if (!self.ok()) return self.status();
          if (!*self || **self != def->iri) return JsonLdError("invalid IRI mapping", term + " does not expand to " + id);
        }
        if (term.find(':') == std::string::npos && term.find('/') == std::string::npos && simple_term &&
            !def->iri.empty() &&
            (IsBlankNodeId(def->iri) || std::string_view(":/?#[]@").find(def->iri.back()) != std::string_view::npos)) {
          def->prefix = true;
        }
      }
    } else if (const size_t colon = term.find(':', 1); colon != std::string::npos) {
      const std::string prefix = term.substr(0, colon);
      if (scope.local->contains(prefix)) BP_RETURN_IF_ERROR(CreateTermDefinition(scope, prefix));
      const TermDefinition* pdef = ctx.Find(prefix);
      if (pdef && pdef->has_iri) {
        def->iri = pdef->iri + term.substr(colon + 1);
      } else {
        def->iri = term;
      }
      def->has_iri = true;
    } else if (term.find('/') != std::string::npos) {
      auto iri = ExpandIriScoped(ctx, term, false, true, &scope);
      if (!iri.ok()) return iri.status();
      if (!*iri || !IsAbsoluteIri(**iri)) return JsonLdError("invalid IRI mapping", term);
      def->iri = **iri;
      def->has_iri = true;
    } else if (term == "@type") {
      def->iri = "@type";
      def->has_iri = true;
    } else if (ctx.vocab) {
      def->iri = *ctx.vocab + term;
      def->has_iri = true;
    } else {
      return JsonLdError("invalid IRI mapping", "no @vocab for term " + term);
    }

    if (auto it = value->find("@container"); it != value->end()) {
      const Json& c = *it;
      uint8_t mask = 0;
      auto add = [&mask](const Json& v) {
        if (!v.is_string()) return false;
        const std::string& s = v.get_ref<const std::string&>();
        if (s == "@list") mask |= kContainerList;
        else if (s == "@set") mask |= kContainerSet;
        else if (s == "@graph") mask |= kContainerGraph;
        else if (s == "@index") mask |= kContainerIndex;
        else if (s == "@language") mask |= kContainerLanguage;
        else if (s == "@id") mask |= kContainerId;
        else if (s == "@type") mask |= kContainerType;
        else return false;
        return true;
      };
      bool ok = true;
      if (c.is_array()) {
        for (const auto& v : c) ok = ok && add(v);
      } else {
        ok = add(c);
      }
      const auto count = [](uint8_t m) { return __builtin_popcount(m); };
      if (ok && (mask & kContainerList) && mask != kContainerList) ok = false;
      if (ok && (mask & kContainerGraph) && (mask & ~(kContainerGraph | kContainerId | kContainerIndex | kContainerSet))) {
        ok = false;
      }
      if (ok && count(mask & (kContainerId | kContainerIndex | kContainerType | kContainerLanguage)) > 1) ok = false;
      if (!ok) return JsonLdError("invalid container mapping", term);
      def->container = mask;
      if (mask & kContainerType) {
        if (!def->type) def->type = "@id";
        if (*def->type != "@id" && *def->type != "@vocab") return JsonLdError("invalid type mapping", term);
      }
    }
    if (auto it = value->find("@index"); it != value->end()) {
      if (!(def->container & kContainerIndex) || !it->is_string()) return JsonLdError("invalid term definition", term);
      auto idx = ExpandIriScoped(ctx, it->get<std::string>(), false, true, &scope);
      if (!idx.ok()) return idx.status();
      if (!*idx || !IsAbsoluteIri(**idx)) return JsonLdError("invalid term definition", term + ": @index");
      def->index = it->get<std::string>();
    }
    if (auto it = value->find("@context"); it != value->end()) {
      // The definition points into its local context: a cached remote
      // document (kept alive by `owner`) or the caller's document, which
      // outlives the call; contexts built from the latter are never cached,
      // so they do not outlive it either.
      std::shared_ptr<const Json> scoped(scope.src->owner, &*it);
      const bool cacheable = scope.src->cacheable && scope.src->owner != nullptr;
      // Processed once now to find errors; applied when used.
      auto snapshot_copy = std::make_shared<ActiveContext>(ctx);
      snapshot_copy->cacheable = false;
      ContextPtr snapshot = std::move(snapshot_copy);
      auto check = ProcessContextUncached(snapshot, *scoped, *scope.base_url, Source{scoped, false}, *scope.remote,
                                          true, true, false);
      if (!check.ok()) {
        if (check.status().code() != StatusCode::kInvalidArgument) return check.status();
        return JsonLdError("invalid scoped context", term + ": " + check.status().message());
      }
      def->context = std::move(scoped);
      def->context_cacheable = cacheable;
      def->base_url = *scope.base_url;
    }
    if (auto it = value->find("@language"); it != value->end() && !value->contains("@type")) {
      if (it->is_null()) {
        def->has_language = true;
      } else if (it->is_string()) {
        if (!IsWellFormedLanguage(it->get<std::string>())) {
          BP_RETURN_IF_ERROR(Note("invalid @language value", it->get<std::string>()));
        }
        def->has_language = true;
        def->language = Lower(it->get<std::string>());
      } else {
        return JsonLdError("invalid language mapping", term);
      }
    }
    if (auto it = value->find("@direction"); it != value->end() && !value->contains("@type")) {
      if (it->is_null()) {
        def->has_direction = true;
      } else if (*it == "ltr" || *it == "rtl") {
        def->has_direction = true;
        def->direction = it->get<std::string>();
      } else {
        return JsonLdError("invalid base direction", term);
      }
    }
    if (auto it = value->find("@nest"); it != value->end()) {
      if (!it->is_string() || (IsKeyword(it->get<std::string>()) && *it != "@nest")) {
        return JsonLdError("invalid @nest value", term);
      }
      def->nest = it->get<std::string>();
    }
    if (auto it = value->find("@prefix"); it != value->end()) {
      if (term.find(':') != std::string::npos || term.find('/') != std::string::npos) {
        return JsonLdError("invalid term definition", term + ": @prefix");
      }
      if (!it->is_boolean()) return JsonLdError("invalid @prefix value", term);
      def->prefix = it->get<bool>();
      if (def->prefix && IsKeyword(def->iri)) return JsonLdError("invalid term definition", term);
    }
    for (const auto& [k, v] : value->items()) {
      if (k != "@id" && k != "@reverse" && k != "@container" && k != "@context" && k != "@direction" &&
          k != "@index" && k != "@language" && k != "@nest" && k != "@prefix" && k != "@protected" && k != "@type") {
        return JsonLdError("invalid term definition", term + ": " + k);
      }
    }
    if (!scope.override_protected && previous && previous->is_protected) {
      if (!SameExceptProtected(*def, *previous)) return JsonLdError("protected term redefinition", term);
      ctx.terms[term] = previous;
    } else {
      SetIriKind(*def);
      ctx.terms[term] = std::move(def);
    }
    defined[term] = true;
    return Status::Ok();
  }

  // Applies a term's scoped context.
  Result<ContextPtr> ApplyScoped(const ContextPtr& ctx, const TermDefinition& def, bool override_protected,
                                 bool propagate) {
    Source src{def.context, def.context_cacheable};
    return ProcessContext(ctx, *def.context, def.base_url, src, {}, override_protected, propagate, true);
  }

  // ---- expansion (5.1)

  Status CountNode() {
    if (++nodes_ > limits_.max_nodes) {
      return JsonLdError("too large", "more than " + std::to_string(limits_.max_nodes) + " nodes and values");
    }
    return Status::Ok();
  }

  // Value Expansion (5.3). `def`: the active property's definition in
  // `ctx`, or null.
  Result<Json> ExpandValue(const ActiveContext& ctx, const TermDefinition* def, const Json& value) {
    BP_RETURN_IF_ERROR(CountNode());
    if (def && def->type && value.is_string() && (*def->type == "@id" || *def->type == "@vocab")) {
      auto iri = ExpandIri(ctx, value.get<std::string>(), true, *def->type == "@vocab");
      if (!iri) {
        BP_RETURN_IF_ERROR(Note("reserved @id value", value.get<std::string>()));
        return Json();
      }
      if (!IsAbsoluteOrBlank(*iri)) BP_RETURN_IF_ERROR(Note("relative @id reference", *iri));
      return Json{{"@id", std::move(*iri)}};
    }
    Json result = Json::object();
    result["@value"] = value;
    if (def && def->type && *def->type != "@id" && *def->type != "@vocab" && *def->type != "@none") {
      result["@type"] = *def->type;
    } else if (value.is_string()) {
      const std::optional<std::string>& language = def && def->has_language ? def->language : ctx.language;
      const std::optional<std::string>& direction = def && def->has_direction ? def->direction : ctx.direction;
      if (language) result["@language"] = *language;
      if (direction) result["@direction"] = *direction;
    }
    return result;
  }

  Result<Json> Expand(ContextPtr ctx, const std::string* property, const Json& element, const std::string& base_url,
                      bool from_map, int depth) {
    if (depth > limits_.max_depth) {
      return JsonLdError("too deep", "document nests deeper than " + std::to_string(limits_.max_depth));
    }
    if (element.is_null()) return Json();
    const TermDefinition* pdef = property ? ctx->Find(*property) : nullptr;
    const bool scoped = pdef && pdef->context;

    if (!element.is_array() && !element.is_object()) {
      if (!property || *property == "@graph") {
        BP_RETURN_IF_ERROR(Note("free-floating value", Describe(element)));
        return Json();
      }
      if (scoped) {
        auto next = ApplyScoped(ctx, *pdef, true, true);
        if (!next.ok()) return next.status();
        ctx = std::move(next).value();
        return ExpandValue(*ctx, ctx->Find(*property), element);
      }
      return ExpandValue(*ctx, pdef, element);
    }

    if (element.is_array()) {
      Json result = Json::array();
      const bool list = pdef && (pdef->container & kContainerList);
      for (const auto& item : element) {
        auto expanded = Expand(ctx, property, item, base_url, from_map, depth + 1);
        if (!expanded.ok()) return expanded;
        Json e = std::move(expanded).value();
        if (list && e.is_array()) {
          e = Json{{"@list", std::move(e)}};
        }
        if (e.is_array()) {
          for (auto& v : e) result.push_back(std::move(v));
        } else if (!e.is_null()) {
          result.push_back(std::move(e));
        }
      }
      return result;
    }

    BP_RETURN_IF_ERROR(CountNode());
    // A map: a node, value, list or set object.
    if (ctx->previous && !from_map) {
      bool keep = false;
      for (const auto& [key, value] : element.items()) {
        if (ExpandsToKeyword(*ctx, key, "@value")) {
          keep = true;
          break;
        }
        if (element.size() == 1 && ExpandsToKeyword(*ctx, key, "@id")) keep = true;
      }
      if (!keep) ctx = ctx->previous;
    }
    if (scoped) {
      auto next = ApplyScoped(ctx, *pdef, true, true);
      if (!next.ok()) return next.status();
      ctx = std::move(next).value();
    }
    if (auto it = element.find("@context"); it != element.end()) {
      auto next = ProcessContext(ctx, *it, base_url, Source{}, {}, false, true, true);
      if (!next.ok()) return next.status();
      ctx = std::move(next).value();
    }
    const ContextPtr type_scoped_ctx = ctx;
    std::optional<std::string> input_type;
    bool input_type_set = false;
    for (const auto& [key, value] : element.items()) {
      if (!ExpandsToKeyword(*ctx, key, "@type")) continue;
      std::vector<std::string> types;
      if (value.is_string()) {
        types.push_back(value.get<std::string>());
      } else if (value.is_array()) {
        for (const auto& t : value) {
          if (t.is_string()) types.push_back(t.get<std::string>());
        }
      }
      std::sort(types.begin(), types.end());
      for (const auto& t : types) {
        const TermDefinition* tdef = type_scoped_ctx->Find(t);
        if (tdef && tdef->context) {
          auto next = ApplyScoped(ctx, *tdef, false, false);
          if (!next.ok()) return next.status();
          ctx = std::move(next).value();
        }
      }
      if (!input_type_set) {
        input_type_set = true;
        const Json* last = value.is_array() ? (value.empty() ? nullptr : &value.back()) : &value;
        if (last && last->is_string()) input_type = ExpandIri(*ctx, last->get<std::string>(), false, true);
      }
    }

    Json result = Json::object();
    BP_RETURN_IF_ERROR(ExpandObject(ctx, type_scoped_ctx, property, element, base_url, input_type, result, depth));

    if (auto it = result.find("@value"); it != result.end()) {
      for (const auto& [k, v] : result.items()) {
        if (k != "@direction" && k != "@index" && k != "@language" && k != "@type" && k != "@value") {
          return JsonLdError("invalid value object", "unexpected " + k);
        }
      }
      if (result.contains("@type") && (result.contains("@language") || result.contains("@direction"))) {
        return JsonLdError("invalid value object", "@type with @language or @direction");
      }
      const Json* type = result.contains("@type") ? &result["@type"] : nullptr;
      if (type && *type == "@json") {
        // A JSON literal: any value.
      } else if (it->is_null() || (it->is_array() && it->empty())) {
        BP_RETURN_IF_ERROR(Note("null @value value", Describe(element)));
        return Json();
      } else if (!it->is_string() && result.contains("@language")) {
        return JsonLdError("invalid language-tagged value", Describe(*it));
      } else if (type && (!type->is_string() || !IsWellFormedIri(type->get<std::string>()))) {
        return JsonLdError("invalid typed value", Describe(*type));
      }
    } else if (auto t = result.find("@type"); t != result.end() && !t->is_array()) {
      *t = AsArray(std::move(*t));
    } else if (result.contains("@set") || result.contains("@list")) {
      if (result.size() > 2 || (result.size() == 2 && !result.contains("@index"))) {
        return JsonLdError("invalid set or list object", Describe(element));
      }
      if (result.contains("@set")) {
        Json set = std::move(result["@set"]);
        result = std::move(set);
      }
    }
    if (result.is_object() && result.size() == 1 && result.contains("@language")) {
      BP_RETURN_IF_ERROR(Note("object with only @language", Describe(element)));
      return Json();
    }
    // Free-floating objects: at the top, in @graph, and (as JavaScript
    // processors also judge) as the graph of a @graph container.
    const TermDefinition* final_def = property ? ctx->Find(*property) : nullptr;
    if (!property || *property == "@graph" || (final_def && (final_def->container & kContainerGraph))) {
      if (const char* why = Insubstantial(result)) {
        BP_RETURN_IF_ERROR(Note(why, Describe(element)));
        return Json();
      }
    }
    return result;
  }

  // Step 13-14 of the Expansion Algorithm, for `element` and its @nest maps.
  Status ExpandObject(const ContextPtr& ctx, const ContextPtr& type_scoped_ctx, const std::string* property,
                      const Json& element, const std::string& base_url, const std::optional<std::string>& input_type,
                      Json& result, int depth) {
    std::vector<std::string> nests;
    const bool property_is_reverse = property && *property == "@reverse";
    for (const auto& [key, value] : element.items()) {
      if (key == "@context") continue;
      // A key that is a defined term (the usual case) expands to the term's
      // IRI mapping, as IRI Expansion would find it: only keys starting
      // with '@' are keywords or reserved, and those take the general path.
      const TermDefinition* def = ctx->Find(key);
      std::optional<std::string> expanded_storage;
      const std::string* expanded_property = nullptr;
      bool keep;
      const bool defined_term = def && !key.empty() && key[0] != '@';
      if (defined_term) {
        if (def->has_iri) expanded_property = &def->iri;
        keep = def->iri_is_keyword || def->iri_is_absolute_or_blank;
      } else {
        expanded_storage = ExpandIri(*ctx, key, false, true);
        if (expanded_storage) expanded_property = &*expanded_storage;
        keep = expanded_storage && (IsKeyword(*expanded_storage) || IsAbsoluteOrBlank(*expanded_storage));
      }
      // The algorithm keeps any key with a colon; JavaScript processors (and
      // so the signers) also drop keys that are not absolute IRIs or blank
      // node identifiers, so we do as they do.
      if (!expanded_property || !keep) {
        BP_RETURN_IF_ERROR(Note("invalid property", key));
        continue;
      }
      const std::string& ep = *expanded_property;
      const bool ep_is_keyword = defined_term ? def->iri_is_keyword : IsKeyword(ep);
      if (ep_is_keyword) {
        if (property_is_reverse) return JsonLdError("invalid reverse property map", key);
        if (result.contains(ep) && ep != "@included" && ep != "@type") return JsonLdError("colliding keywords", ep);
        if (ep == "@id") {
          if (!value.is_string()) return JsonLdError("invalid @id value", Describe(value));
          auto iri = ExpandIri(*ctx, value.get<std::string>(), true, false);
          if (!iri) {
            // A node named by a reserved word is left out altogether.
            BP_RETURN_IF_ERROR(Note("reserved @id value", value.get<std::string>()));
            result["@id"] = nullptr;
            continue;
          }
          if (!IsAbsoluteOrBlank(*iri)) BP_RETURN_IF_ERROR(Note("relative @id reference", *iri));
          result["@id"] = std::move(*iri);
        } else if (ep == "@type") {
          if (!value.is_string() &&
              !(value.is_array() && std::all_of(value.begin(), value.end(), [](const Json& j) { return j.is_string(); }))) {
            return JsonLdError("invalid type value", Describe(value));
          }
          Json types = Json::array();
          for (const Json* t : Items(value)) {
            auto iri = ExpandIri(*type_scoped_ctx, t->get<std::string>(), true, true);
            if (!iri) {
              BP_RETURN_IF_ERROR(Note("reserved @id value", t->get<std::string>()));
              continue;
            }
            if (!IsAbsoluteOrBlank(*iri)) BP_RETURN_IF_ERROR(Note("relative @type reference", *iri));
            types.push_back(std::move(*iri));
          }
          Json expanded = value.is_string() && types.size() == 1 ? std::move(types[0]) : std::move(types);
          if (auto existing = result.find("@type"); existing != result.end()) {
            Json merged = AsArray(std::move(*existing));
            for (auto& t : AsArray(std::move(expanded))) merged.push_back(std::move(t));
            *existing = std::move(merged);
          } else {
            result["@type"] = std::move(expanded);
          }
        } else if (ep == "@graph") {
          const std::string graph_key = "@graph";
          auto expanded = Expand(ctx, &graph_key, value, base_url, false, depth + 1);
          if (!expanded.ok()) return expanded.status();
          result["@graph"] = AsArray(std::move(expanded).value());
        } else if (ep == "@included") {
          auto expanded = Expand(ctx, nullptr, value, base_url, false, depth + 1);
          if (!expanded.ok()) return expanded.status();
          Json included = AsArray(std::move(expanded).value());
          for (const auto& n : included) {
            if (!n.is_object() || IsValueObject(n) || IsListObject(n)) {
              return JsonLdError("invalid @included value", Describe(n));
            }
          }
          if (auto existing = result.find("@included"); existing != result.end()) {
            for (auto& n : included) existing->push_back(std::move(n));
          } else {
            result["@included"] = std::move(included);
          }
        } else if (ep == "@value") {
          if (input_type && *input_type == "@json") {
            result["@value"] = value;
          } else if (value.is_object() || value.is_array()) {
            return JsonLdError("invalid value object value", Describe(value));
          } else {
            result["@value"] = value;
          }
        } else if (ep == "@language") {
          if (!value.is_string()) return JsonLdError("invalid language-tagged string", Describe(value));
          if (!IsWellFormedLanguage(value.get<std::string>())) {
            BP_RETURN_IF_ERROR(Note("invalid @language value", value.get<std::string>()));
          }
          result["@language"] = Lower(value.get<std::string>());
        } else if (ep == "@direction") {
          if (value != "ltr" && value != "rtl") return JsonLdError("invalid base direction", Describe(value));
          result["@direction"] = value;
        } else if (ep == "@index") {
          if (!value.is_string()) return JsonLdError("invalid @index value", Describe(value));
          result["@index"] = value;
        } else if (ep == "@list") {
          if (!property || *property == "@graph") {
            BP_RETURN_IF_ERROR(Note("free-floating value", "@list"));
            continue;
          }
          auto expanded = Expand(ctx, property, value, base_url, false, depth + 1);
          if (!expanded.ok()) return expanded.status();
          result["@list"] = AsArray(std::move(expanded).value());
        } else if (ep == "@set") {
          auto expanded = Expand(ctx, property, value, base_url, false, depth + 1);
          if (!expanded.ok()) return expanded.status();
          result["@set"] = std::move(expanded).value();
        } else if (ep == "@reverse") {
          if (!value.is_object()) return JsonLdError("invalid @reverse value", Describe(value));
          const std::string reverse_key = "@reverse";
          auto expanded = Expand(ctx, &reverse_key, value, base_url, false, depth + 1);
          if (!expanded.ok()) return expanded.status();
          Json ev = std::move(expanded).value();
          if (!ev.is_object()) continue;
          if (auto rr = ev.find("@reverse"); rr != ev.end()) {
            for (auto& [p, items] : rr->items()) AddValue(result, p, std::move(items));
          }
          for (auto& [p, items] : ev.items()) {
            if (p == "@reverse") continue;
            Json& reverse_map = result["@reverse"];
            if (!reverse_map.is_object()) reverse_map = Json::object();
            for (auto& item : AsArray(std::move(items))) {
              if (IsValueObject(item) || IsListObject(item)) return JsonLdError("invalid reverse property value", p);
              AddValue(reverse_map, p, std::move(item));
            }
          }
        } else if (ep == "@nest") {
          nests.push_back(key);
        } else {
          BP_RETURN_IF_ERROR(Note("keyword not allowed", key));
        }
        continue;
      }

      const uint8_t container = def ? def->container : 0;
      Json expanded;
      if (def && def->type && *def->type == "@json") {
        BP_RETURN_IF_ERROR(CountNode());
        expanded = Json{{"@value", value}, {"@type", "@json"}};
      } else if ((container & kContainerLanguage) && value.is_object()) {
        expanded = Json::array();
        std::optional<std::string> direction = ctx->direction;
        if (def->has_direction) direction = def->direction;
        for (const auto& [language, language_value] : value.items()) {
          for (const Json* item_ptr : Items(language_value)) {
            const Json& item = *item_ptr;
            if (item.is_null()) continue;
            if (!item.is_string()) return JsonLdError("invalid language map value", Describe(item));
            BP_RETURN_IF_ERROR(CountNode());
            Json v = Json{{"@value", item}};
            auto lang_iri = ExpandIri(*ctx, language, false, true);
            if (language != "@none" && !(lang_iri && *lang_iri == "@none")) {
              if (!IsWellFormedLanguage(language)) BP_RETURN_IF_ERROR(Note("invalid @language value", language));
              v["@language"] = Lower(language);
            }
            if (direction) v["@direction"] = *direction;
            expanded.push_back(std::move(v));
          }
        }
      } else if ((container & (kContainerIndex | kContainerType | kContainerId)) && value.is_object()) {
        expanded = Json::array();
        const std::string index_key = def->index ? *def->index : "@index";
        for (const auto& [index, index_value] : value.items()) {
          ContextPtr map_ctx = ctx;
          if (container & (kContainerId | kContainerType)) map_ctx = ctx->previous ? ctx->previous : ctx;
          if (container & kContainerType) {
            const TermDefinition* idef = map_ctx->Find(index);
            if (idef && idef->context) {
              auto next = ApplyScoped(map_ctx, *idef, false, true);
              if (!next.ok()) return next.status();
              map_ctx = std::move(next).value();
            }
          } else if (!(container & kContainerId)) {
            map_ctx = ctx;
          }
          auto expanded_index = ExpandIri(*ctx, index, false, true);
          const bool none = expanded_index && *expanded_index == "@none";
          auto items = Expand(map_ctx, &key, AsArray(index_value), base_url, true, depth + 2);
          if (!items.ok()) return items.status();
          for (auto& item : AsArray(std::move(items).value())) {
            if ((container & kContainerGraph) && !IsGraphObject(item)) {
              item = Json{{"@graph", AsArray(std::move(item))}};
            }
            if ((container & kContainerIndex) && index_key != "@index" && !none) {
              auto re_expanded = ExpandValue(*ctx, ctx->Find(index_key), Json(index));
              if (!re_expanded.ok()) return re_expanded.status();
              auto eik = ExpandIri(*ctx, index_key, false, true);
              if (!eik) return JsonLdError("invalid term definition", "@index " + index_key);
              if (IsValueObject(item)) return JsonLdError("invalid value object", "property-valued index on a value");
              Json values = Json::array();
              values.push_back(std::move(re_expanded).value());
              if (auto existing = item.find(*eik); existing != item.end()) {
                for (auto& v : AsArray(std::move(*existing))) values.push_back(std::move(v));
              }
              item[*eik] = std::move(values);
            } else if ((container & kContainerIndex) && !item.contains("@index") && !none) {
              item["@index"] = index;
            } else if ((container & kContainerId) && !item.contains("@id") && !none) {
              auto id = ExpandIri(*ctx, index, true, false);
              if (!id) {
                BP_RETURN_IF_ERROR(Note("reserved @id value", index));
              } else {
                if (!IsAbsoluteOrBlank(*id)) BP_RETURN_IF_ERROR(Note("relative @id reference", *id));
                item["@id"] = std::move(*id);
              }
            } else if ((container & kContainerType) && !none) {
              Json types = Json::array();
              if (expanded_index) {
                if (!IsAbsoluteOrBlank(*expanded_index)) {
                  BP_RETURN_IF_ERROR(Note("relative @type reference", *expanded_index));
                }
                types.push_back(*expanded_index);
              } else {
                BP_RETURN_IF_ERROR(Note("reserved @id value", index));
              }
              if (auto existing = item.find("@type"); existing != item.end()) {
                for (auto& t : AsArray(std::move(*existing))) types.push_back(std::move(t));
              }
              item["@type"] = std::move(types);
            }
            expanded.push_back(std::move(item));
          }
        }
      } else {
        auto e = Expand(ctx, &key, value, base_url, false, depth + 1);
        if (!e.ok()) return e.status();
        expanded = std::move(e).value();
      }
      if (expanded.is_null()) continue;
      if ((container & kContainerList) && !IsListObject(expanded)) {
        expanded = Json{{"@list", AsArray(std::move(expanded))}};
      }
      if ((container & kContainerGraph) && !(container & (kContainerId | kContainerIndex))) {
        Json graphs = Json::array();
        for (auto& ev : AsArray(std::move(expanded))) {
          // A graph of nothing (a value, a bare reference, an empty node) is
          // dropped, as JavaScript processors do.
          if (const char* why = Insubstantial(ev)) {
            BP_RETURN_IF_ERROR(Note(why, key));
            continue;
          }
          graphs.push_back(Json{{"@graph", AsArray(std::move(ev))}});
        }
        if (graphs.empty()) continue;
        expanded = std::move(graphs);
      }
      if (def && def->reverse) {
        Json& reverse_map = result["@reverse"];
        if (!reverse_map.is_object()) reverse_map = Json::object();
        for (auto& item : AsArray(std::move(expanded))) {
          if (IsValueObject(item) || IsListObject(item)) return JsonLdError("invalid reverse property value", key);
          AddValue(reverse_map, ep, std::move(item));
        }
      } else {
        AddValue(result, ep, std::move(expanded));
      }
    }

    std::sort(nests.begin(), nests.end());
    for (const auto& nesting_key : nests) {
      const Json& nested_values = element[nesting_key];
      for (const Json* nested_ptr : Items(nested_values)) {
        const Json& nested = *nested_ptr;
        if (!nested.is_object()) return JsonLdError("invalid @nest value", nesting_key);
        for (const auto& [k, v] : nested.items()) {
          if (ExpandsToKeyword(*ctx, k, "@value")) return JsonLdError("invalid @nest value", nesting_key);
        }
        ContextPtr nest_ctx = ctx;
        const TermDefinition* ndef = ctx->Find(nesting_key);
        if (ndef && ndef->context) {
          auto next = ApplyScoped(ctx, *ndef, true, true);
          if (!next.ok()) return next.status();
          nest_ctx = std::move(next).value();
        }
        BP_RETURN_IF_ERROR(
            ExpandObject(nest_ctx, type_scoped_ctx, &nesting_key, nested, base_url, input_type, result, depth + 1));
      }
    }
    return Status::Ok();
  }

  // ---- toRdf (8.1), walking the expanded document

  Status Emit(const rdf::Term& s, const rdf::Term& p, rdf::Term o, const rdf::Term& g) {
    if (dataset_.size() >= limits_.max_quads) {
      return JsonLdError("too large", "more than " + std::to_string(limits_.max_quads) + " quads");
    }
    dataset_.push_back(rdf::Quad{s, p, std::move(o), g});
    return Status::Ok();
  }

  std::string NewBlank() { return "b" + std::to_string(blank_counter_++); }

  // The term for an @id value, or nullopt when it is not well-formed.
  std::optional<rdf::Term> IdTerm(const std::string& id) {
    if (IsBlankNodeId(id)) {
      if (!IsWellFormedBlankNode(id)) return std::nullopt;
      auto [it, inserted] = blank_labels_.try_emplace(id);
      if (inserted) it->second = NewBlank();
      return rdf::Term::BlankNode(it->second);
    }
    if (!IsWellFormedIri(id)) return std::nullopt;
    return rdf::Term::Iri(id);
  }

  Result<std::optional<rdf::Term>> NodeToRdf(const Json& node, const rdf::Term& graph, int depth) {
    if (depth > 4 * limits_.max_depth) return JsonLdError("too deep", "nesting of the expanded document");
    std::optional<rdf::Term> subject;
    if (auto it = node.find("@id"); it != node.end() && it->is_null()) {
      return subject;  // named by a reserved word: left out (reported by expansion)
    } else if (it != node.end() && it->is_string()) {
      subject = IdTerm(it->get<std::string>());
      if (!subject) BP_RETURN_IF_ERROR(Note("relative subject reference", it->get<std::string>()));
    } else {
      subject = rdf::Term::BlankNode(NewBlank());
    }
    static const rdf::Term type_predicate = rdf::Term::Iri(std::string(rdf::kRdfType));
    for (const auto& [property, values] : node.items()) {
      if (property.empty() || property[0] != '@') {
        // A property IRI (the usual case): keywords all start with '@'.
        BP_RETURN_IF_ERROR(PropertyToRdf(subject, property, values, graph, depth));
      } else if (property == "@type") {
        for (const auto& t : values) {
          if (!t.is_string()) continue;
          auto type = IdTerm(t.get<std::string>());
          if (!type) {
            BP_RETURN_IF_ERROR(Note("relative type reference", t.get<std::string>()));
            continue;
          }
          if (subject) BP_RETURN_IF_ERROR(Emit(*subject, type_predicate, std::move(*type), graph));
        }
      } else if (property == "@reverse") {
        for (const auto& [reverse_property, items] : values.items()) {
          std::optional<rdf::Term> predicate;
          if (IsBlankNodeId(reverse_property)) {
            BP_RETURN_IF_ERROR(Note("blank node predicate", reverse_property));
          } else if (!IsWellFormedIri(reverse_property)) {
            BP_RETURN_IF_ERROR(Note("relative property reference", reverse_property));
          } else {
            predicate = rdf::Term::Iri(reverse_property);
          }
          for (const auto& item : items) {
            auto other = NodeToRdf(item, graph, depth + 1);
            if (!other.ok()) return other.status();
            if (*other && predicate && subject) BP_RETURN_IF_ERROR(Emit(**other, *predicate, *subject, graph));
          }
        }
      } else if (property == "@graph") {
        if (!subject) {
          BP_RETURN_IF_ERROR(Note("relative graph reference", Describe(node.value("@id", Json()))));
          continue;
        }
        for (const auto& inner : values) {
          auto r = NodeToRdf(inner, *subject, depth + 1);
          if (!r.ok()) return r.status();
        }
      } else if (property == "@included") {
        for (const auto& inner : values) {
          auto r = NodeToRdf(inner, graph, depth + 1);
          if (!r.ok()) return r.status();
        }
      } else if (IsKeyword(property)) {
        continue;
      } else {
        BP_RETURN_IF_ERROR(PropertyToRdf(subject, property, values, graph, depth));
      }
    }
    return subject;
  }

  // The triples of one property of a node (`subject`, unset when the node
  // is left out: its objects are still visited, for what they report).
  Status PropertyToRdf(const std::optional<rdf::Term>& subject, const std::string& property, const Json& values,
                       const rdf::Term& graph, int depth) {
    std::optional<rdf::Term> predicate;
    if (IsBlankNodeId(property)) {
      BP_RETURN_IF_ERROR(Note("blank node predicate", property));
    } else if (!IsWellFormedIri(property)) {
      BP_RETURN_IF_ERROR(Note("relative property reference", property));
    } else {
      predicate = rdf::Term::Iri(property);
    }
    for (const auto& item : values) {
      auto object = ObjectToRdf(item, graph, depth + 1);
      if (!object.ok()) return object.status();
      if (*object && predicate && subject) BP_RETURN_IF_ERROR(Emit(*subject, *predicate, std::move(**object), graph));
    }
    return Status::Ok();
  }

  Result<std::optional<rdf::Term>> ObjectToRdf(const Json& item, const rdf::Term& graph, int depth) {
    if (item.is_object()) {
      if (auto value = item.find("@value"); value != item.end()) {
        auto literal = Literal(item, *value);
        if (!literal.ok()) return literal.status();
        return std::move(literal).value();
      }
      if (auto list = item.find("@list"); list != item.end()) {
        auto head = ListToRdf(*list, graph, depth + 1);
        if (!head.ok()) return head.status();
        return std::optional<rdf::Term>(std::move(head).value());
      }
      if (auto id = item.find("@id"); item.size() == 1 && id != item.end() && id->is_string()) {
        // A reference only.
        const std::string& iri = id->get_ref<const std::string&>();
        auto term = IdTerm(iri);
        if (!term) BP_RETURN_IF_ERROR(Note("relative object reference", iri));
        return term;
      }
    }
    return NodeToRdf(item, graph, depth + 1);
  }

  Result<rdf::Term> ListToRdf(const Json& list, const rdf::Term& graph, int depth) {
    if (list.empty()) return rdf::Term::Iri(std::string(rdf::kRdfNil));
    const rdf::Term first = rdf::Term::Iri(std::string(rdf::kRdfFirst));
    const rdf::Term rest = rdf::Term::Iri(std::string(rdf::kRdfRest));
    std::vector<rdf::Term> nodes;
    nodes.reserve(list.size());
    for (size_t i = 0; i < list.size(); ++i) nodes.push_back(rdf::Term::BlankNode(NewBlank()));
    for (size_t i = 0; i < list.size(); ++i) {
      auto object = ObjectToRdf(list[i], graph, depth + 1);
      if (!object.ok()) return object.status();
      if (*object) BP_RETURN_IF_ERROR(Emit(nodes[i], first, std::move(**object), graph));
      BP_RETURN_IF_ERROR(Emit(nodes[i], rest,
                              i + 1 < nodes.size() ? nodes[i + 1] : rdf::Term::Iri(std::string(rdf::kRdfNil)), graph));
    }
    return nodes.front();
  }

  // `value` is item's "@value".
  Result<std::optional<rdf::Term>> Literal(const Json& item, const Json& value) {
    const std::string* datatype = nullptr;
    if (auto t = item.find("@type"); t != item.end() && t->is_string()) datatype = &t->get_ref<const std::string&>();
    if (datatype && *datatype != "@json" && !IsWellFormedIri(*datatype)) {
      BP_RETURN_IF_ERROR(Note("invalid literal", "datatype " + *datatype));
      return std::optional<rdf::Term>();
    }
    const std::string* language = nullptr;
    if (auto l = item.find("@language"); l != item.end() && l->is_string()) {
      language = &l->get_ref<const std::string&>();
      if (!IsWellFormedLanguage(*language)) {
        BP_RETURN_IF_ERROR(Note("invalid literal", "language " + *language));
        return std::optional<rdf::Term>();
      }
    }
    if (datatype && *datatype == "@json") {
      return std::optional<rdf::Term>(rdf::Term::Literal(CanonicalJson(value), std::string(rdf::kRdfJson)));
    }
    if (value.is_boolean()) {
      return std::optional<rdf::Term>(rdf::Term::Literal(value.get<bool>() ? "true" : "false",
                                                         datatype ? *datatype : std::string(rdf::kXsdBoolean)));
    }
    if (value.is_number()) {
      const bool as_double = datatype && *datatype == rdf::kXsdDouble;
      std::string lexical;
      bool is_double = as_double;
      if (value.is_number_float()) {
        const double d = value.get<double>();
        if (!std::isfinite(d)) return JsonLdError("invalid value", "non-finite number");
        if (std::fmod(d, 1.0) != 0 || std::abs(d) >= 1e21) is_double = true;
        lexical = is_double ? FormatDouble(d) : FormatIntegral(d);
      } else if (value.is_number_unsigned()) {
        const uint64_t u = value.get<uint64_t>();
        if (is_double) {
          lexical = FormatDouble(static_cast<double>(u));
        } else {
          lexical = u <= (uint64_t{1} << 53) ? std::to_string(u) : FormatIntegral(static_cast<double>(u));
        }
      } else {
        const int64_t i = value.get<int64_t>();
        if (is_double) {
          lexical = FormatDouble(static_cast<double>(i));
        } else {
          lexical = (i >= -(int64_t{1} << 53) && i <= (int64_t{1} << 53)) ? std::to_string(i)
                                                                           : FormatIntegral(static_cast<double>(i));
        }
      }
      return std::optional<rdf::Term>(rdf::Term::Literal(
          std::move(lexical), datatype ? *datatype : std::string(is_double ? rdf::kXsdDouble : rdf::kXsdInteger)));
    }
    if (!value.is_string()) {
      BP_RETURN_IF_ERROR(Note("invalid literal", Describe(value)));
      return std::optional<rdf::Term>();
    }
    const std::string& text = value.get_ref<const std::string&>();
    if (datatype) return std::optional<rdf::Term>(rdf::Term::Literal(text, *datatype));
    if (language && !language->empty()) {
      return std::optional<rdf::Term>(rdf::Term::Literal(text, std::string(rdf::kRdfLangString), *language));
    }
    return std::optional<rdf::Term>(rdf::Term::Literal(text, std::string(rdf::kXsdString)));
  }

  const DocumentLoader& loader_;
  const Options& options_;
  const Limits& limits_;
  std::vector<Dropped>* dropped_;
  ContextCache::Impl* cache_ = nullptr;
  std::unique_ptr<ContextCache> own_cache_;
  std::vector<Dropped> notes_;
  size_t notes_total_ = 0;
  size_t loads_ = 0;
  size_t steps_ = 0;
  size_t nodes_ = 0;
  rdf::Dataset dataset_;
  std::unordered_map<std::string, std::string> blank_labels_;
  uint64_t blank_counter_ = 0;
};

// ---------------------------------------------------------------------------

Result<nlohmann::json> Expand(const nlohmann::json& document, const DocumentLoader& loader, const Options& options,
                              std::vector<Dropped>* dropped) {
  Processor processor(loader, options, dropped);
  return processor.ExpandDocument(document);
}

Result<rdf::Dataset> ToRdf(const nlohmann::json& document, const DocumentLoader& loader, const Options& options,
                           std::vector<Dropped>* dropped) {
  Processor processor(loader, options, dropped);
  auto expanded = processor.ExpandDocument(document);
  if (!expanded.ok()) return expanded.status();
  return processor.ToRdf(*expanded);
}

Result<std::string> CanonicalNQuads(const nlohmann::json& document, const DocumentLoader& loader,
                                    const Options& options, std::vector<Dropped>* dropped) {
  auto dataset = ToRdf(document, loader, options, dropped);
  if (!dataset.ok()) return dataset.status();
  return rdf::CanonicalNQuads(*dataset, options.canon);
}

DocumentLoader StaticDocumentLoader(std::vector<std::pair<std::string, std::string>> documents) {
  auto table = std::make_shared<const std::map<std::string, std::string>>(documents.begin(), documents.end());
  return [table](const std::string& url) -> Result<LoadedDocument> {
    auto it = table->find(url);
    if (it == table->end()) return NotFound("no such document: " + url);
    return LoadedDocument{url, it->second};
  };
}

}  // namespace backpack::protocol::jsonld
