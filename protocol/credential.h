// Reading and checking Open Badges 3.0 credentials: OpenBadgeCredential (or
// its alias AchievementCredential) and EndorsementCredential, written in the
// W3C Verifiable Credentials Data Model 1.1 or 2.0, as JSON with embedded
// proofs or as a VC-JWT (JOSE compact serialisation).
//
// Pure, like protocol/assertion.h, and used the same way:
//
//   ParsedCredential parsed = ParseCredential(bytes);
//   FetchedDocuments docs;
//   for (auto urls = CredentialDocumentsToFetch(parsed, docs, options); !urls.empty();
//        urls = CredentialDocumentsToFetch(parsed, docs, options)) {
//     for (const auto& url : urls) docs[url] = Fetch(url);  // caller's HTTP, with its limits
//   }
//   CredentialCheckResult result = CheckCredential(parsed, docs, options);
//
// The documents asked for are the DID documents and issuer documents that
// hold the keys, and the status lists; then the keys of the status lists'
// own issuers. At most kMaxCredentialDocuments URLs over at most three
// rounds. Nothing is ever fetched to learn whom to trust: a key counts only
// when the issuer's own identifier names it (see CheckCredential).
//
// Everything is normalised into the same protocol::Badge as OB 0.5-2.0
// (spec_version kV3_0); what the model has no field for is in
// CredentialDetails. Problems are messages in the VerificationReport, never
// a failed call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "base/status.h"
#include "protocol/assertion.h"
#include "protocol/badge.h"
#include "protocol/did.h"
#include "protocol/status_list.h"
#include "protocol/verification_report.h"

namespace backpack::protocol {

class Jws;

inline constexpr size_t kMaxCredentialDocuments = 8;  // URLs one credential may ask for
inline constexpr size_t kMaxCredentialProofs = 4;     // proofs tried per credential
inline constexpr size_t kMaxCredentialStatuses = 4;   // credentialStatus entries read
inline constexpr size_t kMaxRecipientIdentifiers = 16;

enum class CredentialKind {
  kUnknown,      // not a verifiable credential at all
  kAchievement,  // OpenBadgeCredential / AchievementCredential
  kEndorsement,  // EndorsementCredential
  kOther,        // a verifiable credential of another kind (refused as a badge)
};

enum class CredentialForm {
  kJson,    // JSON, with embedded proofs (or none)
  kJwtVc,   // VC-JWT, VCDM 1.1 encoding: the credential in the "vc" claim
  kJwtDoc,  // VC-JWT, VCDM 2.0 / VC-JOSE: the payload is the credential
};

enum class DataModel { kUnknown, kV1_1, kV2_0 };

// One entry of credentialSubject.identifier (an IdentityObject).
struct CredentialIdentifier {
  RecipientIdentity identity;  // type from identityType; identity is identityHash as written
  std::string identity_type;   // as written: "emailAddress", "lisSourcedId", "ext:..."
};

enum class StatusMethod {
  kUnknown,
  kRevocationList,  // 1EdTechRevocationList
  kBitstring,       // BitstringStatusListEntry
  kStatusList2021,  // StatusList2021Entry
};

// One credentialStatus entry as written.
struct CredentialStatusEntry {
  StatusMethod method = StatusMethod::kUnknown;
  std::string type;      // as written
  std::string id;
  std::string purpose;   // statusPurpose ("revocation", "suspension", ...); revocation for 1EdTech lists
  std::string list_url;  // statusListCredential, or the 1EdTech list's id
  std::optional<uint64_t> index;  // statusListIndex
  int size = 1;                   // statusSize
};

// One proof as written: an embedded proof object, or the VC-JWT signature.
struct CredentialProof {
  bool jwt = false;
  std::string type;                 // "DataIntegrityProof", "Ed25519Signature2020"; "JWT" for a VC-JWT
  std::string cryptosuite;          // "eddsa-rdfc-2022"; the JWS "alg" for a VC-JWT
  std::string verification_method;  // verificationMethod; the JWS "kid" (may be empty)
  std::string proof_purpose;
  std::string original;  // the proof object's bytes (empty for a VC-JWT)
};

// What an OB 3.0 credential says beyond protocol::Badge's fields.
struct CredentialDetails {
  CredentialKind kind = CredentialKind::kUnknown;
  CredentialForm form = CredentialForm::kJson;
  DataModel data_model = DataModel::kUnknown;
  std::vector<std::string> types;
  std::string name;         // the credential's own name and description
  std::string description;
  std::optional<int64_t> awarded_date;
  std::string subject_id;   // credentialSubject.id
  std::vector<std::string> subject_types;
  std::vector<CredentialIdentifier> identifiers;
  std::string achievement_type;  // achievementType, as written
  std::string achievement_creator;  // achievement.creator id
  std::vector<std::string> results;  // each credentialSubject.result entry exactly as written
  std::string endorsement_comment;   // EndorsementSubject.endorsementComment
  std::vector<CredentialStatusEntry> statuses;
  std::vector<CredentialProof> proofs;
  // Kept verbatim, not acted on: credentialSchema, refreshService, termsOfUse.
  std::string credential_schema;
  std::string refresh_service;
  std::string terms_of_use;
  // VC-JWT registered claims, when given.
  std::string jwt_iss, jwt_jti, jwt_sub;
  std::optional<int64_t> jwt_nbf, jwt_exp;
};

// What the credential's own bytes say. `report` holds the structure problems.
struct ParsedCredential {
  Badge badge;  // spec_version kV3_0; original: the bytes as received (the compact JWS for a VC-JWT)
  CredentialDetails details;
  VerificationReport report;
  // The credential object as parsed (the "vc" claim or payload of a VC-JWT);
  // null when the bytes are not a credential.
  std::shared_ptr<const nlohmann::json> document;
  std::shared_ptr<const Jws> jws;  // a VC-JWT's signature; null for JSON
};

// Reads a credential given as JSON text (a leading '{' after whitespace) or
// as a compact VC-JWT. A document over limits.max_document_bytes or nested
// deeper than limits.max_depth is refused (DOCUMENT_LIMITS).
//
// Embedded documents keep their exact bytes: badge_class.original is the
// achievement's span and issuer.original the issuer's span of the credential
// JSON (for a VC-JWT, of its decoded payload).
ParsedCredential ParseCredential(std::string_view bytes, const ParseLimits& limits = {});

// "<issuer id> <credential id>": two credentials with the same identity are
// the same credential (OB 3.0, "Credential equality"); IRIs hold no spaces, so
// the form is unambiguous. Empty when either id is missing.
std::string CredentialIdentity(const Badge& credential);
// Of two credentials with the same identity, the newer (later validFrom)
// replaces the older. Returns >0 when `a` is newer than `b`, <0 when older,
// 0 when equally recent (or neither has a validFrom).
int CompareValidFrom(const Badge& a, const Badge& b);

// Checks one Data Integrity proof. `credential` is the credential object as
// parsed, proofs included; `proof` the proof to check; `key` the issuer's key
// its verificationMethod resolved to (already tied to the issuer). Returns OK
// when the proof verifies; any other status is the reason it does not. Must
// not throw.
using DataIntegrityCheck =
    std::function<Status(const nlohmann::json& credential, const nlohmann::json& proof, const ResolvedKey& key)>;

struct CredentialCheckOptions {
  int64_t now = 0;                   // Unix seconds
  int64_t clock_skew_seconds = 300;  // tolerance for a validFrom slightly ahead of `now`
  // The earner's verified addresses; an emailAddress identifier must be one.
  std::vector<std::string> verified_emails;
  bool check_recipient = true;
  // Verifies embedded Data Integrity proofs: MakeDataIntegrityCheck() of
  // protocol/data_integrity.h (eddsa-rdfc-2022, Ed25519Signature2020). Unset:
  // such proofs are reported as not checked, and a credential with no other
  // proof is not valid.
  DataIntegrityCheck data_integrity_check;
  size_t max_status_list_bytes = kDefaultMaxStatusListBytes;  // inflated bitstring cap
  ParseLimits limits;
};

enum class ProofOutcome {
  kVerified,          // the signature verifies with a key of the issuer
  kSignatureInvalid,  // a key of the issuer was found; the signature does not verify with it
  kKeyNotIssuers,     // the key cannot be tied to the issuer (see signature_valid)
  kKeyUnresolved,     // the verification method could not be resolved (unsupported, malformed, not fetched)
  kNotChecked,        // a Data Integrity proof and no data_integrity_check
  kMalformed,         // the proof itself is malformed (type, purpose, missing members)
};
std::string_view ProofOutcomeName(ProofOutcome outcome);

struct ProofResult {
  CredentialProof proof;
  ProofOutcome outcome = ProofOutcome::kKeyUnresolved;
  std::string key_id;  // the verification method of the key used, when one was found
  // For a VC-JWT whose key could not be tied to the issuer: whether the
  // signature verifies with that key all the same (it proves integrity, not
  // authorship).
  std::optional<bool> signature_valid;
  std::string message;
};

enum class StatusOutcome {
  kClear,        // the entry's bit is 0 / the id is not listed
  kRevoked,      // revoked (bit set for purpose revocation, or listed)
  kSuspended,    // bit set for purpose suspension
  kOtherPurpose, // bit set for a purpose that does not affect validity ("message", "refresh")
  kUnknown,      // the list could not be read or trusted: an error in the report
};

struct StatusResult {
  CredentialStatusEntry entry;
  StatusOutcome outcome = StatusOutcome::kUnknown;
  // The status list credential's own proof: verified, not checked (a Data
  // Integrity proof without data_integrity_check, a warning), or failed (an
  // error). Empty for 1EdTech revocation lists, which are not signed.
  std::optional<ProofOutcome> list_proof;
  std::string message;
};

struct CredentialCheckResult {
  Badge badge;  // revoked and revocation_reason filled from the status checks
  CredentialDetails details;
  VerificationReport report;  // the parse report followed by the checks
  std::vector<std::string> missing_documents;
  std::vector<ProofResult> proofs;
  std::vector<StatusResult> statuses;
  std::string matched_email;  // the verified address that is the recipient
  bool suspended = false;
  bool valid() const { return report.valid(); }
};

std::vector<std::string> CredentialDocumentsToFetch(const ParsedCredential& parsed, const FetchedDocuments& fetched,
                                                    const CredentialCheckOptions& options);

// Runs every check the documents allow, reporting in this order:
//  1. FETCH_DOCUMENT for each needed document absent or failed.
//  2. VERIFY_PROOF: at least one proof must verify with a key the issuer's
//     own identifier names. A VC-JWT's key is its "kid" (a DID URL of the
//     issuer's DID, or "<issuer https id>#fragment", or "#fragment"), or else
//     its "jwk" header when the issuer is that did:jwk or did:key, or its
//     DID document / issuer document lists the same key under
//     assertionMethod. Embedded proofs need proofPurpose assertionMethod and
//     a verificationMethod resolved the same way; they are then handed to
//     data_integrity_check.
//  3. CREDENTIAL_STATUS / REVOKED: each credentialStatus entry (1EdTech
//     revocation list, BitstringStatusList, StatusList2021). A list that
//     cannot be fetched, read or trusted is an error (fail closed).
//  4. ISSUED_ON_IN_FUTURE (validFrom / issuanceDate / nbf later than now +
//     skew), EXPIRED (validUntil / expirationDate / exp at or before now),
//     EXPIRES_BEFORE_ISSUED.
//  5. VALIDATE_RECIPIENT: identifiers well formed; with check_recipient, an
//     emailAddress identifier (or a mailto: credentialSubject.id) must be one
//     of verified_emails.
CredentialCheckResult CheckCredential(const ParsedCredential& parsed, const FetchedDocuments& fetched,
                                      const CredentialCheckOptions& options);

}  // namespace backpack::protocol
