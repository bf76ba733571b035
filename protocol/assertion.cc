#include "protocol/assertion.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <utility>

#include "protocol/email_address.h"
#include "protocol/json_depth.h"
#include "protocol/recipient.h"

namespace backpack::protocol {
namespace {

using Json = nlohmann::json;

// ---------------------------------------------------------------------------
// Text helpers

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) { return a.size() == b.size() && Lower(a) == Lower(b); }

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsAlnum(char c) { return IsDigit(c) || IsAlpha(c); }
bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool HasSpaceOrControl(std::string_view text) {
  for (unsigned char c : text) {
    if (c <= ' ' || c == 0x7f) return true;
  }
  return false;
}

// At most `max` bytes of `text`, cut on a UTF-8 character boundary.
std::string Abbreviate(std::string_view text, size_t max = 60) {
  if (text.size() <= max) return std::string(text);
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return std::string(text.substr(0, cut)) + "...";
}

// How a JSON value is named in messages: strings quoted and shortened,
// containers by kind (never dumped: they may be large).
std::string Describe(const Json& value) {
  switch (value.type()) {
    case Json::value_t::string:
      return "\"" + Abbreviate(value.get_ref<const std::string&>()) + "\"";
    case Json::value_t::object:
      return "an object";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::boolean:
      return value.get<bool>() ? "true" : "false";
    case Json::value_t::null:
      return "null";
    default:
      return "a number";
  }
}

void AppendUnique(std::vector<std::string>& list, std::string value) {
  if (std::find(list.begin(), list.end(), value) == list.end()) list.push_back(std::move(value));
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < 10; ++i) {
    if (i > 0) out += ", ";
    out += Abbreviate(names[i], 40);
  }
  if (names.size() > 10) out += ", ...";
  return out;
}

// ---------------------------------------------------------------------------
// Value formats

struct HttpUrl {
  std::string scheme;  // "http" or "https"
  std::string host;    // lower-cased
  std::string port;    // digits, empty when absent or the scheme's default
  std::string rest;    // path, query and fragment as written
};

std::optional<HttpUrl> ParseHttpUrl(std::string_view text) {
  if (text.empty() || text.size() > 4096 || HasSpaceOrControl(text)) return std::nullopt;
  const size_t colon = text.find("://");
  if (colon == std::string_view::npos) return std::nullopt;
  HttpUrl url;
  url.scheme = Lower(text.substr(0, colon));
  if (url.scheme != "http" && url.scheme != "https") return std::nullopt;
  std::string_view after = text.substr(colon + 3);
  const size_t end = after.find_first_of("/?#");
  std::string_view authority = after.substr(0, end);
  url.rest = end == std::string_view::npos ? "" : std::string(after.substr(end));
  if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;
  std::string_view host = authority;
  std::string_view port;
  if (authority.front() == '[') {  // IPv6 literal
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(0, close + 1);
    std::string_view tail = authority.substr(close + 1);
    if (!tail.empty()) {
      if (tail.front() != ':') return std::nullopt;
      port = tail.substr(1);
      if (port.empty()) return std::nullopt;
    }
  } else {
    const size_t port_colon = authority.rfind(':');
    if (port_colon != std::string_view::npos) {
      host = authority.substr(0, port_colon);
      port = authority.substr(port_colon + 1);
      if (port.empty()) return std::nullopt;
    }
    if (host.empty()) return std::nullopt;
    for (unsigned char c : host) {
      const bool ok =
          IsAlnum(static_cast<char>(c)) || c == '-' || c == '.' || c == '_' || c == '~' || c == '%' || c >= 0x80;
      if (!ok) return std::nullopt;
    }
  }
  if (port.size() > 5) return std::nullopt;
  for (char c : port) {
    if (!IsDigit(c)) return std::nullopt;
  }
  if (!port.empty() && std::stoi(std::string(port)) > 65535) return std::nullopt;
  url.host = Lower(host);
  const bool default_port = (url.scheme == "http" && port == "80") || (url.scheme == "https" && port == "443");
  if (!default_port) url.port = std::string(port);
  return url;
}

bool IsHttpUrl(std::string_view text) { return ParseHttpUrl(text).has_value(); }

// "host" or "host:port" of an HTTP(S) URL; nullopt for anything else.
std::optional<std::string> AuthorityOf(std::string_view url) {
  std::optional<HttpUrl> parsed = ParseHttpUrl(url);
  if (!parsed) return std::nullopt;
  return parsed->port.empty() ? parsed->host : parsed->host + ":" + parsed->port;
}

// OB 0.5 allows paths relative to the issuer's origin.
bool IsRootRelativePath(std::string_view text) {
  return text.size() >= 1 && text.size() <= 4096 && text[0] == '/' && !text.starts_with("//") &&
         !HasSpaceOrControl(text);
}

// The identifiers OB documents use: HTTP(S) URLs, URNs (urn:uuid:...),
// blank node ids (_:b0) and DIDs.
bool IsIri(std::string_view text) {
  if (IsHttpUrl(text)) return true;
  if (text.empty() || text.size() > 4096 || HasSpaceOrControl(text)) return false;
  if (text.starts_with("_:")) return text.size() > 2;
  for (std::string_view scheme : {"urn:", "did:"}) {
    if (text.size() > scheme.size() && EqualsIgnoreCase(text.substr(0, scheme.size()), scheme)) {
      const std::string_view rest = text.substr(scheme.size());
      const size_t colon = rest.find(':');
      return colon != std::string_view::npos && colon > 0 && colon + 1 < rest.size();
    }
  }
  return false;
}

// A base64 PNG or SVG data: URI (line breaks in the payload tolerated).
bool IsDataImageUri(std::string_view text) {
  const std::string head = Lower(text.substr(0, 32));
  size_t payload = 0;
  for (std::string_view prefix : {"data:image/png;base64,", "data:image/svg+xml;base64,"}) {
    if (head.starts_with(prefix)) payload = prefix.size();
  }
  if (payload == 0 || payload == text.size()) return false;
  for (char c : text.substr(payload)) {
    const bool ok = IsAlnum(c) || c == '+' || c == '/' || c == '=' || c == '\n' || c == '\r';
    if (!ok) return false;
  }
  return true;
}

// A mailbox with a dotted domain (issuers' and recipients' addresses).
bool IsEmailAddress(std::string_view text) {
  Result<std::string> cleaned = CleanEmail(text);
  if (!cleaned.ok() || *cleaned != text) return false;
  const std::string_view domain = text.substr(text.rfind('@') + 1);
  return domain.find('.') != std::string_view::npos;
}

bool IsLanguageTag(std::string_view text) {
  if (text.empty() || text.size() > 64) return false;
  size_t start = 0;
  bool first = true;
  while (start <= text.size()) {
    size_t end = text.find('-', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view part = text.substr(start, end - start);
    if (part.empty() || part.size() > 8) return false;
    for (char c : part) {
      if (first ? !IsAlpha(c) : !IsAlnum(c)) return false;
    }
    first = false;
    start = end + 1;
  }
  return true;
}

// E.164, optionally with ";ext=".
bool IsTelephone(std::string_view text) {
  std::string_view number = text;
  const size_t ext = text.find(";ext=");
  if (ext != std::string_view::npos) {
    const std::string_view digits = text.substr(ext + 5);
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), IsDigit)) return false;
    number = text.substr(0, ext);
  }
  if (number.starts_with('+')) number.remove_prefix(1);
  if (number.size() < 2 || number.size() > 15 || number[0] == '0') return false;
  return std::all_of(number.begin(), number.end(), IsDigit);
}

// "host" or "host:port" as OB 2.0 allowedOrigins lists them.
bool IsAuthority(std::string_view text) {
  if (text.empty() || text.find_first_of("/?#@") != std::string_view::npos) return false;
  std::optional<std::string> authority = AuthorityOf("http://" + std::string(text));
  return authority && EqualsIgnoreCase(*authority, text);
}

// OB 0.5 badge.version: "1.2.3" or "v1.2.3".
bool IsVersionString(std::string_view text) {
  if (text.starts_with('v')) text.remove_prefix(1);
  int parts = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('.', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view part = text.substr(start, end - start);
    if (part.empty() || !std::all_of(part.begin(), part.end(), IsDigit)) return false;
    ++parts;
    start = end + 1;
  }
  return parts == 3;
}

// OB 0.5 issuer.origin: scheme, host and port only.
bool IsOrigin(std::string_view text) {
  std::optional<HttpUrl> url = ParseHttpUrl(text);
  return url && (url->rest.empty() || url->rest == "/");
}

// OB 0.5 recipients are an address or "<algorithm>$<hex>".
bool IsHashedIdentityForm(std::string_view text) {
  const size_t dollar = text.find('$');
  if (dollar == std::string_view::npos) return false;
  const std::string algorithm = Lower(text.substr(0, dollar));
  if (algorithm != "md5" && algorithm != "sha1" && algorithm != "sha256" && algorithm != "sha512") return false;
  const std::string_view hex = text.substr(dollar + 1);
  return !hex.empty() && std::all_of(hex.begin(), hex.end(), [](char c) {
    return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

// ---------------------------------------------------------------------------
// Dates

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

int DaysInMonth(int year, int month) {
  static constexpr std::array<int, 12> kDays = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[static_cast<size_t>(month - 1)];
}

constexpr int64_t kMaxUnixTimestamp = 9'999'999'999;

class Cursor {
 public:
  explicit Cursor(std::string_view text) : text_(text) {}
  bool AtEnd() const { return pos_ == text_.size(); }
  char Peek() const { return AtEnd() ? '\0' : text_[pos_]; }
  bool Eat(char c) {
    if (Peek() != c) return false;
    ++pos_;
    return true;
  }
  bool DigitsAhead(size_t n) const {
    if (pos_ + n > text_.size()) return false;
    for (size_t i = 0; i < n; ++i) {
      if (!IsDigit(text_[pos_ + i])) return false;
    }
    return true;
  }
  bool Digits(size_t n, int* out) {
    if (!DigitsAhead(n)) return false;
    int value = 0;
    for (size_t i = 0; i < n; ++i) value = value * 10 + (text_[pos_ + i] - '0');
    pos_ += n;
    *out = value;
    return true;
  }
  // A decimal fraction after '.' or ',': its value in units of 1e-9.
  bool Fraction(int64_t* nanos) {
    if (!Eat('.') && !Eat(',')) return false;
    if (!DigitsAhead(1)) return false;
    int64_t value = 0;
    int64_t scale = 100'000'000;
    while (DigitsAhead(1)) {
      value += (text_[pos_] - '0') * scale;
      scale /= 10;
      ++pos_;
    }
    *nanos = value;
    return true;
  }

 private:
  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

std::optional<BadgeTime> ParseBadgeTime(std::string_view text) {
  if (text.empty() || text.size() > 64) return std::nullopt;
  BadgeTime time;
  if (std::all_of(text.begin(), text.end(), IsDigit)) {
    if (text.size() == 10) {
      time.unix_seconds = std::stoll(std::string(text));
      time.has_time = time.has_zone = time.from_unix = true;
      return time;
    }
    if (text.size() != 8 && text.size() != 6) return std::nullopt;  // YYYYMMDD, YYYYMM
  }
  Cursor in(text);
  int year = 0, month = 0, day = 1;
  if (!in.Digits(4, &year)) return std::nullopt;
  bool date_complete = true;
  if (in.Eat('-')) {
    if (!in.Digits(2, &month)) return std::nullopt;
    if (in.Eat('-')) {
      if (!in.Digits(2, &day)) return std::nullopt;
    } else {
      date_complete = false;
    }
  } else {
    if (!in.Digits(2, &month)) return std::nullopt;
    if (in.DigitsAhead(2)) {
      in.Digits(2, &day);
    } else {
      date_complete = false;
    }
  }
  if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month)) return std::nullopt;
  int64_t seconds = DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400;
  if (in.AtEnd()) {
    time.unix_seconds = seconds;
    return time;
  }
  if (!date_complete || !(in.Eat('T') || in.Eat('t'))) return std::nullopt;
  time.has_time = true;

  // hh[:mm[:ss]] or hh[mm[ss]], a fraction on the last component given.
  int hour = 0, minute = 0, second = 0;
  if (!in.Digits(2, &hour)) return std::nullopt;
  int64_t unit = 3600;
  const bool extended = in.Peek() == ':';
  if (extended ? in.Eat(':') : in.DigitsAhead(2)) {
    if (!in.Digits(2, &minute)) return std::nullopt;
    unit = 60;
    if (extended ? in.Eat(':') : in.DigitsAhead(2)) {
      if (!in.Digits(2, &second)) return std::nullopt;
      unit = 1;
    }
  }
  int64_t nanos = 0;
  const bool has_fraction = in.Peek() == '.' || in.Peek() == ',';
  if (has_fraction && !in.Fraction(&nanos)) return std::nullopt;
  if (hour > 24 || minute > 59 || second > 60) return std::nullopt;
  if (hour == 24 && (minute != 0 || second != 0 || nanos != 0)) return std::nullopt;
  seconds += hour * 3600 + minute * 60 + second;
  if (has_fraction) seconds += nanos * unit / 1'000'000'000;

  if (!in.AtEnd()) {
    if (in.Eat('Z') || in.Eat('z')) {
      time.has_zone = true;
    } else if (in.Peek() == '+' || in.Peek() == '-') {
      const int sign = in.Peek() == '-' ? -1 : 1;
      in.Eat(in.Peek());
      int offset_hours = 0, offset_minutes = 0;
      if (!in.Digits(2, &offset_hours)) return std::nullopt;
      const bool colon = in.Eat(':');
      if (colon || in.DigitsAhead(2)) {
        if (!in.Digits(2, &offset_minutes)) return std::nullopt;
      }
      if (offset_hours > 23 || offset_minutes > 59) return std::nullopt;
      seconds -= sign * (offset_hours * 3600 + offset_minutes * 60);
      time.has_zone = true;
    }
    if (!in.AtEnd()) return std::nullopt;
  }
  time.unix_seconds = seconds;
  return time;
}

namespace {

// ---------------------------------------------------------------------------
// JSON intake and verbatim spans


std::string_view WithoutBom(std::string_view bytes) {
  return bytes.starts_with("\xEF\xBB\xBF") ? bytes.substr(3) : bytes;
}

// Parses one JSON object within the limits. On failure reports why and
// returns false.
bool ReadJsonObject(std::string_view bytes, const ParseLimits& limits, VerificationReport& report, Json* out) {
  if (bytes.size() > limits.max_document_bytes) {
    report.Error(check::kDocumentLimits, "the document is " + std::to_string(bytes.size()) +
                                             " bytes, over the limit of " + std::to_string(limits.max_document_bytes));
    return false;
  }
  const std::string_view text = WithoutBom(bytes);
  if (JsonNestingDepth(text, limits.max_depth) > limits.max_depth) {
    report.Error(check::kDocumentLimits,
                 "the document nests deeper than " + std::to_string(limits.max_depth) + " levels");
    return false;
  }
  try {
    *out = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  } catch (const Json::exception&) {
    *out = Json(Json::value_t::discarded);
  }
  if (out->is_discarded()) {
    report.Error(check::kJsonParse, "the document is not valid JSON (RFC 8259, UTF-8)");
    return false;
  }
  if (!out->is_object()) {
    report.Error(check::kJsonParse, "the document is a JSON " + Describe(*out) + ", not an object");
    return false;
  }
  return true;
}

// Verbatim spans of already-validated JSON text: how an embedded document's
// exact bytes are found in its parent. Iterative, so depth costs no stack.
size_t SkipSpace(std::string_view s, size_t i) {
  while (i < s.size() && IsJsonSpace(s[i])) ++i;
  return i;
}

size_t StringEnd(std::string_view s, size_t i) {  // s[i] == '"'
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '"') {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

size_t ValueEnd(std::string_view s, size_t i) {
  if (i >= s.size()) return std::string_view::npos;
  if (s[i] == '"') return StringEnd(s, i);
  if (s[i] == '{' || s[i] == '[') {
    int depth = 0;
    while (i < s.size()) {
      const char c = s[i];
      if (c == '"') {
        i = StringEnd(s, i);
        if (i == std::string_view::npos) return i;
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') {
        if (--depth == 0) return i + 1;
      }
      ++i;
    }
    return std::string_view::npos;
  }
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && !IsJsonSpace(s[i])) ++i;
  return i;
}

// The span of member `key` of the object `object` (the last one, as the
// parser keeps the last of duplicate keys).
std::optional<std::string_view> RawMember(std::string_view object, std::string_view key) {
  size_t i = SkipSpace(object, 0);
  if (i >= object.size() || object[i] != '{') return std::nullopt;
  std::optional<std::string_view> found;
  i = SkipSpace(object, i + 1);
  if (i < object.size() && object[i] == '}') return std::nullopt;
  while (i < object.size()) {
    if (object[i] != '"') return std::nullopt;
    const size_t key_end = StringEnd(object, i);
    if (key_end == std::string_view::npos) return std::nullopt;
    const std::string_view token = object.substr(i, key_end - i);
    bool match = false;
    if (token.find('\\') == std::string_view::npos) {
      match = token.substr(1, token.size() - 2) == key;
    } else {
      const Json decoded = Json::parse(token.begin(), token.end(), nullptr, false);
      match = decoded.is_string() && decoded.get_ref<const std::string&>() == key;
    }
    i = SkipSpace(object, key_end);
    if (i >= object.size() || object[i] != ':') return std::nullopt;
    const size_t value_start = SkipSpace(object, i + 1);
    const size_t value_end = ValueEnd(object, value_start);
    if (value_end == std::string_view::npos) return std::nullopt;
    if (match) found = object.substr(value_start, value_end - value_start);
    i = SkipSpace(object, value_end);
    if (i < object.size() && object[i] == ',') {
      i = SkipSpace(object, i + 1);
      continue;
    }
    break;
  }
  return found;
}

std::vector<std::string_view> RawElements(std::string_view array) {
  std::vector<std::string_view> out;
  size_t i = SkipSpace(array, 0);
  if (i >= array.size() || array[i] != '[') return out;
  i = SkipSpace(array, i + 1);
  while (i < array.size() && array[i] != ']') {
    const size_t end = ValueEnd(array, i);
    if (end == std::string_view::npos) break;
    out.push_back(array.substr(i, end - i));
    i = SkipSpace(array, end);
    if (i < array.size() && array[i] == ',') i = SkipSpace(array, i + 1);
  }
  return out;
}

// ---------------------------------------------------------------------------
// @context and type

constexpr std::array<std::string_view, 4> kV2Contexts = {
    "https://w3id.org/openbadges/v2", "http://w3id.org/openbadges/v2", "https://openbadgespec.org/v2/context.json",
    "http://openbadgespec.org/v2/context.json"};
constexpr std::array<std::string_view, 4> kV1Contexts = {
    "https://w3id.org/openbadges/v1", "http://w3id.org/openbadges/v1", "https://openbadgespec.org/v1/context.json",
    "http://openbadgespec.org/v1/context.json"};
constexpr std::array<std::string_view, 3> kV3Contexts = {"https://www.w3.org/2018/credentials/v1",
                                                         "https://www.w3.org/ns/credentials/v2",
                                                         "https://purl.imsglobal.org/spec/ob/v3p0/context"};
constexpr std::string_view kObVocabulary = "https://w3id.org/openbadges#";

struct ContextInfo {
  bool present = false;
  bool v1 = false;
  bool v2 = false;
  bool v3 = false;
  std::vector<std::string> inline_terms;  // terms defined by inline context objects
};

void ReadContextEntry(const Json& entry, ContextInfo& info) {
  if (entry.is_string()) {
    const std::string& url = entry.get_ref<const std::string&>();
    for (std::string_view known : kV2Contexts) info.v2 = info.v2 || url == known;
    for (std::string_view known : kV1Contexts) info.v1 = info.v1 || url == known;
    for (std::string_view known : kV3Contexts) info.v3 = info.v3 || url.starts_with(known);
  } else if (entry.is_object()) {
    bool maps_vocabulary = false;
    for (auto it = entry.begin(); it != entry.end(); ++it) {
      if (info.inline_terms.size() < 256) info.inline_terms.push_back(it.key());
      maps_vocabulary =
          maps_vocabulary || (it.value().is_string() && it.value().get_ref<const std::string&>() == kObVocabulary);
    }
    if (entry.contains("HostedBadge") || entry.contains("verification")) {
      info.v2 = true;
    } else if (maps_vocabulary) {
      info.v1 = true;
    }
  }
}

ContextInfo ReadContext(const Json& doc) {
  ContextInfo info;
  auto it = doc.find("@context");
  if (it == doc.end() || it->is_null()) return info;
  info.present = true;
  if (it->is_array()) {
    for (const Json& entry : *it) ReadContextEntry(entry, info);
  } else {
    ReadContextEntry(*it, info);
  }
  return info;
}

constexpr std::array<std::string_view, 22> kTypeTerms = {"Assertion",        "BadgeClass",
                                                         "Issuer",           "Profile",
                                                         "Extension",        "AlignmentObject",
                                                         "Criteria",         "CryptographicKey",
                                                         "Endorsement",      "Evidence",
                                                         "IdentityObject",   "Image",
                                                         "HostedBadge",      "SignedBadge",
                                                         "hosted",           "signed",
                                                         "RevocationList",   "VerificationObject",
                                                         "TypeValidation",   "FrameValidation",
                                                         "EndorsementClaim", "ExpectedRecipientProfile"};
constexpr std::array<std::string_view, 7> kPrefixes = {"obi", "extensions", "schema", "sec", "cred", "dc", "xsd"};

// A type value must be a term of the OB vocabulary (or of an inline context),
// a compact IRI with a known prefix, or an absolute IRI.
bool IsKnownTypeValue(std::string_view value, const ContextInfo& context) {
  if (value.empty()) return false;
  for (std::string_view term : kTypeTerms) {
    if (value == term) return true;
  }
  for (const std::string& term : context.inline_terms) {
    if (value == term) return true;
  }
  const size_t colon = value.find(':');
  if (colon != std::string_view::npos && colon > 0) {
    const std::string_view prefix = value.substr(0, colon);
    for (std::string_view known : kPrefixes) {
      if (prefix == known) return !HasSpaceOrControl(value);
    }
    for (const std::string& term : context.inline_terms) {
      if (prefix == term) return !HasSpaceOrControl(value);
    }
  }
  return IsIri(value);
}

std::vector<std::string> TypeValues(const Json& doc) {
  std::vector<std::string> values;
  auto it = doc.find("type");
  if (it == doc.end()) return values;
  if (it->is_string()) values.push_back(it->get<std::string>());
  if (it->is_array()) {
    for (const Json& v : *it) {
      values.push_back(v.is_string() ? v.get<std::string>() : std::string());
    }
  }
  return values;
}

bool HasType(const std::vector<std::string>& types, std::initializer_list<std::string_view> wanted) {
  for (const std::string& t : types) {
    for (std::string_view w : wanted) {
      if (t == w) return true;
    }
  }
  return false;
}

// Checks `type` of an OB 2.0 (or 1.1) document: present when `required`,
// every value well-formed, one of `expected` among them.
void CheckType(const Json& doc, const ContextInfo& context, std::initializer_list<std::string_view> expected,
               bool required, VerificationReport& report, const std::string& prefix) {
  auto it = doc.find("type");
  const std::string path = prefix + "type";
  if (it == doc.end() || it->is_null()) {
    if (required) report.Error(check::kTypeProperty, "required property \"" + path + "\" is missing", path);
    return;
  }
  if (!it->is_string() && !(it->is_array() && !it->empty())) {
    report.Error(check::kTypeProperty, "\"" + path + "\" must be a string or a non-empty array of strings", path);
    return;
  }
  const std::vector<Json> values = it->is_array() ? it->get<std::vector<Json>>() : std::vector<Json>{*it};
  for (const Json& value : values) {
    if (!value.is_string() || !IsKnownTypeValue(value.get_ref<const std::string&>(), context)) {
      report.Error(check::kTypeProperty,
                   "\"" + path + "\" value " + Describe(value) + " is neither an Open Badges term nor an IRI", path);
      return;
    }
  }
  if (expected.size() > 0 && !HasType(TypeValues(doc), expected)) {
    std::string names;
    for (std::string_view e : expected) names += (names.empty() ? "" : " or ") + std::string(e);
    report.Error(check::kTypeProperty, "\"" + path + "\" does not include " + names, path);
  }
}

// ---------------------------------------------------------------------------
// Reading properties

enum class Need { kOptional, kRecommended, kRequired };

// URL forms a property may take.
enum UrlForm : unsigned {
  kHttpUrl = 1,       // absolute http(s)
  kRelativePath = 2,  // "/path", OB 0.5
  kAnyIri = 4,        // urn:, _:, did: as well
  kDataImage = 8,     // data:image/png or svg+xml, base64
};

// Reads the properties of one JSON object, reporting each problem under its
// dotted path.
class Fields {
 public:
  Fields(const Json& object, VerificationReport& report, std::string prefix)
      : object_(object), report_(report), prefix_(std::move(prefix)) {}

  const Json& object() const { return object_; }
  VerificationReport& report() const { return report_; }
  std::string Path(std::string_view key) const { return prefix_ + std::string(key); }

  // The value, or nullptr when absent or null.
  const Json* Get(std::string_view key) const {
    auto it = object_.find(std::string(key));
    return it == object_.end() || it->is_null() ? nullptr : &*it;
  }

  // Reports an absent value as the need says; true when absent.
  bool Absent(std::string_view key, Need need) const {
    if (Get(key) != nullptr) return false;
    if (need == Need::kRequired) {
      report_.Error(check::kValidateProperty, "required property \"" + Path(key) + "\" is missing", Path(key));
    } else if (need == Need::kRecommended) {
      report_.Warning(check::kValidateProperty, "recommended property \"" + Path(key) + "\" is missing", Path(key));
    }
    return true;
  }

  void Bad(std::string_view key, const Json& value, std::string_view expected) const {
    report_.Error(check::kValidateProperty,
                  "\"" + Path(key) + "\" must be " + std::string(expected) + "; found " + Describe(value), Path(key));
  }
  void Note(std::string_view key, const Json& value, std::string_view expected) const {
    report_.Warning(check::kValidateProperty,
                    "\"" + Path(key) + "\" should be " + std::string(expected) + "; found " + Describe(value),
                    Path(key));
  }

  std::optional<std::string> Text(std::string_view key, Need need) const {
    if (Absent(key, need)) return std::nullopt;
    const Json& v = *Get(key);
    if (!v.is_string()) {
      Bad(key, v, "text");
      return std::nullopt;
    }
    return v.get<std::string>();
  }

  // Text or a number (OB 2.0 `version`).
  std::optional<std::string> TextOrNumber(std::string_view key, Need need) const {
    if (Absent(key, need)) return std::nullopt;
    const Json& v = *Get(key);
    if (v.is_number()) return v.dump();
    return Text(key, need);
  }

  // One string or an array of strings.
  std::vector<std::string> TextList(std::string_view key, Need need) const {
    std::vector<std::string> out;
    if (Absent(key, need)) return out;
    const Json& v = *Get(key);
    if (v.is_string()) {
      out.push_back(v.get<std::string>());
    } else if (v.is_array() && std::all_of(v.begin(), v.end(), [](const Json& e) { return e.is_string(); })) {
      for (const Json& e : v) out.push_back(e.get<std::string>());
    } else {
      Bad(key, v, "text or an array of text");
    }
    return out;
  }

  static bool MatchesForm(std::string_view text, unsigned forms) {
    return ((forms & kHttpUrl) && IsHttpUrl(text)) || ((forms & kRelativePath) && IsRootRelativePath(text)) ||
           ((forms & kAnyIri) && IsIri(text)) || ((forms & kDataImage) && IsDataImageUri(text));
  }

  static std::string FormName(unsigned forms) {
    std::string name;
    auto add = [&name](std::string_view part) { name += (name.empty() ? "" : " or ") + std::string(part); };
    if (forms & kAnyIri) {
      add("an IRI");
    } else if (forms & kHttpUrl) {
      add("an absolute http(s) URL");
    }
    if (forms & kRelativePath) add("a path starting with '/'");
    if (forms & kDataImage) add("a base64 PNG or SVG data: URI");
    return name;
  }

  std::optional<std::string> Url(std::string_view key, Need need, unsigned forms) const {
    std::optional<std::string> text = Text(key, need);
    if (!text) return std::nullopt;
    if (!MatchesForm(*text, forms)) {
      Bad(key, *Get(key), FormName(forms));
      return std::nullopt;
    }
    return text;
  }

  // One URL/IRI or an array of them.
  std::vector<std::string> UrlList(std::string_view key, Need need, unsigned forms) const {
    std::vector<std::string> out = TextList(key, need);
    for (const std::string& url : out) {
      if (!MatchesForm(url, forms)) {
        Bad(key, Json(url), FormName(forms));
        return {};
      }
    }
    return out;
  }

  std::optional<std::string> Email(std::string_view key, Need need) const {
    std::optional<std::string> text = Text(key, need);
    if (text && !IsEmailAddress(*text)) {
      Bad(key, *Get(key), "an email address");
      return std::nullopt;
    }
    return text;
  }

  // OB 1.x also accepts the strings "true"/"false" in any case.
  std::optional<bool> Bool(std::string_view key, Need need, bool accept_strings) const {
    if (Absent(key, need)) return std::nullopt;
    const Json& v = *Get(key);
    if (v.is_boolean()) return v.get<bool>();
    if (accept_strings && v.is_string()) {
      const std::string lowered = Lower(v.get_ref<const std::string&>());
      if (lowered == "true") return true;
      if (lowered == "false") return false;
    }
    Bad(key, v, accept_strings ? "a boolean (or \"true\"/\"false\")" : "a boolean");
    return std::nullopt;
  }

  // A date. OB 2.0 wants an ISO 8601 date-time with a zone; the other forms
  // are read but warned about.
  std::optional<int64_t> Time(std::string_view key, Need need, SpecVersion version) const {
    if (Absent(key, need)) return std::nullopt;
    const Json& v = *Get(key);
    const bool strict = version == SpecVersion::kV2_0;
    if (v.is_number_integer() || v.is_number_float()) {
      const double number = v.get<double>();
      if (std::isfinite(number) && number >= 0 && number <= static_cast<double>(kMaxUnixTimestamp) &&
          std::floor(number) == number) {
        if (strict) Note(key, v, "an ISO 8601 date-time with a time zone");
        return static_cast<int64_t>(number);
      }
      Bad(key, v, "a Unix timestamp or an ISO 8601 date");
      return std::nullopt;
    }
    if (!v.is_string()) {
      Bad(key, v, "an ISO 8601 date or a Unix timestamp");
      return std::nullopt;
    }
    std::optional<BadgeTime> time = ParseBadgeTime(v.get_ref<const std::string&>());
    if (!time) {
      Bad(key, v, "an ISO 8601 date or a Unix timestamp");
      return std::nullopt;
    }
    if (strict && (!time->has_time || !time->has_zone || time->from_unix)) {
      Note(key, v, "an ISO 8601 date-time with a time zone");
    }
    return time->unix_seconds;
  }

  void Language(std::string_view key, std::string* out) const {
    std::optional<std::string> text = Text(key, Need::kOptional);
    if (!text) return;
    if (!IsLanguageTag(*text)) {
      Bad(key, *Get(key), "a BCP 47 language tag");
      return;
    }
    *out = *text;
  }

  // Lists the properties outside `vocabulary` and notes them once.
  KeptProperties Keep(std::initializer_list<std::string_view> vocabulary, std::string_view what) const {
    KeptProperties kept;
    for (auto it = object_.begin(); it != object_.end(); ++it) {
      const std::string& key = it.key();
      if (std::find(vocabulary.begin(), vocabulary.end(), key) != vocabulary.end()) continue;
      const bool extension =
          key.starts_with("extensions:") || (key.find(':') != std::string::npos && !key.starts_with("@"));
      (extension ? kept.extensions : kept.unknown).push_back(key);
    }
    if (!kept.extensions.empty()) {
      report_.Info(check::kExtensions,
                   std::string(what) + " carries extensions, kept verbatim: " + JoinNames(kept.extensions),
                   prefix_.empty() ? "" : prefix_.substr(0, prefix_.size() - 1));
    }
    if (!kept.unknown.empty()) {
      report_.Info(
          check::kUnknownProperties,
          std::string(what) + " has properties outside its vocabulary, kept verbatim: " + JoinNames(kept.unknown),
          prefix_.empty() ? "" : prefix_.substr(0, prefix_.size() - 1));
    }
    return kept;
  }

 private:
  const Json& object_;
  VerificationReport& report_;
  std::string prefix_;
};

// The verbatim span of an embedded member, or empty.
std::string RawOf(std::string_view parent, std::string_view key) {
  std::optional<std::string_view> span = RawMember(WithoutBom(parent), key);
  return span ? std::string(*span) : std::string();
}

// Checks @context for a standalone or embedded document of version `version`.
void CheckContext(const ContextInfo& context, SpecVersion version, bool standalone, VerificationReport& report,
                  const std::string& prefix) {
  const std::string path = prefix + "@context";
  if (!context.present) {
    if (standalone && (version == SpecVersion::kV1_1 || version == SpecVersion::kV2_0)) {
      report.Warning(check::kContextProperty, "the document has no @context", path);
    }
    return;
  }
  if (!context.v1 && !context.v2) {
    report.Error(check::kContextProperty, "\"" + path + "\" names no Open Badges context", path);
  }
}

// Related documents are kept by id.
void ReadRelated(const Fields& f, std::vector<std::string>* out) {
  const Json* value = f.Get("related");
  if (value == nullptr) return;
  const std::vector<Json> entries = value->is_array() ? value->get<std::vector<Json>>() : std::vector<Json>{*value};
  for (const Json& entry : entries) {
    const Json* id = &entry;
    if (entry.is_object()) {
      auto it = entry.find("id");
      id = it == entry.end() ? nullptr : &*it;
    }
    if (id == nullptr || !id->is_string() || !IsIri(id->get_ref<const std::string&>())) {
      f.Bad("related", entry, "an IRI or an object with an IRI id");
      return;
    }
    out->push_back(id->get<std::string>());
  }
}

// ---------------------------------------------------------------------------
// Issuer

// `raw` is the issuer's verbatim bytes (a document, or a span of its parent).
Issuer ReadIssuer(const Json& object, std::string raw, SpecVersion version, bool standalone, VerificationReport& report,
                  const std::string& prefix) {
  Issuer issuer;
  issuer.original = std::move(raw);
  issuer.embedded = !standalone;
  Fields f(object, report, prefix);
  const ContextInfo context = ReadContext(object);

  if (version == SpecVersion::kV0_5) {
    if (auto origin = f.Text("origin", Need::kRequired)) {
      if (IsOrigin(*origin)) {
        issuer.origin = *origin;
        issuer.url = *origin;
      } else {
        f.Bad("origin", *f.Get("origin"), "an origin (http(s)://host[:port])");
      }
    }
    issuer.name = f.Text("name", Need::kRequired).value_or("");
    issuer.org = f.Text("org", Need::kOptional).value_or("");
    issuer.email = f.Email("contact", Need::kOptional).value_or("");
    issuer.kept = f.Keep({"origin", "name", "org", "contact"}, "the issuer");
    return issuer;
  }

  if (IsLegacyVersion(version)) {  // 1.0, 1.1
    CheckContext(context, version, standalone, report, prefix);
    if (version == SpecVersion::kV1_1) {
      CheckType(object, context, {"Issuer", "Profile"}, false, report, prefix);
      issuer.id = f.Url("id", Need::kOptional, kAnyIri).value_or("");
    }
    issuer.name = f.Text("name", Need::kRequired).value_or("");
    issuer.url = f.Url("url", Need::kRequired, kHttpUrl).value_or("");
    issuer.description = f.Text("description", Need::kOptional).value_or("");
    issuer.image = f.Url("image", Need::kOptional, kHttpUrl | kDataImage).value_or("");
    issuer.email = f.Email("email", Need::kOptional).value_or("");
    issuer.revocation_list = f.Url("revocationList", Need::kOptional, kHttpUrl).value_or("");
    issuer.kept = f.Keep({"@context", "type", "id", "name", "url", "description", "image", "email", "revocationList"},
                         "the issuer");
    return issuer;
  }

  // OB 2.0 Profile.
  CheckContext(context, version, standalone, report, prefix);
  CheckType(object, context, {"Issuer", "Profile"}, true, report, prefix);
  issuer.id = f.Url("id", Need::kRequired, kAnyIri).value_or("");
  if (!issuer.id.empty() && !IsHttpUrl(issuer.id)) {
    report.Warning(check::kIssuerPropertyDependencies,
                   "the issuer's id " + Abbreviate(issuer.id) +
                       " is not an HTTP(S) URL; many platforms can only follow HTTP(S)-hosted issuers",
                   f.Path("id"));
  }
  issuer.name = f.Text("name", Need::kRequired).value_or("");
  issuer.url = f.Url("url", Need::kRecommended, kHttpUrl).value_or("");
  issuer.email = f.Email("email", Need::kRecommended).value_or("");
  if (auto telephone = f.Text("telephone", Need::kOptional)) {
    if (IsTelephone(*telephone)) {
      issuer.telephone = *telephone;
    } else {
      f.Bad("telephone", *f.Get("telephone"), "an E.164 telephone number");
    }
  }
  issuer.description = f.Text("description", Need::kOptional).value_or("");
  if (const Json* image = f.Get("image"); image && image->is_object()) {
    Fields img(*image, report, f.Path("image") + ".");
    issuer.image = img.Url("id", Need::kRequired, kHttpUrl | kDataImage).value_or("");
  } else {
    issuer.image = f.Url("image", Need::kOptional, kHttpUrl | kDataImage).value_or("");
  }
  if (const Json* keys = f.Get("publicKey")) {
    const std::vector<Json> entries = keys->is_array() ? keys->get<std::vector<Json>>() : std::vector<Json>{*keys};
    for (const Json& key : entries) {
      const Json* id = key.is_object() && key.contains("id") ? &key["id"] : &key;
      if (id->is_string() && IsIri(id->get_ref<const std::string&>())) {
        issuer.public_keys.push_back(id->get<std::string>());
      } else {
        f.Bad("publicKey", key, "a key IRI or a CryptographicKey with an id");
        break;
      }
    }
  }
  if (const Json* policy = f.Get("verification")) {
    if (policy->is_object()) {
      Fields p(*policy, report, f.Path("verification") + ".");
      VerificationPolicy rules;
      rules.starts_with = p.UrlList("startsWith", Need::kOptional, kHttpUrl);
      for (const std::string& origin : p.TextList("allowedOrigins", Need::kOptional)) {
        if (!IsAuthority(origin)) {
          p.Bad("allowedOrigins", Json(origin), "a host name, with an optional port");
          continue;
        }
        rules.allowed_origins.push_back(Lower(origin));
      }
      p.Text("verificationProperty", Need::kOptional);
      issuer.verification = std::move(rules);
    } else {
      f.Bad("verification", *policy, "a VerificationObject");
    }
  }
  issuer.revocation_list = f.Url("revocationList", Need::kOptional, kAnyIri).value_or("");
  std::vector<std::string> related;
  ReadRelated(f, &related);
  f.TextOrNumber("version", Need::kOptional);
  std::string language;
  f.Language("@language", &language);
  issuer.kept =
      f.Keep({"@context", "type", "id", "name", "url", "email", "telephone", "description", "image", "publicKey",
              "verification", "revocationList", "endorsement", "related", "@language", "version"},
             "the issuer");
  return issuer;
}

// ---------------------------------------------------------------------------
// BadgeClass

void ReadAlignments(const Fields& f, SpecVersion version, std::vector<Alignment>* out) {
  const Json* value = f.Get("alignment");
  if (value == nullptr) return;
  const bool legacy = IsLegacyVersion(version);
  if (legacy && !value->is_array()) {
    f.Bad("alignment", *value, "an array of alignment objects");
    return;
  }
  const std::vector<Json> entries = value->is_array() ? value->get<std::vector<Json>>() : std::vector<Json>{*value};
  for (size_t i = 0; i < entries.size(); ++i) {
    const Json& entry = entries[i];
    const std::string path = f.Path("alignment") + "[" + std::to_string(i) + "].";
    if (!entry.is_object()) {
      f.Bad("alignment", entry, "alignment objects");
      return;
    }
    Fields a(entry, f.report(), path);
    Alignment alignment;
    if (legacy) {
      alignment.target_name = a.Text("name", Need::kRequired).value_or("");
      alignment.target_url = a.Url("url", Need::kRequired, kHttpUrl).value_or("");
      alignment.target_description = a.Text("description", Need::kOptional).value_or("");
    } else {
      alignment.target_name = a.Text("targetName", Need::kRequired).value_or("");
      alignment.target_url = a.Url("targetUrl", Need::kRequired, kHttpUrl).value_or("");
      alignment.target_description = a.Text("targetDescription", Need::kOptional).value_or("");
      alignment.target_framework = a.Text("targetFramework", Need::kOptional).value_or("");
      alignment.target_code = a.Text("targetCode", Need::kOptional).value_or("");
    }
    out->push_back(std::move(alignment));
  }
}

// Resolves an OB 0.5 path against the issuer's origin.
std::string Resolve05(const std::string& url, const std::string& origin) {
  if (!IsRootRelativePath(url) || origin.empty()) return url;
  std::string base = origin;
  if (base.ends_with('/')) base.pop_back();
  return base + url;
}

ParsedBadgeClass ReadBadgeClass(const Json& object, std::string raw, SpecVersion version, bool standalone,
                                VerificationReport& report, const std::string& prefix) {
  ParsedBadgeClass parsed;
  BadgeClass& badge = parsed.badge_class;
  badge.embedded = !standalone;
  Fields f(object, report, prefix);
  const ContextInfo context = ReadContext(object);

  if (version == SpecVersion::kV0_5) {
    if (auto v = f.Text("version", Need::kOptional)) {
      if (IsVersionString(*v)) {
        badge.version = *v;
      } else {
        f.Bad("version", *f.Get("version"), "a version such as \"0.5.0\"");
      }
    }
    badge.name = f.Text("name", Need::kRequired).value_or("");
    badge.description = f.Text("description", Need::kRequired).value_or("");
    badge.image = f.Url("image", Need::kRequired, kHttpUrl | kRelativePath).value_or("");
    badge.criteria.url = f.Url("criteria", Need::kRequired, kHttpUrl | kRelativePath).value_or("");
    if (!f.Absent("issuer", Need::kRequired)) {
      const Json& issuer = *f.Get("issuer");
      if (issuer.is_object()) {
        parsed.issuer = ReadIssuer(issuer, RawOf(raw, "issuer"), version, false, report, f.Path("issuer") + ".");
        badge.image = Resolve05(badge.image, parsed.issuer->origin);
        badge.criteria.url = Resolve05(badge.criteria.url, parsed.issuer->origin);
      } else {
        f.Bad("issuer", issuer, "an issuer object");
      }
    }
    badge.kept = f.Keep({"version", "name", "description", "image", "criteria", "issuer"}, "the badge");
    badge.original = std::move(raw);
    return parsed;
  }

  if (IsLegacyVersion(version)) {  // 1.0, 1.1
    CheckContext(context, version, standalone, report, prefix);
    if (version == SpecVersion::kV1_1) {
      CheckType(object, context, {"BadgeClass"}, false, report, prefix);
      badge.id = f.Url("id", Need::kOptional, kAnyIri).value_or("");
    }
    badge.name = f.Text("name", Need::kRequired).value_or("");
    badge.description = f.Text("description", Need::kRequired).value_or("");
    badge.image = f.Url("image", Need::kRequired, kHttpUrl | kDataImage).value_or("");
    badge.criteria.url = f.Url("criteria", Need::kRequired, kHttpUrl).value_or("");
    badge.issuer_id = f.Url("issuer", Need::kRequired, kHttpUrl).value_or("");
    ReadAlignments(f, version, &badge.alignment);
    if (const Json* tags = f.Get("tags")) {
      if (tags->is_array() && std::all_of(tags->begin(), tags->end(), [](const Json& t) { return t.is_string(); })) {
        badge.tags = tags->get<std::vector<std::string>>();
      } else {
        f.Bad("tags", *tags, "an array of text");
      }
    }
    badge.kept =
        f.Keep({"@context", "type", "id", "name", "description", "image", "criteria", "issuer", "alignment", "tags"},
               "the BadgeClass");
    badge.original = std::move(raw);
    return parsed;
  }

  // OB 2.0 BadgeClass.
  CheckContext(context, version, standalone, report, prefix);
  CheckType(object, context, {"BadgeClass"}, true, report, prefix);
  badge.id = f.Url("id", Need::kRequired, kAnyIri).value_or("");
  badge.name = f.Text("name", Need::kRequired).value_or("");
  badge.description = f.Text("description", Need::kRequired).value_or("");
  if (const Json* image = f.Get("image"); image && image->is_object()) {
    Fields img(*image, report, f.Path("image") + ".");
    badge.image = img.Url("id", Need::kRequired, kHttpUrl | kDataImage).value_or("");
  } else {
    badge.image = f.Url("image", Need::kRecommended, kHttpUrl | kDataImage).value_or("");
  }
  if (!f.Absent("criteria", Need::kRequired)) {
    const Json& criteria = *f.Get("criteria");
    if (criteria.is_string()) {
      badge.criteria.url = f.Url("criteria", Need::kRequired, kAnyIri).value_or("");
    } else if (criteria.is_object()) {
      Fields c(criteria, report, f.Path("criteria") + ".");
      const std::string id = c.Url("id", Need::kOptional, kAnyIri).value_or("");
      badge.criteria.narrative = c.Text("narrative", Need::kOptional).value_or("");
      if (!id.starts_with("_:")) badge.criteria.url = id;
      if (badge.criteria.url.empty() && badge.criteria.narrative.empty()) {
        report.Error(check::kValidateProperty, "\"" + f.Path("criteria") + "\" needs a URL (id) or a narrative",
                     f.Path("criteria"));
      }
    } else {
      f.Bad("criteria", criteria, "a URL or a Criteria object");
    }
  }
  if (!f.Absent("issuer", Need::kRequired)) {
    const Json& issuer = *f.Get("issuer");
    if (issuer.is_string()) {
      badge.issuer_id = f.Url("issuer", Need::kRequired, kAnyIri).value_or("");
    } else if (issuer.is_object()) {
      parsed.issuer = ReadIssuer(issuer, RawOf(raw, "issuer"), version, false, report, f.Path("issuer") + ".");
      badge.issuer_id = parsed.issuer->id;
    } else {
      f.Bad("issuer", issuer, "an issuer IRI or Profile");
    }
  }
  ReadAlignments(f, version, &badge.alignment);
  badge.tags = f.TextList("tags", Need::kOptional);
  badge.version = f.TextOrNumber("version", Need::kOptional).value_or("");
  f.Language("@language", &badge.language);
  badge.kept = f.Keep({"@context", "type", "id", "name", "description", "image", "criteria", "issuer", "alignment",
                       "tags", "endorsement", "related", "@language", "version"},
                      "the BadgeClass");
  badge.original = std::move(raw);
  return parsed;
}

// ---------------------------------------------------------------------------
// Assertion

IdentityType IdentityTypeFrom(std::string_view text) {
  if (text == "email") return IdentityType::kEmail;
  if (text == "url") return IdentityType::kUrl;
  if (text == "telephone") return IdentityType::kTelephone;
  if (text == "id") return IdentityType::kId;
  return IdentityType::kUnknown;
}

SpecVersion DetectVersion(const Json& doc, const ContextInfo& context, VerificationReport& report) {
  if (context.v3 || HasType(TypeValues(doc), {"VerifiableCredential", "OpenBadgeCredential"})) {
    return SpecVersion::kV3_0;
  }
  if (context.v2) return SpecVersion::kV2_0;
  if (context.v1) return SpecVersion::kV1_1;
  const Json* verification = nullptr;
  for (const char* key : {"verification", "verify"}) {
    auto it = doc.find(key);
    if (it != doc.end() && !it->is_null()) verification = &*it;
  }
  const bool v2_verification = verification && verification->is_object() && verification->contains("type") &&
                               ((*verification)["type"] == "HostedBadge" || (*verification)["type"] == "SignedBadge");
  if (context.present) {
    // An unknown context: read the document as the version its shape says.
    return v2_verification || HasType(TypeValues(doc), {"Assertion"}) ? SpecVersion::kV2_0 : SpecVersion::kV1_1;
  }
  if (verification) {
    if (v2_verification) {
      report.Error(check::kContextProperty, "an OB 2.0 assertion needs the OB 2.0 @context", "@context");
      return SpecVersion::kV2_0;
    }
    return SpecVersion::kV1_0;
  }
  auto badge = doc.find("badge");
  if (badge != doc.end() && badge->is_object()) return SpecVersion::kV0_5;
  return SpecVersion::kUnknown;
}

void ReadRecipientObject(const Fields& f, SpecVersion version, Badge& badge) {
  if (f.Absent("recipient", Need::kRequired)) return;
  const Json& value = *f.Get("recipient");
  if (!value.is_object()) {
    f.Bad("recipient", value, "an identity object");
    return;
  }
  Fields r(value, f.report(), f.Path("recipient") + ".");
  RecipientIdentity& recipient = badge.recipient;
  const bool legacy = IsLegacyVersion(version);
  if (auto type = r.Text("type", Need::kRequired)) {
    recipient.type = IdentityTypeFrom(legacy ? Lower(*type) : *type);
    const bool allowed = legacy ? recipient.type == IdentityType::kEmail : recipient.type != IdentityType::kUnknown;
    if (!allowed) r.Bad("type", *r.Get("type"), legacy ? "\"email\"" : "one of email, url, telephone, id");
  }
  recipient.identity = r.Text("identity", Need::kRequired).value_or("");
  recipient.hashed = r.Bool("hashed", Need::kRequired, legacy).value_or(false);
  if (auto salt = r.Text("salt", Need::kOptional)) recipient.salt = *salt;
}

void ReadVerification(const Fields& f, SpecVersion version, Badge& badge) {
  const char* key = "verification";
  if (f.Get("verification") == nullptr && f.Get("verify") != nullptr) key = "verify";
  const bool legacy = IsLegacyVersion(version);
  if ((legacy && std::string_view(key) == "verification") || (!legacy && std::string_view(key) == "verify")) {
    f.report().Info(check::kVerificationObject,
                    std::string("\"") + key + "\" read as an alias of \"" + (legacy ? "verify" : "verification") + "\"",
                    f.Path(key));
  }
  if (f.Absent(key, Need::kRequired)) return;
  const Json& value = *f.Get(key);
  if (!value.is_object()) {
    f.Bad(key, value, "a verification object");
    return;
  }
  Fields v(value, f.report(), f.Path(key) + ".");
  AssertionVerification& verification = badge.verification;
  if (auto type = v.Text("type", Need::kRequired)) {
    const std::string lowered = Lower(*type);
    if (legacy ? lowered == "hosted" : (*type == "HostedBadge" || *type == "hosted")) {
      verification.type = VerificationType::kHosted;
    } else if (legacy ? lowered == "signed" : (*type == "SignedBadge" || *type == "signed")) {
      verification.type = VerificationType::kSigned;
    } else {
      v.Bad("type", *v.Get("type"), legacy ? "\"hosted\" or \"signed\"" : "HostedBadge or SignedBadge");
    }
  }
  if (legacy) {
    // 1.0 always names a URL; 1.1 may leave it to the assertion's id.
    const Need need = version == SpecVersion::kV1_1 && !badge.id.empty() ? Need::kOptional : Need::kRequired;
    const std::string url = v.Url("url", need, kHttpUrl).value_or("");
    if (verification.type == VerificationType::kSigned) {
      verification.creator = url;
    } else {
      verification.url = url.empty() ? badge.id : url;
    }
    return;
  }
  verification.creator = v.Url("creator", Need::kOptional, kAnyIri).value_or("");
  if (verification.type == VerificationType::kHosted) {
    verification.url = badge.id;
    if (!badge.id.empty() && !IsHttpUrl(badge.id)) {
      f.report().Error(check::kVerificationObject,
                       "a HostedBadge's id must be the HTTP(S) URL it is hosted at; found " + Describe(Json(badge.id)),
                       f.Path("id"));
    }
  }
}

void ReadEvidence(const Fields& f, SpecVersion version, Badge& badge) {
  const Json* value = f.Get("evidence");
  if (value == nullptr) return;
  if (version != SpecVersion::kV2_0) {
    const unsigned forms = version == SpecVersion::kV0_5 ? (kHttpUrl | kRelativePath) : kHttpUrl;
    if (auto url = f.Url("evidence", Need::kOptional, forms)) badge.evidence.push_back({*url, "", "", ""});
    return;
  }
  const std::vector<Json> entries = value->is_array() ? value->get<std::vector<Json>>() : std::vector<Json>{*value};
  for (const Json& entry : entries) {
    if (entry.is_string() && IsIri(entry.get_ref<const std::string&>())) {
      badge.evidence.push_back({entry.get<std::string>(), "", "", ""});
    } else if (entry.is_object()) {
      Fields e(entry, f.report(), f.Path("evidence") + ".");
      Evidence evidence;
      evidence.id = e.Url("id", Need::kOptional, kAnyIri).value_or("");
      evidence.narrative = e.Text("narrative", Need::kOptional).value_or("");
      evidence.name = e.Text("name", Need::kOptional).value_or("");
      evidence.description = e.Text("description", Need::kOptional).value_or("");
      e.Text("genre", Need::kOptional);
      e.Text("audience", Need::kOptional);
      badge.evidence.push_back(std::move(evidence));
    } else {
      f.Bad("evidence", entry, "a URL or an Evidence object");
      return;
    }
  }
}

// Endorsements and related assertions are kept as written.
void ReadEndorsements(const Fields& f, std::string_view raw, std::vector<std::string>* out) {
  const Json* value = f.Get("endorsement");
  if (value == nullptr) return;
  const std::vector<Json> entries = value->is_array() ? value->get<std::vector<Json>>() : std::vector<Json>{*value};
  for (const Json& entry : entries) {
    const bool ok = (entry.is_string() && IsIri(entry.get_ref<const std::string&>())) || entry.is_object();
    if (!ok) {
      f.Bad("endorsement", entry, "an endorsement IRI or object");
      return;
    }
  }
  std::optional<std::string_view> span = RawMember(WithoutBom(raw), "endorsement");
  if (!span) return;
  if (value->is_array()) {
    for (std::string_view element : RawElements(*span)) out->emplace_back(element);
  } else {
    out->emplace_back(*span);
  }
}

void ReadAssertion05(const Fields& f, Badge& badge) {
  if (auto recipient = f.Text("recipient", Need::kRequired)) {
    badge.recipient.type = IdentityType::kEmail;
    if (IsHashedIdentityForm(*recipient)) {
      badge.recipient.hashed = true;
      badge.recipient.identity = *recipient;
    } else if (IsEmailAddress(*recipient)) {
      badge.recipient.identity = *recipient;
    } else {
      f.Bad("recipient", *f.Get("recipient"), "an email address or \"<algorithm>$<hex digest>\"");
    }
  }
  if (auto salt = f.Text("salt", Need::kOptional)) badge.recipient.salt = *salt;
  badge.expires = f.Time("expires", Need::kOptional, SpecVersion::kV0_5);
  badge.issued_on = f.Time("issued_on", Need::kOptional, SpecVersion::kV0_5);
  ReadEvidence(f, SpecVersion::kV0_5, badge);
  badge.verification.type = VerificationType::kHosted;  // 0.5 assertions live at the issuer's origin
  if (!f.Absent("badge", Need::kRequired)) {
    const Json& value = *f.Get("badge");
    if (value.is_object()) {
      ParsedBadgeClass parsed =
          ReadBadgeClass(value, RawOf(badge.original, "badge"), SpecVersion::kV0_5, false, f.report(), "badge.");
      badge.badge_class = std::move(parsed.badge_class);
      if (parsed.issuer) {
        badge.issuer = std::move(*parsed.issuer);
        for (Evidence& e : badge.evidence) e.id = Resolve05(e.id, badge.issuer.origin);
      }
    } else {
      f.Bad("badge", value, "a badge object");
    }
  }
  badge.kept = f.Keep({"recipient", "salt", "evidence", "expires", "issued_on", "badge"}, "the assertion");
}

void ReadAssertion1x(const Fields& f, const ContextInfo& context, SpecVersion version, Badge& badge) {
  if (version == SpecVersion::kV1_1) {
    CheckType(f.object(), context, {"Assertion"}, false, f.report(), "");
    badge.id = f.Url("id", Need::kOptional, kAnyIri).value_or("");
  }
  badge.uid = f.Text("uid", version == SpecVersion::kV1_0 ? Need::kRequired : Need::kOptional).value_or("");
  ReadRecipientObject(f, version, badge);
  badge.badge_class.id = f.Url("badge", Need::kRequired, kHttpUrl).value_or("");
  ReadVerification(f, version, badge);
  badge.issued_on = f.Time("issuedOn", Need::kRequired, version);
  badge.expires = f.Time("expires", Need::kOptional, version);
  ReadEvidence(f, version, badge);
  badge.image = f.Url("image", Need::kOptional, kHttpUrl | kDataImage).value_or("");
  badge.kept = f.Keep({"@context", "type", "id", "uid", "recipient", "badge", "verify", "verification", "issuedOn",
                       "expires", "evidence", "image"},
                      "the assertion");
}

void ReadAssertion20(const Fields& f, const ContextInfo& context, Badge& badge) {
  const SpecVersion version = SpecVersion::kV2_0;
  CheckType(f.object(), context, {"Assertion"}, true, f.report(), "");
  badge.id = f.Url("id", Need::kRequired, kAnyIri).value_or("");
  badge.uid = f.Text("uid", Need::kOptional).value_or("");
  ReadRecipientObject(f, version, badge);
  if (!f.Absent("badge", Need::kRequired)) {
    const Json& value = *f.Get("badge");
    if (value.is_string()) {
      badge.badge_class.id = f.Url("badge", Need::kRequired, kAnyIri).value_or("");
    } else if (value.is_object()) {
      ParsedBadgeClass parsed =
          ReadBadgeClass(value, RawOf(badge.original, "badge"), version, false, f.report(), "badge.");
      badge.badge_class = std::move(parsed.badge_class);
      if (parsed.issuer) badge.issuer = std::move(*parsed.issuer);
    } else {
      f.Bad("badge", value, "a BadgeClass IRI or object");
    }
  }
  ReadVerification(f, version, badge);
  badge.issued_on = f.Time("issuedOn", Need::kRequired, version);
  badge.expires = f.Time("expires", Need::kOptional, version);
  if (const Json* image = f.Get("image"); image && image->is_object()) {
    Fields img(*image, f.report(), "image.");
    badge.image = img.Url("id", Need::kRequired, kHttpUrl).value_or("");
  } else {
    badge.image = f.Url("image", Need::kOptional, kHttpUrl).value_or("");
  }
  ReadEvidence(f, version, badge);
  badge.narrative = f.Text("narrative", Need::kOptional).value_or("");
  badge.revoked = f.Bool("revoked", Need::kOptional, false).value_or(false);
  badge.revocation_reason = f.Text("revocationReason", Need::kOptional).value_or("");
  ReadEndorsements(f, badge.original, &badge.endorsements);
  ReadRelated(f, &badge.related);
  f.TextOrNumber("version", Need::kOptional);
  f.Language("@language", &badge.language);
  badge.kept = f.Keep(
      {"@context", "type", "id", "uid", "recipient", "badge", "verification", "verify", "issuedOn", "expires", "image",
       "evidence", "narrative", "revoked", "revocationReason", "endorsement", "related", "@language", "version"},
      "the assertion");
}

// Version of a standalone BadgeClass or Profile: its own @context wins.
SpecVersion StandaloneVersion(const Json& doc, SpecVersion hint) {
  const ContextInfo context = ReadContext(doc);
  if (context.v2) return SpecVersion::kV2_0;
  if (context.v1) return hint == SpecVersion::kV1_0 ? SpecVersion::kV1_0 : SpecVersion::kV1_1;
  if (hint == SpecVersion::kUnknown || hint == SpecVersion::kV3_0) return SpecVersion::kV2_0;
  return hint;
}

}  // namespace

// ---------------------------------------------------------------------------
// Parsing entry points

std::string_view SpecVersionName(SpecVersion version) {
  switch (version) {
    case SpecVersion::kV0_5:
      return "0.5";
    case SpecVersion::kV1_0:
      return "1.0";
    case SpecVersion::kV1_1:
      return "1.1";
    case SpecVersion::kV2_0:
      return "2.0";
    case SpecVersion::kV3_0:
      return "3.0";
    case SpecVersion::kUnknown:
      break;
  }
  return "unknown";
}

std::string_view IdentityTypeName(IdentityType type) {
  switch (type) {
    case IdentityType::kEmail:
      return "email";
    case IdentityType::kUrl:
      return "url";
    case IdentityType::kTelephone:
      return "telephone";
    case IdentityType::kId:
      return "id";
    case IdentityType::kUnknown:
      break;
  }
  return "unknown";
}

ParsedAssertion ParseAssertion(std::string_view json, const ParseLimits& limits) {
  ParsedAssertion parsed{Badge{}, VerificationReport(limits.max_messages)};
  Badge& badge = parsed.badge;
  VerificationReport& report = parsed.report;
  badge.original = std::string(json);
  Json doc;
  if (!ReadJsonObject(json, limits, report, &doc)) return parsed;

  const ContextInfo context = ReadContext(doc);
  badge.spec_version = DetectVersion(doc, context, report);
  switch (badge.spec_version) {
    case SpecVersion::kUnknown:
      report.Error(check::kDetectVersion,
                   "not an Open Badges assertion: no @context, no verify/verification and no embedded badge");
      return parsed;
    case SpecVersion::kV3_0:
      report.Error(check::kDetectVersion, "an Open Badges 3.0 credential; only OB 0.5-2.0 assertions are read");
      return parsed;
    default:
      report.Info(check::kDetectVersion,
                  "read as an Open Badges " + std::string(SpecVersionName(badge.spec_version)) + " assertion");
  }
  Fields fields(doc, report, "");
  if (badge.spec_version == SpecVersion::kV0_5) {
    ReadAssertion05(fields, badge);
    return parsed;
  }
  CheckContext(context, badge.spec_version, true, report, "");
  if (badge.spec_version == SpecVersion::kV2_0) {
    ReadAssertion20(fields, context, badge);
  } else {
    ReadAssertion1x(fields, context, badge.spec_version, badge);
  }
  return parsed;
}

ParsedBadgeClass ParseBadgeClass(std::string_view json, SpecVersion version, const ParseLimits& limits) {
  VerificationReport report(limits.max_messages);
  Json doc;
  if (!ReadJsonObject(json, limits, report, &doc)) {
    ParsedBadgeClass failed;
    failed.report = std::move(report);
    failed.badge_class.original = std::string(json);
    return failed;
  }
  ParsedBadgeClass parsed = ReadBadgeClass(doc, std::string(json), StandaloneVersion(doc, version), true, report, "");
  parsed.report = std::move(report);
  return parsed;
}

ParsedIssuer ParseIssuer(std::string_view json, SpecVersion version, const ParseLimits& limits) {
  ParsedIssuer parsed{Issuer{}, VerificationReport(limits.max_messages)};
  Json doc;
  if (!ReadJsonObject(json, limits, parsed.report, &doc)) {
    parsed.issuer.original = std::string(json);
    return parsed;
  }
  parsed.issuer = ReadIssuer(doc, std::string(json), StandaloneVersion(doc, version), true, parsed.report, "");
  return parsed;
}

namespace {

// ---------------------------------------------------------------------------
// Revocation lists and keys

struct RevocationEntry {
  std::string id;
  std::string uid;
  std::string reason;
};

// OB 2.0 RevocationList ({revokedAssertions: [id | {id|uid, revocationReason}]})
// or OB 1.0 ({"<uid>": "<reason>", ...}). nullopt (with errors) when malformed.
std::optional<std::vector<RevocationEntry>> ReadRevocationList(const Json& doc, VerificationReport& report) {
  std::vector<RevocationEntry> entries;
  const ContextInfo context = ReadContext(doc);
  auto revoked = doc.find("revokedAssertions");
  if (revoked == doc.end()) {
    if (context.present || doc.contains("type")) {
      report.Error(check::kRevocationList, "the revocation list has no revokedAssertions", "revokedAssertions");
      return std::nullopt;
    }
    for (auto it = doc.begin(); it != doc.end(); ++it) {  // OB 1.0: uid -> reason
      if (!it.value().is_string()) {
        report.Error(check::kRevocationList, "an OB 1.0 revocation list maps uids to reasons (text)", it.key());
        return std::nullopt;
      }
      entries.push_back({"", it.key(), it.value().get<std::string>()});
    }
    return entries;
  }
  CheckType(doc, context, {"RevocationList"}, false, report, "");
  const std::vector<Json> list = revoked->is_array() ? revoked->get<std::vector<Json>>() : std::vector<Json>{*revoked};
  for (const Json& entry : list) {
    RevocationEntry out;
    if (entry.is_string() && IsIri(entry.get_ref<const std::string&>())) {
      out.id = entry.get<std::string>();
    } else if (entry.is_object()) {
      Fields e(entry, report, "revokedAssertions.");
      out.id = entry.contains("id") ? e.Url("id", Need::kRequired, kAnyIri).value_or("") : "";
      out.uid = entry.contains("id") ? "" : e.Text("uid", Need::kRequired).value_or("");
      out.reason = e.Text("revocationReason", Need::kOptional).value_or("");
      if (out.id.empty() && out.uid.empty()) return std::nullopt;
    } else {
      report.Error(check::kRevocationList,
                   "a revokedAssertions entry must be an IRI or an object; found " + Describe(entry),
                   "revokedAssertions");
      return std::nullopt;
    }
    entries.push_back(std::move(out));
  }
  return entries;
}

bool LooksLikePem(std::string_view text) {
  const size_t begin = text.find("-----BEGIN ");
  return begin != std::string_view::npos && text.find("PUBLIC KEY-----", begin) != std::string_view::npos &&
         text.find("-----END ", begin) != std::string_view::npos;
}

void ValidateKeyDocument(const Json& doc, VerificationReport& report) {
  const ContextInfo context = ReadContext(doc);
  CheckType(doc, context, {"CryptographicKey"}, false, report, "");
  Fields f(doc, report, "");
  f.Url("id", Need::kOptional, kAnyIri);
  f.Url("owner", Need::kRequired, kAnyIri);
  if (auto pem = f.Text("publicKeyPem", Need::kRequired); pem && !LooksLikePem(*pem)) {
    f.Bad("publicKeyPem", *f.Get("publicKeyPem"), "a PEM public key");
  }
}

void ValidateEndorsement(const Json& doc, VerificationReport& report) {
  const ContextInfo context = ReadContext(doc);
  CheckContext(context, SpecVersion::kV2_0, true, report, "");
  CheckType(doc, context, {"Endorsement"}, true, report, "");
  Fields f(doc, report, "");
  f.Url("id", Need::kRequired, kAnyIri);
  if (!f.Absent("claim", Need::kRequired)) {
    const Json& claim = *f.Get("claim");
    if (claim.is_object()) {
      Fields c(claim, report, "claim.");
      c.Url("id", Need::kRequired, kAnyIri);
      c.Text("endorsementComment", Need::kOptional);
    } else {
      f.Bad("claim", claim, "an object");
    }
  }
  f.Time("issuedOn", Need::kRequired, SpecVersion::kV2_0);
  if (const Json* issuer = f.Get("issuer"); issuer && issuer->is_object()) {
    ReadIssuer(*issuer, "", SpecVersion::kV2_0, false, report, "issuer.");
  } else {
    f.Url("issuer", Need::kRequired, kAnyIri);
  }
  if (const Json* verification = f.Get("verification"); verification && !verification->is_object()) {
    f.Bad("verification", *verification, "a verification object");
  }
}

}  // namespace

DocumentValidation ValidateDocument(std::string_view json, SpecVersion version, const ParseLimits& limits) {
  DocumentValidation result{DocumentClass::kUnknown, VerificationReport(limits.max_messages)};
  VerificationReport& report = result.report;
  Json doc;
  if (!ReadJsonObject(json, limits, report, &doc)) return result;
  const std::vector<std::string> types = TypeValues(doc);
  // OB 0.5 and 1.0 assertions carry no type.
  if (HasType(types, {"Assertion"}) || (!doc.contains("type") && doc.contains("recipient"))) {
    result.document_class = DocumentClass::kAssertion;
    result.report = ParseAssertion(json, limits).report;
    return result;
  }
  if (HasType(types, {"BadgeClass"})) {
    result.document_class = DocumentClass::kBadgeClass;
    result.report = ParseBadgeClass(json, version, limits).report;
    return result;
  }
  if (HasType(types, {"Issuer", "Profile"})) {
    result.document_class = DocumentClass::kIssuer;
    result.report = ParseIssuer(json, version, limits).report;
    return result;
  }
  const ContextInfo context = ReadContext(doc);
  CheckType(doc, context, {}, true, report, "");
  if (types.empty()) return result;
  Fields f(doc, report, "");
  if (HasType(types, {"RevocationList"})) {
    result.document_class = DocumentClass::kRevocationList;
    ReadRevocationList(doc, report);
  } else if (HasType(types, {"CryptographicKey"})) {
    result.document_class = DocumentClass::kCryptographicKey;
    ValidateKeyDocument(doc, report);
  } else if (HasType(types, {"Endorsement"})) {
    result.document_class = DocumentClass::kEndorsement;
    ValidateEndorsement(doc, report);
  } else if (HasType(types, {"AlignmentObject"})) {
    result.document_class = DocumentClass::kAlignmentObject;
    f.Text("targetName", Need::kRequired);
    f.Url("targetUrl", Need::kRequired, kHttpUrl);
    f.Text("targetDescription", Need::kOptional);
    f.Text("targetFramework", Need::kOptional);
    f.Text("targetCode", Need::kOptional);
  } else if (HasType(types, {"Criteria"})) {
    result.document_class = DocumentClass::kCriteria;
    f.Url("id", Need::kOptional, kAnyIri);
    f.Text("narrative", Need::kOptional);
  } else {
    result.document_class = DocumentClass::kOther;
    if (report.valid()) report.Info(check::kTypeProperty, "a class outside the Open Badges vocabulary", "type");
  }
  return result;
}

namespace {

// ---------------------------------------------------------------------------
// Checking

// Hosts an issuer's hosted assertions may live on: its verification policy's
// allowedOrigins, else the host of its HTTP id, else of the URL its Profile
// was fetched from, else of its url (1.0) or origin (0.5).
std::vector<std::string> AllowedOrigins(const Issuer& issuer) {
  if (issuer.verification && !issuer.verification->allowed_origins.empty()) {
    return issuer.verification->allowed_origins;
  }
  for (const std::string* candidate : {&issuer.id, &issuer.source_url, &issuer.url, &issuer.origin}) {
    if (std::optional<std::string> authority = AuthorityOf(*candidate)) return {*authority};
  }
  return {};
}

// Everything the check learns from the fetched documents.
struct Resolution {
  Badge badge;
  VerificationReport report;
  std::vector<std::string> missing;
  bool badge_class_known = false;
  bool issuer_known = false;
  std::vector<SigningKey> keys;
};

class Resolver {
 public:
  Resolver(const ParsedAssertion& parsed, const FetchedDocuments& fetched, const CheckOptions& options)
      : parsed_(parsed), fetched_(fetched), options_(options) {
    r_.badge = parsed.badge;
    r_.report = parsed.report;
  }

  Resolution Run() {
    const Badge& badge = parsed_.badge;
    if (!IsCheckable(badge.spec_version)) return std::move(r_);
    if (badge.revoked) ReportRevoked("the assertion says it is revoked", badge.revocation_reason);
    ResolveBadgeClass();
    if (r_.badge_class_known) ResolveIssuer();
    ResolveHostedCopy();
    if (r_.issuer_known) {
      ResolveRevocationList();
      if (badge.verification.type == VerificationType::kSigned) ResolveKeys();
    }
    return std::move(r_);
  }

  static bool IsCheckable(SpecVersion version) {
    return version != SpecVersion::kUnknown && version != SpecVersion::kV3_0;
  }

 private:
  // The fetched document for `url`, or nullptr. An absent URL is recorded as
  // missing; a failed fetch is reported.
  const FetchedDocument* Lookup(const std::string& url, std::string_view what) {
    auto it = fetched_.find(url);
    if (it == fetched_.end()) {
      if (r_.missing.size() < kMaxLinkedDocuments) AppendUnique(r_.missing, url);
      return nullptr;
    }
    if (it->second.status < 200 || it->second.status > 299) {
      r_.report.Error(check::kFetchDocument,
                      std::string(what) + " at " + Abbreviate(url) +
                          (it->second.status == 0 ? " could not be fetched"
                                                  : " answered HTTP " + std::to_string(it->second.status)));
      return nullptr;
    }
    return &it->second;
  }

  // A fetched document should say it is the document it was fetched as.
  void CheckId(const std::string& id, const std::string& url, const FetchedDocument& doc, std::string_view what) {
    if (id.empty() || id == url || (!doc.final_url.empty() && id == doc.final_url)) return;
    r_.report.Warning(check::kDocumentIdMismatch,
                      std::string(what) + " fetched from " + Abbreviate(url) + " gives its id as " + Abbreviate(id));
  }

  void ResolveBadgeClass() {
    const Badge& badge = parsed_.badge;
    if (badge.badge_class.embedded) {
      r_.badge_class_known = true;
      return;
    }
    const std::string& url = badge.badge_class.id;
    if (url.empty()) return;
    const FetchedDocument* doc = Lookup(url, "the BadgeClass");
    if (doc == nullptr) return;
    ParsedBadgeClass parsed = ParseBadgeClass(doc->body, badge.spec_version, options_.limits);
    r_.report.Merge(parsed.report, "badge.");
    if (parsed.report.HasError(check::kJsonParse) || parsed.report.HasError(check::kDocumentLimits)) return;
    CheckId(parsed.badge_class.id, url, *doc, "the BadgeClass");
    if (parsed.badge_class.id.empty()) parsed.badge_class.id = url;
    parsed.badge_class.source_url = url;
    r_.badge.badge_class = std::move(parsed.badge_class);
    if (parsed.issuer) r_.badge.issuer = std::move(*parsed.issuer);
    r_.badge_class_known = true;
  }

  void ResolveIssuer() {
    Issuer& issuer = r_.badge.issuer;
    const bool signed_badge = parsed_.badge.verification.type == VerificationType::kSigned;
    if (issuer.embedded) {
      // A signature is only as good as the key list of the issuer's own
      // Profile, so a signed badge's embedded issuer is fetched from its id.
      if (!signed_badge || !IsHttpUrl(issuer.id)) {
        r_.issuer_known = true;
        return;
      }
      FetchIssuer(issuer.id);
      return;
    }
    const std::string url = r_.badge.badge_class.issuer_id;
    if (url.empty()) return;
    FetchIssuer(url);
  }

  void FetchIssuer(const std::string& url) {
    const FetchedDocument* doc = Lookup(url, "the issuer Profile");
    if (doc == nullptr) return;
    ParsedIssuer parsed = ParseIssuer(doc->body, parsed_.badge.spec_version, options_.limits);
    r_.report.Merge(parsed.report, "badge.issuer.");
    if (parsed.report.HasError(check::kJsonParse) || parsed.report.HasError(check::kDocumentLimits)) return;
    CheckId(parsed.issuer.id, url, *doc, "the issuer Profile");
    parsed.issuer.source_url = url;
    r_.badge.issuer = std::move(parsed.issuer);
    r_.issuer_known = true;
  }

  void ResolveHostedCopy() {
    const Badge& badge = parsed_.badge;
    if (badge.verification.type != VerificationType::kHosted) return;
    const std::string& url = badge.verification.url;
    if (url.empty() || url == options_.source_url) return;
    auto it = fetched_.find(url);
    if (it != fetched_.end() && it->second.status == 410) {
      ReportRevoked("the hosted assertion at " + Abbreviate(url) + " is gone (HTTP 410)", "");
      return;
    }
    const FetchedDocument* doc = Lookup(url, "the hosted assertion");
    if (doc == nullptr) return;
    // A revoked assertion may be answered by a bare {"revoked": true, ...}.
    VerificationReport ignored(options_.limits.max_messages);
    Json json;
    const auto says_revoked = [](const Json& j) {
      const auto it = j.find("revoked");
      return it != j.end() && it->is_boolean() && it->get<bool>();
    };
    if (ReadJsonObject(doc->body, options_.limits, ignored, &json) && says_revoked(json)) {
      const auto reason = json.find("revocationReason");
      ReportRevoked("the hosted assertion at " + Abbreviate(url) + " says it is revoked",
                    reason != json.end() && reason->is_string() ? reason->get<std::string>() : "");
      return;
    }
    ParsedAssertion hosted = ParseAssertion(doc->body, options_.limits);
    if (!hosted.report.valid()) {
      r_.report.Error(check::kHostedAssertion, "the document at " + Abbreviate(url) + " is not a valid assertion");
      return;
    }
    const Badge& h = hosted.badge;
    const bool same = h.recipient.identity == badge.recipient.identity && h.recipient.salt == badge.recipient.salt &&
                      h.recipient.hashed == badge.recipient.hashed && h.badge_class.id == badge.badge_class.id &&
                      h.id == badge.id && h.uid == badge.uid;
    if (!same) {
      r_.report.Error(check::kHostedAssertion,
                      "the assertion hosted at " + Abbreviate(url) + " differs from the one presented");
    }
  }

  void ResolveRevocationList() {
    const std::string& url = r_.badge.issuer.revocation_list;
    if (url.empty()) return;
    const FetchedDocument* doc = Lookup(url, "the revocation list");
    if (doc == nullptr) return;
    VerificationReport list_report(options_.limits.max_messages);
    Json json;
    std::optional<std::vector<RevocationEntry>> entries;
    if (ReadJsonObject(doc->body, options_.limits, list_report, &json)) {
      entries = ReadRevocationList(json, list_report);
    }
    if (!entries) {
      r_.report.Merge(list_report, "badge.issuer.revocationList.");
      r_.report.Error(check::kRevocationList, "the issuer's revocation list at " + Abbreviate(url) + " cannot be read");
      return;
    }
    const Badge& badge = parsed_.badge;
    for (const RevocationEntry& entry : *entries) {
      const bool by_id = !entry.id.empty() && entry.id == badge.id;
      const bool by_uid = !entry.uid.empty() && entry.uid == badge.uid;
      if (by_id || by_uid) {
        ReportRevoked(std::string("the issuer's revocation list lists this assertion by ") + (by_id ? "id" : "uid"),
                      entry.reason);
        return;
      }
    }
  }

  void ResolveKeys() {
    const Badge& badge = parsed_.badge;
    const Issuer& issuer = r_.badge.issuer;
    std::vector<std::string> urls;
    if (!badge.verification.creator.empty()) {
      urls.push_back(badge.verification.creator);
    } else {
      for (size_t i = 0; i < issuer.public_keys.size() && i < kMaxPublicKeys; ++i) {
        urls.push_back(issuer.public_keys[i]);
      }
    }
    if (urls.empty()) {
      r_.report.Error(check::kSigningKey, "the signed assertion names no key and its issuer declares none");
      return;
    }
    for (const std::string& url : urls) {
      const FetchedDocument* doc = Lookup(url, "the signing key");
      if (doc == nullptr) continue;
      if (IsLegacyVersion(badge.spec_version)) {
        AcceptLegacyKey(url, *doc);
      } else {
        AcceptKey(url, *doc);
      }
    }
  }

  // OB 1.x: verify.url serves the PEM itself, from the issuer's origin.
  void AcceptLegacyKey(const std::string& url, const FetchedDocument& doc) {
    if (!LooksLikePem(doc.body)) {
      r_.report.Error(check::kSigningKey, "the key at " + Abbreviate(url) + " is not a PEM public key");
      return;
    }
    const std::vector<std::string> allowed = AllowedOrigins(r_.badge.issuer);
    const std::optional<std::string> authority = AuthorityOf(url);
    if (!allowed.empty() && (!authority || std::find(allowed.begin(), allowed.end(), *authority) == allowed.end())) {
      r_.report.Error(check::kSigningKey, "the key at " + Abbreviate(url) + " is not on the issuer's origin");
      return;
    }
    r_.keys.push_back({url, r_.badge.issuer.id, doc.body});
  }

  // OB 2.0: a CryptographicKey owned by the issuer, and declared by it.
  void AcceptKey(const std::string& url, const FetchedDocument& doc) {
    VerificationReport key_report(options_.limits.max_messages);
    Json json;
    if (ReadJsonObject(doc.body, options_.limits, key_report, &json)) ValidateKeyDocument(json, key_report);
    if (!key_report.valid()) {
      r_.report.Merge(key_report, "verification.creator.");
      r_.report.Error(check::kSigningKey, "the key at " + Abbreviate(url) + " is not a usable CryptographicKey");
      return;
    }
    const Issuer& issuer = r_.badge.issuer;
    const std::string owner = json["owner"].get<std::string>();
    if (owner != issuer.id && owner != issuer.source_url) {
      r_.report.Error(check::kSigningKey, "the key at " + Abbreviate(url) + " belongs to " + Abbreviate(owner) +
                                              ", not to the issuer " + Abbreviate(issuer.id));
      return;
    }
    if (!issuer.public_keys.empty() &&
        std::find(issuer.public_keys.begin(), issuer.public_keys.end(), url) == issuer.public_keys.end()) {
      r_.report.Error(check::kSigningKey,
                      "the issuer does not list the key at " + Abbreviate(url) + " among its public keys");
      return;
    }
    if (json.contains("id") && json["id"].is_string()) CheckId(json["id"].get<std::string>(), url, doc, "the key");
    r_.keys.push_back({url, owner, json["publicKeyPem"].get<std::string>()});
  }

  void ReportRevoked(const std::string& why, const std::string& reason) {
    r_.badge.revoked = true;
    if (!reason.empty()) r_.badge.revocation_reason = reason;
    r_.report.Error(check::kRevoked, why + (reason.empty() ? "" : ": " + Abbreviate(reason, 200)));
  }

  const ParsedAssertion& parsed_;
  const FetchedDocuments& fetched_;
  const CheckOptions& options_;
  Resolution r_;
};

void CheckDates(const Badge& badge, const CheckOptions& options, VerificationReport& report) {
  const char* issued_on = badge.spec_version == SpecVersion::kV0_5 ? "issued_on" : "issuedOn";
  if (badge.issued_on && *badge.issued_on > options.now + options.clock_skew_seconds) {
    report.Error(check::kIssuedOnInFuture, "the assertion is issued in the future", issued_on);
  }
  if (badge.expires) {
    if (badge.issued_on && *badge.expires < *badge.issued_on) {
      report.Error(check::kExpiresBeforeIssued, "the assertion expires before it was issued", "expires");
    }
    if (*badge.expires <= options.now) report.Error(check::kExpired, "the assertion has expired", "expires");
  }
}

void CheckOrigin(const Badge& badge, bool issuer_known, const CheckOptions& options, VerificationReport& report) {
  if (badge.verification.type != VerificationType::kHosted) return;
  const std::string& url = badge.verification.url.empty() ? options.source_url : badge.verification.url;
  if (url.empty()) {
    report.Warning(check::kIssuerOrigin, "where the assertion is hosted is unknown, so its origin is not checked");
    return;
  }
  if (!issuer_known) return;  // already a FETCH_DOCUMENT error
  const std::optional<std::string> authority = AuthorityOf(url);
  if (!authority) {
    report.Error(check::kIssuerOrigin, "the hosted assertion's URL " + Abbreviate(url) + " is not HTTP(S)");
    return;
  }
  const Issuer& issuer = badge.issuer;
  if (issuer.verification && !issuer.verification->starts_with.empty()) {
    const std::vector<std::string>& prefixes = issuer.verification->starts_with;
    if (std::none_of(prefixes.begin(), prefixes.end(), [&url](const std::string& p) { return url.starts_with(p); })) {
      report.Error(check::kIssuerOrigin, "the hosted assertion's URL " + Abbreviate(url) +
                                             " starts with none of the issuer's verification.startsWith");
      return;
    }
  }
  const std::vector<std::string> allowed = AllowedOrigins(issuer);
  if (allowed.empty()) {
    report.Warning(check::kIssuerOrigin, "the issuer has no HTTP(S) host to hold its hosted assertions to");
    return;
  }
  if (std::find(allowed.begin(), allowed.end(), *authority) == allowed.end()) {
    report.Error(check::kIssuerOrigin,
                 "the assertion is hosted on " + *authority + ", outside the issuer's " + JoinNames(allowed));
  }
}

void CheckRecipient(const Badge& badge, const CheckOptions& options, CheckResult& result) {
  if (badge.recipient.identity.empty()) return;  // the parse has reported it
  const Status form = ValidateRecipientIdentity(badge.recipient, badge.spec_version);
  if (!form.ok()) {
    result.report.Error(check::kValidateRecipient, form.message(), "recipient");
    return;
  }
  if (badge.spec_version == SpecVersion::kV0_5 && badge.recipient.salt && !badge.recipient.hashed) {
    result.report.Error(check::kValidateRecipient, "a salted OB 0.5 recipient must be a hash", "recipient");
    return;
  }
  if (!options.check_recipient) return;
  Result<std::string> match = MatchRecipient(badge.recipient, options.verified_emails, badge.spec_version);
  if (!match.ok()) {
    result.report.Error(check::kValidateRecipient, match.status().message(), "recipient");
    return;
  }
  result.matched_email = *match;
  result.report.Info(check::kValidateRecipient, "awarded to the verified address " + Abbreviate(*match), "recipient");
}

void CheckSignature(const Badge& badge, const CheckOptions& options, CheckResult& result) {
  if (badge.verification.type != VerificationType::kSigned) return;
  if (result.signing_keys.empty()) return;  // already reported
  std::string verified_with;
  std::string refusals;
  if (options.signature_check) {
    for (const SigningKey& key : result.signing_keys) {
      const Status checked = options.signature_check(key);
      if (checked.ok()) {
        verified_with = key.url;
        break;
      }
      refusals += (refusals.empty() ? "" : "; ") + Abbreviate(key.url) + ": " + checked.message();
    }
  } else if (!options.signature_key_url.empty() &&
             std::any_of(result.signing_keys.begin(), result.signing_keys.end(),
                         [&options](const SigningKey& key) { return key.url == options.signature_key_url; })) {
    verified_with = options.signature_key_url;
  }
  if (!verified_with.empty()) {
    result.report.Info(check::kVerifySignature, "signature verified with " + Abbreviate(verified_with));
  } else if (!refusals.empty()) {
    result.report.Error(check::kVerifySignature, "the signature does not verify with the issuer's key (" + refusals + ")");
  } else {
    result.report.Error(check::kVerifySignature, "the signature has not been verified with an issuer key");
  }
}

}  // namespace

std::vector<std::string> DocumentsToFetch(const ParsedAssertion& parsed, const FetchedDocuments& fetched,
                                          const CheckOptions& options) {
  return Resolver(parsed, fetched, options).Run().missing;
}

CheckResult CheckAssertion(const ParsedAssertion& parsed, const FetchedDocuments& fetched,
                           const CheckOptions& options) {
  Resolution resolution = Resolver(parsed, fetched, options).Run();
  CheckResult result{std::move(resolution.badge), std::move(resolution.report), std::move(resolution.missing),
                     std::move(resolution.keys), ""};
  if (!Resolver::IsCheckable(parsed.badge.spec_version) || result.report.HasError(check::kJsonParse) ||
      result.report.HasError(check::kDocumentLimits)) {
    return result;
  }
  for (const std::string& url : result.missing_documents) {
    result.report.Error(check::kFetchDocument, "needed document " + Abbreviate(url) + " was not fetched");
  }
  CheckDates(result.badge, options, result.report);
  CheckOrigin(result.badge, resolution.issuer_known, options, result.report);
  CheckRecipient(result.badge, options, result);
  CheckSignature(result.badge, options, result);
  return result;
}

std::string VerificationReport::ToJson() const {
  Json messages = Json::array();
  for (const ReportMessage& m : messages_) {
    Json message = {{"name", m.name},
                    {"result", m.result},
                    {"messageLevel", std::string(MessageLevelName(m.level))},
                    {"message", m.message}};
    if (!m.property.empty()) message["property"] = m.property;
    messages.push_back(std::move(message));
  }
  const Json report = {{"valid", valid()},
                       {"errorCount", error_count_},
                       {"warningCount", warning_count_},
                       {"messages", std::move(messages)}};
  return report.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::optional<std::string_view> RawJsonMember(std::string_view object_json, std::string_view key) {
  return RawMember(WithoutBom(object_json), key);
}

}  // namespace backpack::protocol
