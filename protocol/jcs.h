// JSON Canonicalization Scheme (RFC 8785): one byte sequence per JSON value,
// so a JSON value can be hashed or signed. Used for rdf:JSON literals
// (JSON-LD "@type": "@json") and by JCS-based proof suites.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

namespace backpack::protocol {

// Object members sorted by their UTF-16 code units, no insignificant white
// space, strings escaped as ECMAScript's JSON.stringify does, numbers in
// ECMAScript Number::toString form (integers beyond 2^53 are first rounded
// to the nearest double, as a JavaScript parser would). Thread-safe.
std::string CanonicalJson(const nlohmann::json& value);

// ECMAScript Number::toString for a finite double ("1e+21", "0.000001",
// "1.5", "-0" is written "0").
std::string EcmaScriptNumber(double value);

}  // namespace backpack::protocol
