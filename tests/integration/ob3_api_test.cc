// The Open Badges 3.0 API end to end: the real backpackd, our own issuer
// (a did:key issuer with a status list) serving its documents over real HTTP
// on 127.0.0.1, clients that get access tokens through registration, sign-in
// and consent with PKCE -- and the real `backpackctl issue` as the issuer's
// client.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <regex>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "daemon/oauth.h"
#include "tests/support/issuer_api_test.h"

#ifndef BACKPACKCTL_PATH
#error "BACKPACKCTL_PATH must name the backpackctl binary"
#endif

namespace backpack::testing {
namespace {

using nlohmann::json;

constexpr char kObV3Context[] = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json";
const std::string kRead(kScopeObV3p0CredentialReadonly);
const std::string kUpsert(kScopeObV3p0CredentialUpsert);
const std::string kProfileRead(kScopeObV3p0ProfileReadonly);
const std::string kProfileUpdate(kScopeObV3p0ProfileUpdate);

// The imsx_codeMinorFieldValue of an Imsx_StatusInfo body ("" if none).
std::string CodeMinor(const Reply& r) {
  const json j = json::parse(r.body, nullptr, false);
  if (!j.is_object() || j.value("imsx_codeMajor", "") != "failure" || j.value("imsx_severity", "") != "error") {
    return {};
  }
  const json field = j.value("/imsx_codeMinor/imsx_codeMinorField/0"_json_pointer, json());
  if (field.value("imsx_codeMinorFieldName", "") != "TargetEndSystem") return {};
  return field.value("imsx_codeMinorFieldValue", "");
}

std::string Description(const Reply& r) {
  const json j = json::parse(r.body, nullptr, false);
  return j.is_object() ? j.value("imsx_description", "") : "";
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  out << data;
}

// A child process whose stdout and stderr go to one pipe the test reads;
// `env` ("NAME=value") is added to the test's environment, replacing what
// it names.
class Child {
 public:
  explicit Child(const std::vector<std::string>& argv, const std::vector<std::string>& env = {}) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], 1);
      ::dup2(fds[1], 2);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      std::vector<char*> environment;
      for (char** e = environ; *e != nullptr; ++e) {
        const std::string_view entry(*e);
        const bool replaced = std::any_of(env.begin(), env.end(), [&](const std::string& given) {
          return entry.substr(0, entry.find('=') + 1) == given.substr(0, given.find('=') + 1);
        });
        if (!replaced) environment.push_back(*e);
      }
      for (const auto& e : env) environment.push_back(const_cast<char*>(e.c_str()));
      environment.push_back(nullptr);
      ::execve(args[0], args.data(), environment.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    fd_ = fds[0];
  }
  ~Child() {
    if (pid_ > 0 && status_ < 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) ::close(fd_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // The first complete output line starting with `prefix`, waiting up to
  // `timeout`; "" when none came.
  std::string LineStartingWith(const std::string& prefix, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    size_t start = 0;
    while (true) {
      for (size_t nl; (nl = output_.find('\n', start)) != std::string::npos; start = nl + 1) {
        const std::string line = output_.substr(start, nl - start);
        if (line.rfind(prefix, 0) == 0) return line;
      }
      if (std::chrono::steady_clock::now() >= deadline || !ReadSome(deadline)) return {};
    }
  }

  // Waits for the exit, collecting the output; the exit code, or -1.
  int Wait(std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (ReadSome(deadline)) {
    }
    while (status_ < 0 && std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return status_;
  }

  const std::string& output() const { return output_; }

 private:
  // Reads what is available before `deadline`; false at end of output or timeout.
  bool ReadSome(std::chrono::steady_clock::time_point deadline) {
    if (fd_ < 0) return false;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buffer[4096];
    const ssize_t n = ::read(fd_, buffer, sizeof buffer);
    if (n <= 0) {
      ::close(fd_);
      fd_ = -1;
      return false;
    }
    output_.append(buffer, static_cast<size_t>(n));
    return true;
  }

  pid_t pid_ = -1;
  int fd_ = -1;
  int status_ = -1;
  std::string output_;
};

class Ob3ApiTest : public IssuerApiTest {
 protected:
  Ob3ApiTest()
      : IssuerApiTest("/ims/ob/v3p0", "Credential Issuer",
                      kRead + " " + kUpsert + " " + kProfileRead + " " + kProfileUpdate) {}

  Reply Api(const std::string& method, const std::string& path, const std::string& token,
            const std::string& body = {}, const std::string& content_type = "application/json") {
    return CallApi(method, path, token, body, content_type);
  }

  json Original(const std::string& badge_id) {
    Reply r = node_->Call({"GET", "/api/v1/badges/" + badge_id, "", "", session_, {}});
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body, nullptr, false).value("original", json());
  }

  std::string Credential(const CredentialOptions& options,
                         CredentialProofKind proof = CredentialProofKind::kDataIntegrity) {
    return issuer_.AwardCredential(options, proof);
  }
};

TEST_F(Ob3ApiTest, DiscoveryIsPublicAndNamesLiveEndpoints) {
  StartNode();
  Reply r = node_->Call({"GET", "/ims/ob/v3p0/discovery", "", "", "", {}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Header("access-control-allow-origin"), "*");
  EXPECT_NE(r.Header("content-type").find("application/json"), std::string::npos);
  const json sdd = json::parse(r.body);
  EXPECT_EQ(sdd["openapi"].get<std::string>().rfind("3.0", 0), 0u);
  EXPECT_FALSE(sdd["info"]["title"].get<std::string>().empty());
  EXPECT_FALSE(sdd["info"]["version"].get<std::string>().empty());
  EXPECT_FALSE(sdd["info"].contains("termsOfService"));  // not configured
  EXPECT_FALSE(sdd["info"].contains("x-imssf-privacyPolicyUrl"));
  ASSERT_EQ(sdd["servers"].size(), 1u);
  EXPECT_EQ(sdd["servers"][0]["url"], base_ + "/ims/ob/v3p0");
  for (const char* op : {"/credentials/get", "/credentials/post", "/profile/get", "/profile/put", "/discovery/get"}) {
    EXPECT_TRUE(sdd["paths"].contains(json::json_pointer(std::string("/") + "~1" + std::string(op + 1)))) << op;
  }
  EXPECT_EQ(sdd["paths"]["/credentials"]["post"]["security"][0]["OAuth2ACG"], json::array({kUpsert}));

  const json& acg = sdd["components"]["securitySchemes"]["OAuth2ACG"];
  EXPECT_EQ(acg["type"], "oauth2");
  EXPECT_EQ(acg["x-imssf-registrationUrl"], base_ + "/oauth/register");
  const json& flow = acg["flows"]["authorizationCode"];
  EXPECT_EQ(flow["authorizationUrl"], base_ + "/oauth/authorize");
  EXPECT_EQ(flow["tokenUrl"], base_ + "/oauth/token");
  EXPECT_EQ(flow["refreshUrl"], base_ + "/oauth/token");
  std::vector<std::string> scopes;
  for (const auto& [scope, description] : flow["scopes"].items()) {
    scopes.push_back(scope);
    EXPECT_FALSE(description.get<std::string>().empty()) << scope;
  }
  EXPECT_EQ(scopes, (std::vector<std::string>{kRead, kUpsert, kProfileRead, kProfileUpdate}));

  // Each URL leads to a live endpoint: what each answers to an empty request.
  auto path = [&](const json& url) { return url.get<std::string>().substr(base_.size()); };
  EXPECT_EQ(node_->Call({"POST", path(acg["x-imssf-registrationUrl"]), "{}", "application/json", "", {}}).status, 400);
  EXPECT_EQ(node_->Call({"GET", path(flow["authorizationUrl"]), "", "", "", {}}).status, 400);
  EXPECT_EQ(node_->Call({"POST", path(flow["tokenUrl"]), "", "application/x-www-form-urlencoded", "", {}}).status, 401);
  EXPECT_EQ(node_->Call({"GET", path(sdd["servers"][0]["url"]) + "/credentials", "", "", "", {}}).status, 401);
  // The node's self-description points at it.
  const json node = json::parse(node_->Call({"GET", "/.well-known/backpack-node", "", "", "", {}}).body);
  EXPECT_EQ(node["endpoints"]["ob_v3p0_discovery"], base_ + "/ims/ob/v3p0/discovery");
}

TEST_F(Ob3ApiTest, DiscoveryCarriesTheOperatorsPolicies) {
  StartNode("[server]\nterms_of_service_url = \"https://op.example/terms\"\n"
            "privacy_policy_url = \"https://op.example/privacy\"\n");
  const json sdd = json::parse(node_->Call({"GET", "/ims/ob/v3p0/discovery", "", "", "", {}}).body);
  EXPECT_EQ(sdd["info"]["termsOfService"], "https://op.example/terms");
  EXPECT_EQ(sdd["info"]["x-imssf-privacyPolicyUrl"], "https://op.example/privacy");
  EXPECT_EQ(sdd["components"]["securitySchemes"]["OAuth2ACG"]["x-imssf-termsOfServiceUrl"], "https://op.example/terms");
}

TEST_F(Ob3ApiTest, UpsertedCredentialsWaitForTheEarnerAndNewerOnesReplaceThem) {
  StartNode();
  const std::string token = Token(kUpsert + " " + kRead);
  ASSERT_FALSE(token.empty());
  const std::string id = "urn:uuid:7f1d8f2e-53a4-4a43-9b1e-0c0d4f0f1a01";

  // Created: pending for the earner; the answer repeats the credential.
  const std::string first = Credential({.email = kEmail, .id = id, .valid_from = 1700000000});
  Reply created = Api("POST", "/credentials", token, first);
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.body, first);
  EXPECT_NE(created.Header("content-type").find("application/json"), std::string::npos);
  json pending = Badges("pending");
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0]["spec_version"], "3.0");
  const std::string badge_id = pending[0]["id"];

  // The same again: 304, nothing new.
  Reply again = Api("POST", "/credentials", token, first);
  EXPECT_EQ(again.status, 304) << again.body;
  EXPECT_TRUE(again.body.empty());
  EXPECT_EQ(Badges("pending").size(), 1u);

  // A later validFrom replaces it: 200, same badge, the new bytes, still pending.
  const std::string newer = Credential({.email = kEmail, .id = id, .valid_from = 1700000000 + 86400});
  Reply replaced = Api("POST", "/credentials", token, newer, "application/vc+ld+json");
  ASSERT_EQ(replaced.status, 200) << replaced.body;
  EXPECT_EQ(replaced.body, newer);
  EXPECT_NE(replaced.Header("content-type").find("application/vc+ld+json"), std::string::npos);
  pending = Badges("pending");
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0]["id"], badge_id);
  EXPECT_EQ(Original(badge_id)["assertion"], newer);
  // The older one does not take its place back.
  EXPECT_EQ(Api("POST", "/credentials", token, first).status, 304);
  EXPECT_EQ(Original(badge_id)["assertion"], newer);

  // A VC-JWT, as text/plain (a trailing newline, as in a file, is fine).
  const std::string jwt = Credential({.email = kEmail}, CredentialProofKind::kJwt);
  Reply signed_one = Api("POST", "/credentials", token, jwt + "\n", "text/plain");
  ASSERT_EQ(signed_one.status, 201) << signed_one.body;
  EXPECT_EQ(signed_one.body, jwt);
  EXPECT_NE(signed_one.Header("content-type").find("text/plain"), std::string::npos);

  // Pending ones are not listed.
  Reply listed = Api("GET", "/credentials", token);
  ASSERT_EQ(listed.status, 200) << listed.body;
  EXPECT_EQ(listed.Header("x-total-count"), "0");
  EXPECT_EQ(json::parse(listed.body), json({{"credential", json::array()}, {"compactJwsString", json::array()}}));

  // Accepted: listed, as the issuer's bytes. An OB 2.0 badge is not listed.
  for (const json& b : Badges("pending")) Accept(b["id"]);
  Reply ob2 = node_->Call({"POST", "/api/v1/badges", json{{"jws", issuer_.AwardSigned({.email = kEmail})}}.dump(),
                           "application/json", session_, {}});
  ASSERT_EQ(ob2.status, 201) << ob2.body;
  listed = Api("GET", "/credentials", token);
  ASSERT_EQ(listed.status, 200) << listed.body;
  EXPECT_EQ(listed.Header("x-total-count"), "2");
  EXPECT_NE(listed.body.find(newer), std::string::npos);  // verbatim, not re-serialised
  const json all = json::parse(listed.body);
  EXPECT_EQ(all["credential"], json::array({json::parse(newer)}));
  EXPECT_EQ(all["compactJwsString"], json::array({jwt}));

  // One a page, newest first: the VC-JWT leads.
  const std::string api = base_ + "/ims/ob/v3p0/credentials";
  Reply page1 = Api("GET", "/credentials?limit=1", token);
  ASSERT_EQ(page1.status, 200) << page1.body;
  EXPECT_EQ(page1.Header("x-total-count"), "2");
  EXPECT_EQ(json::parse(page1.body), json({{"credential", json::array()}, {"compactJwsString", {jwt}}}));
  auto links = LinkRelations(page1.Header("link"));
  EXPECT_EQ(links["first"], api + "?limit=1&offset=0");
  EXPECT_EQ(links["next"], api + "?limit=1&offset=1");
  EXPECT_EQ(links["last"], api + "?limit=1&offset=1");
  EXPECT_FALSE(links.contains("prev"));
  Reply page2 = Api("GET", links["next"].substr(api.size() - std::string("/credentials").size()), token);
  ASSERT_EQ(page2.status, 200) << page2.body;
  EXPECT_EQ(json::parse(page2.body)["credential"], json::array({json::parse(newer)}));
  links = LinkRelations(page2.Header("link"));
  EXPECT_EQ(links["prev"], api + "?limit=1&offset=0");
  EXPECT_FALSE(links.contains("next"));

  // since: everything came just now; nothing from the future.
  EXPECT_EQ(Api("GET", "/credentials?since=2020-01-01T00:00:00Z", token).Header("x-total-count"), "2");
  Reply future = Api("GET", "/credentials?since=2999-01-01T00:00:00%2B02:00", token);
  EXPECT_EQ(future.Header("x-total-count"), "0");
  EXPECT_NE(future.Header("link").find("since=2999-01-01T00%3A00%3A00%2B02%3A00"), std::string::npos);

  for (const char* query : {"?limit=0", "?limit=x", "?offset=-1", "?since=yesterday", "?since=2024-01-01T00:00:00"}) {
    Reply bad = Api("GET", std::string("/credentials") + query, token);
    EXPECT_EQ(bad.status, 400) << query;
    EXPECT_EQ(CodeMinor(bad), "invalid_query_parameter") << query << ": " << bad.body;
  }
}

TEST_F(Ob3ApiTest, ForgedMisaddressedAndOldStyleBadgesAreRefusedAndNothingIsStored) {
  StartNode();
  const std::string token = Token(kUpsert);
  const std::string vc = Credential({.email = kEmail});

  Reply forged =
      Api("POST", "/credentials", token, TestIssuer::Tamper(vc, "/credentialSubject/achievement/name", "Forged"));
  ASSERT_EQ(forged.status, 400) << forged.body;
  EXPECT_EQ(CodeMinor(forged), "invalid_data") << forged.body;
  EXPECT_NE(Description(forged).find("VERIFY_PROOF"), std::string::npos) << forged.body;
  // The whole verification report comes along.
  const json report = json::parse(forged.body)["report"];
  ASSERT_TRUE(report.is_object()) << forged.body;
  bool proof_failed = false;
  for (const json& m : report["messages"]) proof_failed |= m["name"] == "VERIFY_PROOF" && m["messageLevel"] == "ERROR";
  EXPECT_TRUE(proof_failed) << report.dump();

  Reply other = Api("POST", "/credentials", token, Credential({.email = "somebody@else.example"}));
  EXPECT_EQ(other.status, 400) << other.body;
  EXPECT_EQ(CodeMinor(other), "invalid_data");

  // OB 2.0 assertions are for the badge API and Badge Connect.
  Reply assertion = Api("POST", "/credentials", token, issuer_.HostedJson(issuer_.AwardHosted({.email = kEmail})));
  EXPECT_EQ(assertion.status, 400) << assertion.body;
  EXPECT_NE(Description(assertion).find("DETECT_VERSION"), std::string::npos) << assertion.body;
  Reply signed_assertion = Api("POST", "/credentials", token, issuer_.AwardSigned({.email = kEmail}), "text/plain");
  EXPECT_EQ(signed_assertion.status, 400) << signed_assertion.body;
  EXPECT_NE(Description(signed_assertion).find("DETECT_VERSION"), std::string::npos) << signed_assertion.body;

  // Bodies that are no credential at all.
  EXPECT_EQ(Api("POST", "/credentials", token, "not a jws", "text/plain").status, 400);
  EXPECT_EQ(Api("POST", "/credentials", token, "[1, 2]").status, 400);
  EXPECT_EQ(Api("POST", "/credentials", token, "{\"id\": ").status, 400);
  Reply deep = Api("POST", "/credentials", token, std::string(500, '[') + std::string(500, ']'));
  EXPECT_EQ(deep.status, 400);
  EXPECT_EQ(CodeMinor(deep), "invalid_data");
  Reply xml = Api("POST", "/credentials", token, "<credential/>", "application/xml");
  EXPECT_EQ(xml.status, 415);
  EXPECT_EQ(CodeMinor(xml), "invalid_data");

  EXPECT_TRUE(Badges("pending").empty());
  EXPECT_TRUE(Badges("accepted").empty());
}

TEST_F(Ob3ApiTest, TokensAreCheckedAndARevokedClientLosesAccess) {
  StartNode();
  Reply none = Api("GET", "/credentials", "");
  ASSERT_EQ(none.status, 401);
  EXPECT_EQ(none.Header("www-authenticate"), "Bearer realm=\"backpackd\"");
  EXPECT_EQ(CodeMinor(none), "unauthorizedrequest") << none.body;

  Reply unknown = Api("GET", "/profile", "not-a-token");
  ASSERT_EQ(unknown.status, 401);
  EXPECT_NE(unknown.Header("www-authenticate").find("error=\"invalid_token\""), std::string::npos);
  // A session token of the badge API is not an access token.
  EXPECT_EQ(Api("GET", "/credentials", session_).status, 401);

  std::string client_id;
  const std::string read_only = Token(kRead, &client_id);
  Reply wrong = Api("POST", "/credentials", read_only, Credential({.email = kEmail}));
  ASSERT_EQ(wrong.status, 403) << wrong.body;
  EXPECT_NE(wrong.Header("www-authenticate").find("error=\"insufficient_scope\""), std::string::npos);
  EXPECT_NE(wrong.Header("www-authenticate").find(kUpsert), std::string::npos);
  EXPECT_EQ(CodeMinor(wrong), "forbidden");
  EXPECT_EQ(Api("GET", "/profile", read_only).status, 403);
  EXPECT_EQ(Api("PUT", "/profile", read_only, "{}").status, 403);
  EXPECT_TRUE(Badges("pending").empty());

  // The earner removes the app: its token stops working at once.
  ASSERT_EQ(Api("GET", "/credentials", read_only).status, 200);
  Reply removed = node_->Call({"DELETE", "/api/v1/account/apps/" + client_id, "", "", session_, {}});
  ASSERT_EQ(removed.status, 204) << removed.body;
  Reply revoked = Api("GET", "/credentials", read_only);
  EXPECT_EQ(revoked.status, 401) << revoked.body;
  EXPECT_NE(revoked.Header("www-authenticate").find("error=\"invalid_token\""), std::string::npos);
}

TEST_F(Ob3ApiTest, ProfileShowsTheEarnerAndTakesNewAddresses) {
  StartNode();
  const std::string token = Token(kProfileRead + " " + kProfileUpdate);
  Reply r = Api("GET", "/profile", token);
  ASSERT_EQ(r.status, 200) << r.body;
  const json profile = json::parse(r.body);
  EXPECT_EQ(profile["@context"], json::array({kObV3Context}));
  EXPECT_EQ(profile["type"], json::array({"Profile"}));
  EXPECT_EQ(profile["email"], kEmail);
  EXPECT_EQ(profile["id"].get<std::string>().rfind("urn:uuid:", 0), 0u);
  EXPECT_EQ(json::parse(Api("GET", "/profile", token).body)["id"], profile["id"]);  // stable

  // The whole profile with a new address: taken unverified, so not shown yet.
  json put = profile;
  put["email"] = "ada@work.example";
  Reply updated = Api("PUT", "/profile", token, put.dump());
  ASSERT_EQ(updated.status, 200) << updated.body;
  EXPECT_EQ(json::parse(updated.body), profile);
  Reply account = node_->Call({"GET", "/api/v1/account", "", "", session_, {}});
  EXPECT_NE(account.body.find("ada@work.example"), std::string::npos);
  // Repeating the profile as it is changes nothing.
  ASSERT_EQ(Api("PUT", "/profile", token, profile.dump()).status, 200);

  // What the earner alone decides is refused, naming the member.
  json renamed = profile;
  renamed["name"] = "Someone Else";
  Reply refused = Api("PUT", "/profile", token, renamed.dump());
  ASSERT_EQ(refused.status, 400) << refused.body;
  EXPECT_EQ(CodeMinor(refused), "invalid_data");
  EXPECT_NE(Description(refused).find("name"), std::string::npos);
  json phone = profile;
  phone["phone"] = "111-222-3333";
  refused = Api("PUT", "/profile", token, phone.dump());
  ASSERT_EQ(refused.status, 400) << refused.body;
  EXPECT_NE(Description(refused).find("'phone'"), std::string::npos);
  json other_id = profile;
  other_id["id"] = "https://example.edu/issuers/565049";
  EXPECT_EQ(Api("PUT", "/profile", token, other_id.dump()).status, 400);
  EXPECT_EQ(Api("PUT", "/profile", token, "email=x", "application/x-www-form-urlencoded").status, 415);
}

TEST_F(Ob3ApiTest, PushesBeyondTheEarnersRateOrBackpackSizeAreRefused) {
  StartNode("[badges]\nimports_per_minute = 2\nmax_per_account = 1\n");
  const std::string token = Token(kUpsert);
  ASSERT_EQ(Api("POST", "/credentials", token, Credential({.email = kEmail})).status, 201);
  Reply full = Api("POST", "/credentials", token, Credential({.email = kEmail}));
  ASSERT_EQ(full.status, 409) << full.body;
  EXPECT_EQ(CodeMinor(full), "forbidden");
  Reply limited = Api("POST", "/credentials", token, Credential({.email = kEmail}));
  ASSERT_EQ(limited.status, 429) << limited.body;
  EXPECT_GE(std::stoi(limited.Header("retry-after")), 1);
  EXPECT_EQ(CodeMinor(limited), "server_busy");
  EXPECT_EQ(Badges("pending").size(), 1u);
}

// The issuer's side: the real backpackctl registers, is authorized by the
// earner through the browser flow, pushes a credential through the OB 3.0
// API and an assertion through Badge Connect, refreshes its token, and is
// turned away once the earner removes it.
TEST_F(Ob3ApiTest, BackpackctlIssuerRegistersAuthorizesPushesUntilRevoked) {
  StartNode();
  const std::string state_file = dir_.path() + "/issuer-state.json";
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {BACKPACKCTL_PATH, "issue"});
    Child child(args);
    const int code = child.Wait();
    return std::make_pair(code, child.output());
  };

  auto [registered, register_output] = run({"register", "--node", base_, "--state", state_file, "--client-name",
                                            "Test Issuer"});
  ASSERT_EQ(registered, 0) << register_output;
  struct stat st{};
  ASSERT_EQ(::stat(state_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  json state = json::parse(ReadFile(state_file));
  EXPECT_EQ(state["api_base"], base_ + "/ims/ob/v3p0");
  EXPECT_EQ(state["badge_connect_api_base"], base_ + "/ims/ob/v2p1");
  const std::string client_id = state["client_id"];
  EXPECT_EQ(register_output.find(state["client_secret"].get<std::string>()), std::string::npos);  // never printed
  // Registering again over the same state file is refused.
  EXPECT_NE(run({"register", "--node", base_, "--state", state_file}).first, 0);

  // The earner authorizes: the client prints the URL and waits on its
  // loopback redirect URI; the browser signs in, approves and is sent there.
  {
    Child authorize({BACKPACKCTL_PATH, "issue", "authorize", "--state", state_file, "--port", "0", "--timeout", "20"});
    const std::string url = authorize.LineStartingWith(base_ + "/oauth/authorize?", std::chrono::seconds(10));
    ASSERT_FALSE(url.empty()) << authorize.output();
    const auto params = QueryOf(url);
    EXPECT_EQ(params.at("code_challenge_method"), "S256");
    EXPECT_EQ(params.at("client_id"), client_id);
    Reply page = browser_.Browse("GET", url.substr(base_.size()));
    if (page.body.find("Sign in to your backpack") != std::string::npos) page = browser_.SignIn(page);
    ASSERT_EQ(page.status, 200) << page.body;
    Reply redirect = browser_.Decide(page, "approve");
    ASSERT_EQ(redirect.status, 302) << redirect.body;
    const std::string location = redirect.Header("location");
    std::smatch m;
    ASSERT_TRUE(std::regex_match(location, m, std::regex("http://(127\\.0\\.0\\.1:[0-9]+)(/callback\\?.*)")))
        << location;
    // A forged answer (wrong state) does not end the wait.
    Reply stray = Send(m[1], {"GET", "/callback?code=stolen&state=guess", "", "", "", {}});
    EXPECT_EQ(stray.status, 400);
    Reply done = Send(m[1], {"GET", m[2], "", "", "", {}});
    EXPECT_EQ(done.status, 200) << done.body;
    ASSERT_EQ(authorize.Wait(), 0) << authorize.output();
    EXPECT_NE(authorize.output().find("authorized:"), std::string::npos) << authorize.output();
  }
  state = json::parse(ReadFile(state_file));
  ASSERT_TRUE(state["access_token"].is_string());
  ASSERT_TRUE(state["refresh_token"].is_string());

  // A credential through the OB 3.0 API, an assertion through Badge Connect.
  const std::string credential_file = dir_.path() + "/credential.json";
  WriteFile(credential_file, Credential({.email = kEmail}));
  auto [pushed, push_output] = run({"push", "--state", state_file, credential_file});
  ASSERT_EQ(pushed, 0) << push_output;
  EXPECT_NE(push_output.find("created"), std::string::npos) << push_output;
  const std::string assertion_file = dir_.path() + "/assertion.jws";
  WriteFile(assertion_file, issuer_.AwardSigned({.email = kEmail}) + "\n");
  auto [asserted, assert_output] = run({"push-assertion", "--state", state_file, assertion_file});
  ASSERT_EQ(asserted, 0) << assert_output;
  EXPECT_NE(assert_output.find("accepted"), std::string::npos) << assert_output;
  std::multiset<std::string> versions;
  for (const json& b : Badges("pending")) versions.insert(b["spec_version"].get<std::string>());
  EXPECT_EQ(versions, (std::multiset<std::string>{"2.0", "3.0"}));

  auto [again, again_output] = run({"push", "--state", state_file, credential_file});
  EXPECT_EQ(again, 0) << again_output;
  EXPECT_NE(again_output.find("unchanged"), std::string::npos) << again_output;

  // An access token the node does not know: refreshed once, then it works.
  state["access_token"] = "stale";
  WriteFile(state_file, state.dump());
  const std::string jwt_file = dir_.path() + "/credential.jwt";
  WriteFile(jwt_file, Credential({.email = kEmail}, CredentialProofKind::kJwt));
  auto [refreshed, refreshed_output] = run({"push", "--state", state_file, jwt_file});
  ASSERT_EQ(refreshed, 0) << refreshed_output;
  EXPECT_NE(refreshed_output.find("created"), std::string::npos) << refreshed_output;
  EXPECT_NE(json::parse(ReadFile(state_file))["access_token"], "stale");
  EXPECT_EQ(Badges("pending").size(), 3u);

  // The earner removes the app: the next push is turned away.
  ASSERT_EQ(node_->Call({"DELETE", "/api/v1/account/apps/" + client_id, "", "", session_, {}}).status, 204);
  WriteFile(credential_file, Credential({.email = kEmail}));
  auto [turned_away, turned_away_output] = run({"push", "--state", state_file, credential_file});
  EXPECT_EQ(turned_away, 3) << turned_away_output;
  EXPECT_NE(turned_away_output.find("HTTP 401"), std::string::npos) << turned_away_output;
  EXPECT_EQ(Badges("pending").size(), 3u);
  EXPECT_FALSE(json::parse(ReadFile(state_file)).contains("refresh_token"));
}

// Over https the client verifies the node's certificate: a self-signed one
// is refused until the client is told to trust it (OpenSSL's SSL_CERT_FILE).
TEST_F(Ob3ApiTest, BackpackctlVerifiesTheNodesCertificate) {
  const std::string cert = dir_.path() + "/cert.pem";
  const std::string key = dir_.path() + "/key.pem";
  ASSERT_EQ(Shell("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 "
                  "-addext subjectAltName=IP:127.0.0.1 -keyout " + key + " -out " + cert + " 2>/dev/null"),
            0);
  ASSERT_TRUE(issuer_.Start());
  NodeProcess node(dir_.path() + "/data", std::string(kAllowPrivate) + "[server]\ntls_cert_file = \"" + cert +
                                               "\"\ntls_key_file = \"" + key + "\"\n");
  ASSERT_TRUE(node.Start()) << node.ReadLog();
  const std::string url = "https://" + node.address();
  const std::string state_file = dir_.path() + "/issuer-state.json";

  Child untrusted({BACKPACKCTL_PATH, "issue", "register", "--node", url, "--state", state_file});
  EXPECT_EQ(untrusted.Wait(), 1) << untrusted.output();
  EXPECT_NE(untrusted.output().find("certificate verify failed"), std::string::npos) << untrusted.output();
  EXPECT_NE(::access(state_file.c_str(), F_OK), 0);

  Child trusted({BACKPACKCTL_PATH, "issue", "register", "--node", url, "--state", state_file},
                {"SSL_CERT_FILE=" + cert});
  ASSERT_EQ(trusted.Wait(), 0) << trusted.output();
  const json state = json::parse(ReadFile(state_file));
  EXPECT_EQ(state["api_base"], url + "/ims/ob/v3p0");
  EXPECT_EQ(state["token_url"], url + "/oauth/token");
}

}  // namespace
}  // namespace backpack::testing
