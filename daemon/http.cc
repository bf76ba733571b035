#include "daemon/http.h"

#include <nlohmann/json.hpp>

#include "daemon/log.h"

namespace backpack::http {

Response JsonResponse(bhttp::status status, std::string body) {
  Response res{status, 11};
  res.set(bhttp::field::content_type, "application/json");
  res.body() = std::move(body);
  return res;
}

Response ErrorResponse(bhttp::status status, std::string_view code, std::string_view message) {
  nlohmann::json body = {{"error", {{"code", code}, {"message", message}}}};
  return JsonResponse(status, body.dump());
}

Response StatusResponse(const Status& status, std::string_view request_id) {
  bhttp::status http_status = bhttp::status::internal_server_error;
  switch (status.code()) {
    case StatusCode::kOk: http_status = bhttp::status::ok; break;
    case StatusCode::kInvalidArgument: http_status = bhttp::status::bad_request; break;
    case StatusCode::kNotFound: http_status = bhttp::status::not_found; break;
    case StatusCode::kAlreadyExists: http_status = bhttp::status::conflict; break;
    case StatusCode::kFailedPrecondition: http_status = bhttp::status::conflict; break;
    case StatusCode::kAborted: http_status = bhttp::status::conflict; break;
    case StatusCode::kUnauthenticated: http_status = bhttp::status::unauthorized; break;
    case StatusCode::kPermissionDenied: http_status = bhttp::status::forbidden; break;
    case StatusCode::kResourceExhausted: http_status = bhttp::status::too_many_requests; break;
    case StatusCode::kUnavailable: http_status = bhttp::status::service_unavailable; break;
    case StatusCode::kDeadlineExceeded: http_status = bhttp::status::gateway_timeout; break;
    case StatusCode::kDataLoss:
    case StatusCode::kInternal: http_status = bhttp::status::internal_server_error; break;
  }
  const bool hide = status.code() == StatusCode::kInternal || status.code() == StatusCode::kDataLoss ||
                    status.code() == StatusCode::kUnavailable;
  if (hide) {
    log::Error("http", "request failed", {{"req", request_id}, {"error", status.ToString()}});
  }
  Response res = ErrorResponse(
      http_status, StatusCodeName(status.code()),
      hide ? "the server could not complete the request; try again later" : status.message());
  if (status.code() == StatusCode::kUnauthenticated) {
    res.set(bhttp::field::www_authenticate, "Bearer");
  }
  if (status.code() == StatusCode::kResourceExhausted || status.code() == StatusCode::kUnavailable) {
    res.set(bhttp::field::retry_after, "60");
  }
  return res;
}

namespace {
std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.emplace_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

bool PercentDecode(std::string_view in, bool plus_is_space, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      const int hi = HexValue(in[i + 1]);
      const int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out->push_back(' ');
    } else {
      out->push_back(c);
    }
  }
  return true;
}

std::string QueryParam(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    size_t eq = pair.find('=');
    std::string key;
    if (!PercentDecode(pair.substr(0, eq), true, &key) || key != name) continue;
    std::string value;
    if (eq != std::string_view::npos && PercentDecode(pair.substr(eq + 1), true, &value)) return value;
    return {};
  }
  return {};
}

void Router::Add(bhttp::verb method, std::string pattern, Exec exec, Handler handler,
                 FastHandler fast) {
  Route route{method, pattern, SplitPath(pattern), exec, std::move(handler), std::move(fast), nullptr};
  routes_.push_back(std::move(route));
}

void Router::AddDeferred(bhttp::verb method, std::string pattern, DeferredHandler handler) {
  Route route{method, pattern, SplitPath(pattern), Exec::kWorker, nullptr, nullptr, std::move(handler)};
  routes_.push_back(std::move(route));
}

const Router::Route* Router::Find(bhttp::verb method, std::string_view path,
                                  std::vector<std::string>* params, std::string* allowed) const {
  // Split without allocating: routes have few segments.
  constexpr size_t kMaxSegments = 16;
  std::string_view parts[kMaxSegments];
  size_t count = 0;
  for (size_t i = 0; i < path.size();) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (count == kMaxSegments) return nullptr;
    parts[count++] = path.substr(i, j - i);
    i = j;
  }
  allowed->clear();
  for (const Route& route : routes_) {
    if (route.segments.size() != count) continue;
    bool match = true;
    for (size_t i = 0; i < count && match; ++i) {
      const std::string& seg = route.segments[i];
      const bool placeholder = seg.size() > 2 && seg.front() == '{' && seg.back() == '}';
      if (!placeholder && seg != parts[i]) match = false;
    }
    if (!match) continue;
    std::vector<std::string> found;
    for (size_t i = 0; i < count && match; ++i) {
      const std::string& seg = route.segments[i];
      if (seg.size() > 2 && seg.front() == '{' && seg.back() == '}') {
        std::string decoded;
        if (!PercentDecode(parts[i], false, &decoded) || decoded.empty()) match = false;
        found.push_back(std::move(decoded));
      }
    }
    if (!match) continue;
    if (route.method == method) {
      *params = std::move(found);
      return &route;
    }
    if (!allowed->empty()) *allowed += ", ";
    *allowed += std::string(bhttp::to_string(route.method));
  }
  return nullptr;
}

}  // namespace backpack::http
