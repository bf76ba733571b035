// Helpers for the mail tests: temporary directories, a throwaway TLS
// certificate, a real SMTP server (tests/mail/smtp_server.py on aiosmtpd) run
// as a child process, sockets that refuse or ignore connections, and small
// MIME decoders to check what was sent.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "tests/support/test_http.h"

namespace backpack::mail::test_support {

using testing::ReadFile;  // from tests/support/test_http.h
using testing::TempDir;
// Entry names in `dir` (no "." or ".."), sorted; empty if it does not exist.
std::vector<std::string> ListNames(const std::string& dir);
// Permission bits of `path` (st_mode & 07777).
unsigned FileMode(const std::string& path);

// Calls `condition` every 10 ms until it is true or `timeout` passes; returns
// its last value. For waiting on an effect we cannot be told about.
bool PollUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

// ---- Message decoding -------------------------------------------------------

// Quoted-printable with CRLF line ends back to text with \n line ends.
std::string DecodeQuotedPrintable(std::string_view encoded);
std::string DecodeBase64(std::string_view encoded);
// Unfolds a header value and decodes RFC 2047 =?UTF-8?B?...?= words (the
// whitespace between adjacent encoded-words is dropped).
std::string DecodeHeaderValue(std::string_view raw_value);

struct ParsedMessage {
  // Name and raw (still folded) value, in order.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // as on the wire
  // The raw value of the first header `name` (case-insensitive), or "".
  std::string Header(std::string_view name) const;
};
// Splits at the first empty line. Fails the current test (ADD_FAILURE) on a
// header line without a colon that is not a continuation.
ParsedMessage ParseMessage(std::string_view text);

// ---- TLS -----------------------------------------------------------------

struct CertFiles {
  std::string cert;  // PEM certificate (self-signed, so also the CA file)
  std::string key;   // PEM private key
};
// A P-256 self-signed certificate valid for a day with subjectAltName
// `subject_alt_name` (OpenSSL syntax: "DNS:localhost,IP:127.0.0.1").
CertFiles MakeSelfSignedCert(const std::string& dir, const std::string& name,
                             const std::string& subject_alt_name);

// ---- SMTP server ------------------------------------------------------------

// Whether the tests can run tests/mail/smtp_server.py (python3 with aiosmtpd
// was found when CMake configured the build).
bool SmtpServerAvailable();

struct ServerOptions {
  std::string out_dir;       // where received messages are written
  std::string tls = "none";  // "none", "starttls" or "implicit"
  CertFiles cert;
  bool require_starttls = false;
  std::string auth_user;  // AUTH required when set
  std::string auth_password;
  bool auth_allow_plaintext = false;
  std::vector<std::string> reject_rcpt;  // answered with 550
  int port = 0;                          // 0: any free port
};

// tests/mail/smtp_server.py as a child process, killed on destruction (and
// by the kernel if the test process dies first).
class SmtpServer {
 public:
  // Starts the server and waits (up to 30 s) until it listens. On failure
  // returns nullptr with a reason in *error.
  static std::unique_ptr<SmtpServer> Start(const ServerOptions& options, std::string* error);
  ~SmtpServer();
  SmtpServer(const SmtpServer&) = delete;
  SmtpServer& operator=(const SmtpServer&) = delete;

  int port() const { return port_; }

 private:
  SmtpServer(int pid, int port) : pid_(pid), port_(port) {}
  int pid_;
  int port_;
};

struct Received {
  std::string message;   // DATA content as received
  std::string envelope;  // "MAIL FROM:<..>\nRCPT TO:<..>\nAUTH user\nTLS yes\n"
};
// The complete messages in the server's out_dir, oldest first.
std::vector<Received> ReadReceived(const std::string& out_dir);

// ---- Sockets that do not serve -----------------------------------------------

// A socket bound to 127.0.0.1 on a free port but not listening: connecting
// to it is refused. Release() frees the port so a server can take it.
class ReservedPort {
 public:
  ReservedPort();
  ~ReservedPort();
  ReservedPort(const ReservedPort&) = delete;
  ReservedPort& operator=(const ReservedPort&) = delete;
  int port() const { return port_; }
  void Release();

 private:
  int fd_ = -1;
  int port_ = 0;
};

// A listening socket on 127.0.0.1 that never accepts: the kernel completes
// the TCP handshake, then nothing is ever said.
class SilentListener {
 public:
  SilentListener();
  ~SilentListener();
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// A one-connection stand-in for an SMTP server, for replies no real server
// sends (overlong or malformed lines, data injected after STARTTLS). It
// accepts one connection, sends `greeting`, then answers each line received
// (without its CRLF) with respond(line); an empty answer closes the
// connection. It stops when the client hangs up or on destruction.
class ScriptedServer {
 public:
  using Responder = std::function<std::string(const std::string& line)>;
  ScriptedServer(std::string greeting, Responder respond);
  ~ScriptedServer();
  ScriptedServer(const ScriptedServer&) = delete;
  ScriptedServer& operator=(const ScriptedServer&) = delete;
  int port() const { return port_; }

 private:
  void Serve();

  const std::string greeting_;
  const Responder respond_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace backpack::mail::test_support
