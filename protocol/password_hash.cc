#include "protocol/password_hash.h"

#include <openssl/evp.h>

#include <charconv>

#include "protocol/encoding.h"

namespace backpack::protocol {
namespace {

constexpr size_t kKeyBytes = 32;
constexpr uint64_t kMaxMem = 1ull << 30;  // refuses parameters beyond 1 GiB

bool Derive(std::string_view password, std::string_view salt, const ScryptParams& p,
            std::string* key) {
  if (p.log2_n < 10 || p.log2_n > 22 || p.r < 1 || p.r > 32 || p.p < 1 || p.p > 16) return false;
  key->assign(kKeyBytes, '\0');
  return EVP_PBE_scrypt(password.data(), password.size(),
                        reinterpret_cast<const unsigned char*>(salt.data()), salt.size(),
                        uint64_t{1} << p.log2_n, static_cast<uint64_t>(p.r),
                        static_cast<uint64_t>(p.p), kMaxMem,
                        reinterpret_cast<unsigned char*>(key->data()), key->size()) == 1;
}

bool ParseInt(std::string_view s, int* out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

}  // namespace

Result<std::string> HashPassword(std::string_view password, std::string_view salt,
                                 const ScryptParams& params) {
  if (salt.size() < 16) return InvalidArgument("salt shorter than 16 bytes");
  std::string key;
  if (!Derive(password, salt, params, &key)) return Internal("scrypt failed");
  return "$scrypt$ln=" + std::to_string(params.log2_n) + ",r=" + std::to_string(params.r) +
         ",p=" + std::to_string(params.p) + "$" + Base64UrlEncode(salt) + "$" +
         Base64UrlEncode(key);
}

bool VerifyPassword(std::string_view password, std::string_view stored) {
  constexpr std::string_view kPrefix = "$scrypt$ln=";
  if (stored.substr(0, kPrefix.size()) != kPrefix) return false;
  stored.remove_prefix(kPrefix.size());
  // ln,r,p
  const size_t params_end = stored.find('$');
  if (params_end == std::string_view::npos) return false;
  std::string_view params = stored.substr(0, params_end);
  stored.remove_prefix(params_end + 1);
  const size_t c1 = params.find(",r=");
  const size_t c2 = params.find(",p=");
  if (c1 == std::string_view::npos || c2 == std::string_view::npos || c2 < c1) return false;
  ScryptParams p;
  if (!ParseInt(params.substr(0, c1), &p.log2_n) ||
      !ParseInt(params.substr(c1 + 3, c2 - c1 - 3), &p.r) ||
      !ParseInt(params.substr(c2 + 3), &p.p)) {
    return false;
  }
  const size_t salt_end = stored.find('$');
  if (salt_end == std::string_view::npos) return false;
  auto salt = Base64UrlDecode(stored.substr(0, salt_end));
  auto expected = Base64UrlDecode(stored.substr(salt_end + 1));
  if (!salt || !expected || expected->size() != kKeyBytes) return false;
  std::string key;
  if (!Derive(password, *salt, p, &key)) return false;
  return ConstantTimeEquals(key, *expected);
}

}  // namespace backpack::protocol
