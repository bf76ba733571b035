// Collections under /api/v1/collections, public share pages under /share,
// and the Mozilla Displayer API under /displayer. Wire format in docs/api.md.
#pragma once

#include <string>

#include "config/config.h"

namespace backpack {
class AccountService;
class BadgeService;
class CollectionService;
namespace http {
class Router;
}

// `public_url` is the node's base URL (for Open Graph and share links).
void RegisterCollectionRoutes(http::Router& router, AccountService& accounts, BadgeService& badges,
                              CollectionService& collections, const config::BadgesConfig& config,
                              const std::string& public_url);

}  // namespace backpack
