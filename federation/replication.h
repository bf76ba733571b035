// Replication between peers (docs/federation.md, "Replication"): the wire
// format of the change feed, and the Replicator, the state machine that
// pulls every peer's change log into the RecordStore and pokes peers after
// local commits.
//
// The Replicator is pure logic. It reaches the network only through a
// ReplicationTransport, time only through a ReplicationScheduler, and reports
// what happens through ReplicationEvents; the daemon plugs in signed HTTP,
// asio timers and the peer table, the tests a fake transport and a simulated
// clock. Randomness (the backoff jitter) comes from a seeded generator, so a
// run is reproducible.
//
// Per peer it keeps one puller:
//
//   waiting --timer or poke--> pulling --page applied----> waiting (0 s when
//      ^                          |                          there is more,
//      |                          |                          else long poll again)
//      |                          +--cursor_invalid / new log id--> reset cursor,
//      |                          |                                 pull from 1
//      +----backoff with jitter---+--transport error, 4xx/5xx, page refused
//
// At most one pull per peer is in flight, whatever pokes arrive. A failure
// waits retry_min * 2^(failures - 1) (at most retry_max), drawn uniformly
// from the upper half of that span but never under retry_min; from
// breaker_failures consecutive failures on the peer counts as suspended and
// is retried every retry_max (jittered). One success resets the count.
//
// Pokes out: after a local commit every peer that is not suspended is
// poked, at most one poke in flight per peer, commits during a poke
// coalesced into one more, no closer than 60 / pokes_per_minute seconds
// apart, failures backed off like pulls. A peer whose long poll is already
// waiting on us (ReplicationOptions::peer_is_waiting) needs no poke.
//
// Thread-safe. Pulls call RecordStore (blocking storage) from the threads
// that run scheduler tasks and transport completions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "federation/records.h"

namespace backpack::federation {

inline constexpr std::string_view kChangesPath = "/_federation/v1/changes";
inline constexpr std::string_view kPokePath = "/_federation/v1/poke";

// ---- Wire format ------------------------------------------------------------

// GET /_federation/v1/changes?since=N&after=DIGEST&limit=L&bytes=B&wait=S
struct ChangesQuery {
  uint64_t since = 1;          // the first entry wanted
  std::string after;           // digest of entry since - 1 ("" when since is 1)
  size_t limit = 500;          // records at most
  size_t max_bytes = 4 << 20;  // record bytes at most (but at least one record)
  int wait_seconds = 0;        // long poll: how long the source may wait for news
};

// The request target (path and query) for `query`.
std::string ChangesTarget(const ChangesQuery& query);

// The body of a 200 answer: {"log", "records": [envelopes as JSON values],
// "next", "digest", "more"}. The envelopes are our own change log entries,
// embedded as they are.
std::string EncodeChangePage(const ChangePage& page);

// Reads a 200 answer to `query` from an untrusted peer. InvalidArgument,
// naming the problem, for anything but a well-formed page that answers it:
// nesting deeper than 64, members missing or of the wrong type, more
// records than asked, a record that is not an object, `next` before
// `since`, records without progress, `more` without progress, a digest
// that is not SHA-256 hex (or, without progress, not `after`).
Result<ChangePage> DecodeChangePage(std::string_view body, const ChangesQuery& query);

// The backoff before retry number `failures` (1 for the first retry):
// base = retry_min * 2^(failures - 1), at most retry_max, and retry_max
// from `breaker_failures` on; the result is base - u * base / 2 for `u` in
// [0, 1), never under retry_min. Milliseconds.
int64_t BackoffMs(int failures, int retry_min_seconds, int retry_max_seconds, int breaker_failures, double u);

// ---- What the Replicator plugs into ------------------------------------------

struct PeerAddress {
  std::string name;      // node name: what the peer's home records say
  std::string base_url;  // where it answers, without a trailing '/'
};

struct PullResult {
  enum class Outcome {
    kPage,           // `page` holds a well-formed answer (DecodeChangePage)
    kCursorInvalid,  // 410 cursor_invalid: start again from 1
    kNotAccepted,    // 401 or 403: the peer refuses our requests
    kFailed,         // transport failure, 429, 5xx, any other answer, an unusable page
  };
  Outcome outcome = Outcome::kFailed;
  ChangePage page;
  std::string error;           // what went wrong, for logs and the peer record
  int64_t retry_after_ms = 0;  // the peer asked us to wait this long (Retry-After)
};

struct PokeResult {
  Status status;               // OK: the peer took it (2xx)
  int64_t retry_after_ms = 0;  // the peer asked us to wait this long (Retry-After)
};

class ReplicationTransport {
 public:
  virtual ~ReplicationTransport() = default;
  // GET the changes `query` asks for from `peer`. Calls `done` exactly
  // once, from any thread, possibly before returning.
  virtual void Pull(const PeerAddress& peer, const ChangesQuery& query, std::function<void(PullResult)> done) = 0;
  // POST an empty poke to `peer`; `done` as for Pull.
  virtual void Poke(const PeerAddress& peer, std::function<void(PokeResult)> done) = 0;
};

class ReplicationScheduler {
 public:
  virtual ~ReplicationScheduler() = default;
  // A monotonic clock, milliseconds.
  virtual int64_t NowMs() = 0;
  // Runs `task` once `delay_ms` (>= 0) has passed; never from within this
  // call. Tasks may run on any thread, several at once.
  virtual void RunAfter(int64_t delay_ms, std::function<void()> task) = 0;
};

struct PullFailure {
  enum class Kind {
    kTransport,    // the exchange failed or the answer was an error or unusable
    kRefusedPage,  // the page came but RecordStore::Apply refused it
    kNotAccepted,  // the peer answered 401/403
    kLocal,        // our own storage failed; not the peer's fault
  };
  Kind kind = Kind::kTransport;
  std::string error;
  int failures = 0;  // consecutive, this one included
  int64_t retry_in_ms = 0;
  bool suspended = false;  // failures reached breaker_failures
};

// Callbacks from the threads that run the Replicator; they must not call
// back into it. Every method has a default that does nothing.
class ReplicationEvents {
 public:
  virtual ~ReplicationEvents() = default;
  // A page with progress was applied (and the cursor stored with it).
  virtual void PageApplied(const std::string& peer, const ChangePage& page, const ApplyResult& result) {}
  // Any successful pull, after `failures` consecutive failures (0 usually).
  virtual void PullSucceeded(const std::string& peer, int failures) {}
  virtual void PullFailed(const std::string& peer, const PullFailure& failure) {}
  // The cursor was dropped and the pull starts again from entry 1.
  virtual void Resync(const std::string& peer, const std::string& why) {}
  virtual void PokeSent(const std::string& peer, const PokeResult& result) {}
};

struct ReplicationOptions {
  size_t page_max_records = 500;    // asked per page
  size_t page_max_bytes = 4 << 20;  // asked per page
  int long_poll_seconds = 25;       // asked wait; 0: no long polls
  int idle_poll_seconds = 60;       // without a long poll, how often an idle peer is asked anyway
  size_t max_long_polls = 12;       // long polls in flight at once; further pulls ask wait=0
  int retry_min_seconds = 1;
  int retry_max_seconds = 300;
  int breaker_failures = 5;
  int pokes_per_minute = 60;  // pokes to one peer at most this often
  uint64_t seed = 1;          // of the jitter
  // True when `peer` has a long poll waiting on our change log: a commit
  // answers it, so it needs no poke. Optional; called without locks held.
  std::function<bool(const std::string& peer)> peer_is_waiting;
};

// A peer to replicate with.
struct ReplicationPeer {
  std::string name;
  std::string base_url;
  int failures = 0;  // consecutive failures the peer table holds (a restart keeps the breaker)
};

class Replicator {
 public:
  Replicator(RecordStore& records, ReplicationTransport& transport, ReplicationScheduler& scheduler,
             ReplicationEvents& events, ReplicationOptions options);
  ~Replicator();
  Replicator(const Replicator&) = delete;
  Replicator& operator=(const Replicator&) = delete;

  // The peers to replicate with (the peer table's active and suspended
  // ones). A new peer is pulled at once; a peer left out stops (a pull in
  // flight finishes and is not followed by another); a returning one starts
  // again. Base URLs are updated.
  void SetPeers(const std::vector<ReplicationPeer>& peers);

  // `peer` says it has news (POST /poke): pull now, or right after the pull
  // in flight. Also ends a backoff: a poke shows the peer is up, and pokes
  // are rate-limited where they arrive. False when `peer` is not one of the
  // peers set.
  bool OnPoke(std::string_view peer);

  // A local commit: poke every peer that is not suspended (coalesced).
  void OnLocalCommit();

  // No pull or poke starts after this; those in flight end unanswered.
  void Stop();

  struct PeerStatus {
    bool enabled = false;
    bool pulling = false;
    int failures = 0;
    bool suspended = false;
    int64_t next_pull_ms = -1;  // scheduler time of the next pull; -1 while pulling
    uint64_t pulls = 0;         // pulls started
    bool long_poll = false;     // the pull in flight asked to wait
    bool poke_in_flight = false;
    bool poke_pending = false;
    uint64_t pokes = 0;  // pokes sent
  };
  std::optional<PeerStatus> StatusOf(std::string_view peer) const;
  // Long polls in flight.
  size_t long_polls() const;
  // The peers a long poll of ours is waiting on now (after Stop(), those
  // still to come back).
  std::vector<PeerAddress> LongPolling() const;

 private:
  struct Peer;
  using PeerPtr = std::shared_ptr<Peer>;

  void ArmPullLocked(const PeerPtr& p, int64_t delay_ms);
  void OnPullTimer(const PeerPtr& p, uint64_t token);
  void OnPulled(const PeerPtr& p, const PeerCursor& cursor, const ChangesQuery& query, int64_t started_ms,
                PullResult result);
  void Succeed(const PeerPtr& p, const ChangesQuery& query, int64_t started_ms, bool progress, bool more);
  void Fail(const PeerPtr& p, PullFailure::Kind kind, std::string error, int64_t retry_after_ms);
  void Resync(const PeerPtr& p, const std::string& why);
  void ArmPokeLocked(const PeerPtr& p, int64_t delay_ms);
  void OnPokeTimer(const PeerPtr& p, uint64_t token);
  void OnPoked(const PeerPtr& p, const PokeResult& result);
  bool SuspendedLocked(const Peer& p) const;
  double JitterLocked();

  RecordStore& records_;
  ReplicationTransport& transport_;
  ReplicationScheduler& scheduler_;
  ReplicationEvents& events_;
  const ReplicationOptions options_;

  mutable std::mutex mu_;
  bool stopped_ = false;
  std::map<std::string, PeerPtr, std::less<>> peers_;  // never erased: disabled instead
  size_t long_polls_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace backpack::federation
