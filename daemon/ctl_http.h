// backpackctl's HTTP/1.1 client: one request on a fresh connection, http or
// https, with a deadline on the whole exchange and a cap on the answer.
//
// https verifies the server's certificate chain against the system's trust
// store and its name against the URL's host. Redirects are not followed:
// the caller sees the 3xx. Blocking; runs its own io_context.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace backpack::ctl {

struct Url {
  bool tls = false;
  std::string host;       // without brackets for an IPv6 literal
  std::string port;       // explicit, or 80 / 443
  std::string authority;  // as written in the URL, for the Host header
  std::string target;     // path and query, at least "/"
};
// An absolute http(s) URL without user information or fragment; nullopt
// otherwise.
std::optional<Url> ParseUrl(std::string_view url);

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;  // Content-Type among them when there is a body
  std::string body;
  std::chrono::milliseconds timeout = std::chrono::seconds(30);  // for the whole exchange
  size_t max_body_bytes = 16 << 20;                              // of the answer
};

struct HttpResponse {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // lower-case names; a repeated field keeps its last value
  std::string body;
  std::string Header(const std::string& lower_case_name) const;
};

// Sends `request` and reads the answer. false, with `error` saying why, when
// no complete answer was read (bad URL, DNS, connection, TLS, deadline, an
// answer over max_body_bytes).
bool Send(const HttpRequest& request, HttpResponse* response, std::string* error);

}  // namespace backpack::ctl
