// Typed configuration of a backpackd node.
//
// Every field has a safe default and can be set in the TOML config file
// under the table and key named in its comment; a few also have a
// command-line flag. Precedence: defaults < file < flags. Loading rejects an
// unknown table or key, a value of the wrong type and an out-of-range value
// with an error naming the key (and the file).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace backpack::config {

struct ServerConfig {
  std::string listen = "127.0.0.1:8080";  // [server] listen, flag --listen; "HOST:PORT", port 0 = any
  std::string public_url;                 // [server] public_url: base URL clients use; default http(s)://listen
  std::string node_name;                  // [server] node_name: the platform name shown to issuers (Badge
                                          //   Connect, OB 3.0); default the host of public_url. The name among
                                          //   peers is federation.node_name
  std::string terms_of_service_url;       // [server] terms_of_service_url: the operator's terms (http(s)),
                                          //   published to issuers in the Badge Connect manifest
  std::string privacy_policy_url;         // [server] privacy_policy_url: the operator's privacy policy (http(s))
  int io_threads = 2;                     // [server] io_threads (1..64): threads running sockets
  int worker_threads = 8;                 // [server] worker_threads (1..256): storage, KDF, mail
  int max_connections = 1024;             // [server] max_connections (1..1000000)
  int max_header_bytes = 16 * 1024;       // [server] max_header_bytes (1024..1048576)
  int max_body_bytes = 1024 * 1024;       // [server] max_body_bytes (1024..268435456)
  int read_timeout_ms = 15000;            // [server] read_timeout_ms: whole request must arrive within it
  int idle_timeout_ms = 60000;            // [server] idle_timeout_ms: keep-alive idle limit
  int write_timeout_ms = 30000;           // [server] write_timeout_ms
  int shutdown_grace_ms = 10000;          // [server] shutdown_grace_ms: in-flight requests get this long
  int max_pending_requests = 4096;        // [server] max_pending_requests: worker queue cap; 503 beyond
  std::string tls_cert_file;              // [server] tls_cert_file: PEM chain; TLS on when set with key
  std::string tls_key_file;               // [server] tls_key_file: PEM private key
  std::string port_file;                  // [server] port_file, flag --port-file: write "HOST:PORT" once listening
};

struct StorageConfig {
  std::string data_dir = "./data";        // [storage] data_dir, flag --data-dir
  int block_cache_mb = 64;                // [storage] block_cache_mb (8..65536)
};

struct AccountsConfig {
  int session_ttl_hours = 24 * 30;        // [accounts] session_ttl_hours (1..87600)
  int verify_token_ttl_hours = 48;        // [accounts] verify_token_ttl_hours (1..8760)
  int reset_token_ttl_minutes = 60;       // [accounts] reset_token_ttl_minutes (5..10080)
  int signup_claim_ttl_hours = 48;        // [accounts] signup_claim_ttl_hours: an unverified sign-up
                                          //   address is held this long against another sign-up
  int min_password_length = 10;           // [accounts] min_password_length (8..128)
  int max_emails_per_account = 20;        // [accounts] max_emails_per_account (1..1000)
  int scrypt_log2_n = 15;                 // [accounts] scrypt_log2_n (10..22): 2^15 * 8 * 128 B = 32 MiB
  int login_attempts_per_minute = 10;     // [accounts] login_attempts_per_minute: per client address and per email
  int signups_per_hour = 20;              // [accounts] signups_per_hour: per client address
  int mail_requests_per_hour = 10;        // [accounts] mail_requests_per_hour: verification/reset mails per account or address
  int cache_entries = 100000;             // [accounts] cache_entries (0..10000000): sessions and accounts
                                          //   kept in memory each; 0 reads storage every time
};

struct MailConfig {
  std::string from = "backpackd <noreply@localhost>";  // [mail] from
  std::string smtp_host;                  // [mail] smtp_host: empty = write messages to <data_dir>/outbox/
  int smtp_port = 587;                    // [mail] smtp_port
  std::string smtp_tls = "starttls";      // [mail] smtp_tls: "starttls" (required), "tls" (implicit), "none"
  bool smtp_verify_peer = true;           // [mail] smtp_verify_peer: check the server certificate
  std::string smtp_ca_file;               // [mail] smtp_ca_file: extra trusted CA (PEM)
  std::string smtp_username;              // [mail] smtp_username: AUTH PLAIN when set
  std::string smtp_password;              // [mail] smtp_password
  int smtp_timeout_ms = 30000;            // [mail] smtp_timeout_ms: per delivery
  int retry_max_hours = 48;               // [mail] retry_max_hours: give up (and log) after this
};

// Outbound fetches: hosted assertions, issuer profiles, keys, revocation
// lists, DID documents.
struct FetchConfig {
  bool allow_private = false;             // [fetch] allow_private, flag --fetch-allow-private: allow
                                          //   loopback, private, link-local and other non-public addresses
  int timeout_ms = 10000;                 // [fetch] timeout_ms (100..600000): whole fetch, redirects included
  int max_bytes = 2 * 1024 * 1024;        // [fetch] max_bytes (1024..268435456): response body cap
  int max_redirects = 5;                  // [fetch] max_redirects (0..10)
  int cache_entries = 10000;              // [fetch] cache_entries (0..1000000): responses kept with their validators
  std::string ca_file;                    // [fetch] ca_file: extra trusted CA (PEM), e.g. for a test issuer
  int default_fresh_seconds = 60;         // [fetch] default_fresh_seconds (0..86400): how long a cached
                                          //   response without Cache-Control max-age may answer without a request
  int max_fresh_seconds = 3600;           // [fetch] max_fresh_seconds (0..604800): cap on any response's freshness
};

// Badges, their re-verification and collections.
struct BadgesConfig {
  int max_per_account = 10000;            // [badges] max_per_account (1..1000000)
  int max_collections_per_account = 1000; // [badges] max_collections_per_account (1..100000)
  int reverify_interval_hours = 24;       // [badges] reverify_interval_hours (1..8760): a valid badge is re-checked this often
  int retry_min_seconds = 60;             // [badges] retry_min_seconds (1..86400): first back-off after an unreachable issuer
  int retry_max_seconds = 86400;          // [badges] retry_max_seconds (60..2592000): longest back-off
  int reverify_batch = 200;               // [badges] reverify_batch (1..100000): badges re-checked per scheduler pass
  int imports_per_minute = 600;           // [badges] imports_per_minute (1..1000000): per account
  int displayer_lookups_per_minute = 10;  // [badges] displayer_lookups_per_minute (1..100000): Displayer API
                                          //   email-to-user lookups per client address
};

// The OAuth 2.0 authorization server through which issuers reach an
// earner's backpack (docs/api.md, "OAuth 2.0").
struct OAuthConfig {
  int access_token_ttl_seconds = 3600;    // [oauth] access_token_ttl_seconds (1..86400)
  int refresh_token_ttl_days = 30;        // [oauth] refresh_token_ttl_days (1..365): counted again from each refresh
  int code_ttl_seconds = 60;              // [oauth] code_ttl_seconds (1..600): authorization codes
  int registrations_per_hour = 20;        // [oauth] registrations_per_hour (1..100000): client
                                          //   registrations per client address
};

// Federation between nodes: identity, signed requests, peering, and the
// replication limits (docs/federation.md).
struct FederationConfig {
  std::string node_name;                  // [federation] node_name: this node's name among peers, host[:port]
                                          //   in lower case; empty: the authority of the public URL. When set
                                          //   it must be that authority (peers check base_url against it)
  std::string mode = "open";              // [federation] mode: "open" (any node may peer unless blocked) or
                                          //   "allowlist" (unknown nodes wait, pending, for the operator)
  std::vector<std::string> peers;         // [federation] peers: base URLs ("https://b.example") handshaken at
                                          //   start; approved whatever the mode
  std::vector<std::string> blocked;       // [federation] blocked: node names refused on every signed endpoint
  int max_clock_skew_seconds = 60;        // [federation] max_clock_skew_seconds (0..3600): how far in the future
                                          //   a signature's created may lie
  int signature_lifetime_seconds = 300;   // [federation] signature_lifetime_seconds (10..3600): expires - created
                                          //   of the signatures we send, and the most we accept
  int page_max_records = 500;             // [federation] page_max_records (1..100000): records per change page
  int page_max_bytes = 4 * 1024 * 1024;   // [federation] page_max_bytes (65536..268435456): bytes per change page
  int long_poll_seconds = 25;             // [federation] long_poll_seconds (0..300): longest wait of a change poll
  int max_future_version_seconds = 300;   // [federation] max_future_version_seconds (0..86400): records dated
                                          //   further ahead of our clock are refused
  int pokes_per_minute = 60;              // [federation] pokes_per_minute (1..100000): per peer
  int retry_min_seconds = 1;              // [federation] retry_min_seconds (1..86400): first back-off after a
                                          //   failed exchange with a peer
  int retry_max_seconds = 300;            // [federation] retry_max_seconds (1..86400): longest back-off
  int breaker_failures = 5;               // [federation] breaker_failures (1..1000): consecutive failures that
                                          //   suspend a peer
  int handshakes_per_minute = 30;         // [federation] handshakes_per_minute (1..100000): peering requests per
                                          //   client address
  int webfinger_per_minute = 60;          // [federation] webfinger_per_minute (1..100000): WebFinger look-ups per
                                          //   client address
  int inbox_per_minute = 30;              // [federation] inbox_per_minute (1..100000): badge deliveries to the
                                          //   inbox per client address
};

// The operator's API under /_admin (backpackctl peers ...): a bearer token
// written to <data_dir>/admin-token at start.
struct AdminConfig {
  bool allow_remote = false;              // [admin] allow_remote: also answer clients that are not on a
                                          //   loopback address (the token is required either way)
};

struct LogConfig {
  std::string level = "info";             // [log] level: debug, info, warn, error
  std::string format = "json";            // [log] format: "json" or "text"
};

struct Config {
  ServerConfig server;
  StorageConfig storage;
  AccountsConfig accounts;
  MailConfig mail;
  FetchConfig fetch;
  BadgesConfig badges;
  OAuthConfig oauth;
  FederationConfig federation;
  AdminConfig admin;
  LogConfig log;
};

// Command-line options that override the file.
struct Flags {
  std::string config_file;  // --config
  std::string listen;       // --listen
  std::string data_dir;     // --data-dir
  std::string port_file;    // --port-file
  bool fetch_allow_private = false;  // --fetch-allow-private
};

// Parses TOML text. `origin` names the source in error messages.
Result<Config> ParseConfig(std::string_view toml_text, std::string_view origin);

// Defaults, then flags.config_file (if any), then the flags; then Validate.
Result<Config> LoadConfig(const Flags& flags);

// Cross-field and range checks; the message names the offending key.
Status Validate(const Config& config);

// An absolute http(s) base URL, as server.public_url and federation.peers
// give them.
struct BaseUrl {
  bool https = false;
  std::string authority;  // host[:port]: lower case, without the scheme's default port, IPv6 in brackets
  std::string url;        // scheme://authority[/path], without a trailing '/'
};
// Parses a base URL: "http://" or "https://" (lower case), a host (a DNS
// name of letters, digits, '-', '_' and '.', or an IPv4 or bracketed IPv6
// literal), an optional port 1..65535, an optional path; no user
// information, query, fragment, spaces or control characters.
Result<BaseUrl> ParseBaseUrl(std::string_view text);

// Whether `name` is a node name: host[:port] as ParseBaseUrl writes an
// authority (lower case, IPv6 in brackets) and without port 80 or 443.
bool IsNodeName(std::string_view name);

// The name a node federates under when its public base URL is
// `public_url`: federation.node_name when set (it must equal the URL's
// authority), else that authority, e.g. "badges.example.org" or
// "127.0.0.1:8081".
Result<std::string> FederationNodeName(const FederationConfig& federation, std::string_view public_url);

// Splits "HOST:PORT" or "[V6]:PORT"; port 0..65535.
struct HostPort {
  std::string host;
  uint16_t port = 0;
};
Result<HostPort> ParseHostPort(std::string_view text);

}  // namespace backpack::config
