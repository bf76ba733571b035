// Signed requests between nodes: RFC 9421 HTTP Message Signatures with
// Ed25519 over an RFC 9530 Content-Digest.
//
// The profile
// -----------
// Every server-to-server request carries three header fields:
//
//   Content-Digest: sha-256=:<base64 of SHA-256(body)>:
//   Signature-Input: sig1=("@method" "@target-uri" "@authority" "content-digest")
//       ;created=<unix s>;expires=<unix s>;nonce="<nonce>";keyid="<key id>";alg="ed25519"
//   Signature: sig1=:<base64 of the 64-byte Ed25519 signature>:
//
// (Signature-Input is one line on the wire.)
//
// - Content-Digest (RFC 9530 section 2) is an RFC 8941 dictionary of
//   digests of the message content, the bytes after any Content-Encoding.
//   The signer sends sha-256. A GET or any request without content sends
//   the digest of the empty body (sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:),
//   so every signature covers the content. A receiver checks every sha-256
//   and sha-512 member against the body it received and ignores members
//   with other keys. A field with neither of them, or with either one
//   not matching, is refused.
// - The covered components are exactly these four, in this order:
//     "@method"        the method as sent, case kept (conventionally upper
//                      case); a token of at most kMaxMethodBytes;
//     "@target-uri"    the full absolute request URI, http or https,
//                      without a fragment (RFC 9421 section 2.2.2);
//     "@authority"     host[:port] in lower case, without the scheme's
//                      default port (80 for http, 443 for https), as
//                      RFC 9421 section 2.2.3 and RFC 9110 section 4.2.3
//                      normalise it. Both sides normalise it here;
//     "content-digest" the Content-Digest field value, with leading and
//                      trailing white space removed.
// - The signature parameters are exactly created, expires, nonce, keyid
//   and alg. The signer writes them in that order; a receiver takes them in
//   any order but needs all five and no others. created and expires are
//   integer Unix seconds, with created < expires; nonce is a string of
//   kMinSignatureNonceBytes..kMaxSignatureNonceBytes characters, fresh
//   for each request; keyid is a non-empty string of at most
//   kMaxSignatureKeyIdBytes, naming the sender's key ("<node>#<key id>"
//   in the federation protocol); alg is "ed25519".
// - The signature base is built as RFC 9421 section 2.5 says: one line
//   `"<component>": <value>` per covered component, each ending in LF,
//   then `"@signature-params": <the inner list serialized as RFC 8941
//   section 4.1.1 says>` with no LF after it. The signature is Ed25519
//   (RFC 8032) over those bytes: RFC 9421 section 3.3.6.
// - Signing uses the label "sig1". A receiver accepts any label, but
//   exactly one signature: both fields must hold that label and nothing
//   else.
// - The fields are parsed as RFC 8941 dictionaries, strictly: each field is
//   at most kMaxSignatureFieldBytes, a dictionary holds at most
//   kMaxSignatureLabels members, an inner list at most
//   kMaxCoveredComponents items, and an item or list at most
//   kMaxSignatureParameters parameters. Decimals are refused, and so are
//   repeated dictionary keys or parameter names (RFC 8941 would let the
//   last one win), byte sequences with non-zero pad bits, component
//   identifiers carrying parameters, and parameters on a Signature member.
//
// A receiver checks, in this order:
//   1. ParseRequestSignature: the fields parse; the components and
//      parameters are the profile's; the base is rebuilt from the request
//      as the receiver sees it (its own absolute URI and Host).
//   2. The receiver finds the key named by params.key_id. Fetching and
//      caching peers' keys is federation/'s job, not this file's.
//   3. VerifyRequestSignature: the time limits, then the Ed25519
//      signature.
//   4. CheckContentDigest: the body matches the signed Content-Digest
//      field.
//   5. Replay: the receiver refuses a (key_id, nonce) it has already
//      accepted while that signature is unexpired. Nothing here remembers
//      nonces: federation/ keeps a bounded cache of each accepted pair
//      until its expires, which step 3 holds to at most
//      max_skew_seconds + max_lifetime_seconds after now.
// The receiver also checks that the authority is its own name. The
// signature only proves which authority the sender meant.
//
// Errors
// ------
// Every refusal from ParseRequestSignature, VerifyRequestSignature and
// CheckContentDigest is a Status whose message starts with the name of its
// SignatureFault and ": ", followed by what was wrong. SignatureFaultOf()
// recovers the fault. The code follows from the fault, and the HTTP layer
// is meant to answer as follows, with the fault name as the error code:
//   kMalformed        InvalidArgument  400  the fields do not parse, pass a
//                                           cap, or a request part is invalid
//   kWrongComponents  InvalidArgument  400  not the profile: components,
//                                           parameters, alg, nonce or keyid
//   kDigestMismatch   InvalidArgument  400  the body does not match its digest
//   kFuture           Unauthenticated  401  created is later than now + skew
//   kStale            Unauthenticated  401  expires is now or earlier
//   kLifetime         Unauthenticated  401  expires is not after created, or
//                                           is more than max_lifetime later
//   kBadSignature     Unauthenticated  401  the signature does not verify
//                                           with this key (tampering, wrong
//                                           or non-Ed25519 key)
//   kInternal         Internal         500  the crypto library failed
// For kFuture and kStale the answer should carry the receiver's Date so
// that the sender can notice clock skew. An unknown keyid or a replayed
// nonce is the caller's own 401.
//
// Pure: no clock (RequestSignaturePolicy::now), no I/O, no randomness (the
// caller draws the nonce). Never throws. Every function may be called from
// several threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/status.h"
#include "protocol/jws.h"

namespace backpack::protocol {

inline constexpr std::string_view kRequestSignatureLabel = "sig1";
inline constexpr std::string_view kRequestSignatureAlgorithm = "ed25519";
// The covered components of the profile, in order.
inline constexpr std::string_view kRequestSignatureComponents[] = {"@method", "@target-uri", "@authority",
                                                                   "content-digest"};

inline constexpr size_t kMaxSignatureFieldBytes = 4096;  // each of Signature-Input, Signature, Content-Digest
inline constexpr size_t kMaxSignatureLabels = 4;         // dictionary members per field
inline constexpr size_t kMaxCoveredComponents = 16;      // items of one inner list
inline constexpr size_t kMaxSignatureParameters = 16;    // parameters of one item or inner list
inline constexpr size_t kMinSignatureNonceBytes = 16;
inline constexpr size_t kMaxSignatureNonceBytes = 128;
inline constexpr size_t kMaxSignatureKeyIdBytes = 512;
inline constexpr size_t kMaxMethodBytes = 32;
inline constexpr size_t kMaxTargetUriBytes = 8192;
inline constexpr size_t kMaxAuthorityBytes = 300;

// Why a signed request was refused; see the table in the file comment.
enum class SignatureFault {
  kNone,  // an OK status
  kMalformed,
  kWrongComponents,
  kDigestMismatch,
  kFuture,
  kStale,
  kLifetime,
  kBadSignature,
  kInternal,  // also any status that did not come from this file
};

// Stable names for logs, metrics and error bodies: "malformed",
// "wrong-components", "digest-mismatch", "future", "stale", "lifetime",
// "bad-signature", "internal"; "" for kNone.
std::string_view SignatureFaultName(SignatureFault fault);

// The fault a status from this file stands for.
SignatureFault SignatureFaultOf(const Status& status);

// ---------------------------------------------------------------------------
// RFC 9530 Content-Digest.

// "sha-256=:<base64 of SHA-256(body)>:", the value of Content-Digest.
std::string ContentDigest(std::string_view body);

// Checks a received Content-Digest field value against the body. OK when
// it holds a sha-256 or sha-512 member (or both) and every such member
// matches. kMalformed: the field is over kMaxSignatureFieldBytes, is not a
// dictionary, has more than kMaxSignatureLabels members, has a sha-256 or
// sha-512 member that is not a byte sequence, or has neither algorithm.
// kDigestMismatch: a digest does not match.
Status CheckContentDigest(std::string_view header, std::string_view body);

// ---------------------------------------------------------------------------
// The profile: signing and verifying a request.

// What the signature covers, as the signer sends it or the receiver sees it.
struct RequestComponents {
  std::string method;          // "POST"
  std::string target_uri;      // "https://b.example/_federation/v1/peer"
  std::string authority;       // "b.example" (normalised here; case and default port do not matter)
  std::string content_digest;  // the Content-Digest field value, e.g. ContentDigest(body)
};

struct RequestSignatureParams {
  int64_t created = 0;  // Unix seconds
  int64_t expires = 0;  // Unix seconds, after created
  std::string nonce;    // fresh per request; printable ASCII
  std::string key_id;   // printable ASCII
};

// The Signature-Input and Signature field values to send.
struct SignatureHeaders {
  std::string signature_input;
  std::string signature;
};

// Signs a request under the label "sig1". InvalidArgument when the key is
// not Ed25519, a component is invalid (a method that is not a token, a URI
// that is not absolute http(s) or holds a fragment, an authority with
// user info, a Content-Digest with control characters), created is
// negative, expires is not after created, or the nonce or key id is outside
// its length bounds or holds characters an RFC 8941 string cannot carry
// (only 0x20..0x7E). The signature is deterministic. It does not check
// `components.content_digest` against any body: pass ContentDigest(body).
Result<SignatureHeaders> SignRequest(const RequestComponents& components, const RequestSignatureParams& params,
                                     const PrivateKey& key);

// One signature read from a request, checked against the profile, with the
// base rebuilt from the receiver's view of the request.
struct ParsedRequestSignature {
  std::string label;
  std::vector<std::string> components;  // the profile's four, in order
  RequestSignatureParams params;
  std::string algorithm;       // "ed25519"
  std::string signature_base;  // the bytes the signature covers
  std::string signature;       // 64 raw bytes
};

// Parses the Signature-Input and Signature field values. The components
// and parameters must be the profile's exactly, and the base is built from
// `request`. Refusals: kMalformed (syntax, caps, repeated keys, a
// parameter of the wrong type, an invalid or missing request part, a
// signature that is not 64 bytes), kWrongComponents (see the table above;
// also no signature or more than one). This step needs no key and no clock.
Result<ParsedRequestSignature> ParseRequestSignature(std::string_view signature_input, std::string_view signature,
                                                     const RequestComponents& request);

struct RequestSignaturePolicy {
  int64_t now = 0;                     // the receiver's clock, Unix seconds
  int64_t max_skew_seconds = 60;       // how far in the future created may be (>= 0)
  int64_t max_lifetime_seconds = 300;  // the largest expires - created allowed (>= 1)
};

// Checks `parsed` against the profile again, then the time limits, then
// the signature with `key`. In order: kWrongComponents / kMalformed as for
// ParseRequestSignature; kLifetime when expires <= created or expires -
// created > max_lifetime_seconds; kFuture when created > now +
// max_skew_seconds; kStale when expires <= now; kBadSignature when `key` is
// not Ed25519 or the signature does not verify over parsed.signature_base.
// Does not check the nonce for replay or the body against its digest.
Status VerifyRequestSignature(const ParsedRequestSignature& parsed, const PublicKey& key,
                              const RequestSignaturePolicy& policy);

// ---------------------------------------------------------------------------
// RFC 9421 building blocks without the profile. The profile functions above
// are made of these. The RFC's own test vectors are checked with them.

// A signature parameter: an RFC 8941 integer or string. Other value types
// are refused when parsing.
struct SignatureParameter {
  std::string name;
  std::variant<int64_t, std::string> value;
};

// One signature as the fields carry it, before any profile check.
struct SignatureFields {
  std::string label;
  std::vector<std::string> components;         // component identifiers, in order, without quotes
  std::vector<SignatureParameter> parameters;  // in the order received
  std::string signature;                       // decoded bytes
};

// Parses both fields (at most kMaxSignatureFieldBytes each, as strict
// RFC 8941 dictionaries with the caps above) and returns the member
// `label`, or the only member when `label` is empty. Both fields must have
// the same labels; Signature members must be byte sequences, and
// components non-empty strings, none repeated (kMalformed otherwise).
// kWrongComponents: a component with parameters; no signature or more than
// one when `label` is empty; no member `label`.
Result<SignatureFields> ParseSignatureFields(std::string_view signature_input, std::string_view signature,
                                             std::string_view label = {});

// The "@signature-params" value: the inner list of component identifiers
// with the parameters, serialized as RFC 8941 section 4.1.1 says, e.g.
// ("@method" "@authority");created=1618884473;keyid="k". InvalidArgument
// unless component identifiers and string parameters hold only 0x20..0x7E,
// parameter names are RFC 8941 keys, and integers have at most 15 digits.
Result<std::string> SerializeSignatureParams(std::span<const std::string> components,
                                             std::span<const SignatureParameter> parameters);

// One line of a signature base: a component identifier and its value.
struct SignatureBaseLine {
  std::string component;
  std::string value;
};

// The RFC 9421 section 2.5 signature base: `"<component>": <value>` LF for
// each line in order, then `"@signature-params": <signature_params>`, the
// component identifier quoted as an RFC 8941 string. InvalidArgument when
// a component holds a byte outside 0x20..0x7E, or a value or
// `signature_params` holds a control character other than HTAB, or DEL:
// no line can pose as another.
Result<std::string> BuildSignatureBase(std::span<const SignatureBaseLine> lines, std::string_view signature_params);

}  // namespace backpack::protocol
