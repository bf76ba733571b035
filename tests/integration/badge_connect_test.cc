// The Badge Connect 2.1 API end to end: the real backpackd, our own issuer
// serving its documents over real HTTP on 127.0.0.1, and a client that gets
// its access token through registration, sign-in and consent with PKCE.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "daemon/oauth.h"
#include "tests/support/issuer_api_test.h"

namespace backpack::testing {
namespace {

using nlohmann::json;

const std::string kRead(kScopeObV2p1AssertionReadonly);
const std::string kCreate(kScopeObV2p1AssertionCreate);
const std::string kProfileRead(kScopeObV2p1ProfileReadonly);
const std::string kProfileUpdate(kScopeObV2p1ProfileUpdate);

class BadgeConnectTest : public IssuerApiTest {
 protected:
  BadgeConnectTest()
      : IssuerApiTest("/ims/ob/v2p1", "Badge Issuer", kRead + " " + kCreate + " " + kProfileRead + " " + kProfileUpdate) {}

  Reply Api(const std::string& method, const std::string& path, const std::string& token, const json& body = {}) {
    return CallApi(method, path, token, body.is_null() ? "" : body.dump());
  }

  static json Status(const Reply& r) {
    const json j = json::parse(r.body, nullptr, false);
    return j.is_object() && j.contains("status") ? j["status"] : json();
  }
};

TEST_F(BadgeConnectTest, ManifestCarriesTheOperatorsPolicies) {
  StartNode("[server]\nterms_of_service_url = \"https://op.example/terms\"\n"
            "privacy_policy_url = \"https://op.example/privacy\"\n");
  const json m = json::parse(node_->Call({"GET", "/.well-known/badgeconnect.json", "", "", "", {}}).body);
  EXPECT_EQ(m["badgeConnectAPI"][0]["termsOfServiceUrl"], "https://op.example/terms");
  EXPECT_EQ(m["badgeConnectAPI"][0]["privacyPolicyUrl"], "https://op.example/privacy");
}

TEST_F(BadgeConnectTest, ManifestNamesAbsoluteReachableEndpoints) {
  StartNode();
  Reply r = node_->Call({"GET", "/.well-known/badgeconnect.json", "", "", "", {}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Header("access-control-allow-origin"), "*");
  const json m = json::parse(r.body);
  EXPECT_EQ(m["id"], base_ + "/.well-known/badgeconnect.json");
  ASSERT_EQ(m["badgeConnectAPI"].size(), 1u);
  const json& api = m["badgeConnectAPI"][0];
  EXPECT_EQ(api["version"], "v2p1");
  EXPECT_EQ(api["apiBase"], base_ + "/ims/ob/v2p1");
  EXPECT_EQ(api["scopesOffered"], json::array({kRead, kCreate, kProfileRead, kProfileUpdate}));
  EXPECT_FALSE(api["name"].get<std::string>().empty());
  EXPECT_FALSE(api.contains("termsOfServiceUrl"));  // not configured
  for (const char* member : {"registrationUrl", "authorizationUrl", "tokenUrl", "tokenRevocationUrl"}) {
    ASSERT_TRUE(api[member].is_string()) << member;
    const std::string url = api[member];
    ASSERT_EQ(url.rfind(base_ + "/", 0), 0u) << member << ": " << url;
  }
  // Each URL leads to a live endpoint: what each answers to an empty request.
  auto path = [&](const char* member) { return api[member].get<std::string>().substr(base_.size()); };
  EXPECT_EQ(node_->Call({"POST", path("registrationUrl"), "{}", "application/json", "", {}}).status, 400);
  EXPECT_EQ(node_->Call({"GET", path("authorizationUrl"), "", "", "", {}}).status, 400);
  // No client credentials: invalid_client.
  EXPECT_EQ(node_->Call({"POST", path("tokenUrl"), "", "application/x-www-form-urlencoded", "", {}}).status, 401);
  EXPECT_EQ(node_->Call({"POST", path("tokenRevocationUrl"), "", "application/x-www-form-urlencoded", "", {}}).status,
            401);
  EXPECT_EQ(node_->Call({"GET", api["apiBase"].get<std::string>().substr(base_.size()) + "/assertions", "", "", "", {}})
                .status,
            401);
}

TEST_F(BadgeConnectTest, PushedAssertionsWaitForTheEarnerThenPageWithLinks) {
  StartNode();
  const std::string token = Token(kCreate + " " + kRead + " " + kProfileRead);
  ASSERT_FALSE(token.empty());

  // A hosted assertion by reference lands pending; the client does not see it.
  const std::string hosted = issuer_.AwardHosted({.email = kEmail});
  Reply pushed = Api("POST", "/assertions", token, {{"assertion", {{"id", hosted}}}});
  ASSERT_EQ(pushed.status, 200) << pushed.body;
  EXPECT_EQ(json::parse(pushed.body), json({{"status", {{"error", nullptr}, {"statusCode", 200}, {"statusText", "OK"}}}}));
  ASSERT_EQ(BadgeIds("pending").size(), 1u);
  Reply listed = Api("GET", "/assertions", token);
  ASSERT_EQ(listed.status, 200) << listed.body;
  EXPECT_EQ(listed.Header("x-total-count"), "0");
  EXPECT_FALSE(json::parse(listed.body).contains("assertions"));

  // Accepted by the earner: listed, as the issuer's own JSON.
  Accept(BadgeIds("pending")[0]);
  listed = Api("GET", "/assertions", token);
  ASSERT_EQ(listed.status, 200) << listed.body;
  EXPECT_EQ(listed.Header("x-total-count"), "1");
  EXPECT_EQ(json::parse(listed.body)["assertions"], json::array({json::parse(issuer_.HostedJson(hosted))}));

  // A full assertion object and a signed one.
  const std::string second = issuer_.AwardHosted({.email = kEmail});
  pushed = Api("POST", "/assertions", token, {{"assertion", json::parse(issuer_.HostedJson(second))}});
  ASSERT_EQ(pushed.status, 200) << pushed.body;
  const std::string jws = issuer_.AwardSigned({.email = kEmail});
  pushed = Api("POST", "/assertions", token, {{"assertion", nullptr}, {"signedAssertion", jws}});
  ASSERT_EQ(pushed.status, 200) << pushed.body;
  // The same one again is not a second badge.
  ASSERT_EQ(Api("POST", "/assertions", token, {{"signedAssertion", jws}}).status, 200);
  ASSERT_EQ(BadgeIds("pending").size(), 2u);
  for (const std::string& id : BadgeIds("pending")) Accept(id);

  // Three accepted, two a page; newest first, so the signed one leads.
  Reply first = Api("GET", "/assertions?limit=2", token);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.Header("x-total-count"), "3");
  const json page1 = json::parse(first.body);
  EXPECT_EQ(page1["status"]["statusText"], "OK");
  EXPECT_EQ(page1["signedAssertions"], json::array({jws}));
  EXPECT_EQ(page1["assertions"].size(), 1u);
  auto links = LinkRelations(first.Header("link"));
  const std::string api = base_ + "/ims/ob/v2p1/assertions";
  EXPECT_EQ(links["first"], api + "?limit=2&offset=0");
  EXPECT_EQ(links["next"], api + "?limit=2&offset=2");
  EXPECT_EQ(links["last"], api + "?limit=2&offset=2");
  EXPECT_FALSE(links.contains("prev"));

  Reply second_page = Api("GET", links["next"].substr(base_.size() + std::string("/ims/ob/v2p1").size()), token);
  ASSERT_EQ(second_page.status, 200) << second_page.body;
  const json page2 = json::parse(second_page.body);
  EXPECT_EQ(page2["assertions"], json::array({json::parse(issuer_.HostedJson(hosted))}));
  EXPECT_FALSE(page2.contains("signedAssertions"));
  links = LinkRelations(second_page.Header("link"));
  EXPECT_EQ(links["prev"], api + "?limit=2&offset=0");
  EXPECT_FALSE(links.contains("next"));

  // since: everything was imported just now; nothing from the future.
  Reply past = Api("GET", "/assertions?since=2020-01-01T00:00:00Z", token);
  EXPECT_EQ(past.Header("x-total-count"), "3");
  Reply future = Api("GET", "/assertions?since=2999-01-01T00:00:00%2B02:00", token);
  EXPECT_EQ(future.Header("x-total-count"), "0");
  EXPECT_NE(future.Header("link").find("since=2999-01-01T00%3A00%3A00%2B02%3A00"), std::string::npos);

  // Bad parameters.
  for (const char* query : {"?limit=0", "?limit=x", "?offset=-1", "?since=yesterday", "?since=2024-01-01T00:00:00"}) {
    Reply bad = Api("GET", std::string("/assertions") + query, token);
    EXPECT_EQ(bad.status, 400) << query;
    EXPECT_EQ(Status(bad)["statusCode"], 400) << query;
    EXPECT_EQ(Status(bad)["statusText"], "REQUEST_VALIDATION_ERROR") << query;
  }
}

TEST_F(BadgeConnectTest, ForgedOrMisaddressedAssertionsAreRefusedAndNothingIsStored) {
  StartNode();
  const std::string token = Token(kCreate + " " + kRead);
  std::string forged = issuer_.AwardSigned({.email = kEmail});
  forged[forged.rfind('.') + 5] = forged[forged.rfind('.') + 5] == 'A' ? 'B' : 'A';
  Reply refused = Api("POST", "/assertions", token, {{"signedAssertion", forged}});
  ASSERT_EQ(refused.status, 400) << refused.body;
  EXPECT_EQ(Status(refused)["statusCode"], 400);
  EXPECT_EQ(Status(refused)["statusText"], "INVALID_BADGE");
  EXPECT_NE(Status(refused)["error"].get<std::string>().find("VERIFY_SIGNATURE"), std::string::npos);

  Reply other = Api("POST", "/assertions", token,
                    {{"assertion", {{"id", issuer_.AwardHosted({.email = "somebody@else.example"})}}}});
  ASSERT_EQ(other.status, 400) << other.body;
  EXPECT_EQ(Status(other)["statusText"], "RECIPIENT_PROFILE_MISMATCH");

  Reply empty = Api("POST", "/assertions", token, json::object());
  ASSERT_EQ(empty.status, 400) << empty.body;
  EXPECT_EQ(Status(empty)["statusText"], "REQUEST_VALIDATION_ERROR");

  EXPECT_TRUE(BadgeIds("pending").empty());
  EXPECT_TRUE(BadgeIds("accepted").empty());
}

TEST_F(BadgeConnectTest, TokensAreCheckedForPresenceValidityAndScope) {
  StartNode();
  Reply none = Api("GET", "/assertions", "");
  ASSERT_EQ(none.status, 401);
  EXPECT_EQ(none.Header("www-authenticate"), "Bearer realm=\"backpackd\"");
  EXPECT_EQ(Status(none)["statusText"], "UNAUTHENTICATED");

  Reply unknown = Api("GET", "/profile", "not-a-token");
  ASSERT_EQ(unknown.status, 401);
  EXPECT_NE(unknown.Header("www-authenticate").find("error=\"invalid_token\""), std::string::npos);

  // A session token of the badge API is not an access token.
  EXPECT_EQ(Api("GET", "/assertions", session_).status, 401);

  const std::string read_only = Token(kRead);
  Reply wrong = Api("POST", "/assertions", read_only, {{"signedAssertion", issuer_.AwardSigned({.email = kEmail})}});
  ASSERT_EQ(wrong.status, 403) << wrong.body;
  EXPECT_NE(wrong.Header("www-authenticate").find("error=\"insufficient_scope\""), std::string::npos);
  EXPECT_NE(wrong.Header("www-authenticate").find(kCreate), std::string::npos);
  EXPECT_EQ(Status(wrong)["statusCode"], 403);
  EXPECT_EQ(Status(wrong)["statusText"], "PERMISSION_DENIED");
  EXPECT_EQ(Api("GET", "/profile", read_only).status, 403);
  EXPECT_TRUE(BadgeIds("pending").empty());
}

TEST_F(BadgeConnectTest, ProfileShowsTheEarnerAndTakesNewAddresses) {
  StartNode();
  const std::string token = Token(kProfileRead + " " + kProfileUpdate);
  Reply r = Api("GET", "/profile", token);
  ASSERT_EQ(r.status, 200) << r.body;
  const json profile = json::parse(r.body)["profile"];
  EXPECT_EQ(profile["@context"], "https://w3id.org/openbadges/v2");
  EXPECT_EQ(profile["type"], "Profile");
  EXPECT_EQ(profile["email"], kEmail);
  EXPECT_EQ(profile["id"].get<std::string>().rfind("urn:uuid:", 0), 0u);
  EXPECT_EQ(profile["id"], json::parse(Api("GET", "/profile", token).body)["profile"]["id"]);  // stable

  // A new identifier: added unverified, so not yet in the profile.
  Reply added = Api("POST", "/profile", token, {{"id", profile["id"]}, {"type", "Profile"}, {"email", "ada@work.example"}});
  ASSERT_EQ(added.status, 200) << added.body;
  EXPECT_EQ(json::parse(added.body)["profile"]["email"], kEmail);
  Reply account = node_->Call({"GET", "/api/v1/account", "", "", session_, {}});
  EXPECT_NE(account.body.find("ada@work.example"), std::string::npos);

  Reply refused = Api("POST", "/profile", token, {{"telephone", "+16175551212"}});
  ASSERT_EQ(refused.status, 400) << refused.body;
  EXPECT_EQ(Status(refused)["statusText"], "BAD_REQUEST");
}

TEST_F(BadgeConnectTest, PushesBeyondTheEarnersRateAreTold429WithRetryAfter) {
  StartNode("[badges]\nimports_per_minute = 1\n");
  const std::string token = Token(kCreate);
  ASSERT_EQ(Api("POST", "/assertions", token, {{"signedAssertion", issuer_.AwardSigned({.email = kEmail})}}).status,
            200);
  Reply limited = Api("POST", "/assertions", token, {{"signedAssertion", issuer_.AwardSigned({.email = kEmail})}});
  ASSERT_EQ(limited.status, 429) << limited.body;
  EXPECT_GE(std::stoi(limited.Header("retry-after")), 1);
  EXPECT_EQ(Status(limited)["statusCode"], 429);
  EXPECT_EQ(BadgeIds("pending").size(), 1u);
}

}  // namespace
}  // namespace backpack::testing
