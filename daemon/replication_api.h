// Replication in the running node (docs/federation.md, "Replication"): the
// source side of the change feed, and the Replicator (federation/
// replication.h) wired to signed HTTP, timers and the peer table.
//
//   GET  /_federation/v1/changes?since=N&after=D&limit=L&bytes=B&wait=S
//        signed by an active peer: a page of our change log (200), 410
//        cursor_invalid, 400 for a malformed query. With nothing new the
//        answer waits up to min(wait, federation.long_poll_seconds) for a
//        commit, holding no thread meanwhile (a deferred route answered
//        from RecordStore::OnCommit or a timer); one waiting poll per peer,
//        a newer one answers the older at once.
//   POST /_federation/v1/poke
//        signed by an active peer, an empty JSON object: it has news, we
//        pull it. 202; 429 + Retry-After beyond federation.pokes_per_minute
//        per peer. However many arrive, one pull per peer is in flight.
//
// What each peer receives: home, directory and mirrors records and every
// tombstone go to every active peer; badge records only to the peers the
// account's current mirrors record names.
//
// Pulls and pokes go out from a pool of kExchangeThreads threads of their
// own (PeerClient blocks its thread), so a slow or silent peer never holds
// a request worker; at most kExchangeThreads - 4 pulls long-poll at once
// (the rest ask without waiting and rely on pokes). The peer table is read
// every second to start pullers for new active peers and stop those of
// peers no longer active or suspended. Failures count in the peer record
// (failures, last_error), so breaker_failures consecutive ones suspend the
// peer; a 401/403 also schedules a handshake; a success makes it active.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "config/config.h"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace backpack {

class FederationService;
namespace federation {
class RecordStore;
}
namespace http {
class Router;
}

class ReplicationService {
 public:
  static constexpr size_t kExchangeThreads = 16;

  // `ioc` runs the timers; `workers` (the request worker pool) computes the
  // pages of long polls answered after a commit.
  ReplicationService(const config::Config& config, FederationService& federation, federation::RecordStore& records,
                     boost::asio::io_context& ioc, boost::asio::thread_pool& workers);
  ~ReplicationService();  // Stop() and Join()
  ReplicationService(const ReplicationService&) = delete;
  ReplicationService& operator=(const ReplicationService&) = delete;

  void RegisterRoutes(http::Router& router);
  // Starts the pullers and the pokes after local commits.
  void Start();
  // No pull or poke starts after this; the long polls waiting on us are
  // answered now (empty pages). Thread-safe.
  void Stop();
  // Waits for the exchanges in flight: a long poll we sent may take up to
  // federation.long_poll_seconds to come back.
  void Join();

  // Prometheus text: per-peer replication counters and positions.
  std::string RenderMetrics() const;

  struct Impl;  // opaque; public so helpers in the .cc can name it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace backpack
