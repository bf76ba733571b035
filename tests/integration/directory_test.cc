// The earner's federation choices, WebFinger discovery, the delivery inbox
// and `backpackctl deliver` end to end: real backpackd nodes on 127.0.0.1
// (fetch.allow_private, so they reach our own issuer and each other), our
// issuer serving OB 2.0 and OB 3.0 badges over real HTTP, and the real
// backpackctl. The WebFinger answers are checked here the way an issuer
// would, with protocol/account_record.h.
//
// Two peered nodes show discovery at a node that is not the earner's home
// (it learnt the records by replication) and its 307 to the home inbox;
// tests/daemon/earner_federation_test.cc covers the same with a second
// record store that applied the records itself.
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "protocol/account_record.h"
#include "protocol/encoding.h"
#include "tests/support/test_http.h"
#include "tests/support/test_issuer.h"

#ifndef BACKPACKCTL_PATH
#error "BACKPACKCTL_PATH must name the backpackctl binary"
#endif

namespace backpack::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr char kAnn[] = "ann@example.org";
constexpr char kJrd[] = "application/jrd+json";

class DirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(issuer_.Start()); }

  NodeProcess& StartNode(const std::string& name, const std::string& federation_toml = {}) {
    auto node = std::make_unique<NodeProcess>(
        dir_.path() + "/" + name,
        "[fetch]\nallow_private = true\ntimeout_ms = 3000\n[federation]\n" + federation_toml + "\n");
    EXPECT_TRUE(node->Start()) << node->ReadLog();
    nodes_.push_back(std::move(node));
    return *nodes_.back();
  }
  std::string Outbox(const std::string& name) const { return dir_.path() + "/" + name + "/outbox"; }

  static Reply Call(const NodeProcess& node, const std::string& method, const std::string& target,
                    const std::string& body = {}, const std::string& token = {},
                    const std::string& type = "application/json") {
    return node.Call({method, target, body, body.empty() ? std::string() : type, token, {}});
  }
  static json Body(const Reply& r) { return json::parse(r.body, nullptr, false); }

  static Reply WebFinger(const NodeProcess& node, const std::string& resource) {
    return Call(node, "GET", "/.well-known/webfinger?resource=" + protocol::PercentEncode(resource));
  }
  static Reply Deliver(const NodeProcess& node, const std::string& account, const std::string& body,
                       const std::string& type = "application/json") {
    return Call(node, "POST", "/_federation/v1/inbox/" + account, body, {}, type);
  }

  struct CtlResult {
    int exit_code = -1;
    std::string output;
  };
  CtlResult Ctl(const std::vector<std::string>& args) {
    const std::string out = dir_.path() + "/ctl.out";
    std::string command = BACKPACKCTL_PATH;
    for (const std::string& arg : args) command += " '" + arg + "'";
    CtlResult result;
    const int status = Shell(command + " > '" + out + "' 2>&1");
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    result.output = ReadFile(out);
    return result;
  }
  std::string WriteFile(const std::string& name, const std::string& data) {
    const std::string path = dir_.path() + "/" + name;
    std::ofstream(path, std::ios::binary) << data;
    return path;
  }

  // An earner on `node` with `email` verified and made discoverable; returns
  // the session token and sets `account` to the federated id.
  std::string DiscoverableEarner(const NodeProcess& node, const std::string& outbox, const std::string& email,
                                 std::string* account) {
    const std::string token = SignUpVerified(node, outbox, email);
    EXPECT_FALSE(token.empty()) << node.ReadLog();
    const Reply put = Call(node, "PUT", "/api/v1/account/federation", json{{"discoverable", {email}}}.dump(), token);
    EXPECT_EQ(put.status, 200) << put.body;
    *account = Body(put).value("account", "");
    return token;
  }

  // The records of a WebFinger answer verify, and name `email` and the home `node`.
  static void ExpectVerifiedAnswer(const json& jrd, const std::string& email, const NodeProcess& node) {
    const json& records = jrd["records"];
    auto directory = protocol::ParseEnvelopeObject(records["directory"]);
    auto home = protocol::ParseEnvelopeObject(records["home"]);
    ASSERT_TRUE(directory.ok()) << directory.status().ToString();
    ASSERT_TRUE(home.ok()) << home.status().ToString();
    auto key = protocol::GenesisKey(records["genesis"], directory->account);
    ASSERT_TRUE(key.ok()) << key.status().ToString();
    const int64_t now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    EXPECT_TRUE(protocol::VerifyEnvelope(*directory, *key, now_ms).ok());
    EXPECT_TRUE(protocol::VerifyEnvelope(*home, *key, now_ms).ok());
    EXPECT_EQ(directory->record["email_sha256"], protocol::EmailHash(email));
    EXPECT_EQ(directory->record["discoverable"], true);
    EXPECT_EQ(home->account, directory->account);
    EXPECT_EQ(home->record["node"], node.address());
    EXPECT_EQ(home->record["url"], "http://" + node.address());
    // A forged record does not verify.
    protocol::RecordEnvelope forged = *directory;
    forged.record["email_sha256"] = protocol::EmailHash("mallory@example.org");
    EXPECT_FALSE(protocol::VerifyEnvelope(forged, *key, now_ms).ok());
  }

  TempDir dir_;
  TestIssuer issuer_;
  std::vector<std::unique_ptr<NodeProcess>> nodes_;
};

TEST_F(DirectoryTest, TheEarnerChoosesAndWebFingerFindsOnlyWhatIsDiscoverable) {
  NodeProcess& node = StartNode("a");
  const std::string token = SignUpVerified(node, Outbox("a"), kAnn);
  ASSERT_FALSE(token.empty()) << node.ReadLog();
  ASSERT_EQ(Call(node, "POST", "/api/v1/account/emails", R"({"address":"ann.work@example.org"})", token).status, 201);
  ASSERT_EQ(Call(node, "POST", "/api/v1/account/emails", R"({"address":"ann.hidden@example.org"})", token).status, 201);
  const std::string verify = MailToken(Outbox("a"), "ann.hidden@example.org");
  ASSERT_EQ(Call(node, "POST", "/api/v1/account/emails/verify", json{{"token", verify}}.dump(), token).status, 200);

  EXPECT_EQ(Call(node, "GET", "/api/v1/account/federation").status, 401);
  Reply r = Call(node, "GET", "/api/v1/account/federation", {}, token);
  ASSERT_EQ(r.status, 200) << r.body;
  json choices = Body(r);
  const std::string account = choices["account"];
  EXPECT_EQ(account.size(), 33u);
  EXPECT_EQ(choices["home"], node.address());
  EXPECT_EQ(choices["discoverable"], json::array());
  EXPECT_EQ(choices["mirrors"], json::array());
  EXPECT_EQ(choices["mirror_all"], false);

  // Only verified addresses of the account; well-formed members only.
  r = Call(node, "PUT", "/api/v1/account/federation", R"({"discoverable":["ann.work@example.org"]})", token);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(Call(node, "PUT", "/api/v1/account/federation", R"({"discoverable":"ann@example.org"})", token).status,
            400);
  EXPECT_EQ(Call(node, "PUT", "/api/v1/account/federation", R"({"mirrors":["Not A Node"]})", token).status, 400);
  EXPECT_EQ(Call(node, "PUT", "/api/v1/account/federation", R"({"mirror_all":"yes"})", token).status, 400);
  EXPECT_EQ(Call(node, "PUT", "/api/v1/account/federation", R"({"colour":"red"})", token).status, 400);
  EXPECT_EQ(Call(node, "PUT", "/api/v1/account/federation", R"({"mirrors":[]})").status, 401);

  r = Call(node, "PUT", "/api/v1/account/federation",
           json{{"discoverable", {"Ann@Example.org"}}, {"mirrors", {"b.example"}}, {"mirror_all", false}}.dump(),
           token);
  ASSERT_EQ(r.status, 200) << r.body;
  choices = Body(r);
  EXPECT_EQ(choices["discoverable"], json::array({kAnn}));
  EXPECT_EQ(choices["mirrors"], json::array({"b.example"}));
  ASSERT_EQ(choices["warnings"].size(), 1u);  // b.example is not a peer
  // What GET shows may be sent back as it is.
  r = Call(node, "PUT", "/api/v1/account/federation", choices.dump(), token);
  EXPECT_EQ(r.status, 200) << r.body;

  // Found by address (any case) and by hash; the records check out.
  for (const std::string& resource : {std::string("mailto:") + kAnn, std::string("mailto:ANN@example.ORG"),
                                      "urn:backpackd:email-sha256:" + protocol::EmailHash(kAnn)}) {
    r = WebFinger(node, resource);
    ASSERT_EQ(r.status, 200) << resource << ": " << r.body;
    EXPECT_EQ(r.Header("content-type"), kJrd);
    EXPECT_EQ(r.Header("access-control-allow-origin"), "*");
    const json jrd = Body(r);
    EXPECT_EQ(jrd["subject"], resource);
    ASSERT_EQ(jrd["links"].size(), 2u);
    EXPECT_EQ(jrd["links"][0]["rel"], "https://purl.imsglobal.org/spec/ob/v3p0/discovery");
    EXPECT_EQ(jrd["links"][0]["href"], "http://" + node.address() + "/ims/ob/v3p0/discovery");
    EXPECT_EQ(jrd["links"][1]["rel"], "https://backpackd.org/rel/inbox");
    EXPECT_EQ(jrd["links"][1]["href"], "http://" + node.address() + "/_federation/v1/inbox/" + account);
    ExpectVerifiedAnswer(jrd, kAnn, node);
  }
  r = WebFinger(node, "urn:backpackd:email-sha256:" + protocol::EmailHash(kAnn) +
                          "&rel=" + protocol::PercentEncode("https://backpackd.org/rel/inbox"));
  EXPECT_EQ(r.status, 400);  // the '&' was encoded into the resource
  r = Call(node, "GET",
           "/.well-known/webfinger?resource=" + protocol::PercentEncode(std::string("mailto:") + kAnn) +
               "&rel=" + protocol::PercentEncode("https://backpackd.org/rel/inbox"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["links"].size(), 1u);

  // Not found: unknown, unverified, verified but not discoverable. Never a hint which.
  for (const char* hidden : {"mailto:stranger@example.org", "mailto:ann.work@example.org",
                             "mailto:ann.hidden@example.org", "acct:ann@example.org"}) {
    r = WebFinger(node, hidden);
    EXPECT_EQ(r.status, 404) << hidden << ": " << r.body;
    EXPECT_EQ(r.Header("access-control-allow-origin"), "*");
  }
  // Malformed.
  EXPECT_EQ(Call(node, "GET", "/.well-known/webfinger").status, 400);
  EXPECT_EQ(Call(node, "GET", "/.well-known/webfinger?resource=a&resource=b").status, 400);
  for (const std::string& bad :
       {std::string("mailto:not-an-address"), std::string("mailto:"), std::string("urn:backpackd:email-sha256:abc"),
        "urn:backpackd:email-sha256:zz" + std::string(62, '0'), std::string("ann@example.org")}) {
    EXPECT_EQ(WebFinger(node, bad).status, 400) << bad;
  }

  // Hidden again: not found any more.
  r = Call(node, "PUT", "/api/v1/account/federation", R"({"discoverable":[]})", token);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(WebFinger(node, std::string("mailto:") + kAnn).status, 404);
}

TEST_F(DirectoryTest, WebFingerAndInboxAreRateLimitedPerClient) {
  NodeProcess& node = StartNode("a", "webfinger_per_minute = 5\ninbox_per_minute = 3\n");
  int ok = 0;
  Reply r;
  for (int i = 0; i < 10 && (r = WebFinger(node, "mailto:someone@example.org")).status != 429; ++i) ++ok;
  EXPECT_EQ(ok, 5);
  ASSERT_EQ(r.status, 429) << r.body;
  EXPECT_FALSE(r.Header("retry-after").empty());
  EXPECT_EQ(r.Header("access-control-allow-origin"), "*");

  const std::string nobody = "a" + std::string(32, 'q');
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Deliver(node, nobody, R"({"url":"http://127.0.0.1:1/"})").status, 404);
  r = Deliver(node, nobody, R"({"url":"http://127.0.0.1:1/"})");
  EXPECT_EQ(r.status, 429) << r.body;
  EXPECT_FALSE(r.Header("retry-after").empty());
}

TEST_F(DirectoryTest, TheInboxStoresBadgesPendingAndTellsTheEarner) {
  NodeProcess& node = StartNode("a");
  std::string account;
  const std::string token = DiscoverableEarner(node, Outbox("a"), kAnn, &account);
  ASSERT_EQ(account.size(), 33u);

  // OB 2.0, a hosted assertion's JSON.
  const std::string hosted = issuer_.HostedJson(issuer_.AwardHosted({.email = kAnn}));
  Reply r = Deliver(node, account, R"({"assertion":)" + hosted + "}");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(Body(r)["status"], "delivered");
  EXPECT_EQ(Body(r)["state"], "pending");
  // The same again is harmless.
  r = Deliver(node, account, R"({"assertion":)" + hosted + "}");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["status"], "already_held");

  // OB 3.0: a credential as JSON, as a VC-JWT, baked in a PNG.
  const std::string vc = issuer_.AwardCredential({.email = kAnn});
  r = Deliver(node, account, json{{"credential", json::parse(vc)}}.dump());
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string jwt = issuer_.AwardCredential({.email = kAnn}, CredentialProofKind::kJwt);
  r = Deliver(node, account, json{{"credential", jwt}}.dump());
  ASSERT_EQ(r.status, 201) << r.body;
  r = Deliver(node, account, issuer_.BakePng(issuer_.AwardSigned({.email = kAnn})), "image/png");
  ASSERT_EQ(r.status, 201) << r.body;

  // Everything waits, pending, for the earner; the earner was told.
  r = Call(node, "GET", "/api/v1/badges?state=pending", {}, token);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["badges"].size(), 4u);
  int messages = 0;
  for (const std::string& file : ListFiles(Outbox("a"))) {
    if (ReadFile(file).find("Subject: A badge is waiting in your backpack") != std::string::npos) ++messages;
  }
  EXPECT_EQ(messages, 4);

  // Refused: a badge for someone else (422 with the report), too large, not JSON.
  r = Deliver(node, account,
              R"({"assertion":)" + issuer_.HostedJson(issuer_.AwardHosted({.email = "bob@example.org"})) + "}");
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(Body(r)["error"]["code"], "verification_failed");
  EXPECT_TRUE(Body(r)["verification"].is_object());
  r = Deliver(node, account, std::string(600 * 1024, 'x'), "image/png");
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_EQ(Deliver(node, account, "hello", "text/plain").status, 415);
  EXPECT_EQ(Deliver(node, account, R"({"nothing":1})").status, 400);
  // Unknown accounts.
  EXPECT_EQ(Deliver(node, "a" + std::string(32, 'q'), R"({"assertion":)" + hosted + "}").status, 404);
  EXPECT_EQ(Deliver(node, "not-an-account", R"({"assertion":)" + hosted + "}").status, 404);
  r = Call(node, "GET", "/api/v1/badges?state=pending", {}, token);
  EXPECT_EQ(Body(r)["badges"].size(), 4u);
}

TEST_F(DirectoryTest, BackpackctlDeliverFindsChecksAndDelivers) {
  NodeProcess& node = StartNode("a");
  std::string account;
  const std::string token = DiscoverableEarner(node, Outbox("a"), kAnn, &account);
  const std::string via = "http://" + node.address();

  const std::string vc = WriteFile("vc.json", issuer_.AwardCredential({.email = kAnn}));
  CtlResult out = Ctl({"deliver", "--to", kAnn, "--via", via, vc});
  EXPECT_EQ(out.exit_code, 0) << out.output;
  EXPECT_NE(out.output.find("delivered"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find(account), std::string::npos) << out.output;
  out = Ctl({"deliver", "--to", "ANN@example.org", "--via", via + "/", vc});
  EXPECT_EQ(out.exit_code, 0) << out.output;
  EXPECT_NE(out.output.find("already held"), std::string::npos) << out.output;

  const std::string jws = WriteFile("signed.jws", issuer_.AwardSigned({.email = kAnn}) + "\n");
  out = Ctl({"deliver", "--to", kAnn, "--via", via, jws});
  EXPECT_EQ(out.exit_code, 0) << out.output;
  const std::string svg = WriteFile("baked.svg", issuer_.BakeSvg(issuer_.AwardHosted({.email = kAnn})));
  out = Ctl({"deliver", "--to", kAnn, "--via", via, svg});
  EXPECT_EQ(out.exit_code, 0) << out.output;
  const std::string url = WriteFile("hosted.url", issuer_.AwardHosted({.email = kAnn}) + "\n");
  out = Ctl({"deliver", "--to", kAnn, "--via", via, url});
  EXPECT_EQ(out.exit_code, 0) << out.output;
  Reply r = Call(node, "GET", "/api/v1/badges?state=pending", {}, token);
  EXPECT_EQ(Body(r)["badges"].size(), 4u) << r.body;

  // Not discoverable: 3. Refused by the backpack: 4, with the reason.
  out = Ctl({"deliver", "--to", "stranger@example.org", "--via", via, vc});
  EXPECT_EQ(out.exit_code, 3) << out.output;
  const std::string other = WriteFile("other.json", issuer_.AwardCredential({.email = "bob@example.org"}));
  out = Ctl({"deliver", "--to", kAnn, "--via", via, other});
  EXPECT_EQ(out.exit_code, 4) << out.output;
  EXPECT_NE(out.output.find("VALIDATE_RECIPIENT"), std::string::npos) << out.output;
  // Usage and unreadable input.
  EXPECT_EQ(Ctl({"deliver", "--via", via, vc}).exit_code, 2);
  EXPECT_EQ(Ctl({"deliver", "--to", kAnn, "--via", via, dir_.path() + "/missing.json"}).exit_code, 1);
  EXPECT_EQ(Ctl({"deliver", "--to", kAnn, "--via", "http://127.0.0.1:1", vc}).exit_code, 1);
}

TEST_F(DirectoryTest, PublicAcceptedBadgesAreMirroredAndFollowTheEarner) {
  NodeProcess& node = StartNode("a");
  const std::string token = SignUpVerified(node, Outbox("a"), kAnn);
  ASSERT_FALSE(token.empty());
  auto mirrored = [&] {
    const Reply r = Call(node, "GET", "/api/v1/account/federation", {}, token);
    EXPECT_EQ(r.status, 200) << r.body;
    return Body(r).value("mirrored_badges", -1);
  };
  ASSERT_EQ(Call(node, "PUT", "/api/v1/account/federation", R"({"mirrors":["b.example"]})", token).status, 200);
  Reply r = Call(node, "POST", "/api/v1/badges", json{{"url", issuer_.AwardHosted({.email = kAnn})}}.dump(), token);
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string badge = Body(r)["id"];
  EXPECT_EQ(mirrored(), 0);  // accepted, but not public

  r = Call(node, "POST", "/api/v1/collections", json{{"name", "Shown"}, {"badges", {badge}}, {"public", true}}.dump(),
           token);
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string collection = Body(r)["id"];
  EXPECT_EQ(mirrored(), 1);
  r = Call(node, "PATCH", "/api/v1/badges/" + badge, R"({"state":"rejected"})", token);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(mirrored(), 0);
  ASSERT_EQ(Call(node, "PATCH", "/api/v1/badges/" + badge, R"({"state":"accepted"})", token).status, 200);
  EXPECT_EQ(mirrored(), 1);
  ASSERT_EQ(Call(node, "PATCH", "/api/v1/collections/" + collection, R"({"public":false})", token).status, 200);
  EXPECT_EQ(mirrored(), 0);
  ASSERT_EQ(Call(node, "PUT", "/api/v1/account/federation", R"({"mirror_all":true})", token).status, 200);
  EXPECT_EQ(mirrored(), 1);
  ASSERT_EQ(Call(node, "DELETE", "/api/v1/badges/" + badge, {}, token).status, 204);
  EXPECT_EQ(mirrored(), 0);
}

TEST_F(DirectoryTest, MirrorsThatArePeersGetNoWarning) {
  NodeProcess& b = StartNode("b");
  NodeProcess& a = StartNode("a", "peers = [\"http://" + b.address() + "\"]");
  const std::string token = SignUpVerified(a, Outbox("a"), kAnn);
  ASSERT_FALSE(token.empty());
  const Reply put =
      Call(a, "PUT", "/api/v1/account/federation", json{{"mirrors", {b.address(), "c.example"}}}.dump(), token);
  ASSERT_EQ(put.status, 200) << put.body;
  json choices;
  EXPECT_TRUE(WaitFor([&] {  // until the two have peered
    const Reply r = Call(a, "GET", "/api/v1/account/federation", {}, token);
    choices = Body(r);
    return r.status == 200 && choices["warnings"].size() == 1;
  })) << choices.dump();
  ASSERT_EQ(choices["warnings"].size(), 1u);
  EXPECT_NE(choices["warnings"][0].get<std::string>().find("c.example"), std::string::npos);
}

TEST_F(DirectoryTest, APeerAnswersForTheHomeAndSendsDeliveriesThere) {
  NodeProcess& b = StartNode("b", "webfinger_per_minute = 100000\n");
  NodeProcess& a = StartNode("a", "peers = [\"http://" + b.address() + "\"]\n");
  std::string account;
  const std::string token = DiscoverableEarner(a, Outbox("a"), kAnn, &account);
  ASSERT_EQ(account.size(), 33u);

  // Once b holds the records, it answers for the address, naming a.
  Reply found;
  ASSERT_TRUE(WaitFor([&] { return (found = WebFinger(b, std::string("mailto:") + kAnn)).status == 200; }, 30s))
      << found.status << " " << found.body;
  const json jrd = Body(found);
  ExpectVerifiedAnswer(jrd, kAnn, a);
  const std::string inbox = "http://" + a.address() + "/_federation/v1/inbox/" + account;
  EXPECT_EQ(jrd["links"][1]["href"], inbox);

  // A delivery to b is sent on to the home.
  const std::string hosted = issuer_.HostedJson(issuer_.AwardHosted({.email = kAnn}));
  const Reply moved = Deliver(b, account, R"({"assertion":)" + hosted + "}");
  EXPECT_EQ(moved.status, 307) << moved.body;
  EXPECT_EQ(moved.Header("location"), inbox);

  // The issuer's client asks b, checks the answer and delivers to a.
  const std::string vc = WriteFile("vc.json", issuer_.AwardCredential({.email = kAnn}));
  const CtlResult out = Ctl({"deliver", "--to", kAnn, "--via", "http://" + b.address(), vc});
  EXPECT_EQ(out.exit_code, 0) << out.output;
  EXPECT_NE(out.output.find(a.address()), std::string::npos) << out.output;
  const Reply pending = Call(a, "GET", "/api/v1/badges?state=pending", {}, token);
  EXPECT_EQ(Body(pending)["badges"].size(), 1u) << pending.body;
}

}  // namespace
}  // namespace backpack::testing
