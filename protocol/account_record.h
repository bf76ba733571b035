// Signed account records: the facts about an earner that nodes replicate
// (docs/federation.md, "Identities" and "Signed records").
//
// Every record is a JSON object signed by the account's own Ed25519 key, so
// a node can relay a record it holds but cannot forge or alter one. The
// account id is derived from the account's genesis record (the first signed
// record, naming the account key), not from any node's name:
//
//   json genesis = MakeGenesis(key.public_key(), now, nonce);     // signed like any record
//   std::string id = AccountIdOf(genesis);                        // "a" + 32 base32 chars
//   json home = {{"type", "home"}, {"account", id}, {"version", v.ToString()}, {"node", "a.example"},
//                {"url", "https://a.example"}};
//   std::string envelope = SignRecord(home, key, &genesis).value();
//   ...
//   RecordEnvelope got = ParseEnvelope(envelope).value();           // shape and record rules
//   PublicKey account_key = GenesisKey(got.genesis, got.account).value();  // the id binds the key
//   Status ok = VerifyEnvelope(got, account_key, now_ms);             // signature, future versions
//
// Pure: no clock (times are parameters), no storage, no network.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "protocol/jws.h"

namespace backpack::protocol {

// A hybrid logical clock value, written "<unix ms>.<counter>". Issued by
// the account's home node (its only writer): never lower than the last one
// issued, and close to the wall clock.
struct RecordVersion {
  int64_t ms = 0;
  uint32_t counter = 0;

  friend auto operator<=>(const RecordVersion&, const RecordVersion&) = default;
  std::string ToString() const;
  // Decimal digits only, no sign or leading zeros (but "0"), ms below 2^53.
  static std::optional<RecordVersion> Parse(std::string_view text);
};

// The version to issue after `last` at wall time `now_ms`: now if the clock
// moved past `last`, else `last` with the counter advanced.
RecordVersion NextVersion(const RecordVersion& last, int64_t now_ms);

enum class RecordType {
  kHome,       // which node is the account's home: "node" (its name) and "url" (http(s)://<node>)
  kDirectory,  // one hashed address of the account, discoverable or not
  kMirrors,    // the peer nodes the earner chose to mirror their badges
  kBadge,      // one badge: the issuer's bytes and the earner's metadata
  kTombstone,  // the record under `target` is deleted
};
std::string_view RecordTypeName(RecordType type);  // "home", "directory", ...

// The genesis record for an account key: {"type": "genesis", "key":
// "<Ed25519 multikey>", "created": <unix seconds>, "nonce": "<nonce>"}.
nlohmann::json MakeGenesis(const PublicKey& account_key, int64_t created, std::string_view nonce);
// "a" + the lower-case, unpadded base32 of the first 20 bytes of
// SHA-256(JCS(genesis)): 33 characters.
std::string AccountIdOf(const nlohmann::json& genesis);
// The account key a genesis record names, when the record is well formed
// and `account_id` is its id. InvalidArgument otherwise.
Result<PublicKey> GenesisKey(const nlohmann::json& genesis, std::string_view account_id);

// "sha256 hex of the address as verified, lower-cased": how the directory
// names an address.
std::string EmailHash(std::string_view address);

// A parsed envelope: {"record": {...}, "genesis": {...} (optional),
// "sig": {"key": "<account>#<key>", "alg": "ed25519", "value": "<b64url>"}}.
struct RecordEnvelope {
  nlohmann::json record;
  nlohmann::json genesis;  // null when absent
  std::string key_id;
  std::string signature;  // raw 64 bytes
  RecordType type = RecordType::kHome;
  std::string account;
  RecordVersion version;
  // What the record replaces: "home", "mirrors", "directory/<hash>",
  // "badge/<id>"; a tombstone's key is its target's.
  std::string key;
};

inline constexpr size_t kMaxEnvelopeBytes = 4 * 1024 * 1024;  // a badge record carries an image

// Checks the envelope's shape and its record's rules (type, account id,
// version, the members each type requires). Does not check the signature.
// InvalidArgument naming the problem.
Result<RecordEnvelope> ParseEnvelope(std::string_view text);
Result<RecordEnvelope> ParseEnvelopeObject(const nlohmann::json& envelope);  // already parsed

// The key a record is stored under (RecordEnvelope::key), when it passes
// the record rules.
Result<std::string> RecordKeyOf(const nlohmann::json& record);

// Signs `record` (which must pass the record rules) with the account key:
// Ed25519 over "backpackd-record-v1\n" + JCS(record). `genesis`, when given,
// travels with it (the first record a peer sees for an account).
Result<std::string> SignRecord(const nlohmann::json& record, const PrivateKey& account_key,
                               const nlohmann::json* genesis = nullptr);

// Verifies the signature with `account_key` and refuses a version more than
// `max_future_ms` ahead of `now_ms` (it would shadow every later update).
// PermissionDenied for a bad signature, InvalidArgument for a far-future
// version.
Status VerifyEnvelope(const RecordEnvelope& envelope, const PublicKey& account_key, int64_t now_ms,
                      int64_t max_future_ms = 5 * 60 * 1000);

}  // namespace backpack::protocol
