// Helpers shared by the JSON APIs: those under /api/v1 (account, badges,
// collections) -- bearer tokens, JSON bodies, rate-limit answers and the
// "signed-in account" wrapper -- and the issuer-facing APIs (Badge Connect
// 2.1, Open Badges 3.0) -- OAuth access tokens, paging and the earner's
// profile id.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "daemon/accounts.h"
#include "daemon/http.h"
#include "daemon/oauth.h"

namespace backpack::api {

// The token of an "Authorization: Bearer <token>" header, or "".
std::string BearerToken(const http::Context& ctx);

// True when the request's Content-Type is application/json or */*+json.
bool IsJsonContentType(const http::Context& ctx);

// Parses a JSON object body. Requires a JSON content type; answers 415, or
// 400 for JSON that does not parse or is not an object.
std::variant<nlohmann::json, http::Response> JsonBody(const http::Context& ctx);

// The string members `required` and `optional` (absent or null gives "")
// of a JSON object body, in that order; or the error response that names
// what is wrong (media type, JSON, a missing or non-string field).
using Fields = std::vector<std::string>;
std::variant<Fields, http::Response> BodyFields(const http::Context& ctx,
                                                std::initializer_list<const char*> required,
                                                std::initializer_list<const char*> optional = {});

// 429 with Retry-After.
http::Response TooMany(std::chrono::seconds retry_after, std::string_view what);

inline http::Response Fail(const Status& s, const http::Context& ctx) {
  return http::StatusResponse(s, ctx.request_id);
}

// A JSON string literal for `text` (invalid UTF-8 replaced).
std::string Quote(std::string_view text);

// Wraps fn(Context&, const std::string& account_id) so it runs only for a
// valid session token; otherwise answers 401.
template <class Fn>
http::Handler Authed(AccountService& accounts, Fn fn) {
  return [&accounts, fn = std::move(fn)](http::Context& ctx) -> http::Response {
    auto account = accounts.Authenticate(BearerToken(ctx));
    if (!account.ok()) return http::StatusResponse(account.status(), ctx.request_id);
    return fn(ctx, *account);
  };
}

// --- Issuer-facing APIs (Badge Connect, OB 3.0) -----------------------------------

// An API's own error body for an HTTP status and a message: Badge Connect's
// status envelope, OB 3.0's Imsx_StatusInfo.
using ErrorBody = std::function<http::Response(http::bhttp::status code, std::string_view message)>;

// A failed service call in the API's error body: the node's one mapping of
// a Status to HTTP (which logs and hides internal detail), its message,
// and its Retry-After and WWW-Authenticate.
http::Response FailedAs(const ErrorBody& body, const Status& s, const http::Context& ctx);
// 429 "too many <what>; retry after N seconds" with Retry-After.
http::Response TooManyAs(const ErrorBody& body, std::chrono::seconds wait, std::string_view what);

// Runs fn(ctx, account_id) when the request carries an OAuth access token
// (RFC 6750 bearer) granting `scope`. Otherwise answers, in the API's error
// body, 401 (no token, or one that is not valid), 403 (the token lacks the
// scope) or the storage failure, and a 401 or 403 gets the RFC 6750
// challenge (BearerChallenge) as WWW-Authenticate.
template <class Fn>
http::Handler WithScope(OAuthService& oauth, std::string_view scope, ErrorBody body, Fn fn) {
  return [&oauth, scope, body = std::move(body), fn = std::move(fn)](http::Context& ctx) -> http::Response {
    const std::string token = BearerToken(ctx);
    Result<AccessGrant> grant = token.empty() ? Result<AccessGrant>(Unauthenticated("an access token is required"))
                                              : oauth.Authenticate(token, scope);
    if (grant.ok()) return fn(ctx, grant->account_id);
    http::Response res = grant.status().code() == StatusCode::kUnauthenticated
                             ? body(http::bhttp::status::unauthorized,
                                    token.empty() ? "an access token is required" : "the access token is not valid")
                         : grant.status().code() == StatusCode::kPermissionDenied
                             ? body(http::bhttp::status::forbidden,
                                    "the access token lacks the scope " + std::string(scope))
                             : FailedAs(body, grant.status(), ctx);
    if (res.result() == http::bhttp::status::unauthorized || res.result() == http::bhttp::status::forbidden) {
      res.set(http::bhttp::field::www_authenticate, BearerChallenge(grant.status(), scope, !token.empty()));
    }
    return res;
  };
}

// --- Paging (limit, offset, since; X-Total-Count and Link) ---------------------------

// A decimal integer in [min, max]; nullopt otherwise.
std::optional<size_t> ParseCount(std::string_view text, size_t min, size_t max);
// An RFC 3339 date-time with a time zone ("2024-05-01T10:00:00Z",
// "...10:00:00.5+02:00"), as Unix seconds (fractions dropped); nullopt
// otherwise.
std::optional<int64_t> ParseRfc3339(std::string_view text);

struct Paging {
  size_t limit = 0;
  size_t offset = 0;
  std::optional<int64_t> since;  // Unix seconds
  std::string since_text;        // as the request gave it ("" when absent)
};
// The paging parameters of the request's query: `limit` 1 or more (default
// `default_limit`; larger values are cut to `max_limit`), `offset` 0 or more
// (default 0), `since` an RFC 3339 date-time with a time zone. Or the message
// that names the bad parameter.
std::variant<Paging, std::string> ReadPaging(const http::Context& ctx, size_t default_limit, size_t max_limit);
// The RFC 8288 Link value for a page of `total` items under `base` (an
// absolute URL without a query): first and last always, next while more
// follow, prev when the offset is above 0; each with the effective limit and
// the request's since.
std::string PageLinks(const std::string& base, const Paging& paging, size_t total);

// --- The earner as the issuer-facing APIs show them ----------------------------------

// A stable IRI for the earner's profile on this node that does not reveal
// the account id: a UUID (RFC 9562 version 8) from a SHA-256 of both.
std::string EarnerProfileId(const std::string& public_url, const std::string& account_id);
// The host (and port) of an absolute URL.
std::string HostOf(std::string_view url);

}  // namespace backpack::api
