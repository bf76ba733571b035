// The badge API under /api/v1/badges and the account export/import bundle.
// Wire format in docs/api.md and docs/export.md. Handlers run on the worker pool.
#pragma once

#include "config/config.h"

namespace backpack {
class AccountService;
class BadgeService;
class CollectionService;
namespace http {
class Router;
}

void RegisterBadgeRoutes(http::Router& router, AccountService& accounts, BadgeService& badges,
                         CollectionService& collections, const config::BadgesConfig& config);

}  // namespace backpack
