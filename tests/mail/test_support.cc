#include "tests/mail/test_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace backpack::mail::test_support {
namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Binds a TCP socket to 127.0.0.1 on a kernel-chosen port.
int BindLoopback(int* port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(fd);
    return -1;
  }
  *port = ntohs(address.sin_port);
  return fd;
}

}  // namespace

std::vector<std::string> ListNames(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

unsigned FileMode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

bool PollUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return condition();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string DecodeQuotedPrintable(std::string_view encoded) {
  std::string out;
  size_t i = 0;
  while (i < encoded.size()) {
    const char c = encoded[i];
    if (c == '=' && encoded.substr(i, 3) == "=\r\n") {  // soft line break
      i += 3;
    } else if (c == '=' && i + 2 < encoded.size() && HexValue(encoded[i + 1]) >= 0 &&
               HexValue(encoded[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(encoded[i + 1]) * 16 + HexValue(encoded[i + 2])));
      i += 3;
    } else if (encoded.substr(i, 2) == "\r\n") {
      out.push_back('\n');
      i += 2;
    } else {
      out.push_back(c);
      ++i;
    }
  }
  return out;
}

std::string DecodeBase64(std::string_view encoded) {
  static const std::string kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t bits = 0;
  int count = 0;
  for (char c : encoded) {
    if (c == '=') break;
    const size_t value = kAlphabet.find(c);
    if (value == std::string::npos) {
      ADD_FAILURE() << "not base64: " << encoded;
      return out;
    }
    bits = (bits << 6) | static_cast<uint32_t>(value);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xff));
    }
  }
  return out;
}

std::string DecodeHeaderValue(std::string_view raw_value) {
  std::string unfolded;
  for (size_t i = 0; i < raw_value.size(); ++i) {
    if (raw_value.substr(i, 2) == "\r\n") {
      ++i;
      continue;
    }
    unfolded.push_back(raw_value[i]);
  }
  // Decode words; whitespace between two encoded-words is dropped.
  std::string out;
  size_t i = 0;
  bool previous_was_word = false;
  while (i < unfolded.size()) {
    const size_t start = unfolded.find("=?UTF-8?B?", i);
    if (start == std::string::npos) {
      out += unfolded.substr(i);
      break;
    }
    const std::string between = unfolded.substr(i, start - i);
    const bool only_space =
        std::all_of(between.begin(), between.end(), [](char c) { return c == ' ' || c == '\t'; });
    if (!(previous_was_word && only_space)) out += between;
    const size_t end = unfolded.find("?=", start + 10);
    if (end == std::string::npos) {
      ADD_FAILURE() << "unterminated encoded-word in " << raw_value;
      return out;
    }
    out += DecodeBase64(std::string_view(unfolded).substr(start + 10, end - start - 10));
    i = end + 2;
    previous_was_word = true;
  }
  return out;
}

std::string ParsedMessage::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (EqualsIgnoreCase(key, name)) return value;
  }
  return "";
}

ParsedMessage ParseMessage(std::string_view text) {
  ParsedMessage parsed;
  size_t pos = 0;
  for (;;) {
    const size_t end = text.find("\r\n", pos);
    if (end == std::string_view::npos) {
      ADD_FAILURE() << "message has no empty line ending the header";
      return parsed;
    }
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 2;
    if (line.empty()) break;
    if (line.front() == ' ' || line.front() == '\t') {
      if (parsed.headers.empty()) {
        ADD_FAILURE() << "continuation line before any header";
      } else {
        parsed.headers.back().second += "\r\n" + std::string(line);
      }
      continue;
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      ADD_FAILURE() << "header line without a colon: " << line;
      continue;
    }
    std::string_view value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    parsed.headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
  }
  parsed.body = std::string(text.substr(pos));
  return parsed;
}

CertFiles MakeSelfSignedCert(const std::string& dir, const std::string& name,
                             const std::string& subject_alt_name) {
  CertFiles files{dir + "/" + name + ".crt", dir + "/" + name + ".key"};
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  bool ok = key != nullptr && cert != nullptr;
  unsigned char serial_bytes[8];
  ok = ok && RAND_bytes(serial_bytes, sizeof(serial_bytes)) == 1;
  uint64_t serial = 0;
  for (unsigned char b : serial_bytes) serial = (serial << 8) | b;
  ok = ok && X509_set_version(cert, 2) == 1 &&
       ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert), serial >> 1) == 1 &&
       X509_gmtime_adj(X509_getm_notBefore(cert), -3600) != nullptr &&
       X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600) != nullptr && X509_set_pubkey(cert, key) == 1;
  if (ok) {
    X509_NAME* subject = X509_get_subject_name(cert);
    ok = X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                                    reinterpret_cast<const unsigned char*>("mail test"), -1, -1, 0) == 1 &&
         X509_set_issuer_name(cert, subject) == 1;
  }
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, cert, cert, nullptr, nullptr, 0);
  const std::pair<int, std::string> extensions[] = {
      {NID_basic_constraints, "critical,CA:TRUE"},
      {NID_subject_key_identifier, "hash"},
      {NID_subject_alt_name, subject_alt_name},
  };
  for (const auto& [nid, value] : extensions) {
    if (!ok) break;
    X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str());
    ok = extension != nullptr && X509_add_ext(cert, extension, -1) == 1;
    X509_EXTENSION_free(extension);
  }
  ok = ok && X509_sign(cert, key, EVP_sha256()) > 0;
  if (ok) {
    FILE* cert_file = std::fopen(files.cert.c_str(), "w");
    FILE* key_file = std::fopen(files.key.c_str(), "w");
    ok = cert_file != nullptr && key_file != nullptr && PEM_write_X509(cert_file, cert) == 1 &&
         PEM_write_PrivateKey(key_file, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
    if (cert_file != nullptr) std::fclose(cert_file);
    if (key_file != nullptr) std::fclose(key_file);
  }
  X509_free(cert);
  EVP_PKEY_free(key);
  if (!ok) ADD_FAILURE() << "could not make a self-signed certificate for " << subject_alt_name;
  return files;
}

bool SmtpServerAvailable() { return std::string_view(BACKPACK_TEST_PYTHON3) != ""; }

std::unique_ptr<SmtpServer> SmtpServer::Start(const ServerOptions& options, std::string* error) {
  std::vector<std::string> args = {BACKPACK_TEST_PYTHON3,
                                   BACKPACK_TEST_SMTP_SERVER,
                                   "--out-dir",
                                   options.out_dir,
                                   "--port",
                                   std::to_string(options.port),
                                   "--tls",
                                   options.tls};
  if (options.tls != "none") {
    args.insert(args.end(), {"--cert", options.cert.cert, "--key", options.cert.key});
  }
  if (options.require_starttls) args.push_back("--require-starttls");
  if (!options.auth_user.empty()) {
    args.insert(args.end(), {"--auth-user", options.auth_user, "--auth-password", options.auth_password});
  }
  if (options.auth_allow_plaintext) args.push_back("--auth-allow-plaintext");
  for (const std::string& address : options.reject_rcpt) args.insert(args.end(), {"--reject-rcpt", address});
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    *error = "pipe2 failed";
    return nullptr;
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    *error = "fork failed";
    return nullptr;
  }
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    ::dup2(pipe_fds[1], STDOUT_FILENO);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  auto server = std::unique_ptr<SmtpServer>(new SmtpServer(pid, 0));

  // Wait for "PORT <n>\n".
  std::string output;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (output.find('\n') == std::string::npos) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      *error = "the SMTP server did not report its port within 30 s";
      break;
    }
    pollfd waiting{pipe_fds[0], POLLIN, 0};
    if (::poll(&waiting, 1, static_cast<int>(left.count())) <= 0) continue;
    char buffer[256];
    const ssize_t n = ::read(pipe_fds[0], buffer, sizeof(buffer));
    if (n <= 0) {
      *error = "the SMTP server exited before listening (see its stderr above)";
      break;
    }
    output.append(buffer, static_cast<size_t>(n));
  }
  ::close(pipe_fds[0]);
  if (output.rfind("PORT ", 0) != 0 || output.find('\n') == std::string::npos) {
    if (error->empty()) *error = "unexpected output from the SMTP server: " + output;
    return nullptr;
  }
  server->port_ = std::atoi(output.c_str() + 5);
  return server;
}

SmtpServer::~SmtpServer() {
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
}

std::vector<Received> ReadReceived(const std::string& out_dir) {
  std::vector<Received> received;
  for (const std::string& name : ListNames(out_dir)) {
    if (!name.ends_with(".env")) continue;
    const std::string base = out_dir + "/" + name.substr(0, name.size() - 4);
    received.push_back({ReadFile(base + ".eml"), ReadFile(base + ".env")});
  }
  return received;
}

ReservedPort::ReservedPort() {
  fd_ = BindLoopback(&port_);
  if (fd_ < 0) ADD_FAILURE() << "cannot bind a loopback port";
}

ReservedPort::~ReservedPort() { Release(); }

void ReservedPort::Release() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

SilentListener::SilentListener() {
  fd_ = BindLoopback(&port_);
  if (fd_ < 0 || ::listen(fd_, 16) != 0) ADD_FAILURE() << "cannot listen on a loopback port";
}

SilentListener::~SilentListener() {
  if (fd_ >= 0) ::close(fd_);
}

ScriptedServer::ScriptedServer(std::string greeting, Responder respond)
    : greeting_(std::move(greeting)), respond_(std::move(respond)) {
  listen_fd_ = BindLoopback(&port_);
  if (listen_fd_ < 0 || ::listen(listen_fd_, 4) != 0) {
    ADD_FAILURE() << "cannot listen on a loopback port";
    return;
  }
  thread_ = std::thread([this] { Serve(); });
}

ScriptedServer::~ScriptedServer() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

void ScriptedServer::Serve() {
  // Waits up to 100 ms at a time so that destruction is noticed.
  auto wait_readable = [this](int fd) {
    while (!stop_) {
      pollfd waiting{fd, POLLIN, 0};
      if (::poll(&waiting, 1, 100) > 0) return true;
    }
    return false;
  };
  if (!wait_readable(listen_fd_)) return;
  const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0) return;
  auto send_all = [fd](std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  };
  std::string input;
  bool open = send_all(greeting_);
  while (open && wait_readable(fd)) {
    char buffer[4096];
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    input.append(buffer, static_cast<size_t>(n));
    size_t end;
    while (open && (end = input.find("\r\n")) != std::string::npos) {
      const std::string answer = respond_(input.substr(0, end));
      input.erase(0, end + 2);
      open = !answer.empty() && send_all(answer);
    }
  }
  ::close(fd);
}

}  // namespace backpack::mail::test_support
