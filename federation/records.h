// The replicated records of a node (docs/federation.md, "Signed records",
// "Replication", "Storage"): the federated identity of each local account,
// the signed records it publishes, the change log peers pull, the records
// applied from peers, and the directory of discoverable addresses.
//
// Home side: Identity() gives a local account its federated identity on
// first use (account key, genesis record, home record). Publish() signs a
// record with the account key, gives it the next hybrid-clock version, and
// writes it, its change log entry and its directory index entry in one
// atomic batch.
//
// Change log: entries are numbered 1, 2, ...; numbers are handed out before
// the batches commit, so commits may finish out of order. Changes() serves
// only up to the watermark, the highest number below which every entry has
// committed, so a reader never skips an entry that commits late.
//
// Receiving side: Apply() takes one page pulled from a peer and the cursor
// after it. It verifies every record (account key from the genesis record
// whose hash is the account id; signature; not far in the future; the
// sender is the account's home) and writes the newer ones, the directory
// index and the cursor in one atomic batch: a crash never loses or applies a
// page twice. One bad record refuses the whole page and stores nothing.
//
// Thread-safe. Blocking on storage: call from worker threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "protocol/account_record.h"
#include "storage/store.h"

namespace backpack::federation {

using MillisClock = std::function<int64_t()>;          // Unix milliseconds
using RandomBytes = std::function<std::string(size_t)>;  // n random bytes

// A hybrid logical clock: versions from the wall clock, strictly increasing
// even when the clock stalls or steps back. Thread-safe.
class HybridClock {
 public:
  explicit HybridClock(MillisClock now_ms) : now_ms_(std::move(now_ms)) {}
  protocol::RecordVersion Next();
  // Never issue a version at or below `seen` (one restored from storage).
  void Observe(const protocol::RecordVersion& seen);

 private:
  MillisClock now_ms_;
  std::mutex mu_;
  protocol::RecordVersion last_;
};

struct AccountIdentity {
  std::string local_id;     // the node's own account id
  std::string account;      // the federated account id ("a" + 32 base32 characters)
  nlohmann::json genesis;   // the genesis record the id is derived from
  std::shared_ptr<const protocol::PrivateKey> key;  // the account key (home node only)
};

// One page of the change log.
struct ChangePage {
  std::string log_id;
  std::vector<std::string> records;  // envelopes (JSON text), in log order
  uint64_t next = 0;                 // the number to ask from next
  std::string digest;                // digest of the last entry read (the next request's `after`)
  bool more = false;                 // entries beyond this page have committed
};

// Where a puller stands in a peer's change log.
struct PeerCursor {
  std::string log_id;
  uint64_t next = 1;
  std::string digest;  // of the entry before `next`; empty when next == 1
  nlohmann::json ToJson() const;
  static std::optional<PeerCursor> FromJson(const nlohmann::json& j);
};

struct ApplyResult {
  size_t applied = 0;  // records stored (newer than what was held)
  size_t older = 0;    // records skipped: already held at that version or newer
};

// A directory hit for WebFinger: the records that let anyone check it.
struct DirectoryEntry {
  std::string account;
  std::string directory;  // the signed directory record (envelope JSON)
  std::string home;       // the signed home record
  nlohmann::json genesis;
};

struct RecordStoreOptions {
  std::string node_name;               // this node: what home records name ("host" or "host:port")
  std::string node_url;                // "http(s)://" + node_name: where it answers
  int64_t max_future_ms = 5 * 60 * 1000;  // versions further ahead are refused
};

class RecordStore {
 public:
  // Reads where the change log ends and its id (created on first open).
  static Result<std::unique_ptr<RecordStore>> Open(storage::Store& store, storage::KeyLocks& locks,
                                                   RecordStoreOptions options, MillisClock now_ms, RandomBytes random);
  ~RecordStore();

  // ---- Home side ----------------------------------------------------------------

  // The federated identity of local account `local_id`; created on first
  // use, with its home record published.
  Result<AccountIdentity> Identity(const std::string& local_id);
  // The local account of federated id `account`, if it is one of ours.
  Result<std::optional<std::string>> LocalAccount(std::string_view account);
  // The federated identity of local account `local_id` if it has one;
  // never creates it.
  Result<std::optional<AccountIdentity>> FindIdentity(const std::string& local_id);
  // The local accounts that have a federated identity, in key order, after
  // `after` ("": from the first), at most `limit` of them.
  Result<std::vector<std::string>> LocalAccounts(std::string_view after, size_t limit);

  // Signs and stores a record of local account `local_id`. `record` holds
  // the type-specific members (and "type"); "account" and "version" are
  // filled in. Returns the envelope as published.
  Result<std::string> Publish(const std::string& local_id, nlohmann::json record);

  // ---- Reading ------------------------------------------------------------------

  // The envelope stored for `account` under record key `key` ("home",
  // "directory/<hash>", "badge/<id>", ...; a deleted record's key gives its
  // tombstone).
  Result<std::optional<std::string>> Get(std::string_view account, std::string_view key);
  // Every record held for `account`, by key order.
  Result<std::vector<std::string>> AccountRecords(std::string_view account);
  // The genesis record held for `account` (ours or a peer's).
  Result<std::optional<nlohmann::json>> Genesis(std::string_view account);
  // The discoverable account for an address hash, if any.
  Result<std::optional<DirectoryEntry>> Lookup(std::string_view email_sha256);

  // ---- Change log ---------------------------------------------------------------

  std::string LogId();
  uint64_t Watermark() const;  // every entry up to this number has committed
  // Entries from `since` on, up to the watermark, at most `max_records`
  // and (but at least one) `max_bytes`. `include` may leave entries out of
  // the page (they still advance `next`). `after` is the digest of entry
  // since - 1 the caller applied last ("" for since 1). FailedPrecondition
  // "cursor_invalid: ..." when `since` is 0 or beyond the watermark + 1, or
  // the entry before it is missing or has another digest: the caller must
  // start again from 1.
  Result<ChangePage> Changes(uint64_t since, std::string_view after, size_t max_records, size_t max_bytes,
                             const std::function<bool(const protocol::RecordEnvelope&)>& include = nullptr);
  // Blocks until the watermark reaches `number` or `deadline_ms` (Unix ms)
  // passes; returns the watermark.
  uint64_t WaitFor(uint64_t number, int64_t deadline_ms);
  // Called after each commit that raised the watermark (from the writing
  // thread; keep it short).
  void OnCommit(std::function<void(uint64_t watermark)> listener);

  // ---- Receiving side -----------------------------------------------------------

  // Applies a page pulled from peer `peer` (its node name) and stores
  // `cursor` with it. InvalidArgument / PermissionDenied naming the record
  // and the reason when a record is refused; nothing is stored then.
  Result<ApplyResult> Apply(std::string_view peer, const std::vector<std::string>& records, const PeerCursor& cursor);
  // The cursor stored for `peer`; a fresh one (next 1) when none.
  Result<PeerCursor> Cursor(std::string_view peer);
  // Forget the cursor (a full resync starts from 1).
  Status ResetCursor(std::string_view peer);

 private:
  struct Impl;
  explicit RecordStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The digest that names a change log entry: SHA-256 hex of its bytes.
std::string EntryDigest(std::string_view envelope);

}  // namespace backpack::federation
