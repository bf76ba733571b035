// Peering: which other nodes this node federates with, and in what state.
//
// The PeerTable keeps one record per peer in storage family kPeers, keyed
// by the peer's node name, the value being the record's JSON (ToJson).
// Peering starts with a handshake: a signed POST /_federation/v1/peer whose
// body is a Handshake; the receiver answers with its own Handshake carrying
// the state it gives the sender (docs/federation.md, "Peering").
//
// States and how a record moves between them (Derive):
//
//   blocked    the operator blocked it (or federation.blocked names it):
//              every signed request from it is refused with 403 and the
//              node never contacts it. Wins over everything else.
//   pending    waiting for an approval: ours (an unknown node that
//              handshook while federation.mode is "allowlist"; the
//              operator runs `backpackctl peers approve`), or the peer's
//              (it answered "pending"), or no handshake has succeeded yet.
//   active     approved by us, and the peer accepts us: it answered
//              "active" or sent us a handshake itself.
//   suspended  approved, but the last breaker_failures exchanges with it
//              failed; retried with exponential backoff (retry_min_seconds
//              doubling up to retry_max_seconds) until one succeeds.
//
// Approval: a peer named in federation.peers, added with `backpackctl
// peers add` or approved with `backpackctl peers approve` is approved; so is
// any node that handshakes while the mode is "open". A signed handshake from
// a peer means it accepts us (remote_state "active").
//
// Thread safety: every method may be called from several threads; writes
// are serialised by the table's own mutex. Every method may block on
// storage: call them from the worker pool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "storage/store.h"

namespace backpack::federation {

// The capability every node that speaks this handshake announces.
inline constexpr std::string_view kPeeringCapability = "peer/1";
// Handshake bodies (both ways) are at most this large.
inline constexpr size_t kMaxHandshakeBytes = 16 * 1024;
inline constexpr size_t kMaxCapabilities = 32;
inline constexpr size_t kMaxCapabilityBytes = 64;

enum class PeerState { kPending, kActive, kSuspended, kBlocked };

std::string_view PeerStateName(PeerState state);  // "pending", "active", "suspended", "blocked"
std::optional<PeerState> ParsePeerState(std::string_view name);

// The body of a handshake and of its answer:
//   {"node": "a.example", "base_url": "https://a.example",
//    "capabilities": ["peer/1", ...], "state": "active"}
// "state" only in an answer: what the answering node decided about the
// sender, "active" or "pending".
struct Handshake {
  std::string node;
  std::string base_url;  // normalised (config::ParseBaseUrl); its authority is `node`
  std::vector<std::string> capabilities;
  std::string state;  // answers only
};

// Reads a handshake (is_answer false) or an answer. Refuses (kInvalidArgument,
// naming the member) a body over kMaxHandshakeBytes, a node that is not a
// node name, a base_url that is not an http(s) base URL whose authority is
// the node, more than kMaxCapabilities capabilities or one that is not
// 1..kMaxCapabilityBytes of [a-z0-9._/-], a repeated one; in an answer a
// state other than "active" or "pending". Unknown members are ignored.
Result<Handshake> ParseHandshake(std::string_view json_text, bool is_answer);
std::string ToJson(const Handshake& handshake);

struct PeerRecord {
  std::string name;      // the peer's node name: host[:port]
  std::string base_url;  // where it is reached; "" when only its name is known (blocked unseen)
  PeerState state = PeerState::kPending;
  int64_t since = 0;  // when `state` last changed, Unix seconds
  std::vector<std::string> capabilities;  // from its last handshake or answer
  int failures = 0;                       // consecutive failed exchanges
  int64_t next_attempt = 0;               // when to handshake with it again; 0: nothing scheduled
  std::string last_error;                 // of the last failed exchange; "" after a success
  std::string origin;                     // how it became known: "config", "operator" or "inbound"
  bool approved = false;                  // our side accepts it
  bool blocked = false;                   // the operator blocked it (federation.blocked applies on top)
  std::string remote_state;               // what it last said of us: "", "active", "pending" or "blocked"
  int64_t created = 0;
  int64_t last_seen = 0;  // its last verified handshake or answer
  // The replication cursor; null until replication fills it. The table
  // stores it and never reads it.
  nlohmann::json cursor;
};

// The stored form, also what /_admin/v1/peers shows:
// {"name","base_url","state","since","capabilities","failures","next_attempt",
//  "last_error","origin","approved","blocked","remote_state","created",
//  "last_seen","cursor"}
nlohmann::json ToJson(const PeerRecord& record);
Result<PeerRecord> PeerRecordFromJson(std::string_view json_text);

struct PeerPolicy {
  std::string self;                  // our own node name: never a peer
  bool open = true;                  // federation.mode == "open"
  std::vector<std::string> blocked;  // federation.blocked
  int retry_min_seconds = 1;
  int retry_max_seconds = 300;
  int breaker_failures = 5;
  size_t max_peers = 10000;  // records kept; an unknown node beyond it is refused
};

// The state a record is in under `policy` (see the top of this file).
PeerState Derive(const PeerRecord& record, const PeerPolicy& policy);
// The wait before attempt number `failures` + 1: retry_min_seconds *
// 2^(failures - 1), capped at retry_max_seconds.
int64_t BackoffSeconds(int failures, const PeerPolicy& policy);

class PeerTable {
 public:
  PeerTable(storage::Store& store, PeerPolicy policy);
  PeerTable(const PeerTable&) = delete;
  PeerTable& operator=(const PeerTable&) = delete;

  const PeerPolicy& policy() const { return policy_; }
  bool BlockedByConfig(std::string_view name) const;

  Result<std::optional<PeerRecord>> Get(std::string_view name);
  // Every record, by name.
  Result<std::vector<PeerRecord>> List();

  // At start: recomputes every record's state (the mode or the blocked list
  // may have changed), adds or updates each configured peer (approved,
  // origin "config", a handshake due at `now`) and records the names in
  // federation.blocked. InvalidArgument for a URL ParseBaseUrl refuses.
  Status ApplyConfig(const std::vector<std::string>& peer_urls, int64_t now);

  // The operator's commands. Add: approves the node at `base_url` (its
  // authority is the name) and schedules a handshake now; FailedPrecondition
  // when it is blocked. Approve: NotFound for an unknown name,
  // FailedPrecondition when blocked; schedules a handshake now. Block:
  // creates the record when unknown. Unblock: NotFound when unknown,
  // FailedPrecondition when federation.blocked names it; schedules a
  // handshake when the peer is approved. InvalidArgument for our own name.
  Result<PeerRecord> Add(std::string_view base_url, int64_t now);
  Result<PeerRecord> Approve(std::string_view name, int64_t now);
  Result<PeerRecord> Block(std::string_view name, int64_t now);
  Result<PeerRecord> Unblock(std::string_view name, int64_t now);

  // A verified handshake from `from.node`. PermissionDenied ("blocked: ...")
  // when it is blocked, InvalidArgument when it is our own name,
  // ResourceExhausted when it is unknown and the table holds max_peers.
  // Returns the record as it now stands; its state is what the answer tells
  // the peer.
  Result<PeerRecord> OnHandshake(const Handshake& from, int64_t now);
  // The answer to a handshake we sent to `name`. Resets failures; a
  // "pending" answer schedules another handshake retry_max_seconds later.
  Result<PeerRecord> OnAnswer(std::string_view name, const Handshake& answer, int64_t now);
  // A failed exchange with `name` (handshake or, later, replication):
  // counts it, keeps `error`, schedules a retry after BackoffSeconds, and
  // sets remote_state when `remote_state` is not empty (a 403 means the
  // peer blocked us). NotFound for an unknown name.
  Result<PeerRecord> RecordFailure(std::string_view name, std::string_view error, std::string_view remote_state,
                                   int64_t now);
  // A successful exchange with `name` other than a handshake.
  Result<PeerRecord> RecordSuccess(std::string_view name, int64_t now);

  // Approved, unblocked peers with a base URL whose handshake is due
  // (0 < next_attempt <= now).
  Result<std::vector<PeerRecord>> Due(int64_t now);
  // The earliest next_attempt of an approved, unblocked peer; nullopt when
  // none is scheduled.
  Result<std::optional<int64_t>> NextAttempt();

  // Replication's way in: runs `change` on the record of `name` under the
  // table's lock, recomputes its state (`since` becomes `now` when it
  // changes), and writes it together with the operations of `batch` in one
  // atomic write, e.g. the new cursor with the records of a page. NotFound
  // for an unknown name; a non-OK status from `change` is returned and
  // nothing is written.
  Result<PeerRecord> Update(std::string_view name, int64_t now, const std::function<Status(PeerRecord&)>& change,
                            storage::WriteBatch batch = {});

 private:
  Result<std::optional<PeerRecord>> GetLocked(std::string_view name);
  Status PutLocked(PeerRecord& record, int64_t now, storage::WriteBatch batch = {});
  Status CountLocked();

  storage::Store& store_;
  const PeerPolicy policy_;
  std::mutex mu_;
  std::optional<size_t> count_;  // records stored; counted on first need
};

}  // namespace backpack::federation
