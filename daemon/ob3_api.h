// The Open Badges 3.0 API, the resource server side (docs/api.md, "OB 3.0
// API"): the Service Description Document at /ims/ob/v3p0/discovery and the
// credential and profile endpoints under /ims/ob/v3p0, which an issuer or
// another host calls with an access token from the node's OAuth 2.0 server.
//
// Contract:
//  * Errors are the specification's Imsx_StatusInfo JSON, never the error
//    object of /api/v1; 401 and 403 carry the RFC 6750 challenge.
//  * An upserted credential is verified like an import, OB 3.0 credentials
//    only, and lands pending: the earner accepts or rejects it in the badge
//    API. A newer credential with the same identity replaces the stored one
//    (same state). Only accepted OB 3.0 credentials are listed to clients.
//  * Credentials are given back as the issuer's bytes: JSON verbatim, VC-JWTs
//    as their compact JWS.
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

// `public_url` is the node's base URL: the discovery document names the API
// and the OAuth endpoints under it, and Link headers are absolute under it.
// From `server`: node_name names the resource server ("" for the host of
// public_url), and the operator's terms of service and privacy policy URLs
// are published when set.
void RegisterOb3Routes(http::Router& router, OAuthService& oauth, AccountService& accounts, BadgeService& badges,
                       const config::BadgesConfig& badges_config, const std::string& public_url,
                       const config::ServerConfig& server);

}  // namespace backpack
