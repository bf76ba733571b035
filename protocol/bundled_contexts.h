// JSON-LD context documents compiled into the binary, so credentials are
// processed without fetching anything: the W3C Verifiable Credentials v1
// and v2 contexts, Open Badges 3.0 (context.json, 3.0.1-3.0.3, extensions),
// Data Integrity v1/v2, Ed25519Signature2020, Multikey, DID v1,
// StatusList2021, Bitstring Status List and DCC v1. protocol/contexts/README.md
// lists their sources and licences.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "protocol/jsonld.h"

namespace backpack::protocol {

// The bytes of the context bundled for `url` (exact match), if any.
std::optional<std::string_view> BundledContext(std::string_view url);

// Every bundled URL, in manifest order.
std::vector<std::string_view> BundledContextUrls();

// A loader that serves only bundled contexts; NotFound ("context not
// bundled") for any other URL. Thread-safe, cheap to copy.
jsonld::DocumentLoader BundledContextLoader();

}  // namespace backpack::protocol
