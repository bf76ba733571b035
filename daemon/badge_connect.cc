#include "daemon/badge_connect.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <variant>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "daemon/accounts.h"
#include "daemon/api_util.h"
#include "daemon/badges.h"
#include "daemon/http.h"
#include "daemon/oauth.h"
#include "daemon/rate_limiter.h"
#include "protocol/assertion.h"
#include "protocol/email_address.h"

namespace backpack {

using nlohmann::json;
namespace bhttp = http::bhttp;

namespace {

using http::Context;
using http::Exec;
using http::Response;

constexpr std::string_view kApiPath = "/ims/ob/v2p1";
constexpr std::string_view kManifestPath = "/.well-known/badgeconnect.json";
constexpr std::string_view kManifestContext = "https://purl.imsglobal.org/spec/ob/v2p1/ob_v2p1.jsonld";
constexpr std::string_view kObV2Context = "https://w3id.org/openbadges/v2";
// The specification sets no default page size; 10 is the page of its examples.
constexpr size_t kDefaultLimit = 10;
constexpr size_t kMaxLimit = 100;
constexpr size_t kListBatch = 200;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// --- The envelope --------------------------------------------------------------------

// {"status": {"error", "statusCode", "statusText"}} plus `results`.
// `status_text` "" leaves statusText out: the specification enumerates no
// value for some codes (429, 5xx), and only statusCode is required.
Response Envelope(bhttp::status code, std::string_view status_text, std::string_view error, json results = {}) {
  json status = {{"error", error.empty() ? json(nullptr) : json(std::string(error))},
                 {"statusCode", static_cast<int>(code)}};
  if (!status_text.empty()) status["statusText"] = std::string(status_text);
  json body = results.is_object() ? std::move(results) : json::object();
  body["status"] = std::move(status);
  return http::JsonResponse(code, Dump(body));
}

Response Ok(json results = {}) { return Envelope(bhttp::status::ok, "OK", {}, std::move(results)); }

Response BadRequest(std::string_view status_text, std::string_view error) {
  return Envelope(bhttp::status::bad_request, status_text, error);
}

// The envelope for an error: statusText from the status where the
// specification names one.
Response ErrorEnvelope(bhttp::status code, std::string_view message) {
  std::string_view text;
  switch (code) {
    case bhttp::status::bad_request: text = "BAD_REQUEST"; break;
    case bhttp::status::unauthorized: text = "UNAUTHENTICATED"; break;
    case bhttp::status::forbidden: text = "PERMISSION_DENIED"; break;
    case bhttp::status::not_found: text = "NOT_FOUND"; break;
    default: break;
  }
  return Envelope(code, text, message);
}

Response Failed(const Status& s, const Context& ctx) { return api::FailedAs(ErrorEnvelope, s, ctx); }

template <class Fn>
http::Handler WithScope(OAuthService& oauth, std::string_view scope, Fn fn) {
  return api::WithScope(oauth, scope, ErrorEnvelope, std::move(fn));
}

// --- Assertions --------------------------------------------------------------------------

// Versions whose assertions have the "id" and "type" the specification's
// Assertion requires; older ones (0.5, 1.0) are not listed.
bool Listable(const BadgeRecord& r) { return r.spec_version == "1.1" || r.spec_version == "2.0"; }

// The earner's accepted, listable badges imported at or after `since`,
// newest first.
Result<std::vector<BadgeRecord>> AcceptedBadges(BadgeService& badges, const std::string& account,
                                                std::optional<int64_t> since) {
  std::vector<BadgeRecord> out;
  std::string cursor;
  do {
    auto page = badges.List(account, BadgeState::kAccepted, kListBatch, cursor);
    if (!page.ok()) return page.status();
    for (BadgeRecord& r : page->badges) {
      if (Listable(r) && (!since || r.imported_at >= *since)) out.push_back(std::move(r));
    }
    cursor = std::move(page->next_cursor);
  } while (!cursor.empty());
  return out;
}

// What an Assertion Payload asks to import, or the 400 to answer. A
// signedAssertion wins over an assertion (the specification: the unsigned
// one is then ignored). An assertion that is only a reference ({"id": URL},
// perhaps with "type" and "@context") is fetched from that URL, like a
// hosted badge; a full one is checked as given.
std::variant<VerifyRequest, Response> ReadPayload(const Context& ctx) {
  auto body = api::JsonBody(ctx);
  if (std::holds_alternative<Response>(body)) {
    return BadRequest("REQUEST_VALIDATION_ERROR", "the body must be a JSON object (application/json)");
  }
  const json& j = std::get<json>(body);
  VerifyRequest request;
  if (j.contains("signedAssertion") && !j["signedAssertion"].is_null()) {
    if (!j["signedAssertion"].is_string()) {
      return BadRequest("REQUEST_VALIDATION_ERROR", "signedAssertion must be a string (compact JWS)");
    }
    request.kind = InputKind::kJws;
    request.data = j["signedAssertion"].get<std::string>();
    return request;
  }
  if (!j.contains("assertion") || !j["assertion"].is_object()) {
    return BadRequest("REQUEST_VALIDATION_ERROR", "give an assertion object or a signedAssertion string");
  }
  const json& a = j["assertion"];
  if (!a.contains("id") || !a["id"].is_string()) {
    return BadRequest("REQUEST_VALIDATION_ERROR", "the assertion has no string id");
  }
  const bool reference = std::all_of(a.items().begin(), a.items().end(), [](const auto& item) {
    return item.key() == "id" || item.key() == "type" || item.key() == "@context";
  });
  if (reference) {
    request.kind = InputKind::kUrl;
    request.data = a["id"].get<std::string>();
    return request;
  }
  request.kind = InputKind::kAssertion;
  // The issuer's bytes as sent, not a re-serialisation.
  auto span = protocol::RawJsonMember(ctx.request.body(), "assertion");
  request.data = span ? std::string(*span) : a.dump();
  return request;
}

// The 400 for a badge that did not verify: RECIPIENT_PROFILE_MISMATCH when
// the recipient is not one of the earner's verified addresses, else
// INVALID_BADGE; the error names the first failed check.
Response Refused(const std::string& report_json) {
  const json report = json::parse(report_json, nullptr, false);
  std::string text = "INVALID_BADGE";
  std::string error = "the badge did not verify";
  if (report.is_object() && report.contains("messages") && report["messages"].is_array()) {
    for (const json& m : report["messages"]) {
      if (!m.is_object() || m.value("messageLevel", "") != "ERROR") continue;
      const std::string name = m.value("name", "");
      if (name == "VALIDATE_RECIPIENT") text = "RECIPIENT_PROFILE_MISMATCH";
      error = fmt::format("{}: {}", name, m.value("message", ""));
      break;
    }
  }
  return BadRequest(text, error);
}

// --- Profile -------------------------------------------------------------------------------

json ProfileJson(const AccountView& a, const std::string& public_url) {
  json p = {{"@context", kObV2Context}, {"id", api::EarnerProfileId(public_url, a.id)}, {"type", "Profile"}};
  if (!a.display_name.empty()) p["name"] = a.display_name;
  for (const EmailView& e : a.emails) {
    if (e.primary && e.verified) p["email"] = e.address;
  }
  return p;
}

}  // namespace

void RegisterBadgeConnectRoutes(http::Router& router, OAuthService& oauth, AccountService& accounts,
                                BadgeService& badges, const config::BadgesConfig& badges_config,
                                const std::string& public_url, const config::ServerConfig& server) {
  const std::string api_base = public_url + std::string(kApiPath);
  const std::string& node_name = server.node_name;

  // --- The manifest ----------------------------------------------------------------------
  json manifest_json = json{
      {"@context", kManifestContext},
      {"id", public_url + std::string(kManifestPath)},
      {"type", "Manifest"},
      {"badgeConnectAPI",
       {{{"type", "BadgeConnectAPI"},
         {"name", node_name.empty() ? api::HostOf(public_url) : node_name},
         {"apiBase", api_base},
         {"version", "v2p1"},
         {"scopesOffered",
          {kScopeObV2p1AssertionReadonly, kScopeObV2p1AssertionCreate, kScopeObV2p1ProfileReadonly,
           kScopeObV2p1ProfileUpdate}},
         {"registrationUrl", public_url + "/oauth/register"},
         {"authorizationUrl", public_url + "/oauth/authorize"},
         {"tokenUrl", public_url + "/oauth/token"},
         {"tokenRevocationUrl", public_url + "/oauth/revoke"}}}}};
  // Required by the spec; published once the operator has set them.
  json& api = manifest_json["badgeConnectAPI"][0];
  if (!server.terms_of_service_url.empty()) api["termsOfServiceUrl"] = server.terms_of_service_url;
  if (!server.privacy_policy_url.empty()) api["privacyPolicyUrl"] = server.privacy_policy_url;
  const std::string manifest = Dump(manifest_json);
  router.Add(bhttp::verb::get, std::string(kManifestPath), Exec::kInline, [manifest](Context&) {
    Response res = http::JsonResponse(bhttp::status::ok, manifest);
    res.set(bhttp::field::access_control_allow_origin, "*");
    res.set(bhttp::field::cache_control, "public, max-age=300");
    return res;
  });

  // --- Assertions ----------------------------------------------------------------------------
  router.Add(
      bhttp::verb::get, std::string(kApiPath) + "/assertions", Exec::kWorker,
      WithScope(oauth, kScopeObV2p1AssertionReadonly,
                [&badges, api_base](Context& ctx, const std::string& account) -> Response {
                  auto paging = api::ReadPaging(ctx, kDefaultLimit, kMaxLimit);
                  if (auto* bad = std::get_if<std::string>(&paging)) {
                    return BadRequest("REQUEST_VALIDATION_ERROR", *bad);
                  }
                  const api::Paging& page = std::get<api::Paging>(paging);
                  auto all = AcceptedBadges(badges, account, page.since);
                  if (!all.ok()) return Failed(all.status(), ctx);
                  const size_t total = all->size();
                  json assertions = json::array();
                  json signed_assertions = json::array();
                  for (size_t i = page.offset; i < total && i < page.offset + page.limit; ++i) {
                    auto original = badges.GetOriginal(account, (*all)[i].id);
                    if (!original.ok()) return Failed(original.status(), ctx);
                    if ((*all)[i].assertion_form == "jws") {
                      signed_assertions.push_back(original->assertion);
                      continue;
                    }
                    json a = json::parse(original->assertion, nullptr, false);
                    // Stored only after it parsed and verified; a record that no
                    // longer parses is left out rather than failing the page.
                    if (a.is_object()) assertions.push_back(std::move(a));
                  }
                  json results = json::object();
                  if (!assertions.empty()) results["assertions"] = std::move(assertions);
                  if (!signed_assertions.empty()) results["signedAssertions"] = std::move(signed_assertions);
                  Response res = Ok(std::move(results));
                  res.set("X-Total-Count", std::to_string(total));
                  res.set(bhttp::field::link, api::PageLinks(api_base + "/assertions", page, total));
                  res.set(bhttp::field::cache_control, "no-store");
                  return res;
                }));

  auto imports = std::make_shared<RateLimiter>(badges_config.imports_per_minute, std::chrono::minutes(1));
  router.Add(bhttp::verb::post, std::string(kApiPath) + "/assertions", Exec::kWorker,
             WithScope(oauth, kScopeObV2p1AssertionCreate,
                       [&badges, imports](Context& ctx, const std::string& account) -> Response {
                         std::chrono::seconds wait{};
                         if (!imports->Allow(account, &wait)) {
                           return api::TooManyAs(ErrorEnvelope, wait, "assertions for this earner");
                         }
                         auto input = ReadPayload(ctx);
                         if (auto* err = std::get_if<Response>(&input)) return std::move(*err);
                         ImportOptions options;
                         options.state = BadgeState::kPending;
                         auto result = badges.Import(account, std::get<VerifyRequest>(input), options);
                         if (!result.ok()) {
                           if (result.status().code() == StatusCode::kFailedPrecondition) {
                             return BadRequest("BAD_REQUEST", result.status().message());
                           }
                           return Failed(result.status(), ctx);
                         }
                         if (result->outcome == ImportResult::Outcome::kRefused) return Refused(result->report_json);
                         return Ok();
                       }));

  // --- Profile ----------------------------------------------------------------------------------
  router.Add(bhttp::verb::get, std::string(kApiPath) + "/profile", Exec::kWorker,
             WithScope(oauth, kScopeObV2p1ProfileReadonly,
                       [&accounts, public_url](Context& ctx, const std::string& account) -> Response {
                         auto view = accounts.GetAccount(account);
                         if (!view.ok()) return Failed(view.status(), ctx);
                         Response res = Ok({{"profile", ProfileJson(*view, public_url)}});
                         res.set(bhttp::field::cache_control, "no-store");
                         return res;
                       }));

  // The specification's POST /profile adds recipient identifiers. An email
  // address is added unverified (a verification message goes to it) and
  // appears in the profile once the earner verifies it. The name, the id and
  // the type are the node's: they may be repeated unchanged, not changed.
  router.Add(
      bhttp::verb::post, std::string(kApiPath) + "/profile", Exec::kWorker,
      WithScope(oauth, kScopeObV2p1ProfileUpdate,
                [&accounts, public_url](Context& ctx, const std::string& account) -> Response {
                  auto body = api::JsonBody(ctx);
                  if (std::holds_alternative<Response>(body)) {
                    return BadRequest("REQUEST_VALIDATION_ERROR", "the body must be a Profile (a JSON object)");
                  }
                  const json& p = std::get<json>(body);
                  auto view = accounts.GetAccount(account);
                  if (!view.ok()) return Failed(view.status(), ctx);
                  const json current = ProfileJson(*view, public_url);
                  std::string email;
                  for (const auto& [key, value] : p.items()) {
                    if (key == "@context") continue;
                    if (key == "email") {
                      if (!value.is_string()) return BadRequest("REQUEST_VALIDATION_ERROR", "email must be a string");
                      email = value.get<std::string>();
                      continue;
                    }
                    if ((key == "id" || key == "type" || key == "name") && current.contains(key) &&
                        current[key] == value) {
                      continue;
                    }
                    return BadRequest("BAD_REQUEST",
                                      fmt::format("'{}' cannot be set through this API; the earner changes it in "
                                                  "the backpack",
                                                  key));
                  }
                  if (!email.empty()) {
                    const bool known = std::any_of(view->emails.begin(), view->emails.end(),
                                                   [&](const EmailView& e) {
                                                     return protocol::NormalizeEmail(e.address) ==
                                                            protocol::NormalizeEmail(email);
                                                   });
                    if (!known) {
                      auto added = accounts.AddEmail(account, email);
                      if (!added.ok()) {
                        const StatusCode c = added.status().code();
                        if (c == StatusCode::kInvalidArgument || c == StatusCode::kAlreadyExists ||
                            c == StatusCode::kFailedPrecondition) {
                          return BadRequest("BAD_REQUEST", added.status().message());
                        }
                        return Failed(added.status(), ctx);
                      }
                    }
                  }
                  Response res = Ok({{"profile", current}});
                  res.set(bhttp::field::cache_control, "no-store");
                  return res;
                }));
}

}  // namespace backpack
