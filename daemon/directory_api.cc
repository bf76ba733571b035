#include "daemon/directory_api.h"

#include <algorithm>
#include <cctype>
#include <memory>
#include <optional>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "daemon/accounts.h"
#include "daemon/api_util.h"
#include "daemon/badge_input.h"
#include "daemon/badges.h"
#include "daemon/earner_federation.h"
#include "daemon/http.h"
#include "daemon/log.h"
#include "daemon/mail.h"
#include "daemon/rate_limiter.h"
#include "protocol/account_record.h"
#include "protocol/email_address.h"

namespace backpack {

using nlohmann::json;
namespace bhttp = http::bhttp;
using http::Context;
using http::Exec;
using http::Response;

namespace {

constexpr char kJrdType[] = "application/jrd+json";
constexpr size_t kMaxListEntries = 100;  // members of "discoverable" or "mirrors" in a request

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json ChoicesJson(const FederationChoices& c) {
  return {{"account", c.account},           {"home", c.home},
          {"discoverable", c.discoverable}, {"mirrors", c.mirrors},
          {"mirror_all", c.mirror_all},     {"mirrored_badges", c.mirrored_badges},
          {"warnings", c.warnings}};
}

Response BadRequest(std::string_view message) {
  return http::ErrorResponse(bhttp::status::bad_request, "invalid_argument", message);
}

// A list of strings in a request body, or the message that says what is wrong.
std::variant<std::vector<std::string>, std::string> StringList(const json& body, const char* name) {
  const json& value = body[name];
  if (!value.is_array()) return fmt::format("'{}' must be an array of strings", name);
  if (value.size() > kMaxListEntries) return fmt::format("'{}' has more than {} entries", name, kMaxListEntries);
  std::vector<std::string> out;
  for (const json& item : value) {
    if (!item.is_string()) return fmt::format("'{}' must be an array of strings", name);
    out.push_back(item.get<std::string>());
  }
  return out;
}

// The change a PUT body asks for. Members the GET answer shows but the
// earner cannot set are accepted and ignored, so a client may send back
// what it read.
std::variant<FederationChoicesChange, Response> ReadChange(const Context& ctx) {
  auto body = api::JsonBody(ctx);
  if (auto* err = std::get_if<Response>(&body)) return std::move(*err);
  const json& j = std::get<json>(body);
  FederationChoicesChange change;
  for (const auto& [name, value] : j.items()) {
    if (name == "discoverable" || name == "mirrors") {
      auto list = StringList(j, name.c_str());
      if (auto* message = std::get_if<std::string>(&list)) return BadRequest(*message);
      (name == "mirrors" ? change.mirrors : change.discoverable) = std::get<std::vector<std::string>>(list);
    } else if (name == "mirror_all") {
      if (!value.is_boolean()) return BadRequest("'mirror_all' must be true or false");
      change.mirror_all = value.get<bool>();
    } else if (name != "account" && name != "home" && name != "mirrored_badges" && name != "warnings") {
      return BadRequest(fmt::format("unknown member '{}'", name.substr(0, 100)));
    }
  }
  return change;
}

// ---- WebFinger -------------------------------------------------------------------

Response WithCors(Response res) {
  res.set(bhttp::field::access_control_allow_origin, "*");
  return res;
}

struct WebFingerQuery {
  std::string resource;
  std::vector<std::string> rels;
};

// The query's parameters, decoded without turning '+' into a space (an
// address may hold a '+'). nullopt when it does not parse or names the
// resource other than once.
std::optional<WebFingerQuery> ReadQuery(std::string_view query) {
  WebFingerQuery out;
  int resources = 0;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    std::string name;
    std::string value;
    if (!http::PercentDecode(pair.substr(0, eq), false, &name)) return std::nullopt;
    if (eq != std::string_view::npos && !http::PercentDecode(pair.substr(eq + 1), false, &value)) return std::nullopt;
    if (name == "resource") {
      ++resources;
      out.resource = std::move(value);
    } else if (name == "rel" && out.rels.size() < 16) {
      out.rels.push_back(std::move(value));
    }
  }
  if (resources != 1) return std::nullopt;
  return out;
}

enum class Resource { kHash, kMalformed, kUnsupported };

// The address hash a resource names: mailto:<address> (RFC 6068; the
// address may be percent-encoded) or urn:backpackd:email-sha256:<hex>.
Resource HashOf(std::string_view resource, std::string* hash) {
  std::string lower(resource.substr(0, std::min<size_t>(resource.size(), 32)));
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower.starts_with("mailto:")) {
    std::string address;
    if (!http::PercentDecode(resource.substr(7), false, &address)) return Resource::kMalformed;
    if (address.find_first_of("?,") != std::string::npos) return Resource::kMalformed;  // headers, several addresses
    auto clean = protocol::CleanEmail(address);
    if (!clean.ok() || *clean != address) return Resource::kMalformed;
    *hash = protocol::EmailHash(*clean);
    return Resource::kHash;
  }
  const std::string_view prefix = kEmailHashUrnPrefix;
  if (lower.starts_with(prefix)) {
    std::string hex(resource.substr(prefix.size()));
    if (hex.size() != 64) return Resource::kMalformed;
    for (char& c : hex) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return Resource::kMalformed;
    }
    *hash = std::move(hex);
    return Resource::kHash;
  }
  const size_t colon = resource.find(':');
  if (colon == std::string_view::npos || colon == 0) return Resource::kMalformed;
  return Resource::kUnsupported;
}

// ---- Inbox ----------------------------------------------------------------------------

// Text from a badge for the earner's message: no control characters, bounded.
std::string Shown(std::string_view text, size_t max) {
  std::string out;
  for (unsigned char c : text) {
    if (out.size() >= max) break;
    out += (c < 0x20 || c == 0x7f) ? ' ' : static_cast<char>(c);
  }
  return out;
}

void TellEarner(mail::Mailer& mailer, const std::string& public_url, const BadgeRecord& r) {
  const json badge = json::parse(r.badge_json, nullptr, false);
  std::string issuer = "an issuer";
  std::string name;
  if (badge.is_object()) {
    if (badge.contains("issuer") && badge["issuer"].is_object() && badge["issuer"].value("name", json()).is_string()) {
      issuer = Shown(badge["issuer"]["name"].get<std::string>(), 200);
    }
    if (badge.value("name", json()).is_string()) name = Shown(badge["name"].get<std::string>(), 200);
  }
  mail::Message m;
  m.to = r.recipient;
  m.subject = "A badge is waiting in your backpack";
  m.text_body = fmt::format(
      "A badge from {} is waiting in your backpack at {}{}.\n\n"
      "It stays pending until you accept or reject it: sign in and look at your pending badges\n"
      "(GET {}/api/v1/badges?state=pending).\n\n"
      "If you do not know this issuer, reject the badge; nothing is shown to anyone until you accept it.\n",
      issuer, public_url, name.empty() ? "" : fmt::format(": \"{}\"", name), public_url);
  if (Status s = mailer.Send(m); !s.ok()) {
    log::Error("federation", "could not queue the message about a delivered badge", {{"error", s.ToString()}});
  }
}

struct Limits {
  explicit Limits(const DirectoryApiOptions& o)
      : webfinger(o.webfinger_per_minute, std::chrono::minutes(1)),
        inbox(o.inbox_per_minute, std::chrono::minutes(1)),
        deliveries(kInboxDeliveriesPerAccountHour, std::chrono::hours(1)),
        mails(kInboxMailsPerAccountHour, std::chrono::hours(1)),
        choices(kChoiceChangesPerMinute, std::chrono::minutes(1)) {}
  RateLimiter webfinger;   // per client address
  RateLimiter inbox;       // per client address
  RateLimiter deliveries;  // per account
  RateLimiter mails;       // per account
  RateLimiter choices;     // per account
};

}  // namespace

void RegisterDirectoryRoutes(http::Router& router, AccountService& accounts, BadgeService& badges,
                             EarnerFederation& earners, mail::Mailer& mailer, const DirectoryApiOptions& options) {
  auto limits = std::make_shared<Limits>(options);
  auto authed = [&accounts](auto fn) { return api::Authed(accounts, std::move(fn)); };

  router.Add(bhttp::verb::get, "/api/v1/account/federation", Exec::kWorker,
             authed([&earners](Context& ctx, const std::string& account) -> Response {
               auto choices = earners.Get(account);
               if (!choices.ok()) return api::Fail(choices.status(), ctx);
               return http::JsonResponse(bhttp::status::ok, Dump(ChoicesJson(*choices)));
             }));

  router.Add(bhttp::verb::put, "/api/v1/account/federation", Exec::kWorker,
             authed([&earners, limits](Context& ctx, const std::string& account) -> Response {
               std::chrono::seconds wait{};
               if (!limits->choices.Allow(account, &wait)) return api::TooMany(wait, "changes");
               auto change = ReadChange(ctx);
               if (auto* err = std::get_if<Response>(&change)) return std::move(*err);
               auto choices = earners.Set(account, std::get<FederationChoicesChange>(change));
               if (!choices.ok()) return api::Fail(choices.status(), ctx);
               return http::JsonResponse(bhttp::status::ok, Dump(ChoicesJson(*choices)));
             }));

  router.Add(bhttp::verb::get, "/.well-known/webfinger", Exec::kWorker, [&earners, limits](Context& ctx) -> Response {
    std::chrono::seconds wait{};
    if (!limits->webfinger.Allow(ctx.remote_address, &wait)) return WithCors(api::TooMany(wait, "look-ups"));
    auto query = ReadQuery(ctx.query);
    if (!query) {
      return WithCors(
          BadRequest("give the resource, once: ?resource=mailto:<address> or "
                     "?resource=urn:backpackd:email-sha256:<hex>"));
    }
    std::string hash;
    switch (HashOf(query->resource, &hash)) {
      case Resource::kMalformed:
        return WithCors(BadRequest("the resource is neither mailto:<address> nor urn:backpackd:email-sha256:<64 hex>"));
      case Resource::kUnsupported:
        return WithCors(
            http::ErrorResponse(bhttp::status::not_found, "not_found", "nothing is known of this resource"));
      case Resource::kHash:
        break;
    }
    auto jrd = earners.Discover(hash, query->resource, query->rels);
    if (!jrd.ok()) return WithCors(api::Fail(jrd.status(), ctx));
    if (!jrd->has_value()) {
      return WithCors(http::ErrorResponse(bhttp::status::not_found, "not_found", "nothing is known of this resource"));
    }
    Response res = http::JsonResponse(bhttp::status::ok, Dump(**jrd));
    res.set(bhttp::field::content_type, kJrdType);
    // An earner who hides an address again is hidden at once.
    res.set(bhttp::field::cache_control, "no-cache");
    return WithCors(std::move(res));
  });

  router.Add(bhttp::verb::post, "/_federation/v1/inbox/{account}", Exec::kWorker,
             [&badges, &earners, &mailer, limits, public_url = options.public_url](Context& ctx) -> Response {
               std::chrono::seconds wait{};
               if (!limits->inbox.Allow(ctx.remote_address, &wait)) return api::TooMany(wait, "deliveries");
               if (ctx.request.body().size() > kMaxInboxBytes) {
                 return http::ErrorResponse(bhttp::status::payload_too_large, "payload_too_large",
                                            fmt::format("a delivery is at most {} bytes", kMaxInboxBytes));
               }
               const std::string& account = ctx.params.at(0);
               auto route = earners.RouteInbox(account);
               if (!route.ok()) return api::Fail(route.status(), ctx);
               switch (route->kind) {
                 case InboxRoute::Kind::kUnknown:
                   return http::ErrorResponse(bhttp::status::not_found, "not_found", "no such account is known here");
                 case InboxRoute::Kind::kRedirect: {
                   Response res =
                       http::JsonResponse(bhttp::status::temporary_redirect, Dump(json{{"location", route->location}}));
                   res.set(bhttp::field::location, route->location);
                   return res;
                 }
                 case InboxRoute::Kind::kLocal:
                   break;
               }
               if (!limits->deliveries.Allow(route->local_id, &wait))
                 return api::TooMany(wait, "deliveries to this account");
               auto input = api::ReadBadgeInput(ctx);
               if (auto* err = std::get_if<Response>(&input)) return std::move(*err);
               ImportOptions import;
               import.state = BadgeState::kPending;
               auto result = badges.Import(route->local_id, std::get<VerifyRequest>(input), import);
               if (!result.ok()) return api::Fail(result.status(), ctx);
               switch (result->outcome) {
                 case ImportResult::Outcome::kRefused:
                   return api::VerificationFailed(result->report_json);
                 case ImportResult::Outcome::kExisting:
                   // Nothing of what the earner did with it is told.
                   return http::JsonResponse(bhttp::status::ok, R"({"status":"already_held"})");
                 case ImportResult::Outcome::kReplaced:
                   return http::JsonResponse(bhttp::status::ok, R"({"status":"replaced"})");
                 case ImportResult::Outcome::kCreated:
                   break;
               }
               log::Info("federation", "badge delivered",
                         {{"req", ctx.request_id}, {"account", route->local_id}, {"badge", result->record.id}});
               if (limits->mails.Allow(route->local_id)) TellEarner(mailer, public_url, result->record);
               const json report = json::parse(result->report_json, nullptr, false);
               return http::JsonResponse(bhttp::status::created,
                                         Dump(json{{"status", "delivered"},
                                                   {"state", "pending"},
                                                   {"verification", report.is_discarded() ? json(nullptr) : report}}));
             });
}

}  // namespace backpack
