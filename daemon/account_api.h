// The account API under /api/v1: sign-up, sessions, the signed-in account,
// its email addresses, password reset and deletion. Wire format in
// docs/api.md. Handlers run on the worker pool.
#pragma once

#include <functional>
#include <string>

#include "base/status.h"
#include "config/config.h"

namespace backpack {
class AccountService;
namespace http {
class Router;
}

// Called after an account is deleted, to remove what other services hold
// for it (badges, collections). Runs on the worker that deleted it.
using AccountDeletedHook = std::function<Status(const std::string& account_id)>;

void RegisterAccountRoutes(http::Router& router, AccountService& accounts,
                           const config::AccountsConfig& config, AccountDeletedHook on_deleted = nullptr);

}  // namespace backpack
