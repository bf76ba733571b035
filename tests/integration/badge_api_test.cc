// The badge API end to end: a real backpackd, our own issuer serving its
// documents over real HTTP on 127.0.0.1, and real requests.
#include <gtest/gtest.h>

#include <csignal>
#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>

#include "protocol/baking.h"
#include "tests/support/test_http.h"
#include "tests/support/test_issuer.h"

namespace backpack {
namespace {

using nlohmann::json;
using testing::AwardOptions;
using testing::NodeProcess;
using testing::Reply;
using testing::TempDir;
using testing::TestIssuer;

constexpr char kAllowPrivate[] = "[fetch]\nallow_private = true\n";

class BadgeApiTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(issuer_.Start()); }

  std::unique_ptr<NodeProcess> StartNode(const std::string& name, const std::string& extra_toml = kAllowPrivate) {
    auto node = std::make_unique<NodeProcess>(dir_.path() + "/" + name, extra_toml);
    EXPECT_TRUE(node->Start()) << node->ReadLog();
    return node;
  }
  std::string Outbox(const std::string& name) const { return dir_.path() + "/" + name + "/outbox"; }

  static Reply PostJson(const NodeProcess& node, const std::string& target, const json& body, const std::string& token) {
    return node.Call({"POST", target, body.dump(), "application/json", token, {}});
  }
  static Reply PostImage(const NodeProcess& node, const std::string& bytes, const std::string& type,
                         const std::string& token) {
    return node.Call({"POST", "/api/v1/badges", bytes, type, token, {}});
  }
  static Reply Get(const NodeProcess& node, const std::string& target, const std::string& token) {
    return node.Call({"GET", target, "", "", token, {}});
  }

  // The report's first ERROR name, or "".
  static std::string FailedCheck(const Reply& r) {
    const json body = json::parse(r.body, nullptr, false);
    if (!body.is_object() || !body.contains("verification")) return {};
    for (const json& m : body["verification"]["messages"]) {
      if (m["messageLevel"] == "ERROR") return m["name"];
    }
    return {};
  }

  TempDir dir_;
  TestIssuer issuer_;
};

TEST_F(BadgeApiTest, ImportsOpenBadges3CredentialsInEveryForm) {
  using testing::CredentialProofKind;
  auto node = StartNode("a");
  const std::string token = testing::SignUpVerified(*node, Outbox("a"), "ada@example.org");
  ASSERT_FALSE(token.empty()) << node->ReadLog();
  const std::string vc = issuer_.AwardCredential({.email = "ada@example.org"});
  const std::string jwt = issuer_.AwardCredential({.email = "ada@example.org"}, CredentialProofKind::kJwt);
  const auto credential = protocol::BadgeKind::kCredential;
  const struct {
    const char* what;
    Reply reply;
    const char* form;
  } accepted[] = {
      {"credential json", PostJson(*node, "/api/v1/badges", {{"credential", json::parse(vc)}}, token), "json"},
      {"vc-jwt", PostJson(*node, "/api/v1/badges", {{"credential", jwt}}, token), "jwt"},
      {"baked png",
       PostImage(*node, issuer_.BakePng(issuer_.AwardCredential({.email = "ada@example.org"}), credential),
                 "image/png", token),
       "json"},
      {"baked svg",
       PostImage(*node,
                 issuer_.BakeSvg(issuer_.AwardCredential({.email = "ada@example.org"}, CredentialProofKind::kJwt),
                                 credential),
                 "image/svg+xml", token),
       "jwt"},
  };
  for (const auto& c : accepted) {
    ASSERT_EQ(c.reply.status, 201) << c.what << ": " << c.reply.body;
    const json body = json::parse(c.reply.body);
    EXPECT_EQ(body["status"], "valid") << c.what;
    EXPECT_EQ(body["spec_version"], "3.0") << c.what;
    EXPECT_EQ(body["badge"]["credential"]["form"], c.form) << c.what;
    EXPECT_EQ(body["badge"]["issuer"]["id"], issuer_.IssuerDid()) << c.what;
  }
  // The issuer's bytes come back verbatim.
  const std::string id = json::parse(accepted[0].reply.body)["id"];
  const Reply read = Get(*node, "/api/v1/badges/" + id, token);
  ASSERT_EQ(read.status, 200) << read.body;
  EXPECT_EQ(json::parse(read.body)["original"]["assertion"], vc);
  // Baked again for export: an OB 3.0 image with the credential in it.
  const Reply baked = Get(*node, "/api/v1/badges/" + id + "/baked", token);
  ASSERT_EQ(baked.status, 200) << baked.body;
  auto payload = protocol::ExtractBadge(baked.body);
  ASSERT_TRUE(payload.ok()) << payload.status().ToString();
  EXPECT_EQ(payload->kind, protocol::BadgeKind::kCredential);
  EXPECT_EQ(payload->data, vc);

  // A tampered credential fails naming the proof check, and nothing is stored.
  const Reply list_before = Get(*node, "/api/v1/badges", token);
  const std::string forged = TestIssuer::Tamper(vc, "/credentialSubject/achievement/name", "Forged");
  const Reply refused = PostJson(*node, "/api/v1/badges", {{"credential", json::parse(forged)}}, token);
  EXPECT_EQ(refused.status, 422) << refused.body;
  EXPECT_EQ(FailedCheck(refused), "VERIFY_PROOF") << refused.body;
  EXPECT_EQ(Get(*node, "/api/v1/badges", token).body, list_before.body);
}

TEST_F(BadgeApiTest, ImportsEveryFormAndExplainsEveryRefusal) {
  auto node = StartNode("a");
  // Verified as typed in lower case; the issuer awarded to the mixed-case form.
  // The earner typed a capitalised address; issuers award to the lower-case
  // form (hashed) or to yet another case (in clear).
  const std::string token = testing::SignUpVerified(*node, Outbox("a"), "Ada@Example.org");
  ASSERT_FALSE(token.empty()) << node->ReadLog();

  struct Case {
    const char* what;
    Reply reply;
  };
  const std::string hosted_url = issuer_.AwardHosted({.email = "ada@example.org"});
  const std::string jws = issuer_.AwardSigned({.email = "ada@example.org"});
  const std::vector<Case> accepted = {
      {"hosted url", PostJson(*node, "/api/v1/badges", {{"url", hosted_url}}, token)},
      {"jws", PostJson(*node, "/api/v1/badges", {{"jws", jws}}, token)},
      {"baked png",
       PostImage(*node, issuer_.BakePng(issuer_.AwardSigned({.email = "ada@example.org"})), "image/png", token)},
      {"baked svg",
       PostImage(*node, issuer_.BakeSvg(issuer_.AwardHosted({.email = "ada@example.org"})), "image/svg+xml", token)},
      {"assertion json",
       PostJson(*node, "/api/v1/badges",
                {{"assertion", json::parse(issuer_.HostedJson(issuer_.AwardHosted({.email = "ada@example.org"})))}},
                token)},
      {"plain recipient in another case",
       PostJson(*node, "/api/v1/badges", {{"url", issuer_.AwardHosted({.email = "ADA@example.ORG", .hashed = false})}},
                token)},
  };
  for (const Case& c : accepted) {
    ASSERT_EQ(c.reply.status, 201) << c.what << ": " << c.reply.body;
    const json body = json::parse(c.reply.body);
    EXPECT_EQ(body["state"], "accepted") << c.what;
    EXPECT_EQ(body["status"], "valid") << c.what;
    EXPECT_TRUE(body["verification"]["valid"].get<bool>()) << c.what;
    EXPECT_EQ(body["verification"]["errorCount"], 0) << c.what;
    EXPECT_FALSE(body["id"].get<std::string>().empty());
    EXPECT_EQ(body["recipient"], "Ada@Example.org") << c.what;
  }
  // The same badge again: 200 with the same record.
  const Reply again = PostJson(*node, "/api/v1/badges", {{"url", hosted_url}}, token);
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(json::parse(again.body)["id"], json::parse(accepted[0].reply.body)["id"]);

  // Refusals name the check that failed, and store nothing.
  std::string forged = issuer_.AwardSigned({.email = "ada@example.org"});
  forged[forged.rfind('.') + 5] = forged[forged.rfind('.') + 5] == 'A' ? 'B' : 'A';
  const std::string revoked_url = issuer_.AwardHosted({.email = "ada@example.org"});
  issuer_.Revoke(revoked_url);
  const struct {
    const char* what;
    Reply reply;
    const char* check;
  } refused[] = {
      {"forged signature", PostJson(*node, "/api/v1/badges", {{"jws", forged}}, token), "VERIFY_SIGNATURE"},
      {"revoked", PostJson(*node, "/api/v1/badges", {{"url", revoked_url}}, token), "REVOKED"},
      {"expired",
       PostJson(*node, "/api/v1/badges",
                {{"jws", issuer_.AwardSigned({.email = "ada@example.org", .issued_on = 1500000000,
                                              .expires = 1600000000})}},
                token),
       "EXPIRED"},
      {"wrong recipient",
       PostJson(*node, "/api/v1/badges", {{"url", issuer_.AwardHosted({.email = "eve@example.org"})}}, token),
       "VALIDATE_RECIPIENT"},
      {"image without a badge", PostImage(*node, issuer_.BakePng("https://x.example/a").substr(0, 8) + "garbage",
                                          "image/png", token),
       "BAKED_IMAGE"},
  };
  for (const auto& r : refused) {
    EXPECT_EQ(r.reply.status, 422) << r.what << ": " << r.reply.body;
    EXPECT_EQ(FailedCheck(r.reply), r.check) << r.what << ": " << r.reply.body;
    EXPECT_EQ(json::parse(r.reply.body)["error"]["code"], "verification_failed");
  }
  const Reply list = Get(*node, "/api/v1/badges", token);
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(json::parse(list.body)["badges"].size(), accepted.size());
}

TEST_F(BadgeApiTest, ReadsDeletesAndBakes) {
  auto node = StartNode("a");
  const std::string token = testing::SignUpVerified(*node, Outbox("a"), "ada@example.org");
  const std::string jws = issuer_.AwardSigned({.email = "ada@example.org"});
  const Reply created = PostJson(*node, "/api/v1/badges", {{"jws", jws}}, token);
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string id = json::parse(created.body)["id"];

  const Reply one = Get(*node, "/api/v1/badges/" + id, token);
  ASSERT_EQ(one.status, 200);
  const json body = json::parse(one.body);
  EXPECT_EQ(body["original"]["assertion"], jws);
  EXPECT_EQ(body["original"]["form"], "jws");
  EXPECT_TRUE(body["verification"]["valid"].get<bool>());
  EXPECT_EQ(body["badge"]["issuer"]["id"], issuer_.IssuerUrl());

  const Reply baked = Get(*node, "/api/v1/badges/" + id + "/baked", token);
  ASSERT_EQ(baked.status, 200) << baked.body;
  auto payload = protocol::ExtractBadge(baked.body);
  ASSERT_TRUE(payload.ok()) << payload.status().ToString();
  EXPECT_EQ(payload->data, jws);

  // Someone else's token sees nothing; no token is refused.
  const std::string other = testing::SignUpVerified(*node, Outbox("a"), "bob@example.org");
  EXPECT_EQ(Get(*node, "/api/v1/badges/" + id, other).status, 404);
  EXPECT_EQ(Get(*node, "/api/v1/badges/" + id, "").status, 401);
  EXPECT_EQ(Get(*node, "/api/v1/badges", "").status, 401);

  EXPECT_EQ(node->Call({"DELETE", "/api/v1/badges/" + id, "", "", token, {}}).status, 204);
  EXPECT_EQ(Get(*node, "/api/v1/badges/" + id, token).status, 404);
}

TEST_F(BadgeApiTest, BadRequestsChangeNothing) {
  auto node = StartNode("a");
  const std::string token = testing::SignUpVerified(*node, Outbox("a"), "ada@example.org");
  EXPECT_EQ(node->Call({"POST", "/api/v1/badges", "{not json", "application/json", token, {}}).status, 400);
  EXPECT_EQ(node->Call({"POST", "/api/v1/badges", "hello", "text/plain", token, {}}).status, 415);
  EXPECT_EQ(PostJson(*node, "/api/v1/badges", {{"url", 5}}, token).status, 400);
  EXPECT_EQ(PostJson(*node, "/api/v1/badges", {{"url", "a"}, {"jws", "b"}}, token).status, 400);
  // A URL the node must not fetch: refused by the address policy on a node
  // without allow_private, with a report.
  auto strict = StartNode("strict", "");
  const std::string strict_token = testing::SignUpVerified(*strict, Outbox("strict"), "ada@example.org");
  const Reply ssrf = PostJson(*strict, "/api/v1/badges",
                              {{"url", issuer_.AwardHosted({.email = "ada@example.org"})}}, strict_token);
  EXPECT_EQ(ssrf.status, 422) << ssrf.body;
  EXPECT_EQ(FailedCheck(ssrf), "FETCH_DOCUMENT");
  EXPECT_NE(ssrf.body.find("not public"), std::string::npos) << ssrf.body;
  for (const auto* n : {node.get(), strict.get()}) {
    const Reply list = Get(*n, "/api/v1/badges", n == node.get() ? token : strict_token);
    EXPECT_TRUE(json::parse(list.body)["badges"].empty());
  }
}

TEST_F(BadgeApiTest, ReverificationNoticesRevocationAndOutages) {
  // Short back-off so the scheduler's retry comes within the test.
  auto node = StartNode("a", std::string(kAllowPrivate) + "[badges]\nretry_min_seconds = 1\n");
  const std::string token = testing::SignUpVerified(*node, Outbox("a"), "ada@example.org");
  const std::string url = issuer_.AwardHosted({.email = "ada@example.org"});
  const Reply created = PostJson(*node, "/api/v1/badges", {{"url", url}}, token);
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string id = json::parse(created.body)["id"];

  issuer_.SetDown(true);
  const Reply down = PostJson(*node, "/api/v1/badges/" + id + "/verify", json::object(), token);
  ASSERT_EQ(down.status, 200) << down.body;
  EXPECT_EQ(json::parse(down.body)["status"], "unverifiable");
  EXPECT_FALSE(json::parse(down.body)["status_since"].is_null());

  // The issuer comes back; the scheduler notices on its own.
  issuer_.SetDown(false);
  std::string status;
  for (int i = 0; i < 100 && status != "valid"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    status = json::parse(Get(*node, "/api/v1/badges/" + id, token).body)["status"];
  }
  EXPECT_EQ(status, "valid") << node->ReadLog();

  issuer_.Revoke(url);
  const Reply revoked = PostJson(*node, "/api/v1/badges/" + id + "/verify", json::object(), token);
  ASSERT_EQ(revoked.status, 200);
  EXPECT_EQ(json::parse(revoked.body)["status"], "revoked");
  EXPECT_EQ(Get(*node, "/api/v1/badges/" + id, token).status, 200);  // kept, marked
}

TEST_F(BadgeApiTest, ExportFromOneNodeImportsIntoAnotherByteForByte) {
  auto a = StartNode("a");
  auto b = StartNode("b");
  const std::string token_a = testing::SignUpVerified(*a, Outbox("a"), "ada@example.org");
  const std::string token_b = testing::SignUpVerified(*b, Outbox("b"), "ada@example.org");
  ASSERT_FALSE(token_b.empty());
  std::vector<Reply> made = {
      PostJson(*a, "/api/v1/badges", {{"url", issuer_.AwardHosted({.email = "ada@example.org"})}}, token_a),
      PostJson(*a, "/api/v1/badges", {{"jws", issuer_.AwardSigned({.email = "ada@example.org"})}}, token_a),
      PostImage(*a, issuer_.BakePng(issuer_.AwardSigned({.email = "ada@example.org"})), "image/png", token_a),
      // OB 3.0: a credential whose status list is kept with it, and a baked VC-JWT.
      PostJson(*a, "/api/v1/badges", {{"credential", json::parse(issuer_.AwardCredential({.email = "ada@example.org"}))}},
               token_a),
      PostImage(*a,
                issuer_.BakePng(issuer_.AwardCredential({.email = "ada@example.org"}, testing::CredentialProofKind::kJwt),
                                protocol::BadgeKind::kCredential),
                "image/png", token_a),
  };
  for (const Reply& r : made) ASSERT_EQ(r.status, 201) << r.body;

  const Reply exported = Get(*a, "/api/v1/account/export", token_a);
  ASSERT_EQ(exported.status, 200) << exported.body;
  const json bundle = json::parse(exported.body);
  EXPECT_EQ(bundle["format"], "backpackd.account-export");
  ASSERT_EQ(bundle["badges"].size(), 5u);

  // The issuer is offline while the bundle is restored: kept documents stand in.
  issuer_.SetDown(true);
  const Reply imported = PostJson(*b, "/api/v1/account/import", bundle, token_b);
  ASSERT_EQ(imported.status, 200) << imported.body;
  EXPECT_EQ(json::parse(imported.body)["badges"]["created"], 5) << imported.body;
  issuer_.SetDown(false);

  auto originals = [](const NodeProcess& node, const std::string& token) {
    std::multiset<std::string> out;
    const json list = json::parse(Get(node, "/api/v1/badges", token).body);
    for (const json& badge : list["badges"]) {
      const json one = json::parse(Get(node, "/api/v1/badges/" + badge["id"].get<std::string>(), token).body);
      out.insert(one["original"]["assertion"].get<std::string>());
    }
    return out;
  };
  EXPECT_EQ(originals(*b, token_b).size(), 5u) << Get(*b, "/api/v1/badges", token_b).body << imported.body;
  EXPECT_EQ(originals(*a, token_a), originals(*b, token_b));

  // Importing the same bundle again adds nothing.
  const Reply twice = PostJson(*b, "/api/v1/account/import", bundle, token_b);
  ASSERT_EQ(twice.status, 200);
  EXPECT_EQ(json::parse(twice.body)["badges"]["existing"], 5) << twice.body;

  // A malformed bundle changes nothing.
  json broken = bundle;
  broken["badges"][1]["assertion"]["base64url"] = "!!!";
  const Reply bad = PostJson(*b, "/api/v1/account/import", broken, token_b);
  EXPECT_EQ(bad.status, 400) << bad.body;
}

TEST_F(BadgeApiTest, ImportsAreRateLimitedPerAccount) {
  auto node = StartNode("a", std::string(kAllowPrivate) + "[badges]\nimports_per_minute = 2\n");
  const std::string token = testing::SignUpVerified(*node, Outbox("a"), "ada@example.org");
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(PostJson(*node, "/api/v1/badges", {{"jws", issuer_.AwardSigned({.email = "ada@example.org"})}}, token)
                  .status,
              201);
  }
  const Reply limited =
      PostJson(*node, "/api/v1/badges", {{"jws", issuer_.AwardSigned({.email = "ada@example.org"})}}, token);
  EXPECT_EQ(limited.status, 429) << limited.body;
  EXPECT_FALSE(limited.Header("retry-after").empty());
  EXPECT_EQ(json::parse(Get(*node, "/api/v1/badges", token).body)["badges"].size(), 2u);

  // An export bundle counts each badge: on a fresh node with the same limit,
  // the request takes one token, the first badge the other, the rest wait.
  const json bundle = json::parse(Get(*node, "/api/v1/account/export", token).body);
  auto other = StartNode("b", std::string(kAllowPrivate) + "[badges]\nimports_per_minute = 2\n");
  const std::string other_token = testing::SignUpVerified(*other, Outbox("b"), "ada@example.org");
  const Reply restored = PostJson(*other, "/api/v1/account/import", bundle, other_token);
  ASSERT_EQ(restored.status, 200) << restored.body;
  EXPECT_EQ(json::parse(restored.body)["badges"]["created"], 1) << restored.body;
  EXPECT_EQ(json::parse(restored.body)["badges"]["deferred"].size(), 1u) << restored.body;
}

TEST_F(BadgeApiTest, DeletingTheAccountDeletesItsBadgesAndCollections) {
  auto node = StartNode("a");
  const std::string token = testing::SignUpVerified(*node, Outbox("a"), "ada@example.org");
  const Reply badge =
      PostJson(*node, "/api/v1/badges", {{"jws", issuer_.AwardSigned({.email = "ada@example.org"})}}, token);
  ASSERT_EQ(badge.status, 201);
  const Reply collection = PostJson(*node, "/api/v1/collections",
                                    {{"name", "Mine"}, {"badges", {json::parse(badge.body)["id"]}}, {"public", true}},
                                    token);
  ASSERT_EQ(collection.status, 201) << collection.body;
  const std::string share = json::parse(collection.body)["share_url"];
  const std::string share_path = share.substr(share.find("/share/"));
  EXPECT_EQ(Get(*node, share_path, "").status, 200);

  const Reply deleted = node->Call({"DELETE", "/api/v1/account", json{{"password", "correct horse battery"}}.dump(),
                                    "application/json", token, {}});
  ASSERT_EQ(deleted.status, 204) << deleted.body;
  EXPECT_EQ(Get(*node, share_path, "").status, 404);
  // A new account for the same address starts empty.
  const std::string again = testing::SignUpVerified(*node, Outbox("a"), "ada@example.org");
  ASSERT_FALSE(again.empty());
  EXPECT_TRUE(json::parse(Get(*node, "/api/v1/badges", again).body)["badges"].empty());
  EXPECT_TRUE(json::parse(Get(*node, "/api/v1/collections", again).body)["collections"].empty());
}

TEST_F(BadgeApiTest, AnAcknowledgedImportSurvivesKill9) {
  auto node = StartNode("a");
  const std::string token = testing::SignUpVerified(*node, Outbox("a"), "ada@example.org");
  const std::string jws = issuer_.AwardSigned({.email = "ada@example.org"});
  const Reply created = PostJson(*node, "/api/v1/badges", {{"jws", jws}}, token);
  ASSERT_EQ(created.status, 201);
  ASSERT_NE(node->StopWith(SIGKILL), -1);
  node = StartNode("a");
  const Reply one = Get(*node, "/api/v1/badges/" + json::parse(created.body)["id"].get<std::string>(), token);
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(json::parse(one.body)["original"]["assertion"], jws);
}

}  // namespace
}  // namespace backpack
