#include "daemon/badge_verifier.h"

#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "protocol/credential.h"
#include "protocol/data_integrity.h"
#include "protocol/jws.h"
#include "protocol/verification_report.h"

namespace backpack {
namespace {

namespace check = protocol::check;

// DocumentsToFetch needs at most four rounds; two more absorb a document
// whose links change between rounds without letting a loop run on.
constexpr int kMaxFetchRounds = 6;

std::string_view ImageName(protocol::ImageFormat format) {
  return format == protocol::ImageFormat::kPng ? "PNG" : "SVG";
}

std::string_view TrimAsciiSpace(std::string_view text) {
  constexpr std::string_view kSpace = " \t\r\n";
  const size_t first = text.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(kSpace) - first + 1);
}

// Whether parsed assertion bytes are really an OB 3.0 credential: the
// assertion parser recognises a Verifiable Credentials @context or type; a
// VCDM 1.1 VC-JWT payload carries the credential in its "vc" claim.
bool IsCredential(const protocol::ParsedAssertion& parsed, std::string_view payload) {
  if (parsed.badge.spec_version == protocol::SpecVersion::kV3_0) return true;
  if (parsed.report.HasError(check::kJsonParse) || parsed.report.HasError(check::kDocumentLimits)) return false;
  const nlohmann::json doc = nlohmann::json::parse(payload, nullptr, false);
  return doc.is_object() && doc.contains("vc") && doc["vc"].is_object();
}

bool Readable(const protocol::ParsedAssertion& parsed) {
  const protocol::SpecVersion version = parsed.badge.spec_version;
  return version != protocol::SpecVersion::kUnknown && version != protocol::SpecVersion::kV3_0 &&
         !parsed.report.HasError(check::kJsonParse) && !parsed.report.HasError(check::kDocumentLimits);
}

class Verification {
 public:
  Verification(const DocumentFetch& fetch, const protocol::ImageLimits& image_limits, const VerifyRequest& request,
               LruCache<protocol::PublicKey>& keys)
      : fetch_(fetch), image_limits_(image_limits), request_(request), keys_(keys) {
    base_options_.now = request.now;
    base_options_.verified_emails = request.verified_emails;
    base_options_.check_recipient = request.check_recipient;
    outcome_.result.report = protocol::VerificationReport(base_options_.limits.max_messages);
  }

  VerifyOutcome Run() && {
    switch (request_.kind) {
      case InputKind::kUrl:
        FromUrl(std::string(TrimAsciiSpace(request_.data)));
        break;
      case InputKind::kAssertion:
        FromJson(request_.data, request_.source_url);
        break;
      case InputKind::kJws:
        FromJws(std::string(TrimAsciiSpace(request_.data)));
        break;
      case InputKind::kImage:
        FromImage();
        break;
    }
    return std::move(outcome_);
  }

 private:
  protocol::VerificationReport& report() { return outcome_.result.report; }

  // Fetches `url` once into outcome_.documents. A failure is recorded with
  // its HTTP status (0 without one) unless it may pass (kUnavailable) and a
  // fallback copy exists; the reason is returned for messages (OK when a
  // document, fetched or fallback, is there).
  Status FetchInto(const std::string& url) {
    Result<FetchResult> got = fetch_(url, request_.freshness);
    if (got.ok()) {
      outcome_.documents[url] = {got->status, std::move(got->body), std::move(got->final_url)};
      return Status::Ok();
    }
    const Status& failure = got.status();
    if (failure.code() == StatusCode::kUnavailable) {
      outcome_.transient_failure = true;
      if (auto fallback = request_.fallback_documents.find(url); fallback != request_.fallback_documents.end()) {
        outcome_.documents[url] = fallback->second;
        outcome_.fallback_urls.push_back(url);
        return Status::Ok();
      }
    }
    outcome_.documents[url] = {fetch::HttpStatusOf(failure), "", ""};
    return failure;
  }

  // The DocumentsToFetch / CheckAssertion loop over outcome_.documents.
  protocol::CheckResult CheckWithFetches(const protocol::ParsedAssertion& parsed,
                                         const protocol::CheckOptions& options) {
    for (int round = 0; round < kMaxFetchRounds; ++round) {
      const std::vector<std::string> urls = protocol::DocumentsToFetch(parsed, outcome_.documents, options);
      bool fetched_any = false;
      for (const std::string& url : urls) {
        if (outcome_.documents.contains(url)) continue;  // each URL once, whatever its outcome
        // The reason of a failure is not repeated here: CheckAssertion
        // reports the document as not fetched, with its HTTP status.
        FetchInto(url).IgnoreError();
        fetched_any = true;
      }
      if (!fetched_any) break;
    }
    return protocol::CheckAssertion(parsed, outcome_.documents, options);
  }

  void FromImage() {
    const std::string& image = request_.data;
    Result<protocol::ImageFormat> format = protocol::DetectImageFormat(image);
    if (format.ok()) outcome_.image_format = *format;
    Result<protocol::BakedPayload> baked = protocol::ExtractBadge(image, image_limits_);
    if (!baked.ok()) {
      if (!format.ok()) {
        report().Error(check::kBakedImage,
                       "the file is neither a PNG nor an SVG image (" + baked.status().message() + ")");
      } else if (baked.status().code() == StatusCode::kNotFound) {
        report().Error(check::kBakedImage,
                       "the image is a valid " + std::string(ImageName(*format)) + " but carries no Open Badges data");
      } else {
        report().Error(check::kBakedImage,
                       "the " + std::string(ImageName(*format)) + " image cannot be read: " + baked.status().message());
      }
      return;
    }
    outcome_.image_format = baked->format;
    if (baked->kind == protocol::BadgeKind::kCredential) {
      FromCredential(baked->data);
      return;
    }
    if (request_.credentials_only) {
      NotCredential("the image carries an OB 0.5-2.0 assertion");
      return;
    }
    switch (baked->form) {
      case protocol::PayloadForm::kUrl:
        FromUrl(baked->data);
        break;
      case protocol::PayloadForm::kJson:
        FromJson(baked->data, "");
        break;
      case protocol::PayloadForm::kJws:
        FromJws(baked->data);
        break;
    }
  }

  // A hosted assertion by its URL: its body is the assertion.
  void FromUrl(const std::string& url) {
    if (request_.credentials_only) {
      NotCredential("a hosted assertion URL was given");
      return;
    }
    if (Result<fetch::Url> parsed = fetch::ParseUrl(url); !parsed.ok()) {
      report().Error(check::kFetchDocument, "the assertion URL is not usable: " + parsed.status().message());
      return;
    }
    if (Status fetched = FetchInto(url); !fetched.ok()) {
      report().Error(check::kFetchDocument, "cannot fetch the assertion at " + url + ": " + fetched.message());
      return;
    }
    const protocol::FetchedDocument hosted = outcome_.documents.at(url);
    if (hosted.status < 200 || (hosted.status > 299 && hosted.status != 410)) {
      // Only a fallback copy can hold another status.
      report().Error(check::kFetchDocument,
                     "the assertion at " + url + " answered HTTP " + std::to_string(hosted.status));
      return;
    }
    outcome_.source_url = hosted.final_url.empty() ? url : hosted.final_url;
    if (hosted.status != 410) {
      // The bytes are the hosted copy itself: CheckAssertion compares
      // nothing and takes the origin from source_url.
      FromJson(hosted.body, outcome_.source_url);
      return;
    }
    // 410 Gone: withdrawn. Check what the body says as a presented copy, so
    // that CheckAssertion finds the 410 recorded under its hosted URL and
    // the report still describes the badge.
    const std::string gone = "the assertion at " + url + " is gone (HTTP 410)";
    protocol::ParsedAssertion parsed = protocol::ParseAssertion(hosted.body, base_options_.limits);
    if (!Readable(parsed)) {
      report().Error(check::kRevoked, gone);
      return;
    }
    outcome_.assertion = hosted.body;
    outcome_.assertion_form = protocol::PayloadForm::kJson;
    outcome_.result = CheckWithFetches(parsed, base_options_);
    if (!outcome_.result.report.HasError(check::kRevoked)) {
      outcome_.result.badge.revoked = true;
      outcome_.result.report.Error(check::kRevoked, gone);
    }
  }

  // Assertion JSON. `source_url`: where the bytes were fetched from.
  void FromJson(const std::string& json, const std::string& source_url) {
    outcome_.assertion = json;
    outcome_.assertion_form = protocol::PayloadForm::kJson;
    if (outcome_.source_url.empty()) outcome_.source_url = source_url;
    protocol::ParsedAssertion parsed = protocol::ParseAssertion(json, base_options_.limits);
    if (IsCredential(parsed, json)) {
      FromCredential(json);
      return;
    }
    if (request_.credentials_only) {
      NotCredential("the JSON is not a Verifiable Credential");
      return;
    }
    protocol::CheckOptions options = base_options_;
    options.source_url = source_url;
    // Bytes handed in (a stored record re-checked) are not the live copy:
    // when they name their hosted URL, fetch and compare it, so that a
    // revocation (410, "revoked": true) is seen. The origin check uses the
    // hosted URL then; source_url remains for OB 0.5, which names none.
    if (request_.kind == InputKind::kAssertion && parsed.badge.verification.url == source_url) {
      options.source_url.clear();
    }
    outcome_.result = CheckWithFetches(parsed, options);
  }

  // A SignedBadge as a compact JWS.
  void FromJws(const std::string& compact) {
    Result<protocol::Jws> jws = protocol::Jws::Parse(compact);
    if (!jws.ok()) {
      report().Error(check::kJwsParse,
                     "the signed assertion is not a well-formed compact JWS: " + jws.status().message());
      return;
    }
    outcome_.assertion = compact;
    outcome_.assertion_form = protocol::PayloadForm::kJws;
    const protocol::ParsedAssertion parsed = protocol::ParseAssertion(jws->payload(), base_options_.limits);
    if (IsCredential(parsed, jws->payload())) {
      FromCredential(compact);
      return;
    }
    if (request_.credentials_only) {
      NotCredential("the JWS payload is not a Verifiable Credential");
      return;
    }
    if (Readable(parsed) && parsed.badge.verification.type != protocol::VerificationType::kSigned) {
      // The signature is over an assertion that does not claim to be
      // signed: no key is named to check it with, so it proves nothing.
      outcome_.result = protocol::CheckResult{parsed.badge, parsed.report, {}, {}, ""};
      report().Error(check::kVerifySignature,
                     "the JWS payload is not a SignedBadge assertion, so its signature cannot be checked",
                     "verification");
      return;
    }
    protocol::CheckOptions options = base_options_;
    // The check tries the issuer's keys in order and reports which verified,
    // or why each refused.
    options.signature_check = [this, &jws](const protocol::SigningKey& key) -> Status {
      Result<protocol::PublicKey> public_key = ParseKey(key.public_key_pem);
      if (!public_key.ok()) return public_key.status();
      return protocol::Verify(*jws, *public_key);
    };
    outcome_.result = CheckWithFetches(parsed, options);
    if (!Readable(parsed)) return;  // the report says why
    protocol::VerificationReport& checked = outcome_.result.report;
    if (outcome_.result.signing_keys.empty() && !checked.Has(check::kVerifySignature)) {
      // CheckAssertion has said why there is no key (SIGNING_KEY or
      // FETCH_DOCUMENT); the signature stays unchecked.
      checked.Error(check::kVerifySignature, "no issuer key could be found to check the signature with");
    }
  }

  void NotCredential(const std::string& what) {
    report().Error(check::kDetectVersion, what + "; only Open Badges 3.0 credentials are accepted here");
  }

  // An OB 3.0 credential: JSON with embedded proofs, or a VC-JWT. The
  // CredentialDocumentsToFetch / CheckCredential loop, like CheckWithFetches.
  void FromCredential(const std::string& bytes) {
    const std::string_view trimmed = TrimAsciiSpace(bytes);
    outcome_.assertion = std::string(trimmed);
    outcome_.source_url.clear();
    const protocol::ParsedCredential parsed = protocol::ParseCredential(trimmed, base_options_.limits);
    outcome_.assertion_form = parsed.jws ? protocol::PayloadForm::kJws : protocol::PayloadForm::kJson;
    protocol::CredentialCheckOptions options;
    options.now = request_.now;
    options.verified_emails = request_.verified_emails;
    options.check_recipient = request_.check_recipient;
    options.limits = base_options_.limits;
    protocol::DataIntegrityOptions proof_options;
    proof_options.now = request_.now;
    options.data_integrity_check = protocol::MakeDataIntegrityCheck(proof_options);
    for (int round = 0; round < kMaxFetchRounds; ++round) {
      bool fetched_any = false;
      for (const std::string& url : protocol::CredentialDocumentsToFetch(parsed, outcome_.documents, options)) {
        if (outcome_.documents.contains(url)) continue;
        FetchInto(url).IgnoreError();  // CheckCredential reports what is missing
        fetched_any = true;
      }
      if (!fetched_any) break;
    }
    protocol::CredentialCheckResult checked = protocol::CheckCredential(parsed, outcome_.documents, options);
    if (checked.details.kind == protocol::CredentialKind::kEndorsement) {
      checked.report.Error(check::kDetectVersion,
                           "an EndorsementCredential endorses a badge or an issuer; it is not a badge to keep");
    }
    outcome_.result.badge = std::move(checked.badge);
    outcome_.result.report = std::move(checked.report);
    outcome_.result.missing_documents = std::move(checked.missing_documents);
    outcome_.result.signing_keys.clear();
    outcome_.result.matched_email = std::move(checked.matched_email);
    outcome_.credential = std::move(checked.details);
  }

  Result<protocol::PublicKey> ParseKey(const std::string& pem) {
    if (std::optional<protocol::PublicKey> cached = keys_.Get(pem)) return *cached;
    Result<protocol::PublicKey> parsed = protocol::PublicKey::FromPem(pem);
    if (parsed.ok()) keys_.Put(pem, *parsed);
    return parsed;
  }

  const DocumentFetch& fetch_;
  const protocol::ImageLimits& image_limits_;
  const VerifyRequest& request_;
  LruCache<protocol::PublicKey>& keys_;
  protocol::CheckOptions base_options_;
  VerifyOutcome outcome_;
};

}  // namespace

std::string_view InputKindName(InputKind kind) {
  switch (kind) {
    case InputKind::kUrl:
      return "url";
    case InputKind::kAssertion:
      return "assertion";
    case InputKind::kJws:
      return "jws";
    case InputKind::kImage:
      return "image";
  }
  return "assertion";
}

BadgeVerifier::BadgeVerifier(DocumentFetch fetch, protocol::ImageLimits image_limits)
    : fetch_(std::move(fetch)), image_limits_(image_limits) {}

VerifyOutcome BadgeVerifier::Verify(const VerifyRequest& request) const {
  return Verification(fetch_, image_limits_, request, keys_).Run();
}

}  // namespace backpack
