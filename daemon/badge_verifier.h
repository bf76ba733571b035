// Verifying a badge as an earner hands it in: the step between the bytes of
// an import (a URL, assertion or credential JSON, a compact JWS or VC-JWT, a
// baked PNG or SVG) and the checks in protocol/assertion.h (OB 0.5-2.0) and
// protocol/credential.h (OB 3.0).
//
// The verifier reads the input (unbaking an image, fetching a hosted URL,
// parsing a JWS), then runs the DocumentsToFetch / CheckAssertion loop with
// the documents it fetches, verifies a SignedBadge's signature with the keys
// the check ties to the issuer, and returns everything a store needs: the
// completed badge, the report, the assertion bytes exactly as the issuer
// wrote them and every document fetched on the way, verbatim.
//
// Problems with the input are messages in the report (never a Status), so
// an import that fails says why in the same report shape as every other
// check: BAKED_IMAGE for an image that cannot be read or carries no badge,
// DETECT_VERSION for an assertion where only a credential is wanted, FETCH_DOCUMENT for a URL
// that cannot be fetched, REVOKED for a hosted URL answering 410, JWS_PARSE
// for a signed assertion that is not a well-formed JWS, VERIFY_SIGNATURE
// (once) when no issuer key checks it. docs/badges.md, "Importing a badge",
// has the details.
//
// OB 3.0 credentials are recognised by their content, whatever the input
// kind says: JSON whose @context is a Verifiable Credentials context, a JWS
// whose payload is a VC-JWT, an image baked with "openbadgecredential". They
// run the CredentialDocumentsToFetch / CheckCredential loop instead, with
// Data Integrity proofs checked against the bundled JSON-LD contexts.
//
// Fetching goes through the DocumentFetch given at construction (in the
// daemon: the guarded Fetcher). Thread-safe when the fetch function is.
// Blocking: call it on a worker thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "daemon/fetcher.h"
#include "daemon/lru_cache.h"
#include "protocol/assertion.h"
#include "protocol/baking.h"
#include "protocol/credential.h"
#include "protocol/jws.h"

namespace backpack {

// How the fetch may be answered.
enum class FetchFreshness {
  kReuseFresh,  // a cached response that is still fresh may answer without a request
  kRevalidate,  // always ask the server (conditionally, when cached)
};

// The daemon's fetch: Fetcher::Fetch with the freshness set. Tests may
// substitute their own.
using DocumentFetch = std::function<Result<FetchResult>(const std::string& url, FetchFreshness freshness)>;

// What the earner (or a stored record) hands in.
enum class InputKind {
  kUrl,        // an http(s) URL of a hosted assertion (OB 0.5-2.0)
  kAssertion,  // assertion JSON text, or OB 3.0 credential JSON
  kJws,        // a compact JWS: a SignedBadge assertion, or an OB 3.0 VC-JWT
  kImage,      // a baked PNG or SVG
};
std::string_view InputKindName(InputKind kind);  // "url", "assertion", "jws", "image"

struct VerifyRequest {
  InputKind kind = InputKind::kAssertion;
  std::string data;  // the URL, JSON, JWS or image bytes
  // Where the assertion bytes came from when a stored record is re-checked
  // (the hosted URL the first import fetched); empty otherwise. Only for
  // kAssertion. The stored bytes are still compared with the live copy at
  // the hosted URL they name, so a revocation there (410, "revoked": true)
  // shows; source_url serves the origin check of an OB 0.5 assertion, which
  // names none.
  std::string source_url;
  int64_t now = 0;                           // Unix seconds
  std::vector<std::string> verified_emails;  // the earner's verified addresses
  bool check_recipient = true;
  FetchFreshness freshness = FetchFreshness::kReuseFresh;
  // Accept only OB 3.0 credentials (the OB 3.0 API): anything else is a
  // DETECT_VERSION error.
  bool credentials_only = false;
  // Documents to use when fetching them fails for a reason that may pass
  // (kUnavailable: the issuer is down), e.g. those kept in an export bundle.
  // A document used this way is named in VerifyOutcome::fallback_urls.
  protocol::FetchedDocuments fallback_documents;
};

struct VerifyOutcome {
  protocol::CheckResult result;  // the completed badge and the report
  // The assertion or credential as the issuer wrote it: JSON text, or the
  // compact JWS of a SignedBadge or VC-JWT (never re-serialised). Empty when
  // the input could not be read.
  std::string assertion;
  protocol::PayloadForm assertion_form = protocol::PayloadForm::kJson;  // kJson or kJws
  std::string source_url;  // the hosted URL the assertion was fetched from, if it was
  // The baked image, when the input was one.
  std::optional<protocol::ImageFormat> image_format;
  // Every document fetched (or taken from the fallbacks), by URL, verbatim;
  // failed fetches are included with their status (0: transport failure).
  protocol::FetchedDocuments documents;
  std::vector<std::string> fallback_urls;
  // Some fetch failed in a way that may pass (kUnavailable: timeout,
  // refused connection, 5xx, 429): the verdict may change on a retry, so a
  // re-check should back off rather than call the badge invalid.
  bool transient_failure = false;
  // What an OB 3.0 credential says beyond the Badge model (types, results,
  // proofs, statuses, validity); empty for OB 0.5-2.0 assertions.
  std::optional<protocol::CredentialDetails> credential;
  bool valid() const { return result.report.valid(); }
};

class BadgeVerifier {
 public:
  BadgeVerifier(DocumentFetch fetch, protocol::ImageLimits image_limits = {});

  VerifyOutcome Verify(const VerifyRequest& request) const;

  // The fetch it was built with (for badge images when baking on export).
  const DocumentFetch& fetch() const { return fetch_; }

 private:
  DocumentFetch fetch_;
  protocol::ImageLimits image_limits_;
  // Issuer keys parsed from their PEM text, by that text: an issuer signs
  // many badges with one key, and parsing it costs more than checking a
  // signature with it. A PublicKey is immutable and shareable.
  mutable LruCache<protocol::PublicKey> keys_{1024};
};

}  // namespace backpack
