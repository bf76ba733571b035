// Tests of daemon/fetcher.h: the URL parser and the address classification
// as pure functions, and Fetcher against real HTTP and HTTPS servers that
// each test starts on 127.0.0.1, port 0.
#include "daemon/fetcher.h"

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tests/support/test_http.h"

namespace backpack {
namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr auto kAwait = net::as_tuple(net::use_awaitable);

// ---- Certificates -------------------------------------------------------------

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
using Key = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Cert = std::unique_ptr<X509, X509Free>;

std::string ToPem(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  return pem;
}

std::string ToPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  return pem;
}

// A certificate for `key` valid for a day, signed by `issuer` with
// `issuer_key`, or self-signed when `issuer` is null. A CA when `ca`;
// otherwise a server certificate for `subject_alt_name`
// ("DNS:localhost,IP:127.0.0.1").
Cert MakeCert(EVP_PKEY* key, const std::string& common_name, X509* issuer, EVP_PKEY* issuer_key, bool ca,
              const std::string& subject_alt_name) {
  Cert cert(X509_new());
  unsigned char serial[8];
  bool ok = cert != nullptr && RAND_bytes(serial, sizeof(serial)) == 1;
  uint64_t serial_number = 0;
  for (unsigned char b : serial) serial_number = (serial_number << 8) | b;
  ok = ok && X509_set_version(cert.get(), 2) == 1 &&
       ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert.get()), serial_number >> 1) == 1 &&
       X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr &&
       X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600) != nullptr && X509_set_pubkey(cert.get(), key) == 1;
  X509_NAME* subject = X509_get_subject_name(cert.get());
  ok = ok &&
       X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                                  reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0) == 1 &&
       X509_set_issuer_name(cert.get(), issuer != nullptr ? X509_get_subject_name(issuer) : subject) == 1;
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, issuer != nullptr ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
  std::vector<std::pair<int, std::string>> extensions;
  if (ca) {
    extensions = {{NID_basic_constraints, "critical,CA:TRUE"},
                  {NID_key_usage, "critical,keyCertSign,cRLSign"},
                  {NID_subject_key_identifier, "hash"}};
  } else {
    extensions = {{NID_basic_constraints, "critical,CA:FALSE"},
                  {NID_key_usage, "critical,digitalSignature"},
                  {NID_ext_key_usage, "serverAuth"},
                  {NID_subject_key_identifier, "hash"},
                  {NID_authority_key_identifier, "keyid"},
                  {NID_subject_alt_name, subject_alt_name}};
  }
  for (const auto& [nid, value] : extensions) {
    if (!ok) break;
    X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str());
    ok = extension != nullptr && X509_add_ext(cert.get(), extension, -1) == 1;
    X509_EXTENSION_free(extension);
  }
  ok = ok && X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) > 0;
  if (!ok) ADD_FAILURE() << "could not make a certificate for " << common_name;
  return cert;
}

struct ServerCert {
  std::string chain_pem;  // leaf, then the CA
  std::string key_pem;
};

// Two throwaway CAs: `trusted` (its certificate is the fetcher's ca_file)
// and `untrusted` (known to nobody), and server certificates from them.
class TestPki {
 public:
  static const TestPki& Get() {
    static const TestPki* pki = new TestPki();
    return *pki;
  }

  const std::string& ca_file() const { return ca_file_; }
  // 127.0.0.1 and localhost, from the trusted CA.
  const ServerCert& local() const { return local_; }
  // 127.0.0.1 and localhost, from the untrusted CA.
  const ServerCert& untrusted() const { return untrusted_; }
  // Only other.example, from the trusted CA.
  const ServerCert& other_host() const { return other_host_; }

 private:
  TestPki() {
    Key ca_key(EVP_EC_gen("P-256"));
    Cert ca = MakeCert(ca_key.get(), "fetcher test CA", nullptr, nullptr, true, "");
    Key rogue_key(EVP_EC_gen("P-256"));
    Cert rogue = MakeCert(rogue_key.get(), "rogue CA", nullptr, nullptr, true, "");
    local_ = Issue(ca.get(), ca_key.get(), "DNS:localhost,IP:127.0.0.1");
    untrusted_ = Issue(rogue.get(), rogue_key.get(), "DNS:localhost,IP:127.0.0.1");
    other_host_ = Issue(ca.get(), ca_key.get(), "DNS:other.example");
    ca_file_ = dir_.path() + "/ca.pem";
    std::ofstream(ca_file_) << ToPem(ca.get());
  }

  static ServerCert Issue(X509* ca, EVP_PKEY* ca_key, const std::string& subject_alt_name) {
    Key key(EVP_EC_gen("P-256"));
    Cert cert = MakeCert(key.get(), "fetcher test server", ca, ca_key, false, subject_alt_name);
    return {ToPem(cert.get()) + ToPem(ca), ToPem(key.get())};
  }

  testing::TempDir dir_;
  std::string ca_file_;
  ServerCert local_;
  ServerCert untrusted_;
  ServerCert other_host_;
};

// ---- A scripted HTTP(S) server --------------------------------------------------

struct SeenRequest {
  std::string target;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// What the server sends back: raw bytes, then (when `hold`) nothing more
// while keeping the connection open until the server stops.
struct Reply {
  std::string bytes;
  bool hold = false;
};

using Responder = std::function<Reply(const SeenRequest&)>;

// HTTP/1.1 with Content-Length.
std::string Http(int status, std::string_view body, const std::vector<std::string>& headers = {}) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " Status\r\n";
  for (const std::string& header : headers) out += header + "\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
  out += body;
  return out;
}

std::string Redirect(int status, const std::string& location) { return Http(status, "", {"Location: " + location}); }

// One connection per request, served by coroutines on a private io_context
// on the server's own thread. Every request is recorded before it is
// answered, so once a fetch returns the server has recorded what it saw.
class TestServer {
 public:
  explicit TestServer(Responder responder, const ServerCert* cert = nullptr)
      : responder_(std::move(responder)), acceptor_(io_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {
    if (cert != nullptr) {
      tls_.emplace(ssl::context::tls_server);
      tls_->use_certificate_chain(net::buffer(cert->chain_pem));
      tls_->use_private_key(net::buffer(cert->key_pem), ssl::context::pem);
    }
    port_ = acceptor_.local_endpoint().port();
    net::co_spawn(io_, Accept(), net::detached);
    thread_ = std::thread([this] { io_.run(); });
  }

  ~TestServer() {
    io_.stop();
    thread_.join();
  }

  uint16_t port() const { return port_; }

  std::string Url(const std::string& path, const std::string& host = "127.0.0.1") const {
    return (tls_ ? "https://" : "http://") + host + ":" + std::to_string(port_) + path;
  }

  std::vector<SeenRequest> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  net::awaitable<void> Accept() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(kAwait);
      if (ec) co_return;
      net::co_spawn(io_, Serve(std::move(socket)), net::detached);
    }
  }

  net::awaitable<void> Serve(tcp::socket socket) {
    if (!tls_) {
      co_await Converse(socket);
      co_return;
    }
    ssl::stream<tcp::socket> stream(std::move(socket), *tls_);
    auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, kAwait);
    if (ec) co_return;
    co_await Converse(stream);
  }

  template <class Stream>
  net::awaitable<void> Converse(Stream& stream) {
    beast::flat_buffer buffer;
    bhttp::request<bhttp::string_body> request;
    auto [read_error, n] = co_await bhttp::async_read(stream, buffer, request, kAwait);
    if (read_error) co_return;
    SeenRequest seen;
    seen.target = std::string(request.target());
    for (const auto& field : request) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      seen.headers[name] = std::string(field.value());
    }
    {
      std::lock_guard lock(mu_);
      requests_.push_back(seen);
    }
    const Reply reply = responder_(seen);
    if (!reply.bytes.empty()) {
      auto [write_error, written] = co_await net::async_write(stream, net::buffer(reply.bytes), kAwait);
      if (write_error) co_return;
    }
    if (reply.hold) {
      net::steady_timer forever(io_, net::steady_timer::time_point::max());
      co_await forever.async_wait(kAwait);
    }
  }

  const Responder responder_;
  net::io_context io_;
  std::optional<ssl::context> tls_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  mutable std::mutex mu_;
  std::vector<SeenRequest> requests_;
  std::thread thread_;
};

config::FetchConfig TestConfig(bool allow_private = true) {
  config::FetchConfig config;
  config.allow_private = allow_private;
  config.timeout_ms = 10000;
  config.ca_file = TestPki::Get().ca_file();
  return config;
}

Result<FetchResult> Get(Fetcher& fetcher, const std::string& url) {
  FetchRequest request;
  request.url = url;
  return fetcher.Fetch(request);
}

bool Contains(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

// ---- URL parsing ----------------------------------------------------------------

TEST(ParseUrl, SplitsAndNormalises) {
  auto url = fetch::ParseUrl("http://Example.ORG/a/b?c=d&e#frag");
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  EXPECT_FALSE(url->https);
  EXPECT_EQ(url->host, "example.org");
  EXPECT_EQ(url->port, 80);
  EXPECT_EQ(url->target, "/a/b?c=d&e");
  EXPECT_EQ(url->ToString(), "http://example.org/a/b?c=d&e");

  url = fetch::ParseUrl("HTTPS://example.org");
  ASSERT_TRUE(url.ok());
  EXPECT_TRUE(url->https);
  EXPECT_EQ(url->port, 443);
  EXPECT_EQ(url->target, "/");
  EXPECT_EQ(url->ToString(), "https://example.org/");

  url = fetch::ParseUrl("http://example.org?x=1");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->target, "/?x=1");

  // An '@' after the authority is an ordinary path character.
  url = fetch::ParseUrl("https://example.org/users/a@b");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->target, "/users/a@b");
}

TEST(ParseUrl, Ports) {
  auto url = fetch::ParseUrl("https://example.org:443/x");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->port, 443);
  EXPECT_EQ(url->ToString(), "https://example.org/x");  // the default port is not repeated
  url = fetch::ParseUrl("http://example.org:80/x");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->ToString(), "http://example.org/x");
  url = fetch::ParseUrl("https://example.org:8443/x");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->port, 8443);
  EXPECT_EQ(url->Authority(), "example.org:8443");
  url = fetch::ParseUrl("http://example.org:443/");  // not the default for http
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->ToString(), "http://example.org:443/");
  url = fetch::ParseUrl("http://example.org:65535/");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->port, 65535);

  for (const char* bad : {"http://example.org:0/", "http://example.org:65536/", "http://example.org:99999/",
                          "http://example.org:123456/", "http://example.org:/", "http://example.org:-1/",
                          "http://example.org:8o/", "http://example.org:80:80/", "http://example.org: 80/"}) {
    auto result = fetch::ParseUrl(bad);
    EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(Contains(fetch::ParseUrl("http://example.org:0/").status().message(), "port"));
}

TEST(ParseUrl, Ipv6Literals) {
  auto url = fetch::ParseUrl("http://[::1]:8080/x");
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, 8080);
  EXPECT_EQ(url->Authority(), "[::1]:8080");
  EXPECT_EQ(url->ToString(), "http://[::1]:8080/x");

  url = fetch::ParseUrl("https://[2001:DB8:0:0::1]/");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->host, "2001:db8::1");  // canonical form
  EXPECT_EQ(url->port, 443);
  EXPECT_EQ(url->ToString(), "https://[2001:db8::1]/");

  for (const char* bad : {"http://[::1/", "http://[fe80::1%25eth0]/", "http://[fe80::1%eth0]/", "http://[::1]x/",
                          "http://[not:an:address]/", "http://[]/", "http://::1/", "http://[127.0.0.1]/"}) {
    EXPECT_EQ(fetch::ParseUrl(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(ParseUrl, RefusesUserInfo) {
  for (const char* bad :
       {"http://user@example.org/", "http://user:secret@example.org/", "https://example.org@evil.example/",
        "http://@example.org/", "http://example.org\\@evil.example/"}) {
    auto result = fetch::ParseUrl(bad);
    EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_TRUE(Contains(result.status().message(), "user information")) << result.status().message();
  }
  // A backslash is a path separator to some URL parsers: never part of a host here.
  EXPECT_EQ(fetch::ParseUrl("http://a\\b/").status().code(), StatusCode::kInvalidArgument);
}

TEST(ParseUrl, RefusesOtherSchemes) {
  for (const char* bad : {"ftp://example.org/x", "file:///etc/passwd", "javascript:alert(1)", "mailto:a@b.example",
                          "gopher://example.org/", "ws://example.org/", "data:text/plain,hi", "did:web:example.org"}) {
    auto result = fetch::ParseUrl(bad);
    EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_TRUE(Contains(result.status().message(), "http and https only")) << result.status().message();
  }
  for (const char* bad : {"example.org/x", "/relative", "", "http:example.org", "http:/example.org", "://x"}) {
    EXPECT_EQ(fetch::ParseUrl(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(ParseUrl, Hosts) {
  for (const char* good : {"http://127.0.0.1/", "http://0.0.0.0/", "http://255.255.255.255/", "http://a-b.example/",
                           "http://xn--bcher-kva.example/", "http://under_score.example/", "http://localhost/",
                           "http://1a.example/", "http://example.123a/"}) {
    EXPECT_TRUE(fetch::ParseUrl(good).ok()) << good << ": " << fetch::ParseUrl(good).status().ToString();
  }
  // Numeric forms resolvers read differently from one another, empty
  // labels, non-ASCII and escaped host names, spaces and control characters.
  for (const char* bad : {"http:///path",
                          "http://127.1/",
                          "http://0x7f.0.0.1/",
                          "http://0x7f000001/",
                          "http://2130706433/",
                          "http://01.2.3.4/",
                          "http://256.1.1.1/",
                          "http://1.2.3.4.5/",
                          "http://a.1/",
                          "http://a..b/",
                          "http://.example.org/",
                          "http://example.org./",
                          "http://ex%41mple.org/",
                          "http://b\xc3\xbc"
                          "cher.example/",
                          "http://exa mple.org/",
                          "http://example.org/a b",
                          "http://example.org/\x01",
                          "http://example.org/\x7f",
                          " http://example.org/",
                          "http://example.org/\n"}) {
    EXPECT_EQ(fetch::ParseUrl(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  const std::string long_label = "http://" + std::string(64, 'a') + ".example/";
  EXPECT_EQ(fetch::ParseUrl(long_label).status().code(), StatusCode::kInvalidArgument);
  const std::string long_url = "http://example.org/" + std::string(fetch::kMaxUrlBytes, 'a');
  EXPECT_EQ(fetch::ParseUrl(long_url).status().code(), StatusCode::kInvalidArgument);
}

TEST(ParseUrl, PathsAreNormalisedAndEncoded) {
  const std::pair<const char*, const char*> cases[] = {
      {"http://e.example/a/./b/../c", "/a/c"},      {"http://e.example/../../x", "/x"},
      {"http://e.example/a/b/..", "/a/"},           {"http://e.example/a/b/.", "/a/b/"},
      {"http://e.example/a/..?q=../x", "/?q=../x"}, {"http://e.example/%C3%A9?x=%2F", "/%C3%A9?x=%2F"},
      {"http://e.example/\xc3\xa9", "/%C3%A9"},     {"http://e.example/a%zz", "/a%25zz"},
      {"http://e.example/a%4", "/a%254"},           {"http://e.example/{x}|^`\"<>", "/%7Bx%7D%7C%5E%60%22%3C%3E"},
      {"http://e.example/a\\b", "/a%5Cb"},          {"http://e.example/p?a=b?c#f#g", "/p?a=b?c"},
  };
  for (const auto& [input, target] : cases) {
    auto url = fetch::ParseUrl(input);
    ASSERT_TRUE(url.ok()) << input << ": " << url.status().ToString();
    EXPECT_EQ(url->target, target) << input;
    // Parsing the printed form gives the same URL.
    auto again = fetch::ParseUrl(url->ToString());
    ASSERT_TRUE(again.ok()) << url->ToString();
    EXPECT_EQ(*again, *url) << input;
  }
}

TEST(ResolveReference, FollowsRfc3986) {
  auto base = fetch::ParseUrl("http://a.example/b/c/d;p?q");
  ASSERT_TRUE(base.ok());
  const std::pair<const char*, const char*> cases[] = {
      {"g", "http://a.example/b/c/g"},
      {"./g", "http://a.example/b/c/g"},
      {"g/", "http://a.example/b/c/g/"},
      {"/g", "http://a.example/g"},
      {"//g.example", "http://g.example/"},
      {"//g.example:8080/x?y", "http://g.example:8080/x?y"},
      {"?y", "http://a.example/b/c/d;p?y"},
      {"g?y", "http://a.example/b/c/g?y"},
      {"#s", "http://a.example/b/c/d;p?q"},
      {"g#s", "http://a.example/b/c/g"},
      {"", "http://a.example/b/c/d;p?q"},
      {".", "http://a.example/b/c/"},
      {"..", "http://a.example/b/"},
      {"../g", "http://a.example/b/g"},
      {"../..", "http://a.example/"},
      {"../../../g", "http://a.example/g"},
      {"/./g", "http://a.example/g"},
      {"g;x=1/../y", "http://a.example/b/c/y"},
      {"https://other.example/x", "https://other.example/x"},
      {"HTTP://Other.Example:80/", "http://other.example/"},
  };
  for (const auto& [reference, expected] : cases) {
    auto url = fetch::ResolveReference(*base, reference);
    ASSERT_TRUE(url.ok()) << reference << ": " << url.status().ToString();
    EXPECT_EQ(url->ToString(), expected) << reference;
  }
  // A scheme-relative reference keeps the base's scheme.
  auto https_base = fetch::ParseUrl("https://a.example/x");
  ASSERT_TRUE(https_base.ok());
  EXPECT_EQ(fetch::ResolveReference(*https_base, "//b.example/y")->ToString(), "https://b.example/y");
  for (const char* bad :
       {"ftp://x.example/", "//user@evil.example/", "//", "http://x.example:0/", "a b", "javascript:alert(1)"}) {
    EXPECT_FALSE(fetch::ResolveReference(*base, bad).ok()) << bad;
  }
}

// ---- Address classification ----------------------------------------------------

std::optional<std::string_view> Range(const char* address) {
  return fetch::NonPublicRange(net::ip::make_address(address));
}

TEST(NonPublicRange, RefusesEverySpecialPurposeRange) {
  const std::pair<const char*, const char*> cases[] = {
      {"0.0.0.0", "unspecified"},
      {"0.1.2.3", "this network"},
      {"10.0.0.1", "private 10.0.0.0/8"},
      {"10.255.255.255", "private 10.0.0.0/8"},
      {"100.64.0.1", "CGNAT"},
      {"100.127.255.255", "CGNAT"},
      {"127.0.0.1", "loopback"},
      {"127.255.255.254", "loopback"},
      {"169.254.169.254", "link-local"},
      {"172.16.0.1", "private 172.16.0.0/12"},
      {"172.31.255.255", "private 172.16.0.0/12"},
      {"192.0.0.1", "192.0.0.0/24"},
      {"192.0.2.1", "documentation"},
      {"192.88.99.1", "6to4 relay"},
      {"192.168.1.1", "private 192.168.0.0/16"},
      {"198.18.0.1", "benchmarking"},
      {"198.19.255.255", "benchmarking"},
      {"198.51.100.7", "documentation"},
      {"203.0.113.9", "documentation"},
      {"224.0.0.1", "multicast"},
      {"239.255.255.250", "multicast"},
      {"240.0.0.1", "reserved"},
      {"255.255.255.255", "broadcast"},
      {"::", "unspecified"},
      {"::1", "loopback"},
      {"::ffff:127.0.0.1", "loopback"},
      {"::ffff:10.1.2.3", "private"},
      {"::ffff:169.254.169.254", "link-local"},
      {"::ffff:100.64.0.1", "CGNAT"},
      {"::ffff:0.0.0.0", "unspecified"},
      {"::ffff:255.255.255.255", "broadcast"},
      {"::ffff:192.0.0.8", "192.0.0.0/24"},
      {"::ffff:198.18.0.1", "benchmarking"},
      {"::127.0.0.1", "IPv4-compatible"},
      {"64:ff9b::10.0.0.1", "private"},
      {"64:ff9b::127.0.0.1", "loopback"},
      {"64:ff9b:1::1", "local-use NAT64"},
      {"2002:7f00:1::", "loopback"},
      {"2002:c0a8:101::1", "private"},
      {"100::1", "discard"},
      {"2001::1", "Teredo"},
      {"2001:2::1", "benchmarking"},
      {"2001:10::1", "ORCHID"},
      {"2001:db8::1", "documentation"},
      {"3fff::1", "documentation"},
      {"fc00::1", "unique local"},
      {"fd12:3456::1", "unique local"},
      {"fe80::1", "link-local"},
      {"febf::1", "link-local"},
      {"fec0::1", "site-local"},
      {"ff02::1", "multicast"},
      {"ff0e::1", "multicast"},
      {"4000::1", "not global unicast"},
      {"::2", "IPv4-compatible"},
      {"1::1", "not global unicast"},
  };
  for (const auto& [address, name] : cases) {
    const auto range = Range(address);
    ASSERT_TRUE(range.has_value()) << address << " should not be public";
    EXPECT_TRUE(Contains(std::string(*range), name)) << address << ": " << *range;
  }
}

TEST(NonPublicRange, AcceptsPublicAddresses) {
  for (const char* address : {"8.8.8.8",
                              "1.1.1.1",
                              "93.184.216.34",
                              "9.255.255.255",
                              "11.0.0.0",
                              "100.63.255.255",
                              "100.128.0.0",
                              "126.255.255.255",
                              "128.0.0.0",
                              "169.253.255.255",
                              "169.255.0.0",
                              "172.15.255.255",
                              "172.32.0.0",
                              "192.0.1.0",
                              "192.0.3.0",
                              "192.167.255.255",
                              "192.169.0.0",
                              "198.17.255.255",
                              "198.20.0.0",
                              "198.51.99.255",
                              "203.0.112.255",
                              "223.255.255.255",
                              "2606:4700:4700::1111",
                              "2001:4860:4860::8888",
                              "2a00:1450:4001::1",
                              "::ffff:8.8.8.8",
                              "64:ff9b::8.8.8.8",
                              "2002:808:808::1",
                              "2001:db9::1",
                              "2001:1::1:0",
                              "3ffe::1"}) {
    const auto range = Range(address);
    EXPECT_FALSE(range.has_value()) << address << ": " << range.value_or("");
  }
}

TEST(DefaultAddressPolicy, RefusesUnlessPrivateIsAllowed) {
  const Status refused = fetch::DefaultAddressPolicy(false)(net::ip::make_address("127.0.0.1"), "x.example");
  EXPECT_EQ(refused.code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(Contains(refused.message(), "address 127.0.0.1 of host x.example is not public")) << refused.message();
  EXPECT_TRUE(Contains(refused.message(), "fetch.allow_private is off")) << refused.message();
  EXPECT_TRUE(fetch::DefaultAddressPolicy(false)(net::ip::make_address("8.8.8.8"), "dns.example").ok());
  EXPECT_TRUE(fetch::DefaultAddressPolicy(true)(net::ip::make_address("127.0.0.1"), "x.example").ok());
  EXPECT_TRUE(fetch::DefaultAddressPolicy(true)(net::ip::make_address("fe80::1"), "x.example").ok());
}

TEST(ParseHttpDate, ReadsImfFixdateExactly) {
  EXPECT_EQ(fetch::ParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
  EXPECT_EQ(fetch::ParseHttpDate("Thu, 01 Jan 1970 00:00:00 GMT"), 0);
  EXPECT_EQ(fetch::ParseHttpDate("Thu, 29 Feb 2024 00:00:00 GMT"), 1709164800);
  EXPECT_EQ(fetch::ParseHttpDate("Sat, 31 Dec 2016 23:59:60 GMT"), 1483228800);  // a leap second
  for (const char* bad : {
           "",
           "0",
           "-1",
           "Mon, 06 Nov 1994 08:49:37 GMT",  // the weekday does not match
           "sun, 06 Nov 1994 08:49:37 GMT",  // names are case-sensitive
           "Sun, 06 nov 1994 08:49:37 GMT",
           "Sun, 06 Nov 1994 08:49:37 UTC",
           "Sun, 6 Nov 1994 08:49:37 GMT",
           "Sun,  06 Nov 1994 08:49:37 GMT",
           "Sun, 06 Nov 1994 08:49:37 GMT ",
           "Sun, 06 Nov 1994 24:00:00 GMT",
           "Sun, 06 Nov 1994 08:60:00 GMT",
           "Sun, 06 Nov 1994 08:49:61 GMT",
           "Wed, 31 Feb 2024 00:00:00 GMT",  // no such day
           "Thu, 29 Feb 2023 00:00:00 GMT",  // not a leap year
           "Sun, 00 Nov 1994 08:49:37 GMT",
           "Sun, 06 Nov 19x4 08:49:37 GMT",
           "Sunday, 06-Nov-94 08:49:37 GMT",  // RFC 850, obsolete
           "Sun Nov  6 08:49:37 1994",        // asctime, obsolete
       }) {
    EXPECT_EQ(fetch::ParseHttpDate(bad), std::nullopt) << bad;
  }
}

// ---- Fetching ---------------------------------------------------------------------

TEST(Fetcher, ReturnsBodyVerbatimWithHeaders) {
  const std::string body("{\"id\":\"urn:x\"}\r\n\0\xff binary", 24);
  TestServer server([&](const SeenRequest&) {
    return Reply{Http(200, body,
                      {"Content-Type: application/ld+json; charset=utf-8", "ETag: \"v1\"",
                       "Last-Modified: Tue, 01 Oct 2024 10:00:00 GMT"})};
  });
  Fetcher fetcher(TestConfig());
  ASSERT_TRUE(fetcher.init_status().ok()) << fetcher.init_status().ToString();
  auto result = Get(fetcher, server.Url("/assertions/1?x=y#frag"));
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->body, body);
  EXPECT_EQ(result->content_type, "application/ld+json; charset=utf-8");
  EXPECT_EQ(result->etag, "\"v1\"");
  EXPECT_EQ(result->last_modified, "Tue, 01 Oct 2024 10:00:00 GMT");
  EXPECT_EQ(result->final_url, server.Url("/assertions/1?x=y"));
  EXPECT_TRUE(result->redirects.empty());
  EXPECT_FALSE(result->from_cache);

  const auto seen = server.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].target, "/assertions/1?x=y");
  EXPECT_EQ(seen[0].Header("host"), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(seen[0].Header("user-agent"), "backpackd/" BACKPACK_VERSION);
  EXPECT_EQ(seen[0].Header("accept"), "application/ld+json, application/json;q=0.9, */*;q=0.1");
  EXPECT_EQ(seen[0].Header("accept-encoding"), "identity");
  EXPECT_EQ(seen[0].Header("if-none-match"), "");
}

TEST(Fetcher, SendsTheRequestedAcceptHeader) {
  TestServer server([](const SeenRequest&) { return Reply{Http(200, "k")}; });
  Fetcher fetcher(TestConfig());
  FetchRequest request;
  request.url = server.Url("/key");
  request.accept = "application/x-pem-file";
  ASSERT_TRUE(fetcher.Fetch(request).ok());
  EXPECT_EQ(server.requests().at(0).Header("accept"), "application/x-pem-file");
}

TEST(Fetcher, ChunkedAndUnframedBodies) {
  TestServer server([](const SeenRequest& request) {
    if (request.target == "/chunked") {
      return Reply{
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
          "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"};
    }
    return Reply{"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end"};
  });
  Fetcher fetcher(TestConfig());
  auto chunked = Get(fetcher, server.Url("/chunked"));
  ASSERT_TRUE(chunked.ok()) << chunked.status().ToString();
  EXPECT_EQ(chunked->body, "hello world");
  auto unframed = Get(fetcher, server.Url("/unframed"));
  ASSERT_TRUE(unframed.ok()) << unframed.status().ToString();
  EXPECT_EQ(unframed->body, "until the end");
}

TEST(Fetcher, SkipsInterimResponses) {
  TestServer server([](const SeenRequest&) {
    return Reply{"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n" + Http(200, "final")};
  });
  Fetcher fetcher(TestConfig());
  auto result = Get(fetcher, server.Url("/"));
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->body, "final");
}

TEST(Fetcher, RefusesLoopbackUnlessPrivateAllowed) {
  TestServer server([](const SeenRequest&) { return Reply{Http(200, "secret")}; });
  Fetcher fetcher(TestConfig(/*allow_private=*/false));
  for (const std::string host : {"127.0.0.1", "localhost"}) {
    auto result = Get(fetcher, server.Url("/", host));
    EXPECT_EQ(result.status().code(), StatusCode::kPermissionDenied) << host << ": " << result.status().ToString();
    EXPECT_TRUE(Contains(result.status().message(), "of host " + host + " is not public")) << result.status().message();
    EXPECT_TRUE(Contains(result.status().message(), "fetch.allow_private is off"));
  }
  auto v6 = Get(fetcher, "http://[::1]:" + std::to_string(server.port()) + "/");
  EXPECT_EQ(v6.status().code(), StatusCode::kPermissionDenied);
  auto mapped = Get(fetcher, "http://[::ffff:127.0.0.1]:" + std::to_string(server.port()) + "/");
  EXPECT_EQ(mapped.status().code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(server.requests().empty()) << "a refused address must not even be connected to";

  Fetcher allowed(TestConfig(/*allow_private=*/true));
  for (const std::string host : {"127.0.0.1", "localhost"}) {
    auto result = Get(allowed, server.Url("/", host));
    ASSERT_TRUE(result.ok()) << host << ": " << result.status().ToString();
    EXPECT_EQ(result->body, "secret");
  }
}

TEST(Fetcher, FollowsRelativeAndAbsoluteRedirects) {
  TestServer server([](const SeenRequest& request) {
    const std::string self = "http://" + request.Header("host");
    if (request.target == "/start") return Reply{Redirect(302, "next/step?a=1")};
    if (request.target == "/next/step?a=1") return Reply{Redirect(301, self + "/moved#ignored")};
    if (request.target == "/moved") return Reply{Redirect(308, "/final")};
    if (request.target == "/final") return Reply{Redirect(303, "?done")};
    if (request.target == "/final?done") return Reply{Redirect(307, "../last")};
    if (request.target == "/last") return Reply{Http(200, "arrived", {"Content-Type: application/json"})};
    return Reply{Http(500, "unexpected")};
  });
  config::FetchConfig config = TestConfig();
  config.max_redirects = 5;
  Fetcher fetcher(config);
  auto result = Get(fetcher, server.Url("/start"));
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->body, "arrived");
  EXPECT_EQ(result->final_url, server.Url("/last"));
  const std::vector<std::string> chain = {server.Url("/start"), server.Url("/next/step?a=1"), server.Url("/moved"),
                                          server.Url("/final"), server.Url("/final?done")};
  EXPECT_EQ(result->redirects, chain);
  EXPECT_EQ(server.requests().size(), 6u);
}

TEST(Fetcher, RefusesTooManyRedirects) {
  TestServer server([](const SeenRequest& request) {
    const int n = std::stoi(request.target.substr(3));
    return Reply{Redirect(302, "/r/" + std::to_string(n + 1))};
  });
  config::FetchConfig config = TestConfig();
  config.max_redirects = 3;
  Fetcher fetcher(config);
  auto result = Get(fetcher, server.Url("/r/0"));
  EXPECT_EQ(result.status().code(), StatusCode::kFailedPrecondition) << result.status().ToString();
  EXPECT_TRUE(Contains(result.status().message(), "fetch.max_redirects")) << result.status().message();
  EXPECT_EQ(server.requests().size(), 4u);  // the original request and three redirects

  config.max_redirects = 0;
  Fetcher no_redirects(config);
  EXPECT_EQ(Get(no_redirects, server.Url("/r/0")).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(server.requests().size(), 5u);
}

TEST(Fetcher, RefusesRedirectLoops) {
  TestServer server(
      [](const SeenRequest& request) { return Reply{Redirect(301, request.target == "/a" ? "/b" : "/a")}; });
  config::FetchConfig config = TestConfig();
  config.max_redirects = 10;
  Fetcher fetcher(config);
  auto result = Get(fetcher, server.Url("/a"));
  EXPECT_EQ(result.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(result.status().message(), "redirect loop")) << result.status().message();
  EXPECT_EQ(server.requests().size(), 2u);

  TestServer self_loop([](const SeenRequest&) { return Reply{Redirect(302, "#again")}; });
  EXPECT_EQ(Get(fetcher, self_loop.Url("/x")).status().code(), StatusCode::kFailedPrecondition);
}

TEST(Fetcher, RefusesUnusableRedirects) {
  TestServer server([](const SeenRequest& request) {
    if (request.target == "/none") return Reply{Http(302, "")};
    if (request.target == "/ftp") return Reply{Redirect(301, "ftp://files.example/badge")};
    if (request.target == "/userinfo") return Reply{Redirect(301, "http://user@evil.example/")};
    return Reply{Http(300, "choices")};
  });
  Fetcher fetcher(TestConfig());
  for (const char* path : {"/none", "/ftp", "/userinfo", "/multiple"}) {
    auto result = Get(fetcher, server.Url(path));
    EXPECT_EQ(result.status().code(), StatusCode::kFailedPrecondition) << path << ": " << result.status().ToString();
  }
}

// The address check runs again on every hop: a first hop that the policy
// allows cannot lead the fetcher to an address it does not.
TEST(Fetcher, ChecksTheAddressOfEveryRedirectHop) {
  TestServer server([](const SeenRequest& request) {
    const std::string port = request.Header("host").substr(request.Header("host").find(':'));
    if (request.target == "/to-other-loopback") return Reply{Redirect(302, "http://127.0.0.2" + port + "/x")};
    if (request.target == "/to-metadata") return Reply{Redirect(302, "http://169.254.169.254/latest/meta-data/")};
    return Reply{Http(200, "ok")};
  });
  // Allows exactly the test server's address; everything else as when
  // fetch.allow_private is off.
  const AddressPolicy only_test_server = [](const net::ip::address& address, std::string_view host) {
    if (address == net::ip::make_address("127.0.0.1")) return Status::Ok();
    return fetch::DefaultAddressPolicy(false)(address, host);
  };
  Fetcher fetcher(TestConfig(), only_test_server);
  ASSERT_TRUE(Get(fetcher, server.Url("/plain")).ok());
  auto result = Get(fetcher, server.Url("/to-other-loopback"));
  EXPECT_EQ(result.status().code(), StatusCode::kPermissionDenied) << result.status().ToString();
  EXPECT_TRUE(Contains(result.status().message(), "address 127.0.0.2 of host 127.0.0.2 is not public"))
      << result.status().message();
  result = Get(fetcher, server.Url("/to-metadata"));
  EXPECT_EQ(result.status().code(), StatusCode::kPermissionDenied) << result.status().ToString();
  EXPECT_TRUE(Contains(result.status().message(), "169.254.169.254")) << result.status().message();
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST(Fetcher, RefusesBodiesOverTheCap) {
  const std::string big(5000, 'x');
  TestServer server([&](const SeenRequest& request) {
    if (request.target == "/length") return Reply{Http(200, big)};
    if (request.target == "/exact") return Reply{Http(200, std::string(1024, 'y'))};
    if (request.target == "/gone") return Reply{Http(410, big)};
    if (request.target == "/chunked") {
      std::string reply = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
      for (int i = 0; i < 10; ++i) reply += "1f4\r\n" + std::string(500, 'c') + "\r\n";
      return Reply{reply + "0\r\n\r\n"};
    }
    if (request.target == "/endless-chunks") {
      // Stays open after too many bytes: the fetcher must stop on its own.
      std::string reply = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
      for (int i = 0; i < 10; ++i) reply += "1f4\r\n" + std::string(500, 'c') + "\r\n";
      return Reply{reply, /*hold=*/true};
    }
    // No length and no chunks: the body runs to the end of the connection.
    return Reply{"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + big, /*hold=*/request.target == "/unframed-open"};
  });
  config::FetchConfig config = TestConfig();
  config.max_bytes = 1024;
  Fetcher fetcher(config);
  for (const char* path : {"/length", "/gone", "/chunked", "/endless-chunks", "/unframed", "/unframed-open"}) {
    auto result = Get(fetcher, server.Url(path));
    EXPECT_EQ(result.status().code(), StatusCode::kResourceExhausted) << path << ": " << result.status().ToString();
    EXPECT_TRUE(Contains(result.status().message(), "larger than 1024 bytes")) << result.status().message();
  }
  auto exact = Get(fetcher, server.Url("/exact"));
  ASSERT_TRUE(exact.ok()) << exact.status().ToString();
  EXPECT_EQ(exact->body.size(), 1024u);

  // The per-call cap lowers the configured one and never raises it.
  FetchRequest lower;
  lower.url = server.Url("/exact");
  lower.max_bytes = 100;
  EXPECT_EQ(fetcher.Fetch(lower).status().code(), StatusCode::kResourceExhausted);
  FetchRequest higher;
  higher.url = server.Url("/length");
  higher.max_bytes = 1 << 20;
  EXPECT_EQ(fetcher.Fetch(higher).status().code(), StatusCode::kResourceExhausted);
}

TEST(Fetcher, RefusesOversizedHeaders) {
  TestServer server([](const SeenRequest&) {
    return Reply{Http(200, "x", {"X-Padding: " + std::string(Fetcher::kMaxHeaderBytes + 1000, 'p')})};
  });
  Fetcher fetcher(TestConfig());
  auto result = Get(fetcher, server.Url("/"));
  EXPECT_EQ(result.status().code(), StatusCode::kResourceExhausted) << result.status().ToString();
}

TEST(Fetcher, GivesUpOnSilentServersWithinTheDeadline) {
  TestServer server([](const SeenRequest& request) {
    if (request.target == "/drip") {
      return Reply{"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b", /*hold=*/true};
    }
    return Reply{"", /*hold=*/true};
  });
  config::FetchConfig config = TestConfig();
  config.timeout_ms = 300;
  Fetcher fetcher(config);
  for (const char* path : {"/silent", "/drip"}) {
    const auto start = Clock::now();
    auto result = Get(fetcher, server.Url(path));
    const auto elapsed = Clock::now() - start;
    EXPECT_EQ(result.status().code(), StatusCode::kUnavailable) << path << ": " << result.status().ToString();
    EXPECT_TRUE(Contains(result.status().message(), "fetch.timeout_ms")) << result.status().message();
    EXPECT_EQ(fetch::HttpStatusOf(result.status()), 0);  // no answer
    EXPECT_GE(elapsed, std::chrono::milliseconds(250)) << path;
    EXPECT_LT(elapsed, std::chrono::seconds(5)) << path;
  }

  // The deadline covers the TLS handshake too: this listener's connections
  // are completed by the kernel and never read.
  net::io_context io;
  tcp::acceptor mute(io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  const auto start = Clock::now();
  auto result = Get(fetcher, "https://127.0.0.1:" + std::to_string(mute.local_endpoint().port()) + "/");
  EXPECT_EQ(result.status().code(), StatusCode::kUnavailable) << result.status().ToString();
  EXPECT_TRUE(Contains(result.status().message(), "fetch.timeout_ms")) << result.status().message();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
}

TEST(Fetcher, ConnectionFailuresAreUnavailable) {
  uint16_t closed_port = 0;
  {
    net::io_context io;
    tcp::acceptor acceptor(io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    closed_port = acceptor.local_endpoint().port();
  }
  Fetcher fetcher(TestConfig());
  auto result = Get(fetcher, "http://127.0.0.1:" + std::to_string(closed_port) + "/");
  EXPECT_EQ(result.status().code(), StatusCode::kUnavailable) << result.status().ToString();

  TestServer garbage([](const SeenRequest&) { return Reply{"SMTP ready\r\n\r\n"}; });
  result = Get(fetcher, garbage.Url("/"));
  EXPECT_EQ(result.status().code(), StatusCode::kUnavailable) << result.status().ToString();

  TestServer truncated([](const SeenRequest&) { return Reply{"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort"}; });
  result = Get(fetcher, truncated.Url("/"));
  EXPECT_EQ(result.status().code(), StatusCode::kUnavailable) << result.status().ToString();
}

TEST(Fetcher, MapsStatusesToResultsAndErrors) {
  TestServer server([](const SeenRequest& request) {
    const int status = std::stoi(request.target.substr(1));
    return Reply{Http(status, "status " + std::to_string(status), {"Content-Type: text/plain"})};
  });
  Fetcher fetcher(TestConfig());

  auto gone = Get(fetcher, server.Url("/410"));
  ASSERT_TRUE(gone.ok()) << gone.status().ToString();
  EXPECT_EQ(gone->status, 410);
  EXPECT_EQ(gone->body, "status 410");

  auto no_content = Get(fetcher, server.Url("/204"));
  ASSERT_TRUE(no_content.ok()) << no_content.status().ToString();
  EXPECT_EQ(no_content->status, 204);
  EXPECT_EQ(no_content->body, "");

  const std::pair<int, StatusCode> errors[] = {
      {404, StatusCode::kNotFound},           {400, StatusCode::kFailedPrecondition},
      {401, StatusCode::kFailedPrecondition}, {403, StatusCode::kFailedPrecondition},
      {406, StatusCode::kFailedPrecondition}, {408, StatusCode::kUnavailable},
      {429, StatusCode::kUnavailable},        {500, StatusCode::kUnavailable},
      {502, StatusCode::kUnavailable},        {503, StatusCode::kUnavailable},
      {304, StatusCode::kUnavailable},  // never asked for: nothing cached
  };
  for (const auto& [status, code] : errors) {
    auto result = Get(fetcher, server.Url("/" + std::to_string(status)));
    EXPECT_EQ(result.status().code(), code) << status << ": " << result.status().ToString();
    EXPECT_TRUE(Contains(result.status().message(), server.Url("/" + std::to_string(status))))
        << result.status().message();
    // The status a server answered with can be read back from the error.
    EXPECT_EQ(fetch::HttpStatusOf(result.status()), status == 304 ? 0 : status) << result.status().ToString();
  }
}

TEST(Fetcher, RefusesContentEncodingItDidNotAskFor) {
  TestServer server([](const SeenRequest&) { return Reply{Http(200, "\x1f\x8b", {"Content-Encoding: gzip"})}; });
  Fetcher fetcher(TestConfig());
  EXPECT_EQ(Get(fetcher, server.Url("/")).status().code(), StatusCode::kFailedPrecondition);
}

// A server that answers 304 when the client's validator matches.
Reply Revalidating(const SeenRequest& request) {
  if (request.target == "/etag") {
    if (request.Header("if-none-match") == "\"v7\"") return Reply{"HTTP/1.1 304 Not Modified\r\nETag: \"v7\"\r\n\r\n"};
    return Reply{Http(200, "etag body", {"ETag: \"v7\"", "Content-Type: application/json"})};
  }
  if (request.target == "/modified") {
    if (request.Header("if-modified-since") == "Tue, 01 Oct 2024 10:00:00 GMT") {
      return Reply{"HTTP/1.1 304 Not Modified\r\n\r\n"};
    }
    return Reply{Http(200, "dated body", {"Last-Modified: Tue, 01 Oct 2024 10:00:00 GMT"})};
  }
  if (request.target == "/large") {
    if (!request.Header("if-none-match").empty()) return Reply{"HTTP/1.1 304 Not Modified\r\n\r\n"};
    return Reply{Http(200, std::string(Fetcher::kMaxCachedBodyBytes + 1, 'L'), {"ETag: \"big\""})};
  }
  if (request.target == "/no-store") {
    if (!request.Header("if-none-match").empty()) return Reply{"HTTP/1.1 304 Not Modified\r\n\r\n"};
    return Reply{Http(200, "private", {"ETag: \"s\"", "Cache-Control: private, No-Store"})};
  }
  return Reply{Http(404, "")};
}

TEST(Fetcher, RevalidatesWithEtag) {
  TestServer server(Revalidating);
  Fetcher fetcher(TestConfig());
  auto first = Get(fetcher, server.Url("/etag"));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_FALSE(first->from_cache);
  EXPECT_EQ(first->body, "etag body");

  auto second = Get(fetcher, server.Url("/etag"));
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_TRUE(second->from_cache);
  EXPECT_EQ(second->status, 200);
  EXPECT_EQ(second->body, "etag body");
  EXPECT_EQ(second->content_type, "application/json");
  EXPECT_EQ(second->etag, "\"v7\"");

  const auto seen = server.requests();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].Header("if-none-match"), "");
  EXPECT_EQ(seen[1].Header("if-none-match"), "\"v7\"");
}

TEST(Fetcher, RevalidatesWithLastModified) {
  TestServer server(Revalidating);
  Fetcher fetcher(TestConfig());
  ASSERT_TRUE(Get(fetcher, server.Url("/modified")).ok());
  auto second = Get(fetcher, server.Url("/modified"));
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_TRUE(second->from_cache);
  EXPECT_EQ(second->body, "dated body");
  EXPECT_EQ(server.requests().at(1).Header("if-modified-since"), "Tue, 01 Oct 2024 10:00:00 GMT");
}

TEST(Fetcher, RevalidatesTheTargetOfARedirect) {
  TestServer server([](const SeenRequest& request) {
    if (request.target == "/old") return Reply{Redirect(301, "/etag")};
    return Revalidating(request);
  });
  Fetcher fetcher(TestConfig());
  ASSERT_TRUE(Get(fetcher, server.Url("/old")).ok());
  auto second = Get(fetcher, server.Url("/old"));
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_TRUE(second->from_cache);
  EXPECT_EQ(second->body, "etag body");
  EXPECT_EQ(second->final_url, server.Url("/etag"));
  EXPECT_EQ(second->redirects, std::vector<std::string>{server.Url("/old")});
}

TEST(Fetcher, DoesNotCacheNoStoreLargeBodiesOrWhenDisabled) {
  TestServer server(Revalidating);
  Fetcher fetcher(TestConfig());
  ASSERT_TRUE(Get(fetcher, server.Url("/no-store")).ok());
  auto second = Get(fetcher, server.Url("/no-store"));
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_FALSE(second->from_cache);
  EXPECT_EQ(second->body, "private");
  EXPECT_EQ(server.requests().at(1).Header("if-none-match"), "");

  // Bodies over kMaxCachedBodyBytes are returned but not kept.
  ASSERT_TRUE(Get(fetcher, server.Url("/large")).ok());
  auto large = Get(fetcher, server.Url("/large"));
  ASSERT_TRUE(large.ok()) << large.status().ToString();
  EXPECT_FALSE(large->from_cache);
  EXPECT_EQ(large->body.size(), Fetcher::kMaxCachedBodyBytes + 1);
  EXPECT_EQ(server.requests().back().Header("if-none-match"), "");

  config::FetchConfig config = TestConfig();
  config.cache_entries = 0;
  Fetcher uncached(config);
  ASSERT_TRUE(Get(uncached, server.Url("/etag")).ok());
  auto again = Get(uncached, server.Url("/etag"));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->from_cache);
  EXPECT_EQ(server.requests().back().Header("if-none-match"), "");
}

TEST(Fetcher, ServesManyThreadsAtOnce) {
  TestServer server(Revalidating);
  Fetcher fetcher(TestConfig());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        auto result = Get(fetcher, server.Url(i % 2 == 0 ? "/etag" : "/modified"));
        if (!result.ok() || (result->body != "etag body" && result->body != "dated body")) ++failures;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
}

// ---- Freshness --------------------------------------------------------------------

// A freshness clock that moves only when told to.
class FakeClock {
 public:
  Clock::time_point Now() const {
    std::lock_guard lock(mu_);
    return now_;
  }
  void Advance(std::chrono::seconds seconds) {
    std::lock_guard lock(mu_);
    now_ += seconds;
  }
  FreshnessClock Function() {
    return [this] { return Now(); };
  }

 private:
  mutable std::mutex mu_;
  Clock::time_point now_ = Clock::time_point() + std::chrono::hours(24);
};

constexpr std::string_view kNotModified = "HTTP/1.1 304 Not Modified\r\nETag: \"f1\"\r\n";

// Responses with the freshness information their path names; "f1" is the
// ETag of the ones that have one, and a request that sends it gets a 304.
Reply Freshening(const SeenRequest& request) {
  const std::string& path = request.target;
  const bool matches = request.Header("if-none-match") == "\"f1\"";
  const std::string date = "Date: Tue, 01 Oct 2024 10:00:00 GMT";
  if (path == "/max-age") {
    if (matches) return Reply{std::string(kNotModified) + "Cache-Control: max-age=50\r\n\r\n"};
    return Reply{Http(200, "max-age body", {"ETag: \"f1\"", "Cache-Control: max-age=100", "Content-Type: text/x"})};
  }
  if (path == "/silent-304") {
    if (matches) return Reply{std::string(kNotModified) + "\r\n"};
    return Reply{Http(200, "silent body", {"ETag: \"f1\"", "Cache-Control: max-age=100"})};
  }
  if (path == "/no-cache") {
    if (matches) return Reply{std::string(kNotModified) + "Cache-Control: no-cache\r\n\r\n"};
    return Reply{Http(200, "no-cache body", {"ETag: \"f1\"", "Cache-Control: no-cache"})};
  }
  if (path == "/no-store") {
    if (matches) return Reply{std::string(kNotModified) + "\r\n"};
    return Reply{Http(200, "no-store body", {"ETag: \"f1\"", "Cache-Control: max-age=100, NO-STORE"})};
  }
  if (path == "/vary-star") return Reply{Http(200, "vary body", {"Cache-Control: max-age=100", "Vary: *"})};
  if (path == "/long") return Reply{Http(200, "long body", {"Cache-Control: max-age=100000"})};
  if (path == "/fresh-only") return Reply{Http(200, "fresh-only body", {"Cache-Control: max-age=100"})};
  if (path == "/plain") return Reply{Http(200, "plain body")};
  if (path == "/quoted") return Reply{Http(200, "q", {"Cache-Control: public, max-age=\"20\""})};
  if (path == "/repeated") return Reply{Http(200, "r", {"Cache-Control: max-age=100", "Cache-Control: max-age=10"})};
  if (path == "/malformed") return Reply{Http(200, "m", {"Cache-Control: max-age=1x"})};
  if (path == "/s-maxage") return Reply{Http(200, "s", {"Cache-Control: s-maxage=1000, max-age=10"})};
  if (path == "/expires") return Reply{Http(200, "e", {date, "Expires: Tue, 01 Oct 2024 10:00:30 GMT"})};
  if (path == "/expires-past") return Reply{Http(200, "e", {date, "Expires: Tue, 01 Oct 2024 09:00:00 GMT"})};
  if (path == "/expires-invalid") return Reply{Http(200, "e", {date, "Expires: 0"})};
  if (path == "/expires-no-date") return Reply{Http(200, "e", {"Expires: Tue, 01 Oct 2024 10:00:30 GMT"})};
  if (path == "/expires-and-max-age") {
    return Reply{Http(200, "e", {date, "Expires: Tue, 01 Oct 2024 10:00:30 GMT", "Cache-Control: max-age=100"})};
  }
  if (path == "/aged") return Reply{Http(200, "aged body", {"Cache-Control: max-age=100", "Age: 90"})};
  if (path == "/moved") return Reply{Redirect(301, "/max-age")};
  if (path == "/found") return Reply{Redirect(302, "/max-age")};
  if (path == "/found-fresh") return Reply{Http(302, "", {"Location: /max-age", "Cache-Control: max-age=30"})};
  if (path == "/moved-no-store") return Reply{Http(301, "", {"Location: /max-age", "Cache-Control: no-store"})};
  return Reply{Http(404, "")};
}

Result<FetchResult> Reuse(Fetcher& fetcher, const std::string& url) {
  FetchRequest request;
  request.url = url;
  request.reuse_fresh = true;
  return fetcher.Fetch(request);
}

// How many requests the server saw for `target`.
size_t Requests(const TestServer& server, const std::string& target) {
  size_t n = 0;
  for (const SeenRequest& request : server.requests()) n += request.target == target ? 1 : 0;
  return n;
}

TEST(FetcherFreshness, FreshResponsesAnswerWithoutARequest) {
  TestServer server(Freshening);
  FakeClock clock;
  Fetcher fetcher(TestConfig(), nullptr, clock.Function());
  auto first = Reuse(fetcher, server.Url("/max-age"));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_FALSE(first->from_cache);

  clock.Advance(std::chrono::seconds(99));
  auto second = Reuse(fetcher, server.Url("/max-age#fragment"));
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_TRUE(second->from_cache);
  EXPECT_EQ(second->status, 200);
  EXPECT_EQ(second->body, "max-age body");
  EXPECT_EQ(second->content_type, "text/x");
  EXPECT_EQ(second->etag, "\"f1\"");
  EXPECT_EQ(second->final_url, server.Url("/max-age"));
  EXPECT_TRUE(second->redirects.empty());
  EXPECT_EQ(Requests(server, "/max-age"), 1u);
}

TEST(FetcherFreshness, WithoutReuseFreshEveryFetchAsksTheServer) {
  TestServer server(Freshening);
  FakeClock clock;
  Fetcher fetcher(TestConfig(), nullptr, clock.Function());
  ASSERT_TRUE(Reuse(fetcher, server.Url("/max-age")).ok());
  auto validated = Get(fetcher, server.Url("/max-age"));
  ASSERT_TRUE(validated.ok()) << validated.status().ToString();
  EXPECT_TRUE(validated->from_cache);
  EXPECT_EQ(validated->body, "max-age body");
  ASSERT_EQ(server.requests().size(), 2u);
  EXPECT_EQ(server.requests()[1].Header("if-none-match"), "\"f1\"");

  // Without validators the request is unconditional.
  ASSERT_TRUE(Reuse(fetcher, server.Url("/plain")).ok());
  auto refetched = Get(fetcher, server.Url("/plain"));
  ASSERT_TRUE(refetched.ok()) << refetched.status().ToString();
  EXPECT_FALSE(refetched->from_cache);
  EXPECT_EQ(refetched->body, "plain body");
  ASSERT_EQ(Requests(server, "/plain"), 2u);
  EXPECT_EQ(server.requests().back().Header("if-none-match"), "");
  EXPECT_EQ(server.requests().back().Header("if-modified-since"), "");

  // Both were fresh all along.
  const size_t before = server.requests().size();
  ASSERT_TRUE(Reuse(fetcher, server.Url("/max-age")).ok());
  ASSERT_TRUE(Reuse(fetcher, server.Url("/plain")).ok());
  EXPECT_EQ(server.requests().size(), before);
}

TEST(FetcherFreshness, StaleEntriesAreRevalidatedAndRenewed) {
  TestServer server(Freshening);
  FakeClock clock;
  Fetcher fetcher(TestConfig(), nullptr, clock.Function());
  ASSERT_TRUE(Reuse(fetcher, server.Url("/max-age")).ok());
  clock.Advance(std::chrono::seconds(100));
  auto revalidated = Reuse(fetcher, server.Url("/max-age"));
  ASSERT_TRUE(revalidated.ok()) << revalidated.status().ToString();
  EXPECT_TRUE(revalidated->from_cache);
  EXPECT_EQ(revalidated->body, "max-age body");
  ASSERT_EQ(Requests(server, "/max-age"), 2u);
  EXPECT_EQ(server.requests().back().Header("if-none-match"), "\"f1\"");

  // The 304 said max-age=50.
  clock.Advance(std::chrono::seconds(49));
  ASSERT_TRUE(Reuse(fetcher, server.Url("/max-age")).ok());
  EXPECT_EQ(Requests(server, "/max-age"), 2u);
  clock.Advance(std::chrono::seconds(1));
  ASSERT_TRUE(Reuse(fetcher, server.Url("/max-age")).ok());
  EXPECT_EQ(Requests(server, "/max-age"), 3u);

  // A 304 that says nothing renews the stored lifetime (100 s).
  ASSERT_TRUE(Reuse(fetcher, server.Url("/silent-304")).ok());
  clock.Advance(std::chrono::seconds(101));
  auto silent = Reuse(fetcher, server.Url("/silent-304"));
  ASSERT_TRUE(silent.ok()) << silent.status().ToString();
  EXPECT_TRUE(silent->from_cache);
  EXPECT_EQ(silent->body, "silent body");
  EXPECT_EQ(Requests(server, "/silent-304"), 2u);
  clock.Advance(std::chrono::seconds(99));
  ASSERT_TRUE(Reuse(fetcher, server.Url("/silent-304")).ok());
  EXPECT_EQ(Requests(server, "/silent-304"), 2u);
  clock.Advance(std::chrono::seconds(2));
  ASSERT_TRUE(Reuse(fetcher, server.Url("/silent-304")).ok());
  EXPECT_EQ(Requests(server, "/silent-304"), 3u);
}

TEST(FetcherFreshness, NoStoreAndVaryStarAreNeverReused) {
  TestServer server(Freshening);
  FakeClock clock;
  Fetcher fetcher(TestConfig(), nullptr, clock.Function());
  for (const char* path : {"/no-store", "/vary-star", "/max-age"}) {
    for (int i = 0; i < 3; ++i) {
      auto result = Reuse(fetcher, server.Url(path));
      ASSERT_TRUE(result.ok()) << path << ": " << result.status().ToString();
      EXPECT_EQ(result->from_cache, std::string_view(path) == "/max-age" && i > 0) << path;
    }
  }
  EXPECT_EQ(Requests(server, "/no-store"), 3u);
  EXPECT_EQ(Requests(server, "/vary-star"), 3u);
  EXPECT_EQ(Requests(server, "/max-age"), 1u);
  for (const SeenRequest& request : server.requests()) EXPECT_EQ(request.Header("if-none-match"), "");
}

TEST(FetcherFreshness, NoCacheResponsesAreAlwaysRevalidated) {
  TestServer server(Freshening);
  FakeClock clock;
  Fetcher fetcher(TestConfig(), nullptr, clock.Function());
  ASSERT_TRUE(Reuse(fetcher, server.Url("/no-cache")).ok());
  for (int i = 0; i < 2; ++i) {
    auto result = Reuse(fetcher, server.Url("/no-cache"));
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    EXPECT_TRUE(result->from_cache);
    EXPECT_EQ(result->body, "no-cache body");
  }
  const auto seen = server.requests();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].Header("if-none-match"), "");
  EXPECT_EQ(seen[1].Header("if-none-match"), "\"f1\"");
  EXPECT_EQ(seen[2].Header("if-none-match"), "\"f1\"");

  // The same flow with a max-age asks only once.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Reuse(fetcher, server.Url("/max-age")).ok());
  EXPECT_EQ(Requests(server, "/max-age"), 1u);
}

TEST(FetcherFreshness, MaxAgeIsCappedByMaxFreshSeconds) {
  TestServer server(Freshening);
  FakeClock clock;
  config::FetchConfig config = TestConfig();
  config.max_fresh_seconds = 3600;
  Fetcher fetcher(config, nullptr, clock.Function());
  ASSERT_TRUE(Reuse(fetcher, server.Url("/long")).ok());
  clock.Advance(std::chrono::seconds(3599));
  ASSERT_TRUE(Reuse(fetcher, server.Url("/long")).ok());
  EXPECT_EQ(Requests(server, "/long"), 1u);
  clock.Advance(std::chrono::seconds(1));
  auto refetched = Reuse(fetcher, server.Url("/long"));
  ASSERT_TRUE(refetched.ok()) << refetched.status().ToString();
  EXPECT_FALSE(refetched->from_cache);
  EXPECT_EQ(Requests(server, "/long"), 2u);

  // The cap also bounds the default.
  config.max_fresh_seconds = 10;
  config.default_fresh_seconds = 60;
  Fetcher capped(config, nullptr, clock.Function());
  ASSERT_TRUE(Reuse(capped, server.Url("/plain")).ok());
  clock.Advance(std::chrono::seconds(9));
  ASSERT_TRUE(Reuse(capped, server.Url("/plain")).ok());
  EXPECT_EQ(Requests(server, "/plain"), 1u);
  clock.Advance(std::chrono::seconds(1));
  ASSERT_TRUE(Reuse(capped, server.Url("/plain")).ok());
  EXPECT_EQ(Requests(server, "/plain"), 2u);
}

TEST(FetcherFreshness, DefaultFreshSecondsWithoutMaxAge) {
  TestServer server(Freshening);
  FakeClock clock;
  config::FetchConfig config = TestConfig();
  config.default_fresh_seconds = 60;
  Fetcher fetcher(config, nullptr, clock.Function());
  ASSERT_TRUE(Reuse(fetcher, server.Url("/plain")).ok());
  clock.Advance(std::chrono::seconds(59));
  auto fresh = Reuse(fetcher, server.Url("/plain"));
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  EXPECT_TRUE(fresh->from_cache);
  EXPECT_EQ(fresh->body, "plain body");
  EXPECT_EQ(Requests(server, "/plain"), 1u);
  clock.Advance(std::chrono::seconds(1));
  ASSERT_TRUE(Reuse(fetcher, server.Url("/plain")).ok());
  EXPECT_EQ(Requests(server, "/plain"), 2u);
}

TEST(FetcherFreshness, DefaultFreshSecondsZeroMeansNoReuseWithoutMaxAge) {
  TestServer server(Freshening);
  FakeClock clock;
  config::FetchConfig config = TestConfig();
  config.default_fresh_seconds = 0;
  Fetcher fetcher(config, nullptr, clock.Function());
  for (int i = 0; i < 3; ++i) {
    auto plain = Reuse(fetcher, server.Url("/plain"));
    ASSERT_TRUE(plain.ok()) << plain.status().ToString();
    EXPECT_FALSE(plain->from_cache);
    ASSERT_TRUE(Reuse(fetcher, server.Url("/max-age")).ok());
  }
  EXPECT_EQ(Requests(server, "/plain"), 3u);
  EXPECT_EQ(Requests(server, "/max-age"), 1u);  // an explicit max-age still counts
}

TEST(FetcherFreshness, CacheEntriesZeroDisablesFreshness) {
  TestServer server(Freshening);
  FakeClock clock;
  config::FetchConfig config = TestConfig();
  config.cache_entries = 0;
  Fetcher uncached(config, nullptr, clock.Function());
  Fetcher cached(TestConfig(), nullptr, clock.Function());
  for (int i = 0; i < 3; ++i) {
    auto result = Reuse(uncached, server.Url("/max-age"));
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    EXPECT_FALSE(result->from_cache);
    ASSERT_TRUE(Reuse(cached, server.Url("/plain")).ok());
  }
  EXPECT_EQ(Requests(server, "/max-age"), 3u);
  EXPECT_EQ(Requests(server, "/plain"), 1u);
  for (const SeenRequest& request : server.requests()) EXPECT_EQ(request.Header("if-none-match"), "");
}

TEST(FetcherFreshness, ResponsesWithoutValidatorsAreCachedWhileFresh) {
  TestServer server(Freshening);
  FakeClock clock;
  Fetcher fetcher(TestConfig(), nullptr, clock.Function());
  ASSERT_TRUE(Reuse(fetcher, server.Url("/fresh-only")).ok());
  auto fresh = Reuse(fetcher, server.Url("/fresh-only"));
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  EXPECT_TRUE(fresh->from_cache);
  EXPECT_EQ(fresh->body, "fresh-only body");
  EXPECT_EQ(Requests(server, "/fresh-only"), 1u);

  clock.Advance(std::chrono::seconds(100));
  auto refetched = Reuse(fetcher, server.Url("/fresh-only"));
  ASSERT_TRUE(refetched.ok()) << refetched.status().ToString();
  EXPECT_FALSE(refetched->from_cache);
  EXPECT_EQ(refetched->body, "fresh-only body");
  ASSERT_EQ(Requests(server, "/fresh-only"), 2u);
  EXPECT_EQ(server.requests().back().Header("if-none-match"), "");
  EXPECT_EQ(server.requests().back().Header("if-modified-since"), "");

  // Cached again, fresh from the new response.
  clock.Advance(std::chrono::seconds(99));
  ASSERT_TRUE(Reuse(fetcher, server.Url("/fresh-only")).ok());
  EXPECT_EQ(Requests(server, "/fresh-only"), 2u);
}

TEST(FetcherFreshness, ReadsCacheControlStrictly) {
  TestServer server(Freshening);
  FakeClock clock;
  Fetcher fetcher(TestConfig(), nullptr, clock.Function());
  struct Case {
    const char* path;
    int fresh_seconds;
  };
  // max-age in quotes is read; the smallest of several wins; a malformed
  // one means stale; s-maxage is for shared caches only.
  for (const Case& c : {Case{"/quoted", 20}, Case{"/repeated", 10}, Case{"/malformed", 0}, Case{"/s-maxage", 10}}) {
    ASSERT_TRUE(Reuse(fetcher, server.Url(c.path)).ok()) << c.path;
    if (c.fresh_seconds > 0) {
      clock.Advance(std::chrono::seconds(c.fresh_seconds - 1));
      ASSERT_TRUE(Reuse(fetcher, server.Url(c.path)).ok()) << c.path;
      EXPECT_EQ(Requests(server, c.path), 1u) << c.path;
      clock.Advance(std::chrono::seconds(1));
    }
    ASSERT_TRUE(Reuse(fetcher, server.Url(c.path)).ok()) << c.path;
    EXPECT_EQ(Requests(server, c.path), 2u) << c.path;
  }
}

TEST(FetcherFreshness, ExpiresCountsFromDateAndYieldsToMaxAge) {
  TestServer server(Freshening);
  FakeClock clock;
  Fetcher fetcher(TestConfig(), nullptr, clock.Function());
  ASSERT_TRUE(Reuse(fetcher, server.Url("/expires")).ok());
  ASSERT_TRUE(Reuse(fetcher, server.Url("/expires-and-max-age")).ok());
  clock.Advance(std::chrono::seconds(29));
  ASSERT_TRUE(Reuse(fetcher, server.Url("/expires")).ok());
  EXPECT_EQ(Requests(server, "/expires"), 1u);
  clock.Advance(std::chrono::seconds(1));
  ASSERT_TRUE(Reuse(fetcher, server.Url("/expires")).ok());
  EXPECT_EQ(Requests(server, "/expires"), 2u);
  ASSERT_TRUE(Reuse(fetcher, server.Url("/expires-and-max-age")).ok());
  EXPECT_EQ(Requests(server, "/expires-and-max-age"), 1u);

  // In the past, invalid, or without a Date: stale on arrival, never the default.
  for (const char* path : {"/expires-past", "/expires-invalid", "/expires-no-date"}) {
    ASSERT_TRUE(Reuse(fetcher, server.Url(path)).ok()) << path;
    ASSERT_TRUE(Reuse(fetcher, server.Url(path)).ok()) << path;
    EXPECT_EQ(Requests(server, path), 2u) << path;
  }
}

TEST(FetcherFreshness, AgeShortensFreshness) {
  TestServer server(Freshening);
  FakeClock clock;
  Fetcher fetcher(TestConfig(), nullptr, clock.Function());
  ASSERT_TRUE(Reuse(fetcher, server.Url("/aged")).ok());
  clock.Advance(std::chrono::seconds(9));
  ASSERT_TRUE(Reuse(fetcher, server.Url("/aged")).ok());
  EXPECT_EQ(Requests(server, "/aged"), 1u);
  clock.Advance(std::chrono::seconds(1));
  ASSERT_TRUE(Reuse(fetcher, server.Url("/aged")).ok());
  EXPECT_EQ(Requests(server, "/aged"), 2u);
}

TEST(FetcherFreshness, RedirectOutcomesAreReusedUnderTheRequestedUrl) {
  TestServer server(Freshening);
  FakeClock clock;
  Fetcher fetcher(TestConfig(), nullptr, clock.Function());
  ASSERT_TRUE(Reuse(fetcher, server.Url("/moved")).ok());
  auto reused = Reuse(fetcher, server.Url("/moved"));
  ASSERT_TRUE(reused.ok()) << reused.status().ToString();
  EXPECT_TRUE(reused->from_cache);
  EXPECT_EQ(reused->body, "max-age body");
  EXPECT_EQ(reused->final_url, server.Url("/max-age"));
  EXPECT_EQ(reused->redirects, std::vector<std::string>{server.Url("/moved")});
  EXPECT_EQ(Requests(server, "/moved"), 1u);
  EXPECT_EQ(Requests(server, "/max-age"), 1u);

  // The 301 got the default 60 s; after that only the redirect is asked
  // again and its still fresh target answers from the cache.
  clock.Advance(std::chrono::seconds(60));
  auto redirected = Reuse(fetcher, server.Url("/moved"));
  ASSERT_TRUE(redirected.ok()) << redirected.status().ToString();
  EXPECT_TRUE(redirected->from_cache);
  EXPECT_EQ(redirected->final_url, server.Url("/max-age"));
  EXPECT_EQ(redirected->redirects, std::vector<std::string>{server.Url("/moved")});
  EXPECT_EQ(Requests(server, "/moved"), 2u);
  EXPECT_EQ(Requests(server, "/max-age"), 1u);

  // A 302 without freshness information, or a no-store redirect, is asked
  // every time; a 302 with max-age is not.
  for (const char* path : {"/found", "/moved-no-store", "/found-fresh", "/found", "/moved-no-store", "/found-fresh"}) {
    auto result = Reuse(fetcher, server.Url(path));
    ASSERT_TRUE(result.ok()) << path << ": " << result.status().ToString();
    EXPECT_EQ(result->body, "max-age body") << path;
    EXPECT_EQ(result->redirects, std::vector<std::string>{server.Url(path)}) << path;
  }
  EXPECT_EQ(Requests(server, "/found"), 2u);
  EXPECT_EQ(Requests(server, "/moved-no-store"), 2u);
  EXPECT_EQ(Requests(server, "/found-fresh"), 1u);
  EXPECT_EQ(Requests(server, "/max-age"), 1u);
}

TEST(FetcherFreshness, FreshEntriesAnswerOnlyTheSameAcceptAndBodyCap) {
  TestServer server(Freshening);
  FakeClock clock;
  Fetcher fetcher(TestConfig(), nullptr, clock.Function());
  ASSERT_TRUE(Reuse(fetcher, server.Url("/max-age")).ok());

  FetchRequest small;
  small.url = server.Url("/max-age");
  small.reuse_fresh = true;
  small.max_bytes = 4;
  EXPECT_EQ(fetcher.Fetch(small).status().code(), StatusCode::kResourceExhausted);
  ASSERT_EQ(Requests(server, "/max-age"), 2u);
  EXPECT_EQ(server.requests().back().Header("if-none-match"), "");

  FetchRequest html;
  html.url = server.Url("/max-age");
  html.reuse_fresh = true;
  html.accept = "text/html";
  auto other = fetcher.Fetch(html);
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  EXPECT_FALSE(other->from_cache);
  ASSERT_EQ(Requests(server, "/max-age"), 3u);
  EXPECT_EQ(server.requests().back().Header("if-none-match"), "");
  EXPECT_EQ(server.requests().back().Header("accept"), "text/html");
}

TEST(FetcherFreshness, DefiniteErrorsDropTheEntry) {
  std::atomic<int> answer{200};
  TestServer server([&answer](const SeenRequest&) {
    const int status = answer.load();
    if (status == 200) return Reply{Http(200, "there", {"Cache-Control: max-age=100"})};
    return Reply{Http(status, "")};
  });
  FakeClock clock;
  Fetcher fetcher(TestConfig(), nullptr, clock.Function());
  ASSERT_TRUE(Reuse(fetcher, server.Url("/doc")).ok());

  // A passing failure leaves the fresh entry in place...
  answer = 503;
  EXPECT_EQ(Get(fetcher, server.Url("/doc")).status().code(), StatusCode::kUnavailable);
  ASSERT_TRUE(Reuse(fetcher, server.Url("/doc")).ok());
  EXPECT_EQ(server.requests().size(), 2u);

  // ...a definite one ends it.
  answer = 404;
  EXPECT_EQ(Get(fetcher, server.Url("/doc")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Reuse(fetcher, server.Url("/doc")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(server.requests().size(), 4u);
}

TEST(FetcherFreshness, ManyThreadsShareFreshEntries) {
  TestServer server(Freshening);
  Fetcher fetcher(TestConfig());
  ASSERT_TRUE(Reuse(fetcher, server.Url("/max-age")).ok());
  ASSERT_TRUE(Reuse(fetcher, server.Url("/moved")).ok());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        auto result = Reuse(fetcher, server.Url(i % 2 == 0 ? "/max-age" : "/moved"));
        if (!result.ok() || !result->from_cache || result->body != "max-age body") ++failures;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(server.requests().size(), 2u);
}

// ---- HTTPS ------------------------------------------------------------------------

TEST(Fetcher, FetchesOverVerifiedTls) {
  TestServer server(
      [](const SeenRequest& request) {
        if (request.target == "/hop") return Reply{Redirect(302, "/badge")};
        return Reply{Http(200, "{\"type\":\"BadgeClass\"}", {"Content-Type: application/json"})};
      },
      &TestPki::Get().local());
  Fetcher fetcher(TestConfig());
  for (const std::string host : {"127.0.0.1", "localhost"}) {
    auto result = Get(fetcher, server.Url("/hop", host));
    ASSERT_TRUE(result.ok()) << host << ": " << result.status().ToString();
    EXPECT_EQ(result->body, "{\"type\":\"BadgeClass\"}");
    EXPECT_EQ(result->final_url, server.Url("/badge", host));
  }
}

TEST(Fetcher, RefusesUntrustedCertificates) {
  TestServer server([](const SeenRequest&) { return Reply{Http(200, "x")}; }, &TestPki::Get().untrusted());
  Fetcher fetcher(TestConfig());
  auto result = Get(fetcher, server.Url("/"));
  EXPECT_EQ(result.status().code(), StatusCode::kFailedPrecondition) << result.status().ToString();
  EXPECT_TRUE(Contains(result.status().message(), "certificate")) << result.status().message();
  EXPECT_TRUE(server.requests().empty());

  // Without fetch.ca_file even the test CA is unknown.
  config::FetchConfig config = TestConfig();
  config.ca_file.clear();
  Fetcher system_store_only(config);
  TestServer trusted_elsewhere([](const SeenRequest&) { return Reply{Http(200, "x")}; }, &TestPki::Get().local());
  EXPECT_EQ(Get(system_store_only, trusted_elsewhere.Url("/")).status().code(), StatusCode::kFailedPrecondition);
}

TEST(Fetcher, RefusesCertificatesForOtherHosts) {
  TestServer server([](const SeenRequest&) { return Reply{Http(200, "x")}; }, &TestPki::Get().other_host());
  Fetcher fetcher(TestConfig());
  for (const std::string host : {"127.0.0.1", "localhost"}) {
    auto result = Get(fetcher, server.Url("/", host));
    EXPECT_EQ(result.status().code(), StatusCode::kFailedPrecondition) << result.status().ToString();
    EXPECT_TRUE(Contains(result.status().message(), "not valid for " + host)) << result.status().message();
  }
  EXPECT_TRUE(server.requests().empty());
}

TEST(Fetcher, RefusesHttpsToHttpDowngrade) {
  TestServer plain([](const SeenRequest&) { return Reply{Http(200, "downgraded")}; });
  const std::string plain_url = plain.Url("/badge");
  TestServer secure(
      [plain_url](const SeenRequest& request) {
        return Reply{request.target == "/ok" ? Http(200, "secure") : Redirect(301, plain_url)};
      },
      &TestPki::Get().local());
  Fetcher fetcher(TestConfig());
  auto result = Get(fetcher, secure.Url("/badge"));
  EXPECT_EQ(result.status().code(), StatusCode::kPermissionDenied) << result.status().ToString();
  EXPECT_TRUE(Contains(result.status().message(), "from https to http")) << result.status().message();
  EXPECT_TRUE(plain.requests().empty());

  // The other way round is fine.
  const std::string secure_url = secure.Url("/ok");
  TestServer upgrading([secure_url](const SeenRequest&) { return Reply{Redirect(301, secure_url)}; });
  auto upgraded = Get(fetcher, upgrading.Url("/"));
  ASSERT_TRUE(upgraded.ok()) << upgraded.status().ToString();
  EXPECT_EQ(upgraded->body, "secure");
  EXPECT_EQ(upgraded->final_url, secure_url);
}

TEST(Fetcher, ReportsAnUnreadableCaFile) {
  config::FetchConfig config = TestConfig();
  config.ca_file = "/nonexistent/ca.pem";
  Fetcher fetcher(config);
  EXPECT_EQ(fetcher.init_status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(fetcher.init_status().message(), "fetch.ca_file")) << fetcher.init_status().message();
  EXPECT_EQ(Get(fetcher, "https://example.org/").status().code(), StatusCode::kFailedPrecondition);
}

TEST(Fetcher, RefusesBadUrlsBeforeAnyNetworkAccess) {
  Fetcher fetcher(TestConfig());
  for (const char* bad : {"ftp://example.org/", "http://user@example.org/", "not a url", "http://example.org:0/"}) {
    EXPECT_EQ(Get(fetcher, bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace backpack
