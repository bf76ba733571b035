#include "daemon/badge_input.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "daemon/api_util.h"
#include "protocol/assertion.h"

namespace backpack::api {

using nlohmann::json;
namespace bhttp = http::bhttp;
using http::Context;
using http::Response;

namespace {

json ParsedOrNull(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  return j.is_discarded() ? json(nullptr) : j;
}

// The first error of a report, for the error message of a 422.
std::string FirstError(const json& report) {
  if (report.is_object() && report.contains("messages")) {
    for (const json& m : report["messages"]) {
      if (m.value("messageLevel", "") == "ERROR") {
        return fmt::format("{}: {}", m.value("name", ""), m.value("message", ""));
      }
    }
  }
  return "the badge did not verify";
}

}  // namespace

Response VerificationFailed(const std::string& report_json) {
  const json report = ParsedOrNull(report_json);
  json body = {{"error", {{"code", "verification_failed"}, {"message", FirstError(report)}}}, {"verification", report}};
  return http::JsonResponse(bhttp::status::unprocessable_entity,
                            body.dump(-1, ' ', false, json::error_handler_t::replace));
}

std::variant<VerifyRequest, Response> ReadBadgeInput(const Context& ctx) {
  const std::string_view type = ctx.request[bhttp::field::content_type];
  std::string media(type.substr(0, type.find(';')));
  while (!media.empty() && media.back() == ' ') media.pop_back();
  std::transform(media.begin(), media.end(), media.begin(), [](unsigned char c) { return std::tolower(c); });
  VerifyRequest request;
  if (media == "image/png" || media == "image/svg+xml") {
    request.kind = InputKind::kImage;
    request.data = ctx.request.body();
    return request;
  }
  if (!IsJsonContentType(ctx)) {
    return http::ErrorResponse(bhttp::status::unsupported_media_type, "unsupported_media_type",
                               "send application/json ({\"url\"}, {\"assertion\"}, {\"jws\"} or "
                               "{\"credential\"}), image/png or image/svg+xml");
  }
  auto body = JsonBody(ctx);
  if (auto* err = std::get_if<Response>(&body)) return std::move(*err);
  const json& j = std::get<json>(body);
  int given = 0;
  for (const char* name : {"url", "assertion", "jws", "credential"}) given += j.contains(name) ? 1 : 0;
  if (given != 1) {
    return http::ErrorResponse(bhttp::status::bad_request, "invalid_request",
                               "give exactly one of 'url', 'assertion', 'jws' or 'credential'");
  }
  if (j.contains("url")) {
    if (!j["url"].is_string())
      return http::ErrorResponse(bhttp::status::bad_request, "invalid_request", "'url' must be a string");
    request.kind = InputKind::kUrl;
    request.data = j["url"].get<std::string>();
  } else if (j.contains("jws")) {
    if (!j["jws"].is_string())
      return http::ErrorResponse(bhttp::status::bad_request, "invalid_request", "'jws' must be a string");
    request.kind = InputKind::kJws;
    request.data = j["jws"].get<std::string>();
  } else {
    // An assertion, or an OB 3.0 credential: JSON, or (a credential) a
    // compact VC-JWT in a string. The verifier tells them apart by content.
    const char* name = j.contains("assertion") ? "assertion" : "credential";
    const json& a = j[name];
    request.kind = InputKind::kAssertion;
    if (a.is_string()) {
      request.data = a.get<std::string>();
      const size_t first = request.data.find_first_not_of(" \t\r\n");
      if (first != std::string::npos && request.data[first] != '{') request.kind = InputKind::kJws;
    } else if (a.is_object()) {
      // The issuer's bytes as the earner pasted them, not a re-serialisation.
      auto span = protocol::RawJsonMember(ctx.request.body(), name);
      request.data = span ? std::string(*span) : a.dump();
    } else {
      return http::ErrorResponse(bhttp::status::bad_request, "invalid_request",
                                 fmt::format("'{}' must be a JSON object or a string holding one", name));
    }
  }
  return request;
}

}  // namespace backpack::api
