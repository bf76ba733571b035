#include "protocol/png.h"

#include <array>
#include <cstddef>
#include <optional>
#include <string>

namespace backpack::protocol {
namespace {

constexpr size_t kChunkOverhead = 12;  // length, type, CRC
constexpr uint32_t kMaxPngLength = 0x7fffffff;
constexpr size_t kMaxKeywordLength = 79;

constexpr std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t n = 0; n < 256; ++n) {
    uint32_t c = n;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    table[n] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrcTable = MakeCrcTable();

uint32_t ReadU32(std::string_view bytes, size_t at) {
  return (uint32_t{static_cast<unsigned char>(bytes[at])} << 24) |
         (uint32_t{static_cast<unsigned char>(bytes[at + 1])} << 16) |
         (uint32_t{static_cast<unsigned char>(bytes[at + 2])} << 8) |
         uint32_t{static_cast<unsigned char>(bytes[at + 3])};
}

void AppendU32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

std::string Hex32(uint32_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out = "0x";
  for (int shift = 28; shift >= 0; shift -= 4) out.push_back(kDigits[(v >> shift) & 0xf]);
  return out;
}

bool IsLetter(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

struct Chunk {
  std::string_view type;
  std::string_view data;
  size_t offset = 0;  // of the length field
};

std::string Where(const Chunk& chunk) {
  return "chunk '" + std::string(chunk.type) + "' at offset " + std::to_string(chunk.offset);
}

bool ValidBitDepth(uint8_t color_type, uint8_t depth) {
  switch (color_type) {
    case 0:
      return depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16;
    case 3:
      return depth == 1 || depth == 2 || depth == 4 || depth == 8;
    case 2:
    case 4:
    case 6:
      return depth == 8 || depth == 16;
    default:
      return false;
  }
}

Status CheckHeader(const Chunk& ihdr, const ImageLimits& limits) {
  if (ihdr.data.size() != 13) {
    return InvalidArgument("PNG IHDR is " + std::to_string(ihdr.data.size()) + " bytes, not 13");
  }
  const uint32_t width = ReadU32(ihdr.data, 0);
  const uint32_t height = ReadU32(ihdr.data, 4);
  if (width == 0 || height == 0 || width > kMaxPngLength || height > kMaxPngLength) {
    return InvalidArgument("PNG IHDR has invalid dimensions " + std::to_string(width) + "x" +
                           std::to_string(height));
  }
  if (width > limits.max_png_width || height > limits.max_png_height) {
    return InvalidArgument("PNG is " + std::to_string(width) + "x" + std::to_string(height) +
                           " pixels, over the limit of " + std::to_string(limits.max_png_width) + "x" +
                           std::to_string(limits.max_png_height));
  }
  const auto depth = static_cast<uint8_t>(ihdr.data[8]);
  const auto color_type = static_cast<uint8_t>(ihdr.data[9]);
  if (!ValidBitDepth(color_type, depth)) {
    return InvalidArgument("PNG IHDR has an invalid colour type " + std::to_string(color_type) +
                           " / bit depth " + std::to_string(depth));
  }
  if (ihdr.data[10] != 0 || ihdr.data[11] != 0 || (ihdr.data[12] != 0 && ihdr.data[12] != 1)) {
    return InvalidArgument("PNG IHDR has an unknown compression, filter or interlace method");
  }
  return Status::Ok();
}

// Validates the whole PNG (see png.h) and hands every chunk, in order, to
// `visit`, stopping at the first error either of them reports. Nothing is
// stored per chunk, so memory stays constant however many chunks there are.
template <typename Visit>
Status WalkPng(std::string_view png, const ImageLimits& limits, Visit&& visit) {
  if (png.size() > limits.max_image_bytes) {
    return InvalidArgument("PNG is " + std::to_string(png.size()) + " bytes, over the limit of " +
                           std::to_string(limits.max_image_bytes));
  }
  if (!HasPngSignature(png)) return InvalidArgument("not a PNG: the 8-byte signature is missing");
  size_t pos = kPngSignature.size();
  bool seen_idat = false;
  for (bool first = true;; first = false) {
    if (pos == png.size()) return InvalidArgument("PNG ends without an IEND chunk");
    const size_t remaining = png.size() - pos;
    if (remaining < kChunkOverhead) {
      return InvalidArgument("truncated PNG chunk header at offset " + std::to_string(pos) + ": " +
                             std::to_string(remaining) + " bytes left");
    }
    Chunk chunk;
    chunk.offset = pos;
    chunk.type = png.substr(pos + 4, 4);
    for (char c : chunk.type) {
      if (!IsLetter(c)) return InvalidArgument("invalid PNG chunk type at offset " + std::to_string(pos));
    }
    const uint32_t length = ReadU32(png, pos);
    if (length > kMaxPngLength) {
      return InvalidArgument(Where(chunk) + " declares length " + std::to_string(length) +
                             ", over the PNG maximum of 2^31-1");
    }
    if (length > limits.max_png_chunk_bytes) {
      return InvalidArgument(Where(chunk) + " is " + std::to_string(length) +
                             " bytes, over the chunk limit of " + std::to_string(limits.max_png_chunk_bytes));
    }
    if (length > remaining - kChunkOverhead) {
      return InvalidArgument("truncated PNG " + Where(chunk) + ": declares " + std::to_string(length) +
                             " bytes, " + std::to_string(remaining - kChunkOverhead) + " remain");
    }
    chunk.data = png.substr(pos + 8, length);
    const uint32_t stored = ReadU32(png, pos + 8 + length);
    const uint32_t computed = PngCrc32(png.substr(pos + 4, 4 + size_t{length}));
    if (stored != computed) {
      return InvalidArgument("bad CRC in PNG " + Where(chunk) + " (stored " + Hex32(stored) + ", computed " +
                             Hex32(computed) + ")");
    }
    pos += kChunkOverhead + length;

    if (first != (chunk.type == "IHDR")) {
      if (first)
        return InvalidArgument("PNG does not start with IHDR (first chunk is '" + std::string(chunk.type) +
                               "')");
      return InvalidArgument("duplicate IHDR: " + Where(chunk));
    }
    if (first) BP_RETURN_IF_ERROR(CheckHeader(chunk, limits));
    if (chunk.type == "IDAT") seen_idat = true;
    BP_RETURN_IF_ERROR(visit(chunk));
    if (chunk.type == "IEND") {
      if (!chunk.data.empty()) return InvalidArgument("PNG IEND chunk is not empty");
      if (!seen_idat) return InvalidArgument("PNG has no image data (IDAT chunk)");
      if (pos != png.size()) {
        return InvalidArgument("PNG has " + std::to_string(png.size() - pos) + " bytes after IEND");
      }
      return Status::Ok();
    }
  }
}

// The keyword of a text chunk when it names Open Badges data.
std::optional<BadgeKind> BadgeKeyword(const Chunk& chunk) {
  if (chunk.type != "tEXt" && chunk.type != "iTXt" && chunk.type != "zTXt") return std::nullopt;
  const size_t nul = chunk.data.find('\0');
  if (nul == std::string_view::npos || nul > kMaxKeywordLength) return std::nullopt;
  const std::string_view keyword = chunk.data.substr(0, nul);
  if (keyword == kPngAssertionKeyword) return BadgeKind::kAssertion;
  if (keyword == kPngCredentialKeyword) return BadgeKind::kCredential;
  return std::nullopt;
}

std::string Latin1ToUtf8(std::string_view latin1) {
  std::string out;
  out.reserve(latin1.size());
  for (char ch : latin1) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      out.push_back(ch);
    } else {
      out.push_back(static_cast<char>(0xc0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3f)));
    }
  }
  return out;
}

// Decodes a badge chunk (keyword already matched) into its text.
Result<std::string> BadgeChunkText(const Chunk& chunk, std::string_view keyword) {
  std::string_view rest = chunk.data.substr(keyword.size() + 1);
  const std::string what =
      std::string(chunk.type) + " '" + std::string(keyword) + "' at offset " + std::to_string(chunk.offset);
  if (chunk.type == "zTXt") {
    return InvalidArgument("compressed Open Badges chunk refused: " + what + " (baking forbids compression)");
  }
  if (chunk.type == "tEXt") return Latin1ToUtf8(rest);
  // iTXt: compression flag, compression method, language tag\0, translated keyword\0, text.
  if (rest.size() < 2) return InvalidArgument("truncated iTXt header in " + what);
  const char flag = rest[0];
  const char method = rest[1];
  if (flag == 1) {
    return InvalidArgument("compressed Open Badges chunk refused: " + what +
                           " has compression flag 1 (baking forbids compression)");
  }
  if (flag != 0 || method != 0) {
    return InvalidArgument("invalid iTXt compression flag/method in " + what);
  }
  rest.remove_prefix(2);
  for (const char* field : {"language tag", "translated keyword"}) {
    const size_t nul = rest.find('\0');
    if (nul == std::string_view::npos) {
      return InvalidArgument("iTXt " + std::string(field) + " is not terminated in " + what);
    }
    rest.remove_prefix(nul + 1);
  }
  return std::string(rest);
}

std::string_view KeywordFor(BadgeKind kind) {
  return kind == BadgeKind::kCredential ? kPngCredentialKeyword : kPngAssertionKeyword;
}

void AppendChunk(std::string& out, std::string_view type, std::string_view data) {
  AppendU32(out, static_cast<uint32_t>(data.size()));
  const size_t crc_from = out.size();
  out.append(type);
  out.append(data);
  const uint32_t crc = PngCrc32(std::string_view(out).substr(crc_from));
  AppendU32(out, crc);
}

}  // namespace

bool HasPngSignature(std::string_view bytes) {
  return bytes.substr(0, kPngSignature.size()) == kPngSignature;
}

uint32_t PngCrc32(std::string_view bytes) {
  uint32_t c = 0xffffffffu;
  for (char ch : bytes) c = kCrcTable[(c ^ static_cast<unsigned char>(ch)) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

Result<PngBadgeText> ExtractPngBadge(std::string_view png, const ImageLimits& limits) {
  std::optional<PngBadgeText> found;
  std::string found_where;
  const Status walked = WalkPng(png, limits, [&](const Chunk& chunk) -> Status {
    const std::optional<BadgeKind> kind = BadgeKeyword(chunk);
    if (!kind) return Status::Ok();
    const std::string_view keyword = KeywordFor(*kind);
    if (found) {
      return InvalidArgument("PNG holds more than one Open Badges chunk: " + found_where + " and " +
                             std::string(chunk.type) + " '" + std::string(keyword) + "' at offset " +
                             std::to_string(chunk.offset));
    }
    Result<std::string> text = BadgeChunkText(chunk, keyword);
    if (!text.ok()) return text.status();
    found_where =
        std::string(chunk.type) + " '" + std::string(keyword) + "' at offset " + std::to_string(chunk.offset);
    found = PngBadgeText{*kind, chunk.type == "tEXt", std::move(text).value()};
    return Status::Ok();
  });
  if (!walked.ok()) return walked;
  if (!found) {
    return NotFound(
        "no Open Badges data in this PNG (no iTXt chunk with keyword openbadges or "
        "openbadgecredential)");
  }
  return std::move(*found);
}

Result<std::string> BakePngBadge(std::string_view png, BadgeKind kind, std::string_view text,
                                 const ImageLimits& limits) {
  if (text.find('\0') != std::string_view::npos) return InvalidArgument("badge text contains a NUL byte");
  if (text.size() > limits.max_payload_bytes) {
    return InvalidArgument("badge text is " + std::to_string(text.size()) + " bytes, over the limit of " +
                           std::to_string(limits.max_payload_bytes));
  }
  const std::string_view keyword = KeywordFor(kind);
  std::string itxt;
  itxt.reserve(keyword.size() + 5 + text.size());
  itxt.append(keyword);
  itxt.append(std::string_view("\0\0\0\0\0", 5));  // keyword end, flag 0, method 0, "" lang, "" key
  itxt.append(text);
  if (itxt.size() > limits.max_png_chunk_bytes) {
    return InvalidArgument("badge iTXt chunk would be " + std::to_string(itxt.size()) +
                           " bytes, over the chunk limit of " + std::to_string(limits.max_png_chunk_bytes));
  }

  std::string out;
  out.reserve(png.size() + itxt.size() + kChunkOverhead);
  out.append(kPngSignature);
  const Status walked = WalkPng(png, limits, [&](const Chunk& chunk) -> Status {
    if (BadgeKeyword(chunk)) return Status::Ok();  // replaced by the new chunk
    out.append(png.substr(chunk.offset, kChunkOverhead + chunk.data.size()));
    if (chunk.type == "IHDR") AppendChunk(out, "iTXt", itxt);
    return Status::Ok();
  });
  if (!walked.ok()) return walked;
  if (out.size() > limits.max_image_bytes) {
    return InvalidArgument("baked PNG would be " + std::to_string(out.size()) + " bytes, over the limit of " +
                           std::to_string(limits.max_image_bytes));
  }
  return out;
}

}  // namespace backpack::protocol
