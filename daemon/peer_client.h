// Signed requests to other nodes: the outbound half of server-to-server
// federation (docs/federation.md, "Signed requests between nodes").
//
// Every request carries Content-Digest, Signature-Input and Signature
// (federation::SignOutboundRequest): keyid "<our node name>#<current key>",
// created now, expires now + federation.signature_lifetime_seconds, and a
// nonce of 32 random bytes in base64url. GET requests sign the digest of the
// empty body.
//
// Transport, with the Fetcher's defences (daemon/fetcher.h):
//   - http and https URLs parsed by fetch::ParseUrl; https verifies the
//     certificate chain (system store plus fetch.ca_file) and the host
//     name, TLS 1.2 or newer, SNI for names.
//   - The host is resolved and every address checked by the same address
//     policy as the Fetcher (fetch::DefaultAddressPolicy: public addresses
//     only unless fetch.allow_private); the connection goes to a checked
//     address.
//   - One deadline for the whole exchange (fetch.timeout_ms unless the call
//     sets a shorter one), response headers capped at 64 KiB and the body at
//     the call's cap (kDefaultMaxResponseBytes unless set, never above
//     fetch.max_bytes).
//   - Redirects are not followed: a signature names its target URI, so a
//     3xx is returned to the caller like any other answer.
//   - One request per connection (Connection: close); no cache.
//
// Outcomes: any HTTP answer is a result (the caller reads status and body:
// a peer's 401 or 403 is information, not a transport failure). Errors:
//   kInvalidArgument     the URL is unusable, or the method is not GET/POST
//   kPermissionDenied    an address refused by the policy
//   kUnavailable         resolution, connection, TLS, timeout, a malformed or
//                        truncated answer: retry later
//   kFailedPrecondition  the server's certificate was refused
//   kResourceExhausted   the answer is over the body or header cap
//   kInternal            signing or TLS set-up failed
//
// Blocking: Send runs its own io_context on the calling thread, so it
// belongs on a worker thread, never on an I/O thread. Thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "base/status.h"
#include "config/config.h"
#include "daemon/fetcher.h"
#include "federation/node_keys.h"

namespace backpack {

struct PeerCall {
  std::string method = "GET";  // "GET" or "POST"
  std::string url;             // absolute http(s) URL
  std::string body;            // sent as application/json with a POST
  // Replaces fetch.timeout_ms for this call when set (a long poll needs
  // longer), up to 10 minutes.
  std::optional<std::chrono::milliseconds> timeout;
  std::optional<size_t> max_response_bytes;
};

struct PeerAnswer {
  int status = 0;
  std::string content_type;
  std::string body;
  std::string date;         // the Date header: lets the caller see clock skew
  std::string retry_after;  // the Retry-After header, verbatim
};

class PeerClient {
 public:
  static constexpr size_t kDefaultMaxResponseBytes = 1 << 20;

  // Who we are when we sign.
  struct Identity {
    std::string node_name;
    federation::NodeKey key;  // the current key
  };
  using UnixClock = std::function<int64_t()>;
  using RandomBytes = std::function<std::string(size_t)>;

  // `policy` empty: fetch::DefaultAddressPolicy(fetch.allow_private).
  // `clock` empty: the system clock. `random` empty: OpenSSL's generator.
  PeerClient(const config::FetchConfig& fetch, Identity identity, int signature_lifetime_seconds,
             AddressPolicy policy = {}, UnixClock clock = {}, RandomBytes random = {});
  ~PeerClient();
  PeerClient(const PeerClient&) = delete;
  PeerClient& operator=(const PeerClient&) = delete;

  // OK, or why no request can be made (an unreadable fetch.ca_file).
  const Status& init_status() const;
  const std::string& node_name() const;

  Result<PeerAnswer> Send(const PeerCall& call);
  Result<PeerAnswer> Get(const std::string& url) { return Send(PeerCall{"GET", url, {}, {}, {}}); }
  Result<PeerAnswer> Post(const std::string& url, std::string json_body) {
    return Send(PeerCall{"POST", url, std::move(json_body), {}, {}});
  }

  struct Impl;  // opaque; public so the exchange in the .cc can name it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace backpack
