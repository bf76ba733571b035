// Test support: a fixture for the issuer-facing APIs that an OAuth access
// token opens (Badge Connect 2.1, the OB 3.0 API). A real node with private
// fetches allowed, our own issuer serving on 127.0.0.1, one verified earner
// signed in, and helpers to get a token through registration and the PKCE
// flow, call the API and read the earner's badges.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/oauth_flow.h"
#include "tests/support/test_http.h"
#include "tests/support/test_issuer.h"

namespace backpack::testing {

// rel -> URL of an RFC 8288 Link header.
inline std::map<std::string, std::string> LinkRelations(const std::string& header) {
  std::map<std::string, std::string> out;
  static const std::regex re("<([^>]*)>; rel=\"([a-z]+)\"");
  for (auto it = std::sregex_iterator(header.begin(), header.end(), re); it != std::sregex_iterator(); ++it) {
    out[(*it)[2]] = (*it)[1];
  }
  return out;
}

class IssuerApiTest : public ::testing::Test {
 protected:
  static constexpr char kAllowPrivate[] = "[fetch]\nallow_private = true\n";
  static constexpr char kPassword[] = "correct horse battery";
  static constexpr char kEmail[] = "ada@learner.example";
  static constexpr char kRedirect[] = "https://issuer.example/o/redirect";

  // `api_prefix`: the API's path ("/ims/ob/v3p0"); `client_name` and
  // `scopes` (space-separated): what Token() registers its client with.
  IssuerApiTest(std::string api_prefix, std::string client_name, std::string scopes)
      : api_prefix_(std::move(api_prefix)), client_name_(std::move(client_name)), scopes_(std::move(scopes)) {}

  void StartNode(const std::string& extra_toml = {}) {
    ASSERT_TRUE(issuer_.Start());
    node_ = std::make_unique<NodeProcess>(dir_.path() + "/data", kAllowPrivate + extra_toml);
    browser_.set_node(node_.get());
    ASSERT_TRUE(node_->Start()) << node_->ReadLog();
    session_ = SignUpVerified(*node_, dir_.path() + "/data/outbox", kEmail, kPassword);
    ASSERT_FALSE(session_.empty()) << node_->ReadLog();
    base_ = "http://" + node_->address();
  }

  // An access token with `scope`, through registration and the PKCE flow;
  // `client_id` receives the client's id.
  std::string Token(const std::string& scope, std::string* client_id = nullptr) {
    const nlohmann::json metadata = {{"client_name", client_name_},
                                     {"client_uri", "https://issuer.example"},
                                     {"redirect_uris", {kRedirect}},
                                     {"scope", scopes_}};
    const Client client = RegisterClient(*node_, metadata.dump());
    EXPECT_FALSE(client.id.empty());
    if (client_id != nullptr) *client_id = client.id;
    const std::string code = browser_.Code(AuthorizeTarget(client, kRedirect, scope));
    EXPECT_FALSE(code.empty());
    Reply r = ExchangeCode(*node_, client, code, kRedirect);
    EXPECT_EQ(r.status, 200) << r.body;
    return nlohmann::json::parse(r.body, nullptr, false).value("access_token", "");
  }

  // `method` on api_prefix + `path` with `token`.
  Reply CallApi(const std::string& method, const std::string& path, const std::string& token,
                const std::string& body = {}, const std::string& content_type = "application/json") {
    return node_->Call({method, api_prefix_ + path, body, body.empty() ? "" : content_type, token, {}});
  }

  // The earner's badges in `state`, through the badge API.
  nlohmann::json Badges(const std::string& state) {
    Reply r = node_->Call({"GET", "/api/v1/badges?state=" + state, "", "", session_, {}});
    EXPECT_EQ(r.status, 200) << r.body;
    const nlohmann::json body = nlohmann::json::parse(r.body, nullptr, false);
    return body.is_object() && body.contains("badges") ? body["badges"] : nlohmann::json::array();
  }
  std::vector<std::string> BadgeIds(const std::string& state) {
    std::vector<std::string> ids;
    for (const nlohmann::json& b : Badges(state)) ids.push_back(b["id"]);
    return ids;
  }

  void Accept(const std::string& badge_id) {
    Reply r = node_->Call({"PATCH", "/api/v1/badges/" + badge_id, nlohmann::json{{"state", "accepted"}}.dump(),
                           "application/json", session_, {}});
    ASSERT_EQ(r.status, 200) << r.body;
  }

  TempDir dir_;
  TestIssuer issuer_;
  std::unique_ptr<NodeProcess> node_;
  OAuthBrowser browser_{kEmail, kPassword};
  std::string session_;
  std::string base_;

 private:
  std::string api_prefix_;
  std::string client_name_;
  std::string scopes_;
};

}  // namespace backpack::testing
