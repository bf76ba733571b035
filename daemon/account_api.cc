#include "daemon/account_api.h"

#include <ctime>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/time.h"
#include "daemon/accounts.h"
#include "daemon/api_util.h"
#include "daemon/http.h"
#include "daemon/log.h"
#include "daemon/rate_limiter.h"
#include "protocol/email_address.h"

namespace backpack {

using nlohmann::json;
namespace bhttp = http::bhttp;

namespace {

using api::BearerToken;
using api::BodyFields;
using api::Fail;
using api::Fields;
using api::TooMany;

// Rate-limit key of an email address: case-folded like NormalizeEmail,
// trimmed, without validating it (invalid addresses are limited too).
std::string EmailKey(std::string_view email) {
  while (!email.empty() && std::isspace(static_cast<unsigned char>(email.front()))) email.remove_prefix(1);
  while (!email.empty() && std::isspace(static_cast<unsigned char>(email.back()))) email.remove_suffix(1);
  return "email:" + protocol::NormalizeEmail(email);
}


// Renders the account object directly: this is the hottest response.
std::string AccountJson(const AccountView& a) {
  auto quoted = [](std::string& out, const std::string& text) { out += api::Quote(text); };
  std::string out;
  out.reserve(128 + 64 * a.emails.size());
  out += "{\"id\":";
  quoted(out, a.id);
  out += ",\"display_name\":";
  quoted(out, a.display_name);
  out += ",\"emails\":[";
  for (size_t i = 0; i < a.emails.size(); ++i) {
    const EmailView& e = a.emails[i];
    if (i > 0) out += ',';
    out += "{\"address\":";
    quoted(out, e.address);
    out += e.verified ? ",\"verified\":true" : ",\"verified\":false";
    out += e.primary ? ",\"primary\":true}" : ",\"primary\":false}";
  }
  out += "],\"created_at\":\"";
  out += FormatRfc3339(a.created_at);
  out += "\"}";
  return out;
}

http::Response AccountResponse(bhttp::status code, const AccountView& view) {
  return http::JsonResponse(code, AccountJson(view));
}

struct Limits {
  explicit Limits(const config::AccountsConfig& c)
      : sign_in(c.login_attempts_per_minute, std::chrono::minutes(1)),
        sign_up(c.signups_per_hour, std::chrono::hours(1)),
        mail(c.mail_requests_per_hour, std::chrono::hours(1)),
        token_attempts(60, std::chrono::minutes(1)) {}
  RateLimiter sign_in;         // per client address and per email
  RateLimiter sign_up;         // per client address
  RateLimiter mail;            // per account / per target address
  RateLimiter token_attempts;  // emailed-token guesses per client address
};

}  // namespace

void RegisterAccountRoutes(http::Router& router, AccountService& accounts,
                           const config::AccountsConfig& config, AccountDeletedHook on_deleted) {
  auto limits = std::make_shared<Limits>(config);
  using http::Exec;
  using http::Context;
  using http::Response;

  auto authed = [&accounts](auto fn) { return api::Authed(accounts, std::move(fn)); };

  router.Add(bhttp::verb::post, "/api/v1/accounts", Exec::kWorker, [&accounts, limits](Context& ctx) -> Response {
    std::chrono::seconds wait{};
    if (!limits->sign_up.Allow(ctx.remote_address, &wait)) return TooMany(wait, "sign-ups");
    auto fields = BodyFields(ctx, {"email", "password"}, {"display_name"});
    if (auto* err = std::get_if<Response>(&fields)) return std::move(*err);
    const Fields& f = std::get<Fields>(fields);
    auto created = accounts.CreateAccount(f[0], f[1], f[2]);
    if (!created.ok()) return Fail(created.status(), ctx);
    Response res = AccountResponse(bhttp::status::created, *created);
    res.set(bhttp::field::location, "/api/v1/account");
    return res;
  });

  router.Add(bhttp::verb::post, "/api/v1/sessions", Exec::kWorker, [&accounts, limits](Context& ctx) -> Response {
    auto fields = BodyFields(ctx, {"email", "password"});
    if (auto* err = std::get_if<Response>(&fields)) return std::move(*err);
    const std::string& email = std::get<Fields>(fields)[0];
    const std::string& password = std::get<Fields>(fields)[1];
    std::chrono::seconds wait{};
    if (!limits->sign_in.Allow("ip:" + ctx.remote_address, &wait) ||
        !limits->sign_in.Allow(EmailKey(email), &wait)) {
      return TooMany(wait, "sign-in attempts");
    }
    auto grant = accounts.SignIn(email, password);
    if (!grant.ok()) return Fail(grant.status(), ctx);
    return http::JsonResponse(bhttp::status::created,
                              json{{"token", grant->token}, {"expires_at", FormatRfc3339(grant->expires_at)}}.dump());
  });

  router.Add(bhttp::verb::delete_, "/api/v1/sessions/current", Exec::kWorker, [&accounts](Context& ctx) -> Response {
    Status s = accounts.SignOut(BearerToken(ctx));
    if (!s.ok()) return Fail(s, ctx);
    return Response{bhttp::status::no_content, 11};
  });

  router.Add(
      bhttp::verb::get, "/api/v1/account", Exec::kWorker,
      authed([&accounts](Context& ctx, const std::string& account) -> Response {
        auto view = accounts.GetAccount(account);
        if (!view.ok()) return Fail(view.status(), ctx);
        return AccountResponse(bhttp::status::ok, *view);
      }),
      // The hot read: served from memory on the I/O thread when both the
      // session and the account are cached.
      [&accounts](Context& ctx) -> std::optional<Response> {
        auto account = accounts.CachedAuthenticate(BearerToken(ctx));
        if (!account) return std::nullopt;
        auto view = accounts.CachedAccount(*account);
        if (!view) return std::nullopt;
        return AccountResponse(bhttp::status::ok, *view);
      });

  router.Add(bhttp::verb::delete_, "/api/v1/account", Exec::kWorker,
             authed([&accounts, on_deleted](Context& ctx, const std::string& account) -> Response {
               auto fields = BodyFields(ctx, {"password"});
               if (auto* err = std::get_if<Response>(&fields)) return std::move(*err);
               Status s = accounts.DeleteAccount(account, std::get<Fields>(fields)[0]);
               if (!s.ok()) return Fail(s, ctx);
               // The account is gone (nobody can reach what it held); a
               // failure here leaves unreachable records, which the log names.
               if (on_deleted) {
                 if (Status h = on_deleted(account); !h.ok()) {
                   log::Error("accounts", "removing a deleted account's records failed",
                              {{"account", account}, {"error", h.ToString()}});
                 }
               }
               return Response{bhttp::status::no_content, 11};
             }));

  router.Add(bhttp::verb::post, "/api/v1/account/emails", Exec::kWorker,
             authed([&accounts, limits](Context& ctx, const std::string& account) -> Response {
               auto fields = BodyFields(ctx, {"address"});
               if (auto* err = std::get_if<Response>(&fields)) return std::move(*err);
               std::chrono::seconds wait{};
               if (!limits->mail.Allow("account:" + account, &wait)) return TooMany(wait, "verification messages");
               auto added = accounts.AddEmail(account, std::get<Fields>(fields)[0]);
               if (!added.ok()) return Fail(added.status(), ctx);
               auto view = accounts.GetAccount(account);
               if (!view.ok()) return Fail(view.status(), ctx);
               return AccountResponse(*added ? bhttp::status::created : bhttp::status::ok, *view);
             }));

  router.Add(bhttp::verb::post, "/api/v1/account/emails/verify", Exec::kWorker,
             [&accounts, limits](Context& ctx) -> Response {
               // The emailed token is proof enough; a bearer token, when sent,
               // must be valid and the emailed token must be its account's.
               std::string account;
               if (!ctx.request[bhttp::field::authorization].empty()) {
                 auto a = accounts.Authenticate(BearerToken(ctx));
                 if (!a.ok()) return Fail(a.status(), ctx);
                 account = *a;
               }
               std::chrono::seconds wait{};
               if (!limits->token_attempts.Allow(ctx.remote_address, &wait)) return TooMany(wait, "attempts");
               auto fields = BodyFields(ctx, {"token"});
               if (auto* err = std::get_if<Response>(&fields)) return std::move(*err);
               auto view = accounts.VerifyEmail(std::get<Fields>(fields)[0], account);
               if (!view.ok()) return Fail(view.status(), ctx);
               return AccountResponse(bhttp::status::ok, *view);
             });

  router.Add(bhttp::verb::post, "/api/v1/account/emails/primary", Exec::kWorker,
             authed([&accounts](Context& ctx, const std::string& account) -> Response {
               auto fields = BodyFields(ctx, {"address"});
               if (auto* err = std::get_if<Response>(&fields)) return std::move(*err);
               auto view = accounts.SetPrimaryEmail(account, std::get<Fields>(fields)[0]);
               if (!view.ok()) return Fail(view.status(), ctx);
               return AccountResponse(bhttp::status::ok, *view);
             }));

  router.Add(bhttp::verb::delete_, "/api/v1/account/emails/{address}", Exec::kWorker,
             authed([&accounts](Context& ctx, const std::string& account) -> Response {
               auto view = accounts.RemoveEmail(account, ctx.params.at(0));
               if (!view.ok()) return Fail(view.status(), ctx);
               return AccountResponse(bhttp::status::ok, *view);
             }));

  router.Add(bhttp::verb::post, "/api/v1/password-reset", Exec::kWorker, [&accounts, limits](Context& ctx) -> Response {
    auto fields = BodyFields(ctx, {"email"});
    if (auto* err = std::get_if<Response>(&fields)) return std::move(*err);
    const std::string& email = std::get<Fields>(fields)[0];
    std::chrono::seconds wait{};
    if (!limits->mail.Allow("ip:" + ctx.remote_address, &wait) ||
        !limits->mail.Allow(EmailKey(email), &wait)) {
      return TooMany(wait, "reset requests");
    }
    Status s = accounts.RequestPasswordReset(email);
    if (!s.ok()) return Fail(s, ctx);
    return http::JsonResponse(
        bhttp::status::accepted,
        json{{"message", "if this address belongs to an account, a reset message is on its way"}}.dump());
  });

  router.Add(bhttp::verb::post, "/api/v1/password-reset/confirm", Exec::kWorker,
             [&accounts, limits](Context& ctx) -> Response {
               std::chrono::seconds wait{};
               if (!limits->token_attempts.Allow(ctx.remote_address, &wait)) return TooMany(wait, "attempts");
               auto fields = BodyFields(ctx, {"token", "password"});
               if (auto* err = std::get_if<Response>(&fields)) return std::move(*err);
               Status s = accounts.ResetPassword(std::get<Fields>(fields)[0], std::get<Fields>(fields)[1]);
               if (!s.ok()) return Fail(s, ctx);
               return Response{bhttp::status::no_content, 11};
             });
}

}  // namespace backpack
