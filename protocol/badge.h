// The normalised model of an awarded Open Badge, whatever version it was
// issued in (0.5, 1.0, 1.1, 2.0; 3.0 credentials are read by
// protocol/credential.h).
//
// protocol/assertion.h fills it: parsing the assertion gives what the
// assertion itself says; checking it against its fetched BadgeClass and
// issuer Profile completes the rest. Fields an issuer did not give are empty.
// Dates are Unix seconds (UTC). URLs are kept as written, except that OB 0.5's
// relative paths are resolved against the issuer's origin.
//
// Nothing an issuer wrote is lost: every document keeps its bytes verbatim in
// `original` (for an embedded document, its exact span of the enclosing
// document), including extensions and properties outside the vocabulary,
// whose names are listed in `kept`. Store `original`; never re-serialise the
// fields for storage.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace backpack::protocol {

enum class SpecVersion { kUnknown, kV0_5, kV1_0, kV1_1, kV2_0, kV3_0 };

// "0.5", "1.0", "1.1", "2.0", "3.0" or "unknown".
std::string_view SpecVersionName(SpecVersion version);

// OB 0.5 to 1.1: the versions that predate the 2.0 vocabulary (and allow md5
// recipient hashes).
inline bool IsLegacyVersion(SpecVersion version) {
  return version == SpecVersion::kV0_5 || version == SpecVersion::kV1_0 || version == SpecVersion::kV1_1;
}

enum class IdentityType { kEmail, kUrl, kTelephone, kId, kUnknown };

std::string_view IdentityTypeName(IdentityType type);  // "email", "url", ...

// Who the badge was awarded to. When `hashed`, `identity` is
// "<algorithm>$<hex digest of identity + salt>" (sha256, or md5 in OB 0.5-1.1).
struct RecipientIdentity {
  IdentityType type = IdentityType::kEmail;
  bool hashed = false;
  std::optional<std::string> salt;
  std::string identity;
};

enum class VerificationType { kUnknown, kHosted, kSigned };

// How an assertion proves itself.
struct AssertionVerification {
  VerificationType type = VerificationType::kUnknown;
  // Hosted: the URL the assertion lives at (OB 2.0: its id; OB 1.x: verify.url,
  // or the id when 1.1 gives none). Empty for OB 0.5, where the caller knows it.
  std::string url;
  // Signed: the URL of the public key (OB 2.0 verification.creator; OB 1.x
  // verify.url). May be empty in 2.0: then the issuer's publicKey list applies.
  std::string creator;
};

// An issuer's rules for where its hosted assertions may live (OB 2.0
// VerificationObject on a Profile).
struct VerificationPolicy {
  std::vector<std::string> allowed_origins;  // "host" or "host:port"
  std::vector<std::string> starts_with;      // URL prefixes
};

// Names of properties outside the vocabulary of a document's version. Their
// values are in the document's `original` bytes.
struct KeptProperties {
  std::vector<std::string> extensions;  // "extensions:..." terms and absolute IRIs
  std::vector<std::string> unknown;     // everything else
};

struct Issuer {
  std::string id;  // IRI (1.1/2.0); empty in 0.5 and 1.0
  std::string name;
  std::string url;
  std::string email;
  std::string telephone;
  std::string description;
  std::string image;
  std::string origin;                    // OB 0.5 `origin` ("https://issuer.example")
  std::string org;                       // OB 0.5 `org`
  std::vector<std::string> public_keys;  // key URLs (publicKey)
  std::string revocation_list;           // URL (revocationList)
  std::optional<VerificationPolicy> verification;
  bool embedded = false;   // written inside its BadgeClass rather than linked
  std::string source_url;  // where it was fetched from; empty when embedded
  std::string original;
  KeptProperties kept;
};

struct Criteria {
  std::string url;
  std::string narrative;  // markdown
};

struct Alignment {
  std::string target_name;  // OB 1.0 `name`
  std::string target_url;   // OB 1.0 `url`
  std::string target_description;
  std::string target_framework;
  std::string target_code;
};

struct BadgeClass {
  std::string id;  // IRI; for a linked BadgeClass the URL it was linked by
  std::string name;
  std::string description;
  std::string image;  // URL or data: URI
  Criteria criteria;
  std::vector<Alignment> alignment;
  std::vector<std::string> tags;
  std::string issuer_id;  // the issuer's IRI or URL, as linked or embedded
  std::string version;    // OB 0.5 badge.version, OB 2.0 version
  std::string language;   // @language
  bool embedded = false;  // written inside the assertion rather than linked
  std::string source_url;
  std::string original;
  KeptProperties kept;
};

struct Evidence {
  std::string id;  // URL, or a blank node id ("_:b1") for narrative-only evidence
  std::string narrative;
  std::string name;
  std::string description;
};

struct Badge {
  SpecVersion spec_version = SpecVersion::kUnknown;
  std::string id;   // IRI (1.1/2.0); empty in 0.5 and 1.0
  std::string uid;  // OB 1.x uid
  RecipientIdentity recipient;
  std::optional<int64_t> issued_on;
  std::optional<int64_t> expires;
  BadgeClass badge_class;
  Issuer issuer;  // filled when embedded, or by the check from the fetched Profile
  std::string image;
  std::vector<Evidence> evidence;
  std::string narrative;
  // Each endorsement exactly as written: a JSON string (a URL) or object.
  std::vector<std::string> endorsements;
  AssertionVerification verification;
  std::string language;              // @language
  std::vector<std::string> related;  // ids of related assertions
  bool revoked = false;
  std::string revocation_reason;
  std::string original;  // the assertion's bytes as received
  KeptProperties kept;
};

}  // namespace backpack::protocol
