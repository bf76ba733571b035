#include "daemon/api_util.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

namespace backpack::api {

using nlohmann::json;
namespace bhttp = http::bhttp;

bool IsJsonContentType(const http::Context& ctx) {
  const std::string_view type = ctx.request[bhttp::field::content_type];
  std::string media(type.substr(0, type.find(';')));
  while (!media.empty() && media.back() == ' ') media.pop_back();
  for (char& c : media) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return media == "application/json" || (media.size() > 5 && media.ends_with("+json"));
}

std::variant<json, http::Response> JsonBody(const http::Context& ctx) {
  if (!IsJsonContentType(ctx)) {
    return http::ErrorResponse(bhttp::status::unsupported_media_type, "unsupported_media_type",
                               "the request body must be application/json");
  }
  json body = json::parse(ctx.request.body(), nullptr, false);
  if (body.is_discarded()) {
    return http::ErrorResponse(bhttp::status::bad_request, "invalid_json", "the request body is not valid JSON");
  }
  if (!body.is_object()) {
    return http::ErrorResponse(bhttp::status::bad_request, "invalid_json", "the request body must be a JSON object");
  }
  return body;
}

std::variant<Fields, http::Response> BodyFields(const http::Context& ctx,
                                                std::initializer_list<const char*> required,
                                                std::initializer_list<const char*> optional) {
  auto body = JsonBody(ctx);
  if (auto* err = std::get_if<http::Response>(&body)) return std::move(*err);
  const json& j = std::get<json>(body);
  Fields out;
  auto take = [&](const char* name, bool must) -> Status {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) {
      if (must) return InvalidArgument(fmt::format("field '{}' is required", name));
      out.emplace_back();
      return Status::Ok();
    }
    if (!it->is_string()) return InvalidArgument(fmt::format("field '{}' must be a string", name));
    out.push_back(it->get<std::string>());
    return Status::Ok();
  };
  for (const char* name : required) {
    if (Status s = take(name, true); !s.ok()) return http::StatusResponse(s, ctx.request_id);
  }
  for (const char* name : optional) {
    if (Status s = take(name, false); !s.ok()) return http::StatusResponse(s, ctx.request_id);
  }
  return out;
}

std::string BearerToken(const http::Context& ctx) {
  const std::string_view auth = ctx.request[bhttp::field::authorization];
  constexpr std::string_view kScheme = "Bearer ";
  if (auth.size() <= kScheme.size()) return {};
  std::string scheme(auth.substr(0, kScheme.size()));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "bearer ") return {};
  std::string_view token = auth.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  return std::string(token);
}

http::Response TooMany(std::chrono::seconds retry_after, std::string_view what) {
  http::Response res = http::ErrorResponse(bhttp::status::too_many_requests, "rate_limited",
                                           fmt::format("too many {}; retry later", what));
  res.set(bhttp::field::retry_after, std::to_string(std::max<int64_t>(1, retry_after.count())));
  return res;
}

std::string Quote(std::string_view text) {
  return json(std::string(text)).dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace backpack::api
