#include "tests/support/local_http_server.h"

#include <chrono>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace backpack::testing {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;

constexpr auto kAwait = net::as_tuple(net::use_awaitable);
constexpr size_t kMaxRequestBodyBytes = 64 * 1024;
constexpr auto kIdleTimeout = std::chrono::seconds(30);
constexpr int kThreads = 2;

}  // namespace

struct LocalHttpServer::Impl {
  LocalHandler handler;
  std::string base_url;

  // Once started. Destroyed in reverse: threads, acceptor, io.
  std::unique_ptr<net::io_context> io;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::vector<std::thread> threads;

  net::awaitable<void> Accept() {
    for (;;) {
      auto [ec, socket] = co_await acceptor->async_accept(kAwait);
      if (ec == net::error::operation_aborted) co_return;
      if (ec) continue;  // e.g. too many open files: the next accept may work
      net::co_spawn(acceptor->get_executor(), Serve(std::move(socket)), net::detached);
    }
  }

  bhttp::response<bhttp::string_body> Answer(const bhttp::request<bhttp::string_body>& request) const {
    bhttp::response<bhttp::string_body> response;
    response.version(request.version());
    response.keep_alive(request.keep_alive());
    if (request.method() != bhttp::verb::get) {
      response.result(bhttp::status::method_not_allowed);
      response.set(bhttp::field::allow, "GET");
      return response;
    }
    LocalResponse a = handler(std::string(request.target()));
    response.result(a.status);
    if (!a.content_type.empty()) response.set(bhttp::field::content_type, a.content_type);
    for (const auto& [name, value] : a.headers) response.set(name, value);
    if (!a.etag.empty()) response.set(bhttp::field::etag, a.etag);
    if (!a.etag.empty() && request[bhttp::field::if_none_match] == a.etag) {
      response.result(bhttp::status::not_modified);
    } else {
      response.body() = std::move(a.body);
    }
    return response;
  }

  // One connection: requests in turn while the client keeps it alive. Each
  // connection is one coroutine with one operation in flight, so no strand
  // is needed.
  net::awaitable<void> Serve(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(kMaxRequestBodyBytes);
      stream.expires_after(kIdleTimeout);
      auto [read_error, read] = co_await bhttp::async_read(stream, buffer, parser, kAwait);
      if (read_error) break;
      bhttp::response<bhttp::string_body> response = Answer(parser.get());
      response.prepare_payload();
      auto [write_error, written] = co_await bhttp::async_write(stream, response, kAwait);
      if (write_error || !response.keep_alive()) break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }
};

LocalHttpServer::LocalHttpServer(LocalHandler handler) : impl_(std::make_unique<Impl>()) {
  impl_->handler = std::move(handler);
}

LocalHttpServer::~LocalHttpServer() { Stop(); }

bool LocalHttpServer::Start() {
  if (impl_->io) return false;
  auto io = std::make_unique<net::io_context>();
  auto acceptor = std::make_unique<tcp::acceptor>(*io);
  beast::error_code ec;
  const tcp::endpoint endpoint(net::ip::make_address_v4("127.0.0.1"), 0);
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec) return false;
  impl_->base_url = "http://127.0.0.1:" + std::to_string(acceptor->local_endpoint().port());
  impl_->io = std::move(io);
  impl_->acceptor = std::move(acceptor);
  net::co_spawn(*impl_->io, impl_->Accept(), net::detached);
  // Two threads: a slow client never holds up the others.
  for (int i = 0; i < kThreads; ++i) impl_->threads.emplace_back([io = impl_->io.get()] { io->run(); });
  return true;
}

void LocalHttpServer::Stop() {
  if (!impl_->io) return;
  impl_->io->stop();
  for (std::thread& t : impl_->threads) t.join();
  impl_->threads.clear();
  impl_->acceptor.reset();
  impl_->io.reset();
}

const std::string& LocalHttpServer::base_url() const { return impl_->base_url; }

}  // namespace backpack::testing
