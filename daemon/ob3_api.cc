#include "daemon/ob3_api.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <memory>
#include <optional>
#include <string_view>
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
#include "protocol/email_address.h"
#include "protocol/encoding.h"
#include "protocol/json_depth.h"

namespace backpack {

using nlohmann::json;
namespace bhttp = http::bhttp;

namespace {

using http::Context;
using http::Exec;
using http::Response;

constexpr std::string_view kApiPath = "/ims/ob/v3p0";
constexpr std::string_view kObV3Context = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json";
// The specification sets no default page size; Badge Connect's is 10.
constexpr size_t kDefaultLimit = 10;
constexpr size_t kMaxLimit = 100;
constexpr size_t kListBatch = 200;
// Credentials and profiles nest a handful of levels; the JSON-LD processor
// refuses documents deeper than this anyway (protocol/jsonld.h).
constexpr int kMaxBodyDepth = 64;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// --- Imsx_StatusInfo ---------------------------------------------------------------

// The Imsx_CodeMinorFieldValue values this API uses.
namespace minor {
constexpr std::string_view kForbidden = "forbidden";
constexpr std::string_view kInternal = "internal_server_error";
constexpr std::string_view kInvalidData = "invalid_data";
constexpr std::string_view kInvalidQuery = "invalid_query_parameter";
constexpr std::string_view kNotAllowed = "not_allowed";
constexpr std::string_view kNotFound = "not_found";
constexpr std::string_view kServerBusy = "server_busy";
constexpr std::string_view kUnauthorized = "unauthorizedrequest";
}  // namespace minor

json StatusInfoJson(std::string_view code_minor, std::string_view description) {
  return {{"imsx_codeMajor", "failure"},
          {"imsx_severity", "error"},
          {"imsx_description", std::string(description)},
          {"imsx_codeMinor",
           {{"imsx_codeMinorField",
             {{{"imsx_codeMinorFieldName", "TargetEndSystem"},
               {"imsx_codeMinorFieldValue", std::string(code_minor)}}}}}}};
}

Response StatusInfo(bhttp::status code, std::string_view code_minor, std::string_view description) {
  Response res = http::JsonResponse(code, Dump(StatusInfoJson(code_minor, description)));
  res.set(bhttp::field::cache_control, "no-store");
  return res;
}

Response BadRequest(std::string_view description) {
  return StatusInfo(bhttp::status::bad_request, minor::kInvalidData, description);
}

std::string_view MinorFor(bhttp::status code) {
  switch (code) {
    case bhttp::status::bad_request: return minor::kInvalidData;
    case bhttp::status::unauthorized: return minor::kUnauthorized;
    case bhttp::status::forbidden:
    case bhttp::status::conflict: return minor::kForbidden;
    case bhttp::status::not_found: return minor::kNotFound;
    case bhttp::status::method_not_allowed: return minor::kNotAllowed;
    case bhttp::status::too_many_requests:
    case bhttp::status::service_unavailable: return minor::kServerBusy;
    default: return minor::kInternal;
  }
}

// An error as Imsx_StatusInfo, its code minor from the HTTP status.
Response ErrorInfo(bhttp::status code, std::string_view message) { return StatusInfo(code, MinorFor(code), message); }

Response Failed(const Status& s, const Context& ctx) { return api::FailedAs(ErrorInfo, s, ctx); }

template <class Fn>
http::Handler WithScope(OAuthService& oauth, std::string_view scope, Fn fn) {
  return api::WithScope(oauth, scope, ErrorInfo, std::move(fn));
}

// --- Request bodies ----------------------------------------------------------------------

// The media type of the request, lower case, without parameters.
std::string MediaType(const Context& ctx) {
  const std::string_view type = ctx.request[bhttp::field::content_type];
  std::string media(type.substr(0, type.find(';')));
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.pop_back();
  std::transform(media.begin(), media.end(), media.begin(), [](unsigned char c) { return std::tolower(c); });
  return media;
}

// A JSON object body (any JSON media type), or the error to answer.
std::variant<json, Response> JsonObjectBody(const Context& ctx, std::string_view what) {
  if (!api::IsJsonContentType(ctx)) {
    return StatusInfo(bhttp::status::unsupported_media_type, minor::kInvalidData,
                      fmt::format("the body must be {} as application/json", what));
  }
  const std::string& body = ctx.request.body();
  if (protocol::JsonNestingDepth(body, kMaxBodyDepth) > kMaxBodyDepth) {
    return BadRequest(fmt::format("the body nests deeper than {} levels", kMaxBodyDepth));
  }
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return BadRequest(fmt::format("the body must be {} (a JSON object)", what));
  return j;
}


struct PostedCredential {
  VerifyRequest request;
  std::string content_type;  // of the 200 / 201 answer, which repeats the credential
};

// What upsertCredential asks to import: credential JSON (application/json,
// application/vc+ld+json or another +json type) or a VC-JWT (text/plain).
std::variant<PostedCredential, Response> ReadCredential(const Context& ctx) {
  PostedCredential posted;
  posted.request.credentials_only = true;
  const std::string media = MediaType(ctx);
  if (media == "text/plain") {
    std::string_view jws = ctx.request.body();
    auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
    while (!jws.empty() && space(jws.front())) jws.remove_prefix(1);
    while (!jws.empty() && space(jws.back())) jws.remove_suffix(1);
    if (jws.empty() || !protocol::LooksLikeCompactJws(jws)) {
      return BadRequest("a text/plain body must be a VC-JWT in compact JWS serialization");
    }
    posted.request.kind = InputKind::kJws;
    posted.request.data = std::string(jws);
    posted.content_type = "text/plain";
    return posted;
  }
  if (!api::IsJsonContentType(ctx)) {
    return StatusInfo(bhttp::status::unsupported_media_type, minor::kInvalidData,
                      "send a credential as application/json (or application/vc+ld+json), or a VC-JWT as text/plain");
  }
  auto body = JsonObjectBody(ctx, "an OpenBadgeCredential");
  if (auto* err = std::get_if<Response>(&body)) return std::move(*err);
  posted.request.kind = InputKind::kAssertion;
  // The issuer's bytes as sent, not a re-serialisation: they are stored
  // verbatim and given back as they came.
  posted.request.data = ctx.request.body();
  posted.content_type = media == "application/vc+ld+json" ? media : "application/json";
  return posted;
}

// The 400 for a credential that did not verify: the description names the
// first failed check ("VERIFY_PROOF: ..."); `report` is the whole
// verification report, as the badge API gives it.
Response Refused(const std::string& report_json) {
  json report = json::parse(report_json, nullptr, false);
  std::string description = "the credential did not verify";
  if (report.is_object() && report.contains("messages") && report["messages"].is_array()) {
    for (const json& m : report["messages"]) {
      if (!m.is_object() || m.value("messageLevel", "") != "ERROR") continue;
      description = fmt::format("the credential did not verify: {}: {}", m.value("name", ""), m.value("message", ""));
      break;
    }
  }
  json body = StatusInfoJson(minor::kInvalidData, description);
  body["report"] = report.is_discarded() ? json(nullptr) : std::move(report);
  Response res = http::JsonResponse(bhttp::status::bad_request, Dump(body));
  res.set(bhttp::field::cache_control, "no-store");
  return res;
}

// --- Credentials --------------------------------------------------------------------------

// The earner's accepted OB 3.0 credentials imported (or last replaced) at or
// after `since`, newest import first.
Result<std::vector<BadgeRecord>> AcceptedCredentials(BadgeService& badges, const std::string& account,
                                                     std::optional<int64_t> since) {
  std::vector<BadgeRecord> out;
  std::string cursor;
  do {
    auto page = badges.List(account, BadgeState::kAccepted, kListBatch, cursor);
    if (!page.ok()) return page.status();
    for (BadgeRecord& r : page->badges) {
      if (r.spec_version != "3.0") continue;
      if (since && std::max(r.imported_at, r.replaced_at) < *since) continue;
      out.push_back(std::move(r));
    }
    cursor = std::move(page->next_cursor);
  } while (!cursor.empty());
  return out;
}

// --- Profile -------------------------------------------------------------------------------

json ProfileJson(const AccountView& a, const std::string& public_url) {
  json p = {{"@context", json::array({kObV3Context})},
            {"id", api::EarnerProfileId(public_url, a.id)},
            {"type", json::array({"Profile"})}};
  if (!a.display_name.empty()) p["name"] = a.display_name;
  for (const EmailView& e : a.emails) {
    if (e.primary && e.verified) p["email"] = e.address;
  }
  return p;
}

bool IsProfileType(const json& type) {
  if (type == "Profile") return true;
  return type.is_array() && !type.empty() &&
         std::all_of(type.begin(), type.end(), [](const json& t) { return t == "Profile"; });
}

// --- The Service Description Document ----------------------------------------------------

json ImsxResponse(std::string_view description) {
  return {{"description", std::string(description)},
          {"content", {{"application/json", {{"schema", {{"$ref", "#/components/schemas/Imsx_StatusInfo"}}}}}}}};
}

json ErrorResponses(std::initializer_list<std::pair<const char*, const char*>> codes) {
  json out = json::object();
  for (const auto& [code, description] : codes) out[code] = ImsxResponse(description);
  out["default"] = ImsxResponse("The request was invalid or cannot be served; imsx_description says why.");
  return out;
}

json Security(std::string_view scope) { return json::array({{{"OAuth2ACG", json::array({std::string(scope)})}}}); }

json CredentialBodies(std::string_view description) {
  return {{"description", std::string(description)},
          {"content",
           {{"application/json", {{"schema", {{"$ref", "#/components/schemas/AchievementCredential"}}}}},
            {"application/vc+ld+json", {{"schema", {{"$ref", "#/components/schemas/AchievementCredential"}}}}},
            {"text/plain", {{"schema", {{"$ref", "#/components/schemas/CompactJws"}}}}}}}};
}

json ProfileBody(std::string_view description) {
  return {{"description", std::string(description)},
          {"content", {{"application/json", {{"schema", {{"$ref", "#/components/schemas/Profile"}}}}}}}};
}

json Paths() {
  json get_errors = ErrorResponses({{"400", "A query parameter is not acceptable."},
                                    {"401", "No access token, or an unknown, expired or revoked one."},
                                    {"403", "The access token lacks the operation's scope."},
                                    {"500", "The server failed; the detail is in its log."}});
  json post_errors = ErrorResponses({{"400", "The body is not a credential, or the credential did not verify (the "
                                             "report member has the verification report)."},
                                     {"401", "No access token, or an unknown, expired or revoked one."},
                                     {"403", "The access token lacks the operation's scope."},
                                     {"409", "The earner's backpack is full."},
                                     {"415", "The body is neither JSON nor text/plain."},
                                     {"429", "Too many credentials for this earner; see Retry-After."},
                                     {"500", "The server failed; the detail is in its log."}});
  post_errors["304"] = {{"description", "The backpack holds this credential already, as recent or newer."}};
  json put_errors = ErrorResponses({{"400", "The profile sets a member this API cannot change."},
                                    {"401", "No access token, or an unknown, expired or revoked one."},
                                    {"403", "The access token lacks the operation's scope."},
                                    {"415", "The body is not JSON."},
                                    {"500", "The server failed; the detail is in its log."}});

  json get_credentials_ok = {
      {"description", "The earner's accepted OpenBadgeCredentials, newest first."},
      {"headers",
       {{"X-Total-Count", {{"description", "How many credentials match."}, {"schema", {{"type", "integer"}}}}},
        {"Link", {{"description", "RFC 8288 links: next, last, first, prev."}, {"schema", {{"type", "string"}}}}}}},
      {"content",
       {{"application/json", {{"schema", {{"$ref", "#/components/schemas/GetOpenBadgeCredentialsResponse"}}}}}}}};
  json get_ok = get_errors;
  get_ok["200"] = get_credentials_ok;
  json post_ok = post_errors;
  post_ok["200"] = CredentialBodies("A newer credential replaced the stored one; the body is the credential sent.");
  post_ok["201"] = CredentialBodies("The credential was stored, pending the earner's acceptance; the body is the "
                                    "credential sent.");
  json get_profile = get_errors;
  get_profile["200"] = ProfileBody("The earner's profile.");
  json put_profile = put_errors;
  put_profile["200"] = ProfileBody("The earner's profile as it is now (a new email address appears once verified).");

  const json parameters = json::array(
      {{{"name", "limit"},
        {"in", "query"},
        {"required", false},
        {"description", "The largest number of credentials per page (default 10; at most 100 are given)."},
        {"schema", {{"type", "integer"}, {"minimum", 1}}}},
       {{"name", "offset"},
        {"in", "query"},
        {"required", false},
        {"description", "The index of the first credential to return (zero indexed)."},
        {"schema", {{"type", "integer"}, {"minimum", 0}}}},
       {{"name", "since"},
        {"in", "query"},
        {"required", false},
        {"description", "Only credentials received (or replaced) at or after this time."},
        {"schema", {{"type", "string"}, {"format", "date-time"}}}}});

  return {
      {"/credentials",
       {{"get",
         {{"tags", {"OpenBadgeCredentials"}},
          {"summary", "The earner's accepted OpenBadgeCredentials"},
          {"operationId", "getCredentials"},
          {"parameters", parameters},
          {"responses", get_ok},
          {"security", Security(kScopeObV3p0CredentialReadonly)}}},
        {"post",
         {{"tags", {"OpenBadgeCredentials"}},
          {"summary", "Create or replace an OpenBadgeCredential; it waits for the earner's acceptance"},
          {"operationId", "upsertCredential"},
          {"requestBody", [] {
             json body = CredentialBodies("The credential: JSON with an embedded proof, or a VC-JWT as text/plain.");
             body["required"] = true;
             return body;
           }()},
          {"responses", post_ok},
          {"security", Security(kScopeObV3p0CredentialUpsert)}}}}},
      {"/profile",
       {{"get",
         {{"tags", {"OpenBadgeCredentials"}},
          {"summary", "The earner's profile"},
          {"operationId", "getProfile"},
          {"responses", get_profile},
          {"security", Security(kScopeObV3p0ProfileReadonly)}}},
        {"put",
         {{"tags", {"OpenBadgeCredentials"}},
          {"summary", "Add an email address to the earner's profile"},
          {"operationId", "putProfile"},
          {"requestBody", [] {
             json body = ProfileBody("The whole Profile; only a new email address is taken.");
             body["required"] = true;
             return body;
           }()},
          {"responses", put_profile},
          {"security", Security(kScopeObV3p0ProfileUpdate)}}}}},
      {"/discovery",
       {{"get",
         {{"tags", {"Discovery"}},
          {"summary", "This Service Description Document"},
          {"operationId", "getServiceDescription"},
          {"responses",
           {{"200",
             {{"description", "The Service Description Document."},
              {"content", {{"application/json", {{"schema", {{"type", "object"}}}}}}}}},
            {"default", ImsxResponse("The request was invalid or cannot be served.")}}},
          {"security", json::array()}}}}}};
}

json Schemas() {
  const json code_minor_values = {"forbidden",     "fullsuccess",     "internal_server_error", "invalid_data",
                                  "invalid_query_parameter",         "misdirected_request",   "not_acceptable",
                                  "not_allowed",   "not_found",       "not_modified",          "server_busy",
                                  "unauthorizedrequest",              "unknown"};
  return {
      {"GetOpenBadgeCredentialsResponse",
       {{"type", "object"},
        {"properties",
         {{"credential", {{"type", "array"}, {"items", {{"$ref", "#/components/schemas/AchievementCredential"}}}}},
          {"compactJwsString", {{"type", "array"}, {"items", {{"$ref", "#/components/schemas/CompactJws"}}}}}}}}},
      {"AchievementCredential",
       {{"type", "object"},
        {"description",
         "An OpenBadgeCredential exactly as its issuer wrote it: "
         "https://purl.imsglobal.org/spec/ob/v3p0/schema/json/ob_v3p0_achievementcredential_schema.json"},
        {"required", {"@context", "id", "type", "issuer", "credentialSubject"}}}},
      {"CompactJws",
       {{"type", "string"},
        {"description", "A VC-JWT in compact JWS serialization (RFC 7515)."},
        {"pattern", "^[a-zA-Z0-9_-]+\\.[a-zA-Z0-9_-]*\\.[a-zA-Z0-9_-]+$"}}},
      {"Profile",
       {{"type", "object"},
        {"required", {"id", "type"}},
        {"properties",
         {{"@context", {{"type", "array"}, {"items", {{"type", "string"}}}}},
          {"id", {{"type", "string"}, {"description", "Stable for the earner on this node; not the account id."}}},
          {"type", {{"type", "array"}, {"items", {{"type", "string"}}}}},
          {"name", {{"type", "string"}, {"description", "The earner's display name."}}},
          {"email", {{"type", "string"}, {"description", "The earner's primary address, when verified."}}}}}}},
      {"Imsx_StatusInfo",
       {{"type", "object"},
        {"required", {"imsx_codeMajor", "imsx_severity"}},
        {"properties",
         {{"imsx_codeMajor", {{"type", "string"}, {"enum", {"failure", "processing", "success", "unsupported"}}}},
          {"imsx_severity", {{"type", "string"}, {"enum", {"error", "status", "warning"}}}},
          {"imsx_description", {{"type", "string"}}},
          {"imsx_codeMinor",
           {{"type", "object"},
            {"properties",
             {{"imsx_codeMinorField",
               {{"type", "array"},
                {"items",
                 {{"type", "object"},
                  {"properties",
                   {{"imsx_codeMinorFieldName", {{"type", "string"}}},
                    {"imsx_codeMinorFieldValue", {{"type", "string"}, {"enum", code_minor_values}}}}}}}}}}}}},
          {"report",
           {{"type", "object"},
            {"description", "A refused credential's verification report (this node's extension; docs/api.md of "
                            "backpackd, \"Badges\")."}}}}}}}};
}

json ServiceDescription(const std::string& public_url, const config::ServerConfig& server) {
  const std::string name = server.node_name.empty() ? api::HostOf(public_url) : server.node_name;
  json scopes = json::object();
  for (std::string_view scope : {kScopeObV3p0CredentialReadonly, kScopeObV3p0CredentialUpsert,
                                 kScopeObV3p0ProfileReadonly, kScopeObV3p0ProfileUpdate}) {
    scopes[std::string(scope)] = std::string(ScopeDescription(scope));
  }
  json oauth = {{"type", "oauth2"},
                {"description", "OAuth 2.0 Authorization Code Grant authorization"},
                {"x-imssf-name", name},
                {"x-imssf-registrationUrl", public_url + "/oauth/register"},
                {"flows",
                 {{"authorizationCode",
                   {{"authorizationUrl", public_url + "/oauth/authorize"},
                    {"tokenUrl", public_url + "/oauth/token"},
                    {"refreshUrl", public_url + "/oauth/token"},
                    {"scopes", scopes}}}}}};
  json info = {{"title", name},
               {"description", "The Open Badges 3.0 API of this backpack: issuers push OpenBadgeCredentials, which "
                               "wait for the earner's acceptance; clients read the accepted ones."},
               {"version", "3.0"}};
  // Required by the specification; published once the operator has set them.
  if (!server.terms_of_service_url.empty()) {
    info["termsOfService"] = server.terms_of_service_url;
    oauth["x-imssf-termsOfServiceUrl"] = server.terms_of_service_url;
  }
  if (!server.privacy_policy_url.empty()) {
    info["x-imssf-privacyPolicyUrl"] = server.privacy_policy_url;
    oauth["x-imssf-privacyPolicyUrl"] = server.privacy_policy_url;
  }
  return {{"openapi", "3.0.1"},
          {"info", std::move(info)},
          {"servers", json::array({{{"url", public_url + std::string(kApiPath)},
                                    {"description", "The Open Badges 3.0 API of " + name}}})},
          {"tags",
           json::array({{{"name", "OpenBadgeCredentials"},
                         {"description", "Exchange OpenBadgeCredentials and the earner's profile."}},
                        {{"name", "Discovery"}, {"description", "The Service Description Document."}}})},
          {"paths", Paths()},
          {"components", {{"securitySchemes", {{"OAuth2ACG", std::move(oauth)}}}, {"schemas", Schemas()}}}};
}

}  // namespace

void RegisterOb3Routes(http::Router& router, OAuthService& oauth, AccountService& accounts, BadgeService& badges,
                       const config::BadgesConfig& badges_config, const std::string& public_url,
                       const config::ServerConfig& server) {
  const std::string api_base = public_url + std::string(kApiPath);

  // --- Discovery ---------------------------------------------------------------------------
  const std::string description = Dump(ServiceDescription(public_url, server));
  router.Add(bhttp::verb::get, std::string(kApiPath) + "/discovery", Exec::kInline, [description](Context&) {
    Response res = http::JsonResponse(bhttp::status::ok, description);
    res.set(bhttp::field::access_control_allow_origin, "*");
    res.set(bhttp::field::cache_control, "public, max-age=300");
    return res;
  });

  // --- getCredentials ----------------------------------------------------------------------
  router.Add(bhttp::verb::get, std::string(kApiPath) + "/credentials", Exec::kWorker,
             WithScope(oauth, kScopeObV3p0CredentialReadonly,
                       [&badges, api_base](Context& ctx, const std::string& account) -> Response {
                         auto paging = api::ReadPaging(ctx, kDefaultLimit, kMaxLimit);
                         if (auto* bad = std::get_if<std::string>(&paging)) {
                           return StatusInfo(bhttp::status::bad_request, minor::kInvalidQuery, *bad);
                         }
                         const api::Paging& page = std::get<api::Paging>(paging);
                         auto all = AcceptedCredentials(badges, account, page.since);
                         if (!all.ok()) return Failed(all.status(), ctx);
                         const size_t total = all->size();
                         // Built from the stored bytes: JSON credentials verbatim.
                         std::string credentials, jws;
                         for (size_t i = page.offset; i < total && i < page.offset + page.limit; ++i) {
                           const BadgeRecord& r = (*all)[i];
                           auto original = badges.GetOriginal(account, r.id);
                           if (!original.ok()) return Failed(original.status(), ctx);
                           if (r.assertion_form == "jws") {
                             jws += (jws.empty() ? "" : ",") + api::Quote(original->assertion);
                             continue;
                           }
                           // Stored only after it parsed and verified; a record
                           // that no longer parses is left out rather than
                           // breaking the page.
                           if (!json::accept(original->assertion)) continue;
                           credentials += (credentials.empty() ? "" : ",") + original->assertion;
                         }
                         Response res = http::JsonResponse(
                             bhttp::status::ok,
                             "{\"credential\":[" + credentials + "],\"compactJwsString\":[" + jws + "]}");
                         res.set("X-Total-Count", std::to_string(total));
                         res.set(bhttp::field::link, api::PageLinks(api_base + "/credentials", page, total));
                         res.set(bhttp::field::cache_control, "no-store");
                         return res;
                       }));

  // --- upsertCredential ----------------------------------------------------------------------
  // A budget of its own per earner, apart from the badge API's and Badge Connect's.
  auto imports = std::make_shared<RateLimiter>(badges_config.imports_per_minute, std::chrono::minutes(1));
  router.Add(bhttp::verb::post, std::string(kApiPath) + "/credentials", Exec::kWorker,
             WithScope(oauth, kScopeObV3p0CredentialUpsert,
                       [&badges, imports](Context& ctx, const std::string& account) -> Response {
                         std::chrono::seconds wait{};
                         if (!imports->Allow(account, &wait)) {
                           return api::TooManyAs(ErrorInfo, wait, "credentials pushed for this earner");
                         }
                         auto input = ReadCredential(ctx);
                         if (auto* err = std::get_if<Response>(&input)) return std::move(*err);
                         const PostedCredential& posted = std::get<PostedCredential>(input);
                         ImportOptions options;
                         options.state = BadgeState::kPending;
                         auto result = badges.Import(account, posted.request, options);
                         if (!result.ok()) {
                           if (result.status().code() == StatusCode::kFailedPrecondition) {
                             return StatusInfo(bhttp::status::conflict, minor::kForbidden, result.status().message());
                           }
                           return Failed(result.status(), ctx);
                         }
                         bhttp::status code = bhttp::status::created;
                         switch (result->outcome) {
                           case ImportResult::Outcome::kRefused: return Refused(result->report_json);
                           case ImportResult::Outcome::kExisting: {
                             Response res{bhttp::status::not_modified, 11};
                             res.set(bhttp::field::cache_control, "no-store");
                             return res;
                           }
                           case ImportResult::Outcome::kReplaced: code = bhttp::status::ok; break;
                           case ImportResult::Outcome::kCreated: code = bhttp::status::created; break;
                         }
                         // The specification: the body is the credential in the request.
                         Response res{code, 11};
                         res.set(bhttp::field::content_type, posted.content_type);
                         res.set(bhttp::field::cache_control, "no-store");
                         res.body() = posted.request.data;
                         return res;
                       }));

  // --- getProfile ------------------------------------------------------------------------------
  router.Add(bhttp::verb::get, std::string(kApiPath) + "/profile", Exec::kWorker,
             WithScope(oauth, kScopeObV3p0ProfileReadonly,
                       [&accounts, public_url](Context& ctx, const std::string& account) -> Response {
                         auto view = accounts.GetAccount(account);
                         if (!view.ok()) return Failed(view.status(), ctx);
                         Response res = http::JsonResponse(bhttp::status::ok, Dump(ProfileJson(*view, public_url)));
                         res.set(bhttp::field::cache_control, "no-store");
                         return res;
                       }));

  // --- putProfile ---------------------------------------------------------------------------------
  // The whole Profile, as the specification asks; what the earner's account
  // lets a client change is taken, the rest must repeat the current values.
  // An email address the account lacks is added unverified (a verification
  // message goes to it) and appears once the earner verifies it. The name,
  // the id and the type are the node's. Members left out change nothing.
  router.Add(
      bhttp::verb::put, std::string(kApiPath) + "/profile", Exec::kWorker,
      WithScope(oauth, kScopeObV3p0ProfileUpdate,
                [&accounts, public_url](Context& ctx, const std::string& account) -> Response {
                  auto body = JsonObjectBody(ctx, "a Profile");
                  if (auto* err = std::get_if<Response>(&body)) return std::move(*err);
                  const json& p = std::get<json>(body);
                  auto view = accounts.GetAccount(account);
                  if (!view.ok()) return Failed(view.status(), ctx);
                  const json current = ProfileJson(*view, public_url);
                  std::string email;
                  for (const auto& [key, value] : p.items()) {
                    if (key == "@context") continue;
                    if (key == "email") {
                      if (value.is_null()) continue;
                      if (!value.is_string()) return BadRequest("email must be a string");
                      email = value.get<std::string>();
                      continue;
                    }
                    if (key == "type") {
                      if (!IsProfileType(value)) return BadRequest("type must be \"Profile\"");
                      continue;
                    }
                    if (key == "id") {
                      if (value != current["id"]) {
                        return BadRequest(
                            fmt::format("id must be this earner's profile id, {}", current["id"].get<std::string>()));
                      }
                      continue;
                    }
                    if (key == "name") {
                      const json name = current.value("name", json());
                      if (value == name || (value == "" && name.is_null())) continue;
                      return BadRequest(
                          "name cannot be changed through this API: it is the display name the earner chose in the "
                          "backpack");
                    }
                    return BadRequest(fmt::format("'{}' cannot be set through this API; only email is taken", key));
                  }
                  if (!email.empty()) {
                    const bool known =
                        std::any_of(view->emails.begin(), view->emails.end(), [&](const EmailView& e) {
                          return protocol::NormalizeEmail(e.address) == protocol::NormalizeEmail(email);
                        });
                    if (!known) {
                      auto added = accounts.AddEmail(account, email);
                      if (!added.ok()) {
                        const StatusCode c = added.status().code();
                        if (c == StatusCode::kInvalidArgument || c == StatusCode::kAlreadyExists ||
                            c == StatusCode::kFailedPrecondition) {
                          return BadRequest(added.status().message());
                        }
                        return Failed(added.status(), ctx);
                      }
                    }
                  }
                  Response res = http::JsonResponse(bhttp::status::ok, Dump(current));
                  res.set(bhttp::field::cache_control, "no-store");
                  return res;
                }));
}

}  // namespace backpack
