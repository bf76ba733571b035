// The OAuth 2.0 endpoints and pages (docs/api.md, "OAuth 2.0"): client
// registration, server metadata, the authorization endpoint with its sign-in
// and consent pages, the token and revocation endpoints, and the account
// API's list of authorized apps. Handlers that touch storage run on the
// worker pool.
#pragma once

#include <string>

#include "config/config.h"

namespace backpack {
class AccountService;
class OAuthService;
namespace http {
class Router;
}

// `public_url` is the node's base URL: the issuer of the metadata, and
// whether the browser session cookie is Secure (https).
void RegisterOAuthRoutes(http::Router& router, OAuthService& oauth, AccountService& accounts,
                         const config::AccountsConfig& accounts_config, const std::string& public_url);

}  // namespace backpack
