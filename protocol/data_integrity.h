// Verifying embedded Data Integrity proofs with Ed25519 (W3C vc-di-eddsa):
// DataIntegrityProof with cryptosuite eddsa-rdfc-2022, and the older
// Ed25519Signature2020. Both hash RDFC-1.0 canonical N-Quads:
//
//   document     = the credential without its `proof`
//   proof config = the proof without `proofValue`, with the document's
//                  @context (when the proof carries its own @context, the
//                  document's must start with it, and that @context is used
//                  for both)
//   hash data    = SHA-256(canonical proof config) || SHA-256(canonical document)
//   proofValue   = 'z' + base58btc(Ed25519 signature of the hash data)
//
// Canonicalisation runs in JSON-LD safe mode: a document with anything
// expansion would drop (a term no context defines, a relative IRI) is
// refused, since such data would not be covered by the signature. Contexts
// come from the caller's loader, by default the bundled contexts
// (protocol/bundled_contexts.h); nothing is fetched.
//
// Signers built on jsonld.js 8 and earlier escaped literals as URDNA2015 did
// (control characters other than LF and CR, and DEL, written raw). When a
// signature fails and the document or proof holds such characters, the check
// is repeated once with rdf::CanonOptions::legacy_urdna2015_escaping; for any
// other document the two forms are identical and nothing is retried.
//
// Pure: no I/O. The clock is the caller's (DataIntegrityOptions::now).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "base/status.h"
#include "protocol/credential.h"
#include "protocol/did.h"
#include "protocol/jsonld.h"

namespace backpack::protocol {

struct DataIntegrityOptions {
  // Resolves @context URLs; unset: BundledContextLoader().
  jsonld::DocumentLoader loader;
  // Processed contexts shared across calls. Null with the default loader:
  // a process-wide cache of the bundled contexts; null with a loader of the
  // caller's: none (every call processes its contexts afresh).
  jsonld::ContextCache* cache = nullptr;
  // Unix seconds. When set, a proof `created` later than now + skew, or an
  // `expires` at or before now, is refused. 0: no clock comparison (the
  // dates are still checked for form and order).
  int64_t now = 0;
  int64_t clock_skew_seconds = 300;
  // Refuse documents with data the signature would not cover. Turning it
  // off is for diagnosis only: a proof then verifies over whatever
  // expansion kept.
  bool safe_mode = true;
  jsonld::Limits limits;
  rdf::CanonOptions canon;  // legacy_urdna2015_escaping here: that form only, no retry
};

// The bytes an eddsa-rdfc-2022 or Ed25519Signature2020 proof signs:
// SHA-256 of the canonical proof configuration followed by SHA-256 of the
// canonical document (64 bytes). `proof` may still hold its proofValue (it
// is left out). Errors as for VerifyDataIntegrityProof.
Result<std::string> DataIntegrityHashData(const nlohmann::json& credential, const nlohmann::json& proof,
                                          const DataIntegrityOptions& options = {});

// Checks `proof` (one of the credential's proofs) against `credential` (the
// whole credential, proofs included) with `key`, the key its
// verificationMethod resolved to. Returns
//   OK                   the signature verifies;
//   InvalidArgument      "signature does not verify", or "malformed proof:
//                        ..." (missing or ill-formed members, a key that is
//                        not Ed25519, a proofPurpose other than
//                        assertionMethod, bad created/expires), or a
//                        document refused in safe mode or beyond a limit;
//   FailedPrecondition   "cryptosuite X is not supported" (another suite or
//                        proof type, or a proof chain): not checked.
// Never throws.
Status VerifyDataIntegrityProof(const nlohmann::json& credential, const nlohmann::json& proof,
                                const ResolvedKey& key, const DataIntegrityOptions& options = {});

// A hook for CredentialCheckOptions::data_integrity_check that calls
// VerifyDataIntegrityProof with `options`. When options.cache is null and a
// loader is given, the hook owns a cache shared by all its calls (and
// copies). Thread-safe.
DataIntegrityCheck MakeDataIntegrityCheck(DataIntegrityOptions options = {});

}  // namespace backpack::protocol
