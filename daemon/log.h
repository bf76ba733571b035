// Structured logging: one line per event, JSON (default) or logfmt-like text,
// to stderr. Every line has a timestamp, level, subsystem and message, plus
// the key/value fields given (request id, connection id, ...).
//
//   log::Info("http", "request done", {{"req", id}, {"status", 200}});
//
// Thread-safe; a line is written with one write(2) call so lines from
// several threads never interleave.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <variant>

namespace backpack::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

struct Field {
  using Value = std::variant<std::string_view, std::string, int64_t, uint64_t, double, bool>;
  std::string_view key;
  Value value;
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, int v) : key(k), value(int64_t{v}) {}
  Field(std::string_view k, long v) : key(k), value(int64_t{v}) {}
  Field(std::string_view k, long long v) : key(k), value(int64_t{v}) {}
  Field(std::string_view k, unsigned v) : key(k), value(uint64_t{v}) {}
  Field(std::string_view k, unsigned long v) : key(k), value(uint64_t{v}) {}
  Field(std::string_view k, unsigned long long v) : key(k), value(uint64_t{v}) {}
  Field(std::string_view k, double v) : key(k), value(v) {}
  Field(std::string_view k, bool v) : key(k), value(v) {}
};
using Fields = std::initializer_list<Field>;

// Set once at start-up, before threads start.
void SetLevel(Level level);
void SetJsonFormat(bool json);
bool ParseLevel(std::string_view text, Level* out);
bool Enabled(Level level);

void Write(Level level, std::string_view subsystem, std::string_view message, Fields fields = {});

inline void Debug(std::string_view sub, std::string_view msg, Fields f = {}) { Write(Level::kDebug, sub, msg, f); }
inline void Info(std::string_view sub, std::string_view msg, Fields f = {}) { Write(Level::kInfo, sub, msg, f); }
inline void Warn(std::string_view sub, std::string_view msg, Fields f = {}) { Write(Level::kWarn, sub, msg, f); }
inline void Error(std::string_view sub, std::string_view msg, Fields f = {}) { Write(Level::kError, sub, msg, f); }

}  // namespace backpack::log
