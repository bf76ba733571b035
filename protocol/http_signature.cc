#include "protocol/http_signature.h"

#include <openssl/sha.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "protocol/encoding.h"

namespace backpack::protocol {
namespace {

// ---------------------------------------------------------------------------
// Faults: the name is the message prefix, the code follows from the fault.

struct FaultInfo {
  SignatureFault fault;
  std::string_view name;
  StatusCode code;
};

constexpr FaultInfo kFaults[] = {
    {SignatureFault::kMalformed, "malformed", StatusCode::kInvalidArgument},
    {SignatureFault::kWrongComponents, "wrong-components", StatusCode::kInvalidArgument},
    {SignatureFault::kDigestMismatch, "digest-mismatch", StatusCode::kInvalidArgument},
    {SignatureFault::kFuture, "future", StatusCode::kUnauthenticated},
    {SignatureFault::kStale, "stale", StatusCode::kUnauthenticated},
    {SignatureFault::kLifetime, "lifetime", StatusCode::kUnauthenticated},
    {SignatureFault::kBadSignature, "bad-signature", StatusCode::kUnauthenticated},
    {SignatureFault::kInternal, "internal", StatusCode::kInternal},
};

const FaultInfo& InfoOf(SignatureFault fault) {
  for (const FaultInfo& info : kFaults) {
    if (info.fault == fault) return info;
  }
  return kFaults[std::size(kFaults) - 1];  // kNone never makes a status
}

Status Fault(SignatureFault fault, std::string_view message) {
  const FaultInfo& info = InfoOf(fault);
  std::string text(info.name);
  text += ": ";
  text += message;
  return Status(info.code, std::move(text));
}

Status Malformed(std::string_view message) { return Fault(SignatureFault::kMalformed, message); }
Status WrongComponents(std::string_view message) { return Fault(SignatureFault::kWrongComponents, message); }

// ---------------------------------------------------------------------------
// Characters.

bool IsLcAlpha(char c) { return c >= 'a' && c <= 'z'; }
bool IsAlpha(char c) { return IsLcAlpha(c) || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsTchar(char c) {
  return IsAlpha(c) || IsDigit(c) ||
         (c != '\0' && std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos);
}
bool IsKeyChar(char c) { return IsLcAlpha(c) || IsDigit(c) || c == '_' || c == '-' || c == '.' || c == '*'; }
bool IsStringChar(char c) { return c >= 0x20 && c <= 0x7e; }  // char may be signed: 0x80.. are negative

// What an RFC 8941 string can carry: 0x20..0x7E.
bool IsSfStringSafe(std::string_view s) { return std::all_of(s.begin(), s.end(), IsStringChar); }

bool IsSfKey(std::string_view s) {
  return !s.empty() && (IsLcAlpha(s[0]) || s[0] == '*') && std::all_of(s.begin(), s.end(), IsKeyChar);
}

// A byte that may not appear in a line of the signature base: a control
// character other than HTAB, or DEL.
bool IsBaseControl(char c) {
  const auto u = static_cast<unsigned char>(c);
  return (u < 0x20 && u != '\t') || u == 0x7f;
}

bool HasBaseControl(std::string_view s) { return std::any_of(s.begin(), s.end(), IsBaseControl); }

std::string QuoteSfString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

std::string Printable(std::string_view s, size_t max = 64) {
  std::string out;
  for (char c : s.substr(0, max)) out += IsStringChar(c) ? c : '?';
  if (s.size() > max) out += "...";
  return out;
}

constexpr int64_t kMaxSfInteger = 999'999'999'999'999;  // 15 digits

// ---------------------------------------------------------------------------
// RFC 8941 structured fields, the subset the profile needs: dictionaries
// whose values are items or inner lists; integers, strings, tokens, byte
// sequences and booleans, each with parameters. Decimals are refused, and
// so are repeated keys (stricter than RFC 8941, which keeps the last).

namespace sf {

enum class Kind { kInteger, kString, kToken, kBytes, kBoolean };

std::string_view KindName(Kind kind) {
  switch (kind) {
    case Kind::kInteger:
      return "an integer";
    case Kind::kString:
      return "a string";
    case Kind::kToken:
      return "a token";
    case Kind::kBytes:
      return "a byte sequence";
    case Kind::kBoolean:
      return "a boolean";
  }
  return "an item";
}

struct BareItem {
  Kind kind = Kind::kBoolean;
  int64_t integer = 0;
  std::string text;  // a string's contents, a token, or decoded bytes
};

struct Param {
  std::string key;
  BareItem value;
};

struct Item {
  BareItem value;
  std::vector<Param> params;
};

struct Member {
  std::string key;
  bool is_inner_list = false;
  Item item;                  // when not an inner list
  std::vector<Item> list;     // when an inner list
  std::vector<Param> params;  // the inner list's
};

struct Limits {
  size_t max_members = kMaxSignatureLabels;
  size_t max_list_items = kMaxCoveredComponents;
  size_t max_params = kMaxSignatureParameters;
};

// One pass over one field value; every step consumes input or fails, so
// parsing is linear in the (capped) input.
class Parser {
 public:
  Parser(std::string_view field, std::string_view text, Limits limits) : field_(field), text_(text), limits_(limits) {}

  Result<std::vector<Member>> Dictionary() {
    std::vector<Member> members;
    SkipSp();
    if (AtEnd()) return members;
    while (true) {
      if (members.size() >= limits_.max_members) {
        return Error("more than " + std::to_string(limits_.max_members) + " members");
      }
      Member member;
      auto key = Key();
      if (!key.ok()) return key.status();
      member.key = std::move(*key);
      if (Peek() == '=') {
        ++pos_;
        if (Peek() == '(') {
          member.is_inner_list = true;
          BP_RETURN_IF_ERROR(InnerList(&member));
        } else {
          auto item = ParseItem();
          if (!item.ok()) return item.status();
          member.item = std::move(*item);
        }
      } else {
        BP_RETURN_IF_ERROR(Params(&member.item.params));  // a bare key is true
      }
      for (const Member& other : members) {
        if (other.key == member.key) return Error("the key \"" + member.key + "\" is repeated");
      }
      members.push_back(std::move(member));
      SkipOws();
      if (AtEnd()) return members;
      if (Peek() != ',') return Error("expected ',' between members");
      ++pos_;
      SkipOws();
      if (AtEnd()) return Error("a trailing ','");
    }
  }

 private:
  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return AtEnd() ? '\0' : text_[pos_]; }
  void SkipSp() {
    while (!AtEnd() && text_[pos_] == ' ') ++pos_;
  }
  void SkipOws() {
    while (!AtEnd() && (text_[pos_] == ' ' || text_[pos_] == '\t')) ++pos_;
  }

  Status Error(std::string_view what) const {
    std::string message(field_);
    message += AtEnd() ? " at the end: " : " at offset " + std::to_string(pos_) + ": ";
    message += what;
    return Malformed(message);
  }

  Result<std::string> Key() {
    if (!IsLcAlpha(Peek()) && Peek() != '*') return Error("expected a key (a-z or '*' first)");
    const size_t start = pos_;
    while (!AtEnd() && IsKeyChar(text_[pos_])) ++pos_;
    return std::string(text_.substr(start, pos_ - start));
  }

  Status InnerList(Member* member) {
    ++pos_;  // '('
    while (true) {
      SkipSp();
      if (AtEnd()) return Error("an unterminated inner list");
      if (Peek() == ')') {
        ++pos_;
        return Params(&member->params);
      }
      if (member->list.size() >= limits_.max_list_items) {
        return Error("more than " + std::to_string(limits_.max_list_items) + " items in an inner list");
      }
      auto item = ParseItem();
      if (!item.ok()) return item.status();
      member->list.push_back(std::move(*item));
      if (Peek() != ' ' && Peek() != ')') return Error("expected ' ' or ')' after an inner list item");
    }
  }

  Result<Item> ParseItem() {
    Item item;
    auto bare = Bare();
    if (!bare.ok()) return bare.status();
    item.value = std::move(*bare);
    BP_RETURN_IF_ERROR(Params(&item.params));
    return item;
  }

  Status Params(std::vector<Param>* params) {
    while (Peek() == ';') {
      ++pos_;
      SkipSp();
      Param param;
      auto key = Key();
      if (!key.ok()) return key.status();
      param.key = std::move(*key);
      if (Peek() == '=') {
        ++pos_;
        auto value = Bare();
        if (!value.ok()) return value.status();
        param.value = std::move(*value);
      }
      for (const Param& other : *params) {
        if (other.key == param.key) return Error("the parameter \"" + param.key + "\" is repeated");
      }
      if (params->size() >= limits_.max_params) {
        return Error("more than " + std::to_string(limits_.max_params) + " parameters");
      }
      params->push_back(std::move(param));
    }
    return Status::Ok();
  }

  Result<BareItem> Bare() {
    const char c = Peek();
    if (c == '-' || IsDigit(c)) return Integer();
    if (c == '"') return String();
    if (IsAlpha(c) || c == '*') return Token();
    if (c == ':') return Bytes();
    if (c == '?') return Boolean();
    return Error("expected an item");
  }

  Result<BareItem> Integer() {
    BareItem item;
    item.kind = Kind::kInteger;
    const bool negative = Peek() == '-';
    if (negative) ++pos_;
    if (!IsDigit(Peek())) return Error("expected a digit");
    int64_t value = 0;
    size_t digits = 0;
    while (IsDigit(Peek())) {
      if (++digits > 15) return Error("an integer of more than 15 digits");
      value = value * 10 + (text_[pos_] - '0');
      ++pos_;
    }
    if (Peek() == '.') return Error("a decimal, which this profile does not take");
    item.integer = negative ? -value : value;
    return item;
  }

  Result<BareItem> String() {
    BareItem item;
    item.kind = Kind::kString;
    ++pos_;  // '"'
    while (true) {
      if (AtEnd()) return Error("an unterminated string");
      const char c = text_[pos_];
      if (c == '"') {
        ++pos_;
        return item;
      }
      if (c == '\\') {
        ++pos_;
        if (AtEnd()) return Error("an unterminated string");
        const char escaped = text_[pos_];
        if (escaped != '"' && escaped != '\\') return Error("an escape other than \\\" or \\\\ in a string");
        item.text += escaped;
        ++pos_;
        continue;
      }
      if (!IsStringChar(c)) return Error("a byte outside 0x20..0x7E in a string");
      item.text += c;
      ++pos_;
    }
  }

  Result<BareItem> Token() {
    BareItem item;
    item.kind = Kind::kToken;
    const size_t start = pos_;
    ++pos_;  // ALPHA or '*', checked by Bare()
    while (!AtEnd() && (IsTchar(text_[pos_]) || text_[pos_] == ':' || text_[pos_] == '/')) ++pos_;
    item.text = std::string(text_.substr(start, pos_ - start));
    return item;
  }

  Result<BareItem> Bytes() {
    BareItem item;
    item.kind = Kind::kBytes;
    ++pos_;  // ':'
    const size_t start = pos_;
    while (!AtEnd() && text_[pos_] != ':') {
      const char c = text_[pos_];
      if (!IsAlpha(c) && !IsDigit(c) && c != '+' && c != '/' && c != '=') {
        return Error("a byte outside the base64 alphabet in a byte sequence");
      }
      ++pos_;
    }
    if (AtEnd()) return Error("an unterminated byte sequence");
    const std::string_view base64 = text_.substr(start, pos_ - start);
    // Padding is optional (RFC 8941 section 4.2.7), but when present it is
    // one or two '=' completing a 4-character group. The decoder refuses
    // '=' anywhere but at the end, a lone final character and non-zero pad
    // bits.
    const size_t padding = base64.find('=');
    if (padding != std::string_view::npos && (base64.size() % 4 != 0 || base64.size() - padding > 2)) {
      return Error("misplaced '=' padding in a byte sequence");
    }
    auto decoded = Base64Decode(base64);
    if (!decoded) return Error("a byte sequence that is not base64");
    ++pos_;  // ':'
    item.text = std::move(*decoded);
    return item;
  }

  Result<BareItem> Boolean() {
    BareItem item;
    item.kind = Kind::kBoolean;  // its value is never needed
    ++pos_;                      // '?'
    if (Peek() != '0' && Peek() != '1') return Error("a boolean other than ?0 or ?1");
    ++pos_;
    return item;
  }

  std::string_view field_;
  std::string_view text_;
  Limits limits_;
  size_t pos_ = 0;
};

Result<std::vector<Member>> ParseDictionary(std::string_view field, std::string_view text) {
  if (text.size() > kMaxSignatureFieldBytes) {
    return Malformed(std::string(field) + " is " + std::to_string(text.size()) + " bytes; at most " +
                     std::to_string(kMaxSignatureFieldBytes) + " are taken");
  }
  return Parser(field, text, Limits{}).Dictionary();
}

}  // namespace sf

// ---------------------------------------------------------------------------
// The request as the signature sees it.

Status CheckMethod(std::string_view method) {
  if (method.empty()) return Malformed("the request method is empty");
  if (method.size() > kMaxMethodBytes) {
    return Malformed("the request method is longer than " + std::to_string(kMaxMethodBytes) + " bytes");
  }
  if (!std::all_of(method.begin(), method.end(), IsTchar)) {
    return Malformed("the request method \"" + Printable(method) + "\" is not a token");
  }
  return Status::Ok();
}

// Checks an absolute http(s) URI and returns its scheme.
Result<std::string_view> CheckTargetUri(std::string_view uri) {
  if (uri.empty()) return Malformed("the target URI is empty");
  if (uri.size() > kMaxTargetUriBytes) {
    return Malformed("the target URI is longer than " + std::to_string(kMaxTargetUriBytes) + " bytes");
  }
  std::string_view scheme;
  if (uri.starts_with("https://")) {
    scheme = "https";
  } else if (uri.starts_with("http://")) {
    scheme = "http";
  } else {
    return Malformed("the target URI \"" + Printable(uri) + "\" is not an absolute http or https URI");
  }
  for (char c : uri) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      return Malformed("the target URI holds a space, a control character or a non-ASCII byte");
    }
  }
  if (uri.find('#') != std::string_view::npos) return Malformed("the target URI holds a fragment");
  const std::string_view rest = uri.substr(scheme.size() + 3);
  if (rest.empty() || rest[0] == '/' || rest[0] == '?') return Malformed("the target URI has no authority");
  return scheme;
}

bool IsRegNameChar(char c) {
  return IsLcAlpha(c) || IsDigit(c) ||
         (c != '\0' && std::string_view("-._~%!$&'()*+,;=").find(c) != std::string_view::npos);
}

bool IsIpLiteralChar(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || c == ':' || c == '.'; }

// RFC 9421 section 2.2.3: host[:port] in lower case, without the scheme's
// default port.
Result<std::string> NormalizeAuthority(std::string_view authority, std::string_view scheme) {
  if (authority.empty()) return Malformed("the request has no authority");
  if (authority.size() > kMaxAuthorityBytes) {
    return Malformed("the authority is longer than " + std::to_string(kMaxAuthorityBytes) + " bytes");
  }
  std::string lower(authority);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  const std::string_view text = lower;
  std::string_view host;
  std::string_view port;
  if (text[0] == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close < 2 ||
        !std::all_of(text.begin() + 1, text.begin() + static_cast<std::ptrdiff_t>(close), IsIpLiteralChar)) {
      return Malformed("the authority \"" + Printable(authority) + "\" has an invalid IP literal");
    }
    host = text.substr(0, close + 1);
    port = text.substr(close + 1);
  } else {
    const size_t colon = text.find(':');
    host = text.substr(0, colon);
    port = colon == std::string_view::npos ? std::string_view() : text.substr(colon);
    if (host.empty() || !std::all_of(host.begin(), host.end(), IsRegNameChar)) {
      return Malformed("the authority \"" + Printable(authority) + "\" is not host[:port]");
    }
  }
  std::string normal(host);
  if (!port.empty()) {
    const std::string_view digits = port.substr(1);
    if (port[0] != ':' || digits.size() > 5 || !std::all_of(digits.begin(), digits.end(), IsDigit)) {
      return Malformed("the authority \"" + Printable(authority) + "\" has an invalid port");
    }
    if (!digits.empty()) {
      int number = 0;
      for (char c : digits) number = number * 10 + (c - '0');
      if (number > 65535) return Malformed("the authority \"" + Printable(authority) + "\" has an invalid port");
      const int default_port = scheme == "https" ? 443 : 80;
      if (number != default_port) normal += ":" + std::to_string(number);
    }
  }
  return normal;
}

Result<std::string> ContentDigestComponent(std::string_view value) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.empty()) return Malformed("the request has no Content-Digest");
  if (value.size() > kMaxSignatureFieldBytes) {
    return Malformed("Content-Digest is longer than " + std::to_string(kMaxSignatureFieldBytes) + " bytes");
  }
  return std::string(value);
}

// The profile's four base lines, from the request.
Result<std::vector<SignatureBaseLine>> ProfileLines(const RequestComponents& request) {
  BP_RETURN_IF_ERROR(CheckMethod(request.method));
  auto scheme = CheckTargetUri(request.target_uri);
  if (!scheme.ok()) return scheme.status();
  auto authority = NormalizeAuthority(request.authority, *scheme);
  if (!authority.ok()) return authority.status();
  auto digest = ContentDigestComponent(request.content_digest);
  if (!digest.ok()) return digest.status();
  std::vector<SignatureBaseLine> lines;
  lines.push_back({std::string(kRequestSignatureComponents[0]), request.method});
  lines.push_back({std::string(kRequestSignatureComponents[1]), request.target_uri});
  lines.push_back({std::string(kRequestSignatureComponents[2]), std::move(*authority)});
  lines.push_back({std::string(kRequestSignatureComponents[3]), std::move(*digest)});
  return lines;
}

// ---------------------------------------------------------------------------
// Profile checks shared by parsing and verifying.

std::string ListOf(std::span<const std::string> components) {
  std::string out = "(";
  for (size_t i = 0; i < components.size(); ++i) {
    if (i > 0) out += ' ';
    out += '"' + Printable(components[i]) + '"';
  }
  return out + ")";
}

Status CheckProfileComponents(std::span<const std::string> components) {
  const bool same = std::equal(components.begin(), components.end(), std::begin(kRequestSignatureComponents),
                               std::end(kRequestSignatureComponents));
  if (!same) {
    return WrongComponents(
        "the covered components must be (\"@method\" \"@target-uri\" \"@authority\" \"content-digest\"), not " +
        ListOf(components));
  }
  return Status::Ok();
}

Status CheckProfileValues(std::string_view algorithm, const RequestSignatureParams& params,
                          std::string_view signature) {
  if (algorithm != kRequestSignatureAlgorithm) {
    return WrongComponents("alg is \"" + Printable(algorithm) + "\"; the profile takes only \"ed25519\"");
  }
  if (params.created < 0 || params.created > kMaxSfInteger) return Malformed("created is out of range");
  if (params.expires < 0 || params.expires > kMaxSfInteger) return Malformed("expires is out of range");
  if (params.nonce.size() < kMinSignatureNonceBytes || params.nonce.size() > kMaxSignatureNonceBytes) {
    return WrongComponents("the nonce is " + std::to_string(params.nonce.size()) + " characters; it must be " +
                           std::to_string(kMinSignatureNonceBytes) + ".." + std::to_string(kMaxSignatureNonceBytes));
  }
  if (params.key_id.empty() || params.key_id.size() > kMaxSignatureKeyIdBytes) {
    return WrongComponents("the keyid is " + std::to_string(params.key_id.size()) + " characters; it must be 1.." +
                           std::to_string(kMaxSignatureKeyIdBytes));
  }
  if (signature.size() != 64) {
    return Malformed("the signature is " + std::to_string(signature.size()) + " bytes; Ed25519 signatures are 64");
  }
  return Status::Ok();
}

struct ProfileParams {
  RequestSignatureParams params;
  std::string algorithm;
};

Result<ProfileParams> ReadProfileParams(std::span<const SignatureParameter> parameters) {
  ProfileParams out;
  bool created = false, expires = false, nonce = false, key_id = false, alg = false;
  for (const SignatureParameter& p : parameters) {
    const int64_t* integer = std::get_if<int64_t>(&p.value);
    const std::string* text = std::get_if<std::string>(&p.value);
    bool* seen = nullptr;
    if (p.name == "created" || p.name == "expires") {
      if (integer == nullptr) return Malformed("the parameter " + p.name + " must be an integer");
      seen = p.name == "created" ? &created : &expires;
      (p.name == "created" ? out.params.created : out.params.expires) = *integer;
    } else if (p.name == "nonce" || p.name == "keyid" || p.name == "alg") {
      if (text == nullptr) return Malformed("the parameter " + p.name + " must be a string");
      if (p.name == "nonce") {
        seen = &nonce;
        out.params.nonce = *text;
      } else if (p.name == "keyid") {
        seen = &key_id;
        out.params.key_id = *text;
      } else {
        seen = &alg;
        out.algorithm = *text;
      }
    } else {
      return WrongComponents("the parameter \"" + Printable(p.name) +
                             "\" is not one of the profile's (created, expires, nonce, keyid, alg)");
    }
    *seen = true;  // the parser refuses repeated names
  }
  const std::pair<bool, std::string_view> required[] = {
      {created, "created"}, {expires, "expires"}, {nonce, "nonce"}, {key_id, "keyid"}, {alg, "alg"}};
  for (const auto& [present, name] : required) {
    if (!present) return WrongComponents("the parameter " + std::string(name) + " is missing");
  }
  return out;
}

std::string Sha512(std::string_view bytes) {
  unsigned char digest[SHA512_DIGEST_LENGTH];
  SHA512(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof digest);
}

}  // namespace

// ---------------------------------------------------------------------------

std::string_view SignatureFaultName(SignatureFault fault) {
  if (fault == SignatureFault::kNone) return "";
  return InfoOf(fault).name;
}

SignatureFault SignatureFaultOf(const Status& status) {
  if (status.ok()) return SignatureFault::kNone;
  const std::string_view message = status.message();
  for (const FaultInfo& info : kFaults) {
    if (status.code() == info.code && message.size() > info.name.size() + 1 && message.starts_with(info.name) &&
        message.substr(info.name.size(), 2) == ": ") {
      return info.fault;
    }
  }
  return SignatureFault::kInternal;
}

std::string ContentDigest(std::string_view body) { return "sha-256=:" + Base64Encode(Sha256(body)) + ":"; }

Status CheckContentDigest(std::string_view header, std::string_view body) {
  auto members = sf::ParseDictionary("Content-Digest", header);
  if (!members.ok()) return members.status();
  bool checked = false;
  for (const sf::Member& member : *members) {
    const bool sha256 = member.key == "sha-256";
    if (!sha256 && member.key != "sha-512") continue;  // other algorithms are not ours to judge
    if (member.is_inner_list || member.item.value.kind != sf::Kind::kBytes) {
      return Malformed("Content-Digest: " + member.key + " is not a byte sequence");
    }
    const std::string expected = sha256 ? Sha256(body) : Sha512(body);
    if (member.item.value.text != expected) {
      return Fault(SignatureFault::kDigestMismatch, "the " + member.key +
                                                        " digest in Content-Digest does not match the " +
                                                        std::to_string(body.size()) + "-byte body");
    }
    checked = true;
  }
  if (!checked) return Malformed("Content-Digest has no sha-256 or sha-512 digest");
  return Status::Ok();
}

Result<SignatureFields> ParseSignatureFields(std::string_view signature_input, std::string_view signature,
                                             std::string_view label) {
  auto inputs = sf::ParseDictionary("Signature-Input", signature_input);
  if (!inputs.ok()) return inputs.status();
  auto signatures = sf::ParseDictionary("Signature", signature);
  if (!signatures.ok()) return signatures.status();

  auto find = [](const std::vector<sf::Member>& members, std::string_view key) -> const sf::Member* {
    for (const sf::Member& m : members) {
      if (m.key == key) return &m;
    }
    return nullptr;
  };
  for (const sf::Member& m : *inputs) {
    if (find(*signatures, m.key) == nullptr) return Malformed("Signature has no member \"" + m.key + "\"");
  }
  for (const sf::Member& m : *signatures) {
    if (find(*inputs, m.key) == nullptr) return Malformed("Signature-Input has no member \"" + m.key + "\"");
  }

  const sf::Member* input = nullptr;
  if (label.empty()) {
    if (inputs->empty()) return WrongComponents("the request carries no signature");
    if (inputs->size() > 1) {
      std::string labels;
      for (const sf::Member& m : *inputs) labels += (labels.empty() ? "" : ", ") + m.key;
      return WrongComponents("the request carries " + std::to_string(inputs->size()) + " signatures (" + labels +
                             "); exactly one is taken");
    }
    input = &inputs->front();
  } else {
    input = find(*inputs, label);
    if (input == nullptr) return WrongComponents("the request carries no signature \"" + Printable(label) + "\"");
  }
  const sf::Member* sig = find(*signatures, input->key);

  SignatureFields fields;
  fields.label = input->key;
  if (!input->is_inner_list) return Malformed("Signature-Input: " + input->key + " is not an inner list");
  for (const sf::Item& item : input->list) {
    if (item.value.kind != sf::Kind::kString) {
      return Malformed("Signature-Input: a component identifier is " + std::string(sf::KindName(item.value.kind)) +
                       ", not a string");
    }
    const std::string& name = item.value.text;
    if (name.empty()) return Malformed("Signature-Input: an empty component identifier");
    if (!item.params.empty()) {
      return WrongComponents("the component \"" + name + "\" has parameters, which are not supported");
    }
    if (std::find(fields.components.begin(), fields.components.end(), name) != fields.components.end()) {
      return Malformed("Signature-Input: the component \"" + name + "\" is listed twice");
    }
    fields.components.push_back(name);
  }
  for (const sf::Param& param : input->params) {
    SignatureParameter out;
    out.name = param.key;
    if (param.value.kind == sf::Kind::kInteger) {
      out.value = param.value.integer;
    } else if (param.value.kind == sf::Kind::kString) {
      out.value = param.value.text;
    } else {
      return Malformed("Signature-Input: the parameter " + param.key + " is " +
                       std::string(sf::KindName(param.value.kind)) + ", not an integer or a string");
    }
    fields.parameters.push_back(std::move(out));
  }

  if (sig->is_inner_list || sig->item.value.kind != sf::Kind::kBytes) {
    return Malformed("Signature: " + sig->key + " is not a byte sequence");
  }
  if (!sig->item.params.empty()) return Malformed("Signature: " + sig->key + " has parameters");
  fields.signature = sig->item.value.text;
  return fields;
}

Result<std::string> SerializeSignatureParams(std::span<const std::string> components,
                                             std::span<const SignatureParameter> parameters) {
  std::string out = "(";
  for (size_t i = 0; i < components.size(); ++i) {
    if (!IsSfStringSafe(components[i])) {
      return InvalidArgument("a component identifier holds a byte outside 0x20..0x7E");
    }
    if (i > 0) out += ' ';
    out += QuoteSfString(components[i]);
  }
  out += ')';
  for (const SignatureParameter& p : parameters) {
    if (!IsSfKey(p.name)) return InvalidArgument("\"" + Printable(p.name) + "\" is not a parameter name");
    out += ';';
    out += p.name;
    out += '=';
    if (const int64_t* integer = std::get_if<int64_t>(&p.value)) {
      if (*integer > kMaxSfInteger || *integer < -kMaxSfInteger) {
        return InvalidArgument("the parameter " + p.name + " has more than 15 digits");
      }
      out += std::to_string(*integer);
    } else {
      const std::string& text = std::get<std::string>(p.value);
      if (!IsSfStringSafe(text)) return InvalidArgument("the parameter " + p.name + " holds a byte outside 0x20..0x7E");
      out += QuoteSfString(text);
    }
  }
  return out;
}

Result<std::string> BuildSignatureBase(std::span<const SignatureBaseLine> lines, std::string_view signature_params) {
  std::string base;
  for (const SignatureBaseLine& line : lines) {
    if (!IsSfStringSafe(line.component)) {
      return InvalidArgument("a component identifier holds a byte outside 0x20..0x7E");
    }
    if (HasBaseControl(line.value)) {
      return InvalidArgument("the value of \"" + line.component + "\" holds a control character");
    }
    base += QuoteSfString(line.component);
    base += ": ";
    base += line.value;
    base += '\n';
  }
  if (HasBaseControl(signature_params)) return InvalidArgument("the signature parameters hold a control character");
  base += "\"@signature-params\": ";
  base += signature_params;
  return base;
}

Result<SignatureHeaders> SignRequest(const RequestComponents& components, const RequestSignatureParams& params,
                                     const PrivateKey& key) {
  if (key.type() != KeyType::kEd25519) {
    return InvalidArgument("request signatures need an Ed25519 key, but the key given is " +
                           std::string(KeyTypeName(key.type())));
  }
  auto lines = ProfileLines(components);
  if (!lines.ok()) return lines.status();
  if (params.expires <= params.created) return InvalidArgument("expires must be after created");
  // Signing is refused exactly where a receiver would refuse; the signature
  // length check is satisfied by a placeholder.
  BP_RETURN_IF_ERROR(CheckProfileValues(kRequestSignatureAlgorithm, params, std::string(64, '\0')));

  const std::vector<std::string> covered(std::begin(kRequestSignatureComponents),
                                         std::end(kRequestSignatureComponents));
  const std::vector<SignatureParameter> parameters = {
      {"created", params.created},
      {"expires", params.expires},
      {"nonce", params.nonce},
      {"keyid", params.key_id},
      {"alg", std::string(kRequestSignatureAlgorithm)},
  };
  auto signature_params = SerializeSignatureParams(covered, parameters);
  if (!signature_params.ok()) return signature_params.status();
  auto base = BuildSignatureBase(*lines, *signature_params);
  if (!base.ok()) return base.status();
  auto signature = SignEd25519(key, *base);
  if (!signature.ok()) return signature.status();

  const std::string label(kRequestSignatureLabel);
  SignatureHeaders headers;
  headers.signature_input = label + "=" + *signature_params;
  headers.signature = label + "=:" + Base64Encode(*signature) + ":";
  return headers;
}

Result<ParsedRequestSignature> ParseRequestSignature(std::string_view signature_input, std::string_view signature,
                                                     const RequestComponents& request) {
  auto fields = ParseSignatureFields(signature_input, signature);
  if (!fields.ok()) return fields.status();
  BP_RETURN_IF_ERROR(CheckProfileComponents(fields->components));
  auto profile = ReadProfileParams(fields->parameters);
  if (!profile.ok()) return profile.status();
  BP_RETURN_IF_ERROR(CheckProfileValues(profile->algorithm, profile->params, fields->signature));

  auto lines = ProfileLines(request);
  if (!lines.ok()) return lines.status();
  // The base carries the parameters re-serialized in the order received
  // (RFC 9421 section 3.2): the signer serialized them the same way.
  auto signature_params = SerializeSignatureParams(fields->components, fields->parameters);
  if (!signature_params.ok()) return Malformed(signature_params.status().message());
  auto base = BuildSignatureBase(*lines, *signature_params);
  if (!base.ok()) return Malformed(base.status().message());

  ParsedRequestSignature parsed;
  parsed.label = std::move(fields->label);
  parsed.components = std::move(fields->components);
  parsed.params = std::move(profile->params);
  parsed.algorithm = std::move(profile->algorithm);
  parsed.signature_base = std::move(*base);
  parsed.signature = std::move(fields->signature);
  return parsed;
}

Status VerifyRequestSignature(const ParsedRequestSignature& parsed, const PublicKey& key,
                              const RequestSignaturePolicy& policy) {
  BP_RETURN_IF_ERROR(CheckProfileComponents(parsed.components));
  BP_RETURN_IF_ERROR(CheckProfileValues(parsed.algorithm, parsed.params, parsed.signature));

  const int64_t created = parsed.params.created;  // 0..kMaxSfInteger, checked above
  const int64_t expires = parsed.params.expires;
  const uint64_t max_lifetime = static_cast<uint64_t>(std::max<int64_t>(policy.max_lifetime_seconds, 0));
  const uint64_t max_skew = static_cast<uint64_t>(std::max<int64_t>(policy.max_skew_seconds, 0));
  if (expires <= created) {
    return Fault(SignatureFault::kLifetime,
                 "expires (" + std::to_string(expires) + ") is not after created (" + std::to_string(created) + ")");
  }
  if (static_cast<uint64_t>(expires - created) > max_lifetime) {
    return Fault(SignatureFault::kLifetime, "the signature is valid for " + std::to_string(expires - created) +
                                                " s; at most " + std::to_string(max_lifetime) + " s are taken");
  }
  // Differences in uint64_t: `now` is the caller's and may be anything.
  if (created > policy.now && static_cast<uint64_t>(created) - static_cast<uint64_t>(policy.now) > max_skew) {
    return Fault(SignatureFault::kFuture, "created (" + std::to_string(created) + ") is later than now (" +
                                              std::to_string(policy.now) + ") plus " + std::to_string(max_skew) +
                                              " s of skew");
  }
  if (expires <= policy.now) {
    return Fault(SignatureFault::kStale,
                 "the signature expired at " + std::to_string(expires) + "; now is " + std::to_string(policy.now));
  }
  // VerifyEd25519 also refuses a key that is not Ed25519.
  const Status verified = VerifyEd25519(key, parsed.signature_base, parsed.signature);
  if (verified.code() == StatusCode::kInternal) return Fault(SignatureFault::kInternal, verified.message());
  if (!verified.ok()) {
    return Fault(SignatureFault::kBadSignature,
                 "no valid signature with the key for " + Printable(parsed.params.key_id) + ": " + verified.message());
  }
  return Status::Ok();
}

}  // namespace backpack::protocol
