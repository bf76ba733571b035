// Test support: a small HTTP/1.1 server on 127.0.0.1 that answers every GET
// with a function of the test's own. It stands in for the web sites a node
// under test fetches from (issuers, their keys and lists), so tests reach
// them with the real Fetcher (fetch.allow_private) on an ephemeral port.
//
//   LocalHttpServer server([](const std::string& target) {
//     return LocalResponse{.content_type = "application/ld+json", .body = "{}"};
//   });
//   ASSERT_TRUE(server.Start());  // server.base_url(): http://127.0.0.1:PORT
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace backpack::testing {

struct LocalResponse {
  int status = 200;
  std::string content_type = {};  // no Content-Type header when empty
  std::string body = {};
  // When set, sent as the ETag header; a request whose If-None-Match equals
  // it is answered 304 Not Modified without the body.
  std::string etag = {};
  // Further header fields (Cache-Control, Location, Retry-After, ...), in order.
  std::vector<std::pair<std::string, std::string>> headers = {};
};

// Answers a GET for `target`, the request target as sent (path and query).
using LocalHandler = std::function<LocalResponse(const std::string& target)>;

class LocalHttpServer {
 public:
  // The handler answers every GET; other methods get 405. It is called from
  // the server's threads, possibly from two at once, so it must be
  // thread-safe, and what it refers to must outlive the server (or Stop()).
  explicit LocalHttpServer(LocalHandler handler);
  ~LocalHttpServer();  // Stop()
  LocalHttpServer(const LocalHttpServer&) = delete;
  LocalHttpServer& operator=(const LocalHttpServer&) = delete;

  // Listens on 127.0.0.1, an ephemeral port, and serves from two threads of
  // its own, HTTP/1.1 with keep-alive. False when it cannot bind or was
  // already started.
  bool Start();
  // Stops serving and joins the threads; open connections are dropped.
  // Does nothing when not started.
  void Stop();

  // http://127.0.0.1:PORT once started, "" before.
  const std::string& base_url() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace backpack::testing
