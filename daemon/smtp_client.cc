// SMTP client (RFC 5321) with STARTTLS (RFC 3207), implicit TLS (RFC 8314)
// and AUTH PLAIN (RFC 4954, RFC 4616).
//
// Each delivery runs one coroutine on a private io_context in the calling
// thread. A steady_timer armed for config.smtp_timeout_ms closes the socket
// when it fires, which completes whatever operation is pending with an error;
// a stop request does the same from another thread. So the call is bounded
// by the deadline, except for name resolution, which getaddrinfo bounds
// (resolv.conf timeout and attempts) and which cannot be interrupted.
//
// Error mapping: a 4xx reply, a network failure, a timeout or a protocol
// violation is kUnavailable (retry later); a 5xx reply, a missing required
// extension (STARTTLS, AUTH PLAIN, SMTPUTF8) or a rejected server certificate
// is kFailedPrecondition (retrying will not help until someone changes
// something). Messages carry the server's reply text, never the credentials.
#include <algorithm>
#include <array>
#include <cctype>
#include <exception>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/host_name.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "daemon/log.h"
#include "daemon/mail.h"
#include "daemon/mail_internal.h"

namespace backpack::mail {
namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using boost::system::error_code;

// Every asynchronous call returns (error_code, ...) instead of throwing.
constexpr auto kAwait = net::as_tuple(net::use_awaitable);

// RFC 5321 4.5.3.1.5 allows 512 bytes per reply line; real servers stay far
// below this cap, which only bounds what a hostile server can make us buffer.
constexpr size_t kMaxReplyLineBytes = 4096;
constexpr size_t kMaxReplyLines = 100;
// Reply text quoted in a Status (and so in logs) is cut to this length.
constexpr size_t kMaxQuotedReply = 512;

#define BP_CO_RETURN_IF_ERROR(expr)                   \
  do {                                                \
    ::backpack::Status bp_co_status_ = (expr);        \
    if (!bp_co_status_.ok()) co_return bp_co_status_; \
  } while (0)

bool IsAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// Server text is untrusted: keep it printable and short.
std::string Printable(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, kMaxQuotedReply)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7f ? c : '?');
  }
  if (text.size() > kMaxQuotedReply) out += "...";
  return out;
}

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

struct Reply {
  int code = 0;
  std::vector<std::string> lines;  // text after "NNN-" or "NNN "

  // "535 5.7.8 Authentication credentials invalid", lines joined by " / ".
  std::string Text() const {
    std::string text = std::to_string(code);
    for (size_t i = 0; i < lines.size(); ++i) {
      text += i == 0 ? " " : " / ";
      text += lines[i];
    }
    return Printable(text);
  }
};

// EHLO keywords we act on (RFC 5321 4.1.1.1; the first reply line is the
// server's greeting, each further line one extension).
struct Extensions {
  bool starttls = false;
  bool auth_plain = false;
  bool smtputf8 = false;
  bool eight_bit_mime = false;
  bool size = false;

  static Extensions Parse(const Reply& reply) {
    Extensions ext;
    for (size_t i = 1; i < reply.lines.size(); ++i) {
      std::vector<std::string> words;
      size_t pos = 0;
      const std::string line = Upper(reply.lines[i]);
      while (pos < line.size()) {
        const size_t end = std::min(line.find(' ', pos), line.size());
        if (end > pos) words.push_back(line.substr(pos, end - pos));
        pos = end + 1;
      }
      if (words.empty()) continue;
      if (words[0] == "STARTTLS") ext.starttls = true;
      if (words[0] == "SMTPUTF8") ext.smtputf8 = true;
      if (words[0] == "8BITMIME") ext.eight_bit_mime = true;
      if (words[0] == "SIZE") ext.size = true;
      if (words[0] == "AUTH") {
        ext.auth_plain = ext.auth_plain || std::find(words.begin() + 1, words.end(), "PLAIN") != words.end();
      }
    }
    return ext;
  }
};

// "MAIL FROM:<...>" and "RCPT TO:<...>" take the address verbatim: it must
// not be able to end the command or the path.
Status CheckPathAddress(std::string_view address, std::string_view what, bool may_be_empty) {
  if (address.empty() && !may_be_empty) return InvalidArgument(fmt::format("smtp: empty {}", what));
  for (char c : address) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '<' || c == '>') {
      return InvalidArgument(
          fmt::format("smtp: {} contains a space, control character or angle bracket", what));
    }
  }
  return {};
}

// The DATA payload: CRLF line ends throughout (a bare CR or LF becomes CRLF,
// so no line end can be read differently by the next hop), lines starting
// with '.' doubled (RFC 5321 4.5.2), and the ending CRLF "." CRLF.
std::string DataPayload(std::string_view message) {
  std::string out;
  out.reserve(message.size() + message.size() / 64 + 8);
  bool line_start = true;
  for (size_t i = 0; i < message.size(); ++i) {
    const char c = message[i];
    if (c == '\r' && i + 1 < message.size() && message[i + 1] == '\n') continue;
    if (c == '\r' || c == '\n') {
      out += "\r\n";
      line_start = true;
      continue;
    }
    if (line_start && c == '.') out.push_back('.');
    out.push_back(c);
    line_start = false;
  }
  if (!line_start) out += "\r\n";
  out += ".\r\n";
  return out;
}

// EHLO argument: the host name when it looks like a fully qualified domain,
// else an address literal of our end of the connection (RFC 5321 4.1.4),
// since many servers refuse a bare single-label name.
std::string EhloName(const tcp::socket& socket) {
  error_code ec;
  const std::string host = net::ip::host_name(ec);
  const bool domain_like =
      !ec && !host.empty() && host.size() <= 253 && host.find('.') != std::string::npos &&
      host.front() != '.' && host.front() != '-' && host.back() != '.' && host.back() != '-' &&
      std::all_of(host.begin(), host.end(),
                  [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.'; });
  if (domain_like) return host;
  const tcp::endpoint local = socket.local_endpoint(ec);
  if (ec) return "[127.0.0.1]";
  const net::ip::address address = local.address();
  if (address.is_v6()) {
    const net::ip::address_v6 v6 = address.to_v6();
    if (v6.is_v4_mapped()) return "[" + net::ip::make_address_v4(net::ip::v4_mapped, v6).to_string() + "]";
    return "[IPv6:" + v6.to_string() + "]";
  }
  return "[" + address.to_string() + "]";
}

// The TLS context must be complete before the stream is created from it:
// OpenSSL copies options such as the minimum version into each connection.
Result<ssl::context> MakeTlsContext(const config::MailConfig& config) {
  ssl::context context(ssl::context::tls_client);
  // TLS 1.2 is the oldest version still considered safe (RFC 8996, RFC 9325).
  if (SSL_CTX_set_min_proto_version(context.native_handle(), TLS1_2_VERSION) != 1) {
    return Internal("smtp: cannot set the minimum TLS version");
  }
  if (config.smtp_tls == "none" || !config.smtp_verify_peer) return context;
  error_code ec;
  context.set_default_verify_paths(ec);
  if (ec) return FailedPrecondition("smtp: cannot load the system CA certificates: " + ec.message());
  if (!config.smtp_ca_file.empty()) {
    context.load_verify_file(config.smtp_ca_file, ec);
    if (ec) {
      return FailedPrecondition(
          fmt::format("smtp: cannot load mail.smtp_ca_file {}: {}", config.smtp_ca_file, ec.message()));
    }
  }
  return context;
}

class SmtpSession {
 public:
  SmtpSession(const config::MailConfig& config, std::stop_token stop, ssl::context tls_context)
      : config_(config),
        stop_(std::move(stop)),
        where_(fmt::format("{}:{}", config.smtp_host, config.smtp_port)),
        tls_context_(std::move(tls_context)),
        stream_(io_, tls_context_) {}

  Status Run(std::string_view from, std::string_view recipient, std::string_view message) {
    BP_RETURN_IF_ERROR(SetUpStream());
    if (stop_.stop_requested()) return Unavailable("smtp: delivery cancelled by shutdown");

    deadline_.expires_after(std::chrono::milliseconds(config_.smtp_timeout_ms));
    deadline_.async_wait([this](error_code ec) {
      if (ec) return;  // cancelled: the transaction finished first
      timed_out_ = true;
      Abort();
    });
    // Runs on the stopping thread; the work itself must happen on io_.
    std::stop_callback on_stop(stop_, [this] {
      net::post(io_, [this] {
        cancelled_ = true;
        Abort();
      });
    });

    Status result = Internal("smtp: transaction did not finish");
    net::co_spawn(io_, Transaction(from, recipient, message),
                  [this, &result](std::exception_ptr error, Status status) {
                    deadline_.cancel();
                    if (error) {
                      try {
                        std::rethrow_exception(error);
                      } catch (const std::exception& e) {
                        status = Internal(fmt::format("smtp: {}", e.what()));
                      }
                    }
                    result = std::move(status);
                  });
    io_.run();
    return result;
  }

 private:
  Status SetUpStream() {
    if (config_.smtp_tls == "none") return {};
    error_code ec;
    if (!config_.smtp_verify_peer) {
      stream_.set_verify_mode(ssl::verify_none, ec);
      if (ec) return Internal("smtp: cannot set TLS verify mode: " + ec.message());
      return {};
    }
    stream_.set_verify_mode(ssl::verify_peer, ec);
    if (ec) return Internal("smtp: cannot set TLS verify mode: " + ec.message());
    // host_name_verification checks DNS names and IP addresses against the
    // leaf certificate; the wrapper remembers why a certificate was refused.
    stream_.set_verify_callback(
        [this, check = ssl::host_name_verification(config_.smtp_host)](bool preverified,
                                                                       ssl::verify_context& context) {
          if (!preverified) {
            if (certificate_error_.empty()) {
              certificate_error_ =
                  X509_verify_cert_error_string(X509_STORE_CTX_get_error(context.native_handle()));
            }
            return false;
          }
          if (!check(preverified, context)) {
            if (certificate_error_.empty()) {
              certificate_error_ = "the certificate does not match host name " + config_.smtp_host;
            }
            return false;
          }
          return true;
        },
        ec);
    if (ec) return Internal("smtp: cannot set TLS verify callback: " + ec.message());
    // SNI, for servers with several certificates; not sent for IP literals.
    error_code not_ip;
    net::ip::make_address(config_.smtp_host, not_ip);
    if (not_ip && SSL_set_tlsext_host_name(stream_.native_handle(), config_.smtp_host.c_str()) != 1) {
      return Internal("smtp: cannot set TLS server name");
    }
    return {};
  }

  void Abort() {
    error_code ignored;
    resolver_.cancel();
    stream_.next_layer().close(ignored);
  }

  net::awaitable<Status> Transaction(std::string_view from, std::string_view recipient,
                                     std::string_view message) {
    const bool utf8 = !IsAscii(from) || !IsAscii(recipient);
    BP_CO_RETURN_IF_ERROR(co_await Connect());
    if (config_.smtp_tls == "tls") BP_CO_RETURN_IF_ERROR(co_await Handshake());

    Reply reply;
    BP_CO_RETURN_IF_ERROR(co_await ReadReply(&reply));
    BP_CO_RETURN_IF_ERROR(Expect(reply, "greeting", 220));
    ehlo_name_ = EhloName(stream_.next_layer());
    BP_CO_RETURN_IF_ERROR(co_await Ehlo());

    if (config_.smtp_tls == "starttls") {
      if (!extensions_.starttls) {
        co_return FailedPrecondition(fmt::format("smtp: server {} does not offer STARTTLS", where_));
      }
      BP_CO_RETURN_IF_ERROR(co_await Command("STARTTLS", "STARTTLS", 220));
      // Anything the server sent after its 220 arrived in plain text and
      // would be taken as TLS-protected: the RFC 3207 injection attack.
      if (!input_.empty()) {
        co_return Unavailable(fmt::format("smtp: server {} sent data after its STARTTLS reply", where_));
      }
      BP_CO_RETURN_IF_ERROR(co_await Handshake());
      // RFC 3207 4.2: forget everything learnt before TLS.
      BP_CO_RETURN_IF_ERROR(co_await Ehlo());
    }

    if (!config_.smtp_username.empty()) BP_CO_RETURN_IF_ERROR(co_await Authenticate());

    std::string mail_from = fmt::format("MAIL FROM:<{}>", from);
    if (extensions_.size) mail_from += fmt::format(" SIZE={}", message.size());
    if (utf8) {
      if (!extensions_.smtputf8) {
        co_return FailedPrecondition(
            fmt::format("smtp: server {} does not offer SMTPUTF8, needed for a non-ASCII address", where_));
      }
      mail_from += " SMTPUTF8";
    }
    if (!IsAscii(message) && extensions_.eight_bit_mime) mail_from += " BODY=8BITMIME";
    BP_CO_RETURN_IF_ERROR(co_await Command(mail_from, "MAIL FROM", 250));
    BP_CO_RETURN_IF_ERROR(co_await Command(fmt::format("RCPT TO:<{}>", recipient), "RCPT TO", 250, 251));
    BP_CO_RETURN_IF_ERROR(co_await Command("DATA", "DATA", 354));
    const std::string payload = DataPayload(message);
    BP_CO_RETURN_IF_ERROR(co_await Write(payload));
    BP_CO_RETURN_IF_ERROR(co_await ReadReply(&reply));
    BP_CO_RETURN_IF_ERROR(Expect(reply, "message", 250));

    // The message is accepted; QUIT is a courtesy and its outcome is moot.
    // No TLS close_notify either: it could only delay us.
    if ((co_await Write("QUIT\r\n")).ok()) (co_await ReadReply(&reply)).IgnoreError();
    co_return Status::Ok();
  }

  net::awaitable<Status> Connect() {
    auto [resolve_error, endpoints] =
        co_await resolver_.async_resolve(config_.smtp_host, std::to_string(config_.smtp_port), kAwait);
    if (resolve_error) co_return NetworkError("resolving", resolve_error);
    // A deadline or stop that came during the lookup found no socket to
    // close, and cancelling a lookup does not interrupt getaddrinfo.
    if (timed_out_ || cancelled_) co_return NetworkError("resolving", net::error::operation_aborted);
    auto [connect_error, endpoint] = co_await net::async_connect(stream_.next_layer(), endpoints, kAwait);
    if (connect_error) co_return NetworkError("connecting to", connect_error);
    co_return Status::Ok();
  }

  net::awaitable<Status> Handshake() {
    auto [ec] = co_await stream_.async_handshake(ssl::stream_base::client, kAwait);
    if (ec) {
      if (timed_out_ || cancelled_) co_return NetworkError("TLS handshake with", ec);
      if (!certificate_error_.empty()) {
        co_return FailedPrecondition(
            fmt::format("smtp: TLS certificate of {} refused: {}", where_, certificate_error_));
      }
      co_return Unavailable(fmt::format("smtp: TLS handshake with {} failed: {}", where_, ec.message()));
    }
    tls_active_ = true;
    co_return Status::Ok();
  }

  net::awaitable<Status> Ehlo() {
    Reply reply;
    BP_CO_RETURN_IF_ERROR(co_await Command("EHLO " + ehlo_name_, "EHLO", 250, 0, &reply));
    extensions_ = Extensions::Parse(reply);
    co_return Status::Ok();
  }

  net::awaitable<Status> Authenticate() {
    if (!tls_active_) {
      if (config_.smtp_tls != "none") {
        co_return FailedPrecondition("smtp: refusing to send credentials without TLS");
      }
      log::Warn("mail", "sending SMTP credentials without TLS (mail.smtp_tls = \"none\")",
                {{"server", where_}});
    }
    if (!extensions_.auth_plain) {
      co_return FailedPrecondition(fmt::format("smtp: server {} does not offer AUTH PLAIN", where_));
    }
    // RFC 4616: authorization identity (empty), NUL, user name, NUL, password.
    std::string credentials;
    credentials.push_back('\0');
    credentials += config_.smtp_username;
    credentials.push_back('\0');
    credentials += config_.smtp_password;
    co_return co_await Command("AUTH PLAIN " + internal::Base64Encode(credentials), "AUTH", 235);
  }

  // Sends one command line and reads its reply, which must have code
  // `expected` (or `also_expected`). `what` names the command in errors (never the line
  // itself, which may hold credentials).
  net::awaitable<Status> Command(std::string line, std::string_view what, int expected, int also_expected = 0,
                                 Reply* reply_out = nullptr) {
    line += "\r\n";
    BP_CO_RETURN_IF_ERROR(co_await Write(line));
    Reply reply;
    BP_CO_RETURN_IF_ERROR(co_await ReadReply(&reply));
    Status status = Expect(reply, what, expected, also_expected);
    if (reply_out != nullptr) *reply_out = std::move(reply);
    co_return status;
  }

  // OK when the reply has code `expected` (or `also_expected`, if not 0).
  Status Expect(const Reply& reply, std::string_view what, int expected, int also_expected = 0) const {
    if (reply.code == expected || (also_expected != 0 && reply.code == also_expected)) return {};
    std::string message = fmt::format("smtp: {} refused by {}: {}", what, where_, reply.Text());
    if (reply.code >= 500) return FailedPrecondition(std::move(message));
    if (reply.code >= 400) return Unavailable(std::move(message));
    return Unavailable(fmt::format("smtp: unexpected reply to {} from {}: {}", what, where_, reply.Text()));
  }

  net::awaitable<Status> Write(std::string_view data) {
    error_code ec;
    if (tls_active_) {
      std::tie(ec, std::ignore) = co_await net::async_write(stream_, net::buffer(data), kAwait);
    } else {
      std::tie(ec, std::ignore) = co_await net::async_write(stream_.next_layer(), net::buffer(data), kAwait);
    }
    if (ec) co_return NetworkError("writing to", ec);
    co_return Status::Ok();
  }

  // Reads one reply: lines "NNN-text" then a last line "NNN text" (or just
  // "NNN"), all with the same code (RFC 5321 4.2.1).
  net::awaitable<Status> ReadReply(Reply* reply) {
    reply->code = 0;
    reply->lines.clear();
    for (;;) {
      std::string line;
      BP_CO_RETURN_IF_ERROR(co_await ReadLine(&line));
      const bool well_formed = line.size() >= 3 && std::isdigit(static_cast<unsigned char>(line[0])) &&
                               line[0] >= '2' && line[0] <= '5' &&
                               std::isdigit(static_cast<unsigned char>(line[1])) &&
                               std::isdigit(static_cast<unsigned char>(line[2])) &&
                               (line.size() == 3 || line[3] == ' ' || line[3] == '-');
      const int code = well_formed ? (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0') : 0;
      if (!well_formed || (!reply->lines.empty() && code != reply->code)) {
        co_return Unavailable(fmt::format("smtp: malformed reply from {}: {}", where_, Printable(line)));
      }
      if (reply->lines.size() == kMaxReplyLines) {
        co_return Unavailable(
            fmt::format("smtp: reply from {} has more than {} lines", where_, kMaxReplyLines));
      }
      reply->code = code;
      reply->lines.push_back(line.size() > 4 ? line.substr(4) : "");
      if (line.size() == 3 || line[3] == ' ') co_return Status::Ok();
    }
  }

  // One line without its line end (LF or CRLF).
  net::awaitable<Status> ReadLine(std::string* line) {
    for (;;) {
      const size_t end = input_.find('\n');
      if (end != std::string::npos) {
        if (end > kMaxReplyLineBytes) break;
        line->assign(input_, 0, end > 0 && input_[end - 1] == '\r' ? end - 1 : end);
        input_.erase(0, end + 1);
        co_return Status::Ok();
      }
      if (input_.size() > kMaxReplyLineBytes) break;
      error_code ec;
      size_t n = 0;
      if (tls_active_) {
        std::tie(ec, n) = co_await stream_.async_read_some(net::buffer(read_buffer_), kAwait);
      } else {
        std::tie(ec, n) = co_await stream_.next_layer().async_read_some(net::buffer(read_buffer_), kAwait);
      }
      if (ec) co_return NetworkError("reading from", ec);
      input_.append(read_buffer_.data(), n);
    }
    co_return Unavailable(
        fmt::format("smtp: reply line from {} is longer than {} bytes", where_, kMaxReplyLineBytes));
  }

  Status NetworkError(std::string_view action, const error_code& ec) const {
    if (timed_out_) {
      return Unavailable(
          fmt::format("smtp: no complete transaction with {} within {} ms (mail.smtp_timeout_ms)", where_,
                      config_.smtp_timeout_ms));
    }
    if (cancelled_) return Unavailable(fmt::format("smtp: delivery to {} cancelled by shutdown", where_));
    if (ec == net::error::eof || ec == ssl::error::stream_truncated) {
      return Unavailable(fmt::format("smtp: {} closed the connection", where_));
    }
    return Unavailable(fmt::format("smtp: {} {} failed: {}", action, where_, ec.message()));
  }

  const config::MailConfig& config_;
  const std::stop_token stop_;
  const std::string where_;  // "host:port", for messages

  net::io_context io_;
  ssl::context tls_context_;
  tcp::resolver resolver_{io_};
  ssl::stream<tcp::socket> stream_;
  net::steady_timer deadline_{io_};

  bool tls_active_ = false;
  bool timed_out_ = false;
  bool cancelled_ = false;
  std::string certificate_error_;  // set by the verify callback
  std::string ehlo_name_;
  Extensions extensions_;
  std::string input_;  // received, not yet consumed
  std::array<char, 4096> read_buffer_{};
};

}  // namespace

namespace internal {

Status DeliverSmtp(const config::MailConfig& config, std::string_view envelope_from,
                   std::string_view recipient, std::string_view rfc5322_message, std::stop_token stop) {
  if (config.smtp_host.empty()) return FailedPrecondition("smtp: mail.smtp_host is not set");
  if (config.smtp_tls != "starttls" && config.smtp_tls != "tls" && config.smtp_tls != "none") {
    return FailedPrecondition("smtp: mail.smtp_tls must be \"starttls\", \"tls\" or \"none\"");
  }
  BP_RETURN_IF_ERROR(CheckPathAddress(envelope_from, "sender", /*may_be_empty=*/true));
  BP_RETURN_IF_ERROR(CheckPathAddress(recipient, "recipient", /*may_be_empty=*/false));
  try {
    auto tls_context = MakeTlsContext(config);
    if (!tls_context.ok()) return tls_context.status();
    SmtpSession session(config, std::move(stop), std::move(*tls_context));
    return session.Run(envelope_from, recipient, rfc5322_message);
  } catch (const std::exception& e) {
    // Asio and OpenSSL setup report failures (e.g. no memory) by throwing.
    return Internal(fmt::format("smtp: {}", e.what()));
  }
}

}  // namespace internal

Status DeliverSmtp(const config::MailConfig& config, std::string_view envelope_from,
                   std::string_view recipient, std::string_view rfc5322_message) {
  return internal::DeliverSmtp(config, envelope_from, recipient, rfc5322_message, std::stop_token());
}

}  // namespace backpack::mail
