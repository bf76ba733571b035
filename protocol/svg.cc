#include "protocol/svg.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace backpack::protocol {
namespace {

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";
constexpr std::string_view kBakePrefix = "openbadges";
constexpr size_t kMaxReferenceLength = 32;  // "&#x0000000000000000000010FFFF;" and the like

bool IsXmlSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool IsNameStart(char c) {
  const auto u = static_cast<unsigned char>(c);
  return (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || u == '_' || u == ':' || u >= 0x80;
}

bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9') || c == '-' || c == '.'; }

bool AllSpace(std::string_view text) { return std::all_of(text.begin(), text.end(), IsXmlSpace); }

std::string_view LocalName(std::string_view qname) {
  const size_t colon = qname.find(':');
  return colon == std::string_view::npos ? qname : qname.substr(colon + 1);
}

std::string_view PrefixOf(std::string_view qname) {
  const size_t colon = qname.find(':');
  return colon == std::string_view::npos ? std::string_view() : qname.substr(0, colon);
}

std::string At(size_t offset) { return " at offset " + std::to_string(offset); }

// For messages: the first bytes of something the input controls.
std::string Shorten(std::string_view text) {
  constexpr size_t kMax = 40;
  return text.size() <= kMax ? std::string(text) : std::string(text.substr(0, kMax)) + "...";
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

bool IsXmlChar(uint32_t cp) {
  return cp == 0x9 || cp == 0xa || cp == 0xd || (cp >= 0x20 && cp <= 0xd7ff) ||
         (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

// Decodes one reference, `ref` being the text between '&' and ';'.
std::optional<uint32_t> DecodeReference(std::string_view ref) {
  if (ref == "lt") return '<';
  if (ref == "gt") return '>';
  if (ref == "amp") return '&';
  if (ref == "quot") return '"';
  if (ref == "apos") return '\'';
  if (ref.size() < 2 || ref[0] != '#') return std::nullopt;
  const bool hex = ref[1] == 'x';
  std::string_view digits = ref.substr(hex ? 2 : 1);
  if (digits.empty()) return std::nullopt;
  uint32_t cp = 0;
  for (char c : digits) {
    uint32_t d;
    if (c >= '0' && c <= '9') {
      d = static_cast<uint32_t>(c - '0');
    } else if (hex && c >= 'a' && c <= 'f') {
      d = static_cast<uint32_t>(c - 'a' + 10);
    } else if (hex && c >= 'A' && c <= 'F') {
      d = static_cast<uint32_t>(c - 'A' + 10);
    } else {
      return std::nullopt;
    }
    cp = cp * (hex ? 16 : 10) + d;
    if (cp > 0x10ffff) return std::nullopt;
  }
  if (!IsXmlChar(cp)) return std::nullopt;
  return cp;
}

// Appends literal document text as XML reads it: CR LF and a lone CR become
// LF, and in attribute values every tab and line end becomes a space.
void AppendLiteral(std::string& out, std::string_view literal, bool attribute) {
  for (size_t i = 0; i < literal.size(); ++i) {
    char c = literal[i];
    if (c == '\r') {
      if (i + 1 < literal.size() && literal[i + 1] == '\n') ++i;
      c = '\n';
    }
    if (attribute && (c == '\n' || c == '\t')) c = ' ';
    out.push_back(c);
  }
}

// Checks every reference in `raw` (found at `offset` in the document) and,
// when `out` is set, appends the decoded text (see AppendLiteral); characters
// written as references are kept as they are.
Status DecodeText(std::string_view raw, size_t offset, bool attribute, std::string* out) {
  size_t i = 0;
  while (i < raw.size()) {
    const size_t amp = raw.find('&', i);
    const size_t stop = amp == std::string_view::npos ? raw.size() : amp;
    if (out) AppendLiteral(*out, raw.substr(i, stop - i), attribute);
    if (amp == std::string_view::npos) break;
    const size_t semi = raw.find(';', amp + 1);
    if (semi == std::string_view::npos || semi - amp - 1 > kMaxReferenceLength) {
      return InvalidArgument("malformed character or entity reference" + At(offset + amp));
    }
    const std::string_view ref = raw.substr(amp + 1, semi - amp - 1);
    const std::optional<uint32_t> cp = DecodeReference(ref);
    if (!cp) {
      if (!ref.empty() && ref[0] == '#') {
        return InvalidArgument("invalid character reference '&" + std::string(ref) + ";'" + At(offset + amp));
      }
      return InvalidArgument("undefined entity reference '&" + Shorten(ref) + ";'" + At(offset + amp) +
                             " (only the predefined XML entities are allowed)");
    }
    if (out) AppendUtf8(*out, *cp);
    i = semi + 1;
  }
  return Status::Ok();
}

struct Attribute {
  std::string_view name;
  std::string_view raw_value;  // between the quotes, undecoded
  size_t value_offset = 0;
  size_t begin = 0;  // the whole `name="value"`
  size_t end = 0;
};

enum class TokenType { kStartTag, kEndTag, kText, kCData, kComment, kProcessingInstruction, kDoctype, kEnd };

struct Token {
  TokenType type = TokenType::kEnd;
  size_t begin = 0;  // byte span in the document
  size_t end = 0;
  std::string_view name;  // tag name (qualified) or PI target
  std::vector<Attribute> attributes;
  bool self_closing = false;
  size_t name_end = 0;       // start tags: just past the name
  size_t close_begin = 0;    // start tags: where "/>" or ">" begins
  std::string_view content;  // text, CDATA
};

// A pull tokenizer over a whole document held in memory. Every construct is
// found by a forward search bounded by the end of the input; nothing recurses.
class Tokenizer {
 public:
  Tokenizer(std::string_view doc, size_t start) : doc_(doc), pos_(start) {}

  Status Next(Token& token) {
    token.attributes.clear();
    token.self_closing = false;
    token.name = {};
    token.content = {};
    token.begin = pos_;
    if (pos_ >= doc_.size()) {
      token.type = TokenType::kEnd;
      token.end = pos_;
      return Status::Ok();
    }
    if (doc_[pos_] != '<') {
      const size_t lt = doc_.find('<', pos_);
      token.type = TokenType::kText;
      token.end = lt == std::string_view::npos ? doc_.size() : lt;
      token.content = doc_.substr(pos_, token.end - pos_);
      pos_ = token.end;
      return Status::Ok();
    }
    const std::string_view rest = doc_.substr(pos_);
    if (rest.starts_with("<!--")) return Delimited(token, TokenType::kComment, 4, "-->", "comment");
    if (rest.starts_with("<![CDATA[")) return Delimited(token, TokenType::kCData, 9, "]]>", "CDATA section");
    if (rest.starts_with("<?")) return ProcessingInstruction(token);
    if (rest.starts_with("<!DOCTYPE")) return Doctype(token);
    if (rest.starts_with("<!ENTITY")) {
      return InvalidArgument("ENTITY declaration refused" + At(pos_) + " (entities are never expanded)");
    }
    if (rest.starts_with("<!")) {
      return InvalidArgument("unsupported markup declaration '" + Shorten(rest.substr(0, 12)) + "'" +
                             At(pos_));
    }
    if (rest.starts_with("</")) return EndTag(token);
    return StartTag(token);
  }

 private:
  Status Delimited(Token& token, TokenType type, size_t open, std::string_view close, const char* what) {
    const size_t found = doc_.find(close, pos_ + open);
    if (found == std::string_view::npos)
      return InvalidArgument(std::string("unterminated ") + what + At(pos_));
    token.type = type;
    token.content = doc_.substr(pos_ + open, found - pos_ - open);
    token.end = found + close.size();
    pos_ = token.end;
    return Status::Ok();
  }

  Status ProcessingInstruction(Token& token) {
    const size_t name_begin = pos_ + 2;
    size_t p = name_begin;
    if (p < doc_.size() && IsNameStart(doc_[p])) {
      while (p < doc_.size() && IsNameChar(doc_[p])) ++p;
    }
    if (p == name_begin) return InvalidArgument("malformed processing instruction" + At(pos_));
    const std::string_view target = doc_.substr(name_begin, p - name_begin);
    if (EqualsIgnoreCase(target, "xml")) {
      return InvalidArgument("XML declaration" + At(pos_) + " is only allowed at the very start");
    }
    const size_t close = doc_.find("?>", p);
    if (close == std::string_view::npos)
      return InvalidArgument("unterminated processing instruction" + At(pos_));
    token.type = TokenType::kProcessingInstruction;
    token.name = target;
    token.end = close + 2;
    pos_ = token.end;
    return Status::Ok();
  }

  // <!DOCTYPE name [PUBLIC "id" "uri" | SYSTEM "uri"]> is accepted and
  // ignored; an internal subset is where entities would be declared.
  Status Doctype(Token& token) {
    char quote = 0;
    for (size_t p = pos_ + 9; p < doc_.size(); ++p) {
      const char c = doc_[p];
      if (quote) {
        if (c == quote) quote = 0;
      } else if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '[') {
        return InvalidArgument("DOCTYPE with an internal subset refused" + At(pos_) +
                               " (entity declarations are not allowed)");
      } else if (c == '<') {
        return InvalidArgument("malformed DOCTYPE" + At(pos_));
      } else if (c == '>') {
        token.type = TokenType::kDoctype;
        token.end = p + 1;
        pos_ = token.end;
        return Status::Ok();
      }
    }
    return InvalidArgument("unterminated DOCTYPE" + At(pos_));
  }

  size_t ReadName(size_t p) const {
    if (p >= doc_.size() || !IsNameStart(doc_[p])) return p;
    while (p < doc_.size() && IsNameChar(doc_[p])) ++p;
    return p;
  }

  size_t SkipSpace(size_t p) const {
    while (p < doc_.size() && IsXmlSpace(doc_[p])) ++p;
    return p;
  }

  Status EndTag(Token& token) {
    const size_t name_begin = pos_ + 2;
    const size_t name_end = ReadName(name_begin);
    if (name_end == name_begin) return InvalidArgument("malformed end tag" + At(pos_));
    const size_t p = SkipSpace(name_end);
    if (p >= doc_.size() || doc_[p] != '>') return InvalidArgument("malformed end tag" + At(pos_));
    token.type = TokenType::kEndTag;
    token.name = doc_.substr(name_begin, name_end - name_begin);
    token.end = p + 1;
    pos_ = token.end;
    return Status::Ok();
  }

  Status StartTag(Token& token) {
    const size_t tag_begin = pos_;
    const size_t name_begin = pos_ + 1;
    const size_t name_end = ReadName(name_begin);
    if (name_end == name_begin) return InvalidArgument("'<' not followed by a tag name" + At(tag_begin));
    token.type = TokenType::kStartTag;
    token.name = doc_.substr(name_begin, name_end - name_begin);
    token.name_end = name_end;
    size_t p = name_end;
    while (true) {
      const size_t space_end = SkipSpace(p);
      if (space_end >= doc_.size()) {
        return InvalidArgument("unterminated tag <" + Shorten(token.name) + ">" + At(tag_begin));
      }
      if (doc_[space_end] == '>' || doc_.substr(space_end).starts_with("/>")) {
        token.close_begin = space_end;
        token.self_closing = doc_[space_end] == '/';
        token.end = space_end + (token.self_closing ? 2 : 1);
        pos_ = token.end;
        return Status::Ok();
      }
      if (space_end == p) {
        return InvalidArgument("malformed tag <" + Shorten(token.name) + ">" + At(p) +
                               " (expected whitespace, '>' or '/>')");
      }
      Attribute attr;
      attr.begin = space_end;
      const size_t attr_name_end = ReadName(space_end);
      if (attr_name_end == space_end) {
        return InvalidArgument("malformed attribute in <" + Shorten(token.name) + ">" + At(space_end));
      }
      attr.name = doc_.substr(space_end, attr_name_end - space_end);
      p = SkipSpace(attr_name_end);
      if (p >= doc_.size() || doc_[p] != '=') {
        return InvalidArgument("attribute '" + Shorten(attr.name) + "' has no value" + At(space_end));
      }
      p = SkipSpace(p + 1);
      if (p >= doc_.size() || (doc_[p] != '"' && doc_[p] != '\'')) {
        return InvalidArgument("attribute '" + Shorten(attr.name) + "' value is not quoted" + At(p));
      }
      const char quote = doc_[p];
      const size_t close = doc_.find(quote, p + 1);
      if (close == std::string_view::npos) {
        return InvalidArgument("unterminated value of attribute '" + Shorten(attr.name) + "'" + At(p));
      }
      attr.value_offset = p + 1;
      attr.raw_value = doc_.substr(p + 1, close - p - 1);
      if (attr.raw_value.find('<') != std::string_view::npos) {
        return InvalidArgument("'<' inside the value of attribute '" + Shorten(attr.name) + "'" + At(p));
      }
      attr.end = close + 1;
      token.attributes.push_back(attr);
      p = close + 1;
    }
  }

  std::string_view doc_;
  size_t pos_;
};

// Checks what comes before the tokenizer may start: the size, NUL bytes, the
// byte order mark and the XML declaration. Returns where the tokenizer starts.
Result<size_t> CheckPrologue(std::string_view doc) {
  if (doc.find('\0') != std::string_view::npos) {
    return InvalidArgument("SVG contains a NUL byte" + At(doc.find('\0')));
  }
  if (doc.starts_with("\xFE\xFF") || doc.starts_with("\xFF\xFE")) {
    return InvalidArgument("UTF-16 SVG is not supported; only UTF-8");
  }
  size_t start = doc.starts_with(kUtf8Bom) ? kUtf8Bom.size() : 0;
  const std::string_view rest = doc.substr(start);
  if (!rest.starts_with("<?xml") || rest.size() < 6 || !(IsXmlSpace(rest[5]) || rest[5] == '?')) return start;
  const size_t close = rest.find("?>");
  if (close == std::string_view::npos) return InvalidArgument("unterminated XML declaration");
  const std::string_view decl = rest.substr(5, close - 5);
  const size_t enc = decl.find("encoding");
  if (enc != std::string_view::npos) {
    size_t p = enc + 8;
    while (p < decl.size() && IsXmlSpace(decl[p])) ++p;
    if (p < decl.size() && decl[p] == '=') ++p;
    while (p < decl.size() && IsXmlSpace(decl[p])) ++p;
    if (p >= decl.size() || (decl[p] != '"' && decl[p] != '\'')) {
      return InvalidArgument("malformed encoding in the XML declaration");
    }
    const size_t end = decl.find(decl[p], p + 1);
    if (end == std::string_view::npos) return InvalidArgument("malformed encoding in the XML declaration");
    const std::string_view name = decl.substr(p + 1, end - p - 1);
    if (!EqualsIgnoreCase(name, "utf-8") && !EqualsIgnoreCase(name, "utf8") &&
        !EqualsIgnoreCase(name, "us-ascii") && !EqualsIgnoreCase(name, "ascii")) {
      return InvalidArgument("SVG declares encoding '" + Shorten(name) + "'; only UTF-8 is supported");
    }
  }
  return start + close + 2;
}

// The qualified name of the root element, after checking the prologue and
// everything before the root.
Result<std::string_view> RootElementName(std::string_view doc) {
  Result<size_t> start = CheckPrologue(doc);
  if (!start.ok()) return start.status();
  Tokenizer tokenizer(doc, *start);
  Token token;
  while (true) {
    BP_RETURN_IF_ERROR(tokenizer.Next(token));
    switch (token.type) {
      case TokenType::kStartTag:
        return token.name;
      case TokenType::kText:
        if (!AllSpace(token.content)) {
          return InvalidArgument("not XML: text before the root element" + At(token.begin));
        }
        break;
      case TokenType::kComment:
      case TokenType::kProcessingInstruction:
      case TokenType::kDoctype:
        break;
      case TokenType::kEnd:
        return InvalidArgument("XML document has no root element");
      case TokenType::kEndTag:
      case TokenType::kCData:
        return InvalidArgument("not XML: markup before the root element" + At(token.begin));
    }
  }
}

bool IsBadgeNamespace(std::string_view ns) {
  return ns == kSvgLegacyNamespace || ns == kSvgOb2Namespace || ns == kSvgOb3Namespace;
}

std::optional<BadgeKind> BadgeLocalName(std::string_view local) {
  if (local == "assertion") return BadgeKind::kAssertion;
  if (local == "credential") return BadgeKind::kCredential;
  return std::nullopt;
}

// What ScanSvg learns about a document.
struct SvgScan {
  std::string_view root_name;
  size_t root_name_end = 0;     // just past "<svg"
  size_t root_close_begin = 0;  // where the root start tag's ">" or "/>" begins
  size_t root_tag_end = 0;      // just past the root start tag
  bool root_self_closing = false;
  std::optional<Attribute> root_prefix_decl;  // the root's own xmlns:openbadges
  std::string root_prefix_namespace;
  // Extraction: the one badge element. Baking: the spans of every outermost
  // badge element, to be removed.
  std::optional<SvgBadgeElement> badge;
  std::vector<std::pair<size_t, size_t>> badge_spans;
};

// The namespace bindings in scope, pushed and popped with the element stack.
class NamespaceScope {
 public:
  void Declare(std::string_view prefix, std::string uri) {
    bindings_[prefix].push_back(std::move(uri));
    declared_.push_back(prefix);
  }
  size_t Mark() const { return declared_.size(); }
  void PopTo(size_t mark) {
    while (declared_.size() > mark) {
      auto it = bindings_.find(declared_.back());
      it->second.pop_back();
      if (it->second.empty()) bindings_.erase(it);
      declared_.pop_back();
    }
  }
  // Empty when the prefix is not bound (or bound to "").
  std::string_view Resolve(std::string_view prefix) const {
    auto it = bindings_.find(prefix);
    return it == bindings_.end() ? std::string_view() : std::string_view(it->second.back());
  }

 private:
  std::map<std::string_view, std::vector<std::string>, std::less<>> bindings_;
  std::vector<std::string_view> declared_;
};

struct OpenElement {
  std::string_view name;
  size_t namespace_mark = 0;
};

// Tokenizes and checks the whole document (see svg.h). When `baking`, badge
// elements are only located (their contents do not matter, they will be
// removed); otherwise the one badge element is decoded and any second one,
// or a child element inside it, is refused.
Result<SvgScan> ScanSvg(std::string_view doc, const ImageLimits& limits, bool baking) {
  if (doc.size() > limits.max_image_bytes) {
    return InvalidArgument("SVG is " + std::to_string(doc.size()) + " bytes, over the limit of " +
                           std::to_string(limits.max_image_bytes));
  }
  Result<size_t> start = CheckPrologue(doc);
  if (!start.ok()) return start.status();

  SvgScan scan;
  Tokenizer tokenizer(doc, *start);
  Token token;
  std::vector<OpenElement> stack;
  NamespaceScope scope;
  std::vector<std::string_view> names;  // scratch for the duplicate-attribute check
  std::string value;                    // scratch for decoded attribute values
  bool seen_root = false;
  bool seen_doctype = false;
  std::optional<size_t> badge_depth;  // stack index of the badge element being read
  size_t badge_begin = 0;
  std::string_view badge_name;

  while (true) {
    BP_RETURN_IF_ERROR(tokenizer.Next(token));
    const bool in_badge = badge_depth && stack.size() > *badge_depth;
    switch (token.type) {
      case TokenType::kEnd:
        if (!seen_root) return InvalidArgument("SVG has no root element");
        if (!stack.empty()) {
          return InvalidArgument("unbalanced tags: <" + Shorten(stack.back().name) +
                                 "> is not closed at the end of the document");
        }
        return scan;

      case TokenType::kText:
        if (stack.empty() && !AllSpace(token.content)) {
          return InvalidArgument("text outside the root element" + At(token.begin));
        }
        BP_RETURN_IF_ERROR(DecodeText(token.content, token.begin, /*attribute=*/false,
                                      in_badge && !baking ? &scan.badge->body : nullptr));
        break;

      case TokenType::kCData:
        if (stack.empty()) return InvalidArgument("CDATA outside the root element" + At(token.begin));
        if (in_badge && !baking) AppendLiteral(scan.badge->body, token.content, /*attribute=*/false);
        break;

      case TokenType::kComment:
      case TokenType::kProcessingInstruction:
        break;

      case TokenType::kDoctype:
        if (seen_root || seen_doctype) return InvalidArgument("misplaced DOCTYPE" + At(token.begin));
        seen_doctype = true;
        break;

      case TokenType::kEndTag: {
        if (stack.empty()) {
          return InvalidArgument("unbalanced tags: </" + Shorten(token.name) + "> without a start tag" +
                                 At(token.begin));
        }
        if (stack.back().name != token.name) {
          return InvalidArgument("unbalanced tags: </" + Shorten(token.name) + ">" + At(token.begin) +
                                 " does not close <" + Shorten(stack.back().name) + ">");
        }
        scope.PopTo(stack.back().namespace_mark);
        stack.pop_back();
        if (badge_depth && stack.size() == *badge_depth) {
          if (baking) scan.badge_spans.emplace_back(badge_begin, token.end);
          badge_depth.reset();
        }
        break;
      }

      case TokenType::kStartTag: {
        if (seen_root && stack.empty()) {
          return InvalidArgument("more than one root element" + At(token.begin));
        }
        if (stack.size() >= limits.max_svg_depth) {
          return InvalidArgument("SVG nests deeper than " + std::to_string(limits.max_svg_depth) +
                                 " elements" + At(token.begin));
        }
        names.clear();
        for (const Attribute& attr : token.attributes) names.push_back(attr.name);
        std::sort(names.begin(), names.end());
        const auto dup = std::adjacent_find(names.begin(), names.end());
        if (dup != names.end()) {
          return InvalidArgument("duplicate attribute '" + Shorten(*dup) + "' on <" + Shorten(token.name) +
                                 ">" + At(token.begin));
        }
        const size_t mark = scope.Mark();
        std::optional<std::string> verify;
        for (const Attribute& attr : token.attributes) {
          value.clear();
          BP_RETURN_IF_ERROR(DecodeText(attr.raw_value, attr.value_offset, /*attribute=*/true, &value));
          if (attr.name == "xmlns") {
            scope.Declare("", value);
          } else if (attr.name.starts_with("xmlns:")) {
            scope.Declare(attr.name.substr(6), value);
          } else if (attr.name == "verify") {
            verify = value;
          }
        }

        if (!seen_root) {
          seen_root = true;
          if (LocalName(token.name) != "svg") {
            return InvalidArgument("root element is <" + Shorten(token.name) + ">, not svg");
          }
          scan.root_name = token.name;
          scan.root_name_end = token.name_end;
          scan.root_close_begin = token.close_begin;
          scan.root_tag_end = token.end;
          scan.root_self_closing = token.self_closing;
          for (const Attribute& attr : token.attributes) {
            if (attr.name.starts_with("xmlns:") && attr.name.substr(6) == kBakePrefix) {
              scan.root_prefix_decl = attr;
              scan.root_prefix_namespace = std::string(scope.Resolve(kBakePrefix));
            }
          }
        }

        std::optional<BadgeKind> kind = BadgeLocalName(LocalName(token.name));
        if (kind) {
          const std::string_view prefix = PrefixOf(token.name);
          const std::string_view ns = scope.Resolve(prefix);
          if (!IsBadgeNamespace(ns)) {
            // Spelled like a badge element but not in a badge namespace:
            // somebody else's element, unless it uses the prefix the baking
            // specifications prescribe.
            if (prefix != kBakePrefix) {
              kind.reset();
            } else if (!baking) {
              return InvalidArgument(
                  "<" + Shorten(token.name) + ">" + At(token.begin) +
                  (ns.empty() ? std::string(" has no xmlns:openbadges declaration")
                              : " is in namespace '" + Shorten(ns) + "', not an Open Badges namespace"));
            }
          }
        }
        if (in_badge && !baking) {
          return InvalidArgument("element <" + Shorten(token.name) + ">" + At(token.begin) + " inside <" +
                                 Shorten(badge_name) + "> (a badge element holds only text)");
        }
        if (kind && !in_badge) {
          if (!baking) {
            if (scan.badge) {
              return InvalidArgument("SVG holds more than one Open Badges element: <" + Shorten(badge_name) +
                                     "> at offset " + std::to_string(badge_begin) + " and <" +
                                     Shorten(token.name) + ">" + At(token.begin));
            }
            scan.badge = SvgBadgeElement{*kind, std::string(), verify.value_or(std::string())};
          }
          badge_name = token.name;
          badge_begin = token.begin;
          if (token.self_closing) {
            if (baking) scan.badge_spans.emplace_back(token.begin, token.end);
          } else {
            badge_depth = stack.size();
          }
        }

        if (token.self_closing) {
          scope.PopTo(mark);
        } else {
          stack.push_back(OpenElement{token.name, mark});
        }
        break;
      }
    }
    if (!baking && scan.badge && scan.badge->body.size() > limits.max_payload_bytes) {
      return InvalidArgument("badge element body is over the limit of " +
                             std::to_string(limits.max_payload_bytes) + " bytes");
    }
  }
}

// How a character must be written inside a double-quoted attribute value;
// empty when it can be written as it is. Tabs and line ends are references
// because a reader turns literal ones into spaces.
std::string_view AttributeEscape(char c) {
  switch (c) {
    case '&':
      return "&amp;";
    case '<':
      return "&lt;";
    case '>':
      return "&gt;";
    case '"':
      return "&quot;";
    case '\t':
      return "&#9;";
    case '\n':
      return "&#10;";
    case '\r':
      return "&#13;";
    default:
      return {};
  }
}

void AppendEscapedAttribute(std::string& out, std::string_view value) {
  for (char c : value) {
    const std::string_view escaped = AttributeEscape(c);
    if (escaped.empty()) {
      out.push_back(c);
    } else {
      out += escaped;
    }
  }
}

// Writes `text` as CDATA. A "]]>" inside is split across two sections, and a
// carriage return goes between sections as a character reference, since a
// reader turns a literal one into a line feed.
void AppendCData(std::string& out, std::string_view text) {
  out += "<![CDATA[";
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') {
      out += "]]>&#13;<![CDATA[";
    } else if (text[i] == '>' && i >= 2 && text[i - 1] == ']' && text[i - 2] == ']') {
      out += "]]><![CDATA[>";
    } else {
      out.push_back(text[i]);
    }
  }
  out += "]]>";
}

}  // namespace

Status CheckSvgPrologue(std::string_view bytes) {
  Result<std::string_view> root = RootElementName(bytes);
  if (!root.ok()) return root.status();
  if (LocalName(*root) != "svg") return InvalidArgument("root element is <" + Shorten(*root) + ">, not svg");
  return Status::Ok();
}

Result<SvgBadgeElement> ExtractSvgBadge(std::string_view svg, const ImageLimits& limits) {
  Result<SvgScan> scan = ScanSvg(svg, limits, /*baking=*/false);
  if (!scan.ok()) return scan.status();
  if (!scan->badge) {
    return NotFound(
        "no Open Badges data in this SVG (no openbadges:assertion or openbadges:credential "
        "element)");
  }
  return std::move(*scan->badge);
}

Result<std::string> BakeSvgBadge(std::string_view svg, const SvgBadgeElement& element,
                                 const ImageLimits& limits) {
  for (std::string_view text : {std::string_view(element.body), std::string_view(element.verify)}) {
    if (text.size() > limits.max_payload_bytes) {
      return InvalidArgument("badge text is " + std::to_string(text.size()) + " bytes, over the limit of " +
                             std::to_string(limits.max_payload_bytes));
    }
    if (text.find('\0') != std::string_view::npos) return InvalidArgument("badge text contains a NUL byte");
  }
  Result<SvgScan> scanned = ScanSvg(svg, limits, /*baking=*/true);
  if (!scanned.ok()) return scanned.status();
  const SvgScan& scan = *scanned;

  const bool credential = element.kind == BadgeKind::kCredential;
  const std::string_view ns = credential ? kSvgOb3Namespace : kSvgLegacyNamespace;
  const std::string_view local = credential ? "credential" : "assertion";
  std::string badge = "<openbadges:";
  badge += local;
  if (!element.verify.empty()) {
    badge += " verify=\"";
    AppendEscapedAttribute(badge, element.verify);
    badge += '"';
  }
  if (!element.body.empty()) {
    badge += '>';
    AppendCData(badge, element.body);
    badge += "</openbadges:" + std::string(local) + ">";
  } else if (credential) {
    badge += "></openbadges:credential>";
  } else {
    badge += "/>";
  }

  std::string out;
  out.reserve(svg.size() + badge.size() + 64);
  // The root start tag, with xmlns:openbadges bound to `ns`.
  out.append(svg.substr(0, scan.root_name_end));
  const bool keep_decl = scan.root_prefix_decl && scan.root_prefix_namespace == ns;
  if (!keep_decl) {
    out += " xmlns:openbadges=\"";
    out += ns;
    out += '"';
  }
  size_t copied = scan.root_name_end;
  if (scan.root_prefix_decl && !keep_decl) {
    out.append(svg.substr(copied, scan.root_prefix_decl->begin - copied));
    copied = scan.root_prefix_decl->end;
  }
  if (scan.root_self_closing) {
    out.append(svg.substr(copied, scan.root_close_begin - copied));
    out += '>';
    out += badge;
    out += "</" + std::string(scan.root_name) + ">";
  } else {
    out.append(svg.substr(copied, scan.root_tag_end - copied));
    out += badge;
  }
  // The rest, without the old badge elements.
  copied = scan.root_tag_end;
  for (const auto& [begin, end] : scan.badge_spans) {
    out.append(svg.substr(copied, begin - copied));
    copied = end;
  }
  out.append(svg.substr(copied));
  if (out.size() > limits.max_image_bytes) {
    return InvalidArgument("baked SVG would be " + std::to_string(out.size()) + " bytes, over the limit of " +
                           std::to_string(limits.max_image_bytes));
  }
  return out;
}

}  // namespace backpack::protocol
