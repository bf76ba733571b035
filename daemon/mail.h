// Outgoing mail: verification and password-reset messages.
//
// Mailer::Send spools the message durably and returns; delivery happens in
// the background. With no SMTP host configured (the embedded default) each
// message is written as an RFC 5322 file under <data_dir>/outbox/ and stays
// there for the operator to read. With an SMTP host, messages are spooled
// under <data_dir>/mail-spool/ and a relay thread delivers them with the
// SMTP client (STARTTLS or implicit TLS, AUTH PLAIN), retrying with
// exponential backoff until mail.retry_max_hours.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "config/config.h"

namespace backpack::mail {

struct Message {
  std::string to;         // one address, as the user typed it
  std::string subject;    // UTF-8; encoded per RFC 2047 when not ASCII
  std::string text_body;  // UTF-8 plain text; lines end with \n
};

// Renders an RFC 5322 / MIME message with CRLF line ends: Date, From, To,
// Subject, Message-ID, MIME-Version, Content-Type text/plain; charset=utf-8,
// Content-Transfer-Encoding quoted-printable. Header injection (CR/LF in
// `to` or `subject`) is refused.
Result<std::string> FormatMessage(const Message& message, std::string_view from,
                                  std::chrono::system_clock::time_point date,
                                  std::string_view message_id);

// Extracts the bare address from "Name <addr>" or "addr".
std::string EnvelopeAddress(std::string_view mailbox);

class Mailer {
 public:
  virtual ~Mailer() = default;
  // Durably spools the message (fsync'd file, atomic rename). Blocking: call
  // from a worker thread.
  virtual Status Send(const Message& message) = 0;
  // Stops the relay thread (if any); spooled messages stay for next start.
  virtual void Stop() = 0;
};

// The outbox mailer when config.smtp_host is empty, else spool + relay.
Result<std::unique_ptr<Mailer>> MakeMailer(const config::MailConfig& config,
                                           const std::string& data_dir);

// One SMTP transaction (EHLO, STARTTLS/TLS, AUTH, MAIL, RCPT, DATA, QUIT)
// with a deadline over the whole exchange. Blocking. A 4xx reply or a
// network failure is kUnavailable (retry later); a 5xx reply is
// kFailedPrecondition (do not retry).
Status DeliverSmtp(const config::MailConfig& config, std::string_view envelope_from,
                   std::string_view recipient, std::string_view rfc5322_message);

}  // namespace backpack::mail
