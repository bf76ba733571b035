#include "protocol/did.h"

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>

#include "protocol/encoding.h"

namespace backpack::protocol {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kBase58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
constexpr std::string_view kEd25519Codec = "\xed\x01";  // multicodec ed25519-pub, varint

std::string Quote(std::string_view text, size_t max = 80) {
  std::string out = "\"";
  for (char c : text.substr(0, max)) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  if (text.size() > max) out += "...";
  return out + "\"";
}

bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlnum(char c) { return IsLower(c) || IsDigit(c) || (c >= 'A' && c <= 'Z'); }
bool IsHexDigit(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

int HexValue(char c) {
  if (IsDigit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

// Multicodec names for the key codecs people are likely to send, so a
// refusal can say what it saw.
std::string CodecName(std::string_view bytes) {
  struct Codec {
    std::string_view prefix;
    std::string_view name;
  };
  static constexpr std::array<Codec, 6> kCodecs = {{{"\xe7\x01", "secp256k1-pub"},
                                                    {"\xec\x01", "x25519-pub"},
                                                    {"\x80\x24", "p256-pub"},
                                                    {"\x81\x24", "p384-pub"},
                                                    {"\x85\x24", "rsa-pub"},
                                                    {"\xeb\x01", "bls12_381-g2-pub"}}};
  for (const Codec& codec : kCodecs) {
    if (bytes.starts_with(codec.prefix)) return std::string(codec.name);
  }
  return "an unknown codec";
}

const Json* Member(const Json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

const std::string* StringMember(const Json& object, const char* key) {
  const Json* value = Member(object, key);
  return value != nullptr && value->is_string() ? &value->get_ref<const std::string&>() : nullptr;
}

// A method id as written, made absolute against the document it is in.
std::string AbsoluteId(std::string_view id, std::string_view controller_id) {
  if (id.starts_with("#")) return std::string(controller_id) + std::string(id);
  return std::string(id);
}

ResolvedKey MakeKey(std::string id, std::string controller, std::string type, PublicKey key) {
  return ResolvedKey{std::move(id), std::move(controller), std::move(type), std::move(key)};
}

Status CheckDocumentId(const Json& document, std::string_view controller_id) {
  if (!document.is_object()) return InvalidArgument("the controller document is not a JSON object");
  const std::string* id = StringMember(document, "id");
  if (id == nullptr) return InvalidArgument("the controller document has no id");
  if (*id != controller_id) {
    return InvalidArgument("the controller document's id " + Quote(*id) + " is not " + Quote(controller_id));
  }
  return Status::Ok();
}

}  // namespace

std::string Base58BtcEncode(std::string_view bytes) {
  size_t zeros = 0;
  while (zeros < bytes.size() && bytes[zeros] == '\0') ++zeros;
  // log(256) / log(58) < 1.37: enough digits for the rest.
  std::vector<unsigned char> digits((bytes.size() - zeros) * 137 / 100 + 1, 0);
  size_t used = 0;
  for (size_t i = zeros; i < bytes.size(); ++i) {
    unsigned carry = static_cast<unsigned char>(bytes[i]);
    size_t j = 0;
    for (; j < used || carry != 0; ++j) {
      carry += 256u * digits[j];
      digits[j] = static_cast<unsigned char>(carry % 58);
      carry /= 58;
    }
    used = j;
  }
  std::string out(zeros, '1');
  for (size_t j = used; j > 0; --j) out += kBase58Alphabet[digits[j - 1]];
  return out;
}

std::optional<std::string> Base58BtcDecode(std::string_view text) {
  if (text.size() > kMaxBase58Chars) return std::nullopt;
  size_t zeros = 0;
  while (zeros < text.size() && text[zeros] == '1') ++zeros;
  // log(58) / log(256) < 0.733.
  std::vector<unsigned char> bytes((text.size() - zeros) * 733 / 1000 + 1, 0);
  size_t used = 0;
  for (size_t i = zeros; i < text.size(); ++i) {
    const size_t digit = kBase58Alphabet.find(text[i]);
    if (digit == std::string_view::npos) return std::nullopt;
    unsigned carry = static_cast<unsigned>(digit);
    size_t j = 0;
    for (; j < used || carry != 0; ++j) {
      carry += 58u * bytes[j];
      bytes[j] = static_cast<unsigned char>(carry & 0xff);
      carry >>= 8;
    }
    used = j;
  }
  std::string out(zeros, '\0');
  for (size_t j = used; j > 0; --j) out += static_cast<char>(bytes[j - 1]);
  return out;
}

Result<PublicKey> PublicKeyFromMultikey(std::string_view multibase) {
  if (multibase.empty() || multibase[0] != 'z') {
    return InvalidArgument("a Multikey value must be multibase base58btc (start with 'z'), got " + Quote(multibase));
  }
  std::optional<std::string> bytes = Base58BtcDecode(multibase.substr(1));
  if (!bytes) return InvalidArgument("Multikey value " + Quote(multibase) + " is not base58btc");
  if (!bytes->starts_with(kEd25519Codec)) {
    return InvalidArgument("Multikey value " + Quote(multibase) + " holds a " + CodecName(*bytes) +
                           " key; only Ed25519 (ed25519-pub) is accepted");
  }
  return PublicKey::FromEd25519Raw(std::string_view(*bytes).substr(kEd25519Codec.size()));
}

Result<std::string> Ed25519RawKey(const PublicKey& key) {
  if (key.type() != KeyType::kEd25519) {
    return InvalidArgument("a " + std::string(KeyTypeName(key.type())) + " key is not an Ed25519 key");
  }
  const Json jwk = Json::parse(key.ToJwk(), nullptr, false);
  const std::string* x = StringMember(jwk, "x");
  std::optional<std::string> raw = x != nullptr ? Base64UrlDecode(*x) : std::nullopt;
  if (!raw || raw->size() != 32) return Internal("the Ed25519 key's JWK has no 32-byte x");
  return *raw;
}

Result<std::string> Ed25519Multikey(const PublicKey& key) {
  Result<std::string> raw = Ed25519RawKey(key);
  if (!raw.ok()) return raw.status();
  return "z" + Base58BtcEncode(std::string(kEd25519Codec) + *raw);
}

Result<DidUrl> ParseDidUrl(std::string_view text) {
  if (text.size() > kMaxDidChars) return InvalidArgument("the DID is longer than " + std::to_string(kMaxDidChars));
  if (!text.starts_with("did:")) return InvalidArgument(Quote(text) + " is not a DID (no \"did:\" prefix)");
  DidUrl out;
  size_t i = 4;
  const size_t method_start = i;
  while (i < text.size() && (IsLower(text[i]) || IsDigit(text[i]))) ++i;
  if (i == method_start || i >= text.size() || text[i] != ':') {
    return InvalidArgument(Quote(text) + " has no valid DID method name (lowercase letters and digits)");
  }
  out.method = std::string(text.substr(method_start, i - method_start));
  const size_t id_start = ++i;
  while (i < text.size() && text[i] != '/' && text[i] != '?' && text[i] != '#') {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size() || !IsHexDigit(text[i + 1]) || !IsHexDigit(text[i + 2])) {
        return InvalidArgument(Quote(text) + " has a malformed percent escape");
      }
      i += 3;
      continue;
    }
    if (!IsAlnum(c) && c != '.' && c != '-' && c != '_' && c != ':') {
      return InvalidArgument(Quote(text) + " has a character not allowed in a DID");
    }
    ++i;
  }
  out.id = std::string(text.substr(id_start, i - id_start));
  if (out.id.empty() || out.id.back() == ':') {
    return InvalidArgument(Quote(text) + " has an empty method-specific id");
  }
  out.did = std::string(text.substr(0, i));
  std::string_view rest = text.substr(i);
  const size_t hash = rest.find('#');
  if (hash != std::string_view::npos) {
    out.fragment = std::string(rest.substr(hash + 1));
    rest = rest.substr(0, hash);
  }
  const size_t question = rest.find('?');
  if (question != std::string_view::npos) {
    out.query = std::string(rest.substr(question + 1));
    rest = rest.substr(0, question);
  }
  out.path = std::string(rest);
  for (char c : out.fragment) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '#') {
      return InvalidArgument(Quote(text) + " has a malformed fragment");
    }
  }
  return out;
}

Result<std::string> DidWebDocumentUrl(std::string_view did) {
  Result<DidUrl> parsed = ParseDidUrl(did);
  if (!parsed.ok()) return parsed.status();
  if (parsed->method != "web") return InvalidArgument(Quote(did) + " is not a did:web identifier");
  if (!parsed->path.empty() || !parsed->query.empty()) {
    return InvalidArgument("did:web identifier " + Quote(did) + " has a path or query");
  }
  std::vector<std::string> segments;
  std::string_view id = parsed->id;
  for (size_t start = 0;;) {
    const size_t colon = id.find(':', start);
    segments.emplace_back(id.substr(start, colon == std::string_view::npos ? std::string_view::npos : colon - start));
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  // The host: percent-decoded (for the port's colon), then a DNS name or
  // IPv4 address with an optional numeric port.
  std::string host;
  const std::string& encoded = segments.front();
  for (size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] == '%') {
      host += static_cast<char>(HexValue(encoded[i + 1]) * 16 + HexValue(encoded[i + 2]));
      i += 2;
    } else {
      host += encoded[i];
    }
  }
  const size_t port_colon = host.find(':');
  const std::string_view name = std::string_view(host).substr(0, port_colon);
  if (name.empty() || name.front() == '.' || name.front() == '-' || name.back() == '.' ||
      name.find("..") != std::string_view::npos) {
    return InvalidArgument("did:web identifier " + Quote(did) + " does not name a valid host");
  }
  for (char c : name) {
    if (!IsAlnum(c) && c != '.' && c != '-') {
      return InvalidArgument("did:web identifier " + Quote(did) + " does not name a valid host");
    }
  }
  if (port_colon != std::string::npos) {
    const std::string_view port = std::string_view(host).substr(port_colon + 1);
    if (port.empty() || port.size() > 5 || std::any_of(port.begin(), port.end(), [](char c) { return !IsDigit(c); }) ||
        std::stoi(std::string(port)) > 65535) {
      return InvalidArgument("did:web identifier " + Quote(did) + " has an invalid port");
    }
  }
  std::string url = "https://" + host;
  if (segments.size() == 1) return url + "/.well-known/did.json";
  for (size_t i = 1; i < segments.size(); ++i) {
    if (segments[i].empty() || segments[i] == "." || segments[i] == "..") {
      return InvalidArgument("did:web identifier " + Quote(did) + " has an empty or dot path segment");
    }
    url += "/" + segments[i];
  }
  return url + "/did.json";
}

Result<ResolvedKey> ResolveDidKey(std::string_view did_url) {
  Result<DidUrl> parsed = ParseDidUrl(did_url);
  if (!parsed.ok()) return parsed.status();
  if (parsed->method != "key") return InvalidArgument(Quote(did_url) + " is not a did:key identifier");
  if (!parsed->path.empty() || !parsed->query.empty()) {
    return InvalidArgument("did:key URL " + Quote(did_url) + " has a path or query");
  }
  if (!parsed->fragment.empty() && parsed->fragment != parsed->id) {
    return InvalidArgument("did:key URL " + Quote(did_url) + " names a fragment other than its key");
  }
  Result<PublicKey> key = PublicKeyFromMultikey(parsed->id);
  if (!key.ok()) return key.status();
  return MakeKey(parsed->did + "#" + parsed->id, parsed->did, "Multikey", std::move(*key));
}

Result<ResolvedKey> ResolveDidJwk(std::string_view did_url) {
  Result<DidUrl> parsed = ParseDidUrl(did_url);
  if (!parsed.ok()) return parsed.status();
  if (parsed->method != "jwk") return InvalidArgument(Quote(did_url) + " is not a did:jwk identifier");
  if (!parsed->path.empty() || !parsed->query.empty()) {
    return InvalidArgument("did:jwk URL " + Quote(did_url) + " has a path or query");
  }
  if (!parsed->fragment.empty() && parsed->fragment != "0") {
    return InvalidArgument("did:jwk URL " + Quote(did_url) + " names a fragment other than #0");
  }
  std::optional<std::string> text = Base64UrlDecode(parsed->id);
  if (!text) return InvalidArgument("did:jwk identifier " + Quote(did_url) + " is not base64url");
  const Json jwk = Json::parse(*text, nullptr, false);
  if (!jwk.is_object()) return InvalidArgument("did:jwk identifier " + Quote(did_url) + " does not hold a JSON JWK");
  if (Member(jwk, "d") != nullptr) return InvalidArgument("did:jwk identifier holds a private key (\"d\")");
  Result<PublicKey> key = PublicKey::FromJwkObject(jwk);
  if (!key.ok()) return key.status();
  return MakeKey(parsed->did + "#0", parsed->did, "JsonWebKey", std::move(*key));
}

Result<ResolvedKey> VerificationMethodKey(const Json& method, std::string_view controller_id) {
  if (!method.is_object()) return InvalidArgument("a verification method is not a JSON object");
  const std::string* id = StringMember(method, "id");
  if (id == nullptr) return InvalidArgument("a verification method has no id");
  const std::string absolute = AbsoluteId(*id, controller_id);
  if (const Json* controller = Member(method, "controller"); controller != nullptr) {
    if (!controller->is_string() || controller->get_ref<const std::string&>() != controller_id) {
      return InvalidArgument("verification method " + Quote(absolute) + " has another controller than " +
                             Quote(controller_id));
    }
  }
  const std::string* type_member = StringMember(method, "type");
  const std::string type = type_member != nullptr ? *type_member : "";
  Result<PublicKey> key = InvalidArgument("verification method " + Quote(absolute) + " of type " + Quote(type) +
                                          " carries no key this node can read (publicKeyMultibase, " +
                                          "publicKeyJwk or publicKeyBase58)");
  if (const Json* jwk = Member(method, "publicKeyJwk"); jwk != nullptr) {
    if (Member(*jwk, "d") != nullptr) {
      return InvalidArgument("verification method " + Quote(absolute) + " publishes a private key (\"d\")");
    }
    key = PublicKey::FromJwkObject(*jwk);
  } else if (const std::string* multibase = StringMember(method, "publicKeyMultibase"); multibase != nullptr) {
    key = PublicKeyFromMultikey(*multibase);
  } else if (const std::string* base58 = StringMember(method, "publicKeyBase58"); base58 != nullptr) {
    if (type != "Ed25519VerificationKey2018") {
      return InvalidArgument("publicKeyBase58 is read only for Ed25519VerificationKey2018 keys");
    }
    std::optional<std::string> raw = Base58BtcDecode(*base58);
    key = raw ? PublicKey::FromEd25519Raw(*raw) : InvalidArgument("publicKeyBase58 is not base58btc");
  }
  if (!key.ok()) return key.status();
  return MakeKey(absolute, std::string(controller_id), type, std::move(*key));
}

Result<ResolvedKey> FindAssertionMethod(const Json& document, std::string_view controller_id,
                                        std::string_view method_id) {
  BP_RETURN_IF_ERROR(CheckDocumentId(document, controller_id));
  const std::string wanted = AbsoluteId(method_id, controller_id);
  const Json* assertion = Member(document, "assertionMethod");
  if (assertion == nullptr || !assertion->is_array()) {
    return NotFound("the controller document " + Quote(controller_id) + " lists no assertionMethod");
  }
  size_t seen = 0;
  for (const Json& entry : *assertion) {
    if (++seen > kMaxVerificationMethods) break;
    if (entry.is_object()) {
      const std::string* id = StringMember(entry, "id");
      if (id != nullptr && AbsoluteId(*id, controller_id) == wanted) return VerificationMethodKey(entry, controller_id);
      continue;
    }
    if (!entry.is_string() || AbsoluteId(entry.get_ref<const std::string&>(), controller_id) != wanted) continue;
    // A reference: the method itself is in verificationMethod.
    const Json* methods = Member(document, "verificationMethod");
    if (methods == nullptr || !methods->is_array()) break;
    size_t read = 0;
    for (const Json& method : *methods) {
      if (++read > kMaxVerificationMethods) break;
      const std::string* id = StringMember(method, "id");
      if (id != nullptr && AbsoluteId(*id, controller_id) == wanted) return VerificationMethodKey(method, controller_id);
    }
    return InvalidArgument("assertionMethod names " + Quote(wanted) + " but verificationMethod does not define it");
  }
  return NotFound("the controller document " + Quote(controller_id) + " does not list " + Quote(wanted) +
                  " under assertionMethod");
}

Result<std::vector<ResolvedKey>> AssertionMethods(const Json& document, std::string_view controller_id) {
  BP_RETURN_IF_ERROR(CheckDocumentId(document, controller_id));
  std::vector<ResolvedKey> keys;
  const Json* assertion = Member(document, "assertionMethod");
  if (assertion == nullptr || !assertion->is_array()) return keys;
  size_t seen = 0;
  for (const Json& entry : *assertion) {
    if (++seen > kMaxVerificationMethods) break;
    Result<ResolvedKey> key = InvalidArgument("");
    if (entry.is_object()) {
      key = VerificationMethodKey(entry, controller_id);
    } else if (entry.is_string()) {
      key = FindAssertionMethod(document, controller_id, entry.get_ref<const std::string&>());
    }
    if (key.ok()) keys.push_back(std::move(*key));
  }
  return keys;
}

}  // namespace backpack::protocol
