#include "daemon/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <string>

#include <fmt/format.h>

namespace backpack::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::atomic<bool> g_json{true};

std::string_view LevelName(Level level) {
  switch (level) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}

void AppendJsonString(std::string& out, std::string_view s) {
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

// Text format: bare value when it is a simple token, else JSON-quoted.
void AppendTextValue(std::string& out, std::string_view s) {
  bool simple = !s.empty();
  for (unsigned char c : s) {
    if (c <= ' ' || c == '"' || c == '=' || c >= 0x7f) simple = false;
  }
  if (simple) {
    out += s;
  } else {
    AppendJsonString(out, s);
  }
}

void AppendValue(std::string& out, const Field::Value& v, bool json) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string_view> || std::is_same_v<T, std::string>) {
          if (json) {
            AppendJsonString(out, x);
          } else {
            AppendTextValue(out, x);
          }
        } else if constexpr (std::is_same_v<T, bool>) {
          out += x ? "true" : "false";
        } else {
          out += fmt::format("{}", x);
        }
      },
      v);
}

std::string Timestamp() {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                    now.time_since_epoch()).count() % 1000000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, micros);
}

}  // namespace

void SetLevel(Level level) { g_level.store(static_cast<int>(level)); }
void SetJsonFormat(bool json) { g_json.store(json); }

bool ParseLevel(std::string_view text, Level* out) {
  if (text == "debug") *out = Level::kDebug;
  else if (text == "info") *out = Level::kInfo;
  else if (text == "warn") *out = Level::kWarn;
  else if (text == "error") *out = Level::kError;
  else return false;
  return true;
}

bool Enabled(Level level) { return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed); }

void Write(Level level, std::string_view subsystem, std::string_view message, Fields fields) {
  if (!Enabled(level)) return;
  const bool json = g_json.load(std::memory_order_relaxed);
  std::string line;
  line.reserve(160);
  if (json) {
    line += "{\"ts\":\"";
    line += Timestamp();
    line += "\",\"level\":\"";
    line += LevelName(level);
    line += "\",\"sub\":";
    AppendJsonString(line, subsystem);
    line += ",\"msg\":";
    AppendJsonString(line, message);
    for (const Field& f : fields) {
      line.push_back(',');
      AppendJsonString(line, f.key);
      line.push_back(':');
      AppendValue(line, f.value, true);
    }
    line += "}\n";
  } else {
    line += Timestamp();
    line += ' ';
    line += LevelName(level);
    line += ' ';
    line += subsystem;
    line += ": ";
    line += message;
    for (const Field& f : fields) {
      line.push_back(' ');
      line += f.key;
      line.push_back('=');
      AppendValue(line, f.value, false);
    }
    line.push_back('\n');
  }
  // One write(2) per line keeps concurrent lines whole. A failed write to
  // stderr has nowhere to be reported.
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace backpack::log
