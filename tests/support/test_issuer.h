// Test support: an Open Badges issuer of our own, for tests and benchmarks
// that import badges: OB 2.0 (own RSA key, own profile, own BadgeClass) and
// OB 3.0 (own Ed25519 key as a did:key issuer, own status list).
//
// The issuer's documents live under a base URL. Either serve them over real
// HTTP on 127.0.0.1 (Start(): a node started with --fetch-allow-private can
// fetch them), or answer fetches in memory (Fetch(): a DocumentFetch for a
// BadgeVerifier built in-process).
//
//   TestIssuer issuer;
//   ASSERT_TRUE(issuer.Start());                       // http://127.0.0.1:PORT
//   std::string url = issuer.AwardHosted({.email = "Ann@Example.org"});
//   std::string jws = issuer.AwardSigned({.email = "ann@example.org"});
//   std::string png = issuer.BakePng(jws);             // baked image
//   issuer.Revoke(url_or_id);                          // now on the revocation list / 410
//
//   std::string vc = issuer.AwardCredential({.email = "ann@example.org"});  // eddsa-rdfc-2022
//   std::string jwt = issuer.AwardCredential({.email = "ann@example.org"}, CredentialProofKind::kJwt);
//   issuer.Revoke(credential_id);                       // its status list bit is set
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "base/status.h"
#include "daemon/badge_verifier.h"

namespace backpack::testing {

struct AwardOptions {
  std::string email = {};     // the recipient
  bool hashed = true;         // sha256$ with salt
  std::string salt = "s4lt";  // used when hashed; "" for an unsalted hash
  int64_t issued_on = 1700000000;
  std::optional<int64_t> expires = std::nullopt;
  // Extra members merged into the assertion JSON (an extension, say).
  std::string extra_json = "{}";
};

// An OB 3.0 OpenBadgeCredential (VCDM 2.0) to award.
struct CredentialOptions {
  std::string email = {};     // the recipient (credentialSubject.identifier, emailAddress)
  bool hashed = true;         // identityHash sha256$ with salt
  std::string salt = "s4lt";
  std::string id = {};        // the credential id; empty: a fresh urn:uuid
  int64_t valid_from = 1700000000;
  std::optional<int64_t> valid_until = std::nullopt;
  std::string achievement_name = "Test Achievement";
  // A BitstringStatusListEntry pointing at the issuer's status list (needs
  // Start() or Fetch() to be reachable); Revoke(id) sets its bit.
  bool with_status = true;
};

enum class CredentialProofKind {
  kDataIntegrity,  // JSON with an embedded DataIntegrityProof, eddsa-rdfc-2022
  kJwt,            // a VC-JWT (EdDSA; payload: the credential; kid: the did:key method)
};

class TestIssuer {
 public:
  // Documents under `base_url` (no trailing slash), answered by Fetch().
  explicit TestIssuer(std::string base_url = "https://issuer.test");
  ~TestIssuer();  // stops the server
  TestIssuer(const TestIssuer&) = delete;
  TestIssuer& operator=(const TestIssuer&) = delete;

  // Serves the documents on 127.0.0.1 (an ephemeral port) from two threads
  // of its own, HTTP/1.1 with keep-alive; the base URL becomes
  // http://127.0.0.1:PORT. Call before awarding. False when it cannot bind
  // or was already started. Every other member may be called from any
  // thread at any time.
  bool Start();
  const std::string& base_url() const;

  // Profile, BadgeClass and key are served with Cache-Control max-age=300;
  // the revocation list and hosted assertions with no-cache. Every 200 has an
  // ETag, and the server answers a matching If-None-Match with 304.
  std::string IssuerUrl() const;          // the Profile (publicKey, revocationList)
  std::string BadgeClassUrl() const;      // the BadgeClass (image served by the issuer)
  std::string KeyUrl() const;             // the CryptographicKey (publicKeyPem); same URL after RotateKey
  std::string RevocationListUrl() const;  // the RevocationList

  // A hosted OB 2.0 assertion; returns its URL (also its id).
  std::string AwardHosted(const AwardOptions& options);
  // The JSON text served at a hosted assertion's URL.
  std::string HostedJson(const std::string& url) const;
  // A signed OB 2.0 assertion (RS256 compact JWS; its id is a urn:uuid).
  std::string AwardSigned(const AwardOptions& options);

  // A small PNG / SVG with `payload` (a URL, assertion JSON or JWS) baked in.
  // A payload that cannot be baked aborts the test with a message.
  // An OB 3.0 credential (JSON or VC-JWT) goes in as kCredential
  // ("openbadgecredential", <openbadges:credential>).
  std::string BakePng(const std::string& payload,
                      protocol::BadgeKind kind = protocol::BadgeKind::kAssertion) const;
  std::string BakeSvg(const std::string& payload,
                      protocol::BadgeKind kind = protocol::BadgeKind::kAssertion) const;
  // The same images with nothing baked in.
  std::string UnbakedPng() const;
  std::string UnbakedSvg() const;

  // An OB 3.0 credential from this issuer's did:key, as JSON text or a
  // compact VC-JWT. A credential cannot be signed before the base URL is
  // final (call Start() first when serving over HTTP).
  std::string AwardCredential(const CredentialOptions& options,
                              CredentialProofKind proof = CredentialProofKind::kDataIntegrity);
  std::string IssuerDid() const;      // did:key:z6Mk...
  std::string StatusListUrl() const;  // the BitstringStatusListCredential (signed, no-cache)
  // The credential JSON with the string at `pointer` (a JSON pointer, e.g.
  // "/credentialSubject/achievement/name") set to `value` and the proof
  // left as it was: a forgery for tests.
  static std::string Tamper(const std::string& credential_json, const std::string& pointer,
                            const std::string& value);

  // Revokes an assertion by id (its URL for hosted ones): it goes on the
  // revocation list, and a hosted one answers 410 Gone with its JSON marked
  // "revoked": true. For a credential id, its status list bit is set.
  void Revoke(const std::string& assertion_id);
  // While set, every request answers 503 (an issuer that is down).
  void SetDown(bool down);
  // Serves every document, the revocation list and hosted assertions
  // included, with Cache-Control: max-age=`seconds` instead of the defaults
  // above (a static issuer behind an ordinary web host).
  void SetMaxAge(int seconds);
  // Replaces the issuer's key with a new one (signed badges made before no
  // longer verify).
  void RotateKey();

  // How many requests the server and Fetch() together have answered for
  // `url` (the full URL, as base_url() + path).
  int RequestCount(const std::string& url) const;

  // The issuer's documents as a DocumentFetch; answers like the server and
  // like Fetcher: 200 and 410 are results, 404 is kNotFound, 503 (down) is
  // kUnavailable, and a URL outside base_url() is kUnavailable (no such host).
  // AsFetch() refers to this object, which must outlive it.
  Result<FetchResult> Fetch(const std::string& url);
  DocumentFetch AsFetch();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace backpack::testing
