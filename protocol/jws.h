// JOSE compact signatures (JWS, RFC 7515) and the public keys that check them.
//
// Used by Open Badges 1.x/2.0 signed assertions (RS256 with the issuer's key
// published as PEM or JWK) and by Open Badges 3.0 VC-JWT (RS256, ES256 or
// EdDSA with a JWK). Only public-key signatures are accepted: "none" and the
// HMAC algorithms are always refused, so a public key can never be mistaken
// for a shared secret. Each key type has exactly one algorithm, and a JWS is
// checked only with the algorithm its key type allows, whatever the header
// claims.
//
// Every refusal is a Status with code kInvalidArgument and a message saying
// what was wrong; kInternal means the crypto library failed (out of memory).
// Nothing here fetches keys: the caller decides which key speaks for an
// issuer, and a key carried inside a token ("jwk" header) proves nothing
// until the caller ties it to that issuer.
//
// Thread safety: every type is an immutable value once built; PublicKey and
// PrivateKey share their key material between copies and may be used from
// several threads at once.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json_fwd.hpp>

#include "base/status.h"

namespace backpack::protocol {

struct KeyAccess;  // jws.cc's way into the key classes

inline constexpr size_t kMaxJwsBytes = 1 << 20;          // whole compact form
inline constexpr size_t kMaxJwsHeaderBytes = 8 * 1024;   // decoded header JSON
inline constexpr size_t kMaxKeyDocumentBytes = 64 * 1024;  // a PEM or JWK text
inline constexpr int kMinRsaBits = 2048;
inline constexpr int kMaxRsaBits = 16384;  // bounds the cost of one check

// The key types a signature may be checked with; each has one algorithm:
// kRsa RS256 (RSASSA-PKCS1-v1_5 with SHA-256), kEcP256 ES256 (ECDSA P-256
// with SHA-256, signature as raw r||s), kEd25519 EdDSA.
enum class KeyType { kRsa, kEcP256, kEd25519 };

std::string_view KeyTypeName(KeyType type);         // "RSA", "EC P-256", "Ed25519"
std::string_view AlgorithmForKeyType(KeyType type);  // "RS256", "ES256", "EdDSA"

// A public key able to check signatures. Always valid once built: RSA keys
// have 2048..16384 bits and an odd exponent above 1 of at most 64 bits; EC
// keys are points on P-256.
class PublicKey {
 public:
  // A PEM "PUBLIC KEY" (SubjectPublicKeyInfo) or "RSA PUBLIC KEY" (PKCS#1)
  // block; text before the block is skipped. Private-key PEMs are refused.
  static Result<PublicKey> FromPem(std::string_view pem);
  // A JWK (RFC 7517) as JSON text or as a parsed object: kty "RSA" (n, e),
  // "EC" with crv "P-256" (x, y), or "OKP" with crv "Ed25519" (x). Private
  // members such as "d" are ignored, never required. "use", when present,
  // must be "sig", and "alg", when present, must be the key type's algorithm.
  static Result<PublicKey> FromJwk(std::string_view jwk_json);
  static Result<PublicKey> FromJwkObject(const nlohmann::json& jwk);
  // An Ed25519 key from its 32 raw bytes (RFC 8032), as did:key and Multikey
  // carry it.
  static Result<PublicKey> FromEd25519Raw(std::string_view raw);

  KeyType type() const;
  int bits() const;  // RSA modulus size; 256 for P-256 and Ed25519

  // The public JWK in RFC 7638 canonical form: required members only, in
  // lexicographic order, no whitespace, e.g. {"crv":"P-256","kty":"EC",...}.
  const std::string& ToJwk() const;
  // RFC 7638 thumbprint: base64url (no padding) of SHA-256 of ToJwk().
  std::string Thumbprint() const;
  // SubjectPublicKeyInfo as a PEM "PUBLIC KEY" block.
  std::string ToPem() const;

  struct Impl;  // opaque: the OpenSSL key and its JWK form (jws.cc)

 private:
  friend struct KeyAccess;
  explicit PublicKey(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

  std::shared_ptr<const Impl> impl_;
};

// RFC 7638 thumbprint of a JWK given as JSON text (the key must be one
// FromJwk accepts).
Result<std::string> JwkThumbprint(std::string_view jwk_json);

// A parsed compact JWS: BASE64URL(header) '.' BASE64URL(payload) '.'
// BASE64URL(signature). Parsing checks the form, not the signature.
class Jws {
 public:
  // Refuses: more than kMaxJwsBytes; other than three parts; characters
  // outside the base64url alphabet (including '=' padding and whitespace);
  // a header that is not a JSON object of at most kMaxJwsHeaderBytes, or
  // repeats a member name; a missing or non-string "alg"; "b64": false
  // (RFC 7797 unencoded payloads); a "crit" list naming anything this code
  // does not implement. The payload may be empty; detached content
  // (RFC 7515 appendix F) is not supported.
  static Result<Jws> Parse(std::string_view compact);

  const std::string& algorithm() const { return algorithm_; }  // "alg"
  const std::optional<std::string>& key_id() const { return key_id_; }  // "kid"
  const std::optional<std::string>& type() const { return type_; }  // "typ"
  const nlohmann::json& header() const { return *header_; }
  bool has_embedded_jwk() const { return has_embedded_jwk_; }
  // The key in the "jwk" header member; NotFound when there is none.
  Result<PublicKey> EmbeddedJwk() const;

  const std::string& payload() const { return payload_; }      // decoded bytes
  const std::string& signature() const { return signature_; }  // decoded bytes
  // ASCII(BASE64URL(header)) '.' ASCII(BASE64URL(payload)), exactly as received.
  std::string_view signing_input() const {
    return std::string_view(compact_).substr(0, signing_input_size_);
  }
  const std::string& compact() const { return compact_; }

 private:
  Jws() = default;

  std::string compact_;
  size_t signing_input_size_ = 0;
  std::shared_ptr<const nlohmann::json> header_;
  std::string algorithm_;
  std::optional<std::string> key_id_;
  std::optional<std::string> type_;
  bool has_embedded_jwk_ = false;
  std::string payload_;
  std::string signature_;
};

// Checks the signature of `jws` with `key`. The header's "alg" must be the
// algorithm of the key's type ("Ed25519" is accepted as well as "EdDSA" for
// Ed25519 keys); "none", HS*, PS*, other algorithms and any alg/key mismatch
// are refused with distinct messages. ES256 signatures must be the 64-byte
// JOSE form (r||s), not DER.
Status Verify(const Jws& jws, const PublicKey& key);

// A bare Ed25519 signature (RFC 8032, 64 bytes) of `message`, outside any
// JWS, as Data Integrity proofs carry it. InvalidArgument when the key is
// not Ed25519, the signature is not 64 bytes, or it does not verify.
Status VerifyEd25519(const PublicKey& key, std::string_view message, std::string_view signature);

// A private key for signing (the node's own issuer key, and tests).
class PrivateKey {
 public:
  // An unencrypted PEM: "PRIVATE KEY" (PKCS#8), "RSA PRIVATE KEY" or
  // "EC PRIVATE KEY". The same key rules as PublicKey apply.
  static Result<PrivateKey> FromPem(std::string_view pem);
  // A fresh key from OpenSSL's random generator (unlike the rest of
  // protocol/, which takes randomness as a parameter). `rsa_bits` is used
  // only for kRsa and must lie in kMinRsaBits..kMaxRsaBits.
  static Result<PrivateKey> Generate(KeyType type, int rsa_bits = 2048);

  KeyType type() const { return public_key_.type(); }
  const PublicKey& public_key() const { return public_key_; }
  // Unencrypted PKCS#8 "PRIVATE KEY" PEM, for storing a generated key.
  std::string ToPem() const;

  struct Impl;  // opaque: the OpenSSL key (jws.cc)

 private:
  friend struct KeyAccess;
  PrivateKey(std::shared_ptr<const Impl> impl, PublicKey public_key)
      : impl_(std::move(impl)), public_key_(std::move(public_key)) {}

  std::shared_ptr<const Impl> impl_;
  PublicKey public_key_;
};

// Extra protected-header members for Sign. "alg" always comes from the key.
struct JwsHeaderFields {
  std::string key_id;             // "kid", when not empty
  std::string type;               // "typ", when not empty (e.g. "JWT")
  bool embed_public_jwk = false;  // "jwk": the signer's public key
};

// Signs `payload` and returns the compact JWS. RS256 and EdDSA signatures are
// deterministic; ES256 draws a nonce from OpenSSL's random generator.
Result<std::string> Sign(const PrivateKey& key, std::string_view payload,
                         const JwsHeaderFields& fields = {});

// The bare 64-byte Ed25519 signature of `message` (deterministic).
// InvalidArgument when the key is not Ed25519.
Result<std::string> SignEd25519(const PrivateKey& key, std::string_view message);

}  // namespace backpack::protocol
