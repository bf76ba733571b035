// Integration tests: the real backpackd binary on an ephemeral port with a
// temporary data directory, driven over real sockets.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <fstream>
#include <future>
#include <regex>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/test_http.h"

namespace backpack::testing {
namespace {

using nlohmann::json;


// A raw TCP connection to the node, for clients that misbehave on purpose.
int ConnectRaw(const std::string& address) {
  const auto colon = address.rfind(':');
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  ::inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

class NodeTest : public ::testing::Test {
 protected:
  void StartNode(const std::string& extra_toml = {}) {
    node_ = std::make_unique<NodeProcess>(data_dir(), extra_toml);
    ASSERT_TRUE(node_->Start()) << node_->ReadLog();
  }
  std::string data_dir() const { return dir_.path() + "/data"; }
  std::string outbox() const { return data_dir() + "/outbox"; }

  Reply Post(const std::string& target, const json& body, const std::string& bearer = {}) {
    return node_->Call({"POST", target, body.dump(), "application/json", bearer, {}});
  }
  Reply Get(const std::string& target, const std::string& bearer = {}) {
    return node_->Call({"GET", target, "", "", bearer, {}});
  }
  Reply Delete(const std::string& target, const std::string& bearer, const json& body = nullptr) {
    return node_->Call({"DELETE", target, body.is_null() ? "" : body.dump(), "application/json", bearer, {}});
  }

  // The token of the newest message of `kind` ("Verification" or "Reset") sent to `address`.
  std::string TokenFromOutbox(const std::string& address, const std::string& kind = "Verification") {
    std::string token;
    for (const auto& file : ListFiles(outbox())) {
      const std::string msg = ReadFile(file);
      if (msg.find("To: " + address + "\r\n") == std::string::npos) continue;
      std::smatch m;
      const std::regex re(kind + " token: ([A-Za-z0-9_-]+)");
      if (std::regex_search(msg, m, re)) token = m[1];
    }
    return token;
  }

  std::string SignUpAndLogIn(const std::string& email, const std::string& password = "correct horse battery") {
    Reply r = Post("/api/v1/accounts", {{"email", email}, {"password", password}});
    EXPECT_EQ(r.status, 201) << r.body;
    Reply s = Post("/api/v1/sessions", {{"email", email}, {"password", password}});
    EXPECT_EQ(s.status, 201) << s.body;
    return json::parse(s.body).value("token", "");
  }

  json Account(const std::string& token) {
    Reply r = Get("/api/v1/account", token);
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body, nullptr, false);
  }

  TempDir dir_;
  std::unique_ptr<NodeProcess> node_;
};

TEST_F(NodeTest, ServesHealthMetricsAndSelfDescription) {
  StartNode();
  Reply health = Get("/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(json::parse(health.body)["status"], "ok");
  EXPECT_FALSE(health.Header("x-request-id").empty());

  Reply node = Get("/.well-known/backpack-node");
  ASSERT_EQ(node.status, 200);
  json doc = json::parse(node.body);
  EXPECT_EQ(doc["software"]["name"], "backpackd");
  EXPECT_EQ(doc["name"], node_->address());
  EXPECT_EQ(doc["endpoints"]["accounts"], "http://" + node_->address() + "/api/v1/accounts");

  Reply metrics = Get("/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.Header("content-type").find("text/plain"), std::string::npos);
  EXPECT_NE(metrics.body.find("backpackd_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 1"),
            std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("backpackd_http_request_duration_seconds_bucket{le=\"+Inf\"}"), std::string::npos);
  // This scrape's own connection is open; the earlier ones may still be
  // closing on the node's side.
  std::smatch open;
  ASSERT_TRUE(std::regex_search(metrics.body, open, std::regex("\nbackpackd_http_open_connections (\\d+)\n")));
  EXPECT_GE(std::stoi(open[1]), 1);
  EXPECT_LE(std::stoi(open[1]), 3);
  EXPECT_NE(metrics.body.find("backpackd_storage_estimated_keys"), std::string::npos);
}

// The "done when" path, end to end.
TEST_F(NodeTest, AccountWithSeveralVerifiedEmails) {
  StartNode();
  const std::string first = "Ada.Lovelace@Example.org";
  const std::string second = "ada@university.example";
  Reply created = Post("/api/v1/accounts", {{"email", first}, {"password", "analytical engine"},
                                            {"display_name", "Ada"}});
  ASSERT_EQ(created.status, 201) << created.body;
  json account = json::parse(created.body);
  EXPECT_EQ(account["emails"][0]["address"], first);  // kept as typed
  EXPECT_FALSE(account["emails"][0]["verified"]);
  EXPECT_FALSE(account["emails"][0]["primary"]);

  // Sign-in compares addresses case-insensitively.
  Reply session = Post("/api/v1/sessions", {{"email", "  ada.lovelace@EXAMPLE.ORG "}, {"password", "analytical engine"}});
  ASSERT_EQ(session.status, 201) << session.body;
  const std::string token = json::parse(session.body)["token"];
  EXPECT_FALSE(json::parse(session.body)["expires_at"].get<std::string>().empty());

  // Verify the first address from the outbox message.
  const std::string first_token = TokenFromOutbox(first);
  ASSERT_FALSE(first_token.empty());
  Reply verified = Post("/api/v1/account/emails/verify", {{"token", first_token}}, token);
  ASSERT_EQ(verified.status, 200) << verified.body;
  EXPECT_TRUE(json::parse(verified.body)["emails"][0]["primary"]);

  // Add a second address, verify it, make it primary, remove the first.
  Reply added = Post("/api/v1/account/emails", {{"address", second}}, token);
  ASSERT_EQ(added.status, 201) << added.body;
  Reply primary_unverified = Post("/api/v1/account/emails/primary", {{"address", second}}, token);
  EXPECT_EQ(primary_unverified.status, 409) << primary_unverified.body;
  const std::string second_token = TokenFromOutbox(second);
  ASSERT_FALSE(second_token.empty());
  ASSERT_EQ(Post("/api/v1/account/emails/verify", {{"token", second_token}}, token).status, 200);
  // A used token is gone.
  EXPECT_EQ(Post("/api/v1/account/emails/verify", {{"token", second_token}}, token).status, 404);
  Reply made_primary = Post("/api/v1/account/emails/primary", {{"address", "ADA@university.example"}}, token);
  ASSERT_EQ(made_primary.status, 200) << made_primary.body;
  Reply removed = Delete("/api/v1/account/emails/ada.lovelace%40example.org", token);
  ASSERT_EQ(removed.status, 200) << removed.body;

  json now = Account(token);
  ASSERT_EQ(now["emails"].size(), 1u);
  EXPECT_EQ(now["emails"][0]["address"], second);
  EXPECT_TRUE(now["emails"][0]["verified"]);
  EXPECT_TRUE(now["emails"][0]["primary"]);
  EXPECT_EQ(now["display_name"], "Ada");

  // The last verified address cannot be removed.
  Reply last = Delete("/api/v1/account/emails/" + second, token);
  EXPECT_EQ(last.status, 409);
  EXPECT_EQ(json::parse(last.body)["error"]["code"], "failed_precondition");

  // The new address signs in; the removed one no longer does.
  EXPECT_EQ(Post("/api/v1/sessions", {{"email", second}, {"password", "analytical engine"}}).status, 201);
  EXPECT_EQ(Post("/api/v1/sessions", {{"email", first}, {"password", "analytical engine"}}).status, 401);

  // A second account cannot verify the address the first one holds.
  const std::string other = SignUpAndLogIn("grace@navy.example");
  ASSERT_EQ(Post("/api/v1/account/emails", {{"address", "Ada@University.example"}}, other).status, 201);
  const std::string stolen = TokenFromOutbox("Ada@University.example");
  ASSERT_FALSE(stolen.empty());
  Reply conflict = Post("/api/v1/account/emails/verify", {{"token", stolen}}, other);
  EXPECT_EQ(conflict.status, 409) << conflict.body;
  EXPECT_EQ(json::parse(conflict.body)["error"]["code"], "already_exists");
  // ...and a token cannot be redeemed by another signed-in account.
  EXPECT_EQ(Post("/api/v1/account/emails/verify", {{"token", stolen}}, token).status, 404);
  // Nothing changed for the owner.
  EXPECT_EQ(Account(token)["emails"][0]["address"], second);

  // Addresses stay out of the log, even those that were in request paths.
  const std::string log = node_->ReadLog();
  EXPECT_NE(log.find("\"route\":\"/api/v1/account/emails/{address}\""), std::string::npos);
  EXPECT_EQ(log.find("lovelace"), std::string::npos);
  EXPECT_EQ(log.find("university.example"), std::string::npos);
}

TEST_F(NodeTest, WrongEmailAndWrongPasswordAnswerAlike) {
  StartNode();
  SignUpAndLogIn("turing@bletchley.example");
  Reply wrong_password = Post("/api/v1/sessions", {{"email", "turing@bletchley.example"}, {"password", "not the password"}});
  Reply wrong_email = Post("/api/v1/sessions", {{"email", "nobody@bletchley.example"}, {"password", "not the password"}});
  EXPECT_EQ(wrong_password.status, 401);
  EXPECT_EQ(wrong_email.status, 401);
  EXPECT_EQ(wrong_password.body, wrong_email.body);
  EXPECT_EQ(wrong_password.Header("www-authenticate"), "Bearer");
}

TEST_F(NodeTest, SignInIsRateLimited) {
  StartNode("login_attempts_per_minute = 3\n");
  SignUpAndLogIn("hopper@navy.example");  // one attempt used
  int limited = 0;
  std::string retry_after;
  for (int i = 0; i < 5; ++i) {
    Reply r = Post("/api/v1/sessions", {{"email", "hopper@navy.example"}, {"password", "guess number " + std::to_string(i)}});
    if (r.status == 429) {
      ++limited;
      retry_after = r.Header("retry-after");
      EXPECT_EQ(json::parse(r.body)["error"]["code"], "rate_limited");
    } else {
      EXPECT_EQ(r.status, 401);
    }
  }
  EXPECT_GE(limited, 3);
  EXPECT_FALSE(retry_after.empty());
  // Even the right password is refused while limited.
  EXPECT_EQ(Post("/api/v1/sessions", {{"email", "hopper@navy.example"}, {"password", "correct horse battery"}}).status, 429);
}

TEST_F(NodeTest, BadInputGetsClearErrorsAndChangesNothing) {
  StartNode("[server]\nmax_body_bytes = 4096\n");
  const std::string token = SignUpAndLogIn("knuth@stanford.example");
  const json before = Account(token);

  auto expect_error = [](const Reply& r, int status, const std::string& code) {
    EXPECT_EQ(r.status, status) << r.body;
    json j = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.body;
    EXPECT_EQ(j["error"]["code"], code) << r.body;
    EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
  };
  expect_error(node_->Call({"POST", "/api/v1/account/emails", "{\"address\": ", "application/json", token, {}}), 400, "invalid_json");
  expect_error(node_->Call({"POST", "/api/v1/account/emails", "[1,2]", "application/json", token, {}}), 400, "invalid_json");
  expect_error(Post("/api/v1/account/emails", {{"address", 42}}, token), 400, "invalid_argument");
  expect_error(Post("/api/v1/account/emails", {{"address", "not an address"}}, token), 400, "invalid_argument");
  expect_error(Post("/api/v1/accounts", {{"email", "x@example.org"}, {"password", "short"}}), 400, "invalid_argument");
  expect_error(node_->Call({"POST", "/api/v1/account/emails", "address=a@b.example", "application/x-www-form-urlencoded", token, {}}), 415, "unsupported_media_type");
  expect_error(node_->Call({"POST", "/api/v1/account/emails", json{{"address", std::string(10000, 'a') + "@example.org"}}.dump(), "application/json", token, {}}), 413, "payload_too_large");
  expect_error(Get("/api/v1/nothing-here"), 404, "not_found");
  expect_error(node_->Call({"PUT", "/api/v1/account", "{}", "application/json", token, {}}), 405, "method_not_allowed");
  expect_error(Get("/api/v1/account"), 401, "unauthenticated");
  expect_error(Get("/api/v1/account", "forged-token-forged-token-forged-token-123"), 401, "unauthenticated");
  expect_error(node_->Call({"GET", "/api/v1/account", "", "", "", {{"Authorization", "Basic a25vdXRoOnB3"}}}), 401, "unauthenticated");

  EXPECT_EQ(Account(token), before);
}

TEST_F(NodeTest, SlowClientIsCutOffAndOthersAreServed) {
  StartNode("[server]\nread_timeout_ms = 300\nidle_timeout_ms = 300\n");
  const int fd = ConnectRaw(node_->address());
  ASSERT_GE(fd, 0);
  const std::string partial = "GET /healthz HTTP/1.1\r\nHost: x\r\n";  // never finished
  ASSERT_EQ(::write(fd, partial.data(), partial.size()), static_cast<ssize_t>(partial.size()));
  EXPECT_EQ(Get("/healthz").status, 200);  // the node serves others meanwhile
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[256];
  const auto started = std::chrono::steady_clock::now();
  const ssize_t n = ::read(fd, buf, sizeof buf);  // the node closes the connection
  const auto waited = std::chrono::steady_clock::now() - started;
  EXPECT_LE(n, 0);
  EXPECT_LT(waited, std::chrono::seconds(4));
  ::close(fd);
}

TEST_F(NodeTest, ConnectionCapAnswers503) {
  StartNode("[server]\nmax_connections = 2\n");
  std::vector<int> fds;
  for (int i = 0; i < 2; ++i) {
    fds.push_back(ConnectRaw(node_->address()));
    ASSERT_GE(fds.back(), 0);
  }
  // Let the node accept both before the third arrives.
  for (int i = 0; i < 100; ++i) {
    Reply probe = Get("/healthz");
    if (probe.status == 503) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  Reply refused = Get("/healthz");
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_EQ(json::parse(refused.body)["error"]["code"], "too_many_connections");
  for (int fd : fds) ::close(fd);
  // Capacity returns once they close.
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i) {
    served = Get("/healthz").status == 200;
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(served);
}

TEST_F(NodeTest, AcknowledgedWritesSurviveKill9) {
  StartNode("signups_per_hour = 1000\nlogin_attempts_per_minute = 1000\n");
  constexpr int kAccounts = 40;
  std::vector<std::future<int>> results;
  for (int i = 0; i < kAccounts; ++i) {
    results.push_back(std::async(std::launch::async, [this, i] {
      return Post("/api/v1/accounts", {{"email", "user" + std::to_string(i) + "@durable.example"},
                                        {"password", "durable password"}})
          .status;
    }));
  }
  for (auto& r : results) ASSERT_EQ(r.get(), 201);
  const std::string token = SignUpAndLogIn("last@durable.example");
  ASSERT_EQ(Post("/api/v1/account/emails", {{"address", "second@durable.example"}}, token).status, 201);

  const int status = node_->StopWith(SIGKILL);
  ASSERT_TRUE(WIFSIGNALED(status));
  StartNode("signups_per_hour = 1000\nlogin_attempts_per_minute = 1000\n");
  for (int i = 0; i < kAccounts; ++i) {
    EXPECT_EQ(Post("/api/v1/sessions", {{"email", "user" + std::to_string(i) + "@durable.example"},
                                         {"password", "durable password"}})
                  .status,
              201)
        << i;
  }
  json account = Account(token);  // the session token survived too
  ASSERT_EQ(account["emails"].size(), 2u);
  EXPECT_EQ(account["emails"][1]["address"], "second@durable.example");
}

TEST_F(NodeTest, SigtermFinishesInFlightRequestsAndExitsZero) {
  // A slow KDF keeps the sign-in on a worker while the signal arrives.
  StartNode("scrypt_log2_n = 17\n");
  ASSERT_EQ(Post("/api/v1/accounts", {{"email", "slow@kdf.example"}, {"password", "slow password 1"}}).status, 201);
  auto pending = std::async(std::launch::async, [this] {
    return Post("/api/v1/sessions", {{"email", "slow@kdf.example"}, {"password", "slow password 1"}});
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const int status = node_->StopWith(SIGTERM);
  Reply reply = pending.get();
  EXPECT_EQ(reply.status, 201) << reply.body;
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_NE(node_->ReadLog().find("\"msg\":\"stopped\""), std::string::npos);
}

TEST_F(NodeTest, PasswordResetBySignOut) {
  StartNode();
  const std::string old_session = SignUpAndLogIn("lamport@paxos.example", "first password");
  Reply asked = Post("/api/v1/password-reset", {{"email", "LAMPORT@paxos.example"}});
  EXPECT_EQ(asked.status, 202);
  Reply unknown = Post("/api/v1/password-reset", {{"email", "nobody@paxos.example"}});
  EXPECT_EQ(unknown.status, 202);
  EXPECT_EQ(unknown.body, asked.body);  // no hint whether the address exists
  const std::string reset = TokenFromOutbox("lamport@paxos.example", "Reset");
  ASSERT_FALSE(reset.empty());
  EXPECT_EQ(Post("/api/v1/password-reset/confirm", {{"token", reset}, {"password", "short"}}).status, 400);
  EXPECT_EQ(Post("/api/v1/password-reset/confirm", {{"token", "bogus"}, {"password", "second password"}}).status, 404);
  ASSERT_EQ(Post("/api/v1/password-reset/confirm", {{"token", reset}, {"password", "second password"}}).status, 204);
  EXPECT_EQ(Get("/api/v1/account", old_session).status, 401);  // sessions ended
  EXPECT_EQ(Post("/api/v1/sessions", {{"email", "lamport@paxos.example"}, {"password", "first password"}}).status, 401);
  const std::string fresh = json::parse(Post("/api/v1/sessions", {{"email", "lamport@paxos.example"},
                                                                   {"password", "second password"}}).body)["token"];
  EXPECT_EQ(Get("/api/v1/account", fresh).status, 200);
  // Sign-out ends the session.
  EXPECT_EQ(Delete("/api/v1/sessions/current", fresh).status, 204);
  EXPECT_EQ(Get("/api/v1/account", fresh).status, 401);
}

TEST_F(NodeTest, DeleteAccountRemovesItAndFreesTheAddress) {
  StartNode();
  const std::string token = SignUpAndLogIn("liskov@mit.example");
  ASSERT_EQ(Post("/api/v1/account/emails/verify", {{"token", TokenFromOutbox("liskov@mit.example")}}, token).status, 200);
  EXPECT_EQ(Delete("/api/v1/account", token, {{"password", "wrong password!"}}).status, 403);
  EXPECT_EQ(Get("/api/v1/account", token).status, 200);
  EXPECT_EQ(Delete("/api/v1/account", token, {{"password", "correct horse battery"}}).status, 204);
  EXPECT_EQ(Get("/api/v1/account", token).status, 401);
  EXPECT_EQ(Post("/api/v1/sessions", {{"email", "liskov@mit.example"}, {"password", "correct horse battery"}}).status, 401);
  EXPECT_EQ(Post("/api/v1/accounts", {{"email", "liskov@mit.example"}, {"password", "another password"}}).status, 201);
}

TEST_F(NodeTest, SignUpAddressIsHeldAgainstOtherSignUps) {
  StartNode();
  SignUpAndLogIn("dijkstra@tue.example");
  Reply again = Post("/api/v1/accounts", {{"email", "Dijkstra@TUE.example"}, {"password", "another password"}});
  EXPECT_EQ(again.status, 409);
}

TEST_F(NodeTest, ServesTls) {
  const std::string cert = dir_.path() + "/cert.pem";
  const std::string key = dir_.path() + "/key.pem";
  ASSERT_EQ(Shell("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 "
                  "-addext subjectAltName=IP:127.0.0.1 -keyout " + key + " -out " + cert + " 2>/dev/null"),
            0);
  StartNode("[server]\ntls_cert_file = \"" + cert + "\"\ntls_key_file = \"" + key + "\"\n");
  node_->set_tls_ca(cert);
  Reply health = Get("/healthz");
  ASSERT_EQ(health.status, 200) << health.body;
  Reply node = Get("/.well-known/backpack-node");
  EXPECT_EQ(json::parse(node.body)["url"], "https://" + node_->address());
  // Plain HTTP to the TLS port gets no answer.
  EXPECT_EQ(Send(node_->address(), {"GET", "/healthz", "", "", "", {}}).status, 0);
}

TEST_F(NodeTest, BadConfigIsRefusedNamingTheKey) {
  node_ = std::make_unique<NodeProcess>(data_dir(), "[server]\nlisten_port = 8080\n");
  EXPECT_FALSE(node_->Start());
  EXPECT_NE(node_->ReadLog().find("server.listen_port"), std::string::npos) << node_->ReadLog();
}

// Runs a command and returns its exit code and standard output.
std::pair<int, std::string> RunCommand(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) return {-1, out};
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST_F(NodeTest, BackpackctlReportsStatusAndChecksConfig) {
  StartNode();
  auto [code, out] = RunCommand(std::string(BACKPACKCTL_PATH) + " status --url http://" + node_->address());
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("health: 200"), std::string::npos) << out;
  EXPECT_NE(out.find("\"software\""), std::string::npos) << out;

  auto [valid, valid_out] = RunCommand(std::string(BACKPACKCTL_PATH) + " check-config --config " EXAMPLE_CONFIG);
  EXPECT_EQ(valid, 0) << valid_out;
  const std::string bad = dir_.path() + "/bad.toml";
  { std::ofstream(bad) << "[server]\nio_threads = 0\n"; }
  auto [invalid, invalid_out] = RunCommand(std::string(BACKPACKCTL_PATH) + " check-config --config " + bad + " 2>&1");
  EXPECT_EQ(invalid, 1);
  EXPECT_NE(invalid_out.find("server.io_threads"), std::string::npos) << invalid_out;

  node_->StopWith(SIGTERM);
  auto [down, down_out] = RunCommand(std::string(BACKPACKCTL_PATH) + " status --url http://" + node_->address() + " 2>&1");
  EXPECT_EQ(down, 1) << down_out;
  EXPECT_NE(down_out.find("unreachable"), std::string::npos) << down_out;
}

}  // namespace
}  // namespace backpack::testing
