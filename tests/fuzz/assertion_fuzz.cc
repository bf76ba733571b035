// Arbitrary bytes through the assertion parser and the check: first with no
// fetched documents, then with the same bytes served for every URL the
// assertion asks for (so the BadgeClass, issuer, revocation list, key and
// hosted-copy paths run on hostile input too). Must never crash, and each
// input must finish in bounded time. Besides, the library keeps its promises:
// the original bytes are kept verbatim (an embedded document's original is a
// span of them), reports stay within their cap with exact counts, and a check
// with documents missing is never valid.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "protocol/assertion.h"
#include "protocol/recipient.h"
#include "tests/fuzz/fuzz_support.h"

using backpack::protocol::CheckAssertion;
using backpack::protocol::CheckOptions;
using backpack::protocol::DocumentsToFetch;
using backpack::protocol::FetchedDocuments;
using backpack::protocol::MessageLevel;
using backpack::protocol::ParseAssertion;
using backpack::protocol::VerificationReport;

using backpack::fuzz::Require;
using backpack::fuzz::RequireConsistent;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const auto parsed = ParseAssertion(bytes);
  RequireConsistent(parsed.report);
  Require(parsed.badge.original == bytes);
  for (const std::string* embedded : {&parsed.badge.badge_class.original, &parsed.badge.issuer.original}) {
    Require(bytes.find(*embedded) != std::string_view::npos);
  }

  CheckOptions options;
  options.now = 1'795'737'600;  // 2026-11-27T00:00:00Z
  options.verified_emails = {"Ada@Issuer.Example", "nobody@example.org"};
  options.source_url = "https://issuer.example/assertions/1";

  FetchedDocuments fetched;
  const auto empty = CheckAssertion(parsed, fetched, options);
  RequireConsistent(empty.report);
  Require(empty.missing_documents.empty() || !empty.valid());

  // Serve the input for everything asked for, a few rounds deep.
  for (int round = 0; round < 4; ++round) {
    const auto urls = DocumentsToFetch(parsed, fetched, options);
    if (urls.empty()) break;
    for (const auto& url : urls) fetched[url] = {200, std::string(bytes), ""};
  }
  const auto full = CheckAssertion(parsed, fetched, options);
  RequireConsistent(full.report);
  Require(full.missing_documents.empty() || !full.valid());

  (void)backpack::protocol::ParseBadgeClass(bytes, parsed.badge.spec_version);
  (void)backpack::protocol::ParseIssuer(bytes, parsed.badge.spec_version);
  (void)backpack::protocol::ValidateDocument(bytes);
  (void)backpack::protocol::ParseBadgeTime(bytes.substr(0, 80));
  return 0;
}
