#include "protocol/recipient.h"

#include <openssl/evp.h>

#include <optional>

#include "protocol/email_address.h"
#include "protocol/encoding.h"

namespace backpack::protocol {
namespace {

constexpr std::string_view kSha256Prefix = "sha256$";
constexpr std::string_view kMd5Prefix = "md5$";

std::string Md5Hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &size, EVP_md5(), nullptr) != 1) {
    return {};  // MD5 unavailable (FIPS build): nothing can match
  }
  return HexEncode(std::string_view(reinterpret_cast<const char*>(digest), size));
}

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool IsHex(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!ok) return false;
  }
  return true;
}

// A parsed "<algorithm>$<hex>" identity with the hex lowered.
struct IdentityDigest {
  IdentityHashAlgorithm algorithm;
  std::string hex;
};

std::optional<IdentityDigest> ParseDigest(std::string_view identity) {
  const std::string lowered = Lower(identity);
  if (lowered.starts_with(kSha256Prefix)) {
    const std::string_view hex = std::string_view(lowered).substr(kSha256Prefix.size());
    if (hex.size() == 64 && IsHex(hex)) return IdentityDigest{IdentityHashAlgorithm::kSha256, std::string(hex)};
  } else if (lowered.starts_with(kMd5Prefix)) {
    const std::string_view hex = std::string_view(lowered).substr(kMd5Prefix.size());
    if (hex.size() == 32 && IsHex(hex)) return IdentityDigest{IdentityHashAlgorithm::kMd5, std::string(hex)};
  }
  return std::nullopt;
}

bool LooksLikeDigest(std::string_view identity) {
  const size_t dollar = identity.find('$');
  if (dollar == std::string_view::npos || dollar == 0) return false;
  for (char c : identity.substr(0, dollar)) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return false;
  }
  return IsHex(identity.substr(dollar + 1));
}

bool IsEmail(std::string_view text) {
  auto cleaned = CleanEmail(text);
  return cleaned.ok() && *cleaned == text;
}

std::string DigestHex(IdentityHashAlgorithm algorithm, std::string_view bytes) {
  return algorithm == IdentityHashAlgorithm::kMd5 ? Md5Hex(bytes) : Sha256Hex(bytes);
}

}  // namespace

std::string HashIdentity(std::string_view identity, std::string_view salt, IdentityHashAlgorithm algorithm) {
  std::string input(identity);
  input.append(salt);
  const std::string_view prefix = algorithm == IdentityHashAlgorithm::kMd5 ? kMd5Prefix : kSha256Prefix;
  return std::string(prefix) + DigestHex(algorithm, input);
}

Status ValidateRecipientIdentity(const RecipientIdentity& recipient, SpecVersion version) {
  if (recipient.identity.empty()) return InvalidArgument("the recipient identity is empty");
  if (recipient.hashed) {
    const std::optional<IdentityDigest> digest = ParseDigest(recipient.identity);
    if (!digest) {
      return InvalidArgument(
          "a hashed recipient identity must be \"sha256$\" and 64 hex digits (or, before OB 2.0, "
          "\"md5$\" and 32)");
    }
    if (digest->algorithm == IdentityHashAlgorithm::kMd5 && !IsLegacyVersion(version)) {
      return InvalidArgument("md5 recipient hashes are accepted only in OB 0.5-1.1 assertions");
    }
    return Status::Ok();
  }
  if (LooksLikeDigest(recipient.identity)) {
    return InvalidArgument("the recipient identity looks like a hash but is not marked hashed");
  }
  if (recipient.type == IdentityType::kEmail && !IsEmail(recipient.identity)) {
    return InvalidArgument("the recipient identity is not an email address");
  }
  return Status::Ok();
}

Result<std::string> MatchRecipient(const RecipientIdentity& recipient, const std::vector<std::string>& verified_emails,
                                   SpecVersion version) {
  BP_RETURN_IF_ERROR(ValidateRecipientIdentity(recipient, version));
  if (recipient.type != IdentityType::kEmail) {
    return FailedPrecondition("the recipient is identified by " + std::string(IdentityTypeName(recipient.type)) +
                              ", not by an email address");
  }
  if (!recipient.hashed) {
    const std::string wanted = NormalizeEmail(recipient.identity);
    for (const std::string& address : verified_emails) {
      if (ConstantTimeEquals(NormalizeEmail(address), wanted)) return address;
    }
    return NotFound("no verified email address is the recipient");
  }
  const std::optional<IdentityDigest> digest = ParseDigest(recipient.identity);
  const std::string salt = recipient.salt.value_or("");
  for (const std::string& address : verified_emails) {
    const std::string normalized = NormalizeEmail(address);
    for (const std::string* form : {&address, &normalized}) {
      if (form == &normalized && normalized == address) continue;
      if (ConstantTimeEquals(DigestHex(digest->algorithm, *form + salt), digest->hex)) return address;
    }
  }
  return NotFound("no verified email address hashes to the recipient identity");
}

}  // namespace backpack::protocol
