#include "config/config.h"

#include <toml++/toml.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace backpack::config {
namespace {

// ---------------------------------------------------------------------------
// The key table. Every configurable field has exactly one KeySpec; both the
// TOML walk in ParseConfig and the range checks in Validate read it, so a
// value from the file and a value set in code or by a flag pass the same
// checks. A field missing here is rejected as an unknown key, which the test
// over deploy/backpackd.example.toml (listing every key) catches.
// ---------------------------------------------------------------------------

// Access to one field of Config. Plain function pointers (from captureless
// lambdas) keep the table constexpr.
template <typename T>
struct FieldRef {
  T& (*mutable_field)(Config&);
  const T& (*field)(const Config&);
};

using StringList = std::vector<std::string>;
using AnyFieldRef = std::variant<FieldRef<std::string>, FieldRef<int>, FieldRef<bool>, FieldRef<StringList>>;

struct KeySpec {
  std::string_view name;
  AnyFieldRef ref;
  // Inclusive bounds of an integer key; unused (0) for other types.
  int64_t min = 0;
  int64_t max = 0;
};

struct TableSpec {
  std::string_view name;
  std::span<const KeySpec> keys;
};

// FieldRef for config.*kTable.*kField.
template <auto kTable, auto kField>
constexpr auto RefTo() {
  using T = std::remove_cvref_t<decltype((std::declval<Config&>().*kTable).*kField)>;
  return FieldRef<T>{[](Config& c) -> T& { return (c.*kTable).*kField; },
                     [](const Config& c) -> const T& { return (c.*kTable).*kField; }};
}

template <auto kTable, auto kField>
constexpr KeySpec Str(std::string_view name) {
  static_assert(std::is_same_v<decltype(RefTo<kTable, kField>()), FieldRef<std::string>>);
  return {name, RefTo<kTable, kField>()};
}

template <auto kTable, auto kField>
constexpr KeySpec Int(std::string_view name, int64_t min, int64_t max) {
  static_assert(std::is_same_v<decltype(RefTo<kTable, kField>()), FieldRef<int>>);
  return {name, RefTo<kTable, kField>(), min, max};
}

template <auto kTable, auto kField>
constexpr KeySpec StrList(std::string_view name) {
  static_assert(std::is_same_v<decltype(RefTo<kTable, kField>()), FieldRef<StringList>>);
  return {name, RefTo<kTable, kField>()};
}

template <auto kTable, auto kField>
constexpr KeySpec Bool(std::string_view name) {
  static_assert(std::is_same_v<decltype(RefTo<kTable, kField>()), FieldRef<bool>>);
  return {name, RefTo<kTable, kField>()};
}

constexpr auto kServer = &Config::server;
constexpr auto kStorage = &Config::storage;
constexpr auto kAccounts = &Config::accounts;
constexpr auto kMail = &Config::mail;
constexpr auto kFetch = &Config::fetch;
constexpr auto kBadges = &Config::badges;
constexpr auto kOAuth = &Config::oauth;
constexpr auto kFederation = &Config::federation;
constexpr auto kAdmin = &Config::admin;
constexpr auto kLog = &Config::log;

// Ranges not spelled out in config.h are chosen here: wide enough for any
// sane deployment, narrow enough that a typo (a missing "000", a value in
// seconds where milliseconds are meant) or a zero that would disable a limit
// fails at start-up instead of in production.
constexpr int64_t kHourMs = 3600 * 1000;

constexpr KeySpec kServerKeys[] = {
    Str<kServer, &ServerConfig::listen>("listen"),
    Str<kServer, &ServerConfig::public_url>("public_url"),
    Str<kServer, &ServerConfig::node_name>("node_name"),
    Str<kServer, &ServerConfig::terms_of_service_url>("terms_of_service_url"),
    Str<kServer, &ServerConfig::privacy_policy_url>("privacy_policy_url"),
    Int<kServer, &ServerConfig::io_threads>("io_threads", 1, 64),
    Int<kServer, &ServerConfig::worker_threads>("worker_threads", 1, 256),
    Int<kServer, &ServerConfig::max_connections>("max_connections", 1, 1000000),
    Int<kServer, &ServerConfig::max_header_bytes>("max_header_bytes", 1024, 1048576),
    Int<kServer, &ServerConfig::max_body_bytes>("max_body_bytes", 1024, 268435456),
    Int<kServer, &ServerConfig::read_timeout_ms>("read_timeout_ms", 100, kHourMs),
    Int<kServer, &ServerConfig::idle_timeout_ms>("idle_timeout_ms", 100, kHourMs),
    Int<kServer, &ServerConfig::write_timeout_ms>("write_timeout_ms", 100, kHourMs),
    Int<kServer, &ServerConfig::shutdown_grace_ms>("shutdown_grace_ms", 0, kHourMs),
    Int<kServer, &ServerConfig::max_pending_requests>("max_pending_requests", 1, 1000000),
    Str<kServer, &ServerConfig::tls_cert_file>("tls_cert_file"),
    Str<kServer, &ServerConfig::tls_key_file>("tls_key_file"),
    Str<kServer, &ServerConfig::port_file>("port_file"),
};

constexpr KeySpec kStorageKeys[] = {
    Str<kStorage, &StorageConfig::data_dir>("data_dir"),
    Int<kStorage, &StorageConfig::block_cache_mb>("block_cache_mb", 8, 65536),
};

constexpr KeySpec kAccountsKeys[] = {
    Int<kAccounts, &AccountsConfig::session_ttl_hours>("session_ttl_hours", 1, 87600),
    Int<kAccounts, &AccountsConfig::verify_token_ttl_hours>("verify_token_ttl_hours", 1, 8760),
    Int<kAccounts, &AccountsConfig::reset_token_ttl_minutes>("reset_token_ttl_minutes", 5, 10080),
    Int<kAccounts, &AccountsConfig::signup_claim_ttl_hours>("signup_claim_ttl_hours", 1, 8760),
    Int<kAccounts, &AccountsConfig::min_password_length>("min_password_length", 8, 128),
    Int<kAccounts, &AccountsConfig::max_emails_per_account>("max_emails_per_account", 1, 1000),
    Int<kAccounts, &AccountsConfig::scrypt_log2_n>("scrypt_log2_n", 10, 22),
    Int<kAccounts, &AccountsConfig::login_attempts_per_minute>("login_attempts_per_minute", 1,
                                                               10000),
    Int<kAccounts, &AccountsConfig::signups_per_hour>("signups_per_hour", 1, 100000),
    Int<kAccounts, &AccountsConfig::mail_requests_per_hour>("mail_requests_per_hour", 1, 10000),
    Int<kAccounts, &AccountsConfig::cache_entries>("cache_entries", 0, 10000000),
};

constexpr KeySpec kMailKeys[] = {
    Str<kMail, &MailConfig::from>("from"),
    Str<kMail, &MailConfig::smtp_host>("smtp_host"),
    Int<kMail, &MailConfig::smtp_port>("smtp_port", 1, 65535),
    Str<kMail, &MailConfig::smtp_tls>("smtp_tls"),
    Bool<kMail, &MailConfig::smtp_verify_peer>("smtp_verify_peer"),
    Str<kMail, &MailConfig::smtp_ca_file>("smtp_ca_file"),
    Str<kMail, &MailConfig::smtp_username>("smtp_username"),
    Str<kMail, &MailConfig::smtp_password>("smtp_password"),
    Int<kMail, &MailConfig::smtp_timeout_ms>("smtp_timeout_ms", 1000, kHourMs),
    Int<kMail, &MailConfig::retry_max_hours>("retry_max_hours", 1, 8760),
};

constexpr KeySpec kFetchKeys[] = {
    Bool<kFetch, &FetchConfig::allow_private>("allow_private"),
    Int<kFetch, &FetchConfig::timeout_ms>("timeout_ms", 100, 600000),
    Int<kFetch, &FetchConfig::max_bytes>("max_bytes", 1024, 268435456),
    Int<kFetch, &FetchConfig::max_redirects>("max_redirects", 0, 10),
    Int<kFetch, &FetchConfig::cache_entries>("cache_entries", 0, 1000000),
    Str<kFetch, &FetchConfig::ca_file>("ca_file"),
    Int<kFetch, &FetchConfig::default_fresh_seconds>("default_fresh_seconds", 0, 86400),
    Int<kFetch, &FetchConfig::max_fresh_seconds>("max_fresh_seconds", 0, 604800),
};

constexpr KeySpec kBadgesKeys[] = {
    Int<kBadges, &BadgesConfig::max_per_account>("max_per_account", 1, 1000000),
    Int<kBadges, &BadgesConfig::max_collections_per_account>("max_collections_per_account", 1, 100000),
    Int<kBadges, &BadgesConfig::reverify_interval_hours>("reverify_interval_hours", 1, 8760),
    Int<kBadges, &BadgesConfig::retry_min_seconds>("retry_min_seconds", 1, 86400),
    Int<kBadges, &BadgesConfig::retry_max_seconds>("retry_max_seconds", 60, 2592000),
    Int<kBadges, &BadgesConfig::reverify_batch>("reverify_batch", 1, 100000),
    Int<kBadges, &BadgesConfig::imports_per_minute>("imports_per_minute", 1, 1000000),
    Int<kBadges, &BadgesConfig::displayer_lookups_per_minute>("displayer_lookups_per_minute", 1, 100000),
};

constexpr KeySpec kOAuthKeys[] = {
    Int<kOAuth, &OAuthConfig::access_token_ttl_seconds>("access_token_ttl_seconds", 1, 86400),
    Int<kOAuth, &OAuthConfig::refresh_token_ttl_days>("refresh_token_ttl_days", 1, 365),
    Int<kOAuth, &OAuthConfig::code_ttl_seconds>("code_ttl_seconds", 1, 600),
    Int<kOAuth, &OAuthConfig::registrations_per_hour>("registrations_per_hour", 1, 100000),
};

constexpr KeySpec kFederationKeys[] = {
    Str<kFederation, &FederationConfig::node_name>("node_name"),
    Str<kFederation, &FederationConfig::mode>("mode"),
    StrList<kFederation, &FederationConfig::peers>("peers"),
    StrList<kFederation, &FederationConfig::blocked>("blocked"),
    Int<kFederation, &FederationConfig::max_clock_skew_seconds>("max_clock_skew_seconds", 0, 3600),
    Int<kFederation, &FederationConfig::signature_lifetime_seconds>("signature_lifetime_seconds", 10, 3600),
    Int<kFederation, &FederationConfig::page_max_records>("page_max_records", 1, 100000),
    Int<kFederation, &FederationConfig::page_max_bytes>("page_max_bytes", 65536, 268435456),
    Int<kFederation, &FederationConfig::long_poll_seconds>("long_poll_seconds", 0, 300),
    Int<kFederation, &FederationConfig::max_future_version_seconds>("max_future_version_seconds", 0, 86400),
    Int<kFederation, &FederationConfig::pokes_per_minute>("pokes_per_minute", 1, 100000),
    Int<kFederation, &FederationConfig::retry_min_seconds>("retry_min_seconds", 1, 86400),
    Int<kFederation, &FederationConfig::retry_max_seconds>("retry_max_seconds", 1, 86400),
    Int<kFederation, &FederationConfig::breaker_failures>("breaker_failures", 1, 1000),
    Int<kFederation, &FederationConfig::handshakes_per_minute>("handshakes_per_minute", 1, 100000),
    Int<kFederation, &FederationConfig::webfinger_per_minute>("webfinger_per_minute", 1, 100000),
    Int<kFederation, &FederationConfig::inbox_per_minute>("inbox_per_minute", 1, 100000),
};

constexpr KeySpec kAdminKeys[] = {
    Bool<kAdmin, &AdminConfig::allow_remote>("allow_remote"),
};

constexpr KeySpec kLogKeys[] = {
    Str<kLog, &LogConfig::level>("level"),
    Str<kLog, &LogConfig::format>("format"),
};

constexpr TableSpec kTables[] = {
    {"server", kServerKeys}, {"storage", kStorageKeys}, {"accounts", kAccountsKeys},
    {"mail", kMailKeys},     {"fetch", kFetchKeys},     {"badges", kBadgesKeys},
    {"oauth", kOAuthKeys},   {"federation", kFederationKeys}, {"admin", kAdminKeys},
    {"log", kLogKeys},
};

// Longest list a list-valued key takes (federation.peers, federation.blocked).
constexpr size_t kMaxListEntries = 1000;

// Every integer key has a non-empty range that fits in int, so a value that
// passes the range check can be narrowed without loss.
constexpr bool IntRangesFitInt() {
  for (const TableSpec& table : kTables) {
    for (const KeySpec& key : table.keys) {
      if (!std::holds_alternative<FieldRef<int>>(key.ref)) continue;
      if (key.min > key.max || key.min < std::numeric_limits<int>::min() ||
          key.max > std::numeric_limits<int>::max()) {
        return false;
      }
    }
  }
  return true;
}
static_assert(IntRangesFitInt());

// ---------------------------------------------------------------------------
// Messages.
// ---------------------------------------------------------------------------

std::string Dotted(std::string_view table, std::string_view key) {
  std::string out(table);
  out += '.';
  out += key;
  return out;
}

// " (line N)" when toml++ knows where the node came from.
std::string LineSuffix(const toml::source_region& where) {
  if (where.begin.line == 0) return {};
  return " (line " + std::to_string(where.begin.line) + ")";
}

std::string_view TypeName(toml::node_type type) {
  switch (type) {
    case toml::node_type::none: break;
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
  }
  return "nothing";
}

bool InRange(const KeySpec& key, int64_t value) { return value >= key.min && value <= key.max; }

// "<table>.<key>: <value> is out of range <min>..<max>"; shared by the parser
// and Validate so both report the same text.
std::string OutOfRange(std::string_view table, const KeySpec& key, int64_t value) {
  return Dotted(table, key.name) + ": " + std::to_string(value) + " is out of range " +
         std::to_string(key.min) + ".." + std::to_string(key.max);
}

std::string ErrnoText(int error) { return std::generic_category().message(error); }

// ---------------------------------------------------------------------------
// The TOML walk.
// ---------------------------------------------------------------------------

// Visitor over AnyFieldRef: stores `node` into the field, or says why it
// cannot (wrong type, out of range).
class KeyAssigner {
 public:
  KeyAssigner(std::string_view origin, std::string_view table, const KeySpec& key,
              const toml::node& node, Config& config)
      : origin_(origin), table_(table), key_(key), node_(node), config_(config) {}

  Status operator()(const FieldRef<std::string>& ref) const {
    const auto* value = node_.as_string();
    if (value == nullptr) return WrongType("a string");
    ref.mutable_field(config_) = value->get();
    return Status::Ok();
  }

  Status operator()(const FieldRef<int>& ref) const {
    const auto* value = node_.as_integer();
    if (value == nullptr) return WrongType("an integer");
    const int64_t v = value->get();
    if (!InRange(key_, v)) {
      return InvalidArgument(Prefix() + OutOfRange(table_, key_, v) + LineSuffix(node_.source()));
    }
    ref.mutable_field(config_) = static_cast<int>(v);
    return Status::Ok();
  }

  Status operator()(const FieldRef<bool>& ref) const {
    const auto* value = node_.as_boolean();
    if (value == nullptr) return WrongType("a boolean");
    ref.mutable_field(config_) = value->get();
    return Status::Ok();
  }

  Status operator()(const FieldRef<StringList>& ref) const {
    const auto* array = node_.as_array();
    if (array == nullptr) return WrongType("an array of strings");
    if (array->size() > kMaxListEntries) {
      return InvalidArgument(Prefix() + Dotted(table_, key_.name) + ": more than " +
                             std::to_string(kMaxListEntries) + " entries" + LineSuffix(node_.source()));
    }
    StringList values;
    for (const toml::node& element : *array) {
      const auto* value = element.as_string();
      if (value == nullptr) {
        return InvalidArgument(Prefix() + Dotted(table_, key_.name) + ": expected an array of strings, got " +
                               std::string(TypeName(element.type())) + " in it" + LineSuffix(element.source()));
      }
      values.push_back(value->get());
    }
    ref.mutable_field(config_) = std::move(values);
    return Status::Ok();
  }

 private:
  std::string Prefix() const { return std::string(origin_) + ": "; }

  Status WrongType(std::string_view expected) const {
    return InvalidArgument(Prefix() + Dotted(table_, key_.name) + ": expected " +
                           std::string(expected) + ", got " + std::string(TypeName(node_.type())) +
                           LineSuffix(node_.source()));
  }

  std::string_view origin_;
  std::string_view table_;
  const KeySpec& key_;
  const toml::node& node_;
  Config& config_;
};

const TableSpec* FindTable(std::string_view name) {
  for (const TableSpec& table : kTables) {
    if (table.name == name) return &table;
  }
  return nullptr;
}

const KeySpec* FindKey(const TableSpec& table, std::string_view name) {
  for (const KeySpec& key : table.keys) {
    if (key.name == name) return &key;
  }
  return nullptr;
}

Status ApplyTable(const TableSpec& spec, const toml::table& table, std::string_view origin,
                  Config& config) {
  for (const auto& [name, node] : table) {
    const KeySpec* key = FindKey(spec, name.str());
    if (key == nullptr) {
      const std::string_view kind = node.is_table() ? "table" : "key";
      return InvalidArgument(std::string(origin) + ": unknown " + std::string(kind) + " '" +
                             Dotted(spec.name, name.str()) + "'" + LineSuffix(name.source()));
    }
    BP_RETURN_IF_ERROR(std::visit(KeyAssigner(origin, spec.name, *key, node, config), key->ref));
  }
  return Status::Ok();
}

Status ApplyDocument(const toml::table& doc, std::string_view origin, Config& config) {
  for (const auto& [name, node] : doc) {
    const TableSpec* spec = FindTable(name.str());
    if (spec == nullptr) {
      const std::string_view kind = node.is_table() ? "table" : "key";
      return InvalidArgument(std::string(origin) + ": unknown " + std::string(kind) + " '" +
                             std::string(name.str()) + "'" + LineSuffix(name.source()));
    }
    const toml::table* table = node.as_table();
    if (table == nullptr) {
      return InvalidArgument(std::string(origin) + ": " + std::string(name.str()) +
                             ": expected a table, got " + std::string(TypeName(node.type())) +
                             LineSuffix(node.source()));
    }
    BP_RETURN_IF_ERROR(ApplyTable(*spec, *table, origin, config));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// LoadConfig helpers.
// ---------------------------------------------------------------------------

// A config file is a few KiB; the cap keeps a mistaken path such as
// /dev/zero from exhausting memory.
constexpr size_t kMaxConfigFileBytes = 1 << 20;

struct FileCloser {
  // The file is only read, so a failing fclose loses nothing.
  void operator()(std::FILE* file) const { std::fclose(file); }
};

Result<std::string> ReadConfigFile(const std::string& path) {
  const auto fail = [&path](std::string_view why) {
    return InvalidArgument("cannot read config file '" + path + "': " + std::string(why));
  };
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (file == nullptr) return fail(ErrnoText(errno));
  std::string text;
  char buffer[16 * 1024];
  while (true) {
    const size_t n = std::fread(buffer, 1, sizeof(buffer), file.get());
    text.append(buffer, n);
    if (text.size() > kMaxConfigFileBytes) {
      return fail("larger than " + std::to_string(kMaxConfigFileBytes) + " bytes");
    }
    if (n < sizeof(buffer)) {
      if (std::ferror(file.get())) return fail(ErrnoText(errno));
      break;
    }
  }
  return text;
}

bool IsOneOf(std::string_view value, std::initializer_list<std::string_view> allowed) {
  for (std::string_view a : allowed) {
    if (value == a) return true;
  }
  return false;
}

Status CheckOneOf(std::string_view key, std::string_view value,
                  std::initializer_list<std::string_view> allowed) {
  if (IsOneOf(value, allowed)) return Status::Ok();
  std::string list;
  for (std::string_view a : allowed) {
    if (!list.empty()) list += ", ";
    list += a;
  }
  return InvalidArgument(std::string(key) + ": '" + std::string(value) + "' is not one of " + list);
}

bool HasControlOrSpace(std::string_view text) {
  for (unsigned char c : text) {
    if (c <= ' ' || c == 0x7f) return true;
  }
  return false;
}

char LowerAscii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// Text from the config in a message: printable ASCII, shortened.
std::string Shown(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 200)) {
    const auto u = static_cast<unsigned char>(c);
    out += u >= 0x20 && u < 0x7f ? c : '?';
  }
  if (text.size() > 200) out += "...";
  return out;
}

Status CheckNodeName(std::string_view key, std::string_view name) {
  if (!IsNodeName(name)) {
    return InvalidArgument(std::string(key) + ": '" + Shown(name) +
                           "' is not a node name (host[:port] in lower case, without port 80 or 443)");
  }
  return Status::Ok();
}

Status ValidateFederation(const Config& config) {
  const FederationConfig& federation = config.federation;
  BP_RETURN_IF_ERROR(CheckOneOf("federation.mode", federation.mode, {"open", "allowlist"}));
  if (!federation.node_name.empty()) {
    BP_RETURN_IF_ERROR(CheckNodeName("federation.node_name", federation.node_name));
    if (!config.server.public_url.empty()) {
      BP_RETURN_IF_ERROR(FederationNodeName(federation, config.server.public_url).status());
    }
  }
  std::vector<std::string> seen;
  for (const std::string& peer : federation.peers) {
    auto url = ParseBaseUrl(peer);
    if (!url.ok()) return InvalidArgument("federation.peers: " + url.status().message());
    for (const std::string& other : seen) {
      if (other == url->authority) {
        return InvalidArgument("federation.peers: the node " + url->authority + " is listed twice");
      }
    }
    seen.push_back(url->authority);
  }
  for (const std::string& name : federation.blocked) {
    BP_RETURN_IF_ERROR(CheckNodeName("federation.blocked", name));
    for (const std::string& peer : seen) {
      if (peer == name) return InvalidArgument("federation.blocked: " + name + " is also in federation.peers");
    }
  }
  if (federation.retry_min_seconds > federation.retry_max_seconds) {
    return InvalidArgument("federation.retry_min_seconds must not exceed federation.retry_max_seconds");
  }
  return Status::Ok();
}

}  // namespace

Result<Config> ParseConfig(std::string_view toml_text, std::string_view origin) {
  toml::table doc;
  try {
    doc = toml::parse(toml_text, origin);
  } catch (const toml::parse_error& e) {
    const toml::source_position& at = e.source().begin;
    return InvalidArgument(std::string(origin) + ":" + std::to_string(at.line) + ":" +
                           std::to_string(at.column) + ": " + std::string(e.description()));
  }
  Config config;
  BP_RETURN_IF_ERROR(ApplyDocument(doc, origin, config));
  return config;
}

Status Validate(const Config& config) {
  for (const TableSpec& table : kTables) {
    for (const KeySpec& key : table.keys) {
      const auto* ref = std::get_if<FieldRef<int>>(&key.ref);
      if (ref == nullptr) continue;
      const int value = ref->field(config);
      if (!InRange(key, value)) return InvalidArgument(OutOfRange(table.name, key, value));
    }
  }

  if (config.badges.retry_min_seconds > config.badges.retry_max_seconds) {
    return InvalidArgument("badges.retry_min_seconds must not exceed badges.retry_max_seconds");
  }

  const ServerConfig& server = config.server;
  for (const auto& [key, url] : {std::pair<const char*, const std::string*>{"server.terms_of_service_url",
                                                                           &server.terms_of_service_url},
                                 {"server.privacy_policy_url", &server.privacy_policy_url}}) {
    if (!url->empty() && ((!url->starts_with("https://") && !url->starts_with("http://")) ||
                          HasControlOrSpace(*url))) {
      return InvalidArgument(std::string(key) + ": '" + *url + "' must be an http:// or https:// URL");
    }
  }
  if (auto listen = ParseHostPort(server.listen); !listen.ok()) {
    return InvalidArgument("server.listen: " + listen.status().message());
  }
  if (!server.public_url.empty()) {
    const std::string_view url = server.public_url;
    std::string_view rest;
    if (url.starts_with("https://")) {
      rest = url.substr(8);
    } else if (url.starts_with("http://")) {
      rest = url.substr(7);
    } else {
      return InvalidArgument("server.public_url: '" + server.public_url +
                             "' must start with http:// or https://");
    }
    // Links in mail and the node description are built from it, so it must
    // name a host and be usable verbatim.
    if (rest.empty() || rest.front() == '/') {
      return InvalidArgument("server.public_url: '" + server.public_url + "' has no host");
    }
    if (HasControlOrSpace(url)) {
      return InvalidArgument("server.public_url: must not contain spaces or control characters");
    }
  }
  if (server.tls_cert_file.empty() != server.tls_key_file.empty()) {
    return InvalidArgument(server.tls_cert_file.empty()
                               ? "server.tls_cert_file: must be set when server.tls_key_file is"
                               : "server.tls_key_file: must be set when server.tls_cert_file is");
  }

  if (config.storage.data_dir.empty())
    return InvalidArgument("storage.data_dir: must not be empty");

  const MailConfig& mail = config.mail;
  if (mail.from.empty()) return InvalidArgument("mail.from: must not be empty");
  // It becomes a message header; a line break would let it inject headers.
  if (mail.from.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
    return InvalidArgument("mail.from: must not contain CR, LF or NUL");
  }
  BP_RETURN_IF_ERROR(CheckOneOf("mail.smtp_tls", mail.smtp_tls, {"starttls", "tls", "none"}));

  BP_RETURN_IF_ERROR(ValidateFederation(config));

  BP_RETURN_IF_ERROR(CheckOneOf("log.level", config.log.level, {"debug", "info", "warn", "error"}));
  BP_RETURN_IF_ERROR(CheckOneOf("log.format", config.log.format, {"json", "text"}));
  return Status::Ok();
}

Result<Config> LoadConfig(const Flags& flags) {
  Config config;
  if (!flags.config_file.empty()) {
    Result<std::string> text = ReadConfigFile(flags.config_file);
    if (!text.ok()) return text.status();
    Result<Config> parsed = ParseConfig(*text, flags.config_file);
    if (!parsed.ok()) return parsed.status();
    config = std::move(*parsed);
  }

  // Flags are checked as they are applied so that an error names the flag;
  // whatever Validate rejects afterwards then came from the file.
  if (!flags.listen.empty()) {
    if (auto listen = ParseHostPort(flags.listen); !listen.ok()) {
      return InvalidArgument("--listen: " + listen.status().message());
    }
    config.server.listen = flags.listen;
  }
  if (!flags.data_dir.empty()) config.storage.data_dir = flags.data_dir;
  if (!flags.port_file.empty()) config.server.port_file = flags.port_file;
  if (flags.fetch_allow_private) config.fetch.allow_private = true;

  if (Status status = Validate(config); !status.ok()) {
    if (flags.config_file.empty()) return status;
    return InvalidArgument(flags.config_file + ": " + status.message());
  }
  return config;
}

Result<BaseUrl> ParseBaseUrl(std::string_view text) {
  const auto fail = [text](std::string_view why) {
    return InvalidArgument("'" + Shown(text) + "' is not a usable base URL: " + std::string(why));
  };
  if (text.size() > 2048) return fail("it is longer than 2048 bytes");
  for (unsigned char c : text) {
    if (c <= ' ' || c >= 0x7f) return fail("it holds a space, a control character or a non-ASCII byte");
  }
  BaseUrl out;
  std::string_view rest;
  if (text.starts_with("https://")) {
    out.https = true;
    rest = text.substr(8);
  } else if (text.starts_with("http://")) {
    rest = text.substr(7);
  } else {
    return fail("it must start with http:// or https://");
  }
  const size_t end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, end);
  std::string_view path = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  if (path.find_first_of("?#") != std::string_view::npos) return fail("a query or fragment is not allowed");
  if (authority.empty()) return fail("it has no host");
  if (authority.find('@') != std::string_view::npos) return fail("user information is not allowed");

  std::string host;
  std::string_view port;
  if (authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos || close < 3) return fail("the IPv6 literal is not closed or empty");
    for (char c : authority.substr(1, close - 1)) {
      const char l = LowerAscii(c);
      if (!((l >= '0' && l <= '9') || (l >= 'a' && l <= 'f') || l == ':' || l == '.')) {
        return fail("the IPv6 literal holds a character other than hex digits, ':' and '.'");
      }
      host += l;
    }
    host = "[" + host + "]";
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return fail("unexpected characters after the IPv6 literal");
      port = after.substr(1);
      if (port.empty()) return fail("the port is empty");
    }
  } else {
    const size_t colon = authority.find(':');
    const std::string_view name = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return fail("the port is empty");
    }
    if (name.empty()) return fail("it has no host");
    if (name.size() > 253) return fail("the host is longer than 253 bytes");
    if (name.front() == '.' || name.find("..") != std::string_view::npos) return fail("the host has an empty label");
    for (char c : name) {
      const char l = LowerAscii(c);
      if (!((l >= 'a' && l <= 'z') || (l >= '0' && l <= '9') || l == '-' || l == '_' || l == '.')) {
        return fail("the host may hold only letters, digits, '-', '_' and '.'");
      }
      host += l;
    }
  }
  uint32_t port_number = out.https ? 443 : 80;
  if (!port.empty()) {
    const auto [stop, error] = std::from_chars(port.data(), port.data() + port.size(), port_number);
    if (error != std::errc() || stop != port.data() + port.size() || port.size() > 5 || port_number == 0 ||
        port_number > 65535) {
      return fail("the port must be a number 1..65535");
    }
  }
  out.authority = host;
  if (port_number != (out.https ? 443u : 80u)) out.authority += ":" + std::to_string(port_number);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  out.url = (out.https ? "https://" : "http://") + out.authority + std::string(path);
  return out;
}

// What ParseBaseUrl makes of a URL's authority, whichever the scheme (so
// never a default port).
bool IsNodeName(std::string_view name) {
  if (name.empty() || name.size() > 300 || name.find_first_of("/?#") != std::string_view::npos) return false;
  auto http = ParseBaseUrl("http://" + std::string(name));
  auto https = ParseBaseUrl("https://" + std::string(name));
  return http.ok() && https.ok() && http->authority == name && https->authority == name;
}

Result<std::string> FederationNodeName(const FederationConfig& federation, std::string_view public_url) {
  auto base = ParseBaseUrl(public_url);
  if (!base.ok()) return InvalidArgument("server.public_url: " + base.status().message());
  if (federation.node_name.empty()) return base->authority;
  if (federation.node_name != base->authority) {
    return InvalidArgument("federation.node_name: '" + Shown(federation.node_name) +
                           "' is not the authority of the public URL " + base->url + " (" + base->authority +
                           "); peers check the one against the other");
  }
  return federation.node_name;
}

// The returned host has no brackets ("::1" for "[::1]:443"), ready for an
// address parser. Host names are not resolved here.
Result<HostPort> ParseHostPort(std::string_view text) {
  const auto fail = [text](std::string_view why) {
    return InvalidArgument("invalid address '" + std::string(text) + "': " + std::string(why));
  };
  if (text.empty()) return fail("empty (expected HOST:PORT or [IPV6]:PORT)");

  std::string_view host;
  std::string_view port;
  if (text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return fail("missing ']'");
    host = text.substr(1, close - 1);
    const std::string_view rest = text.substr(close + 1);
    if (rest.empty()) return fail("missing port (expected [IPV6]:PORT)");
    if (rest.front() != ':') return fail("expected ':' after ']'");
    port = rest.substr(1);
    if (!host.empty() && host.find(':') == std::string_view::npos) {
      return fail("only an IPv6 address goes in brackets");
    }
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return fail("missing port (expected HOST:PORT)");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return fail("an IPv6 address must be in brackets, as in [::1]:8080");
    }
  }

  if (host.empty()) return fail("empty host");
  // 253 is the longest DNS name; an IPv6 literal with a zone id stays below.
  if (host.size() > 253) return fail("host is too long");
  for (unsigned char c : host) {
    if (c <= ' ' || c == 0x7f || c == '[' || c == ']' || c == '/' || c == '@') {
      return fail("invalid character in host");
    }
  }

  if (port.empty()) return fail("missing port");
  uint32_t value = 0;
  const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (error != std::errc() || end != port.data() + port.size() || value > 65535) {
    return fail("port must be a number 0..65535");
  }

  HostPort out;
  out.host = std::string(host);
  out.port = static_cast<uint16_t>(value);
  return out;
}

}  // namespace backpack::config
