#include "daemon/share_page.h"

#include <algorithm>
#include <initializer_list>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/time.h"
#include "protocol/encoding.h"

namespace backpack {

using nlohmann::json;

namespace {

// The page's only stylesheet. The CSP allows it by its SHA-256, so it must
// stay byte-for-byte what is hashed: never interpolate into it.
constexpr std::string_view kStyle =
    "body{margin:0;font-family:'DejaVu Sans',system-ui,sans-serif;line-height:1.5;color:#1d1d1f;"
    "background:#f5f5f7}"
    "main{max-width:60rem;margin:0 auto;padding:1.5rem}"
    "header p{max-width:45rem}"
    ".description{white-space:pre-line}"
    ".owner{color:#4a4a4f}"
    "ul.badges{list-style:none;padding:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(16rem,1fr));"
    "gap:1rem}"
    "ul.badges li{background:#fff;border:1px solid #d2d2d7;border-radius:.5rem;padding:1rem}"
    "ul.badges img{display:block;width:8rem;height:8rem;object-fit:contain;margin:0 auto .5rem}"
    "h3{margin:.25rem 0;font-size:1.1rem}"
    "dl{display:grid;grid-template-columns:auto 1fr;gap:.1rem .75rem;margin:.5rem 0}"
    "dt{font-weight:bold}dd{margin:0;overflow-wrap:anywhere}"
    "a{color:#0645ad}"
    ".status-revoked,.status-invalid,.status-expired{color:#a00}";

const json* Find(const json& j, std::initializer_list<const char*> path) {
  const json* at = &j;
  for (const char* key : path) {
    if (!at->is_object()) return nullptr;
    auto it = at->find(key);
    if (it == at->end()) return nullptr;
    at = &*it;
  }
  return at;
}

// A string member, or the "id"/"url" of an object standing for a URL.
std::string Text(const json* v) {
  if (v == nullptr) return {};
  if (v->is_string()) return v->get<std::string>();
  if (v->is_object()) {
    for (const char* k : {"id", "url", "@id"}) {
      auto it = v->find(k);
      if (it != v->end() && it->is_string()) return it->get<std::string>();
    }
  }
  return {};
}

// The first non-empty string among the paths.
std::string First(const json& j, std::initializer_list<std::initializer_list<const char*>> paths) {
  for (const auto& path : paths) {
    std::string s = Text(Find(j, path));
    if (!s.empty()) return s;
  }
  return {};
}

// A date as RFC 3339: kept when it is a string, formatted from Unix seconds.
std::string Date(const json& j, std::initializer_list<std::initializer_list<const char*>> paths) {
  for (const auto& path : paths) {
    const json* v = Find(j, path);
    if (v == nullptr) continue;
    if (v->is_string() && !v->get<std::string>().empty()) return v->get<std::string>();
    if (v->is_number_integer()) return FormatRfc3339(v->get<int64_t>());
  }
  return {};
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

bool IsImageSource(std::string_view url) {
  return IsHttpUrl(url) || StartsWithNoCase(url, "data:image/");
}

// "scheme://host[:port]" of an http(s) URL, or "".
std::string Origin(std::string_view url) {
  if (!IsHttpUrl(url)) return {};
  const size_t start = url.find("://") + 3;
  const size_t end = url.find_first_of("/?#", start);
  return std::string(url.substr(0, end == std::string_view::npos ? url.size() : end));
}

std::string DisplayDate(std::string_view rfc3339) {
  // "2024-05-01T..." reads as its date; anything else as written.
  if (rfc3339.size() >= 10 && rfc3339[4] == '-' && rfc3339[7] == '-') return std::string(rfc3339.substr(0, 10));
  return std::string(rfc3339);
}

std::string_view StatusText(std::string_view status) {
  if (status == "valid") return "Verified";
  if (status == "revoked") return "Revoked by the issuer";
  if (status == "expired") return "Expired";
  if (status == "invalid") return "No longer verifies";
  if (status == "unverifiable") return "Issuer unreachable at the last check";
  return "Unknown";
}

json OrNull(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

void Meta(std::string& out, std::string_view attr, std::string_view name, std::string_view content) {
  out += fmt::format("<meta {}=\"{}\" content=\"{}\">\n", attr, name, HtmlEscape(content));
}

std::string PageStart(std::string_view title) {
  std::string out;
  out += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  out += "<meta name=\"referrer\" content=\"no-referrer\">\n";
  out += fmt::format("<title>{}</title>\n", HtmlEscape(title));
  return out;
}

void StyleAndBody(std::string& out) {
  out += "<style>";
  out += kStyle;
  out += "</style>\n</head>\n<body>\n";
}

}  // namespace

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

bool IsHttpUrl(std::string_view url) {
  const bool http = StartsWithNoCase(url, "http://");
  const bool https = StartsWithNoCase(url, "https://");
  if (!http && !https) return false;
  const std::string_view rest = url.substr(http ? 7 : 8);
  // A host must follow, and nothing that could break out of an attribute or
  // be read as something else by a lenient parser.
  if (rest.empty() || rest.front() == '/') return false;
  return std::none_of(url.begin(), url.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f || c == '"' || c == '\'' || c == '<' || c == '>' || c == '\\' || c == '`';
  });
}

SharedBadge SharedBadgeFromJson(std::string_view id, std::string_view badge_json, std::string_view status) {
  SharedBadge b;
  b.id = std::string(id);
  b.status = std::string(status);
  const json j = json::parse(badge_json, nullptr, false);
  if (!j.is_object()) return b;
  b.name = First(j, {{"name"}, {"badge", "name"}, {"badge_class", "name"}, {"badgeclass", "name"}});
  b.description = First(j, {{"description"}, {"badge", "description"}, {"badge_class", "description"},
                            {"badgeclass", "description"}});
  b.image = First(j, {{"image"}, {"badge", "image"}, {"badge_class", "image"}, {"badgeclass", "image"}});
  b.issuer_name = First(j, {{"issuer", "name"}, {"badge", "issuer", "name"}, {"badge_class", "issuer", "name"},
                            {"badgeclass", "issuer", "name"}});
  b.issuer_url = First(j, {{"issuer", "url"}, {"badge", "issuer", "url"}, {"badge_class", "issuer", "url"},
                           {"badgeclass", "issuer", "url"}, {"issuer", "origin"}, {"issuer", "id"}});
  b.issuer_email = First(j, {{"issuer", "email"}, {"badge", "issuer", "email"}, {"badge_class", "issuer", "email"}});
  b.issued_on = Date(j, {{"issued_on"}, {"issuedOn"}});
  b.expires = Date(j, {{"expires"}});
  b.criteria_url = First(j, {{"criteria_url"}, {"criteria", "url"}, {"criteria"}, {"badge", "criteria", "url"},
                             {"badge", "criteria"}, {"badge_class", "criteria", "url"}, {"badge_class", "criteria"}});
  b.verification_type = First(j, {{"verification", "type"}});
  if (const json* r = Find(j, {"recipient"}); r != nullptr && r->is_object()) {
    b.recipient = Text(Find(*r, {"identity"}));
    b.recipient_salt = Text(Find(*r, {"salt"}));
    const json* hashed = Find(*r, {"hashed"});
    b.recipient_hashed = hashed != nullptr && hashed->is_boolean() && hashed->get<bool>();
  }
  return b;
}

std::string RenderShareJson(const SharePage& page) {
  json badges = json::array();
  for (const auto& b : page.badges) {
    badges.push_back({{"id", b.id},
                      {"name", b.name},
                      {"description", b.description},
                      {"image", OrNull(b.image)},
                      {"issuer", {{"name", b.issuer_name}, {"url", OrNull(b.issuer_url)}}},
                      {"issued_on", OrNull(b.issued_on)},
                      {"criteria_url", OrNull(b.criteria_url)},
                      {"status", b.status}});
  }
  return json{{"name", page.name},
              {"description", page.description},
              {"owner", page.owner},
              {"url", page.url},
              {"badges", std::move(badges)}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string RenderShareHtml(const SharePage& page) {
  const std::string summary =
      !page.description.empty()
          ? page.description
          : fmt::format("{} badge{}{}", page.badges.size(), page.badges.size() == 1 ? "" : "s",
                        page.owner.empty() ? std::string() : " collected by " + page.owner);
  std::string og_image, og_image_alt;
  for (const auto& b : page.badges) {
    if (IsHttpUrl(b.image)) {
      og_image = b.image;
      og_image_alt = b.name;
      break;
    }
  }

  std::string out = PageStart(page.name);
  Meta(out, "name", "description", summary);
  if (IsHttpUrl(page.url)) out += fmt::format("<link rel=\"canonical\" href=\"{}\">\n", HtmlEscape(page.url));
  Meta(out, "property", "og:type", "website");
  Meta(out, "property", "og:title", page.name);
  Meta(out, "property", "og:description", summary);
  Meta(out, "property", "og:url", page.url);
  if (!og_image.empty()) {
    Meta(out, "property", "og:image", og_image);
    Meta(out, "property", "og:image:alt", og_image_alt);
  }
  Meta(out, "name", "twitter:card", "summary");
  Meta(out, "name", "twitter:title", page.name);
  Meta(out, "name", "twitter:description", summary);
  if (!og_image.empty()) {
    Meta(out, "name", "twitter:image", og_image);
    Meta(out, "name", "twitter:image:alt", og_image_alt);
  }
  StyleAndBody(out);

  out += "<main>\n<header>\n";
  out += fmt::format("<h1>{}</h1>\n", HtmlEscape(page.name));
  if (!page.owner.empty()) out += fmt::format("<p class=\"owner\">Collected by {}</p>\n", HtmlEscape(page.owner));
  if (!page.description.empty()) {
    out += fmt::format("<p class=\"description\">{}</p>\n", HtmlEscape(page.description));
  }
  out += "</header>\n<section aria-labelledby=\"badges-heading\">\n";
  out += fmt::format("<h2 id=\"badges-heading\">Badges ({})</h2>\n", page.badges.size());
  if (page.badges.empty()) {
    out += "<p>There are no badges in this collection yet.</p>\n";
  } else {
    out += "<ul class=\"badges\">\n";
    for (const auto& b : page.badges) {
      const std::string name = b.name.empty() ? "Untitled badge" : b.name;
      out += "<li>\n<article>\n";
      if (IsImageSource(b.image)) {
        out += fmt::format("<img src=\"{}\" alt=\"{}\" width=\"128\" height=\"128\" loading=\"lazy\">\n",
                           HtmlEscape(b.image), HtmlEscape(name));
      }
      out += fmt::format("<h3>{}</h3>\n", HtmlEscape(name));
      if (!b.description.empty()) {
        out += fmt::format("<p class=\"description\">{}</p>\n", HtmlEscape(b.description));
      }
      out += "<dl>\n";
      if (!b.issuer_name.empty() || IsHttpUrl(b.issuer_url)) {
        const std::string issuer = b.issuer_name.empty() ? b.issuer_url : b.issuer_name;
        out += "<dt>Issuer</dt><dd>";
        if (IsHttpUrl(b.issuer_url)) {
          out += fmt::format("<a href=\"{}\" rel=\"nofollow noopener noreferrer\">{}</a>", HtmlEscape(b.issuer_url),
                             HtmlEscape(issuer));
        } else {
          out += HtmlEscape(issuer);
        }
        out += "</dd>\n";
      }
      if (!b.issued_on.empty()) {
        out += fmt::format("<dt>Issued</dt><dd><time datetime=\"{}\">{}</time></dd>\n", HtmlEscape(b.issued_on),
                           HtmlEscape(DisplayDate(b.issued_on)));
      }
      out += fmt::format("<dt>Status</dt><dd class=\"status-{}\">{}</dd>\n", HtmlEscape(b.status),
                         HtmlEscape(StatusText(b.status)));
      out += "</dl>\n";
      if (IsHttpUrl(b.criteria_url)) {
        out += fmt::format("<p><a href=\"{}\" rel=\"nofollow noopener noreferrer\">How it was earned</a></p>\n",
                           HtmlEscape(b.criteria_url));
      }
      out += "</article>\n</li>\n";
    }
    out += "</ul>\n";
  }
  out += "</section>\n</main>\n</body>\n</html>\n";
  return out;
}

std::string RenderNotFoundHtml() {
  std::string out = PageStart("Collection not found");
  Meta(out, "name", "robots", "noindex");
  StyleAndBody(out);
  out +=
      "<main>\n<h1>Collection not found</h1>\n"
      "<p>This link does not lead to a public collection. Its owner may have made the collection "
      "private or deleted it.</p>\n</main>\n</body>\n</html>\n";
  return out;
}

const std::string& SharePageCsp() {
  static const std::string csp = fmt::format(
      "default-src 'none'; img-src https: http: data:; style-src 'sha256-{}'; base-uri 'none'; "
      "form-action 'none'; frame-ancestors 'none'",
      protocol::Base64Encode(protocol::Sha256(kStyle)));
  return csp;
}

std::string DisplayerAssertionJson(const SharedBadge& b, std::string_view salt_if_clear) {
  json assertion = json::object();
  if (b.recipient_hashed && !b.recipient.empty()) {
    assertion["recipient"] = b.recipient;
    if (!b.recipient_salt.empty()) assertion["salt"] = b.recipient_salt;
  } else if (!b.recipient.empty()) {
    assertion["recipient"] = "sha256$" + protocol::Sha256Hex(b.recipient + std::string(salt_if_clear));
    assertion["salt"] = std::string(salt_if_clear);
  }
  if (!b.issued_on.empty()) assertion["issued_on"] = b.issued_on;
  if (!b.expires.empty()) assertion["expires"] = b.expires;
  json issuer = {{"name", b.issuer_name}, {"origin", Origin(b.issuer_url)}, {"org", nullptr}};
  if (!b.issuer_email.empty()) issuer["contact"] = b.issuer_email;
  assertion["badge"] = {{"name", b.name},
                        {"description", b.description},
                        {"image", OrNull(b.image)},
                        {"criteria", OrNull(b.criteria_url)},
                        {"issuer", std::move(issuer)}};
  return assertion.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace backpack
