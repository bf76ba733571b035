#include "daemon/http_server.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <random>
#include <unordered_map>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <fmt/format.h>

#include "daemon/http.h"
#include "daemon/log.h"
#include "daemon/metrics.h"

namespace backpack {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace ssl = boost::asio::ssl;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// 60 random bits as 15 hex digits: unique enough to find a request in the
// logs, and short enough for std::string's inline storage (no allocation).
std::string NewRequestId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  uint64_t v = rng();
  std::string id(15, '0');
  for (int i = 14; i >= 0; --i, v >>= 4) id[static_cast<size_t>(i)] = kHex[v & 15];
  return id;
}

constexpr std::string_view kServerHeader = "backpackd/" BACKPACK_VERSION;

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  // Called from any thread when the server starts shutting down.
  virtual void OnShutdown() = 0;
};

}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(std::vector<net::io_context*> contexts_in, const config::ServerConfig& config_in,
       const http::Router& router_in, Metrics& metrics_in, net::thread_pool& workers_in)
      : contexts(std::move(contexts_in)), config(config_in), router(router_in), metrics(metrics_in),
        workers(workers_in), acceptor(*contexts.front()), retry_timer(*contexts.front()) {}

  // One io_context per I/O thread; a connection lives on one of them for
  // its whole life, so its handlers never run concurrently and no strand
  // or cross-thread wake-up is needed.
  std::vector<net::io_context*> contexts;
  size_t next_context = 0;  // acceptor's thread only
  const config::ServerConfig& config;
  const http::Router& router;
  Metrics& metrics;
  net::thread_pool& workers;
  tcp::acceptor acceptor;
  net::steady_timer retry_timer;  // backs off accept errors such as EMFILE
  std::optional<ssl::context> tls_context;

  std::atomic<bool> shutting_down{false};
  std::atomic<size_t> in_flight{0};
  std::atomic<size_t> worker_queue{0};
  std::atomic<uint64_t> next_connection_id{1};
  std::atomic<size_t> rejecting{0};  // connections being answered 503 at the cap

  std::mutex sessions_mu;
  std::unordered_map<uint64_t, std::weak_ptr<SessionBase>> sessions;

  void Accept();
  void OnAccept(beast::error_code ec, tcp::socket socket);
  void RejectConnection(tcp::socket& socket);
  void Register(uint64_t id, std::weak_ptr<SessionBase> session) {
    std::lock_guard lock(sessions_mu);
    sessions.emplace(id, std::move(session));
  }
  void Unregister(uint64_t id) {
    std::lock_guard lock(sessions_mu);
    sessions.erase(id);
  }
};

namespace {

// One connection. Stream is beast::tcp_stream or beast::ssl_stream<beast::tcp_stream>.
template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

  Session(std::shared_ptr<HttpServer::Impl> server, Stream stream, uint64_t id, std::string remote)
      : server_(std::move(server)), stream_(std::move(stream)), id_(id), remote_(std::move(remote)) {
    server_->metrics.ConnectionOpened();
  }
  ~Session() override {
    server_->Unregister(id_);
    server_->metrics.ConnectionClosed();
  }

  void Start() {
    server_->Register(id_, this->weak_from_this());
    if constexpr (kTls) {
      Lowest().expires_after(std::chrono::milliseconds(server_->config.read_timeout_ms));
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) {
                                  log::Debug("http", "tls handshake failed",
                                             {{"conn", self->id_}, {"error", ec.message()}});
                                  return self->Close();
                                }
                                self->WaitForRequest();
                              });
    } else {
      WaitForRequest();
    }
  }

  void OnShutdown() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] {
      // An idle connection is closed now; a busy one closes after its response.
      if (self->idle_) Lowest(self->stream_).cancel();
    });
  }

 private:
  static beast::tcp_stream& Lowest(Stream& s) { return beast::get_lowest_layer(s); }
  beast::tcp_stream& Lowest() { return Lowest(stream_); }

  // Waits up to idle_timeout for the first bytes of the next request.
  void WaitForRequest() {
    if (server_->shutting_down) return Close();
    if (buffer_.size() > 0) return ReadRequest();
    idle_ = true;
    Lowest().expires_after(std::chrono::milliseconds(server_->config.idle_timeout_ms));
    stream_.async_read_some(buffer_.prepare(4096), [self = this->shared_from_this()](
                                                       beast::error_code ec, size_t n) {
      self->idle_ = false;
      if (ec) return self->Close();
      self->buffer_.commit(n);
      self->ReadRequest();
    });
  }

  // The rest of the request must arrive within read_timeout. A request
  // that is already whole in the buffer (the usual keep-alive case) is
  // parsed in place, without another read operation or timer.
  void ReadRequest() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(server_->config.max_header_bytes));
    parser_->body_limit(static_cast<uint64_t>(server_->config.max_body_bytes));
    parser_->eager(true);
    while (buffer_.size() > 0 && !parser_->is_done()) {
      beast::error_code ec;
      const size_t used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec == bhttp::error::need_more) break;
      if (ec) return OnRead(ec);
      if (used == 0) break;
    }
    if (parser_->is_done()) return OnRead({});
    Lowest().expires_after(std::chrono::milliseconds(server_->config.read_timeout_ms));
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = this->shared_from_this()](beast::error_code ec, size_t) {
                        self->OnRead(ec);
                      });
  }

  void OnRead(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == net::error::eof) return Close();
    if (ec == beast::error::timeout) {
      log::Debug("http", "request read timed out", {{"conn", id_}});
      return Close();
    }
    if (ec) {
      request_id_ = NewRequestId();
      started_ = Clock::now();
      route_ = "invalid";
      method_ = "-";
      ++server_->in_flight;
      keep_alive_ = false;
      if (ec == bhttp::error::body_limit) {
        return Send(http::ErrorResponse(bhttp::status::payload_too_large, "payload_too_large",
                                        fmt::format("request body exceeds {} bytes",
                                                    server_->config.max_body_bytes)));
      }
      if (ec == bhttp::error::header_limit) {
        return Send(http::ErrorResponse(bhttp::status::request_header_fields_too_large,
                                        "headers_too_large", "request headers are too large"));
      }
      if (&ec.category() == &bhttp::make_error_code(bhttp::error::body_limit).category()) {
        return Send(http::ErrorResponse(bhttp::status::bad_request, "bad_request",
                                        "malformed HTTP request"));
      }
      --server_->in_flight;
      return Close();
    }
    Lowest().expires_never();
    request_.emplace(parser_->release());
    parser_.reset();
    Dispatch();
  }

  void Dispatch() {
    const http::Request& req = *request_;
    request_id_ = NewRequestId();
    started_ = Clock::now();
    method_ = bhttp::to_string(req.method());  // static text, also for unknown verbs
    keep_alive_ = req.keep_alive();
    ++server_->in_flight;

    const std::string_view target(req.target().data(), req.target().size());
    const size_t q = target.find('?');
    context_.emplace(http::Context{req, target.substr(0, q),
                                   q == std::string_view::npos ? std::string_view{} : target.substr(q + 1),
                                   {}, request_id_, remote_});
    std::string allowed;
    const http::Router::Route* route =
        server_->router.Find(req.method(), context_->path, &context_->params, &allowed);
    if (route == nullptr) {
      route_ = allowed.empty() ? "unmatched" : "method_not_allowed";
      if (allowed.empty()) {
        return Send(http::ErrorResponse(bhttp::status::not_found, "not_found", "no such endpoint"));
      }
      http::Response res = http::ErrorResponse(bhttp::status::method_not_allowed, "method_not_allowed",
                                               "method not allowed on this endpoint");
      res.set(bhttp::field::allow, allowed);
      return Send(std::move(res));
    }
    route_ = route->pattern;
    if (route->exec == http::Exec::kInline) return Send(Run(*route, *context_));
    if (route->fast) {
      std::optional<http::Response> answer;
      try {
        answer = route->fast(*context_);
      } catch (const std::exception& e) {
        answer = http::StatusResponse(Internal(fmt::format("handler threw: {}", e.what())), request_id_);
      }
      if (answer) return Send(std::move(*answer));
    }

    if (server_->worker_queue.load() >= static_cast<size_t>(server_->config.max_pending_requests)) {
      server_->metrics.RequestRejected();
      http::Response res = http::ErrorResponse(bhttp::status::service_unavailable, "overloaded",
                                               "the node is overloaded; retry shortly");
      res.set(bhttp::field::retry_after, "1");
      return Send(std::move(res));
    }
    ++server_->worker_queue;
    if (route->deferred) {
      net::post(server_->workers, [self = this->shared_from_this(), route] {
        auto answered = std::make_shared<std::atomic<bool>>(false);
        http::Responder respond = [self, answered](http::Response res) {
          if (answered->exchange(true)) return;
          net::post(self->stream_.get_executor(),
                    [self, res = std::move(res)]() mutable { self->Send(std::move(res)); });
        };
        try {
          route->deferred(*self->context_, respond);
        } catch (const std::exception& e) {
          respond(http::StatusResponse(Internal(fmt::format("handler threw: {}", e.what())), self->request_id_));
        }
        --self->server_->worker_queue;
      });
      return;
    }
    net::post(server_->workers, [self = this->shared_from_this(), route] {
      http::Response res = Run(*route, *self->context_);
      --self->server_->worker_queue;
      net::post(self->stream_.get_executor(),
                [self, res = std::move(res)]() mutable { self->Send(std::move(res)); });
    });
  }

  static http::Response Run(const http::Router::Route& route, http::Context& ctx) {
    try {
      return route.handler(ctx);
    } catch (const std::exception& e) {
      return http::StatusResponse(Internal(fmt::format("handler threw: {}", e.what())), ctx.request_id);
    }
  }

  void Send(http::Response res) {
    if (server_->shutting_down) keep_alive_ = false;
    res.version(11);
    res.set(bhttp::field::server, kServerHeader);
    res.set("X-Request-Id", request_id_);
    if (res.find(bhttp::field::cache_control) == res.end()) res.set(bhttp::field::cache_control, "no-store");
    res.set("X-Content-Type-Options", "nosniff");
    res.keep_alive(keep_alive_);
    res.prepare_payload();
    status_ = res.result_int();
    const double seconds = std::chrono::duration<double>(Clock::now() - started_).count();
    server_->metrics.RecordRequest(route_, method_, status_, seconds);
    if (log::Enabled(log::Level::kInfo)) {
      // The route pattern, not the path: paths can carry email addresses,
      // which do not belong in logs. Unmatched paths are logged to debug 404s.
      const bool matched = context_ && route_ != "unmatched" && route_ != "method_not_allowed";
      log::Info("http", "request",
                {{"req", request_id_}, {"conn", id_}, {"method", method_},
                 {"route", route_},
                 {"path", matched || !context_ ? std::string_view("-") : context_->path.substr(0, 200)},
                 {"status", status_}, {"ms", seconds * 1000.0}});
    }
    response_.emplace(std::move(res));
    Lowest().expires_after(std::chrono::milliseconds(server_->config.write_timeout_ms));
    bhttp::async_write(stream_, *response_,
                       [self = this->shared_from_this()](beast::error_code ec, size_t) {
                         self->OnWrite(ec);
                       });
  }

  void OnWrite(beast::error_code ec) {
    --server_->in_flight;
    response_.reset();
    context_.reset();
    request_.reset();
    if (ec || !keep_alive_ || server_->shutting_down) return Close();
    WaitForRequest();
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    if constexpr (kTls) {
      Lowest().expires_after(std::chrono::seconds(2));
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) {
        beast::error_code ignored;
        self->Lowest().socket().close(ignored);
      });
    } else {
      beast::error_code ignored;
      Lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
      Lowest().socket().close(ignored);
    }
  }

  std::shared_ptr<HttpServer::Impl> server_;
  Stream stream_;
  const uint64_t id_;
  const std::string remote_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::optional<http::Request> request_;
  std::optional<http::Context> context_;
  std::optional<http::Response> response_;  // alive until its write completes
  std::string request_id_;
  // Views of static text or of router-owned patterns: metrics keep them.
  std::string_view route_;
  std::string_view method_;
  unsigned status_ = 0;
  Clock::time_point started_;
  bool keep_alive_ = false;
  bool idle_ = false;
  bool closed_ = false;
};

}  // namespace

void HttpServer::Impl::Accept() {
  net::io_context& home = *contexts[next_context++ % contexts.size()];
  acceptor.async_accept(home,
                        [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
                          self->OnAccept(ec, std::move(socket));
                        });
}

void HttpServer::Impl::RejectConnection(tcp::socket& socket) {
  // Answer 503 and close gracefully: send, half-close, then drain what the
  // client still sends for a short while (closing with unread data would
  // reset the connection and the client might never see the answer). The
  // number of connections being turned away is itself capped; beyond it
  // they are closed at once.
  static const std::string kBusy = [] {
    const std::string body =
        R"({"error":{"code":"too_many_connections","message":"connection limit reached"}})";
    return fmt::format(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
        "Connection: close\r\nContent-Length: {}\r\n\r\n{}",
        body.size(), body);
  }();
  constexpr size_t kMaxRejecting = 64;
  beast::error_code ignored;
  if (rejecting.load() >= kMaxRejecting) {
    socket.close(ignored);
    return;
  }
  ++rejecting;
  struct Drain : std::enable_shared_from_this<Drain> {
    Drain(tcp::socket s, std::atomic<size_t>& count) : stream(std::move(s)), counter(count) {}
    ~Drain() { --counter; }
    void Start() {
      stream.expires_after(std::chrono::seconds(1));
      net::async_write(stream, net::buffer(kBusy), [self = shared_from_this()](beast::error_code ec, size_t) {
        if (ec) return;
        beast::error_code ignored_ec;
        self->stream.socket().shutdown(tcp::socket::shutdown_send, ignored_ec);
        self->Read();
      });
    }
    void Read() {
      stream.async_read_some(net::buffer(sink), [self = shared_from_this()](beast::error_code ec, size_t) {
        if (!ec) self->Read();
      });
    }
    beast::tcp_stream stream;
    std::atomic<size_t>& counter;
    char sink[1024];
  };
  std::make_shared<Drain>(std::move(socket), rejecting)->Start();
}

void HttpServer::Impl::OnAccept(beast::error_code ec, tcp::socket socket) {
  if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
  if (ec) {
    log::Warn("http", "accept failed; backing off", {{"error", ec.message()}});
    retry_timer.expires_after(std::chrono::milliseconds(100));
    retry_timer.async_wait([self = shared_from_this()](beast::error_code wait_ec) {
      if (!wait_ec && !self->shutting_down) self->Accept();
    });
    return;
  }
  if (metrics.open_connections() >= config.max_connections) {
    metrics.ConnectionRejected();
    RejectConnection(socket);
    return Accept();
  }
  beast::error_code ep_ec;
  const auto endpoint = socket.remote_endpoint(ep_ec);
  std::string remote = ep_ec ? std::string("unknown") : endpoint.address().to_string();
  const uint64_t id = next_connection_id++;
  if (tls_context) {
    auto session = std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(
        shared_from_this(), beast::ssl_stream<beast::tcp_stream>(std::move(socket), *tls_context), id,
        std::move(remote));
    session->Start();
  } else {
    auto session = std::make_shared<Session<beast::tcp_stream>>(
        shared_from_this(), beast::tcp_stream(std::move(socket)), id, std::move(remote));
    session->Start();
  }
  Accept();
}

HttpServer::HttpServer(std::vector<net::io_context*> contexts, const config::ServerConfig& config,
                       const http::Router& router, Metrics& metrics, net::thread_pool& workers)
    : impl_(std::make_shared<Impl>(std::move(contexts), config, router, metrics, workers)) {}

HttpServer::~HttpServer() = default;

Status HttpServer::Listen() {
  const config::ServerConfig& cfg = impl_->config;
  if (!cfg.tls_cert_file.empty()) {
    impl_->tls_context.emplace(ssl::context::tls_server);
    auto& ctx = *impl_->tls_context;
    beast::error_code ec;
    ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                        ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                        ssl::context::single_dh_use,
                    ec);
    ctx.use_certificate_chain_file(cfg.tls_cert_file, ec);
    if (ec) return InvalidArgument(fmt::format("server.tls_cert_file '{}': {}", cfg.tls_cert_file, ec.message()));
    ctx.use_private_key_file(cfg.tls_key_file, ssl::context::pem, ec);
    if (ec) return InvalidArgument(fmt::format("server.tls_key_file '{}': {}", cfg.tls_key_file, ec.message()));
  }
  auto hp = config::ParseHostPort(cfg.listen);
  if (!hp.ok()) return hp.status();
  beast::error_code ec;
  const auto address = net::ip::make_address(hp->host == "localhost" ? "127.0.0.1" : hp->host, ec);
  if (ec) return InvalidArgument(fmt::format("server.listen: '{}' is not an IP address", hp->host));
  const tcp::endpoint endpoint(address, hp->port);
  auto& acc = impl_->acceptor;
  acc.open(endpoint.protocol(), ec);
  if (!ec) acc.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(endpoint, ec);
  if (!ec) acc.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return Unavailable(fmt::format("cannot listen on {}: {}", cfg.listen, ec.message()));
  return Status::Ok();
}

std::string HttpServer::LocalAddress() const {
  beast::error_code ec;
  const auto ep = impl_->acceptor.local_endpoint(ec);
  if (ec) return {};
  if (ep.address().is_v6()) return fmt::format("[{}]:{}", ep.address().to_string(), ep.port());
  return fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

bool HttpServer::tls() const { return impl_->tls_context.has_value(); }

void HttpServer::Start() {
  net::post(impl_->acceptor.get_executor(), [impl = impl_] { impl->Accept(); });
}

void HttpServer::BeginShutdown() {
  if (impl_->shutting_down.exchange(true)) return;
  net::post(impl_->acceptor.get_executor(), [impl = impl_] {
    beast::error_code ignored;
    impl->acceptor.close(ignored);
    impl->retry_timer.cancel();
  });
  std::vector<std::shared_ptr<SessionBase>> live;
  {
    std::lock_guard lock(impl_->sessions_mu);
    for (auto& [id, weak] : impl_->sessions) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
  }
  for (auto& s : live) s->OnShutdown();
}

size_t HttpServer::InFlight() const { return impl_->in_flight.load(); }
size_t HttpServer::OpenConnections() const {
  return static_cast<size_t>(std::max<int64_t>(0, impl_->metrics.open_connections()));
}
size_t HttpServer::WorkerQueueDepth() const { return impl_->worker_queue.load(); }

}  // namespace backpack
