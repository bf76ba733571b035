#include "daemon/oauth.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "daemon/log.h"
#include "daemon/lru_cache.h"
#include "protocol/encoding.h"

namespace backpack {

using nlohmann::json;
using storage::Family;

namespace {

constexpr size_t kMaxSecretBytes = 128;  // codes, tokens and secrets we issue are 43 characters
constexpr size_t kMaxUriBytes = 2000;
constexpr size_t kMaxNameBytes = 200;
constexpr size_t kMaxRedirectUris = 10;
constexpr size_t kMaxContacts = 10;
constexpr size_t kMaxContactBytes = 320;
constexpr size_t kMaxStateBytes = 1024;
constexpr size_t kMaxScopeBytes = 2000;
constexpr int64_t kUsedCodeKeepSeconds = 24 * 3600;  // a replayed code still revokes its chain this long
constexpr int64_t kLastUsedResolution = 60;
constexpr std::string_view kAccess = "access";
constexpr std::string_view kRefresh = "refresh";

bool HasControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The parts of an http(s) URL that redirect URI rules look at.
struct UrlParts {
  std::string scheme;  // lower case
  std::string host;    // as written, brackets kept for IPv6
  std::string port;    // digits, or ""
  std::string rest;    // path, query
};

std::optional<UrlParts> SplitHttpUrl(std::string_view url) {
  UrlParts p;
  if (StartsWithNoCase(url, "https://")) {
    p.scheme = "https";
    url.remove_prefix(8);
  } else if (StartsWithNoCase(url, "http://")) {
    p.scheme = "http";
    url.remove_prefix(7);
  } else {
    return std::nullopt;
  }
  const size_t end = url.find_first_of("/?#");
  const std::string_view authority = url.substr(0, end);
  p.rest = end == std::string_view::npos ? std::string() : std::string(url.substr(end));
  std::string_view hostport = authority;
  if (!hostport.empty() && hostport.front() == '[') {
    const size_t close = hostport.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    p.host = std::string(hostport.substr(0, close + 1));
    hostport.remove_prefix(close + 1);
    if (!hostport.empty()) {
      if (hostport.front() != ':') return std::nullopt;
      p.port = std::string(hostport.substr(1));
    }
  } else {
    const size_t colon = hostport.find(':');
    p.host = std::string(hostport.substr(0, colon));
    if (colon != std::string_view::npos) p.port = std::string(hostport.substr(colon + 1));
  }
  return p;
}

bool IsLoopbackHost(std::string_view host) {
  const std::string h = Lower(host);
  return h == "127.0.0.1" || h == "[::1]" || h == "localhost";
}

std::vector<std::string> SplitScope(std::string_view scope) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < scope.size()) {
    if (scope[i] == ' ') {
      ++i;
      continue;
    }
    size_t j = scope.find(' ', i);
    if (j == std::string_view::npos) j = scope.size();
    std::string token(scope.substr(i, j - i));
    if (std::find(out.begin(), out.end(), token) == out.end()) out.push_back(std::move(token));
    i = j;
  }
  return out;
}

std::string JoinScopes(const std::vector<std::string>& scopes) {
  std::string out;
  for (const auto& s : scopes) {
    if (!out.empty()) out += ' ';
    out += s;
  }
  return out;
}

// `scopes` in the order of KnownScopes(), so pages and answers list them alike.
std::vector<std::string> Ordered(const std::vector<std::string>& scopes) {
  std::vector<std::string> out;
  for (const auto& known : KnownScopes()) {
    if (std::find(scopes.begin(), scopes.end(), known.uri) != scopes.end()) out.emplace_back(known.uri);
  }
  return out;
}

bool Contains(const std::vector<std::string>& all, std::string_view one) {
  return std::find(all.begin(), all.end(), one) != all.end();
}

OAuthError Error(OAuthErrorCode code, std::string description) { return OAuthError{code, std::move(description), {}}; }

std::vector<std::string> StringArray(const json& j, std::string_view key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return out;
  for (const auto& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

std::string SerializeClient(const OAuthClient& c) {
  const ClientMetadata& m = c.metadata;
  return json{{"client_id", c.id},
              {"secret_sha256", c.secret_hash},
              {"issued_at", c.issued_at},
              {"client_name", m.client_name},
              {"redirect_uris", m.redirect_uris},
              {"grant_types", m.grant_types},
              {"response_types", m.response_types},
              {"scope", m.scope},
              {"token_endpoint_auth_method", m.token_endpoint_auth_method},
              {"client_uri", m.client_uri},
              {"logo_uri", m.logo_uri},
              {"tos_uri", m.tos_uri},
              {"policy_uri", m.policy_uri},
              {"software_id", m.software_id},
              {"software_version", m.software_version},
              {"contacts", m.contacts}}
      .dump();
}

Result<OAuthClient> ParseClient(std::string_view bytes) {
  const json j = json::parse(bytes, nullptr, false);
  if (!j.is_object()) return DataLoss("OAuth client record is not a JSON object");
  OAuthClient c;
  c.id = j.value("client_id", "");
  c.secret_hash = j.value("secret_sha256", "");
  c.issued_at = j.value("issued_at", int64_t{0});
  ClientMetadata& m = c.metadata;
  m.client_name = j.value("client_name", "");
  m.redirect_uris = StringArray(j, "redirect_uris");
  m.grant_types = StringArray(j, "grant_types");
  m.response_types = StringArray(j, "response_types");
  m.scope = j.value("scope", "");
  m.token_endpoint_auth_method = j.value("token_endpoint_auth_method", "");
  m.client_uri = j.value("client_uri", "");
  m.logo_uri = j.value("logo_uri", "");
  m.tos_uri = j.value("tos_uri", "");
  m.policy_uri = j.value("policy_uri", "");
  m.software_id = j.value("software_id", "");
  m.software_version = j.value("software_version", "");
  m.contacts = StringArray(j, "contacts");
  if (c.id.empty()) return DataLoss("OAuth client record has no client_id");
  return c;
}

// A code as stored under the SHA-256 of the code.
struct CodeRecord {
  std::string account;
  std::string client;
  std::string redirect_uri;
  bool redirect_uri_given = false;
  std::string challenge;
  std::vector<std::string> scopes;
  int64_t created_at = 0;
  int64_t expires_at = 0;
  int64_t purge_at = 0;
  bool used = false;
  std::string chain;  // once used: the token chain it started
};

std::string Serialize(const CodeRecord& c) {
  return json{{"account", c.account},
              {"client", c.client},
              {"redirect_uri", c.redirect_uri},
              {"redirect_uri_given", c.redirect_uri_given},
              {"challenge", c.challenge},
              {"scopes", c.scopes},
              {"created_at", c.created_at},
              {"expires_at", c.expires_at},
              {"purge_at", c.purge_at},
              {"used", c.used},
              {"chain", c.chain}}
      .dump();
}

std::optional<CodeRecord> ParseCode(std::string_view bytes) {
  const json j = json::parse(bytes, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  CodeRecord c;
  c.account = j.value("account", "");
  c.client = j.value("client", "");
  c.redirect_uri = j.value("redirect_uri", "");
  c.redirect_uri_given = j.value("redirect_uri_given", false);
  c.challenge = j.value("challenge", "");
  c.scopes = StringArray(j, "scopes");
  c.created_at = j.value("created_at", int64_t{0});
  c.expires_at = j.value("expires_at", int64_t{0});
  c.purge_at = j.value("purge_at", int64_t{0});
  c.used = j.value("used", false);
  c.chain = j.value("chain", "");
  return c;
}

// A token as stored under its SHA-256.
struct TokenRecord {
  std::string kind;  // access or refresh
  std::string account;
  std::string client;
  std::string chain;
  std::vector<std::string> scopes;
  int64_t issued_at = 0;
  int64_t expires_at = 0;
  bool rotated = false;  // a refresh token that has been used
};

std::string Serialize(const TokenRecord& t) {
  return json{{"kind", t.kind},     {"account", t.account},     {"client", t.client},         {"chain", t.chain},
              {"scopes", t.scopes}, {"issued_at", t.issued_at}, {"expires_at", t.expires_at}, {"rotated", t.rotated}}
      .dump();
}

std::optional<TokenRecord> ParseToken(std::string_view bytes) {
  const json j = json::parse(bytes, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  TokenRecord t;
  t.kind = j.value("kind", "");
  t.account = j.value("account", "");
  t.client = j.value("client", "");
  t.chain = j.value("chain", "");
  t.scopes = StringArray(j, "scopes");
  t.issued_at = j.value("issued_at", int64_t{0});
  t.expires_at = j.value("expires_at", int64_t{0});
  t.rotated = j.value("rotated", false);
  return t;
}

struct GrantRecord {
  std::string account;
  std::string client;
  std::vector<std::string> scopes;
  int64_t granted_at = 0;
  int64_t last_used_at = 0;
};

std::string Serialize(const GrantRecord& g) {
  return json{{"account", g.account},
              {"client", g.client},
              {"scopes", g.scopes},
              {"granted_at", g.granted_at},
              {"last_used_at", g.last_used_at}}
      .dump();
}

std::optional<GrantRecord> ParseGrant(std::string_view bytes) {
  const json j = json::parse(bytes, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  return GrantRecord{j.value("account", ""), j.value("client", ""), StringArray(j, "scopes"),
                     j.value("granted_at", int64_t{0}), j.value("last_used_at", int64_t{0})};
}

std::string GrantKey(std::string_view account, std::string_view client) {
  return fmt::format("{}/{}", account, client);
}
std::string TokenIndexKey(std::string_view account, std::string_view client, std::string_view chain,
                          std::string_view hash) {
  return fmt::format("{}/{}/{}/{}", account, client, chain, hash);
}
std::string GrantLock(std::string_view account) { return fmt::format("og:{}", account); }
std::string CodeLock(std::string_view hash) { return fmt::format("oc:{}", hash); }

Status CheckText(std::string_view name, std::string_view value, size_t max) {
  if (value.size() > max) return InvalidArgument(fmt::format("{} is longer than {} bytes", name, max));
  if (HasControl(value)) return InvalidArgument(fmt::format("{} contains control characters", name));
  return Status::Ok();
}

}  // namespace

// --- Scopes and helpers ---------------------------------------------------------

const std::vector<ScopeInfo>& KnownScopes() {
  static const std::vector<ScopeInfo> scopes = {
      {kScopeObV2p1AssertionReadonly, "See the badges in your backpack"},
      {kScopeObV2p1AssertionCreate, "Add badges to your backpack"},
      {kScopeObV2p1ProfileReadonly, "See your profile: your name and email address"},
      {kScopeObV2p1ProfileUpdate, "Change your profile"},
      {kScopeObV3p0CredentialReadonly, "See the credentials (badges) in your backpack"},
      {kScopeObV3p0CredentialUpsert, "Add credentials (badges) to your backpack and replace ones it holds"},
      {kScopeObV3p0ProfileReadonly, "See your profile: your name and email address"},
      {kScopeObV3p0ProfileUpdate, "Change your profile"},
  };
  return scopes;
}

std::string_view ScopeDescription(std::string_view scope) {
  for (const auto& s : KnownScopes()) {
    if (s.uri == scope) return s.description;
  }
  return {};
}

std::string PkceS256Challenge(std::string_view verifier) {
  return protocol::Base64UrlEncode(protocol::Sha256(verifier));
}

bool IsPkceVerifier(std::string_view verifier) {
  if (verifier.size() < 43 || verifier.size() > 128) return false;
  return std::all_of(verifier.begin(), verifier.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' || c == '~';
  });
}

Status CheckRedirectUri(std::string_view uri) {
  if (uri.empty()) return InvalidArgument("a redirect URI is empty");
  if (uri.size() > kMaxUriBytes) return InvalidArgument("a redirect URI is longer than 2000 bytes");
  for (char c : uri) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '"' || c == '\'' || c == '<' || c == '>' || c == '\\' || c == '`') {
      return InvalidArgument(fmt::format("redirect URI '{}' contains a space, a quote or a control character", uri));
    }
  }
  if (uri.find('#') != std::string_view::npos) {
    return InvalidArgument(fmt::format("redirect URI '{}' has a fragment", uri));
  }
  auto parts = SplitHttpUrl(uri);
  if (!parts) return InvalidArgument(fmt::format("redirect URI '{}' is not an https URL", uri));
  if (parts->host.empty() || parts->host == "[]")
    return InvalidArgument(fmt::format("redirect URI '{}' has no host", uri));
  if (parts->host.find('@') != std::string::npos || parts->port.find('@') != std::string::npos) {
    return InvalidArgument(fmt::format("redirect URI '{}' has user information", uri));
  }
  if (!parts->port.empty() && (parts->port.size() > 5 || !std::all_of(parts->port.begin(), parts->port.end(),
                                                                      [](char c) { return c >= '0' && c <= '9'; }))) {
    return InvalidArgument(fmt::format("redirect URI '{}' has an invalid port", uri));
  }
  if (parts->scheme == "http" && !IsLoopbackHost(parts->host)) {
    return InvalidArgument(
        fmt::format("redirect URI '{}' must use https (http is allowed only for 127.0.0.1, [::1] and localhost)", uri));
  }
  return Status::Ok();
}

bool RedirectUriMatches(std::string_view registered, std::string_view requested) {
  if (registered == requested) return true;
  auto a = SplitHttpUrl(registered);
  auto b = SplitHttpUrl(requested);
  if (!a || !b || a->scheme != "http" || b->scheme != "http") return false;
  // RFC 8252 7.3: native apps listen on a port the system picks, so any port
  // of a loopback IP literal matches. Not "localhost", which a hosts file
  // or a resolver could send elsewhere.
  const bool ip_literal = a->host == "127.0.0.1" || a->host == "[::1]";
  return ip_literal && a->host == b->host && a->rest == b->rest && !b->port.empty() &&
         b->port.find('@') == std::string::npos;
}

std::string ErrorName(OAuthErrorCode code, const Status& cause) {
  switch (code) {
    case OAuthErrorCode::kInvalidRequest:
      return "invalid_request";
    case OAuthErrorCode::kInvalidClient:
      return "invalid_client";
    case OAuthErrorCode::kInvalidGrant:
      return "invalid_grant";
    case OAuthErrorCode::kUnauthorizedClient:
      return "unauthorized_client";
    case OAuthErrorCode::kUnsupportedGrantType:
      return "unsupported_grant_type";
    case OAuthErrorCode::kUnsupportedResponseType:
      return "unsupported_response_type";
    case OAuthErrorCode::kInvalidScope:
      return "invalid_scope";
    case OAuthErrorCode::kAccessDenied:
      return "access_denied";
    case OAuthErrorCode::kInvalidRedirectUri:
      return "invalid_redirect_uri";
    case OAuthErrorCode::kInvalidClientMetadata:
      return "invalid_client_metadata";
    case OAuthErrorCode::kServerError:
      break;
  }
  return cause.code() == StatusCode::kUnavailable ? "temporarily_unavailable" : "server_error";
}

std::string BearerChallenge(const Status& status, std::string_view required_scope, bool token_sent) {
  if (status.code() == StatusCode::kPermissionDenied) {
    return fmt::format("Bearer realm=\"backpackd\", error=\"insufficient_scope\", scope=\"{}\"", required_scope);
  }
  if (!token_sent) return "Bearer realm=\"backpackd\"";
  return "Bearer realm=\"backpackd\", error=\"invalid_token\"";
}

bool OAuthClient::Allows(std::string_view grant_type) const { return Contains(metadata.grant_types, grant_type); }

std::vector<std::string> OAuthClient::Scopes() const { return SplitScope(metadata.scope); }

// --- The service ----------------------------------------------------------------

struct OAuthService::Impl {
  Impl(storage::Store& s, storage::KeyLocks& l, const config::OAuthConfig& c, UnixClock clk, RandomSource rnd)
      : store(s),
        locks(l),
        config(c),
        clock(std::move(clk)),
        random(std::move(rnd)),
        form_key(random(32)),
        clients(10000),
        last_used(10000) {}

  storage::Store& store;
  storage::KeyLocks& locks;
  const config::OAuthConfig& config;
  UnixClock clock;
  RandomSource random;
  const std::string form_key;
  // Clients never change, so caching them needs no coherence rule.
  LruCache<std::shared_ptr<const OAuthClient>> clients;
  // "<account>/<client>" -> the last_used_at last written, to write it at
  // most once a minute.
  LruCache<int64_t> last_used;

  std::string NewSecret() { return protocol::Base64UrlEncode(random(32)); }

  Result<std::optional<TokenRecord>> LoadToken(std::string_view hash) {
    auto bytes = store.Get(Family::kOAuthTokens, hash);
    if (!bytes.ok()) return bytes.status();
    if (!bytes->has_value()) return std::optional<TokenRecord>{};
    return ParseToken(**bytes);
  }

  Result<std::optional<CodeRecord>> LoadCode(std::string_view hash) {
    auto bytes = store.Get(Family::kOAuthCodes, hash);
    if (!bytes.ok()) return bytes.status();
    if (!bytes->has_value()) return std::optional<CodeRecord>{};
    return ParseCode(**bytes);
  }

  Result<std::optional<GrantRecord>> LoadGrant(std::string_view account, std::string_view client) {
    auto bytes = store.Get(Family::kOAuthGrants, GrantKey(account, client));
    if (!bytes.ok()) return bytes.status();
    if (!bytes->has_value()) return std::optional<GrantRecord>{};
    return ParseGrant(**bytes);
  }

  // Adds a new token of `kind` to `batch`; returns the token itself.
  std::string PutToken(storage::WriteBatch& batch, std::string_view kind, std::string_view account,
                       std::string_view client, std::string_view chain, const std::vector<std::string>& scopes,
                       int64_t ttl_seconds) {
    std::string token = NewSecret();
    const std::string hash = protocol::Sha256Hex(token);
    const int64_t now = clock();
    TokenRecord record{std::string(kind),
                       std::string(account),
                       std::string(client),
                       std::string(chain),
                       scopes,
                       now,
                       now + ttl_seconds,
                       false};
    batch.Put(Family::kOAuthTokens, hash, Serialize(record));
    batch.Put(Family::kOAuthGrantTokens, TokenIndexKey(account, client, chain, hash), "");
    return token;
  }

  TokenSet IssueTokens(storage::WriteBatch& batch, const OAuthClient& client, std::string_view account,
                       std::string_view chain, const std::vector<std::string>& access_scopes,
                       const std::vector<std::string>& refresh_scopes) {
    TokenSet set;
    set.expires_in = config.access_token_ttl_seconds;
    set.scopes = access_scopes;
    set.access_token = PutToken(batch, kAccess, account, client.id, chain, access_scopes, set.expires_in);
    if (client.Allows("refresh_token")) {
      set.refresh_token = PutToken(batch, kRefresh, account, client.id, chain, refresh_scopes,
                                   int64_t{config.refresh_token_ttl_days} * 86400);
    }
    return set;
  }

  // Adds deletes of every token under `prefix` of the grant-token index
  // ("<account>/", "<account>/<client>/" or a chain's) to `batch`.
  Status RevokeUnder(storage::WriteBatch& batch, std::string_view prefix, size_t* count = nullptr) {
    return store.Scan(Family::kOAuthGrantTokens, prefix, [&](std::string_view key, std::string_view) {
      const size_t slash = key.rfind('/');
      batch.Delete(Family::kOAuthTokens, key.substr(slash + 1));
      batch.Delete(Family::kOAuthGrantTokens, key);
      if (count) ++*count;
      return true;
    });
  }

  Status RevokeChain(storage::WriteBatch& batch, std::string_view account, std::string_view client,
                     std::string_view chain, size_t* count = nullptr) {
    return RevokeUnder(batch, fmt::format("{}/{}/{}/", account, client, chain), count);
  }

  // Whether the account still exists; tokens are never issued to a deleted
  // one. Read straight from the accounts family: AccountService's reads may
  // take the account's KeyLock, which must not be taken inside og:<account>
  // (striped locks do not nest). Under og:<account> this is race-free: an
  // account deletion removes the record first and then, under the same lock,
  // every grant and token (DeleteAll).
  Result<bool> AccountExists(const std::string& account) {
    auto bytes = store.Get(Family::kAccounts, account);
    if (!bytes.ok()) return bytes.status();
    return bytes->has_value();
  }

  // Records that the grant was used now, at most once a minute.
  void Touch(const std::string& account, const std::string& client) {
    const std::string key = GrantKey(account, client);
    const int64_t now = clock();
    if (auto last = last_used.Get(key); last && now - *last < kLastUsedResolution) return;
    auto guard = locks.Lock({GrantLock(account)});
    auto grant = LoadGrant(account, client);
    if (!grant.ok() || !grant->has_value()) return;  // revoked meanwhile, or a read error: nothing to record
    if (now - (*grant)->last_used_at >= kLastUsedResolution) {
      (*grant)->last_used_at = now;
      storage::WriteBatch batch;
      batch.Put(Family::kOAuthGrants, key, Serialize(**grant));
      if (Status s = store.Write(batch); !s.ok()) {
        log::Warn("oauth", "could not record the use of a grant", {{"account", account}, {"error", s.ToString()}});
        return;
      }
    }
    last_used.Put(key, now);
  }
};

OAuthService::OAuthService(storage::Store& store, storage::KeyLocks& locks, const config::OAuthConfig& config,
                           UnixClock clock, RandomSource random)
    : impl_(std::make_shared<Impl>(store, locks, config, std::move(clock), std::move(random))) {}

const config::OAuthConfig& OAuthService::config() const { return impl_->config; }

std::string OAuthService::NewNonce() { return impl_->NewSecret(); }

OAuthResult<RegisteredClient> OAuthService::RegisterClient(ClientMetadata m) {
  Impl& d = *impl_;
  auto bad = [](std::string description) {
    return Error(OAuthErrorCode::kInvalidClientMetadata, std::move(description));
  };
  // Names and free text.
  while (!m.client_name.empty() && m.client_name.back() == ' ') m.client_name.pop_back();
  while (!m.client_name.empty() && m.client_name.front() == ' ') m.client_name.erase(0, 1);
  if (m.client_name.empty()) return bad("client_name is required");
  for (const auto& [name, value] : {std::pair<std::string_view, const std::string*>{"client_name", &m.client_name},
                                    {"software_id", &m.software_id},
                                    {"software_version", &m.software_version}}) {
    if (Status s = CheckText(name, *value, kMaxNameBytes); !s.ok()) return bad(s.message());
  }
  // Redirect URIs.
  if (m.redirect_uris.empty()) return Error(OAuthErrorCode::kInvalidRedirectUri, "redirect_uris is required");
  if (m.redirect_uris.size() > kMaxRedirectUris) {
    return Error(OAuthErrorCode::kInvalidRedirectUri, "at most 10 redirect_uris may be registered");
  }
  std::vector<std::string> uris;
  for (auto& uri : m.redirect_uris) {
    if (Status s = CheckRedirectUri(uri); !s.ok()) return Error(OAuthErrorCode::kInvalidRedirectUri, s.message());
    if (!Contains(uris, uri)) uris.push_back(std::move(uri));
  }
  m.redirect_uris = std::move(uris);
  // Grant and response types.
  if (m.grant_types.empty()) m.grant_types = {"authorization_code"};
  for (const auto& g : m.grant_types) {
    if (g != "authorization_code" && g != "refresh_token") {
      return bad(fmt::format("grant type '{}' is not supported (authorization_code, refresh_token)", g));
    }
  }
  if (!Contains(m.grant_types, "authorization_code")) return bad("grant_types must include authorization_code");
  std::vector<std::string> grants;
  for (const char* g : {"authorization_code", "refresh_token"}) {
    if (Contains(m.grant_types, g)) grants.emplace_back(g);
  }
  m.grant_types = std::move(grants);
  if (m.response_types.empty()) m.response_types = {"code"};
  for (const auto& r : m.response_types) {
    if (r != "code") return bad(fmt::format("response type '{}' is not supported (code)", r));
  }
  m.response_types = {"code"};
  // Authentication at the token endpoint.
  if (m.token_endpoint_auth_method.empty()) m.token_endpoint_auth_method = "client_secret_basic";
  if (m.token_endpoint_auth_method != "client_secret_basic" && m.token_endpoint_auth_method != "client_secret_post" &&
      m.token_endpoint_auth_method != "none") {
    return bad(
        fmt::format("token_endpoint_auth_method '{}' is not supported "
                    "(client_secret_basic, client_secret_post, none)",
                    m.token_endpoint_auth_method));
  }
  // Scope.
  if (m.scope.size() > kMaxScopeBytes || HasControl(m.scope)) return bad("scope is malformed");
  std::vector<std::string> scopes = SplitScope(m.scope);
  for (const auto& s : scopes) {
    if (ScopeDescription(s).empty()) return bad(fmt::format("scope '{}' is not offered by this server", s));
  }
  if (scopes.empty()) {
    for (const auto& known : KnownScopes()) scopes.emplace_back(known.uri);
  }
  m.scope = JoinScopes(Ordered(scopes));
  // Links.
  for (const auto& [name, value] : {std::pair<std::string_view, const std::string*>{"client_uri", &m.client_uri},
                                    {"logo_uri", &m.logo_uri},
                                    {"tos_uri", &m.tos_uri},
                                    {"policy_uri", &m.policy_uri}}) {
    if (value->empty()) continue;
    if (value->size() > kMaxUriBytes) return bad(fmt::format("{} is longer than 2000 bytes", name));
    auto parts = SplitHttpUrl(*value);
    const bool clean = std::none_of(value->begin(), value->end(), [](char c) {
      const auto u = static_cast<unsigned char>(c);
      return u <= 0x20 || u == 0x7f || c == '"' || c == '\'' || c == '<' || c == '>' || c == '\\' || c == '`';
    });
    if (!parts || parts->host.empty() || !clean) return bad(fmt::format("{} must be an http or https URL", name));
  }
  // Contacts.
  if (m.contacts.size() > kMaxContacts) return bad("at most 10 contacts may be given");
  for (const auto& c : m.contacts) {
    if (c.empty()) return bad("a contact is empty");
    if (Status s = CheckText("a contact", c, kMaxContactBytes); !s.ok()) return bad(s.message());
  }

  RegisteredClient out;
  out.client.id = protocol::Base64UrlEncode(d.random(16));
  out.client.issued_at = d.clock();
  out.client.metadata = std::move(m);
  if (!out.client.is_public()) {
    out.secret = d.NewSecret();
    out.client.secret_hash = protocol::Sha256Hex(out.secret);
  }
  storage::WriteBatch batch;
  batch.Put(Family::kOAuthClients, out.client.id, SerializeClient(out.client));
  if (Status s = d.store.Write(batch); !s.ok()) return s;
  d.clients.Put(out.client.id, std::make_shared<const OAuthClient>(out.client));
  log::Info("oauth", "client registered",
            {{"client", out.client.id}, {"public", out.client.is_public()}, {"name", out.client.metadata.client_name}});
  return out;
}

Result<std::optional<OAuthClient>> OAuthService::FindClient(std::string_view client_id) {
  Impl& d = *impl_;
  if (client_id.empty() || client_id.size() > kMaxSecretBytes) return std::optional<OAuthClient>{};
  const std::string key(client_id);
  if (auto hit = d.clients.Get(key)) return std::optional<OAuthClient>(**hit);
  auto bytes = d.store.Get(Family::kOAuthClients, client_id);
  if (!bytes.ok()) return bytes.status();
  if (!bytes->has_value()) return std::optional<OAuthClient>{};
  auto client = ParseClient(**bytes);
  if (!client.ok()) return client.status();
  d.clients.Put(key, std::make_shared<const OAuthClient>(*client));
  return std::optional<OAuthClient>(std::move(*client));
}

OAuthResult<ValidatedAuthorization> OAuthService::CheckAuthorization(const AuthorizationRequest& r) {
  auto repeated = [&r](std::string_view name) { return Contains(r.repeated, name); };
  // Until the client and its redirect URI are established, errors are shown
  // to the earner: redirecting would make this server an open redirector.
  if (repeated("client_id")) return Error(OAuthErrorCode::kInvalidRequest, "client_id is repeated");
  if (r.client_id.empty()) return Error(OAuthErrorCode::kInvalidRequest, "client_id is missing");
  auto found = FindClient(r.client_id);
  if (!found.ok()) return found.status();
  if (!found->has_value())
    return Error(OAuthErrorCode::kInvalidClient, "no application is registered with this client_id");
  ValidatedAuthorization v;
  v.client = std::move(**found);
  if (repeated("redirect_uri")) return Error(OAuthErrorCode::kInvalidRequest, "redirect_uri is repeated");
  if (r.redirect_uri.empty()) {
    if (v.client.metadata.redirect_uris.size() != 1) {
      return Error(OAuthErrorCode::kInvalidRequest,
                   "redirect_uri is missing, and the application registered more than one");
    }
    v.redirect_uri = v.client.metadata.redirect_uris.front();
  } else {
    const auto& registered = v.client.metadata.redirect_uris;
    if (std::none_of(registered.begin(), registered.end(),
                     [&r](const std::string& uri) { return RedirectUriMatches(uri, r.redirect_uri); })) {
      return Error(OAuthErrorCode::kInvalidRequest, "redirect_uri is not one the application registered");
    }
    v.redirect_uri = r.redirect_uri;
    v.redirect_uri_given = true;
  }

  // From here on, errors go back to the client (RFC 6749 4.1.2.1).
  auto fail = [&v](OAuthErrorCode code, std::string description) {
    v.error = Error(code, std::move(description));
    return v;
  };
  if (!repeated("state") && r.state.size() <= kMaxStateBytes) v.state = r.state;
  if (!r.repeated.empty())
    return fail(OAuthErrorCode::kInvalidRequest, fmt::format("{} is repeated", r.repeated.front()));
  if (r.state.size() > kMaxStateBytes) return fail(OAuthErrorCode::kInvalidRequest, "state is longer than 1024 bytes");
  if (r.response_type.empty()) return fail(OAuthErrorCode::kInvalidRequest, "response_type is missing");
  if (r.response_type != "code") {
    return fail(OAuthErrorCode::kUnsupportedResponseType, "only response_type=code is supported");
  }
  if (r.code_challenge.empty()) {
    return fail(OAuthErrorCode::kInvalidRequest, "code_challenge is required (PKCE with S256)");
  }
  if (!r.code_challenge_method.empty() && !r.code_challange_method.empty() &&
      r.code_challenge_method != r.code_challange_method) {
    return fail(OAuthErrorCode::kInvalidRequest, "code_challenge_method and code_challange_method disagree");
  }
  const std::string& method = r.code_challenge_method.empty() ? r.code_challange_method : r.code_challenge_method;
  if (method != "S256") {
    return fail(OAuthErrorCode::kInvalidRequest, "code_challenge_method must be S256 (plain is not accepted)");
  }
  const bool challenge_ok =
      r.code_challenge.size() == 43 && std::all_of(r.code_challenge.begin(), r.code_challenge.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
      });
  if (!challenge_ok) {
    return fail(OAuthErrorCode::kInvalidRequest, "code_challenge must be the base64url SHA-256 of the verifier");
  }
  v.code_challenge = r.code_challenge;
  const std::vector<std::string> registered = v.client.Scopes();
  if (r.scope.size() > kMaxScopeBytes || HasControl(r.scope))
    return fail(OAuthErrorCode::kInvalidScope, "scope is malformed");
  std::vector<std::string> scopes = r.scope.empty() ? registered : SplitScope(r.scope);
  for (const auto& s : scopes) {
    if (ScopeDescription(s).empty()) return fail(OAuthErrorCode::kInvalidScope, fmt::format("unknown scope '{}'", s));
    if (!Contains(registered, s)) {
      return fail(OAuthErrorCode::kInvalidScope, fmt::format("the application did not register for scope '{}'", s));
    }
  }
  if (scopes.empty()) return fail(OAuthErrorCode::kInvalidScope, "no scope was requested");
  v.scopes = Ordered(scopes);
  return v;
}

OAuthResult<std::string> OAuthService::IssueCode(const std::string& account_id, const ValidatedAuthorization& request) {
  Impl& d = *impl_;
  if (request.error) return *request.error;
  std::string code = d.NewSecret();
  const int64_t now = d.clock();
  CodeRecord record;
  record.account = account_id;
  record.client = request.client.id;
  record.redirect_uri = request.redirect_uri;
  record.redirect_uri_given = request.redirect_uri_given;
  record.challenge = request.code_challenge;
  record.scopes = request.scopes;
  record.created_at = now;
  record.expires_at = now + d.config.code_ttl_seconds;
  record.purge_at = record.expires_at;
  storage::WriteBatch batch;
  batch.Put(Family::kOAuthCodes, protocol::Sha256Hex(code), Serialize(record));
  if (Status s = d.store.Write(batch); !s.ok()) return s;
  return code;
}

OAuthResult<OAuthClient> OAuthService::AuthenticateClient(const ClientCredentials& credentials) {
  const OAuthError denied = Error(OAuthErrorCode::kInvalidClient, "client authentication failed");
  auto found = FindClient(credentials.client_id);
  if (!found.ok()) return found.status();
  if (!found->has_value()) return denied;
  OAuthClient& client = **found;
  if (client.is_public()) {
    if (credentials.method != ClientAuthMethod::kNone || !credentials.secret.empty()) {
      return Error(OAuthErrorCode::kInvalidClient, "this client is public and has no secret");
    }
    return std::move(client);
  }
  if (credentials.method == ClientAuthMethod::kNone) {
    return Error(OAuthErrorCode::kInvalidClient, "this client must authenticate with its client_secret");
  }
  if (credentials.secret.empty() || credentials.secret.size() > kMaxSecretBytes ||
      !protocol::ConstantTimeEquals(protocol::Sha256Hex(credentials.secret), client.secret_hash)) {
    return denied;
  }
  return std::move(client);
}

OAuthResult<TokenSet> OAuthService::ExchangeCode(const OAuthClient& client, std::string_view code,
                                                 std::string_view redirect_uri, std::string_view code_verifier) {
  Impl& d = *impl_;
  const OAuthError invalid = Error(OAuthErrorCode::kInvalidGrant, "the code is invalid, expired or already used");
  if (!client.Allows("authorization_code")) {
    return Error(OAuthErrorCode::kUnauthorizedClient, "the client is not registered for authorization_code");
  }
  if (code.empty() || code.size() > kMaxSecretBytes) return invalid;
  const std::string hash = protocol::Sha256Hex(code);
  auto first = d.LoadCode(hash);
  if (!first.ok()) return first.status();
  if (!first->has_value()) return invalid;
  const std::string account = (*first)->account;

  auto guard = d.locks.Lock({CodeLock(hash), GrantLock(account)});
  auto loaded = d.LoadCode(hash);  // may have been used meanwhile
  if (!loaded.ok()) return loaded.status();
  if (!loaded->has_value()) return invalid;
  CodeRecord record = std::move(**loaded);
  const int64_t now = d.clock();
  if (record.used) {
    // RFC 6749 4.1.2: someone holds a copy of the code; the tokens issued
    // for it may be in the wrong hands too.
    storage::WriteBatch batch;
    size_t revoked = 0;
    if (!record.chain.empty()) {
      if (Status s = d.RevokeChain(batch, record.account, record.client, record.chain, &revoked); !s.ok()) return s;
    }
    if (Status s = d.store.Write(batch); !s.ok()) return s;
    log::Warn("oauth", "authorization code used twice; its tokens are revoked",
              {{"client", record.client}, {"account", record.account}, {"revoked", revoked}});
    return invalid;
  }
  if (record.expires_at <= now) return invalid;
  if (record.client != client.id) return invalid;
  const bool redirect_ok = record.redirect_uri_given ? redirect_uri == record.redirect_uri
                                                     : (redirect_uri.empty() || redirect_uri == record.redirect_uri);
  if (!redirect_ok)
    return Error(OAuthErrorCode::kInvalidGrant, "redirect_uri differs from the authorization request's");
  if (!IsPkceVerifier(code_verifier) ||
      !protocol::ConstantTimeEquals(PkceS256Challenge(code_verifier), record.challenge)) {
    return Error(OAuthErrorCode::kInvalidGrant, "code_verifier does not match the code_challenge");
  }
  auto exists = d.AccountExists(record.account);
  if (!exists.ok()) return exists.status();
  if (!*exists) return invalid;

  storage::WriteBatch batch;
  record.used = true;
  record.chain = protocol::HexEncode(d.random(16));
  record.purge_at = now + kUsedCodeKeepSeconds;
  batch.Put(Family::kOAuthCodes, hash, Serialize(record));
  TokenSet tokens = d.IssueTokens(batch, client, record.account, record.chain, record.scopes, record.scopes);
  auto grant = d.LoadGrant(record.account, client.id);
  if (!grant.ok()) return grant.status();
  GrantRecord g = grant->value_or(GrantRecord{record.account, client.id, {}, record.created_at, 0});
  for (const auto& s : record.scopes) {
    if (!Contains(g.scopes, s)) g.scopes.push_back(s);
  }
  g.scopes = Ordered(g.scopes);
  g.last_used_at = now;
  batch.Put(Family::kOAuthGrants, GrantKey(record.account, client.id), Serialize(g));
  if (Status s = d.store.Write(batch); !s.ok()) return s;
  d.last_used.Put(GrantKey(record.account, client.id), now);
  log::Info("oauth", "code exchanged", {{"client", client.id}, {"account", record.account}});
  return tokens;
}

OAuthResult<TokenSet> OAuthService::Refresh(const OAuthClient& client, std::string_view refresh_token,
                                            std::string_view scope) {
  Impl& d = *impl_;
  const OAuthError invalid = Error(OAuthErrorCode::kInvalidGrant, "the refresh token is invalid, expired or revoked");
  if (!client.Allows("refresh_token")) {
    return Error(OAuthErrorCode::kUnauthorizedClient, "the client is not registered for refresh_token");
  }
  if (refresh_token.empty() || refresh_token.size() > kMaxSecretBytes) return invalid;
  const std::string hash = protocol::Sha256Hex(refresh_token);
  auto first = d.LoadToken(hash);
  if (!first.ok()) return first.status();
  if (!first->has_value() || (*first)->kind != kRefresh || (*first)->client != client.id) return invalid;
  const std::string account = (*first)->account;

  auto guard = d.locks.Lock({GrantLock(account)});
  auto loaded = d.LoadToken(hash);
  if (!loaded.ok()) return loaded.status();
  if (!loaded->has_value()) return invalid;
  TokenRecord old = std::move(**loaded);
  const int64_t now = d.clock();
  if (old.rotated) {
    // A refresh token is used once; a second use means two parties hold it.
    storage::WriteBatch batch;
    size_t revoked = 0;
    if (Status s = d.RevokeChain(batch, old.account, old.client, old.chain, &revoked); !s.ok()) return s;
    if (Status s = d.store.Write(batch); !s.ok()) return s;
    log::Warn("oauth", "refresh token used twice; its chain is revoked",
              {{"client", old.client}, {"account", old.account}, {"revoked", revoked}});
    return invalid;
  }
  if (old.expires_at <= now) return invalid;
  std::vector<std::string> access_scopes = old.scopes;
  if (!scope.empty()) {
    access_scopes = SplitScope(scope);
    for (const auto& s : access_scopes) {
      if (!Contains(old.scopes, s)) {
        return Error(OAuthErrorCode::kInvalidScope, fmt::format("scope '{}' was not granted", s));
      }
    }
    access_scopes = Ordered(access_scopes);
  }
  auto exists = d.AccountExists(old.account);
  if (!exists.ok()) return exists.status();
  if (!*exists) return invalid;

  storage::WriteBatch batch;
  old.rotated = true;
  batch.Put(Family::kOAuthTokens, hash, Serialize(old));
  TokenSet tokens = d.IssueTokens(batch, client, old.account, old.chain, access_scopes, old.scopes);
  if (Status s = d.store.Write(batch); !s.ok()) return s;
  return tokens;
}

Status OAuthService::Revoke(const OAuthClient& client, std::string_view token) {
  Impl& d = *impl_;
  if (token.empty() || token.size() > kMaxSecretBytes) return Status::Ok();
  const std::string hash = protocol::Sha256Hex(token);
  auto first = d.LoadToken(hash);
  if (!first.ok()) return first.status();
  if (!first->has_value() || (*first)->client != client.id) return Status::Ok();
  const std::string account = (*first)->account;
  auto guard = d.locks.Lock({GrantLock(account)});
  auto loaded = d.LoadToken(hash);
  if (!loaded.ok()) return loaded.status();
  if (!loaded->has_value()) return Status::Ok();
  const TokenRecord& t = **loaded;
  storage::WriteBatch batch;
  if (t.kind == kRefresh) {
    BP_RETURN_IF_ERROR(d.RevokeChain(batch, t.account, t.client, t.chain));
  } else {
    batch.Delete(Family::kOAuthTokens, hash);
    batch.Delete(Family::kOAuthGrantTokens, TokenIndexKey(t.account, t.client, t.chain, hash));
  }
  BP_RETURN_IF_ERROR(d.store.Write(batch));
  log::Info("oauth", "token revoked", {{"client", client.id}, {"kind", t.kind}});
  return Status::Ok();
}

Result<AccessGrant> OAuthService::Authenticate(std::string_view bearer_token, std::string_view required_scope) {
  Impl& d = *impl_;
  const Status denied = Unauthenticated("missing, invalid, expired or revoked access token");
  if (bearer_token.empty() || bearer_token.size() > kMaxSecretBytes) return denied;
  auto token = d.LoadToken(protocol::Sha256Hex(bearer_token));
  if (!token.ok()) return token.status();
  if (!token->has_value()) return denied;
  const TokenRecord& t = **token;
  if (t.kind != kAccess || t.expires_at <= d.clock()) return denied;
  if (!required_scope.empty() && !Contains(t.scopes, required_scope)) {
    return PermissionDenied(fmt::format("the access token does not grant the scope {}", required_scope));
  }
  d.Touch(t.account, t.client);
  return AccessGrant{t.account, t.client, t.scopes, t.expires_at};
}

Result<std::optional<TokenInfo>> OAuthService::Introspect(const OAuthClient& client, std::string_view token) {
  Impl& d = *impl_;
  if (token.empty() || token.size() > kMaxSecretBytes) return std::optional<TokenInfo>{};
  auto record = d.LoadToken(protocol::Sha256Hex(token));
  if (!record.ok()) return record.status();
  if (!record->has_value()) return std::optional<TokenInfo>{};
  const TokenRecord& t = **record;
  if (t.client != client.id || t.rotated || t.expires_at <= d.clock()) return std::optional<TokenInfo>{};
  return std::optional<TokenInfo>(TokenInfo{t.kind == kRefresh, t.client, t.scopes, t.issued_at, t.expires_at});
}

Result<std::vector<AuthorizedApp>> OAuthService::ListApps(const std::string& account_id) {
  Impl& d = *impl_;
  std::vector<GrantRecord> grants;
  BP_RETURN_IF_ERROR(
      d.store.Scan(Family::kOAuthGrants, account_id + "/", [&](std::string_view, std::string_view value) {
        if (auto g = ParseGrant(value)) grants.push_back(std::move(*g));
        return true;
      }));
  std::vector<AuthorizedApp> apps;
  for (auto& g : grants) {
    AuthorizedApp app;
    app.client_id = g.client;
    app.scopes = std::move(g.scopes);
    app.granted_at = g.granted_at;
    app.last_used_at = g.last_used_at;
    auto client = FindClient(g.client);
    if (!client.ok()) return client.status();
    if (client->has_value()) {
      app.client_name = (*client)->metadata.client_name;
      app.client_uri = (*client)->metadata.client_uri;
    }
    apps.push_back(std::move(app));
  }
  std::stable_sort(apps.begin(), apps.end(),
                   [](const AuthorizedApp& a, const AuthorizedApp& b) { return a.granted_at < b.granted_at; });
  return apps;
}

Status OAuthService::RevokeApp(const std::string& account_id, std::string_view client_id) {
  Impl& d = *impl_;
  if (client_id.empty() || client_id.find('/') != std::string_view::npos) return NotFound("no such authorized app");
  auto guard = d.locks.Lock({GrantLock(account_id)});
  auto grant = d.LoadGrant(account_id, client_id);
  if (!grant.ok()) return grant.status();
  storage::WriteBatch batch;
  size_t revoked = 0;
  BP_RETURN_IF_ERROR(d.RevokeUnder(batch, fmt::format("{}/{}/", account_id, client_id), &revoked));
  if (!grant->has_value() && revoked == 0) return NotFound("no such authorized app");
  batch.Delete(Family::kOAuthGrants, GrantKey(account_id, client_id));
  BP_RETURN_IF_ERROR(d.store.Write(batch));
  d.last_used.Erase(GrantKey(account_id, client_id));
  log::Info("oauth", "app access revoked",
            {{"account", account_id}, {"client", std::string(client_id)}, {"tokens", revoked}});
  return Status::Ok();
}

Status OAuthService::DeleteAll(const std::string& account_id) {
  Impl& d = *impl_;
  auto guard = d.locks.Lock({GrantLock(account_id)});
  storage::WriteBatch batch;
  BP_RETURN_IF_ERROR(d.RevokeUnder(batch, account_id + "/"));
  BP_RETURN_IF_ERROR(d.store.Scan(Family::kOAuthGrants, account_id + "/", [&](std::string_view key, std::string_view) {
    batch.Delete(Family::kOAuthGrants, key);
    return true;
  }));
  return d.store.Write(batch);
}

Result<size_t> OAuthService::PurgeExpired(size_t limit) {
  Impl& d = *impl_;
  const int64_t now = d.clock();
  storage::WriteBatch batch;
  size_t purged = 0;
  BP_RETURN_IF_ERROR(d.store.Scan(Family::kOAuthCodes, "", [&](std::string_view key, std::string_view value) {
    auto c = ParseCode(value);
    if (c && c->purge_at > now) return true;
    batch.Delete(Family::kOAuthCodes, key);
    return ++purged < limit;
  }));
  if (purged < limit) {
    BP_RETURN_IF_ERROR(d.store.Scan(Family::kOAuthTokens, "", [&](std::string_view key, std::string_view value) {
      auto t = ParseToken(value);
      if (t && t->expires_at > now) return true;
      batch.Delete(Family::kOAuthTokens, key);
      if (t) batch.Delete(Family::kOAuthGrantTokens, TokenIndexKey(t->account, t->client, t->chain, key));
      return ++purged < limit;
    }));
  }
  if (batch.empty()) return size_t{0};
  BP_RETURN_IF_ERROR(d.store.Write(batch));
  return purged;
}

std::string OAuthService::FormToken(std::string_view purpose, std::string_view binding) const {
  const std::string& key = impl_->form_key;
  std::string message(purpose);
  message.push_back('\0');
  message.append(binding);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &length) == nullptr) {
    return {};  // never matches: CheckFormToken refuses an empty token
  }
  return protocol::Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(mac), length));
}

bool OAuthService::CheckFormToken(std::string_view purpose, std::string_view binding, std::string_view token) const {
  if (token.empty()) return false;
  const std::string expected = FormToken(purpose, binding);
  return !expected.empty() && protocol::ConstantTimeEquals(expected, token);
}

}  // namespace backpack
