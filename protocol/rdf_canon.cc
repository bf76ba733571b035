#include "protocol/rdf_canon.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <unordered_map>
#include <utility>

#include "protocol/encoding.h"

namespace backpack::protocol::rdf {
namespace {

constexpr char kHexUpper[] = "0123456789ABCDEF";
constexpr char kHexLower[] = "0123456789abcdef";

// SHA-256 as 64 lowercase hex digits. The digest is fetched from the
// provider once: SHA256() fetches it on every call, which costs more than
// hashing a few N-Quads lines. Falls back to that path if the fetch failed.
std::string HashHex(std::string_view data) {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (md == nullptr || EVP_Digest(data.data(), data.size(), digest, &size, md, nullptr) != 1 || size != 32) {
    return Sha256Hex(data);
  }
  std::string out(64, '\0');
  for (unsigned int i = 0; i < 32; ++i) {
    out[2 * i] = kHexLower[digest[i] >> 4];
    out[2 * i + 1] = kHexLower[digest[i] & 15];
  }
  return out;
}

// Canonical N-Quads string escaping (RDFC-1.0 appendix A): ECHAR for BS, HT,
// LF, FF, CR, '"' and '\'; UCHAR (lowercase \u, uppercase hex) for the other
// C0 controls, DEL and the non-characters U+FFFE/U+FFFF; everything else as is.
// `legacy`: URDNA2015 as first deployed, escaping only '"', '\', LF and CR.
void AppendEscapedString(std::string& out, std::string_view s, bool legacy) {
  if (legacy) {
    for (char c : s) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        default: out += c;
      }
    }
    return;
  }
  for (size_t i = 0; i < s.size(); ++i) {
    // Runs of bytes written as they are go out in one append.
    size_t run = i;
    while (run < s.size()) {
      const auto b = static_cast<unsigned char>(s[run]);
      if (b < 0x20 || b == '"' || b == '\\' || b == 0x7f || b == 0xef) break;
      ++run;
    }
    if (run > i) {
      out.append(s.data() + i, run - i);
      i = run;
      if (i == s.size()) break;
    }
    const auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '\b': out += "\\b"; continue;
      case '\t': out += "\\t"; continue;
      case '\n': out += "\\n"; continue;
      case '\f': out += "\\f"; continue;
      case '\r': out += "\\r"; continue;
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      default: break;
    }
    if (c < 0x20 || c == 0x7f) {
      out += "\\u00";
      out += kHexUpper[c >> 4];
      out += kHexUpper[c & 0xf];
    } else if (c == 0xef && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0xbf &&
               (static_cast<unsigned char>(s[i + 2]) == 0xbe || static_cast<unsigned char>(s[i + 2]) == 0xbf)) {
      out += static_cast<unsigned char>(s[i + 2]) == 0xbe ? "\\uFFFE" : "\\uFFFF";
      i += 2;
    } else {
      out += static_cast<char>(c);
    }
  }
}

// Appends `term` as N-Quads; a blank node is written as "_:" + `label`.
void AppendTerm(std::string& out, const Term& term, std::string_view label, bool legacy = false) {
  switch (term.kind) {
    case TermKind::kIri:
      out += '<';
      out += term.value;
      out += '>';
      break;
    case TermKind::kBlankNode:
      out += "_:";
      out += label;
      break;
    case TermKind::kLiteral:
      out += '"';
      AppendEscapedString(out, term.value, legacy);
      out += '"';
      if (!term.language.empty()) {
        out += '@';
        out += term.language;
      } else if (!term.datatype.empty() && term.datatype != kXsdString) {
        out += "^^<";
        out += term.datatype;
        out += '>';
      }
      break;
    case TermKind::kDefaultGraph:
      break;
  }
}

// ---------------------------------------------------------------------------
// N-Quads parsing

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

class NQuadsParser {
 public:
  explicit NQuadsParser(std::string_view text) : s_(text) {}

  Result<Dataset> Parse(size_t max_quads) {
    if (!IsValidUtf8(s_)) return Fail("not valid UTF-8");
    Dataset out;
    while (true) {
      SkipSpaceAndComments(/*newlines=*/true);
      if (pos_ >= s_.size()) break;
      if (out.size() >= max_quads) return Fail("more than " + std::to_string(max_quads) + " statements");
      Quad q;
      if (auto st = ReadSubjectOrGraph(q.subject); !st.ok()) return st;
      SkipSpaceAndComments(false);
      if (Peek() != '<') return Fail("predicate must be an IRI");
      if (auto st = ReadIri(q.predicate); !st.ok()) return st;
      SkipSpaceAndComments(false);
      if (auto st = ReadObject(q.object); !st.ok()) return st;
      SkipSpaceAndComments(false);
      if (Peek() == '<' || Peek() == '_') {
        if (auto st = ReadSubjectOrGraph(q.graph); !st.ok()) return st;
        SkipSpaceAndComments(false);
      }
      if (Peek() != '.') return Fail("expected '.' at the end of a statement");
      ++pos_;
      SkipSpaceAndComments(false);
      if (pos_ < s_.size() && s_[pos_] != '\n' && s_[pos_] != '\r') return Fail("expected end of line");
      out.push_back(std::move(q));
    }
    return out;
  }

 private:
  char Peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }

  Status Fail(const std::string& why) const {
    size_t line = 1 + static_cast<size_t>(std::count(s_.begin(), s_.begin() + std::min(pos_, s_.size()), '\n'));
    return InvalidArgument("N-Quads line " + std::to_string(line) + ": " + why);
  }

  void SkipSpaceAndComments(bool newlines) {
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if (c == ' ' || c == '\t' || (newlines && (c == '\n' || c == '\r'))) {
        ++pos_;
      } else if (c == '#') {
        while (pos_ < s_.size() && s_[pos_] != '\n' && s_[pos_] != '\r') ++pos_;
      } else {
        break;
      }
    }
  }

  Status ReadSubjectOrGraph(Term& term) {
    if (Peek() == '<') return ReadIri(term);
    if (Peek() == '_') return ReadBlank(term);
    return Fail("expected an IRI or a blank node");
  }

  Status ReadObject(Term& term) {
    if (Peek() == '"') return ReadLiteral(term);
    return ReadSubjectOrGraph(term);
  }

  Result<uint32_t> ReadUchar() {
    // At the 'u' or 'U' after a backslash.
    const size_t digits = s_[pos_] == 'u' ? 4 : 8;
    ++pos_;
    if (pos_ + digits > s_.size()) return Fail("truncated \\u escape");
    uint32_t cp = 0;
    for (size_t i = 0; i < digits; ++i) {
      const char h = s_[pos_ + i];
      uint32_t v;
      if (h >= '0' && h <= '9') {
        v = h - '0';
      } else if (h >= 'a' && h <= 'f') {
        v = h - 'a' + 10;
      } else if (h >= 'A' && h <= 'F') {
        v = h - 'A' + 10;
      } else {
        return Fail("bad hex digit in \\u escape");
      }
      cp = cp * 16 + v;
    }
    pos_ += digits;
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return Fail("\\u escape is not a Unicode scalar value");
    return cp;
  }

  Status ReadIri(Term& term) {
    ++pos_;  // '<'
    std::string iri;
    while (true) {
      if (pos_ >= s_.size()) return Fail("unterminated IRI");
      const auto c = static_cast<unsigned char>(s_[pos_]);
      if (c == '>') {
        ++pos_;
        break;
      }
      if (c == '\\') {
        ++pos_;
        if (Peek() != 'u' && Peek() != 'U') return Fail("only \\u escapes are allowed in IRIs");
        auto cp = ReadUchar();
        if (!cp.ok()) return cp.status();
        AppendUtf8(iri, *cp);
        continue;
      }
      if (c <= 0x20 || c == '<' || c == '"' || c == '{' || c == '}' || c == '|' || c == '^' || c == '`') {
        return Fail("character not allowed in an IRI");
      }
      iri += static_cast<char>(c);
      ++pos_;
    }
    if (iri.find(':') == std::string::npos) return Fail("IRI is not absolute: " + iri);
    term = Term::Iri(std::move(iri));
    return Status::Ok();
  }

  static bool IsLabelChar(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.' || c >= 0x80;
  }

  Status ReadBlank(Term& term) {
    if (s_.substr(pos_, 2) != "_:") return Fail("expected a blank node label");
    pos_ += 2;
    const size_t start = pos_;
    while (pos_ < s_.size() && IsLabelChar(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    // A label never ends with '.': that dot ends the statement.
    while (pos_ > start && s_[pos_ - 1] == '.') --pos_;
    if (pos_ == start || s_[start] == '-' || s_[start] == '.') return Fail("bad blank node label");
    term = Term::BlankNode(std::string(s_.substr(start, pos_ - start)));
    return Status::Ok();
  }

  Status ReadLiteral(Term& term) {
    ++pos_;  // '"'
    std::string value;
    while (true) {
      if (pos_ >= s_.size()) return Fail("unterminated string");
      const char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        break;
      }
      if (c == '\n' || c == '\r') return Fail("line break inside a string");
      if (c == '\\') {
        ++pos_;
        const char e = Peek();
        switch (e) {
          case 't': value += '\t'; break;
          case 'b': value += '\b'; break;
          case 'n': value += '\n'; break;
          case 'r': value += '\r'; break;
          case 'f': value += '\f'; break;
          case '"': value += '"'; break;
          case '\'': value += '\''; break;
          case '\\': value += '\\'; break;
          case 'u':
          case 'U': {
            auto cp = ReadUchar();
            if (!cp.ok()) return cp.status();
            AppendUtf8(value, *cp);
            continue;
          }
          default: return Fail("bad escape in string");
        }
        ++pos_;
        continue;
      }
      value += c;
      ++pos_;
    }
    if (Peek() == '@') {
      ++pos_;
      const size_t start = pos_;
      while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '-')) ++pos_;
      std::string lang(s_.substr(start, pos_ - start));
      if (lang.empty() || !std::isalpha(static_cast<unsigned char>(lang[0])) || lang.back() == '-') {
        return Fail("bad language tag");
      }
      term = Term::Literal(std::move(value), std::string(kRdfLangString), std::move(lang));
      return Status::Ok();
    }
    if (s_.substr(pos_, 2) == "^^") {
      pos_ += 2;
      Term datatype;
      if (Peek() != '<') return Fail("datatype must be an IRI");
      if (auto st = ReadIri(datatype); !st.ok()) return st;
      term = Term::Literal(std::move(value), std::move(datatype.value));
      return Status::Ok();
    }
    term = Term::Literal(std::move(value), std::string(kXsdString));
    return Status::Ok();
  }

  std::string_view s_;
  size_t pos_ = 0;
};

// ---------------------------------------------------------------------------
// RDFC-1.0

// Issues identifiers with a prefix in the order blank nodes are met.
struct IdentifierIssuer {
  std::unordered_map<int, int> issued;  // blank node -> number
  std::vector<int> order;               // blank nodes in issue order

  int Issue(int node) {
    auto [it, inserted] = issued.try_emplace(node, static_cast<int>(order.size()));
    if (inserted) order.push_back(node);
    return it->second;
  }
  const int* Find(int node) const {
    auto it = issued.find(node);
    return it == issued.end() ? nullptr : &it->second;
  }
};

struct NDegreeResult {
  std::string hash;
  IdentifierIssuer issuer;
};

class Canonicalizer {
 public:
  explicit Canonicalizer(const CanonOptions& options) : options_(options) {}

  // `with_labels`: also fill CanonicalDataset::labels.
  Result<CanonicalDataset> Run(const Dataset& input, bool with_labels) {
    // Distinct quads only: the input is a set.
    std::vector<const Quad*> sorted;
    sorted.reserve(input.size());
    for (const auto& q : input) sorted.push_back(&q);
    std::sort(sorted.begin(), sorted.end(), [](const Quad* a, const Quad* b) { return *a < *b; });
    sorted.erase(std::unique(sorted.begin(), sorted.end(), [](const Quad* a, const Quad* b) { return *a == *b; }),
                 sorted.end());
    if (sorted.size() > options_.max_quads) {
      return InvalidArgument("RDF canonicalization: the dataset has " + std::to_string(sorted.size()) +
                             " quads, more than the limit of " + std::to_string(options_.max_quads));
    }
    quads_ = std::move(sorted);

    // Blank node -> quads that mention it (step 2).
    std::unordered_map<std::string_view, int> index;
    blanks_.resize(quads_.size());
    for (size_t qi = 0; qi < quads_.size(); ++qi) {
      const Quad& q = *quads_[qi];
      const Term* parts[4] = {&q.subject, &q.predicate, &q.object, &q.graph};
      for (int k = 0; k < 4; ++k) {
        blanks_[qi][k] = -1;
        if (!parts[k]->is_blank()) continue;
        auto [it, inserted] = index.try_emplace(parts[k]->value, static_cast<int>(labels_.size()));
        if (inserted) {
          if (labels_.size() >= options_.max_blank_nodes) {
            return InvalidArgument("RDF canonicalization: more than " + std::to_string(options_.max_blank_nodes) +
                                   " blank nodes");
          }
          labels_.push_back(&parts[k]->value);
          mentions_.emplace_back();
        }
        blanks_[qi][k] = it->second;
        auto& m = mentions_[it->second];
        if (m.empty() || m.back() != static_cast<int>(qi)) m.push_back(static_cast<int>(qi));
      }
    }
    const size_t n = labels_.size();
    canonical_.assign(n, -1);

    // Steps 3-4: first-degree hashes; unique ones are labelled at once, in
    // hash order. (hash, node) pairs sorted: each hash's nodes in a run, in
    // node order.
    first_degree_.resize(n);
    std::vector<std::pair<const std::string*, int>> by_hash;
    by_hash.reserve(n);
    for (size_t b = 0; b < n; ++b) {
      first_degree_[b] = HashFirstDegree(static_cast<int>(b));
      by_hash.emplace_back(&first_degree_[b], static_cast<int>(b));
    }
    std::sort(by_hash.begin(), by_hash.end(), [](const auto& a, const auto& b) {
      return *a.first != *b.first ? *a.first < *b.first : a.second < b.second;
    });
    std::vector<std::pair<size_t, size_t>> shared;  // runs of more than one node: [begin, end)
    for (size_t i = 0; i < by_hash.size();) {
      size_t end = i + 1;
      while (end < by_hash.size() && *by_hash[end].first == *by_hash[i].first) ++end;
      if (end - i == 1) {
        IssueCanonical(by_hash[i].second);
      } else {
        shared.emplace_back(i, end);
      }
      i = end;
    }

    // Step 5: the shared hashes, through the N-degree search.
    for (const auto& [begin, end] : shared) {
      std::vector<NDegreeResult> paths;
      for (size_t k = begin; k < end; ++k) {
        const int node = by_hash[k].second;
        if (canonical_[node] >= 0) continue;
        IdentifierIssuer temporary;
        temporary.Issue(node);
        auto result = HashNDegree(node, std::move(temporary), 0);
        if (!result.ok()) return result.status();
        paths.push_back(std::move(result).value());
      }
      std::stable_sort(paths.begin(), paths.end(),
                       [](const NDegreeResult& a, const NDegreeResult& b) { return a.hash < b.hash; });
      for (const auto& path : paths) {
        for (int node : path.issuer.order) IssueCanonical(node);
      }
    }

    // Step 6: serialise with canonical labels and sort.
    canonical_labels_.resize(n);
    for (size_t b = 0; b < n; ++b) canonical_labels_[b] = "c14n" + std::to_string(canonical_[b]);
    // All lines go into one buffer; the sort moves views of them.
    std::string buffer;
    std::vector<std::pair<size_t, size_t>> spans;  // offset, size
    spans.reserve(quads_.size());
    std::string line;
    for (size_t qi = 0; qi < quads_.size(); ++qi) {
      SerializeInto(line, static_cast<int>(qi), Canonical());
      spans.emplace_back(buffer.size(), line.size());
      buffer += line;
    }
    std::vector<std::string_view> lines;
    lines.reserve(spans.size());
    for (const auto& [offset, size] : spans) lines.emplace_back(buffer.data() + offset, size);
    std::sort(lines.begin(), lines.end());
    CanonicalDataset out;
    out.nquads.reserve(buffer.size());
    for (std::string_view l : lines) out.nquads += l;
    if (with_labels) {
      for (size_t b = 0; b < n; ++b) out.labels.emplace(*labels_[b], canonical_labels_[b]);
    }
    return out;
  }

 private:
  // How a blank node is written while serialising one quad.
  struct LabelFor {
    const Canonicalizer* self;
    int mode;  // 0: canonical labels; 1: "a" for `focus`, "z" for others
    int focus;
  };
  LabelFor Canonical() const { return {this, 0, -1}; }

  // Quad `qi` as an N-Quads line, replacing the contents of `line` (whose
  // buffer is reused).
  void SerializeInto(std::string& line, int qi, const LabelFor& how) const {
    const Quad& q = *quads_[qi];
    const Term* parts[4] = {&q.subject, &q.predicate, &q.object, &q.graph};
    line.clear();
    for (int k = 0; k < 4; ++k) {
      if (k == 3 && parts[k]->kind == TermKind::kDefaultGraph) break;
      if (k > 0) line += ' ';
      const int b = blanks_[qi][k];
      std::string_view label;
      if (b >= 0) {
        if (how.mode == 0) {
          label = canonical_labels_[b];
        } else {
          label = b == how.focus ? "a" : "z";
        }
      }
      AppendTerm(line, *parts[k], label, options_.legacy_urdna2015_escaping);
    }
    line += " .\n";
  }

  void IssueCanonical(int node) {
    if (canonical_[node] < 0) canonical_[node] = next_canonical_++;
  }

  // Hash First Degree Quads (4.6). The line buffers are kept from one
  // blank node to the next.
  std::string HashFirstDegree(int node) {
    const std::vector<int>& mentions = mentions_[node];
    if (scratch_lines_.size() < mentions.size()) scratch_lines_.resize(mentions.size());
    for (size_t i = 0; i < mentions.size(); ++i) SerializeInto(scratch_lines_[i], mentions[i], LabelFor{this, 1, node});
    const auto end = scratch_lines_.begin() + static_cast<ptrdiff_t>(mentions.size());
    std::sort(scratch_lines_.begin(), end);
    scratch_all_.clear();
    for (auto it = scratch_lines_.begin(); it != end; ++it) scratch_all_ += *it;
    return HashHex(scratch_all_);
  }

  // Hash Related Blank Node (4.7).
  std::string HashRelated(int related, int qi, const IdentifierIssuer& issuer, char position) const {
    std::string input(1, position);
    if (position != 'g') {
      input += '<';
      input += quads_[qi]->predicate.value;
      input += '>';
    }
    if (canonical_[related] >= 0) {
      input += "_:c14n" + std::to_string(canonical_[related]);
    } else if (const int* id = issuer.Find(related)) {
      input += "_:b" + std::to_string(*id);
    } else {
      input += first_degree_[related];
    }
    return HashHex(input);
  }

  Status Spend() {
    if (++work_ > options_.max_work) {
      return InvalidArgument("RDF canonicalization: the dataset needs more than " +
                             std::to_string(options_.max_work) +
                             " steps to tell its blank nodes apart (too many interchangeable blank nodes)");
    }
    return Status::Ok();
  }

  static bool WorseThan(const std::string& path, const std::string& chosen) {
    return !chosen.empty() && path.size() >= chosen.size() && path > chosen;
  }

  // Hash N-Degree Quads (4.8).
  Result<NDegreeResult> HashNDegree(int node, IdentifierIssuer issuer, size_t depth) {
    if (depth > options_.max_recursion_depth) {
      return InvalidArgument("RDF canonicalization: blank nodes chain deeper than " +
                             std::to_string(options_.max_recursion_depth));
    }
    BP_RETURN_IF_ERROR(Spend());
    static constexpr char kPositions[4] = {'s', 'p', 'o', 'g'};
    std::map<std::string, std::vector<int>> related_by_hash;
    for (int qi : mentions_[node]) {
      for (int k : {0, 2, 3}) {
        const int b = blanks_[qi][k];
        if (b < 0 || b == node) continue;
        auto& list = related_by_hash[HashRelated(b, qi, issuer, kPositions[k])];
        list.push_back(b);
      }
    }
    std::string data;
    for (auto& [related_hash, list] : related_by_hash) {
      data += related_hash;
      std::string chosen_path;
      IdentifierIssuer chosen_issuer;
      bool have_chosen = false;
      std::sort(list.begin(), list.end());
      do {
        BP_RETURN_IF_ERROR(Spend());
        IdentifierIssuer copy = issuer;
        std::string path;
        std::vector<int> recursion;
        bool skip = false;
        for (int related : list) {
          if (canonical_[related] >= 0) {
            path += "_:c14n" + std::to_string(canonical_[related]);
          } else {
            if (!copy.Find(related)) recursion.push_back(related);
            path += "_:b" + std::to_string(copy.Issue(related));
          }
          if (have_chosen && WorseThan(path, chosen_path)) {
            skip = true;
            break;
          }
        }
        if (skip) continue;
        for (int related : recursion) {
          auto result = HashNDegree(related, copy, depth + 1);
          if (!result.ok()) return result.status();
          path += "_:b" + std::to_string(copy.Issue(related));
          path += '<';
          path += result->hash;
          path += '>';
          copy = std::move(result->issuer);
          if (have_chosen && WorseThan(path, chosen_path)) {
            skip = true;
            break;
          }
        }
        if (skip) continue;
        if (!have_chosen || path < chosen_path) {
          chosen_path = std::move(path);
          chosen_issuer = std::move(copy);
          have_chosen = true;
        }
      } while (std::next_permutation(list.begin(), list.end()));
      data += chosen_path;
      issuer = std::move(chosen_issuer);
    }
    return NDegreeResult{HashHex(data), std::move(issuer)};
  }

  const CanonOptions& options_;
  std::vector<const Quad*> quads_;
  std::vector<std::array<int, 4>> blanks_;  // per quad: blank node index per position, or -1
  std::vector<const std::string*> labels_;  // blank node index -> input label
  std::vector<std::vector<int>> mentions_;  // blank node index -> quads
  std::vector<std::string> first_degree_;
  std::vector<int> canonical_;
  std::vector<std::string> canonical_labels_;  // "c14n<n>" per blank node, once all are issued
  std::vector<std::string> scratch_lines_;     // HashFirstDegree's buffers
  std::string scratch_all_;
  int next_canonical_ = 0;
  uint64_t work_ = 0;
};

}  // namespace

std::string ToNQuad(const Quad& quad) {
  std::string line;
  AppendTerm(line, quad.subject, quad.subject.value);
  line += ' ';
  AppendTerm(line, quad.predicate, quad.predicate.value);
  line += ' ';
  AppendTerm(line, quad.object, quad.object.value);
  if (quad.graph.kind != TermKind::kDefaultGraph) {
    line += ' ';
    AppendTerm(line, quad.graph, quad.graph.value);
  }
  line += " .\n";
  return line;
}

std::string ToNQuads(const Dataset& dataset) {
  std::string out;
  for (const auto& q : dataset) out += ToNQuad(q);
  return out;
}

Result<Dataset> ParseNQuads(std::string_view text, size_t max_quads) {
  return NQuadsParser(text).Parse(max_quads);
}

Result<CanonicalDataset> Canonicalize(const Dataset& dataset, const CanonOptions& options) {
  return Canonicalizer(options).Run(dataset, /*with_labels=*/true);
}

Result<std::string> CanonicalNQuads(const Dataset& dataset, const CanonOptions& options) {
  auto result = Canonicalizer(options).Run(dataset, /*with_labels=*/false);
  if (!result.ok()) return result.status();
  return std::move(result->nquads);
}

}  // namespace backpack::protocol::rdf
