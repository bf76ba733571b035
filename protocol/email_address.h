// Email addresses as earners type them.
//
// An address is kept as typed (after trimming surrounding whitespace) and
// compared by its normalised form: the same text with ASCII letters lowered.
// That is the rule badge recipients need: issuers hash whichever case they
// were given, and a recipient check tries both the exact and the lowered form.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace backpack::protocol {

inline constexpr size_t kMaxEmailLength = 254;  // RFC 5321 path limit less "<>"

// Trims whitespace and checks the syntax a mailbox must have to be mailed:
// one '@', a local part of 1..64 printable non-space characters, a domain of
// dot-separated labels (letters, digits, '-', or UTF-8), no control
// characters anywhere. Returns the trimmed address as typed.
Result<std::string> CleanEmail(std::string_view typed);

// The comparison key: ASCII letters lowered, everything else unchanged.
std::string NormalizeEmail(std::string_view address);

}  // namespace backpack::protocol
