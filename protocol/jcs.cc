#include "protocol/jcs.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>
#include <utility>
#include <vector>

namespace backpack::protocol {
namespace {

// UTF-16 code units of a UTF-8 string (input already validated by the JSON
// parser); used only to order object members.
std::u16string Utf16(std::string_view s) {
  std::u16string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    uint32_t cp;
    size_t n;
    if (c < 0x80) {
      cp = c;
      n = 0;
    } else if ((c & 0xe0) == 0xc0) {
      cp = c & 0x1f;
      n = 1;
    } else if ((c & 0xf0) == 0xe0) {
      cp = c & 0x0f;
      n = 2;
    } else {
      cp = c & 0x07;
      n = 3;
    }
    ++i;
    for (size_t k = 0; k < n && i < s.size(); ++k, ++i) cp = (cp << 6) | (static_cast<unsigned char>(s[i]) & 0x3f);
    if (cp >= 0x10000) {
      cp -= 0x10000;
      out += static_cast<char16_t>(0xd800 + (cp >> 10));
      out += static_cast<char16_t>(0xdc00 + (cp & 0x3ff));
    } else {
      out += static_cast<char16_t>(cp);
    }
  }
  return out;
}

void AppendString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

void Append(std::string& out, const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null: out += "null"; break;
    case nlohmann::json::value_t::boolean: out += v.get<bool>() ? "true" : "false"; break;
    case nlohmann::json::value_t::number_integer: {
      const int64_t i = v.get<int64_t>();
      if (i >= -(int64_t{1} << 53) && i <= (int64_t{1} << 53)) {
        out += std::to_string(i);
      } else {
        out += EcmaScriptNumber(static_cast<double>(i));
      }
      break;
    }
    case nlohmann::json::value_t::number_unsigned: {
      const uint64_t u = v.get<uint64_t>();
      out += u <= (uint64_t{1} << 53) ? std::to_string(u) : EcmaScriptNumber(static_cast<double>(u));
      break;
    }
    case nlohmann::json::value_t::number_float: out += EcmaScriptNumber(v.get<double>()); break;
    case nlohmann::json::value_t::string: AppendString(out, v.get_ref<const std::string&>()); break;
    case nlohmann::json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& item : v) {
        if (!first) out += ',';
        first = false;
        Append(out, item);
      }
      out += ']';
      break;
    }
    case nlohmann::json::value_t::object: {
      std::vector<std::pair<std::u16string, nlohmann::json::const_iterator>> members;
      members.reserve(v.size());
      for (auto it = v.begin(); it != v.end(); ++it) members.emplace_back(Utf16(it.key()), it);
      std::sort(members.begin(), members.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      out += '{';
      bool first = true;
      for (const auto& [key16, it] : members) {
        if (!first) out += ',';
        first = false;
        AppendString(out, it.key());
        out += ':';
        Append(out, it.value());
      }
      out += '}';
      break;
    }
    case nlohmann::json::value_t::binary:
    case nlohmann::json::value_t::discarded: out += "null"; break;
  }
}

}  // namespace

std::string EcmaScriptNumber(double value) {
  if (value == 0 || !std::isfinite(value)) return "0";
  std::string out;
  if (value < 0) {
    out += '-';
    value = -value;
  }
  // Shortest round-trip digits in scientific form: d[.ddd]e[+-]xx.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));
  const size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos)) {
    if (c != '.') digits += c;
  }
  int exponent = 0;
  std::from_chars(sci.data() + e_pos + 1 + (sci[e_pos + 1] == '+' ? 1 : 0), sci.data() + sci.size(), exponent);
  const int k = static_cast<int>(digits.size());
  const int n = exponent + 1;
  if (k <= n && n <= 21) {
    out += digits;
    out.append(static_cast<size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out += digits.substr(0, static_cast<size_t>(n));
    out += '.';
    out += digits.substr(static_cast<size_t>(n));
  } else if (-6 < n && n <= 0) {
    out += "0.";
    out.append(static_cast<size_t>(-n), '0');
    out += digits;
  } else {
    out += digits[0];
    if (k > 1) {
      out += '.';
      out += digits.substr(1);
    }
    out += 'e';
    out += n - 1 < 0 ? '-' : '+';
    out += std::to_string(std::abs(n - 1));
  }
  return out;
}

std::string CanonicalJson(const nlohmann::json& value) {
  std::string out;
  Append(out, value);
  return out;
}

}  // namespace backpack::protocol
