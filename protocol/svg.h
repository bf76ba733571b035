// Open Badges in SVG images, read with a small bounded XML tokenizer.
//
// The tokenizer understands exactly what a baked SVG needs: start/end/empty
// tags with single- or double-quoted attributes, text, CDATA, comments and
// processing instructions, the XML declaration, the five predefined entities
// and numeric character references. It never recurses (an explicit element
// stack, bounded by ImageLimits::max_svg_depth), never expands a declared
// entity and never loads anything:
//   - an ENTITY declaration, or a DOCTYPE with an internal subset ("[...]"),
//     is refused outright (billion laughs, XXE);
//   - a DOCTYPE that only names an external DTD by PUBLIC/SYSTEM identifier,
//     as many editors write, is accepted and ignored: the DTD is never read,
//     and any entity reference other than the predefined ones is refused;
//   - unbalanced or mismatched tags, duplicate attributes, more than one root,
//     content outside the root, NUL bytes, a declared encoding other than
//     UTF-8 and input over the size limit are refused.
//
// Badge elements are found by namespace, not by spelling: an element whose
// local name is "assertion" or "credential" in one of the Open Badges
// namespaces (http://openbadges.org, https://purl.imsglobal.org/ob/v2p0,
// https://purl.imsglobal.org/ob/v3p0), whatever prefix binds it.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"
#include "protocol/baking.h"

namespace backpack::protocol {

inline constexpr std::string_view kSvgLegacyNamespace = "http://openbadges.org";
inline constexpr std::string_view kSvgOb2Namespace = "https://purl.imsglobal.org/ob/v2p0";
inline constexpr std::string_view kSvgOb3Namespace = "https://purl.imsglobal.org/ob/v3p0";

// OK when the bytes are a UTF-8 XML document whose root element is named svg.
// Reads only up to the root start tag (ExtractSvgBadge checks the rest);
// kInvalidArgument naming the problem otherwise.
Status CheckSvgPrologue(std::string_view bytes);

// The one badge element of an SVG, its text decoded but not yet trimmed or
// classified.
struct SvgBadgeElement {
  BadgeKind kind = BadgeKind::kAssertion;
  std::string body;    // text and CDATA content, entities decoded; comments dropped
  std::string verify;  // the verify attribute, decoded; empty when absent
};

// Validates the whole document and returns its badge element. kInvalidArgument
// for malformed or hostile XML, a root that is not svg, a badge element with
// child elements, or more than one badge element; kNotFound ("no Open Badges
// data in this SVG") when there is none.
Result<SvgBadgeElement> ExtractSvgBadge(std::string_view svg, const ImageLimits& limits);

// Validates the document like ExtractSvgBadge (badge elements aside), removes
// every badge element, declares xmlns:openbadges on the root element (the
// legacy namespace for an assertion, the OB 3.0 one for a credential,
// replacing any earlier declaration of that prefix there) and inserts
// <openbadges:assertion|credential> as the root's first child: `verify` (when
// not empty) as its verify attribute, `body` (when not empty) as CDATA, split
// wherever it contains "]]>". Everything else is copied byte for byte.
Result<std::string> BakeSvgBadge(std::string_view svg, const SvgBadgeElement& element,
                                 const ImageLimits& limits);

}  // namespace backpack::protocol
