#include "protocol/email_address.h"

namespace backpack::protocol {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

bool ValidDomain(std::string_view domain) {
  if (domain.empty() || domain.size() > 253) return false;
  size_t label_start = 0;
  for (size_t i = 0; i <= domain.size(); ++i) {
    if (i == domain.size() || domain[i] == '.') {
      const size_t len = i - label_start;
      if (len == 0 || len > 63) return false;
      if (domain[label_start] == '-' || domain[i - 1] == '-') return false;
      label_start = i + 1;
      continue;
    }
    const unsigned char c = static_cast<unsigned char>(domain[i]);
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c >= 0x80;
    if (!ok) return false;
  }
  return true;
}

}  // namespace

Result<std::string> CleanEmail(std::string_view typed) {
  while (!typed.empty() && IsSpace(typed.front())) typed.remove_prefix(1);
  while (!typed.empty() && IsSpace(typed.back())) typed.remove_suffix(1);
  if (typed.empty()) return InvalidArgument("email address is empty");
  if (typed.size() > kMaxEmailLength) return InvalidArgument("email address is longer than 254 characters");
  const size_t at = typed.rfind('@');
  if (at == std::string_view::npos) return InvalidArgument("email address has no '@'");
  const std::string_view local = typed.substr(0, at);
  const std::string_view domain = typed.substr(at + 1);
  if (local.empty() || local.size() > 64) return InvalidArgument("email address has an invalid local part");
  for (unsigned char c : local) {
    if (c <= ' ' || c == 0x7f || c == '@' || c == '<' || c == '>' || c == ',' || c == ';') {
      return InvalidArgument("email address has an invalid character in its local part");
    }
  }
  if (!ValidDomain(domain)) return InvalidArgument("email address has an invalid domain");
  return std::string(typed);
}

std::string NormalizeEmail(std::string_view address) {
  std::string out(address);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace backpack::protocol
