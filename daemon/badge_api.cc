#include "daemon/badge_api.h"

#include <algorithm>
#include <charconv>
#include <functional>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/time.h"
#include "daemon/accounts.h"
#include "daemon/api_util.h"
#include "daemon/badge_input.h"
#include "daemon/badges.h"
#include "daemon/collections.h"
#include "daemon/http.h"
#include "daemon/rate_limiter.h"
#include "protocol/assertion.h"
#include "protocol/encoding.h"

namespace backpack {

using nlohmann::json;
namespace bhttp = http::bhttp;
using http::Context;
using http::Exec;
using http::Response;

namespace {

constexpr std::string_view kExportFormat = "backpackd.account-export";
constexpr int kExportVersion = 1;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json TimeOrNull(int64_t t) { return t == 0 ? json(nullptr) : json(FormatRfc3339(t)); }

json ParsedOrNull(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  return j.is_discarded() ? json(nullptr) : j;
}

// The badge as the list shows it (docs/api.md). The stored badge JSON is
// spliced in verbatim rather than parsed and dumped again.
std::string Summary(const BadgeRecord& r, const std::string* report_json = nullptr) {
  json j = {
      {"id", r.id},
      {"state", std::string(BadgeStateName(r.state))},
      {"status", std::string(BadgeStatusName(r.status))},
      {"status_since", TimeOrNull(r.status_since)},
      {"imported_at", TimeOrNull(r.imported_at)},
      {"checked_at", TimeOrNull(r.checked_at)},
      {"next_check_at", TimeOrNull(r.next_check_at)},
      {"spec_version", r.spec_version},
      {"imported_as", r.input_kind},
      {"source_url", r.source_url.empty() ? json(nullptr) : json(r.source_url)},
      {"image_format", r.image_format.empty() ? json(nullptr) : json(r.image_format)},
      {"recipient", r.recipient},
  };
  std::string out = Dump(j);
  out.pop_back();
  out += ",\"badge\":";
  out += r.badge_json.empty() ? "null" : r.badge_json;
  if (report_json != nullptr) {
    out += ",\"verification\":";
    out += report_json->empty() ? "null" : *report_json;
  }
  out += '}';
  return out;
}

std::string WithReport(const BadgeRecord& r) { return Summary(r, &r.report_json); }

size_t ParseLimit(std::string_view text, size_t fallback) {
  size_t n = 0;
  if (text.empty() || std::from_chars(text.data(), text.data() + text.size(), n).ec != std::errc()) return fallback;
  return n;
}

// ---- Export bundle (docs/export.md) ----------------------------------------------

Result<json> ExportAccount(const std::string& account, AccountService& accounts, BadgeService& badges,
                           CollectionService& collections, int64_t now) {
  auto view = accounts.GetAccount(account);
  if (!view.ok()) return view.status();
  json emails = json::array();
  for (const EmailView& e : view->emails) {
    emails.push_back({{"address", e.address}, {"verified", e.verified}, {"primary", e.primary}});
  }
  json out_badges = json::array();
  std::string cursor;
  do {
    auto page = badges.List(account, std::nullopt, 200, cursor);
    if (!page.ok()) return page.status();
    for (const BadgeRecord& r : page->badges) {
      auto original = badges.GetOriginal(account, r.id);
      if (!original.ok()) return original.status();
      json documents = json::array();
      for (const auto& [url, doc] : original->documents) {
        documents.push_back({{"url", url},
                             {"status", doc.status},
                             {"final_url", doc.final_url.empty() ? json(nullptr) : json(doc.final_url)},
                             {"body_base64url", protocol::Base64UrlEncode(doc.body)}});
      }
      json b = {
          {"id", r.id},
          {"state", std::string(BadgeStateName(r.state))},
          {"status", std::string(BadgeStatusName(r.status))},
          {"imported_at", FormatRfc3339(r.imported_at)},
          {"imported_as", r.input_kind},
          {"source_url", r.source_url.empty() ? json(nullptr) : json(r.source_url)},
          {"recipient", r.recipient},
          {"assertion", {{"form", r.assertion_form}, {"base64url", protocol::Base64UrlEncode(original->assertion)}}},
          {"image", original->image.empty()
                        ? json(nullptr)
                        : json{{"format", r.image_format}, {"base64url", protocol::Base64UrlEncode(original->image)}}},
          {"documents", documents},
          {"badge", ParsedOrNull(r.badge_json)},
      };
      out_badges.push_back(std::move(b));
    }
    cursor = page->next_cursor;
  } while (!cursor.empty());
  auto cols = collections.List(account);
  if (!cols.ok()) return cols.status();
  json out_collections = json::array();
  for (const Collection& c : *cols) {
    out_collections.push_back({{"id", c.id},
                               {"name", c.name},
                               {"description", c.description},
                               {"badges", c.badge_ids},
                               {"public", c.is_public}});
  }
  return json{{"format", kExportFormat},
              {"version", kExportVersion},
              {"exported_at", FormatRfc3339(now)},
              {"account", {{"display_name", view->display_name}, {"emails", emails}}},
              {"badges", out_badges},
              {"collections", out_collections}};
}

// Reads one bundle badge; an error names what is wrong with it.
Result<std::pair<VerifyRequest, ImportOptions>> ReadBundleBadge(const json& b) {
  if (!b.is_object()) return InvalidArgument("a badge entry is not an object");
  VerifyRequest request;
  ImportOptions options;
  const json* assertion = b.contains("assertion") ? &b["assertion"] : nullptr;
  if (assertion == nullptr || !assertion->is_object() || !assertion->contains("base64url") ||
      !(*assertion)["base64url"].is_string()) {
    return InvalidArgument("a badge entry has no assertion.base64url");
  }
  auto bytes = protocol::Base64UrlDecode((*assertion)["base64url"].get<std::string>());
  if (!bytes) return InvalidArgument("a badge's assertion is not base64url");
  request.kind = assertion->value("form", "json") == "jws" ? InputKind::kJws : InputKind::kAssertion;
  request.data = std::move(*bytes);
  if (b.contains("image") && b["image"].is_object()) {
    auto image = protocol::Base64UrlDecode(b["image"].value("base64url", ""));
    if (!image) return InvalidArgument("a badge's image is not base64url");
    if (!image->empty()) {
      // The image carries the assertion; keeping it keeps the baked copy.
      request.kind = InputKind::kImage;
      request.data = std::move(*image);
    }
  }
  if (b.contains("source_url") && b["source_url"].is_string()) request.source_url = b["source_url"];
  if (b.contains("documents") && b["documents"].is_array()) {
    for (const json& d : b["documents"]) {
      if (!d.is_object() || !d.contains("url") || !d["url"].is_string()) continue;
      auto body = protocol::Base64UrlDecode(d.value("body_base64url", ""));
      if (!body) return InvalidArgument("a document body is not base64url");
      protocol::FetchedDocument doc;
      doc.status = d.value("status", 200);
      doc.body = std::move(*body);
      if (d.contains("final_url") && d["final_url"].is_string()) doc.final_url = d["final_url"];
      options.fallback_documents[d["url"].get<std::string>()] = std::move(doc);
    }
  }
  // A hosted badge imported by URL: restore it by that URL, so the hosted
  // copy is what gets kept.
  if (b.value("imported_as", "") == "url" && !request.source_url.empty() && request.kind != InputKind::kImage) {
    request.kind = InputKind::kUrl;
    request.data = request.source_url;
  }
  const std::string state = b.value("state", "accepted");
  options.state = ParseBadgeState(state).value_or(BadgeState::kAccepted);
  options.accept_fallback = true;
  return std::make_pair(std::move(request), std::move(options));
}

// `allow` is asked once per badge (the per-account import rate limit); the
// badges it refuses are listed as deferred, for the client to send again.
Result<json> ImportAccount(const std::string& account, const json& bundle, AccountService& accounts,
                           BadgeService& badges, CollectionService& collections,
                           const std::function<bool()>& allow) {
  if (bundle.value("format", "") != kExportFormat) {
    return InvalidArgument(fmt::format("not an account export: 'format' must be '{}'", kExportFormat));
  }
  if (!bundle.contains("version") || !bundle["version"].is_number_integer() || bundle["version"] != kExportVersion) {
    return InvalidArgument(fmt::format("unsupported export version (this node reads version {})", kExportVersion));
  }
  if (!bundle.contains("badges") || !bundle["badges"].is_array()) return InvalidArgument("'badges' must be an array");
  // Read every entry before changing anything: a malformed bundle changes nothing.
  std::vector<std::pair<std::string, std::pair<VerifyRequest, ImportOptions>>> entries;
  for (const json& b : bundle["badges"]) {
    auto entry = ReadBundleBadge(b);
    if (!entry.ok()) return entry.status();
    entries.emplace_back(b.value("id", ""), std::move(*entry));
  }

  // Addresses the account lacks are added unverified (each gets a
  // verification message); badges to them import once they are verified.
  json added_emails = json::array();
  if (bundle.contains("account") && bundle["account"].is_object() && bundle["account"].contains("emails") &&
      bundle["account"]["emails"].is_array()) {
    for (const json& e : bundle["account"]["emails"]) {
      if (!e.is_object() || !e.contains("address") || !e["address"].is_string()) continue;
      auto added = accounts.AddEmail(account, e["address"].get<std::string>());
      if (added.ok() && *added) added_emails.push_back(e["address"]);
    }
  }

  std::map<std::string, std::string> new_ids;
  int created = 0;
  int existing = 0;
  json refused = json::array();
  json deferred = json::array();
  for (auto& [old_id, entry] : entries) {
    if (!allow()) {
      deferred.push_back(old_id);
      continue;
    }
    auto result = badges.Import(account, entry.first, entry.second);
    if (!result.ok()) {
      refused.push_back({{"id", old_id}, {"error", result.status().message()}});
      continue;
    }
    switch (result->outcome) {
      case ImportResult::Outcome::kCreated:
        ++created;
        new_ids[old_id] = result->record.id;
        break;
      case ImportResult::Outcome::kExisting:
      case ImportResult::Outcome::kReplaced:  // a newer credential of the same identity
        ++existing;
        new_ids[old_id] = result->record.id;
        break;
      case ImportResult::Outcome::kRefused:
        refused.push_back({{"id", old_id}, {"verification", ParsedOrNull(result->report_json)}});
        break;
    }
  }

  int collections_created = 0;
  if (bundle.contains("collections") && bundle["collections"].is_array()) {
    auto have = collections.List(account);
    if (!have.ok()) return have.status();
    for (const json& c : bundle["collections"]) {
      if (!c.is_object() || !c.contains("name") || !c["name"].is_string()) continue;
      const std::string name = c["name"];
      // Importing twice does not duplicate a collection.
      if (std::any_of(have->begin(), have->end(), [&](const Collection& x) { return x.name == name; })) continue;
      CollectionChange change;
      change.name = name;
      if (c.contains("description") && c["description"].is_string()) change.description = c["description"];
      std::vector<std::string> ids;
      if (c.contains("badges") && c["badges"].is_array()) {
        for (const json& id : c["badges"]) {
          if (id.is_string() && new_ids.contains(id.get<std::string>())) ids.push_back(new_ids[id.get<std::string>()]);
        }
      }
      change.badge_ids = std::move(ids);
      change.is_public = c.value("public", false);
      auto made = collections.Create(account, change);
      if (made.ok()) ++collections_created;
    }
  }
  return json{{"badges", {{"created", created}, {"existing", existing}, {"refused", refused}, {"deferred", deferred}}},
              {"collections", {{"created", collections_created}}},
              {"emails", {{"added", added_emails}}}};
}

}  // namespace

void RegisterBadgeRoutes(http::Router& router, AccountService& accounts, BadgeService& badges,
                         CollectionService& collections, const config::BadgesConfig& config) {
  auto imports = std::make_shared<RateLimiter>(config.imports_per_minute, std::chrono::minutes(1));
  auto authed = [&accounts](auto fn) { return api::Authed(accounts, std::move(fn)); };

  router.Add(bhttp::verb::post, "/api/v1/badges", Exec::kWorker,
             authed([&badges, imports](Context& ctx, const std::string& account) -> Response {
               std::chrono::seconds wait{};
               if (!imports->Allow(account, &wait)) return api::TooMany(wait, "imports");
               auto input = api::ReadBadgeInput(ctx);
               if (auto* err = std::get_if<Response>(&input)) return std::move(*err);
               auto result = badges.Import(account, std::get<VerifyRequest>(input));
               if (!result.ok()) return api::Fail(result.status(), ctx);
               if (result->outcome == ImportResult::Outcome::kRefused) return api::VerificationFailed(result->report_json);
               const bool created = result->outcome == ImportResult::Outcome::kCreated;
               // A new badge shows this import's report; one already held, its last.
               Response res = http::JsonResponse(
                   created ? bhttp::status::created : bhttp::status::ok,
                   Summary(result->record, created ? &result->report_json : &result->record.report_json));
               res.set(bhttp::field::location, "/api/v1/badges/" + result->record.id);
               return res;
             }));

  router.Add(bhttp::verb::get, "/api/v1/badges", Exec::kWorker,
             authed([&badges](Context& ctx, const std::string& account) -> Response {
               std::optional<BadgeState> state;
               if (const std::string s = http::QueryParam(ctx.query, "state"); !s.empty()) {
                 state = ParseBadgeState(s);
                 if (!state) {
                   return http::ErrorResponse(bhttp::status::bad_request, "invalid_request",
                                              "state must be pending, accepted or rejected");
                 }
               }
               const size_t limit = std::clamp<size_t>(ParseLimit(http::QueryParam(ctx.query, "limit"), 50), 1, 200);
               auto page = badges.List(account, state, limit, http::QueryParam(ctx.query, "cursor"));
               if (!page.ok()) return api::Fail(page.status(), ctx);
               std::string body = "{\"badges\":[";
               for (size_t i = 0; i < page->badges.size(); ++i) {
                 if (i > 0) body += ',';
                 body += Summary(page->badges[i]);
               }
               body += "],\"next_cursor\":";
               body += page->next_cursor.empty() ? "null" : api::Quote(page->next_cursor);
               body += '}';
               return http::JsonResponse(bhttp::status::ok, std::move(body));
             }));

  router.Add(bhttp::verb::get, "/api/v1/badges/{id}", Exec::kWorker,
             authed([&badges](Context& ctx, const std::string& account) -> Response {
               auto record = badges.Get(account, ctx.params.at(0));
               if (!record.ok()) return api::Fail(record.status(), ctx);
               auto original = badges.GetOriginal(account, record->id);
               if (!original.ok()) return api::Fail(original.status(), ctx);
               json body = json::parse(WithReport(*record));
               json documents = json::array();
               for (const auto& [url, doc] : original->documents) {
                 documents.push_back({{"url", url}, {"status", doc.status}, {"bytes", doc.body.size()}});
               }
               body["original"] = {{"form", record->assertion_form},
                                   {"assertion", original->assertion},
                                   {"documents", documents},
                                   {"image_bytes", original->image.size()}};
               return http::JsonResponse(bhttp::status::ok, Dump(body));
             }));

  router.Add(bhttp::verb::patch, "/api/v1/badges/{id}", Exec::kWorker,
             authed([&badges](Context& ctx, const std::string& account) -> Response {
               auto fields = api::BodyFields(ctx, {"state"});
               if (auto* err = std::get_if<Response>(&fields)) return std::move(*err);
               const auto state = ParseBadgeState(std::get<api::Fields>(fields)[0]);
               if (!state || *state == BadgeState::kPending) {
                 return http::ErrorResponse(bhttp::status::bad_request, "invalid_request",
                                            "state must be accepted or rejected");
               }
               auto record = badges.SetState(account, ctx.params.at(0), *state);
               if (!record.ok()) return api::Fail(record.status(), ctx);
               return http::JsonResponse(bhttp::status::ok, WithReport(*record));
             }));

  router.Add(bhttp::verb::delete_, "/api/v1/badges/{id}", Exec::kWorker,
             authed([&badges](Context& ctx, const std::string& account) -> Response {
               Status s = badges.Delete(account, ctx.params.at(0));
               if (!s.ok()) return api::Fail(s, ctx);
               return Response{bhttp::status::no_content, 11};
             }));

  router.Add(bhttp::verb::post, "/api/v1/badges/{id}/verify", Exec::kWorker,
             authed([&badges](Context& ctx, const std::string& account) -> Response {
               auto record = badges.Recheck(account, ctx.params.at(0));
               if (!record.ok()) return api::Fail(record.status(), ctx);
               return http::JsonResponse(bhttp::status::ok, WithReport(*record));
             }));

  router.Add(bhttp::verb::get, "/api/v1/badges/{id}/baked", Exec::kWorker,
             authed([&badges](Context& ctx, const std::string& account) -> Response {
               auto baked = badges.Baked(account, ctx.params.at(0));
               if (!baked.ok()) return api::Fail(baked.status(), ctx);
               Response res{bhttp::status::ok, 11};
               res.set(bhttp::field::content_type, baked->content_type);
               res.set(bhttp::field::content_disposition,
                       fmt::format("attachment; filename=\"badge-{}.{}\"", ctx.params.at(0),
                                   baked->content_type == "image/png" ? "png" : "svg"));
               res.set("X-Content-Type-Options", "nosniff");
               res.body() = std::move(baked->bytes);
               return res;
             }));

  router.Add(bhttp::verb::get, "/api/v1/account/export", Exec::kWorker,
             authed([&accounts, &badges, &collections](Context& ctx, const std::string& account) -> Response {
               const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count();
               auto bundle = ExportAccount(account, accounts, badges, collections, now);
               if (!bundle.ok()) return api::Fail(bundle.status(), ctx);
               Response res = http::JsonResponse(bhttp::status::ok, Dump(*bundle));
               res.set(bhttp::field::content_disposition, "attachment; filename=\"backpack-export.json\"");
               res.set(bhttp::field::cache_control, "no-store");
               return res;
             }));

  router.Add(bhttp::verb::post, "/api/v1/account/import", Exec::kWorker,
             authed([&accounts, &badges, &collections, imports](Context& ctx, const std::string& account) -> Response {
               std::chrono::seconds wait{};
               if (!imports->Allow(account, &wait)) return api::TooMany(wait, "imports");
               auto body = api::JsonBody(ctx);
               if (auto* err = std::get_if<Response>(&body)) return std::move(*err);
               // Every badge in the bundle counts as an import.
               auto result = ImportAccount(account, std::get<json>(body), accounts, badges, collections,
                                           [&] { return imports->Allow(account); });
               if (!result.ok()) return api::Fail(result.status(), ctx);
               return http::JsonResponse(bhttp::status::ok, Dump(*result));
             }));
}

}  // namespace backpack
