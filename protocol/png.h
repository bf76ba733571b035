// Open Badges in PNG images: a strict, bounded chunk walker.
//
// A PNG is accepted only when it is structurally sound: the 8-byte signature,
// IHDR first (13 bytes, sane dimensions within ImageLimits), at least one
// IDAT, IEND last with nothing after it, every chunk inside the buffer, within
// the chunk limit, with a letter-only type and a correct CRC-32. Pixel data is
// never decoded.
//
// Badge chunks are text chunks whose keyword is "openbadges" (assertion) or
// "openbadgecredential" (credential): iTXt as the baking specifications
// require (compression flag 0), or a legacy tEXt (the Mozilla backpack baked
// a hosted assertion's URL that way). Compressed iTXt and zTXt badge chunks
// are refused: the specifications forbid compression and this node does not
// inflate untrusted data.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "protocol/baking.h"

namespace backpack::protocol {

inline constexpr std::string_view kPngSignature{"\x89PNG\r\n\x1a\n", 8};
inline constexpr std::string_view kPngAssertionKeyword = "openbadges";
inline constexpr std::string_view kPngCredentialKeyword = "openbadgecredential";

bool HasPngSignature(std::string_view bytes);

// CRC-32 as PNG (and zlib) define it: polynomial 0xEDB88320, reflected,
// initial and final XOR 0xFFFFFFFF. A chunk's CRC covers its type and data.
uint32_t PngCrc32(std::string_view bytes);

// The text of the one badge chunk, exactly as stored (tEXt converted from
// Latin-1 to UTF-8), not yet trimmed or classified.
struct PngBadgeText {
  BadgeKind kind = BadgeKind::kAssertion;
  bool legacy_text_chunk = false;  // tEXt rather than iTXt
  std::string text;
};

// Validates the whole PNG and returns its badge chunk. kInvalidArgument for a
// malformed or over-limit image, a compressed badge chunk, or more than one
// badge chunk; kNotFound ("no Open Badges data in this PNG") when there is none.
Result<PngBadgeText> ExtractPngBadge(std::string_view png, const ImageLimits& limits);

// Validates the PNG like ExtractPngBadge (badge chunks aside), removes every
// badge chunk (iTXt, tEXt or zTXt, either keyword) and inserts an iTXt chunk
// with the keyword for `kind`, compression flag 0, empty language tag and
// translated keyword, and `text` (UTF-8, no NUL) right after IHDR.
Result<std::string> BakePngBadge(std::string_view png, BadgeKind kind, std::string_view text,
                                 const ImageLimits& limits);

}  // namespace backpack::protocol
