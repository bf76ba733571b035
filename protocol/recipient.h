// Matching a badge's recipient against an earner's verified email addresses.
//
// Issuers name the recipient either in clear or as a digest of the address
// followed by an optional salt: "sha256$" + hex(SHA-256(address + salt)), or
// "md5$..." in OB 0.5-1.1. Issuers hash whichever case they were given, so
// each verified address is tried as typed and in its normalised (lower-case)
// form; digests are compared in constant time.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "protocol/badge.h"

namespace backpack::protocol {

enum class IdentityHashAlgorithm { kSha256, kMd5 };

// "<algorithm>$<lowercase hex digest of identity + salt>".
std::string HashIdentity(std::string_view identity, std::string_view salt,
                         IdentityHashAlgorithm algorithm = IdentityHashAlgorithm::kSha256);

// Checks that the identity has the form its flags promise: when hashed,
// "sha256$<64 hex>" (or, for OB 0.5-1.1, "md5$<32 hex>"); when plain and of
// type email, an email address, and not something that looks like a digest.
// InvalidArgument says what is wrong.
Status ValidateRecipientIdentity(const RecipientIdentity& recipient, SpecVersion version);

// Returns the entry of `verified_emails` (as given) that the recipient names.
// InvalidArgument: the identity is malformed (see above).
// FailedPrecondition: the identity is not an email (url, telephone, id), so no
//   address can match it.
// NotFound: no verified address matches.
Result<std::string> MatchRecipient(const RecipientIdentity& recipient, const std::vector<std::string>& verified_emails,
                                   SpecVersion version);

}  // namespace backpack::protocol
