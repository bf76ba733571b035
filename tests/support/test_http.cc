#include "tests/support/test_http.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#ifndef BACKPACKD_PATH
#error "BACKPACKD_PATH must name the backpackd binary"
#endif

namespace backpack::testing {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;

std::string Reply::Header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

Reply Send(const std::string& host_port, const RequestSpec& spec, const std::string& tls_ca) {
  Reply reply;
  const size_t colon = host_port.rfind(':');
  const std::string host = host_port.substr(0, colon);
  const std::string port = host_port.substr(colon + 1);
  bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(spec.method), spec.target, 11};
  req.set(bhttp::field::host, host_port);
  if (!spec.body.empty() || spec.method == "POST") {
    if (!spec.content_type.empty()) req.set(bhttp::field::content_type, spec.content_type);
    req.body() = spec.body;
  }
  if (!spec.bearer.empty()) req.set(bhttp::field::authorization, "Bearer " + spec.bearer);
  for (const auto& [k, v] : spec.headers) req.set(k, v);
  req.prepare_payload();
  try {
    net::io_context ioc;
    tcp::resolver resolver(ioc);
    auto endpoints = resolver.resolve(host, port);
    beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64 << 20);
    if (!tls_ca.empty()) {
      net::ssl::context ctx(net::ssl::context::tls_client);
      ctx.load_verify_file(tls_ca);
      ctx.set_verify_mode(net::ssl::verify_peer);
      beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
      beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(30));
      beast::get_lowest_layer(stream).connect(endpoints);
      stream.handshake(net::ssl::stream_base::client);
      bhttp::write(stream, req);
      bhttp::read(stream, buffer, parser);
    } else {
      beast::tcp_stream stream(ioc);
      stream.expires_after(std::chrono::seconds(30));
      stream.connect(endpoints);
      bhttp::write(stream, req);
      bhttp::read(stream, buffer, parser);
    }
    auto res = parser.release();
    reply.status = res.result_int();
    for (const auto& field : res) {
      std::string name(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(), ::tolower);
      reply.headers[name] = std::string(field.value());
    }
    reply.body = std::move(res.body());
  } catch (const std::exception& e) {
    reply.status = 0;
    reply.body = e.what();
  }
  return reply;
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/backpackd-test-XXXXXX";
  path_ = ::mkdtemp(tmpl);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::MakeSubdir(const std::string& name) const {
  const std::string dir = path_ + "/" + name;
  std::filesystem::create_directories(dir);  // throws, failing the test, when it cannot
  return dir;
}

NodeProcess::NodeProcess(std::string data_dir, std::string extra_toml)
    : data_dir_(std::move(data_dir)), extra_toml_(std::move(extra_toml)) {
  dir_ = std::filesystem::path(data_dir_).parent_path().string();
}

NodeProcess::~NodeProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
}

bool NodeProcess::Start() {
  const std::string config_path = dir_ + "/node.toml";
  const std::string port_file = dir_ + "/node.port";
  std::filesystem::remove(port_file);
  {
    std::ofstream out(config_path);
    // Fast password hashing keeps the suite quick; production uses 2^15.
    out << "[accounts]\n";
    if (extra_toml_.find("scrypt_log2_n") == std::string::npos) out << "scrypt_log2_n = 10\n";
    out << extra_toml_ << "\n";
  }
  pid_ = ::fork();
  if (pid_ == 0) {
    const std::string log = log_path();
    FILE* f = std::freopen(log.c_str(), "a", stderr);
    (void)f;
    ::execl(BACKPACKD_PATH, "backpackd", "--listen", listen_.c_str(), "--data-dir", data_dir_.c_str(),
            "--config", config_path.c_str(), "--port-file", port_file.c_str(), nullptr);
    ::_exit(127);
  }
  for (int i = 0; i < 600; ++i) {
    std::ifstream in(port_file);
    std::string line;
    if (in && std::getline(in, line) && !line.empty()) {
      address_ = line;
      return true;
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return false;
}

int NodeProcess::Wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -1;
}

int NodeProcess::StopWith(int signal, std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, signal);
  return Wait(timeout);
}

std::string NodeProcess::ReadLog() const { return ReadFile(log_path()); }

int Shell(const std::string& command) { return std::system(command.c_str()); }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> ListFiles(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.is_regular_file()) out.push_back(entry.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string MailToken(const std::string& outbox_dir, const std::string& address, const std::string& kind) {
  std::string token;
  const std::regex re(kind + " token: ([A-Za-z0-9_-]+)");
  for (const auto& file : ListFiles(outbox_dir)) {
    const std::string msg = ReadFile(file);
    if (msg.find("To: " + address + "\r\n") == std::string::npos) continue;
    std::smatch m;
    if (std::regex_search(msg, m, re)) token = m[1];
  }
  return token;
}

std::string SignUpVerified(const NodeProcess& node, const std::string& outbox_dir, const std::string& email,
                           const std::string& password) {
  auto body = [](std::initializer_list<std::pair<const char*, std::string>> fields) {
    std::string out = "{";
    for (const auto& [k, v] : fields) {
      if (out.size() > 1) out += ',';
      out += '"' + std::string(k) + "\":\"" + v + '"';  // test values need no escaping
    }
    return out + "}";
  };
  if (node.Call({"POST", "/api/v1/accounts", body({{"email", email}, {"password", password}}), "application/json", "", {}})
          .status != 201) {
    return {};
  }
  const std::string token = MailToken(outbox_dir, email);
  if (token.empty()) return {};
  if (node.Call({"POST", "/api/v1/account/emails/verify", body({{"token", token}}), "application/json", "", {}}).status !=
      200) {
    return {};
  }
  const Reply session =
      node.Call({"POST", "/api/v1/sessions", body({{"email", email}, {"password", password}}), "application/json", "", {}});
  if (session.status != 201) return {};
  const std::regex re("\"token\":\"([^\"]+)\"");
  std::smatch m;
  return std::regex_search(session.body, m, re) ? std::string(m[1]) : std::string();
}

bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

}  // namespace backpack::testing
