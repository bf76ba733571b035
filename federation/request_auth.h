// Signed requests between nodes: signing what we send, verifying what we
// receive (docs/federation.md, "Signed requests between nodes").
//
// The wire profile is protocol/http_signature.h: RFC 9421 signatures over
// @method, @target-uri, @authority and Content-Digest, with created,
// expires, nonce, keyid "<node>#<key id>" and alg "ed25519". This file adds
// what the protocol layer leaves to its caller: whose key a keyid names
// (fetched from the node's /_federation/v1/keys and cached), that the
// request was meant for us, that a retired key signed only before it was
// retired, and that no signature is accepted twice.
//
// Nothing here touches sockets or HTTP types: the daemon hands requests in
// as plain values and supplies the fetch function and the clock.
//
// Errors
// ------
// Every refusal of RequestVerifier::Verify is a Status whose message starts
// with a fault name and ": ". RequestAuthFault() returns the name. The names
// of protocol/http_signature.h (malformed, wrong-components,
// digest-mismatch, future, stale, lifetime, bad-signature, internal) keep
// their codes; this file adds:
//   unsigned          Unauthenticated     401  no Signature-Input / Signature
//   wrong-authority   Unauthenticated     401  the request's Host is not our node name
//   unknown-key       Unauthenticated     401  the keyid is not "<node>#<id>", or the
//                                              node's keys document does not list it
//   retired-key       Unauthenticated     401  the key was retired before `created`
//   replayed          Unauthenticated     401  this keyid and nonce were accepted before
//   keys-unavailable  Unavailable         503  the node's keys document could not be
//                                              fetched or read; retry later
//   busy              Unavailable         503  the nonce cache is full of live entries
// and whatever status the caller's admit function returns (the daemon's
// "blocked", PermissionDenied, 403).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "federation/node_keys.h"
#include "protocol/jws.h"

namespace backpack::federation {

inline constexpr std::string_view kKeysPath = "/_federation/v1/keys";

inline constexpr std::string_view kFaultUnsigned = "unsigned";
inline constexpr std::string_view kFaultWrongAuthority = "wrong-authority";
inline constexpr std::string_view kFaultUnknownKey = "unknown-key";
inline constexpr std::string_view kFaultRetiredKey = "retired-key";
inline constexpr std::string_view kFaultReplayed = "replayed";
inline constexpr std::string_view kFaultKeysUnavailable = "keys-unavailable";
inline constexpr std::string_view kFaultBusy = "busy";

// The fault name a refusal of Verify starts with: one of the names above, a
// protocol::SignatureFaultName, or the part of any other message before
// ": " when it is a short lower-case token (so the admit function's
// "blocked: ..." gives "blocked"); "internal" otherwise, "" for OK.
std::string_view RequestAuthFault(const Status& status);

// ---------------------------------------------------------------------------
// Signing.

struct OutboundRequest {
  std::string method;      // "GET", "POST"
  std::string target_uri;  // absolute, exactly as the request line and Host will carry it
  std::string authority;   // the Host header value
  std::string body;        // "" for a GET
};

struct OutboundSignature {
  std::string content_digest;   // the Content-Digest field value
  std::string signature_input;  // the Signature-Input field value
  std::string signature;        // the Signature field value
};

// Signs `request` with `key` as "<node_name>#<key_id>", created at `now`,
// expiring `lifetime_seconds` later, with `nonce` (base64url of 32 random
// bytes; the caller draws it). InvalidArgument as protocol::SignRequest.
Result<OutboundSignature> SignOutboundRequest(const OutboundRequest& request, std::string_view node_name,
                                              const NodeKey& key, int64_t now, int64_t lifetime_seconds,
                                              std::string_view nonce);

// ---------------------------------------------------------------------------
// Verifying.

// A request as the receiver sees it. Every view must stay valid during Verify.
struct InboundRequest {
  std::string_view method;
  // "<our scheme>://<Host><request target>": the scheme of our public URL
  // (what the sender reached, even behind a TLS-terminating proxy).
  std::string_view target_uri;
  std::string_view host;             // the Host header
  std::string_view signature_input;  // header values, "" when absent
  std::string_view signature;
  std::string_view content_digest;
  std::string_view body;
};

struct VerifiedRequest {
  std::string node;    // the peer that signed: the node part of the keyid
  std::string key_id;  // "<node>#k2"
  int64_t created = 0;
  int64_t expires = 0;
};

struct RequestVerifierOptions {
  std::string node_name;               // ours: the only authority we answer for
  int64_t max_skew_seconds = 60;       // federation.max_clock_skew_seconds
  int64_t max_lifetime_seconds = 300;  // federation.signature_lifetime_seconds
  size_t max_cached_nodes = 1024;      // keys documents kept; the least recently used goes first
  int64_t keys_ttl_seconds = 300;      // a fetched keys document is trusted this long
  // A node's keys are fetched at most once per this long, whatever asks
  // (an unknown keyid, an expired entry, a failed fetch).
  int64_t min_refetch_seconds = 30;
  size_t max_nonces = 200000;          // live (keyid, nonce) pairs remembered; beyond: "busy"
};

// GET of an absolute URL: the body of a 2xx answer, or why not. Called
// without any lock held, possibly from several threads at once.
using KeysFetcher = std::function<Result<std::string>(const std::string& url)>;
// The base URL of a known peer ("https://b.example"), or "" when the node is
// not known.
using PeerBaseUrlLookup = std::function<std::string(std::string_view node)>;
using UnixClock = std::function<int64_t()>;

struct VerifyOptions {
  // Where the sender says it lives (a handshake's base_url). Used to find
  // the keys of a node that `base_url_of` does not know, and only when its
  // authority is the node's name. Otherwise keys come from "https://<node>".
  std::string_view base_url_hint;
  // Called with the signer's node name once the fields parse and the
  // authority is ours, before any key is fetched. A non-OK status is
  // returned as it is (to refuse blocked or unknown nodes cheaply).
  std::function<Status(std::string_view node)> admit;
};

// Thread-safe: Verify may run on many threads at once. The caches are
// bounded (max_cached_nodes, max_nonces).
class RequestVerifier {
 public:
  RequestVerifier(RequestVerifierOptions options, KeysFetcher fetch, PeerBaseUrlLookup base_url_of, UnixClock clock);
  RequestVerifier(const RequestVerifier&) = delete;
  RequestVerifier& operator=(const RequestVerifier&) = delete;

  // In order: both signature fields present (unsigned); the Host, normalised,
  // is our node name (wrong-authority); the fields parse against the
  // profile (malformed, wrong-components); the keyid is "<node>#<id>"
  // (unknown-key); admit(node); the node's keys (keys-unavailable,
  // unknown-key); the key's retirement (retired-key); time limits and the
  // signature (lifetime, future, stale, bad-signature); the body against
  // Content-Digest (malformed, digest-mismatch); the nonce (replayed,
  // busy). Only a request that passes every check is remembered.
  Result<VerifiedRequest> Verify(const InboundRequest& request, const VerifyOptions& options = {});

  // Drops the cached keys of `node` (the next request fetches them again).
  void Forget(std::string_view node);

  const RequestVerifierOptions& options() const { return options_; }

 private:
  struct CachedKeys {
    std::optional<std::vector<PublishedKey>> keys;  // the last document read
    int64_t fetched_at = 0;                         // when `keys` was fetched
    int64_t last_attempt = 0;                       // the last fetch, failed or not
    std::string last_error;                         // of the last failed fetch
    uint64_t last_used = 0;
  };

  Result<PublishedKey> ResolveKey(const std::string& node, const std::string& key_id, const VerifyOptions& options);
  std::string BaseUrlFor(const std::string& node, const VerifyOptions& options) const;
  Status RememberNonce(const std::string& key_id, const std::string& nonce, int64_t keep_until, int64_t now);

  const RequestVerifierOptions options_;
  const KeysFetcher fetch_;
  const PeerBaseUrlLookup base_url_of_;
  const UnixClock clock_;

  std::mutex keys_mu_;
  std::unordered_map<std::string, CachedKeys> keys_;
  uint64_t use_counter_ = 0;

  std::mutex nonces_mu_;
  std::unordered_map<std::string, int64_t> nonces_;  // keyid + '\n' + nonce -> kept until
  std::multimap<int64_t, std::string> nonce_expiry_;   // kept until -> the map key
};

}  // namespace backpack::federation
