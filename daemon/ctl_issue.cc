#include "daemon/ctl_issue.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string_view>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "daemon/ctl_http.h"
#include "protocol/encoding.h"

namespace backpack::ctl {

const char kIssueUsage[] =
    "       backpackctl issue register --node URL --state FILE [--client-name NAME] [--redirect-port PORT]\n"
    "                                  [--scope \"SCOPE ...\"]\n"
    "       backpackctl issue authorize --state FILE [--port PORT] [--timeout SECONDS]\n"
    "       backpackctl issue push --state FILE CREDENTIAL_FILE\n"
    "       backpackctl issue push-assertion --state FILE ASSERTION_FILE\n";

namespace {

using nlohmann::json;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;

constexpr auto kAwait = net::as_tuple(net::use_awaitable);

constexpr char kOb3Path[] = "/ims/ob/v3p0";
constexpr char kScopeUpsert[] = "https://purl.imsglobal.org/spec/ob/v3p0/scope/credential.upsert";
constexpr char kScopeAssertionCreate[] = "https://purl.imsglobal.org/spec/ob/v2p1/scope/assertion.create";
constexpr int kDefaultRedirectPort = 8976;
constexpr size_t kMaxFileBytes = 4 << 20;

enum Exit { kDone = 0, kFailed = 1, kUsage = 2, kNotAuthorized = 3 };

int Usage() {
  std::fprintf(stderr, "usage:\n%s", kIssueUsage);
  return kUsage;
}

template <class... Args>
int Fail(fmt::format_string<Args...> format, Args&&... args) {
  std::fprintf(stderr, "backpackctl issue: %s\n", fmt::format(format, std::forward<Args>(args)...).c_str());
  return kFailed;
}

int64_t Now() { return static_cast<int64_t>(std::time(nullptr)); }

// --- Encodings ------------------------------------------------------------------------

// `n` random bytes, base64url: PKCE verifiers and state values.
std::optional<std::string> RandomToken(size_t n) {
  std::string bytes(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(n)) != 1) return std::nullopt;
  return protocol::Base64UrlEncode(bytes);
}

std::string S256(std::string_view verifier) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(verifier.data()), verifier.size(), digest);
  return protocol::Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

std::string Form(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out;
  for (const auto& [k, v] : fields) out += (out.empty() ? "" : "&") + protocol::PercentEncode(k) + "=" + protocol::PercentEncode(v);
  return out;
}

// The decoded parameters of a query string ('+' is a space); a malformed
// escape leaves the parameter out.
std::map<std::string, std::string> ParseQuery(std::string_view query) {
  auto decode = [](std::string_view in, std::string* out) {
    for (size_t i = 0; i < in.size(); ++i) {
      if (in[i] == '+') {
        out->push_back(' ');
      } else if (in[i] == '%') {
        if (i + 2 >= in.size() || !std::isxdigit(static_cast<unsigned char>(in[i + 1])) ||
            !std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
          return false;
        }
        out->push_back(static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16)));
        i += 2;
      } else {
        out->push_back(in[i]);
      }
    }
    return true;
  };
  std::map<std::string, std::string> out;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    std::string key, value;
    if (!decode(pair.substr(0, eq), &key)) continue;
    if (eq != std::string_view::npos && !decode(pair.substr(eq + 1), &value)) continue;
    out.emplace(std::move(key), std::move(value));
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

// --- Files -------------------------------------------------------------------------------

std::optional<std::string> ReadFile(const std::string& path, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = fmt::format("cannot read {}: {}", path, std::strerror(errno));
    return std::nullopt;
  }
  std::string data;
  char buffer[65536];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    data.append(buffer, static_cast<size_t>(in.gcount()));
    if (data.size() > kMaxFileBytes) {
      *error = fmt::format("{} is larger than {} bytes", path, kMaxFileBytes);
      return std::nullopt;
    }
  }
  return data;
}

// The state: the node's endpoints, the client and its tokens. A JSON object.
std::optional<json> LoadState(const std::string& path, std::string* error) {
  struct stat st{};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    std::fprintf(stderr, "backpackctl issue: warning: %s is readable by others; it holds secrets (chmod 600)\n",
                 path.c_str());
  }
  auto text = ReadFile(path, error);
  if (!text) return std::nullopt;
  json state = json::parse(*text, nullptr, false);
  if (!state.is_object() || !state.contains("client_id")) {
    *error = fmt::format("{} is not a state file written by 'backpackctl issue register'", path);
    return std::nullopt;
  }
  return state;
}

// Replaces `path` atomically with the state, mode 0600.
bool SaveState(const std::string& path, const json& state, std::string* error) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    *error = fmt::format("cannot write {}: {}", tmp, std::strerror(errno));
    return false;
  }
  const std::string text = state.dump(2) + "\n";
  size_t written = 0;
  bool ok = ::fchmod(fd, 0600) == 0;
  while (ok && written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) written += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    *error = fmt::format("cannot write {}: {}", path, std::strerror(ok ? errno : saved));
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The member at `path` of nested objects, or null.
json Member(const json& j, std::initializer_list<const char*> path) {
  const json* at = &j;
  for (const char* key : path) {
    if (!at->is_object()) return nullptr;
    auto it = at->find(key);
    if (it == at->end()) return nullptr;
    at = &*it;
  }
  return *at;
}

// --- HTTP ----------------------------------------------------------------------------------

// `response` for a request, or the error.
bool Call(HttpRequest request, HttpResponse* response, std::string* error) {
  request.headers.emplace_back("Accept", "application/json");
  return Send(request, response, error);
}

bool GetJson(const std::string& url, json* out, unsigned* status, std::string* error) {
  HttpResponse r;
  if (!Call({"GET", url, {}, {}}, &r, error)) return false;
  *status = r.status;
  *out = json::parse(r.body, nullptr, false);
  return true;
}

// "description" of an error answer: an OAuth error, an Imsx_StatusInfo or a
// Badge Connect envelope; the raw body (cut) otherwise.
std::string Describe(const HttpResponse& r) {
  const json j = json::parse(r.body, nullptr, false);
  if (j.is_object()) {
    if (j.contains("imsx_description") && j["imsx_description"].is_string()) return j["imsx_description"];
    if (j.contains("error_description") && j["error_description"].is_string()) {
      return Str(j, "error") + ": " + j["error_description"].get<std::string>();
    }
    if (j.contains("error") && j["error"].is_string()) return j["error"];
    if (j.contains("status") && j["status"].is_object() && j["status"].contains("error") &&
        j["status"]["error"].is_string()) {
      return j["status"]["error"];
    }
    if (j.contains("error") && j["error"].is_object()) return Str(j["error"], "message");
  }
  return r.body.substr(0, 500);
}

// The token endpoint (for a refresh, the discovery document's refreshUrl),
// authenticated as the client registered.
bool TokenRequest(const json& state, std::vector<std::pair<std::string, std::string>> fields, HttpResponse* r,
                  std::string* error) {
  const bool refresh = !fields.empty() && fields[0].first == "grant_type" && fields[0].second == "refresh_token";
  const std::string url = refresh && !Str(state, "refresh_url").empty() ? Str(state, "refresh_url")
                                                                        : Str(state, "token_url");
  HttpRequest request{"POST", url, {{"Content-Type", "application/x-www-form-urlencoded"}}, {}};
  const std::string method = Str(state, "token_endpoint_auth_method");
  const std::string id = Str(state, "client_id");
  const std::string secret = Str(state, "client_secret");
  if (method == "client_secret_post") {
    fields.emplace_back("client_id", id);
    fields.emplace_back("client_secret", secret);
  } else if (method == "none" || secret.empty()) {
    fields.emplace_back("client_id", id);
  } else {
    request.headers.emplace_back("Authorization", "Basic " + protocol::Base64Encode(protocol::PercentEncode(id) + ":" + protocol::PercentEncode(secret)));
  }
  request.body = Form(fields);
  return Call(std::move(request), r, error);
}

// Takes the tokens of a token endpoint answer into the state.
bool TakeTokens(const HttpResponse& r, json* state, std::string* error) {
  const json j = json::parse(r.body, nullptr, false);
  if (r.status != 200 || !j.is_object() || !j.contains("access_token") || !j["access_token"].is_string()) {
    *error = fmt::format("the token endpoint answered {}: {}", r.status, Describe(r));
    return false;
  }
  (*state)["access_token"] = j["access_token"];
  // A refresh answer without a new refresh token leaves the old one usable.
  if (j.contains("refresh_token") && j["refresh_token"].is_string()) (*state)["refresh_token"] = j["refresh_token"];
  const int64_t expires_in =
      j.contains("expires_in") && j["expires_in"].is_number_integer() ? j["expires_in"].get<int64_t>() : 0;
  (*state)["expires_at"] = expires_in > 0 ? Now() + expires_in : 0;
  if (j.contains("scope") && j["scope"].is_string()) (*state)["granted_scope"] = j["scope"];
  return true;
}

enum class Refreshed { kYes, kNoRefreshToken, kRefused, kError };

// Uses the refresh token once; saves the state. kRefused (the grant was
// revoked, or the token expired) clears the tokens.
Refreshed Refresh(const std::string& path, json* state, std::string* error) {
  const std::string refresh_token = Str(*state, "refresh_token");
  if (refresh_token.empty()) return Refreshed::kNoRefreshToken;
  HttpResponse r;
  if (!TokenRequest(*state, {{"grant_type", "refresh_token"}, {"refresh_token", refresh_token}}, &r, error)) {
    return Refreshed::kError;
  }
  if (r.status == 400 || r.status == 401) {
    *error = fmt::format("the node refused the refresh token ({})", Describe(r));
    state->erase("access_token");
    state->erase("refresh_token");
    std::string ignored;
    if (!SaveState(path, *state, &ignored)) std::fprintf(stderr, "backpackctl issue: %s\n", ignored.c_str());
    return Refreshed::kRefused;
  }
  if (!TakeTokens(r, state, error)) return Refreshed::kError;
  return SaveState(path, *state, error) ? Refreshed::kYes : Refreshed::kError;
}

// --- Options ---------------------------------------------------------------------------------

struct Options {
  std::map<std::string, std::string> values;  // --name value
  std::vector<std::string> positional;
};

std::optional<Options> ParseOptions(const std::vector<std::string>& args, size_t from,
                                    std::initializer_list<const char*> known) {
  Options o;
  for (size_t i = from; i < args.size(); ++i) {
    if (args[i].rfind("--", 0) != 0) {
      o.positional.push_back(args[i]);
      continue;
    }
    const std::string name = args[i].substr(2);
    bool ok = false;
    for (const char* k : known) ok = ok || name == k;
    if (!ok || i + 1 >= args.size()) return std::nullopt;
    o.values[name] = args[++i];
  }
  return o;
}

std::string Opt(const Options& o, const std::string& name, std::string fallback = {}) {
  auto it = o.values.find(name);
  return it == o.values.end() ? fallback : it->second;
}

std::optional<int> ParsePort(const std::string& text) {
  if (text.empty() || text.size() > 5 || text.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  const int n = std::stoi(text);
  return n <= 65535 ? std::optional<int>(n) : std::nullopt;
}

// --- register --------------------------------------------------------------------------------

int Register(const Options& o) {
  std::string node = Opt(o, "node");
  const std::string path = Opt(o, "state");
  if (node.empty() || path.empty() || !o.positional.empty()) return Usage();
  while (!node.empty() && node.back() == '/') node.pop_back();
  const auto node_url = ParseUrl(node);
  if (!node_url) return Fail("--node must be an http(s) URL: {}", node);
  const auto port = ParsePort(Opt(o, "redirect-port", std::to_string(kDefaultRedirectPort)));
  if (!port || *port == 0) return Fail("--redirect-port must be a port number from 1 to 65535");
  if (::access(path.c_str(), F_OK) == 0) {
    return Fail("{} exists; give another --state file (it would replace the client registered there)", path);
  }

  std::string error;
  json sdd;
  unsigned status = 0;
  const std::string discovery_url = node + kOb3Path + "/discovery";
  if (!GetJson(discovery_url, &sdd, &status, &error)) return Fail("{}: {}", discovery_url, error);
  if (status != 200 || !sdd.is_object()) {
    return Fail("{}: answered {}, not a Service Description Document", discovery_url, status);
  }
  const json scheme = Member(sdd, {"components", "securitySchemes", "OAuth2ACG"});
  const json flow = Member(scheme, {"flows", "authorizationCode"});
  if (!scheme.is_object() || !flow.is_object()) {
    return Fail("{}: no OAuth 2.0 authorization code flow (components.securitySchemes.OAuth2ACG)", discovery_url);
  }
  json state = {{"node", node},
                {"api_base", node + kOb3Path},
                {"registration_url", Str(scheme, "x-imssf-registrationUrl")},
                {"authorization_url", Str(flow, "authorizationUrl")},
                {"token_url", Str(flow, "tokenUrl")},
                {"refresh_url", Str(flow, "refreshUrl")}};
  if (sdd.contains("servers") && sdd["servers"].is_array() && !sdd["servers"].empty() &&
      !Str(sdd["servers"][0], "url").empty()) {
    state["api_base"] = Str(sdd["servers"][0], "url");
  }
  for (const char* key : {"api_base", "registration_url", "authorization_url", "token_url"}) {
    const auto url = ParseUrl(Str(state, key));
    if (!url) return Fail("{}: {} is not an absolute http(s) URL: '{}'", discovery_url, key, Str(state, key));
    // No downgrade: a node reached over https keeps every endpoint on https.
    if (node_url->tls && !url->tls) return Fail("{}: {} is not https: {}", discovery_url, key, Str(state, key));
  }
  if (Str(state, "refresh_url").empty()) state["refresh_url"] = state["token_url"];
  const auto refresh_url = ParseUrl(Str(state, "refresh_url"));
  if (!refresh_url || (node_url->tls && !refresh_url->tls)) {
    return Fail("{}: refresh_url is not an absolute {} URL: '{}'", discovery_url, node_url->tls ? "https" : "http(s)",
                Str(state, "refresh_url"));
  }

  // The Badge Connect API, when the same authorization server offers it.
  json manifest;
  if (GetJson(node + "/.well-known/badgeconnect.json", &manifest, &status, &error) && status == 200 &&
      manifest.is_object() && manifest.contains("badgeConnectAPI") && manifest["badgeConnectAPI"].is_array() &&
      !manifest["badgeConnectAPI"].empty()) {
    const json& bc = manifest["badgeConnectAPI"][0];
    const auto base = ParseUrl(Str(bc, "apiBase"));
    if (base && (base->tls || !node_url->tls) && Str(bc, "registrationUrl") == Str(state, "registration_url")) {
      state["badge_connect_api_base"] = Str(bc, "apiBase");
    }
  }
  // The issuer the authorization response names (RFC 9207), when published.
  json metadata;
  if (GetJson(node + "/.well-known/oauth-authorization-server", &metadata, &status, &error) && status == 200 &&
      metadata.is_object() && !Str(metadata, "issuer").empty()) {
    state["issuer"] = Str(metadata, "issuer");
  }

  std::string scope = Opt(o, "scope");
  if (scope.empty()) {
    scope = kScopeUpsert;
    if (state.contains("badge_connect_api_base")) scope += std::string(" ") + kScopeAssertionCreate;
  }
  const std::string redirect_uri = fmt::format("http://127.0.0.1:{}/callback", *port);
  const json metadata_request = {{"client_name", Opt(o, "client-name", "backpackctl issuer")},
                                 {"redirect_uris", {redirect_uri}},
                                 {"grant_types", {"authorization_code", "refresh_token"}},
                                 {"response_types", {"code"}},
                                 {"token_endpoint_auth_method", "client_secret_basic"},
                                 {"scope", scope},
                                 {"software_id", "backpackctl"},
                                 {"software_version", BACKPACK_VERSION}};
  HttpResponse r;
  if (!Call({"POST", Str(state, "registration_url"), {{"Content-Type", "application/json"}}, metadata_request.dump()},
            &r, &error)) {
    return Fail("registration at {}: {}", Str(state, "registration_url"), error);
  }
  const json client = json::parse(r.body, nullptr, false);
  if (r.status != 201 || !client.is_object() || Str(client, "client_id").empty()) {
    return Fail("registration at {} answered {}: {}", Str(state, "registration_url"), r.status, Describe(r));
  }
  state["client_id"] = client["client_id"];
  state["client_secret"] = Str(client, "client_secret");
  state["token_endpoint_auth_method"] = client.contains("token_endpoint_auth_method")
                                            ? Str(client, "token_endpoint_auth_method")
                                            : std::string("client_secret_basic");
  state["redirect_uri"] = redirect_uri;
  state["scope"] = client.contains("scope") && client["scope"].is_string() ? client["scope"].get<std::string>() : scope;
  if (!SaveState(path, state, &error)) return Fail("{}", error);
  std::printf("registered client %s at %s\n", Str(state, "client_id").c_str(), node.c_str());
  std::printf("OB 3.0 API: %s\n", Str(state, "api_base").c_str());
  if (state.contains("badge_connect_api_base")) {
    std::printf("Badge Connect API: %s\n", Str(state, "badge_connect_api_base").c_str());
  }
  std::printf("state: %s (next: backpackctl issue authorize --state %s)\n", path.c_str(), path.c_str());
  return kDone;
}

// --- authorize -------------------------------------------------------------------------------

// What the browser brought to the loopback redirect URI.
struct Callback {
  bool done = false;
  std::string failure;  // the listener failed
  std::map<std::string, std::string> params;
  std::optional<beast::tcp_stream> stream;  // the browser's connection, answered after the exchange
};

net::awaitable<void> Reply(beast::tcp_stream& stream, bhttp::status status, std::string text) {
  bhttp::response<bhttp::string_body> res{status, 11};
  res.set(bhttp::field::content_type, "text/plain; charset=utf-8");
  res.set(bhttp::field::cache_control, "no-store");
  res.set(bhttp::field::connection, "close");
  res.body() = std::move(text);
  res.prepare_payload();
  stream.expires_after(std::chrono::seconds(5));
  auto [ignored_error, ignored_bytes] = co_await bhttp::async_write(stream, res, kAwait);
  (void)ignored_error;  // the browser went away: nothing to tell it
  (void)ignored_bytes;
}

// Serves the loopback listener until a request to /callback carries the
// expected state. Other requests (a favicon, a stale tab) are answered and
// the wait goes on.
net::awaitable<void> Listen(tcp::acceptor& acceptor, const std::string& expected_state, Callback* out) {
  while (true) {
    auto [accept_error, socket] = co_await acceptor.async_accept(kAwait);
    if (accept_error) {
      out->failure = "the loopback listener failed: " + accept_error.message();
      out->done = true;
      co_return;
    }
    beast::tcp_stream stream(std::move(socket));
    stream.expires_after(std::chrono::seconds(10));
    beast::flat_buffer buffer;
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(16 * 1024);
    parser.body_limit(4096);
    auto [read_error, read] = co_await bhttp::async_read(stream, buffer, parser, kAwait);
    if (read_error) continue;
    const auto& req = parser.get();
    const std::string_view target = req.target();
    const size_t q = target.find('?');
    if (req.method() != bhttp::verb::get || target.substr(0, q) != "/callback") {
      co_await Reply(stream, bhttp::status::not_found, "not found\n");
      continue;
    }
    auto params = ParseQuery(q == std::string_view::npos ? std::string_view() : target.substr(q + 1));
    if (params["state"] != expected_state) {
      co_await Reply(stream, bhttp::status::bad_request,
                     "This answer does not belong to the authorization backpackctl is waiting for.\n");
      continue;
    }
    out->params = std::move(params);
    out->stream.emplace(std::move(stream));
    out->done = true;
    co_return;
  }
}

int Authorize(const Options& o) {
  const std::string path = Opt(o, "state");
  if (path.empty() || !o.positional.empty()) return Usage();
  std::string error;
  auto state = LoadState(path, &error);
  if (!state) return Fail("{}", error);
  const auto registered = ParseUrl(Str(*state, "redirect_uri"));
  if (!registered) return Fail("{} names no redirect URI", path);
  const auto port = ParsePort(Opt(o, "port", registered->port));
  if (!port) return Fail("--port must be a port number (0: any free port)");
  const std::string timeout_text = Opt(o, "timeout", "300");
  const auto timeout = ParsePort(timeout_text);  // 1..65535 seconds
  if (!timeout || *timeout == 0) return Fail("--timeout must be a number of seconds from 1 to 65535");

  const auto verifier = RandomToken(32);
  const auto expected_state = RandomToken(16);
  if (!verifier || !expected_state) return Fail("no random bytes from the system");

  net::io_context ioc;
  tcp::acceptor acceptor(ioc);
  boost::system::error_code ec;
  const tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(*port));
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return Fail("cannot listen on 127.0.0.1:{}: {}", *port, ec.message());
  // A loopback IP literal redirect URI may name any port (RFC 8252 7.3).
  const std::string redirect_uri = fmt::format("http://127.0.0.1:{}/callback", acceptor.local_endpoint().port());

  const std::string authorization_url =
      Str(*state, "authorization_url") +
      (Str(*state, "authorization_url").find('?') == std::string::npos ? "?" : "&") +
      Form({{"response_type", "code"},
            {"client_id", Str(*state, "client_id")},
            {"redirect_uri", redirect_uri},
            {"scope", Str(*state, "scope")},
            {"state", *expected_state},
            {"code_challenge", S256(*verifier)},
            {"code_challenge_method", "S256"}});
  std::printf("Open this address in a browser, sign in to the backpack and approve:\n%s\n", authorization_url.c_str());
  std::printf("Waiting up to %d s for the browser at %s ...\n", *timeout, redirect_uri.c_str());
  std::fflush(stdout);

  Callback callback;
  net::co_spawn(ioc, Listen(acceptor, *expected_state, &callback), [&callback](std::exception_ptr thrown) {
    if (thrown && !callback.done) {
      callback.failure = "the loopback listener failed";
      callback.done = true;
    }
  });
  ioc.run_for(std::chrono::seconds(*timeout));
  if (!callback.done) return Fail("no answer from the browser within {} s", *timeout);
  if (!callback.failure.empty()) return Fail("{}", callback.failure);
  acceptor.close(ec);

  // The browser's answer: an error, or a code to exchange.
  auto answer = [&](bhttp::status status, std::string text) {
    ioc.restart();
    net::co_spawn(ioc, Reply(*callback.stream, status, std::move(text)), net::detached);
    ioc.run_for(std::chrono::seconds(5));
  };
  auto& params = callback.params;
  const std::string issuer = Str(*state, "issuer");
  if (!issuer.empty() && params.contains("iss") && params["iss"] != issuer) {
    answer(bhttp::status::bad_request, "The answer came from another authorization server; nothing was done.\n");
    return Fail("the authorization response names the issuer {}, not {} (RFC 9207)", params["iss"], issuer);
  }
  if (params.contains("error")) {
    answer(bhttp::status::ok, "The authorization was not granted. You can close this window.\n");
    return Fail("not authorized: {}{}", params["error"],
                params["error_description"].empty() ? "" : ": " + params["error_description"]);
  }
  if (params["code"].empty()) {
    answer(bhttp::status::bad_request, "The answer carries no code.\n");
    return Fail("the browser's answer carries no code");
  }
  HttpResponse r;
  bool ok = TokenRequest(*state,
                         {{"grant_type", "authorization_code"},
                          {"code", params["code"]},
                          {"redirect_uri", redirect_uri},
                          {"code_verifier", *verifier}},
                         &r, &error) &&
            TakeTokens(r, &*state, &error) && SaveState(path, *state, &error);
  if (!ok) {
    answer(bhttp::status::ok, "backpackctl could not complete the authorization; see its output.\n");
    return Fail("{}", error);
  }
  answer(bhttp::status::ok, "backpackctl is authorized. You can close this window.\n");
  std::printf("authorized: %s\n", Str(*state, "granted_scope").empty() ? Str(*state, "scope").c_str()
                                                                       : Str(*state, "granted_scope").c_str());
  std::printf("tokens saved in %s\n", path.c_str());
  return kDone;
}

// --- push ------------------------------------------------------------------------------------

// POSTs `body` to `url` with the access token; refreshes the token (before,
// when it has expired; after a 401, once) and saves the state.
int PostWithToken(const std::string& path, json* state, const std::string& url, const std::string& content_type,
                  const std::string& body, HttpResponse* r) {
  std::string error;
  if (Str(*state, "access_token").empty() && Str(*state, "refresh_token").empty()) {
    std::fprintf(stderr, "backpackctl issue: not authorized: run 'backpackctl issue authorize --state %s'\n",
                 path.c_str());
    return kNotAuthorized;
  }
  const int64_t expires_at = state->value("expires_at", int64_t{0});
  bool refreshed = false;
  if (Str(*state, "access_token").empty() || (expires_at > 0 && expires_at <= Now() + 30)) {
    const Refreshed result = Refresh(path, state, &error);
    if (result == Refreshed::kError) return Fail("refreshing the access token: {}", error);
    refreshed = result == Refreshed::kYes;
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    HttpRequest request{"POST", url, {{"Content-Type", content_type}}, body};
    request.headers.emplace_back("Authorization", "Bearer " + Str(*state, "access_token"));
    // Verification fetches the issuer's documents; give it time.
    request.timeout = std::chrono::seconds(120);
    if (!Call(std::move(request), r, &error)) return Fail("{}: {}", url, error);
    if (r->status != 401 || refreshed) break;
    const Refreshed result = Refresh(path, state, &error);
    if (result == Refreshed::kError) return Fail("refreshing the access token: {}", error);
    if (result != Refreshed::kYes) {
      if (result == Refreshed::kRefused) std::fprintf(stderr, "backpackctl issue: %s\n", error.c_str());
      break;
    }
    refreshed = true;
  }
  if (r->status == 401 || r->status == 403) {
    std::fprintf(stderr, "backpackctl issue: not authorized (HTTP %u): %s\n", r->status, Describe(*r).c_str());
    std::fprintf(stderr, "backpackctl issue: the earner may have removed this client; run 'backpackctl issue "
                         "authorize --state %s'\n",
                 path.c_str());
    return kNotAuthorized;
  }
  return kDone;
}

int OtherOutcome(const HttpResponse& r) {
  if (r.status == 429) {
    std::printf("rate limited (HTTP 429): retry after %s seconds\n", r.Header("retry-after").c_str());
  } else {
    std::printf("failed (HTTP %u): %s\n", r.status, Describe(r).c_str());
  }
  return kFailed;
}

int Push(const Options& o) {
  const std::string path = Opt(o, "state");
  if (path.empty() || o.positional.size() != 1) return Usage();
  std::string error;
  auto state = LoadState(path, &error);
  if (!state) return Fail("{}", error);
  auto data = ReadFile(o.positional[0], &error);
  if (!data) return Fail("{}", error);
  const std::string_view trimmed = Trim(*data);
  std::string content_type, body;
  if (!trimmed.empty() && trimmed.front() == '{') {
    if (!json::accept(trimmed)) return Fail("{} is not valid JSON", o.positional[0]);
    content_type = "application/json";
    body = *data;  // the issuer's bytes, as signed
  } else if (protocol::LooksLikeCompactJws(trimmed)) {
    content_type = "text/plain";
    body = std::string(trimmed);
  } else {
    return Fail("{} is neither credential JSON nor a VC-JWT (compact JWS)", o.positional[0]);
  }
  HttpResponse r;
  const int sent = PostWithToken(path, &*state, Str(*state, "api_base") + "/credentials", content_type, body, &r);
  if (sent != kDone) return sent;
  switch (r.status) {
    case 201:
      std::printf("created: the credential is in the backpack, pending until the earner accepts it\n");
      return kDone;
    case 200:
      std::printf("replaced: a newer credential took the place of the one the backpack held\n");
      return kDone;
    case 304:
      std::printf("unchanged: the backpack already holds this credential (or a newer one)\n");
      return kDone;
    case 400:
    case 409: {
      std::printf("refused (HTTP %u): %s\n", r.status, Describe(r).c_str());
      const json j = json::parse(r.body, nullptr, false);
      if (!j.is_discarded()) std::printf("%s\n", j.dump(2).c_str());
      return kFailed;
    }
    default:
      return OtherOutcome(r);
  }
}

int PushAssertion(const Options& o) {
  const std::string path = Opt(o, "state");
  if (path.empty() || o.positional.size() != 1) return Usage();
  std::string error;
  auto state = LoadState(path, &error);
  if (!state) return Fail("{}", error);
  const std::string api_base = Str(*state, "badge_connect_api_base");
  if (api_base.empty()) return Fail("the node offered no Badge Connect API when this client was registered");
  auto data = ReadFile(o.positional[0], &error);
  if (!data) return Fail("{}", error);
  const std::string trimmed(Trim(*data));
  std::string body;
  if (!trimmed.empty() && trimmed.front() == '{') {
    const json j = json::parse(trimmed, nullptr, false);
    if (!j.is_object()) return Fail("{} is not a JSON object", o.positional[0]);
    body = "{\"assertion\":" + trimmed + "}";  // the issuer's bytes, not a re-serialisation
  } else if (protocol::LooksLikeCompactJws(trimmed)) {
    body = json{{"signedAssertion", trimmed}}.dump();
  } else if (ParseUrl(trimmed)) {
    body = json{{"assertion", {{"id", trimmed}}}}.dump();
  } else {
    return Fail("{} is neither assertion JSON, a compact JWS nor the URL of a hosted assertion", o.positional[0]);
  }
  HttpResponse r;
  const int sent = PostWithToken(path, &*state, api_base + "/assertions", "application/json", body, &r);
  if (sent != kDone) return sent;
  if (r.status == 200) {
    std::printf("accepted: the badge is in the backpack, pending until the earner accepts it (or it was there "
                "already)\n");
    return kDone;
  }
  if (r.status == 400) {
    std::printf("refused (HTTP 400): %s\n", Describe(r).c_str());
    return kFailed;
  }
  return OtherOutcome(r);
}

}  // namespace

int Issue(const std::vector<std::string>& args) {
  if (args.empty()) return Usage();
  const std::string& command = args[0];
  std::optional<Options> options;
  if (command == "register") {
    options = ParseOptions(args, 1, {"node", "state", "client-name", "redirect-port", "scope"});
    return options ? Register(*options) : Usage();
  }
  if (command == "authorize") {
    options = ParseOptions(args, 1, {"state", "port", "timeout"});
    return options ? Authorize(*options) : Usage();
  }
  if (command == "push") {
    options = ParseOptions(args, 1, {"state"});
    return options ? Push(*options) : Usage();
  }
  if (command == "push-assertion") {
    options = ParseOptions(args, 1, {"state"});
    return options ? PushAssertion(*options) : Usage();
  }
  return Usage();
}

}  // namespace backpack::ctl
