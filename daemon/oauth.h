// The node's OAuth 2.0 authorization server: the way an issuer (a Badge
// Connect 2.1 or Open Badges 3.0 API client) gets access to an earner's
// backpack. Wire format in docs/api.md ("OAuth 2.0"); the routes and pages
// are in oauth_api.cc.
//
// Rules (the contract the API relies on):
//  * Clients register themselves (RFC 7591, open registration). A client is
//    confidential (it gets a secret) unless it registers
//    token_endpoint_auth_method "none". Clients never change once registered.
//  * Only the authorization code grant with PKCE S256 (RFC 7636) is offered;
//    "plain" and requests without a challenge are refused.
//  * Client secrets, codes and tokens are 256-bit random values handed out
//    once; the store keeps only their SHA-256.
//  * A code is single use and lives oauth.code_ttl_seconds. Exchanging it
//    starts a token chain: an access token and (for clients registered with
//    the refresh_token grant) a refresh token. Each refresh revokes the
//    refresh token it used and issues a new one in the same chain; presenting
//    a used refresh token or a used code again revokes the whole chain
//    (RFC 6749 4.1.2, 10.4).
//  * What an earner granted a client is kept per account and client (the
//    "authorized apps" of the account API); removing it revokes every token
//    of that client for that account.
//
// Every method that touches storage blocks: call them from the worker pool.
// Mutations of an account's grants and tokens hold the KeyLock
// "og:<account>", as does DeleteAll, so a code exchanged while its account is
// being deleted cannot leave tokens behind (no other lock is taken inside it).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "base/status.h"
#include "config/config.h"
#include "daemon/accounts.h"  // UnixClock, RandomSource
#include "storage/store.h"

namespace backpack {

// --- Scopes -------------------------------------------------------------------

// Badge Connect 2.1 (Open Badges 2.1).
inline constexpr std::string_view kScopeObV2p1AssertionReadonly =
    "https://purl.imsglobal.org/spec/ob/v2p1/scope/assertion.readonly";
inline constexpr std::string_view kScopeObV2p1AssertionCreate =
    "https://purl.imsglobal.org/spec/ob/v2p1/scope/assertion.create";
inline constexpr std::string_view kScopeObV2p1ProfileReadonly =
    "https://purl.imsglobal.org/spec/ob/v2p1/scope/profile.readonly";
inline constexpr std::string_view kScopeObV2p1ProfileUpdate =
    "https://purl.imsglobal.org/spec/ob/v2p1/scope/profile.update";
// Open Badges 3.0 API.
inline constexpr std::string_view kScopeObV3p0CredentialReadonly =
    "https://purl.imsglobal.org/spec/ob/v3p0/scope/credential.readonly";
inline constexpr std::string_view kScopeObV3p0CredentialUpsert =
    "https://purl.imsglobal.org/spec/ob/v3p0/scope/credential.upsert";
inline constexpr std::string_view kScopeObV3p0ProfileReadonly =
    "https://purl.imsglobal.org/spec/ob/v3p0/scope/profile.readonly";
inline constexpr std::string_view kScopeObV3p0ProfileUpdate =
    "https://purl.imsglobal.org/spec/ob/v3p0/scope/profile.update";

struct ScopeInfo {
  std::string_view uri;
  std::string_view description;  // what the earner is asked to allow, in plain words
};

// Every scope this server grants, in the order a consent page lists them.
const std::vector<ScopeInfo>& KnownScopes();
// The plain-words description of `scope`; "" for an unknown scope.
std::string_view ScopeDescription(std::string_view scope);

// --- Protocol helpers (pure) ----------------------------------------------------

// BASE64URL(SHA256(ASCII(verifier))), RFC 7636 section 4.2.
std::string PkceS256Challenge(std::string_view verifier);
// 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~" (RFC 7636 4.1).
bool IsPkceVerifier(std::string_view verifier);

// OK when `uri` may be registered as a redirect URI: an absolute https URL
// with a host, or http to a loopback host (127.0.0.1, [::1], localhost; RFC
// 8252 section 7.3); no fragment, no user information, at most 2000 bytes,
// no spaces, quotes or angle brackets. The message says what is wrong.
Status CheckRedirectUri(std::string_view uri);
// Whether a redirect URI in an authorization request names the registered
// one: the same string, except that for http to a loopback IP literal any
// port is accepted (RFC 8252 section 7.3).
bool RedirectUriMatches(std::string_view registered, std::string_view requested);

// --- Errors ---------------------------------------------------------------------

// The error codes of RFC 6749 (4.1.2.1, 5.2), RFC 7591 (3.2.2) and RFC 7009.
enum class OAuthErrorCode {
  kInvalidRequest,
  kInvalidClient,
  kInvalidGrant,
  kUnauthorizedClient,
  kUnsupportedGrantType,
  kUnsupportedResponseType,
  kInvalidScope,
  kAccessDenied,
  kInvalidRedirectUri,
  kInvalidClientMetadata,
  kServerError,  // storage or another internal failure; see OAuthError::cause
};
// "invalid_request", ...; kServerError is "server_error", or
// "temporarily_unavailable" when the cause is kUnavailable.
std::string ErrorName(OAuthErrorCode code, const Status& cause = Status::Ok());

// An error the client (or, before the redirect URI is known, the earner's
// browser) is told about: the code and a description safe to show.
struct OAuthError {
  OAuthErrorCode code = OAuthErrorCode::kServerError;
  std::string description;
  Status cause;  // kServerError only: the internal failure, for the log, never for the client

  std::string name() const { return ErrorName(code, cause); }
};

// A value, or the OAuthError to answer. A Status converts to kServerError.
template <typename T>
class [[nodiscard]] OAuthResult {
 public:
  OAuthResult(T value) : v_(std::move(value)) {}           // NOLINT: implicit by design
  OAuthResult(OAuthError error) : v_(std::move(error)) {}  // NOLINT
  OAuthResult(Status cause)                                // NOLINT
      : v_(OAuthError{OAuthErrorCode::kServerError, "the server could not complete the request; try again later",
                      std::move(cause)}) {}

  bool ok() const { return std::holds_alternative<T>(v_); }
  const OAuthError& error() const { return std::get<OAuthError>(v_); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, OAuthError> v_;
};

// --- Clients ----------------------------------------------------------------------

// Client metadata (RFC 7591 section 2) as registered. Absent strings are "".
struct ClientMetadata {
  std::string client_name;
  std::vector<std::string> redirect_uris;
  std::vector<std::string> grant_types;     // default {"authorization_code"}
  std::vector<std::string> response_types;  // default {"code"}
  std::string scope;                        // space-separated; default: every known scope
  std::string token_endpoint_auth_method;   // default "client_secret_basic"
  std::string client_uri;
  std::string logo_uri;
  std::string tos_uri;
  std::string policy_uri;
  std::string software_id;
  std::string software_version;
  std::vector<std::string> contacts;
};

struct OAuthClient {
  std::string id;
  std::string secret_hash;  // SHA-256 hex of the secret; "" for a public client
  int64_t issued_at = 0;    // Unix seconds
  ClientMetadata metadata;  // with the defaults filled in

  bool is_public() const { return metadata.token_endpoint_auth_method == "none"; }
  bool Allows(std::string_view grant_type) const;
  std::vector<std::string> Scopes() const;
};

struct RegisteredClient {
  OAuthClient client;
  std::string secret;  // given to the client once; "" for a public client
};

// --- Authorization requests ----------------------------------------------------------

// The parameters of an authorization request (RFC 6749 4.1.1, RFC 7636 4.3),
// as received ("" when absent).
struct AuthorizationRequest {
  std::string response_type;
  std::string client_id;
  std::string redirect_uri;
  std::string scope;
  std::string state;
  std::string code_challenge;
  std::string code_challenge_method;
  // The misspelling in an example of the Badge Connect 2.1 specification;
  // taken when code_challenge_method is absent.
  std::string code_challange_method;
  // Names of parameters that appeared more than once (RFC 6749 3.1 forbids it).
  std::vector<std::string> repeated;
};

// A request that names a registered client and one of its redirect URIs.
// From here on the answer goes to `redirect_uri`: `error` when the request is
// otherwise wrong, else the earner's decision.
struct ValidatedAuthorization {
  OAuthClient client;
  std::string redirect_uri;         // where the answer goes
  bool redirect_uri_given = false;  // named in the request: the token request must repeat it
  std::string state;
  std::vector<std::string> scopes;  // known scopes the client registered for
  std::string code_challenge;
  std::optional<OAuthError> error;
};

// --- Tokens -------------------------------------------------------------------------

enum class ClientAuthMethod { kNone, kBasic, kPost };

// How a client identified itself at the token or revocation endpoint.
struct ClientCredentials {
  std::string client_id;
  std::string secret;
  ClientAuthMethod method = ClientAuthMethod::kNone;
};

struct TokenSet {
  std::string access_token;
  std::string refresh_token;  // "" when the client has no refresh_token grant
  int64_t expires_in = 0;     // seconds
  std::vector<std::string> scopes;
};

// What a valid access token allows.
struct AccessGrant {
  std::string account_id;
  std::string client_id;
  std::vector<std::string> scopes;
  int64_t expires_at = 0;
};

// What introspection (RFC 7662) tells a client about one of its tokens.
struct TokenInfo {
  bool refresh = false;  // else an access token
  std::string client_id;
  std::vector<std::string> scopes;
  int64_t issued_at = 0;
  int64_t expires_at = 0;
};

// The WWW-Authenticate value (RFC 6750 3.1) for a failed Authenticate():
// error="invalid_token" for kUnauthenticated (or no error code when no
// token was sent), error="insufficient_scope" with the scope for
// kPermissionDenied.
std::string BearerChallenge(const Status& status, std::string_view required_scope, bool token_sent = true);

// A client the earner has granted access to.
struct AuthorizedApp {
  std::string client_id;
  std::string client_name;
  std::string client_uri;
  std::vector<std::string> scopes;  // every scope granted since the grant was made
  int64_t granted_at = 0;
  int64_t last_used_at = 0;  // 0 = never; recorded to the minute
};

class OAuthService {
 public:
  OAuthService(storage::Store& store, storage::KeyLocks& locks, const config::OAuthConfig& config, UnixClock clock,
               RandomSource random);

  // RFC 7591: validates the metadata, fills in defaults, stores the client.
  // Errors are kInvalidRedirectUri or kInvalidClientMetadata.
  OAuthResult<RegisteredClient> RegisterClient(ClientMetadata metadata);
  // nullopt for an unknown client.
  Result<std::optional<OAuthClient>> FindClient(std::string_view client_id);

  // Checks an authorization request. An error here means the client or its
  // redirect URI could not be established: show it to the earner and never
  // redirect. Later errors are in ValidatedAuthorization::error.
  OAuthResult<ValidatedAuthorization> CheckAuthorization(const AuthorizationRequest& request);
  // The earner `account_id` approved `request` (which has no error): a
  // single-use code bound to the client, redirect URI, challenge, scopes and
  // account.
  OAuthResult<std::string> IssueCode(const std::string& account_id, const ValidatedAuthorization& request);

  // Client authentication at the token and revocation endpoints: a
  // confidential client by its secret (Basic or in the body), a public one by
  // its id alone. Failure is kInvalidClient.
  OAuthResult<OAuthClient> AuthenticateClient(const ClientCredentials& credentials);
  // grant_type=authorization_code. `redirect_uri` must repeat the request's
  // when it named one; `code_verifier` must match the challenge.
  OAuthResult<TokenSet> ExchangeCode(const OAuthClient& client, std::string_view code, std::string_view redirect_uri,
                                     std::string_view code_verifier);
  // grant_type=refresh_token, with rotation. `scope` ("" = all of the refresh
  // token's) may narrow the new access token.
  OAuthResult<TokenSet> Refresh(const OAuthClient& client, std::string_view refresh_token, std::string_view scope);
  // RFC 7009. Revoking a refresh token revokes its whole chain, its access
  // tokens included. Unknown tokens and tokens of other clients are left
  // alone and answer OK, like revoked ones.
  Status Revoke(const OAuthClient& client, std::string_view token);

  // The check other routes make: kUnauthenticated for an unknown, expired or
  // revoked access token; kPermissionDenied when it lacks `required_scope`
  // ("" requires none).
  Result<AccessGrant> Authenticate(std::string_view bearer_token, std::string_view required_scope);

  // RFC 7662: what the token is, when it is active and was issued to
  // `client`; nullopt otherwise (unknown, expired, revoked, a used refresh
  // token, or another client's). Does not count as a use of the grant.
  Result<std::optional<TokenInfo>> Introspect(const OAuthClient& client, std::string_view token);

  // The account's authorized apps, oldest grant first.
  Result<std::vector<AuthorizedApp>> ListApps(const std::string& account_id);
  // Revokes every token of the client for the account and forgets the grant;
  // kNotFound when there is none.
  Status RevokeApp(const std::string& account_id, std::string_view client_id);
  // Removes every grant and token of the account (account deletion).
  Status DeleteAll(const std::string& account_id);

  // Deletes expired codes and tokens, at most `limit` per call; returns how
  // many went. Expired ones are already refused; this reclaims their space.
  Result<size_t> PurgeExpired(size_t limit);

  // CSRF tokens for the HTML forms: an HMAC, under a key drawn at start-up,
  // of `purpose` and what the form is bound to (a cookie, a session and a
  // request). Forms shown before a restart stop working after it.
  std::string FormToken(std::string_view purpose, std::string_view binding) const;
  bool CheckFormToken(std::string_view purpose, std::string_view binding, std::string_view token) const;

  // A fresh 256-bit random value, base64url: for the pre-sign-in cookie.
  std::string NewNonce();

  const config::OAuthConfig& config() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace backpack
