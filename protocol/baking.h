// Baked badges: Open Badges data carried inside a PNG or SVG image.
//
// OB 0.5-2.0 bake an assertion ("openbadges": assertion JSON, a compact JWS
// or, in the oldest images, the URL of a hosted assertion); OB 3.0 bakes an
// OpenBadgeCredential ("openbadgecredential": credential JSON or a VC-JWT).
// PNG images carry it in an iTXt chunk (legacy images: a tEXt chunk holding a
// URL), SVG images in an <openbadges:assertion> or <openbadges:credential>
// element. See png.h and svg.h for the container details.
//
// Everything here is pure and bounded: images are untrusted bytes, every size
// is checked against ImageLimits before it is used, and no input can make the
// code recurse, expand entities or allocate more than a small multiple of the
// input size.
//
// Errors: an image with no Open Badges data at all is kNotFound (the image
// itself is fine, so a caller may bake into it); anything malformed, hostile
// or over a limit is kInvalidArgument with a message naming the problem and,
// where it helps, the byte offset. The daemon maps both to a 4xx answer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace backpack::protocol {

enum class ImageFormat { kPng, kSvg };

// Which generation of Open Badges the baked data belongs to.
enum class BadgeKind {
  kAssertion,   // OB 0.5-2.0: PNG keyword "openbadges", SVG <openbadges:assertion>
  kCredential,  // OB 3.0: PNG keyword "openbadgecredential", SVG <openbadges:credential>
};

// What the baked text looks like. A syntactic guess: nothing is fetched,
// decoded or verified here.
enum class PayloadForm {
  kJson,  // a JSON object (hosted or embedded-proof badge)
  kJws,   // a compact JWS (signed assertion, VC-JWT): three base64url segments
  kUrl,   // an http(s) URL of a hosted assertion (assertions only)
};

std::string_view ImageFormatName(ImageFormat format);  // "png", "svg"
std::string_view BadgeKindName(BadgeKind kind);        // "assertion", "credential"
std::string_view PayloadFormName(PayloadForm form);    // "json", "jws", "url"

// Bounds applied to untrusted images. The defaults accept every real badge
// image seen so far with a wide margin; the daemon may tighten them.
struct ImageLimits {
  // Whole image, PNG or SVG.
  size_t max_image_bytes = 8 * 1024 * 1024;
  // Any single PNG chunk's data (the PNG format itself allows 2^31 - 1).
  size_t max_png_chunk_bytes = 4 * 1024 * 1024;
  // PNG dimensions from IHDR. A badge is an icon; this only stops absurd headers.
  uint32_t max_png_width = 16384;
  uint32_t max_png_height = 16384;
  // Element nesting in an SVG (the tokenizer keeps an explicit stack).
  size_t max_svg_depth = 256;
  // The baked text itself (assertion/credential JSON, JWS or URL), and any
  // SVG verify attribute, when extracting and when baking.
  size_t max_payload_bytes = 1024 * 1024;
};

// What ExtractBadge finds and what BakeBadge writes.
struct BakedPayload {
  ImageFormat format = ImageFormat::kPng;  // where it was found; BakeBadge ignores it
  BadgeKind kind = BadgeKind::kAssertion;
  PayloadForm form = PayloadForm::kJson;
  // The baked text, valid UTF-8, surrounding whitespace removed. A legacy
  // Latin-1 tEXt value is converted to UTF-8.
  std::string data;
  // SVG assertions only: the verify attribute of an element whose body holds
  // the assertion JSON, when it is an http(s) URL (the hosted assertion's
  // address); empty otherwise. When baking JSON into an SVG assertion,
  // BakeBadge writes it if set, else derives it from the JSON ("verify.url" of
  // OB 1.0, else an http(s) "id"), else leaves the attribute out. It must be
  // empty for credentials and for JWS/URL payloads; PNG has no place for it.
  std::string verify_url;

  friend bool operator==(const BakedPayload&, const BakedPayload&) = default;
};

// PNG by its 8-byte signature; SVG when the document's root element (after an
// optional BOM, XML declaration, comments, processing instructions and
// DOCTYPE) is named svg. kInvalidArgument otherwise.
Result<ImageFormat> DetectImageFormat(std::string_view image_bytes);

// Classifies baked text as JSON (starts with '{' and parses as a JSON object),
// a compact JWS, or an http(s) URL. kInvalidArgument when it is none of these,
// when it starts like JSON but does not parse, or when it is not UTF-8.
Result<PayloadForm> ClassifyPayload(std::string_view text);

// Finds the one Open Badges payload baked into a PNG or SVG image. Refuses
// (kInvalidArgument) malformed or hostile images, images over `limits`, and
// images holding more than one payload; kNotFound when the image is well
// formed but carries no Open Badges data.
Result<BakedPayload> ExtractBadge(std::string_view image_bytes, const ImageLimits& limits = ImageLimits());

// Returns a copy of `image_bytes` carrying `payload`, replacing any Open Badges
// data already baked in (of either kind). The image's own format decides
// where the payload goes; payload.format is ignored. payload.form must match
// ClassifyPayload(payload.data), and a credential cannot be a URL. The result
// always re-extracts to the same kind, form and data (and, for SVG assertion
// JSON, to the verify_url given or derived).
//   PNG: an uncompressed iTXt chunk right after IHDR.
//   SVG: xmlns:openbadges on the root element and the badge element as its
//        first child; JSON goes in CDATA, a JWS or URL in the verify attribute.
Result<std::string> BakeBadge(std::string_view image_bytes, const BakedPayload& payload,
                              const ImageLimits& limits = ImageLimits());

}  // namespace backpack::protocol
