// The federation endpoints of a node and the machinery behind them: the
// node's keys, signed requests in and out, the peer table, the background
// handshakes, and the operator's /_admin/v1/peers API
// (docs/federation.md, "Identities", "Signed requests between nodes",
// "Peering").
//
//   GET  /_federation/v1/keys                 public: the keys document
//   POST /_federation/v1/peer                 signed: handshake (peering)
//   GET  /_admin/v1/peers                     operator: list
//   POST /_admin/v1/peers                     operator: add {"url": base URL}
//   POST /_admin/v1/peers/{name}/approve      operator
//   POST /_admin/v1/peers/{name}/block        operator
//   POST /_admin/v1/peers/{name}/unblock      operator
//
// Signed endpoints answer a refused signature with
// {"error": {"code": <fault name>, "message": ...}} and the status of the
// fault table in federation/request_auth.h (400, 401, 403 "blocked",
// 503 + Retry-After); "future" and "stale" answers carry Date.
//
// Other signed endpoints (replication) are registered with SignedByPeer
// below, which lets through only requests signed by an active peer.
//
// Threads: every handler but the keys document runs on the worker pool;
// handshakes block a worker for up to fetch.timeout_ms.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "base/status.h"
#include "config/config.h"
#include "daemon/http.h"
#include "federation/node_description.h"
#include "federation/peers.h"
#include "federation/request_auth.h"

namespace backpack {

class Fetcher;
class PeerClient;
namespace storage {
class Store;
}

class FederationService {
 public:
  using UnixClock = std::function<int64_t()>;
  using RandomBytes = std::function<std::string(size_t)>;
  // Runs a task on the worker pool.
  using Post = std::function<void(std::function<void()>)>;

  // `public_url`: our base URL without a trailing '/'. `description`: the
  // node's self-description without the federation part, which this service
  // fills in and keeps current.
  FederationService(const config::Config& config, std::string public_url, federation::NodeDescription description,
                    storage::Store& store, Fetcher& fetcher, UnixClock clock, RandomBytes random, Post post);
  ~FederationService();
  FederationService(const FederationService&) = delete;
  FederationService& operator=(const FederationService&) = delete;

  // Start-up, before the routes serve: works out the node name, loads (or
  // creates) the node keys, applies federation.peers and federation.blocked
  // to the peer table (handshakes with the configured peers become due at
  // once; they run in the background, never holding up the start), and
  // writes a fresh operator token to <data_dir>/admin-token.
  Status Start();
  void RegisterRoutes(http::Router& router);

  const std::string& node_name() const;
  federation::PeerTable& peers();
  PeerClient& client();
  federation::RequestVerifier& verifier();

  // /.well-known/backpack-node, with the active peers; safe from any thread.
  // It follows every change this service makes to the peer table, and is
  // rebuilt at least once a minute (RunDueHandshakes) for changes made by
  // others; RefreshNodeDocument rebuilds it at once (blocking: reads storage).
  std::string NodeDocument() const;
  void RefreshNodeDocument();

  // Verifies a request as signed by an active peer: the verified request,
  // or the response to send (the fault answers above; 403 "blocked" for a
  // blocked node, 403 "not-active" for any other node that is not an
  // active peer). Blocking: call it on a worker.
  std::variant<federation::VerifiedRequest, http::Response> AuthenticatePeer(const http::Context& ctx);

  // Starts (on the worker pool) every handshake that is due and not already
  // running. Returns how long until the next one is due, 1..60 s.
  std::chrono::seconds RunDueHandshakes();
  // One handshake with `peer`, blocking; the record as it stands afterwards.
  Result<federation::PeerRecord> Handshake(const federation::PeerRecord& peer);

  struct Impl;  // opaque; public so helpers in the .cc can name it

 private:
  std::unique_ptr<Impl> impl_;
};

// Wraps fn(http::Context&, const federation::VerifiedRequest&) so that it
// runs only for a request signed by an active peer (AuthenticatePeer).
// Register it with http::Exec::kWorker.
template <class Fn>
http::Handler SignedByPeer(FederationService& federation, Fn fn) {
  return [&federation, fn = std::move(fn)](http::Context& ctx) -> http::Response {
    auto verified = federation.AuthenticatePeer(ctx);
    if (auto* response = std::get_if<http::Response>(&verified)) return std::move(*response);
    return fn(ctx, std::get<federation::VerifiedRequest>(verified));
  };
}

}  // namespace backpack
