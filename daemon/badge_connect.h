// The Badge Connect API of Open Badges 2.1, the Host side (docs/api.md,
// "Badge Connect 2.1"): the manifest at /.well-known/badgeconnect.json and
// the resource endpoints under /ims/ob/v2p1, which an issuer or another
// platform calls with an access token from the node's OAuth 2.0 server.
//
// Contract:
//  * Every /ims/ob/v2p1 answer is the specification's envelope: a JSON
//    object with "status" {"error", "statusCode", "statusText"} and the
//    endpoint's result members, nothing else.
//  * A pushed assertion is verified like an import and lands pending: the
//    earner accepts or rejects it in the badge API. Only accepted badges are
//    listed to clients.
// Handlers that touch storage run on the worker pool.
#pragma once

#include <string>

#include "config/config.h"

namespace backpack {
class AccountService;
class BadgeService;
class OAuthService;
namespace http {
class Router;
}

// `public_url` is the node's base URL (every URL in the manifest and in Link
// headers is absolute under it). From `server`: node_name names the platform
// in the manifest ("" for the host of public_url), and the operator's terms
// of service and privacy policy URLs are published there when set.
void RegisterBadgeConnectRoutes(http::Router& router, OAuthService& oauth, AccountService& accounts,
                                BadgeService& badges, const config::BadgesConfig& badges_config,
                                const std::string& public_url, const config::ServerConfig& server);

}  // namespace backpack
