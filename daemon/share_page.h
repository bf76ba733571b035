// What a public collection shows, and how: the share page (HTML with Open
// Graph and Twitter card tags), its JSON twin, and the OB 1.0-style
// assertion the Mozilla Displayer API hands to LMS plugins.
//
// Pure functions of their inputs: no storage, no clock. Every value that
// came from an earner or an issuer is escaped for the context it lands in,
// and only http(s) (and, for images, data:image/) URLs become links or
// image sources.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace backpack {

// One badge as a share page shows it. Empty members were not given.
struct SharedBadge {
  std::string id;
  std::string name;
  std::string description;
  std::string image;        // URL or data: URI
  std::string issuer_name;
  std::string issuer_url;
  std::string issuer_email;
  std::string issued_on;    // RFC 3339
  std::string expires;      // RFC 3339
  std::string criteria_url;
  std::string status;       // valid, revoked, expired, invalid, unverifiable
  std::string verification_type;  // hosted or signed, when known
  // For the Displayer API's assertion: the recipient as the issuer wrote it
  // (a hash when the issuer hashed it) and its salt.
  std::string recipient;
  std::string recipient_salt;
  bool recipient_hashed = false;
};

// Reads the members a share page shows from a stored badge's normalised
// JSON (BadgeRecord::badge_json). Tolerant: a member that is absent or of
// another type is left empty.
SharedBadge SharedBadgeFromJson(std::string_view id, std::string_view badge_json, std::string_view status);

struct SharePage {
  std::string name;
  std::string description;
  std::string owner;  // the owner's display name; may be empty
  std::string url;    // absolute URL of the page
  std::vector<SharedBadge> badges;
};

// {name, description, owner, url, badges:[{id, name, description, image,
// issuer:{name, url}, issued_on, criteria_url, status}]}; absent values null.
std::string RenderShareJson(const SharePage& page);

// A complete HTML5 document without scripts; its one stylesheet is inline
// and allowed by SharePageCsp().
std::string RenderShareHtml(const SharePage& page);
std::string RenderNotFoundHtml();

// The Content-Security-Policy for the pages above: nothing but images and
// their own stylesheet (by hash).
const std::string& SharePageCsp();

// The badge as an OB 1.0-style assertion object, the shape Mozilla
// Displayer clients read: {recipient, salt?, issued_on, expires?, badge:
// {name, description, image, criteria, issuer: {name, origin, org,
// contact}}}. The recipient is always a hash: when the issuer wrote an
// address in clear it is hashed here with `salt_if_clear`.
std::string DisplayerAssertionJson(const SharedBadge& badge, std::string_view salt_if_clear);

// &, <, >, " and ' as character references: safe in text and in quoted
// attribute values.
std::string HtmlEscape(std::string_view text);

// True for an absolute http: or https: URL (ASCII case-insensitive scheme).
bool IsHttpUrl(std::string_view url);

}  // namespace backpack
