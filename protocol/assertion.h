// Reading and checking Open Badges assertions (OB 0.5, 1.0, 1.1, 2.0).
//
// Pure: bytes in, values out. Nothing here fetches, reads the clock or keeps
// state; documents that live on the web are named by URL and handed in by the
// caller. A verification runs in three steps:
//
//   ParsedAssertion parsed = ParseAssertion(bytes);
//   FetchedDocuments docs;
//   for (auto urls = DocumentsToFetch(parsed, docs, options); !urls.empty();
//        urls = DocumentsToFetch(parsed, docs, options)) {
//     for (const auto& url : urls) docs[url] = Fetch(url);  // caller's HTTP, with its limits
//   }
//   CheckResult result = CheckAssertion(parsed, docs, options);
//
// DocumentsToFetch names only what the next step needs and what `docs` does
// not hold yet (the BadgeClass, then its issuer, then the issuer's revocation
// list and keys, and the hosted copy), so the loop ends after at most four
// rounds and at most kMaxLinkedDocuments URLs. A failed fetch is recorded with
// its HTTP status (0 for a transport failure) rather than left out.
//
// Problems in the documents never throw and never come back as a Status: they
// are messages in the VerificationReport (protocol/verification_report.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "protocol/badge.h"
#include "protocol/verification_report.h"

namespace backpack::protocol {

// Bounds on what a document may cost to read. Over them, the document is
// refused with a DOCUMENT_LIMITS error before any parsing.
struct ParseLimits {
  size_t max_document_bytes = size_t{1} << 20;  // baked data: URIs make badges large
  int max_depth = 32;                           // OB documents nest 4-5 levels deep
  size_t max_messages = VerificationReport::kDefaultMaxMessages;
};

inline constexpr size_t kMaxLinkedDocuments = 8;  // URLs one assertion may ask for
inline constexpr size_t kMaxPublicKeys = 4;       // issuer keys tried for a SignedBadge

// A date as OB documents write it: ISO 8601 (extended or basic; date only,
// or date and time with or without a zone, fractions allowed on the last
// component) or, as in OB 0.5-1.x, a 10-digit Unix timestamp. A time without
// a zone is taken as UTC.
struct BadgeTime {
  int64_t unix_seconds = 0;
  bool has_time = false;   // false: a date only (midnight UTC)
  bool has_zone = false;   // Z or an offset was given (always true for Unix)
  bool from_unix = false;  // given as a Unix timestamp
};
std::optional<BadgeTime> ParseBadgeTime(std::string_view text);

// What the assertion's own bytes say. `report` holds the structure problems.
struct ParsedAssertion {
  Badge badge;
  VerificationReport report;
};

ParsedAssertion ParseAssertion(std::string_view json, const ParseLimits& limits = {});

// A BadgeClass or issuer Profile given on its own (fetched, or as input).
// `version` is the assertion's version; a document's own @context wins over it.
struct ParsedBadgeClass {
  BadgeClass badge_class;
  std::optional<Issuer> issuer;  // when embedded
  VerificationReport report;
};
ParsedBadgeClass ParseBadgeClass(std::string_view json, SpecVersion version, const ParseLimits& limits = {});

struct ParsedIssuer {
  Issuer issuer;
  VerificationReport report;
};
ParsedIssuer ParseIssuer(std::string_view json, SpecVersion version, const ParseLimits& limits = {});

// Any single Open Badges document, its class detected from `type` (OB 2.0
// style): Assertion, BadgeClass, Issuer/Profile, RevocationList,
// CryptographicKey, Endorsement, AlignmentObject, Criteria, or a class named
// by an IRI outside the vocabulary (valid, nothing to check).
enum class DocumentClass {
  kUnknown,
  kAssertion,
  kBadgeClass,
  kIssuer,
  kRevocationList,
  kCryptographicKey,
  kEndorsement,
  kAlignmentObject,
  kCriteria,
  kOther,
};
struct DocumentValidation {
  DocumentClass document_class = DocumentClass::kUnknown;
  VerificationReport report;
};
DocumentValidation ValidateDocument(std::string_view json, SpecVersion version = SpecVersion::kV2_0,
                                    const ParseLimits& limits = {});

// A web document as the caller fetched it.
struct FetchedDocument {
  int status = 200;       // HTTP status (2xx: fetched); 0 when the fetch failed before a response
  std::string body;       // the bytes received (the caller caps their size)
  std::string final_url;  // after redirects; empty when the same as the key
};
using FetchedDocuments = std::map<std::string, FetchedDocument, std::less<>>;

// A public key that may have signed a SignedBadge, resolved and checked to
// belong to the issuer.
struct SigningKey {
  std::string url;
  std::string owner;           // the issuer it belongs to (OB 2.0)
  std::string public_key_pem;  // PEM text
};

struct CheckOptions {
  int64_t now = 0;                   // Unix seconds
  int64_t clock_skew_seconds = 300;  // tolerance for an issuedOn slightly ahead of `now`
  // The earner's verified addresses; the recipient must be one of them.
  std::vector<std::string> verified_emails;
  bool check_recipient = true;
  // Where the assertion's bytes came from, when they were fetched (the hosted
  // URL, or an OB 0.5 assertion URL). Empty for a baked image or an upload:
  // then a hosted assertion's URL must be fetched to verify it.
  std::string source_url;
  // For a SignedBadge: the URL of the key (one of CheckResult::signing_keys)
  // that the caller verified the JWS signature with. Empty: not verified, and
  // the check reports VERIFY_SIGNATURE.
  std::string signature_key_url;
  // For a SignedBadge, instead of signature_key_url: checks the signature
  // with one key the issuer owns. Called for each of the issuer's keys in
  // order until one returns OK; the refusals of the others are named in the
  // VERIFY_SIGNATURE error when none does. Lets a caller verify and check in
  // one pass. Must not throw.
  std::function<Status(const SigningKey& key)> signature_check;
  ParseLimits limits;
};

struct CheckResult {
  Badge badge;                                 // the parsed badge completed with its BadgeClass and Issuer
  VerificationReport report;                   // the parse report followed by the checks
  std::vector<std::string> missing_documents;  // needed but not in the fetched set
  std::vector<SigningKey> signing_keys;        // SignedBadge: keys to try, in order
  std::string matched_email;                   // the verified address that is the recipient
  bool valid() const { return report.valid(); }
};

std::vector<std::string> DocumentsToFetch(const ParsedAssertion& parsed, const FetchedDocuments& fetched,
                                          const CheckOptions& options);

// Runs every check the documents allow: required properties (through the
// parses), issuedOn not in the future beyond the skew, not expired, expiry
// after issue, hosted copy identical and within the issuer's origin or
// verification policy, not revoked (revocation list by id and by uid, a
// hosted response with revoked: true or HTTP 410), signing key owned by the
// issuer, signature verified by the caller, and the recipient among
// `verified_emails`. A needed document that is absent is a FETCH_DOCUMENT
// error, so a check with missing documents is never valid.
CheckResult CheckAssertion(const ParsedAssertion& parsed, const FetchedDocuments& fetched, const CheckOptions& options);

// The exact bytes of member `key`'s value in the JSON object `object_json`
// (the last one when a key repeats, as parsers keep the last), or nullopt
// when the text is not an object or has no such member. The text must
// already parse as JSON.
std::optional<std::string_view> RawJsonMember(std::string_view object_json, std::string_view key);

}  // namespace backpack::protocol
