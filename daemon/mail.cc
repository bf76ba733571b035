// Message formatting, the outbox mailer and the spool + relay mailer.
//
// Both mailers write one message per file with the same durable sequence:
// write a ".tmp-" file (mode 0600), fsync it, rename it into place, fsync the
// directory. A crash leaves either no file or a whole one; stale ".tmp-"
// files are removed at the next start. Message bodies carry secret tokens,
// so no log line ever includes one: logs name the file instead.
#include "daemon/mail.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <ctime>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <openssl/rand.h>

#include "daemon/log.h"
#include "daemon/mail_internal.h"

namespace backpack::mail {
namespace {

constexpr std::string_view kTempPrefix = ".tmp-";
constexpr std::string_view kMessageSuffix = ".eml";
constexpr char kHexDigits[] = "0123456789ABCDEF";  // quoted-printable wants upper case
constexpr char kLowerHexDigits[] = "0123456789abcdef";
// How long the relay waits before listing the spool again after a failure to
// list it (the directory was removed or became unreadable).
constexpr std::chrono::minutes kListRetryDelay{1};

bool IsWsp(char c) { return c == ' ' || c == '\t'; }
bool IsPrintableAscii(unsigned char c) { return c >= 0x20 && c < 0x7f; }

bool HasLineBreakOrNul(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

bool HasControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (IsWsp(s.front()) || s.front() == '\r' || s.front() == '\n')) s.remove_prefix(1);
  while (!s.empty() && (IsWsp(s.back()) || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

// Length of the UTF-8 character starting at text[i]; 1 for a byte that does
// not start a well-formed sequence (it is still carried, just not grouped).
size_t Utf8CharLength(std::string_view text, size_t i) {
  const auto lead = static_cast<unsigned char>(text[i]);
  size_t length = 1;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
  }
  if (i + length > text.size()) return 1;
  for (size_t k = 1; k < length; ++k) {
    if ((static_cast<unsigned char>(text[i + k]) & 0xc0) != 0x80) return 1;
  }
  return length;
}

void AppendQuotedPrintableLine(std::string_view line, std::string& out) {
  constexpr size_t kMaxLine = 76;  // RFC 2045 6.7 rule 5, excluding CRLF
  size_t column = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    const auto c = static_cast<unsigned char>(line[i]);
    const bool last = i + 1 == line.size();
    // Whitespace is literal except at the end of a line, where transports
    // may strip it (rule 3).
    const bool literal = (c >= 33 && c <= 126 && c != '=') || (IsWsp(static_cast<char>(c)) && !last);
    char token[3] = {static_cast<char>(c), 0, 0};
    size_t token_size = 1;
    if (!literal) {
      token[0] = '=';
      token[1] = kHexDigits[c >> 4];
      token[2] = kHexDigits[c & 0xf];
      token_size = 3;
    }
    // A line that goes on needs one column for the soft break '='; the last
    // token of the line may use the full width.
    const size_t limit = last ? kMaxLine : kMaxLine - 1;
    if (column + token_size > limit) {
      out += "=\r\n";
      column = 0;
    }
    out.append(token, token_size);
    column += token_size;
  }
  out += "\r\n";
}

// Value text that must become encoded-words: anything not printable ASCII,
// text that a reader would take for an encoded-word, or a word too long to
// fold under the 998-character line limit of RFC 5322.
bool NeedsEncodedWords(std::string_view value) {
  constexpr size_t kMaxUnfoldableWord = 900;
  size_t word = 0;
  for (char c : value) {
    if (!IsPrintableAscii(static_cast<unsigned char>(c)) && c != '\t') return true;
    word = IsWsp(c) ? 0 : word + 1;
    if (word > kMaxUnfoldableWord) return true;
  }
  return value.find("=?") != std::string_view::npos;
}

// Folds printable ASCII before whitespace so lines stay within 78 columns
// where the text allows (RFC 5322 2.1.1 and 2.2.3). Each fold inserts CRLF
// before a whitespace run followed by a word, so unfolding restores the text
// exactly and no line is whitespace only.
std::string FoldText(std::string_view value, size_t name_length) {
  constexpr size_t kFoldAt = 78;
  std::string out;
  size_t column = name_length;
  size_t i = 0;
  while (i < value.size()) {
    size_t j = i;
    while (j < value.size() && IsWsp(value[j])) ++j;
    const bool has_word = j < value.size();
    while (j < value.size() && !IsWsp(value[j])) ++j;
    const std::string_view segment = value.substr(i, j - i);
    if (i > 0 && has_word && IsWsp(segment.front()) && column + segment.size() > kFoldAt) {
      out += "\r\n";
      column = 0;
    }
    out += segment;
    column += segment.size();
    i = j;
  }
  return out;
}

// RFC 2047 "B" encoded-words in UTF-8, each at most 75 characters and each
// line at most 76 (section 2), split only between UTF-8 characters so every
// word decodes on its own. Words are separated by CRLF SP, which decoders
// drop between adjacent encoded-words (section 6.2).
std::string EncodeWords(std::string_view value, size_t name_length) {
  constexpr size_t kMaxLine = 76;
  constexpr std::string_view kPrefix = "=?UTF-8?B?";
  constexpr std::string_view kSuffix = "?=";
  constexpr size_t kMinPayload = 12;  // bytes; always room for a 4-byte character
  std::string out;
  size_t column = name_length;
  size_t i = 0;
  while (i < value.size()) {
    const size_t overhead = column + kPrefix.size() + kSuffix.size();
    const size_t base64_room = kMaxLine > overhead ? kMaxLine - overhead : 0;
    const size_t max_bytes = std::max(base64_room / 4 * 3, kMinPayload);
    size_t j = i;
    while (j < value.size()) {
      const size_t length = Utf8CharLength(value, j);
      if (j + length - i > max_bytes) break;
      j += length;
    }
    if (i > 0) {
      out += "\r\n ";
    }
    out += kPrefix;
    out += internal::Base64Encode(value.substr(i, j - i));
    out += kSuffix;
    column = 1;
    i = j;
  }
  return out;
}

// "Display Name <addr>" with a non-ASCII display name gets the name as
// encoded-words; everything else is used as given.
std::string FormatMailbox(std::string_view mailbox, size_t name_length) {
  const size_t open = mailbox.rfind('<');
  if (open == std::string_view::npos) return std::string(mailbox);
  const std::string_view display = Trim(mailbox.substr(0, open));
  if (display.empty() || !NeedsEncodedWords(display)) return std::string(mailbox);
  return EncodeWords(display, name_length) + " " + std::string(mailbox.substr(open));
}

std::string FormatDate(std::chrono::system_clock::time_point date) {
  static constexpr std::string_view kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::time_t seconds = std::chrono::system_clock::to_time_t(date);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  return fmt::format("{}, {:02} {} {:04} {:02}:{:02}:{:02} +0000", kDays[tm.tm_wday], tm.tm_mday,
                     kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

// The sortable UTC time that starts every message file name.
std::string FileTimestamp(std::chrono::system_clock::time_point now) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1'000'000;
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  return fmt::format("{:04}{:02}{:02}T{:02}{:02}{:02}.{:06}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, micros);
}

Result<std::string> RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(raw.size())) != 1) {
    return Internal("mail: the random number generator failed");
  }
  std::string hex;
  hex.reserve(bytes * 2);
  for (unsigned char c : raw) {
    hex.push_back(kLowerHexDigits[c >> 4]);
    hex.push_back(kLowerHexDigits[c & 0xf]);
  }
  return hex;
}

// The envelope recipient must be usable in "RCPT TO:<...>" as is.
Status CheckEnvelopeAddress(std::string_view address) {
  if (address.empty() || address.find('@') == std::string_view::npos) {
    return InvalidArgument("mail: recipient has no address");
  }
  for (char c : address) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '<' || c == '>') {
      return InvalidArgument("mail: recipient address has a space, control character or angle bracket");
    }
  }
  return {};
}

// ---- Files ---------------------------------------------------------------

Status IoError(std::string_view what, const std::string& path, int error) {
  std::string message = fmt::format("mail: {} {}: {}", what, path, std::generic_category().message(error));
  // A full disk can clear up; anything else needs an operator.
  if (error == ENOSPC || error == EDQUOT) return Unavailable(std::move(message));
  return Internal(std::move(message));
}

Status SyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open directory", dir, errno);
  const int rc = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  if (rc != 0) return IoError("cannot fsync directory", dir, error);
  return {};
}

// Creates parent/name with mode 0700 (its files hold secret tokens); an
// existing directory is used as it is.
Status EnsurePrivateDirectory(const std::string& parent, const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) == 0) return SyncDirectory(parent);
  if (errno != EEXIST) return IoError("cannot create directory", dir, errno);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return IoError("cannot stat", dir, errno);
  if (!S_ISDIR(st.st_mode)) return FailedPrecondition("mail: " + dir + " exists and is not a directory");
  return {};
}

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("cannot write", path, errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

// The durable write described at the top of this file.
Status WriteFileDurably(const std::string& dir, const std::string& name, std::string_view content) {
  const std::string temp_path = dir + "/" + std::string(kTempPrefix) + name;
  const std::string path = dir + "/" + name;
  const int fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return IoError("cannot create", temp_path, errno);
  Status status = WriteAll(fd, content, temp_path);
  if (status.ok() && ::fsync(fd) != 0) status = IoError("cannot fsync", temp_path, errno);
  if (::close(fd) != 0 && status.ok()) status = IoError("cannot close", temp_path, errno);
  if (status.ok() && ::rename(temp_path.c_str(), path.c_str()) != 0) {
    status = IoError("cannot rename", temp_path, errno);
  }
  if (!status.ok()) {
    // Best effort: a leftover temporary file is also removed at next start.
    ::unlink(temp_path.c_str());
    return status;
  }
  return SyncDirectory(dir);
}

// Names in `dir` that start with `prefix` (hidden names skipped unless the
// prefix asks for them) and end with `suffix`, sorted: oldest message first.
Result<std::vector<std::string>> ListDirectory(const std::string& dir, std::string_view prefix,
                                               std::string_view suffix) {
  DIR* handle = ::opendir(dir.c_str());
  if (handle == nullptr) return IoError("cannot list", dir, errno);
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* entry = ::readdir(handle)) {
    const std::string_view name = entry->d_name;
    const bool hidden = !name.empty() && name.front() == '.';
    if (hidden && prefix.empty()) continue;
    if (!name.starts_with(prefix) || !name.ends_with(suffix)) continue;
    if (entry->d_type != DT_REG && entry->d_type != DT_UNKNOWN) continue;
    names.emplace_back(name);
  }
  const int error = errno;
  ::closedir(handle);
  if (error != 0) return IoError("cannot list", dir, error);
  std::sort(names.begin(), names.end());
  return names;
}

// Removes ".tmp-" files a crash left half-written. Called before any Send.
void RemoveStaleTemporaries(const std::string& dir) {
  auto names = ListDirectory(dir, kTempPrefix, "");
  if (!names.ok()) {
    log::Warn("mail", "cannot look for stale temporary files", {{"error", names.status().ToString()}});
    return;
  }
  for (const std::string& name : *names) {
    const std::string path = dir + "/" + name;
    if (::unlink(path.c_str()) == 0) {
      log::Info("mail", "removed a half-written message left by a crash", {{"file", path}});
    }
  }
}

struct SpoolFile {
  std::string content;
  std::chrono::system_clock::time_point spooled_at;  // the file's mtime
};

// kNotFound when the file is gone; kFailedPrecondition when too large.
Result<SpoolFile> ReadSpoolFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound("mail: " + path + " is gone");
    return IoError("cannot open", path, errno);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int error = errno;
    ::close(fd);
    return IoError("cannot stat", path, error);
  }
  if (static_cast<uint64_t>(st.st_size) > internal::kMaxSpoolFileBytes) {
    ::close(fd);
    return FailedPrecondition(
        fmt::format("mail: {} is larger than {} bytes", path, internal::kMaxSpoolFileBytes));
  }
  SpoolFile file;
  file.spooled_at =
      std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::seconds(st.st_mtim.tv_sec) + std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
  file.content.resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < file.content.size()) {
    const ssize_t n = ::read(fd, file.content.data() + done, file.content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      ::close(fd);
      return IoError("cannot read", path, error);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  file.content.resize(done);
  return file;
}

// Splits a spool file into envelope recipient and message (see
// mail_internal.h); nullopt when the first line is not the envelope line.
std::optional<std::pair<std::string, std::string_view>> SplitSpoolFile(std::string_view content) {
  const size_t end = content.find("\r\n");
  if (end == std::string_view::npos) return std::nullopt;
  std::string_view line = content.substr(0, end);
  if (!line.starts_with(internal::kEnvelopeToField) ||
      line.substr(internal::kEnvelopeToField.size(), 1) != ":") {
    return std::nullopt;
  }
  line.remove_prefix(internal::kEnvelopeToField.size() + 1);
  const std::string recipient(Trim(line));
  if (!CheckEnvelopeAddress(recipient).ok()) return std::nullopt;
  return std::make_pair(recipient, content.substr(end + 2));
}

Status CheckCommonConfig(const config::MailConfig& config) {
  if (HasLineBreakOrNul(config.from) || HasControl(config.from)) {
    return InvalidArgument("mail.from contains a control character");
  }
  return {};
}

Status CheckSmtpConfig(const config::MailConfig& config) {
  BP_RETURN_IF_ERROR(CheckCommonConfig(config));
  if (config.smtp_tls != "starttls" && config.smtp_tls != "tls" && config.smtp_tls != "none") {
    return InvalidArgument("mail.smtp_tls must be \"starttls\", \"tls\" or \"none\"");
  }
  if (config.smtp_port < 1 || config.smtp_port > 65535) {
    return InvalidArgument("mail.smtp_port must be in 1..65535");
  }
  if (config.smtp_timeout_ms < 1) return InvalidArgument("mail.smtp_timeout_ms must be positive");
  if (config.retry_max_hours < 0) return InvalidArgument("mail.retry_max_hours must not be negative");
  return {};
}

// Creates data_dir (if needed) and data_dir/<name> with mode 0700, and
// clears stale temporary files from it. Returns the directory path.
Result<std::string> PrepareDirectory(const std::string& data_dir, const std::string& name) {
  std::error_code error;
  std::filesystem::create_directories(data_dir, error);
  if (error) return IoError("cannot create directory", data_dir, error.value());
  const std::string dir = data_dir + "/" + name;
  BP_RETURN_IF_ERROR(EnsurePrivateDirectory(data_dir, dir));
  RemoveStaleTemporaries(dir);
  return dir;
}

// Formats messages and writes them durably into one directory. Thread-safe:
// it holds no mutable state.
class MessageWriter {
 public:
  MessageWriter(const config::MailConfig& config, std::string dir)
      : from_(config.from), dir_(std::move(dir)) {
    const std::string envelope = EnvelopeAddress(from_);
    const size_t at = envelope.rfind('@');
    id_domain_ = at == std::string::npos || at + 1 == envelope.size() ? "localhost" : envelope.substr(at + 1);
  }

  const std::string& dir() const { return dir_; }

  // Writes `prefix` followed by the formatted message; returns the file name.
  Result<std::string> Write(const Message& message, std::string_view prefix) const {
    const auto now = std::chrono::system_clock::now();
    auto random = RandomHex(16);
    if (!random.ok()) return random.status();
    const std::string stamp = FileTimestamp(now);
    const std::string message_id = fmt::format("{}.{}@{}", stamp, *random, id_domain_);
    auto formatted = FormatMessage(message, from_, now, message_id);
    if (!formatted.ok()) return formatted.status();
    const std::string name = fmt::format("{}-{}{}", stamp, random->substr(0, 16), kMessageSuffix);
    std::string content;
    content.reserve(prefix.size() + formatted->size());
    content += prefix;
    content += *formatted;
    BP_RETURN_IF_ERROR(WriteFileDurably(dir_, name, content));
    return name;
  }

 private:
  std::string from_;
  std::string dir_;
  std::string id_domain_;
};

// No SMTP host: messages stay in <data_dir>/outbox/ for the operator.
class OutboxMailer final : public Mailer {
 public:
  OutboxMailer(const config::MailConfig& config, std::string dir) : writer_(config, std::move(dir)) {}

  Status Send(const Message& message) override {
    BP_RETURN_IF_ERROR(CheckEnvelopeAddress(EnvelopeAddress(message.to)));
    auto name = writer_.Write(message, "");
    if (!name.ok()) return name.status();
    log::Info("mail", "message written to outbox", {{"file", writer_.dir() + "/" + *name}});
    return {};
  }

  void Stop() override {}

 private:
  MessageWriter writer_;
};

// Spool + relay. Send() writes into <data_dir>/mail-spool/ (format in
// mail_internal.h) and wakes the relay thread, which delivers spooled files
// oldest first, one at a time:
//   * delivered: the file is deleted;
//   * kUnavailable (4xx, network, timeout): retried after RetryDelay, until
//     the file is retry_max_hours old (its mtime), then moved to failed/;
//   * any other error (5xx, TLS refused, malformed file): moved at once to
//     mail-spool/failed/, with an error log line.
// Retry state lives in memory only: after a restart every spooled file is
// tried at once, and its age still bounds the retries.
class SpoolMailer final : public Mailer {
 public:
  SpoolMailer(const config::MailConfig& config, std::string spool_dir, std::string failed_dir,
              internal::RelayOptions options)
      : config_(config),
        envelope_from_(EnvelopeAddress(config.from)),
        writer_(config, spool_dir),
        spool_dir_(std::move(spool_dir)),
        failed_dir_(std::move(failed_dir)),
        options_(std::move(options)),
        jitter_rng_(std::random_device{}()) {}

  ~SpoolMailer() override { Stop(); }

  void Start() {
    relay_ = std::jthread([this](std::stop_token stop) { RelayLoop(stop); });
  }

  Status Send(const Message& message) override {
    const std::string recipient = EnvelopeAddress(message.to);
    BP_RETURN_IF_ERROR(CheckEnvelopeAddress(recipient));
    const std::string envelope = fmt::format("{}: {}\r\n", internal::kEnvelopeToField, recipient);
    auto name = writer_.Write(message, envelope);
    if (!name.ok()) return name.status();
    log::Info("mail", "message spooled", {{"file", *name}});
    {
      std::lock_guard<std::mutex> lock(mu_);
      wake_ = true;
    }
    wake_cv_.notify_one();
    return {};
  }

  // Idempotent. A delivery in progress is aborted (its file stays spooled).
  void Stop() override {
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (!relay_.joinable()) return;
    relay_.request_stop();
    relay_.join();
  }

 private:
  struct RetryState {
    int attempts = 0;                                    // deliveries tried so far
    std::chrono::steady_clock::time_point next_attempt;  // not before; epoch = now
  };

  void RelayLoop(std::stop_token stop) {
    std::map<std::string, RetryState> retries;  // by file name
    bool first_pass = true;
    while (!stop.stop_requested()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        wake_ = false;
      }
      auto next_wake = std::chrono::steady_clock::time_point::max();
      auto names = ListDirectory(spool_dir_, "", kMessageSuffix);
      if (!names.ok()) {
        log::Error("mail", "cannot list the mail spool", {{"error", names.status().ToString()}});
        next_wake = std::chrono::steady_clock::now() + kListRetryDelay;
      } else {
        if (first_pass && !names->empty()) {
          log::Info("mail", "delivering messages left in the spool", {{"count", names->size()}});
        }
        // Forget files that are gone (delivered, or removed by the operator).
        std::erase_if(retries, [&](const auto& entry) {
          return !std::binary_search(names->begin(), names->end(), entry.first);
        });
        for (const std::string& name : *names) {
          if (stop.stop_requested()) return;
          RetryState& state = retries[name];
          if (state.next_attempt > std::chrono::steady_clock::now()) {
            next_wake = std::min(next_wake, state.next_attempt);
            continue;
          }
          if (Attempt(name, state, stop)) {
            next_wake = std::min(next_wake, state.next_attempt);
          } else {
            retries.erase(name);
          }
        }
      }
      first_pass = false;
      std::unique_lock<std::mutex> lock(mu_);
      if (next_wake == std::chrono::steady_clock::time_point::max()) {
        wake_cv_.wait(lock, stop, [this] { return wake_; });
      } else {
        wake_cv_.wait_until(lock, stop, next_wake, [this] { return wake_; });
      }
    }
  }

  // One delivery attempt of spool file `name`. Returns true when the file
  // stays for a retry at state.next_attempt, false when it is done with
  // (delivered, moved to failed/, or gone).
  bool Attempt(const std::string& name, RetryState& state, const std::stop_token& stop) {
    const std::string path = spool_dir_ + "/" + name;
    auto file = ReadSpoolFile(path);
    if (!file.ok()) {
      if (file.status().code() == StatusCode::kNotFound) return false;
      if (file.status().code() == StatusCode::kFailedPrecondition) {
        return !MoveToFailed(name, file.status().ToString(), state);
      }
      log::Error("mail", "cannot read spooled message",
                 {{"file", name}, {"error", file.status().ToString()}});
      ScheduleRetry(state);
      return true;
    }
    auto parts = SplitSpoolFile(file->content);
    if (!parts) {
      const std::string reason =
          fmt::format("the first line is not a valid {} line", internal::kEnvelopeToField);
      return !MoveToFailed(name, reason, state);
    }
    if (options_.on_attempt_start) options_.on_attempt_start(name);
    const Status result = internal::DeliverSmtp(config_, envelope_from_, parts->first, parts->second, stop);
    ++state.attempts;
    const bool keep = Settle(name, path, file->spooled_at, result, state, stop);
    if (options_.on_attempt_done) options_.on_attempt_done(name, result);
    return keep;
  }

  // Acts on a delivery result; returns whether the file stays for a retry.
  bool Settle(const std::string& name, const std::string& path,
              std::chrono::system_clock::time_point spooled_at, const Status& result, RetryState& state,
              const std::stop_token& stop) {
    if (result.ok()) {
      if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        const std::string error = std::generic_category().message(errno);
        // Retrying would send the message again on every pass: park it until
        // the next start instead.
        log::Error("mail", "message delivered but its spool file cannot be removed",
                   {{"file", name}, {"error", error}});
        state.next_attempt = std::chrono::steady_clock::time_point::max();
        return true;
      }
      const Status synced = SyncDirectory(spool_dir_);
      if (!synced.ok()) log::Warn("mail", "cannot fsync the mail spool", {{"error", synced.ToString()}});
      log::Info("mail", "message delivered", {{"file", name}, {"attempts", state.attempts}});
      return false;
    }
    if (result.code() != StatusCode::kUnavailable) {
      return !MoveToFailed(name, result.ToString(), state);
    }
    if (stop.stop_requested()) {
      log::Info("mail", "delivery interrupted by shutdown; the message stays spooled", {{"file", name}});
      return true;
    }
    const auto age = std::chrono::system_clock::now() - spooled_at;
    if (age >= std::chrono::hours(config_.retry_max_hours)) {
      const std::string reason =
          fmt::format("still undeliverable after {} hours: {}", config_.retry_max_hours, result.ToString());
      return !MoveToFailed(name, reason, state);
    }
    const auto delay = ScheduleRetry(state);
    log::Warn("mail", "delivery deferred",
              {{"file", name},
               {"attempt", state.attempts},
               {"retry_in_s", static_cast<double>(delay.count()) / 1000.0},
               {"error", result.message()}});
    return true;
  }

  std::chrono::milliseconds ScheduleRetry(RetryState& state) {
    std::uniform_real_distribution<double> jitter(0.0, 1.0);
    const auto delay = internal::RetryDelay(options_, std::max(state.attempts, 1), jitter(jitter_rng_));
    state.next_attempt = std::chrono::steady_clock::now() + delay;
    return delay;
  }

  // Moves a message that will not be delivered to failed/, where the
  // operator can read it (or move it back into the spool to retry). Returns
  // false, with a retry scheduled, when the move itself failed.
  bool MoveToFailed(const std::string& name, const std::string& reason, RetryState& state) {
    const std::string from = spool_dir_ + "/" + name;
    const std::string to = failed_dir_ + "/" + name;
    if (::rename(from.c_str(), to.c_str()) != 0) {
      const std::string error = std::generic_category().message(errno);
      log::Error("mail", "cannot move undeliverable message to failed/",
                 {{"file", name}, {"error", error}, {"reason", reason}});
      state.next_attempt = std::chrono::steady_clock::now() + options_.max_backoff;
      return false;
    }
    for (const std::string* dir : {&failed_dir_, &spool_dir_}) {
      const Status synced = SyncDirectory(*dir);
      if (!synced.ok()) log::Warn("mail", "cannot fsync directory", {{"error", synced.ToString()}});
    }
    log::Error("mail", "message not delivered; moved to failed/", {{"file", to}, {"error", reason}});
    return true;
  }

  const config::MailConfig config_;
  const std::string envelope_from_;
  const MessageWriter writer_;
  const std::string spool_dir_;
  const std::string failed_dir_;
  const internal::RelayOptions options_;
  std::mt19937_64 jitter_rng_;  // relay thread only

  std::mutex mu_;
  std::condition_variable_any wake_cv_;
  bool wake_ = false;  // guarded by mu_: Send() spooled something new

  std::mutex stop_mu_;  // serialises Stop()
  std::jthread relay_;
};

Result<std::unique_ptr<Mailer>> MakeOutboxMailer(const config::MailConfig& config,
                                                 const std::string& data_dir) {
  BP_RETURN_IF_ERROR(CheckCommonConfig(config));
  auto dir = PrepareDirectory(data_dir, "outbox");
  if (!dir.ok()) return dir.status();
  log::Info("mail", "no SMTP host configured; messages are written to " + *dir, {{"dir", *dir}});
  return std::unique_ptr<Mailer>(std::make_unique<OutboxMailer>(config, *dir));
}

}  // namespace

namespace internal {

std::string Base64Encode(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (static_cast<uint8_t>(bytes[i]) << 16) | (static_cast<uint8_t>(bytes[i + 1]) << 8) |
                       static_cast<uint8_t>(bytes[i + 2]);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(rest == 2 ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::string EncodeQuotedPrintable(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8 + 16);
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    std::string_view line =
        text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    start = end == std::string_view::npos ? text.size() : end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    AppendQuotedPrintableLine(line, out);
  }
  return out;
}

std::string EncodeHeaderText(std::string_view value, size_t name_length) {
  return NeedsEncodedWords(value) ? EncodeWords(value, name_length) : FoldText(value, name_length);
}

std::chrono::milliseconds RetryDelay(const RelayOptions& options, int attempt, double jitter) {
  auto base = options.initial_backoff;
  for (int i = 1; i < attempt && base < options.max_backoff; ++i) base *= 2;
  base = std::min(base, options.max_backoff);
  jitter = std::clamp(jitter, 0.0, 1.0);
  return base +
         std::chrono::milliseconds(static_cast<int64_t>(static_cast<double>(base.count()) * 0.25 * jitter));
}

Result<std::unique_ptr<Mailer>> MakeSpoolMailer(const config::MailConfig& config, const std::string& data_dir,
                                                RelayOptions options) {
  BP_RETURN_IF_ERROR(CheckSmtpConfig(config));
  auto spool = PrepareDirectory(data_dir, "mail-spool");
  if (!spool.ok()) return spool.status();
  const std::string failed = *spool + "/failed";
  BP_RETURN_IF_ERROR(EnsurePrivateDirectory(*spool, failed));
  log::Info(
      "mail", "relaying mail through SMTP",
      {{"host", config.smtp_host}, {"port", config.smtp_port}, {"tls", config.smtp_tls}, {"spool", *spool}});
  auto mailer = std::make_unique<SpoolMailer>(config, *spool, failed, std::move(options));
  mailer->Start();
  return std::unique_ptr<Mailer>(std::move(mailer));
}

}  // namespace internal

Result<std::string> FormatMessage(const Message& message, std::string_view from,
                                  std::chrono::system_clock::time_point date, std::string_view message_id) {
  const std::pair<std::string_view, std::string_view> fields[] = {
      {"recipient", message.to}, {"subject", message.subject}, {"sender", from}, {"message id", message_id}};
  for (const auto& [name, value] : fields) {
    if (HasLineBreakOrNul(value)) {
      return InvalidArgument(fmt::format("mail: {} contains CR, LF or NUL (header injection refused)", name));
    }
  }
  if (HasControl(message.to) || HasControl(from)) {
    return InvalidArgument("mail: recipient or sender contains a control character");
  }
  if (EnvelopeAddress(message.to).empty()) return InvalidArgument("mail: no recipient");
  if (message_id.empty() || HasControl(message_id) || message_id.find(' ') != std::string_view::npos) {
    return InvalidArgument("mail: message id is empty or contains a space or control character");
  }
  const bool bracketed = message_id.front() == '<' && message_id.back() == '>';

  std::string out;
  out.reserve(512 + message.text_body.size() * 11 / 10);
  out += "Date: " + FormatDate(date) + "\r\n";
  out += "From: " + FormatMailbox(from, 6) + "\r\n";
  out += "To: " + FormatMailbox(message.to, 4) + "\r\n";
  out += "Subject: " + internal::EncodeHeaderText(message.subject, 9) + "\r\n";
  out += "Message-ID: ";
  out += bracketed ? std::string(message_id) : "<" + std::string(message_id) + ">";
  out += "\r\n";
  out += "MIME-Version: 1.0\r\n";
  out += "Content-Type: text/plain; charset=utf-8\r\n";
  out += "Content-Transfer-Encoding: quoted-printable\r\n";
  out += "\r\n";
  out += internal::EncodeQuotedPrintable(message.text_body);
  return out;
}

std::string EnvelopeAddress(std::string_view mailbox) {
  const size_t open = mailbox.rfind('<');
  if (open != std::string_view::npos) {
    const size_t close = mailbox.find('>', open);
    if (close != std::string_view::npos) return std::string(Trim(mailbox.substr(open + 1, close - open - 1)));
  }
  return std::string(Trim(mailbox));
}

Result<std::unique_ptr<Mailer>> MakeMailer(const config::MailConfig& config, const std::string& data_dir) {
  if (config.smtp_host.empty()) return MakeOutboxMailer(config, data_dir);
  return internal::MakeSpoolMailer(config, data_dir, internal::RelayOptions{});
}

}  // namespace backpack::mail
