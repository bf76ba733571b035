// Byte encodings and digests used across the node: hex, base64url
// (RFC 4648 section 5, no padding), base64 (section 4, padded) and SHA-256.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace backpack::protocol {

std::string HexEncode(std::string_view bytes);
std::string Base64UrlEncode(std::string_view bytes);
// Accepts input with or without '=' padding; nullopt on any other character.
std::optional<std::string> Base64UrlDecode(std::string_view text);
// The standard alphabet with '=' padding (CSP hashes, data: URIs).
std::string Base64Encode(std::string_view bytes);
// Accepts the standard alphabet with or without padding, ignoring ASCII
// white space (as data: URIs are often wrapped); nullopt otherwise.
std::optional<std::string> Base64Decode(std::string_view text);

std::string Sha256(std::string_view bytes);     // 32 raw bytes
std::string Sha256Hex(std::string_view bytes);  // 64 lowercase hex digits

// Percent-encodes everything but the unreserved characters (RFC 3986 2.3):
// query values, application/x-www-form-urlencoded fields, HTTP Basic user
// ids and secrets (RFC 6749 2.3.1).
std::string PercentEncode(std::string_view text);

// Whether `text` has the shape of a JWS compact serialization: three
// base64url segments joined by two dots, the first and last not empty (the
// payload may be, when detached). Nothing is decoded or verified.
bool LooksLikeCompactJws(std::string_view text);

// Constant-time equality for secrets of equal length.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace backpack::protocol
