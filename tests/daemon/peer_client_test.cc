// Tests of daemon/peer_client.h against a one-request HTTP server on
// 127.0.0.1 that records what it received and answers as told.
#include "daemon/peer_client.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <gtest/gtest.h>

#include "federation/node_keys.h"
#include "federation/request_auth.h"

namespace backpack {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;

constexpr int64_t kNow = 1'800'000'000;

// Serves one connection: reads one request, keeps it, writes `answer`
// (raw bytes) after `delay`, closes.
class OneShotServer {
 public:
  explicit OneShotServer(std::string answer, std::chrono::milliseconds delay = {})
      : answer_(std::move(answer)), delay_(delay), acceptor_(io_, {net::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { Serve(); });
  }
  ~OneShotServer() {
    // Wakes an accept still waiting (closing the acceptor would not).
    if (!connected_) {
      net::io_context io;
      tcp::socket poke(io);
      boost::system::error_code ignored;
      poke.connect({net::ip::make_address("127.0.0.1"), port_}, ignored);
      poke.close(ignored);
    }
    thread_.join();
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  std::string authority() const { return "127.0.0.1:" + std::to_string(port_); }
  std::optional<bhttp::request<bhttp::string_body>> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }
  bool connected() const { return connected_; }

 private:
  void Serve() {
    boost::system::error_code ec;
    tcp::socket socket(io_);
    acceptor_.accept(socket, ec);
    if (ec) return;
    connected_ = true;
    // A connection that sends nothing (the destructor's) ends the read.
    beast::flat_buffer buffer;
    bhttp::request<bhttp::string_body> request;
    bhttp::read(socket, buffer, request, ec);
    if (ec) return;
    {
      std::lock_guard lock(mu_);
      seen_ = request;
    }
    std::this_thread::sleep_for(delay_);
    net::write(socket, net::buffer(answer_), ec);
    socket.shutdown(tcp::socket::shutdown_both, ec);
  }

  const std::string answer_;
  const std::chrono::milliseconds delay_;
  net::io_context io_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::optional<bhttp::request<bhttp::string_body>> seen_;
  std::atomic<bool> connected_{false};
};

std::string Answer(int status, const std::string& body, const std::string& extra_headers = {}) {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n" + extra_headers + "\r\n" + body;
}

class PeerClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/peer_client_test.XXXXXX";
    dir_ = ::mkdtemp(pattern);
    auto keys = federation::NodeKeys::LoadOrCreate(federation::KeysDirectory(dir_), kNow - 10);
    ASSERT_TRUE(keys.ok()) << keys.status().ToString();
    keys_.emplace(std::move(*keys));
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::unique_ptr<PeerClient> Client(bool allow_private = true, int timeout_ms = 5000) {
    config::FetchConfig fetch;
    fetch.allow_private = allow_private;
    fetch.timeout_ms = timeout_ms;
    return std::make_unique<PeerClient>(fetch, PeerClient::Identity{"a.example", keys_->current()}, 300,
                                        AddressPolicy(), [] { return kNow; },
                                        [this](size_t n) { return std::string(n, static_cast<char>('a' + draws_++)); });
  }

  std::string dir_;
  std::optional<federation::NodeKeys> keys_;
  int draws_ = 0;
};

TEST_F(PeerClientTest, SignsWhatTheReceiverVerifies) {
  OneShotServer server(Answer(200, R"({"ok":true})", "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"));
  auto client = Client();
  ASSERT_TRUE(client->init_status().ok());
  const std::string body = R"({"node":"a.example"})";
  auto answer = client->Post(server.url("/_federation/v1/peer?x=1"), body);
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  EXPECT_EQ(answer->status, 200);
  EXPECT_EQ(answer->body, R"({"ok":true})");
  EXPECT_EQ(answer->content_type, "application/json");
  EXPECT_EQ(answer->date, "Sun, 06 Nov 1994 08:49:37 GMT");

  auto seen = server.seen();
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->method(), bhttp::verb::post);
  EXPECT_EQ(seen->target(), "/_federation/v1/peer?x=1");
  EXPECT_EQ(seen->body(), body);
  EXPECT_EQ((*seen)[bhttp::field::content_type], "application/json");
  EXPECT_EQ((*seen)[bhttp::field::host], server.authority());
  const std::string input((*seen)["Signature-Input"]);
  EXPECT_NE(input.find("keyid=\"a.example#k1\""), std::string::npos) << input;
  EXPECT_NE(input.find("created=1800000000;expires=1800000300"), std::string::npos) << input;
  // 32 bytes of "a" in base64url: the nonce comes from the injected generator.
  EXPECT_NE(input.find("nonce=\"YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE\""), std::string::npos) << input;

  // The receiver's side accepts exactly this request.
  federation::RequestVerifierOptions options;
  options.node_name = server.authority();
  federation::RequestVerifier verifier(
      options, [this](const std::string& url) -> Result<std::string> {
        EXPECT_EQ(url, "https://a.example/_federation/v1/keys");
        return keys_->KeysDocument("a.example");
      },
      {}, [] { return kNow + 1; });
  const std::string target_uri = "http://" + server.authority() + std::string(seen->target());
  federation::InboundRequest inbound{seen->method_string(),         target_uri,
                                     (*seen)[bhttp::field::host],   (*seen)["Signature-Input"],
                                     (*seen)["Signature"],          (*seen)["Content-Digest"],
                                     seen->body()};
  auto verified = verifier.Verify(inbound);
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(verified->node, "a.example");
}

TEST_F(PeerClientTest, GetSignsTheEmptyBody) {
  OneShotServer server(Answer(404, R"({"error":{"code":"not_found"}})"));
  auto answer = Client()->Get(server.url("/_federation/v1/keys"));
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  EXPECT_EQ(answer->status, 404);  // an answer, not an error
  auto seen = server.seen();
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->method(), bhttp::verb::get);
  EXPECT_EQ((*seen)["Content-Digest"], "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:");
  EXPECT_FALSE((*seen)["Signature"].empty());
}

TEST_F(PeerClientTest, RefusesPrivateAddressesUnlessAllowed) {
  OneShotServer server(Answer(200, "{}"));
  auto answer = Client(/*allow_private=*/false)->Get(server.url("/"));
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(answer.status().message().find("fetch.allow_private"), std::string::npos) << answer.status().message();
  EXPECT_FALSE(server.connected());
}

TEST_F(PeerClientTest, DoesNotFollowRedirects) {
  OneShotServer server(Answer(302, "", "Location: http://127.0.0.1:1/elsewhere\r\n"));
  auto answer = Client()->Get(server.url("/"));
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  EXPECT_EQ(answer->status, 302);
}

TEST_F(PeerClientTest, CapsTheAnswer) {
  OneShotServer server(Answer(200, std::string(2000, 'x')));
  PeerCall call;
  call.url = server.url("/");
  call.max_response_bytes = 1000;
  auto answer = Client()->Send(call);
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.status().code(), StatusCode::kResourceExhausted);
}

TEST_F(PeerClientTest, HasADeadline) {
  OneShotServer server(Answer(200, "{}"), std::chrono::milliseconds(1500));
  const auto start = std::chrono::steady_clock::now();
  auto answer = Client(true, 300)->Get(server.url("/"));
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.status().code(), StatusCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1200));
}

TEST_F(PeerClientTest, RefusesOtherMethodsAndBadUrls) {
  PeerCall call;
  call.method = "DELETE";
  call.url = "http://127.0.0.1:1/";
  EXPECT_EQ(Client()->Send(call).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Client()->Get("ftp://a.example/").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Client()->Get("http://127.0.0.1:1/").status().code(), StatusCode::kUnavailable);  // nobody listens
}

}  // namespace
}  // namespace backpack
