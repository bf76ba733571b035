// The durable record store of a backpackd node.
//
// A Store is an ordered key/value store split into families (one per kind of
// record). RocksDB is the only implementation; it lives in rocks_store.cc and
// no RocksDB type appears here.
//
// Contracts:
//  * Write() applies every operation of a WriteBatch atomically and returns
//    only once the batch is durable (WAL synced). Concurrent writers are
//    group-committed: many threads calling Write() at once share one fsync.
//  * All methods are thread-safe. All of them may block on disk: call them
//    from a worker pool, never from an I/O thread.
//  * Read-modify-write sequences that must not interleave (e.g. "claim this
//    email unless another account holds it") take a KeyLocks::Guard over the
//    keys they read before reading, and hold it until Write() returns.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace backpack::storage {

// One family per kind of record. The numeric values are never reused; the
// RocksDB column family name is FamilyName(f).
enum class Family : uint8_t {
  kMeta = 0,           // schema version and node-wide settings
  kAccounts = 1,       // account id -> account record (JSON)
  kEmailIndex = 2,     // normalised email -> claim record (JSON)
  kSessions = 3,       // sha256(session token) -> session record (JSON)
  kAccountTokens = 4,  // account id + '/' + sha256(token) -> "" (index for revocation)
  kMailTokens = 5,     // sha256(emailed token) -> token record (JSON)
  kBadges = 6,         // account id + '/' + badge id -> badge record (JSON); docs/architecture.md ("Storage layout")
  kBadgeBlobs = 7,     // account id + '/' + badge id + '/' + part -> issuer bytes, verbatim
  kBadgeKeys = 8,      // account id + '/' + sha256(badge identity) -> badge id (duplicate check)
  kRecheckQueue = 9,   // 16-digit due time + '/' + account id + '/' + badge id -> ""
  kCollections = 10,   // account id + '/' + collection id -> collection record (JSON)
  kShareSlugs = 11,    // share slug -> account id + '/' + collection id
  kOAuthClients = 12,  // OAuth client id -> registered client (JSON); docs/api.md ("OAuth 2.0", "Storage")
  kOAuthCodes = 13,    // sha256(authorization code) -> code record (JSON)
  kOAuthTokens = 14,   // sha256(access or refresh token) -> token record (JSON)
  kOAuthGrants = 15,   // account id + '/' + client id -> what the earner granted (JSON)
  kOAuthGrantTokens = 16,  // account id + '/' + client id + '/' + chain + '/' + sha256(token) -> ""
  // Federation (docs/federation.md, "Storage"):
  kFedIdentity = 17,   // local account id -> the account's federated identity (key, genesis); "@" + federated id -> local id
  kFedRecords = 18,    // federated account id + '/' + record key -> signed record envelope (JSON)
  kChangeLog = 19,     // 16 hex digits of the sequence number -> signed record envelope (JSON)
  kDirectory = 20,     // email sha256 hex + '/' + federated account id -> "" (discoverable addresses)
  kPeers = 21,         // peer node name -> peer record (JSON: state, cursor, backoff)
};
inline constexpr Family kAllFamilies[] = {
    Family::kMeta,        Family::kAccounts,      Family::kEmailIndex, Family::kSessions,
    Family::kAccountTokens, Family::kMailTokens,  Family::kBadges,     Family::kBadgeBlobs,
    Family::kBadgeKeys,   Family::kRecheckQueue,  Family::kCollections, Family::kShareSlugs,
    Family::kOAuthClients, Family::kOAuthCodes,   Family::kOAuthTokens, Family::kOAuthGrants,
    Family::kOAuthGrantTokens, Family::kFedIdentity, Family::kFedRecords,  Family::kChangeLog,
    Family::kDirectory,   Family::kPeers,
};
std::string_view FamilyName(Family family);

// An ordered list of puts and deletes, applied all-or-nothing by Store::Write.
class WriteBatch {
 public:
  enum class OpType : uint8_t { kPut, kDelete, kAdd };
  struct Op {
    OpType type;
    Family family;
    std::string key;
    std::string value;  // empty for kDelete; the decimal delta for kAdd
  };

  void Put(Family family, std::string_view key, std::string_view value) {
    ops_.push_back({OpType::kPut, family, std::string(key), std::string(value)});
  }
  void Delete(Family family, std::string_view key) {
    ops_.push_back({OpType::kDelete, family, std::string(key), {}});
  }
  // Adds `delta` to the decimal counter at `key` (absent counts as 0)
  // without reading it first: concurrent batches adding to one counter need
  // no lock between them, and none of their additions is lost.
  void Add(Family family, std::string_view key, int64_t delta) {
    ops_.push_back({OpType::kAdd, family, std::string(key), std::to_string(delta)});
  }
  bool empty() const { return ops_.empty(); }
  size_t size() const { return ops_.size(); }
  const std::vector<Op>& ops() const { return ops_; }

 private:
  std::vector<Op> ops_;
};

// Figures for /metrics.
struct StoreStats {
  uint64_t estimated_keys = 0;
  uint64_t live_data_bytes = 0;     // SST files
  uint64_t memtable_bytes = 0;
  uint64_t writes = 0;              // batches written since open
  uint64_t synced_writes = 0;       // WAL syncs performed (group commit => <= writes)
};

class Store {
 public:
  virtual ~Store() = default;

  // NotFound is not an error here: an absent key yields std::nullopt.
  virtual Result<std::optional<std::string>> Get(Family family, std::string_view key) = 0;

  // Durable, atomic. An empty batch is a no-op that returns OK.
  virtual Status Write(const WriteBatch& batch) = 0;

  // Calls `visit` for every key starting with `prefix`, in key order, until
  // it returns false. `limit` caps the number of visits (0 = no cap).
  using Visitor = std::function<bool(std::string_view key, std::string_view value)>;
  virtual Status Scan(Family family, std::string_view prefix, const Visitor& visit,
                      size_t limit = 0) = 0;
  // The same, starting at the first key >= `start` (paging: pass the last
  // key seen with a '\0' appended).
  virtual Status ScanFrom(Family family, std::string_view prefix, std::string_view start,
                          const Visitor& visit, size_t limit = 0) = 0;

  virtual StoreStats Stats() = 0;

  // Flushes memtables to SST files; used at shutdown.
  virtual Status Flush() = 0;
};

// A schema migration upgrades the data from version `from` to `from + 1`.
// Once `apply` returns OK the new version is recorded in its own synced
// write; a crash between the two runs `apply` again on the next open, so it
// must be idempotent.
struct Migration {
  uint32_t from = 0;
  std::function<Status(Store&)> apply;
};

struct StoreOptions {
  std::string path;                  // directory; created if missing
  uint64_t block_cache_bytes = 64ull << 20;
  uint32_t schema_version = 1;       // the version this binary writes
  std::vector<Migration> migrations; // run in order when the data is older
};

// Opens (creating if needed) the RocksDB store at options.path, creates any
// missing family, then brings the schema to options.schema_version, running
// each needed migration followed by a synced write of the version it reached
// (so a crash between the two re-runs that migration: migrations are
// idempotent).
// Data written by a newer schema is refused with kFailedPrecondition.
Result<std::unique_ptr<Store>> OpenRocksStore(const StoreOptions& options);

// The schema version recorded in the store (0 if none).
Result<uint32_t> ReadSchemaVersion(Store& store);

// Striped locks for read-modify-write sequences. Locking a set of keys
// takes their stripes in a fixed order, so two guards never deadlock.
class KeyLocks {
 public:
  explicit KeyLocks(size_t stripes = 1024);
  ~KeyLocks();
  KeyLocks(const KeyLocks&) = delete;
  KeyLocks& operator=(const KeyLocks&) = delete;

  class Guard {
   public:
    Guard(Guard&&) noexcept;
    Guard& operator=(Guard&&) = delete;
    ~Guard();

   private:
    friend class KeyLocks;
    Guard(KeyLocks* owner, std::vector<size_t> stripes);
    KeyLocks* owner_;
    std::vector<size_t> stripes_;
  };

  // Each key is named with its family so equal strings in two families are
  // different locks.
  Guard Lock(std::initializer_list<std::string_view> keys);
  Guard Lock(const std::vector<std::string>& keys);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace backpack::storage
