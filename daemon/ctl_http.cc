#include "daemon/ctl_http.h"

#include <openssl/ssl.h>

#include <cctype>
#include <exception>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

namespace backpack::ctl {

namespace net = boost::asio;
namespace ssl = net::ssl;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr auto kAwait = net::as_tuple(net::use_awaitable);

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Writes `req` and reads the answer into `out` on a connected stream.
template <class Stream>
net::awaitable<std::string> Exchange(Stream& stream, const bhttp::request<bhttp::string_body>& req, size_t max_body,
                                     HttpResponse* out) {
  auto [write_error, written] = co_await bhttp::async_write(stream, req, kAwait);
  if (write_error) co_return "sending the request failed: " + write_error.message();
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.header_limit(64 * 1024);
  parser.body_limit(max_body);
  auto [read_error, read] = co_await bhttp::async_read(stream, buffer, parser, kAwait);
  if (read_error == bhttp::error::body_limit) {
    co_return "the answer is larger than " + std::to_string(max_body) + " bytes";
  }
  if (read_error) co_return "reading the answer failed: " + read_error.message();
  auto res = parser.release();
  out->status = res.result_int();
  for (const auto& field : res) out->headers[Lower(field.name_string())] = std::string(field.value());
  out->body = std::move(res.body());
  co_return std::string();
}

net::awaitable<std::string> Run(const Url& url, const bhttp::request<bhttp::string_body>& req, size_t max_body,
                                HttpResponse* out) {
  auto executor = co_await net::this_coro::executor;
  tcp::resolver resolver(executor);
  auto [resolve_error, endpoints] = co_await resolver.async_resolve(url.host, url.port, kAwait);
  if (resolve_error) co_return "cannot resolve " + url.host + ": " + resolve_error.message();
  if (!url.tls) {
    beast::tcp_stream stream(executor);
    auto [connect_error, endpoint] = co_await stream.async_connect(endpoints, kAwait);
    if (connect_error) co_return "cannot connect to " + url.authority + ": " + connect_error.message();
    co_return co_await Exchange(stream, req, max_body, out);
  }
  ssl::context context(ssl::context::tls_client);
  context.set_default_verify_paths();
  context.set_verify_mode(ssl::verify_peer);
  context.set_options(ssl::context::no_sslv2 | ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                      ssl::context::no_tlsv1_1);
  beast::ssl_stream<beast::tcp_stream> stream(executor, context);
  stream.set_verify_callback(ssl::host_name_verification(url.host));
  boost::system::error_code not_ip;
  net::ip::make_address(url.host, not_ip);
  // SNI names a host, never an IP literal (RFC 6066 3).
  if (not_ip && !SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str())) {
    co_return "cannot set the TLS server name " + url.host;
  }
  auto [connect_error, endpoint] = co_await beast::get_lowest_layer(stream).async_connect(endpoints, kAwait);
  if (connect_error) co_return "cannot connect to " + url.authority + ": " + connect_error.message();
  auto [handshake_error] = co_await stream.async_handshake(ssl::stream_base::client, kAwait);
  if (handshake_error) co_return "TLS with " + url.authority + " failed: " + handshake_error.message();
  co_return co_await Exchange(stream, req, max_body, out);
}

}  // namespace

std::optional<Url> ParseUrl(std::string_view text) {
  Url url;
  const std::string lower = Lower(text.substr(0, 8));
  if (lower.rfind("https://", 0) == 0) {
    url.tls = true;
    text.remove_prefix(8);
  } else if (lower.rfind("http://", 0) == 0) {
    text.remove_prefix(7);
  } else {
    return std::nullopt;
  }
  if (text.find('#') != std::string_view::npos) return std::nullopt;
  for (char c : text) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return std::nullopt;
  }
  const size_t end = text.find_first_of("/?");
  url.authority = std::string(text.substr(0, end));
  if (url.authority.empty() || url.authority.find('@') != std::string::npos) return std::nullopt;
  const std::string_view rest = end == std::string_view::npos ? std::string_view() : text.substr(end);
  url.target = rest.empty() ? "/" : (rest.front() == '?' ? "/" + std::string(rest) : std::string(rest));
  std::string_view port;
  if (url.authority.front() == '[') {
    const size_t close = url.authority.find(']');
    if (close == std::string::npos) return std::nullopt;
    url.host = url.authority.substr(1, close - 1);
    std::string_view after = std::string_view(url.authority).substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::nullopt;
      port = after.substr(1);
    }
  } else {
    const size_t colon = url.authority.rfind(':');
    url.host = url.authority.substr(0, colon);
    if (colon != std::string::npos) port = std::string_view(url.authority).substr(colon + 1);
  }
  if (url.host.empty()) return std::nullopt;
  if (port.empty()) {
    url.port = url.tls ? "443" : "80";
  } else {
    unsigned n = 0;
    for (char c : port) {
      if (c < '0' || c > '9' || n > 65535) return std::nullopt;
      n = n * 10 + static_cast<unsigned>(c - '0');
    }
    if (n == 0 || n > 65535) return std::nullopt;
    url.port = std::string(port);
  }
  return url;
}

std::string HttpResponse::Header(const std::string& lower_case_name) const {
  auto it = headers.find(lower_case_name);
  return it == headers.end() ? std::string() : it->second;
}

bool Send(const HttpRequest& request, HttpResponse* response, std::string* error) {
  const auto url = ParseUrl(request.url);
  if (!url) {
    *error = "not an absolute http(s) URL: " + request.url;
    return false;
  }
  bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(request.method), url->target, 11};
  if (req.method() == bhttp::verb::unknown) {
    *error = "unknown method " + request.method;
    return false;
  }
  req.set(bhttp::field::host, url->authority);
  req.set(bhttp::field::user_agent, "backpackctl/" BACKPACK_VERSION);
  for (const auto& [name, value] : request.headers) req.set(name, value);
  req.body() = request.body;
  req.prepare_payload();

  *response = HttpResponse{};
  net::io_context ioc;
  bool done = false;
  std::string failure;
  net::co_spawn(ioc, Run(*url, req, request.max_body_bytes, response),
                [&](std::exception_ptr thrown, std::string result) {
                  done = true;
                  if (thrown) {
                    try {
                      std::rethrow_exception(thrown);
                    } catch (const std::exception& e) {
                      failure = e.what();
                    }
                  } else {
                    failure = std::move(result);
                  }
                });
  ioc.run_for(request.timeout);
  if (!done) {
    *error = "no answer from " + url->authority + " within " + std::to_string(request.timeout.count() / 1000) + " s";
    return false;
  }
  if (!failure.empty()) {
    *error = std::move(failure);
    return false;
  }
  return true;
}

}  // namespace backpack::ctl
