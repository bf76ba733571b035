// Helpers shared by the JSON APIs under /api/v1 (account, badges,
// collections): bearer tokens, JSON bodies, rate-limit answers and the
// "signed-in account" wrapper.
#pragma once

#include <chrono>
#include <initializer_list>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "daemon/accounts.h"
#include "daemon/http.h"

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

}  // namespace backpack::api
