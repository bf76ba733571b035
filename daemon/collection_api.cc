#include "daemon/collection_api.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/time.h"
#include "daemon/accounts.h"
#include "daemon/api_util.h"
#include "daemon/badges.h"
#include "daemon/collections.h"
#include "daemon/http.h"
#include "daemon/rate_limiter.h"
#include "daemon/share_page.h"

namespace backpack {

using nlohmann::json;
namespace bhttp = http::bhttp;

namespace {

using api::Fail;
using http::Context;
using http::Response;

constexpr size_t kMaxEmailParameterBytes = 320;

std::string CollectionJson(const Collection& c, const std::string& public_url) {
  json j = {{"id", c.id},
            {"name", c.name},
            {"description", c.description},
            {"badges", c.badge_ids},
            {"public", c.is_public}};
  if (c.is_public && !c.slug.empty()) j["share_url"] = fmt::format("{}/share/{}", public_url, c.slug);
  j["created_at"] = FormatRfc3339(c.created_at);
  j["updated_at"] = FormatRfc3339(c.updated_at);
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// The members of a create or update body, type-checked; `require_name` on create.
std::variant<CollectionChange, Response> ReadChange(const Context& ctx, bool require_name) {
  auto body = api::JsonBody(ctx);
  if (auto* err = std::get_if<Response>(&body)) return std::move(*err);
  const json& j = std::get<json>(body);
  auto bad = [&](std::string message) { return api::Fail(InvalidArgument(std::move(message)), ctx); };
  CollectionChange change;
  if (auto it = j.find("name"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) return bad("field 'name' must be a string");
    change.name = it->get<std::string>();
  } else if (require_name) {
    return bad("field 'name' is required");
  }
  if (auto it = j.find("description"); it != j.end()) {
    if (it->is_null()) {
      change.description = std::string();
    } else if (!it->is_string()) {
      return bad("field 'description' must be a string");
    } else {
      change.description = it->get<std::string>();
    }
  }
  if (auto it = j.find("badges"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return bad("field 'badges' must be an array of badge ids");
    std::vector<std::string> ids;
    ids.reserve(it->size());
    for (const auto& id : *it) {
      if (!id.is_string()) return bad("field 'badges' must be an array of badge ids (strings)");
      ids.push_back(id.get<std::string>());
    }
    change.badge_ids = std::move(ids);
  }
  if (auto it = j.find("public"); it != j.end() && !it->is_null()) {
    if (!it->is_boolean()) return bad("field 'public' must be true or false");
    change.is_public = it->get<bool>();
  }
  return change;
}

struct Acceptance {
  double q = 0;          // 0..1
  int specificity = -1;  // of the range that matched: 2 exact, 1 "type/*", 0 "*/*", -1 none
};

// How much a client accepts `type` ("text/html"), by the most specific media
// range of its Accept header that matches it (RFC 9110 section 12.5.1).
Acceptance Accepts(std::string_view accept, std::string_view type) {
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
  };
  const std::string_view major = type.substr(0, type.find('/'));
  Acceptance best;
  while (!accept.empty()) {
    const size_t comma = accept.find(',');
    const std::string_view item = accept.substr(0, comma);
    accept = comma == std::string_view::npos ? std::string_view{} : accept.substr(comma + 1);
    std::string range(trim(item.substr(0, item.find(';'))));
    for (char& c : range) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    int specificity = -1;
    if (range == type) {
      specificity = 2;
    } else if (range.size() == major.size() + 2 && range.starts_with(major) && range.ends_with("/*")) {
      specificity = 1;
    } else if (range == "*/*") {
      specificity = 0;
    }
    if (specificity < 0 || specificity < best.specificity) continue;
    double q = 1;
    size_t semi = item.find(';');
    while (semi != std::string_view::npos) {
      const size_t next = item.find(';', semi + 1);
      const std::string_view param =
          trim(item.substr(semi + 1, next == std::string_view::npos ? std::string_view::npos : next - semi - 1));
      if (param.size() > 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
        char* end = nullptr;
        const std::string value(param.substr(2));
        q = std::strtod(value.c_str(), &end);
        if (end == value.c_str()) q = 0;
      }
      semi = next;
    }
    best = {std::clamp(q, 0.0, 1.0), specificity};
  }
  if (best.specificity < 0) best.q = 0;
  return best;
}

// JSON when the client prefers it to HTML, or names it while reaching HTML
// only through a wildcard ("application/json, */*"); HTML otherwise, and
// without an Accept header.
bool WantsJson(const Context& ctx) {
  const std::string_view accept = ctx.request[bhttp::field::accept];
  if (accept.empty()) return false;
  Acceptance json_type = Accepts(accept, "application/json");
  const Acceptance ld = Accepts(accept, "application/ld+json");
  if (ld.q > json_type.q || (ld.q == json_type.q && ld.specificity > json_type.specificity)) json_type = ld;
  const Acceptance html = Accepts(accept, "text/html");
  if (json_type.q <= 0) return false;
  if (json_type.q != html.q) return json_type.q > html.q;
  return json_type.specificity > html.specificity;
}

void PublicJsonHeaders(Response& res) {
  res.set(bhttp::field::access_control_allow_origin, "*");
  res.set("X-Content-Type-Options", "nosniff");
}

Response HtmlResponse(bhttp::status status, std::string body) {
  Response res{status, 11};
  res.set(bhttp::field::content_type, "text/html; charset=utf-8");
  res.set("Content-Security-Policy", SharePageCsp());
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Referrer-Policy", "no-referrer");
  res.set("X-Frame-Options", "DENY");
  res.body() = std::move(body);
  return res;
}

// Displayer API answers in the Mozilla backpack's shapes.
Response DisplayerJson(bhttp::status status, const json& body) {
  Response res = http::JsonResponse(status, body.dump(-1, ' ', false, json::error_handler_t::replace));
  PublicJsonHeaders(res);
  res.set(bhttp::field::cache_control, status == bhttp::status::ok ? "public, max-age=60" : "no-store");
  return res;
}

// convert/email answers: like DisplayerJson but never cached and without CORS.
Response LookupJson(bhttp::status status, const json& body) {
  Response res = http::JsonResponse(status, body.dump(-1, ' ', false, json::error_handler_t::replace));
  res.set("X-Content-Type-Options", "nosniff");
  res.set(bhttp::field::cache_control, "no-store");
  return res;
}

Response DisplayerMissing() {
  return DisplayerJson(bhttp::status::not_found, {{"status", "missing"}});
}

SharedBadge ToShared(const BadgeRecord& r) {
  SharedBadge b = SharedBadgeFromJson(r.id, r.badge_json, BadgeStatusName(r.status));
  // An issuer's hash is only worth showing with its salt; otherwise the
  // address the badge was verified for is hashed afresh.
  if (b.recipient.empty() || (b.recipient_hashed && b.recipient_salt.empty() && !r.recipient.empty())) {
    b.recipient = r.recipient;
    b.recipient_hashed = false;
    b.recipient_salt.clear();
  }
  return b;
}

}  // namespace

void RegisterCollectionRoutes(http::Router& router, AccountService& accounts, BadgeService& badges,
                              CollectionService& collections, const config::BadgesConfig& config,
                              const std::string& public_url) {
  using http::Exec;
  auto authed = [&accounts](auto fn) { return api::Authed(accounts, std::move(fn)); };
  auto lookups = std::make_shared<RateLimiter>(config.displayer_lookups_per_minute, std::chrono::minutes(1));
  const std::string base = public_url;

  // --- The owner's API ------------------------------------------------------

  router.Add(bhttp::verb::post, "/api/v1/collections", Exec::kWorker,
             authed([&collections, base](Context& ctx, const std::string& account) -> Response {
               auto change = ReadChange(ctx, true);
               if (auto* err = std::get_if<Response>(&change)) return std::move(*err);
               auto created = collections.Create(account, std::get<CollectionChange>(change));
               if (!created.ok()) return Fail(created.status(), ctx);
               Response res = http::JsonResponse(bhttp::status::created, CollectionJson(*created, base));
               res.set(bhttp::field::location, "/api/v1/collections/" + created->id);
               return res;
             }));

  router.Add(bhttp::verb::get, "/api/v1/collections", Exec::kWorker,
             authed([&collections, base](Context& ctx, const std::string& account) -> Response {
               auto all = collections.List(account);
               if (!all.ok()) return Fail(all.status(), ctx);
               std::string body = "{\"collections\":[";
               for (size_t i = 0; i < all->size(); ++i) {
                 if (i > 0) body += ',';
                 body += CollectionJson((*all)[i], base);
               }
               body += "]}";
               return http::JsonResponse(bhttp::status::ok, std::move(body));
             }));

  router.Add(bhttp::verb::get, "/api/v1/collections/{id}", Exec::kWorker,
             authed([&collections, base](Context& ctx, const std::string& account) -> Response {
               auto c = collections.Get(account, ctx.params.at(0));
               if (!c.ok()) return Fail(c.status(), ctx);
               return http::JsonResponse(bhttp::status::ok, CollectionJson(*c, base));
             }));

  router.Add(bhttp::verb::patch, "/api/v1/collections/{id}", Exec::kWorker,
             authed([&collections, base](Context& ctx, const std::string& account) -> Response {
               auto change = ReadChange(ctx, false);
               if (auto* err = std::get_if<Response>(&change)) return std::move(*err);
               auto c = collections.Update(account, ctx.params.at(0), std::get<CollectionChange>(change));
               if (!c.ok()) return Fail(c.status(), ctx);
               return http::JsonResponse(bhttp::status::ok, CollectionJson(*c, base));
             }));

  router.Add(bhttp::verb::delete_, "/api/v1/collections/{id}", Exec::kWorker,
             authed([&collections](Context& ctx, const std::string& account) -> Response {
               Status s = collections.Delete(account, ctx.params.at(0));
               if (!s.ok()) return Fail(s, ctx);
               return Response{bhttp::status::no_content, 11};
             }));

  // --- Share pages ------------------------------------------------------------

  router.Add(bhttp::verb::get, "/share/{slug}", Exec::kWorker, [&collections, base](Context& ctx) -> Response {
    const bool json_wanted = WantsJson(ctx);
    auto shown = collections.GetPublic(ctx.params.at(0));
    Response res;
    if (!shown.ok()) {
      if (shown.status().code() != StatusCode::kNotFound) {
        res = Fail(shown.status(), ctx);
      } else if (json_wanted) {
        res = Fail(shown.status(), ctx);
        PublicJsonHeaders(res);
      } else {
        res = HtmlResponse(bhttp::status::not_found, RenderNotFoundHtml());
      }
      res.set(bhttp::field::cache_control, "no-store");
    } else {
      SharePage page;
      page.name = shown->collection.name;
      page.description = shown->collection.description;
      page.owner = shown->owner_display_name;
      page.url = fmt::format("{}/share/{}", base, shown->collection.slug);
      for (const auto& r : shown->badges) page.badges.push_back(ToShared(r));
      if (json_wanted) {
        res = http::JsonResponse(bhttp::status::ok, RenderShareJson(page));
        PublicJsonHeaders(res);
      } else {
        res = HtmlResponse(bhttp::status::ok, RenderShareHtml(page));
      }
      res.set(bhttp::field::cache_control, "public, max-age=60");
    }
    res.set(bhttp::field::vary, "Accept");
    return res;
  });

  // --- Mozilla Displayer API --------------------------------------------------

  // No CORS here, unlike the other displayer calls: a web page must not be
  // able to turn visitors' email addresses into account ids from script.
  // LMS plugins call it from their servers.
  router.Add(bhttp::verb::post, "/displayer/convert/email", Exec::kWorker,
             [&accounts, &collections, lookups](Context& ctx) -> Response {
               std::chrono::seconds wait{};
               if (!lookups->Allow(ctx.remote_address, &wait)) return api::TooMany(wait, "email lookups");
               // Mozilla's clients post a form (email=...) or JSON ({"email": ...}).
               std::string email;
               if (api::IsJsonContentType(ctx)) {
                 json body = json::parse(ctx.request.body(), nullptr, false);
                 if (body.is_object() && body.contains("email") && body["email"].is_string()) {
                   email = body["email"].get<std::string>();
                 }
               } else {
                 email = http::QueryParam(ctx.request.body(), "email");
               }
               if (email.empty()) {
                 return LookupJson(bhttp::status::bad_request,
                                      {{"status", "invalid"}, {"error", "missing `email` parameter"}});
               }
               if (email.size() > kMaxEmailParameterBytes) {
                 return LookupJson(bhttp::status::bad_request,
                                      {{"status", "invalid"}, {"error", "the `email` parameter is too long"}});
               }
               // Only an address its owner has verified, and only for an
               // owner who has chosen to show something.
               auto account = accounts.FindVerifiedAccount(email);
               if (!account.ok()) return Fail(account.status(), ctx);
               if (account->has_value()) {
                 auto shown = collections.ListPublic(**account);
                 if (!shown.ok() && shown.status().code() != StatusCode::kNotFound) return Fail(shown.status(), ctx);
                 if (shown.ok() && !shown->empty()) {
                   Response res = LookupJson(bhttp::status::ok,
                                                {{"status", "okay"}, {"email", email}, {"userId", **account}});
                   res.set(bhttp::field::cache_control, "no-store");
                   return res;
                 }
               }
               return LookupJson(
                   bhttp::status::not_found,
                   {{"status", "missing"}, {"error", fmt::format("Could not find a user by the email address `{}`", email)}});
             });

  router.Add(bhttp::verb::get, "/displayer/{userId}/groups.json", Exec::kWorker,
             [&collections](Context& ctx) -> Response {
               const std::string& user = ctx.params.at(0);
               auto shown = collections.ListPublic(user);
               if (!shown.ok()) {
                 if (shown.status().code() == StatusCode::kNotFound) return DisplayerMissing();
                 return Fail(shown.status(), ctx);
               }
               json groups = json::array();
               for (const auto& c : *shown) {
                 groups.push_back({{"groupId", c.id}, {"name", c.name}, {"badges", c.badge_ids.size()}});
               }
               return DisplayerJson(bhttp::status::ok, {{"userId", user}, {"groups", std::move(groups)}});
             });

  router.Add(bhttp::verb::get, "/displayer/{userId}/group/{groupId}", Exec::kWorker,
             [&collections](Context& ctx) -> Response {
               const std::string& user = ctx.params.at(0);
               std::string_view group = ctx.params.at(1);
               if (group.ends_with(".json")) group.remove_suffix(5);
               auto shown = collections.GetPublicById(user, group);
               if (!shown.ok()) {
                 if (shown.status().code() == StatusCode::kNotFound) return DisplayerMissing();
                 return Fail(shown.status(), ctx);
               }
               json list = json::array();
               for (const auto& r : shown->badges) {
                 const SharedBadge b = ToShared(r);
                 json assertion = json::parse(DisplayerAssertionJson(b, r.id), nullptr, false);
                 list.push_back({{"lastValidated", FormatRfc3339(r.checked_at)},
                                 {"assertionType", !b.verification_type.empty() && b.verification_type != "unknown"
                                                       ? b.verification_type
                                                       : (r.assertion_form == "jws" ? "signed" : "hosted")},
                                 {"hostedUrl", r.source_url.empty() ? json(nullptr) : json(r.source_url)},
                                 {"imageUrl", IsHttpUrl(b.image) ? json(b.image) : json(nullptr)},
                                 {"assertion", std::move(assertion)}});
               }
               return DisplayerJson(bhttp::status::ok, {{"userId", user},
                                                        {"groupId", shown->collection.id},
                                                        {"badges", std::move(list)}});
             });
}

}  // namespace backpack
