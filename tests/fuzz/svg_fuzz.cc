// Fuzzes SVG badge extraction and baking: the tokenizer, namespaces, entity
// and DOCTYPE refusal, and the rewriting of the root element.
//
// The whole input is an image. Besides not crashing, the library must keep
// its promises: whatever it extracts it can bake back into the same image and
// extract again unchanged, and any image it reads (baked or not) accepts a
// new payload that then reads back exactly.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "protocol/baking.h"
#include "tests/fuzz/baking_fuzz_support.h"
#include "protocol/svg.h"

namespace {

using backpack::StatusCode;
using backpack::protocol::BadgeKind;
using backpack::protocol::BakeBadge;
using backpack::protocol::BakedPayload;
using backpack::protocol::ExtractBadge;
using backpack::protocol::ExtractSvgBadge;
using backpack::protocol::ImageLimits;
using backpack::protocol::PayloadForm;

using backpack::fuzz::FixedPayload;
using backpack::fuzz::Require;
using backpack::fuzz::SamePayload;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view image(reinterpret_cast<const char*>(data), size);
  ImageLimits limits;
  if (size % 2) limits.max_svg_depth = 16;  // so inputs of fuzzing size reach the limit

  // The tokenizer on its own, whatever the first bytes look like.
  auto raw = ExtractSvgBadge(image, limits);
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
  return 0;
}
