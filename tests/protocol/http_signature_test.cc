#include "protocol/http_signature.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/encoding.h"
#include "protocol/jws.h"

namespace backpack::protocol {
namespace {

// ---------------------------------------------------------------------------
// RFC 9421 appendix B.1.4: test-key-ed25519.

constexpr std::string_view kRfcPublicPem =
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=\n"
    "-----END PUBLIC KEY-----\n";
constexpr std::string_view kRfcPrivatePem =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n"
    "-----END PRIVATE KEY-----\n";
constexpr std::string_view kRfcPublicJwkX = "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs";

// RFC 9421 appendix B.2.6: test-request signed with test-key-ed25519.
constexpr std::string_view kB26SignatureInput =
    "sig-b26=(\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \"content-length\")"
    ";created=1618884473;keyid=\"test-key-ed25519\"";
constexpr std::string_view kB26Signature =
    "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:";
constexpr std::string_view kB26SignatureParams =
    "(\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \"content-length\")"
    ";created=1618884473;keyid=\"test-key-ed25519\"";
constexpr std::string_view kB26Base =
    "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n"
    "\"@method\": POST\n"
    "\"@path\": /foo\n"
    "\"@authority\": example.com\n"
    "\"content-type\": application/json\n"
    "\"content-length\": 18\n"
    "\"@signature-params\": (\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \"content-length\")"
    ";created=1618884473;keyid=\"test-key-ed25519\"";

const PrivateKey& RfcKey() {
  static const PrivateKey key = [] {
    auto k = PrivateKey::FromPem(kRfcPrivatePem);
    EXPECT_TRUE(k.ok()) << k.status().ToString();
    return *k;
  }();
  return key;
}

const PublicKey& RfcPublicKey() {
  static const PublicKey key = [] {
    auto k = PublicKey::FromPem(kRfcPublicPem);
    EXPECT_TRUE(k.ok()) << k.status().ToString();
    return *k;
  }();
  return key;
}

// ---------------------------------------------------------------------------
// A request of the federation profile, signed with the RFC key.

constexpr int64_t kCreated = 1'700'000'000;
constexpr std::string_view kBody = R"({"type":"peer","node":"a.example"})";
constexpr std::string_view kNonce = "n0nce-0123456789abcdef";
constexpr std::string_view kKeyId = "a.example#k1";

RequestComponents Post(std::string_view body = kBody) {
  return {"POST", "https://b.example/_federation/v1/peer?x=1", "b.example", ContentDigest(body)};
}

RequestSignatureParams Params(int64_t created = kCreated, int64_t lifetime = 300) {
  return {created, created + lifetime, std::string(kNonce), std::string(kKeyId)};
}

RequestSignaturePolicy PolicyAt(int64_t now) {
  RequestSignaturePolicy policy;
  policy.now = now;
  return policy;
}

SignatureHeaders Sign(const RequestComponents& request = Post(), const RequestSignatureParams& params = Params()) {
  auto headers = SignRequest(request, params, RfcKey());
  EXPECT_TRUE(headers.ok()) << headers.status().ToString();
  return headers.ok() ? *headers : SignatureHeaders{};
}

// The Signature-Input value SignRequest should write for Params(), by hand.
std::string ExpectedSignatureParams(int64_t created = kCreated, int64_t expires = kCreated + 300) {
  return "(\"@method\" \"@target-uri\" \"@authority\" \"content-digest\");created=" + std::to_string(created) +
         ";expires=" + std::to_string(expires) + ";nonce=\"n0nce-0123456789abcdef\";keyid=\"a.example#k1\"" +
         ";alg=\"ed25519\"";
}

std::string ExpectedBase(std::string_view method, std::string_view uri, std::string_view authority,
                         std::string_view digest, std::string_view signature_params) {
  return "\"@method\": " + std::string(method) + "\n\"@target-uri\": " + std::string(uri) +
         "\n\"@authority\": " + std::string(authority) + "\n\"content-digest\": " + std::string(digest) +
         "\n\"@signature-params\": " + std::string(signature_params);
}

// Decodes "label=:base64:" by hand.
std::string SignatureBytes(std::string_view field) {
  const size_t open = field.find("=:");
  EXPECT_NE(open, std::string_view::npos);
  EXPECT_EQ(field.back(), ':');
  auto bytes = Base64Decode(field.substr(open + 2, field.size() - open - 3));
  EXPECT_TRUE(bytes.has_value());
  return bytes.value_or("");
}

std::string Replace(std::string text, std::string_view from, std::string_view to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from << " not in " << text;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

SignatureFault ParseFault(std::string_view signature_input, std::string_view signature,
                          const RequestComponents& request = Post()) {
  auto parsed = ParseRequestSignature(signature_input, signature, request);
  return SignatureFaultOf(parsed.status());
}

// Parses and verifies; the fault of the first step that refuses.
SignatureFault CheckFault(const SignatureHeaders& headers, const RequestComponents& request,
                          const RequestSignaturePolicy& policy, const PublicKey& key = RfcPublicKey()) {
  auto parsed = ParseRequestSignature(headers.signature_input, headers.signature, request);
  if (!parsed.ok()) return SignatureFaultOf(parsed.status());
  return SignatureFaultOf(VerifyRequestSignature(*parsed, key, policy));
}

// Headers with the profile's components and `params_text`, signed by hand
// over a base built here, not by SignRequest.
SignatureHeaders HandSigned(std::string_view params_text, const RequestComponents& request = Post(),
                            std::string_view label = "sig1") {
  const std::string signature_params =
      "(\"@method\" \"@target-uri\" \"@authority\" \"content-digest\")" + std::string(params_text);
  const std::string base =
      ExpectedBase(request.method, request.target_uri, request.authority, request.content_digest, signature_params);
  auto signature = SignEd25519(RfcKey(), base);
  EXPECT_TRUE(signature.ok());
  return {std::string(label) + "=" + signature_params,
          std::string(label) + "=:" + Base64Encode(signature.ok() ? *signature : "") + ":"};
}

constexpr std::string_view kGoodParams =
    ";created=1700000000;expires=1700000300;nonce=\"n0nce-0123456789abcdef\";keyid=\"a.example#k1\";alg=\"ed25519\"";

// ---------------------------------------------------------------------------
// RFC 9421 appendix B.2.6

TEST(HttpSignatureRfc9421, TestKeyIsTheJwkOfAppendixB14) {
  auto raw = Base64UrlDecode(kRfcPublicJwkX);
  ASSERT_TRUE(raw.has_value());
  auto from_jwk = PublicKey::FromEd25519Raw(*raw);
  ASSERT_TRUE(from_jwk.ok());
  EXPECT_EQ(from_jwk->ToJwk(), RfcPublicKey().ToJwk());
  EXPECT_EQ(RfcKey().public_key().ToJwk(), RfcPublicKey().ToJwk());
}

TEST(HttpSignatureRfc9421, ReproducesTheEd25519SignatureBaseOfB26) {
  auto fields = ParseSignatureFields(kB26SignatureInput, kB26Signature);
  ASSERT_TRUE(fields.ok()) << fields.status().ToString();
  EXPECT_EQ(fields->label, "sig-b26");
  EXPECT_EQ(fields->components,
            (std::vector<std::string>{"date", "@method", "@path", "@authority", "content-type", "content-length"}));
  ASSERT_EQ(fields->parameters.size(), 2u);
  EXPECT_EQ(fields->parameters[0].name, "created");
  EXPECT_EQ(std::get<int64_t>(fields->parameters[0].value), 1618884473);
  EXPECT_EQ(fields->parameters[1].name, "keyid");
  EXPECT_EQ(std::get<std::string>(fields->parameters[1].value), "test-key-ed25519");

  auto signature_params = SerializeSignatureParams(fields->components, fields->parameters);
  ASSERT_TRUE(signature_params.ok());
  EXPECT_EQ(*signature_params, kB26SignatureParams);

  // The test-request of appendix B.2, component by component.
  const std::vector<SignatureBaseLine> lines = {
      {"date", "Tue, 20 Apr 2021 02:07:55 GMT"},
      {"@method", "POST"},
      {"@path", "/foo"},
      {"@authority", "example.com"},
      {"content-type", "application/json"},
      {"content-length", "18"},
  };
  auto base = BuildSignatureBase(lines, *signature_params);
  ASSERT_TRUE(base.ok());
  EXPECT_EQ(*base, kB26Base);
}

TEST(HttpSignatureRfc9421, VerifiesAndReproducesTheEd25519SignatureOfB26) {
  auto fields = ParseSignatureFields(kB26SignatureInput, kB26Signature);
  ASSERT_TRUE(fields.ok());
  ASSERT_EQ(fields->signature.size(), 64u);
  EXPECT_TRUE(VerifyEd25519(RfcPublicKey(), kB26Base, fields->signature).ok());

  // Ed25519 is deterministic: signing the base gives the spec's bytes.
  auto signature = SignEd25519(RfcKey(), kB26Base);
  ASSERT_TRUE(signature.ok());
  EXPECT_EQ(*signature, fields->signature);
  EXPECT_EQ("sig-b26=:" + Base64Encode(*signature) + ":", kB26Signature);

  // One byte of the base changed: the spec's signature no longer verifies.
  const std::string tampered = Replace(std::string(kB26Base), "POST", "PUT ");
  EXPECT_FALSE(VerifyEd25519(RfcPublicKey(), tampered, fields->signature).ok());
}

TEST(HttpSignatureRfc9421, B26IsNotTheFederationProfile) {
  EXPECT_EQ(ParseFault(kB26SignatureInput, kB26Signature), SignatureFault::kWrongComponents);
}

TEST(HttpSignatureRfc9421, SignatureFieldsPicksALabel) {
  const std::string input = std::string(kB26SignatureInput) + ", other=(\"@method\");created=1";
  const std::string signature = std::string(kB26Signature) + ", other=:AAAA:";
  auto picked = ParseSignatureFields(input, signature, "other");
  ASSERT_TRUE(picked.ok()) << picked.status().ToString();
  EXPECT_EQ(picked->label, "other");
  EXPECT_EQ(picked->components, std::vector<std::string>{"@method"});
  EXPECT_EQ(picked->signature, std::string(3, '\0'));
  auto b26 = ParseSignatureFields(input, signature, "sig-b26");
  ASSERT_TRUE(b26.ok());
  EXPECT_EQ(b26->components.size(), 6u);
  EXPECT_EQ(SignatureFaultOf(ParseSignatureFields(input, signature).status()), SignatureFault::kWrongComponents);
  EXPECT_EQ(SignatureFaultOf(ParseSignatureFields(input, signature, "missing").status()),
            SignatureFault::kWrongComponents);
}

// ---------------------------------------------------------------------------
// RFC 9530 Content-Digest

TEST(ContentDigest, MatchesTheRfc9530Examples) {
  // Appendix B: {"hello": "world"} followed by LF, the empty content, and
  // the partial content "world"} LF.
  EXPECT_EQ(ContentDigest("{\"hello\": \"world\"}\n"), "sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:");
  EXPECT_EQ(ContentDigest(""), "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:");
  EXPECT_EQ(ContentDigest("\"world\"}\n"), "sha-256=:jjcgBDWNAtbYUXI37CVG3gRuGOAjaaDRGpIUFsdyepQ=:");
}

TEST(ContentDigest, ChecksTheRfcExamples) {
  const std::string hello_lf = "{\"hello\": \"world\"}\n";
  const std::string sha256 = "sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:";
  const std::string sha512 =
      "sha-512=:YMAam51Jz/jOATT6/zvHrLVgOYTGFy1d6GJiOHTohq4yP+pgk4vf2aCsyRZOtw8MjkM7iw7yZ/WkppmM44T3qg==:";
  EXPECT_TRUE(CheckContentDigest(sha256, hello_lf).ok());
  EXPECT_TRUE(CheckContentDigest(sha512, hello_lf).ok());  // RFC 9530 section 2
  EXPECT_TRUE(CheckContentDigest(sha256 + ", " + sha512, hello_lf).ok());
  EXPECT_TRUE(CheckContentDigest(sha512 + ",\t" + sha256, hello_lf).ok());
  EXPECT_TRUE(CheckContentDigest("sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:", "").ok());
  // RFC 9421 appendix B.2: the test-request's Content-Digest.
  EXPECT_TRUE(CheckContentDigest(
                  "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
                  "{\"hello\": \"world\"}")
                  .ok());

  EXPECT_EQ(SignatureFaultOf(CheckContentDigest(sha256, "{\"hello\": \"world\"}")), SignatureFault::kDigestMismatch);
  EXPECT_EQ(SignatureFaultOf(CheckContentDigest(sha512, "")), SignatureFault::kDigestMismatch);
}

TEST(ContentDigest, EveryKnownDigestMustMatch) {
  const std::string body = "payload";
  const std::string good256 = ContentDigest(body);
  const std::string other512 =
      "sha-512=:YMAam51Jz/jOATT6/zvHrLVgOYTGFy1d6GJiOHTohq4yP+pgk4vf2aCsyRZOtw8MjkM7iw7yZ/WkppmM44T3qg==:";
  ASSERT_TRUE(CheckContentDigest(good256, body).ok());
  EXPECT_EQ(SignatureFaultOf(CheckContentDigest(good256 + ", " + other512, body)), SignatureFault::kDigestMismatch);
  EXPECT_EQ(SignatureFaultOf(CheckContentDigest(other512 + ", " + good256, body)), SignatureFault::kDigestMismatch);
  // Other algorithms are ignored, whatever their value.
  EXPECT_TRUE(CheckContentDigest("md5=:AAAA:, unixsum=7, " + good256, body).ok());
  // ... and may be any RFC 8941 value but a decimal (at most four members).
  const std::string others = "x=*tok;t=text/plain;u=a:b, y=(-1 \"s\" ?0 :AA==:);p, z;v=?1, ";
  EXPECT_TRUE(CheckContentDigest(others + good256, body).ok());
  EXPECT_EQ(SignatureFaultOf(CheckContentDigest("w=1, " + others + good256, body)), SignatureFault::kMalformed);
  // A truncated digest does not match.
  const std::string digest = Sha256(body);
  EXPECT_EQ(SignatureFaultOf(CheckContentDigest("sha-256=:" + Base64Encode(digest.substr(0, 31)) + ":", body)),
            SignatureFault::kDigestMismatch);
}

TEST(ContentDigest, RefusesFieldsWithoutAUsableDigest) {
  const std::string body = "payload";
  const std::string good = ContentDigest(body);
  ASSERT_TRUE(CheckContentDigest(good, body).ok());
  const std::string refused[] = {
      "",                                               // no field
      "   ",                                            // nothing but space
      "md5=:rL0Y20zC+Fzt72VPzMSk2A==:",                 // no known algorithm
      "SHA-256=" + good.substr(8),                      // keys are lower case
      "sha-256=" + Base64Encode(Sha256(body)),          // a token, not bytes
      "sha-256=(" + good.substr(8) + ")",               // an inner list
      "sha-256",                                        // a bare key is a boolean
      "sha-256=:" + Base64Encode(Sha256(body)) + "",    // unterminated
      "sha-256=:" + Base64Encode(Sha256(body)) + "!:",  // not base64
      good + ", " + good,                               // a repeated key
      good + ",",                                       // a trailing comma
      good + " x",                                      // no comma
      "sha-256=:A=AA:",                                 // misplaced padding
      "sha-256=1.5",                                    // a decimal
      "unixsum=?2, " + good,                            // a bad boolean, even elsewhere
      "=" + good.substr(8),                             // an empty key
  };
  for (const std::string& header : refused) {
    const Status status = CheckContentDigest(header, body);
    EXPECT_EQ(SignatureFaultOf(status), SignatureFault::kMalformed) << header << " -> " << status.ToString();
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  }
}

TEST(ContentDigest, CapsTheFieldLength) {
  const std::string body = "payload";
  const std::string good = ContentDigest(body);
  // Leading spaces are allowed by RFC 8941; the cap counts them.
  const std::string at_cap = std::string(kMaxSignatureFieldBytes - good.size(), ' ') + good;
  EXPECT_TRUE(CheckContentDigest(at_cap, body).ok());
  const std::string over_cap = " " + at_cap;
  EXPECT_EQ(SignatureFaultOf(CheckContentDigest(over_cap, body)), SignatureFault::kMalformed);
}

// ---------------------------------------------------------------------------
// Signing and verifying the profile.

TEST(RequestSignature, SignsTheProfileExactly) {
  const RequestComponents request = Post();
  const SignatureHeaders headers = Sign(request);
  const std::string signature_params = ExpectedSignatureParams();
  EXPECT_EQ(headers.signature_input, "sig1=" + signature_params);
  ASSERT_TRUE(headers.signature.starts_with("sig1=:"));

  // The signature verifies over a base built here by hand.
  const std::string base = ExpectedBase("POST", "https://b.example/_federation/v1/peer?x=1", "b.example",
                                        ContentDigest(kBody), signature_params);
  EXPECT_TRUE(VerifyEd25519(RfcPublicKey(), base, SignatureBytes(headers.signature)).ok());
}

TEST(RequestSignature, RoundTrips) {
  const RequestComponents request = Post();
  const SignatureHeaders headers = Sign(request);
  auto parsed = ParseRequestSignature(headers.signature_input, headers.signature, request);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->label, "sig1");
  EXPECT_EQ(parsed->components, (std::vector<std::string>{"@method", "@target-uri", "@authority", "content-digest"}));
  EXPECT_EQ(parsed->params.created, kCreated);
  EXPECT_EQ(parsed->params.expires, kCreated + 300);
  EXPECT_EQ(parsed->params.nonce, kNonce);
  EXPECT_EQ(parsed->params.key_id, kKeyId);
  EXPECT_EQ(parsed->algorithm, "ed25519");
  EXPECT_EQ(parsed->signature_base,
            ExpectedBase("POST", request.target_uri, "b.example", request.content_digest, ExpectedSignatureParams()));
  EXPECT_EQ(parsed->signature, SignatureBytes(headers.signature));
  EXPECT_TRUE(VerifyRequestSignature(*parsed, RfcPublicKey(), PolicyAt(kCreated)).ok());
  EXPECT_TRUE(CheckContentDigest(request.content_digest, kBody).ok());
}

TEST(RequestSignature, GetCoversTheDigestOfTheEmptyBody) {
  RequestComponents request = {"GET", "https://b.example/_federation/v1/changes?after=12", "b.example",
                               ContentDigest("")};
  EXPECT_EQ(request.content_digest, "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:");
  const SignatureHeaders headers = Sign(request);
  const std::string base =
      ExpectedBase("GET", request.target_uri, "b.example",
                   "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:", ExpectedSignatureParams());
  EXPECT_TRUE(VerifyEd25519(RfcPublicKey(), base, SignatureBytes(headers.signature)).ok());
  EXPECT_EQ(CheckFault(headers, request, PolicyAt(kCreated)), SignatureFault::kNone);
  EXPECT_TRUE(CheckContentDigest(request.content_digest, "").ok());
  EXPECT_EQ(SignatureFaultOf(CheckContentDigest(request.content_digest, "x")), SignatureFault::kDigestMismatch);

  // Without a Content-Digest the request is refused, GET or not.
  RequestComponents no_digest = request;
  no_digest.content_digest = "";
  EXPECT_EQ(ParseFault(headers.signature_input, headers.signature, no_digest), SignatureFault::kMalformed);
}

TEST(RequestSignature, NormalisesTheAuthority) {
  RequestComponents sent = Post();
  sent.authority = "B.Example:443";
  const SignatureHeaders headers = Sign(sent);
  const std::string base =
      ExpectedBase("POST", sent.target_uri, "b.example", sent.content_digest, ExpectedSignatureParams());
  EXPECT_TRUE(VerifyEd25519(RfcPublicKey(), base, SignatureBytes(headers.signature)).ok());
  EXPECT_EQ(CheckFault(headers, Post(), PolicyAt(kCreated)), SignatureFault::kNone);

  // http drops :80; other ports stay, without leading zeros.
  RequestComponents http = {"POST", "http://b.example:8080/inbox", "b.example:80", ContentDigest("")};
  auto parsed = ParseRequestSignature(Sign(http).signature_input, Sign(http).signature, http);
  ASSERT_TRUE(parsed.ok());
  EXPECT_NE(parsed->signature_base.find("\n\"@authority\": b.example\n"), std::string::npos);
  http.authority = "B.EXAMPLE:08080";
  parsed = ParseRequestSignature(Sign(http).signature_input, Sign(http).signature, http);
  ASSERT_TRUE(parsed.ok());
  EXPECT_NE(parsed->signature_base.find("\n\"@authority\": b.example:8080\n"), std::string::npos);
  http.authority = "[2001:DB8::1]:443";
  parsed = ParseRequestSignature(Sign(http).signature_input, Sign(http).signature, http);
  ASSERT_TRUE(parsed.ok());
  EXPECT_NE(parsed->signature_base.find("\n\"@authority\": [2001:db8::1]:443\n"), std::string::npos);

  // A port the sender did not use is another authority.
  RequestComponents other_port = Post();
  other_port.authority = "b.example:8443";
  EXPECT_EQ(CheckFault(headers, other_port, PolicyAt(kCreated)), SignatureFault::kBadSignature);
}

TEST(RequestSignature, AcceptsAnySingleLabel) {
  SignatureHeaders headers = Sign();
  headers.signature_input = Replace(headers.signature_input, "sig1=", "peer-a.example=");
  headers.signature = Replace(headers.signature, "sig1=", "peer-a.example=");
  auto parsed = ParseRequestSignature(headers.signature_input, headers.signature, Post());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->label, "peer-a.example");
  EXPECT_TRUE(VerifyRequestSignature(*parsed, RfcPublicKey(), PolicyAt(kCreated)).ok());
}

TEST(RequestSignature, AcceptsParametersInAnyOrder) {
  const std::string reordered =
      ";alg=\"ed25519\";keyid=\"a.example#k1\";nonce=\"n0nce-0123456789abcdef\";expires=1700000300;created=1700000000";
  const SignatureHeaders headers = HandSigned(reordered);
  auto parsed = ParseRequestSignature(headers.signature_input, headers.signature, Post());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_TRUE(parsed->signature_base.ends_with(reordered));
  EXPECT_TRUE(VerifyRequestSignature(*parsed, RfcPublicKey(), PolicyAt(kCreated)).ok());
  EXPECT_EQ(parsed->params.created, kCreated);
  EXPECT_EQ(parsed->params.key_id, kKeyId);
}

TEST(RequestSignature, ToleratesStructuredFieldWhiteSpace) {
  SignatureHeaders headers = HandSigned(kGoodParams);
  headers.signature_input = "  " + headers.signature_input + "  ";
  headers.signature = " " + headers.signature;
  EXPECT_EQ(CheckFault(headers, Post(), PolicyAt(kCreated)), SignatureFault::kNone);
  // Inner-list spacing is re-serialized, as the signer serialized it.
  headers.signature_input = Replace(headers.signature_input, "(\"@method\" ", "(  \"@method\"   ");
  headers.signature_input = Replace(headers.signature_input, "\"content-digest\")", "\"content-digest\" )");
  EXPECT_EQ(CheckFault(headers, Post(), PolicyAt(kCreated)), SignatureFault::kNone);
}

// --- tampering ------------------------------------------------------------

TEST(RequestSignature, RefusesATamperedRequest) {
  const SignatureHeaders headers = Sign();
  ASSERT_EQ(CheckFault(headers, Post(), PolicyAt(kCreated)), SignatureFault::kNone);

  RequestComponents method = Post();
  method.method = "PUT";
  EXPECT_EQ(CheckFault(headers, method, PolicyAt(kCreated)), SignatureFault::kBadSignature);
  method.method = "post";  // the method's case is kept
  EXPECT_EQ(CheckFault(headers, method, PolicyAt(kCreated)), SignatureFault::kBadSignature);

  RequestComponents path = Post();
  path.target_uri = "https://b.example/_federation/v1/peers?x=1";
  EXPECT_EQ(CheckFault(headers, path, PolicyAt(kCreated)), SignatureFault::kBadSignature);
  RequestComponents query = Post();
  query.target_uri = "https://b.example/_federation/v1/peer?x=2";
  EXPECT_EQ(CheckFault(headers, query, PolicyAt(kCreated)), SignatureFault::kBadSignature);
  RequestComponents scheme = Post();
  scheme.target_uri = "http://b.example/_federation/v1/peer?x=1";
  EXPECT_EQ(CheckFault(headers, scheme, PolicyAt(kCreated)), SignatureFault::kBadSignature);

  RequestComponents authority = Post();
  authority.authority = "c.example";
  EXPECT_EQ(CheckFault(headers, authority, PolicyAt(kCreated)), SignatureFault::kBadSignature);

  RequestComponents digest = Post();
  digest.content_digest = ContentDigest("{\"type\":\"peer\",\"node\":\"evil.example\"}");
  EXPECT_EQ(CheckFault(headers, digest, PolicyAt(kCreated)), SignatureFault::kBadSignature);
}

TEST(RequestSignature, ATamperedBodyFailsItsDigest) {
  // The signature covers the digest; the digest check catches the body.
  const RequestComponents request = Post();
  const SignatureHeaders headers = Sign(request);
  ASSERT_EQ(CheckFault(headers, request, PolicyAt(kCreated)), SignatureFault::kNone);
  ASSERT_TRUE(CheckContentDigest(request.content_digest, kBody).ok());
  EXPECT_EQ(SignatureFaultOf(CheckContentDigest(request.content_digest, std::string(kBody) + " ")),
            SignatureFault::kDigestMismatch);
}

TEST(RequestSignature, RefusesTamperedFields) {
  const SignatureHeaders headers = Sign();
  ASSERT_EQ(CheckFault(headers, Post(), PolicyAt(kCreated)), SignatureFault::kNone);

  SignatureHeaders nonce = headers;
  nonce.signature_input = Replace(nonce.signature_input, "n0nce-0123", "n0nce-9123");
  EXPECT_EQ(CheckFault(nonce, Post(), PolicyAt(kCreated)), SignatureFault::kBadSignature);

  SignatureHeaders key_id = headers;
  key_id.signature_input = Replace(key_id.signature_input, "a.example#k1", "a.example#k2");
  EXPECT_EQ(CheckFault(key_id, Post(), PolicyAt(kCreated)), SignatureFault::kBadSignature);

  SignatureHeaders expires = headers;
  expires.signature_input = Replace(expires.signature_input, "expires=1700000300", "expires=1700000200");
  EXPECT_EQ(CheckFault(expires, Post(), PolicyAt(kCreated)), SignatureFault::kBadSignature);

  std::string bytes = SignatureBytes(headers.signature);
  bytes[10] = static_cast<char>(bytes[10] ^ 1);
  SignatureHeaders flipped = headers;
  flipped.signature = "sig1=:" + Base64Encode(bytes) + ":";
  EXPECT_EQ(CheckFault(flipped, Post(), PolicyAt(kCreated)), SignatureFault::kBadSignature);
}

TEST(RequestSignature, RefusesTheWrongKey) {
  const SignatureHeaders headers = Sign();
  auto parsed = ParseRequestSignature(headers.signature_input, headers.signature, Post());
  ASSERT_TRUE(parsed.ok());
  ASSERT_TRUE(VerifyRequestSignature(*parsed, RfcPublicKey(), PolicyAt(kCreated)).ok());

  auto other = PrivateKey::Generate(KeyType::kEd25519);
  ASSERT_TRUE(other.ok());
  const Status wrong = VerifyRequestSignature(*parsed, other->public_key(), PolicyAt(kCreated));
  EXPECT_EQ(SignatureFaultOf(wrong), SignatureFault::kBadSignature);
  EXPECT_EQ(wrong.code(), StatusCode::kUnauthenticated);
  EXPECT_NE(wrong.message().find("a.example#k1"), std::string::npos) << wrong.message();

  auto ec = PrivateKey::Generate(KeyType::kEcP256);
  ASSERT_TRUE(ec.ok());
  const Status not_ed25519 = VerifyRequestSignature(*parsed, ec->public_key(), PolicyAt(kCreated));
  EXPECT_EQ(SignatureFaultOf(not_ed25519), SignatureFault::kBadSignature);
  EXPECT_NE(not_ed25519.message().find("EC P-256"), std::string::npos) << not_ed25519.message();
}

// --- time ------------------------------------------------------------------

TEST(RequestSignature, RefusesAnExpiredSignature) {
  const SignatureHeaders headers = Sign();
  EXPECT_EQ(CheckFault(headers, Post(), PolicyAt(kCreated + 299)), SignatureFault::kNone);
  const Status status = [&] {
    auto parsed = ParseRequestSignature(headers.signature_input, headers.signature, Post());
    EXPECT_TRUE(parsed.ok());
    return VerifyRequestSignature(*parsed, RfcPublicKey(), PolicyAt(kCreated + 300));
  }();
  EXPECT_EQ(SignatureFaultOf(status), SignatureFault::kStale);
  EXPECT_EQ(status.code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(CheckFault(headers, Post(), PolicyAt(kCreated + 100000)), SignatureFault::kStale);
  EXPECT_EQ(CheckFault(headers, Post(), PolicyAt(std::numeric_limits<int64_t>::max())), SignatureFault::kStale);
}

TEST(RequestSignature, RefusesASignatureFromTheFuture) {
  const SignatureHeaders headers = Sign();
  EXPECT_EQ(CheckFault(headers, Post(), PolicyAt(kCreated - 60)), SignatureFault::kNone);
  EXPECT_EQ(CheckFault(headers, Post(), PolicyAt(kCreated - 61)), SignatureFault::kFuture);
  RequestSignaturePolicy no_skew = PolicyAt(kCreated - 1);
  no_skew.max_skew_seconds = 0;
  EXPECT_EQ(CheckFault(headers, Post(), no_skew), SignatureFault::kFuture);
  EXPECT_EQ(CheckFault(headers, Post(), PolicyAt(std::numeric_limits<int64_t>::min())), SignatureFault::kFuture);
  EXPECT_EQ(CheckFault(headers, Post(), PolicyAt(-1)), SignatureFault::kFuture);
}

TEST(RequestSignature, RefusesTooLongALifetime) {
  EXPECT_EQ(CheckFault(Sign(Post(), Params(kCreated, 300)), Post(), PolicyAt(kCreated)), SignatureFault::kNone);
  const SignatureHeaders long_lived = Sign(Post(), Params(kCreated, 301));
  EXPECT_EQ(CheckFault(long_lived, Post(), PolicyAt(kCreated)), SignatureFault::kLifetime);
  RequestSignaturePolicy lenient = PolicyAt(kCreated);
  lenient.max_lifetime_seconds = 301;
  EXPECT_EQ(CheckFault(long_lived, Post(), lenient), SignatureFault::kNone);
}

TEST(RequestSignature, RefusesExpiresNotAfterCreated) {
  // Checked before the signature: no valid signature is needed to be told.
  for (const char* expires : {"expires=1700000000", "expires=1699999999", "expires=0"}) {
    SignatureHeaders headers = Sign();
    headers.signature_input = Replace(headers.signature_input, "expires=1700000300", expires);
    EXPECT_EQ(CheckFault(headers, Post(), PolicyAt(kCreated)), SignatureFault::kLifetime) << expires;
  }
  auto parsed = ParseRequestSignature(Sign().signature_input, Sign().signature, Post());
  ASSERT_TRUE(parsed.ok());
  parsed->params.expires = parsed->params.created;
  EXPECT_EQ(SignatureFaultOf(VerifyRequestSignature(*parsed, RfcPublicKey(), PolicyAt(kCreated))),
            SignatureFault::kLifetime);
}

// --- the profile's components and parameters -------------------------------

TEST(RequestSignature, HandSignedControlVerifies) {
  // The base for the refusals below: with the profile's parameters it passes.
  EXPECT_EQ(CheckFault(HandSigned(kGoodParams), Post(), PolicyAt(kCreated)), SignatureFault::kNone);
}

TEST(RequestSignature, RefusesMissingOrExtraParameters) {
  const char* names[] = {";created=1700000000", ";expires=1700000300", ";nonce=\"n0nce-0123456789abcdef\"",
                         ";keyid=\"a.example#k1\"", ";alg=\"ed25519\""};
  for (const char* name : names) {
    const std::string without = Replace(std::string(kGoodParams), name, "");
    const SignatureHeaders headers = HandSigned(without);
    const Status status = ParseRequestSignature(headers.signature_input, headers.signature, Post()).status();
    EXPECT_EQ(SignatureFaultOf(status), SignatureFault::kWrongComponents) << name << ": " << status.ToString();
    EXPECT_NE(status.message().find("missing"), std::string::npos) << status.message();
  }
  const SignatureHeaders tagged = HandSigned(std::string(kGoodParams) + ";tag=\"federation\"");
  EXPECT_EQ(ParseFault(tagged.signature_input, tagged.signature), SignatureFault::kWrongComponents);
}

TEST(RequestSignature, RefusesParametersOfTheWrongType) {
  const std::pair<const char*, const char*> cases[] = {
      {"created=1700000000", "created=\"1700000000\""},
      {"expires=1700000300", "expires=?1"},
      {"nonce=\"n0nce-0123456789abcdef\"", "nonce=n0nce-0123456789abcdef"},
      {"keyid=\"a.example#k1\"", "keyid=:AAAA:"},
      {"alg=\"ed25519\"", "alg=ed25519"},
      {"created=1700000000", "created=-1"},
      {"expires=1700000300", "expires=-1"},
  };
  for (const auto& [from, to] : cases) {
    const SignatureHeaders headers = HandSigned(Replace(std::string(kGoodParams), from, to));
    EXPECT_EQ(ParseFault(headers.signature_input, headers.signature), SignatureFault::kMalformed) << to;
  }
}

TEST(RequestSignature, RefusesOtherAlgorithms) {
  for (const char* alg : {"alg=\"rsa-pss-sha512\"", "alg=\"ED25519\"", "alg=\"\"", "alg=\"hmac-sha256\""}) {
    const SignatureHeaders headers = HandSigned(Replace(std::string(kGoodParams), "alg=\"ed25519\"", alg));
    EXPECT_EQ(ParseFault(headers.signature_input, headers.signature), SignatureFault::kWrongComponents) << alg;
  }
}

TEST(RequestSignature, BoundsTheNonceAndKeyId) {
  const std::string nonce = "nonce=\"n0nce-0123456789abcdef\"";
  const auto with_nonce = [&](size_t length) {
    return HandSigned(Replace(std::string(kGoodParams), nonce, "nonce=\"" + std::string(length, 'n') + "\""));
  };
  EXPECT_EQ(CheckFault(with_nonce(kMinSignatureNonceBytes), Post(), PolicyAt(kCreated)), SignatureFault::kNone);
  EXPECT_EQ(CheckFault(with_nonce(kMaxSignatureNonceBytes), Post(), PolicyAt(kCreated)), SignatureFault::kNone);
  EXPECT_EQ(CheckFault(with_nonce(kMinSignatureNonceBytes - 1), Post(), PolicyAt(kCreated)),
            SignatureFault::kWrongComponents);
  EXPECT_EQ(CheckFault(with_nonce(kMaxSignatureNonceBytes + 1), Post(), PolicyAt(kCreated)),
            SignatureFault::kWrongComponents);
  EXPECT_EQ(CheckFault(with_nonce(0), Post(), PolicyAt(kCreated)), SignatureFault::kWrongComponents);

  const SignatureHeaders empty_key =
      HandSigned(Replace(std::string(kGoodParams), "keyid=\"a.example#k1\"", "keyid=\"\""));
  EXPECT_EQ(CheckFault(empty_key, Post(), PolicyAt(kCreated)), SignatureFault::kWrongComponents);
  const SignatureHeaders long_key =
      HandSigned(Replace(std::string(kGoodParams), "keyid=\"a.example#k1\"",
                         "keyid=\"" + std::string(kMaxSignatureKeyIdBytes + 1, 'k') + "\""));
  EXPECT_EQ(CheckFault(long_key, Post(), PolicyAt(kCreated)), SignatureFault::kWrongComponents);

  // VerifyRequestSignature checks again what it is given.
  auto parsed = ParseRequestSignature(Sign().signature_input, Sign().signature, Post());
  ASSERT_TRUE(parsed.ok());
  ASSERT_TRUE(VerifyRequestSignature(*parsed, RfcPublicKey(), PolicyAt(kCreated)).ok());
  ParsedRequestSignature no_nonce = *parsed;
  no_nonce.params.nonce.clear();
  EXPECT_EQ(SignatureFaultOf(VerifyRequestSignature(no_nonce, RfcPublicKey(), PolicyAt(kCreated))),
            SignatureFault::kWrongComponents);
  ParsedRequestSignature other_alg = *parsed;
  other_alg.algorithm = "rsa-v1_5-sha256";
  EXPECT_EQ(SignatureFaultOf(VerifyRequestSignature(other_alg, RfcPublicKey(), PolicyAt(kCreated))),
            SignatureFault::kWrongComponents);
  ParsedRequestSignature short_signature = *parsed;
  short_signature.signature.pop_back();
  EXPECT_EQ(SignatureFaultOf(VerifyRequestSignature(short_signature, RfcPublicKey(), PolicyAt(kCreated))),
            SignatureFault::kMalformed);
}

TEST(RequestSignature, RefusesOtherComponents) {
  const auto with_list = [](std::string_view list) {
    SignatureHeaders headers = HandSigned(kGoodParams);
    headers.signature_input =
        Replace(headers.signature_input, "(\"@method\" \"@target-uri\" \"@authority\" \"content-digest\")", list);
    return headers;
  };
  const char* wrong[] = {
      "(\"@method\" \"@target-uri\" \"@authority\")",                              // no content-digest
      "(\"@method\" \"@target-uri\" \"content-digest\")",                          // no authority
      "(\"@target-uri\" \"@method\" \"@authority\" \"content-digest\")",           // reordered
      "(\"@method\" \"@target-uri\" \"@authority\" \"content-digest\" \"date\")",  // extra
      "(\"@method\" \"@path\" \"@authority\" \"content-digest\")",                 // @path for @target-uri
      "(\"@method\" \"@target-uri\" \"@authority\" \"content-digest\";sf)",        // component parameters
      "(\"@method\" \"@target-uri\" \"@authority\" \"Content-Digest\")",           // not lower case
      "()",
  };
  for (const char* list : wrong) {
    const SignatureHeaders headers = with_list(list);
    EXPECT_EQ(ParseFault(headers.signature_input, headers.signature), SignatureFault::kWrongComponents) << list;
  }
  const char* malformed[] = {
      "(\"@method\" \"@target-uri\" \"@authority\" \"content-digest\" \"@method\")",  // repeated
      "(@method \"@target-uri\" \"@authority\" \"content-digest\")",                  // not an item
      "(\"@method\" \"@target-uri\" \"@authority\" content-digest)",                  // a token
      "(\"@method\" \"@target-uri\" \"@authority\" \"\")",                            // empty
  };
  for (const char* list : malformed) {
    const SignatureHeaders headers = with_list(list);
    EXPECT_EQ(ParseFault(headers.signature_input, headers.signature), SignatureFault::kMalformed) << list;
  }

  // VerifyRequestSignature checks the components it is given.
  auto parsed = ParseRequestSignature(Sign().signature_input, Sign().signature, Post());
  ASSERT_TRUE(parsed.ok());
  parsed->components.pop_back();
  EXPECT_EQ(SignatureFaultOf(VerifyRequestSignature(*parsed, RfcPublicKey(), PolicyAt(kCreated))),
            SignatureFault::kWrongComponents);
}

// --- labels ----------------------------------------------------------------

TEST(RequestSignature, RefusesExtraOrRepeatedLabels) {
  const SignatureHeaders one = Sign();
  const SignatureHeaders two = HandSigned(kGoodParams, Post(), "sig2");
  ASSERT_EQ(CheckFault(two, Post(), PolicyAt(kCreated)), SignatureFault::kNone);

  // Two valid signatures: exactly one is taken.
  SignatureHeaders both = {one.signature_input + ", " + two.signature_input, one.signature + ", " + two.signature};
  EXPECT_EQ(ParseFault(both.signature_input, both.signature), SignatureFault::kWrongComponents);

  // Labels that do not pair up.
  EXPECT_EQ(ParseFault(one.signature_input, two.signature), SignatureFault::kMalformed);
  EXPECT_EQ(ParseFault(one.signature_input, one.signature + ", " + two.signature), SignatureFault::kMalformed);
  EXPECT_EQ(ParseFault(both.signature_input, one.signature), SignatureFault::kMalformed);

  // A repeated label, even with the same value.
  EXPECT_EQ(ParseFault(one.signature_input + ", " + one.signature_input, one.signature), SignatureFault::kMalformed);
  EXPECT_EQ(ParseFault(one.signature_input, one.signature + "," + one.signature), SignatureFault::kMalformed);

  // No signature at all.
  EXPECT_EQ(ParseFault("", ""), SignatureFault::kWrongComponents);

  // More members than the cap, even when a label is asked for.
  std::string input = one.signature_input;
  std::string signature = one.signature;
  for (size_t i = 2; i <= kMaxSignatureLabels; ++i) {
    input += ", s" + std::to_string(i) + "=(\"@method\")";
    signature += ", s" + std::to_string(i) + "=:AAAA:";
  }
  EXPECT_TRUE(ParseSignatureFields(input, signature, "sig1").ok());
  input += ", extra=(\"@method\")";
  signature += ", extra=:AAAA:";
  EXPECT_EQ(SignatureFaultOf(ParseSignatureFields(input, signature, "sig1").status()), SignatureFault::kMalformed);
}

// --- structured-field syntax and caps --------------------------------------

TEST(RequestSignature, RefusesMalformedSignatureInput) {
  const SignatureHeaders good = HandSigned(kGoodParams);
  ASSERT_EQ(ParseFault(good.signature_input, good.signature), SignatureFault::kNone);
  const std::string& in = good.signature_input;
  const std::string cases[] = {
      in.substr(0, in.find(')')),                                     // unterminated inner list
      in.substr(0, in.size() - 3),                                    // unterminated string
      Replace(in, "created=1700000000", "created=1700000000.5"),      // a decimal
      Replace(in, "created=1700000000", "created=1000000000000000"),  // 16 digits
      Replace(in, "created=1700000000", "created="),                  // no value
      Replace(in, "created=1700000000", "created=-"),                 // no digits
      Replace(in, "a.example#k1", "a.example#k\\1"),                  // bad escape
      Replace(in, "a.example#k1", "a.example#k\x01"),                 // a control character
      Replace(in, "a.example#k1", "a.example#k\xc3\xa9"),             // non-ASCII
      Replace(in, "\" \"@target-uri", "\"\"@target-uri"),             // no space between items
      Replace(in, "sig1=", "Sig1="),                                  // upper-case key
      Replace(in, "sig1=", "1sig="),                                  // key starting with a digit
      Replace(in, "sig1=", "sig1 ="),                                 // space before '='
      Replace(in, ";created", "; created=1;created"),                 // a repeated parameter
      Replace(in, ";created", ";Created"),                            // upper-case parameter
      in + ",",                                                       // a trailing comma
      in + " x",                                                      // junk after a member
      "sig1=\"a string\"",                                            // not an inner list
      "sig1",                                                         // a bare key
      Replace(in, "expires=1700000300", "expires=?2"),                // a bad boolean
      Replace(in, "expires=1700000300", "expires=%"),                 // not an item
  };
  for (const std::string& input : cases) {
    const Status status = ParseRequestSignature(input, good.signature, Post()).status();
    EXPECT_EQ(SignatureFaultOf(status), SignatureFault::kMalformed) << input << " -> " << status.ToString();
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(status.message().starts_with("malformed: ")) << status.message();
  }
  // An empty label, in both fields.
  EXPECT_EQ(ParseFault(Replace(in, "sig1=", "="), Replace(good.signature, "sig1=", "=")), SignatureFault::kMalformed);
}

TEST(RequestSignature, MalformedFieldMessagesNameTheProblem) {
  const SignatureHeaders good = HandSigned(kGoodParams);
  const std::string& in = good.signature_input;
  const std::pair<std::string, std::string_view> cases[] = {
      {Replace(in, "created=1700000000", "created=1700000000.5"), "decimal"},
      {in + ",", "trailing ','"},
      {in.substr(0, in.size() - 3), "unterminated string"},
      {Replace(in, "a.example#k1", "a.example#k\\1"), "escape"},
      {Replace(in, "a.example#k1", "a.example#k\x01"), "outside 0x20..0x7E"},
      {Replace(in, "created=1700000000", "created=1000000000000000"), "15 digits"},
      {"sig1=(\"a\"\"b\")", "after an inner list item"},
  };
  for (const auto& [input, words] : cases) {
    const Status status = ParseRequestSignature(input, good.signature, Post()).status();
    EXPECT_TRUE(status.message().starts_with("malformed: Signature-Input at ")) << status.message();
    EXPECT_NE(status.message().find(words), std::string::npos) << status.message();
  }
}

TEST(RequestSignature, RefusesMalformedSignature) {
  const SignatureHeaders good = HandSigned(kGoodParams);
  const std::string base64 = Base64Encode(SignatureBytes(good.signature));
  ASSERT_EQ(ParseFault(good.signature_input, "sig1=:" + base64 + ":"), SignatureFault::kNone);
  const std::string cases[] = {
      "sig1=:" + base64,                                                // unterminated
      "sig1=:" + base64.substr(0, 40) + "-" + base64.substr(41) + ":",  // base64url alphabet
      "sig1=:" + Base64Encode(std::string(63, 'x')) + ":",              // 63 bytes
      "sig1=:" + Base64Encode(std::string(65, 'x')) + ":",              // 65 bytes
      "sig1=:" + base64.substr(0, 86) + "=A:",                          // misplaced padding
      "sig1=:" + base64.substr(0, 87) + ":",                            // incomplete padding
      "sig1=:" + base64.substr(0, 86) + "===:",                         // too much padding
      "sig1=:" + base64.substr(0, 85) + ":",                            // a lone final character
      "sig1=:" + base64 + ":;x=1",                                      // parameters
      "sig1=\"" + base64 + "\"",                                        // a string
      "sig1=\"" + std::string(64, 'x') + "\"",                          // a string of 64 bytes
      "sig1=(:" + base64 + ":)",                                        // an inner list
      "sig1",                                                           // a boolean
  };
  for (const std::string& signature : cases) {
    const Status status = ParseRequestSignature(good.signature_input, signature, Post()).status();
    EXPECT_EQ(SignatureFaultOf(status), SignatureFault::kMalformed) << signature << " -> " << status.ToString();
  }
  // Unpadded base64 is taken, as RFC 8941 asks.
  std::string unpadded = base64;
  while (unpadded.back() == '=') unpadded.pop_back();
  EXPECT_EQ(CheckFault({good.signature_input, "sig1=:" + unpadded + ":"}, Post(), PolicyAt(kCreated)),
            SignatureFault::kNone);
}

TEST(RequestSignature, CapsFieldsComponentsAndParameters) {
  const SignatureHeaders good = HandSigned(kGoodParams);
  const std::string at_cap =
      std::string(kMaxSignatureFieldBytes - good.signature_input.size(), ' ') + good.signature_input;
  EXPECT_EQ(CheckFault({at_cap, good.signature}, Post(), PolicyAt(kCreated)), SignatureFault::kNone);
  const Status over = ParseRequestSignature(" " + at_cap, good.signature, Post()).status();
  EXPECT_EQ(SignatureFaultOf(over), SignatureFault::kMalformed);
  EXPECT_NE(over.message().find("4097 bytes"), std::string::npos) << over.message();
  const std::string long_signature = std::string(kMaxSignatureFieldBytes, ' ') + good.signature;
  EXPECT_EQ(ParseFault(good.signature_input, long_signature), SignatureFault::kMalformed);

  std::string components = "(";
  for (size_t i = 0; i < kMaxCoveredComponents; ++i) components += "\"c" + std::to_string(i) + "\" ";
  components.back() = ')';
  EXPECT_EQ(SignatureFaultOf(ParseSignatureFields("s=" + components, "s=:AAAA:").status()), SignatureFault::kNone);
  components.back() = ' ';
  components += "\"one-more\")";
  EXPECT_EQ(SignatureFaultOf(ParseSignatureFields("s=" + components, "s=:AAAA:").status()), SignatureFault::kMalformed);

  // Byte sequences: padding optional, but only where it belongs.
  EXPECT_TRUE(ParseSignatureFields("s=()", "s=:AA==:").ok());
  EXPECT_TRUE(ParseSignatureFields("s=()", "s=:AA:").ok());
  EXPECT_TRUE(ParseSignatureFields("s=()", "s=::").ok());
  for (const char* signature : {"s=:====:", "s=:A===:", "s=:AA=:", "s=:A=A=:", "s=:AB==:", "s=:A:"}) {
    EXPECT_EQ(SignatureFaultOf(ParseSignatureFields("s=()", signature).status()), SignatureFault::kMalformed)
        << signature;
  }

  // RFC 8941 integers have at most 15 digits; strings hold 0x20..0x7E.
  EXPECT_TRUE(ParseSignatureFields("s=();p=-999999999999999", "s=:AAAA:").ok());
  EXPECT_EQ(SignatureFaultOf(ParseSignatureFields("s=();p=1000000000000000", "s=:AAAA:").status()),
            SignatureFault::kMalformed);
  EXPECT_TRUE(ParseSignatureFields("s=();p=\" ~\"", "s=:AAAA:").ok());
  for (const char* text : {"s=();p=\"\x1f\"", "s=();p=\"\x7f\"", "s=();p=\"\xc3\xa9\""}) {
    EXPECT_EQ(SignatureFaultOf(ParseSignatureFields(text, "s=:AAAA:").status()), SignatureFault::kMalformed);
  }

  std::string params;
  for (size_t i = 0; i < kMaxSignatureParameters; ++i) params += ";p" + std::to_string(i) + "=1";
  EXPECT_EQ(SignatureFaultOf(ParseSignatureFields("s=()" + params, "s=:AAAA:").status()), SignatureFault::kNone);
  params += ";one-more=1";
  EXPECT_EQ(SignatureFaultOf(ParseSignatureFields("s=()" + params, "s=:AAAA:").status()), SignatureFault::kMalformed);
}

TEST(RequestSignature, RefusesAnInvalidRequestAsTheReceiverSeesIt) {
  const SignatureHeaders headers = Sign();
  ASSERT_EQ(ParseFault(headers.signature_input, headers.signature, Post()), SignatureFault::kNone);
  const auto with = [](auto change) {
    RequestComponents request = Post();
    change(request);
    return request;
  };
  const RequestComponents refused[] = {
      with([](RequestComponents& r) { r.method = ""; }),
      with([](RequestComponents& r) { r.method = "PO ST"; }),
      with([](RequestComponents& r) { r.method = "POST\n"; }),
      with([](RequestComponents& r) { r.method = std::string(kMaxMethodBytes + 1, 'P'); }),
      with([](RequestComponents& r) { r.target_uri = "/_federation/v1/peer?x=1"; }),
      with([](RequestComponents& r) { r.target_uri = "ftp://b.example/x"; }),
      with([](RequestComponents& r) { r.target_uri = "https:///x"; }),
      with([](RequestComponents& r) { r.target_uri = "https://b.example/x#frag"; }),
      with([](RequestComponents& r) { r.target_uri = "https://b.example/a b"; }),
      with([](RequestComponents& r) { r.target_uri = "https://b.example/\n\"@authority\": b.example"; }),
      with([](RequestComponents& r) { r.target_uri = "https://b.example/" + std::string(kMaxTargetUriBytes, 'x'); }),
      with([](RequestComponents& r) { r.authority = ""; }),
      with([](RequestComponents& r) { r.authority = "user@b.example"; }),
      with([](RequestComponents& r) { r.authority = "b.example:https"; }),
      with([](RequestComponents& r) { r.authority = "b.example:65536"; }),
      with([](RequestComponents& r) { r.authority = "b.example:1:2"; }),
      with([](RequestComponents& r) { r.authority = "[::1"; }),
      with([](RequestComponents& r) { r.authority = "[]"; }),
      with([](RequestComponents& r) { r.authority = "[::1]x"; }),
      with([](RequestComponents& r) { r.authority = "b.example/x"; }),
      with([](RequestComponents& r) { r.content_digest = "  "; }),
      with([](RequestComponents& r) { r.content_digest = ContentDigest(kBody) + "\n\"x\": y"; }),
  };
  for (const RequestComponents& request : refused) {
    const Status status = ParseRequestSignature(headers.signature_input, headers.signature, request).status();
    EXPECT_EQ(SignatureFaultOf(status), SignatureFault::kMalformed)
        << request.method << " " << request.target_uri << " " << request.authority << " -> " << status.ToString();
  }
  // Surrounding white space in Content-Digest is not part of the value.
  RequestComponents padded = Post();
  padded.content_digest = " \t" + padded.content_digest + " ";
  EXPECT_EQ(CheckFault(headers, padded, PolicyAt(kCreated)), SignatureFault::kNone);
}

// --- signing ---------------------------------------------------------------

TEST(SignRequest, RefusesWhatAReceiverWouldRefuse) {
  ASSERT_TRUE(SignRequest(Post(), Params(), RfcKey()).ok());

  auto ec = PrivateKey::Generate(KeyType::kEcP256);
  ASSERT_TRUE(ec.ok());
  EXPECT_EQ(SignRequest(Post(), Params(), *ec).status().code(), StatusCode::kInvalidArgument);

  const auto refused = [](const RequestComponents& request, const RequestSignatureParams& params) {
    const Status status = SignRequest(request, params, RfcKey()).status();
    return !status.ok() && status.code() == StatusCode::kInvalidArgument;
  };
  RequestSignatureParams p = Params();
  p.expires = p.created;
  EXPECT_TRUE(refused(Post(), p));
  p = Params();
  p.created = -5;
  p.expires = 10;
  EXPECT_TRUE(refused(Post(), p));
  p = Params();
  p.expires = 1'000'000'000'000'000;  // 16 digits: not an RFC 8941 integer
  EXPECT_TRUE(refused(Post(), p));
  p = Params();
  p.nonce = "short";
  EXPECT_TRUE(refused(Post(), p));
  p = Params();
  p.nonce = std::string(20, 'n') + "\n";
  EXPECT_TRUE(refused(Post(), p));
  p = Params();
  p.key_id = "";
  EXPECT_TRUE(refused(Post(), p));
  p = Params();
  p.key_id = "a.example#k\xc3\xa9";
  EXPECT_TRUE(refused(Post(), p));

  RequestComponents r = Post();
  r.method = "BAD METHOD";
  EXPECT_TRUE(refused(r, Params()));
  r = Post();
  r.target_uri = "/relative";
  EXPECT_TRUE(refused(r, Params()));
  r = Post();
  r.content_digest = "";
  EXPECT_TRUE(refused(r, Params()));
}

TEST(SignRequest, EscapesStringsAsRfc8941Says) {
  RequestSignatureParams p = Params();
  p.key_id = "a\"b\\c";
  const SignatureHeaders headers = Sign(Post(), p);
  EXPECT_NE(headers.signature_input.find(";keyid=\"a\\\"b\\\\c\";"), std::string::npos) << headers.signature_input;
  auto parsed = ParseRequestSignature(headers.signature_input, headers.signature, Post());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->params.key_id, "a\"b\\c");
  EXPECT_TRUE(VerifyRequestSignature(*parsed, RfcPublicKey(), PolicyAt(kCreated)).ok());
}

// ---------------------------------------------------------------------------
// Building blocks.

TEST(SignatureBase, RefusesLineBreaksAndControls) {
  const std::vector<SignatureBaseLine> good = {{"@method", "POST"}, {"x-tab", "a\tb"}};
  auto base = BuildSignatureBase(good, "(\"@method\" \"x-tab\")");
  ASSERT_TRUE(base.ok());
  EXPECT_EQ(*base, "\"@method\": POST\n\"x-tab\": a\tb\n\"@signature-params\": (\"@method\" \"x-tab\")");

  for (const char* value : {"POST\n\"@authority\": evil", "a\rb", "a\x7f", "a\x1b"}) {
    const std::vector<SignatureBaseLine> lines = {{"@method", value}};
    EXPECT_FALSE(BuildSignatureBase(lines, "(\"@method\")").ok()) << value;
  }
  const std::vector<SignatureBaseLine> nul = {{"@method", std::string("a\0b", 3)}};
  EXPECT_FALSE(BuildSignatureBase(nul, "(\"@method\")").ok());
  const std::vector<SignatureBaseLine> bad_name = {{"na\nme", "v"}};
  EXPECT_FALSE(BuildSignatureBase(bad_name, "()").ok());
  const std::vector<SignatureBaseLine> non_ascii_name = {{"n\xc3\xa9", "v"}};
  EXPECT_FALSE(BuildSignatureBase(non_ascii_name, "()").ok());
  EXPECT_FALSE(BuildSignatureBase(good, "()\n\"x\": y").ok());
}

TEST(SignatureBase, SerializesParameters) {
  const std::vector<std::string> components = {"@method", "a\"b"};
  const std::vector<SignatureParameter> params = {{"created", int64_t{1}}, {"n", int64_t{-42}}, {"s", "x\\y"}};
  auto serialized = SerializeSignatureParams(components, params);
  ASSERT_TRUE(serialized.ok());
  EXPECT_EQ(*serialized, "(\"@method\" \"a\\\"b\");created=1;n=-42;s=\"x\\\\y\"");

  const std::vector<SignatureParameter> bad_name = {{"Created", int64_t{1}}};
  EXPECT_FALSE(SerializeSignatureParams(components, bad_name).ok());
  const std::vector<SignatureParameter> big = {{"created", int64_t{1'000'000'000'000'000}}};
  EXPECT_FALSE(SerializeSignatureParams(components, big).ok());
  const std::vector<SignatureParameter> control = {{"s", "a\nb"}};
  EXPECT_FALSE(SerializeSignatureParams(components, control).ok());
  const std::vector<std::string> bad_component = {"a\x80"};
  EXPECT_FALSE(SerializeSignatureParams(bad_component, {}).ok());
}

TEST(SignatureFault, NamesAndCodes) {
  struct Case {
    SignatureFault fault;
    std::string_view name;
    StatusCode code;
    Status status;
  };
  // Each fault as the functions above produce it.
  auto parsed = ParseRequestSignature(Sign().signature_input, Sign().signature, Post());
  ASSERT_TRUE(parsed.ok());
  const Case cases[] = {
      {SignatureFault::kMalformed, "malformed", StatusCode::kInvalidArgument, CheckContentDigest("x=", "")},
      {SignatureFault::kWrongComponents, "wrong-components", StatusCode::kInvalidArgument,
       ParseRequestSignature(kB26SignatureInput, kB26Signature, Post()).status()},
      {SignatureFault::kDigestMismatch, "digest-mismatch", StatusCode::kInvalidArgument,
       CheckContentDigest(ContentDigest("a"), "b")},
      {SignatureFault::kFuture, "future", StatusCode::kUnauthenticated,
       VerifyRequestSignature(*parsed, RfcPublicKey(), PolicyAt(0))},
      {SignatureFault::kStale, "stale", StatusCode::kUnauthenticated,
       VerifyRequestSignature(*parsed, RfcPublicKey(), PolicyAt(kCreated + 1000))},
      {SignatureFault::kLifetime, "lifetime", StatusCode::kUnauthenticated,
       [&] {
         RequestSignaturePolicy policy = PolicyAt(kCreated);
         policy.max_lifetime_seconds = 10;
         return VerifyRequestSignature(*parsed, RfcPublicKey(), policy);
       }()},
      {SignatureFault::kBadSignature, "bad-signature", StatusCode::kUnauthenticated,
       [&] {
         ParsedRequestSignature copy = *parsed;
         copy.signature_base += " ";
         return VerifyRequestSignature(copy, RfcPublicKey(), PolicyAt(kCreated));
       }()},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(SignatureFaultName(c.fault), c.name);
    EXPECT_EQ(SignatureFaultOf(c.status), c.fault) << c.status.ToString();
    EXPECT_EQ(c.status.code(), c.code) << c.status.ToString();
    EXPECT_TRUE(c.status.message().starts_with(std::string(c.name) + ": ")) << c.status.message();
  }
  EXPECT_EQ(SignatureFaultName(SignatureFault::kInternal), "internal");
  EXPECT_EQ(SignatureFaultName(SignatureFault::kNone), "");
  EXPECT_EQ(SignatureFaultOf(Status::Ok()), SignatureFault::kNone);
  // Statuses from elsewhere, or with a code that does not fit the prefix.
  EXPECT_EQ(SignatureFaultOf(NotFound("no key a.example#k1")), SignatureFault::kInternal);
  EXPECT_EQ(SignatureFaultOf(Internal("stale: not ours")), SignatureFault::kInternal);
  EXPECT_EQ(SignatureFaultOf(InvalidArgument("stale: wrong code")), SignatureFault::kInternal);
}

}  // namespace
}  // namespace backpack::protocol
