#include "protocol/baking.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "protocol/png.h"
#include "protocol/json_depth.h"
#include "protocol/svg.h"

namespace backpack::protocol {
namespace {

// Badge JSON is a handful of levels deep; this only keeps the JSON library's
// document tree (and its teardown) away from hostile nesting.
constexpr int kMaxJsonDepth = 64;

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view Trim(std::string_view text) {
  while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
  return text;
}

bool IsValidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (text.size() - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += len;
  }
  return true;
}


bool IsBase64UrlSegment(std::string_view segment) {
  if (segment.empty()) return false;
  for (char c : segment) {
    const bool ok =
        (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

bool IsCompactJws(std::string_view text) {
  const size_t first = text.find('.');
  if (first == std::string_view::npos) return false;
  const size_t second = text.find('.', first + 1);
  if (second == std::string_view::npos) return false;
  return IsBase64UrlSegment(text.substr(0, first)) &&
         IsBase64UrlSegment(text.substr(first + 1, second - first - 1)) &&
         IsBase64UrlSegment(text.substr(second + 1));
}

bool StartsWithIgnoreCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

bool IsHttpUrl(std::string_view text) {
  size_t scheme = 0;
  if (StartsWithIgnoreCase(text, "https://")) {
    scheme = 8;
  } else if (StartsWithIgnoreCase(text, "http://")) {
    scheme = 7;
  } else {
    return false;
  }
  if (text.size() == scheme) return false;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7f || c == '"' || c == '<' || c == '>' || c == '\\') return false;
  }
  return true;
}

// The verify attribute of an SVG assertion holding JSON: OB 1.0 "verify.url",
// else the assertion's own http(s) "id" (an OB 2.0 hosted assertion).
std::string DeriveVerifyUrl(std::string_view json_text) {
  const nlohmann::json doc = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return {};
  const auto verify = doc.find("verify");
  if (verify != doc.end() && verify->is_object()) {
    const auto url = verify->find("url");
    if (url != verify->end() && url->is_string() && IsHttpUrl(url->get_ref<const std::string&>())) {
      return url->get<std::string>();
    }
  }
  const auto id = doc.find("id");
  if (id != doc.end() && id->is_string() && IsHttpUrl(id->get_ref<const std::string&>())) {
    return id->get<std::string>();
  }
  return {};
}

Status CheckForm(BadgeKind kind, PayloadForm form) {
  if (kind == BadgeKind::kCredential && form == PayloadForm::kUrl) {
    return InvalidArgument("an OB 3.0 credential must be baked as JSON or a compact JWS, not a URL");
  }
  return Status::Ok();
}

Result<BakedPayload> Finish(ImageFormat format, BadgeKind kind, std::string_view text,
                            const ImageLimits& limits) {
  BakedPayload payload;
  payload.format = format;
  payload.kind = kind;
  const std::string_view data = Trim(text);
  if (data.empty()) {
    return InvalidArgument(format == ImageFormat::kPng ? "the Open Badges chunk in this PNG is empty"
                                                       : "the Open Badges element in this SVG is empty");
  }
  if (data.size() > limits.max_payload_bytes) {
    return InvalidArgument("baked data is " + std::to_string(data.size()) + " bytes, over the limit of " +
                           std::to_string(limits.max_payload_bytes));
  }
  Result<PayloadForm> form = ClassifyPayload(data);
  if (!form.ok()) return form.status();
  BP_RETURN_IF_ERROR(CheckForm(kind, *form));
  payload.form = *form;
  payload.data = std::string(data);
  return payload;
}

}  // namespace

std::string_view ImageFormatName(ImageFormat format) { return format == ImageFormat::kPng ? "png" : "svg"; }

std::string_view BadgeKindName(BadgeKind kind) {
  return kind == BadgeKind::kAssertion ? "assertion" : "credential";
}

std::string_view PayloadFormName(PayloadForm form) {
  switch (form) {
    case PayloadForm::kJson:
      return "json";
    case PayloadForm::kJws:
      return "jws";
    case PayloadForm::kUrl:
      return "url";
  }
  return "unknown";
}

Result<ImageFormat> DetectImageFormat(std::string_view image_bytes) {
  if (HasPngSignature(image_bytes)) return ImageFormat::kPng;
  std::string_view rest = image_bytes;
  if (rest.starts_with("\xEF\xBB\xBF")) rest.remove_prefix(3);
  while (!rest.empty() && IsSpace(rest.front())) rest.remove_prefix(1);
  if (!rest.starts_with("<") && !image_bytes.starts_with("\xFE\xFF") &&
      !image_bytes.starts_with("\xFF\xFE")) {
    return InvalidArgument("not a PNG or SVG image");
  }
  // XML of some kind: the SVG reader says precisely what is wrong with it.
  BP_RETURN_IF_ERROR(CheckSvgPrologue(image_bytes));
  return ImageFormat::kSvg;
}

Result<PayloadForm> ClassifyPayload(std::string_view text) {
  if (text.empty()) return InvalidArgument("baked data is empty");
  if (!IsValidUtf8(text)) return InvalidArgument("baked data is not valid UTF-8");
  if (text.find('\0') != std::string_view::npos) return InvalidArgument("baked data contains a NUL byte");
  const std::string_view trimmed = Trim(text);
  if (trimmed.starts_with("{")) {
    if (JsonNestingDepth(trimmed, kMaxJsonDepth) > kMaxJsonDepth) {
      return InvalidArgument("baked JSON nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    }
    if (!nlohmann::json::accept(trimmed)) return InvalidArgument("baked JSON does not parse");
    return PayloadForm::kJson;
  }
  if (IsCompactJws(trimmed)) return PayloadForm::kJws;
  if (IsHttpUrl(trimmed)) return PayloadForm::kUrl;
  return InvalidArgument("baked data is neither a JSON object, a compact JWS nor an http(s) URL");
}

Result<BakedPayload> ExtractBadge(std::string_view image_bytes, const ImageLimits& limits) {
  Result<ImageFormat> format = DetectImageFormat(image_bytes);
  if (!format.ok()) return format.status();
  if (*format == ImageFormat::kPng) {
    Result<PngBadgeText> found = ExtractPngBadge(image_bytes, limits);
    if (!found.ok()) return found.status();
    return Finish(ImageFormat::kPng, found->kind, found->text, limits);
  }
  Result<SvgBadgeElement> found = ExtractSvgBadge(image_bytes, limits);
  if (!found.ok()) return found.status();
  // A body holds the badge itself; without one, the verify attribute does
  // (a signature, or the URL of a hosted assertion).
  const std::string_view body = Trim(found->body);
  const std::string_view verify = Trim(found->verify);
  if (body.empty() && verify.empty()) {
    return InvalidArgument(std::string("the openbadges:") + std::string(BadgeKindName(found->kind)) +
                           " element has neither a body nor a verify attribute");
  }
  Result<BakedPayload> payload = Finish(ImageFormat::kSvg, found->kind, body.empty() ? verify : body, limits);
  if (!payload.ok()) return payload;
  if (!body.empty() && payload->kind == BadgeKind::kAssertion && verify.size() <= limits.max_payload_bytes &&
      IsHttpUrl(verify) && IsValidUtf8(verify)) {
    payload->verify_url = std::string(verify);
  }
  return payload;
}

Result<std::string> BakeBadge(std::string_view image_bytes, const BakedPayload& payload,
                              const ImageLimits& limits) {
  if (payload.data.size() > limits.max_payload_bytes) {
    return InvalidArgument("badge data is " + std::to_string(payload.data.size()) +
                           " bytes, over the limit of " + std::to_string(limits.max_payload_bytes));
  }
  const std::string_view data = Trim(payload.data);
  Result<PayloadForm> form = ClassifyPayload(data);
  if (!form.ok()) return form.status();
  if (*form != payload.form) {
    return InvalidArgument("badge data is " + std::string(PayloadFormName(*form)) + ", not " +
                           std::string(PayloadFormName(payload.form)));
  }
  BP_RETURN_IF_ERROR(CheckForm(payload.kind, payload.form));
  if (!payload.verify_url.empty()) {
    if (payload.kind != BadgeKind::kAssertion || payload.form != PayloadForm::kJson) {
      return InvalidArgument("verify_url applies only to an assertion baked as JSON");
    }
    if (!IsHttpUrl(payload.verify_url) || !IsValidUtf8(payload.verify_url) ||
        payload.verify_url.size() > limits.max_payload_bytes) {
      return InvalidArgument("verify_url is not an http(s) URL");
    }
  }

  Result<ImageFormat> format = DetectImageFormat(image_bytes);
  if (!format.ok()) return format.status();
  if (*format == ImageFormat::kPng) return BakePngBadge(image_bytes, payload.kind, data, limits);

  SvgBadgeElement element;
  element.kind = payload.kind;
  if (payload.form == PayloadForm::kJson) {
    element.body = std::string(data);
    if (payload.kind == BadgeKind::kAssertion) {
      element.verify = payload.verify_url.empty() ? DeriveVerifyUrl(data) : payload.verify_url;
    }
  } else {
    element.verify = std::string(data);
  }
  return BakeSvgBadge(image_bytes, element, limits);
}

}  // namespace backpack::protocol
