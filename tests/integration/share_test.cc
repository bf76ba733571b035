// Collections, share pages and the Displayer API end to end: the real
// backpackd, a real Open Badges issuer over HTTP, and a real browser
// (headless chromium) rendering the share page.
#include <unistd.h>

#include <cstdlib>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/chromium.h"
#include "tests/support/test_http.h"
#include "tests/support/test_issuer.h"

namespace backpack::testing {
namespace {

using nlohmann::json;

class ShareTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(issuer_.Start());
    // The issuer listens on 127.0.0.1: the node may fetch from it.
    node_ = std::make_unique<NodeProcess>(dir_.path() + "/data", "[fetch]\nallow_private = true\n");
    ASSERT_TRUE(node_->Start()) << node_->ReadLog();
  }

  Reply Call(const std::string& method, const std::string& target, const json& body = nullptr,
             const std::string& bearer = {}, std::map<std::string, std::string> headers = {}) {
    return node_->Call({method, target, body.is_null() ? "" : body.dump(), "application/json", bearer,
                        std::move(headers)});
  }
  Reply Get(const std::string& target, const std::string& accept = {}) {
    std::map<std::string, std::string> headers;
    if (!accept.empty()) headers["Accept"] = accept;
    return node_->Call({"GET", target, "", "", "", headers});
  }

  // Signs up, verifies the address from the outbox, signs in; returns the session token.
  std::string VerifiedUser(const std::string& email, const std::string& display_name) {
    const std::string password = "correct horse battery";
    Reply r = Call("POST", "/api/v1/accounts", {{"email", email}, {"password", password}, {"display_name", display_name}});
    EXPECT_EQ(r.status, 201) << r.body;
    Reply s = Call("POST", "/api/v1/sessions", {{"email", email}, {"password", password}});
    EXPECT_EQ(s.status, 201) << s.body;
    const std::string token = json::parse(s.body).value("token", "");
    std::string mail_token;
    for (const auto& file : ListFiles(dir_.path() + "/data/outbox")) {
      const std::string msg = ReadFile(file);
      if (msg.find("To: " + email + "\r\n") == std::string::npos) continue;
      std::smatch m;
      if (std::regex_search(msg, m, std::regex("Verification token: ([A-Za-z0-9_-]+)"))) mail_token = m[1];
    }
    EXPECT_FALSE(mail_token.empty());
    Reply v = Call("POST", "/api/v1/account/emails/verify", {{"token", mail_token}}, token);
    EXPECT_EQ(v.status, 200) << v.body;
    return token;
  }

  std::string AccountId(const std::string& token) {
    Reply r = Call("GET", "/api/v1/account", nullptr, token);
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body, nullptr, false).value("id", "");
  }

  // Imports a hosted badge awarded to `email`; returns its id.
  std::string ImportBadge(const std::string& token, const std::string& email, std::string* url_out = nullptr) {
    const std::string url = issuer_.AwardHosted({.email = email});
    if (url_out) *url_out = url;
    Reply r = Call("POST", "/api/v1/badges", {{"url", url}}, token);
    EXPECT_EQ(r.status, 201) << r.body;
    return json::parse(r.body, nullptr, false).value("id", "");
  }

  json CreateCollection(const std::string& token, const json& body) {
    Reply r = Call("POST", "/api/v1/collections", body, token);
    EXPECT_EQ(r.status, 201) << r.body;
    return json::parse(r.body, nullptr, false);
  }

  static std::string SlugOf(const json& collection) {
    const std::string url = collection.value("share_url", "");
    const size_t at = url.rfind("/share/");
    return at == std::string::npos ? std::string() : url.substr(at + 7);
  }

  // The DOM chromium builds from `url`, after loading it (and its images).
  std::string RenderInChromium(const std::string& url) {
    ChromiumRender render = testing::RenderInChromium(dir_, url);
    EXPECT_TRUE(render.error.empty()) << render.error;
    last_chromium_log_ = render.log;
    return render.dom;
  }


  TempDir dir_;
  TestIssuer issuer_;
  std::unique_ptr<NodeProcess> node_;
  std::string last_chromium_log_;
};

TEST_F(ShareTest, PublicCollectionIsSharedRenderedAndListedForDisplayers) {
  const std::string email = "ann@learner.example";
  const std::string token = VerifiedUser(email, "Ann Learner");
  const std::string account = AccountId(token);
  std::string hosted_url;
  const std::string badge = ImportBadge(token, email, &hosted_url);
  ASSERT_FALSE(badge.empty());

  json collection = CreateCollection(
      token, {{"name", "My Test Badges"}, {"description", "What I learnt"}, {"badges", {badge}}, {"public", true}});
  const std::string slug = SlugOf(collection);
  ASSERT_FALSE(slug.empty()) << collection.dump();
  EXPECT_EQ(collection["share_url"], "http://" + node_->address() + "/share/" + slug);
  EXPECT_EQ(collection["badges"], json::array({badge}));
  EXPECT_TRUE(collection["public"].get<bool>());

  // JSON for clients that ask for it.
  Reply as_json = Get("/share/" + slug, "application/json");
  ASSERT_EQ(as_json.status, 200) << as_json.body;
  EXPECT_EQ(as_json.Header("access-control-allow-origin"), "*");
  EXPECT_NE(as_json.Header("content-type").find("application/json"), std::string::npos);
  json shared = json::parse(as_json.body);
  EXPECT_EQ(shared["name"], "My Test Badges");
  EXPECT_EQ(shared["description"], "What I learnt");
  EXPECT_EQ(shared["owner"], "Ann Learner");
  EXPECT_EQ(shared["url"], collection["share_url"]);
  ASSERT_EQ(shared["badges"].size(), 1u) << shared.dump();
  EXPECT_EQ(shared["badges"][0]["id"], badge);
  EXPECT_EQ(shared["badges"][0]["name"], "Test Badge");
  EXPECT_EQ(shared["badges"][0]["issuer"]["name"], "Test Issuer");
  EXPECT_EQ(shared["badges"][0]["image"], issuer_.base_url() + "/images/badge.png");
  EXPECT_EQ(shared["badges"][0]["status"], "valid");
  EXPECT_FALSE(shared["badges"][0]["issued_on"].is_null());
  EXPECT_EQ(as_json.body.find(email), std::string::npos);  // the address stays private
  EXPECT_EQ(Get("/share/" + slug, "application/ld+json").status, 200);
  // Named JSON beats HTML reached only through a wildcard (a common script client default).
  EXPECT_NE(Get("/share/" + slug, "application/json, text/plain, */*").Header("content-type").find("json"),
            std::string::npos);
  EXPECT_NE(Get("/share/" + slug, "text/html;q=0.5, application/json;q=0.9").Header("content-type").find("json"),
            std::string::npos);
  EXPECT_NE(Get("/share/" + slug, "*/*").Header("content-type").find("text/html"), std::string::npos);
  EXPECT_NE(Get("/share/" + slug, "application/json;q=0").Header("content-type").find("text/html"),
            std::string::npos);

  // HTML for everyone else, with the headers that keep it inert.
  Reply html = Get("/share/" + slug, "text/html,application/xhtml+xml,*/*;q=0.8");
  ASSERT_EQ(html.status, 200);
  EXPECT_EQ(html.Header("content-type"), "text/html; charset=utf-8");
  EXPECT_EQ(html.Header("content-security-policy").rfind("default-src 'none'; img-src https: http: data:; ", 0), 0u)
      << html.Header("content-security-policy");
  EXPECT_EQ(html.Header("x-content-type-options"), "nosniff");
  EXPECT_EQ(html.Header("referrer-policy"), "no-referrer");
  EXPECT_EQ(html.Header("cache-control"), "public, max-age=60");
  EXPECT_EQ(html.Header("vary"), "Accept");
  EXPECT_NE(html.body.find("<meta property=\"og:title\" content=\"My Test Badges\">"), std::string::npos);
  EXPECT_NE(html.body.find("<meta property=\"og:type\" content=\"website\">"), std::string::npos);
  EXPECT_NE(html.body.find("<meta property=\"og:url\" content=\"" + collection["share_url"].get<std::string>() + "\">"),
            std::string::npos);
  EXPECT_NE(html.body.find("<meta property=\"og:image\" content=\"" + issuer_.base_url() + "/images/badge.png\">"),
            std::string::npos);
  EXPECT_NE(html.body.find("<meta name=\"twitter:card\""), std::string::npos);
  EXPECT_EQ(html.body.find("<script"), std::string::npos);
  EXPECT_EQ(Get("/share/" + slug).status, 200);  // no Accept header: HTML

  // A real browser renders it.
  const std::string dom = RenderInChromium("http://" + node_->address() + "/share/" + slug);
  EXPECT_NE(dom.find("Test Badge"), std::string::npos) << dom;
  EXPECT_NE(dom.find("<meta property=\"og:title\" content=\"My Test Badges\">"), std::string::npos) << dom;
  EXPECT_NE(dom.find("alt=\"Test Badge\""), std::string::npos) << dom;
  EXPECT_NE(dom.find("Ann Learner"), std::string::npos);
  EXPECT_EQ(last_chromium_log_.find("Content Security Policy"), std::string::npos) << last_chromium_log_;

  // The Displayer API: email -> user id -> groups -> badges.
  Reply convert = node_->Call({"POST", "/displayer/convert/email", "email=ANN%40learner.example",
                               "application/x-www-form-urlencoded", "", {}});
  ASSERT_EQ(convert.status, 200) << convert.body;
  json converted = json::parse(convert.body);
  EXPECT_EQ(converted["status"], "okay");
  EXPECT_EQ(converted["email"], "ANN@learner.example");
  EXPECT_EQ(converted["userId"], account);
  // No CORS: a web page cannot map its visitors' addresses to accounts.
  EXPECT_EQ(convert.Header("access-control-allow-origin"), "");
  Reply convert_json = Call("POST", "/displayer/convert/email", {{"email", email}});
  ASSERT_EQ(convert_json.status, 200) << convert_json.body;
  EXPECT_EQ(json::parse(convert_json.body)["userId"], account);

  Reply groups = Get("/displayer/" + account + "/groups.json");
  ASSERT_EQ(groups.status, 200) << groups.body;
  EXPECT_EQ(groups.Header("access-control-allow-origin"), "*");
  json g = json::parse(groups.body);
  EXPECT_EQ(g["userId"], account);
  ASSERT_EQ(g["groups"].size(), 1u) << g.dump();
  EXPECT_EQ(g["groups"][0]["groupId"], collection["id"]);
  EXPECT_EQ(g["groups"][0]["name"], "My Test Badges");
  EXPECT_EQ(g["groups"][0]["badges"], 1);

  Reply group = Get("/displayer/" + account + "/group/" + collection["id"].get<std::string>() + ".json");
  ASSERT_EQ(group.status, 200) << group.body;
  EXPECT_EQ(group.Header("access-control-allow-origin"), "*");
  json gr = json::parse(group.body);
  EXPECT_EQ(gr["userId"], account);
  EXPECT_EQ(gr["groupId"], collection["id"]);
  ASSERT_EQ(gr["badges"].size(), 1u) << gr.dump();
  const json& entry = gr["badges"][0];
  EXPECT_EQ(entry["hostedUrl"], hosted_url);
  EXPECT_EQ(entry["imageUrl"], issuer_.base_url() + "/images/badge.png");
  EXPECT_FALSE(entry["lastValidated"].get<std::string>().empty());
  EXPECT_EQ(entry["assertion"]["badge"]["name"], "Test Badge");
  EXPECT_EQ(entry["assertion"]["badge"]["description"], "Awarded by the test issuer.");
  EXPECT_EQ(entry["assertion"]["badge"]["issuer"]["name"], "Test Issuer");
  EXPECT_EQ(entry["assertion"]["badge"]["issuer"]["origin"], issuer_.base_url());
  EXPECT_EQ(entry["assertion"]["recipient"].get<std::string>().rfind("sha256$", 0), 0u);
  EXPECT_EQ(group.body.find(email), std::string::npos);

  // Unknown users and groups are missing, in Mozilla's shape.
  Reply no_user = Get("/displayer/0123456789abcdef0123456789abcdef/groups.json");
  EXPECT_EQ(no_user.status, 404);
  EXPECT_EQ(json::parse(no_user.body)["status"], "missing");
  EXPECT_EQ(Get("/displayer/" + account + "/group/AAAAAAAAAAAAAAAAAAAAAA.json").status, 404);
  Reply nobody = Call("POST", "/displayer/convert/email", {{"email", "nobody@learner.example"}});
  EXPECT_EQ(nobody.status, 404);
  EXPECT_EQ(json::parse(nobody.body),
            json({{"status", "missing"},
                  {"error", "Could not find a user by the email address `nobody@learner.example`"}}));
  Reply no_email = node_->Call({"POST", "/displayer/convert/email", "snailmail=a%40b.example",
                                "application/x-www-form-urlencoded", "", {}});
  EXPECT_EQ(no_email.status, 400);
  EXPECT_EQ(json::parse(no_email.body)["status"], "invalid");

  // Private: the link, the group and the email lookup all go dark.
  Reply hide = Call("PATCH", "/api/v1/collections/" + collection["id"].get<std::string>(), {{"public", false}}, token);
  ASSERT_EQ(hide.status, 200) << hide.body;
  EXPECT_FALSE(json::parse(hide.body).contains("share_url"));
  Reply gone_html = Get("/share/" + slug, "text/html");
  EXPECT_EQ(gone_html.status, 404);
  EXPECT_NE(gone_html.Header("content-type").find("text/html"), std::string::npos);
  EXPECT_NE(gone_html.body.find("<title>Collection not found</title>"), std::string::npos);
  Reply gone_json = Get("/share/" + slug, "application/json");
  EXPECT_EQ(gone_json.status, 404);
  EXPECT_EQ(json::parse(gone_json.body)["error"]["code"], "not_found");
  EXPECT_EQ(Get("/displayer/" + account + "/group/" + collection["id"].get<std::string>() + ".json").status, 404);
  EXPECT_TRUE(json::parse(Get("/displayer/" + account + "/groups.json").body)["groups"].empty());
  EXPECT_EQ(Call("POST", "/displayer/convert/email", {{"email", email}}).status, 404);
}

TEST_F(ShareTest, HostileNamesAreShownAsText) {
  const std::string email = "eve@learner.example";
  const std::string token = VerifiedUser(email, "<b>Eve</b>");
  const std::string badge = ImportBadge(token, email);
  ASSERT_FALSE(badge.empty());
  json collection = CreateCollection(token, {{"name", "<script>alert(1)</script>"},
                                             {"description", "\"><img src=x onerror=alert(2)>"},
                                             {"badges", {badge}},
                                             {"public", true}});
  const std::string slug = SlugOf(collection);
  ASSERT_FALSE(slug.empty());

  Reply html = Get("/share/" + slug, "text/html");
  ASSERT_EQ(html.status, 200);
  EXPECT_EQ(html.body.find("<script"), std::string::npos) << html.body;
  EXPECT_EQ(html.body.find("<img src=x"), std::string::npos);
  EXPECT_EQ(html.body.find("<b>Eve"), std::string::npos);
  EXPECT_NE(html.body.find("<title>&lt;script&gt;alert(1)&lt;/script&gt;</title>"), std::string::npos);
  EXPECT_NE(html.body.find("content=\"&lt;script&gt;alert(1)&lt;/script&gt;\""), std::string::npos);

  const std::string dom = RenderInChromium("http://" + node_->address() + "/share/" + slug);
  ASSERT_FALSE(dom.empty());
  EXPECT_EQ(dom.find("<script"), std::string::npos) << dom;  // no script element was made
  EXPECT_EQ(dom.find("<img src=\"x\""), std::string::npos) << dom;
  EXPECT_EQ(dom.find("<b>"), std::string::npos) << dom;
  EXPECT_NE(dom.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos) << dom;  // shown as text
  EXPECT_NE(dom.find("alt=\"Test Badge\""), std::string::npos);
}

TEST_F(ShareTest, OwnerApiChecksInputAndOwnership) {
  const std::string token = VerifiedUser("ann@learner.example", "Ann");
  const std::string other = VerifiedUser("bob@learner.example", "Bob");

  EXPECT_EQ(Call("GET", "/api/v1/collections").status, 401);
  EXPECT_EQ(Call("POST", "/api/v1/collections", {{"name", "x"}}).status, 401);

  auto error_of = [&](const json& body) {
    Reply r = Call("POST", "/api/v1/collections", body, token);
    EXPECT_EQ(r.status, 400) << r.body;
    return json::parse(r.body, nullptr, false)["error"].value("message", "");
  };
  EXPECT_NE(error_of({{"description", "no name"}}).find("'name'"), std::string::npos);
  EXPECT_NE(error_of({{"name", 5}}).find("'name'"), std::string::npos);
  EXPECT_NE(error_of({{"name", "x"}, {"description", true}}).find("'description'"), std::string::npos);
  EXPECT_NE(error_of({{"name", "x"}, {"badges", "abc"}}).find("'badges'"), std::string::npos);
  EXPECT_NE(error_of({{"name", "x"}, {"badges", {1, 2}}}).find("'badges'"), std::string::npos);
  EXPECT_NE(error_of({{"name", "x"}, {"public", "yes"}}).find("'public'"), std::string::npos);
  EXPECT_EQ(error_of({{"name", "x"}, {"badges", {"nope"}}}), "unknown badge nope");
  EXPECT_EQ(error_of({{"name", "  "}}), "name must not be empty");
  Reply not_json = node_->Call({"POST", "/api/v1/collections", "name=x", "text/plain", token, {}});
  EXPECT_EQ(not_json.status, 415);

  json c = CreateCollection(token, {{"name", "Private one"}});
  const std::string id = c["id"];
  EXPECT_FALSE(c["public"].get<bool>());
  EXPECT_FALSE(c.contains("share_url"));
  EXPECT_EQ(c["description"], "");
  EXPECT_EQ(c["badges"], json::array());
  EXPECT_FALSE(c["created_at"].get<std::string>().empty());

  Reply list = Call("GET", "/api/v1/collections", nullptr, token);
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(json::parse(list.body)["collections"].size(), 1u);
  EXPECT_EQ(json::parse(list.body)["collections"][0]["id"], id);
  EXPECT_TRUE(json::parse(Call("GET", "/api/v1/collections", nullptr, other).body)["collections"].empty());

  EXPECT_EQ(Call("GET", "/api/v1/collections/" + id, nullptr, other).status, 404);
  EXPECT_EQ(Call("PATCH", "/api/v1/collections/" + id, {{"name", "mine now"}}, other).status, 404);
  EXPECT_EQ(Call("DELETE", "/api/v1/collections/" + id, nullptr, other).status, 404);

  Reply patched = Call("PATCH", "/api/v1/collections/" + id, {{"description", "now described"}}, token);
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(json::parse(patched.body)["name"], "Private one");
  EXPECT_EQ(json::parse(patched.body)["description"], "now described");
  EXPECT_EQ(Call("PATCH", "/api/v1/collections/" + id, {{"public", 1}}, token).status, 400);

  EXPECT_EQ(Call("DELETE", "/api/v1/collections/" + id, nullptr, token).status, 204);
  EXPECT_EQ(Call("GET", "/api/v1/collections/" + id, nullptr, token).status, 404);
  EXPECT_EQ(Call("DELETE", "/api/v1/collections/" + id, nullptr, token).status, 404);

  // A verified address whose owner shows nothing is not found by the displayer lookup.
  EXPECT_EQ(Call("POST", "/displayer/convert/email", {{"email", "ann@learner.example"}}).status, 404);
}

TEST(DisplayerLookups, AreRateLimitedPerClientAsConfigured) {
  TempDir dir;
  NodeProcess node(dir.path() + "/data", "[badges]\ndisplayer_lookups_per_minute = 2\n");
  ASSERT_TRUE(node.Start()) << node.ReadLog();
  auto lookup = [&node] {
    return node.Call({"POST", "/displayer/convert/email", "email=nobody%40learner.example",
                      "application/x-www-form-urlencoded", "", {}});
  };
  EXPECT_EQ(lookup().status, 404);
  EXPECT_EQ(lookup().status, 404);
  const Reply limited = lookup();
  EXPECT_EQ(limited.status, 429) << limited.body;
  EXPECT_FALSE(limited.Header("retry-after").empty());
}

}  // namespace
}  // namespace backpack::testing
