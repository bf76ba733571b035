// Status lists: the compressed bitstrings that say whether a credential has
// been revoked or suspended (W3C Bitstring Status List v1.0 and its
// predecessor StatusList2021).
//
// A list credential's `encodedList` is the GZIP (RFC 1952) of the bitstring,
// base64url-encoded; Bitstring Status List writes it as multibase ('u' +
// base64url, no padding), StatusList2021 as plain base64 or base64url. Bit 0
// is the most significant bit of the first byte.
//
// Pure and bounded: the inflated size is capped (a few kilobytes of gzip can
// expand to gigabytes), and the whole input is checked, so a list with
// trailing bytes or a second gzip member is refused rather than half-read.
// Refusals are kInvalidArgument with a message naming the problem.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace backpack::protocol {

// 16 MiB of bitstring: 134 million entries, a thousand times the size the
// specification recommends as a minimum.
inline constexpr size_t kDefaultMaxStatusListBytes = size_t{16} << 20;
// The Bitstring Status List minimum (131,072 entries, 16 KiB): shorter lists
// weaken herd privacy. Readers report them but still use them.
inline constexpr size_t kMinStatusListBits = 131072;

// The bitstring of an `encodedList` value: multibase 'u' base64url, or plain
// base64 / base64url (with or without '=' padding), of a single GZIP member.
// Refuses anything over `max_bytes` once inflated, before inflating further.
Result<std::string> DecodeStatusList(std::string_view encoded_list,
                                     size_t max_bytes = kDefaultMaxStatusListBytes);

// The value of the `size`-bit entry at `index` (bits index*size ..
// index*size+size-1, most significant first). `size` is 1..8.
// InvalidArgument when the entry lies outside the bitstring.
Result<uint32_t> StatusListEntry(std::string_view bitstring, uint64_t index, int size = 1);

}  // namespace backpack::protocol
