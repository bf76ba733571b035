// Test support: an OAuth 2.0 client of the node's authorization server, and
// a browser of our own (a cookie jar) that goes through its sign-in and
// consent pages, for tests that need access tokens.
//
//   OAuthBrowser browser("ada@learner.example", "correct horse battery");
//   browser.set_node(&node);
//   Client client = RegisterClient(node, R"({"client_name": ..., "redirect_uris": [...]})");
//   std::string code = browser.Code(AuthorizeTarget(client, redirect_uri, scope));
//   Reply tokens = ExchangeCode(node, client, code, redirect_uri);
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/support/test_http.h"

namespace backpack::testing {

using FormFields = std::vector<std::pair<std::string, std::string>>;

// The example verifier of RFC 7636 appendix B and its S256 challenge.
inline constexpr char kPkceVerifier[] = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
inline constexpr char kPkceChallenge[] = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

// Percent-encodes everything but the unreserved characters (RFC 3986 2.3).
std::string FormEncode(std::string_view text);
// application/x-www-form-urlencoded "a=1&b=2".
std::string Form(const FormFields& fields);
// The decoded query parameters of a URL.
std::map<std::string, std::string> QueryOf(const std::string& url);
// The hidden fields of a page's form, in order, unescaped.
FormFields HiddenFields(const std::string& html);
// The value of `name` in `fields`, or "".
std::string Field(const FormFields& fields, const std::string& name);
// Standard base64 with padding.
std::string Base64(const std::string& in);

// A browser's cookie jar: what Set-Cookie said, sent back as Cookie.
class CookieJar {
 public:
  void Take(const Reply& r);
  std::string Header() const;
  std::string Get(const std::string& name) const;
  std::string Attributes(const std::string& name) const;
  void Set(const std::string& name, const std::string& value) { cookies_[name] = value; }
  void Clear() { cookies_.clear(); }

 private:
  std::map<std::string, std::string> cookies_;
  std::map<std::string, std::string> attributes_;
};

// A registered client: its id and (for a confidential client) its secret.
struct Client {
  std::string id;
  std::string secret;
};

// POST /oauth/register with the JSON metadata `metadata_json`; the client,
// or an empty id when the node did not answer 201.
Client RegisterClient(const NodeProcess& node, const std::string& metadata_json);

// /oauth/authorize?... for `client` with response_type=code, the redirect
// URI, the scope, state "xyz<&>" (to exercise escaping) and the S256
// challenge of kPkceVerifier. `overrides` replace or add parameters; an
// empty value removes one.
std::string AuthorizeTarget(const Client& client, const std::string& redirect_uri, const std::string& scope,
                            const FormFields& overrides = {});

// A form post by the client to the token, revocation or introspection
// endpoint: authenticated with HTTP Basic when `basic`, else with client_id
// (and client_secret) in the body.
Reply ClientPost(const NodeProcess& node, const std::string& target, const Client& client, FormFields fields,
                 bool basic = true);

// grant_type=authorization_code at /oauth/token.
Reply ExchangeCode(const NodeProcess& node, const Client& client, const std::string& code,
                   const std::string& redirect_uri, const std::string& verifier = kPkceVerifier);

// The earner's browser on the node's authorization pages.
class OAuthBrowser {
 public:
  OAuthBrowser(std::string email, std::string password) : email_(std::move(email)), password_(std::move(password)) {}

  // The node the browser talks to; set before any request.
  void set_node(const NodeProcess* node) { node_ = node; }

  // A request as the browser: the jar's cookies go along, Set-Cookie is kept.
  // A non-empty `form` is sent as a form body.
  Reply Browse(const std::string& method, const std::string& target, const std::string& form = {});
  // Signs in through the sign-in page `page` (with `password`, or the
  // browser's own when empty); returns the page that follows (the consent
  // page), or the sign-in answer when it was not a redirect.
  Reply SignIn(const Reply& page, const std::string& password = {});
  // Answers the consent page with "approve" or "deny"; returns the redirect.
  Reply Decide(const Reply& consent, const std::string& decision);
  // The whole browser part of an authorization request: opens it, signs in
  // when asked, approves. The code, or "" when any step failed.
  std::string Code(const std::string& authorize_target);

  CookieJar& jar() { return jar_; }

 private:
  const NodeProcess* node_ = nullptr;
  std::string email_;
  std::string password_;
  CookieJar jar_;
};

}  // namespace backpack::testing
