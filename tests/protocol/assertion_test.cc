#include "protocol/assertion.h"

#include <gtest/gtest.h>

#include <cctype>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "protocol/recipient.h"

namespace backpack::protocol {
namespace {

using Json = nlohmann::json;

constexpr int64_t kNow = 1'795'737'600;  // 2026-11-27T00:00:00Z
const std::string kIssuerSite = "https://issuer.example";
const std::string kAssertionUrl = kIssuerSite + "/assertions/42.json";
const std::string kBadgeUrl = kIssuerSite + "/badges/loom.json";
const std::string kIssuerUrl = kIssuerSite + "/issuer.json";
const std::string kRevocationUrl = kIssuerSite + "/revoked.json";
const std::string kKeyUrl = kIssuerSite + "/keys/1.json";
const std::string kEarner = "ada@issuer.example";
const std::string kContext2 = "https://w3id.org/openbadges/v2";
const std::string kPem = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n";

// ---------------------------------------------------------------------------
// Fixtures

Json Ob20Assertion() {
  return {{"@context", kContext2},
          {"type", "Assertion"},
          {"id", kAssertionUrl},
          {"recipient",
           {{"type", "email"}, {"hashed", true}, {"salt", "pepper"}, {"identity", HashIdentity(kEarner, "pepper")}}},
          {"badge", kBadgeUrl},
          {"verification", {{"type", "HostedBadge"}}},
          {"issuedOn", "2024-05-01T10:00:00Z"},
          {"expires", "2030-05-01T10:00:00+02:00"},
          {"evidence", kIssuerSite + "/work/ada"},
          {"narrative", "Wove a *pattern*."}};
}

Json Ob20BadgeClass() {
  return {{"@context", kContext2},
          {"type", "BadgeClass"},
          {"id", kBadgeUrl},
          {"name", "Loom Programmer"},
          {"description", "Programs a Jacquard loom."},
          {"image", kIssuerSite + "/img/loom.png"},
          {"criteria", {{"id", kIssuerSite + "/criteria/loom"}, {"narrative", "Weave a pattern."}}},
          {"alignment", {{{"targetName", "Weaving 101"}, {"targetUrl", "https://standards.example/w101"}}}},
          {"tags", {"weaving", "code"}},
          {"issuer", kIssuerUrl}};
}

Json Ob20Issuer() {
  return {{"@context", kContext2},    {"type", "Issuer"},   {"id", kIssuerUrl},
          {"name", "Issuer Example"}, {"url", kIssuerSite}, {"email", "badges@issuer.example"}};
}

Json Ob10Assertion() {
  return {{"uid", "a1"},
          {"recipient", {{"type", "email"}, {"hashed", false}, {"identity", kEarner}}},
          {"badge", kBadgeUrl},
          {"verify", {{"type", "hosted"}, {"url", kAssertionUrl}}},
          {"issuedOn", "1714557600"},
          {"image", kIssuerSite + "/img/ada.png"}};
}

Json Ob10BadgeClass() {
  return {{"name", "Loom Programmer"},
          {"description", "Programs a Jacquard loom."},
          {"image", kIssuerSite + "/img/loom.png"},
          {"criteria", kIssuerSite + "/criteria/loom"},
          {"issuer", kIssuerUrl},
          {"tags", {"weaving"}},
          {"alignment", {{{"name", "Weaving 101"}, {"url", "https://standards.example/w101"}}}}};
}

Json Ob10Issuer() { return {{"name", "Issuer Example"}, {"url", kIssuerSite}, {"email", "badges@issuer.example"}}; }

Json Ob05Assertion() {
  return {{"recipient", kEarner},
          {"issued_on", "2012-03-01"},
          {"evidence", "/work/ada"},
          {"badge",
           {{"version", "0.5.0"},
            {"name", "Loom Programmer"},
            {"description", "Programs a Jacquard loom."},
            {"image", "/img/loom.png"},
            {"criteria", "/criteria/loom"},
            {"issuer", {{"origin", kIssuerSite}, {"name", "Issuer Example"}, {"contact", "badges@issuer.example"}}}}}};
}

std::string Bytes(const Json& json) { return json.dump(2); }

CheckOptions Options() {
  CheckOptions options;
  options.now = kNow;
  options.verified_emails = {"someone@else.example", "Ada@Issuer.Example"};
  options.source_url = kAssertionUrl;
  return options;
}

FetchedDocuments Docs(std::initializer_list<std::pair<const std::string, Json>> documents) {
  FetchedDocuments docs;
  for (const auto& [url, json] : documents) docs[url] = {200, Bytes(json), ""};
  return docs;
}

FetchedDocuments Ob20Docs() { return Docs({{kBadgeUrl, Ob20BadgeClass()}, {kIssuerUrl, Ob20Issuer()}}); }

CheckResult Check(const Json& assertion, const FetchedDocuments& docs, const CheckOptions& options = Options()) {
  return CheckAssertion(ParseAssertion(Bytes(assertion)), docs, options);
}

std::string Dump(const VerificationReport& report) { return report.ToJson(); }

// ---------------------------------------------------------------------------
// Dates

TEST(BadgeTime, ReadsIsoAndUnixForms) {
  const struct {
    const char* text;
    int64_t expected;
  } cases[] = {
      {"2016-12-31T23:59:59Z", 1483228799},
      {"2016-12-31T23:59:59", 1483228799},  // no zone: UTC
      {"2016-12-31T23:59:59.999Z", 1483228799},
      {"2017-01-01T01:00:00+01:00", 1483228800},
      {"2017-01-01T05:30+0530", 1483228800},
      {"2016-12-31T19:00-05", 1483228800},
      {"2013-02-21T15:18-0500", 1361477880},
      {"2013-02-21T15:18.5-0500", 1361477910},  // a fraction of a minute
      {"20130221T1518Z", 1361459880},
      {"20130221T151800,5Z", 1361459880},
      {"2013-02-21", 1361404800},
      {"20130221", 1361404800},
      {"2013-02", 1359676800},
      {"201302", 1359676800},
      {"2016-02-29", 1456704000},
      {"2016-12-31T24:00:00Z", 1483228800},
      {"1361561067", 1361561067},  // OB 1.x Unix string
  };
  for (const auto& c : cases) {
    const std::optional<BadgeTime> time = ParseBadgeTime(c.text);
    ASSERT_TRUE(time.has_value()) << c.text;
    EXPECT_EQ(time->unix_seconds, c.expected) << c.text;
  }
  EXPECT_FALSE(ParseBadgeTime("2016-12-31")->has_time);
  EXPECT_FALSE(ParseBadgeTime("2016-12-31T10:00")->has_zone);
  EXPECT_TRUE(ParseBadgeTime("2016-12-31T10:00Z")->has_zone);
  EXPECT_TRUE(ParseBadgeTime("1361561067")->from_unix);
}

TEST(BadgeTime, RefusesMalformed) {
  for (const char* bad : {"",
                          "20",
                          "2013022",
                          "1361561085305",
                          "000000000000000000000",
                          "January 12th",
                          "08/13/1985",
                          "2001-10-190-19",
                          "901d1",
                          "2013-02-30",
                          "2015-02-29",
                          "2013-13-01",
                          "2013-02-21T25:00Z",
                          "2013-02-21T24:01Z",
                          "2013-02-21T10:60Z",
                          "2013-02-21T10:00+2400",
                          "2013-02T10:00Z",
                          "2013-02-21 10:00Z",
                          "2013-02-21T10:00Zjunk",
                          "2013-02-21T",
                          "-2013-01-01",
                          "2013-02-21T10:00:00.Z"}) {
    EXPECT_FALSE(ParseBadgeTime(bad).has_value()) << bad;
  }
}

// ---------------------------------------------------------------------------
// Recipients

TEST(Recipient, HashIdentityKnownAnswers) {
  // The salted identity the 1EdTech examples use (nobody@example.org, "deadsea").
  EXPECT_EQ(HashIdentity("nobody@example.org", "deadsea"),
            "sha256$ecf5409f3f4b91ab60cc5ef4c02aef7032354375e70cf4d8e43f6a1d29891942");
  EXPECT_EQ(HashIdentity("abc", ""), "sha256$ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HashIdentity("abc", "", IdentityHashAlgorithm::kMd5), "md5$900150983cd24fb0d6963f7d28e17f72");
}

RecipientIdentity Identity(std::string identity, bool hashed, std::optional<std::string> salt = std::nullopt) {
  return {IdentityType::kEmail, hashed, std::move(salt), std::move(identity)};
}

TEST(Recipient, MatchesPlainAddressIgnoringCase) {
  const std::vector<std::string> verified = {"other@example.net", "Ada@Issuer.Example"};
  auto match = MatchRecipient(Identity("ADA@issuer.example", false), verified, SpecVersion::kV2_0);
  ASSERT_TRUE(match.ok()) << match.status().ToString();
  EXPECT_EQ(*match, "Ada@Issuer.Example");
}

TEST(Recipient, MatchesSaltedAndUnsaltedSha256) {
  const std::vector<std::string> verified = {"ada@issuer.example"};
  EXPECT_TRUE(MatchRecipient(Identity(HashIdentity(kEarner, "s@lt"), true, "s@lt"), verified, SpecVersion::kV2_0).ok());
  EXPECT_TRUE(MatchRecipient(Identity(HashIdentity(kEarner, ""), true), verified, SpecVersion::kV2_0).ok());
  // Upper-case hex digits and algorithm are the same digest.
  std::string upper = HashIdentity(kEarner, "");
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_TRUE(MatchRecipient(Identity(upper, true), verified, SpecVersion::kV2_0).ok());
}

TEST(Recipient, TriesBothTheTypedAndTheLowerCaseAddress) {
  // The issuer hashed the lower-case address; the earner verified it in mixed case.
  const std::vector<std::string> mixed = {"Ada@Issuer.Example"};
  EXPECT_TRUE(MatchRecipient(Identity(HashIdentity(kEarner, "x"), true, "x"), mixed, SpecVersion::kV2_0).ok());
  // The issuer hashed the address exactly as typed, in mixed case.
  EXPECT_TRUE(
      MatchRecipient(Identity(HashIdentity("Ada@Issuer.Example", "x"), true, "x"), mixed, SpecVersion::kV2_0).ok());
  // A different case the earner never typed cannot be guessed.
  EXPECT_FALSE(
      MatchRecipient(Identity(HashIdentity("ADA@ISSUER.EXAMPLE", "x"), true, "x"), mixed, SpecVersion::kV2_0).ok());
}

TEST(Recipient, Md5OnlyForLegacyVersions) {
  const std::vector<std::string> verified = {kEarner};
  const RecipientIdentity md5 = Identity(HashIdentity(kEarner, "salt", IdentityHashAlgorithm::kMd5), true, "salt");
  EXPECT_TRUE(MatchRecipient(md5, verified, SpecVersion::kV1_0).ok());
  EXPECT_TRUE(MatchRecipient(md5, verified, SpecVersion::kV0_5).ok());
  auto modern = MatchRecipient(md5, verified, SpecVersion::kV2_0);
  ASSERT_FALSE(modern.ok());
  EXPECT_EQ(modern.status().code(), StatusCode::kInvalidArgument);
}

TEST(Recipient, RefusesTheWrongRecipient) {
  const std::vector<std::string> verified = {"eve@issuer.example"};
  auto hashed = MatchRecipient(Identity(HashIdentity(kEarner, "x"), true, "x"), verified, SpecVersion::kV2_0);
  EXPECT_EQ(hashed.status().code(), StatusCode::kNotFound);
  auto plain = MatchRecipient(Identity(kEarner, false), verified, SpecVersion::kV2_0);
  EXPECT_EQ(plain.status().code(), StatusCode::kNotFound);
  // Right address, wrong salt.
  auto salted = MatchRecipient(Identity(HashIdentity(kEarner, "x"), true, "y"), {kEarner}, SpecVersion::kV2_0);
  EXPECT_EQ(salted.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(MatchRecipient(Identity(kEarner, false), {}, SpecVersion::kV2_0).status().code(), StatusCode::kNotFound);
}

TEST(Recipient, RefusesIdentitiesNoAddressCanMatch) {
  RecipientIdentity url{IdentityType::kUrl, false, std::nullopt, "https://ada.example/"};
  EXPECT_EQ(MatchRecipient(url, {kEarner}, SpecVersion::kV2_0).status().code(), StatusCode::kFailedPrecondition);
  for (const RecipientIdentity& bad :
       {Identity("sha256$abcd", true), Identity("sha1$" + std::string(40, 'a'), true), Identity(kEarner, true),
        Identity(HashIdentity(kEarner, ""), false), Identity("not an address", false), Identity("", false)}) {
    EXPECT_EQ(MatchRecipient(bad, {kEarner}, SpecVersion::kV1_0).status().code(), StatusCode::kInvalidArgument)
        << bad.identity;
  }
}

// ---------------------------------------------------------------------------
// Parsing each version

TEST(ParseAssertion, Ob20LinkedNormalises) {
  const std::string bytes = Bytes(Ob20Assertion());
  const ParsedAssertion parsed = ParseAssertion(bytes);
  ASSERT_TRUE(parsed.report.valid()) << Dump(parsed.report);
  const Badge& b = parsed.badge;
  EXPECT_EQ(b.spec_version, SpecVersion::kV2_0);
  EXPECT_EQ(b.id, kAssertionUrl);
  EXPECT_EQ(b.recipient.type, IdentityType::kEmail);
  EXPECT_TRUE(b.recipient.hashed);
  EXPECT_EQ(b.recipient.salt, "pepper");
  EXPECT_EQ(b.recipient.identity, HashIdentity(kEarner, "pepper"));
  EXPECT_EQ(b.issued_on, 1714557600);
  EXPECT_EQ(b.expires, 1903852800);  // 2030-05-01T08:00:00Z
  EXPECT_EQ(b.verification.type, VerificationType::kHosted);
  EXPECT_EQ(b.verification.url, kAssertionUrl);
  EXPECT_EQ(b.badge_class.id, kBadgeUrl);
  EXPECT_FALSE(b.badge_class.embedded);
  ASSERT_EQ(b.evidence.size(), 1u);
  EXPECT_EQ(b.evidence[0].id, kIssuerSite + "/work/ada");
  EXPECT_EQ(b.narrative, "Wove a *pattern*.");
  EXPECT_EQ(b.original, bytes);
}

TEST(ParseAssertion, Ob20EmbeddedBadgeClassAndIssuerKeepTheirBytes) {
  Json badge = Ob20BadgeClass();
  badge.erase("@context");
  Json issuer = Ob20Issuer();
  issuer.erase("@context");
  issuer["verification"] = {{"allowedOrigins", {"issuer.example"}}, {"startsWith", kIssuerSite + "/assertions/"}};
  issuer["publicKey"] = kKeyUrl;
  issuer["revocationList"] = kRevocationUrl;
  badge["issuer"] = issuer;
  Json assertion = Ob20Assertion();
  assertion["badge"] = badge;
  const std::string bytes = Bytes(assertion);
  const ParsedAssertion parsed = ParseAssertion(bytes);
  ASSERT_TRUE(parsed.report.valid()) << Dump(parsed.report);
  const Badge& b = parsed.badge;
  EXPECT_TRUE(b.badge_class.embedded);
  EXPECT_EQ(b.badge_class.name, "Loom Programmer");
  EXPECT_EQ(b.badge_class.criteria.url, kIssuerSite + "/criteria/loom");
  EXPECT_EQ(b.badge_class.criteria.narrative, "Weave a pattern.");
  ASSERT_EQ(b.badge_class.alignment.size(), 1u);
  EXPECT_EQ(b.badge_class.alignment[0].target_name, "Weaving 101");
  EXPECT_EQ(b.badge_class.tags, (std::vector<std::string>{"weaving", "code"}));
  EXPECT_EQ(b.badge_class.issuer_id, kIssuerUrl);
  EXPECT_TRUE(b.issuer.embedded);
  EXPECT_EQ(b.issuer.name, "Issuer Example");
  EXPECT_EQ(b.issuer.public_keys, std::vector<std::string>{kKeyUrl});
  EXPECT_EQ(b.issuer.revocation_list, kRevocationUrl);
  ASSERT_TRUE(b.issuer.verification.has_value());
  EXPECT_EQ(b.issuer.verification->allowed_origins, std::vector<std::string>{"issuer.example"});
  // The originals are the exact spans of the assertion's bytes.
  EXPECT_NE(bytes.find(b.badge_class.original), std::string::npos);
  EXPECT_EQ(Json::parse(b.badge_class.original), badge);
  EXPECT_NE(b.badge_class.original.find(b.issuer.original), std::string::npos);
  EXPECT_EQ(Json::parse(b.issuer.original), issuer);
}

TEST(ParseAssertion, Ob10) {
  const ParsedAssertion parsed = ParseAssertion(Bytes(Ob10Assertion()));
  ASSERT_TRUE(parsed.report.valid()) << Dump(parsed.report);
  const Badge& b = parsed.badge;
  EXPECT_EQ(b.spec_version, SpecVersion::kV1_0);
  EXPECT_EQ(b.uid, "a1");
  EXPECT_TRUE(b.id.empty());
  EXPECT_EQ(b.recipient.identity, kEarner);
  EXPECT_FALSE(b.recipient.hashed);
  EXPECT_EQ(b.issued_on, 1714557600);
  EXPECT_EQ(b.verification.type, VerificationType::kHosted);
  EXPECT_EQ(b.verification.url, kAssertionUrl);
  EXPECT_EQ(b.badge_class.id, kBadgeUrl);
  EXPECT_EQ(b.image, kIssuerSite + "/img/ada.png");
}

TEST(ParseAssertion, Ob10SignedAcceptsLegacySpellings) {
  Json assertion = Ob10Assertion();
  assertion["verify"] = {{"type", "SIGNED"}, {"url", kIssuerSite + "/public.pem"}};
  assertion["recipient"] = {{"type", "EMAIL"}, {"hashed", "True"}, {"identity", HashIdentity(kEarner, "")}};
  assertion["issuedOn"] = 1714557600;
  const ParsedAssertion parsed = ParseAssertion(Bytes(assertion));
  ASSERT_TRUE(parsed.report.valid()) << Dump(parsed.report);
  EXPECT_EQ(parsed.badge.verification.type, VerificationType::kSigned);
  EXPECT_EQ(parsed.badge.verification.creator, kIssuerSite + "/public.pem");
  EXPECT_TRUE(parsed.badge.recipient.hashed);
  EXPECT_EQ(parsed.badge.issued_on, 1714557600);
}

TEST(ParseAssertion, Ob11UsesItsIdWhenVerifyHasNoUrl) {
  Json assertion = Ob20Assertion();
  assertion["@context"] = "https://w3id.org/openbadges/v1";
  assertion["verify"] = {{"type", "hosted"}};
  assertion.erase("verification");
  const ParsedAssertion parsed = ParseAssertion(Bytes(assertion));
  ASSERT_TRUE(parsed.report.valid()) << Dump(parsed.report);
  EXPECT_EQ(parsed.badge.spec_version, SpecVersion::kV1_1);
  EXPECT_EQ(parsed.badge.verification.url, kAssertionUrl);
}

TEST(ParseAssertion, Ob05NormalisesRelativeUrlsAndContact) {
  const ParsedAssertion parsed = ParseAssertion(Bytes(Ob05Assertion()));
  ASSERT_TRUE(parsed.report.valid()) << Dump(parsed.report);
  const Badge& b = parsed.badge;
  EXPECT_EQ(b.spec_version, SpecVersion::kV0_5);
  EXPECT_TRUE(b.id.empty());
  EXPECT_EQ(b.recipient.identity, kEarner);
  EXPECT_EQ(b.issued_on, 1330560000);
  EXPECT_FALSE(b.expires.has_value());
  EXPECT_EQ(b.badge_class.version, "0.5.0");
  EXPECT_EQ(b.badge_class.image, kIssuerSite + "/img/loom.png");
  EXPECT_EQ(b.badge_class.criteria.url, kIssuerSite + "/criteria/loom");
  EXPECT_EQ(b.evidence.at(0).id, kIssuerSite + "/work/ada");
  EXPECT_EQ(b.issuer.origin, kIssuerSite);
  EXPECT_EQ(b.issuer.url, kIssuerSite);
  EXPECT_EQ(b.issuer.email, "badges@issuer.example");
  EXPECT_TRUE(b.issuer.embedded);
}

TEST(ParseAssertion, Ob05HashedRecipient) {
  Json assertion = Ob05Assertion();
  assertion["recipient"] = HashIdentity(kEarner, "sel");
  assertion["salt"] = "sel";
  const ParsedAssertion parsed = ParseAssertion(Bytes(assertion));
  ASSERT_TRUE(parsed.report.valid()) << Dump(parsed.report);
  EXPECT_TRUE(parsed.badge.recipient.hashed);
  EXPECT_EQ(parsed.badge.recipient.salt, "sel");
}

TEST(ParseAssertion, VerifyAndVerificationAreAliases) {
  Json ob20 = Ob20Assertion();
  ob20["verify"] = ob20["verification"];
  ob20.erase("verification");
  const ParsedAssertion aliased = ParseAssertion(Bytes(ob20));
  ASSERT_TRUE(aliased.report.valid()) << Dump(aliased.report);
  EXPECT_EQ(aliased.badge.verification.type, VerificationType::kHosted);
  EXPECT_TRUE(aliased.report.Has(check::kVerificationObject));

  Json ob10 = Ob10Assertion();
  ob10["verification"] = ob10["verify"];
  ob10.erase("verify");
  const ParsedAssertion legacy = ParseAssertion(Bytes(ob10));
  ASSERT_TRUE(legacy.report.valid()) << Dump(legacy.report);
  EXPECT_EQ(legacy.badge.spec_version, SpecVersion::kV1_0);
  EXPECT_EQ(legacy.badge.verification.url, kAssertionUrl);

  // The compact terms "hosted"/"signed" are OB 2.0 types too.
  Json compact = Ob20Assertion();
  compact["verification"] = {{"type", "signed"}, {"creator", kKeyUrl}};
  const ParsedAssertion signed_badge = ParseAssertion(Bytes(compact));
  ASSERT_TRUE(signed_badge.report.valid()) << Dump(signed_badge.report);
  EXPECT_EQ(signed_badge.badge.verification.type, VerificationType::kSigned);
  EXPECT_EQ(signed_badge.badge.verification.creator, kKeyUrl);
}

TEST(ParseAssertion, DatesInEachFormat) {
  for (const Json& issued : {Json("2024-05-01T10:00:00Z"), Json("2024-05-01T12:00:00+02:00"), Json("20240501T100000Z"),
                             Json(1714557600), Json("1714557600")}) {
    Json ob10 = Ob10Assertion();
    ob10["issuedOn"] = issued;
    const ParsedAssertion parsed = ParseAssertion(Bytes(ob10));
    ASSERT_TRUE(parsed.report.valid()) << issued << Dump(parsed.report);
    EXPECT_EQ(parsed.badge.issued_on, 1714557600) << issued;
    EXPECT_EQ(parsed.report.warning_count(), 0) << issued;
  }
  // OB 2.0 wants a date-time with a zone: other forms are read, with a warning.
  for (const Json& issued : {Json("2024-05-01T10:00:00"), Json("2024-05-01"), Json(1714557600)}) {
    Json ob20 = Ob20Assertion();
    ob20["issuedOn"] = issued;
    const ParsedAssertion parsed = ParseAssertion(Bytes(ob20));
    EXPECT_TRUE(parsed.report.valid()) << issued << Dump(parsed.report);
    EXPECT_TRUE(parsed.report.HasWarning(check::kValidateProperty)) << issued;
  }
  Json bad = Ob20Assertion();
  bad["issuedOn"] = "31/12/2016";
  EXPECT_TRUE(ParseAssertion(Bytes(bad)).report.HasError(check::kValidateProperty));
}

TEST(ParseAssertion, UnknownPropertiesAndExtensionsAreKeptVerbatim) {
  Json assertion = Ob20Assertion();
  assertion["extensions:exampleExtension"] = {{"type", {"Extension", "extensions:ExampleExtension"}},
                                              {"exampleProperty", "kept"}};
  assertion["x-vendor"] = {{"tier", 3}};
  assertion["endorsement"] = {kIssuerSite + "/endorsements/1.json", {{"type", "Endorsement"}, {"id", "urn:uuid:1"}}};
  // Hand-written bytes: spacing and key order the parser must not disturb.
  const std::string bytes = Bytes(assertion) + "\n";
  const ParsedAssertion parsed = ParseAssertion(bytes);
  ASSERT_TRUE(parsed.report.valid()) << Dump(parsed.report);
  EXPECT_EQ(parsed.badge.original, bytes);
  EXPECT_EQ(parsed.badge.kept.extensions, std::vector<std::string>{"extensions:exampleExtension"});
  EXPECT_EQ(parsed.badge.kept.unknown, std::vector<std::string>{"x-vendor"});
  EXPECT_TRUE(parsed.report.Has(check::kExtensions));
  EXPECT_TRUE(parsed.report.Has(check::kUnknownProperties));
  ASSERT_EQ(parsed.badge.endorsements.size(), 2u);
  EXPECT_EQ(parsed.badge.endorsements[0], "\"" + kIssuerSite + "/endorsements/1.json\"");
  EXPECT_EQ(Json::parse(parsed.badge.endorsements[1]), assertion["endorsement"][1]);
  EXPECT_NE(bytes.find(parsed.badge.endorsements[1]), std::string::npos);

  // Legacy documents keep theirs too.
  Json ob10 = Ob10Assertion();
  ob10["snood"] = "a very fun video game";
  const ParsedAssertion legacy = ParseAssertion(Bytes(ob10));
  ASSERT_TRUE(legacy.report.valid());
  EXPECT_EQ(legacy.badge.kept.unknown, std::vector<std::string>{"snood"});
}

TEST(ParseAssertion, DuplicateAndEscapedKeysSpanTheValueTheParserKept) {
  const std::string bytes =
      R"({"\u0062adge": {"name": "first"}, "recipient": "ada@issuer.example", "badge": {"name": "Loom", )"
      R"("description": "d \"q\"", "image": "/i", "criteria": "/c", "issuer": {"origin": "https://issuer.example", )"
      R"("name": "I"}}})";
  const ParsedAssertion parsed = ParseAssertion(bytes);
  ASSERT_TRUE(parsed.report.valid()) << Dump(parsed.report);
  EXPECT_EQ(parsed.badge.badge_class.name, "Loom");
  EXPECT_EQ(Json::parse(parsed.badge.badge_class.original)["name"], "Loom");
}

TEST(ParseAssertion, RefusesWhatIsNotAnAssertion) {
  Json ob30 = {{"@context", {"https://www.w3.org/ns/credentials/v2"}},
               {"type", {"VerifiableCredential", "OpenBadgeCredential"}}};
  const ParsedAssertion v3 = ParseAssertion(Bytes(ob30));
  EXPECT_EQ(v3.badge.spec_version, SpecVersion::kV3_0);
  EXPECT_TRUE(v3.report.HasError(check::kDetectVersion));
  const ParsedAssertion unknown = ParseAssertion(R"({"name": "just a thing"})");
  EXPECT_EQ(unknown.badge.spec_version, SpecVersion::kUnknown);
  EXPECT_TRUE(unknown.report.HasError(check::kDetectVersion));
  Json context = Ob20Assertion();
  context["@context"] = "https://w3id.org/openbadges/invalid";
  EXPECT_TRUE(ParseAssertion(Bytes(context)).report.HasError(check::kContextProperty));
  Json type = Ob20Assertion();
  type["type"] = "OtherAssertion";
  EXPECT_TRUE(ParseAssertion(Bytes(type)).report.HasError(check::kTypeProperty));
}

TEST(ParseAssertion, MalformedJsonIsReportedNotThrown) {
  for (const std::string bad : {"", "{", "{\"recipient\": }", "[1, 2]", "\"text\"", "null", "{} trailing",
                                "{\"a\": 1,}", "{\"a\": \"\xff\"}", "{'a': 1}"}) {
    const ParsedAssertion parsed = ParseAssertion(bad);
    EXPECT_FALSE(parsed.report.valid()) << bad;
    EXPECT_TRUE(parsed.report.HasError(check::kJsonParse)) << bad;
    EXPECT_EQ(parsed.badge.spec_version, SpecVersion::kUnknown);
    const CheckResult checked = CheckAssertion(parsed, {}, Options());
    EXPECT_FALSE(checked.valid());
  }
}

TEST(ParseAssertion, WrongTypesAreReportedPerProperty) {
  Json assertion = Ob20Assertion();
  assertion["id"] = 42;
  assertion["recipient"]["hashed"] = "true";  // a string is not a boolean in OB 2.0
  assertion["badge"] = {kBadgeUrl};
  assertion["image"] = "data:image/png;base64,iVBORw0KGgo=";  // no data: URI on an Assertion
  assertion["evidence"] = 7;
  const ParsedAssertion parsed = ParseAssertion(Bytes(assertion));
  std::set<std::string> properties;
  for (const ReportMessage& m : parsed.report.messages()) {
    if (m.level == MessageLevel::kError) properties.insert(m.property);
  }
  EXPECT_EQ(properties, (std::set<std::string>{"id", "recipient.hashed", "badge", "image", "evidence"}))
      << Dump(parsed.report);
}

TEST(ParseAssertion, HugeAndDeepDocumentsAreRefused) {
  ParseLimits limits;
  limits.max_document_bytes = 4096;
  Json big = Ob20Assertion();
  big["narrative"] = std::string(5000, 'x');
  const ParsedAssertion huge = ParseAssertion(Bytes(big), limits);
  EXPECT_TRUE(huge.report.HasError(check::kDocumentLimits));
  EXPECT_FALSE(ParseAssertion(std::string(2 << 20, ' ')).report.valid());  // over the default 1 MiB

  const std::string deep = "{\"badge\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  const ParsedAssertion nested = ParseAssertion(deep);
  EXPECT_TRUE(nested.report.HasError(check::kDocumentLimits));
  // Brackets inside strings do not count.
  Json brackets = Ob20Assertion();
  brackets["narrative"] = std::string(1000, '[');
  EXPECT_TRUE(ParseAssertion(Bytes(brackets)).report.valid());
}

TEST(ParseAssertion, AcceptsAByteOrderMark) {
  const std::string bytes = "\xEF\xBB\xBF" + Bytes(Ob05Assertion());
  const ParsedAssertion parsed = ParseAssertion(bytes);
  ASSERT_TRUE(parsed.report.valid()) << Dump(parsed.report);
  EXPECT_EQ(parsed.badge.original, bytes);
  EXPECT_EQ(Json::parse(parsed.badge.badge_class.original)["name"], "Loom Programmer");
}

TEST(VerificationReport, CapsMessagesButKeepsCounts) {
  Json badge = Ob20BadgeClass();
  badge["alignment"] = Json::array();
  for (int i = 0; i < 500; ++i) badge["alignment"].push_back({{"targetName", i}});
  ParseLimits limits;
  limits.max_messages = 20;
  const ParsedBadgeClass parsed = ParseBadgeClass(Bytes(badge), SpecVersion::kV2_0, limits);
  EXPECT_EQ(parsed.report.messages().size(), 20u);
  EXPECT_TRUE(parsed.report.Has(check::kReportTruncated));
  EXPECT_GE(parsed.report.error_count(), 500);
  VerificationReport merged;
  merged.Merge(parsed.report, "badge.");
  EXPECT_EQ(merged.error_count(), parsed.report.error_count());
}

TEST(VerificationReport, ToJsonHasTheValidatorShape) {
  Json assertion = Ob20Assertion();
  assertion.erase("badge");
  const ParsedAssertion parsed = ParseAssertion(Bytes(assertion));
  const Json report = Json::parse(parsed.report.ToJson());
  EXPECT_EQ(report["valid"], false);
  EXPECT_EQ(report["errorCount"], 1);
  EXPECT_EQ(report["warningCount"], 0);
  bool found = false;
  for (const Json& m : report["messages"]) {
    EXPECT_TRUE(m.contains("name") && m.contains("result") && m.contains("messageLevel") && m.contains("message"));
    if (m["messageLevel"] == "ERROR") {
      EXPECT_EQ(m["name"], "VALIDATE_PROPERTY");
      EXPECT_EQ(m["result"], false);
      EXPECT_EQ(m["property"], "badge");
      found = true;
    }
  }
  EXPECT_TRUE(found);
}

// ---------------------------------------------------------------------------
// Checking

TEST(CheckAssertion, Ob20HostedLinkedIsValid) {
  const ParsedAssertion parsed = ParseAssertion(Bytes(Ob20Assertion()));
  FetchedDocuments docs;
  // The documents arrive in rounds: the BadgeClass, then its issuer.
  EXPECT_EQ(DocumentsToFetch(parsed, docs, Options()), std::vector<std::string>{kBadgeUrl});
  docs[kBadgeUrl] = {200, Bytes(Ob20BadgeClass()), ""};
  EXPECT_EQ(DocumentsToFetch(parsed, docs, Options()), std::vector<std::string>{kIssuerUrl});
  docs[kIssuerUrl] = {200, Bytes(Ob20Issuer()), ""};
  EXPECT_TRUE(DocumentsToFetch(parsed, docs, Options()).empty());

  const CheckResult result = CheckAssertion(parsed, docs, Options());
  ASSERT_TRUE(result.valid()) << Dump(result.report);
  EXPECT_EQ(result.report.warning_count(), 0) << Dump(result.report);
  EXPECT_EQ(result.matched_email, "Ada@Issuer.Example");
  EXPECT_EQ(result.badge.badge_class.name, "Loom Programmer");
  EXPECT_EQ(result.badge.badge_class.source_url, kBadgeUrl);
  EXPECT_EQ(result.badge.badge_class.original, docs[kBadgeUrl].body);
  EXPECT_EQ(result.badge.issuer.name, "Issuer Example");
  EXPECT_EQ(result.badge.issuer.original, docs[kIssuerUrl].body);
}

TEST(CheckAssertion, Ob10HostedLinkedIsValid) {
  FetchedDocuments docs = Docs({{kBadgeUrl, Ob10BadgeClass()}, {kIssuerUrl, Ob10Issuer()}});
  const CheckResult result = Check(Ob10Assertion(), docs);
  ASSERT_TRUE(result.valid()) << Dump(result.report);
  EXPECT_EQ(result.badge.badge_class.alignment.at(0).target_url, "https://standards.example/w101");
  EXPECT_EQ(result.badge.issuer.url, kIssuerSite);
}

TEST(CheckAssertion, Ob05IsCheckedAgainstItsOrigin) {
  CheckOptions options = Options();
  options.source_url = kIssuerSite + "/badges/ada.json";
  EXPECT_TRUE(Check(Ob05Assertion(), {}, options).valid());
  options.source_url = "https://elsewhere.example/ada.json";
  EXPECT_TRUE(Check(Ob05Assertion(), {}, options).report.HasError(check::kIssuerOrigin));
  options.source_url.clear();  // from a baked image: nothing to hold it to
  const CheckResult unknown = Check(Ob05Assertion(), {}, options);
  EXPECT_TRUE(unknown.valid());
  EXPECT_TRUE(unknown.report.HasWarning(check::kIssuerOrigin));
}

TEST(CheckAssertion, Ob05SaltedPlainRecipientIsRefused) {
  Json assertion = Ob05Assertion();
  assertion["salt"] = "lol";
  CheckOptions options = Options();
  options.source_url = kIssuerSite + "/a.json";
  EXPECT_TRUE(Check(assertion, {}, options).report.HasError(check::kValidateRecipient));
}

TEST(CheckAssertion, WrongRecipientIsRefused) {
  CheckOptions options = Options();
  options.verified_emails = {"eve@issuer.example"};
  const CheckResult result = Check(Ob20Assertion(), Ob20Docs(), options);
  EXPECT_FALSE(result.valid());
  EXPECT_TRUE(result.report.HasError(check::kValidateRecipient));
  EXPECT_TRUE(result.matched_email.empty());
  options.check_recipient = false;  // e.g. a public validation endpoint
  EXPECT_TRUE(Check(Ob20Assertion(), Ob20Docs(), options).valid());
}

TEST(CheckAssertion, ExpiredIsRefused) {
  Json assertion = Ob20Assertion();
  assertion["expires"] = "2026-11-26T23:59:59Z";
  const CheckResult result = Check(assertion, Ob20Docs());
  EXPECT_TRUE(result.report.HasError(check::kExpired));
  assertion["expires"] = "2026-11-27T00:00:01Z";
  EXPECT_TRUE(Check(assertion, Ob20Docs()).valid());
}

TEST(CheckAssertion, IssuedInTheFutureIsRefusedBeyondTheSkew) {
  Json assertion = Ob20Assertion();
  assertion["issuedOn"] = "2026-11-27T00:04:00Z";  // within the 5-minute skew
  EXPECT_TRUE(Check(assertion, Ob20Docs()).valid());
  assertion["issuedOn"] = "2026-11-27T00:06:00Z";
  EXPECT_TRUE(Check(assertion, Ob20Docs()).report.HasError(check::kIssuedOnInFuture));
  CheckOptions strict = Options();
  strict.clock_skew_seconds = 0;
  assertion["issuedOn"] = "2026-11-27T00:00:01Z";
  EXPECT_TRUE(Check(assertion, Ob20Docs(), strict).report.HasError(check::kIssuedOnInFuture));
}

TEST(CheckAssertion, ExpiringBeforeIssueIsRefused) {
  Json assertion = Ob20Assertion();
  assertion["issuedOn"] = "2030-01-02T00:00:00Z";
  assertion["expires"] = "2030-01-01T00:00:00Z";
  CheckOptions options = Options();
  options.now = 1'893'456'000 - 10;  // just before 2030-01-01
  const CheckResult result = Check(assertion, Ob20Docs(), options);
  EXPECT_TRUE(result.report.HasError(check::kExpiresBeforeIssued)) << Dump(result.report);
}

TEST(CheckAssertion, RevokedByListById) {
  Json issuer = Ob20Issuer();
  issuer["revocationList"] = kRevocationUrl;
  const Json list = {
      {"@context", kContext2},
      {"type", "RevocationList"},
      {"id", kRevocationUrl},
      {"revokedAssertions", {"urn:uuid:0", {{"id", kAssertionUrl}, {"revocationReason", "Issued in error"}}}}};
  const ParsedAssertion parsed = ParseAssertion(Bytes(Ob20Assertion()));
  FetchedDocuments docs = Docs({{kBadgeUrl, Ob20BadgeClass()}, {kIssuerUrl, issuer}});
  EXPECT_EQ(DocumentsToFetch(parsed, docs, Options()), std::vector<std::string>{kRevocationUrl});
  const CheckResult unfetched = CheckAssertion(parsed, docs, Options());
  EXPECT_TRUE(unfetched.report.HasError(check::kFetchDocument));  // never valid without the list
  EXPECT_EQ(unfetched.missing_documents, std::vector<std::string>{kRevocationUrl});

  docs[kRevocationUrl] = {200, Bytes(list), ""};
  const CheckResult result = CheckAssertion(parsed, docs, Options());
  EXPECT_TRUE(result.report.HasError(check::kRevoked)) << Dump(result.report);
  EXPECT_TRUE(result.badge.revoked);
  EXPECT_EQ(result.badge.revocation_reason, "Issued in error");

  docs[kRevocationUrl] = {
      200, Bytes({{"@context", kContext2}, {"type", "RevocationList"}, {"revokedAssertions", Json::array()}}), ""};
  EXPECT_TRUE(CheckAssertion(parsed, docs, Options()).valid());
}

TEST(CheckAssertion, RevokedByListByUid) {
  Json issuer = Ob10Issuer();
  issuer["revocationList"] = kRevocationUrl;
  FetchedDocuments docs = Docs({{kBadgeUrl, Ob10BadgeClass()},
                                {kIssuerUrl, issuer},
                                {kRevocationUrl, {{"a1", "Duplicate award"}, {"b2", "Other"}}}});
  const CheckResult legacy = Check(Ob10Assertion(), docs);
  EXPECT_TRUE(legacy.report.HasError(check::kRevoked)) << Dump(legacy.report);
  EXPECT_EQ(legacy.badge.revocation_reason, "Duplicate award");

  // An OB 2.0 list may name legacy assertions by uid.
  Json ob20_issuer = Ob20Issuer();
  ob20_issuer["revocationList"] = kRevocationUrl;
  Json assertion = Ob20Assertion();
  assertion["uid"] = "legacy-7";
  FetchedDocuments ob20_docs =
      Docs({{kBadgeUrl, Ob20BadgeClass()},
            {kIssuerUrl, ob20_issuer},
            {kRevocationUrl, {{"type", "RevocationList"}, {"revokedAssertions", {{{"uid", "legacy-7"}}}}}}});
  EXPECT_TRUE(Check(assertion, ob20_docs).report.HasError(check::kRevoked));

  // A list that cannot be read fails closed.
  ob20_docs[kRevocationUrl] = {200, R"({"type": "RevocationList", "revokedAssertions": [7]})", ""};
  EXPECT_TRUE(Check(assertion, ob20_docs).report.HasError(check::kRevocationList));
}

TEST(CheckAssertion, RevokedByTheHostedResponse) {
  CheckOptions baked = Options();
  baked.source_url.clear();  // read from a baked image: the hosted copy must be fetched
  const ParsedAssertion parsed = ParseAssertion(Bytes(Ob20Assertion()));
  FetchedDocuments docs = Ob20Docs();
  EXPECT_EQ(DocumentsToFetch(parsed, docs, baked), std::vector<std::string>{kAssertionUrl});

  docs[kAssertionUrl] = {200, Bytes(Ob20Assertion()), ""};
  EXPECT_TRUE(CheckAssertion(parsed, docs, baked).valid());

  docs[kAssertionUrl] = {200,
                         R"({"@context": "https://w3id.org/openbadges/v2", "id": ")" + kAssertionUrl +
                             R"(", "revoked": true, "revocationReason": "Withdrawn"})",
                         ""};
  const CheckResult revoked = CheckAssertion(parsed, docs, baked);
  EXPECT_TRUE(revoked.report.HasError(check::kRevoked)) << Dump(revoked.report);
  EXPECT_EQ(revoked.badge.revocation_reason, "Withdrawn");

  docs[kAssertionUrl] = {410, "", ""};
  EXPECT_TRUE(CheckAssertion(parsed, docs, baked).report.HasError(check::kRevoked));

  docs[kAssertionUrl] = {404, "", ""};
  EXPECT_TRUE(CheckAssertion(parsed, docs, baked).report.HasError(check::kFetchDocument));

  Json other = Ob20Assertion();
  other["recipient"]["identity"] = HashIdentity("eve@issuer.example", "pepper");
  docs[kAssertionUrl] = {200, Bytes(other), ""};
  EXPECT_TRUE(CheckAssertion(parsed, docs, baked).report.HasError(check::kHostedAssertion));

  // The presented assertion saying so is enough.
  Json self_revoked = Ob20Assertion();
  self_revoked["revoked"] = true;
  EXPECT_TRUE(Check(self_revoked, Ob20Docs()).report.HasError(check::kRevoked));
}

TEST(CheckAssertion, HostedAssertionMustLiveOnTheIssuersOrigin) {
  // Same host, either scheme: fine.
  Json issuer = Ob20Issuer();
  issuer["id"] = "http://issuer.example/issuer.json";
  EXPECT_TRUE(Check(Ob20Assertion(), Docs({{kBadgeUrl, Ob20BadgeClass()}, {kIssuerUrl, issuer}})).valid());

  // Another origin: refused.
  Json elsewhere = Ob20Assertion();
  const std::string foreign = "https://badges.elsewhere.example/42.json";
  elsewhere["id"] = foreign;
  CheckOptions options = Options();
  options.source_url = foreign;
  const CheckResult refused = Check(elsewhere, Ob20Docs(), options);
  EXPECT_TRUE(refused.report.HasError(check::kIssuerOrigin)) << Dump(refused.report);

  // Allowed by the issuer's allowedOrigins.
  issuer = Ob20Issuer();
  issuer["verification"] = {{"allowedOrigins", {"badges.elsewhere.example", "issuer.example"}}};
  const CheckResult allowed = Check(elsewhere, Docs({{kBadgeUrl, Ob20BadgeClass()}, {kIssuerUrl, issuer}}), options);
  EXPECT_TRUE(allowed.valid()) << Dump(allowed.report);

  // startsWith narrows further; a matching prefix keeps the default host rule.
  issuer = Ob20Issuer();
  issuer["verification"] = {{"startsWith", {"https://cdn.example/", kIssuerSite + "/assertions/"}}};
  EXPECT_TRUE(Check(Ob20Assertion(), Docs({{kBadgeUrl, Ob20BadgeClass()}, {kIssuerUrl, issuer}})).valid());
  issuer["verification"] = {{"startsWith", kIssuerSite + "/other/"}};
  EXPECT_TRUE(Check(Ob20Assertion(), Docs({{kBadgeUrl, Ob20BadgeClass()}, {kIssuerUrl, issuer}}))
                  .report.HasError(check::kIssuerOrigin));

  // OB 1.0: verify.url against where the issuer lives.
  Json ob10 = Ob10Assertion();
  ob10["verify"]["url"] = foreign;
  options.source_url = foreign;
  EXPECT_TRUE(Check(ob10, Docs({{kBadgeUrl, Ob10BadgeClass()}, {kIssuerUrl, Ob10Issuer()}}), options)
                  .report.HasError(check::kIssuerOrigin));
}

TEST(CheckAssertion, MissingAndFailedDocumentsAreErrors) {
  const CheckResult nothing = Check(Ob20Assertion(), {});
  EXPECT_FALSE(nothing.valid());
  EXPECT_EQ(nothing.missing_documents, std::vector<std::string>{kBadgeUrl});
  EXPECT_TRUE(nothing.report.HasError(check::kFetchDocument));

  FetchedDocuments docs = Ob20Docs();
  docs[kIssuerUrl] = {0, "", ""};
  EXPECT_TRUE(Check(Ob20Assertion(), docs).report.HasError(check::kFetchDocument));
  docs[kIssuerUrl] = {200, "<html>not json</html>", ""};
  const CheckResult html = Check(Ob20Assertion(), docs);
  EXPECT_TRUE(html.report.HasError(check::kJsonParse));
  EXPECT_FALSE(html.valid());

  // A BadgeClass with problems reports them under "badge.".
  Json badge = Ob20BadgeClass();
  badge.erase("name");
  docs = Ob20Docs();
  docs[kBadgeUrl] = {200, Bytes(badge), ""};
  const CheckResult broken = Check(Ob20Assertion(), docs);
  bool found = false;
  for (const ReportMessage& m : broken.report.messages()) found = found || m.property == "badge.name";
  EXPECT_TRUE(found) << Dump(broken.report);
}

TEST(CheckAssertion, DocumentThatNamesAnotherIdIsAWarning) {
  FetchedDocuments docs = Ob20Docs();
  Json moved = Ob20BadgeClass();
  moved["id"] = kIssuerSite + "/badges/loom-v2.json";
  docs[kBadgeUrl] = {200, Bytes(moved), ""};
  const CheckResult result = Check(Ob20Assertion(), docs);
  EXPECT_TRUE(result.valid()) << Dump(result.report);
  EXPECT_TRUE(result.report.HasWarning(check::kDocumentIdMismatch));
  // ...unless it is where the redirect ended.
  docs[kBadgeUrl].final_url = kIssuerSite + "/badges/loom-v2.json";
  EXPECT_FALSE(Check(Ob20Assertion(), docs).report.Has(check::kDocumentIdMismatch));
}

TEST(CheckAssertion, SignedBadgeNeedsTheIssuersKeyAndAVerifiedSignature) {
  Json assertion = Ob20Assertion();
  assertion["id"] = "urn:uuid:7d3a8e0c-2f0b-4b8e-9d5e-0f3c2a1b4c5d";
  assertion["verification"] = {{"type", "SignedBadge"}, {"creator", kKeyUrl}};
  Json issuer = Ob20Issuer();
  issuer["publicKey"] = {kKeyUrl};
  const Json key = {{"@context", kContext2},
                    {"type", "CryptographicKey"},
                    {"id", kKeyUrl},
                    {"owner", kIssuerUrl},
                    {"publicKeyPem", kPem}};
  const ParsedAssertion parsed = ParseAssertion(Bytes(assertion));
  FetchedDocuments docs = Docs({{kBadgeUrl, Ob20BadgeClass()}, {kIssuerUrl, issuer}});
  EXPECT_EQ(DocumentsToFetch(parsed, docs, Options()), std::vector<std::string>{kKeyUrl});
  docs[kKeyUrl] = {200, Bytes(key), ""};

  CheckOptions options = Options();
  options.source_url.clear();
  const CheckResult unverified = CheckAssertion(parsed, docs, options);
  ASSERT_EQ(unverified.signing_keys.size(), 1u) << Dump(unverified.report);
  EXPECT_EQ(unverified.signing_keys[0].url, kKeyUrl);
  EXPECT_EQ(unverified.signing_keys[0].public_key_pem, kPem);
  EXPECT_TRUE(unverified.report.HasError(check::kVerifySignature));
  EXPECT_EQ(unverified.report.error_count(), 1) << Dump(unverified.report);

  options.signature_key_url = kKeyUrl;
  EXPECT_TRUE(CheckAssertion(parsed, docs, options).valid());
  options.signature_key_url = kIssuerSite + "/keys/other.json";
  EXPECT_FALSE(CheckAssertion(parsed, docs, options).valid());
  options.signature_key_url = kKeyUrl;

  // The same through a signature check called with each issuer key: it
  // sees the key's URL and PEM, and its refusal is named in the report.
  CheckOptions by_callback = Options();
  by_callback.source_url.clear();
  std::vector<std::string> tried;
  by_callback.signature_check = [&tried](const SigningKey& k) -> Status {
    tried.push_back(k.url + " " + std::to_string(k.public_key_pem.size()));
    return InvalidArgument("alg HS256 is refused");
  };
  const CheckResult refused = CheckAssertion(parsed, docs, by_callback);
  EXPECT_EQ(tried, std::vector<std::string>{kKeyUrl + " " + std::to_string(kPem.size())});
  EXPECT_TRUE(refused.report.HasError(check::kVerifySignature));
  EXPECT_NE(Dump(refused.report).find("alg HS256 is refused"), std::string::npos) << Dump(refused.report);
  by_callback.signature_check = [](const SigningKey&) { return Status::Ok(); };
  EXPECT_TRUE(CheckAssertion(parsed, docs, by_callback).valid());

  // A key the issuer does not own, or does not declare, is refused.
  Json stolen = key;
  stolen["owner"] = "https://mallory.example/issuer.json";
  docs[kKeyUrl] = {200, Bytes(stolen), ""};
  EXPECT_TRUE(CheckAssertion(parsed, docs, options).report.HasError(check::kSigningKey));
  docs[kKeyUrl] = {200, Bytes(key), ""};
  issuer["publicKey"] = kIssuerSite + "/keys/2.json";
  docs[kIssuerUrl] = {200, Bytes(issuer), ""};
  EXPECT_TRUE(CheckAssertion(parsed, docs, options).report.HasError(check::kSigningKey));
}

TEST(CheckAssertion, SignedBadgeWithEmbeddedIssuerFetchesTheIssuersProfile) {
  Json badge = Ob20BadgeClass();
  Json embedded = Ob20Issuer();
  embedded["publicKey"] = "https://mallory.example/key.json";  // what the signer claims
  badge["issuer"] = embedded;
  Json assertion = Ob20Assertion();
  assertion["id"] = "urn:uuid:7d3a8e0c-2f0b-4b8e-9d5e-0f3c2a1b4c5d";
  assertion["badge"] = badge;
  assertion["verification"] = {{"type", "SignedBadge"}};
  const ParsedAssertion parsed = ParseAssertion(Bytes(assertion));
  FetchedDocuments docs;
  EXPECT_EQ(DocumentsToFetch(parsed, docs, Options()), std::vector<std::string>{kIssuerUrl});
  Json profile = Ob20Issuer();
  profile["publicKey"] = kKeyUrl;
  docs[kIssuerUrl] = {200, Bytes(profile), ""};
  EXPECT_EQ(DocumentsToFetch(parsed, docs, Options()), std::vector<std::string>{kKeyUrl});
}

TEST(CheckAssertion, SignedBadgeWithoutCreatorTriesTheFirstIssuerKeys) {
  Json assertion = Ob20Assertion();
  assertion["id"] = "urn:uuid:7d3a8e0c-2f0b-4b8e-9d5e-0f3c2a1b4c5d";
  assertion["verification"] = {{"type", "SignedBadge"}};
  Json issuer = Ob20Issuer();
  issuer["publicKey"] = Json::array();
  for (int i = 0; i < 6; ++i) issuer["publicKey"].push_back(kIssuerSite + "/keys/" + std::to_string(i) + ".json");
  const ParsedAssertion parsed = ParseAssertion(Bytes(assertion));
  const FetchedDocuments docs = Docs({{kBadgeUrl, Ob20BadgeClass()}, {kIssuerUrl, issuer}});
  const std::vector<std::string> urls = DocumentsToFetch(parsed, docs, Options());
  ASSERT_EQ(urls.size(), kMaxPublicKeys);
  EXPECT_EQ(urls.front(), kIssuerSite + "/keys/0.json");
  EXPECT_EQ(urls.back(), kIssuerSite + "/keys/3.json");
}

TEST(CheckAssertion, Ob10SignedKeyMustComeFromTheIssuersOrigin) {
  Json assertion = Ob10Assertion();
  assertion["verify"] = {{"type", "signed"}, {"url", kIssuerSite + "/public.pem"}};
  FetchedDocuments docs = Docs({{kBadgeUrl, Ob10BadgeClass()}, {kIssuerUrl, Ob10Issuer()}});
  docs[kIssuerSite + "/public.pem"] = {200, kPem, ""};
  CheckOptions options = Options();
  options.signature_key_url = kIssuerSite + "/public.pem";
  EXPECT_TRUE(Check(assertion, docs, options).valid()) << Dump(Check(assertion, docs, options).report);
  assertion["verify"]["url"] = "https://mallory.example/public.pem";
  docs["https://mallory.example/public.pem"] = {200, kPem, ""};
  EXPECT_TRUE(Check(assertion, docs, options).report.HasError(check::kSigningKey));
}

// ---------------------------------------------------------------------------
// Standalone documents

TEST(ValidateDocument, DetectsTheClassFromType) {
  EXPECT_EQ(ValidateDocument(Bytes(Ob20BadgeClass())).document_class, DocumentClass::kBadgeClass);
  EXPECT_EQ(ValidateDocument(Bytes(Ob20Issuer())).document_class, DocumentClass::kIssuer);
  EXPECT_EQ(ValidateDocument(Bytes(Ob20Assertion())).document_class, DocumentClass::kAssertion);
  EXPECT_EQ(ValidateDocument(Bytes(Ob05Assertion())).document_class, DocumentClass::kAssertion);
  const DocumentValidation cool = ValidateDocument(R"({"type": "https://example.org/CoolClass", "name": "x"})");
  EXPECT_EQ(cool.document_class, DocumentClass::kOther);
  EXPECT_TRUE(cool.report.valid());
  for (const char* bad : {R"({"type": "NotAKnownClass"})", R"({"type": []})", R"({"type": ["Issuer", "UNKNOWN"]})",
                          R"({"name": "untyped"})"}) {
    EXPECT_TRUE(ValidateDocument(bad).report.HasError(check::kTypeProperty)) << bad;
  }
  const DocumentValidation key =
      ValidateDocument(R"({"type": "CryptographicKey", "owner": "https://issuer.example/issuer.json"})");
  EXPECT_EQ(key.document_class, DocumentClass::kCryptographicKey);
  EXPECT_FALSE(key.report.valid());  // no publicKeyPem
}

TEST(ParseIssuer, ReadsThePolicyAndWarnsAboutNonHttpIds) {
  Json issuer = Ob20Issuer();
  issuer["id"] = "urn:uuid:2d391246-6e0d-4dab-906c-b29770bd7aa6";
  issuer["verification"] = {{"allowedOrigins", "Issuer.Example:8443"}, {"startsWith", kIssuerSite + "/a/"}};
  const ParsedIssuer parsed = ParseIssuer(Bytes(issuer), SpecVersion::kV2_0);
  EXPECT_TRUE(parsed.report.valid()) << Dump(parsed.report);
  EXPECT_TRUE(parsed.report.HasWarning(check::kIssuerPropertyDependencies));
  ASSERT_TRUE(parsed.issuer.verification.has_value());
  EXPECT_EQ(parsed.issuer.verification->allowed_origins, std::vector<std::string>{"issuer.example:8443"});
  issuer["verification"] = {{"allowedOrigins", "https://issuer.example/"}};
  EXPECT_FALSE(ParseIssuer(Bytes(issuer), SpecVersion::kV2_0).report.valid());
  issuer["telephone"] = "555-0100";
  EXPECT_FALSE(ParseIssuer(Bytes(issuer), SpecVersion::kV2_0).report.valid());
}

}  // namespace
}  // namespace backpack::protocol
