// Replication between real backpackd nodes on 127.0.0.1 (fetch.allow_private,
// so they reach each other): three peers converging, a node killed with
// SIGKILL in the middle of a pull, a node down while the others take writes,
// a peer played by the test that serves bad pages, and a poke flood.
//
// Records come from what earners do: signing up, then choosing a
// discoverable address (PUT /api/v1/account/federation), which gives the
// account its federated identity (a home record) and a directory record.
// What a node holds is read from its database once it has stopped.
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "federation/node_keys.h"
#include "federation/request_auth.h"
#include "protocol/account_record.h"
#include "protocol/encoding.h"
#include "storage/store.h"
#include "tests/support/local_http_server.h"
#include "tests/support/test_http.h"
#include "tests/support/test_issuer.h"

namespace backpack::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using Settings = std::map<std::string, std::string>;

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string Quoted(const std::string& text) { return json(text).dump(); }

// account/key -> version of every record in a stopped node's database.
std::map<std::string, std::string> Held(const std::string& data_dir) {
  std::map<std::string, std::string> out;
  storage::StoreOptions options;
  options.path = data_dir + "/db";
  auto store = storage::OpenRocksStore(options);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  if (!store.ok()) return out;
  Status scanned = (*store)->Scan(storage::Family::kFedRecords, "", [&](std::string_view key, std::string_view value) {
    if (key.ends_with("/#genesis")) return true;
    auto envelope = protocol::ParseEnvelope(value);
    EXPECT_TRUE(envelope.ok()) << envelope.status().ToString();
    if (envelope.ok()) out[std::string(key)] = envelope->version.ToString();
    return true;
  });
  EXPECT_TRUE(scanned.ok()) << scanned.ToString();
  return out;
}

// account/key -> record type ("home", "badge", "tombstone", ...) in a stopped node's database.
std::map<std::string, std::string> HeldTypes(const std::string& data_dir) {
  std::map<std::string, std::string> out;
  storage::StoreOptions options;
  options.path = data_dir + "/db";
  auto store = storage::OpenRocksStore(options);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  if (!store.ok()) return out;
  Status scanned = (*store)->Scan(storage::Family::kFedRecords, "", [&](std::string_view key, std::string_view value) {
    if (key.ends_with("/#genesis")) return true;
    auto envelope = protocol::ParseEnvelope(value);
    if (envelope.ok()) out[std::string(key)] = envelope->record["type"].get<std::string>();
    return true;
  });
  EXPECT_TRUE(scanned.ok()) << scanned.ToString();
  return out;
}

size_t CountHome(const std::map<std::string, std::string>& held) {
  return static_cast<size_t>(
      std::count_if(held.begin(), held.end(), [](const auto& entry) { return entry.first.ends_with("/home"); }));
}

class ReplicationTest : public ::testing::Test {
 protected:
  struct Node {
    std::unique_ptr<NodeProcess> process;
    std::string data_dir;
    std::string address() const { return process->address(); }
    std::string url() const { return "http://" + process->address(); }
  };

  // A node with `overrides` on top of the test defaults under [federation].
  Node& StartNode(const std::string& name, const Settings& overrides = {}) {
    Settings federation = {
        {"long_poll_seconds", "2"}, {"retry_min_seconds", "1"}, {"retry_max_seconds", "2"}, {"page_max_records", "5"}};
    for (const auto& [key, value] : overrides) federation[key] = value;
    // The first lines land in the [accounts] table NodeProcess opens.
    std::string toml =
        "signups_per_hour = 100000\nmail_requests_per_hour = 10000\nlogin_attempts_per_minute = 10000\n"
        "[fetch]\nallow_private = true\ntimeout_ms = 3000\n[federation]\n";
    for (const auto& [key, value] : federation) toml += key + " = " + value + "\n";
    auto node = std::make_unique<Node>();
    node->data_dir = dir_.MakeSubdir(name) + "/data";  // config, port file and log go in its parent
    node->process = std::make_unique<NodeProcess>(node->data_dir, toml);
    EXPECT_TRUE(node->process->Start()) << node->process->ReadLog();
    // Restarts keep the address, hence the node name the records carry.
    node->process->set_listen(node->process->address());
    nodes_.push_back(std::move(node));
    return *nodes_.back();
  }

  static std::string PeerList(const std::vector<const Node*>& nodes) {
    std::string out = "[";
    for (const Node* node : nodes) out += (out.size() > 1 ? ", " : "") + Quoted(node->url());
    return out + "]";
  }

  static std::string Token(const Node& node) {
    std::string token = ReadFile(node.data_dir + "/admin-token");
    while (!token.empty() && token.back() == '\n') token.pop_back();
    return token;
  }
  static json PeerRecord(const Node& node, const std::string& peer) {
    Reply r = node.process->Call({"GET", "/_admin/v1/peers", "", "", Token(node), {}});
    if (r.status != 200) return json();
    const json body = json::parse(r.body, nullptr, false);
    if (!body.is_object() || !body.contains("peers")) return json();
    for (const json& record : body["peers"]) {
      if (record["name"] == peer) return record;
    }
    return json();
  }
  static std::string StateOf(const Node& node, const std::string& peer) {
    const json record = PeerRecord(node, peer);
    return record.is_object() ? record.value("state", "") : "";
  }

  // A value from the node's /metrics: `name{peer="<peer>"}`, or `name` when peer is empty; -1 when absent.
  static int64_t Metric(const Node& node, const std::string& name, const std::string& peer = {}) {
    Reply r = node.process->Call({"GET", "/metrics", "", "", "", {}});
    if (r.status != 200) return -1;
    const std::string series = peer.empty() ? name + " " : name + "{peer=\"" + peer + "\"} ";
    std::istringstream lines(r.body);
    for (std::string line; std::getline(lines, line);) {
      if (line.starts_with(series)) return std::stoll(line.substr(series.size()));
    }
    return -1;
  }
  // `reader` has applied every entry of `source`'s change log.
  static bool Caught(const Node& reader, const Node& source) {
    const int64_t entries = Metric(source, "backpackd_replication_log_entries");
    return entries > 0 && Metric(reader, "backpackd_replication_cursor", source.address()) == entries;
  }
  static bool AllCaught(const std::vector<const Node*>& nodes) {
    for (const Node* reader : nodes) {
      for (const Node* source : nodes) {
        if (reader != source && !Caught(*reader, *source)) return false;
      }
    }
    return true;
  }

  // An earner on `node` who makes `email` discoverable: the account's home
  // and directory records. Returns the federated account id.
  static std::string Earner(const Node& node, const std::string& email) {
    const std::string token = SignUpVerified(*node.process, node.data_dir + "/outbox", email);
    EXPECT_FALSE(token.empty()) << email;
    const Reply put = node.process->Call(
        {"PUT", "/api/v1/account/federation", json{{"discoverable", {email}}}.dump(), "application/json", token, {}});
    EXPECT_EQ(put.status, 200) << put.body;
    const json body = json::parse(put.body, nullptr, false);
    return body.is_object() ? body.value("account", "") : "";
  }

  // An earner on `node` who opens the federation settings (GET
  // /api/v1/account/federation), which gives the account its federated
  // identity: one home record. No address is verified, so no emailed token
  // (whose guesses are rate-limited per client) is needed.
  static std::string Member(const Node& node, const std::string& email) {
    const std::string credentials = json{{"email", email}, {"password", "correct horse battery"}}.dump();
    EXPECT_EQ(node.process->Call({"POST", "/api/v1/accounts", credentials, "application/json", "", {}}).status, 201);
    const Reply session = node.process->Call({"POST", "/api/v1/sessions", credentials, "application/json", "", {}});
    EXPECT_EQ(session.status, 201) << session.body;
    const json token = json::parse(session.body, nullptr, false);
    const Reply choices = node.process->Call(
        {"GET", "/api/v1/account/federation", "", "", token.is_object() ? token.value("token", "") : "", {}});
    EXPECT_EQ(choices.status, 200) << choices.body;
    const json body = json::parse(choices.body, nullptr, false);
    return body.is_object() ? body.value("account", "") : "";
  }

  // Sums of a numeric member over the node log's lines with message `msg`.
  static int64_t SumLogged(const Node& node, const std::string& msg, const std::string& member) {
    std::istringstream lines(node.process->ReadLog());
    int64_t sum = 0;
    for (std::string line; std::getline(lines, line);) {
      const json entry = json::parse(line, nullptr, false);
      if (!entry.is_object() || entry.value("msg", "") != msg) continue;
      if (entry.contains(member) && entry[member].is_number_integer()) sum += entry[member].get<int64_t>();
    }
    return sum;
  }

  TempDir dir_;
  std::vector<std::unique_ptr<Node>> nodes_;
};

TEST_F(ReplicationTest, ThreePeersHoldEveryAccountAndANodeThatWasDownCatchesUp) {
  const Settings settings = {{"long_poll_seconds", "20"}};
  Node& a = StartNode("a", settings);
  Settings b_settings = settings, c_settings = settings;
  b_settings["peers"] = PeerList({&a});
  Node& b = StartNode("b", b_settings);
  c_settings["peers"] = PeerList({&a, &b});
  Node& c = StartNode("c", c_settings);
  const std::vector<const Node*> all = {&a, &b, &c};
  ASSERT_TRUE(WaitFor([&] {
    for (const Node* x : all) {
      for (const Node* y : all) {
        if (x != y && StateOf(*x, y->address()) != "active") return false;
      }
    }
    return true;
  }));

  std::map<std::string, std::string> accounts;  // email -> account
  for (const Node* node : all) {
    for (int i = 0; i < 2; ++i) {
      const std::string email = "e" + std::to_string(accounts.size()) + "@example.org";
      accounts[email] = Earner(*node, email);
    }
  }
  ASSERT_TRUE(WaitFor([&] { return AllCaught(all); })) << c.process->ReadLog();

  // Discovery at C finds an earner whose home is A: the directory record came by replication.
  Reply found = c.process->Call({"GET", "/.well-known/webfinger?resource=mailto%3Ae0%40example.org", "", "", "", {}});
  ASSERT_EQ(found.status, 200) << found.body;
  EXPECT_NE(found.body.find(accounts["e0@example.org"]), std::string::npos) << found.body;

  // The pullers idle in long polls (20 s); stopping C releases its own at once.
  const auto stop_started = std::chrono::steady_clock::now();
  ASSERT_EQ(WEXITSTATUS(c.process->StopWith(SIGTERM)), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - stop_started, 8s);

  // A and B take writes while C is down.
  for (const Node* node : {&a, &b}) {
    for (int i = 0; i < 2; ++i) {
      const std::string email = "e" + std::to_string(accounts.size()) + "@example.org";
      accounts[email] = Earner(*node, email);
    }
  }
  ASSERT_TRUE(WaitFor([&] { return Caught(a, b) && Caught(b, a); }));
  ASSERT_TRUE(c.process->Start()) << c.process->ReadLog();
  ASSERT_TRUE(WaitFor([&] { return AllCaught(all); }, 30s)) << c.process->ReadLog();
  EXPECT_EQ(Metric(c, "backpackd_replication_records_older_total", a.address()), 0);

  for (Node* node : {&a, &b, &c}) ASSERT_EQ(WEXITSTATUS(node->process->StopWith(SIGTERM)), 0);
  const auto held_a = Held(a.data_dir);
  EXPECT_EQ(CountHome(held_a), accounts.size());
  EXPECT_EQ(held_a.size(), 2 * accounts.size());  // home and directory records
  EXPECT_EQ(Held(b.data_dir), held_a);
  EXPECT_EQ(Held(c.data_dir), held_a);
  for (const auto& [email, account] : accounts) EXPECT_TRUE(held_a.contains(account + "/home")) << email;
}

TEST_F(ReplicationTest, ANodeKilledMidPullResumesWithNothingLostAndNothingAppliedTwice) {
  Node& a = StartNode("a", {{"page_max_records", "3"}});
  Node& b = StartNode("b", {{"page_max_records", "3"}, {"peers", PeerList({&a})}});
  ASSERT_TRUE(WaitFor([&] { return StateOf(a, b.address()) == "active" && StateOf(b, a.address()) == "active"; }))
      << PeerRecord(a, b.address()).dump() << "\n"
      << PeerRecord(b, a.address()).dump();

  // B's puller runs (the cursor shows once it does).
  ASSERT_TRUE(WaitFor([&] { return Metric(b, "backpackd_replication_cursor", a.address()) == 0; }));

  constexpr int kAccounts = 100;
  std::atomic<int> created{0};
  std::thread writer([&] {
    for (int i = 0; i < kAccounts; ++i) {
      Member(a, "u" + std::to_string(i) + "@example.org");
      ++created;
    }
  });
  const bool pulling = WaitFor([&] { return Metric(b, "backpackd_replication_cursor", a.address()) >= 20; });
  const int created_at_kill = created.load();
  b.process->StopWith(SIGKILL);
  EXPECT_TRUE(pulling);
  EXPECT_LT(created_at_kill, kAccounts) << "the writer finished before the kill";
  std::this_thread::sleep_for(700ms);
  ASSERT_TRUE(b.process->Start()) << b.process->ReadLog();
  writer.join();
  ASSERT_TRUE(WaitFor([&] { return Caught(b, a); }, 30s)) << b.process->ReadLog();
  EXPECT_EQ(Metric(b, "backpackd_replication_records_older_total", a.address()), 0);

  ASSERT_EQ(WEXITSTATUS(b.process->StopWith(SIGTERM)), 0);
  ASSERT_EQ(WEXITSTATUS(a.process->StopWith(SIGTERM)), 0);
  const auto held_a = Held(a.data_dir);
  EXPECT_EQ(CountHome(held_a), static_cast<size_t>(kAccounts));
  EXPECT_EQ(Held(b.data_dir), held_a);
  // Across both runs no record came twice: the cursor moved with every page.
  EXPECT_EQ(SumLogged(b, "page applied", "older"), 0);
  EXPECT_LE(SumLogged(b, "page applied", "applied"), static_cast<int64_t>(held_a.size()));
  EXPECT_GT(SumLogged(b, "page applied", "applied"), 0);
}

TEST_F(ReplicationTest, BadgesGoOnlyToTheMirrorsTheEarnerNamedAndTombstonesToEveryone) {
  TestIssuer issuer;
  ASSERT_TRUE(issuer.Start());
  Node& b = StartNode("b");
  Node& c = StartNode("c");
  Node& a = StartNode("a", {{"peers", PeerList({&b, &c})}});
  ASSERT_TRUE(WaitFor([&] {
    return StateOf(a, b.address()) == "active" && StateOf(a, c.address()) == "active" &&
           StateOf(b, a.address()) == "active" && StateOf(c, a.address()) == "active";
  }));
  const std::string token = SignUpVerified(*a.process, a.data_dir + "/outbox", "ann@example.org");
  ASSERT_FALSE(token.empty());
  auto choose = [&](const json& choices) {
    const Reply r =
        a.process->Call({"PUT", "/api/v1/account/federation", choices.dump(), "application/json", token, {}});
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body, nullptr, false);
  };
  const std::string account = choose({{"mirrors", {b.address()}}, {"mirror_all", true}}).value("account", "");
  ASSERT_FALSE(account.empty());
  const Reply imported = a.process->Call({"POST",
                                          "/api/v1/badges",
                                          json{{"url", issuer.AwardHosted({.email = "ann@example.org"})}}.dump(),
                                          "application/json",
                                          token,
                                          {}});
  ASSERT_EQ(imported.status, 201) << imported.body;
  const std::string badge_key = account + "/badge/" + json::parse(imported.body)["id"].get<std::string>();
  ASSERT_TRUE(WaitFor([&] { return Caught(b, a) && Caught(c, a); }));
  // A's log: home, mirrors, badge. The badge went to B only.
  EXPECT_EQ(Metric(a, "backpackd_replication_log_entries"), 3);
  EXPECT_EQ(Metric(b, "backpackd_replication_records_applied_total", a.address()), 3);
  EXPECT_EQ(Metric(c, "backpackd_replication_records_applied_total", a.address()), 2);

  // Dropped from the mirrors, B learns that its copy is gone.
  choose({{"mirrors", json::array()}});
  ASSERT_TRUE(WaitFor([&] { return Caught(b, a) && Caught(c, a); }));
  ASSERT_EQ(WEXITSTATUS(b.process->StopWith(SIGTERM)), 0);
  ASSERT_EQ(WEXITSTATUS(c.process->StopWith(SIGTERM)), 0);
  const auto at_b = HeldTypes(b.data_dir);
  const auto at_c = HeldTypes(c.data_dir);
  EXPECT_EQ(at_b.at(account + "/home"), "home");
  EXPECT_EQ(at_c.at(account + "/home"), "home");
  EXPECT_EQ(at_b.at(account + "/mirrors"), "mirrors");
  EXPECT_EQ(at_b.at(badge_key), "tombstone");
  EXPECT_EQ(at_c.at(badge_key), "tombstone");  // C only ever saw the tombstone
}

// --- A peer played by the test ------------------------------------------------

class FakePeerTest : public ReplicationTest {
 protected:
  void SetUp() override {
    auto keys = federation::NodeKeys::LoadOrCreate(federation::KeysDirectory(dir_.MakeSubdir("fake")), Now());
    ASSERT_TRUE(keys.ok()) << keys.status().ToString();
    keys_.emplace(std::move(*keys));
    server_ = std::make_unique<LocalHttpServer>([this](const std::string& target) { return Serve(target); });
    ASSERT_TRUE(server_->Start());
    name_ = server_->base_url().substr(7);  // "127.0.0.1:PORT"
  }

  LocalResponse Serve(const std::string& target) {
    if (target == "/_federation/v1/keys") return {200, "application/json", keys_->KeysDocument(name_)};
    if (!target.starts_with("/_federation/v1/changes?")) return {404, "text/plain", "not found"};
    const int now_in_flight = ++in_flight_;
    {
      std::lock_guard lock(mu_);
      max_in_flight_ = std::max(max_in_flight_, now_in_flight);
      pulls_.push_back(std::chrono::steady_clock::now());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_.load()));
    LocalResponse answer;
    {
      std::lock_guard lock(mu_);
      answer = answer_(Param(target, "since"), Param(target, "after"));
    }
    --in_flight_;
    return answer;
  }
  static std::string Param(const std::string& target, const std::string& name) {
    const size_t at = target.find(name + "=");
    if (at == std::string::npos) return "";
    const size_t start = at + name.size() + 1;
    return target.substr(start, target.find('&', start) - start);
  }
  void Answer(std::function<LocalResponse(const std::string& since, const std::string& after)> answer) {
    std::lock_guard lock(mu_);
    answer_ = std::move(answer);
  }
  // A page of `records` after entry `since` - 1.
  static LocalResponse Page(const std::string& since, const std::vector<std::string>& records) {
    std::string body = R"({"log":"fake-log","records":[)";
    for (size_t i = 0; i < records.size(); ++i) body += (i ? "," : "") + records[i];
    body += R"(],"next":)" + std::to_string(std::stoull(since) + records.size()) + R"(,"digest":")" +
            std::string(64, 'a') + R"(","more":false})";
    return {200, "application/json", body};
  }
  size_t PullsSince(std::chrono::steady_clock::time_point from) {
    std::lock_guard lock(mu_);
    return static_cast<size_t>(std::count_if(pulls_.begin(), pulls_.end(), [&](auto t) { return t >= from; }));
  }

  // A signed request from the fake to `target`: a POST of `body`, or a GET.
  RequestSpec Signed(const Node& target, const std::string& path, const std::string& body,
                     const std::string& method = "POST") {
    RequestSpec spec;
    spec.method = method;
    spec.target = path;
    spec.body = body;
    const std::string nonce = protocol::Base64UrlEncode("nonce-" + std::to_string(++nonces_) + "-padding-padding-pad");
    auto signature = federation::SignOutboundRequest({method, target.url() + path, target.address(), body}, name_,
                                                     keys_->current(), Now(), 300, nonce);
    EXPECT_TRUE(signature.ok()) << signature.status().ToString();
    spec.headers["Host"] = target.address();
    spec.headers["Content-Digest"] = signature->content_digest;
    spec.headers["Signature-Input"] = signature->signature_input;
    spec.headers["Signature"] = signature->signature;
    return spec;
  }
  void PeerWith(const Node& node) {
    const json handshake = {{"node", name_}, {"base_url", server_->base_url()}, {"capabilities", {"peer/1"}}};
    Reply r = node.process->Call(Signed(node, "/_federation/v1/peer", handshake.dump()));
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_EQ(json::parse(r.body)["state"], "active");
  }

  // An account whose key the test holds, and its signed home record.
  struct Account {
    protocol::PrivateKey key;
    json genesis;
    std::string id;
  };
  static Account NewAccount() {
    auto key = protocol::PrivateKey::Generate(protocol::KeyType::kEd25519);
    EXPECT_TRUE(key.ok());
    json genesis =
        protocol::MakeGenesis(key->public_key(), Now(), protocol::HexEncode("nonce-" + std::to_string(Now())));
    std::string id = protocol::AccountIdOf(genesis);
    return {std::move(*key), std::move(genesis), std::move(id)};
  }
  static std::string Home(const Account& account, const std::string& node, int64_t version_ms) {
    const json record = {{"type", "home"},
                         {"account", account.id},
                         {"version", protocol::RecordVersion{version_ms, 0}.ToString()},
                         {"node", node},
                         {"url", "http://" + node}};
    auto signed_record = protocol::SignRecord(record, account.key, &account.genesis);
    EXPECT_TRUE(signed_record.ok()) << signed_record.status().ToString();
    return *signed_record;
  }
  static int64_t NowMs() { return Now() * 1000; }

  std::optional<federation::NodeKeys> keys_;
  std::unique_ptr<LocalHttpServer> server_;
  std::string name_;
  int nonces_ = 0;
  std::mutex mu_;
  std::function<LocalResponse(const std::string&, const std::string&)> answer_ = [](const std::string&,
                                                                                    const std::string&) {
    return LocalResponse{503, "text/plain", "not yet"};
  };
  std::vector<std::chrono::steady_clock::time_point> pulls_;
  std::atomic<int> in_flight_{0};
  int max_in_flight_ = 0;
  std::atomic<int> delay_ms_{0};
};

TEST_F(FakePeerTest, BadPagesAreRefusedStoreNothingAndThePeerIsThrottled) {
  Node& b = StartNode("b", {{"breaker_failures", "3"}});
  const Account stranger = NewAccount();  // at home elsewhere
  const Account later = NewAccount();     // dated an hour ahead
  const Account good = NewAccount();      // at home on the fake
  const Account forged = NewAccount();

  auto refused_with = [&](const std::string& marker) {
    return WaitFor([&] {
      const json record = PeerRecord(b, name_);
      return record.is_object() && record["last_error"].get<std::string>().find(marker) != std::string::npos;
    });
  };
  // Records for an account the fake is not home for.
  Answer([&](const std::string& since, const std::string&) {
    return Page(since, {Home(stranger, "127.0.0.1:1", NowMs())});
  });
  PeerWith(b);
  ASSERT_TRUE(refused_with("naming 127.0.0.1:1")) << PeerRecord(b, name_).dump();

  // A version an hour ahead of B's clock.
  Answer([&](const std::string& since, const std::string&) {
    return Page(since, {Home(later, name_, NowMs() + 3600 * 1000)});
  });
  ASSERT_TRUE(refused_with("too far in the future")) << PeerRecord(b, name_).dump();

  // A page over B's response cap (fetch.max_bytes, 2 MiB).
  const std::string huge = R"({"log":"fake-log","records":[],"next":1,"digest":")" + std::string(3 << 20, 'a') + "\"}";
  Answer([&](const std::string&, const std::string&) { return LocalResponse{200, "application/json", huge}; });
  ASSERT_TRUE(refused_with("larger than")) << PeerRecord(b, name_).dump();

  // A good record followed by one whose signature is not the account's: neither is stored.
  std::string bad = Home(forged, name_, NowMs());
  json tampered = json::parse(bad);
  tampered["sig"] = json::parse(Home(good, name_, NowMs()))["sig"];
  tampered["sig"]["key"] = forged.id + "#k1";
  bad = tampered.dump();
  Answer([&](const std::string& since, const std::string&) { return Page(since, {Home(good, name_, NowMs()), bad}); });
  ASSERT_TRUE(refused_with("signature")) << PeerRecord(b, name_).dump();

  // Garbage. By now the breaker has tripped and pulls come at most every retry_max (2 s).
  Answer([](const std::string&, const std::string&) { return LocalResponse{200, "application/json", "<html>oops"}; });
  ASSERT_TRUE(refused_with("unusable page")) << PeerRecord(b, name_).dump();
  EXPECT_EQ(StateOf(b, name_), "suspended") << PeerRecord(b, name_).dump();
  const auto window = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(6s);
  const size_t pulls = PullsSince(window);
  EXPECT_GE(pulls, 2u);  // it keeps trying...
  EXPECT_LE(pulls, 7u);  // ...backed off (1..2 s apart), not in a loop
  EXPECT_GE(Metric(b, "backpackd_replication_pages_refused_total", name_), 3);
  EXPECT_EQ(Metric(b, "backpackd_replication_cursor", name_), 0);

  // An honest page: stored, and the peer is active again.
  Answer([&](const std::string& since, const std::string&) {
    return since == "1" ? Page(since, {Home(good, name_, NowMs())}) : Page(since, {});
  });
  ASSERT_TRUE(WaitFor([&] { return Metric(b, "backpackd_replication_records_applied_total", name_) == 1; }))
      << PeerRecord(b, name_).dump();
  ASSERT_TRUE(WaitFor([&] { return StateOf(b, name_) == "active"; })) << PeerRecord(b, name_).dump();
  EXPECT_EQ(PeerRecord(b, name_)["failures"], 0);

  ASSERT_EQ(WEXITSTATUS(b.process->StopWith(SIGTERM)), 0);
  const auto held = Held(b.data_dir);
  EXPECT_EQ(held.size(), 1u);
  EXPECT_TRUE(held.contains(good.id + "/home"));
  for (const Account* account : {&stranger, &later, &forged}) {
    for (const auto& [key, version] : held) EXPECT_FALSE(key.starts_with(account->id)) << key;
  }
}

TEST_F(FakePeerTest, APokeFloodGets429sAndOnePullAtATime) {
  Node& b = StartNode("b", {{"pokes_per_minute", "5"}, {"long_poll_seconds", "5"}});
  delay_ms_ = 300;
  Answer([](const std::string& since, const std::string& after) {
    const std::string body =
        R"({"log":"fake-log","records":[],"next":)" + since + R"(,"digest":")" + after + R"(","more":false})";
    return LocalResponse{200, "application/json", body};
  });
  PeerWith(b);
  ASSERT_TRUE(WaitFor([&] { return PullsSince({}) >= 1; }));
  std::this_thread::sleep_for(500ms);

  const auto flood = std::chrono::steady_clock::now();
  int accepted = 0, limited = 0;
  for (int i = 0; i < 20; ++i) {
    Reply r = b.process->Call(Signed(b, "/_federation/v1/poke", "{}"));
    if (r.status == 202) {
      ++accepted;
    } else {
      EXPECT_EQ(r.status, 429) << r.body;
      EXPECT_FALSE(r.Header("retry-after").empty());
      ++limited;
    }
  }
  EXPECT_EQ(accepted, 5);
  EXPECT_EQ(limited, 15);
  std::this_thread::sleep_for(2s);
  {
    std::lock_guard lock(mu_);
    EXPECT_EQ(max_in_flight_, 1);
  }
  // Five accepted pokes while each pull takes 300 ms: a few pulls, never one per poke in parallel.
  EXPECT_LE(PullsSince(flood), 7u);
  EXPECT_EQ(Metric(b, "backpackd_replication_pokes_received_total", name_), 5);

  // A poke must be an empty JSON object.
  Reply r = b.process->Call(Signed(b, "/_federation/v1/poke", "[1]"));
  EXPECT_EQ(r.status, 400) << r.body;
}

TEST_F(FakePeerTest, TheChangeFeedAnswersOnlyActivePeersAndSaysWhenACursorIsInvalid) {
  Node& a = StartNode("a");
  // Not a peer yet: refused.
  auto get = [&](const std::string& query) {
    return a.process->Call(Signed(a, "/_federation/v1/changes?" + query, "", "GET"));
  };
  Reply r = get("since=1&wait=0");
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(a.process->Call({"GET", "/_federation/v1/changes?since=1", "", "", "", {}}).status, 401);

  PeerWith(a);
  Earner(a, "ann@example.org");
  r = get("since=1&limit=1");
  ASSERT_EQ(r.status, 200) << r.body;
  json page = json::parse(r.body);
  ASSERT_EQ(page["records"].size(), 1u);
  EXPECT_TRUE(page["records"][0].is_object());
  EXPECT_EQ(page["records"][0]["record"]["type"], "home");
  EXPECT_EQ(page["next"], 2);
  EXPECT_EQ(page["more"], true);
  const std::string digest = page["digest"];

  r = get("since=2&after=" + digest);
  ASSERT_EQ(r.status, 200) << r.body;
  page = json::parse(r.body);
  EXPECT_EQ(page["records"].size(), 1u);
  EXPECT_EQ(page["records"][0]["record"]["type"], "directory");
  EXPECT_EQ(page["more"], false);

  // A cursor that names another entry, or one beyond the log: 410.
  r = get("since=2&after=" + std::string(64, '0'));
  EXPECT_EQ(r.status, 410) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "cursor_invalid");
  r = get("since=99");
  EXPECT_EQ(r.status, 410) << r.body;
  // A malformed query: 400.
  EXPECT_EQ(get("since=abc").status, 400);
  EXPECT_EQ(get("since=1&after=xyz").status, 400);

  // Nothing new: the answer waits (long poll) until a commit.
  const std::string next = std::to_string(page["next"].get<int>());
  std::thread later([&] {
    std::this_thread::sleep_for(700ms);
    Earner(a, "bob@example.org");
  });
  const auto started = std::chrono::steady_clock::now();
  r = get("since=" + next + "&after=" + page["digest"].get<std::string>() + "&wait=2");
  const auto waited = std::chrono::steady_clock::now() - started;
  later.join();
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_GE(waited, 500ms);
  EXPECT_EQ(json::parse(r.body)["records"].size(), 1u);
  // With nothing at all, it ends after `wait` with an empty page.
  page = json::parse(get("since=1&limit=100").body);
  const auto idle_started = std::chrono::steady_clock::now();
  r = get("since=" + std::to_string(page["next"].get<int>()) + "&after=" + page["digest"].get<std::string>() +
          "&wait=1");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_GE(std::chrono::steady_clock::now() - idle_started, 900ms);
  EXPECT_TRUE(json::parse(r.body)["records"].empty());
}

// The whole path, as an earner and an issuer see it: three nodes peer; an
// earner on A makes an address discoverable and picks B as a mirror; an
// issuer that knows only the address asks C, is sent to A, and delivers a
// badge that waits, pending, on A; accepted, it reaches B; a peer forging a
// record for that earner is refused; B, killed and restarted, catches up
// with nothing lost.
TEST_F(FakePeerTest, AnIssuerWhoKnowsOnlyTheAddressReachesTheEarnersChosenNode) {
  TestIssuer issuer;
  ASSERT_TRUE(issuer.Start());
  Node& b = StartNode("b");
  Node& c = StartNode("c", {{"peers", PeerList({&b})}});
  Node& a = StartNode("a", {{"peers", PeerList({&b, &c})}});
  ASSERT_TRUE(WaitFor([&] {
    for (const Node* x : {&a, &b, &c}) {
      for (const Node* y : {&a, &b, &c}) {
        if (x != y && StateOf(*x, y->address()) != "active") return false;
      }
    }
    return true;
  })) << PeerRecord(b, c.address()).dump();

  const std::string email = "ann@example.org";
  const std::string token = SignUpVerified(*a.process, a.data_dir + "/outbox", email);
  ASSERT_FALSE(token.empty());
  const Reply chose = a.process->Call({"PUT", "/api/v1/account/federation",
                                       json{{"discoverable", {email}}, {"mirrors", {b.address()}}, {"mirror_all", true}}
                                           .dump(),
                                       "application/json", token, {}});
  ASSERT_EQ(chose.status, 200) << chose.body;
  const std::string account = json::parse(chose.body)["account"];

  // The issuer asks C, which learnt the earner's records from A.
  Reply found;
  ASSERT_TRUE(WaitFor([&] {
    found = c.process->Call({"GET", "/.well-known/webfinger?resource=mailto:" + email, "", "", "", {}});
    return found.status == 200;
  })) << found.status << " " << found.body;
  const json jrd = json::parse(found.body);
  std::string inbox;
  for (const json& link : jrd["links"]) {
    if (link["rel"] == "https://backpackd.org/rel/inbox") inbox = link["href"];
  }
  ASSERT_EQ(inbox, a.url() + "/_federation/v1/inbox/" + account) << found.body;

  // Delivering at C is sent on to A, where the badge waits for the earner.
  const std::string delivery = json{{"jws", issuer.AwardSigned({.email = email})}}.dump();
  const Reply moved =
      c.process->Call({"POST", "/_federation/v1/inbox/" + account, delivery, "application/json", "", {}});
  ASSERT_EQ(moved.status, 307) << moved.body;
  ASSERT_EQ(moved.Header("location"), inbox);
  const Reply delivered = a.process->Call(
      {"POST", inbox.substr(a.url().size()), delivery, "application/json", "", {}});
  ASSERT_EQ(delivered.status, 201) << delivered.body;
  EXPECT_EQ(json::parse(delivered.body)["state"], "pending");
  const json pending =
      json::parse(a.process->Call({"GET", "/api/v1/badges?state=pending", "", "", token, {}}).body)["badges"];
  ASSERT_EQ(pending.size(), 1u);
  const std::string badge = pending[0]["id"];

  // Accepted, it replicates to the mirror.
  const std::string accept = json{{"state", "accepted"}}.dump();
  ASSERT_EQ(a.process->Call({"PATCH", "/api/v1/badges/" + badge, accept, "application/json", token, {}}).status, 200);
  ASSERT_TRUE(WaitFor([&] { return Caught(b, a); }));

  // A peer forging a record for the earner (signed with a key that is not
  // the account's) is refused by B.
  const Account forger = NewAccount();
  const json forged_record = {{"type", "badge"},
                              {"account", account},
                              {"version", protocol::RecordVersion{NowMs(), 0}.ToString()},
                              {"badge", "forged"},
                              {"original", protocol::Base64UrlEncode("{}")}};
  auto forged = protocol::SignRecord(forged_record, forger.key);
  ASSERT_TRUE(forged.ok());
  Answer([&](const std::string& since, const std::string&) { return Page(since, {*forged}); });
  PeerWith(b);
  ASSERT_TRUE(WaitFor([&] {
    const json record = PeerRecord(b, name_);
    return record.is_object() && record.value("last_error", "").find("signature") != std::string::npos;
  })) << PeerRecord(b, name_).dump();

  // B is killed; the earner accepts another badge meanwhile; B comes back and catches up.
  b.process->StopWith(SIGKILL);
  const Reply second = a.process->Call({"POST", "/api/v1/badges",
                                        json{{"url", issuer.AwardHosted({.email = email})}}.dump(),
                                        "application/json", token, {}});
  ASSERT_EQ(second.status, 201) << second.body;
  const std::string second_badge = json::parse(second.body)["id"];
  ASSERT_TRUE(b.process->Start()) << b.process->ReadLog();
  ASSERT_TRUE(WaitFor([&] { return Caught(b, a); }));
  ASSERT_EQ(WEXITSTATUS(b.process->StopWith(SIGTERM)), 0);
  const auto held = HeldTypes(b.data_dir);
  EXPECT_EQ(held.at(account + "/home"), "home");
  EXPECT_EQ(held.at(account + "/badge/" + badge), "badge");
  EXPECT_EQ(held.at(account + "/badge/" + second_badge), "badge");
  EXPECT_FALSE(held.contains(account + "/badge/forged"));
}

}  // namespace
}  // namespace backpack::testing
