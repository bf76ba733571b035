// Reading a badge from an HTTP request body, the same way wherever badges
// come in: the badge API (POST /api/v1/badges) and the federation inbox
// (POST /_federation/v1/inbox/{account}). Wire format in docs/api.md.
#pragma once

#include <string>
#include <variant>

#include "daemon/badge_verifier.h"
#include "daemon/http.h"

namespace backpack::api {

// What the request body asks to import: a raw image/png or image/svg+xml
// body (a baked badge), or application/json with exactly one of
// {"url"}, {"assertion"}, {"jws"} or {"credential"} (an object, or a string
// holding JSON or a compact JWS). JSON objects are taken as the bytes the
// client sent, not re-serialised. Otherwise the 400 or 415 answer.
std::variant<VerifyRequest, http::Response> ReadBadgeInput(const http::Context& ctx);

// The 422 for a badge that did not verify:
// {"error": {"code": "verification_failed", "message": "<CHECK>: ..."}, "verification": report}.
http::Response VerificationFailed(const std::string& report_json);

}  // namespace backpack::api
