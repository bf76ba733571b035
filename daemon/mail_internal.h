// Internals of the mail library, shared by mail.cc, smtp_client.cc and the
// tests in tests/mail/. Not for other callers: the daemon uses mail.h.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>

#include "base/status.h"
#include "config/config.h"
#include "daemon/mail.h"

namespace backpack::mail::internal {

// Spool file format (under <data_dir>/mail-spool/, one message per *.eml
// file): the first line is "X-Backpack-Envelope-To: <address>" CRLF, naming
// the envelope recipient; the rest is the RFC 5322 message exactly as it is
// sent. The relay strips that first line before DATA. Keeping the envelope
// inside the one file makes the atomic rename the only commit point (no
// sidecar that could be missing) and keeps the file readable as a message.
// The envelope sender is always EnvelopeAddress(config.from) at delivery.
inline constexpr std::string_view kEnvelopeToField = "X-Backpack-Envelope-To";

// Files larger than this in the spool are not read (they were not written by
// Send, which formats messages of a few KiB); they are moved to failed/.
inline constexpr size_t kMaxSpoolFileBytes = 16 * 1024 * 1024;

// Like mail::DeliverSmtp, but a stop request on `stop` (from any thread)
// aborts the transaction promptly: the connection is closed and the result
// is kUnavailable, so the message is retried on the next start.
Status DeliverSmtp(const config::MailConfig& config, std::string_view envelope_from,
                   std::string_view recipient, std::string_view rfc5322_message, std::stop_token stop);

// Relay timing and observation hooks. The defaults are the production values;
// tests shorten the backoff and watch attempts instead of sleeping.
struct RelayOptions {
  std::chrono::milliseconds initial_backoff{5'000};
  std::chrono::milliseconds max_backoff{15 * 60'000};
  // Called on the relay thread, with the spool file name, just before each
  // delivery attempt and with its result just after. Must not block.
  std::function<void(const std::string& file)> on_attempt_start;
  std::function<void(const std::string& file, const Status& result)> on_attempt_done;
};

// The spool + relay mailer (what MakeMailer returns when smtp_host is set),
// with explicit relay options. The relay thread starts at once and first
// delivers whatever an earlier run left in the spool.
Result<std::unique_ptr<Mailer>> MakeSpoolMailer(const config::MailConfig& config, const std::string& data_dir,
                                                RelayOptions options);

// Delay before retry number `attempt` (1 = after the first failure):
// initial_backoff doubled per attempt, capped at max_backoff, plus up to 25%
// jitter (`jitter` in [0, 1) picks how much), so that many messages deferred
// together do not all retry at the same instant.
std::chrono::milliseconds RetryDelay(const RelayOptions& options, int attempt, double jitter);

// Quoted-printable body (RFC 2045 6.7): `text` lines end with \n (a CRLF is
// taken as one line end); the result has CRLF line ends, no line longer than
// 76 characters, '=' and non-ASCII bytes escaped, and whitespace at a line end
// encoded. Every line, including the last, ends with CRLF.
std::string EncodeQuotedPrintable(std::string_view text);

// An unstructured header value (RFC 5322 2.2.3), folded so that lines stay
// within 78 characters where whitespace allows. Text that is not printable
// ASCII (or that looks like an encoded-word) becomes RFC 2047 "B"
// encoded-words in UTF-8 of at most 75 characters each, never splitting a
// UTF-8 character. `name_length` is the length of "Name: " on the first line.
// The value must not contain CR, LF or NUL.
std::string EncodeHeaderText(std::string_view value, size_t name_length);

// Standard base64 with padding (RFC 4648 section 4).
std::string Base64Encode(std::string_view bytes);

}  // namespace backpack::mail::internal
