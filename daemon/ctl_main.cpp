// backpackctl: the operator's command-line tool.
//
//   backpackctl check-config --config FILE     validate a config file, print the effective settings
//   backpackctl status [--url URL]             health and self-description of a running node
//   backpackctl version
#include <cstdio>
#include <string>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "config/config.h"

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;

constexpr char kUsage[] =
    "usage: backpackctl check-config --config FILE\n"
    "       backpackctl status [--url URL]      (default http://127.0.0.1:8080)\n"
    "       backpackctl version\n";

struct Fetched {
  unsigned status = 0;
  std::string body;
};

// GET url with a 10 s deadline; http and https (certificate verified).
bool Get(const std::string& url, Fetched* out, std::string* error) {
  const bool tls = url.rfind("https://", 0) == 0;
  if (!tls && url.rfind("http://", 0) != 0) {
    *error = "URL must start with http:// or https://";
    return false;
  }
  std::string rest = url.substr(tls ? 8 : 7);
  std::string target = "/";
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    target = rest.substr(slash);
    rest.resize(slash);
  }
  std::string host = rest, port = tls ? "443" : "80";
  if (auto colon = rest.rfind(':'); colon != std::string::npos && rest.find(']') == std::string::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  try {
    net::io_context ioc;
    tcp::resolver resolver(ioc);
    auto endpoints = resolver.resolve(host, port);
    bhttp::request<bhttp::empty_body> req{bhttp::verb::get, target, 11};
    req.set(bhttp::field::host, rest);
    req.set(bhttp::field::user_agent, "backpackctl/" BACKPACK_VERSION);
    bhttp::response<bhttp::string_body> res;
    beast::flat_buffer buffer;
    if (tls) {
      net::ssl::context ctx(net::ssl::context::tls_client);
      ctx.set_default_verify_paths();
      ctx.set_verify_mode(net::ssl::verify_peer);
      beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
      stream.set_verify_callback(net::ssl::host_name_verification(host));
      SSL_set_tlsext_host_name(stream.native_handle(), host.c_str());
      beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));
      beast::get_lowest_layer(stream).connect(endpoints);
      stream.handshake(net::ssl::stream_base::client);
      bhttp::write(stream, req);
      bhttp::read(stream, buffer, res);
    } else {
      beast::tcp_stream stream(ioc);
      stream.expires_after(std::chrono::seconds(10));
      stream.connect(endpoints);
      bhttp::write(stream, req);
      bhttp::read(stream, buffer, res);
    }
    out->status = res.result_int();
    out->body = std::move(res.body());
    return true;
  } catch (const std::exception& e) {
    *error = e.what();
    return false;
  }
}

int CheckConfig(const std::vector<std::string>& args) {
  backpack::config::Flags flags;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config" && i + 1 < args.size()) flags.config_file = args[++i];
    else {
      std::fputs(kUsage, stderr);
      return 2;
    }
  }
  if (flags.config_file.empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  auto config = backpack::config::LoadConfig(flags);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.status().message().c_str());
    return 1;
  }
  std::printf("%s: valid (listen %s, data_dir %s, mail %s)\n", flags.config_file.c_str(),
              config->server.listen.c_str(), config->storage.data_dir.c_str(),
              config->mail.smtp_host.empty() ? "outbox" : config->mail.smtp_host.c_str());
  return 0;
}

int Status(const std::vector<std::string>& args) {
  std::string url = "http://127.0.0.1:8080";
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--url" && i + 1 < args.size()) url = args[++i];
    else {
      std::fputs(kUsage, stderr);
      return 2;
    }
  }
  while (!url.empty() && url.back() == '/') url.pop_back();
  Fetched health, node;
  std::string error;
  if (!Get(url + "/healthz", &health, &error)) {
    std::fprintf(stderr, "%s: unreachable: %s\n", url.c_str(), error.c_str());
    return 1;
  }
  std::printf("health: %u %s\n", health.status, health.body.c_str());
  if (Get(url + "/.well-known/backpack-node", &node, &error) && node.status == 200) {
    auto doc = nlohmann::json::parse(node.body, nullptr, false);
    if (!doc.is_discarded()) std::printf("%s\n", doc.dump(2).c_str());
  }
  return health.status == 200 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string command = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  if (command == "check-config") return CheckConfig(args);
  if (command == "status") return Status(args);
  if (command == "version") {
    std::printf("backpackctl %s\n", BACKPACK_VERSION);
    return 0;
  }
  std::fputs(kUsage, stderr);
  return 2;
}
