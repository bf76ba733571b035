// The account API under /api/v1: sign-up, sessions, the signed-in account,
// its email addresses, password reset and deletion. Wire format in
// docs/api.md. Handlers run on the worker pool.
#pragma once

#include "config/config.h"

namespace backpack {
class AccountService;
namespace http {
class Router;
}

void RegisterAccountRoutes(http::Router& router, AccountService& accounts,
                           const config::AccountsConfig& config);

}  // namespace backpack
