// Outbound HTTP(S) fetches: the only way a node reaches out to the web for
// the documents badge verification needs (hosted assertions, BadgeClass and
// issuer Profile documents, public keys, revocation lists, DID documents,
// status lists). Defences against server-side request forgery and resource
// exhaustion live here, so every caller gets them.
//
// What a fetch does and refuses:
//   - Schemes http and https only; URLs are parsed strictly (ParseUrl).
//   - The host is resolved once per hop and EVERY resolved address must pass
//     the address policy (by default: public unicast addresses only, unless
//     fetch.allow_private); one refused address refuses the host. The
//     connection goes to a checked address, never to a second lookup.
//   - HTTPS: certificates verified against the system store plus
//     fetch.ca_file, host name checked, SNI sent for names, TLS 1.2 or newer.
//   - One deadline, fetch.timeout_ms, covers every hop: connecting, TLS,
//     sending, receiving. Name resolution is the exception: getaddrinfo
//     cannot be interrupted and is bounded by its own resolv.conf timeouts
//     (the deadline is checked again once it returns).
//   - Response headers are capped at kMaxHeaderBytes and bodies at
//     fetch.max_bytes (a larger Content-Length is refused before the body
//     is read; a chunked or unframed body is cut off once over the cap).
//   - Redirects (301, 302, 303, 307, 308 with a Location, relative ones
//     resolved against the current URL) are followed up to
//     fetch.max_redirects times; each hop is checked again as above. A
//     redirect loop or a redirect from https to http is refused.
//
// Which outcome is a result and which an error (callers branch on this):
//   result    2xx: the response.
//   result    410 Gone: status 410 with its body; verification reads it as
//             "revoked/withdrawn", so it is an answer, not a failure.
//   result    304 to our conditional request: the cached response, with
//             from_cache = true (and the cached status, usually 200).
//   result    a fresh cached response, when reuse_fresh asks for one: no
//             request is made; from_cache = true.
//   kNotFound            404.
//   kUnavailable         network failure, timeout, TLS failure other than
//                        a refused certificate, 5xx, 408, 429, a malformed
//                        or truncated response (an https body framed only
//                        by the end of the connection must end with a TLS
//                        close_notify), a 304 nobody asked for: retry later.
//   kFailedPrecondition  any other 4xx, an unusable redirect (no Location,
//                        bad Location, too many, a loop), a refused server
//                        certificate, a Content-Encoding we did not ask
//                        for, other statuses, an unreadable fetch.ca_file
//                        (see init_status): retrying will not help until
//                        the remote side or the configuration changes.
//   kPermissionDenied    an address refused by the policy, a redirect from
//                        https to http.
//   kResourceExhausted   body over the cap, headers over kMaxHeaderBytes.
//   kInvalidArgument     the requested URL itself is unusable.
//   kInternal            the node itself failed (e.g. out of memory).
//
// Caching, after RFC 9111 for a private cache:
//   What is kept: 200 responses whose body is at most
//   Fetcher::kMaxCachedBodyBytes, that do not say Cache-Control: no-store
//   or Vary: *, and that carry an ETag or Last-Modified or are fresh. They
//   live in an LRU of fetch.cache_entries entries (0: no caching at all),
//   one per URL, so cached bodies take at most
//   cache_entries * kMaxCachedBodyBytes. An entry answers only requests
//   that send the Accept header it was fetched with; a response to another
//   Accept replaces it.
//   Freshness, counted from when the response was received: Cache-Control
//   no-cache gives 0 s; else max-age=N gives N s (the smallest when
//   repeated, 0 when malformed; s-maxage is ignored); else Expires minus
//   Date (IMF-fixdate, see ParseHttpDate; either one invalid or absent
//   gives 0 s); else fetch.default_fresh_seconds. Each is capped at
//   fetch.max_fresh_seconds, and an Age header is subtracted. A stale
//   entry is never returned unchecked, so must-revalidate changes nothing.
//   Use: a request with reuse_fresh gets a fresh entry without any network
//   traffic (from_cache = true). Otherwise, or once the entry is stale, the
//   request goes to the server, conditional (If-None-Match,
//   If-Modified-Since) when the entry has validators; a 304 returns the
//   cached body and renews its freshness from the 304's own Cache-Control
//   or Expires, or else for the stored response's lifetime. A stale entry
//   without validators is simply fetched again. Any other answer replaces
//   the entry, or drops it when it is not kept (a 410, a 404 or another
//   error that is not a retry-later one). A cached body larger than the
//   call's body cap is never returned; the server is asked unconditionally
//   instead.
//   Redirects: the response is cached under the URL that answered it. A
//   fetch that followed redirects also caches the outcome under the
//   requested URL (final_url and redirects kept) for as long as every
//   response in the chain is fresh. A redirect's freshness follows the
//   rules above, except that a 302, 303 or 307 without max-age or Expires
//   gets 0 s (RFC 9111 4.2.2: not heuristically cacheable); a no-store
//   anywhere in the chain keeps the outcome out of the requested URL's
//   entry.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "config/config.h"

namespace boost::asio::ip {
class address;
}  // namespace boost::asio::ip

namespace backpack {

struct FetchRequest {
  std::string url;  // absolute http or https URL; a fragment is ignored
  std::string accept = "application/ld+json, application/json;q=0.9, */*;q=0.1";
  // Lowers the body cap for this call; never raises it above fetch.max_bytes.
  std::optional<size_t> max_bytes;
  // When the cache holds a fresh response for `url` (see "Caching" above),
  // return it without asking the server. False always asks the server
  // (conditionally when a response is cached): for a "re-check now".
  bool reuse_fresh = false;
};

struct FetchResult {
  std::string final_url;      // the URL that answered, after redirects (normalised, no fragment)
  int status = 0;             // 2xx or 410
  std::string content_type;   // the Content-Type header, verbatim ("" when absent)
  std::string body;           // the body bytes, verbatim (chunked framing removed)
  std::string etag;           // the ETag header, verbatim ("" when absent)
  std::string last_modified;  // the Last-Modified header, verbatim ("" when absent)
  // The body came from the cache: a fresh entry answered (reuse_fresh), or
  // the server answered 304 to a conditional request.
  bool from_cache = false;
  // The URLs that answered with a redirect, in order, starting with the
  // requested one; empty when there was none.
  std::vector<std::string> redirects;
};

// Decides whether a fetch may connect to `address`, one of the addresses
// `host` resolved to (or the literal itself). Returns OK, or the error the
// fetch fails with (normally kPermissionDenied). Must be thread-safe.
using AddressPolicy = std::function<Status(const boost::asio::ip::address& address, std::string_view host)>;

// The clock the cache measures freshness with. Must be thread-safe and
// never go backwards. Deadlines always use the real steady clock.
using FreshnessClock = std::function<std::chrono::steady_clock::time_point()>;

// Thread-safe: Fetch may be called from many threads at once. Each call
// blocks its thread (it runs its own private io_context), so it belongs on
// a worker thread, never on an I/O thread.
class Fetcher {
 public:
  // Response headers larger than this are refused (kResourceExhausted).
  static constexpr size_t kMaxHeaderBytes = 64 * 1024;
  // Larger bodies are returned but not cached.
  static constexpr size_t kMaxCachedBodyBytes = 64 * 1024;

  // Addresses are checked by fetch::DefaultAddressPolicy(config.allow_private).
  explicit Fetcher(const config::FetchConfig& config);
  // Addresses are checked by `policy` instead (an empty one means the
  // default); for tests and embedders.
  Fetcher(const config::FetchConfig& config, AddressPolicy policy);
  // As above, with freshness measured by `clock` (an empty one means
  // std::chrono::steady_clock::now); for tests.
  Fetcher(const config::FetchConfig& config, AddressPolicy policy, FreshnessClock clock);
  ~Fetcher();
  Fetcher(const Fetcher&) = delete;
  Fetcher& operator=(const Fetcher&) = delete;

  // OK, or why the fetcher cannot work (fetch.ca_file unreadable, TLS set-up
  // failed); every Fetch then fails with this status. Check it at start-up.
  const Status& init_status() const;

  // Fetches `request.url` with GET, following redirects. See the top of
  // this file for which outcomes are results and which are errors. An
  // answer from a fresh entry (reuse_fresh) costs one cache lookup under a
  // shard lock and a copy of the body; nothing blocks.
  Result<FetchResult> Fetch(const FetchRequest& request);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The pieces of Fetcher that are pure functions, exposed for tests and for
// callers that want to check a URL or an address before fetching.
namespace fetch {

struct Url {
  bool https = false;
  std::string host;    // lower case; an IPv6 literal without brackets
  uint16_t port = 0;   // always set: 80 or 443 when the URL names none
  std::string target;  // path and query, starting with '/'; dot segments removed

  // "scheme://host[:port]target", the port only when not the default, an
  // IPv6 host in brackets. Parsing it again gives the same Url.
  std::string ToString() const;
  // The Host header value: host[:port] as in ToString().
  std::string Authority() const;
  bool operator==(const Url&) const = default;
};

// Longest URL accepted, in bytes.
inline constexpr size_t kMaxUrlBytes = 8192;

// Parses an absolute http or https URL. Strict: no userinfo ('@' in the
// authority), ASCII host names of letters, digits, '-', '_' and '.' only
// (IDNs must come in their xn-- form), IPv4 literals only as four decimal
// parts, IPv6 literals in brackets without a zone, ports 1..65535, no
// spaces or control characters. The fragment is dropped; bytes outside
// the URL character set in the path and query are percent-encoded.
// kInvalidArgument says what is wrong.
Result<Url> ParseUrl(std::string_view text);

// Resolves a URI reference (such as a Location header: absolute,
// scheme-relative "//host/p", absolute path, relative path, "?query") against
// `base` as RFC 3986 section 5.2 does; the result must again be http(s).
Result<Url> ResolveReference(const Url& base, std::string_view reference);

// The special-purpose range `address` lies in ("loopback 127.0.0.0/8",
// "private 10.0.0.0/8", ...), or nullopt for a public unicast address.
// IPv4-mapped, NAT64 (64:ff9b::/96) and 6to4 IPv6 addresses are judged by
// the IPv4 address they carry.
std::optional<std::string_view> NonPublicRange(const boost::asio::ip::address& address);

// The HTTP status an error of Fetch carries when the server answered with
// one (404, 5xx, other 4xx: the message ends in "answered <status>"), else
// 0 (no response: network, TLS, policy, limits).
int HttpStatusOf(const Status& fetch_error);

// The policy Fetcher uses by default: everything when `allow_private`, else
// only addresses NonPublicRange calls public; a refusal is kPermissionDenied
// "fetch: address A of host H is not public: RANGE (fetch.allow_private is off)".
AddressPolicy DefaultAddressPolicy(bool allow_private);

// Parses an HTTP date in the IMF-fixdate form ("Sun, 06 Nov 1994 08:49:37
// GMT", RFC 9110 5.6.7), exactly: case-sensitive names, a weekday that
// matches the date, no extra spaces. Returns seconds since the Unix epoch,
// or nullopt for anything else, the obsolete RFC 850 and asctime forms
// included (for the cache an invalid date means "stale", so refusing them
// only costs a request).
std::optional<int64_t> ParseHttpDate(std::string_view text);

}  // namespace fetch
}  // namespace backpack
