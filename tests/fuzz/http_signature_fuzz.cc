// Fuzzes the parsing and checking of signed requests between nodes.
//
// The input is up to four LF-separated parts:
//   <Signature-Input> LF <Signature> LF <Content-Digest> LF <body>
// (missing parts are empty). The fields are parsed against a fixed request
// and verified with RFC 9421's test-key-ed25519, so a seed signed with that
// key reaches the signature check. Besides not crashing, every answer must
// keep the promises of protocol/http_signature.h:
// - a refusal names one of the documented faults, with its status code;
// - a parsed signature has the profile's shape, and its base ends with the
//   Signature-Input member re-serialized;
// - what the generic parser reads re-serializes to a field it reads the
//   same way again;
// - re-signing the parsed parameters with the test key gives headers that
//   parse and verify;
// - ContentDigest(body) always passes CheckContentDigest.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/http_signature.h"
#include "protocol/jws.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using backpack::Status;
using backpack::StatusCode;
using backpack::protocol::CheckContentDigest;
using backpack::protocol::ContentDigest;
using backpack::protocol::ParsedRequestSignature;
using backpack::protocol::ParseRequestSignature;
using backpack::protocol::ParseSignatureFields;
using backpack::protocol::PrivateKey;
using backpack::protocol::RequestComponents;
using backpack::protocol::RequestSignaturePolicy;
using backpack::protocol::SerializeSignatureParams;
using backpack::protocol::SignatureFault;
using backpack::protocol::SignatureFaultOf;
using backpack::protocol::SignRequest;
using backpack::protocol::VerifyRequestSignature;

using backpack::fuzz::Require;

// RFC 9421 appendix B.1.4, test-key-ed25519.
constexpr std::string_view kTestKeyPem =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n"
    "-----END PRIVATE KEY-----\n";

const PrivateKey& TestKey() {
  static const PrivateKey key = [] {
    auto k = PrivateKey::FromPem(kTestKeyPem);
    Require(k.ok());
    return *k;
  }();
  return key;
}

// Every refusal is a documented fault with the code the table gives it.
void RequireFault(const Status& status) {
  if (status.ok()) return;
  const SignatureFault fault = SignatureFaultOf(status);
  Require(fault != SignatureFault::kNone && fault != SignatureFault::kInternal);
  const bool client_error = fault == SignatureFault::kMalformed || fault == SignatureFault::kWrongComponents ||
                            fault == SignatureFault::kDigestMismatch;
  Require(status.code() == (client_error ? StatusCode::kInvalidArgument : StatusCode::kUnauthenticated));
}

std::string_view NextPart(std::string_view* rest) {
  const size_t lf = rest->find('\n');
  const std::string_view part = rest->substr(0, lf);
  rest->remove_prefix(lf == std::string_view::npos ? rest->size() : lf + 1);
  return part;
}

void CheckGenericFields(std::string_view signature_input, std::string_view signature) {
  auto fields = ParseSignatureFields(signature_input, signature);
  RequireFault(fields.status());
  if (!fields.ok()) return;
  Require(!fields->label.empty());
  auto serialized = SerializeSignatureParams(fields->components, fields->parameters);
  Require(serialized.ok());
  // The canonical form reads back the same, and serializes to itself.
  auto again = ParseSignatureFields(fields->label + "=" + *serialized, signature);
  Require(again.ok());
  Require(again->label == fields->label);
  Require(again->components == fields->components);
  Require(again->parameters.size() == fields->parameters.size());
  for (size_t i = 0; i < fields->parameters.size(); ++i) {
    Require(again->parameters[i].name == fields->parameters[i].name);
    Require(again->parameters[i].value == fields->parameters[i].value);
  }
  Require(again->signature == fields->signature);
  auto reserialized = SerializeSignatureParams(again->components, again->parameters);
  Require(reserialized.ok() && *reserialized == *serialized);
}

void CheckParsed(const ParsedRequestSignature& parsed, const RequestComponents& request) {
  Require(parsed.components.size() == 4);
  Require(parsed.algorithm == "ed25519");
  Require(parsed.signature.size() == 64);
  Require(parsed.signature_base.starts_with("\"@method\": " + request.method + "\n"));
  Require(parsed.signature_base.find("\n\"@signature-params\": (\"@method\" \"@target-uri\" \"@authority\" "
                                     "\"content-digest\");") != std::string::npos);

  for (const int64_t now : {parsed.params.created, parsed.params.expires, int64_t{0}, int64_t{1'700'000'000}}) {
    RequireFault(VerifyRequestSignature(parsed, TestKey().public_key(), RequestSignaturePolicy{now}));
  }

  // The same parameters, signed with the test key, parse and verify.
  if (parsed.params.expires > parsed.params.created) {
    auto signed_again = SignRequest(request, parsed.params, TestKey());
    Require(signed_again.ok());
    auto reparsed = ParseRequestSignature(signed_again->signature_input, signed_again->signature, request);
    Require(reparsed.ok());
    Require(reparsed->params.nonce == parsed.params.nonce && reparsed->params.key_id == parsed.params.key_id);
    RequestSignaturePolicy policy{parsed.params.created};
    policy.max_lifetime_seconds = parsed.params.expires - parsed.params.created;
    Require(VerifyRequestSignature(*reparsed, TestKey().public_key(), policy).ok());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  const std::string_view signature_input = NextPart(&rest);
  const std::string_view signature = NextPart(&rest);
  const std::string_view content_digest = NextPart(&rest);
  const std::string_view body = rest;

  const RequestComponents request = {"POST", "https://b.example/_federation/v1/peer", "b.example",
                                     std::string(content_digest)};
  auto parsed = ParseRequestSignature(signature_input, signature, request);
  RequireFault(parsed.status());
  if (parsed.ok()) CheckParsed(*parsed, request);
  CheckGenericFields(signature_input, signature);

  RequireFault(CheckContentDigest(content_digest, body));
  Require(CheckContentDigest(ContentDigest(body), body).ok());
  // The whole input as one field, as a header would arrive unsplit.
  const std::string_view whole(reinterpret_cast<const char*>(data), size);
  RequireFault(CheckContentDigest(whole, body));
  return 0;
}
