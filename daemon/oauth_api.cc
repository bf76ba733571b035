#include "daemon/oauth_api.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/time.h"
#include "daemon/accounts.h"
#include "daemon/api_util.h"
#include "daemon/http.h"
#include "daemon/log.h"
#include "daemon/oauth.h"
#include "daemon/rate_limiter.h"
#include "daemon/share_page.h"
#include "protocol/email_address.h"
#include "protocol/encoding.h"

namespace backpack {

using nlohmann::json;
namespace bhttp = http::bhttp;

namespace {

using http::Context;
using http::Response;

constexpr std::string_view kAuthorizePath = "/oauth/authorize";
constexpr std::string_view kSignInPath = "/oauth/sign-in";
constexpr size_t kMaxFormFieldBytes = 8192;

// --- Parameters ------------------------------------------------------------------

// The decoded parameters of a query string or an
// application/x-www-form-urlencoded body.
struct Params {
  std::map<std::string, std::string> values;
  std::vector<std::string> repeated;  // names that appeared more than once
  bool malformed = false;             // a bad percent escape or an oversized value

  const std::string& Get(const std::string& name) const {
    static const std::string kEmpty;
    auto it = values.find(name);
    return it == values.end() ? kEmpty : it->second;
  }
  bool Has(const std::string& name) const { return values.count(name) > 0; }
};

Params ParseParams(std::string_view text) {
  Params p;
  while (!text.empty()) {
    const size_t amp = text.find('&');
    const std::string_view pair = text.substr(0, amp);
    text = amp == std::string_view::npos ? std::string_view{} : text.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    std::string name, value;
    if (!http::PercentDecode(pair.substr(0, eq), true, &name) ||
        (eq != std::string_view::npos && !http::PercentDecode(pair.substr(eq + 1), true, &value)) ||
        value.size() > kMaxFormFieldBytes) {
      p.malformed = true;
      continue;
    }
    // RFC 6749 3.1 and 3.2: parameters sent without a value are treated as
    // omitted.
    if (value.empty()) continue;
    if (p.values.count(name) > 0) {
      if (std::find(p.repeated.begin(), p.repeated.end(), name) == p.repeated.end()) p.repeated.push_back(name);
      continue;
    }
    p.values.emplace(std::move(name), std::move(value));
  }
  return p;
}

bool IsFormContentType(const Context& ctx) {
  const std::string_view type = ctx.request[bhttp::field::content_type];
  std::string media(type.substr(0, type.find(';')));
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.pop_back();
  for (char& c : media) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return media == "application/x-www-form-urlencoded";
}

// Percent-encodes everything but the unreserved characters (RFC 3986 2.3).
std::string Encode(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 4);
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      out += fmt::format("%{:02X}", u);
    }
  }
  return out;
}

// "a=1&b=2" from (name, value) pairs, skipping empty values.
std::string Query(std::initializer_list<std::pair<std::string_view, std::string_view>> pairs) {
  std::string out;
  for (const auto& [name, value] : pairs) {
    if (value.empty()) continue;
    if (!out.empty()) out += '&';
    out += Encode(name);
    out += '=';
    out += Encode(value);
  }
  return out;
}

// RFC 6749 restricts error_description to printable ASCII without '"' and '\'.
std::string SafeDescription(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e || c == '"' || c == '\\') c = '?';
  }
  return out;
}

AuthorizationRequest RequestFrom(const Params& p) {
  AuthorizationRequest r;
  r.response_type = p.Get("response_type");
  r.client_id = p.Get("client_id");
  r.redirect_uri = p.Get("redirect_uri");
  r.scope = p.Get("scope");
  r.state = p.Get("state");
  r.code_challenge = p.Get("code_challenge");
  r.code_challenge_method = p.Get("code_challenge_method");
  r.code_challange_method = p.Get("code_challange_method");
  r.repeated = p.repeated;
  return r;
}

// The request in one canonical form: what the sign-in form carries back and
// what the consent form's CSRF token is bound to.
std::string CanonicalRequest(const ValidatedAuthorization& v) {
  std::string scope;
  for (const auto& s : v.scopes) {
    if (!scope.empty()) scope += ' ';
    scope += s;
  }
  return Query({{"response_type", "code"},
                {"client_id", v.client.id},
                {"redirect_uri", v.redirect_uri_given ? std::string_view(v.redirect_uri) : std::string_view()},
                {"scope", scope},
                {"state", v.state},
                {"code_challenge", v.code_challenge},
                {"code_challenge_method", "S256"}});
}

// The query of a canonical request contains only these characters.
bool IsCanonicalQuery(std::string_view q) {
  return !q.empty() && q.size() <= 4 * kMaxFormFieldBytes && std::all_of(q.begin(), q.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' || c == '~' || c == '%' ||
           c == '&' || c == '=';
  });
}

// Rate-limit key of an email address: trimmed and case-folded like
// NormalizeEmail, without validating it (invalid addresses are limited too).
std::string EmailKey(std::string_view email) {
  while (!email.empty() && std::isspace(static_cast<unsigned char>(email.front()))) email.remove_prefix(1);
  while (!email.empty() && std::isspace(static_cast<unsigned char>(email.back()))) email.remove_suffix(1);
  return "email:" + protocol::NormalizeEmail(email);
}

// --- Cookies ---------------------------------------------------------------------

struct CookieNames {
  std::string session;
  std::string csrf;
  bool secure = false;
};

CookieNames NamesFor(const std::string& public_url) {
  // "__Host-" cookies must be Secure, Path=/ and host-only: a sibling
  // subdomain can then neither set nor shadow them.
  if (public_url.starts_with("https://")) return {"__Host-bp_session", "__Host-bp_csrf", true};
  return {"bp_session", "bp_csrf", false};
}

std::string CookieValue(const Context& ctx, std::string_view name) {
  std::string_view header = ctx.request[bhttp::field::cookie];
  while (!header.empty()) {
    const size_t semi = header.find(';');
    std::string_view item = header.substr(0, semi);
    header = semi == std::string_view::npos ? std::string_view{} : header.substr(semi + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos || item.substr(0, eq) != name) continue;
    std::string_view value = item.substr(eq + 1);
    while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
    return std::string(value);
  }
  return {};
}

std::string SetCookie(const CookieNames& names, const std::string& name, const std::string& value) {
  return fmt::format("{}={}; Path=/; HttpOnly; SameSite=Lax{}", name, value, names.secure ? "; Secure" : "");
}

bool IsTokenText(std::string_view s) {
  return !s.empty() && s.size() <= 128 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

// --- Pages -----------------------------------------------------------------------

// The pages' only stylesheet, allowed by its hash: never interpolate into it.
constexpr std::string_view kStyle =
    "body{margin:0;font-family:'DejaVu Sans',system-ui,sans-serif;line-height:1.5;color:#1d1d1f;"
    "background:#f5f5f7}"
    "main{max-width:34rem;margin:2rem auto;padding:1.5rem;background:#fff;border:1px solid #d2d2d7;"
    "border-radius:.5rem}"
    "h1{font-size:1.4rem;margin-top:0}"
    "label{display:block;margin:.75rem 0 .25rem;font-weight:bold}"
    "input[type=email],input[type=password]{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem}"
    ".actions{display:flex;gap:.75rem;margin-top:1.25rem}"
    "button{font-size:1rem;padding:.5rem 1.25rem;border-radius:.25rem;border:1px solid #0645ad;cursor:pointer}"
    "button.primary{background:#0645ad;color:#fff}"
    "button.secondary{background:#fff;color:#0645ad}"
    ".error{color:#a00;font-weight:bold}"
    ".note{color:#4a4a4f;font-size:.9rem}"
    "ul.scopes li{margin:.4rem 0}"
    ".scope-uri{display:block;color:#4a4a4f;font-size:.75rem;overflow-wrap:anywhere}"
    "a{color:#0645ad}";

// "scheme://host[:port]" of a redirect URI when it can stand in a CSP source
// list, else "".
std::string CspOrigin(std::string_view uri) {
  const size_t scheme = uri.find("://");
  if (scheme == std::string_view::npos) return {};
  const size_t end = uri.find_first_of("/?#", scheme + 3);
  const std::string_view origin = uri.substr(0, end);
  const bool clean = std::all_of(origin.begin(), origin.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' || c == '/';
  });
  return clean ? std::string(origin) : std::string();
}

// No script, no images, no frames; forms only to this node and, on the
// consent page, to the client's origin, because browsers apply form-action
// to the redirect that answers the form too.
std::string PageCsp(std::string_view redirect_origin) {
  static const std::string style_hash = protocol::Base64Encode(protocol::Sha256(kStyle));
  return fmt::format(
      "default-src 'none'; style-src 'sha256-{}'; form-action 'self'{}{}; frame-ancestors 'none'; base-uri 'none'",
      style_hash, redirect_origin.empty() ? "" : " ", redirect_origin);
}

std::string PageStart(std::string_view title) {
  std::string out =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<meta name=\"robots\" content=\"noindex\">\n";
  out += fmt::format("<title>{}</title>\n<style>", HtmlEscape(title));
  out += kStyle;
  out += "</style>\n</head>\n<body>\n<main>\n";
  return out;
}

constexpr std::string_view kPageEnd = "</main>\n</body>\n</html>\n";

Response Page(bhttp::status status, std::string body, std::string_view redirect_origin = {}) {
  Response res{status, 11};
  res.set(bhttp::field::content_type, "text/html; charset=utf-8");
  res.set("Content-Security-Policy", PageCsp(redirect_origin));
  res.set("X-Frame-Options", "DENY");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Referrer-Policy", "no-referrer");
  res.set(bhttp::field::cache_control, "no-store");
  res.body() = std::move(body);
  return res;
}

Response ErrorPage(bhttp::status status, std::string_view title, std::string_view message) {
  std::string out = PageStart(title);
  out += fmt::format("<h1>{}</h1>\n<p>{}</p>\n", HtmlEscape(title), HtmlEscape(message));
  out += "<p class=\"note\">Go back to the application you came from and start again.</p>\n";
  out += kPageEnd;
  return Page(status, std::move(out));
}

void Hidden(std::string& out, std::string_view name, std::string_view value) {
  out += fmt::format("<input type=\"hidden\" name=\"{}\" value=\"{}\">\n", HtmlEscape(name), HtmlEscape(value));
}

// "host[:port]" of an http(s) URL, for showing where a link leads.
std::string HostOf(std::string_view url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return {};
  const std::string_view rest = url.substr(scheme + 3);
  return std::string(rest.substr(0, rest.find_first_of("/?#")));
}

std::string SignInHtml(const ValidatedAuthorization& v, std::string_view request, std::string_view csrf,
                       std::string_view error, std::string_view email) {
  std::string out = PageStart("Sign in to your backpack");
  out += "<h1>Sign in to your backpack</h1>\n";
  out += fmt::format("<p><strong>{}</strong> asks for access to your backpack. Sign in to continue.</p>\n",
                     HtmlEscape(v.client.metadata.client_name));
  if (!error.empty()) out += fmt::format("<p class=\"error\" role=\"alert\">{}</p>\n", HtmlEscape(error));
  out += fmt::format("<form method=\"post\" action=\"{}\">\n", kSignInPath);
  Hidden(out, "csrf", csrf);
  Hidden(out, "request", request);
  out += "<label for=\"email\">Email address</label>\n";
  out += fmt::format(
      "<input type=\"email\" id=\"email\" name=\"email\" autocomplete=\"username\" required value=\"{}\">\n",
      HtmlEscape(email));
  out += "<label for=\"password\">Password</label>\n";
  out += "<input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\n";
  out += "<div class=\"actions\"><button type=\"submit\" class=\"primary\">Sign in</button></div>\n";
  out += "</form>\n";
  out += kPageEnd;
  return out;
}

std::string ConsentHtml(const ValidatedAuthorization& v, const AccountView& account, std::string_view csrf) {
  const ClientMetadata& m = v.client.metadata;
  std::string who = account.display_name;
  for (const auto& e : account.emails) {
    if (e.primary || who.empty()) {
      who = who.empty() ? e.address : fmt::format("{} ({})", who, e.address);
      break;
    }
  }
  std::string out = PageStart("Allow access to your backpack?");
  out += fmt::format("<h1>Allow <strong>{}</strong> to use your backpack?</h1>\n", HtmlEscape(m.client_name));
  if (!who.empty()) out += fmt::format("<p class=\"note\">Signed in as {}</p>\n", HtmlEscape(who));
  out += "<p>If you approve, this application may:</p>\n<ul class=\"scopes\">\n";
  for (const auto& scope : v.scopes) {
    out += fmt::format("<li>{}<span class=\"scope-uri\">{}</span></li>\n", HtmlEscape(ScopeDescription(scope)),
                       HtmlEscape(scope));
  }
  out += "</ul>\n<dl>\n";
  if (IsHttpUrl(m.client_uri)) {
    out += fmt::format("<dt>Website</dt><dd><a href=\"{}\" rel=\"noopener noreferrer\">{}</a></dd>\n",
                       HtmlEscape(m.client_uri), HtmlEscape(HostOf(m.client_uri)));
  }
  out += fmt::format("<dt>You return to</dt><dd>{}</dd>\n", HtmlEscape(HostOf(v.redirect_uri)));
  if (IsHttpUrl(m.tos_uri)) {
    out += fmt::format("<dt>Terms</dt><dd><a href=\"{}\" rel=\"noopener noreferrer\">Terms of service</a></dd>\n",
                       HtmlEscape(m.tos_uri));
  }
  if (IsHttpUrl(m.policy_uri)) {
    out += fmt::format("<dt>Privacy</dt><dd><a href=\"{}\" rel=\"noopener noreferrer\">Privacy policy</a></dd>\n",
                       HtmlEscape(m.policy_uri));
  }
  out += "</dl>\n";
  out +=
      "<p class=\"note\">The application registered itself with this backpack; its name has not been checked. "
      "Approve only if you came here from a site you trust. You can withdraw access at any time.</p>\n";
  out += fmt::format("<form method=\"post\" action=\"{}\">\n", kAuthorizePath);
  Hidden(out, "csrf", csrf);
  Hidden(out, "response_type", "code");
  Hidden(out, "client_id", v.client.id);
  if (v.redirect_uri_given) Hidden(out, "redirect_uri", v.redirect_uri);
  std::string scope;
  for (const auto& s : v.scopes) scope += (scope.empty() ? "" : " ") + s;
  Hidden(out, "scope", scope);
  if (!v.state.empty()) Hidden(out, "state", v.state);
  Hidden(out, "code_challenge", v.code_challenge);
  Hidden(out, "code_challenge_method", "S256");
  out +=
      "<div class=\"actions\">\n"
      "<button type=\"submit\" name=\"decision\" value=\"approve\" class=\"primary\">Approve</button>\n"
      "<button type=\"submit\" name=\"decision\" value=\"deny\" class=\"secondary\">Deny</button>\n"
      "</div>\n</form>\n";
  out += kPageEnd;
  return out;
}

// --- JSON answers ----------------------------------------------------------------

Response NoStoreJson(bhttp::status status, const json& body) {
  Response res = http::JsonResponse(status, body.dump(-1, ' ', false, json::error_handler_t::replace));
  res.set(bhttp::field::cache_control, "no-store");
  res.set(bhttp::field::pragma, "no-cache");
  return res;
}

// RFC 6749 5.2 / RFC 7591 3.2.2 error: {"error", "error_description"}.
Response OAuthErrorJson(const OAuthError& e, const Context& ctx) {
  bhttp::status status = bhttp::status::bad_request;
  std::string description = e.description;
  if (e.code == OAuthErrorCode::kServerError) {
    log::Error("oauth", "request failed", {{"req", ctx.request_id}, {"error", e.cause.ToString()}});
    status = e.cause.code() == StatusCode::kUnavailable ? bhttp::status::service_unavailable
                                                        : bhttp::status::internal_server_error;
  }
  Response res = NoStoreJson(status, {{"error", e.name()}, {"error_description", SafeDescription(description)}});
  if (e.code == OAuthErrorCode::kInvalidClient) {
    res.result(bhttp::status::unauthorized);
    res.set(bhttp::field::www_authenticate, "Basic realm=\"backpackd\"");
  }
  if (status == bhttp::status::service_unavailable) res.set(bhttp::field::retry_after, "60");
  return res;
}

Response ServerErrorPage(const OAuthError& e, const Context& ctx) {
  log::Error("oauth", "request failed", {{"req", ctx.request_id}, {"error", e.cause.ToString()}});
  const bool unavailable = e.cause.code() == StatusCode::kUnavailable;
  return ErrorPage(unavailable ? bhttp::status::service_unavailable : bhttp::status::internal_server_error,
                   "Something went wrong", "The backpack could not complete the request; try again later.");
}

// The client's redirect URI with `query` appended (RFC 6749 3.1.2 keeps a
// query the URI already has).
Response RedirectToClient(const std::string& redirect_uri, const std::string& query) {
  Response res{bhttp::status::found, 11};
  res.set(bhttp::field::location, redirect_uri + (redirect_uri.find('?') == std::string::npos ? "?" : "&") + query);
  res.set(bhttp::field::cache_control, "no-store");
  res.set("Referrer-Policy", "no-referrer");
  return res;
}

std::string TokenJson(const TokenSet& t) {
  std::string scope;
  for (const auto& s : t.scopes) scope += (scope.empty() ? "" : " ") + s;
  json j = {{"access_token", t.access_token}, {"token_type", "Bearer"}, {"expires_in", t.expires_in}, {"scope", scope}};
  if (!t.refresh_token.empty()) j["refresh_token"] = t.refresh_token;
  return j.dump();
}

// --- Registration ----------------------------------------------------------------

// The metadata of a registration request, type-checked; or the RFC 7591 error.
std::variant<ClientMetadata, OAuthError> ReadMetadata(const Context& ctx) {
  auto bad = [](OAuthErrorCode code, std::string description) { return OAuthError{code, std::move(description), {}}; };
  if (!api::IsJsonContentType(ctx)) {
    return bad(OAuthErrorCode::kInvalidClientMetadata, "the request body must be application/json");
  }
  const json j = json::parse(ctx.request.body(), nullptr, false);
  if (!j.is_object()) return bad(OAuthErrorCode::kInvalidClientMetadata, "the request body must be a JSON object");
  ClientMetadata m;
  for (const auto& [name, field] : {std::pair<const char*, std::string*>{"client_name", &m.client_name},
                                    {"scope", &m.scope},
                                    {"token_endpoint_auth_method", &m.token_endpoint_auth_method},
                                    {"client_uri", &m.client_uri},
                                    {"logo_uri", &m.logo_uri},
                                    {"tos_uri", &m.tos_uri},
                                    {"policy_uri", &m.policy_uri},
                                    {"software_id", &m.software_id},
                                    {"software_version", &m.software_version}}) {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_string()) return bad(OAuthErrorCode::kInvalidClientMetadata, fmt::format("{} must be a string", name));
    *field = it->get<std::string>();
  }
  for (const auto& [name, field] :
       {std::pair<const char*, std::vector<std::string>*>{"redirect_uris", &m.redirect_uris},
        {"grant_types", &m.grant_types},
        {"response_types", &m.response_types},
        {"contacts", &m.contacts}}) {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) continue;
    const OAuthErrorCode code = std::string_view(name) == "redirect_uris" ? OAuthErrorCode::kInvalidRedirectUri
                                                                          : OAuthErrorCode::kInvalidClientMetadata;
    if (!it->is_array() || it->size() > 100) return bad(code, fmt::format("{} must be an array of strings", name));
    for (const auto& v : *it) {
      if (!v.is_string()) return bad(code, fmt::format("{} must be an array of strings", name));
      field->push_back(v.get<std::string>());
    }
  }
  return m;
}

json RegistrationJson(const RegisteredClient& r) {
  const ClientMetadata& m = r.client.metadata;
  json j = {{"client_id", r.client.id}, {"client_id_issued_at", r.client.issued_at}};
  if (!r.secret.empty()) {
    j["client_secret"] = r.secret;
    j["client_secret_expires_at"] = 0;
  }
  j["client_name"] = m.client_name;
  j["redirect_uris"] = m.redirect_uris;
  j["grant_types"] = m.grant_types;
  j["response_types"] = m.response_types;
  j["scope"] = m.scope;
  j["token_endpoint_auth_method"] = m.token_endpoint_auth_method;
  for (const auto& [name, value] : {std::pair<const char*, const std::string*>{"client_uri", &m.client_uri},
                                    {"logo_uri", &m.logo_uri},
                                    {"tos_uri", &m.tos_uri},
                                    {"policy_uri", &m.policy_uri},
                                    {"software_id", &m.software_id},
                                    {"software_version", &m.software_version}}) {
    if (!value->empty()) j[name] = *value;
  }
  if (!m.contacts.empty()) j["contacts"] = m.contacts;
  return j;
}

// --- Client authentication ----------------------------------------------------------

// The client's credentials from an Authorization: Basic header (RFC 6749
// 2.3.1: id and secret form-urlencoded, then base64) or the body.
std::variant<ClientCredentials, OAuthError> ReadCredentials(const Context& ctx, const Params& form) {
  auto fail = [](OAuthErrorCode code, std::string description) { return OAuthError{code, std::move(description), {}}; };
  ClientCredentials c;
  const std::string_view auth = ctx.request[bhttp::field::authorization];
  if (auth.size() > 6 && (auth.substr(0, 6) == "Basic " || auth.substr(0, 6) == "basic ")) {
    std::string text(auth.substr(6));
    while (!text.empty() && text.front() == ' ') text.erase(0, 1);
    while (!text.empty() && text.back() == ' ') text.pop_back();
    auto decoded = protocol::Base64Decode(text);
    const size_t colon = decoded ? decoded->find(':') : std::string::npos;
    if (colon == std::string::npos || !http::PercentDecode(decoded->substr(0, colon), true, &c.client_id) ||
        !http::PercentDecode(decoded->substr(colon + 1), true, &c.secret)) {
      return fail(OAuthErrorCode::kInvalidClient, "the Basic credentials are malformed");
    }
    c.method = ClientAuthMethod::kBasic;
    if (form.Has("client_secret")) {
      return fail(OAuthErrorCode::kInvalidRequest, "use one client authentication method, not two");
    }
    if (form.Has("client_id") && form.Get("client_id") != c.client_id) {
      return fail(OAuthErrorCode::kInvalidRequest, "client_id differs from the Basic credentials");
    }
    return c;
  }
  c.client_id = form.Get("client_id");
  if (c.client_id.empty()) return fail(OAuthErrorCode::kInvalidClient, "client authentication is required");
  if (form.Has("client_secret")) {
    c.secret = form.Get("client_secret");
    c.method = ClientAuthMethod::kPost;
  }
  return c;
}

// A client's request to the token, revocation or introspection endpoint: a
// well-formed form body and an authenticated client; or the error answer.
struct ClientRequest {
  Params form;
  OAuthClient client;
};
std::variant<ClientRequest, Response> ReadClientRequest(const Context& ctx, OAuthService& oauth) {
  auto invalid = [&ctx](std::string description) {
    return OAuthErrorJson(OAuthError{OAuthErrorCode::kInvalidRequest, std::move(description), {}}, ctx);
  };
  if (!IsFormContentType(ctx)) return invalid("the body must be application/x-www-form-urlencoded");
  Params form = ParseParams(ctx.request.body());
  if (form.malformed) return invalid("the body is malformed");
  if (!form.repeated.empty()) return invalid(fmt::format("{} is repeated", form.repeated.front()));
  auto credentials = ReadCredentials(ctx, form);
  if (auto* err = std::get_if<OAuthError>(&credentials)) return OAuthErrorJson(*err, ctx);
  auto client = oauth.AuthenticateClient(std::get<ClientCredentials>(credentials));
  if (!client.ok()) return OAuthErrorJson(client.error(), ctx);
  return ClientRequest{std::move(form), std::move(*client)};
}

// A request about one token (RFC 7009 revocation, RFC 7662 introspection):
// an authenticated client and the "token" it names.
struct TokenRequest {
  OAuthClient client;
  std::string token;
};
std::variant<TokenRequest, Response> ReadTokenRequest(const Context& ctx, OAuthService& oauth) {
  auto request = ReadClientRequest(ctx, oauth);
  if (auto* err = std::get_if<Response>(&request)) return std::move(*err);
  ClientRequest& r = std::get<ClientRequest>(request);
  if (!r.form.Has("token")) {
    return OAuthErrorJson(OAuthError{OAuthErrorCode::kInvalidRequest, "token is missing", {}}, ctx);
  }
  return TokenRequest{std::move(r.client), r.form.Get("token")};
}

// --- Shared state ----------------------------------------------------------------

struct State {
  State(OAuthService& o, AccountService& a, const config::AccountsConfig& ac, std::string url)
      : oauth(o),
        accounts(a),
        public_url(std::move(url)),
        cookies(NamesFor(public_url)),
        sign_in(ac.login_attempts_per_minute, std::chrono::minutes(1)),
        registrations(o.config().registrations_per_hour, std::chrono::hours(1)) {}

  OAuthService& oauth;
  AccountService& accounts;
  const std::string public_url;
  const CookieNames cookies;
  RateLimiter sign_in;        // per client address and per email, like POST /api/v1/sessions
  RateLimiter registrations;  // per client address

  // The signed-in account of the browser and its session token, or nullopt.
  std::optional<std::pair<std::string, std::string>> BrowserSession(const Context& ctx) {
    const std::string token = CookieValue(ctx, cookies.session);
    if (!IsTokenText(token)) return std::nullopt;
    auto account = accounts.Authenticate(token);
    if (!account.ok()) return std::nullopt;
    return std::make_pair(std::move(*account), token);
  }

  std::string ConsentBinding(const std::string& session_token, const ValidatedAuthorization& v) const {
    return protocol::Sha256Hex(session_token) + "\n" + CanonicalRequest(v);
  }

  // The sign-in page for `v`; sets the pre-sign-in cookie its CSRF token is
  // bound to when the browser has none.
  Response SignInPage(const Context& ctx, const ValidatedAuthorization& v, bhttp::status status,
                      std::string_view error = {}, std::string_view email = {}) {
    std::string cookie = CookieValue(ctx, cookies.csrf);
    const bool fresh = !IsTokenText(cookie);
    if (fresh) cookie = oauth.NewNonce();
    Response res = Page(status, SignInHtml(v, CanonicalRequest(v), oauth.FormToken("sign-in", cookie), error, email));
    if (fresh) res.set(bhttp::field::set_cookie, SetCookie(cookies, cookies.csrf, cookie));
    return res;
  }

  // The authorization answer when the request is wrong after its redirect
  // URI was established (RFC 6749 4.1.2.1), or the earner denied it.
  Response RedirectError(const ValidatedAuthorization& v, const OAuthError& e) const {
    return RedirectToClient(v.redirect_uri, Query({{"error", e.name()},
                                                   {"error_description", SafeDescription(e.description)},
                                                   {"state", v.state},
                                                   {"iss", public_url}}));
  }
};

// Validates an authorization request (from the query or the consent form):
// the validated request, or the response that ends the request here.
std::variant<ValidatedAuthorization, Response> Validate(State& s, const Context& ctx, const Params& params) {
  if (params.malformed) {
    return ErrorPage(bhttp::status::bad_request, "Invalid authorization request", "The request is malformed.");
  }
  auto checked = s.oauth.CheckAuthorization(RequestFrom(params));
  if (!checked.ok()) {
    if (checked.error().code == OAuthErrorCode::kServerError) return ServerErrorPage(checked.error(), ctx);
    return ErrorPage(bhttp::status::bad_request, "Invalid authorization request", checked.error().description);
  }
  if (checked->error) return s.RedirectError(*checked, *checked->error);
  return std::move(*checked);
}

}  // namespace

void RegisterOAuthRoutes(http::Router& router, OAuthService& oauth, AccountService& accounts,
                         const config::AccountsConfig& accounts_config, const std::string& public_url) {
  using http::Exec;
  auto state = std::make_shared<State>(oauth, accounts, accounts_config, public_url);

  // --- RFC 8414 metadata ----------------------------------------------------------
  json scopes = json::array();
  for (const auto& s : KnownScopes()) scopes.push_back(s.uri);
  const json auth_methods = {"client_secret_basic", "client_secret_post", "none"};
  const std::string metadata = json{
      {"issuer", public_url},
      {"authorization_endpoint", public_url + std::string(kAuthorizePath)},
      {"token_endpoint", public_url + "/oauth/token"},
      {"registration_endpoint", public_url + "/oauth/register"},
      {"revocation_endpoint", public_url + "/oauth/revoke"},
      {"introspection_endpoint", public_url + "/oauth/introspect"},
      {"scopes_supported", scopes},
      {"response_types_supported", {"code"}},
      {"response_modes_supported", {"query"}},
      {"grant_types_supported", {"authorization_code", "refresh_token"}},
      {"token_endpoint_auth_methods_supported", auth_methods},
      {"revocation_endpoint_auth_methods_supported", auth_methods},
      {"introspection_endpoint_auth_methods_supported", auth_methods},
      {"code_challenge_methods_supported", {"S256"}},
      {"authorization_response_iss_parameter_supported",
       true}}.dump();
  router.Add(bhttp::verb::get, "/.well-known/oauth-authorization-server", Exec::kInline, [metadata](Context&) {
    Response res = http::JsonResponse(bhttp::status::ok, metadata);
    res.set(bhttp::field::access_control_allow_origin, "*");
    res.set(bhttp::field::cache_control, "public, max-age=300");
    return res;
  });

  // --- RFC 7591 registration --------------------------------------------------------
  router.Add(bhttp::verb::post, "/oauth/register", Exec::kWorker, [state](Context& ctx) -> Response {
    std::chrono::seconds wait{};
    if (!state->registrations.Allow(ctx.remote_address, &wait)) return api::TooMany(wait, "client registrations");
    auto metadata = ReadMetadata(ctx);
    if (auto* err = std::get_if<OAuthError>(&metadata)) return OAuthErrorJson(*err, ctx);
    auto registered = state->oauth.RegisterClient(std::move(std::get<ClientMetadata>(metadata)));
    if (!registered.ok()) return OAuthErrorJson(registered.error(), ctx);
    return NoStoreJson(bhttp::status::created, RegistrationJson(*registered));
  });

  // --- The authorization endpoint ------------------------------------------------------
  router.Add(bhttp::verb::get, std::string(kAuthorizePath), Exec::kWorker, [state](Context& ctx) -> Response {
    auto validated = Validate(*state, ctx, ParseParams(ctx.query));
    if (auto* done = std::get_if<Response>(&validated)) return std::move(*done);
    const ValidatedAuthorization& v = std::get<ValidatedAuthorization>(validated);
    auto session = state->BrowserSession(ctx);
    if (!session) return state->SignInPage(ctx, v, bhttp::status::ok);
    auto account = state->accounts.GetAccount(session->first);
    if (!account.ok()) return state->SignInPage(ctx, v, bhttp::status::ok);
    const std::string csrf = state->oauth.FormToken("consent", state->ConsentBinding(session->second, v));
    return Page(bhttp::status::ok, ConsentHtml(v, *account, csrf), CspOrigin(v.redirect_uri));
  });

  // The consent form's answer.
  router.Add(bhttp::verb::post, std::string(kAuthorizePath), Exec::kWorker, [state](Context& ctx) -> Response {
    if (!IsFormContentType(ctx)) {
      return ErrorPage(bhttp::status::unsupported_media_type, "Invalid form", "The form was not sent as a form.");
    }
    Params form = ParseParams(ctx.request.body());
    const std::string csrf = form.Get("csrf");
    const std::string decision = form.Get("decision");
    form.values.erase("csrf");
    form.values.erase("decision");
    auto validated = Validate(*state, ctx, form);
    if (auto* done = std::get_if<Response>(&validated)) return std::move(*done);
    const ValidatedAuthorization& v = std::get<ValidatedAuthorization>(validated);
    auto session = state->BrowserSession(ctx);
    if (!session)
      return state->SignInPage(ctx, v, bhttp::status::unauthorized, "Your session has ended; sign in again.");
    if (!state->oauth.CheckFormToken("consent", state->ConsentBinding(session->second, v), csrf)) {
      return ErrorPage(bhttp::status::forbidden, "Form expired",
                       "This form was not sent from this page, or it has expired.");
    }
    if (decision == "deny") {
      log::Info("oauth", "access denied by the earner", {{"client", v.client.id}, {"account", session->first}});
      return state->RedirectError(v, OAuthError{OAuthErrorCode::kAccessDenied, "the earner denied access", {}});
    }
    if (decision != "approve") {
      return ErrorPage(bhttp::status::bad_request, "Invalid form", "Choose Approve or Deny.");
    }
    auto code = state->oauth.IssueCode(session->first, v);
    if (!code.ok()) {
      if (code.error().code == OAuthErrorCode::kServerError) {
        log::Error("oauth", "request failed", {{"req", ctx.request_id}, {"error", code.error().cause.ToString()}});
      }
      return state->RedirectError(v, code.error());
    }
    log::Info("oauth", "access approved by the earner", {{"client", v.client.id}, {"account", session->first}});
    return RedirectToClient(v.redirect_uri, Query({{"code", *code}, {"state", v.state}, {"iss", state->public_url}}));
  });

  // The sign-in form: a browser session for the authorization pages.
  router.Add(bhttp::verb::post, std::string(kSignInPath), Exec::kWorker, [state](Context& ctx) -> Response {
    if (!IsFormContentType(ctx)) {
      return ErrorPage(bhttp::status::unsupported_media_type, "Invalid form", "The form was not sent as a form.");
    }
    const Params form = ParseParams(ctx.request.body());
    const std::string& request = form.Get("request");
    if (form.malformed || !IsCanonicalQuery(request)) {
      return ErrorPage(bhttp::status::bad_request, "Invalid form", "The sign-in form is incomplete.");
    }
    // Login CSRF: the token must match the cookie this browser was given
    // with the form (signed double submit).
    const std::string cookie = CookieValue(ctx, state->cookies.csrf);
    if (!IsTokenText(cookie) || !state->oauth.CheckFormToken("sign-in", cookie, form.Get("csrf"))) {
      return ErrorPage(bhttp::status::forbidden, "Form expired",
                       "This form was not sent from this page, or it has expired.");
    }
    auto validated = Validate(*state, ctx, ParseParams(request));
    if (auto* done = std::get_if<Response>(&validated)) return std::move(*done);
    const ValidatedAuthorization& v = std::get<ValidatedAuthorization>(validated);
    const std::string& email = form.Get("email");
    std::chrono::seconds wait{};
    if (!state->sign_in.Allow("ip:" + ctx.remote_address, &wait) || !state->sign_in.Allow(EmailKey(email), &wait)) {
      Response res = state->SignInPage(ctx, v, bhttp::status::too_many_requests,
                                       "Too many sign-in attempts; wait a minute and try again.", email);
      res.set(bhttp::field::retry_after, std::to_string(std::max<int64_t>(1, wait.count())));
      return res;
    }
    auto grant = state->accounts.SignIn(email, form.Get("password"));
    if (!grant.ok()) {
      if (grant.status().code() != StatusCode::kUnauthenticated) {
        return ServerErrorPage(OAuthError{OAuthErrorCode::kServerError, {}, grant.status()}, ctx);
      }
      return state->SignInPage(ctx, v, bhttp::status::unauthorized, "The email address or password is incorrect.",
                               email);
    }
    Response res{bhttp::status::see_other, 11};
    res.set(bhttp::field::location, std::string(kAuthorizePath) + "?" + CanonicalRequest(v));
    res.set(bhttp::field::set_cookie, SetCookie(state->cookies, state->cookies.session, grant->token));
    res.set(bhttp::field::cache_control, "no-store");
    return res;
  });

  // --- The token endpoint ----------------------------------------------------------
  router.Add(bhttp::verb::post, "/oauth/token", Exec::kWorker, [state](Context& ctx) -> Response {
    auto invalid = [&ctx](std::string description) {
      return OAuthErrorJson(OAuthError{OAuthErrorCode::kInvalidRequest, std::move(description), {}}, ctx);
    };
    auto request = ReadClientRequest(ctx, state->oauth);
    if (auto* err = std::get_if<Response>(&request)) return std::move(*err);
    const Params& form = std::get<ClientRequest>(request).form;
    const OAuthClient* client = &std::get<ClientRequest>(request).client;
    const std::string& grant_type = form.Get("grant_type");
    OAuthResult<TokenSet> tokens = OAuthError{};
    if (grant_type.empty()) return invalid("grant_type is missing");
    if (grant_type == "authorization_code") {
      if (!form.Has("code")) return invalid("code is missing");
      if (!form.Has("code_verifier")) return invalid("code_verifier is missing (PKCE)");
      tokens =
          state->oauth.ExchangeCode(*client, form.Get("code"), form.Get("redirect_uri"), form.Get("code_verifier"));
    } else if (grant_type == "refresh_token") {
      if (!form.Has("refresh_token")) return invalid("refresh_token is missing");
      tokens = state->oauth.Refresh(*client, form.Get("refresh_token"), form.Get("scope"));
    } else {
      return OAuthErrorJson(
          OAuthError{
              OAuthErrorCode::kUnsupportedGrantType, "grant_type must be authorization_code or refresh_token", {}},
          ctx);
    }
    if (!tokens.ok()) return OAuthErrorJson(tokens.error(), ctx);
    Response res = http::JsonResponse(bhttp::status::ok, TokenJson(*tokens));
    res.set(bhttp::field::cache_control, "no-store");
    res.set(bhttp::field::pragma, "no-cache");
    return res;
  });

  // --- RFC 7009 revocation -----------------------------------------------------------
  router.Add(bhttp::verb::post, "/oauth/revoke", Exec::kWorker, [state](Context& ctx) -> Response {
    auto request = ReadTokenRequest(ctx, state->oauth);
    if (auto* err = std::get_if<Response>(&request)) return std::move(*err);
    const TokenRequest& r = std::get<TokenRequest>(request);
    // token_type_hint only speeds up a lookup elsewhere; one lookup finds
    // either kind here.
    Status s = state->oauth.Revoke(r.client, r.token);
    if (!s.ok()) return OAuthErrorJson(OAuthError{OAuthErrorCode::kServerError, {}, s}, ctx);
    Response res{bhttp::status::ok, 11};
    res.set(bhttp::field::cache_control, "no-store");
    return res;
  });

  // --- RFC 7662 introspection, for the client's own tokens --------------------------------
  router.Add(bhttp::verb::post, "/oauth/introspect", Exec::kWorker, [state](Context& ctx) -> Response {
    auto request = ReadTokenRequest(ctx, state->oauth);
    if (auto* err = std::get_if<Response>(&request)) return std::move(*err);
    const TokenRequest& r = std::get<TokenRequest>(request);
    auto info = state->oauth.Introspect(r.client, r.token);
    if (!info.ok()) return OAuthErrorJson(OAuthError{OAuthErrorCode::kServerError, {}, info.status()}, ctx);
    if (!info->has_value()) return NoStoreJson(bhttp::status::ok, {{"active", false}});
    const TokenInfo& t = **info;
    std::string scope;
    for (const auto& s : t.scopes) scope += (scope.empty() ? "" : " ") + s;
    json body = {{"active", true},     {"scope", scope},      {"client_id", t.client_id},
                 {"iat", t.issued_at}, {"exp", t.expires_at}, {"iss", state->public_url}};
    if (!t.refresh) body["token_type"] = "Bearer";
    return NoStoreJson(bhttp::status::ok, body);
  });

  // --- Authorized apps in the account API ---------------------------------------------
  router.Add(
      bhttp::verb::get, "/api/v1/account/apps", Exec::kWorker,
      api::Authed(accounts, [state](Context& ctx, const std::string& account) -> Response {
        auto apps = state->oauth.ListApps(account);
        if (!apps.ok()) return api::Fail(apps.status(), ctx);
        json list = json::array();
        for (const auto& a : *apps) {
          list.push_back({{"client_id", a.client_id},
                          {"client_name", a.client_name},
                          {"client_uri", a.client_uri.empty() ? json(nullptr) : json(a.client_uri)},
                          {"scopes", a.scopes},
                          {"granted_at", FormatRfc3339(a.granted_at)},
                          {"last_used_at", a.last_used_at == 0 ? json(nullptr) : json(FormatRfc3339(a.last_used_at))}});
        }
        return http::JsonResponse(bhttp::status::ok,
                                  json{{"apps", std::move(list)}}.dump(-1, ' ', false, json::error_handler_t::replace));
      }));

  router.Add(bhttp::verb::delete_, "/api/v1/account/apps/{client_id}", Exec::kWorker,
             api::Authed(accounts, [state](Context& ctx, const std::string& account) -> Response {
               Status s = state->oauth.RevokeApp(account, ctx.params.at(0));
               if (!s.ok()) return api::Fail(s, ctx);
               return Response{bhttp::status::no_content, 11};
             }));
}

}  // namespace backpack
