#include "daemon/ctl_deliver.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "daemon/ctl_http.h"
#include "protocol/account_record.h"
#include "protocol/encoding.h"

namespace backpack::ctl {

const char kDeliverUsage[] = "       backpackctl deliver --to EMAIL [--via NODE_URL] FILE\n";

namespace {

using nlohmann::json;

enum Exit { kDelivered = 0, kFailed = 1, kUsage = 2, kNotDiscoverable = 3, kRefused = 4, kLater = 5 };

constexpr size_t kMaxFileBytes = 4 << 20;
constexpr char kRelInbox[] = "https://backpackd.org/rel/inbox";
constexpr char kInboxPath[] = "/_federation/v1/inbox/";

int Usage() {
  std::fprintf(stderr, "usage:\n%s", kDeliverUsage);
  return kUsage;
}

template <class... Args>
int Fail(int code, fmt::format_string<Args...> format, Args&&... args) {
  std::fprintf(stderr, "backpackctl deliver: %s\n", fmt::format(format, std::forward<Args>(args)...).c_str());
  return code;
}

std::string_view Trim(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}


struct Body {
  std::string content_type;
  std::string bytes;
};

// How the file goes to the inbox (see the header); nullopt when it is none of those.
std::optional<Body> BodyOf(const std::string& data) {
  if (data.starts_with("\x89PNG\r\n\x1a\n")) return Body{"image/png", data};
  const std::string_view text = Trim(data);
  if (text.starts_with("<")) return Body{"image/svg+xml", data};
  if (text.starts_with("{")) {
    const json j = json::parse(text, nullptr, false);
    if (!j.is_object()) return std::nullopt;
    const char* member = j.contains("credentialSubject") ? "credential" : "assertion";
    // The issuer's bytes as they are, not a re-serialisation.
    return Body{"application/json", fmt::format("{{\"{}\":{}}}", member, text)};
  }
  if ((text.starts_with("https://") || text.starts_with("http://")) &&
      text.find_first_of(" \t\r\n") == std::string_view::npos) {
    return Body{"application/json", json{{"url", std::string(text)}}.dump()};
  }
  if (protocol::LooksLikeCompactJws(text)) return Body{"application/json", json{{"jws", std::string(text)}}.dump()};
  return std::nullopt;
}

// The domain of an address, lower-cased; "" when it has none.
std::string DomainOf(std::string_view address) {
  const size_t at = address.rfind('@');
  if (at == std::string_view::npos || at + 1 >= address.size()) return {};
  std::string domain(address.substr(at + 1));
  for (char& c : domain) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return domain;
}

struct Target {
  std::string account;
  std::string home;   // node name
  std::string inbox;  // URL
};

// Checks a WebFinger answer for `email` (see the header); the inbox to
// deliver to, or the reason it cannot be trusted.
std::optional<Target> CheckAnswer(const json& jrd, const std::string& email, std::string* why) {
  auto refuse = [&](std::string reason) {
    *why = std::move(reason);
    return std::nullopt;
  };
  if (!jrd.is_object() || !jrd.contains("records") || !jrd["records"].is_object()) {
    return refuse("the answer carries no signed records");
  }
  const json& records = jrd["records"];
  auto directory = protocol::ParseEnvelopeObject(records.value("directory", json()));
  if (!directory.ok()) return refuse("the directory record: " + directory.status().message());
  auto home = protocol::ParseEnvelopeObject(records.value("home", json()));
  if (!home.ok()) return refuse("the home record: " + home.status().message());
  if (directory->type != protocol::RecordType::kDirectory) return refuse("the directory record is not one");
  if (home->type != protocol::RecordType::kHome) return refuse("the home record is not one");
  if (home->account != directory->account) return refuse("the directory and home records name different accounts");
  auto key = protocol::GenesisKey(records.value("genesis", json()), directory->account);
  if (!key.ok()) return refuse(key.status().message());
  const int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  if (auto s = protocol::VerifyEnvelope(*directory, *key, now_ms); !s.ok()) {
    return refuse("the directory record: " + s.message());
  }
  if (auto s = protocol::VerifyEnvelope(*home, *key, now_ms); !s.ok()) return refuse("the home record: " + s.message());
  if (directory->record["email_sha256"] != protocol::EmailHash(email)) {
    return refuse("the directory record names another address");
  }
  if (!directory->record["discoverable"].get<bool>()) return refuse("the directory record says the address is hidden");
  Target target;
  target.account = directory->account;
  target.home = home->record["node"].get<std::string>();
  target.inbox = home->record["url"].get<std::string>() + kInboxPath + target.account;
  if (jrd.contains("links") && jrd["links"].is_array()) {
    for (const json& link : jrd["links"]) {
      if (link.is_object() && link.value("rel", "") == kRelInbox && link.value("href", "") != target.inbox) {
        return refuse("the answer's inbox link is not the inbox of the signed home record");
      }
    }
  }
  return target;
}

// The error message of a JSON error answer, or the start of the body.
std::string ErrorMessage(const HttpResponse& r) {
  const json j = json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_object()) return j["error"].value("message", "");
  return r.body.substr(0, 300);
}

}  // namespace

int Deliver(const std::vector<std::string>& args) {
  std::string to;
  std::string via;
  std::string file;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--to" && i + 1 < args.size()) {
      to = args[++i];
    } else if (args[i] == "--via" && i + 1 < args.size()) {
      via = args[++i];
    } else if (!args[i].starts_with("--") && file.empty()) {
      file = args[i];
    } else {
      return Usage();
    }
  }
  if (to.empty() || file.empty()) return Usage();
  if (via.empty()) {
    const std::string domain = DomainOf(to);
    if (domain.empty()) return Fail(kUsage, "--to {} is not an email address", to);
    via = "https://" + domain;
  }
  while (!via.empty() && via.back() == '/') via.pop_back();
  if (!ParseUrl(via)) return Fail(kUsage, "--via {} is not an http(s) URL", via);

  std::ifstream in(file, std::ios::binary);
  if (!in) return Fail(kFailed, "cannot read {}: {}", file, std::strerror(errno));
  std::string data;
  data.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (data.size() > kMaxFileBytes) return Fail(kFailed, "{} is larger than {} bytes", file, kMaxFileBytes);
  auto body = BodyOf(data);
  if (!body) {
    return Fail(kFailed, "{} is neither a baked PNG or SVG, assertion or credential JSON, a compact JWS nor a URL",
                file);
  }

  // 1. Discovery.
  HttpRequest lookup;
  lookup.url = via + "/.well-known/webfinger?resource=" + protocol::PercentEncode("mailto:" + to);
  lookup.headers = {{"Accept", "application/jrd+json"}};
  lookup.max_body_bytes = 256 << 10;
  HttpResponse answer;
  std::string error;
  if (!Send(lookup, &answer, &error)) return Fail(kFailed, "{}: {}", via, error);
  if (answer.status == 404) return Fail(kNotDiscoverable, "{} knows no discoverable backpack for {}", via, to);
  if (answer.status == 429 || answer.status == 503) {
    return Fail(kLater, "{} is busy; try again in {} s", via, answer.Header("retry-after"));
  }
  if (answer.status != 200) return Fail(kFailed, "{} answered {}: {}", via, answer.status, ErrorMessage(answer));

  // 2. The answer, checked whoever gave it.
  std::string why;
  auto target = CheckAnswer(json::parse(answer.body, nullptr, false), to, &why);
  if (!target) return Fail(kFailed, "the answer of {} does not verify: {}", via, why);
  std::printf("found: %s is discoverable, account %s at home on %s\n", to.c_str(), target->account.c_str(),
              target->home.c_str());

  // 3. Delivery, following one redirect to another inbox.
  HttpRequest post;
  post.method = "POST";
  post.url = target->inbox;
  post.headers = {{"Content-Type", body->content_type}, {"Accept", "application/json"}};
  post.body = body->bytes;
  post.timeout = std::chrono::seconds(60);
  post.max_body_bytes = 1 << 20;
  HttpResponse result;
  for (int redirects = 0;; ++redirects) {
    if (!Send(post, &result, &error)) return Fail(kFailed, "{}: {}", post.url, error);
    if (result.status != 307 && result.status != 308) break;
    const std::string location = result.Header("location");
    auto url = ParseUrl(location);
    if (redirects > 0 || !url || !url->target.ends_with(kInboxPath + target->account)) {
      return Fail(kFailed, "{} redirected to {}, which is not the account's inbox", post.url, location);
    }
    post.url = location;
  }

  const json outcome = json::parse(result.body, nullptr, false);
  switch (result.status) {
    case 201:
      std::printf("delivered: the badge waits, pending, for the earner to accept it (%s)\n", post.url.c_str());
      return kDelivered;
    case 200: {
      const std::string status = outcome.is_object() ? outcome.value("status", "") : "";
      std::printf("%s: %s\n", status == "replaced" ? "replaced" : "already held",
                  status == "replaced" ? "a newer credential replaced the one held" : "the earner holds this badge");
      return kDelivered;
    }
    case 422: {
      std::fprintf(stderr, "backpackctl deliver: refused: %s\n", ErrorMessage(result).c_str());
      // Every error of the report, when there is more than the one above.
      std::vector<std::string> errors;
      if (outcome.is_object() && outcome.contains("verification") && outcome["verification"].is_object()) {
        for (const json& m : outcome["verification"].value("messages", json::array())) {
          if (m.is_object() && m.value("messageLevel", "") == "ERROR") {
            errors.push_back(fmt::format("  {}: {}", m.value("name", ""), m.value("message", "")));
          }
        }
      }
      if (errors.size() > 1) {
        for (const std::string& line : errors) std::fprintf(stderr, "%s\n", line.c_str());
      }
      return kRefused;
    }
    case 429:
    case 503:
      return Fail(kLater, "{} is busy; try again in {} s", post.url, result.Header("retry-after"));
    default:
      return Fail(kFailed, "{} answered {}: {}", post.url, result.status, ErrorMessage(result));
  }
}

}  // namespace backpack::ctl
