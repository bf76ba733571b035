// The node's own Ed25519 signing keys, and the keys document peers read.
//
// A node signs its server-to-server requests with its current key. Keys are
// files under <data_dir>/federation/keys/ (KeysDirectory), one per key:
//
//   k1.json  {"id": "k1", "type": "Ed25519", "pkcs8": "<base64url of the PKCS#8 DER>",
//             "created": 1790000000, "retired": null}
//
// The directory is mode 0700 and every file 0600. A file is written to a
// temporary name, fsynced, renamed into place, and the directory fsynced,
// so a crash leaves either the old file or the new one. Key ids are "k"
// followed by a decimal number; a new key takes the highest number plus one.
//
// The current key is the newest one that is not retired. Rotate() writes a
// new key and then marks the current one retired at the same instant; a
// crash between the two leaves two unretired keys, and Load treats every
// unretired key but the newest as retired when the newest was created. Old
// keys are kept and published with their retirement time, so a peer can
// still check what they signed before it.
//
// The keys are read once at start; a rotation made while the node runs
// (backpackctl node rotate-key) takes effect at its next start.
//
// Thread safety: a loaded NodeKeys is immutable except through Rotate; the
// const members may be called from several threads at once, Rotate must not
// run concurrently with anything else on the same object. Between processes,
// LoadOrCreate and Rotate take an exclusive lock on <dir>/.lock.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "protocol/jws.h"

namespace backpack::federation {

// Where a node with data directory `data_dir` keeps its keys.
std::string KeysDirectory(std::string_view data_dir);

// Most keys a node keeps or a keys document may list.
inline constexpr size_t kMaxNodeKeys = 64;

struct NodeKey {
  std::string id;  // "k1"
  protocol::PrivateKey key;
  int64_t created = 0;             // Unix seconds
  std::optional<int64_t> retired;  // Unix seconds; nullopt while usable for signing
};

class NodeKeys {
 public:
  // Reads every key file in `dir`, creating the directory (0700) and a
  // first key "k1" created at `now` when there is none. Refuses (kDataLoss)
  // a file it cannot read as a key, whose id does not match its name, or
  // more than kMaxNodeKeys keys; kUnavailable when the disk fails.
  static Result<NodeKeys> LoadOrCreate(const std::string& dir, int64_t now);

  // Adds a new key created at `now` and retires the current one at `now`,
  // both written durably before returning. Returns the new key's id.
  Result<std::string> Rotate(int64_t now);

  // The key that signs: the newest unretired one.
  const NodeKey& current() const { return keys_.front(); }
  // Every key, newest first.
  const std::vector<NodeKey>& keys() const { return keys_; }
  const std::string& directory() const { return dir_; }

  // The public keys document served at /_federation/v1/keys:
  // {"node": node_name, "keys": [{"id": "<node>#k2", "multikey": "z6Mk...",
  //  "created": t, "retired": null | t}, ...]}, newest first.
  std::string KeysDocument(std::string_view node_name) const;

 private:
  NodeKeys() = default;
  std::string dir_;
  std::vector<NodeKey> keys_;  // newest first; never empty once loaded
};

// One key of a peer, read from its keys document.
struct PublishedKey {
  std::string id;  // the full key id, "<node>#k2"
  protocol::PublicKey key;
  int64_t created = 0;
  std::optional<int64_t> retired;
};

// Reads a keys document fetched for `node`. The document's "node" must be
// `node`, every key id must start with "<node>#" and be unique, keys must
// be Ed25519 multikeys, "created" a non-negative integer, "retired" null
// or an integer; at most kMaxNodeKeys keys. kInvalidArgument says what is
// wrong. Unknown members are ignored.
Result<std::vector<PublishedKey>> ParseKeysDocument(std::string_view json_text, std::string_view node);

}  // namespace backpack::federation
