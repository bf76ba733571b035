#include "config/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace backpack::config {
namespace {

constexpr std::string_view kOrigin = "test.toml";

// Succeeds when `status` is kInvalidArgument and its message contains every
// one of `parts`; prints the message otherwise.
::testing::AssertionResult IsInvalid(const Status& status,
                                     std::initializer_list<std::string_view> parts) {
  if (status.ok()) return ::testing::AssertionFailure() << "status is OK";
  if (status.code() != StatusCode::kInvalidArgument) {
    return ::testing::AssertionFailure() << "wrong code: " << status.ToString();
  }
  for (std::string_view part : parts) {
    if (status.message().find(part) == std::string::npos) {
      return ::testing::AssertionFailure()
             << "message \"" << status.message() << "\" lacks \"" << part << "\"";
    }
  }
  return ::testing::AssertionSuccess();
}

Status ParseStatus(std::string_view text) { return ParseConfig(text, kOrigin).status(); }

// Every field, so a test comparing against defaults covers the whole struct.
void ExpectSameConfig(const Config& a, const Config& b) {
  EXPECT_EQ(a.server.listen, b.server.listen);
  EXPECT_EQ(a.server.public_url, b.server.public_url);
  EXPECT_EQ(a.server.node_name, b.server.node_name);
  EXPECT_EQ(a.server.io_threads, b.server.io_threads);
  EXPECT_EQ(a.server.worker_threads, b.server.worker_threads);
  EXPECT_EQ(a.server.max_connections, b.server.max_connections);
  EXPECT_EQ(a.server.max_header_bytes, b.server.max_header_bytes);
  EXPECT_EQ(a.server.max_body_bytes, b.server.max_body_bytes);
  EXPECT_EQ(a.server.read_timeout_ms, b.server.read_timeout_ms);
  EXPECT_EQ(a.server.idle_timeout_ms, b.server.idle_timeout_ms);
  EXPECT_EQ(a.server.write_timeout_ms, b.server.write_timeout_ms);
  EXPECT_EQ(a.server.shutdown_grace_ms, b.server.shutdown_grace_ms);
  EXPECT_EQ(a.server.max_pending_requests, b.server.max_pending_requests);
  EXPECT_EQ(a.server.tls_cert_file, b.server.tls_cert_file);
  EXPECT_EQ(a.server.tls_key_file, b.server.tls_key_file);
  EXPECT_EQ(a.server.port_file, b.server.port_file);
  EXPECT_EQ(a.storage.data_dir, b.storage.data_dir);
  EXPECT_EQ(a.storage.block_cache_mb, b.storage.block_cache_mb);
  EXPECT_EQ(a.accounts.session_ttl_hours, b.accounts.session_ttl_hours);
  EXPECT_EQ(a.accounts.verify_token_ttl_hours, b.accounts.verify_token_ttl_hours);
  EXPECT_EQ(a.accounts.reset_token_ttl_minutes, b.accounts.reset_token_ttl_minutes);
  EXPECT_EQ(a.accounts.signup_claim_ttl_hours, b.accounts.signup_claim_ttl_hours);
  EXPECT_EQ(a.accounts.min_password_length, b.accounts.min_password_length);
  EXPECT_EQ(a.accounts.max_emails_per_account, b.accounts.max_emails_per_account);
  EXPECT_EQ(a.accounts.scrypt_log2_n, b.accounts.scrypt_log2_n);
  EXPECT_EQ(a.accounts.login_attempts_per_minute, b.accounts.login_attempts_per_minute);
  EXPECT_EQ(a.accounts.signups_per_hour, b.accounts.signups_per_hour);
  EXPECT_EQ(a.accounts.mail_requests_per_hour, b.accounts.mail_requests_per_hour);
  EXPECT_EQ(a.accounts.cache_entries, b.accounts.cache_entries);
  EXPECT_EQ(a.fetch.allow_private, b.fetch.allow_private);
  EXPECT_EQ(a.fetch.timeout_ms, b.fetch.timeout_ms);
  EXPECT_EQ(a.fetch.max_bytes, b.fetch.max_bytes);
  EXPECT_EQ(a.fetch.max_redirects, b.fetch.max_redirects);
  EXPECT_EQ(a.fetch.cache_entries, b.fetch.cache_entries);
  EXPECT_EQ(a.fetch.ca_file, b.fetch.ca_file);
  EXPECT_EQ(a.mail.from, b.mail.from);
  EXPECT_EQ(a.mail.smtp_host, b.mail.smtp_host);
  EXPECT_EQ(a.mail.smtp_port, b.mail.smtp_port);
  EXPECT_EQ(a.mail.smtp_tls, b.mail.smtp_tls);
  EXPECT_EQ(a.mail.smtp_verify_peer, b.mail.smtp_verify_peer);
  EXPECT_EQ(a.mail.smtp_ca_file, b.mail.smtp_ca_file);
  EXPECT_EQ(a.mail.smtp_username, b.mail.smtp_username);
  EXPECT_EQ(a.mail.smtp_password, b.mail.smtp_password);
  EXPECT_EQ(a.mail.smtp_timeout_ms, b.mail.smtp_timeout_ms);
  EXPECT_EQ(a.mail.retry_max_hours, b.mail.retry_max_hours);
  EXPECT_EQ(a.oauth.access_token_ttl_seconds, b.oauth.access_token_ttl_seconds);
  EXPECT_EQ(a.oauth.refresh_token_ttl_days, b.oauth.refresh_token_ttl_days);
  EXPECT_EQ(a.oauth.code_ttl_seconds, b.oauth.code_ttl_seconds);
  EXPECT_EQ(a.oauth.registrations_per_hour, b.oauth.registrations_per_hour);
  EXPECT_EQ(a.federation.node_name, b.federation.node_name);
  EXPECT_EQ(a.federation.mode, b.federation.mode);
  EXPECT_EQ(a.federation.peers, b.federation.peers);
  EXPECT_EQ(a.federation.blocked, b.federation.blocked);
  EXPECT_EQ(a.federation.max_clock_skew_seconds, b.federation.max_clock_skew_seconds);
  EXPECT_EQ(a.federation.signature_lifetime_seconds, b.federation.signature_lifetime_seconds);
  EXPECT_EQ(a.federation.page_max_records, b.federation.page_max_records);
  EXPECT_EQ(a.federation.page_max_bytes, b.federation.page_max_bytes);
  EXPECT_EQ(a.federation.long_poll_seconds, b.federation.long_poll_seconds);
  EXPECT_EQ(a.federation.max_future_version_seconds, b.federation.max_future_version_seconds);
  EXPECT_EQ(a.federation.pokes_per_minute, b.federation.pokes_per_minute);
  EXPECT_EQ(a.federation.retry_min_seconds, b.federation.retry_min_seconds);
  EXPECT_EQ(a.federation.retry_max_seconds, b.federation.retry_max_seconds);
  EXPECT_EQ(a.federation.breaker_failures, b.federation.breaker_failures);
  EXPECT_EQ(a.federation.handshakes_per_minute, b.federation.handshakes_per_minute);
  EXPECT_EQ(a.federation.webfinger_per_minute, b.federation.webfinger_per_minute);
  EXPECT_EQ(a.federation.inbox_per_minute, b.federation.inbox_per_minute);
  EXPECT_EQ(a.admin.allow_remote, b.admin.allow_remote);
  EXPECT_EQ(a.log.level, b.log.level);
  EXPECT_EQ(a.log.format, b.log.format);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// A file under the test temp dir, unique per test and process, removed at
// the end of the test.
class TempFile {
 public:
  explicit TempFile(std::string_view contents) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = ::testing::TempDir() + "config_test_" + info->test_suite_name() + "_" + info->name() +
            "_" + std::to_string(::getpid()) + ".toml";
    std::ofstream(path_, std::ios::binary) << contents;
  }
  ~TempFile() {
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// --- Defaults and the example file -----------------------------------------

TEST(ConfigDefaults, AreValid) {
  EXPECT_TRUE(Validate(Config{}).ok()) << Validate(Config{}).ToString();
}

TEST(ConfigDefaults, EmptyFileGivesDefaults) {
  auto config = ParseConfig("", kOrigin);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ExpectSameConfig(*config, Config{});
}

TEST(ConfigDefaults, LoadWithoutFileOrFlagsGivesDefaults) {
  auto config = LoadConfig(Flags{});
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ExpectSameConfig(*config, Config{});
}

TEST(ExampleFile, ParsesToDefaults) {
  const std::string text = ReadFile(BACKPACK_EXAMPLE_CONFIG);
  ASSERT_FALSE(text.empty()) << "cannot read " << BACKPACK_EXAMPLE_CONFIG;
  auto config = ParseConfig(text, BACKPACK_EXAMPLE_CONFIG);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ExpectSameConfig(*config, Config{});
}

TEST(ExampleFile, LoadsThroughLoadConfig) {
  Flags flags;
  flags.config_file = BACKPACK_EXAMPLE_CONFIG;
  auto config = LoadConfig(flags);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ExpectSameConfig(*config, Config{});
}

// --- Parsing values ---------------------------------------------------------

TEST(ParseConfig, SetsEveryKindOfValue) {
  auto config = ParseConfig(R"(
[server]
listen = "[::1]:9000"
io_threads = 4
public_url = "https://badges.example.org"

[storage]
data_dir = "/var/lib/backpackd"

[mail]
smtp_verify_peer = false
smtp_port = 465
smtp_tls = "tls"

[log]
level = "debug"
)",
                            kOrigin);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->server.listen, "[::1]:9000");
  EXPECT_EQ(config->server.io_threads, 4);
  EXPECT_EQ(config->server.public_url, "https://badges.example.org");
  EXPECT_EQ(config->storage.data_dir, "/var/lib/backpackd");
  EXPECT_FALSE(config->mail.smtp_verify_peer);
  EXPECT_EQ(config->mail.smtp_port, 465);
  EXPECT_EQ(config->mail.smtp_tls, "tls");
  EXPECT_EQ(config->log.level, "debug");
  // Untouched keys keep their defaults.
  EXPECT_EQ(config->server.worker_threads, ServerConfig{}.worker_threads);
  EXPECT_EQ(config->log.format, "json");
}

TEST(ParseConfig, AcceptsDottedKeysAndInlineTables) {
  auto config = ParseConfig("server.io_threads = 3\nlog = { format = \"text\" }\n", kOrigin);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->server.io_threads, 3);
  EXPECT_EQ(config->log.format, "text");
}

TEST(ParseConfig, AcceptsRangeBounds) {
  auto config = ParseConfig("[server]\nio_threads = 1\nworker_threads = 256\n", kOrigin);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->server.io_threads, 1);
  EXPECT_EQ(config->server.worker_threads, 256);
}

// --- Parse errors -----------------------------------------------------------

TEST(ParseConfig, RejectsUnknownTable) {
  EXPECT_TRUE(IsInvalid(ParseStatus("[server]\nio_threads = 2\n\n[serverr]\nx = 1\n"),
                        {"test.toml: unknown table 'serverr'", "line 4"}));
}

TEST(ParseConfig, RejectsUnknownKey) {
  EXPECT_TRUE(IsInvalid(ParseStatus("[server]\nfoo = 1\n"),
                        {"test.toml: unknown key 'server.foo'", "line 2"}));
}

TEST(ParseConfig, RejectsUnknownTopLevelKey) {
  EXPECT_TRUE(
      IsInvalid(ParseStatus("listen = \"127.0.0.1:1\"\n"), {"test.toml: unknown key 'listen'"}));
}

TEST(ParseConfig, RejectsUnknownSubtable) {
  EXPECT_TRUE(IsInvalid(ParseStatus("[server.tls]\ncert = \"x\"\n"),
                        {"test.toml: unknown table 'server.tls'"}));
}

TEST(ParseConfig, RejectsWrongTypes) {
  EXPECT_TRUE(
      IsInvalid(ParseStatus("[server]\nio_threads = \"4\"\n"),
                {"test.toml: server.io_threads: expected an integer, got a string", "line 2"}));
  EXPECT_TRUE(IsInvalid(ParseStatus("[server]\nio_threads = 4.0\n"),
                        {"test.toml: server.io_threads: expected an integer, got a float"}));
  EXPECT_TRUE(IsInvalid(ParseStatus("[server]\nlisten = 8080\n"),
                        {"test.toml: server.listen: expected a string, got an integer"}));
  EXPECT_TRUE(IsInvalid(ParseStatus("[mail]\nsmtp_verify_peer = \"yes\"\n"),
                        {"test.toml: mail.smtp_verify_peer: expected a boolean, got a string"}));
  EXPECT_TRUE(IsInvalid(ParseStatus("[log]\nlevel = [\"info\"]\n"),
                        {"test.toml: log.level: expected a string, got an array"}));
}

TEST(ParseConfig, RejectsKnownTableOfWrongType) {
  EXPECT_TRUE(IsInvalid(ParseStatus("server = 1\n"),
                        {"test.toml: server: expected a table, got an integer"}));
  EXPECT_TRUE(IsInvalid(ParseStatus("[[server]]\nio_threads = 1\n"),
                        {"test.toml: server: expected a table, got an array"}));
}

TEST(ParseConfig, RejectsOutOfRange) {
  EXPECT_TRUE(IsInvalid(ParseStatus("[server]\nio_threads = 65\n"),
                        {"test.toml: server.io_threads", "65", "1..64", "line 2"}));
  EXPECT_TRUE(IsInvalid(ParseStatus("[server]\nio_threads = 0\n"), {"server.io_threads", "1..64"}));
  EXPECT_TRUE(IsInvalid(ParseStatus("[accounts]\nscrypt_log2_n = -15\n"),
                        {"accounts.scrypt_log2_n", "10..22"}));
  // Beyond int: must be range-checked before narrowing.
  EXPECT_TRUE(IsInvalid(ParseStatus("[server]\nmax_body_bytes = 4294968320\n"),
                        {"server.max_body_bytes", "1024..268435456"}));
  EXPECT_TRUE(
      IsInvalid(ParseStatus("[mail]\nsmtp_port = 65536\n"), {"mail.smtp_port", "1..65535"}));
}

TEST(ParseConfig, SyntaxErrorNamesOriginLineAndColumn) {
  const Status status = ParseStatus("[server]\nio_threads = 2\nlisten = \n");
  EXPECT_TRUE(IsInvalid(status, {"test.toml:3:"})) << status.message();
  EXPECT_TRUE(IsInvalid(ParseStatus("[server]\n[server]\n"), {"test.toml:2:"}));  // duplicate table
  EXPECT_TRUE(IsInvalid(ParseStatus("[server\n"), {"test.toml:1:"}));
}

// --- Validate ---------------------------------------------------------------

TEST(Validate, ChecksRangesLikeTheParser) {
  Config config;
  config.server.io_threads = 0;
  EXPECT_TRUE(IsInvalid(Validate(config), {"server.io_threads: 0 is out of range 1..64"}));
  config = Config{};
  config.accounts.min_password_length = 7;
  EXPECT_TRUE(IsInvalid(Validate(config), {"accounts.min_password_length", "8..128"}));
  config = Config{};
  config.storage.block_cache_mb = 65537;
  EXPECT_TRUE(IsInvalid(Validate(config), {"storage.block_cache_mb", "8..65536"}));
}

TEST(Validate, PolicyUrlsMustBeHttp) {
  Config config;
  config.server.privacy_policy_url = "javascript:alert(1)";
  EXPECT_TRUE(IsInvalid(Validate(config), {"server.privacy_policy_url"}));
  config.server.privacy_policy_url = "https://op.example/privacy";
  config.server.terms_of_service_url = "https://op.example/terms of use";
  EXPECT_TRUE(IsInvalid(Validate(config), {"server.terms_of_service_url"}));
  config.server.terms_of_service_url = "https://op.example/terms";
  EXPECT_TRUE(Validate(config).ok());
}

TEST(Validate, BadgeRetryBoundsAreOrdered) {
  Config config;
  config.badges.retry_min_seconds = 7200;
  config.badges.retry_max_seconds = 3600;
  EXPECT_TRUE(IsInvalid(Validate(config), {"badges.retry_min_seconds"}));
  config.badges.retry_max_seconds = 7200;
  EXPECT_TRUE(Validate(config).ok());
  auto parsed = ParseConfig("[badges]\nreverify_interval_hours = 0\n", "test.toml");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("badges.reverify_interval_hours"), std::string::npos)
      << parsed.status().message();
}

TEST(ParseConfig, OAuthTable) {
  auto config = ParseConfig(
      "[oauth]\naccess_token_ttl_seconds = 2\nrefresh_token_ttl_days = 7\ncode_ttl_seconds = 30\n"
      "registrations_per_hour = 5\n",
      kOrigin);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->oauth.access_token_ttl_seconds, 2);
  EXPECT_EQ(config->oauth.refresh_token_ttl_days, 7);
  EXPECT_EQ(config->oauth.code_ttl_seconds, 30);
  EXPECT_EQ(config->oauth.registrations_per_hour, 5);
  EXPECT_EQ(Config{}.oauth.access_token_ttl_seconds, 3600);
  EXPECT_EQ(Config{}.oauth.refresh_token_ttl_days, 30);
  EXPECT_EQ(Config{}.oauth.code_ttl_seconds, 60);
  EXPECT_TRUE(IsInvalid(ParseStatus("[oauth]\naccess_token_ttl_seconds = 0\n"),
                        {"oauth.access_token_ttl_seconds", "1..86400"}));
  EXPECT_TRUE(IsInvalid(ParseStatus("[oauth]\ncode_ttl_seconds = 3600\n"), {"oauth.code_ttl_seconds"}));
  EXPECT_TRUE(IsInvalid(ParseStatus("[oauth]\nrefresh_token_ttl_days = \"30\"\n"),
                        {"oauth.refresh_token_ttl_days", "integer"}));
  EXPECT_TRUE(IsInvalid(ParseStatus("[oauth]\nclient_ttl = 1\n"), {"oauth.client_ttl"}));
}

// --- [federation] and [admin] ------------------------------------------------

TEST(FederationConfig, Defaults) {
  const FederationConfig f;
  EXPECT_EQ(f.node_name, "");
  EXPECT_EQ(f.mode, "open");
  EXPECT_TRUE(f.peers.empty());
  EXPECT_TRUE(f.blocked.empty());
  EXPECT_EQ(f.max_clock_skew_seconds, 60);
  EXPECT_EQ(f.signature_lifetime_seconds, 300);
  EXPECT_EQ(f.page_max_records, 500);
  EXPECT_EQ(f.page_max_bytes, 4 * 1024 * 1024);
  EXPECT_EQ(f.long_poll_seconds, 25);
  EXPECT_EQ(f.max_future_version_seconds, 300);
  EXPECT_EQ(f.pokes_per_minute, 60);
  EXPECT_EQ(f.retry_min_seconds, 1);
  EXPECT_EQ(f.retry_max_seconds, 300);
  EXPECT_EQ(f.breaker_failures, 5);
  EXPECT_EQ(f.handshakes_per_minute, 30);
  EXPECT_EQ(f.webfinger_per_minute, 60);
  EXPECT_EQ(f.inbox_per_minute, 30);
  EXPECT_FALSE(AdminConfig{}.allow_remote);
}

TEST(FederationConfig, ParsesEveryKey) {
  auto config = ParseConfig(R"(
[server]
public_url = "https://a.example"
[federation]
node_name = "a.example"
mode = "allowlist"
peers = ["http://127.0.0.1:8081", "https://b.example/"]
blocked = ["evil.example", "127.0.0.1:9999"]
max_clock_skew_seconds = 30
signature_lifetime_seconds = 120
page_max_records = 100
page_max_bytes = 65536
long_poll_seconds = 0
max_future_version_seconds = 60
pokes_per_minute = 10
retry_min_seconds = 2
retry_max_seconds = 600
breaker_failures = 3
handshakes_per_minute = 5
webfinger_per_minute = 7
inbox_per_minute = 3
[admin]
allow_remote = true
)",
                            kOrigin);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ASSERT_TRUE(Validate(*config).ok()) << Validate(*config).ToString();
  const FederationConfig& f = config->federation;
  EXPECT_EQ(f.node_name, "a.example");
  EXPECT_EQ(f.mode, "allowlist");
  EXPECT_EQ(f.peers, (std::vector<std::string>{"http://127.0.0.1:8081", "https://b.example/"}));
  EXPECT_EQ(f.blocked, (std::vector<std::string>{"evil.example", "127.0.0.1:9999"}));
  EXPECT_EQ(f.max_clock_skew_seconds, 30);
  EXPECT_EQ(f.signature_lifetime_seconds, 120);
  EXPECT_EQ(f.page_max_records, 100);
  EXPECT_EQ(f.page_max_bytes, 65536);
  EXPECT_EQ(f.long_poll_seconds, 0);
  EXPECT_EQ(f.max_future_version_seconds, 60);
  EXPECT_EQ(f.pokes_per_minute, 10);
  EXPECT_EQ(f.retry_min_seconds, 2);
  EXPECT_EQ(f.retry_max_seconds, 600);
  EXPECT_EQ(f.breaker_failures, 3);
  EXPECT_EQ(f.handshakes_per_minute, 5);
  EXPECT_EQ(f.webfinger_per_minute, 7);
  EXPECT_EQ(f.inbox_per_minute, 3);
  EXPECT_TRUE(config->admin.allow_remote);
}

TEST(FederationConfig, RejectsWrongTypesAndRanges) {
  EXPECT_TRUE(IsInvalid(ParseStatus("[federation]\npeers = \"http://b.example\"\n"),
                        {"federation.peers", "expected an array of strings, got a string", "line 2"}));
  EXPECT_TRUE(IsInvalid(ParseStatus("[federation]\nblocked = [\"a.example\", 3]\n"),
                        {"federation.blocked", "an integer"}));
  EXPECT_TRUE(IsInvalid(ParseStatus("[federation]\nsignature_lifetime_seconds = 5\n"),
                        {"federation.signature_lifetime_seconds", "10..3600"}));
  EXPECT_TRUE(IsInvalid(ParseStatus("[federation]\nbreaker_failures = 0\n"), {"federation.breaker_failures"}));
  EXPECT_TRUE(IsInvalid(ParseStatus("[federation]\nwebfinger_per_minute = 0\n"), {"federation.webfinger_per_minute"}));
  EXPECT_TRUE(IsInvalid(ParseStatus("[federation]\ninbox_per_minute = 0\n"), {"federation.inbox_per_minute"}));
  EXPECT_TRUE(IsInvalid(ParseStatus("[federation]\npage_max_bytes = 1024\n"), {"federation.page_max_bytes"}));
  EXPECT_TRUE(IsInvalid(ParseStatus("[federation]\npeer = []\n"), {"unknown key 'federation.peer'"}));
  EXPECT_TRUE(IsInvalid(ParseStatus("[admin]\nallow_remote = 1\n"), {"admin.allow_remote", "a boolean"}));
  std::string many = "[federation]\nblocked = [";
  for (int i = 0; i < 1001; ++i) many += "\"n" + std::to_string(i) + ".example\",";
  many += "]\n";
  EXPECT_TRUE(IsInvalid(ParseStatus(many), {"federation.blocked", "more than 1000"}));
}

TEST(FederationConfig, ValidatesModePeersAndNames) {
  Config config;
  config.federation.mode = "closed";
  EXPECT_TRUE(IsInvalid(Validate(config), {"federation.mode", "'closed'", "open, allowlist"}));

  config = Config{};
  for (const char* bad : {"ftp://b.example", "b.example", "https://", "https://user@b.example",
                          "https://b.example?x=1", "https://b.example:0", "https://b.example:99999",
                          "https://b ex.example", "https://b.example#k"}) {
    config.federation.peers = {bad};
    EXPECT_TRUE(IsInvalid(Validate(config), {"federation.peers"})) << bad;
  }
  config.federation.peers = {"http://127.0.0.1:8081", "http://127.0.0.1:8081/"};
  EXPECT_TRUE(IsInvalid(Validate(config), {"federation.peers", "127.0.0.1:8081", "twice"}));
  config.federation.peers = {"http://127.0.0.1:8081", "https://B.example:443/base/"};
  EXPECT_TRUE(Validate(config).ok()) << Validate(config).ToString();

  config.federation.blocked = {"b.example"};
  EXPECT_TRUE(IsInvalid(Validate(config), {"federation.blocked", "also in federation.peers"}));
  for (const char* bad : {"", "B.example", "b.example:443", "b.example:80", "b.example/x", "https://b.example"}) {
    config.federation.blocked = {bad};
    EXPECT_TRUE(IsInvalid(Validate(config), {"federation.blocked"})) << bad;
  }
  config.federation.blocked = {"c.example", "127.0.0.1:9", "[::1]:8080"};
  EXPECT_TRUE(Validate(config).ok()) << Validate(config).ToString();

  config = Config{};
  config.federation.node_name = "A.example";
  EXPECT_TRUE(IsInvalid(Validate(config), {"federation.node_name", "not a node name"}));
  config.federation.node_name = "a.example";
  EXPECT_TRUE(Validate(config).ok());
  config.server.public_url = "https://other.example";
  EXPECT_TRUE(IsInvalid(Validate(config), {"federation.node_name", "not the authority", "other.example"}));
  config.server.public_url = "https://a.example/";
  EXPECT_TRUE(Validate(config).ok()) << Validate(config).ToString();

  config = Config{};
  config.federation.retry_min_seconds = 10;
  config.federation.retry_max_seconds = 5;
  EXPECT_TRUE(IsInvalid(Validate(config), {"federation.retry_min_seconds"}));
}

TEST(BaseUrl, NormalisesTheAuthority) {
  auto url = ParseBaseUrl("https://Badges.Example.ORG:443/base/");
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  EXPECT_TRUE(url->https);
  EXPECT_EQ(url->authority, "badges.example.org");
  EXPECT_EQ(url->url, "https://badges.example.org/base");
  url = ParseBaseUrl("http://127.0.0.1:8081");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->authority, "127.0.0.1:8081");
  EXPECT_EQ(url->url, "http://127.0.0.1:8081");
  url = ParseBaseUrl("http://[::1]:80/");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->authority, "[::1]");
  EXPECT_EQ(url->url, "http://[::1]");
  EXPECT_FALSE(ParseBaseUrl("HTTP://a.example").ok());
  EXPECT_FALSE(ParseBaseUrl("http://a.example:").ok());
  EXPECT_FALSE(ParseBaseUrl("http://[::1").ok());
  EXPECT_FALSE(ParseBaseUrl("http://a..example").ok());
}

TEST(BaseUrl, FederationNodeNameDefaultsToTheAuthority) {
  FederationConfig federation;
  auto name = FederationNodeName(federation, "http://127.0.0.1:40123");
  ASSERT_TRUE(name.ok());
  EXPECT_EQ(*name, "127.0.0.1:40123");
  name = FederationNodeName(federation, "https://Badges.example.org:443");
  ASSERT_TRUE(name.ok());
  EXPECT_EQ(*name, "badges.example.org");
  federation.node_name = "badges.example.org";
  EXPECT_TRUE(FederationNodeName(federation, "https://badges.example.org/").ok());
  EXPECT_FALSE(FederationNodeName(federation, "https://other.example").ok());
}

TEST(Validate, ListenMustBeHostPort) {
  Config config;
  config.server.listen = "localhost";
  EXPECT_TRUE(IsInvalid(Validate(config), {"server.listen", "missing port"}));
  config.server.listen = "localhost:0";
  EXPECT_TRUE(Validate(config).ok());
}

TEST(Validate, PublicUrlNeedsHttpScheme) {
  Config config;
  for (const char* good :
       {"https://badges.example.org", "http://127.0.0.1:8080/", "https://x/base"}) {
    config.server.public_url = good;
    EXPECT_TRUE(Validate(config).ok()) << good << ": " << Validate(config).ToString();
  }
  for (const char* bad : {"ftp://example.org", "badges.example.org", "https://", "http:///path",
                          "https://exa mple.org", "HTTPS://example.org"}) {
    config.server.public_url = bad;
    EXPECT_TRUE(IsInvalid(Validate(config), {"server.public_url"})) << bad;
  }
}

TEST(Validate, TlsCertAndKeyGoTogether) {
  Config config;
  config.server.tls_cert_file = "cert.pem";
  EXPECT_TRUE(IsInvalid(Validate(config), {"server.tls_key_file"}));
  config.server.tls_cert_file.clear();
  config.server.tls_key_file = "key.pem";
  EXPECT_TRUE(IsInvalid(Validate(config), {"server.tls_cert_file"}));
  config.server.tls_cert_file = "cert.pem";
  EXPECT_TRUE(Validate(config).ok());
}

TEST(Validate, Enumerations) {
  for (const char* value : {"starttls", "tls", "none"}) {
    Config config;
    config.mail.smtp_tls = value;
    EXPECT_TRUE(Validate(config).ok()) << value;
  }
  for (const char* value : {"debug", "info", "warn", "error"}) {
    Config config;
    config.log.level = value;
    EXPECT_TRUE(Validate(config).ok()) << value;
  }
  for (const char* value : {"json", "text"}) {
    Config config;
    config.log.format = value;
    EXPECT_TRUE(Validate(config).ok()) << value;
  }

  Config config;
  config.mail.smtp_tls = "ssl";
  EXPECT_TRUE(IsInvalid(Validate(config), {"mail.smtp_tls", "'ssl'", "starttls, tls, none"}));
  config = Config{};
  config.log.level = "warning";
  EXPECT_TRUE(IsInvalid(Validate(config), {"log.level", "'warning'"}));
  config = Config{};
  config.log.format = "JSON";
  EXPECT_TRUE(IsInvalid(Validate(config), {"log.format", "'JSON'"}));
}

TEST(Validate, DataDirMustNotBeEmpty) {
  Config config;
  config.storage.data_dir.clear();
  EXPECT_TRUE(IsInvalid(Validate(config), {"storage.data_dir"}));
}

TEST(Validate, MailFromMustBeOneHeaderLine) {
  Config config;
  config.mail.from.clear();
  EXPECT_TRUE(IsInvalid(Validate(config), {"mail.from", "empty"}));
  config.mail.from = "a@example.org\r\nBcc: victim@example.org";
  EXPECT_TRUE(IsInvalid(Validate(config), {"mail.from", "CR"}));
  config.mail.from = "a@example.org\nX: y";
  EXPECT_TRUE(IsInvalid(Validate(config), {"mail.from"}));
}

// --- LoadConfig -------------------------------------------------------------

TEST(LoadConfig, ReadsTheFile) {
  TempFile file("[server]\nio_threads = 3\n[log]\nformat = \"text\"\n");
  Flags flags;
  flags.config_file = file.path();
  auto config = LoadConfig(flags);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->server.io_threads, 3);
  EXPECT_EQ(config->log.format, "text");
}

TEST(LoadConfig, FlagsOverrideTheFile) {
  TempFile file(
      "[server]\nlisten = \"127.0.0.1:1000\"\nport_file = \"/tmp/a\"\n"
      "[storage]\ndata_dir = \"/from/file\"\n");
  Flags flags;
  flags.config_file = file.path();
  flags.listen = "[::1]:2000";
  flags.data_dir = "/from/flag";
  flags.port_file = "/tmp/b";
  auto config = LoadConfig(flags);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->server.listen, "[::1]:2000");
  EXPECT_EQ(config->storage.data_dir, "/from/flag");
  EXPECT_EQ(config->server.port_file, "/tmp/b");
}

TEST(LoadConfig, EmptyFlagsKeepTheFileValues) {
  TempFile file("[server]\nlisten = \"127.0.0.1:1000\"\n[storage]\ndata_dir = \"/from/file\"\n");
  Flags flags;
  flags.config_file = file.path();
  auto config = LoadConfig(flags);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->server.listen, "127.0.0.1:1000");
  EXPECT_EQ(config->storage.data_dir, "/from/file");
}

TEST(LoadConfig, FlagsApplyWithoutAFile) {
  Flags flags;
  flags.listen = "localhost:0";
  flags.data_dir = "/srv/backpack";
  auto config = LoadConfig(flags);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->server.listen, "localhost:0");
  EXPECT_EQ(config->storage.data_dir, "/srv/backpack");
}

TEST(LoadConfig, BadListenFlagNamesTheFlag) {
  Flags flags;
  flags.listen = "localhost";
  EXPECT_TRUE(IsInvalid(LoadConfig(flags).status(), {"--listen", "missing port"}));
}

TEST(LoadConfig, MissingFileNamesPathAndErrno) {
  Flags flags;
  flags.config_file = ::testing::TempDir() + "config_test_does_not_exist.toml";
  EXPECT_TRUE(
      IsInvalid(LoadConfig(flags).status(), {flags.config_file, "No such file or directory"}));
}

TEST(LoadConfig, DirectoryIsNotAFile) {
  Flags flags;
  flags.config_file = ::testing::TempDir();
  EXPECT_TRUE(IsInvalid(LoadConfig(flags).status(), {"cannot read config file", "Is a directory"}));
}

TEST(LoadConfig, ParseErrorsNameThePath) {
  TempFile file("[server]\nfoo = 1\n");
  Flags flags;
  flags.config_file = file.path();
  EXPECT_TRUE(IsInvalid(LoadConfig(flags).status(), {file.path() + ": unknown key 'server.foo'"}));
}

TEST(LoadConfig, ValidatesAndNamesThePath) {
  TempFile file("[server]\ntls_cert_file = \"cert.pem\"\n");
  Flags flags;
  flags.config_file = file.path();
  EXPECT_TRUE(IsInvalid(LoadConfig(flags).status(), {file.path() + ": server.tls_key_file"}));
}

// --- ParseHostPort ----------------------------------------------------------

TEST(ParseHostPort, AcceptsHostAndPort) {
  struct Case {
    const char* text;
    const char* host;
    uint16_t port;
  };
  for (const Case& c :
       {Case{"127.0.0.1:8080", "127.0.0.1", 8080}, Case{"localhost:0", "localhost", 0},
        Case{"[::1]:443", "::1", 443}, Case{"[::]:65535", "::", 65535},
        Case{"0.0.0.0:1", "0.0.0.0", 1}, Case{"badges.example.org:80", "badges.example.org", 80}}) {
    auto hp = ParseHostPort(c.text);
    ASSERT_TRUE(hp.ok()) << c.text << ": " << hp.status().ToString();
    EXPECT_EQ(hp->host, c.host) << c.text;
    EXPECT_EQ(hp->port, c.port) << c.text;
  }
}

TEST(ParseHostPort, RejectsMissingPort) {
  for (const char* text : {"localhost", "localhost:", "[::1]", "[::1]:", "127.0.0.1"}) {
    EXPECT_TRUE(IsInvalid(ParseHostPort(text).status(), {"missing port", text}));
  }
}

TEST(ParseHostPort, RejectsBadPort) {
  for (const char* text : {"localhost:65536", "localhost:-1", "localhost:+80", "localhost:80a",
                           "localhost:http", "localhost: 80", "localhost:99999999999999999999"}) {
    EXPECT_TRUE(IsInvalid(ParseHostPort(text).status(), {"port"})) << text;
  }
}

TEST(ParseHostPort, RejectsEmptyOrBadHost) {
  EXPECT_TRUE(IsInvalid(ParseHostPort(":8080").status(), {"empty host"}));
  EXPECT_TRUE(IsInvalid(ParseHostPort("[]:8080").status(), {"empty host"}));
  EXPECT_TRUE(IsInvalid(ParseHostPort("").status(), {"empty"}));
  EXPECT_TRUE(IsInvalid(ParseHostPort("::1:443").status(), {"brackets"}));
  EXPECT_TRUE(IsInvalid(ParseHostPort("[::1:443").status(), {"']'"}));
  EXPECT_TRUE(IsInvalid(ParseHostPort("[::1]443").status(), {"':'"}));
  EXPECT_TRUE(IsInvalid(ParseHostPort("[localhost]:80").status(), {"IPv6"}));
  EXPECT_TRUE(IsInvalid(ParseHostPort("local host:80").status(), {"invalid character"}));
  EXPECT_TRUE(IsInvalid(ParseHostPort(std::string(254, 'a') + ":80").status(), {"too long"}));
}

}  // namespace
}  // namespace backpack::config
