// Fuzzes JWS parsing, key import and verification.
//
// The whole input is tried as a compact JWS, a JWK and a PEM key. An input
// of the form  <compact JWS> "\n--\n" <JWK or PEM>  is also verified with
// that key, and a JWS carrying a "jwk" header is verified with it, so the
// signature paths are reached with keys that import. Besides not crashing,
// the parsed values must agree with the input they came from.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "protocol/encoding.h"
#include "protocol/jws.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using backpack::Result;
using backpack::protocol::Base64UrlEncode;
using backpack::protocol::Jws;
using backpack::protocol::PrivateKey;
using backpack::protocol::PublicKey;

using backpack::fuzz::Require;

// A parsed JWS re-encodes to exactly its input: strict base64url leaves one
// spelling per byte string.
void CheckParsed(const Jws& jws, std::string_view input) {
  Require(jws.compact() == input);
  const std::string_view signing_input = jws.signing_input();
  Require(signing_input.size() < input.size());
  Require(std::string(signing_input) + "." + Base64UrlEncode(jws.signature()) == input);
  const size_t dot = signing_input.find('.');
  Require(dot != std::string_view::npos);
  Require(signing_input.substr(dot + 1) == Base64UrlEncode(jws.payload()));
  Require(jws.header().is_object());
  Require(jws.header().at("alg") == jws.algorithm());
  Require(!jws.key_id() || jws.header().at("kid") == *jws.key_id());
}

// A key's canonical JWK imports again as the same key.
void CheckKey(const PublicKey& key) {
  auto again = PublicKey::FromJwk(key.ToJwk());
  Require(again.ok());
  Require(again->ToJwk() == key.ToJwk());
  Require(again->type() == key.type());
  Require(key.Thumbprint().size() == 43);
}

Result<PublicKey> ImportKey(std::string_view text) {
  auto jwk = PublicKey::FromJwk(text);
  if (jwk.ok()) return jwk;
  return PublicKey::FromPem(text);
}

void TryJws(std::string_view input, const PublicKey* key) {
  auto jws = Jws::Parse(input);
  if (!jws.ok()) return;
  CheckParsed(*jws, input);
  if (key != nullptr) Verify(*jws, *key).IgnoreError();
  if (jws->has_embedded_jwk()) {
    auto embedded = jws->EmbeddedJwk();
    if (embedded.ok()) {
      CheckKey(*embedded);
      Verify(*jws, *embedded).IgnoreError();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  TryJws(input, nullptr);
  auto key = ImportKey(input);
  if (key.ok()) CheckKey(*key);
  auto private_key = PrivateKey::FromPem(input);
  if (private_key.ok()) CheckKey(private_key->public_key());

  constexpr std::string_view kSeparator = "\n--\n";
  const size_t separator = input.find(kSeparator);
  if (separator != std::string_view::npos) {
    auto pair_key = ImportKey(input.substr(separator + kSeparator.size()));
    if (pair_key.ok()) TryJws(input.substr(0, separator), &*pair_key);
  }
  return 0;
}
