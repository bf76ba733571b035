// DeliverSmtp and the spool + relay mailer against a real SMTP server
// (aiosmtpd, see smtp_server.py), over STARTTLS, implicit TLS and plain TCP.
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "config/config.h"
#include "daemon/mail.h"
#include "daemon/mail_internal.h"
#include "tests/mail/test_support.h"

namespace backpack::mail {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using test_support::CertFiles;
using test_support::DecodeQuotedPrintable;
using test_support::ListNames;
using test_support::ParseMessage;
using test_support::PollUntil;
using test_support::ReadReceived;
using test_support::Received;
using test_support::ReservedPort;
using test_support::ServerOptions;
using test_support::SilentListener;
using test_support::SmtpServer;
using test_support::TempDir;

constexpr char kUser[] = "mailer";
constexpr char kPassword[] = "correct horse battery staple";
constexpr char kRecipient[] = "ada@example.org";
constexpr char kSender[] = "noreply@backpack.example";

// A body that exercises dot-stuffing: lines starting with '.', and a line
// that is only '.', which would end DATA early if not doubled.
const Message kMessage{std::string("Ada <") + kRecipient + ">", "Verify your address",
                       "Your token: tok=123\n.\n..two dots\n.leading dot\nlast line \n"};

std::vector<std::string> EmlFiles(const std::string& dir) {
  std::vector<std::string> files;
  for (const std::string& name : ListNames(dir)) {
    if (name.ends_with(".eml")) files.push_back(name);
  }
  return files;
}

class SmtpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A missing server is a failure, not a skip: the SMTP client must be
    // tested against a real server. deploy/bootstrap.sh test installs it.
    ASSERT_TRUE(test_support::SmtpServerAvailable())
        << "no python3 with aiosmtpd was found when the build was configured; "
           "install python3-aiosmtpd (deploy/bootstrap.sh test does)";
    received_dir_ = tmp_.MakeSubdir("received");
    cert_ = test_support::MakeSelfSignedCert(tmp_.path(), "server", "DNS:localhost,IP:127.0.0.1");
  }

  std::unique_ptr<SmtpServer> StartServer(ServerOptions options) {
    options.out_dir = received_dir_;
    if (options.cert.cert.empty()) options.cert = cert_;
    std::string error;
    auto server = SmtpServer::Start(options, &error);
    EXPECT_NE(server, nullptr) << error;
    return server;
  }

  // The usual server: STARTTLS required, AUTH PLAIN required (over TLS only).
  std::unique_ptr<SmtpServer> StartTlsAuthServer(int port = 0) {
    ServerOptions options;
    options.tls = "starttls";
    options.require_starttls = true;
    options.auth_user = kUser;
    options.auth_password = kPassword;
    options.port = port;
    return StartServer(options);
  }

  config::MailConfig ClientConfig(int port) const {
    config::MailConfig config;
    config.from = std::string("backpackd <") + kSender + ">";
    config.smtp_host = "127.0.0.1";
    config.smtp_port = port;
    config.smtp_tls = "starttls";
    config.smtp_ca_file = cert_.cert;
    config.smtp_username = kUser;
    config.smtp_password = kPassword;
    config.smtp_timeout_ms = 20'000;
    return config;
  }

  std::string Formatted(const Message& message = kMessage) const {
    auto text = FormatMessage(message, std::string("backpackd <") + kSender + ">",
                              std::chrono::system_clock::now(), "test@backpack.example");
    EXPECT_TRUE(text.ok()) << text.status().ToString();
    return text.ok() ? *text : "";
  }

  Status Deliver(const config::MailConfig& config, const std::string& message) const {
    return DeliverSmtp(config, kSender, kRecipient, message);
  }

  std::vector<Received> Arrived() const { return ReadReceived(received_dir_); }

  static std::string Envelope(std::string_view user, bool tls) {
    return std::string("MAIL FROM:<") + kSender + ">\nRCPT TO:<" + kRecipient + ">\nAUTH " +
           std::string(user) + "\nTLS " + (tls ? "yes" : "no") + "\n";
  }

  TempDir tmp_;
  std::string received_dir_;
  CertFiles cert_;
};

TEST_F(SmtpTest, StartTlsWithAuthDeliversTheMessageAsSent) {
  auto server = StartTlsAuthServer();
  ASSERT_NE(server, nullptr);
  const std::string message = Formatted();
  const Status status = Deliver(ClientConfig(server->port()), message);
  ASSERT_TRUE(status.ok()) << status.ToString();

  // The server stores a message before it answers DATA, so it is there now.
  const auto received = Arrived();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].envelope, Envelope(kUser, /*tls=*/true));
  EXPECT_EQ(received[0].message, message);
  EXPECT_EQ(DecodeQuotedPrintable(ParseMessage(received[0].message).body), kMessage.text_body);
}

TEST_F(SmtpTest, ImplicitTlsDeliversTheMessage) {
  ServerOptions options;
  options.tls = "implicit";
  options.auth_user = kUser;
  options.auth_password = kPassword;
  auto server = StartServer(options);
  ASSERT_NE(server, nullptr);
  config::MailConfig config = ClientConfig(server->port());
  config.smtp_tls = "tls";
  const std::string message = Formatted();
  const Status status = Deliver(config, message);
  ASSERT_TRUE(status.ok()) << status.ToString();
  const auto received = Arrived();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].envelope, Envelope(kUser, /*tls=*/true));
  EXPECT_EQ(received[0].message, message);
}

TEST_F(SmtpTest, WrongPasswordIsFailedPreconditionAndNothingArrives) {
  auto server = StartTlsAuthServer();
  ASSERT_NE(server, nullptr);
  config::MailConfig config = ClientConfig(server->port());
  config.smtp_password = "wrong";
  const Status status = Deliver(config, Formatted());
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << status.ToString();
  EXPECT_NE(status.message().find("535"), std::string::npos) << status.ToString();
  EXPECT_EQ(status.message().find("wrong"), std::string::npos) << "credentials leaked: " << status.ToString();
  EXPECT_TRUE(Arrived().empty());
}

TEST_F(SmtpTest, StartTlsRequiredButNotOfferedSendsNothing) {
  auto server = StartServer(ServerOptions{});  // plain SMTP, no STARTTLS, no AUTH
  ASSERT_NE(server, nullptr);
  config::MailConfig config = ClientConfig(server->port());
  config.smtp_username.clear();
  const Status status = Deliver(config, Formatted());
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << status.ToString();
  EXPECT_NE(status.message().find("does not offer STARTTLS"), std::string::npos) << status.ToString();
  EXPECT_TRUE(Arrived().empty());
}

TEST_F(SmtpTest, UntrustedCertificateIsRefusedWhenVerifying) {
  auto server = StartTlsAuthServer();
  ASSERT_NE(server, nullptr);
  config::MailConfig config = ClientConfig(server->port());
  config.smtp_ca_file.clear();  // only the system CAs, which never signed our cert
  const Status status = Deliver(config, Formatted());
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << status.ToString();
  EXPECT_NE(status.message().find("certificate"), std::string::npos) << status.ToString();
  EXPECT_TRUE(Arrived().empty());

  config.smtp_verify_peer = false;
  const Status unverified = Deliver(config, Formatted());
  EXPECT_TRUE(unverified.ok()) << unverified.ToString();
  EXPECT_EQ(Arrived().size(), 1u);
}

TEST_F(SmtpTest, CertificateForAnotherHostIsRefused) {
  ServerOptions options;
  options.tls = "starttls";
  options.require_starttls = true;
  options.cert = test_support::MakeSelfSignedCert(tmp_.path(), "other", "DNS:mail.example");
  auto server = StartServer(options);
  ASSERT_NE(server, nullptr);
  config::MailConfig config = ClientConfig(server->port());
  config.smtp_ca_file = options.cert.cert;  // trusted, but not for 127.0.0.1
  config.smtp_username.clear();
  const Status status = Deliver(config, Formatted());
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << status.ToString();
  EXPECT_NE(status.message().find("host name"), std::string::npos) << status.ToString();
  EXPECT_TRUE(Arrived().empty());
}

TEST_F(SmtpTest, RejectedRecipientIsFailedPrecondition) {
  ServerOptions options;
  options.tls = "starttls";
  options.reject_rcpt = {kRecipient};
  auto server = StartServer(options);
  ASSERT_NE(server, nullptr);
  config::MailConfig config = ClientConfig(server->port());
  config.smtp_username.clear();
  const Status status = Deliver(config, Formatted());
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << status.ToString();
  EXPECT_NE(status.message().find("550"), std::string::npos) << status.ToString();
  EXPECT_TRUE(Arrived().empty());
}

TEST_F(SmtpTest, CredentialsWithoutTlsOnlyWhenTlsNoneIsChosen) {
  ServerOptions options;
  options.auth_user = kUser;
  options.auth_password = kPassword;
  options.auth_allow_plaintext = true;
  auto server = StartServer(options);
  ASSERT_NE(server, nullptr);
  config::MailConfig config = ClientConfig(server->port());
  config.smtp_tls = "none";
  const std::string message = Formatted();
  const Status status = Deliver(config, message);
  ASSERT_TRUE(status.ok()) << status.ToString();
  const auto received = Arrived();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].envelope, Envelope(kUser, /*tls=*/false));
  EXPECT_EQ(received[0].message, message);
}

TEST_F(SmtpTest, SilentServerIsUnavailableWithinTheTimeout) {
  SilentListener silent;
  config::MailConfig config = ClientConfig(silent.port());
  config.smtp_timeout_ms = 300;
  const auto start = std::chrono::steady_clock::now();
  const Status status = Deliver(config, Formatted());
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
  EXPECT_NE(status.message().find("smtp_timeout_ms"), std::string::npos) << status.ToString();
  EXPECT_GE(elapsed, milliseconds(250));
  EXPECT_LT(elapsed, seconds(5));
}

TEST_F(SmtpTest, RefusedConnectionIsUnavailable) {
  ReservedPort closed;
  const Status status = Deliver(ClientConfig(closed.port()), Formatted());
  EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
}

TEST_F(SmtpTest, BareLineEndsAreSentAsCrlfAndDotsAreStuffed) {
  auto server = StartServer(ServerOptions{});
  ASSERT_NE(server, nullptr);
  config::MailConfig config = ClientConfig(server->port());
  config.smtp_tls = "none";
  config.smtp_username.clear();
  const Status status = Deliver(config, "Subject: x\n\nbare lf\n.\nbare cr\r.dot\r\nno end");
  ASSERT_TRUE(status.ok()) << status.ToString();
  const auto received = Arrived();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].message, "Subject: x\r\n\r\nbare lf\r\n.\r\nbare cr\r\n.dot\r\nno end\r\n");
}

// ---- Replies no real server sends ---------------------------------------------

using test_support::ScriptedServer;

config::MailConfig PlainConfig(int port) {
  config::MailConfig config;
  config.smtp_host = "127.0.0.1";
  config.smtp_port = port;
  config.smtp_tls = "none";
  config.smtp_timeout_ms = 20'000;
  return config;
}

// Answers EHLO with `ehlo_reply` and everything else with 250.
ScriptedServer::Responder Ehlo(std::string ehlo_reply) {
  return [ehlo_reply](const std::string& line) -> std::string {
    if (line.starts_with("EHLO ")) return ehlo_reply;
    if (line == "QUIT") return "";
    if (line == "DATA") return "354 go ahead\r\n";
    return "250 ok\r\n";
  };
}

Status DeliverTo(const ScriptedServer& server) {
  return DeliverSmtp(PlainConfig(server.port()), kSender, kRecipient, "Subject: x\r\n\r\nbody\r\n");
}

TEST(SmtpProtocolTest, ReplyCodesMapToRetryOrNot) {
  {
    ScriptedServer server("554 5.7.1 go away\r\n", Ehlo(""));
    const Status status = DeliverTo(server);
    EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << status.ToString();
    EXPECT_NE(status.message().find("554 5.7.1 go away"), std::string::npos) << status.ToString();
  }
  {
    ScriptedServer server("421-4.3.2 busy\r\n421 4.3.2 try later\r\n", Ehlo(""));
    const Status status = DeliverTo(server);
    EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
    EXPECT_NE(status.message().find("421 4.3.2 busy / 4.3.2 try later"), std::string::npos)
        << status.ToString();
  }
  {
    ScriptedServer server("220 hi\r\n", [](const std::string& line) -> std::string {
      if (line.starts_with("EHLO ")) return "250 hi\r\n";
      if (line.starts_with("RCPT TO:")) return "452 4.2.2 mailbox full\r\n";
      return line == "QUIT" ? "" : "250 ok\r\n";
    });
    const Status status = DeliverTo(server);
    EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
    EXPECT_NE(status.message().find("452"), std::string::npos) << status.ToString();
  }
  {
    ScriptedServer server("220 hi\r\n", Ehlo("250-hi\r\n250 SIZE 1000\r\n"));
    const Status status = DeliverTo(server);
    EXPECT_TRUE(status.ok()) << status.ToString();
  }
}

TEST(SmtpProtocolTest, OverlongOrMalformedRepliesAreRefused) {
  const std::string too_many_lines = [] {
    std::string text;
    for (int i = 0; i < 150; ++i) text += "220-hello\r\n";
    return text + "220 done\r\n";
  }();
  const std::pair<std::string, std::string> cases[] = {
      {std::string(5000, 'a'), "longer than 4096 bytes"},
      {"220 " + std::string(5000, 'a') + "\r\n", "longer than 4096 bytes"},
      {too_many_lines, "more than 100 lines"},
      {"hello\r\n", "malformed reply"},
      {"220-a\r\n250 b\r\n", "malformed reply"},
      {"999 no\r\n", "malformed reply"},
  };
  for (const auto& [greeting, error] : cases) {
    ScriptedServer server(greeting, Ehlo(""));
    const Status status = DeliverTo(server);
    EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
    EXPECT_NE(status.message().find(error), std::string::npos) << status.ToString();
  }
}

TEST(SmtpProtocolTest, DataInjectedAfterStartTlsReplyIsRefused) {
  ScriptedServer server("220 hi\r\n", [](const std::string& line) -> std::string {
    if (line.starts_with("EHLO ")) return "250-hi\r\n250 STARTTLS\r\n";
    if (line == "STARTTLS") return "220 go ahead\r\n250 injected\r\n";
    return "";
  });
  config::MailConfig config = PlainConfig(server.port());
  config.smtp_tls = "starttls";
  const Status status = DeliverSmtp(config, kSender, kRecipient, "Subject: x\r\n\r\nbody\r\n");
  EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
  EXPECT_NE(status.message().find("sent data after its STARTTLS reply"), std::string::npos)
      << status.ToString();
}

TEST(SmtpProtocolTest, CredentialsAreNeverSentWithoutAuthPlain) {
  ScriptedServer server("220 hi\r\n", [](const std::string& line) -> std::string {
    if (line.starts_with("EHLO ")) return "250-hi\r\n250 AUTH LOGIN\r\n";
    if (line.starts_with("AUTH")) ADD_FAILURE() << "credentials sent: " << line;
    return line == "QUIT" ? "" : "250 ok\r\n";
  });
  config::MailConfig config = PlainConfig(server.port());
  config.smtp_username = kUser;
  config.smtp_password = kPassword;
  const Status status = DeliverSmtp(config, kSender, kRecipient, "Subject: x\r\n\r\nbody\r\n");
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << status.ToString();
  EXPECT_NE(status.message().find("AUTH PLAIN"), std::string::npos) << status.ToString();
}

TEST(SmtpProtocolTest, RefusesAddressesThatCouldInjectCommands) {
  const config::MailConfig config = PlainConfig(1);
  EXPECT_EQ(DeliverSmtp(config, kSender, "a@b.c>\r\nRCPT TO:<eve@x", "x").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(DeliverSmtp(config, "a@b.c> SIZE=1", kRecipient, "x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DeliverSmtp(config, kSender, "", "x").code(), StatusCode::kInvalidArgument);
}

// ---- Spool + relay ----------------------------------------------------------

// Records relay attempts, so tests wait for them instead of sleeping.
class AttemptRecorder {
 public:
  internal::RelayOptions Options() {
    internal::RelayOptions options;
    options.initial_backoff = milliseconds(100);
    options.max_backoff = milliseconds(400);
    options.on_attempt_start = [this](const std::string&) {
      std::lock_guard<std::mutex> lock(mu_);
      ++started_;
      cv_.notify_all();
    };
    options.on_attempt_done = [this](const std::string&, const Status& result) {
      std::lock_guard<std::mutex> lock(mu_);
      results_.push_back(result);
      cv_.notify_all();
    };
    return options;
  }

  bool WaitForStart(milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return started_ > 0; });
  }

  // Waits for a finished attempt with result `code`; returns its status.
  std::optional<Status> WaitForResult(StatusCode code, milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    std::optional<Status> found;
    cv_.wait_for(lock, timeout, [&] {
      for (const Status& s : results_) {
        if (s.code() == code) found = s;
      }
      return found.has_value();
    });
    return found;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int started_ = 0;
  std::vector<Status> results_;
};

class RelayTest : public SmtpTest {
 protected:
  void SetUp() override {
    SmtpTest::SetUp();
    data_dir_ = tmp_.path() + "/data";
    spool_dir_ = data_dir_ + "/mail-spool";
  }

  std::string data_dir_;
  std::string spool_dir_;
};

TEST_F(RelayTest, KeepsTheMessageWhileTheServerIsDownThenDeliversIt) {
  ReservedPort port;
  AttemptRecorder attempts;
  auto mailer = internal::MakeSpoolMailer(ClientConfig(port.port()), data_dir_, attempts.Options());
  ASSERT_TRUE(mailer.ok()) << mailer.status().ToString();
  ASSERT_TRUE((*mailer)->Send(kMessage).ok());

  ASSERT_TRUE(attempts.WaitForResult(StatusCode::kUnavailable, seconds(20)));
  EXPECT_EQ(EmlFiles(spool_dir_).size(), 1u);
  EXPECT_TRUE(Arrived().empty());

  port.Release();
  auto server = StartTlsAuthServer(port.port());
  ASSERT_NE(server, nullptr);
  EXPECT_TRUE(PollUntil([&] { return EmlFiles(spool_dir_).empty() && Arrived().size() == 1; }, seconds(20)));
  (*mailer)->Stop();

  const auto received = Arrived();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].envelope, Envelope(kUser, /*tls=*/true));
  // The envelope line of the spool file is not part of what is sent.
  EXPECT_EQ(received[0].message.find(internal::kEnvelopeToField), std::string::npos);
  const auto parsed = ParseMessage(received[0].message);
  EXPECT_EQ(parsed.Header("To"), kMessage.to);
  EXPECT_EQ(DecodeQuotedPrintable(parsed.body), kMessage.text_body);
  EXPECT_TRUE(ListNames(spool_dir_ + "/failed").empty());
}

TEST_F(RelayTest, StopKeepsTheSpoolAndTheNextStartDeliversIt) {
  ReservedPort port;
  {
    AttemptRecorder attempts;
    auto mailer = internal::MakeSpoolMailer(ClientConfig(port.port()), data_dir_, attempts.Options());
    ASSERT_TRUE(mailer.ok()) << mailer.status().ToString();
    ASSERT_TRUE((*mailer)->Send(kMessage).ok());
    ASSERT_TRUE(attempts.WaitForResult(StatusCode::kUnavailable, seconds(20)));
    (*mailer)->Stop();
  }
  ASSERT_EQ(EmlFiles(spool_dir_).size(), 1u);

  port.Release();
  auto server = StartTlsAuthServer(port.port());
  ASSERT_NE(server, nullptr);
  auto mailer = MakeMailer(ClientConfig(port.port()), data_dir_);  // production options
  ASSERT_TRUE(mailer.ok()) << mailer.status().ToString();
  EXPECT_TRUE(PollUntil([&] { return EmlFiles(spool_dir_).empty() && Arrived().size() == 1; }, seconds(20)));
  (*mailer)->Stop();
  EXPECT_EQ(Arrived().size(), 1u);
}

TEST_F(RelayTest, PermanentFailureMovesTheMessageToFailed) {
  ServerOptions options;
  options.tls = "starttls";
  options.reject_rcpt = {kRecipient};
  auto server = StartServer(options);
  ASSERT_NE(server, nullptr);
  config::MailConfig config = ClientConfig(server->port());
  config.smtp_username.clear();
  AttemptRecorder attempts;
  auto mailer = internal::MakeSpoolMailer(config, data_dir_, attempts.Options());
  ASSERT_TRUE(mailer.ok()) << mailer.status().ToString();
  ASSERT_TRUE((*mailer)->Send(kMessage).ok());

  ASSERT_TRUE(attempts.WaitForResult(StatusCode::kFailedPrecondition, seconds(20)));
  (*mailer)->Stop();
  EXPECT_TRUE(EmlFiles(spool_dir_).empty());
  EXPECT_EQ(EmlFiles(spool_dir_ + "/failed").size(), 1u);
  EXPECT_TRUE(Arrived().empty());
}

TEST_F(RelayTest, GivesUpAfterRetryMaxHours) {
  ReservedPort port;
  config::MailConfig config = ClientConfig(port.port());
  config.retry_max_hours = 0;  // every message is already too old to retry
  AttemptRecorder attempts;
  auto mailer = internal::MakeSpoolMailer(config, data_dir_, attempts.Options());
  ASSERT_TRUE(mailer.ok()) << mailer.status().ToString();
  ASSERT_TRUE((*mailer)->Send(kMessage).ok());
  ASSERT_TRUE(attempts.WaitForResult(StatusCode::kUnavailable, seconds(20)));
  (*mailer)->Stop();
  EXPECT_TRUE(EmlFiles(spool_dir_).empty());
  EXPECT_EQ(EmlFiles(spool_dir_ + "/failed").size(), 1u);
}

TEST_F(RelayTest, StopAbortsADeliveryInProgress) {
  SilentListener silent;
  config::MailConfig config = ClientConfig(silent.port());
  config.smtp_timeout_ms = 120'000;
  AttemptRecorder attempts;
  auto mailer = internal::MakeSpoolMailer(config, data_dir_, attempts.Options());
  ASSERT_TRUE(mailer.ok()) << mailer.status().ToString();
  ASSERT_TRUE((*mailer)->Send(kMessage).ok());
  ASSERT_TRUE(attempts.WaitForStart(seconds(20)));

  const auto start = std::chrono::steady_clock::now();
  (*mailer)->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(5));
  const auto result = attempts.WaitForResult(StatusCode::kUnavailable, milliseconds(0));
  ASSERT_TRUE(result.has_value());
  EXPECT_NE(result->message().find("shutdown"), std::string::npos) << result->ToString();
  EXPECT_EQ(EmlFiles(spool_dir_).size(), 1u);
  EXPECT_TRUE(EmlFiles(spool_dir_ + "/failed").empty());
}

}  // namespace
}  // namespace backpack::mail
