// Decentralised identifiers and the keys they name, as Open Badges 3.0
// credentials use them: did:key, did:jwk and did:web, Multikey
// (publicKeyMultibase), multibase base58btc, and the verification methods of
// a DID document or of any controller document (an issuer profile that lists
// its keys the same way).
//
// Pure: nothing here fetches. did:key and did:jwk carry their key inside the
// identifier and resolve locally; a did:web identifier maps to the URL of its
// DID document (DidWebDocumentUrl), which the caller fetches and hands back to
// FindAssertionMethod / AssertionMethods.
//
// Only Ed25519 keys are read from Multikey values (multicodec ed25519-pub,
// 0xed 0x01); JWKs may be RSA, EC P-256 or Ed25519 (protocol/jws.h). Every
// refusal is kInvalidArgument with a message naming what was wrong, except a
// verification method that a document does not list, which is kNotFound.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "base/status.h"
#include "protocol/jws.h"

namespace backpack::protocol {

inline constexpr size_t kMaxBase58Chars = 512;     // keys and signatures are far shorter
inline constexpr size_t kMaxDidChars = 4096;       // did:jwk carries a whole JWK
inline constexpr size_t kMaxVerificationMethods = 32;  // read per controller document

// Base58 with the Bitcoin alphabet (what multibase prefix 'z' means).
std::string Base58BtcEncode(std::string_view bytes);
// nullopt on a character outside the alphabet or more than kMaxBase58Chars.
std::optional<std::string> Base58BtcDecode(std::string_view text);

// A public key read from a Multikey value: 'z' + base58btc(multicodec
// varint + key bytes). Only ed25519-pub (0xed 0x01, 32 bytes) is accepted;
// other codecs are refused by name.
Result<PublicKey> PublicKeyFromMultikey(std::string_view multibase);
// The Multikey value ("z6Mk...") of an Ed25519 key; InvalidArgument for
// other key types.
Result<std::string> Ed25519Multikey(const PublicKey& key);
// The 32 raw bytes of an Ed25519 public key.
Result<std::string> Ed25519RawKey(const PublicKey& key);

// A DID URL: did:<method>:<method-specific id>[/path][?query][#fragment].
struct DidUrl {
  std::string did;       // "did:<method>:<id>", without path, query or fragment
  std::string method;    // "key", "web", "jwk", ...
  std::string id;        // the method-specific id
  std::string path;      // with its leading '/', or empty
  std::string query;     // without '?'
  std::string fragment;  // without '#'
};
// Checks the syntax (W3C DID Core): a lowercase method name, a method-specific
// id of [A-Za-z0-9._:-] and %XX escapes, not ending in ':'.
Result<DidUrl> ParseDidUrl(std::string_view text);

// Where a did:web identifier's DID document lives:
//   did:web:example.com                  -> https://example.com/.well-known/did.json
//   did:web:example.com%3A8443:user:alice -> https://example.com:8443/user/alice/did.json
// The host (with an optional percent-encoded port) must be a DNS name or an
// IPv4 address; path segments may not be empty, "." or "..". A DID URL's
// fragment is ignored; a path or query is refused.
Result<std::string> DidWebDocumentUrl(std::string_view did);

// A public key resolved from a verification method and the document (or
// identifier) that lists it under assertionMethod.
struct ResolvedKey {
  std::string id;          // the verification method's absolute id
  std::string controller;  // the DID or URL whose document lists it
  std::string type;        // "Multikey", "Ed25519VerificationKey2020", "JsonWebKey2020", ...
  PublicKey key;
};

// did:key:z6Mk... with no fragment or the fragment "#z6Mk..." (the key
// itself), resolved locally. The key is a Multikey (Ed25519 only).
Result<ResolvedKey> ResolveDidKey(std::string_view did_url);
// did:jwk:<base64url of a JWK> with no fragment or "#0", resolved locally.
// A JWK holding a private part ("d") is refused.
Result<ResolvedKey> ResolveDidJwk(std::string_view did_url);

// One verification method object: Multikey or Ed25519VerificationKey2020
// (publicKeyMultibase), Ed25519VerificationKey2018 (publicKeyBase58),
// JsonWebKey2020 or JsonWebKey (publicKeyJwk, never with "d"). `controller_id`
// is the id of the document it appears in: a relative id ("#key-1") is
// resolved against it, and a `controller` member must name it.
Result<ResolvedKey> VerificationMethodKey(const nlohmann::json& method, std::string_view controller_id);

// In a controller document (a DID document or an issuer profile whose `id`
// must be `controller_id`), the verification method `method_id` (absolute, or
// "#fragment") if the document lists it under assertionMethod, either
// embedded there or by reference to an entry of verificationMethod.
// NotFound when it is not listed for assertions.
Result<ResolvedKey> FindAssertionMethod(const nlohmann::json& document, std::string_view controller_id,
                                        std::string_view method_id);
// Every usable key the document lists under assertionMethod (at most
// kMaxVerificationMethods entries are read). Unusable entries are skipped;
// InvalidArgument when the document's id is not `controller_id`.
Result<std::vector<ResolvedKey>> AssertionMethods(const nlohmann::json& document, std::string_view controller_id);

}  // namespace backpack::protocol
