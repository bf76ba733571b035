// The OAuth 2.0 authorization server end to end: the real backpackd, an
// issuer registering itself and going through the browser flow (a cookie
// jar of our own stands in for the browser), the token, refresh, revocation
// and introspection endpoints, the account's list of authorized apps, and
// headless chromium rendering the sign-in and consent pages.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "daemon/oauth.h"
#include "tests/support/local_http_server.h"
#include "tests/support/oauth_flow.h"
#include "tests/support/chromium.h"
#include "tests/support/test_http.h"

namespace backpack::testing {
namespace {

using nlohmann::json;

constexpr char kPassword[] = "correct horse battery";
constexpr char kRedirect[] = "https://issuer.example/o/redirect";
constexpr const char* kVerifier = kPkceVerifier;
const std::string kCreate(kScopeObV2p1AssertionCreate);
const std::string kRead(kScopeObV2p1AssertionReadonly);
const std::string kUpsert(kScopeObV3p0CredentialUpsert);

class OAuthApiTest : public ::testing::Test {
 protected:
  void StartNode(const std::string& extra_toml = {}) {
    node_ = std::make_unique<NodeProcess>(dir_.path() + "/data", extra_toml);
    browser_.set_node(node_.get());
    ASSERT_TRUE(node_->Start()) << node_->ReadLog();
    session_ = SignUpVerified(*node_, dir_.path() + "/data/outbox", email_, kPassword);
    ASSERT_FALSE(session_.empty()) << node_->ReadLog();
  }

  Reply Browse(const std::string& method, const std::string& target, const std::string& form = {}) {
    return browser_.Browse(method, target, form);
  }

  Reply PostJson(const std::string& target, const json& body) {
    return node_->Call({"POST", target, body.dump(), "application/json", "", {}});
  }

  Reply ClientPost(const std::string& target, const Client& client,
                   std::vector<std::pair<std::string, std::string>> fields, bool basic = true) {
    return testing::ClientPost(*node_, target, client, std::move(fields), basic);
  }

  Client Register(json extra = json::object()) {
    json body = {{"client_name", "Badge Issuer"}, {"client_uri", "https://issuer.example"},
                 {"redirect_uris", {kRedirect}},  {"grant_types", {"authorization_code", "refresh_token"}},
                 {"response_types", {"code"}},    {"scope", kCreate + " " + kRead}};
    body.update(extra);
    const Client client = RegisterClient(*node_, body.dump());
    EXPECT_FALSE(client.id.empty());
    return client;
  }

  std::string AuthorizeTarget(const Client& client, std::vector<std::pair<std::string, std::string>> extra = {},
                              const std::string& scope = {}) {
    return testing::AuthorizeTarget(client, kRedirect, scope.empty() ? kCreate : scope, extra);
  }

  Reply SignIn(const Reply& page, const std::string& password = kPassword) { return browser_.SignIn(page, password); }
  Reply Decide(const Reply& consent, const std::string& decision) { return browser_.Decide(consent, decision); }

  // The whole browser part: a code for `client`.
  std::string Code(const Client& client, const std::string& scope = {}) {
    const std::string code = browser_.Code(AuthorizeTarget(client, {}, scope));
    EXPECT_FALSE(code.empty());
    return code;
  }

  json Exchange(const Client& client, const std::string& code, int expected_status = 200,
                const std::string& verifier = kVerifier) {
    Reply r = ExchangeCode(*node_, client, code, kRedirect, verifier);
    EXPECT_EQ(r.status, expected_status) << r.body;
    return json::parse(r.body, nullptr, false);
  }

  bool Active(const Client& client, const std::string& token) {
    Reply r = ClientPost("/oauth/introspect", client, {{"token", token}}, /*basic=*/!client.secret.empty());
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body, nullptr, false).value("active", false);
  }

  json Apps() {
    Reply r = node_->Call({"GET", "/api/v1/account/apps", "", "", session_, {}});
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body, nullptr, false).value("apps", json::array());
  }

  static void ExpectPageHeaders(const Reply& r) {
    EXPECT_EQ(r.Header("content-type"), "text/html; charset=utf-8");
    const std::string csp = r.Header("content-security-policy");
    EXPECT_NE(csp.find("default-src 'none'"), std::string::npos) << csp;
    EXPECT_NE(csp.find("style-src 'sha256-"), std::string::npos) << csp;
    EXPECT_NE(csp.find("form-action 'self'"), std::string::npos) << csp;
    EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
    EXPECT_EQ(r.Header("x-frame-options"), "DENY");
    EXPECT_EQ(r.Header("cache-control"), "no-store");
    EXPECT_EQ(r.body.find("<script"), std::string::npos);
  }

  // The DOM chromium builds from `url`; its log goes to last_chromium_log_.
  std::string RenderInChromium(const std::string& url) {
    ChromiumRender render = testing::RenderInChromium(dir_, url);
    EXPECT_TRUE(render.error.empty()) << render.error;
    last_chromium_log_ = render.log;
    return render.dom;
  }


  TempDir dir_;
  std::unique_ptr<NodeProcess> node_;
  std::string email_ = "ada@learner.example";
  std::string session_;
  OAuthBrowser browser_{email_, kPassword};
  CookieJar& jar_ = browser_.jar();
  std::string last_chromium_log_;
};

TEST_F(OAuthApiTest, MetadataDescribesTheServer) {
  StartNode();
  Reply r = node_->Call({"GET", "/.well-known/oauth-authorization-server", "", "", "", {}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json m = json::parse(r.body);
  const std::string base = "http://" + node_->address();
  EXPECT_EQ(m["issuer"], base);
  EXPECT_EQ(m["authorization_endpoint"], base + "/oauth/authorize");
  EXPECT_EQ(m["token_endpoint"], base + "/oauth/token");
  EXPECT_EQ(m["registration_endpoint"], base + "/oauth/register");
  EXPECT_EQ(m["revocation_endpoint"], base + "/oauth/revoke");
  EXPECT_EQ(m["code_challenge_methods_supported"], json::array({"S256"}));
  EXPECT_EQ(m["response_types_supported"], json::array({"code"}));
  EXPECT_EQ(m["grant_types_supported"], json::array({"authorization_code", "refresh_token"}));
  EXPECT_EQ(m["scopes_supported"].size(), 8u);
  EXPECT_NE(std::find(m["scopes_supported"].begin(), m["scopes_supported"].end(), kUpsert),
            m["scopes_supported"].end());
}

TEST_F(OAuthApiTest, RegistrationAcceptsGoodMetadataAndExplainsBadMetadata) {
  StartNode();
  // The registration example of the Badge Connect 2.1 specification, with real scopes.
  Reply good = PostJson("/oauth/register", {{"client_name", "Badge Issuer"},
                                            {"client_uri", "https://issuer.example.com"},
                                            {"logo_uri", "https://issuer.example.com/logo.png"},
                                            {"tos_uri", "https://issuer.example.com/terms-of-service"},
                                            {"policy_uri", "https://issuer.example.com/privacy-policy"},
                                            {"software_id", "13dcdc83-fc0d-4c8d-9159-6461da297388"},
                                            {"software_version", "54dfc83-fc0d-4c8d-9159-6461da297388"},
                                            {"redirect_uris", {"https://issuer.example.com/o/redirect"}},
                                            {"token_endpoint_auth_method", "client_secret_basic"},
                                            {"grant_types", {"authorization_code", "refresh_token"}},
                                            {"response_types", {"code"}},
                                            {"scope", kRead + " " + kCreate},
                                            {"contacts", {"admin@issuer.example.com"}},
                                            {"unknown_member", "ignored"}});
  ASSERT_EQ(good.status, 201) << good.body;
  EXPECT_EQ(good.Header("cache-control"), "no-store");
  const json j = json::parse(good.body);
  EXPECT_FALSE(j["client_id"].get<std::string>().empty());
  EXPECT_EQ(j["client_secret"].get<std::string>().size(), 43u);
  EXPECT_EQ(j["client_secret_expires_at"], 0);
  EXPECT_TRUE(j["client_id_issued_at"].is_number_integer());
  EXPECT_EQ(j["client_name"], "Badge Issuer");
  EXPECT_EQ(j["scope"], kRead + " " + kCreate);
  EXPECT_EQ(j["policy_uri"], "https://issuer.example.com/privacy-policy");
  EXPECT_EQ(j["contacts"], json::array({"admin@issuer.example.com"}));
  EXPECT_FALSE(j.contains("unknown_member"));

  Reply pub = PostJson("/oauth/register", {{"client_name", "Desktop wallet"},
                                           {"redirect_uris", {"http://127.0.0.1:7000/callback"}},
                                           {"token_endpoint_auth_method", "none"}});
  ASSERT_EQ(pub.status, 201) << pub.body;
  EXPECT_FALSE(json::parse(pub.body).contains("client_secret"));
  EXPECT_EQ(json::parse(pub.body)["grant_types"], json::array({"authorization_code"}));

  struct Case {
    const char* what;
    json body;
    const char* error;
  };
  const json base = {{"client_name", "X"}, {"redirect_uris", {kRedirect}}};
  auto with = [&base](json change) {
    json b = base;
    b.update(change);
    return b;
  };
  json no_name = base;
  no_name.erase("client_name");
  const Case cases[] = {
      {"no client_name", no_name, "invalid_client_metadata"},
      {"no redirect_uris", {{"client_name", "X"}}, "invalid_redirect_uri"},
      {"http redirect", with({{"redirect_uris", {"http://issuer.example/cb"}}}), "invalid_redirect_uri"},
      {"fragment", with({{"redirect_uris", {"https://issuer.example/cb#top"}}}), "invalid_redirect_uri"},
      {"redirect_uris not an array", with({{"redirect_uris", kRedirect}}), "invalid_redirect_uri"},
      {"unknown scope", with({{"scope", "openid profile"}}), "invalid_client_metadata"},
      {"implicit grant", with({{"grant_types", {"implicit"}}}), "invalid_client_metadata"},
      {"client_credentials", with({{"grant_types", {"client_credentials"}}}), "invalid_client_metadata"},
      {"token response", with({{"response_types", {"token"}}}), "invalid_client_metadata"},
      {"jwt auth", with({{"token_endpoint_auth_method", "private_key_jwt"}}), "invalid_client_metadata"},
      {"javascript uri", with({{"client_uri", "javascript:alert(1)"}}), "invalid_client_metadata"},
      {"name not a string", with({{"client_name", 42}}), "invalid_client_metadata"},
  };
  for (const Case& c : cases) {
    Reply r = PostJson("/oauth/register", c.body);
    EXPECT_EQ(r.status, 400) << c.what << ": " << r.body;
    EXPECT_EQ(json::parse(r.body, nullptr, false).value("error", ""), c.error) << c.what << ": " << r.body;
  }
  Reply not_json =
      node_->Call({"POST", "/oauth/register", "client_name=X", "application/x-www-form-urlencoded", "", {}});
  EXPECT_EQ(not_json.status, 400);
  EXPECT_EQ(json::parse(not_json.body, nullptr, false).value("error", ""), "invalid_client_metadata");
}

TEST_F(OAuthApiTest, RegistrationIsRateLimitedPerAddress) {
  StartNode("[oauth]\nregistrations_per_hour = 2\n");
  Register();
  Register();
  Reply r = PostJson("/oauth/register", {{"client_name", "X"}, {"redirect_uris", {kRedirect}}});
  EXPECT_EQ(r.status, 429) << r.body;
  EXPECT_FALSE(r.Header("retry-after").empty());
}

TEST_F(OAuthApiTest, PkceFlowFromSignInToTokensAndAuthorizedApps) {
  StartNode();
  const Client client = Register();

  // Not signed in: the sign-in page, with the pre-sign-in cookie. The
  // request uses the parameter name of the Badge Connect 2.1 example.
  Reply page =
      Browse("GET", AuthorizeTarget(client, {{"code_challenge_method", ""}, {"code_challange_method", "S256"}}));
  ASSERT_EQ(page.status, 200) << page.body;
  ExpectPageHeaders(page);
  EXPECT_NE(page.body.find("Sign in to your backpack"), std::string::npos);
  EXPECT_NE(page.body.find("<strong>Badge Issuer</strong>"), std::string::npos);
  EXPECT_FALSE(jar_.Get("bp_csrf").empty());
  EXPECT_NE(jar_.Attributes("bp_csrf").find("HttpOnly"), std::string::npos);
  EXPECT_NE(jar_.Attributes("bp_csrf").find("SameSite=Lax"), std::string::npos);

  // A wrong password: the page again, with a message.
  Reply wrong = SignIn(page, "not the password");
  EXPECT_EQ(wrong.status, 401);
  EXPECT_NE(wrong.body.find("incorrect"), std::string::npos);
  EXPECT_TRUE(jar_.Get("bp_session").empty());

  // Signed in: the consent page.
  Reply consent = SignIn(page);
  ASSERT_EQ(consent.status, 200) << consent.body;
  ExpectPageHeaders(consent);
  EXPECT_NE(jar_.Attributes("bp_session").find("HttpOnly"), std::string::npos);
  EXPECT_NE(jar_.Attributes("bp_session").find("SameSite=Lax"), std::string::npos);
  EXPECT_NE(jar_.Attributes("bp_session").find("Path=/"), std::string::npos);
  EXPECT_EQ(jar_.Attributes("bp_session").find("Secure"), std::string::npos);  // plain http here
  EXPECT_NE(consent.Header("content-security-policy").find("form-action 'self' https://issuer.example;"),
            std::string::npos);
  EXPECT_NE(consent.body.find("Allow <strong>Badge Issuer</strong> to use your backpack?"), std::string::npos);
  EXPECT_NE(consent.body.find(std::string(ScopeDescription(kCreate))), std::string::npos);
  EXPECT_NE(consent.body.find(">issuer.example</a>"), std::string::npos);
  EXPECT_NE(consent.body.find("xyz&lt;&amp;&gt;"), std::string::npos);  // the state, escaped
  EXPECT_NE(consent.body.find(email_), std::string::npos);

  // Approve: back to the client with a code, the state and the issuer.
  Reply redirect = Decide(consent, "approve");
  ASSERT_EQ(redirect.status, 302) << redirect.body;
  const std::string location = redirect.Header("location");
  ASSERT_EQ(location.rfind(std::string(kRedirect) + "?", 0), 0u) << location;
  auto query = QueryOf(location);
  EXPECT_EQ(query["state"], "xyz<&>");
  EXPECT_EQ(query["iss"], "http://" + node_->address());
  ASSERT_EQ(query["code"].size(), 43u);

  // The code for tokens (client_secret_basic).
  Reply token_reply = ClientPost("/oauth/token", client,
                                 {{"grant_type", "authorization_code"},
                                  {"code", query["code"]},
                                  {"redirect_uri", kRedirect},
                                  {"code_verifier", kVerifier}});
  ASSERT_EQ(token_reply.status, 200) << token_reply.body;
  EXPECT_EQ(token_reply.Header("cache-control"), "no-store");
  EXPECT_EQ(token_reply.Header("pragma"), "no-cache");
  const json tokens = json::parse(token_reply.body);
  EXPECT_EQ(tokens["token_type"], "Bearer");
  EXPECT_EQ(tokens["expires_in"], 3600);
  EXPECT_EQ(tokens["scope"], kCreate);
  const std::string access = tokens["access_token"];
  const std::string refresh = tokens["refresh_token"];
  EXPECT_TRUE(Active(client, access));

  // The earner sees the app.
  json apps = Apps();
  ASSERT_EQ(apps.size(), 1u) << apps.dump();
  EXPECT_EQ(apps[0]["client_id"], client.id);
  EXPECT_EQ(apps[0]["client_name"], "Badge Issuer");
  EXPECT_EQ(apps[0]["client_uri"], "https://issuer.example");
  EXPECT_EQ(apps[0]["scopes"], json::array({kCreate}));
  EXPECT_TRUE(apps[0]["granted_at"].is_string());
  EXPECT_TRUE(apps[0]["last_used_at"].is_string());

  // Refresh (client_secret_post this time): rotation.
  Reply refreshed = ClientPost("/oauth/token", client, {{"grant_type", "refresh_token"}, {"refresh_token", refresh}},
                               /*basic=*/false);
  ASSERT_EQ(refreshed.status, 200) << refreshed.body;
  const json next = json::parse(refreshed.body);
  EXPECT_NE(next["refresh_token"], refresh);
  EXPECT_TRUE(Active(client, next["access_token"]));
  EXPECT_FALSE(Active(client, refresh));
  // The old refresh token again: refused, and the chain is gone.
  Reply reused = ClientPost("/oauth/token", client, {{"grant_type", "refresh_token"}, {"refresh_token", refresh}});
  EXPECT_EQ(reused.status, 400);
  EXPECT_EQ(json::parse(reused.body).value("error", ""), "invalid_grant");
  EXPECT_FALSE(Active(client, next["access_token"]));
  EXPECT_FALSE(Active(client, next["refresh_token"]));
  EXPECT_FALSE(Active(client, access));

  // The earner withdraws the app.
  const std::string again = Exchange(client, Code(client))["access_token"];
  EXPECT_TRUE(Active(client, again));
  Reply removed = node_->Call({"DELETE", "/api/v1/account/apps/" + client.id, "", "", session_, {}});
  EXPECT_EQ(removed.status, 204) << removed.body;
  EXPECT_FALSE(Active(client, again));
  EXPECT_TRUE(Apps().empty());
  EXPECT_EQ(node_->Call({"DELETE", "/api/v1/account/apps/" + client.id, "", "", session_, {}}).status, 404);
  EXPECT_EQ(node_->Call({"GET", "/api/v1/account/apps", "", "", "", {}}).status, 401);
}

TEST_F(OAuthApiTest, PublicClientsIdentifyThemselvesByIdAndPkce) {
  StartNode();
  const Client client = Register({{"token_endpoint_auth_method", "none"}});
  ASSERT_TRUE(client.secret.empty());
  const std::string code = Code(client);
  Reply r = ClientPost(
      "/oauth/token", client,
      {{"grant_type", "authorization_code"}, {"code", code}, {"redirect_uri", kRedirect}, {"code_verifier", kVerifier}},
      /*basic=*/false);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(Active(Client{client.id, ""}, json::parse(r.body)["access_token"]));
}

TEST_F(OAuthApiTest, PkceMismatchIsInvalidGrant) {
  StartNode();
  const Client client = Register();
  const std::string code = Code(client);
  const json refused = Exchange(client, code, 400, "wrong-verifier-wrong-verifier-wrong-verifier-0");
  EXPECT_EQ(refused.value("error", ""), "invalid_grant");
  EXPECT_NE(refused.value("error_description", "").find("code_verifier"), std::string::npos);
  Reply missing = ClientPost("/oauth/token", client,
                             {{"grant_type", "authorization_code"}, {"code", code}, {"redirect_uri", kRedirect}});
  EXPECT_EQ(missing.status, 400);
  EXPECT_EQ(json::parse(missing.body).value("error", ""), "invalid_request");
  // The right verifier still works: failed attempts do not use up the code.
  EXPECT_FALSE(Exchange(client, code).value("access_token", "").empty());
}

TEST_F(OAuthApiTest, ReplayedCodeIsRefusedAndRevokesItsTokens) {
  StartNode();
  const Client client = Register();
  const std::string code = Code(client);
  const json first = Exchange(client, code);
  const std::string access = first.value("access_token", "");
  EXPECT_TRUE(Active(client, access));
  EXPECT_EQ(Exchange(client, code, 400).value("error", ""), "invalid_grant");
  EXPECT_FALSE(Active(client, access));
  EXPECT_FALSE(Active(client, first.value("refresh_token", "")));
}

TEST_F(OAuthApiTest, AccessTokensExpire) {
  StartNode("[oauth]\naccess_token_ttl_seconds = 1\n");
  const Client client = Register();
  const json tokens = Exchange(client, Code(client));
  EXPECT_EQ(tokens.value("expires_in", 0), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  EXPECT_FALSE(Active(client, tokens.value("access_token", "")));
  EXPECT_TRUE(Active(client, tokens.value("refresh_token", "")));
}

TEST_F(OAuthApiTest, RevocationAndClientAuthentication) {
  StartNode();
  const Client client = Register();
  const Client other = Register();
  const json tokens = Exchange(client, Code(client));
  const std::string access = tokens.value("access_token", "");
  const std::string refresh = tokens.value("refresh_token", "");

  // Another client can neither revoke nor introspect it.
  EXPECT_EQ(ClientPost("/oauth/revoke", other, {{"token", access}}).status, 200);
  EXPECT_TRUE(Active(client, access));
  EXPECT_FALSE(Active(other, access));

  Reply revoked = ClientPost("/oauth/revoke", client, {{"token", access}, {"token_type_hint", "access_token"}});
  EXPECT_EQ(revoked.status, 200) << revoked.body;
  EXPECT_FALSE(Active(client, access));
  EXPECT_TRUE(Active(client, refresh));
  // A refresh token takes its chain with it.
  const json next = json::parse(
      ClientPost("/oauth/token", client, {{"grant_type", "refresh_token"}, {"refresh_token", refresh}}).body);
  EXPECT_EQ(ClientPost("/oauth/revoke", client, {{"token", next.value("refresh_token", "")}}).status, 200);
  EXPECT_FALSE(Active(client, next.value("access_token", "")));
  EXPECT_EQ(ClientPost("/oauth/revoke", client, {{"token", "never-issued"}}).status, 200);

  // Client authentication failures.
  Reply bad_secret = ClientPost("/oauth/revoke", Client{client.id, "wrong"}, {{"token", refresh}});
  EXPECT_EQ(bad_secret.status, 401);
  EXPECT_EQ(bad_secret.Header("www-authenticate").rfind("Basic", 0), 0u);
  EXPECT_EQ(json::parse(bad_secret.body).value("error", ""), "invalid_client");
  Reply anonymous = node_->Call({"POST",
                                 "/oauth/token",
                                 Form({{"grant_type", "refresh_token"}, {"refresh_token", refresh}}),
                                 "application/x-www-form-urlencoded",
                                 "",
                                 {}});
  EXPECT_EQ(anonymous.status, 401);
  Reply no_secret = ClientPost("/oauth/token", Client{client.id, ""},
                               {{"grant_type", "refresh_token"}, {"refresh_token", refresh}}, /*basic=*/false);
  EXPECT_EQ(json::parse(no_secret.body).value("error", ""), "invalid_client");
  Reply both =
      ClientPost("/oauth/token", client,
                 {{"grant_type", "refresh_token"}, {"refresh_token", refresh}, {"client_secret", client.secret}});
  EXPECT_EQ(json::parse(both.body).value("error", ""), "invalid_request");

  // Other token endpoint errors.
  EXPECT_EQ(json::parse(ClientPost("/oauth/token", client, {{"grant_type", "password"}}).body).value("error", ""),
            "unsupported_grant_type");
  EXPECT_EQ(json::parse(ClientPost("/oauth/token", client, {}).body).value("error", ""), "invalid_request");
  Reply as_json = node_->Call({"POST", "/oauth/token", "{}", "application/json", "", {}});
  EXPECT_EQ(as_json.status, 400);
  EXPECT_EQ(json::parse(as_json.body).value("error", ""), "invalid_request");
}

TEST_F(OAuthApiTest, RequestErrorsGoBackToTheClientOnceTheRedirectUriIsKnown) {
  StartNode();
  const Client client = Register();
  auto error_of = [&](const std::string& target) {
    Reply r = Browse("GET", target);
    EXPECT_EQ(r.status, 302) << r.body;
    auto q = QueryOf(r.Header("location"));
    EXPECT_EQ(q["state"], "xyz<&>");
    return q["error"];
  };
  // Wrong scope: not registered by the client, or unknown.
  EXPECT_EQ(error_of(AuthorizeTarget(client, {}, kUpsert)), "invalid_scope");
  EXPECT_EQ(error_of(AuthorizeTarget(client, {}, "openid")), "invalid_scope");
  EXPECT_EQ(error_of(AuthorizeTarget(client, {{"code_challenge_method", "plain"}})), "invalid_request");
  EXPECT_EQ(error_of(AuthorizeTarget(client, {{"code_challenge", ""}})), "invalid_request");
  EXPECT_EQ(error_of(AuthorizeTarget(client, {{"response_type", "token"}})), "unsupported_response_type");
  EXPECT_EQ(error_of(AuthorizeTarget(client) + "&scope=" + FormEncode(kRead)), "invalid_request");  // repeated
}

TEST_F(OAuthApiTest, UnknownClientOrRedirectUriIsShownNeverRedirected) {
  StartNode();
  const Client client = Register();
  for (const std::string& target :
       {AuthorizeTarget(client, {{"redirect_uri", "https://evil.example/o/redirect"}}),
        AuthorizeTarget(client, {{"redirect_uri", std::string(kRedirect) + "/more"}}),
        AuthorizeTarget(Client{"no-such-client", ""}), AuthorizeTarget(client, {{"client_id", ""}})}) {
    Reply r = Browse("GET", target);
    EXPECT_EQ(r.status, 400) << target;
    EXPECT_TRUE(r.Header("location").empty()) << target;
    ExpectPageHeaders(r);
    EXPECT_NE(r.body.find("Invalid authorization request"), std::string::npos);
  }
}

TEST_F(OAuthApiTest, DeniedConsentIsAccessDenied) {
  StartNode();
  const Client client = Register();
  Reply consent = SignIn(Browse("GET", AuthorizeTarget(client)));
  ASSERT_EQ(consent.status, 200) << consent.body;
  Reply denied = Decide(consent, "deny");
  ASSERT_EQ(denied.status, 302);
  auto q = QueryOf(denied.Header("location"));
  EXPECT_EQ(q["error"], "access_denied");
  EXPECT_EQ(q["state"], "xyz<&>");
  EXPECT_EQ(q.count("code"), 0u);
  EXPECT_TRUE(Apps().empty());
}

TEST_F(OAuthApiTest, FormsWithoutTheirCsrfTokenAreRefused) {
  StartNode();
  const Client client = Register();
  Reply page = Browse("GET", AuthorizeTarget(client));
  const auto fields = HiddenFields(page.body);

  // Sign-in: no token, a token without its cookie, another browser's token.
  Reply no_token = Browse("POST", "/oauth/sign-in",
                          Form({{"request", Field(fields, "request")}, {"email", email_}, {"password", kPassword}}));
  EXPECT_EQ(no_token.status, 403);
  ExpectPageHeaders(no_token);
  const std::string cookie = jar_.Get("bp_csrf");
  jar_.Clear();
  Reply no_cookie = Browse("POST", "/oauth/sign-in",
                           Form({{"csrf", Field(fields, "csrf")},
                                 {"request", Field(fields, "request")},
                                 {"email", email_},
                                 {"password", kPassword}}));
  EXPECT_EQ(no_cookie.status, 403);
  jar_.Set("bp_csrf", "another-browsers-cookie-value");
  EXPECT_EQ(Browse("POST", "/oauth/sign-in",
                   Form({{"csrf", Field(fields, "csrf")},
                         {"request", Field(fields, "request")},
                         {"email", email_},
                         {"password", kPassword}}))
                .status,
            403);
  EXPECT_TRUE(jar_.Get("bp_session").empty());
  jar_.Set("bp_csrf", cookie);

  // Consent: no token, and a token bound to another session.
  Reply consent = SignIn(page);
  ASSERT_EQ(consent.status, 200) << consent.body;
  auto consent_fields = HiddenFields(consent.body);
  std::vector<std::pair<std::string, std::string>> without;
  for (const auto& f : consent_fields) {
    if (f.first != "csrf") without.push_back(f);
  }
  without.emplace_back("decision", "approve");
  Reply refused = Browse("POST", "/oauth/authorize", Form(without));
  EXPECT_EQ(refused.status, 403);
  EXPECT_TRUE(refused.Header("location").empty());

  const std::string first_session = jar_.Get("bp_session");
  jar_.Set("bp_session", "");
  Reply second = SignIn(Browse("GET", AuthorizeTarget(client)));
  ASSERT_EQ(second.status, 200);
  ASSERT_NE(jar_.Get("bp_session"), first_session);
  consent_fields.emplace_back("decision", "approve");  // the first session's token
  EXPECT_EQ(Browse("POST", "/oauth/authorize", Form(consent_fields)).status, 403);
  // And a token for another request (here: another state) does not fit either.
  auto tampered = HiddenFields(second.body);
  for (auto& f : tampered) {
    if (f.first == "state") f.second = "other";
  }
  tampered.emplace_back("decision", "approve");
  EXPECT_EQ(Browse("POST", "/oauth/authorize", Form(tampered)).status, 403);
  EXPECT_TRUE(Apps().empty());
}

TEST_F(OAuthApiTest, DeletingTheAccountRevokesItsTokens) {
  StartNode();
  const Client client = Register();
  const json tokens = Exchange(client, Code(client));
  ASSERT_TRUE(Active(client, tokens.value("access_token", "")));
  Reply deleted = node_->Call(
      {"DELETE", "/api/v1/account", json{{"password", kPassword}}.dump(), "application/json", session_, {}});
  ASSERT_EQ(deleted.status, 204) << deleted.body;
  EXPECT_FALSE(Active(client, tokens.value("access_token", "")));
  Reply refreshed = ClientPost("/oauth/token", client,
                               {{"grant_type", "refresh_token"}, {"refresh_token", tokens.value("refresh_token", "")}});
  EXPECT_EQ(json::parse(refreshed.body).value("error", ""), "invalid_grant");
}

// The pages in a real browser: chromium renders the sign-in page straight
// from the node, and the consent page (which needs the session cookie) as
// the node served it, body and headers, replayed from a local server.
TEST_F(OAuthApiTest, ChromiumRendersTheSignInAndConsentPagesWithoutCspViolations) {
  StartNode();
  const Client client = Register();
  const std::string dom = RenderInChromium("http://" + node_->address() + AuthorizeTarget(client));
  EXPECT_NE(dom.find("Sign in to your backpack"), std::string::npos) << dom;
  EXPECT_NE(dom.find("name=\"password\""), std::string::npos) << dom;
  EXPECT_NE(dom.find("<strong>Badge Issuer</strong>"), std::string::npos) << dom;
  EXPECT_EQ(last_chromium_log_.find("Content Security Policy"), std::string::npos) << last_chromium_log_;
  EXPECT_EQ(last_chromium_log_.find("Content-Security-Policy"), std::string::npos) << last_chromium_log_;

  Reply consent = SignIn(Browse("GET", AuthorizeTarget(client, {}, kCreate + " " + kRead)));
  ASSERT_EQ(consent.status, 200) << consent.body;
  LocalHttpServer replay([&consent](const std::string&) {
    LocalResponse r;
    r.content_type = consent.Header("content-type");
    r.body = consent.body;
    for (const char* h : {"content-security-policy", "x-frame-options", "x-content-type-options", "referrer-policy"}) {
      r.headers.emplace_back(h, consent.Header(h));
    }
    return r;
  });
  ASSERT_TRUE(replay.Start());
  const std::string consent_dom = RenderInChromium(replay.base_url() + "/consent");
  EXPECT_NE(consent_dom.find("to use your backpack?"), std::string::npos) << consent_dom;
  EXPECT_NE(consent_dom.find(std::string(ScopeDescription(kCreate))), std::string::npos) << consent_dom;
  EXPECT_NE(consent_dom.find(std::string(ScopeDescription(kRead))), std::string::npos) << consent_dom;
  EXPECT_NE(consent_dom.find("value=\"approve\""), std::string::npos) << consent_dom;
  EXPECT_NE(consent_dom.find("value=\"deny\""), std::string::npos) << consent_dom;
  EXPECT_EQ(last_chromium_log_.find("Content Security Policy"), std::string::npos) << last_chromium_log_;
  EXPECT_EQ(last_chromium_log_.find("Content-Security-Policy"), std::string::npos) << last_chromium_log_;
}

}  // namespace
}  // namespace backpack::testing
