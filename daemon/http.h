// HTTP vocabulary of the daemon: request and response types, the context a
// handler receives, the router, and the one mapping from Status to an HTTP
// error response.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>

#include "base/status.h"

namespace backpack::http {

namespace bhttp = boost::beast::http;
using Request = bhttp::request<bhttp::string_body>;
using Response = bhttp::response<bhttp::string_body>;

struct Context {
  const Request& request;
  std::string_view path;            // target without the query
  std::string_view query;           // after '?', undecoded
  std::vector<std::string> params;  // decoded {placeholders} of the route, in order
  std::string request_id;
  std::string remote_address;       // peer IP, without port
};

// {"error":{"code":code,"message":message}}
Response ErrorResponse(bhttp::status status, std::string_view code, std::string_view message);
// Maps a non-OK Status to its HTTP status and JSON error body. Internal and
// data-loss errors answer a generic message; the detail goes to the log only.
Response StatusResponse(const Status& status, std::string_view request_id);
Response JsonResponse(bhttp::status status, std::string body);

// Where a handler runs: on the connection's I/O strand (only for handlers
// that touch neither storage nor heavy CPU) or on the worker pool.
enum class Exec { kInline, kWorker };

using Handler = std::function<Response(Context&)>;
// Sends the answer of a deferred request. Call it once, from any thread;
// later calls do nothing.
using Responder = std::function<void(Response)>;
// A handler that may answer later, e.g. a long poll. It runs on the worker
// pool like a kWorker handler and must call `respond` exactly once, before
// or after it returns; the Context is valid until then (copy what a later
// answer needs). Between its return and the answer the request holds no
// thread, only its connection; the connection reads nothing more until the
// answer is written, and the server's shutdown waits for it like for any
// request in flight, so a deferred handler must answer promptly when the
// node stops.
using DeferredHandler = std::function<void(Context&, Responder respond)>;
// Tried on the I/O strand before a kWorker handler: answers from memory
// without blocking, or returns nullopt to fall through to the worker.
using FastHandler = std::function<std::optional<Response>(Context&)>;

class Router {
 public:
  struct Route {
    bhttp::verb method;
    std::string pattern;  // e.g. "/api/v1/account/emails/{address}"; also the metrics label
    std::vector<std::string> segments;
    Exec exec;
    Handler handler;
    FastHandler fast;          // optional
    DeferredHandler deferred;  // set instead of `handler` by AddDeferred
  };

  void Add(bhttp::verb method, std::string pattern, Exec exec, Handler handler,
           FastHandler fast = nullptr);
  // A route whose handler answers through a Responder (see DeferredHandler).
  void AddDeferred(bhttp::verb method, std::string pattern, DeferredHandler handler);

  // Finds the route for (method, path), filling `params`. When no route
  // matches, `allowed` lists the methods that would match the path (empty
  // means 404, non-empty means 405).
  const Route* Find(bhttp::verb method, std::string_view path, std::vector<std::string>* params,
                    std::string* allowed) const;

 private:
  std::vector<Route> routes_;
};

// Percent-decoding of a path segment or query value; nullopt-like false on
// malformed escapes. '+' is decoded to space only when `plus_is_space`.
bool PercentDecode(std::string_view in, bool plus_is_space, std::string* out);

// The decoded value of `name` in a query string, or empty.
std::string QueryParam(std::string_view query, std::string_view name);

}  // namespace backpack::http
