// The node's HTTP/1.1 server (Boost.Beast), plain or TLS.
//
// Threading: one io_context per I/O thread; each connection is assigned to
// one of them (round robin) and all its handlers run on that thread.
// Handlers marked Exec::kWorker run on the worker pool and post their
// response back to the connection's thread. One request is handled at
// a time per connection (no pipelined concurrency), so a connection holds at
// most one response in memory.
//
// Limits, all from config::ServerConfig: connection cap (excess connections
// get a 503 and are closed), header and body caps (431/413), a deadline for
// a whole request to arrive once its first byte has, an idle limit between
// keep-alive requests, a write deadline, and a cap on requests queued for
// workers (503 + Retry-After beyond it).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "config/config.h"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace backpack {
class Metrics;
namespace http {
class Router;
}

class HttpServer {
 public:
  // Listens on contexts[0]; connections are spread over all of them.
  HttpServer(std::vector<boost::asio::io_context*> contexts, const config::ServerConfig& config,
             const http::Router& router, Metrics& metrics, boost::asio::thread_pool& workers);
  ~HttpServer();

  // Loads TLS material when configured, binds and listens.
  Status Listen();
  // "HOST:PORT" actually bound (port 0 resolved).
  std::string LocalAddress() const;
  bool tls() const;
  // Starts accepting; returns at once.
  void Start();
  // Stops accepting, closes idle connections and makes busy ones close after
  // their current response. Thread-safe.
  void BeginShutdown();
  // Requests read but not yet answered, and open connections.
  size_t InFlight() const;
  size_t OpenConnections() const;
  // Requests handed to the worker pool and not yet finished.
  size_t WorkerQueueDepth() const;

  struct Impl;  // opaque; public so connection objects in the .cc can name it

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace backpack
