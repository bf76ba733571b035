// Helpers shared by the baked-image fuzz targets.
#pragma once

#include <cstddef>
#include <cstdlib>

#include "protocol/baking.h"
#include "tests/fuzz/fuzz_support.h"

namespace backpack::fuzz {

using protocol::BadgeKind;
using protocol::BakedPayload;
using protocol::PayloadForm;


inline bool SamePayload(const BakedPayload& a, const BakedPayload& b) {
  // A JSON assertion baked into an SVG gains a verify URL derived from it.
  return a.format == b.format && a.kind == b.kind && a.form == b.form && a.data == b.data &&
         (a.verify_url.empty() || a.verify_url == b.verify_url);
}

inline BakedPayload FixedPayload(size_t pick) {
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

}  // namespace backpack::fuzz
