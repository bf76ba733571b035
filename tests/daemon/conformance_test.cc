// Conformance against third-party vectors (/work/shared/vectors, see its
// README): every vector with a source verdict must be classified the same
// way. Badges go in the way an earner hands them in, through BadgeVerifier
// and the real Fetcher, with the clock fixed at the date the vectors'
// expiry facts were judged on; every issuer URL the fixtures name is
// answered by a local HTTP server from the vectors folder. Standalone
// documents (a BadgeClass or Profile given as input) and the Mozilla
// validator's structure cases are document checks, judged with the parses
// of protocol/assertion.h (a BadgeClass's linked issuer fetched the same
// way). The summary is printed; any mismatch fails the test.
//
// BACKPACK_VECTORS_DIR overrides where the vectors are; without them the
// test is skipped.
#include <gtest/gtest.h>

#include "tests/support/vectors.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "daemon/badge_verifier.h"
#include "daemon/fetcher.h"
#include "protocol/assertion.h"
#include "protocol/recipient.h"
#include "protocol/verification_report.h"
#include "tests/support/local_http_server.h"

namespace backpack {
namespace {

namespace check = protocol::check;
using Json = nlohmann::json;
using protocol::CheckResult;
using protocol::DocumentClass;
using protocol::DocumentValidation;
using protocol::HashIdentity;
using protocol::MessageLevel;
using protocol::ParseAssertion;
using protocol::ParseBadgeClass;
using protocol::ParsedAssertion;
using protocol::ParsedBadgeClass;
using protocol::ParseIssuer;
using protocol::ReportMessage;
using protocol::SpecVersion;
using protocol::SpecVersionName;
using protocol::ValidateDocument;
using protocol::VerificationReport;
using testing::LocalHttpServer;
using testing::LocalResponse;

constexpr int64_t kNow = 1'795'737'600;  // 2026-11-27T00:00:00Z, when the vectors' expiry facts were judged

using backpack::testing::VectorsDir;

std::optional<std::string> ReadFile(const std::filesystem::path& path) { return backpack::testing::ReadVectorFile(path); }

enum class Verdict { kValid, kWarning, kInvalid };

const char* VerdictName(Verdict v) {
  return v == Verdict::kValid ? "valid" : v == Verdict::kWarning ? "warning" : "invalid";
}

// Why a source says a document fails (or warns): the check that must say so
// too, or the property it must name.
struct Reason {
  std::string_view check;
  std::string property;
};

bool Names(const ReportMessage& m, const Reason& reason) {
  const bool check_ok = reason.check.empty() || m.name == reason.check;
  const bool property_ok = reason.property.empty() || m.property == reason.property ||
                           m.property.starts_with(reason.property + ".") ||
                           m.property.starts_with(reason.property + "[");
  return check_ok && property_ok;
}

// Source "valid" means no errors; "warning" valid with at least one warning;
// either of the last two for the reason given.
bool Agrees(Verdict expected, const VerificationReport& report, const Reason& reason) {
  const MessageLevel level = expected == Verdict::kWarning ? MessageLevel::kWarning : MessageLevel::kError;
  bool named = false;
  for (const ReportMessage& m : report.messages()) named = named || (m.level == level && Names(m, reason));
  switch (expected) {
    case Verdict::kValid:
      return report.valid();
    case Verdict::kWarning:
      return report.valid() && named;
    case Verdict::kInvalid:
      return !report.valid() && named;
  }
  return false;
}

class Tally {
 public:
  void Decided(const std::string& name, Verdict expected, const VerificationReport& report, const Reason& reason = {}) {
    ++decided_;
    auto& [source_decided, source_matching] = by_source_[name.substr(0, name.find('/'))];
    ++source_decided;
    if (Agrees(expected, report, reason)) {
      ++matching_;
      ++source_matching;
    } else {
      mismatches_.push_back(name + ": expected " + VerdictName(expected) + ", got " + report.ToJson());
    }
  }
  void Undecided(const std::string& name, const std::string& why) { undecided_.push_back(name + " (" + why + ")"); }
  void NoVerdict(const std::string& name) {
    ++no_verdict_;
    no_verdict_names_.push_back(name);
  }

  int decided() const { return decided_; }
  const std::vector<std::string>& mismatches() const { return mismatches_; }

  void Print(std::ostream& out) const {
    out << "conformance: " << decided_ << " decided, " << matching_ << " matching, " << undecided_.size()
        << " undecided, " << no_verdict_ << " without a source verdict (parsed only)\n";
    for (const auto& [source, counts] : by_source_) {
      out << "  " << source << ": " << counts.first << " decided, " << counts.second << " matching\n";
    }
    for (const std::string& u : undecided_) out << "  undecided: " << u << "\n";
    for (const std::string& n : no_verdict_names_) out << "  no verdict: " << n << "\n";
    for (const std::string& m : mismatches_) out << "  MISMATCH: " << m << "\n";
  }

 private:
  int decided_ = 0;
  int matching_ = 0;
  int no_verdict_ = 0;
  std::map<std::string, std::pair<int, int>> by_source_;
  std::vector<std::string> undecided_;
  std::vector<std::string> no_verdict_names_;
  std::vector<std::string> mismatches_;
};

// The fixtures' web (the README's URL map), served over HTTP on 127.0.0.1.
// Its DocumentFetch rewrites https://example.org/x to
// http://127.0.0.1:PORT/https/example.org/x, fetches that with the real
// Fetcher and maps the answer's URLs back (final_url, redirects, error
// messages), so the checks see the fixtures' own URLs. Every http(s) URL
// goes to the local server; one nobody mapped answers 404, as on the
// sources' own test webs. Other schemes go to the Fetcher unchanged, which
// refuses them.
class FixtureWeb {
 public:
  FixtureWeb() : server_([this](const std::string& target) { return Answer(target); }), fetcher_(LocalFetchConfig()) {}

  // False when the server cannot listen or the fetcher cannot work.
  bool Start() { return fetcher_.init_status().ok() && server_.Start(); }

  // URLs starting with `prefix` are the files of the same name in `dir`.
  void Map(std::string prefix, std::filesystem::path dir) {
    std::lock_guard lock(mu_);
    prefixes_.emplace_back(std::move(prefix), std::move(dir));
  }
  // `url` is `file`, from now on.
  void Serve(const std::string& url, std::filesystem::path file) {
    std::lock_guard lock(mu_);
    files_[url] = std::move(file);
  }
  // The issuer hosts `bytes` at `url`, in place of any assertion hosted
  // before (one case at a time).
  void Host(std::string url, std::string bytes) {
    std::lock_guard lock(mu_);
    hosted_ = {std::move(url), std::move(bytes)};
  }

  DocumentFetch AsFetch() {
    return [this](const std::string& url, FetchFreshness freshness) { return Fetch(url, freshness); };
  }

 private:
  static config::FetchConfig LocalFetchConfig() {
    config::FetchConfig config;
    config.allow_private = true;  // the stand-in server is on 127.0.0.1
    // No cache: from one case to the next, the same URL can host another
    // assertion.
    config.cache_entries = 0;
    return config;
  }

  Result<FetchResult> Fetch(const std::string& url, FetchFreshness freshness) {
    FetchRequest request;
    request.url = LocalUrl(url);
    request.reuse_fresh = freshness == FetchFreshness::kReuseFresh;
    Result<FetchResult> got = fetcher_.Fetch(request);
    if (!got.ok()) return Status(got.status().code(), FixtureUrls(got.status().message()));
    FetchResult result = std::move(got).value();
    result.final_url = FixtureUrls(result.final_url);
    for (std::string& redirect : result.redirects) redirect = FixtureUrls(redirect);
    return result;
  }

  // http(s)://host/path -> <server>/http(s)/host/path; anything else as it is.
  std::string LocalUrl(const std::string& url) const {
    const size_t colon = url.find("://");
    if (colon == std::string::npos) return url;
    std::string scheme = url.substr(0, colon);
    std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (scheme != "http" && scheme != "https") return url;
    return server_.base_url() + "/" + scheme + "/" + url.substr(colon + 3);
  }

  // `text` with every local URL turned back into the fixture URL it stands for.
  std::string FixtureUrls(std::string text) const {
    for (const char* scheme : {"http", "https"}) {
      const std::string local = server_.base_url() + "/" + scheme + "/";
      const std::string fixture = std::string(scheme) + "://";
      for (size_t at = text.find(local); at != std::string::npos; at = text.find(local, at + fixture.size())) {
        text.replace(at, local.size(), fixture);
      }
    }
    return text;
  }

  // The server's side: /http(s)/host/path is the fixture URL http(s)://host/path.
  LocalResponse Answer(const std::string& target) const {
    const LocalResponse not_found{.status = 404, .content_type = "text/plain", .body = "not found"};
    const size_t slash = target.find('/', 1);
    if (target.empty() || target[0] != '/' || slash == std::string::npos) return not_found;
    const std::string url = target.substr(1, slash - 1) + "://" + target.substr(slash + 1);
    std::optional<std::filesystem::path> file;
    {
      std::lock_guard lock(mu_);
      if (url == hosted_.first) return {.content_type = "application/ld+json", .body = hosted_.second};
      if (auto it = files_.find(url); it != files_.end()) {
        file = it->second;
      } else {
        for (const auto& [prefix, dir] : prefixes_) {
          if (url.starts_with(prefix)) {
            file = dir / url.substr(prefix.size());
            break;
          }
        }
      }
    }
    std::optional<std::string> body = file ? ReadFile(*file) : std::nullopt;
    if (!body) return not_found;
    const std::string extension = file->extension().string();
    const char* type = extension == ".png"   ? "image/png"
                       : extension == ".svg" ? "image/svg+xml"
                                             : "application/ld+json";
    return {.content_type = type, .body = std::move(*body)};
  }

  mutable std::mutex mu_;
  std::vector<std::pair<std::string, std::filesystem::path>> prefixes_;
  std::map<std::string, std::filesystem::path> files_;
  std::pair<std::string, std::string> hosted_;  // URL, bytes
  LocalHttpServer server_;                      // stopped before the maps go
  Fetcher fetcher_;
};

// A badge handed in by an earner who has verified `emails`.
VerifyRequest Import(InputKind kind, std::string data, std::vector<std::string> emails) {
  VerifyRequest request;
  request.kind = kind;
  request.data = std::move(data);
  request.now = kNow;
  request.verified_emails = std::move(emails);
  request.check_recipient = !request.verified_emails.empty();
  return request;
}

// A hosted assertion handed in as JSON. The verifier fetches the issuer's
// live copy at the URL the assertion names (its id in OB 2.0) and compares
// the two; the sources check the JSON as given, so the issuer hosts exactly
// these bytes there.
VerifyRequest ImportHosted(FixtureWeb& web, const std::string& bytes, std::vector<std::string> emails) {
  const std::string hosted_url = ParseAssertion(bytes).badge.verification.url;
  if (!hosted_url.empty()) web.Host(hosted_url, bytes);
  return Import(InputKind::kAssertion, bytes, std::move(emails));
}

// A BadgeClass or other standalone document, with a BadgeClass's linked issuer.
VerificationReport JudgeDocument(const std::string& bytes, const DocumentFetch& fetch) {
  DocumentValidation validation = ValidateDocument(bytes);
  VerificationReport report = validation.report;
  if (validation.document_class == DocumentClass::kBadgeClass) {
    const ParsedBadgeClass badge = ParseBadgeClass(bytes, SpecVersion::kV2_0);
    if (!badge.issuer && !badge.badge_class.issuer_id.empty()) {
      const Result<FetchResult> issuer = fetch(badge.badge_class.issuer_id, FetchFreshness::kReuseFresh);
      if (!issuer.ok() || issuer->status != 200) {
        report.Error(check::kFetchDocument, "issuer not found");
      } else {
        report.Merge(ParseIssuer(issuer->body, SpecVersion::kV2_0).report, "issuer.");
      }
    }
  }
  return report;
}

void RunValidatorCore(const std::filesystem::path& root, Tally& tally) {
  const std::filesystem::path dir = root / "1edtech-openbadges-validator-core/tests/testfiles/test_components";
  if (!std::filesystem::exists(dir)) return;
  const struct {
    const char* prefix;
    SpecVersion version;
    const char* assertion_url;
    const char* badge_url;
    const char* issuer_url;
    const char* recipient;
  } trios[] = {
      {"2_0", SpecVersion::kV2_0, "https://example.org/beths-robotics-badge.json",
       "https://example.org/robotics-badge.json", "https://example.org/organization.json", "nobody@example.org"},
      {"1_1", SpecVersion::kV1_1, "https://example.org/beths-robotics-badge.json",
       "https://example.org/robotics-badge.json", "https://example.org/organization.json", "nobody@example.org"},
      {"1_0", SpecVersion::kV1_0, "http://a.com/instance", "http://a.com/badgeclass", "http://a.com/issuer",
       "test@example.com"},
  };
  for (const auto& trio : trios) {
    const std::string prefix = trio.prefix;
    FixtureWeb web;
    ASSERT_TRUE(web.Start());
    web.Serve(trio.badge_url, dir / (prefix + "_basic_badgeclass.json"));
    web.Serve(trio.issuer_url, dir / (prefix + "_basic_issuer.json"));
    const std::string name = "validator-core/" + prefix + "_basic_assertion.json";
    const std::optional<std::string> bytes = ReadFile(dir / (prefix + "_basic_assertion.json"));
    ASSERT_TRUE(bytes.has_value()) << name;
    // The source fetches the assertion from its URL: a stored record
    // re-checked, as the verifier sees it (the live copy is fetched there).
    VerifyRequest request = ImportHosted(web, *bytes, {trio.recipient});
    request.source_url = trio.assertion_url;
    const VerifyOutcome outcome = BadgeVerifier(web.AsFetch()).Verify(request);
    EXPECT_TRUE(outcome.documents.contains(trio.assertion_url)) << name << ": the hosted copy was not fetched";
    EXPECT_EQ(outcome.result.badge.spec_version, trio.version) << name;
    EXPECT_EQ(outcome.result.matched_email, trio.recipient) << name;
    tally.Decided(name, Verdict::kValid, outcome.result.report);
  }
  // No source verdict: parse them and say what we read.
  for (const char* file : {"1_0_basic_assertion_with_extra_properties.json", "1_0_assertion_with_errors.json",
                           "0_5_assertion.json", "0_5_1_assertion.json"}) {
    const std::optional<std::string> bytes = ReadFile(dir / file);
    ASSERT_TRUE(bytes.has_value()) << file;
    const ParsedAssertion parsed = ParseAssertion(*bytes);
    tally.NoVerdict(std::string("validator-core/") + file + " -> OB " +
                    std::string(SpecVersionName(parsed.badge.spec_version)) +
                    (parsed.report.valid() ? ", structure valid" : ", structure invalid"));
  }
}

void RunDcValidator(const std::filesystem::path& root, Tally& tally) {
  const std::filesystem::path dir = root / "1edtech-dc-public-validator/ob20";
  if (!std::filesystem::exists(dir)) return;
  FixtureWeb web;
  ASSERT_TRUE(web.Start());
  for (const char* prefix : {"https://www.example.org/", "https://example.org/", "http://example.org/"}) {
    web.Map(prefix, dir / "assets");
  }
  const BadgeVerifier verifier(web.AsFetch());
  const std::vector<std::string> emails = {"nobody@example.org"};

  enum Kind { kAssertion, kDocument, kJws, kImage };
  const struct {
    const char* file;
    Kind kind;
    Verdict verdict;
    Reason reason;
  } cases[] = {
      {"basic-assertion.json", kAssertion, Verdict::kValid, {}},
      {"basic-assertion-invalid-context.json", kAssertion, Verdict::kInvalid, {check::kContextProperty, ""}},
      {"basic-assertion-invalid-type.json", kAssertion, Verdict::kInvalid, {check::kTypeProperty, ""}},
      {"assertion-with-data-image.json", kAssertion, Verdict::kInvalid, {check::kValidateProperty, "image"}},
      {"assertion-with-endorsements.json", kAssertion, Verdict::kValid, {}},
      {"basic-assertion-no-public-key.json", kAssertion, Verdict::kValid, {}},
      {"basic-assertion-with-allowed-origins.json", kAssertion, Verdict::kValid, {}},
      {"basic-assertion-with-allowed-origins-valid-starts-with.json", kAssertion, Verdict::kValid, {}},
      {"basic-assertion-with-allowed-origins-valid-multiple-starts-with.json", kAssertion, Verdict::kValid, {}},
      {"basic-assertion-with-allowed-origins-invalid-starts-with.json",
       kAssertion,
       Verdict::kInvalid,
       {check::kIssuerOrigin, ""}},
      {"basic-assertion-with-allowed-origins-invalid-multiple-starts-with.json",
       kAssertion,
       Verdict::kInvalid,
       {check::kIssuerOrigin, ""}},
      {"basic-assertion-expired.json", kAssertion, Verdict::kInvalid, {check::kExpired, ""}},
      {"basic-assertion-expired-before-issued.json", kAssertion, Verdict::kInvalid, {check::kExpiresBeforeIssued, ""}},
      {"basic-assertion-in-future.json", kAssertion, Verdict::kInvalid, {check::kIssuedOnInFuture, ""}},
      {"basic-assertion-with-language.json", kAssertion, Verdict::kValid, {}},
      {"assertion-with-extension-node-basic.json", kAssertion, Verdict::kValid, {}},
      {"assertion-with-multiple-extensions.json", kAssertion, Verdict::kValid, {}},
      {"warning-with-redirection.json", kAssertion, Verdict::kWarning, {check::kDocumentIdMismatch, ""}},
      {"warning-issuer-non-http.json", kAssertion, Verdict::kWarning, {check::kIssuerPropertyDependencies, ""}},
      // Signed with key1, key2 and key3 (RS256); the last is on its issuer's
      // revocation list.
      {"simple.jwt", kJws, Verdict::kValid, {}},
      {"simple-not-revoked.jwt", kJws, Verdict::kValid, {}},
      {"simple-revoked.jwt", kJws, Verdict::kInvalid, {check::kRevoked, ""}},
      // A hosted assertion baked in a PNG.
      {"simple-badge.png", kImage, Verdict::kValid, {}},
      {"assets/badgeclass1.json", kDocument, Verdict::kValid, {}},
      {"assets/badge-with-data-image.json", kDocument, Verdict::kValid, {}},
      {"assets/badgeclass-with-complex-image.json", kDocument, Verdict::kValid, {}},
      {"issuer-compact-iri-validation.json", kDocument, Verdict::kValid, {}},
      {"rdf-validation/valid-badge-class.json", kDocument, Verdict::kValid, {}},
      {"rdf-validation/valid-issuer-extension.json", kDocument, Verdict::kValid, {}},
      {"rdf-validation/valid-alignment-object.json", kDocument, Verdict::kValid, {}},
      {"rdf-validation/valid-cool-class.json", kDocument, Verdict::kValid, {}},
      {"rdf-validation/valid-badge-class-empty-criteria-type.json", kDocument, Verdict::kValid, {}},
      {"rdf-validation/invalid-empty-type.json", kDocument, Verdict::kInvalid, {check::kTypeProperty, ""}},
      {"rdf-validation/invalid-class.json", kDocument, Verdict::kInvalid, {check::kTypeProperty, ""}},
      {"rdf-validation/invalid-one-invalid-class.json", kDocument, Verdict::kInvalid, {check::kTypeProperty, ""}},
      {"rdf-validation/badge-class-invalid-issuer-type.json",
       kDocument,
       Verdict::kInvalid,
       {check::kTypeProperty, "issuer.type"}},
  };
  for (const auto& c : cases) {
    const std::string name = std::string("dc-validator/ob20/") + c.file;
    const std::optional<std::string> bytes = ReadFile(dir / c.file);
    ASSERT_TRUE(bytes.has_value()) << name;
    switch (c.kind) {
      case kAssertion:
        tally.Decided(name, c.verdict, verifier.Verify(ImportHosted(web, *bytes, emails)).result.report, c.reason);
        break;
      case kJws:
        tally.Decided(name, c.verdict, verifier.Verify(Import(InputKind::kJws, *bytes, emails)).result.report,
                      c.reason);
        break;
      case kImage: {
        // The baked assertion is Beth's badge, hosted at its id; the baked
        // copy leaves out the evidence the hosted one has.
        const std::optional<std::string> hosted = ReadFile(dir / "basic-assertion.json");
        ASSERT_TRUE(hosted.has_value()) << name;
        web.Host("https://example.org/beths-robotics-badge.json", *hosted);
        const VerifyOutcome outcome = verifier.Verify(Import(InputKind::kImage, *bytes, emails));
        EXPECT_TRUE(outcome.image_format.has_value()) << name;
        tally.Decided(name, c.verdict, outcome.result.report, c.reason);
        break;
      }
      case kDocument:
        tally.Decided(name, c.verdict, JudgeDocument(*bytes, verifier.fetch()), c.reason);
        break;
    }
  }
  tally.Undecided("dc-validator/ob20/assertion-with-extension-node-invalid.json",
                  "needs the extension's JSON schema; extensions are kept, not validated");
  tally.NoVerdict("dc-validator/ob20/badge-class-with-language.json (used by no source test)");
  tally.NoVerdict("dc-validator/ob20/redirected-validation-subject.json (not strict JSON)");
}

// The Mozilla validator's good/bad value lists, combined into OB 0.5 and 1.0
// documents the way its own tests combine them (test/test-data.js,
// test/test-generators.js, test/local/validator.test.js there).
void RunMozilla(const std::filesystem::path& root, Tally& tally) {
  const std::optional<std::string> text = ReadFile(root / "mozilla-openbadges-validator/test/test-data.json");
  if (!text) return;
  const Json data = Json::parse(*text);
  auto good = [&data](const char* kind) { return data.at(kind).at("good"); };
  auto bad = [&data](const char* kind) { return data.at(kind).at("bad"); };
  auto join = [](std::initializer_list<Json> lists) {
    Json all = Json::array();
    for (const Json& list : lists) all.insert(all.end(), list.begin(), list.end());
    return all;
  };
  const std::string hash = HashIdentity("brian@mozillafoundation.org", "seasalt");
  const Json ob05 = {{"recipient", hash},
                     {"salt", "seasalt"},
                     {"evidence", "/evidence"},
                     {"expires", "2013-06-06"},
                     {"issued_on", "2013-01-01"},
                     {"badge",
                      {{"version", "0.5.0"},
                       {"criteria", "/criteria"},
                       {"image", "/image"},
                       {"name", "Some Awesome Badge"},
                       {"description", "This is a description"},
                       {"issuer",
                        {{"origin", "https://example.org"},
                         {"name", "Example"},
                         {"org", "Organization"},
                         {"contact", "guy@example.org"}}}}}};
  const Json ob10 = {{"uid", "d3c4ff"},
                     {"recipient", {{"identity", hash}, {"salt", "seasalt"}, {"hashed", true}, {"type", "email"}}},
                     {"verify", {{"type", "hosted"}, {"url", "https://example.org/assertion.json"}}},
                     {"badge", "https://example.org/badge.json"},
                     {"issuedOn", "2013-02-18T18:10+0500"},
                     {"image", "https://example.org/image.png"},
                     {"evidence", "https://example.org/evidence.html"},
                     {"expires", "2014-02-18T18:10+0500"}};
  const Json ob10_badge = {
      {"name", "Some Badge"},
      {"description", "A short description of the badge"},
      {"image", "https://example.org/image.png"},
      {"criteria", "https://example.org/criteria.html"},
      {"issuer", "https://example.org/issuer.json"},
      {"alignment",
       {{{"name", "Standard One"}, {"url", "https://standards.example.org/1"}, {"description", "some standard"}},
        {{"name", "Standard Two"},
         {"url", "https://standards.example.org/2"},
         {"description", "some other standard"}}}},
      {"tags", {"generic", "badge", "stuff"}}};
  const Json ob10_issuer = {{"name", "Some Issuer"},
                            {"url", "https://issuer.example.org"},
                            {"description", "We issue example badges."},
                            {"image", "https://issuer.example.org/image.png"},
                            {"email", "brian@example.org"},
                            {"revocationList", "https://issuer.example.org/revocation.json"}};

  enum Kind { kAssertion05, kAssertion10, kBadge10, kIssuer10 };
  auto judge = [](Kind kind, const Json& doc) {
    const std::string bytes = doc.dump();
    switch (kind) {
      case kBadge10:
        return ParseBadgeClass(bytes, SpecVersion::kV1_0).report;
      case kIssuer10:
        return ParseIssuer(bytes, SpecVersion::kV1_0).report;
      default:
        return ParseAssertion(bytes).report;
    }
  };
  auto replaced = [](Json doc, const std::string& dotted, const Json& value) {
    Json* node = &doc;
    size_t start = 0;
    for (size_t dot = dotted.find('.'); dot != std::string::npos; dot = dotted.find('.', start)) {
      node = &(*node)[dotted.substr(start, dot - start)];
      start = dot + 1;
    }
    (*node)[dotted.substr(start)] = value;
    return doc;
  };
  struct Field {
    Kind kind;
    const char* name;
    bool required;
    Json valid;
    Json invalid;
  };
  const std::vector<Field> fields = {
      {kAssertion05, "salt", false, good("STRINGS"), bad("STRINGS")},
      {kAssertion05, "evidence", false, good("URLS"), join({bad("STRINGS"), bad("URLS")})},
      {kAssertion05, "expires", false, good("TIMES"), join({bad("STRINGS"), bad("TIMES")})},
      {kAssertion05, "issued_on", false, good("TIMES"), join({bad("STRINGS"), bad("TIMES")})},
      {kAssertion05, "recipient", true, join({good("EMAILS"), good("HASHES")}),
       join({bad("STRINGS"), bad("EMAILS"), bad("HASHES")})},
      {kAssertion05, "badge.name", true, good("STRINGS"), bad("STRINGS")},
      {kAssertion05, "badge.description", true, good("STRINGS"), bad("STRINGS")},
      {kAssertion05, "badge.image", true, good("URLS"), join({bad("STRINGS"), bad("URLS")})},
      {kAssertion05, "badge.criteria", true, good("URLS"), join({bad("STRINGS"), bad("URLS")})},
      {kAssertion05, "badge.version", false, good("VERSIONS"), join({bad("STRINGS"), bad("VERSIONS")})},
      {kAssertion05, "badge.issuer.name", true, good("STRINGS"), bad("STRINGS")},
      {kAssertion05, "badge.issuer.origin", true, good("ORIGINS"), join({bad("STRINGS"), bad("ORIGINS")})},
      {kAssertion05, "badge.issuer.contact", false, good("EMAILS"), join({bad("STRINGS"), bad("EMAILS")})},
      {kAssertion05, "badge.issuer.org", false, good("STRINGS"), bad("STRINGS")},
      {kAssertion10, "uid", true, good("STRINGS"), bad("STRINGS")},
      {kAssertion10, "recipient.identity", true, good("STRINGS"), bad("STRINGS")},
      {kAssertion10, "recipient.type", true, good("IDENTITY_TYPES"), join({bad("STRINGS"), bad("IDENTITY_TYPES")})},
      {kAssertion10, "recipient.hashed", true, good("BOOLEANS"), join({bad("STRINGS"), bad("BOOLEANS")})},
      {kAssertion10, "recipient.salt", false, good("STRINGS"), bad("STRINGS")},
      {kAssertion10, "verify.type", true, good("VERIFY_TYPES"), join({bad("STRINGS"), bad("VERIFY_TYPES")})},
      {kAssertion10, "verify.url", true, good("ABSOLUTE_URLS"), join({bad("STRINGS"), bad("ABSOLUTE_URLS")})},
      {kAssertion10, "badge", true, good("ABSOLUTE_URLS"), bad("ABSOLUTE_URLS")},
      {kAssertion10, "issuedOn", true, join({good("TIMES"), good("ISO8601")}),
       join({bad("STRINGS"), bad("TIMES"), bad("ISO8601")})},
      {kAssertion10, "expires", false, join({good("TIMES"), good("ISO8601")}),
       join({bad("STRINGS"), bad("TIMES"), bad("ISO8601")})},
      {kAssertion10, "evidence", false, good("ABSOLUTE_URLS"), join({bad("STRINGS"), bad("ABSOLUTE_URLS")})},
      {kAssertion10, "image", false, join({good("ABSOLUTE_URLS"), good("IMAGE_DATA_URLS")}),
       join({bad("STRINGS"), bad("ABSOLUTE_URLS"), bad("IMAGE_DATA_URLS")})},
      {kBadge10, "name", true, good("STRINGS"), bad("STRINGS")},
      {kBadge10, "description", true, good("STRINGS"), bad("STRINGS")},
      {kBadge10, "image", true, join({good("ABSOLUTE_URLS"), good("IMAGE_DATA_URLS")}),
       join({bad("STRINGS"), bad("ABSOLUTE_URLS"), bad("IMAGE_DATA_URLS")})},
      // The source lists ABSOLUTE_URLS.good as invalid for criteria and issuer too,
      // contradicting its valid list; only its bad strings are taken.
      {kBadge10, "criteria", true, good("ABSOLUTE_URLS"), bad("STRINGS")},
      {kBadge10, "issuer", true, good("ABSOLUTE_URLS"), bad("STRINGS")},
      {kBadge10, "alignment", false, good("ALIGNMENTS"), bad("ALIGNMENTS")},
      {kBadge10, "tags", false, good("TAGLIST"), bad("TAGLIST")},
  };
  auto base = [&](Kind kind) -> const Json& {
    return kind == kAssertion05 ? ob05 : kind == kAssertion10 ? ob10 : kind == kBadge10 ? ob10_badge : ob10_issuer;
  };
  const char* kind_names[] = {"0.5", "1.0-assertion", "1.0-badge", "1.0-issuer"};
  for (Kind kind : {kAssertion05, kAssertion10, kBadge10, kIssuer10}) {
    tally.Decided(std::string("mozilla/") + kind_names[kind] + " default", Verdict::kValid, judge(kind, base(kind)));
  }
  for (const Field& f : fields) {
    const std::string name = std::string("mozilla/") + kind_names[f.kind] + " " + f.name;
    // The source asks for an error on that very field.
    const Reason on_field{"", f.name};
    tally.Decided(name + " missing", f.required ? Verdict::kInvalid : Verdict::kValid,
                  judge(f.kind, replaced(base(f.kind), f.name, nullptr)), on_field);
    for (const Json& value : f.valid) {
      tally.Decided(name + "=" + value.dump(), Verdict::kValid, judge(f.kind, replaced(base(f.kind), f.name, value)));
    }
    for (const Json& value : f.invalid) {
      tally.Decided(name + "=" + value.dump(), Verdict::kInvalid, judge(f.kind, replaced(base(f.kind), f.name, value)),
                    on_field);
    }
  }
  tally.Undecided("mozilla/1.0-badge criteria and issuer = ABSOLUTE_URLS.good (8 values)",
                  "the source lists them as both valid and invalid");
}

TEST(Conformance, ThirdPartyVectors) {
  const std::filesystem::path root = VectorsDir();
  if (!std::filesystem::exists(root / "README.md")) {
    GTEST_SKIP() << "no test vectors at " << root << " (set BACKPACK_VECTORS_DIR to point at them)";
  }
  Tally tally;
  RunValidatorCore(root, tally);
  RunDcValidator(root, tally);
  RunMozilla(root, tally);
  tally.Print(std::cout);
  EXPECT_GT(tally.decided(), 0);
  EXPECT_TRUE(tally.mismatches().empty()) << tally.mismatches().size() << " verdicts differ; see above";
}

}  // namespace
}  // namespace backpack
