#include "daemon/peer_client.h"

#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <exception>
#include <utility>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <fmt/format.h>

#include "daemon/log.h"
#include "daemon/tls_client.h"
#include "federation/request_auth.h"
#include "protocol/encoding.h"

namespace backpack {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace ssl = boost::asio::ssl;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kAwait = net::as_tuple(net::use_awaitable);
constexpr std::string_view kUserAgent = "backpackd/" BACKPACK_VERSION;
constexpr size_t kMaxHeaderBytes = 64 * 1024;
constexpr int kMaxInterimResponses = 8;
constexpr std::chrono::milliseconds kLongestTimeout = std::chrono::minutes(10);

#define BP_CO_RETURN_IF_ERROR(expr)                   \
  do {                                                \
    ::backpack::Status bp_co_status_ = (expr);        \
    if (!bp_co_status_.ok()) co_return bp_co_status_; \
  } while (0)

std::string SystemRandom(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    log::Error("federation", "the system random generator failed");
    std::abort();
  }
  return out;
}

int64_t SystemNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct PeerClient::Impl {
  Impl(const config::FetchConfig& fetch_in, Identity identity_in, int lifetime, AddressPolicy policy_in,
       UnixClock clock_in, RandomBytes random_in)
      : fetch(fetch_in),
        identity(std::move(identity_in)),
        lifetime_seconds(std::max(1, lifetime)),
        policy(policy_in ? std::move(policy_in) : fetch::DefaultAddressPolicy(fetch_in.allow_private)),
        clock(clock_in ? std::move(clock_in) : UnixClock(SystemNow)),
        random(random_in ? std::move(random_in) : RandomBytes(SystemRandom)) {
    init = SetUpClientTls(tls, fetch.ca_file, "peer client");
  }

  const config::FetchConfig fetch;
  const Identity identity;
  const int64_t lifetime_seconds;
  const AddressPolicy policy;
  const UnixClock clock;
  const RandomBytes random;
  std::optional<ssl::context> tls;  // shared by all calls; never changed after construction
  Status init;
};

namespace {

using Request = bhttp::request<bhttp::string_body>;

// One Send: resolve, check, connect, exchange, all under one deadline on a
// private io_context driven by the calling thread.
class PeerExchange {
 public:
  PeerExchange(PeerClient::Impl& client, const fetch::Url& url, const Request& request, size_t max_bytes,
               Clock::time_point deadline)
      : client_(client), url_(url), request_(request), max_bytes_(max_bytes), deadline_(deadline) {}

  Result<PeerAnswer> Run() {
    Status status = Internal("peer client: the exchange did not finish");
    net::co_spawn(io_, Exchange(), [&status](std::exception_ptr error, Status result) {
      if (error) {
        try {
          std::rethrow_exception(error);
        } catch (const std::exception& e) {
          result = Internal(fmt::format("peer client: {}", e.what()));
        }
      }
      status = std::move(result);
    });
    io_.run();
    if (!status.ok()) return status;
    return std::move(answer_);
  }

 private:
  net::awaitable<Status> Exchange() {
    tcp::resolver resolver(io_);
    error_code ec;
    // Blocking on purpose, as in the Fetcher: getaddrinfo cannot be
    // interrupted either way.
    const tcp::resolver::results_type results =
        resolver.resolve(url_.host, std::to_string(url_.port), tcp::resolver::numeric_service, ec);
    if (Clock::now() >= deadline_) co_return TimedOut();
    if (ec) co_return Unavailable(fmt::format("peer client: cannot resolve {}: {}", url_.host, ec.message()));
    std::vector<tcp::endpoint> endpoints;
    for (const auto& entry : results) {
      BP_CO_RETURN_IF_ERROR(client_.policy(entry.endpoint().address(), url_.host));
      endpoints.push_back(entry.endpoint());
    }
    if (endpoints.empty()) co_return Unavailable(fmt::format("peer client: {} has no addresses", url_.host));

    beast::tcp_stream tcp_stream(io_);
    tcp_stream.expires_at(deadline_);
    auto [connect_error, endpoint] = co_await tcp_stream.async_connect(endpoints, kAwait);
    if (connect_error) co_return NetworkError("connecting to", connect_error);
    if (!url_.https) co_return co_await Talk(tcp_stream);

    beast::ssl_stream<beast::tcp_stream> tls_stream(std::move(tcp_stream), *client_.tls);
    std::string certificate_error;
    BP_CO_RETURN_IF_ERROR(SetUpClientTlsStream(tls_stream, url_.host, &certificate_error, "peer client"));
    beast::get_lowest_layer(tls_stream).expires_at(deadline_);
    auto [handshake_error] = co_await tls_stream.async_handshake(ssl::stream_base::client, kAwait);
    if (handshake_error) {
      if (!certificate_error.empty()) {
        co_return FailedPrecondition(
            fmt::format("peer client: TLS certificate of {} refused: {}", url_.Authority(), certificate_error));
      }
      co_return NetworkError("TLS handshake with", handshake_error);
    }
    co_return co_await Talk(tls_stream);
  }

  template <class Stream>
  net::awaitable<Status> Talk(Stream& stream) {
    beast::get_lowest_layer(stream).expires_at(deadline_);
    auto [write_error, written] = co_await bhttp::async_write(stream, request_, kAwait);
    if (write_error) co_return NetworkError("sending to", write_error);

    beast::flat_buffer buffer;
    std::optional<bhttp::response_parser<bhttp::string_body>> parser;
    for (int interim = 0;; ++interim) {
      parser.emplace();
      parser->header_limit(static_cast<uint32_t>(kMaxHeaderBytes));
      parser->body_limit(static_cast<uint64_t>(max_bytes_));
      auto [header_error, header_bytes] = co_await bhttp::async_read_header(stream, buffer, *parser, kAwait);
      if (header_error) co_return ReadError(header_error);
      const int status = parser->get().result_int();
      if (status >= 200) break;
      if (interim == kMaxInterimResponses) {
        co_return Unavailable(fmt::format("peer client: {} sent too many interim responses", url_.Authority()));
      }
    }
    auto [body_error, body_bytes] = co_await bhttp::async_read(stream, buffer, *parser, kAwait);
    if (body_error) co_return ReadError(body_error);
    auto response = parser->release();
    answer_.status = response.result_int();
    answer_.content_type = std::string(response[bhttp::field::content_type]);
    answer_.date = std::string(response[bhttp::field::date]);
    answer_.retry_after = std::string(response[bhttp::field::retry_after]);
    answer_.body = std::move(response.body());
    co_return Status::Ok();
  }

  Status ReadError(const error_code& ec) const {
    if (ec == bhttp::error::body_limit) {
      return ResourceExhausted(
          fmt::format("peer client: the answer from {} is larger than {} bytes", url_.Authority(), max_bytes_));
    }
    if (ec == bhttp::error::header_limit) {
      return ResourceExhausted(fmt::format("peer client: the answer headers from {} are larger than {} bytes",
                                           url_.Authority(), kMaxHeaderBytes));
    }
    return NetworkError("reading from", ec);
  }

  Status NetworkError(std::string_view action, const error_code& ec) const {
    if (ec == beast::error::timeout) return TimedOut();
    if (ec == net::error::eof || ec == ssl::error::stream_truncated || ec == bhttp::error::end_of_stream ||
        ec == bhttp::error::partial_message) {
      return Unavailable(fmt::format("peer client: {} closed the connection early", url_.Authority()));
    }
    return Unavailable(fmt::format("peer client: {} {} failed: {}", action, url_.Authority(), ec.message()));
  }

  Status TimedOut() const {
    return Unavailable(fmt::format("peer client: no complete answer from {} in time", url_.Authority()));
  }

  PeerClient::Impl& client_;
  const fetch::Url& url_;
  const Request& request_;
  const size_t max_bytes_;
  const Clock::time_point deadline_;
  net::io_context io_{1};
  PeerAnswer answer_;
};

}  // namespace

PeerClient::PeerClient(const config::FetchConfig& fetch, Identity identity, int signature_lifetime_seconds,
                       AddressPolicy policy, UnixClock clock, RandomBytes random)
    : impl_(std::make_unique<Impl>(fetch, std::move(identity), signature_lifetime_seconds, std::move(policy),
                                   std::move(clock), std::move(random))) {}

PeerClient::~PeerClient() = default;

const Status& PeerClient::init_status() const { return impl_->init; }
const std::string& PeerClient::node_name() const { return impl_->identity.node_name; }

Result<PeerAnswer> PeerClient::Send(const PeerCall& call) {
  Impl& d = *impl_;
  if (!d.init.ok()) return d.init;
  if (call.method != "GET" && call.method != "POST") {
    return InvalidArgument("peer client: only GET and POST are sent, not " + call.method.substr(0, 16));
  }
  auto url = fetch::ParseUrl(call.url);
  if (!url.ok()) return url.status();

  const int64_t now = d.clock();
  const std::string nonce = protocol::Base64UrlEncode(d.random(32));
  federation::OutboundRequest outbound{call.method, url->ToString(), url->Authority(),
                                       call.method == "POST" ? call.body : std::string()};
  auto signature = federation::SignOutboundRequest(outbound, d.identity.node_name, d.identity.key, now,
                                                   d.lifetime_seconds, nonce);
  if (!signature.ok()) return Internal("peer client: cannot sign the request: " + signature.status().message());

  Request request{call.method == "POST" ? bhttp::verb::post : bhttp::verb::get, url->target, 11};
  request.set(bhttp::field::host, url->Authority());
  request.set(bhttp::field::user_agent, kUserAgent);
  request.set(bhttp::field::accept, "application/json");
  request.set(bhttp::field::accept_encoding, "identity");
  request.set(bhttp::field::connection, "close");
  request.set("Content-Digest", signature->content_digest);
  request.set("Signature-Input", signature->signature_input);
  request.set("Signature", signature->signature);
  if (call.method == "POST") {
    request.set(bhttp::field::content_type, "application/json");
    request.body() = outbound.body;
  }
  request.prepare_payload();

  size_t max_bytes = std::min(kDefaultMaxResponseBytes, static_cast<size_t>(std::max(0, d.fetch.max_bytes)));
  if (call.max_response_bytes) {
    max_bytes = std::min(*call.max_response_bytes, static_cast<size_t>(std::max(0, d.fetch.max_bytes)));
  }
  std::chrono::milliseconds timeout(d.fetch.timeout_ms);
  if (call.timeout) timeout = std::min(*call.timeout, kLongestTimeout);
  const Clock::time_point start = Clock::now();

  Result<PeerAnswer> result = Internal("peer client: not run");
  try {
    PeerExchange exchange(d, *url, request, max_bytes, start + timeout);
    result = exchange.Run();
  } catch (const std::exception& e) {
    result = Internal(fmt::format("peer client: {}", e.what()));
  }
  if (log::Enabled(log::Level::kDebug)) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    log::Debug("federation", "signed request",
               {{"method", call.method},
                {"url", url->ToString()},
                {"status", result.ok() ? result->status : 0},
                {"error", result.ok() ? std::string() : result.status().ToString()},
                {"ms", static_cast<int64_t>(ms)}});
  }
  return result;
}

}  // namespace backpack
