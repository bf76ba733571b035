// Fuzzes PNG badge extraction and baking.
//
// The whole input is an image. Besides not crashing, the library must keep
// its promises: whatever it extracts it can bake back into the same image and
// extract again unchanged, and any image it reads (baked or not) accepts a
// new payload that then reads back exactly. Each input is also tried with
// its chunk CRCs recomputed, so mutations reach the chunk contents instead of
// stopping at the checksum.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "protocol/baking.h"
#include "tests/fuzz/baking_fuzz_support.h"
#include "protocol/png.h"

namespace {

using backpack::StatusCode;
using backpack::protocol::BadgeKind;
using backpack::protocol::BakeBadge;
using backpack::protocol::BakedPayload;
using backpack::protocol::ExtractBadge;
using backpack::protocol::ExtractPngBadge;
using backpack::protocol::ImageLimits;
using backpack::protocol::PayloadForm;
using backpack::protocol::PngCrc32;

using backpack::fuzz::FixedPayload;
using backpack::fuzz::Require;
using backpack::fuzz::SamePayload;

// Rewrites the CRC of every chunk that lies within the buffer.
std::string WithRepairedCrcs(std::string_view image) {
  std::string out(image);
  size_t pos = 8;
  while (out.size() >= 12 && pos <= out.size() - 12) {
    const uint32_t length = (uint32_t{static_cast<unsigned char>(out[pos])} << 24) |
                            (uint32_t{static_cast<unsigned char>(out[pos + 1])} << 16) |
                            (uint32_t{static_cast<unsigned char>(out[pos + 2])} << 8) |
                            uint32_t{static_cast<unsigned char>(out[pos + 3])};
    if (length > out.size() - pos - 12) break;
    const uint32_t crc = PngCrc32(std::string_view(out).substr(pos + 4, 4 + size_t{length}));
    for (int i = 0; i < 4; ++i) out[pos + 8 + length + i] = static_cast<char>(crc >> (24 - 8 * i));
    pos += 12 + size_t{length};
  }
  return out;
}

void Exercise(std::string_view image, size_t size) {
  ImageLimits limits;
  // Tighter than the defaults, so inputs of fuzzing size reach the limits.
  limits.max_png_width = 4096;
  if (size % 2) limits.max_png_chunk_bytes = 4096;

  // The chunk walker on its own, with or without a valid signature.
  auto raw = ExtractPngBadge(image, limits);
  if (raw.ok()) Require(raw->kind == BadgeKind::kAssertion || raw->kind == BadgeKind::kCredential);

  auto found = ExtractBadge(image, limits);
  if (found.ok()) {
    auto baked = BakeBadge(image, *found, limits);
    Require(baked.ok());
    auto again = ExtractBadge(*baked, limits);
    Require(again.ok() && SamePayload(*found, *again));
  }
  // Any well-formed image, baked or not, takes a new payload.
  const bool readable = found.ok() || found.status().code() == StatusCode::kNotFound;
  const BakedPayload payload = FixedPayload(size);
  auto baked = BakeBadge(image, payload, limits);
  if (readable) Require(baked.ok());
  if (baked.ok()) {
    auto again = ExtractBadge(*baked, limits);
    Require(again.ok());
    BakedPayload expected = payload;
    expected.format = again->format;
    Require(SamePayload(expected, *again));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view image(reinterpret_cast<const char*>(data), size);
  Exercise(image, size);
  const std::string repaired = WithRepairedCrcs(image);
  if (repaired != image) Exercise(repaired, size);
  return 0;
}
