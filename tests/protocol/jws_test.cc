#include "protocol/jws.h"

#include <gtest/gtest.h>

#include "tests/support/vectors.h"
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "protocol/encoding.h"

namespace backpack::protocol {
namespace {

using nlohmann::json;

// ---------------------------------------------------------------------------
// Helpers: keys made and used with OpenSSL directly, independently of the
// code under test.

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

PkeyPtr GenerateRaw(KeyType type, int rsa_bits = 2048) {
  switch (type) {
    case KeyType::kRsa:
      return PkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(rsa_bits)));
    case KeyType::kEcP256:
      return PkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    case KeyType::kEd25519:
      return PkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  }
  return nullptr;
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(size));
}

std::string PublicPem(EVP_PKEY* pkey) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  EXPECT_EQ(PEM_write_bio_PUBKEY(bio.get(), pkey), 1);
  return BioText(bio.get());
}

std::string PrivatePem(EVP_PKEY* pkey) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  EXPECT_EQ(PEM_write_bio_PrivateKey(bio.get(), pkey, nullptr, nullptr, 0, nullptr, nullptr), 1);
  return BioText(bio.get());
}

// PKCS#1 RSAPublicKey, PEM label "RSA PUBLIC KEY".
std::string RsaPkcs1PublicPem(EVP_PKEY* pkey) {
  unsigned char* der = nullptr;
  const int size = i2d_PublicKey(pkey, &der);
  EXPECT_GT(size, 0);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  EXPECT_GT(PEM_write_bio(bio.get(), "RSA PUBLIC KEY", "", der, size), 0);
  OPENSSL_free(der);
  return BioText(bio.get());
}

// Signs with OpenSSL's own output format (DER for ECDSA).
std::string OpensslSign(EVP_PKEY* pkey, const char* digest, std::string_view input) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EXPECT_EQ(EVP_DigestSignInit_ex(ctx.get(), nullptr, digest, nullptr, nullptr, pkey, nullptr), 1);
  size_t size = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(input.data());
  EXPECT_EQ(EVP_DigestSign(ctx.get(), nullptr, &size, in, input.size()), 1);
  std::string sig(size, '\0');
  EXPECT_EQ(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &size, in, input.size()), 1);
  sig.resize(size);
  return sig;
}

std::string B64(std::string_view bytes) { return Base64UrlEncode(bytes); }

std::string Compact(std::string_view header_json, std::string_view payload, std::string_view signature) {
  return B64(header_json) + "." + B64(payload) + "." + B64(signature);
}

PublicKey MustPublicPem(const std::string& pem) {
  auto key = PublicKey::FromPem(pem);
  EXPECT_TRUE(key.ok()) << key.status().ToString();
  return std::move(key).value();
}

PublicKey MustJwk(std::string_view jwk) {
  auto key = PublicKey::FromJwk(jwk);
  EXPECT_TRUE(key.ok()) << key.status().ToString();
  return std::move(key).value();
}

Jws MustParse(std::string_view compact) {
  auto jws = Jws::Parse(compact);
  EXPECT_TRUE(jws.ok()) << jws.status().ToString();
  return std::move(jws).value();
}

::testing::AssertionResult Refused(const Status& status, std::string_view words) {
  if (status.ok()) return ::testing::AssertionFailure() << "accepted; expected a refusal saying: " << words;
  if (status.code() != StatusCode::kInvalidArgument) {
    return ::testing::AssertionFailure() << "wrong code: " << status.ToString();
  }
  if (status.message().find(words) == std::string::npos) {
    return ::testing::AssertionFailure() << "message \"" << status.message() << "\" lacks \"" << words << "\"";
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult ParseRefused(std::string_view compact, std::string_view words) {
  return Refused(Jws::Parse(compact).status(), words);
}

constexpr std::string_view kClaims = R"({"iss":"https://issuer.example","sub":"mailto:ada@example.org"})";

// ---------------------------------------------------------------------------
// Round trips for each algorithm.

class JwsRoundTrip : public ::testing::TestWithParam<KeyType> {};

TEST_P(JwsRoundTrip, SignsAndVerifies) {
  const KeyType type = GetParam();
  PkeyPtr raw = GenerateRaw(type);
  ASSERT_TRUE(raw);
  auto signer = PrivateKey::FromPem(PrivatePem(raw.get()));
  ASSERT_TRUE(signer.ok()) << signer.status().ToString();
  EXPECT_EQ(signer->type(), type);

  JwsHeaderFields fields;
  fields.key_id = "key-1";
  fields.type = "JWT";
  auto compact = Sign(*signer, kClaims, fields);
  ASSERT_TRUE(compact.ok()) << compact.status().ToString();
  Jws jws = MustParse(*compact);
  EXPECT_EQ(jws.algorithm(), AlgorithmForKeyType(type));
  EXPECT_EQ(jws.key_id(), "key-1");
  EXPECT_EQ(jws.type(), "JWT");
  EXPECT_FALSE(jws.has_embedded_jwk());
  EXPECT_EQ(jws.payload(), kClaims);
  EXPECT_EQ(jws.signing_input(), compact->substr(0, compact->rfind('.')));

  const PublicKey from_pem = MustPublicPem(PublicPem(raw.get()));
  EXPECT_EQ(from_pem.type(), type);
  EXPECT_TRUE(Verify(jws, from_pem).ok()) << Verify(jws, from_pem).ToString();
  const PublicKey from_jwk = MustJwk(from_pem.ToJwk());
  EXPECT_TRUE(Verify(jws, from_jwk).ok());
  EXPECT_EQ(from_jwk.Thumbprint(), from_pem.Thumbprint());
  EXPECT_EQ(signer->public_key().ToJwk(), from_pem.ToJwk());
  // A fresh key of the same type must not verify it.
  PkeyPtr other = GenerateRaw(type);
  EXPECT_TRUE(Refused(Verify(jws, MustPublicPem(PublicPem(other.get()))), "does not verify"));
}

TEST_P(JwsRoundTrip, GeneratedKeyWithEmbeddedJwk) {
  auto signer = PrivateKey::Generate(GetParam());
  ASSERT_TRUE(signer.ok()) << signer.status().ToString();
  JwsHeaderFields fields;
  fields.embed_public_jwk = true;
  auto compact = Sign(*signer, "", fields);
  ASSERT_TRUE(compact.ok());
  Jws jws = MustParse(*compact);
  EXPECT_EQ(jws.payload(), "");
  ASSERT_TRUE(jws.has_embedded_jwk());
  auto embedded = jws.EmbeddedJwk();
  ASSERT_TRUE(embedded.ok()) << embedded.status().ToString();
  EXPECT_EQ(embedded->Thumbprint(), signer->public_key().Thumbprint());
  EXPECT_TRUE(Verify(jws, *embedded).ok());

  // The stored PEM forms read back as the same key.
  auto again = PrivateKey::FromPem(signer->ToPem());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->public_key().ToJwk(), signer->public_key().ToJwk());
  EXPECT_EQ(MustPublicPem(signer->public_key().ToPem()).ToJwk(), signer->public_key().ToJwk());
}

TEST_P(JwsRoundTrip, TamperingIsDetected) {
  auto signer = PrivateKey::Generate(GetParam());
  ASSERT_TRUE(signer.ok());
  const PublicKey& key = signer->public_key();
  JwsHeaderFields fields;
  fields.key_id = "k";
  auto compact = Sign(*signer, kClaims, fields);
  ASSERT_TRUE(compact.ok());
  const Jws original = MustParse(*compact);
  ASSERT_TRUE(Verify(original, key).ok());
  const std::string header = original.compact().substr(0, original.compact().find('.'));
  const std::string signature = original.compact().substr(original.compact().rfind('.') + 1);

  // Payload changed, header and signature kept.
  std::string claims(kClaims);
  claims[10] ^= 1;
  EXPECT_TRUE(Refused(Verify(MustParse(header + "." + B64(claims) + "." + signature), key), "does not verify"));
  // Header changed (another kid), same alg.
  const std::string other_header = B64(R"({"alg":")" + std::string(AlgorithmForKeyType(key.type())) +
                                       R"(","kid":"j"})");
  EXPECT_TRUE(Refused(Verify(MustParse(other_header + "." + B64(kClaims) + "." + signature), key),
                      "does not verify"));
  // One bit of the signature flipped, in the first and in the last byte.
  for (size_t index : {size_t{0}, original.signature().size() - 1}) {
    std::string sig = original.signature();
    sig[index] ^= 0x01;
    EXPECT_TRUE(Refused(Verify(MustParse(header + "." + B64(kClaims) + "." + B64(sig)), key), "does not verify"));
  }
  // A signature cut short or grown is refused by length before any check.
  std::string shorter = original.signature();
  shorter.pop_back();
  EXPECT_TRUE(Refused(Verify(MustParse(header + "." + B64(kClaims) + "." + B64(shorter)), key), "bytes"));
}

INSTANTIATE_TEST_SUITE_P(AllAlgorithms, JwsRoundTrip,
                         ::testing::Values(KeyType::kRsa, KeyType::kEcP256, KeyType::kEd25519),
                         [](const auto& info) { return std::string(AlgorithmForKeyType(info.param)); });

// ---------------------------------------------------------------------------
// Algorithm attacks and mismatches.

TEST(JwsAlgorithms, NoneIsRefused) {
  // With an empty signature part, as "none" tokens are sent.
  EXPECT_TRUE(ParseRefused(B64(R"({"alg":"none"})") + "." + B64(kClaims) + ".", "signature is empty"));
  // With some signature bytes appended, the verifier still refuses by alg.
  PkeyPtr rsa = GenerateRaw(KeyType::kRsa);
  const Jws jws = MustParse(Compact(R"({"alg":"none"})", kClaims, std::string(256, 'x')));
  EXPECT_TRUE(Refused(Verify(jws, MustPublicPem(PublicPem(rsa.get()))), "\"none\""));
  EXPECT_TRUE(Refused(Verify(MustParse(Compact(R"({"alg":"NONE"})", kClaims, "x")),
                             MustPublicPem(PublicPem(rsa.get()))),
                      "unsigned"));
}

// The classic key-confusion attack: the attacker signs with HMAC, using the
// issuer's published RSA public key (its PEM text) as the shared secret.
TEST(JwsAlgorithms, HmacWithThePublicKeyAsSecretIsRefused) {
  PkeyPtr rsa = GenerateRaw(KeyType::kRsa);
  const std::string pem = PublicPem(rsa.get());
  const PublicKey key = MustPublicPem(pem);
  for (const char* alg : {"HS256", "HS384", "HS512"}) {
    const std::string input = B64(std::string(R"({"alg":")") + alg + R"(","typ":"JWT"})") + "." + B64(kClaims);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    ASSERT_NE(HMAC(EVP_sha256(), pem.data(), static_cast<int>(pem.size()),
                   reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &mac_len),
              nullptr);
    const Jws forged = MustParse(input + "." + B64(std::string(reinterpret_cast<char*>(mac), mac_len)));
    EXPECT_TRUE(Refused(Verify(forged, key), "HMAC")) << alg;
  }
}

TEST(JwsAlgorithms, Es256WithDerSignatureIsRefused) {
  PkeyPtr ec = GenerateRaw(KeyType::kEcP256);
  const std::string input = B64(R"({"alg":"ES256"})") + "." + B64(kClaims);
  const std::string der = OpensslSign(ec.get(), "SHA256", input);
  ASSERT_NE(der.size(), 64u);  // DER is 70..72 bytes
  const Jws jws = MustParse(input + "." + B64(der));
  EXPECT_TRUE(Refused(Verify(jws, MustPublicPem(PublicPem(ec.get()))), "not DER"));
}

TEST(JwsAlgorithms, AlgorithmMustMatchTheKeyType) {
  PkeyPtr rsa = GenerateRaw(KeyType::kRsa);
  PkeyPtr ec = GenerateRaw(KeyType::kEcP256);
  PkeyPtr ed = GenerateRaw(KeyType::kEd25519);
  const PublicKey rsa_key = MustPublicPem(PublicPem(rsa.get()));
  const PublicKey ec_key = MustPublicPem(PublicPem(ec.get()));
  const PublicKey ed_key = MustPublicPem(PublicPem(ed.get()));

  // A genuine RS256 signature, checked against an EC key: refused on the
  // mismatch, not merely failing.
  const std::string rs_input = B64(R"({"alg":"RS256"})") + "." + B64(kClaims);
  const Jws rs256 = MustParse(rs_input + "." + B64(OpensslSign(rsa.get(), "SHA256", rs_input)));
  ASSERT_TRUE(Verify(rs256, rsa_key).ok());
  EXPECT_TRUE(Refused(Verify(rs256, ec_key), "needs an RSA key, but the key given is EC P-256"));
  EXPECT_TRUE(Refused(Verify(rs256, ed_key), "needs an RSA key, but the key given is Ed25519"));

  const Jws es256 = MustParse(Compact(R"({"alg":"ES256"})", kClaims, std::string(64, '\1')));
  EXPECT_TRUE(Refused(Verify(es256, rsa_key), "needs an EC P-256 key, but the key given is RSA"));
  const Jws eddsa = MustParse(Compact(R"({"alg":"EdDSA"})", kClaims, std::string(64, '\1')));
  EXPECT_TRUE(Refused(Verify(eddsa, ec_key), "needs an Ed25519 key, but the key given is EC P-256"));
}

TEST(JwsAlgorithms, UnsupportedAndUnknownAlgorithmsHaveTheirOwnMessages) {
  PkeyPtr rsa = GenerateRaw(KeyType::kRsa);
  const PublicKey key = MustPublicPem(PublicPem(rsa.get()));
  auto verify_alg = [&](std::string_view alg) {
    return Verify(MustParse(Compact(json{{"alg", alg}}.dump(), kClaims, std::string(256, '\2'))), key);
  };
  EXPECT_TRUE(Refused(verify_alg("PS256"), "RSASSA-PSS"));
  EXPECT_TRUE(Refused(verify_alg("PS512"), "RSASSA-PSS"));
  EXPECT_TRUE(Refused(verify_alg("RS512"), "not supported"));
  EXPECT_TRUE(Refused(verify_alg("ES384"), "not supported"));
  EXPECT_TRUE(Refused(verify_alg("rs256"), "unknown"));
  EXPECT_TRUE(Refused(verify_alg("XYZ\n"), "\"XYZ\\x0a\""));  // quoted safely
  EXPECT_TRUE(Refused(verify_alg(std::string(500, 'A')), "..."));
  // "alg" must be a string at all.
  EXPECT_TRUE(ParseRefused(Compact(R"({"alg":256})", kClaims, "s"), "\"alg\" is not a string"));
  EXPECT_TRUE(ParseRefused(Compact(R"({"typ":"JWT"})", kClaims, "s"), "has no \"alg\""));
}

// ---------------------------------------------------------------------------
// Malformed compact serializations.

TEST(JwsParse, RefusesMalformedInput) {
  const std::string good = Compact(R"({"alg":"RS256"})", kClaims, "sig");
  ASSERT_TRUE(Jws::Parse(good).ok());
  EXPECT_TRUE(ParseRefused("", "empty"));
  EXPECT_TRUE(ParseRefused(B64(R"({"alg":"RS256"})") + "." + B64(kClaims), "has 2 parts"));
  EXPECT_TRUE(ParseRefused(good + ".extra", "has 4 parts"));
  EXPECT_TRUE(ParseRefused(good + "..", "has 5 parts"));
  EXPECT_TRUE(ParseRefused("." + B64(kClaims) + ".c2ln", "header is empty"));
  // Standard base64 characters, padding and whitespace are not base64url.
  EXPECT_TRUE(ParseRefused(good + "+", "outside the base64url alphabet"));
  EXPECT_TRUE(ParseRefused(good + "/", "outside the base64url alphabet"));
  EXPECT_TRUE(ParseRefused(good + "\n", "outside the base64url alphabet"));
  EXPECT_TRUE(ParseRefused(" " + good, "outside the base64url alphabet"));
  EXPECT_TRUE(ParseRefused(B64(R"({"alg":"RS256"})") + "." + B64("ab") + "=." + B64("sig"), "padding"));
  EXPECT_TRUE(ParseRefused(good + "=", "padding"));
  // Impossible lengths and non-zero trailing bits.
  EXPECT_TRUE(ParseRefused(good + "A", "not valid base64url"));   // 4n+1 characters
  EXPECT_TRUE(ParseRefused(B64(R"({"alg":"RS256"})") + "." + B64(kClaims) + ".Zh", "not valid base64url"));
}

TEST(JwsParse, RefusesBadHeaders) {
  EXPECT_TRUE(ParseRefused(Compact("{\"alg\":\"RS256\"", kClaims, "s"), "header is not valid JSON"));
  EXPECT_TRUE(ParseRefused(Compact("not json", kClaims, "s"), "header is not valid JSON"));
  EXPECT_TRUE(ParseRefused(Compact(R"(["alg","RS256"])", kClaims, "s"), "header is not a JSON object"));
  EXPECT_TRUE(ParseRefused(Compact(R"("RS256")", kClaims, "s"), "header is not a JSON object"));
  EXPECT_TRUE(ParseRefused(Compact(std::string("{\"alg\":\"RS256\"}\0", 16), kClaims, "s"), "not valid JSON"));
  EXPECT_TRUE(ParseRefused(Compact("{\"alg\":\"\xff\"}", kClaims, "s"), "not valid JSON"));  // bad UTF-8
  // A repeated member: one reader might take the first, another the last.
  EXPECT_TRUE(ParseRefused(Compact(R"({"alg":"RS256","alg":"none"})", kClaims, "s"), "repeats the member \"alg\""));
  EXPECT_TRUE(ParseRefused(Compact(R"({"alg":"RS256","\u0061lg":"none"})", kClaims, "s"), "repeats"));
  EXPECT_TRUE(ParseRefused(Compact(R"({"alg":"EdDSA","jwk":{"x":"a","x":"b"}})", kClaims, "s"), "repeats"));
  // Same name in two different objects is fine.
  EXPECT_TRUE(Jws::Parse(Compact(R"({"alg":"EdDSA","x":1,"jwk":{"x":"a"}})", kClaims, "s")).ok());
  EXPECT_TRUE(ParseRefused(Compact(R"({"alg":"RS256","kid":7})", kClaims, "s"), "\"kid\" is not a string"));
  EXPECT_TRUE(ParseRefused(Compact(R"({"alg":"RS256","jwk":"k"})", kClaims, "s"), "\"jwk\" is not a JSON object"));
  std::string deep = R"({"alg":"RS256","x":)" + std::string(40, '[') + std::string(40, ']') + "}";
  EXPECT_TRUE(ParseRefused(Compact(deep, kClaims, "s"), "nests deeper"));
}

TEST(JwsParse, CritAndB64) {
  EXPECT_TRUE(ParseRefused(Compact(R"({"alg":"RS256","crit":["exp"],"exp":1})", kClaims, "s"),
                           "\"exp\", an extension this verifier does not implement"));
  EXPECT_TRUE(ParseRefused(Compact(R"({"alg":"RS256","crit":["x"]})", kClaims, "s"), "does not contain"));
  EXPECT_TRUE(ParseRefused(Compact(R"({"alg":"RS256","crit":["alg"]})", kClaims, "s"), "standard parameter"));
  EXPECT_TRUE(ParseRefused(Compact(R"({"alg":"RS256","crit":[]})", kClaims, "s"), "non-empty array"));
  EXPECT_TRUE(ParseRefused(Compact(R"({"alg":"RS256","crit":"b64","b64":true})", kClaims, "s"), "non-empty array"));
  EXPECT_TRUE(ParseRefused(Compact(R"({"alg":"RS256","crit":[1]})", kClaims, "s"), "not a string"));
  EXPECT_TRUE(ParseRefused(Compact(R"({"alg":"RS256","crit":["b64","b64"],"b64":true})", kClaims, "s"),
                           "repeats \"b64\""));
  EXPECT_TRUE(ParseRefused(Compact(R"({"alg":"RS256","b64":false,"crit":["b64"]})", kClaims, "s"),
                           "\"b64\": false"));
  EXPECT_TRUE(ParseRefused(Compact(R"({"alg":"RS256","b64":false})", kClaims, "s"), "\"b64\": false"));
  // As RFC 7797 sends it: the payload as raw text, not base64url.
  EXPECT_TRUE(ParseRefused(B64(R"({"alg":"RS256","b64":false,"crit":["b64"]})") + ".$hello world!." + B64("s"),
                           "\"b64\": false"));
  EXPECT_TRUE(ParseRefused(Compact(R"({"alg":"RS256","b64":"no"})", kClaims, "s"), "not a boolean"));
  // b64 with its default value is understood.
  EXPECT_TRUE(Jws::Parse(Compact(R"({"alg":"RS256","b64":true,"crit":["b64"]})", kClaims, "s")).ok());
  // Unknown non-critical members are ignored, as RFC 7515 requires.
  EXPECT_TRUE(Jws::Parse(Compact(R"({"alg":"RS256","x-custom":{"a":[1,2]}})", kClaims, "s")).ok());
}

TEST(JwsParse, SizeLimits) {
  const std::string header = B64(R"({"alg":"RS256"})");
  // Over 1 MiB in all.
  std::string huge = header + "." + std::string(kMaxJwsBytes, 'A') + ".c2ln";
  EXPECT_TRUE(ParseRefused(huge, "at most 1048576"));
  // Just under the limit is parsed.
  const size_t room = kMaxJwsBytes - header.size() - 6;
  EXPECT_TRUE(Jws::Parse(header + "." + std::string(room - room % 4, 'A') + ".c2ln").ok());
  // A header over 8 KiB.
  const std::string big_header = R"({"alg":"RS256","pad":")" + std::string(kMaxJwsHeaderBytes, 'p') + "\"}";
  EXPECT_TRUE(ParseRefused(Compact(big_header, kClaims, "s"), "header is larger than 8192"));
  // The payload is kept byte for byte, including bytes that are not text.
  const std::string binary("\x00\xff{\r\n", 5);
  EXPECT_EQ(MustParse(Compact(R"({"alg":"RS256"})", binary, "s")).payload(), binary);
}

// ---------------------------------------------------------------------------
// Keys.

TEST(JwsKeys, SmallRsaKeysAreRefused) {
  PkeyPtr small = GenerateRaw(KeyType::kRsa, 1024);
  ASSERT_TRUE(small);
  EXPECT_TRUE(Refused(PublicKey::FromPem(PublicPem(small.get())).status(), "1024 bits; at least 2048"));
  EXPECT_TRUE(Refused(PrivateKey::FromPem(PrivatePem(small.get())).status(), "at least 2048"));
  EXPECT_TRUE(Refused(PublicKey::FromPem(RsaPkcs1PublicPem(small.get())).status(), "at least 2048"));
  EXPECT_TRUE(Refused(PrivateKey::Generate(KeyType::kRsa, 1024).status(), "2048"));
  // The same key as a JWK.
  PkeyPtr big = GenerateRaw(KeyType::kRsa);
  json jwk = json::parse(MustPublicPem(PublicPem(big.get())).ToJwk());
  std::string n = *Base64UrlDecode(jwk["n"].get<std::string>());
  jwk["n"] = B64(n.substr(0, 128));
  EXPECT_TRUE(Refused(PublicKey::FromJwk(jwk.dump()).status(), "at least 2048"));
}

TEST(JwsKeys, RsaPublicKeyPemForms) {
  PkeyPtr rsa = GenerateRaw(KeyType::kRsa);
  const PublicKey spki = MustPublicPem(PublicPem(rsa.get()));
  const PublicKey pkcs1 = MustPublicPem(RsaPkcs1PublicPem(rsa.get()));
  EXPECT_EQ(spki.type(), KeyType::kRsa);
  EXPECT_EQ(spki.bits(), 2048);
  EXPECT_EQ(pkcs1.ToJwk(), spki.ToJwk());
  // Windows line endings and text before the block, as key files carry.
  std::string crlf;
  for (char c : PublicPem(rsa.get())) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  EXPECT_EQ(MustPublicPem("Issuer key:\n" + crlf).ToJwk(), spki.ToJwk());
}

TEST(JwsKeys, PemMistakesAreRefused) {
  PkeyPtr rsa = GenerateRaw(KeyType::kRsa);
  EXPECT_TRUE(Refused(PublicKey::FromPem(PrivatePem(rsa.get())).status(), "holds a private key"));
  EXPECT_TRUE(Refused(PublicKey::FromPem("").status(), "no PEM block"));
  EXPECT_TRUE(Refused(PublicKey::FromPem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").status(),
                      "does not hold a decodable public key"));
  EXPECT_TRUE(Refused(PublicKey::FromPem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").status(),
                      "is not a public key"));
  EXPECT_TRUE(Refused(PrivateKey::FromPem(PublicPem(rsa.get())).status(), "is not a private key"));
  EXPECT_TRUE(Refused(PublicKey::FromPem(std::string(kMaxKeyDocumentBytes + 1, ' ')).status(), "larger than"));
  // Bytes after the DER inside the block.
  unsigned char* spki = nullptr;
  const int spki_size = i2d_PUBKEY(rsa.get(), &spki);
  ASSERT_GT(spki_size, 0);
  std::string der(reinterpret_cast<const char*>(spki), static_cast<size_t>(spki_size));
  OPENSSL_free(spki);
  der += "junk";
  std::unique_ptr<BIO, decltype(&BIO_free)> out(BIO_new(BIO_s_mem()), BIO_free);
  ASSERT_GT(PEM_write_bio(out.get(), "PUBLIC KEY", "", reinterpret_cast<const unsigned char*>(der.data()),
                          static_cast<long>(der.size())),
            0);
  EXPECT_TRUE(Refused(PublicKey::FromPem(BioText(out.get())).status(), "bytes after the key"));
}

TEST(JwsKeys, JwkRules) {
  // RFC 7515 A.3's key, with its private "d": d is ignored, not refused.
  const std::string ec_private = R"({"kty":"EC","crv":"P-256",
      "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
      "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
      "d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI","use":"sig","alg":"ES256","kid":"a3"})";
  const PublicKey ec = MustJwk(ec_private);
  EXPECT_EQ(ec.type(), KeyType::kEcP256);
  EXPECT_EQ(ec.bits(), 256);
  EXPECT_EQ(ec.ToJwk(),
            R"({"crv":"P-256","kty":"EC","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",)"
            R"("y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})");

  json base = json::parse(ec_private);
  auto with = [&](const char* member, json value) {
    json j = base;
    if (value.is_null()) {
      j.erase(member);
    } else {
      j[member] = std::move(value);
    }
    return PublicKey::FromJwk(j.dump()).status();
  };
  // A point off the curve: y changed by one bit.
  std::string y = *Base64UrlDecode(base["y"].get<std::string>());
  y[31] ^= 1;
  EXPECT_TRUE(Refused(with("y", B64(y)), "not on the P-256 curve"));
  EXPECT_TRUE(Refused(with("x", B64(std::string(31, 'a'))), "32 bytes"));
  EXPECT_TRUE(Refused(with("y", nullptr), "has no \"y\""));
  EXPECT_TRUE(Refused(with("y", 5), "\"y\" is not a string"));
  EXPECT_TRUE(Refused(with("x", base["x"].get<std::string>() + "="), "padding"));
  EXPECT_TRUE(Refused(with("crv", "P-384"), "\"P-384\" is not supported"));
  EXPECT_TRUE(Refused(with("crv", "secp256k1"), "not supported"));
  EXPECT_TRUE(Refused(with("use", "enc"), "\"use\" is \"enc\""));
  EXPECT_TRUE(Refused(with("alg", "RS256"), "\"alg\" is \"RS256\" but a EC P-256 key signs with ES256"));
  EXPECT_TRUE(Refused(with("kty", "oct"), "symmetric"));
  EXPECT_TRUE(Refused(with("kty", "DSA"), "not supported"));
  EXPECT_TRUE(Refused(with("kty", nullptr), "has no \"kty\""));
  EXPECT_TRUE(Refused(PublicKey::FromJwk(R"({"kty":"OKP","crv":"X25519","x":"AAAA"})").status(), "key agreement"));
  EXPECT_TRUE(Refused(PublicKey::FromJwk(R"({"kty":"OKP","crv":"Ed448","x":"AAAA"})").status(), "not supported"));
  EXPECT_TRUE(Refused(PublicKey::FromJwk(R"({"kty":"OKP","crv":"Ed25519","x":"AAAA"})").status(), "32 bytes"));
  EXPECT_TRUE(Refused(PublicKey::FromJwk(R"({"kty":"RSA","e":"AQAB"})").status(), "has no \"n\""));
  EXPECT_TRUE(Refused(PublicKey::FromJwk(R"({"kty":"EC","kty":"RSA"})").status(), "repeats the member \"kty\""));
  EXPECT_TRUE(Refused(PublicKey::FromJwk("[1]").status(), "not a JSON object"));
  EXPECT_TRUE(Refused(PublicKey::FromJwk("{").status(), "not valid JSON"));
  // RSA exponent rules.
  PkeyPtr rsa = GenerateRaw(KeyType::kRsa);
  json rsa_jwk = json::parse(MustPublicPem(PublicPem(rsa.get())).ToJwk());
  rsa_jwk["e"] = "AQ";  // e = 1: every signature would verify
  EXPECT_TRUE(Refused(PublicKey::FromJwk(rsa_jwk.dump()).status(), "exponent must be odd and greater than 1"));
  rsa_jwk["e"] = "AAE";  // e = 1 with a leading zero octet
  EXPECT_TRUE(Refused(PublicKey::FromJwk(rsa_jwk.dump()).status(), "greater than 1"));
  rsa_jwk["e"] = B64(std::string(9, '\x01'));
  EXPECT_TRUE(Refused(PublicKey::FromJwk(rsa_jwk.dump()).status(), "longer than 64 bits"));
  rsa_jwk["n"] = B64(std::string(2049, '\xff'));
  EXPECT_TRUE(Refused(PublicKey::FromJwk(rsa_jwk.dump()).status(), "more than 16384 bits"));
}

TEST(JwsKeys, FailuresLeaveNoOpenSslErrors) {
  ERR_clear_error();
  EXPECT_FALSE(PublicKey::FromPem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").ok());
  EXPECT_FALSE(PublicKey::FromJwk(R"({"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",)"
                                  R"("y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a1"})")
                   .ok());
  auto signer = PrivateKey::Generate(KeyType::kEcP256);
  ASSERT_TRUE(signer.ok());
  EXPECT_FALSE(
      Verify(MustParse(Compact(R"({"alg":"ES256"})", "x", std::string(64, '\0'))), signer->public_key()).ok());
  EXPECT_EQ(ERR_peek_error(), 0u);
}

// ---------------------------------------------------------------------------
// Published examples.

// RFC 7515 appendix A.2 (RS256); its key is RFC 7517 appendix A.1's.
constexpr std::string_view kRfc7515RsaJwk =
    R"({"kty":"RSA","n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2)"
    R"(mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSH)"
    R"(SXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7)"
    R"(aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ","e":"AQAB"})";
constexpr std::string_view kRfc7515Payload =
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
constexpr std::string_view kRfc7515A2Signature =
    "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O"
    "8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARN"
    "PvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ"
    "1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";

TEST(JwsPublishedExamples, Rfc7515AppendixA2Rs256) {
  const std::string compact =
      "eyJhbGciOiJSUzI1NiJ9." + std::string(kRfc7515Payload) + "." + std::string(kRfc7515A2Signature);
  const Jws jws = MustParse(compact);
  EXPECT_EQ(jws.algorithm(), "RS256");
  EXPECT_EQ(jws.payload(), "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}");
  const PublicKey key = MustJwk(kRfc7515RsaJwk);
  EXPECT_EQ(key.bits(), 2048);
  EXPECT_TRUE(Verify(jws, key).ok()) << Verify(jws, key).ToString();
  // The same header re-encoded (another spelling of the same JSON) is a
  // different signing input.
  const std::string respaced = B64(R"({"alg": "RS256"})") + "." + std::string(kRfc7515Payload) + "." +
                               std::string(kRfc7515A2Signature);
  EXPECT_TRUE(Refused(Verify(MustParse(respaced), key), "does not verify"));
}

TEST(JwsPublishedExamples, Rfc7515AppendixA3Es256) {
  const std::string compact =
      "eyJhbGciOiJFUzI1NiJ9." + std::string(kRfc7515Payload) +
      ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
  const Jws jws = MustParse(compact);
  const PublicKey key = MustJwk(
      R"({"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",)"
      R"("y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})");
  EXPECT_TRUE(Verify(jws, key).ok()) << Verify(jws, key).ToString();
  // A.2's RSA key must not be accepted for it.
  EXPECT_TRUE(Refused(Verify(jws, MustJwk(kRfc7515RsaJwk)), "needs an EC P-256 key"));
}

// RFC 8037 appendix A.4 (EdDSA) and A.3 (its key's thumbprint).
TEST(JwsPublishedExamples, Rfc8037Ed25519) {
  const PublicKey key = MustJwk(R"({"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})");
  const Jws jws = MustParse(
      "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
      "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg");
  EXPECT_EQ(jws.payload(), "Example of Ed25519 signing");
  EXPECT_TRUE(Verify(jws, key).ok()) << Verify(jws, key).ToString();
  EXPECT_EQ(key.Thumbprint(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
}

// RFC 7638 section 3.1.
TEST(JwsPublishedExamples, Rfc7638Thumbprint) {
  constexpr std::string_view kJwk =
      R"({"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhD)"
      R"(R1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0)"
      R"(_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6)"
      R"(WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",)"
      R"("e":"AQAB","alg":"RS256","kid":"2011-04-29"})";
  auto thumbprint = JwkThumbprint(kJwk);
  ASSERT_TRUE(thumbprint.ok()) << thumbprint.status().ToString();
  EXPECT_EQ(*thumbprint, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
  EXPECT_EQ(MustJwk(kJwk).ToJwk().substr(0, 30), R"({"e":"AQAB","kty":"RSA","n":"0)");
}

// ---------------------------------------------------------------------------
// Third-party vectors (shared/vectors beside the repository), when present.

using backpack::testing::VectorsDir;

std::string ReadFile(const std::filesystem::path& path) {
  return backpack::testing::ReadVectorFile(path).value_or(std::string());
}

// The compact JWS in a file: the whole text, or the first one found inside a
// baked PNG or SVG.
std::string FindCompactJws(const std::string& bytes) {
  static const std::regex kCompact(R"(eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+)");
  std::smatch match;
  if (!std::regex_search(bytes, match, kCompact)) return {};
  return match.str();
}

TEST(JwsConformance, CheckableRs256VectorsVerify) {
  const std::filesystem::path dir = VectorsDir();
  if (dir.empty() || !std::filesystem::exists(dir / "checks-here.json")) {
    GTEST_SKIP() << "shared/vectors not found beside the repository (" << dir << ")";
  }
  const json checks = json::parse(ReadFile(dir / "checks-here.json"));
  int verified = 0;
  int parsed_only = 0;
  for (const auto& [name, check] : checks.at("jws_jwt").items()) {
    SCOPED_TRACE(name);
    const std::string file = name.substr(0, name.find(" ("));
    const std::string bytes = ReadFile(dir / file);
    ASSERT_FALSE(bytes.empty());
    const std::string compact = FindCompactJws(bytes);
    ASSERT_FALSE(compact.empty());
    const Jws jws = MustParse(compact);
    EXPECT_EQ(jws.algorithm(), check.at("alg").get<std::string>());
    if (check.at("result") != "SIG_VALID") {
      ++parsed_only;
      continue;
    }
    const std::string key_ref = check.at("key").get<std::string>();
    Result<PublicKey> key = NotFound("no key");
    if (key_ref == "jwk in JOSE header") {
      key = jws.EmbeddedJwk();
    } else {
      // "<path under the source folder> publicKeyPem"
      const std::string key_file = key_ref.substr(0, key_ref.find(' '));
      const std::string source_folder = file.substr(0, file.find('/'));
      const json key_doc = json::parse(ReadFile(dir / source_folder / key_file));
      key = PublicKey::FromPem(key_doc.at("publicKeyPem").get<std::string>());
    }
    ASSERT_TRUE(key.ok()) << key.status().ToString();
    EXPECT_EQ(key->type(), KeyType::kRsa);
    const Status status = Verify(jws, *key);
    EXPECT_TRUE(status.ok()) << status.ToString();
    if (status.ok()) ++verified;
    // Any change to the signed payload breaks it.
    std::string tampered = compact;
    const size_t at = tampered.find('.') + 5;
    tampered[at] = tampered[at] == 'A' ? 'B' : 'A';
    auto bad = Jws::Parse(tampered);
    if (bad.ok()) {
      EXPECT_FALSE(Verify(*bad, *key).ok());
    }
  }
  EXPECT_EQ(verified, 15);
  EXPECT_EQ(parsed_only, 3);
}

// Mozilla's validator test keys: a matching RSA pair and a deliberately
// non-matching public key.
TEST(JwsConformance, MozillaKeyPairs) {
  const std::filesystem::path dir = VectorsDir() / "mozilla-openbadges-validator" / "test";
  if (VectorsDir().empty() || !std::filesystem::exists(dir / "rsa-private.pem")) {
    GTEST_SKIP() << "shared/vectors not found beside the repository";
  }
  auto signer = PrivateKey::FromPem(ReadFile(dir / "rsa-private.pem"));  // "RSA PRIVATE KEY"
  ASSERT_TRUE(signer.ok()) << signer.status().ToString();
  auto compact = Sign(*signer, R"({"uid":"abc"})");
  ASSERT_TRUE(compact.ok());
  const Jws jws = MustParse(*compact);
  EXPECT_TRUE(Verify(jws, MustPublicPem(ReadFile(dir / "rsa-public.pem"))).ok());
  EXPECT_TRUE(Refused(Verify(jws, MustPublicPem(ReadFile(dir / "rsa-wrong-public.pem"))), "does not verify"));
}

}  // namespace
}  // namespace backpack::protocol
