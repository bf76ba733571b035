#include "protocol/jws.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "protocol/encoding.h"

namespace backpack::protocol {

using nlohmann::json;

// ---------------------------------------------------------------------------
// OpenSSL ownership and error-queue hygiene.
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
struct BnFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
struct ParamBldFree {
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};
struct OpensslFree {
  void operator()(void* p) const { OPENSSL_free(p); }
};

using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, ParamFree>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, EcdsaSigFree>;

// Our failures must not leave entries on the thread's OpenSSL error queue,
// where TLS code sharing the thread would misread them. Every public entry
// point holds one of these: it removes exactly the errors raised inside it.
class ErrorQueueScope {
 public:
  ErrorQueueScope() { ERR_set_mark(); }
  ~ErrorQueueScope() { ERR_pop_to_mark(); }
  ErrorQueueScope(const ErrorQueueScope&) = delete;
  ErrorQueueScope& operator=(const ErrorQueueScope&) = delete;
};

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

Status CryptoFailure(std::string_view what) {
  return Internal("crypto library failure: " + std::string(what));
}

// Untrusted text quoted into a message: printable ASCII kept, the rest
// escaped, long values cut short.
std::string Quote(std::string_view text) {
  constexpr size_t kMaxShown = 40;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (size_t i = 0; i < text.size() && i < kMaxShown; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  if (text.size() > kMaxShown) out += "...";
  out.push_back('"');
  return out;
}

bool IsBase64UrlChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

// Strict base64url: the 64-character alphabet only, no padding, no
// whitespace, and (through Base64UrlDecode) canonical trailing bits.
Result<std::string> DecodeStrict(std::string_view text, std::string_view what) {
  for (size_t i = 0; i < text.size(); ++i) {
    if (IsBase64UrlChar(text[i])) continue;
    if (text[i] == '=') {
      return InvalidArgument(std::string(what) + " has '=' padding, which base64url here must not have");
    }
    return InvalidArgument(std::string(what) + " has a character outside the base64url alphabet at offset " +
                           std::to_string(i));
  }
  std::optional<std::string> decoded = Base64UrlDecode(text);
  if (!decoded) {
    return InvalidArgument(std::string(what) + " is not valid base64url (bad length or trailing bits)");
  }
  return std::move(*decoded);
}

// Parses untrusted JSON that must be an object. Unlike a plain parse, a
// member name repeated within one object is an error (a verifier and a
// signer must never read different values for the same name), and nesting
// is bounded.
Result<json> ParseJsonObject(std::string_view text, std::string_view what) {
  constexpr int kMaxDepth = 32;
  std::vector<std::set<std::string>> open_objects;
  std::optional<std::string> duplicate;
  bool too_deep = false;
  auto check = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth > kMaxDepth) too_deep = true;
    switch (event) {
      case json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key:
        if (!open_objects.empty() && parsed.is_string() &&
            !open_objects.back().insert(parsed.get_ref<const std::string&>()).second && !duplicate) {
          duplicate = parsed.get_ref<const std::string&>();
        }
        break;
      default:
        break;
    }
    return true;
  };
  // The JSON parser takes a NUL byte for the end of input; a raw NUL is
  // never valid JSON, so refuse it rather than ignore what follows.
  if (text.find('\0') != std::string_view::npos) {
    return InvalidArgument(std::string(what) + " is not valid JSON (NUL byte)");
  }
  json value;
  try {
    value = json::parse(text.begin(), text.end(), check, /*allow_exceptions=*/false);
  } catch (const json::exception&) {
    value = json(json::value_t::discarded);
  }
  if (too_deep) {
    return InvalidArgument(std::string(what) + " nests deeper than " + std::to_string(kMaxDepth) + " levels");
  }
  if (value.is_discarded()) return InvalidArgument(std::string(what) + " is not valid JSON");
  if (!value.is_object()) return InvalidArgument(std::string(what) + " is not a JSON object");
  if (duplicate) return InvalidArgument(std::string(what) + " repeats the member " + Quote(*duplicate));
  return value;
}

std::string BnToBytes(const BIGNUM* bn, int width = 0) {
  const int size = width > 0 ? width : BN_num_bytes(bn);
  std::string out(static_cast<size_t>(size), '\0');
  if (size > 0) BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), size);
  return out;
}

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return size > 0 ? std::string(data, static_cast<size_t>(size)) : std::string();
}

// One PEM block: its label and DER body.
struct PemBlock {
  std::string label;
  std::string der;
};

Result<PemBlock> ReadPem(std::string_view pem) {
  if (pem.size() > kMaxKeyDocumentBytes) {
    return InvalidArgument("PEM text is larger than " + std::to_string(kMaxKeyDocumentBytes) + " bytes");
  }
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return CryptoFailure("BIO_new_mem_buf");
  char* name = nullptr;
  char* header = nullptr;
  unsigned char* data = nullptr;
  long size = 0;
  if (PEM_read_bio(bio.get(), &name, &header, &data, &size) != 1) {
    return InvalidArgument("no PEM block (-----BEGIN ...-----) could be read");
  }
  std::unique_ptr<char, OpensslFree> name_owner(name);
  std::unique_ptr<char, OpensslFree> header_owner(header);
  std::unique_ptr<unsigned char, OpensslFree> data_owner(data);
  if (header != nullptr && header[0] != '\0') {
    return InvalidArgument("PEM block has headers (encrypted keys are not supported)");
  }
  return PemBlock{name, std::string(reinterpret_cast<const char*>(data), static_cast<size_t>(size))};
}

}  // namespace

// ---------------------------------------------------------------------------
// Key material.

struct PublicKey::Impl {
  PkeyPtr pkey;
  KeyType type = KeyType::kRsa;
  int bits = 0;
  std::string jwk;  // RFC 7638 canonical form
};

struct PrivateKey::Impl {
  PkeyPtr pkey;
};

struct KeyAccess {
  static EVP_PKEY* Get(const PublicKey& key) { return key.impl_->pkey.get(); }
  static EVP_PKEY* Get(const PrivateKey& key) { return key.impl_->pkey.get(); }
  static PublicKey MakePublic(std::shared_ptr<const PublicKey::Impl> impl) {
    return PublicKey(std::move(impl));
  }
  static PrivateKey MakePrivate(std::shared_ptr<const PrivateKey::Impl> impl, PublicKey pub) {
    return PrivateKey(std::move(impl), std::move(pub));
  }
};

std::string_view KeyTypeName(KeyType type) {
  switch (type) {
    case KeyType::kRsa:
      return "RSA";
    case KeyType::kEcP256:
      return "EC P-256";
    case KeyType::kEd25519:
      return "Ed25519";
  }
  return "unknown";
}

std::string_view AlgorithmForKeyType(KeyType type) {
  switch (type) {
    case KeyType::kRsa:
      return "RS256";
    case KeyType::kEcP256:
      return "ES256";
    case KeyType::kEd25519:
      return "EdDSA";
  }
  return "unknown";
}

namespace {

constexpr int kMaxRsaExponentBits = 64;

Result<BnPtr> GetBn(const EVP_PKEY* pkey, const char* name) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1) return CryptoFailure(name);
  return BnPtr(bn);
}

// Applies the key rules and derives the canonical JWK. `pkey` must hold
// public material (it may also hold private material).
Result<std::shared_ptr<PublicKey::Impl>> ClassifyKey(PkeyPtr pkey) {
  auto impl = std::make_shared<PublicKey::Impl>();
  if (EVP_PKEY_is_a(pkey.get(), "RSA")) {
    const int bits = EVP_PKEY_get_bits(pkey.get());
    if (bits < kMinRsaBits) {
      return InvalidArgument("RSA key has " + std::to_string(bits) + " bits; at least " +
                             std::to_string(kMinRsaBits) + " are required");
    }
    if (bits > kMaxRsaBits) {
      return InvalidArgument("RSA key has " + std::to_string(bits) + " bits; at most " +
                             std::to_string(kMaxRsaBits) + " are accepted");
    }
    auto n = GetBn(pkey.get(), OSSL_PKEY_PARAM_RSA_N);
    if (!n.ok()) return n.status();
    auto e = GetBn(pkey.get(), OSSL_PKEY_PARAM_RSA_E);
    if (!e.ok()) return e.status();
    if (!BN_is_odd(n->get())) return InvalidArgument("RSA modulus is even");
    if (!BN_is_odd(e->get()) || BN_is_one(e->get())) {
      return InvalidArgument("RSA public exponent must be odd and greater than 1");
    }
    if (BN_num_bits(e->get()) > kMaxRsaExponentBits) {
      return InvalidArgument("RSA public exponent is longer than " + std::to_string(kMaxRsaExponentBits) +
                             " bits");
    }
    impl->type = KeyType::kRsa;
    impl->bits = bits;
    impl->jwk = "{\"e\":\"" + Base64UrlEncode(BnToBytes(e->get())) + "\",\"kty\":\"RSA\",\"n\":\"" +
                Base64UrlEncode(BnToBytes(n->get())) + "\"}";
  } else if (EVP_PKEY_is_a(pkey.get(), "RSA-PSS")) {
    return InvalidArgument("RSA-PSS restricted keys are not supported; RS256 needs a plain RSA key");
  } else if (EVP_PKEY_is_a(pkey.get(), "EC")) {
    char group[64] = {};
    size_t group_len = 0;
    if (EVP_PKEY_get_utf8_string_param(pkey.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       &group_len) != 1) {
      return InvalidArgument("EC key does not use a named curve; only P-256 is accepted");
    }
    const std::string_view name(group, group_len);
    if (name != "prime256v1" && name != "P-256") {
      return InvalidArgument("EC key is on curve " + Quote(name) + "; only P-256 is accepted");
    }
    PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
    if (!check) return CryptoFailure("EVP_PKEY_CTX_new_from_pkey");
    if (EVP_PKEY_public_check(check.get()) != 1) {
      return InvalidArgument("EC public key is not a valid point on P-256");
    }
    auto x = GetBn(pkey.get(), OSSL_PKEY_PARAM_EC_PUB_X);
    if (!x.ok()) return x.status();
    auto y = GetBn(pkey.get(), OSSL_PKEY_PARAM_EC_PUB_Y);
    if (!y.ok()) return y.status();
    impl->type = KeyType::kEcP256;
    impl->bits = 256;
    impl->jwk = "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"" + Base64UrlEncode(BnToBytes(x->get(), 32)) +
                "\",\"y\":\"" + Base64UrlEncode(BnToBytes(y->get(), 32)) + "\"}";
  } else if (EVP_PKEY_is_a(pkey.get(), "ED25519")) {
    std::array<unsigned char, 32> raw{};
    size_t raw_len = raw.size();
    if (EVP_PKEY_get_raw_public_key(pkey.get(), raw.data(), &raw_len) != 1 || raw_len != raw.size()) {
      return CryptoFailure("EVP_PKEY_get_raw_public_key");
    }
    impl->type = KeyType::kEd25519;
    impl->bits = 256;
    impl->jwk = "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"" +
                Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(raw.data()), raw_len)) +
                "\"}";
  } else {
    const char* type_name = EVP_PKEY_get0_type_name(pkey.get());
    return InvalidArgument("key type " + Quote(type_name != nullptr ? type_name : "unknown") +
                           " is not supported (accepted: RSA, EC P-256, Ed25519)");
  }
  impl->pkey = std::move(pkey);
  return impl;
}

// A public-only copy of a key that may hold private material.
Result<PkeyPtr> PublicOnly(EVP_PKEY* pkey) {
  unsigned char* der = nullptr;
  const int size = i2d_PUBKEY(pkey, &der);
  if (size <= 0) return CryptoFailure("i2d_PUBKEY");
  std::unique_ptr<unsigned char, OpensslFree> der_owner(der);
  const unsigned char* p = der;
  PkeyPtr pub(d2i_PUBKEY(nullptr, &p, size));
  if (!pub) return CryptoFailure("d2i_PUBKEY");
  return pub;
}

Result<PkeyPtr> PkeyFromParams(const char* type, OSSL_PARAM_BLD* bld) {
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld));
  if (!params) return CryptoFailure("OSSL_PARAM_BLD_to_param");
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  if (!ctx) return CryptoFailure("EVP_PKEY_CTX_new_from_name");
  if (EVP_PKEY_fromdata_init(ctx.get()) != 1) return CryptoFailure("EVP_PKEY_fromdata_init");
  EVP_PKEY* pkey = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return InvalidArgument(std::string("JWK does not describe a valid ") + type + " public key");
  }
  return PkeyPtr(pkey);
}

// A required base64url member of a JWK, decoded.
Result<std::string> JwkBytes(const json& jwk, const char* member, std::string_view kty) {
  auto it = jwk.find(member);
  if (it == jwk.end()) {
    return InvalidArgument("JWK of kty " + Quote(kty) + " has no " + Quote(member));
  }
  if (!it->is_string()) return InvalidArgument(std::string("JWK member ") + Quote(member) + " is not a string");
  return DecodeStrict(it->get_ref<const std::string&>(), std::string("JWK member ") + Quote(member));
}

std::string_view StripLeadingZeros(std::string_view bytes) {
  while (!bytes.empty() && bytes.front() == '\0') bytes.remove_prefix(1);
  return bytes;
}

Result<PkeyPtr> RsaFromJwk(const json& jwk) {
  auto n = JwkBytes(jwk, "n", "RSA");
  if (!n.ok()) return n.status();
  auto e = JwkBytes(jwk, "e", "RSA");
  if (!e.ok()) return e.status();
  const std::string_view n_bytes = StripLeadingZeros(*n);
  const std::string_view e_bytes = StripLeadingZeros(*e);
  // Checked before building the key so that a huge value costs nothing.
  if (n_bytes.size() * 8 > static_cast<size_t>(kMaxRsaBits)) {
    return InvalidArgument("RSA key has more than " + std::to_string(kMaxRsaBits) + " bits");
  }
  if (e_bytes.empty() || e_bytes.size() * 8 > static_cast<size_t>(kMaxRsaExponentBits)) {
    return InvalidArgument("RSA public exponent is zero or longer than " +
                           std::to_string(kMaxRsaExponentBits) + " bits");
  }
  BnPtr bn_n(BN_bin2bn(Bytes(n_bytes), static_cast<int>(n_bytes.size()), nullptr));
  BnPtr bn_e(BN_bin2bn(Bytes(e_bytes), static_cast<int>(e_bytes.size()), nullptr));
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bn_n || !bn_e || !bld) return CryptoFailure("BN_bin2bn");
  if (OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    return CryptoFailure("OSSL_PARAM_BLD_push_BN");
  }
  return PkeyFromParams("RSA", bld.get());
}

Result<PkeyPtr> EcFromJwk(const json& jwk) {
  auto crv = jwk.find("crv");
  if (crv == jwk.end() || !crv->is_string()) {
    return InvalidArgument("JWK of kty \"EC\" has no \"crv\" string");
  }
  const std::string& curve = crv->get_ref<const std::string&>();
  if (curve != "P-256") {
    return InvalidArgument("JWK EC curve " + Quote(curve) + " is not supported; only P-256 is accepted");
  }
  auto x = JwkBytes(jwk, "x", "EC");
  if (!x.ok()) return x.status();
  auto y = JwkBytes(jwk, "y", "EC");
  if (!y.ok()) return y.status();
  if (x->size() != 32 || y->size() != 32) {
    return InvalidArgument("JWK P-256 coordinates must be 32 bytes each, got " + std::to_string(x->size()) +
                           " and " + std::to_string(y->size()));
  }
  std::string point = "\x04" + *x + *y;
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld) return CryptoFailure("OSSL_PARAM_BLD_new");
  if (OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1) {
    return CryptoFailure("OSSL_PARAM_BLD_push");
  }
  auto pkey = PkeyFromParams("EC", bld.get());
  if (!pkey.ok()) return InvalidArgument("JWK EC point is not on the P-256 curve");
  return pkey;
}

Result<PkeyPtr> OkpFromJwk(const json& jwk) {
  auto crv = jwk.find("crv");
  if (crv == jwk.end() || !crv->is_string()) {
    return InvalidArgument("JWK of kty \"OKP\" has no \"crv\" string");
  }
  const std::string& curve = crv->get_ref<const std::string&>();
  if (curve == "X25519" || curve == "X448") {
    return InvalidArgument("JWK OKP curve " + Quote(curve) + " is for key agreement, not signatures");
  }
  if (curve != "Ed25519") {
    return InvalidArgument("JWK OKP curve " + Quote(curve) + " is not supported; only Ed25519 is accepted");
  }
  auto x = JwkBytes(jwk, "x", "OKP");
  if (!x.ok()) return x.status();
  if (x->size() != 32) {
    return InvalidArgument("JWK Ed25519 \"x\" must be 32 bytes, got " + std::to_string(x->size()));
  }
  PkeyPtr pkey(EVP_PKEY_new_raw_public_key_ex(nullptr, "ED25519", nullptr, Bytes(*x), x->size()));
  if (!pkey) return CryptoFailure("EVP_PKEY_new_raw_public_key_ex");
  return pkey;
}

bool AlgorithmMatchesKey(std::string_view alg, KeyType type) {
  if (alg == AlgorithmForKeyType(type)) return true;
  return type == KeyType::kEd25519 && alg == "Ed25519";
}

}  // namespace

Result<PublicKey> PublicKey::FromPem(std::string_view pem) {
  ErrorQueueScope errors;
  auto block = ReadPem(pem);
  if (!block.ok()) return block.status();
  const std::string& label = block->label;
  const unsigned char* p = Bytes(block->der);
  const long size = static_cast<long>(block->der.size());
  PkeyPtr pkey;
  if (label == "PUBLIC KEY") {
    pkey.reset(d2i_PUBKEY(nullptr, &p, size));
  } else if (label == "RSA PUBLIC KEY") {
    pkey.reset(d2i_PublicKey(EVP_PKEY_RSA, nullptr, &p, size));
  } else if (label.find("PRIVATE KEY") != std::string::npos) {
    return InvalidArgument("PEM block " + Quote(label) + " holds a private key; a public key is expected");
  } else {
    return InvalidArgument("PEM block " + Quote(label) +
                           " is not a public key (expected \"PUBLIC KEY\" or \"RSA PUBLIC KEY\")");
  }
  if (!pkey) return InvalidArgument("PEM " + Quote(label) + " block does not hold a decodable public key");
  if (p != Bytes(block->der) + block->der.size()) {
    return InvalidArgument("PEM " + Quote(label) + " block has bytes after the key");
  }
  auto impl = ClassifyKey(std::move(pkey));
  if (!impl.ok()) return impl.status();
  return KeyAccess::MakePublic(std::move(*impl));
}

Result<PublicKey> PublicKey::FromJwk(std::string_view jwk_json) {
  if (jwk_json.size() > kMaxKeyDocumentBytes) {
    return InvalidArgument("JWK text is larger than " + std::to_string(kMaxKeyDocumentBytes) + " bytes");
  }
  auto jwk = ParseJsonObject(jwk_json, "JWK");
  if (!jwk.ok()) return jwk.status();
  return FromJwkObject(*jwk);
}

Result<PublicKey> PublicKey::FromJwkObject(const json& jwk) {
  ErrorQueueScope errors;
  if (!jwk.is_object()) return InvalidArgument("JWK is not a JSON object");
  auto kty_it = jwk.find("kty");
  if (kty_it == jwk.end()) return InvalidArgument("JWK has no \"kty\"");
  if (!kty_it->is_string()) return InvalidArgument("JWK \"kty\" is not a string");
  const std::string& kty = kty_it->get_ref<const std::string&>();
  if (auto use = jwk.find("use"); use != jwk.end()) {
    if (!use->is_string()) return InvalidArgument("JWK \"use\" is not a string");
    if (*use != "sig") {
      return InvalidArgument("JWK \"use\" is " + Quote(use->get_ref<const std::string&>()) +
                             "; a signature key must have \"sig\"");
    }
  }
  if (kty == "oct") {
    return InvalidArgument("JWK of kty \"oct\" is a symmetric secret; only public keys are accepted");
  }
  if (kty != "RSA" && kty != "EC" && kty != "OKP") {
    return InvalidArgument("JWK kty " + Quote(kty) + " is not supported (accepted: RSA, EC, OKP)");
  }
  Result<PkeyPtr> pkey = kty == "RSA" ? RsaFromJwk(jwk) : kty == "EC" ? EcFromJwk(jwk) : OkpFromJwk(jwk);
  if (!pkey.ok()) return pkey.status();
  auto impl = ClassifyKey(std::move(*pkey));
  if (!impl.ok()) return impl.status();
  if (auto alg = jwk.find("alg"); alg != jwk.end()) {
    if (!alg->is_string()) return InvalidArgument("JWK \"alg\" is not a string");
    if (!AlgorithmMatchesKey(alg->get_ref<const std::string&>(), (*impl)->type)) {
      return InvalidArgument("JWK \"alg\" is " + Quote(alg->get_ref<const std::string&>()) + " but a " +
                             std::string(KeyTypeName((*impl)->type)) + " key signs with " +
                             std::string(AlgorithmForKeyType((*impl)->type)));
    }
  }
  return KeyAccess::MakePublic(std::move(*impl));
}

Result<PublicKey> PublicKey::FromEd25519Raw(std::string_view raw) {
  ErrorQueueScope errors;
  if (raw.size() != 32) {
    return InvalidArgument("an Ed25519 public key is 32 bytes, got " + std::to_string(raw.size()));
  }
  PkeyPtr pkey(EVP_PKEY_new_raw_public_key_ex(nullptr, "ED25519", nullptr, Bytes(raw), raw.size()));
  if (!pkey) return CryptoFailure("EVP_PKEY_new_raw_public_key_ex");
  auto impl = ClassifyKey(std::move(pkey));
  if (!impl.ok()) return impl.status();
  return KeyAccess::MakePublic(std::move(*impl));
}

KeyType PublicKey::type() const { return impl_->type; }
int PublicKey::bits() const { return impl_->bits; }
const std::string& PublicKey::ToJwk() const { return impl_->jwk; }
std::string PublicKey::Thumbprint() const { return Base64UrlEncode(Sha256(impl_->jwk)); }

std::string PublicKey::ToPem() const {
  ErrorQueueScope errors;
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), impl_->pkey.get()) != 1) return std::string();
  return BioContents(bio.get());
}

Result<std::string> JwkThumbprint(std::string_view jwk_json) {
  auto key = PublicKey::FromJwk(jwk_json);
  if (!key.ok()) return key.status();
  return key->Thumbprint();
}

// ---------------------------------------------------------------------------
// Parsing.

namespace {

// Header parameters registered by RFC 7515 and RFC 7518; "crit" must never
// list them.
bool IsStandardHeaderParameter(std::string_view name) {
  static constexpr std::string_view kNames[] = {"alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256",
                                                "typ", "cty", "crit", "enc", "zip", "epk", "apu", "apv",
                                                "iv",  "tag", "p2s", "p2c"};
  return std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames);
}

// Extensions this code implements, and so may appear in "crit". Only "b64"
// (RFC 7797), and only with its default value true.
bool IsImplementedExtension(std::string_view name) { return name == "b64"; }

Status CheckOptionalString(const json& header, const char* member) {
  auto it = header.find(member);
  if (it != header.end() && !it->is_string()) {
    return InvalidArgument(std::string("JWS header ") + Quote(member) + " is not a string");
  }
  return Status::Ok();
}

Status CheckCrit(const json& header) {
  auto crit = header.find("crit");
  if (crit == header.end()) return Status::Ok();
  if (!crit->is_array() || crit->empty()) {
    return InvalidArgument("JWS header \"crit\" must be a non-empty array of names");
  }
  std::set<std::string> seen;
  for (const json& entry : *crit) {
    if (!entry.is_string()) return InvalidArgument("JWS header \"crit\" has an entry that is not a string");
    const std::string& name = entry.get_ref<const std::string&>();
    if (!seen.insert(name).second) return InvalidArgument("JWS header \"crit\" repeats " + Quote(name));
    if (IsStandardHeaderParameter(name)) {
      return InvalidArgument("JWS header \"crit\" lists " + Quote(name) +
                             ", a standard parameter that must not be listed");
    }
    if (!header.contains(name)) {
      return InvalidArgument("JWS header \"crit\" lists " + Quote(name) + ", which the header does not contain");
    }
    if (!IsImplementedExtension(name)) {
      return InvalidArgument("JWS header \"crit\" lists " + Quote(name) +
                             ", an extension this verifier does not implement");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<Jws> Jws::Parse(std::string_view compact) {
  if (compact.empty()) return InvalidArgument("JWS is empty");
  if (compact.size() > kMaxJwsBytes) {
    return InvalidArgument("JWS is " + std::to_string(compact.size()) + " bytes; at most " +
                           std::to_string(kMaxJwsBytes) + " are accepted");
  }
  const size_t dots = static_cast<size_t>(std::count(compact.begin(), compact.end(), '.'));
  if (dots != 2) {
    return InvalidArgument("JWS compact serialization has " + std::to_string(dots + 1) +
                           " parts; exactly 3 (header.payload.signature) are required");
  }
  const size_t first = compact.find('.');
  const size_t second = compact.find('.', first + 1);
  const std::string_view header_b64 = compact.substr(0, first);
  const std::string_view payload_b64 = compact.substr(first + 1, second - first - 1);
  const std::string_view signature_b64 = compact.substr(second + 1);

  if (header_b64.empty()) return InvalidArgument("JWS header is empty");
  if (signature_b64.empty()) return InvalidArgument("JWS signature is empty (unsigned JWS are refused)");
  // Checked on the encoded size first so an oversize header is never decoded.
  if (header_b64.size() > (kMaxJwsHeaderBytes * 4 + 2) / 3) {
    return InvalidArgument("JWS header is larger than " + std::to_string(kMaxJwsHeaderBytes) + " bytes");
  }
  // The header first: what it says (b64, crit) explains a payload that is
  // not base64url better than the decoding error would.
  auto header_text = DecodeStrict(header_b64, "JWS header");
  if (!header_text.ok()) return header_text.status();
  auto header = ParseJsonObject(*header_text, "JWS header");
  if (!header.ok()) return header.status();

  Jws jws;
  auto alg = header->find("alg");
  if (alg == header->end()) return InvalidArgument("JWS header has no \"alg\"");
  if (!alg->is_string()) return InvalidArgument("JWS header \"alg\" is not a string");
  jws.algorithm_ = alg->get<std::string>();
  for (const char* member : {"kid", "typ", "cty"}) BP_RETURN_IF_ERROR(CheckOptionalString(*header, member));
  if (auto kid = header->find("kid"); kid != header->end()) jws.key_id_ = kid->get<std::string>();
  if (auto typ = header->find("typ"); typ != header->end()) jws.type_ = typ->get<std::string>();
  if (auto jwk = header->find("jwk"); jwk != header->end()) {
    if (!jwk->is_object()) return InvalidArgument("JWS header \"jwk\" is not a JSON object");
    jws.has_embedded_jwk_ = true;
  }
  if (auto b64 = header->find("b64"); b64 != header->end()) {
    if (!b64->is_boolean()) return InvalidArgument("JWS header \"b64\" is not a boolean");
    if (!b64->get<bool>()) {
      return InvalidArgument("JWS header \"b64\": false (unencoded payload, RFC 7797) is not supported");
    }
  }
  BP_RETURN_IF_ERROR(CheckCrit(*header));

  auto payload = DecodeStrict(payload_b64, "JWS payload");
  if (!payload.ok()) return payload.status();
  auto signature = DecodeStrict(signature_b64, "JWS signature");
  if (!signature.ok()) return signature.status();

  jws.compact_ = std::string(compact);
  jws.signing_input_size_ = second;
  jws.header_ = std::make_shared<const json>(std::move(*header));
  jws.payload_ = std::move(*payload);
  jws.signature_ = std::move(*signature);
  return jws;
}

Result<PublicKey> Jws::EmbeddedJwk() const {
  if (!has_embedded_jwk_) return NotFound("JWS header has no \"jwk\"");
  return PublicKey::FromJwkObject(header_->at("jwk"));
}

// ---------------------------------------------------------------------------
// Verification.

namespace {

// Which key type the header's alg calls for, or why it is refused.
Result<KeyType> KeyTypeForAlgorithm(std::string_view alg) {
  if (alg == "RS256") return KeyType::kRsa;
  if (alg == "ES256") return KeyType::kEcP256;
  if (alg == "EdDSA" || alg == "Ed25519") return KeyType::kEd25519;
  if (alg == "none" || alg == "None" || alg == "NONE") {
    return InvalidArgument("JWS alg \"none\" (an unsigned token) is refused");
  }
  if (alg == "HS256" || alg == "HS384" || alg == "HS512") {
    return InvalidArgument("JWS alg " + Quote(alg) +
                           " is HMAC with a shared secret and is refused: a public key is never used as an "
                           "HMAC secret");
  }
  if (alg == "PS256" || alg == "PS384" || alg == "PS512") {
    return InvalidArgument("JWS alg " + Quote(alg) + " (RSASSA-PSS) is not supported; RSA keys sign with RS256");
  }
  if (alg == "RS384" || alg == "RS512" || alg == "ES384" || alg == "ES512" || alg == "ES256K" ||
      alg == "Ed448") {
    return InvalidArgument("JWS alg " + Quote(alg) + " is not supported (accepted: RS256, ES256, EdDSA)");
  }
  return InvalidArgument("JWS alg " + Quote(alg) + " is unknown (accepted: RS256, ES256, EdDSA)");
}

// JOSE ES256 signature (32-byte r, 32-byte s) to the DER form OpenSSL takes.
Result<std::string> RawEcdsaToDer(std::string_view raw) {
  EcdsaSigPtr sig(ECDSA_SIG_new());
  BnPtr r(BN_bin2bn(Bytes(raw), 32, nullptr));
  BnPtr s(BN_bin2bn(Bytes(raw) + 32, 32, nullptr));
  if (!sig || !r || !s) return CryptoFailure("ECDSA_SIG_new");
  if (ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) return CryptoFailure("ECDSA_SIG_set0");
  r.release();  // now owned by sig
  s.release();
  unsigned char* der = nullptr;
  const int size = i2d_ECDSA_SIG(sig.get(), &der);
  if (size <= 0) return CryptoFailure("i2d_ECDSA_SIG");
  std::unique_ptr<unsigned char, OpensslFree> der_owner(der);
  return std::string(reinterpret_cast<const char*>(der), static_cast<size_t>(size));
}

Result<std::string> DerEcdsaToRaw(std::string_view der) {
  const unsigned char* p = Bytes(der);
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (!sig) return CryptoFailure("d2i_ECDSA_SIG");
  const BIGNUM* r = ECDSA_SIG_get0_r(sig.get());
  const BIGNUM* s = ECDSA_SIG_get0_s(sig.get());
  if (BN_num_bytes(r) > 32 || BN_num_bytes(s) > 32) return CryptoFailure("ECDSA signature too long");
  return BnToBytes(r, 32) + BnToBytes(s, 32);
}

const char* DigestFor(KeyType type) { return type == KeyType::kEd25519 ? nullptr : "SHA256"; }

}  // namespace

Status Verify(const Jws& jws, const PublicKey& key) {
  ErrorQueueScope errors;
  auto wanted = KeyTypeForAlgorithm(jws.algorithm());
  if (!wanted.ok()) return wanted.status();
  if (*wanted != key.type()) {
    return InvalidArgument("JWS alg " + Quote(jws.algorithm()) + " needs an " + std::string(KeyTypeName(*wanted)) +
                           " key, but the key given is " + std::string(KeyTypeName(key.type())));
  }
  std::string der_signature;
  std::string_view signature = jws.signature();
  switch (key.type()) {
    case KeyType::kRsa: {
      const size_t expected = static_cast<size_t>((key.bits() + 7) / 8);
      if (signature.size() != expected) {
        return InvalidArgument("RS256 signature is " + std::to_string(signature.size()) + " bytes; the " +
                               std::to_string(key.bits()) + "-bit key needs " + std::to_string(expected));
      }
      break;
    }
    case KeyType::kEcP256: {
      if (signature.size() != 64) {
        return InvalidArgument("ES256 signature is " + std::to_string(signature.size()) +
                               " bytes; JOSE needs exactly 64 (raw r||s, not DER)");
      }
      auto der = RawEcdsaToDer(signature);
      if (!der.ok()) return der.status();
      der_signature = std::move(*der);
      signature = der_signature;
      break;
    }
    case KeyType::kEd25519:
      if (signature.size() != 64) {
        return InvalidArgument("EdDSA signature is " + std::to_string(signature.size()) +
                               " bytes; Ed25519 needs exactly 64");
      }
      break;
  }
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) return CryptoFailure("EVP_MD_CTX_new");
  EVP_PKEY_CTX* pctx = nullptr;
  if (EVP_DigestVerifyInit_ex(ctx.get(), &pctx, DigestFor(key.type()), nullptr, nullptr, KeyAccess::Get(key),
                              nullptr) != 1) {
    return CryptoFailure("EVP_DigestVerifyInit_ex");
  }
  if (key.type() == KeyType::kRsa && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
    return CryptoFailure("EVP_PKEY_CTX_set_rsa_padding");
  }
  const std::string_view input = jws.signing_input();
  if (EVP_DigestVerify(ctx.get(), Bytes(signature), signature.size(), Bytes(input), input.size()) != 1) {
    return InvalidArgument("JWS signature does not verify with the " + std::string(KeyTypeName(key.type())) +
                           " key");
  }
  return Status::Ok();
}

Status VerifyEd25519(const PublicKey& key, std::string_view message, std::string_view signature) {
  ErrorQueueScope errors;
  if (key.type() != KeyType::kEd25519) {
    return InvalidArgument("an Ed25519 signature needs an Ed25519 key, but the key given is " +
                           std::string(KeyTypeName(key.type())));
  }
  if (signature.size() != 64) {
    return InvalidArgument("Ed25519 signature is " + std::to_string(signature.size()) + " bytes; it must be 64");
  }
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) return CryptoFailure("EVP_MD_CTX_new");
  if (EVP_DigestVerifyInit_ex(ctx.get(), nullptr, nullptr, nullptr, nullptr, KeyAccess::Get(key), nullptr) != 1) {
    return CryptoFailure("EVP_DigestVerifyInit_ex");
  }
  if (EVP_DigestVerify(ctx.get(), Bytes(signature), signature.size(), Bytes(message), message.size()) != 1) {
    return InvalidArgument("Ed25519 signature does not verify");
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Private keys and signing.

namespace {

Result<PrivateKey> MakePrivateKey(PkeyPtr pkey) {
  auto pub = PublicOnly(pkey.get());
  if (!pub.ok()) return pub.status();
  auto impl = ClassifyKey(std::move(*pub));
  if (!impl.ok()) return impl.status();
  auto priv = std::make_shared<PrivateKey::Impl>();
  priv->pkey = std::move(pkey);
  return KeyAccess::MakePrivate(std::move(priv), KeyAccess::MakePublic(std::move(*impl)));
}

}  // namespace

Result<PrivateKey> PrivateKey::FromPem(std::string_view pem) {
  ErrorQueueScope errors;
  auto block = ReadPem(pem);
  if (!block.ok()) return block.status();
  const std::string& label = block->label;
  if (label == "ENCRYPTED PRIVATE KEY") return InvalidArgument("encrypted private keys are not supported");
  if (label != "PRIVATE KEY" && label != "RSA PRIVATE KEY" && label != "EC PRIVATE KEY") {
    return InvalidArgument("PEM block " + Quote(label) +
                           " is not a private key (expected \"PRIVATE KEY\", \"RSA PRIVATE KEY\" or "
                           "\"EC PRIVATE KEY\")");
  }
  const unsigned char* p = Bytes(block->der);
  PkeyPtr pkey(d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(block->der.size())));
  if (!pkey) return InvalidArgument("PEM " + Quote(label) + " block does not hold a decodable private key");
  return MakePrivateKey(std::move(pkey));
}

Result<PrivateKey> PrivateKey::Generate(KeyType type, int rsa_bits) {
  ErrorQueueScope errors;
  EVP_PKEY* pkey = nullptr;
  switch (type) {
    case KeyType::kRsa:
      if (rsa_bits < kMinRsaBits || rsa_bits > kMaxRsaBits) {
        return InvalidArgument("RSA key size must lie in " + std::to_string(kMinRsaBits) + ".." +
                               std::to_string(kMaxRsaBits) + " bits");
      }
      pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(rsa_bits));
      break;
    case KeyType::kEcP256:
      pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
      break;
    case KeyType::kEd25519:
      pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
      break;
  }
  if (pkey == nullptr) return CryptoFailure("EVP_PKEY_Q_keygen");
  return MakePrivateKey(PkeyPtr(pkey));
}

std::string PrivateKey::ToPem() const {
  ErrorQueueScope errors;
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), impl_->pkey.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return std::string();
  }
  return BioContents(bio.get());
}

Result<std::string> Sign(const PrivateKey& key, std::string_view payload, const JwsHeaderFields& fields) {
  ErrorQueueScope errors;
  nlohmann::ordered_json header;
  header["alg"] = AlgorithmForKeyType(key.type());
  if (!fields.key_id.empty()) header["kid"] = fields.key_id;
  if (!fields.type.empty()) header["typ"] = fields.type;
  if (fields.embed_public_jwk) header["jwk"] = nlohmann::ordered_json::parse(key.public_key().ToJwk());
  std::string header_text;
  try {
    header_text = header.dump();
  } catch (const json::exception&) {
    return InvalidArgument("JWS header fields are not valid UTF-8");
  }
  const std::string input = Base64UrlEncode(header_text) + "." + Base64UrlEncode(payload);

  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) return CryptoFailure("EVP_MD_CTX_new");
  EVP_PKEY_CTX* pctx = nullptr;
  if (EVP_DigestSignInit_ex(ctx.get(), &pctx, DigestFor(key.type()), nullptr, nullptr, KeyAccess::Get(key),
                            nullptr) != 1) {
    return CryptoFailure("EVP_DigestSignInit_ex");
  }
  if (key.type() == KeyType::kRsa && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
    return CryptoFailure("EVP_PKEY_CTX_set_rsa_padding");
  }
  size_t size = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &size, Bytes(input), input.size()) != 1) {
    return CryptoFailure("EVP_DigestSign");
  }
  std::string signature(size, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &size, Bytes(input),
                     input.size()) != 1) {
    return CryptoFailure("EVP_DigestSign");
  }
  signature.resize(size);
  if (key.type() == KeyType::kEcP256) {
    auto raw = DerEcdsaToRaw(signature);
    if (!raw.ok()) return raw.status();
    signature = std::move(*raw);
  }
  return input + "." + Base64UrlEncode(signature);
}

Result<std::string> SignEd25519(const PrivateKey& key, std::string_view message) {
  ErrorQueueScope errors;
  if (key.type() != KeyType::kEd25519) {
    return InvalidArgument("an Ed25519 signature needs an Ed25519 key, but the key given is " +
                           std::string(KeyTypeName(key.type())));
  }
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) return CryptoFailure("EVP_MD_CTX_new");
  if (EVP_DigestSignInit_ex(ctx.get(), nullptr, nullptr, nullptr, nullptr, KeyAccess::Get(key), nullptr) != 1) {
    return CryptoFailure("EVP_DigestSignInit_ex");
  }
  size_t size = 64;
  std::string signature(size, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &size, Bytes(message),
                     message.size()) != 1 ||
      size != 64) {
    return CryptoFailure("EVP_DigestSign");
  }
  return signature;
}

}  // namespace backpack::protocol
