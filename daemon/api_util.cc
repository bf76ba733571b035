#include "daemon/api_util.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include <fmt/format.h>

#include "protocol/encoding.h"

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

std::optional<size_t> ParseCount(std::string_view text, size_t min, size_t max) {
  size_t n = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, n);
  if (text.empty() || ec != std::errc() || ptr != end || n < min || n > max) return std::nullopt;
  return n;
}

namespace {

// Days since 1970-01-01 of a proleptic Gregorian date.
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

}  // namespace

std::optional<int64_t> ParseRfc3339(std::string_view t) {
  auto digits = [&t](size_t at, size_t n) -> std::optional<unsigned> {
    if (at + n > t.size()) return std::nullopt;
    unsigned v = 0;
    for (size_t i = at; i < at + n; ++i) {
      if (t[i] < '0' || t[i] > '9') return std::nullopt;
      v = v * 10 + static_cast<unsigned>(t[i] - '0');
    }
    return v;
  };
  auto at = [&t](size_t i, char c) { return i < t.size() && t[i] == c; };
  const auto year = digits(0, 4), month = digits(5, 2), day = digits(8, 2);
  const auto hour = digits(11, 2), minute = digits(14, 2), second = digits(17, 2);
  if (!year || !month || !day || !hour || !minute || !second || !at(4, '-') || !at(7, '-') ||
      !(at(10, 'T') || at(10, 't')) || !at(13, ':') || !at(16, ':')) {
    return std::nullopt;
  }
  if (*month < 1 || *month > 12 || *day < 1 || *day > 31 || *hour > 23 || *minute > 59 || *second > 60) {
    return std::nullopt;
  }
  size_t i = 19;
  if (at(i, '.')) {
    ++i;
    const size_t start = i;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
    if (i == start) return std::nullopt;
  }
  int64_t offset = 0;
  if (at(i, 'Z') || at(i, 'z')) {
    ++i;
  } else if (at(i, '+') || at(i, '-')) {
    const auto oh = digits(i + 1, 2), om = digits(i + 4, 2);
    if (!oh || !om || !at(i + 3, ':') || *oh > 23 || *om > 59) return std::nullopt;
    offset = (at(i, '+') ? 1 : -1) * static_cast<int64_t>(*oh * 3600 + *om * 60);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != t.size()) return std::nullopt;
  return DaysFromCivil(*year, *month, *day) * 86400 + *hour * 3600 + *minute * 60 + std::min(*second, 59u) - offset;
}

std::variant<Paging, std::string> ReadPaging(const http::Context& ctx, size_t default_limit, size_t max_limit) {
  Paging paging;
  paging.limit = default_limit;
  const std::string limit_text = http::QueryParam(ctx.query, "limit");
  const std::string offset_text = http::QueryParam(ctx.query, "offset");
  paging.since_text = http::QueryParam(ctx.query, "since");
  if (!limit_text.empty()) {
    // Larger pages are cut to max_limit; the Link header says so.
    auto n = ParseCount(limit_text, 1, SIZE_MAX / 2);
    if (!n) return std::string("limit must be an integer of at least 1");
    paging.limit = std::min(*n, max_limit);
  }
  if (!offset_text.empty()) {
    auto n = ParseCount(offset_text, 0, SIZE_MAX / 2);
    if (!n) return std::string("offset must be an integer of at least 0");
    paging.offset = *n;
  }
  if (!paging.since_text.empty()) {
    paging.since = ParseRfc3339(paging.since_text);
    if (!paging.since) return std::string("since must be an RFC 3339 date-time with a time zone");
  }
  return paging;
}

std::string PageLinks(const std::string& base, const Paging& paging, size_t total) {
  const size_t limit = paging.limit;
  const size_t offset = paging.offset;
  const std::string tail = paging.since_text.empty() ? std::string() : "&since=" + protocol::PercentEncode(paging.since_text);
  auto link = [&](size_t at, std::string_view rel) {
    return fmt::format("<{}?limit={}&offset={}{}>; rel=\"{}\"", base, limit, at, tail, rel);
  };
  std::vector<std::string> links;
  if (offset + limit < total) links.push_back(link(offset + limit, "next"));
  links.push_back(link(total == 0 ? 0 : (total - 1) / limit * limit, "last"));
  links.push_back(link(0, "first"));
  if (offset > 0) links.push_back(link(offset > limit ? offset - limit : 0, "prev"));
  std::string out;
  for (const std::string& l : links) out += (out.empty() ? "" : ", ") + l;
  return out;
}

std::string EarnerProfileId(const std::string& public_url, const std::string& account_id) {
  // The seed names Badge Connect because that API published these ids
  // first; the OB 3.0 API shows the same id for the same earner.
  std::string h =
      protocol::Sha256Hex("backpackd badge connect profile\n" + public_url + "\n" + account_id).substr(0, 32);
  h[12] = '8';
  h[16] = "89ab"[(h[16] >= 'a' ? h[16] - 'a' + 10 : h[16] - '0') & 3];
  return fmt::format("urn:uuid:{}-{}-{}-{}-{}", h.substr(0, 8), h.substr(8, 4), h.substr(12, 4), h.substr(16, 4),
                     h.substr(20));
}

std::string HostOf(std::string_view url) {
  const size_t scheme = url.find("://");
  std::string_view rest = scheme == std::string_view::npos ? url : url.substr(scheme + 3);
  return std::string(rest.substr(0, rest.find('/')));
}

http::Response FailedAs(const ErrorBody& body, const Status& s, const http::Context& ctx) {
  const http::Response plain = http::StatusResponse(s, ctx.request_id);
  const nlohmann::json parsed = nlohmann::json::parse(plain.body(), nullptr, false);
  std::string message = "the request failed";
  if (parsed.is_object() && parsed.contains("error") && parsed["error"].is_object()) {
    message = parsed["error"].value("message", message);
  }
  http::Response res = body(plain.result(), message);
  for (const auto field : {http::bhttp::field::retry_after, http::bhttp::field::www_authenticate}) {
    if (auto it = plain.find(field); it != plain.end()) res.set(field, it->value());
  }
  return res;
}

http::Response TooManyAs(const ErrorBody& body, std::chrono::seconds wait, std::string_view what) {
  const int64_t seconds = std::max<int64_t>(1, wait.count());
  http::Response res =
      body(http::bhttp::status::too_many_requests, fmt::format("too many {}; retry after {} seconds", what, seconds));
  res.set(http::bhttp::field::retry_after, std::to_string(seconds));
  return res;
}

}  // namespace backpack::api
