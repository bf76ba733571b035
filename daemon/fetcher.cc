#include "daemon/fetcher.h"

#include <algorithm>
#include <charconv>
#include <array>
#include <chrono>
#include <exception>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "daemon/log.h"
#include "daemon/lru_cache.h"
#include "daemon/tls_client.h"

namespace backpack {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace ssl = boost::asio::ssl;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

namespace fetch {
namespace {

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsHexDigit(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string LowerCase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = Lower(c);
  return out;
}

// Text from a URL or a server goes into messages and logs: printable ASCII
// only, and short.
std::string Printable(std::string_view text, size_t max = 200) {
  std::string out;
  for (char c : text.substr(0, max)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7f ? c : '?');
  }
  if (text.size() > max) out += "...";
  return out;
}

Status BadUrl(std::string_view text, std::string_view why) {
  return InvalidArgument(fmt::format("fetch: bad URL \"{}\": {}", Printable(text), why));
}

Status CheckCharacters(std::string_view text) {
  if (text.size() > kMaxUrlBytes) {
    return InvalidArgument(fmt::format("fetch: URL is longer than {} bytes", kMaxUrlBytes));
  }
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return BadUrl(text, "it contains a space or control character");
  }
  return {};
}

// RFC 3986 3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
bool IsScheme(std::string_view s) {
  if (s.empty() || !IsAlpha(s[0])) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return IsAlpha(c) || IsDigit(c) || c == '+' || c == '-' || c == '.'; });
}

// Characters a request target may carry as they are (RFC 3986 pchar plus
// '/' and '?'); '%' only as the start of a valid escape.
bool IsTargetChar(char c) {
  if (IsAlpha(c) || IsDigit(c)) return true;
  static constexpr std::string_view kOthers = "-._~!$&'()*+,;=:@/?";
  return kOthers.find(c) != std::string_view::npos;
}

std::string EncodeTarget(std::string_view raw) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    const char c = raw[i];
    const bool escape = c == '%' && i + 2 < raw.size() && IsHexDigit(raw[i + 1]) && IsHexDigit(raw[i + 2]);
    if (escape || IsTargetChar(c)) {
      out.push_back(c);
      continue;
    }
    const auto u = static_cast<unsigned char>(c);
    out.push_back('%');
    out.push_back(kHex[u >> 4]);
    out.push_back(kHex[u & 15]);
  }
  return out;
}

// RFC 3986 5.2.4, for a path that starts with '/'.
std::string RemoveDotSegments(std::string_view path) {
  std::string out;
  const auto pop_segment = [&out] {
    const size_t slash = out.rfind('/');
    out.erase(slash == std::string::npos ? 0 : slash);
  };
  while (!path.empty()) {
    if (path.starts_with("../")) {
      path.remove_prefix(3);
    } else if (path.starts_with("./")) {
      path.remove_prefix(2);
    } else if (path.starts_with("/./")) {
      path.remove_prefix(2);
    } else if (path == "/.") {
      path = "/";
    } else if (path.starts_with("/../")) {
      path.remove_prefix(3);
      pop_segment();
    } else if (path == "/..") {
      path = "/";
      pop_segment();
    } else if (path == "." || path == "..") {
      path = {};
    } else {
      const size_t end = path.find('/', path[0] == '/' ? 1 : 0);
      const size_t n = end == std::string_view::npos ? path.size() : end;
      out.append(path.substr(0, n));
      path.remove_prefix(n);
    }
  }
  return out.empty() ? "/" : out;
}

// `path_and_query` has no fragment; an empty path becomes "/".
std::string MakeTarget(std::string_view path_and_query) {
  const size_t question = path_and_query.find('?');
  std::string_view path = path_and_query.substr(0, question);
  const std::string_view query =
      question == std::string_view::npos ? std::string_view() : path_and_query.substr(question);
  if (path.empty()) path = "/";
  return EncodeTarget(RemoveDotSegments(path)) + EncodeTarget(query);
}

// Four decimal parts 0..255 without leading zeros: the one IPv4 form every
// resolver reads the same way.
bool IsDottedQuad(std::string_view host) {
  int parts = 0;
  while (true) {
    const size_t dot = host.find('.');
    const std::string_view part = host.substr(0, dot);
    if (part.empty() || part.size() > 3 || !std::all_of(part.begin(), part.end(), IsDigit)) return false;
    if (part.size() > 1 && part[0] == '0') return false;
    if (std::stoi(std::string(part)) > 255) return false;
    ++parts;
    if (dot == std::string_view::npos) break;
    host.remove_prefix(dot + 1);
  }
  return parts == 4;
}

Status ParseHostName(std::string_view text, std::string_view host_text, std::string* host) {
  if (host_text.empty()) return BadUrl(text, "the host is empty");
  if (host_text.size() > 253) return BadUrl(text, "the host name is longer than 253 bytes");
  *host = LowerCase(host_text);
  for (char c : *host) {
    if (!(IsAlpha(c) || IsDigit(c) || c == '-' || c == '_' || c == '.')) {
      return BadUrl(text,
                    "the host name may hold only letters, digits, '-', '_' and '.' "
                    "(international names in their xn-- form)");
    }
  }
  std::string_view rest = *host;
  std::string_view last_label;
  while (true) {
    const size_t dot = rest.find('.');
    const std::string_view label = rest.substr(0, dot);
    if (label.empty()) return BadUrl(text, "the host name has an empty label");
    if (label.size() > 63) return BadUrl(text, "a label of the host name is longer than 63 bytes");
    last_label = label;
    if (dot == std::string_view::npos) break;
    rest.remove_prefix(dot + 1);
  }
  // A numeric last label makes the host an IPv4 address to URL parsers and
  // resolvers, which disagree on forms such as "127.1" or "0x7f.1".
  const bool numeric = std::all_of(last_label.begin(), last_label.end(), IsDigit) || last_label.starts_with("0x");
  if (numeric && !IsDottedQuad(*host)) {
    return BadUrl(text, "an IPv4 address must be four decimal numbers 0..255 (a.b.c.d)");
  }
  return {};
}

Result<Url> ParseAuthorityAndRest(std::string_view text, bool https, std::string_view rest) {
  const size_t authority_end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, authority_end);
  const std::string_view tail =
      authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) {
    return BadUrl(text, "user information ('@' before the host) is not allowed");
  }
  if (authority.find('\\') != std::string_view::npos) return BadUrl(text, "the host contains '\\'");

  Url url;
  url.https = https;
  url.port = https ? 443 : 80;
  std::string_view port_text;
  bool has_port = false;
  if (authority.starts_with('[')) {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return BadUrl(text, "the IPv6 literal has no ']'");
    const std::string_view literal = authority.substr(1, close - 1);
    if (literal.find('%') != std::string_view::npos) return BadUrl(text, "IPv6 zone identifiers are not allowed");
    error_code ec;
    const net::ip::address_v6 v6 = net::ip::make_address_v6(std::string(literal), ec);
    if (ec) return BadUrl(text, "the IPv6 literal is not valid");
    url.host = v6.to_string();
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return BadUrl(text, "unexpected characters after the IPv6 literal");
      port_text = after.substr(1);
      has_port = true;
    }
  } else {
    const size_t colon = authority.find(':');
    BP_RETURN_IF_ERROR(ParseHostName(text, authority.substr(0, colon), &url.host));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      has_port = true;
    }
  }
  if (has_port) {
    if (port_text.empty() || port_text.size() > 5 || !std::all_of(port_text.begin(), port_text.end(), IsDigit)) {
      return BadUrl(text, "the port must be a number 1..65535");
    }
    const int port = std::stoi(std::string(port_text));
    if (port < 1 || port > 65535) return BadUrl(text, "the port must be a number 1..65535");
    url.port = static_cast<uint16_t>(port);
  }
  url.target = MakeTarget(tail.substr(0, tail.find('#')));
  return url;
}

struct V4Range {
  uint32_t prefix;
  int bits;
  std::string_view name;
};

// IANA IPv4 Special-Purpose Address Registry (RFC 6890 and updates), plus
// multicast and the reserved class E. Earlier entries win.
constexpr V4Range kV4Ranges[] = {
    {0x00000000, 32, "unspecified 0.0.0.0"},
    {0x00000000, 8, "\"this network\" 0.0.0.0/8"},
    {0x0A000000, 8, "private 10.0.0.0/8"},
    {0x64400000, 10, "shared address space (CGNAT) 100.64.0.0/10"},
    {0x7F000000, 8, "loopback 127.0.0.0/8"},
    {0xA9FE0000, 16, "link-local 169.254.0.0/16"},
    {0xAC100000, 12, "private 172.16.0.0/12"},
    {0xC0000000, 24, "IETF protocol assignments 192.0.0.0/24"},
    {0xC0000200, 24, "documentation 192.0.2.0/24"},
    {0xC0586300, 24, "6to4 relay anycast 192.88.99.0/24"},
    {0xC0A80000, 16, "private 192.168.0.0/16"},
    {0xC6120000, 15, "benchmarking 198.18.0.0/15"},
    {0xC6336400, 24, "documentation 198.51.100.0/24"},
    {0xCB007100, 24, "documentation 203.0.113.0/24"},
    {0xE0000000, 4, "multicast 224.0.0.0/4"},
    {0xFFFFFFFF, 32, "broadcast 255.255.255.255"},
    {0xF0000000, 4, "reserved 240.0.0.0/4"},
};

struct V6Range {
  std::array<uint8_t, 16> prefix;
  int bits;
  std::string_view name;
};

// IANA IPv6 Special-Purpose Address Registry, the non-unicast blocks, and
// the blocks that embed an IPv4 address (judged by that address instead).
// Anything outside 2000::/3 that is not listed is refused too: it is not
// global unicast.
constexpr V6Range kV6Ranges[] = {
    {{}, 128, "unspecified ::"},
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, "loopback ::1"},
    {{0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48, "local-use NAT64 64:ff9b:1::/48"},
    {{}, 96, "IPv4-compatible (deprecated) ::/96"},
    {{0x01, 0x00}, 64, "discard-only 100::/64"},
    {{0x20, 0x01, 0x00, 0x00}, 32, "Teredo 2001::/32"},
    {{0x20, 0x01, 0x00, 0x02, 0x00, 0x00}, 48, "benchmarking 2001:2::/48"},
    {{0x20, 0x01, 0x00, 0x10}, 28, "ORCHID (deprecated) 2001:10::/28"},
    {{0x20, 0x01, 0x0d, 0xb8}, 32, "documentation 2001:db8::/32"},
    {{0x3f, 0xff}, 20, "documentation 3fff::/20"},
    {{0xfc}, 7, "private (unique local) fc00::/7"},
    {{0xfe, 0x80}, 10, "link-local fe80::/10"},
    {{0xfe, 0xc0}, 10, "site-local (deprecated) fec0::/10"},
    {{0xff}, 8, "multicast ff00::/8"},
};

bool InPrefix(const std::array<uint8_t, 16>& bytes, const std::array<uint8_t, 16>& prefix, int bits) {
  for (int i = 0; bits > 0; ++i, bits -= 8) {
    const uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((bytes[static_cast<size_t>(i)] & mask) != (prefix[static_cast<size_t>(i)] & mask)) return false;
  }
  return true;
}

std::optional<std::string_view> NonPublicV4(const net::ip::address_v4& address) {
  const uint32_t value = address.to_uint();
  for (const V4Range& range : kV4Ranges) {
    const uint32_t mask = range.bits == 0 ? 0 : ~uint32_t{0} << (32 - range.bits);
    if ((value & mask) == range.prefix) return range.name;
  }
  return std::nullopt;
}

net::ip::address_v4 V4At(const std::array<uint8_t, 16>& bytes, size_t offset) {
  return net::ip::address_v4(
      net::ip::address_v4::bytes_type{bytes[offset], bytes[offset + 1], bytes[offset + 2], bytes[offset + 3]});
}

std::optional<std::string_view> NonPublicV6(const net::ip::address_v6& address) {
  const net::ip::address_v6::bytes_type raw = address.to_bytes();
  std::array<uint8_t, 16> bytes{};
  std::copy(raw.begin(), raw.end(), bytes.begin());
  static constexpr std::array<uint8_t, 16> kMapped = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  static constexpr std::array<uint8_t, 16> kNat64 = {0x00, 0x64, 0xff, 0x9b};
  static constexpr std::array<uint8_t, 16> k6to4 = {0x20, 0x02};
  if (InPrefix(bytes, kMapped, 96) || InPrefix(bytes, kNat64, 96)) return NonPublicV4(V4At(bytes, 12));
  if (InPrefix(bytes, k6to4, 16)) return NonPublicV4(V4At(bytes, 2));
  for (const V6Range& range : kV6Ranges) {
    if (InPrefix(bytes, range.prefix, range.bits)) return range.name;
  }
  static constexpr std::array<uint8_t, 16> kGlobalUnicast = {0x20};
  if (!InPrefix(bytes, kGlobalUnicast, 3)) return "not global unicast (outside 2000::/3)";
  return std::nullopt;
}

}  // namespace

std::string Url::Authority() const {
  std::string out = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != (https ? 443 : 80)) out += fmt::format(":{}", port);
  return out;
}

std::string Url::ToString() const { return (https ? "https://" : "http://") + Authority() + target; }

Result<Url> ParseUrl(std::string_view text) {
  BP_RETURN_IF_ERROR(CheckCharacters(text));
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos || !IsScheme(text.substr(0, colon))) {
    return BadUrl(text, "not an absolute URL");
  }
  const std::string scheme = LowerCase(text.substr(0, colon));
  if (scheme != "http" && scheme != "https") {
    return InvalidArgument(
        fmt::format("fetch: URL scheme \"{}\" is not supported (http and https only)", Printable(scheme)));
  }
  const std::string_view rest = text.substr(colon + 1);
  if (!rest.starts_with("//")) return BadUrl(text, "expected \"//\" and a host after the scheme");
  return ParseAuthorityAndRest(text, scheme == "https", rest.substr(2));
}

Result<Url> ResolveReference(const Url& base, std::string_view reference) {
  BP_RETURN_IF_ERROR(CheckCharacters(reference));
  const size_t delimiter = reference.find_first_of(":/?#");
  if (delimiter != std::string_view::npos && reference[delimiter] == ':' && IsScheme(reference.substr(0, delimiter))) {
    return ParseUrl(reference);
  }
  if (reference.starts_with("//")) {
    return ParseAuthorityAndRest(reference, base.https, reference.substr(2));
  }
  reference = reference.substr(0, reference.find('#'));
  Url url = base;
  if (reference.empty()) return url;
  if (reference[0] == '/') {
    url.target = MakeTarget(reference);
  } else if (reference[0] == '?') {
    url.target = MakeTarget(std::string(base.target.substr(0, base.target.find('?'))) + std::string(reference));
  } else {
    // Merge (RFC 3986 5.2.3): the base path up to its last '/', then the reference.
    const std::string_view base_path = std::string_view(base.target).substr(0, base.target.find('?'));
    url.target = MakeTarget(std::string(base_path.substr(0, base_path.rfind('/') + 1)) + std::string(reference));
  }
  return url;
}

std::optional<std::string_view> NonPublicRange(const net::ip::address& address) {
  if (address.is_v4()) return NonPublicV4(address.to_v4());
  return NonPublicV6(address.to_v6());
}

int HttpStatusOf(const Status& fetch_error) {
  if (fetch_error.code() == StatusCode::kNotFound) return 404;
  constexpr std::string_view kAnswered = " answered ";
  const std::string_view message = fetch_error.message();
  const size_t at = message.rfind(kAnswered);
  if (at == std::string_view::npos) return 0;
  const std::string_view digits = message.substr(at + kAnswered.size());
  int value = 0;
  if (digits.size() != 3 || std::from_chars(digits.data(), digits.data() + 3, value).ec != std::errc()) return 0;
  return value >= 100 ? value : 0;
}

AddressPolicy DefaultAddressPolicy(bool allow_private) {
  return [allow_private](const net::ip::address& address, std::string_view host) -> Status {
    if (allow_private) return {};
    const std::optional<std::string_view> range = NonPublicRange(address);
    if (!range) return {};
    return PermissionDenied(fmt::format("fetch: address {} of host {} is not public: {} (fetch.allow_private is off)",
                                        address.to_string(), Printable(host), *range));
  };
}

std::optional<int64_t> ParseHttpDate(std::string_view text) {
  // "Sun, 06 Nov 1994 08:49:37 GMT"
  static constexpr std::string_view kWeekdays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (text.size() != 29 || text.substr(3, 2) != ", " || text[7] != ' ' || text[11] != ' ' || text[16] != ' ' ||
      text[19] != ':' || text[22] != ':' || text.substr(25) != " GMT") {
    return std::nullopt;
  }
  const auto number = [text](size_t pos, size_t digits) {
    int value = 0;
    for (char c : text.substr(pos, digits)) {
      if (!IsDigit(c)) return -1;
      value = value * 10 + (c - '0');
    }
    return value;
  };
  const auto index_of = [](std::string_view name, const auto& names) {
    const auto it = std::find(std::begin(names), std::end(names), name);
    return it == std::end(names) ? -1 : static_cast<int>(it - std::begin(names));
  };
  const int weekday = index_of(text.substr(0, 3), kWeekdays);
  const int month = index_of(text.substr(8, 3), kMonths);
  const int day = number(5, 2);
  const int year = number(12, 4);
  const int hour = number(17, 2);
  const int minute = number(20, 2);
  const int second = number(23, 2);
  // Second 60 is a leap second, which the grammar allows.
  if (weekday < 0 || month < 0 || day < 0 || year < 0 || hour < 0 || hour > 23 || minute < 0 || minute > 59 ||
      second < 0 || second > 60) {
    return std::nullopt;
  }
  const std::chrono::year_month_day date{std::chrono::year(year), std::chrono::month(static_cast<unsigned>(month + 1)),
                                         std::chrono::day(static_cast<unsigned>(day))};
  if (!date.ok()) return std::nullopt;
  const std::chrono::sys_days days(date);
  if (std::chrono::weekday(days).c_encoding() != static_cast<unsigned>(weekday)) return std::nullopt;
  return int64_t{days.time_since_epoch().count()} * 86400 + hour * 3600 + minute * 60 + second;
}

}  // namespace fetch

namespace {

constexpr auto kAwait = net::as_tuple(net::use_awaitable);
constexpr std::string_view kUserAgent = "backpackd/" BACKPACK_VERSION;
// Interim (1xx) responses skipped before the real one; more is hostile.
constexpr int kMaxInterimResponses = 8;

#define BP_CO_RETURN_IF_ERROR(expr)                   \
  do {                                                \
    ::backpack::Status bp_co_status_ = (expr);        \
    if (!bp_co_status_.ok()) co_return bp_co_status_; \
  } while (0)

// RFC 9111 1.2.2: delta-seconds too large to represent are read as 2^31.
constexpr int64_t kMaxDeltaSeconds = int64_t{1} << 31;

std::optional<int64_t> ParseDeltaSeconds(std::string_view text) {
  if (text.empty()) return std::nullopt;
  int64_t value = 0;
  for (char c : text) {
    if (!fetch::IsDigit(c)) return std::nullopt;
    value = std::min(value * 10 + (c - '0'), kMaxDeltaSeconds);
  }
  return value;
}

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

std::string_view Trim(std::string_view text) {
  while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
  return text;
}

// What a response says about storing and reusing it (RFC 9111 4.2, 5).
struct CachePolicy {
  bool no_store = false;  // Cache-Control: no-store, or Vary: * (never matches a request)
  bool no_cache = false;
  std::optional<int64_t> max_age;  // seconds, the smallest given; 0 when malformed
  bool has_expires = false;
  int64_t expires_lifetime = 0;  // Expires minus Date in seconds; 0 when either is unusable
  int64_t age = 0;               // the Age header: how long upstream caches held it

  // The freshness lifetime the response gives itself, or nullopt when it
  // gives none.
  std::optional<int64_t> ExplicitLifetime() const {
    if (no_cache) return 0;
    if (max_age) return *max_age;
    if (has_expires) return expires_lifetime;
    return std::nullopt;
  }

  // Adds the directives of one Cache-Control field value: a comma-separated
  // list of `name[=token or quoted-string]`. Unknown directives are ignored.
  void AddCacheControl(std::string_view value) {
    size_t i = 0;
    while (i < value.size()) {
      if (value[i] == ',' || IsSpace(value[i])) {
        ++i;
        continue;
      }
      const size_t name_start = i;
      while (i < value.size() && value[i] != '=' && value[i] != ',' && !IsSpace(value[i])) ++i;
      const std::string name = fetch::LowerCase(value.substr(name_start, i - name_start));
      bool malformed = false;
      std::optional<std::string> argument;
      if (i < value.size() && value[i] == '=') {
        ++i;
        argument.emplace();
        if (i < value.size() && value[i] == '"') {
          bool closed = false;
          for (++i; i < value.size() && !closed;) {
            const char c = value[i++];
            if (c == '"') {
              closed = true;
            } else if (c == '\\' && i < value.size()) {
              argument->push_back(value[i++]);
            } else {
              argument->push_back(c);
            }
          }
          malformed = !closed;
        } else {
          while (i < value.size() && value[i] != ',' && !IsSpace(value[i])) argument->push_back(value[i++]);
        }
      }
      // Anything but spaces before the next comma makes the directive malformed.
      for (; i < value.size() && value[i] != ','; ++i) malformed = malformed || !IsSpace(value[i]);

      if (name == "no-store") {
        no_store = true;
      } else if (name == "no-cache") {
        // With field names too: we keep no headers it could be about, so
        // treat it as the unqualified form.
        no_cache = true;
      } else if (name == "max-age") {
        // RFC 9111 4.2.1: malformed freshness information means stale.
        const std::optional<int64_t> seconds = argument && !malformed ? ParseDeltaSeconds(*argument) : std::nullopt;
        max_age = std::min(max_age.value_or(kMaxDeltaSeconds), seconds.value_or(0));
      }
    }
  }

  // Reads Expires against Date; an invalid or repeated Expires, or a
  // missing or invalid Date, makes the response stale on arrival.
  void SetExpires(size_t expires_fields, std::string_view expires, std::string_view date) {
    has_expires = expires_fields > 0;
    if (!has_expires) return;
    const std::optional<int64_t> expires_at = expires_fields == 1 ? fetch::ParseHttpDate(expires) : std::nullopt;
    const std::optional<int64_t> date_at = fetch::ParseHttpDate(date);
    expires_lifetime = expires_at && date_at ? std::max<int64_t>(0, *expires_at - *date_at) : 0;
  }

  // The first member of the Age field; an invalid one is ignored (RFC 9111 5.1).
  void SetAge(std::string_view value) { age = ParseDeltaSeconds(Trim(value.substr(0, value.find(',')))).value_or(0); }

  void AddVary(std::string_view value) {
    while (!value.empty()) {
      const size_t comma = value.find(',');
      if (Trim(value.substr(0, comma)) == "*") no_store = true;
      if (comma == std::string_view::npos) break;
      value.remove_prefix(comma + 1);
    }
  }
};

// A 200 response kept in the cache. Immutable once stored: a renewal
// stores a new one (sharing the body).
struct CachedResponse {
  std::string url;                     // the URL that answered; the validators belong to it
  std::vector<std::string> redirects;  // from the cache key to `url`; empty when they are the same
  std::string accept;                  // the Accept header of the request it answered
  int status = 0;
  std::string content_type;
  std::shared_ptr<const std::string> body;
  std::string etag;
  std::string last_modified;
  int64_t lifetime = 0;           // seconds, capped; what a 304 that says nothing renews
  Clock::time_point fresh_until;  // may answer without a request before this

  bool HasValidators() const { return !etag.empty() || !last_modified.empty(); }
};

// What one hop answered. The body is read only for statuses that return it.
struct HopResponse {
  int status = 0;
  std::string content_type;
  std::string content_encoding;
  std::string etag;
  std::string last_modified;
  std::string location;
  CachePolicy cache;
  std::string body;
};

bool IsRedirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

bool ReturnsBody(int status) { return (status >= 200 && status < 300) || status == 410; }

// What all calls of one Fetcher share.
struct FetcherState {
  FetcherState(const config::FetchConfig& config_in, AddressPolicy policy_in, FreshnessClock clock_in)
      : config(config_in),
        policy(std::move(policy_in)),
        clock(clock_in ? std::move(clock_in) : FreshnessClock([] { return Clock::now(); })),
        max_fresh_seconds(std::max(0, config_in.max_fresh_seconds)),
        default_fresh_seconds(std::clamp<int64_t>(config_in.default_fresh_seconds, 0, max_fresh_seconds)),
        cache(static_cast<size_t>(std::max(0, config_in.cache_entries))) {
    init = SetUpClientTls(tls, config.ca_file, "fetch");
  }

  // The entry for `url` if it may answer a request with `accept`, else null.
  std::shared_ptr<const CachedResponse> Lookup(const std::string& url, const std::string& accept) {
    std::optional<std::shared_ptr<const CachedResponse>> entry = cache.Get(url);
    if (!entry || (*entry)->accept != accept) return nullptr;
    return std::move(*entry);
  }

  // Whether `entry` may answer without a request a call that has followed
  // `redirects_so_far` redirects and accepts at most `max_bytes`.
  bool MayAnswer(const CachedResponse& entry, size_t redirects_so_far, size_t max_bytes) const {
    return clock() < entry.fresh_until && entry.body->size() <= max_bytes &&
           redirects_so_far + entry.redirects.size() <= static_cast<size_t>(std::max(0, config.max_redirects));
  }

  // The freshness lifetime of `response`, capped; `fallback` when it gives
  // itself none.
  int64_t Lifetime(const CachePolicy& response, int64_t fallback) const {
    return std::min(response.ExplicitLifetime().value_or(fallback), max_fresh_seconds);
  }

  static Clock::time_point FreshUntil(Clock::time_point received, int64_t lifetime, int64_t age) {
    return received + std::chrono::seconds(std::max<int64_t>(0, lifetime - age));
  }

  const config::FetchConfig config;
  const AddressPolicy policy;
  const FreshnessClock clock;
  const int64_t max_fresh_seconds;
  const int64_t default_fresh_seconds;  // at most max_fresh_seconds
  // Shared by all calls: OpenSSL makes connections from one SSL_CTX
  // concurrently, and nothing changes it after construction.
  std::optional<ssl::context> tls;
  Status init;
  LruCache<std::shared_ptr<const CachedResponse>> cache;
};

// Fills `result` from a cached response; `result->redirects` already holds
// the redirects followed before reaching its key.
void AnswerFromCache(const CachedResponse& entry, FetchResult* result) {
  result->final_url = entry.url;
  result->status = entry.status;
  result->content_type = entry.content_type;
  result->body = *entry.body;
  result->etag = entry.etag;
  result->last_modified = entry.last_modified;
  result->from_cache = true;
  result->redirects.insert(result->redirects.end(), entry.redirects.begin(), entry.redirects.end());
}

// One call of Fetcher::Fetch: all its hops run as one coroutine on a private
// io_context driven by the calling thread. Every socket operation carries
// the call's deadline (beast::tcp_stream::expires_at), so the call returns
// within it except while getaddrinfo runs.
class FetchCall {
 public:
  FetchCall(FetcherState& fetcher, const FetchRequest& request, size_t max_bytes, Clock::time_point deadline)
      : fetcher_(fetcher), request_(request), max_bytes_(max_bytes), deadline_(deadline) {}

  Result<FetchResult> Run(const fetch::Url& url) {
    Status status = Internal("fetch: the fetch did not finish");
    net::co_spawn(io_, Follow(url), [&status](std::exception_ptr error, Status result) {
      if (error) {
        try {
          std::rethrow_exception(error);
        } catch (const std::exception& e) {
          result = Internal(fmt::format("fetch: {}", e.what()));
        }
      }
      status = std::move(result);
    });
    io_.run();
    if (!status.ok()) return status;
    return std::move(result_);
  }

 private:
  net::awaitable<Status> Follow(fetch::Url url) {
    std::vector<std::string> visited;
    // Until when every redirect followed so far stays fresh; nullopt once
    // one of them said no-store.
    std::optional<Clock::time_point> chain_fresh_until = Clock::time_point::max();
    for (;;) {
      const std::string url_text = url.ToString();
      visited.push_back(url_text);
      const std::shared_ptr<const CachedResponse> cached = fetcher_.Lookup(url_text, request_.accept);
      if (cached != nullptr && request_.reuse_fresh &&
          fetcher_.MayAnswer(*cached, result_.redirects.size(), max_bytes_)) {
        AnswerFromCache(*cached, &result_);
        CacheOutcome(visited, *cached, chain_fresh_until);
        co_return Status::Ok();
      }
      // Validators only of a response from this very URL, and never for a
      // body this call could not return.
      const CachedResponse* validators =
          cached != nullptr && cached->url == url_text && cached->HasValidators() && cached->body->size() <= max_bytes_
              ? cached.get()
              : nullptr;
      HopResponse response;
      BP_CO_RETURN_IF_ERROR(co_await Hop(url, validators, &response));
      const Clock::time_point received = fetcher_.clock();
      const int status = response.status;

      if (IsRedirect(status)) {
        if (response.location.empty()) {
          co_return FailedPrecondition(fmt::format("fetch: {} answered {} without a Location", url_text, status));
        }
        Result<fetch::Url> next = fetch::ResolveReference(url, response.location);
        if (!next.ok()) {
          co_return FailedPrecondition(
              fmt::format("fetch: {} redirects to an unusable location: {}", url_text, next.status().message()));
        }
        const std::string next_text = next->ToString();
        if (url.https && !next->https) {
          co_return PermissionDenied(
              fmt::format("fetch: {} redirects from https to http ({}); refused", url_text, next_text));
        }
        if (std::find(visited.begin(), visited.end(), next_text) != visited.end()) {
          co_return FailedPrecondition(
              fmt::format("fetch: redirect loop: {} redirects back to {}", url_text, next_text));
        }
        if (result_.redirects.size() >= static_cast<size_t>(std::max(0, fetcher_.config.max_redirects))) {
          co_return FailedPrecondition(fmt::format("fetch: more than {} redirects from {} (fetch.max_redirects)",
                                                   fetcher_.config.max_redirects, request_.url));
        }
        if (response.cache.no_store) {
          chain_fresh_until.reset();
        } else if (chain_fresh_until) {
          // RFC 9111 4.2.2: only permanent redirects get a heuristic lifetime.
          const bool permanent = status == 301 || status == 308;
          const int64_t lifetime = fetcher_.Lifetime(response.cache, permanent ? fetcher_.default_fresh_seconds : 0);
          chain_fresh_until =
              std::min(*chain_fresh_until, FetcherState::FreshUntil(received, lifetime, response.cache.age));
        }
        result_.redirects.push_back(url_text);
        url = std::move(*next);
        continue;
      }

      result_.final_url = url_text;
      if (status == 304) {
        if (validators == nullptr) {
          co_return Unavailable(fmt::format("fetch: {} answered 304 to an unconditional request", url_text));
        }
        auto renewed = std::make_shared<CachedResponse>(*validators);
        // RFC 9111 4.3.4: validators sent with a 304 replace the stored ones.
        if (!response.etag.empty()) renewed->etag = response.etag;
        if (!response.last_modified.empty()) renewed->last_modified = response.last_modified;
        renewed->lifetime = fetcher_.Lifetime(response.cache, validators->lifetime);
        renewed->fresh_until = FetcherState::FreshUntil(received, renewed->lifetime, response.cache.age);
        AnswerFromCache(*renewed, &result_);
        if (response.cache.no_store) {
          fetcher_.cache.Erase(url_text);
          chain_fresh_until.reset();
        } else {
          fetcher_.cache.Put(url_text, renewed);
        }
        CacheOutcome(visited, *renewed, chain_fresh_until);
        co_return Status::Ok();
      }
      if (ReturnsBody(status)) {
        if (!response.content_encoding.empty() && fetch::LowerCase(response.content_encoding) != "identity") {
          co_return FailedPrecondition(fmt::format("fetch: {} sent Content-Encoding \"{}\", which was not asked for",
                                                   url_text, fetch::Printable(response.content_encoding)));
        }
        result_.status = status;
        result_.content_type = std::move(response.content_type);
        result_.body = std::move(response.body);
        result_.etag = std::move(response.etag);
        result_.last_modified = std::move(response.last_modified);
        if (status == 200 && !response.cache.no_store && result_.body.size() <= Fetcher::kMaxCachedBodyBytes) {
          auto entry = std::make_shared<CachedResponse>();
          entry->url = url_text;
          entry->accept = request_.accept;
          entry->status = status;
          entry->content_type = result_.content_type;
          entry->body = std::make_shared<const std::string>(result_.body);
          entry->etag = result_.etag;
          entry->last_modified = result_.last_modified;
          entry->lifetime = fetcher_.Lifetime(response.cache, fetcher_.default_fresh_seconds);
          entry->fresh_until = FetcherState::FreshUntil(received, entry->lifetime, response.cache.age);
          // Without validators a stale entry is of no use.
          if (entry->HasValidators() || entry->fresh_until > received) {
            fetcher_.cache.Put(url_text, entry);
            CacheOutcome(visited, *entry, chain_fresh_until);
            co_return Status::Ok();
          }
        }
        Forget(visited);
        co_return Status::Ok();
      }
      Status error = StatusError(url_text, status);
      // A definite answer (such as 404) replaces what the cache held; a
      // passing failure (5xx, 429) leaves it alone.
      if (error.code() != StatusCode::kUnavailable) Forget(visited);
      co_return error;
    }
  }

  // Drops what the cache holds for the URL that answered and, after
  // redirects, for the requested one.
  void Forget(const std::vector<std::string>& visited) {
    fetcher_.cache.Erase(visited.back());
    if (visited.size() > 1) fetcher_.cache.Erase(visited.front());
  }

  // After redirects, also keeps the outcome under the requested URL (with
  // all the redirects that led to it) for as long as the whole chain and
  // `final_entry` stay fresh; otherwise drops what that URL held.
  void CacheOutcome(const std::vector<std::string>& visited, const CachedResponse& final_entry,
                    std::optional<Clock::time_point> chain_fresh_until) {
    if (visited.size() < 2) return;
    if (chain_fresh_until) {
      auto outcome = std::make_shared<CachedResponse>(final_entry);
      outcome->redirects = result_.redirects;
      outcome->fresh_until = std::min(*chain_fresh_until, final_entry.fresh_until);
      if (outcome->fresh_until > fetcher_.clock()) {
        fetcher_.cache.Put(visited.front(), std::move(outcome));
        return;
      }
    }
    fetcher_.cache.Erase(visited.front());
  }

  // Ends in "answered <status>": fetch::HttpStatusOf reads it back.
  static Status StatusError(const std::string& url_text, int status) {
    std::string message = fmt::format("fetch: {} answered {}", url_text, status);
    if (status == 404) return NotFound(std::move(message));
    // Request Timeout and Too Many Requests ask for a later retry.
    if (status == 408 || status == 429 || (status >= 500 && status < 600)) return Unavailable(std::move(message));
    return FailedPrecondition(std::move(message));
  }

  // Resolves, checks every address, connects, and exchanges one request.
  net::awaitable<Status> Hop(const fetch::Url& url, const CachedResponse* validators, HopResponse* out) {
    if (Clock::now() >= deadline_) co_return TimedOut();
    tcp::resolver resolver(io_);
    error_code ec;
    // Blocking, on purpose: getaddrinfo cannot be interrupted, so an
    // asynchronous lookup would not end sooner and costs a thread.
    const tcp::resolver::results_type results =
        resolver.resolve(url.host, std::to_string(url.port), tcp::resolver::numeric_service, ec);
    if (Clock::now() >= deadline_) co_return TimedOut();
    if (ec) co_return Unavailable(fmt::format("fetch: cannot resolve {}: {}", url.host, ec.message()));
    std::vector<tcp::endpoint> endpoints;
    for (const auto& entry : results) {
      BP_CO_RETURN_IF_ERROR(fetcher_.policy(entry.endpoint().address(), url.host));
      endpoints.push_back(entry.endpoint());
    }
    if (endpoints.empty()) co_return Unavailable(fmt::format("fetch: {} has no addresses", url.host));

    beast::tcp_stream tcp_stream(io_);
    tcp_stream.expires_at(deadline_);
    auto [connect_error, endpoint] = co_await tcp_stream.async_connect(endpoints, kAwait);
    if (connect_error) co_return NetworkError(url, "connecting to", connect_error);
    if (!url.https) co_return co_await Exchange(tcp_stream, url, validators, out);

    beast::ssl_stream<beast::tcp_stream> tls_stream(std::move(tcp_stream), *fetcher_.tls);
    std::string certificate_error;
    BP_CO_RETURN_IF_ERROR(SetUpClientTlsStream(tls_stream, url.host, &certificate_error, "fetch"));
    beast::get_lowest_layer(tls_stream).expires_at(deadline_);
    auto [handshake_error] = co_await tls_stream.async_handshake(ssl::stream_base::client, kAwait);
    if (handshake_error) {
      if (!certificate_error.empty()) {
        co_return FailedPrecondition(
            fmt::format("fetch: TLS certificate of {} refused: {}", url.Authority(), certificate_error));
      }
      co_return NetworkError(url, "TLS handshake with", handshake_error);
    }
    co_return co_await Exchange(tls_stream, url, validators, out);
  }

  template <class Stream>
  net::awaitable<Status> Exchange(Stream& stream, const fetch::Url& url, const CachedResponse* validators,
                                  HopResponse* out) {
    bhttp::request<bhttp::empty_body> request{bhttp::verb::get, url.target, 11};
    request.set(bhttp::field::host, url.Authority());
    request.set(bhttp::field::user_agent, kUserAgent);
    request.set(bhttp::field::accept, request_.accept);
    // The body is returned verbatim, so no compression.
    request.set(bhttp::field::accept_encoding, "identity");
    request.set(bhttp::field::connection, "close");
    if (validators != nullptr) {
      if (!validators->etag.empty()) request.set(bhttp::field::if_none_match, validators->etag);
      if (!validators->last_modified.empty()) {
        request.set(bhttp::field::if_modified_since, validators->last_modified);
      }
    }
    beast::get_lowest_layer(stream).expires_at(deadline_);
    auto [write_error, written] = co_await bhttp::async_write(stream, request, kAwait);
    if (write_error) co_return NetworkError(url, "sending to", write_error);

    beast::flat_buffer buffer;
    std::optional<bhttp::response_parser<bhttp::string_body>> parser;
    for (int interim = 0;; ++interim) {
      parser.emplace();
      parser->header_limit(static_cast<uint32_t>(Fetcher::kMaxHeaderBytes));
      parser->body_limit(static_cast<uint64_t>(max_bytes_));
      auto [header_error, header_bytes] = co_await bhttp::async_read_header(stream, buffer, *parser, kAwait);
      if (header_error) co_return ReadError(url, header_error);
      const int status = parser->get().result_int();
      if (status >= 200 || status == 101) break;
      if (interim == kMaxInterimResponses) {
        co_return Unavailable(fmt::format("fetch: {} sent too many interim responses", url.ToString()));
      }
    }

    const auto& header = parser->get();
    out->status = header.result_int();
    const auto field = [&header](bhttp::field name) { return std::string(header[name]); };
    out->content_type = field(bhttp::field::content_type);
    out->content_encoding = field(bhttp::field::content_encoding);
    out->etag = field(bhttp::field::etag);
    out->last_modified = field(bhttp::field::last_modified);
    out->location = field(bhttp::field::location);
    for (auto [it, end] = header.equal_range(bhttp::field::cache_control); it != end; ++it) {
      out->cache.AddCacheControl(it->value());
    }
    for (auto [it, end] = header.equal_range(bhttp::field::vary); it != end; ++it) out->cache.AddVary(it->value());
    out->cache.SetExpires(header.count(bhttp::field::expires), header[bhttp::field::expires],
                          header[bhttp::field::date]);
    if (header.count(bhttp::field::age) > 0) out->cache.SetAge(header[bhttp::field::age]);
    if (!ReturnsBody(out->status)) co_return Status::Ok();

    auto [body_error, body_bytes] = co_await bhttp::async_read(stream, buffer, *parser, kAwait);
    if (body_error) co_return ReadError(url, body_error);
    out->body = std::move(parser->get().body());
    co_return Status::Ok();
  }

  Status ReadError(const fetch::Url& url, const error_code& ec) const {
    if (ec == bhttp::error::body_limit) {
      return ResourceExhausted(fmt::format("fetch: the response from {} is larger than {} bytes (fetch.max_bytes)",
                                           url.ToString(), max_bytes_));
    }
    if (ec == bhttp::error::header_limit) {
      return ResourceExhausted(fmt::format("fetch: the response headers from {} are larger than {} bytes",
                                           url.ToString(), Fetcher::kMaxHeaderBytes));
    }
    if (ec == beast::error::timeout) return TimedOut();
    if (ec.category() == bhttp::make_error_code(bhttp::error::need_more).category() &&
        ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
      return Unavailable(fmt::format("fetch: malformed response from {}: {}", url.ToString(), ec.message()));
    }
    return NetworkError(url, "reading from", ec);
  }

  Status NetworkError(const fetch::Url& url, std::string_view action, const error_code& ec) const {
    if (ec == beast::error::timeout) return TimedOut();
    if (ec == net::error::eof || ec == ssl::error::stream_truncated || ec == bhttp::error::end_of_stream ||
        ec == bhttp::error::partial_message) {
      return Unavailable(fmt::format("fetch: {} closed the connection early", url.Authority()));
    }
    return Unavailable(fmt::format("fetch: {} {} failed: {}", action, url.Authority(), ec.message()));
  }

  Status TimedOut() const {
    return Unavailable(fmt::format("fetch: no complete response for {} within {} ms (fetch.timeout_ms)",
                                   fetch::Printable(request_.url), fetcher_.config.timeout_ms));
  }

  FetcherState& fetcher_;
  const FetchRequest& request_;
  const size_t max_bytes_;
  const Clock::time_point deadline_;
  net::io_context io_{1};
  FetchResult result_;
};

}  // namespace

struct Fetcher::Impl {
  Impl(const config::FetchConfig& config, AddressPolicy policy, FreshnessClock clock)
      : state(config, std::move(policy), std::move(clock)) {}
  FetcherState state;
};

Fetcher::Fetcher(const config::FetchConfig& config)
    : Fetcher(config, fetch::DefaultAddressPolicy(config.allow_private)) {}

Fetcher::Fetcher(const config::FetchConfig& config, AddressPolicy policy)
    : Fetcher(config, std::move(policy), FreshnessClock()) {}

Fetcher::Fetcher(const config::FetchConfig& config, AddressPolicy policy, FreshnessClock clock)
    : impl_(std::make_unique<Impl>(
          config, policy ? std::move(policy) : fetch::DefaultAddressPolicy(config.allow_private), std::move(clock))) {}

Fetcher::~Fetcher() = default;

const Status& Fetcher::init_status() const { return impl_->state.init; }

Result<FetchResult> Fetcher::Fetch(const FetchRequest& request) {
  FetcherState& state = impl_->state;
  if (!state.init.ok()) return state.init;
  Result<fetch::Url> url = fetch::ParseUrl(request.url);
  if (!url.ok()) return url.status();
  size_t max_bytes = static_cast<size_t>(std::max(0, state.config.max_bytes));
  if (request.max_bytes) max_bytes = std::min(max_bytes, *request.max_bytes);
  const Clock::time_point start = Clock::now();
  Result<FetchResult> result = Internal("fetch: not run");
  // The hot path of imports: a fresh entry answers with one cache lookup,
  // before any I/O machinery is set up.
  std::shared_ptr<const CachedResponse> fresh;
  if (request.reuse_fresh) {
    fresh = state.Lookup(url->ToString(), request.accept);
    if (fresh != nullptr && !state.MayAnswer(*fresh, 0, max_bytes)) fresh = nullptr;
  }
  try {
    if (fresh != nullptr) {
      FetchResult cached;
      AnswerFromCache(*fresh, &cached);
      result = std::move(cached);
    } else {
      FetchCall call(state, request, max_bytes, start + std::chrono::milliseconds(state.config.timeout_ms));
      result = call.Run(*url);
    }
  } catch (const std::exception& e) {
    // Asio and OpenSSL report set-up failures (e.g. no memory, no file
    // descriptors) by throwing.
    result = Internal(fmt::format("fetch: {}", e.what()));
  }
  if (log::Enabled(log::Level::kDebug)) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    if (result.ok()) {
      log::Debug("fetch", "fetched",
                 {{"url", result->final_url},
                  {"status", result->status},
                  {"bytes", result->body.size()},
                  {"redirects", result->redirects.size()},
                  {"from_cache", result->from_cache},
                  {"ms", static_cast<int64_t>(ms)}});
    } else {
      log::Debug("fetch", "fetch failed",
                 {{"url", fetch::Printable(request.url)},
                  {"error", result.status().ToString()},
                  {"ms", static_cast<int64_t>(ms)}});
    }
  }
  return result;
}

}  // namespace backpack
