// Integration tests of node identity, signed requests and peering: real
// backpackd nodes on 127.0.0.1 (fetch.allow_private, so they may reach each
// other), the real backpackctl, and a test-run "malicious peer" that signs
// requests itself.
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "federation/node_keys.h"
#include "federation/request_auth.h"
#include "protocol/encoding.h"
#include "tests/support/local_http_server.h"
#include "tests/support/test_http.h"

#ifndef BACKPACKCTL_PATH
#error "BACKPACKCTL_PATH must name the backpackctl binary"
#endif

namespace backpack::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct CtlResult {
  int exit_code = -1;
  std::string output;
};

class FederationPeeringTest : public ::testing::Test {
 protected:
  struct Node {
    std::unique_ptr<NodeProcess> process;
    std::string data_dir;
    std::string address() const { return process->address(); }
    std::string url() const { return "http://" + process->address(); }
  };

  // A node whose config is `federation_toml` under [federation].
  Node& StartNode(const std::string& federation_toml = {}) {
    const std::string dir = dir_.MakeSubdir("node" + std::to_string(nodes_.size()));
    auto node = std::make_unique<Node>();
    node->data_dir = dir + "/data";
    node->process = std::make_unique<NodeProcess>(
        node->data_dir, "[fetch]\nallow_private = true\ntimeout_ms = 3000\n[federation]\n" + federation_toml + "\n");
    EXPECT_TRUE(node->process->Start()) << node->process->ReadLog();
    nodes_.push_back(std::move(node));
    return *nodes_.back();
  }

  static std::string Token(const Node& node) {
    std::string token = ReadFile(node.data_dir + "/admin-token");
    while (!token.empty() && token.back() == '\n') token.pop_back();
    return token;
  }

  // The node's peer records, by name.
  static std::map<std::string, json> Peers(const Node& node) {
    Reply r = node.process->Call({"GET", "/_admin/v1/peers", "", "", Token(node), {}});
    std::map<std::string, json> out;
    if (r.status != 200) {
      ADD_FAILURE() << "GET /_admin/v1/peers: " << r.status << " " << r.body;
      return out;
    }
    const json body = json::parse(r.body);
    for (const json& peer : body["peers"]) out[peer["name"].get<std::string>()] = peer;
    return out;
  }
  static std::string StateOf(const Node& node, const std::string& peer) {
    auto peers = Peers(node);
    auto it = peers.find(peer);
    return it == peers.end() ? "" : it->second.value("state", std::string());
  }

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

  TempDir dir_;
  std::vector<std::unique_ptr<Node>> nodes_;
};

TEST_F(FederationPeeringTest, KeysEndpointPublishesTheNodeKeyAndRotationKeepsTheOldOne) {
  Node& a = StartNode();
  Reply r = a.process->Call({"GET", "/_federation/v1/keys", "", "", "", {}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.Header("cache-control").find("max-age="), std::string::npos);
  json doc = json::parse(r.body);
  EXPECT_EQ(doc["node"], a.address());
  ASSERT_EQ(doc["keys"].size(), 1u);
  EXPECT_EQ(doc["keys"][0]["id"], a.address() + "#k1");
  EXPECT_TRUE(doc["keys"][0]["multikey"].get<std::string>().starts_with("z6Mk"));
  EXPECT_TRUE(doc["keys"][0]["retired"].is_null());
  const std::string k1 = doc["keys"][0]["multikey"];

  // The node description names the keys and its capabilities.
  json description = json::parse(a.process->Call({"GET", "/.well-known/backpack-node", "", "", "", {}}).body);
  EXPECT_EQ(description["endpoints"]["federation_keys"], a.url() + "/_federation/v1/keys");
  EXPECT_EQ(description["federation"]["capabilities"], json::array({"peer/1"}));
  EXPECT_EQ(description["federation"]["peers"], json::array());

  // Offline rotation: the running node keeps k1 until it restarts.
  CtlResult rotated = Ctl({"node", "rotate-key", "--data-dir", a.data_dir});
  ASSERT_EQ(rotated.exit_code, 0) << rotated.output;
  EXPECT_NE(rotated.output.find("k2"), std::string::npos) << rotated.output;
  doc = json::parse(a.process->Call({"GET", "/_federation/v1/keys", "", "", "", {}}).body);
  EXPECT_EQ(doc["keys"].size(), 1u);

  ASSERT_EQ(WEXITSTATUS(a.process->StopWith(SIGTERM)), 0);
  ASSERT_TRUE(a.process->Start()) << a.process->ReadLog();
  doc = json::parse(a.process->Call({"GET", "/_federation/v1/keys", "", "", "", {}}).body);
  ASSERT_EQ(doc["keys"].size(), 2u) << doc.dump();
  EXPECT_EQ(doc["keys"][0]["id"], a.address() + "#k2");
  EXPECT_TRUE(doc["keys"][0]["retired"].is_null());
  EXPECT_EQ(doc["keys"][1]["id"], a.address() + "#k1");
  EXPECT_EQ(doc["keys"][1]["multikey"], k1);
  EXPECT_TRUE(doc["keys"][1]["retired"].is_number_integer());
}

TEST_F(FederationPeeringTest, ConfiguredPeersBecomeActiveOnBothSides) {
  Node& b = StartNode();
  Node& a = StartNode("peers = [\"" + b.url() + "\"]");
  ASSERT_TRUE(WaitFor([&] { return StateOf(a, b.address()) == "active" && StateOf(b, a.address()) == "active"; }))
      << "a: " << json(Peers(a)).dump() << "\nb: " << json(Peers(b)).dump();
  // A third node names both; every pair ends up active.
  Node& c = StartNode("peers = [\"" + a.url() + "\", \"" + b.url() + "/\"]");
  ASSERT_TRUE(WaitFor([&] {
    return StateOf(c, a.address()) == "active" && StateOf(c, b.address()) == "active" &&
           StateOf(a, c.address()) == "active" && StateOf(b, c.address()) == "active";
  })) << "c: " << json(Peers(c)).dump();

  const json record = Peers(a)[c.address()];
  EXPECT_EQ(record["origin"], "inbound");
  EXPECT_EQ(record["base_url"], c.url());
  EXPECT_EQ(record["capabilities"], json::array({"peer/1"}));
  EXPECT_EQ(Peers(c)[a.address()]["origin"], "config");

  // The node description lists the active peers.
  const json description = json::parse(b.process->Call({"GET", "/.well-known/backpack-node", "", "", "", {}}).body);
  std::vector<std::string> listed;
  for (const json& peer : description["federation"]["peers"]) listed.push_back(peer["name"]);
  std::sort(listed.begin(), listed.end());
  std::vector<std::string> expected = {a.address(), c.address()};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(listed, expected);

  // backpackctl shows the same.
  CtlResult list = Ctl({"peers", "list", "--data-dir", c.data_dir, "--url", c.url()});
  ASSERT_EQ(list.exit_code, 0) << list.output;
  EXPECT_NE(list.output.find(a.address()), std::string::npos) << list.output;
  EXPECT_NE(list.output.find("active"), std::string::npos) << list.output;
}

TEST_F(FederationPeeringTest, AnUnreachablePeerNeverHoldsUpTheStart) {
  Node& a = StartNode("peers = [\"http://127.0.0.1:1\"]\nretry_min_seconds = 1\n");
  EXPECT_EQ(a.process->Call({"GET", "/healthz", "", "", "", {}}).status, 200);
  ASSERT_TRUE(WaitFor([&] { return Peers(a)["127.0.0.1:1"].value("failures", 0) >= 2; }))
      << json(Peers(a)).dump();  // retried in the background
  const json record = Peers(a)["127.0.0.1:1"];
  EXPECT_EQ(record["state"], "pending");
  EXPECT_NE(record["last_error"].get<std::string>().find("127.0.0.1:1"), std::string::npos) << record.dump();
}

TEST_F(FederationPeeringTest, AllowlistKeepsTheOtherPendingUntilTheOperatorApproves) {
  Node& b = StartNode("mode = \"allowlist\"");
  Node& a = StartNode("peers = [\"" + b.url() + "\"]");
  ASSERT_TRUE(WaitFor([&] {
    return StateOf(b, a.address()) == "pending" && Peers(a)[b.address()].value("remote_state", std::string()) == "pending";
  })) << "a: " << json(Peers(a)).dump() << "\nb: " << json(Peers(b)).dump();
  EXPECT_EQ(StateOf(a, b.address()), "pending");
  std::this_thread::sleep_for(1500ms);  // nothing moves by itself
  EXPECT_EQ(StateOf(b, a.address()), "pending");
  EXPECT_EQ(StateOf(a, b.address()), "pending");
  json description = json::parse(b.process->Call({"GET", "/.well-known/backpack-node", "", "", "", {}}).body);
  EXPECT_EQ(description["federation"]["peers"], json::array());

  // Without the token, or with a wrong one, the admin API refuses.
  EXPECT_EQ(b.process->Call({"POST", "/_admin/v1/peers/" + a.address() + "/approve", "{}", "application/json", "", {}})
                .status,
            401);
  EXPECT_EQ(b.process
                ->Call({"POST", "/_admin/v1/peers/" + a.address() + "/approve", "{}", "application/json",
                        "not-the-token", {}})
                .status,
            401);
  EXPECT_EQ(StateOf(b, a.address()), "pending");

  CtlResult approved = Ctl({"peers", "approve", a.address(), "--data-dir", b.data_dir, "--url", b.url()});
  ASSERT_EQ(approved.exit_code, 0) << approved.output;
  EXPECT_NE(approved.output.find("active"), std::string::npos) << approved.output;
  // B tells A at once with its own handshake.
  ASSERT_TRUE(WaitFor([&] { return StateOf(a, b.address()) == "active" && StateOf(b, a.address()) == "active"; }))
      << "a: " << json(Peers(a)).dump() << "\nb: " << json(Peers(b)).dump();

  CtlResult unknown = Ctl({"peers", "approve", "nobody.example", "--data-dir", b.data_dir, "--url", b.url()});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.output.find("404"), std::string::npos) << unknown.output;
}

TEST_F(FederationPeeringTest, BlockRefusesEverySignedRequest) {
  Node& b = StartNode();
  Node& a = StartNode("peers = [\"" + b.url() + "\"]");
  ASSERT_TRUE(WaitFor([&] { return StateOf(a, b.address()) == "active" && StateOf(b, a.address()) == "active"; }));

  CtlResult blocked = Ctl({"peers", "block", a.address(), "--data-dir", b.data_dir, "--url", b.url()});
  ASSERT_EQ(blocked.exit_code, 0) << blocked.output;
  EXPECT_EQ(StateOf(b, a.address()), "blocked");
  json description = json::parse(b.process->Call({"GET", "/.well-known/backpack-node", "", "", "", {}}).body);
  EXPECT_EQ(description["federation"]["peers"], json::array());

  // A handshakes again (the operator adds B anew): B answers 403 blocked.
  CtlResult added = Ctl({"peers", "add", b.url(), "--data-dir", a.data_dir, "--url", a.url()});
  ASSERT_EQ(added.exit_code, 0) << added.output;
  const json record = Peers(a)[b.address()];
  EXPECT_EQ(record["remote_state"], "blocked") << record.dump();
  EXPECT_EQ(record["state"], "pending") << record.dump();
  EXPECT_NE(record["last_error"].get<std::string>().find("403 blocked"), std::string::npos) << record.dump();
  EXPECT_EQ(StateOf(b, a.address()), "blocked");

  // Unblocking lets it back in; B's own handshake restores both sides.
  CtlResult unblocked = Ctl({"peers", "unblock", a.address(), "--data-dir", b.data_dir, "--url", b.url()});
  ASSERT_EQ(unblocked.exit_code, 0) << unblocked.output;
  ASSERT_TRUE(WaitFor([&] { return StateOf(a, b.address()) == "active" && StateOf(b, a.address()) == "active"; }))
      << "a: " << json(Peers(a)).dump() << "\nb: " << json(Peers(b)).dump();
}

TEST_F(FederationPeeringTest, AdminAnswersOnlyWithTheToken) {
  Node& a = StartNode();
  EXPECT_EQ(a.process->Call({"GET", "/_admin/v1/peers", "", "", "", {}}).status, 401);
  EXPECT_EQ(a.process->Call({"GET", "/_admin/v1/peers", "", "", "wrong", {}}).status, 401);
  Reply ok = a.process->Call({"GET", "/_admin/v1/peers", "", "", Token(a), {}});
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(json::parse(ok.body)["node"], a.address());
  EXPECT_EQ(ReadFile(a.data_dir + "/admin-token").size(), 44u);  // 43 base64url characters and a newline

  CtlResult no_token = Ctl({"peers", "list", "--data-dir", dir_.path(), "--url", a.url()});
  EXPECT_NE(no_token.exit_code, 0);
  // A token from a previous start no longer works.
  const std::string old_token = Token(a);
  ASSERT_EQ(WEXITSTATUS(a.process->StopWith(SIGTERM)), 0);
  ASSERT_TRUE(a.process->Start());
  EXPECT_EQ(a.process->Call({"GET", "/_admin/v1/peers", "", "", old_token, {}}).status, 401);
  EXPECT_EQ(a.process->Call({"GET", "/_admin/v1/peers", "", "", Token(a), {}}).status, 200);
}

// --- A peer played by the test ------------------------------------------------

class MaliciousPeerTest : public FederationPeeringTest {
 protected:
  void SetUp() override {
    auto keys = federation::NodeKeys::LoadOrCreate(federation::KeysDirectory(dir_.MakeSubdir("fake")), Now());
    ASSERT_TRUE(keys.ok()) << keys.status().ToString();
    keys_.emplace(std::move(*keys));
    server_ = std::make_unique<LocalHttpServer>([this](const std::string& target) {
      if (target != "/_federation/v1/keys") return LocalResponse{404, "text/plain", "not found"};
      ++key_fetches_;
      return LocalResponse{200, "application/json", keys_->KeysDocument(name_)};
    });
    ASSERT_TRUE(server_->Start());
    name_ = server_->base_url().substr(7);  // "127.0.0.1:PORT"
  }

  // A handshake to `target` signed as `signer` with `key`, created at
  // `created`; `host` is the Host header (the target's address unless set).
  RequestSpec Handshake(const Node& target, const federation::NodeKey& key, const std::string& signer,
                        const std::string& claimed, const std::string& claimed_url, int64_t created,
                        const std::string& host = {}) {
    RequestSpec spec;
    spec.method = "POST";
    spec.target = "/_federation/v1/peer";
    spec.body = json{{"node", claimed}, {"base_url", claimed_url}, {"capabilities", {"peer/1"}}}.dump();
    const std::string authority = host.empty() ? target.address() : host;
    const std::string nonce = protocol::Base64UrlEncode("nonce-" + std::to_string(++nonces_) + "-padding-padding-pad");
    auto signature = federation::SignOutboundRequest(
        {"POST", "http://" + authority + spec.target, authority, spec.body}, signer, key, created, 300, nonce);
    EXPECT_TRUE(signature.ok()) << signature.status().ToString();
    spec.headers["Host"] = authority;
    spec.headers["Content-Digest"] = signature->content_digest;
    spec.headers["Signature-Input"] = signature->signature_input;
    spec.headers["Signature"] = signature->signature;
    return spec;
  }
  RequestSpec Genuine(const Node& target, int64_t created = 0) {
    return Handshake(target, keys_->current(), name_, name_, server_->base_url(), created ? created : Now());
  }

  static std::string FaultOf(const Reply& reply) {
    const json body = json::parse(reply.body, nullptr, false);
    return body.is_object() && body.contains("error") ? body["error"].value("code", std::string()) : "";
  }

  std::optional<federation::NodeKeys> keys_;
  std::unique_ptr<LocalHttpServer> server_;
  std::string name_;
  int nonces_ = 0;
  std::atomic<int> key_fetches_{0};
};

TEST_F(MaliciousPeerTest, GetsTheRightErrorForEachTrick) {
  Node& b = StartNode();
  Node& a = StartNode("peers = [\"" + b.url() + "\"]");
  ASSERT_TRUE(WaitFor([&] { return StateOf(b, a.address()) == "active"; }));

  // A genuine handshake from the test's node works...
  const RequestSpec genuine = Genuine(b);
  Reply r = b.process->Call(genuine);
  ASSERT_EQ(r.status, 200) << r.body;
  const json answer = json::parse(r.body);
  EXPECT_EQ(answer["node"], b.address());
  EXPECT_EQ(answer["base_url"], b.url());
  EXPECT_EQ(answer["state"], "active");
  EXPECT_EQ(StateOf(b, name_), "active");

  // ...once: the captured request replayed.
  r = b.process->Call(genuine);
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(FaultOf(r), "replayed") << r.body;

  // Expired, and from the future.
  r = b.process->Call(Genuine(b, Now() - 400));
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(FaultOf(r), "stale") << r.body;
  EXPECT_FALSE(r.Header("date").empty());
  r = b.process->Call(Genuine(b, Now() + 600));
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(FaultOf(r), "future") << r.body;

  // Signed for another authority and sent with its Host.
  r = b.process->Call(Handshake(b, keys_->current(), name_, name_, server_->base_url(), Now(), "other.example"));
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(FaultOf(r), "wrong-authority") << r.body;

  // Our key, but A's keyid and A's name in the body: B checks A's real keys.
  r = b.process->Call(Handshake(b, keys_->current(), a.address(), a.address(), a.url(), Now()));
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(FaultOf(r), "bad-signature") << r.body;

  // A key id our keys document does not list.
  const federation::NodeKey k9{"k9", keys_->current().key, Now(), std::nullopt};
  r = b.process->Call(Handshake(b, k9, name_, name_, server_->base_url(), Now()));
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(FaultOf(r), "unknown-key") << r.body;

  // A body changed after signing.
  RequestSpec tampered = Genuine(b);
  tampered.body = json{{"node", name_}, {"base_url", server_->base_url()}, {"capabilities", {"evil/1"}}}.dump();
  r = b.process->Call(tampered);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(FaultOf(r), "digest-mismatch") << r.body;

  // Signed by us, claiming to be A in the body.
  r = b.process->Call(Handshake(b, keys_->current(), name_, a.address(), a.url(), Now()));
  EXPECT_EQ(r.status, 400) << r.body;

  // No signature at all.
  RequestSpec unsigned_request = Genuine(b);
  unsigned_request.headers.erase("Signature");
  unsigned_request.headers.erase("Signature-Input");
  r = b.process->Call(unsigned_request);
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(FaultOf(r), "unsigned") << r.body;

  // Blocked: 403 on the next signed request, however well signed.
  Reply block = b.process->Call({"POST", "/_admin/v1/peers/" + name_ + "/block", "{}", "application/json",
                                 Token(b), {}});
  ASSERT_EQ(block.status, 200) << block.body;
  r = b.process->Call(Genuine(b));
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(FaultOf(r), "blocked") << r.body;

  // None of this disturbed the real peer.
  EXPECT_EQ(StateOf(b, a.address()), "active");
}

TEST_F(MaliciousPeerTest, HandshakesAreRateLimitedPerClient) {
  Node& b = StartNode("handshakes_per_minute = 3");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(b.process->Call(Genuine(b)).status, 200) << i;
  Reply r = b.process->Call(Genuine(b));
  EXPECT_EQ(r.status, 429) << r.body;
  EXPECT_FALSE(r.Header("retry-after").empty());
}

TEST_F(MaliciousPeerTest, ConfigBlockedNodeIsRefusedWithoutAKeyFetch) {
  // The fake's name is only known once its server runs, so B starts after it.
  Node& b = StartNode("blocked = [\"" + name_ + "\"]");
  Reply r = b.process->Call(Genuine(b));
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(FaultOf(r), "blocked") << r.body;
  EXPECT_EQ(key_fetches_, 0);
  EXPECT_EQ(StateOf(b, name_), "blocked");
  CtlResult unblock = Ctl({"peers", "unblock", name_, "--data-dir", b.data_dir, "--url", b.url()});
  EXPECT_EQ(unblock.exit_code, 1);
  EXPECT_NE(unblock.output.find("federation.blocked"), std::string::npos) << unblock.output;
}

}  // namespace
}  // namespace backpack::testing
