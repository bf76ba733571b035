// OAuthService against a real RocksDB store, with an injected clock: PKCE,
// registration rules, codes, tokens, rotation, reuse detection, revocation
// and the earner's grants.
#include "daemon/oauth.h"

#include <atomic>

#include <gtest/gtest.h>
#include <openssl/rand.h>

#include "protocol/encoding.h"
#include "storage/store.h"
#include "tests/support/test_http.h"

namespace backpack {
namespace {

using storage::Family;
using testing::TempDir;

constexpr char kVerifier[] = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
constexpr char kChallenge[] = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
constexpr char kRedirect[] = "https://issuer.example/o/redirect";

// RFC 7636 appendix B.
TEST(Pkce, KnownAnswerFromRfc7636) {
  EXPECT_EQ(PkceS256Challenge(kVerifier), kChallenge);
  EXPECT_TRUE(IsPkceVerifier(kVerifier));
}

TEST(Pkce, VerifierSyntax) {
  EXPECT_FALSE(IsPkceVerifier(std::string(42, 'a')));
  EXPECT_TRUE(IsPkceVerifier(std::string(43, 'a')));
  EXPECT_TRUE(IsPkceVerifier(std::string(128, '~')));
  EXPECT_FALSE(IsPkceVerifier(std::string(129, 'a')));
  EXPECT_FALSE(IsPkceVerifier(std::string(42, 'a') + "+"));
  EXPECT_FALSE(IsPkceVerifier(std::string(42, 'a') + "="));
  EXPECT_TRUE(IsPkceVerifier("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789-._~"));
}

TEST(RedirectUris, RegistrationRules) {
  for (const char* good :
       {"https://issuer.example/cb", "https://issuer.example:8443/cb?x=1", "http://127.0.0.1:8000/cb",
        "http://[::1]:9/cb", "http://localhost/cb", "HTTPS://Issuer.Example/cb"}) {
    EXPECT_TRUE(CheckRedirectUri(good).ok()) << good << ": " << CheckRedirectUri(good).ToString();
  }
  for (const char* bad : {"http://issuer.example/cb", "https://issuer.example/cb#frag", "https:///cb", "https://",
                          "ftp://issuer.example/cb", "com.example.app:/cb", "https://user@issuer.example/cb",
                          "https://issuer.example/c b", "https://issuer.example/\"cb", "https://issuer.example:x/cb",
                          "http://127.0.0.1.evil.example/cb", "/relative", ""}) {
    EXPECT_FALSE(CheckRedirectUri(bad).ok()) << bad;
  }
  EXPECT_FALSE(CheckRedirectUri("https://issuer.example/" + std::string(2000, 'a')).ok());
}

TEST(RedirectUris, MatchingIsExactButForLoopbackPorts) {
  EXPECT_TRUE(RedirectUriMatches("https://a.example/cb", "https://a.example/cb"));
  EXPECT_FALSE(RedirectUriMatches("https://a.example/cb", "https://a.example/cb/"));
  EXPECT_FALSE(RedirectUriMatches("https://a.example/cb", "https://A.example/cb"));
  EXPECT_FALSE(RedirectUriMatches("https://a.example/cb", "https://a.example:444/cb"));
  EXPECT_FALSE(RedirectUriMatches("https://a.example/cb", "https://a.example/cb?x=1"));
  // RFC 8252 7.3: any port on a loopback IP literal.
  EXPECT_TRUE(RedirectUriMatches("http://127.0.0.1/cb", "http://127.0.0.1:51234/cb"));
  EXPECT_TRUE(RedirectUriMatches("http://127.0.0.1:80/cb", "http://127.0.0.1:51234/cb"));
  EXPECT_TRUE(RedirectUriMatches("http://[::1]:1/cb", "http://[::1]:2/cb"));
  EXPECT_FALSE(RedirectUriMatches("http://127.0.0.1/cb", "http://127.0.0.1:51234/other"));
  EXPECT_FALSE(RedirectUriMatches("http://localhost/cb", "http://localhost:51234/cb"));
  EXPECT_FALSE(RedirectUriMatches("http://127.0.0.1/cb", "http://127.0.0.1:1@evil.example/cb"));
}

TEST(Scopes, SpecStringsAndDescriptions) {
  EXPECT_EQ(KnownScopes().size(), 8u);
  for (const auto& s : KnownScopes()) {
    EXPECT_TRUE(s.uri.starts_with("https://purl.imsglobal.org/spec/ob/v")) << s.uri;
    EXPECT_FALSE(s.description.empty());
  }
  EXPECT_FALSE(ScopeDescription("https://purl.imsglobal.org/spec/ob/v3p0/scope/credential.readonly").empty());
  EXPECT_FALSE(ScopeDescription("https://purl.imsglobal.org/spec/ob/v2p1/scope/assertion.create").empty());
  EXPECT_TRUE(ScopeDescription("https://purl.imsglobal.org/spec/ob/v3p0/scope/credential.delete").empty());
}

class OAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    storage::StoreOptions options;
    options.path = dir_.path() + "/db";
    auto store = storage::OpenRocksStore(options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    service_ = std::make_unique<OAuthService>(
        *store_, locks_, config_, [this] { return now_.load(); },
        [](size_t n) {
          std::string out(n, '\0');
          RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n));
          return out;
        });
    AddAccount(kAccount);
  }

  // Codes are only exchanged for accounts that exist.
  void AddAccount(const std::string& id) {
    storage::WriteBatch batch;
    batch.Put(Family::kAccounts, id, "{}");
    ASSERT_TRUE(store_->Write(batch).ok());
  }

  static ClientMetadata Metadata() {
    ClientMetadata m;
    m.client_name = "Badge Issuer";
    m.redirect_uris = {kRedirect};
    m.grant_types = {"authorization_code", "refresh_token"};
    m.scope = std::string(kScopeObV2p1AssertionCreate) + " " + std::string(kScopeObV3p0CredentialUpsert);
    m.client_uri = "https://issuer.example";
    return m;
  }

  RegisteredClient Register(ClientMetadata m = Metadata()) {
    auto r = service_->RegisterClient(std::move(m));
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().description);
    return r.ok() ? *r : RegisteredClient{};
  }

  static AuthorizationRequest Request(const OAuthClient& client) {
    AuthorizationRequest r;
    r.response_type = "code";
    r.client_id = client.id;
    r.redirect_uri = kRedirect;
    r.scope = std::string(kScopeObV2p1AssertionCreate);
    r.state = "xyz";
    r.code_challenge = kChallenge;
    r.code_challenge_method = "S256";
    return r;
  }

  std::string Code(const AuthorizationRequest& r, const std::string& account = kAccount) {
    auto v = service_->CheckAuthorization(r);
    EXPECT_TRUE(v.ok());
    if (!v.ok()) return {};
    EXPECT_FALSE(v->error) << v->error->description;
    auto code = service_->IssueCode(account, *v);
    EXPECT_TRUE(code.ok());
    return code.ok() ? *code : std::string();
  }

  std::string Code(const OAuthClient& client) { return Code(Request(client)); }

  TokenSet Tokens(const OAuthClient& client) {
    auto t = service_->ExchangeCode(client, Code(client), kRedirect, kVerifier);
    EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().description);
    return t.ok() ? *t : TokenSet{};
  }

  size_t Count(Family family) {
    size_t n = 0;
    EXPECT_TRUE(store_->Scan(family, "", [&](std::string_view, std::string_view) { return ++n, true; }).ok());
    return n;
  }

  bool StoreHolds(std::string_view secret) {
    bool found = false;
    for (Family f : {Family::kOAuthClients, Family::kOAuthCodes, Family::kOAuthTokens, Family::kOAuthGrants,
                     Family::kOAuthGrantTokens}) {
      EXPECT_TRUE(store_
                      ->Scan(f, "",
                             [&](std::string_view k, std::string_view v) {
                               found = found || k.find(secret) != std::string_view::npos ||
                                       v.find(secret) != std::string_view::npos;
                               return true;
                             })
                      .ok());
    }
    return found;
  }

  StatusCode AuthCode(const std::string& token, std::string_view scope = {}) {
    return service_->Authenticate(token, scope).status().code();
  }

  static constexpr char kAccount[] = "0123456789abcdef0123456789abcdef";
  TempDir dir_;
  config::OAuthConfig config_;
  std::unique_ptr<storage::Store> store_;
  storage::KeyLocks locks_;
  std::unique_ptr<OAuthService> service_;
  std::atomic<int64_t> now_{1'800'000'000};
};

TEST_F(OAuthTest, RegistrationFillsDefaultsAndKeepsOnlyTheSecretsHash) {
  ClientMetadata m;
  m.client_name = "  Minimal  ";
  m.redirect_uris = {kRedirect, kRedirect};
  RegisteredClient r = Register(m);
  EXPECT_EQ(r.client.metadata.client_name, "Minimal");
  EXPECT_EQ(r.client.metadata.redirect_uris, std::vector<std::string>{kRedirect});
  EXPECT_EQ(r.client.metadata.grant_types, std::vector<std::string>{"authorization_code"});
  EXPECT_EQ(r.client.metadata.response_types, std::vector<std::string>{"code"});
  EXPECT_EQ(r.client.metadata.token_endpoint_auth_method, "client_secret_basic");
  EXPECT_EQ(r.client.Scopes().size(), KnownScopes().size());
  EXPECT_EQ(r.client.issued_at, now_.load());
  ASSERT_EQ(r.secret.size(), 43u);
  EXPECT_EQ(r.client.secret_hash, protocol::Sha256Hex(r.secret));
  EXPECT_FALSE(StoreHolds(r.secret));

  auto found = service_->FindClient(r.client.id);
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->metadata.client_name, "Minimal");
  EXPECT_FALSE((*found)->is_public());

  m.token_endpoint_auth_method = "none";
  RegisteredClient pub = Register(m);
  EXPECT_TRUE(pub.secret.empty());
  EXPECT_TRUE(pub.client.secret_hash.empty());
  EXPECT_TRUE(pub.client.is_public());
}

TEST_F(OAuthTest, RegistrationRefusesBadMetadata) {
  struct Case {
    const char* what;
    void (*change)(ClientMetadata&);
    OAuthErrorCode expected;
  };
  const Case cases[] = {
      {"no name", [](ClientMetadata& m) { m.client_name = " "; }, OAuthErrorCode::kInvalidClientMetadata},
      {"control in name", [](ClientMetadata& m) { m.client_name = "a\nb"; }, OAuthErrorCode::kInvalidClientMetadata},
      {"no redirect", [](ClientMetadata& m) { m.redirect_uris.clear(); }, OAuthErrorCode::kInvalidRedirectUri},
      {"http redirect", [](ClientMetadata& m) { m.redirect_uris = {"http://issuer.example/cb"}; },
       OAuthErrorCode::kInvalidRedirectUri},
      {"fragment", [](ClientMetadata& m) { m.redirect_uris = {"https://issuer.example/cb#x"}; },
       OAuthErrorCode::kInvalidRedirectUri},
      {"implicit grant", [](ClientMetadata& m) { m.grant_types = {"implicit"}; },
       OAuthErrorCode::kInvalidClientMetadata},
      {"refresh only", [](ClientMetadata& m) { m.grant_types = {"refresh_token"}; },
       OAuthErrorCode::kInvalidClientMetadata},
      {"token response", [](ClientMetadata& m) { m.response_types = {"token"}; },
       OAuthErrorCode::kInvalidClientMetadata},
      {"jwt auth", [](ClientMetadata& m) { m.token_endpoint_auth_method = "private_key_jwt"; },
       OAuthErrorCode::kInvalidClientMetadata},
      {"unknown scope", [](ClientMetadata& m) { m.scope = "openid"; }, OAuthErrorCode::kInvalidClientMetadata},
      {"javascript client_uri", [](ClientMetadata& m) { m.client_uri = "javascript:alert(1)"; },
       OAuthErrorCode::kInvalidClientMetadata},
      {"relative logo", [](ClientMetadata& m) { m.logo_uri = "/logo.png"; }, OAuthErrorCode::kInvalidClientMetadata},
      {"too many contacts", [](ClientMetadata& m) { m.contacts.assign(11, "a@b.example"); },
       OAuthErrorCode::kInvalidClientMetadata},
  };
  for (const Case& c : cases) {
    ClientMetadata m = Metadata();
    c.change(m);
    auto r = service_->RegisterClient(m);
    ASSERT_FALSE(r.ok()) << c.what;
    EXPECT_EQ(r.error().code, c.expected) << c.what << ": " << r.error().description;
  }
  EXPECT_EQ(Count(Family::kOAuthClients), 0u);
}

TEST_F(OAuthTest, AuthorizationErrorsBeforeTheRedirectUriAreNotRedirected) {
  const OAuthClient client = Register().client;
  AuthorizationRequest r = Request(client);
  r.client_id = "unknown";
  EXPECT_FALSE(service_->CheckAuthorization(r).ok());
  r = Request(client);
  r.redirect_uri = "https://evil.example/o/redirect";
  auto mismatch = service_->CheckAuthorization(r);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.error().code, OAuthErrorCode::kInvalidRequest);
  r = Request(client);
  r.repeated = {"redirect_uri"};
  EXPECT_FALSE(service_->CheckAuthorization(r).ok());
  // With a single registered URI it may be left out.
  r = Request(client);
  r.redirect_uri.clear();
  auto implied = service_->CheckAuthorization(r);
  ASSERT_TRUE(implied.ok());
  EXPECT_EQ(implied->redirect_uri, kRedirect);
  EXPECT_FALSE(implied->redirect_uri_given);
}

TEST_F(OAuthTest, AuthorizationErrorsAfterTheRedirectUriGoBackToTheClient) {
  const OAuthClient client = Register().client;
  auto error_of = [&](void (*change)(AuthorizationRequest&)) -> std::string {
    AuthorizationRequest r = Request(client);
    change(r);
    auto v = service_->CheckAuthorization(r);
    if (!v.ok()) return "not redirected";
    EXPECT_EQ(v->state, "xyz");
    return v->error ? v->error->name() : "ok";
  };
  EXPECT_EQ(error_of([](AuthorizationRequest&) {}), "ok");
  EXPECT_EQ(error_of([](AuthorizationRequest& r) { r.response_type = "token"; }), "unsupported_response_type");
  EXPECT_EQ(error_of([](AuthorizationRequest& r) { r.response_type.clear(); }), "invalid_request");
  EXPECT_EQ(error_of([](AuthorizationRequest& r) { r.code_challenge.clear(); }), "invalid_request");
  EXPECT_EQ(error_of([](AuthorizationRequest& r) { r.code_challenge_method = "plain"; }), "invalid_request");
  EXPECT_EQ(error_of([](AuthorizationRequest& r) { r.code_challenge_method.clear(); }), "invalid_request");
  EXPECT_EQ(error_of([](AuthorizationRequest& r) { r.code_challenge = "short"; }), "invalid_request");
  // The Badge Connect 2.1 example's spelling.
  EXPECT_EQ(error_of([](AuthorizationRequest& r) {
              r.code_challenge_method.clear();
              r.code_challange_method = "S256";
            }),
            "ok");
  EXPECT_EQ(error_of([](AuthorizationRequest& r) {
              r.code_challenge_method.clear();
              r.code_challange_method = "plain";
            }),
            "invalid_request");
  EXPECT_EQ(error_of([](AuthorizationRequest& r) { r.scope = "openid"; }), "invalid_scope");
  // Known, but not registered by this client.
  EXPECT_EQ(error_of([](AuthorizationRequest& r) { r.scope = std::string(kScopeObV3p0ProfileUpdate); }),
            "invalid_scope");
  EXPECT_EQ(error_of([](AuthorizationRequest& r) { r.repeated = {"scope"}; }), "invalid_request");

  // No scope: the client's registered ones, in the server's order.
  AuthorizationRequest r = Request(client);
  r.scope.clear();
  auto v = service_->CheckAuthorization(r);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->scopes, (std::vector<std::string>{std::string(kScopeObV2p1AssertionCreate),
                                                 std::string(kScopeObV3p0CredentialUpsert)}));
}

TEST_F(OAuthTest, CodeExchangeIssuesTokensThatAuthenticate) {
  const RegisteredClient reg = Register();
  const std::string code = Code(reg.client);
  ASSERT_EQ(code.size(), 43u);
  EXPECT_FALSE(StoreHolds(code));
  auto tokens = service_->ExchangeCode(reg.client, code, kRedirect, kVerifier);
  ASSERT_TRUE(tokens.ok()) << tokens.error().description;
  EXPECT_EQ(tokens->expires_in, config_.access_token_ttl_seconds);
  EXPECT_EQ(tokens->scopes, std::vector<std::string>{std::string(kScopeObV2p1AssertionCreate)});
  ASSERT_FALSE(tokens->refresh_token.empty());
  EXPECT_FALSE(StoreHolds(tokens->access_token));
  EXPECT_FALSE(StoreHolds(tokens->refresh_token));

  auto grant = service_->Authenticate(tokens->access_token, kScopeObV2p1AssertionCreate);
  ASSERT_TRUE(grant.ok()) << grant.status().ToString();
  EXPECT_EQ(grant->account_id, kAccount);
  EXPECT_EQ(grant->client_id, reg.client.id);
  EXPECT_EQ(grant->expires_at, now_ + config_.access_token_ttl_seconds);
  EXPECT_EQ(AuthCode(tokens->access_token), StatusCode::kOk);
  EXPECT_EQ(AuthCode(tokens->access_token, kScopeObV3p0CredentialReadonly), StatusCode::kPermissionDenied);
  // A refresh token is not an access token.
  EXPECT_EQ(AuthCode(tokens->refresh_token), StatusCode::kUnauthenticated);
  EXPECT_EQ(AuthCode("nonsense"), StatusCode::kUnauthenticated);
  EXPECT_EQ(AuthCode(""), StatusCode::kUnauthenticated);
}

TEST_F(OAuthTest, ClientsWithoutTheRefreshGrantGetNoRefreshToken) {
  ClientMetadata m = Metadata();
  m.grant_types = {"authorization_code"};
  const OAuthClient client = Register(m).client;
  TokenSet t = Tokens(client);
  EXPECT_FALSE(t.access_token.empty());
  EXPECT_TRUE(t.refresh_token.empty());
}

TEST_F(OAuthTest, CodesAreBoundToClientRedirectVerifierAndTime) {
  const OAuthClient client = Register().client;
  const OAuthClient other = Register().client;
  std::string code = Code(client);
  auto invalid_grant = [](const OAuthResult<TokenSet>& r) {
    return !r.ok() && r.error().code == OAuthErrorCode::kInvalidGrant;
  };
  EXPECT_TRUE(invalid_grant(service_->ExchangeCode(other, code, kRedirect, kVerifier)));
  EXPECT_TRUE(invalid_grant(service_->ExchangeCode(client, code, "https://issuer.example/other", kVerifier)));
  EXPECT_TRUE(invalid_grant(service_->ExchangeCode(client, code, "", kVerifier)));  // the request named it
  EXPECT_TRUE(invalid_grant(service_->ExchangeCode(client, code, kRedirect, std::string(43, 'a'))));
  EXPECT_TRUE(invalid_grant(service_->ExchangeCode(client, code, kRedirect, "short")));
  EXPECT_TRUE(invalid_grant(service_->ExchangeCode(client, "unknown", kRedirect, kVerifier)));
  // Failed attempts do not use the code up.
  EXPECT_TRUE(service_->ExchangeCode(client, code, kRedirect, kVerifier).ok());

  // A request without redirect_uri: the token request may leave it out too.
  AuthorizationRequest r = Request(client);
  r.redirect_uri.clear();
  code = Code(r);
  EXPECT_TRUE(service_->ExchangeCode(client, code, "", kVerifier).ok());

  code = Code(client);
  now_ += config_.code_ttl_seconds;
  EXPECT_TRUE(invalid_grant(service_->ExchangeCode(client, code, kRedirect, kVerifier)));
}

TEST_F(OAuthTest, ReplayedCodeRevokesWhatItIssued) {
  const OAuthClient client = Register().client;
  const std::string code = Code(client);
  auto first = service_->ExchangeCode(client, code, kRedirect, kVerifier);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(AuthCode(first->access_token), StatusCode::kOk);
  auto second = service_->ExchangeCode(client, code, kRedirect, kVerifier);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, OAuthErrorCode::kInvalidGrant);
  EXPECT_EQ(AuthCode(first->access_token), StatusCode::kUnauthenticated);
  EXPECT_FALSE(service_->Refresh(client, first->refresh_token, "").ok());
}

TEST_F(OAuthTest, AccessTokensExpire) {
  const OAuthClient client = Register().client;
  TokenSet t = Tokens(client);
  now_ += config_.access_token_ttl_seconds - 1;
  EXPECT_EQ(AuthCode(t.access_token), StatusCode::kOk);
  now_ += 1;
  EXPECT_EQ(AuthCode(t.access_token), StatusCode::kUnauthenticated);
  // The refresh token lives longer and brings a fresh access token.
  auto refreshed = service_->Refresh(client, t.refresh_token, "");
  ASSERT_TRUE(refreshed.ok());
  EXPECT_EQ(AuthCode(refreshed->access_token), StatusCode::kOk);
  now_ += int64_t{config_.refresh_token_ttl_days} * 86400;
  EXPECT_FALSE(service_->Refresh(client, refreshed->refresh_token, "").ok());
}

TEST_F(OAuthTest, RefreshRotatesAndReuseRevokesTheChain) {
  const OAuthClient client = Register().client;
  TokenSet t0 = Tokens(client);
  auto t1 = service_->Refresh(client, t0.refresh_token, "");
  ASSERT_TRUE(t1.ok()) << t1.error().description;
  EXPECT_NE(t1->refresh_token, t0.refresh_token);
  EXPECT_NE(t1->access_token, t0.access_token);
  EXPECT_EQ(t1->scopes, t0.scopes);
  auto t2 = service_->Refresh(client, t1->refresh_token, "");
  ASSERT_TRUE(t2.ok());
  EXPECT_EQ(AuthCode(t2->access_token), StatusCode::kOk);

  // Someone presents an old refresh token: the whole chain goes.
  auto reuse = service_->Refresh(client, t0.refresh_token, "");
  ASSERT_FALSE(reuse.ok());
  EXPECT_EQ(reuse.error().code, OAuthErrorCode::kInvalidGrant);
  EXPECT_EQ(AuthCode(t2->access_token), StatusCode::kUnauthenticated);
  EXPECT_EQ(AuthCode(t1->access_token), StatusCode::kUnauthenticated);
  EXPECT_FALSE(service_->Refresh(client, t2->refresh_token, "").ok());

  // Another chain of the same client and account is untouched.
  TokenSet other = Tokens(client);
  EXPECT_EQ(AuthCode(other.access_token), StatusCode::kOk);
}

TEST_F(OAuthTest, RefreshMayNarrowButNotWidenTheScope) {
  ClientMetadata m = Metadata();
  const OAuthClient client = Register(m).client;
  AuthorizationRequest r = Request(client);
  r.scope.clear();  // both registered scopes
  auto tokens = service_->ExchangeCode(client, Code(r), kRedirect, kVerifier);
  ASSERT_TRUE(tokens.ok());
  auto narrow = service_->Refresh(client, tokens->refresh_token, kScopeObV3p0CredentialUpsert);
  ASSERT_TRUE(narrow.ok());
  EXPECT_EQ(narrow->scopes, std::vector<std::string>{std::string(kScopeObV3p0CredentialUpsert)});
  EXPECT_EQ(AuthCode(narrow->access_token, kScopeObV2p1AssertionCreate), StatusCode::kPermissionDenied);
  // The new refresh token keeps the full scope.
  auto again = service_->Refresh(client, narrow->refresh_token, "");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->scopes.size(), 2u);
  auto wide = service_->Refresh(client, again->refresh_token, kScopeObV3p0ProfileUpdate);
  ASSERT_FALSE(wide.ok());
  EXPECT_EQ(wide.error().code, OAuthErrorCode::kInvalidScope);
}

TEST_F(OAuthTest, RefreshTokensBelongToTheirClient) {
  const OAuthClient client = Register().client;
  const OAuthClient other = Register().client;
  TokenSet t = Tokens(client);
  EXPECT_FALSE(service_->Refresh(other, t.refresh_token, "").ok());
  // The failed attempt neither rotated nor revoked it.
  EXPECT_TRUE(service_->Refresh(client, t.refresh_token, "").ok());
}

TEST_F(OAuthTest, RevocationFollowsRfc7009) {
  const OAuthClient client = Register().client;
  const OAuthClient other = Register().client;
  TokenSet a = Tokens(client);
  EXPECT_TRUE(service_->Revoke(client, a.access_token).ok());
  EXPECT_EQ(AuthCode(a.access_token), StatusCode::kUnauthenticated);
  EXPECT_TRUE(service_->Refresh(client, a.refresh_token, "").ok());  // only the access token went

  TokenSet b = Tokens(client);
  auto b1 = service_->Refresh(client, b.refresh_token, "");
  ASSERT_TRUE(b1.ok());
  // Another client cannot revoke it, and learns nothing.
  EXPECT_TRUE(service_->Revoke(other, b1->refresh_token).ok());
  EXPECT_EQ(AuthCode(b1->access_token), StatusCode::kOk);
  // Revoking the refresh token takes its access tokens with it.
  EXPECT_TRUE(service_->Revoke(client, b1->refresh_token).ok());
  EXPECT_EQ(AuthCode(b1->access_token), StatusCode::kUnauthenticated);
  EXPECT_EQ(AuthCode(b.access_token), StatusCode::kUnauthenticated);
  EXPECT_FALSE(service_->Refresh(client, b1->refresh_token, "").ok());
  // Unknown and already revoked tokens are fine.
  EXPECT_TRUE(service_->Revoke(client, "unknown").ok());
  EXPECT_TRUE(service_->Revoke(client, b1->refresh_token).ok());
}

TEST_F(OAuthTest, ClientAuthentication) {
  const RegisteredClient conf = Register();
  ClientMetadata m = Metadata();
  m.token_endpoint_auth_method = "none";
  const RegisteredClient pub = Register(m);
  auto code = [&](ClientCredentials c) {
    auto r = service_->AuthenticateClient(c);
    return r.ok() ? std::string("ok") : r.error().name();
  };
  EXPECT_EQ(code({conf.client.id, conf.secret, ClientAuthMethod::kBasic}), "ok");
  EXPECT_EQ(code({conf.client.id, conf.secret, ClientAuthMethod::kPost}), "ok");
  EXPECT_EQ(code({conf.client.id, "", ClientAuthMethod::kNone}), "invalid_client");
  EXPECT_EQ(code({conf.client.id, conf.secret + "x", ClientAuthMethod::kBasic}), "invalid_client");
  EXPECT_EQ(code({conf.client.id, pub.secret, ClientAuthMethod::kPost}), "invalid_client");
  EXPECT_EQ(code({"unknown", conf.secret, ClientAuthMethod::kBasic}), "invalid_client");
  EXPECT_EQ(code({pub.client.id, "", ClientAuthMethod::kNone}), "ok");
  EXPECT_EQ(code({pub.client.id, "guess", ClientAuthMethod::kPost}), "invalid_client");
}

TEST_F(OAuthTest, AppsAreListedRevokedAndDeletedWithTheAccount) {
  const OAuthClient client = Register().client;
  const OAuthClient other = Register().client;
  const int64_t granted = now_;
  TokenSet t = Tokens(client);
  now_ += 30;
  TokenSet u = Tokens(other);

  auto apps = service_->ListApps(kAccount);
  ASSERT_TRUE(apps.ok());
  ASSERT_EQ(apps->size(), 2u);
  EXPECT_EQ((*apps)[0].client_id, client.id);
  EXPECT_EQ((*apps)[0].client_name, "Badge Issuer");
  EXPECT_EQ((*apps)[0].client_uri, "https://issuer.example");
  EXPECT_EQ((*apps)[0].granted_at, granted);
  EXPECT_EQ((*apps)[0].last_used_at, granted);
  EXPECT_EQ((*apps)[0].scopes, std::vector<std::string>{std::string(kScopeObV2p1AssertionCreate)});

  // Use is recorded to the minute.
  now_ += 10;
  EXPECT_EQ(AuthCode(t.access_token), StatusCode::kOk);
  EXPECT_EQ((*service_->ListApps(kAccount))[0].last_used_at, granted);
  now_ += 60;
  EXPECT_EQ(AuthCode(t.access_token), StatusCode::kOk);
  EXPECT_EQ((*service_->ListApps(kAccount))[0].last_used_at, now_.load());

  // A second grant with another scope widens the listed scopes.
  AuthorizationRequest r = Request(client);
  r.scope = std::string(kScopeObV3p0CredentialUpsert);
  ASSERT_TRUE(service_->ExchangeCode(client, Code(r), kRedirect, kVerifier).ok());
  EXPECT_EQ((*service_->ListApps(kAccount))[0].scopes.size(), 2u);

  EXPECT_TRUE(service_->RevokeApp(kAccount, client.id).ok());
  EXPECT_EQ(AuthCode(t.access_token), StatusCode::kUnauthenticated);
  EXPECT_FALSE(service_->Refresh(client, t.refresh_token, "").ok());
  EXPECT_EQ(AuthCode(u.access_token), StatusCode::kOk);
  EXPECT_EQ(service_->ListApps(kAccount)->size(), 1u);
  EXPECT_EQ(service_->RevokeApp(kAccount, client.id).code(), StatusCode::kNotFound);
  EXPECT_EQ(service_->RevokeApp("someone-else", other.id).code(), StatusCode::kNotFound);

  EXPECT_TRUE(service_->DeleteAll(kAccount).ok());
  EXPECT_EQ(AuthCode(u.access_token), StatusCode::kUnauthenticated);
  EXPECT_TRUE(service_->ListApps(kAccount)->empty());
  EXPECT_EQ(Count(Family::kOAuthGrantTokens), 0u);
  EXPECT_EQ(Count(Family::kOAuthGrants), 0u);
}

TEST_F(OAuthTest, NoTokensForADeletedAccount) {
  const OAuthClient client = Register().client;
  const std::string code = Code(Request(client), "ffffffffffffffffffffffffffffffff");
  auto r = service_->ExchangeCode(client, code, kRedirect, kVerifier);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, OAuthErrorCode::kInvalidGrant);
  EXPECT_EQ(Count(Family::kOAuthTokens), 0u);
}

TEST_F(OAuthTest, PurgeReclaimsExpiredCodesAndTokens) {
  const OAuthClient client = Register().client;
  TokenSet t = Tokens(client);  // one used code, an access and a refresh token
  Code(client);                 // one unused code
  EXPECT_EQ(service_->PurgeExpired(100).value(), 0u);
  now_ += config_.code_ttl_seconds;
  EXPECT_EQ(service_->PurgeExpired(100).value(), 1u);  // the unused code; the used one is kept for replays
  now_ += 24 * 3600;
  EXPECT_EQ(service_->PurgeExpired(100).value(), 2u);  // the used code and the access token
  EXPECT_EQ(Count(Family::kOAuthGrantTokens), 1u);
  now_ += int64_t{config_.refresh_token_ttl_days} * 86400;
  EXPECT_EQ(service_->PurgeExpired(100).value(), 1u);
  EXPECT_EQ(Count(Family::kOAuthTokens), 0u);
  EXPECT_EQ(Count(Family::kOAuthGrantTokens), 0u);
  EXPECT_EQ(Count(Family::kOAuthCodes), 0u);
  EXPECT_EQ(Count(Family::kOAuthGrants), 1u);  // the grant stays until the earner removes it
  (void)t;
}

TEST_F(OAuthTest, IntrospectionAnswersOnlyForTheClientsActiveTokens) {
  const OAuthClient client = Register().client;
  const OAuthClient other = Register().client;
  TokenSet t = Tokens(client);
  auto access = service_->Introspect(client, t.access_token);
  ASSERT_TRUE(access.ok() && access->has_value());
  EXPECT_FALSE((*access)->refresh);
  EXPECT_EQ((*access)->client_id, client.id);
  EXPECT_EQ((*access)->expires_at, now_ + config_.access_token_ttl_seconds);
  auto refresh = service_->Introspect(client, t.refresh_token);
  ASSERT_TRUE(refresh.ok() && refresh->has_value());
  EXPECT_TRUE((*refresh)->refresh);
  EXPECT_FALSE(service_->Introspect(other, t.access_token)->has_value());
  EXPECT_FALSE(service_->Introspect(client, "unknown")->has_value());
  ASSERT_TRUE(service_->Refresh(client, t.refresh_token, "").ok());
  EXPECT_FALSE(service_->Introspect(client, t.refresh_token)->has_value());  // used
  now_ += config_.access_token_ttl_seconds;
  EXPECT_FALSE(service_->Introspect(client, t.access_token)->has_value());  // expired
}

TEST(BearerChallenge, NamesTheErrorAndTheMissingScope) {
  EXPECT_EQ(BearerChallenge(Unauthenticated("x"), "s"), "Bearer realm=\"backpackd\", error=\"invalid_token\"");
  EXPECT_EQ(BearerChallenge(Unauthenticated("x"), "s", false), "Bearer realm=\"backpackd\"");
  EXPECT_EQ(BearerChallenge(PermissionDenied("x"), kScopeObV3p0CredentialReadonly),
            "Bearer realm=\"backpackd\", error=\"insufficient_scope\", "
            "scope=\"https://purl.imsglobal.org/spec/ob/v3p0/scope/credential.readonly\"");
}

TEST_F(OAuthTest, FormTokensAreBoundToPurposeAndBinding) {
  const std::string token = service_->FormToken("consent", "session\nrequest");
  EXPECT_TRUE(service_->CheckFormToken("consent", "session\nrequest", token));
  EXPECT_FALSE(service_->CheckFormToken("sign-in", "session\nrequest", token));
  EXPECT_FALSE(service_->CheckFormToken("consent", "session\nother", token));
  EXPECT_FALSE(service_->CheckFormToken("consent", "session\nrequest", ""));
  EXPECT_FALSE(service_->CheckFormToken("consent", "session\nrequest", token + "x"));
}

}  // namespace
}  // namespace backpack
