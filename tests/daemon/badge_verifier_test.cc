// Tests of daemon/badge_verifier.h: every kind of import (URL, assertion
// JSON, JWS, baked PNG and SVG) against a TestIssuer answering in memory,
// and through the real Fetcher against a TestIssuer served on 127.0.0.1.
#include "daemon/badge_verifier.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "daemon/fetcher.h"
#include "protocol/baking.h"
#include "protocol/encoding.h"
#include "protocol/jws.h"
#include "protocol/verification_report.h"
#include "tests/support/test_issuer.h"

namespace backpack {
namespace {

using protocol::check::kBakedImage;
using protocol::check::kDetectVersion;
using protocol::check::kExpired;
using protocol::check::kFetchDocument;
using protocol::check::kHostedAssertion;
using protocol::check::kJwsParse;
using protocol::check::kRevoked;
using protocol::check::kValidateRecipient;
using protocol::check::kVerifySignature;
using testing::TestIssuer;

constexpr int64_t kNow = 1750000000;  // after AwardOptions::issued_on
constexpr char kAnn[] = "ann@example.org";

// The text of the first message named `name` at `level` ("" when none).
std::string MessageOf(const protocol::VerificationReport& report, std::string_view name,
                      protocol::MessageLevel level = protocol::MessageLevel::kError) {
  for (const protocol::ReportMessage& m : report.messages()) {
    if (m.name == name && m.level == level) return m.message;
  }
  return "";
}

int CountErrors(const protocol::VerificationReport& report, std::string_view name) {
  return static_cast<int>(std::count_if(report.messages().begin(), report.messages().end(), [&](const auto& m) {
    return m.name == name && m.level == protocol::MessageLevel::kError;
  }));
}

// The decoded payload of a compact JWS as JSON.
nlohmann::json JwsPayload(const std::string& compact) {
  auto jws = protocol::Jws::Parse(compact);
  EXPECT_TRUE(jws.ok()) << jws.status().ToString();
  return jws.ok() ? nlohmann::json::parse(jws->payload()) : nlohmann::json();
}

std::string JwsPart(const std::string& compact, int index) {
  size_t start = 0;
  for (int i = 0; i < index; ++i) start = compact.find('.', start) + 1;
  return compact.substr(start, compact.find('.', start) - start);
}

class BadgeVerifierTest : public ::testing::Test {
 protected:
  VerifyOutcome Verify(InputKind kind, const std::string& data, std::vector<std::string> emails = {kAnn}) {
    VerifyRequest request;
    request.kind = kind;
    request.data = data;
    request.now = kNow;
    request.verified_emails = std::move(emails);
    return verifier_.Verify(request);
  }

  TestIssuer issuer_;
  BadgeVerifier verifier_{issuer_.AsFetch()};
};

#define EXPECT_VALID(outcome) EXPECT_TRUE((outcome).valid()) << (outcome).result.report.ToJson()

TEST(TestIssuer, AnswersLikeAFetcher) {
  TestIssuer issuer;
  const std::string url = issuer.AwardHosted({.email = kAnn});
  auto hosted = issuer.Fetch(url);
  ASSERT_TRUE(hosted.ok()) << hosted.status().ToString();
  EXPECT_EQ(hosted->status, 200);
  EXPECT_EQ(hosted->body, issuer.HostedJson(url));
  for (const std::string& doc :
       {issuer.IssuerUrl(), issuer.BadgeClassUrl(), issuer.KeyUrl(), issuer.RevocationListUrl()}) {
    auto got = issuer.Fetch(doc);
    ASSERT_TRUE(got.ok()) << doc << ": " << got.status().ToString();
    EXPECT_EQ(got->content_type, "application/ld+json");
  }
  EXPECT_EQ(issuer.Fetch(issuer.base_url() + "/nothing").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(issuer.Fetch("https://elsewhere.test/x").status().code(), StatusCode::kUnavailable);
  issuer.Revoke(url);
  EXPECT_EQ(issuer.Fetch(url)->status, 410);
  issuer.SetDown(true);
  EXPECT_EQ(issuer.Fetch(url).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(issuer.RequestCount(url), 3);

  const std::string jws = issuer.AwardSigned({.email = kAnn});
  EXPECT_EQ(JwsPayload(jws)["verification"]["creator"], issuer.KeyUrl());
  auto baked = protocol::ExtractBadge(issuer.BakePng(jws));
  ASSERT_TRUE(baked.ok()) << baked.status().ToString();
  EXPECT_EQ(baked->data, jws);
  auto svg = protocol::ExtractBadge(issuer.BakeSvg(url));
  ASSERT_TRUE(svg.ok()) << svg.status().ToString();
  EXPECT_EQ(svg->form, protocol::PayloadForm::kUrl);
}

TEST(BadgeVerifier, NamesInputKinds) {
  EXPECT_EQ(InputKindName(InputKind::kUrl), "url");
  EXPECT_EQ(InputKindName(InputKind::kAssertion), "assertion");
  EXPECT_EQ(InputKindName(InputKind::kJws), "jws");
  EXPECT_EQ(InputKindName(InputKind::kImage), "image");
}

// ---- Valid imports -------------------------------------------------------------

TEST_F(BadgeVerifierTest, HostedUrlIsValid) {
  const std::string url = issuer_.AwardHosted({.email = kAnn});
  const VerifyOutcome out = Verify(InputKind::kUrl, url);
  EXPECT_VALID(out);
  EXPECT_EQ(out.assertion, issuer_.HostedJson(url));
  EXPECT_EQ(out.assertion_form, protocol::PayloadForm::kJson);
  EXPECT_EQ(out.source_url, url);
  EXPECT_EQ(out.result.matched_email, kAnn);
  EXPECT_EQ(out.result.badge.badge_class.name, "Test Badge");
  EXPECT_EQ(out.result.badge.issuer.name, "Test Issuer");
  EXPECT_FALSE(out.transient_failure);
  EXPECT_FALSE(out.image_format.has_value());
  // The assertion was fetched once: its own bytes are the hosted copy.
  EXPECT_EQ(issuer_.RequestCount(url), 1);
  EXPECT_EQ(out.documents.at(url).status, 200);
}

TEST_F(BadgeVerifierTest, HostedAssertionJsonIsValidAndComparedWithTheHostedCopy) {
  const std::string url = issuer_.AwardHosted({.email = kAnn});
  const VerifyOutcome out = Verify(InputKind::kAssertion, issuer_.HostedJson(url));
  EXPECT_VALID(out);
  EXPECT_EQ(out.assertion, issuer_.HostedJson(url));
  EXPECT_EQ(issuer_.RequestCount(url), 1);
  ASSERT_TRUE(out.documents.contains(url));
  EXPECT_EQ(out.documents.at(url).body, issuer_.HostedJson(url));
  EXPECT_TRUE(out.source_url.empty());
}

TEST_F(BadgeVerifierTest, AssertionJsonThatDiffersFromTheHostedCopyIsRefused) {
  const std::string url = issuer_.AwardHosted({.email = kAnn});
  nlohmann::ordered_json altered = nlohmann::ordered_json::parse(issuer_.HostedJson(url));
  altered["recipient"]["identity"] = "bob@example.org";
  altered["recipient"]["hashed"] = false;
  altered["recipient"].erase("salt");
  const VerifyOutcome out = Verify(InputKind::kAssertion, altered.dump(), {"bob@example.org"});
  EXPECT_FALSE(out.valid());
  EXPECT_TRUE(out.result.report.HasError(kHostedAssertion)) << out.result.report.ToJson();
}

TEST_F(BadgeVerifierTest, SignedJwsIsValid) {
  const std::string jws = issuer_.AwardSigned({.email = kAnn});
  const VerifyOutcome out = Verify(InputKind::kJws, jws);
  EXPECT_VALID(out);
  EXPECT_EQ(out.assertion, jws);
  EXPECT_EQ(out.assertion_form, protocol::PayloadForm::kJws);
  EXPECT_TRUE(out.source_url.empty());
  EXPECT_FALSE(MessageOf(out.result.report, kVerifySignature, protocol::MessageLevel::kInfo).empty());
  EXPECT_EQ(out.result.badge.verification.creator, issuer_.KeyUrl());
  EXPECT_TRUE(out.documents.contains(issuer_.KeyUrl()));
  EXPECT_EQ(out.result.matched_email, kAnn);
}

TEST_F(BadgeVerifierTest, SignedJwsWithSurroundingWhitespaceIsValid) {
  const std::string jws = issuer_.AwardSigned({.email = kAnn});
  const VerifyOutcome out = Verify(InputKind::kJws, "  " + jws + "\n");
  EXPECT_VALID(out);
  EXPECT_EQ(out.assertion, jws);
}

TEST_F(BadgeVerifierTest, BakedPngWithHostedUrlIsValid) {
  const std::string url = issuer_.AwardHosted({.email = kAnn});
  const VerifyOutcome out = Verify(InputKind::kImage, issuer_.BakePng(url));
  EXPECT_VALID(out);
  EXPECT_EQ(out.image_format, protocol::ImageFormat::kPng);
  EXPECT_EQ(out.source_url, url);
  EXPECT_EQ(out.assertion, issuer_.HostedJson(url));
  EXPECT_EQ(issuer_.RequestCount(url), 1);
}

TEST_F(BadgeVerifierTest, BakedPngWithAssertionJsonIsValid) {
  const std::string url = issuer_.AwardHosted({.email = kAnn});
  const VerifyOutcome out = Verify(InputKind::kImage, issuer_.BakePng(issuer_.HostedJson(url)));
  EXPECT_VALID(out);
  EXPECT_EQ(out.image_format, protocol::ImageFormat::kPng);
  EXPECT_EQ(out.assertion, issuer_.HostedJson(url));
  EXPECT_EQ(out.assertion_form, protocol::PayloadForm::kJson);
  EXPECT_TRUE(out.documents.contains(url));  // the hosted copy, compared
}

TEST_F(BadgeVerifierTest, BakedPngWithJwsIsValid) {
  const std::string jws = issuer_.AwardSigned({.email = kAnn});
  const VerifyOutcome out = Verify(InputKind::kImage, issuer_.BakePng(jws));
  EXPECT_VALID(out);
  EXPECT_EQ(out.image_format, protocol::ImageFormat::kPng);
  EXPECT_EQ(out.assertion, jws);
  EXPECT_EQ(out.assertion_form, protocol::PayloadForm::kJws);
}

TEST_F(BadgeVerifierTest, BakedSvgIsValid) {
  const std::string jws = issuer_.AwardSigned({.email = kAnn});
  const VerifyOutcome signed_svg = Verify(InputKind::kImage, issuer_.BakeSvg(jws));
  EXPECT_VALID(signed_svg);
  EXPECT_EQ(signed_svg.image_format, protocol::ImageFormat::kSvg);
  EXPECT_EQ(signed_svg.assertion, jws);

  const std::string url = issuer_.AwardHosted({.email = kAnn});
  const VerifyOutcome hosted_svg = Verify(InputKind::kImage, issuer_.BakeSvg(issuer_.HostedJson(url)));
  EXPECT_VALID(hosted_svg);
  EXPECT_EQ(hosted_svg.image_format, protocol::ImageFormat::kSvg);
  EXPECT_EQ(hosted_svg.assertion, issuer_.HostedJson(url));
}

// ---- Recipient -------------------------------------------------------------------

TEST_F(BadgeVerifierTest, RecipientInAnotherCaseIsAccepted) {
  // In clear: compared without regard to case.
  const std::string plain = issuer_.AwardHosted({.email = "Ann@Example.ORG", .hashed = false});
  const VerifyOutcome out = Verify(InputKind::kUrl, plain, {kAnn});
  EXPECT_VALID(out);
  EXPECT_EQ(out.result.matched_email, kAnn);
  // Hashed by an issuer that lower-cased the address the earner typed.
  const std::string lowered = issuer_.AwardHosted({.email = kAnn});
  EXPECT_VALID(Verify(InputKind::kUrl, lowered, {"Ann@Example.ORG"}));
  // Hashed as typed: matches the address as the earner typed it.
  const std::string as_typed = issuer_.AwardHosted({.email = "Ann@Example.ORG"});
  EXPECT_VALID(Verify(InputKind::kUrl, as_typed, {"Ann@Example.ORG"}));
}

TEST_F(BadgeVerifierTest, HashOfAnotherCaseCannotMatchALowerCasedAddress) {
  // A digest cannot be compared without regard to case: the issuer's exact
  // spelling must be among the addresses tried (as given, and lower-cased).
  const std::string url = issuer_.AwardHosted({.email = "Ann@Example.ORG"});
  const VerifyOutcome out = Verify(InputKind::kUrl, url, {kAnn});
  EXPECT_FALSE(out.valid());
  EXPECT_TRUE(out.result.report.HasError(kValidateRecipient));
}

TEST_F(BadgeVerifierTest, WrongRecipientIsRefused) {
  const std::string url = issuer_.AwardHosted({.email = kAnn});
  const VerifyOutcome out = Verify(InputKind::kUrl, url, {"bob@example.org"});
  EXPECT_FALSE(out.valid());
  EXPECT_TRUE(out.result.report.HasError(kValidateRecipient)) << out.result.report.ToJson();
  EXPECT_TRUE(out.result.matched_email.empty());
}

TEST_F(BadgeVerifierTest, RecipientIsNotCheckedWhenNotAsked) {
  const std::string url = issuer_.AwardHosted({.email = kAnn});
  VerifyRequest request;
  request.kind = InputKind::kUrl;
  request.data = url;
  request.now = kNow;
  request.check_recipient = false;
  EXPECT_VALID(verifier_.Verify(request));
}

// ---- Dates and revocation --------------------------------------------------------

TEST_F(BadgeVerifierTest, ExpiredIsRefused) {
  const std::string url = issuer_.AwardHosted({.email = kAnn, .expires = kNow - 60});
  const VerifyOutcome out = Verify(InputKind::kUrl, url);
  EXPECT_FALSE(out.valid());
  EXPECT_TRUE(out.result.report.HasError(kExpired)) << out.result.report.ToJson();

  const std::string not_yet = issuer_.AwardHosted({.email = kAnn, .expires = kNow + 3600});
  EXPECT_VALID(Verify(InputKind::kUrl, not_yet));
}

TEST_F(BadgeVerifierTest, RevokedHostedAssertionIsRefused) {
  const std::string url = issuer_.AwardHosted({.email = kAnn});
  issuer_.Revoke(url);
  const VerifyOutcome by_url = Verify(InputKind::kUrl, url);
  EXPECT_FALSE(by_url.valid());
  EXPECT_TRUE(by_url.result.report.HasError(kRevoked)) << by_url.result.report.ToJson();
  EXPECT_TRUE(by_url.result.badge.revoked);
  EXPECT_EQ(by_url.documents.at(url).status, 410);
  EXPECT_EQ(CountErrors(by_url.result.report, kFetchDocument), 0) << by_url.result.report.ToJson();

  const VerifyOutcome by_json = Verify(InputKind::kAssertion, issuer_.HostedJson(url));
  EXPECT_FALSE(by_json.valid());
  EXPECT_TRUE(by_json.result.report.HasError(kRevoked)) << by_json.result.report.ToJson();
}

TEST_F(BadgeVerifierTest, RecheckOfStoredAssertionSeesTheLiveHostedCopy) {
  const std::string url = issuer_.AwardHosted({.email = kAnn});
  const VerifyOutcome first = Verify(InputKind::kUrl, url);
  ASSERT_TRUE(first.valid());
  issuer_.Revoke(url);
  VerifyRequest recheck;
  recheck.kind = InputKind::kAssertion;
  recheck.data = first.assertion;
  recheck.source_url = first.source_url;
  recheck.now = kNow;
  recheck.verified_emails = {kAnn};
  const VerifyOutcome again = verifier_.Verify(recheck);
  EXPECT_FALSE(again.valid());
  EXPECT_TRUE(again.result.report.HasError(kRevoked)) << again.result.report.ToJson();
  EXPECT_EQ(again.source_url, url);
}

TEST_F(BadgeVerifierTest, RevokedSignedAssertionIsRefused) {
  const std::string jws = issuer_.AwardSigned({.email = kAnn});
  issuer_.Revoke(JwsPayload(jws)["id"].get<std::string>());
  const VerifyOutcome out = Verify(InputKind::kJws, jws);
  EXPECT_FALSE(out.valid());
  EXPECT_TRUE(out.result.report.HasError(kRevoked)) << out.result.report.ToJson();
  EXPECT_EQ(out.result.badge.revocation_reason, "revoked by the test issuer");
}

// ---- Signatures ------------------------------------------------------------------

TEST_F(BadgeVerifierTest, AlteredPayloadIsRefused) {
  const std::string jws = issuer_.AwardSigned({.email = kAnn, .expires = kNow - 60});
  nlohmann::ordered_json payload = nlohmann::ordered_json::parse(protocol::Jws::Parse(jws)->payload());
  payload.erase("expires");  // the earner "renews" the badge
  const std::string forged = JwsPart(jws, 0) + "." + protocol::Base64UrlEncode(payload.dump()) + "." + JwsPart(jws, 2);
  const VerifyOutcome out = Verify(InputKind::kJws, forged);
  EXPECT_FALSE(out.valid());
  EXPECT_EQ(CountErrors(out.result.report, kVerifySignature), 1) << out.result.report.ToJson();
  EXPECT_NE(MessageOf(out.result.report, kVerifySignature).find(issuer_.KeyUrl()), std::string::npos)
      << out.result.report.ToJson();
  EXPECT_FALSE(out.result.report.HasError(kExpired));  // the checks ran on the forged payload
}

TEST_F(BadgeVerifierTest, SignatureByAnotherKeyIsRefused) {
  TestIssuer impostor(issuer_.base_url());  // same URLs, its own key
  const std::string jws = impostor.AwardSigned({.email = kAnn});
  const VerifyOutcome out = Verify(InputKind::kJws, jws);
  EXPECT_FALSE(out.valid());
  EXPECT_EQ(CountErrors(out.result.report, kVerifySignature), 1) << out.result.report.ToJson();
}

TEST_F(BadgeVerifierTest, SignatureFromBeforeKeyRotationIsRefused) {
  const std::string jws = issuer_.AwardSigned({.email = kAnn});
  issuer_.RotateKey();
  EXPECT_FALSE(Verify(InputKind::kJws, jws).valid());
  EXPECT_VALID(Verify(InputKind::kJws, issuer_.AwardSigned({.email = kAnn})));
}

TEST_F(BadgeVerifierTest, AlgNoneIsRefused) {
  const std::string jws = issuer_.AwardSigned({.email = kAnn});
  const std::string none_header = protocol::Base64UrlEncode(R"({"alg":"none"})");
  // Unsigned: refused as it is read.
  const VerifyOutcome empty = Verify(InputKind::kJws, none_header + "." + JwsPart(jws, 1) + ".");
  EXPECT_FALSE(empty.valid());
  EXPECT_NE(MessageOf(empty.result.report, kJwsParse).find("unsigned"), std::string::npos)
      << empty.result.report.ToJson();
  // "none" with a signature attached: refused when checked.
  const VerifyOutcome with_signature =
      Verify(InputKind::kJws, none_header + "." + JwsPart(jws, 1) + "." + JwsPart(jws, 2));
  EXPECT_FALSE(with_signature.valid());
  EXPECT_EQ(CountErrors(with_signature.result.report, kVerifySignature), 1) << with_signature.result.report.ToJson();
  EXPECT_NE(MessageOf(with_signature.result.report, kVerifySignature).find("none"), std::string::npos)
      << with_signature.result.report.ToJson();
}

TEST_F(BadgeVerifierTest, HmacWithThePublicKeyAsSecretIsRefused) {
  const std::string jws = issuer_.AwardSigned({.email = kAnn});
  const std::string pem =
      nlohmann::json::parse(issuer_.Fetch(issuer_.KeyUrl())->body)["publicKeyPem"].get<std::string>();
  const std::string input = protocol::Base64UrlEncode(R"({"alg":"HS256"})") + "." + JwsPart(jws, 1);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_size = 0;
  HMAC(EVP_sha256(), pem.data(), static_cast<int>(pem.size()), reinterpret_cast<const unsigned char*>(input.data()),
       input.size(), mac, &mac_size);
  const std::string forged =
      input + "." + protocol::Base64UrlEncode(std::string(reinterpret_cast<const char*>(mac), mac_size));
  const VerifyOutcome out = Verify(InputKind::kJws, forged);
  EXPECT_FALSE(out.valid());
  EXPECT_NE(MessageOf(out.result.report, kVerifySignature).find("HS256"), std::string::npos)
      << out.result.report.ToJson();
}

TEST_F(BadgeVerifierTest, MalformedJwsIsJwsParse) {
  const VerifyOutcome out = Verify(InputKind::kJws, "not.a-jws");
  EXPECT_FALSE(out.valid());
  EXPECT_TRUE(out.result.report.HasError(kJwsParse)) << out.result.report.ToJson();
  EXPECT_TRUE(out.assertion.empty());
  EXPECT_TRUE(out.documents.empty());
}

TEST_F(BadgeVerifierTest, JwsCarryingAHostedAssertionIsRefused) {
  const std::string url = issuer_.AwardHosted({.email = kAnn});
  auto key = protocol::PrivateKey::Generate(protocol::KeyType::kRsa);
  ASSERT_TRUE(key.ok());
  auto jws = protocol::Sign(*key, issuer_.HostedJson(url));
  ASSERT_TRUE(jws.ok());
  const VerifyOutcome out = Verify(InputKind::kJws, *jws);
  EXPECT_FALSE(out.valid());
  EXPECT_TRUE(out.result.report.HasError(kVerifySignature)) << out.result.report.ToJson();
}

TEST_F(BadgeVerifierTest, SignedAssertionJsonWithoutItsSignatureIsRefused) {
  const std::string jws = issuer_.AwardSigned({.email = kAnn});
  const VerifyOutcome out = Verify(InputKind::kAssertion, protocol::Jws::Parse(jws)->payload());
  EXPECT_FALSE(out.valid());
  EXPECT_TRUE(out.result.report.HasError(kVerifySignature)) << out.result.report.ToJson();
}

// ---- Images ----------------------------------------------------------------------

TEST_F(BadgeVerifierTest, ImageWithoutBadgeDataIsBakedImage) {
  const VerifyOutcome png = Verify(InputKind::kImage, issuer_.UnbakedPng());
  EXPECT_FALSE(png.valid());
  EXPECT_EQ(MessageOf(png.result.report, kBakedImage), "the image is a valid PNG but carries no Open Badges data");
  EXPECT_EQ(png.image_format, protocol::ImageFormat::kPng);
  EXPECT_TRUE(png.assertion.empty());

  const VerifyOutcome svg = Verify(InputKind::kImage, issuer_.UnbakedSvg());
  EXPECT_EQ(MessageOf(svg.result.report, kBakedImage), "the image is a valid SVG but carries no Open Badges data");
}

TEST_F(BadgeVerifierTest, GarbageIsBakedImage) {
  const VerifyOutcome out = Verify(InputKind::kImage, "GIF89a this is not a badge");
  EXPECT_FALSE(out.valid());
  EXPECT_NE(MessageOf(out.result.report, kBakedImage).find("neither a PNG nor an SVG"), std::string::npos)
      << out.result.report.ToJson();
  EXPECT_FALSE(out.image_format.has_value());
}

TEST_F(BadgeVerifierTest, DamagedPngIsBakedImage) {
  std::string png = issuer_.BakePng(issuer_.AwardHosted({.email = kAnn}));
  png.resize(png.size() - 6);  // IEND cut short
  const VerifyOutcome out = Verify(InputKind::kImage, png);
  EXPECT_FALSE(out.valid());
  EXPECT_NE(MessageOf(out.result.report, kBakedImage).find("PNG image cannot be read"), std::string::npos)
      << out.result.report.ToJson();
  EXPECT_TRUE(out.documents.empty());
}

// ---- OB 3.0 credentials ----------------------------------------------------------

using protocol::check::kCredentialStatus;
using protocol::check::kVerifyProof;
using testing::CredentialProofKind;

TEST_F(BadgeVerifierTest, DataIntegrityCredentialIsValid) {
  const std::string vc = issuer_.AwardCredential({.email = kAnn});
  const VerifyOutcome out = Verify(InputKind::kAssertion, vc);
  EXPECT_VALID(out);
  ASSERT_TRUE(out.credential.has_value());
  EXPECT_EQ(out.result.badge.spec_version, protocol::SpecVersion::kV3_0);
  EXPECT_EQ(out.result.badge.badge_class.name, "Test Achievement");
  EXPECT_EQ(out.result.badge.issuer.id, issuer_.IssuerDid());
  EXPECT_EQ(out.result.matched_email, kAnn);
  EXPECT_EQ(out.assertion, vc);
  EXPECT_EQ(out.assertion_form, protocol::PayloadForm::kJson);
  ASSERT_EQ(out.credential->proofs.size(), 1u);
  EXPECT_EQ(out.credential->proofs[0].cryptosuite, "eddsa-rdfc-2022");
  // The status list was fetched and kept; its own proof was checked.
  ASSERT_TRUE(out.documents.contains(issuer_.StatusListUrl()));
  EXPECT_EQ(out.documents.at(issuer_.StatusListUrl()).status, 200);
}

TEST_F(BadgeVerifierTest, VcJwtCredentialIsValid) {
  const std::string jwt = issuer_.AwardCredential({.email = kAnn}, CredentialProofKind::kJwt);
  const VerifyOutcome out = Verify(InputKind::kJws, jwt);
  EXPECT_VALID(out);
  ASSERT_TRUE(out.credential.has_value());
  EXPECT_EQ(out.credential->form, protocol::CredentialForm::kJwtDoc);
  EXPECT_EQ(out.assertion, jwt);
  EXPECT_EQ(out.assertion_form, protocol::PayloadForm::kJws);
}

TEST_F(BadgeVerifierTest, BakedCredentialsAreValid) {
  const std::string vc = issuer_.AwardCredential({.email = kAnn});
  const std::string jwt = issuer_.AwardCredential({.email = kAnn}, CredentialProofKind::kJwt);
  for (const std::string& image :
       {issuer_.BakePng(vc, protocol::BadgeKind::kCredential), issuer_.BakeSvg(vc, protocol::BadgeKind::kCredential),
        issuer_.BakePng(jwt, protocol::BadgeKind::kCredential),
        issuer_.BakeSvg(jwt, protocol::BadgeKind::kCredential)}) {
    const VerifyOutcome out = Verify(InputKind::kImage, image);
    EXPECT_VALID(out);
    ASSERT_TRUE(out.credential.has_value());
    EXPECT_TRUE(out.assertion == vc || out.assertion == jwt);
    EXPECT_TRUE(out.image_format.has_value());
  }
}

TEST_F(BadgeVerifierTest, TamperedCredentialFailsTheProofCheck) {
  const std::string vc = issuer_.AwardCredential({.email = kAnn});
  const std::string forged = TestIssuer::Tamper(vc, "/credentialSubject/achievement/name", "Forged Achievement");
  const VerifyOutcome out = Verify(InputKind::kAssertion, forged);
  EXPECT_FALSE(out.valid());
  EXPECT_TRUE(out.result.report.HasError(kVerifyProof)) << out.result.report.ToJson();

  // A VC-JWT whose payload was changed after signing.
  const std::string jwt = issuer_.AwardCredential({.email = kAnn}, CredentialProofKind::kJwt);
  nlohmann::json payload = JwsPayload(jwt);
  payload["name"] = "Forged";
  const std::string altered = JwsPart(jwt, 0) + "." + protocol::Base64UrlEncode(payload.dump()) + "." + JwsPart(jwt, 2);
  const VerifyOutcome jwt_out = Verify(InputKind::kJws, altered);
  EXPECT_FALSE(jwt_out.valid());
  EXPECT_TRUE(jwt_out.result.report.HasError(kVerifyProof)) << jwt_out.result.report.ToJson();
}

TEST_F(BadgeVerifierTest, CredentialChecksRecipientExpiryAndStatus) {
  const VerifyOutcome stranger = Verify(InputKind::kAssertion, issuer_.AwardCredential({.email = "bob@example.org"}));
  EXPECT_FALSE(stranger.valid());
  EXPECT_TRUE(stranger.result.report.HasError(kValidateRecipient)) << stranger.result.report.ToJson();

  const VerifyOutcome expired =
      Verify(InputKind::kAssertion, issuer_.AwardCredential({.email = kAnn, .valid_until = kNow - 10}));
  EXPECT_FALSE(expired.valid());
  EXPECT_TRUE(expired.result.report.HasError(kExpired)) << expired.result.report.ToJson();

  const std::string vc = issuer_.AwardCredential({.email = kAnn, .id = "urn:uuid:1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed"});
  EXPECT_VALID(Verify(InputKind::kAssertion, vc));
  issuer_.Revoke("urn:uuid:1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed");
  const VerifyOutcome revoked = Verify(InputKind::kAssertion, vc);
  EXPECT_FALSE(revoked.valid());
  EXPECT_TRUE(revoked.result.report.HasError(kRevoked)) << revoked.result.report.ToJson();
}

TEST_F(BadgeVerifierTest, UnreachableStatusListIsTransient) {
  const std::string vc = issuer_.AwardCredential({.email = kAnn});
  issuer_.SetDown(true);
  const VerifyOutcome out = Verify(InputKind::kAssertion, vc);
  EXPECT_FALSE(out.valid());
  EXPECT_TRUE(out.transient_failure);
}

TEST_F(BadgeVerifierTest, CredentialsOnlyRefusesAssertions) {
  VerifyRequest request;
  request.now = kNow;
  request.verified_emails = {kAnn};
  request.credentials_only = true;
  request.kind = InputKind::kJws;
  request.data = issuer_.AwardSigned({.email = kAnn});
  const VerifyOutcome jws = verifier_.Verify(request);
  EXPECT_FALSE(jws.valid());
  EXPECT_TRUE(jws.result.report.HasError(kDetectVersion)) << jws.result.report.ToJson();
  request.kind = InputKind::kUrl;
  request.data = issuer_.AwardHosted({.email = kAnn});
  EXPECT_TRUE(verifier_.Verify(request).result.report.HasError(kDetectVersion));
  request.kind = InputKind::kAssertion;
  request.data = issuer_.AwardCredential({.email = kAnn});
  EXPECT_VALID(verifier_.Verify(request));
}

// ---- Fetch failures and fallbacks ------------------------------------------------

TEST_F(BadgeVerifierTest, UnusableUrlIsFetchDocument) {
  const VerifyOutcome out = Verify(InputKind::kUrl, "ftp://issuer.test/a");
  EXPECT_FALSE(out.valid());
  EXPECT_TRUE(out.result.report.HasError(kFetchDocument)) << out.result.report.ToJson();
  EXPECT_TRUE(out.documents.empty());
}

TEST_F(BadgeVerifierTest, MissingAssertionIsFetchDocumentAndFinal) {
  const std::string url = issuer_.base_url() + "/assertions/404";
  const VerifyOutcome out = Verify(InputKind::kUrl, url);
  EXPECT_FALSE(out.valid());
  EXPECT_NE(MessageOf(out.result.report, kFetchDocument).find(url), std::string::npos) << out.result.report.ToJson();
  EXPECT_FALSE(out.transient_failure);
  EXPECT_EQ(out.documents.at(url).status, 404);
}

TEST_F(BadgeVerifierTest, IssuerDownIsTransientFetchDocument) {
  const std::string url = issuer_.AwardHosted({.email = kAnn});
  const std::string jws = issuer_.AwardSigned({.email = kAnn});
  issuer_.SetDown(true);

  const VerifyOutcome hosted = Verify(InputKind::kUrl, url);
  EXPECT_FALSE(hosted.valid());
  EXPECT_TRUE(hosted.transient_failure);
  EXPECT_NE(MessageOf(hosted.result.report, kFetchDocument).find("503"), std::string::npos)
      << hosted.result.report.ToJson();
  EXPECT_EQ(hosted.documents.at(url).status, 503);

  const VerifyOutcome signed_badge = Verify(InputKind::kJws, jws);
  EXPECT_FALSE(signed_badge.valid());
  EXPECT_TRUE(signed_badge.transient_failure);
  EXPECT_TRUE(signed_badge.result.report.HasError(kFetchDocument)) << signed_badge.result.report.ToJson();
  EXPECT_EQ(signed_badge.documents.at(issuer_.BadgeClassUrl()).status, 503);
  EXPECT_EQ(signed_badge.assertion, jws);  // the input was read
}

TEST_F(BadgeVerifierTest, FallbackDocumentsAnswerWhileTheIssuerIsDown) {
  const std::string jws = issuer_.AwardSigned({.email = kAnn});
  const VerifyOutcome online = Verify(InputKind::kJws, jws);
  ASSERT_TRUE(online.valid()) << online.result.report.ToJson();
  issuer_.SetDown(true);

  VerifyRequest request;
  request.kind = InputKind::kJws;
  request.data = jws;
  request.now = kNow;
  request.verified_emails = {kAnn};
  request.fallback_documents = online.documents;
  const VerifyOutcome offline = verifier_.Verify(request);
  EXPECT_VALID(offline);
  EXPECT_TRUE(offline.transient_failure);
  std::vector<std::string> expected;
  for (const auto& [url, doc] : online.documents) expected.push_back(url);
  std::vector<std::string> used = offline.fallback_urls;
  std::sort(used.begin(), used.end());
  EXPECT_EQ(used, expected);
  EXPECT_EQ(offline.documents.at(issuer_.KeyUrl()).body, online.documents.at(issuer_.KeyUrl()).body);
}

TEST_F(BadgeVerifierTest, FallbacksAreNotUsedForFinalFailures) {
  const std::string url = issuer_.base_url() + "/assertions/404";
  VerifyRequest request;
  request.kind = InputKind::kUrl;
  request.data = url;
  request.now = kNow;
  request.fallback_documents[url] = {200, "{}", ""};
  const VerifyOutcome out = verifier_.Verify(request);
  EXPECT_FALSE(out.valid());
  EXPECT_TRUE(out.fallback_urls.empty());
  EXPECT_EQ(out.documents.at(url).status, 404);
}

TEST_F(BadgeVerifierTest, DocumentsHoldTheVerbatimBodies) {
  const std::string jws = issuer_.AwardSigned({.email = kAnn});
  const VerifyOutcome out = Verify(InputKind::kJws, jws);
  ASSERT_TRUE(out.valid()) << out.result.report.ToJson();
  const std::vector<std::string> urls = {issuer_.BadgeClassUrl(), issuer_.IssuerUrl(), issuer_.KeyUrl(),
                                         issuer_.RevocationListUrl()};
  EXPECT_EQ(out.documents.size(), urls.size());
  for (const std::string& url : urls) {
    ASSERT_TRUE(out.documents.contains(url)) << url;
    EXPECT_EQ(out.documents.at(url).status, 200);
    EXPECT_EQ(out.documents.at(url).body, issuer_.Fetch(url)->body) << url;
    EXPECT_EQ(issuer_.RequestCount(url), 2) << url;  // once by the verifier, once above
  }
}

// ---- Over HTTP, through the real Fetcher -------------------------------------------

class BadgeVerifierOverHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(issuer_.Start());
    ASSERT_TRUE(fetcher_.init_status().ok()) << fetcher_.init_status().ToString();
  }

  static config::FetchConfig LocalConfig() {
    config::FetchConfig config;
    config.allow_private = true;
    config.timeout_ms = 5000;
    return config;
  }

  VerifyOutcome Verify(InputKind kind, const std::string& data,
                       FetchFreshness freshness = FetchFreshness::kReuseFresh) {
    VerifyRequest request;
    request.kind = kind;
    request.data = data;
    request.now = kNow;
    request.verified_emails = {kAnn};
    request.freshness = freshness;
    return verifier_.Verify(request);
  }

  TestIssuer issuer_;
  Fetcher fetcher_{LocalConfig()};
  BadgeVerifier verifier_{[this](const std::string& url, FetchFreshness freshness) {
    FetchRequest request;
    request.url = url;
    request.reuse_fresh = freshness == FetchFreshness::kReuseFresh;
    return fetcher_.Fetch(request);
  }};
};

TEST_F(BadgeVerifierOverHttpTest, HostedAndSignedBadgesAreValid) {
  ASSERT_TRUE(issuer_.base_url().starts_with("http://127.0.0.1:"));
  const std::string url = issuer_.AwardHosted({.email = kAnn});
  const VerifyOutcome hosted = Verify(InputKind::kImage, issuer_.BakePng(url));
  EXPECT_VALID(hosted);
  EXPECT_EQ(hosted.source_url, url);
  EXPECT_EQ(hosted.assertion, issuer_.HostedJson(url));
  EXPECT_EQ(issuer_.RequestCount(url), 1);

  const std::string jws = issuer_.AwardSigned({.email = kAnn});
  const VerifyOutcome signed_badge = Verify(InputKind::kJws, jws);
  EXPECT_VALID(signed_badge);
  EXPECT_EQ(signed_badge.documents.at(issuer_.KeyUrl()).body, issuer_.Fetch(issuer_.KeyUrl())->body);
}

TEST_F(BadgeVerifierOverHttpTest, FreshDocumentsAreReusedUnlessRevalidating) {
  EXPECT_VALID(Verify(InputKind::kJws, issuer_.AwardSigned({.email = kAnn})));
  EXPECT_VALID(Verify(InputKind::kJws, issuer_.AwardSigned({.email = kAnn})));
  // max-age=300: asked once. no-cache: asked every time.
  EXPECT_EQ(issuer_.RequestCount(issuer_.BadgeClassUrl()), 1);
  EXPECT_EQ(issuer_.RequestCount(issuer_.KeyUrl()), 1);
  EXPECT_EQ(issuer_.RequestCount(issuer_.RevocationListUrl()), 2);

  EXPECT_VALID(Verify(InputKind::kJws, issuer_.AwardSigned({.email = kAnn}), FetchFreshness::kRevalidate));
  EXPECT_EQ(issuer_.RequestCount(issuer_.BadgeClassUrl()), 2);
  EXPECT_EQ(issuer_.RequestCount(issuer_.RevocationListUrl()), 3);

  issuer_.SetMaxAge(60);
  EXPECT_VALID(Verify(InputKind::kJws, issuer_.AwardSigned({.email = kAnn}), FetchFreshness::kRevalidate));
  EXPECT_VALID(Verify(InputKind::kJws, issuer_.AwardSigned({.email = kAnn})));
  EXPECT_EQ(issuer_.RequestCount(issuer_.RevocationListUrl()), 4);
}

TEST_F(BadgeVerifierOverHttpTest, RevokedAndDownAreReported) {
  const std::string url = issuer_.AwardHosted({.email = kAnn});
  issuer_.Revoke(url);
  const VerifyOutcome revoked = Verify(InputKind::kUrl, url);
  EXPECT_FALSE(revoked.valid());
  EXPECT_TRUE(revoked.result.report.HasError(kRevoked)) << revoked.result.report.ToJson();

  issuer_.SetDown(true);
  const VerifyOutcome down = Verify(InputKind::kUrl, issuer_.AwardHosted({.email = kAnn}));
  EXPECT_FALSE(down.valid());
  EXPECT_TRUE(down.transient_failure);
  EXPECT_TRUE(down.result.report.HasError(kFetchDocument)) << down.result.report.ToJson();
}

}  // namespace
}  // namespace backpack
