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

void Require(bool condition) {
  if (!condition) std::abort();
}

bool SamePayload(const BakedPayload& a, const BakedPayload& b) {
  // A JSON assertion baked into an SVG gains a verify URL derived from it.
  return a.format == b.format && a.kind == b.kind && a.form == b.form && a.data == b.data &&
         (a.verify_url.empty() || a.verify_url == b.verify_url);
}

BakedPayload FixedPayload(size_t pick) {
  BakedPayload p;
  switch (pick % 4) {
    case 0:
      p.kind = BadgeKind::kAssertion;
      p.form = PayloadForm::kJson;
      p.data = R"({"id":"https://example.org/a/1","text":"]]> & <x> \r\n"})";
      break;
    case 1:
      p.kind = BadgeKind::kAssertion;
      p.form = PayloadForm::kUrl;
      p.data = "https://example.org/a/1?x=1&y='2'";
      break;
    case 2:
      p.kind = BadgeKind::kCredential;
      p.form = PayloadForm::kJws;
      p.data = "eyJhbGciOiJSUzI1NiJ9.eyJpZCI6MX0.c2ln";
      break;
    default:
      p.kind = BadgeKind::kCredential;
      p.form = PayloadForm::kJson;
      p.data = R"({"type":["VerifiableCredential","OpenBadgeCredential"]})";
      break;
  }
  return p;
}

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
