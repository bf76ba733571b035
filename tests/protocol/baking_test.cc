#include <gtest/gtest.h>

#include "tests/support/vectors.h"

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/baking.h"
#include "protocol/png.h"
#include "protocol/svg.h"

namespace backpack::protocol {
namespace {

// ---------------------------------------------------------------------------
// Fixtures: images built in code.

const char kAssertionJson[] =
    R"({"@context":"https://w3id.org/openbadges/v2","type":"Assertion",)"
    R"("id":"https://example.org/assertions/123","recipient":{"type":"email","hashed":false,)"
    R"("identity":"alice@example.org"},"badge":"https://example.org/badges/5",)"
    R"("verification":{"type":"hosted"},"issuedOn":"2016-12-31T23:59:59+00:00"})";
const char kCredentialJson[] =
    R"({"@context":["https://www.w3.org/ns/credentials/v2",)"
    R"("https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"],)"
    R"("id":"urn:uuid:91537dba-56cb-11ec-bf63-0242ac130002",)"
    R"("type":["VerifiableCredential","OpenBadgeCredential"],"name":"Teamwork \u00e9 <&>"})";
const char kJws[] = "eyJhbGciOiJSUzI1NiJ9.eyJ1aWQiOiIxMjMifQ.c2lnbmF0dXJlLWJ5dGVz";
const char kUrl[] = "https://example.org/assertions/123";

void AppendU32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

std::string Chunk(std::string_view type, std::string_view data) {
  std::string out;
  AppendU32(out, static_cast<uint32_t>(data.size()));
  out.append(type);
  out.append(data);
  AppendU32(out, PngCrc32(std::string(type) + std::string(data)));
  return out;
}

std::string Ihdr(uint32_t width, uint32_t height) {
  std::string data;
  AppendU32(data, width);
  AppendU32(data, height);
  data += std::string("\x08\x00\x00\x00\x00", 5);  // 8-bit greyscale, deflate, no filter, no interlace
  return Chunk("IHDR", data);
}

// A zlib stream holding the rows uncompressed (one stored deflate block).
std::string Idat(uint32_t width, uint32_t height) {
  std::string raw;
  for (uint32_t y = 0; y < height; ++y) {
    raw.push_back('\0');  // filter type None
    for (uint32_t x = 0; x < width; ++x) raw.push_back(static_cast<char>((x * 37 + y * 11) & 0xff));
  }
  std::string z = "\x78\x01";
  z.push_back('\x01');  // BFINAL, stored
  const auto len = static_cast<uint16_t>(raw.size());
  z.push_back(static_cast<char>(len & 0xff));
  z.push_back(static_cast<char>(len >> 8));
  z.push_back(static_cast<char>(~len & 0xff));
  z.push_back(static_cast<char>((~len >> 8) & 0xff));
  z += raw;
  uint32_t a = 1, b = 0;
  for (unsigned char c : raw) {
    a = (a + c) % 65521;
    b = (b + a) % 65521;
  }
  AppendU32(z, (b << 16) | a);
  return Chunk("IDAT", z);
}

std::string Iend() { return Chunk("IEND", ""); }

std::string Png(const std::vector<std::string>& extra_chunks, uint32_t width = 4, uint32_t height = 3) {
  std::string png(kPngSignature);
  png += Ihdr(width, height);
  for (const std::string& c : extra_chunks) png += c;
  png += Idat(width, height);
  png += Iend();
  return png;
}

std::string Itxt(std::string_view keyword, std::string_view text, char flag = 0) {
  std::string data(keyword);
  data.push_back('\0');
  data.push_back(flag);
  data.push_back('\0');
  data += "en";  // a language tag and translated keyword, which baking ignores
  data.push_back('\0');
  data += "Badge";
  data.push_back('\0');
  data.append(text);
  return Chunk("iTXt", data);
}

std::string Text(std::string_view type, std::string_view keyword, std::string_view text) {
  std::string data(keyword);
  data.push_back('\0');
  data.append(text);
  return Chunk(type, data);
}

struct PngChunkView {
  std::string type;
  std::string data;
};

// Splits a well-formed PNG (test output) into its chunks.
std::vector<PngChunkView> Chunks(std::string_view png) {
  std::vector<PngChunkView> out;
  size_t pos = 8;
  while (pos + 12 <= png.size()) {
    const uint32_t len = (uint32_t{static_cast<unsigned char>(png[pos])} << 24) |
                         (uint32_t{static_cast<unsigned char>(png[pos + 1])} << 16) |
                         (uint32_t{static_cast<unsigned char>(png[pos + 2])} << 8) |
                         uint32_t{static_cast<unsigned char>(png[pos + 3])};
    out.push_back({std::string(png.substr(pos + 4, 4)), std::string(png.substr(pos + 8, len))});
    pos += 12 + len;
  }
  return out;
}

const char kPlainSvg[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<!-- a badge image -->\n"
    "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox='0 0 10 10'>\n"
    "  <title>Badge &amp; friends</title>\n"
    "  <circle cx=\"5\" cy=\"5\" r=\"4\" fill='#e44d26'/>\n"
    "</svg>\n";

std::string Svg(std::string_view root_attributes, std::string_view children) {
  return "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"" +
         std::string(root_attributes) + ">\n" + std::string(children) +
         "\n  <rect width=\"1\" height=\"1\"/>\n</svg>\n";
}

BakedPayload Payload(BadgeKind kind, PayloadForm form, std::string data, std::string verify_url = "") {
  BakedPayload p;
  p.kind = kind;
  p.form = form;
  p.data = std::move(data);
  p.verify_url = std::move(verify_url);
  return p;
}

// Expects a refusal with `code` whose message contains `needle`.
template <typename T>
void ExpectRefused(const Result<T>& result, StatusCode code, std::string_view needle) {
  ASSERT_FALSE(result.ok()) << "expected a refusal mentioning '" << needle << "'";
  EXPECT_EQ(result.status().code(), code) << result.status().message();
  EXPECT_NE(result.status().message().find(needle), std::string::npos)
      << "message '" << result.status().message() << "' does not mention '" << needle << "'";
}

template <typename T>
void ExpectInvalid(const Result<T>& result, std::string_view needle) {
  ExpectRefused(result, StatusCode::kInvalidArgument, needle);
}

// ---------------------------------------------------------------------------
// Detection and classification.

TEST(Baking, Crc32KnownAnswers) {
  EXPECT_EQ(PngCrc32("123456789"), 0xCBF43926u);
  EXPECT_EQ(PngCrc32("IEND"), 0xAE426082u);
  EXPECT_EQ(PngCrc32(""), 0u);
}

TEST(Baking, DetectsImageFormat) {
  EXPECT_EQ(*DetectImageFormat(Png({})), ImageFormat::kPng);
  EXPECT_EQ(*DetectImageFormat(kPlainSvg), ImageFormat::kSvg);
  EXPECT_EQ(*DetectImageFormat("\xEF\xBB\xBF  <svg/>"), ImageFormat::kSvg);
  EXPECT_EQ(*DetectImageFormat("<!-- c --><?pi x?><svg:svg xmlns:svg='http://www.w3.org/2000/svg'/>"),
            ImageFormat::kSvg);
  ExpectInvalid(DetectImageFormat(""), "not a PNG or SVG image");
  ExpectInvalid(DetectImageFormat("GIF89a"), "not a PNG or SVG image");
  ExpectInvalid(DetectImageFormat("<html><body/></html>"), "root element is <html>, not svg");
  ExpectInvalid(DetectImageFormat("<!DOCTYPE svg [<!ENTITY a 'b'>]><svg/>"), "internal subset");
  ExpectInvalid(DetectImageFormat("\xFF\xFE<\0s\0"), "UTF-16");
}

TEST(Baking, ClassifiesPayloads) {
  EXPECT_EQ(*ClassifyPayload(kAssertionJson), PayloadForm::kJson);
  EXPECT_EQ(*ClassifyPayload("  {}\n"), PayloadForm::kJson);
  EXPECT_EQ(*ClassifyPayload(kJws), PayloadForm::kJws);
  EXPECT_EQ(*ClassifyPayload(kUrl), PayloadForm::kUrl);
  EXPECT_EQ(*ClassifyPayload("HTTP://example.org"), PayloadForm::kUrl);
  ExpectInvalid(ClassifyPayload("{verify:{\"url\":\"http://example.org\"}}"), "does not parse");
  ExpectInvalid(ClassifyPayload("[1,2]"), "neither");
  ExpectInvalid(ClassifyPayload("a.b"), "neither");
  ExpectInvalid(ClassifyPayload("a..c"), "neither");
  ExpectInvalid(ClassifyPayload("a.b+.c"), "neither");
  ExpectInvalid(ClassifyPayload("ftp://example.org/a"), "neither");
  ExpectInvalid(ClassifyPayload("https://"), "neither");
  ExpectInvalid(ClassifyPayload("https://exa mple.org"), "neither");
  ExpectInvalid(ClassifyPayload("\xC3\x28"), "UTF-8");
  ExpectInvalid(ClassifyPayload("\xED\xA0\x80"), "UTF-8");  // a surrogate
  ExpectInvalid(ClassifyPayload(std::string("{\"a\":\"\0\"}", 9)), "NUL");
  ExpectInvalid(ClassifyPayload(""), "empty");
  ExpectInvalid(ClassifyPayload("{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}"),
                "nests deeper");
}

// ---------------------------------------------------------------------------
// PNG extraction.

TEST(PngBaking, ExtractsEachKindAndForm) {
  struct Case {
    std::string chunk;
    BadgeKind kind;
    PayloadForm form;
    std::string data;
  };
  const std::vector<Case> cases = {
      {Itxt("openbadges", kAssertionJson), BadgeKind::kAssertion, PayloadForm::kJson, kAssertionJson},
      {Itxt("openbadges", std::string("\n  ") + kJws + " \n"), BadgeKind::kAssertion, PayloadForm::kJws,
       kJws},
      {Itxt("openbadgecredential", kCredentialJson), BadgeKind::kCredential, PayloadForm::kJson,
       kCredentialJson},
      {Itxt("openbadgecredential", kJws), BadgeKind::kCredential, PayloadForm::kJws, kJws},
      {Text("tEXt", "openbadges", kUrl), BadgeKind::kAssertion, PayloadForm::kUrl, kUrl},
  };
  for (const Case& c : cases) {
    auto got = ExtractBadge(Png({Text("tEXt", "Software", "test"), c.chunk}));
    ASSERT_TRUE(got.ok()) << got.status().message();
    EXPECT_EQ(got->format, ImageFormat::kPng);
    EXPECT_EQ(got->kind, c.kind);
    EXPECT_EQ(got->form, c.form);
    EXPECT_EQ(got->data, c.data);
    EXPECT_TRUE(got->verify_url.empty());
  }
}

TEST(PngBaking, BadgeChunkAfterImageDataIsFound) {
  std::string png(kPngSignature);
  png += Ihdr(2, 2) + Idat(2, 2) + Itxt("openbadges", kUrl) + Iend();
  auto got = ExtractBadge(png);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->data, kUrl);
}

TEST(PngBaking, LegacyLatin1TextBecomesUtf8) {
  auto got = ExtractPngBadge(Png({Text("tEXt", "openbadges", "{\"name\":\"caf\xE9\"}")}), ImageLimits());
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_TRUE(got->legacy_text_chunk);
  EXPECT_EQ(got->text, "{\"name\":\"caf\xC3\xA9\"}");
}

TEST(PngBaking, UnbakedImageIsNotFound) {
  const std::string png = Png(
      {Text("tEXt", "Software", "test"), Itxt("openbadgesx", kUrl), Text("tEXt", "Comment", "openbadges")});
  ExpectRefused(ExtractBadge(png), StatusCode::kNotFound, "no Open Badges data in this PNG");
}

TEST(PngBaking, RefusesBrokenStructure) {
  const std::string good = Png({Itxt("openbadges", kUrl)});
  const std::string sig(kPngSignature);
  ExpectInvalid(ExtractBadge(good.substr(0, 8)), "ends without an IEND");
  ExpectInvalid(ExtractBadge(good.substr(0, 15)), "truncated PNG chunk header at offset 8");
  ExpectInvalid(ExtractBadge(good.substr(0, 25)), "truncated PNG chunk 'IHDR' at offset 8");
  ExpectInvalid(ExtractBadge(good.substr(0, good.size() - 12)), "ends without an IEND");
  ExpectInvalid(ExtractBadge(good.substr(0, good.size() - 1)), "truncated PNG chunk header");

  std::string bad_crc = good;
  bad_crc[33 + 8 + 3] ^= 0x20;  // a byte of the iTXt data, right after IHDR
  ExpectInvalid(ExtractBadge(bad_crc), "bad CRC in PNG chunk 'iTXt' at offset 33");

  ExpectInvalid(ExtractBadge(sig + Itxt("openbadges", kUrl) + Ihdr(2, 2) + Idat(2, 2) + Iend()),
                "does not start with IHDR");
  ExpectInvalid(ExtractBadge(sig + Ihdr(2, 2) + Idat(2, 2)), "ends without an IEND");
  ExpectInvalid(ExtractBadge(sig + Ihdr(2, 2) + Ihdr(2, 2) + Idat(2, 2) + Iend()), "duplicate IHDR");
  ExpectInvalid(ExtractBadge(sig + Ihdr(2, 2) + Iend()), "no image data");
  ExpectInvalid(ExtractBadge(good + "junk"), "4 bytes after IEND");
  ExpectInvalid(ExtractBadge(sig + Ihdr(2, 2) + Idat(2, 2) + Chunk("IEND", "x")), "IEND chunk is not empty");
  ExpectInvalid(ExtractBadge(sig + Chunk("IHDR", "short") + Idat(2, 2) + Iend()), "IHDR is 5 bytes");
  ExpectInvalid(ExtractBadge(sig + Ihdr(0, 2) + Idat(2, 2) + Iend()), "invalid dimensions 0x2");
  ExpectInvalid(ExtractBadge(sig + Ihdr(2, 2) + Chunk("a1b2", "") + Idat(2, 2) + Iend()),
                "invalid PNG chunk type at offset 33");
  ExpectInvalid(ExtractBadge("\x89PNG\r\n\x1a\x0b" + good.substr(8)), "not a PNG or SVG image");
  ExpectInvalid(ExtractPngBadge("\x89PNG\r\n\x1a\x0b" + good.substr(8), ImageLimits()), "signature");

  std::string ihdr_data;
  AppendU32(ihdr_data, 2);
  AppendU32(ihdr_data, 2);
  ihdr_data += std::string("\x08\x05\x00\x00\x00", 5);
  ExpectInvalid(ExtractBadge(sig + Chunk("IHDR", ihdr_data) + Idat(2, 2) + Iend()), "colour type 5");
}

TEST(PngBaking, RefusesOverLimits) {
  const std::string good = Png({Itxt("openbadges", kAssertionJson)});
  ImageLimits limits;
  limits.max_image_bytes = good.size() - 1;
  ExpectInvalid(ExtractBadge(good, limits), "over the limit of " + std::to_string(good.size() - 1));

  limits = ImageLimits();
  limits.max_png_chunk_bytes = 100;
  ExpectInvalid(ExtractBadge(good, limits), "chunk 'iTXt' at offset 33 is");
  ExpectInvalid(ExtractBadge(good, limits), "over the chunk limit of 100");

  ExpectInvalid(ExtractBadge(Png({}, 16385, 1)), "16385x1 pixels, over the limit of 16384x16384");
  ExpectInvalid(ExtractBadge(Png({}, 1, 20000)), "1x20000 pixels");
  limits = ImageLimits();
  limits.max_png_width = 3;
  ExpectInvalid(ExtractBadge(Png({}, 4, 3), limits), "over the limit of 3x16384");

  // A length field over 2^31-1, and one that runs past the end of the input.
  std::string huge(kPngSignature);
  huge += Ihdr(2, 2);
  huge += std::string("\x80\x00\x00\x00IDAT", 8);
  huge += std::string(16, '\0');
  ExpectInvalid(ExtractBadge(huge), "over the PNG maximum");
  std::string past(kPngSignature);
  past += Ihdr(2, 2);
  past += std::string("\x00\x10\x00\x00IDAT", 8);
  past += std::string(16, '\0');
  ExpectInvalid(ExtractBadge(past), "truncated PNG chunk 'IDAT' at offset 33: declares 1048576 bytes");

  limits = ImageLimits();
  limits.max_payload_bytes = 10;
  ExpectInvalid(ExtractBadge(good, limits), "over the limit of 10");
}

TEST(PngBaking, RefusesCompressedAndDuplicateBadgeChunks) {
  ExpectInvalid(
      ExtractBadge(Png({Itxt("openbadges", "x\x9c", 1)})),
      "compressed Open Badges chunk refused: iTXt 'openbadges' at offset 33 has compression flag 1");
  ExpectInvalid(ExtractBadge(Png({Itxt("openbadgecredential", kJws, 1)})), "compression flag 1");
  ExpectInvalid(ExtractBadge(Png({Itxt("openbadges", kJws, 2)})), "invalid iTXt compression flag");
  ExpectInvalid(ExtractBadge(Png({Text("zTXt", "openbadges", std::string("\0x\x9c", 3))})),
                "compressed Open Badges chunk refused: zTXt");
  ExpectInvalid(ExtractBadge(Png({Chunk("iTXt", std::string("openbadges\0", 11))})), "truncated iTXt header");
  ExpectInvalid(ExtractBadge(Png({Chunk("iTXt", std::string("openbadges\0\0\0en", 15))})),
                "language tag is not terminated");

  ExpectInvalid(ExtractBadge(Png({Itxt("openbadges", kUrl), Itxt("openbadges", kUrl)})),
                "more than one Open Badges chunk: iTXt 'openbadges' at offset 33 and iTXt 'openbadges'");
  ExpectInvalid(ExtractBadge(Png({Text("tEXt", "openbadges", kUrl), Itxt("openbadges", kJws)})),
                "more than one Open Badges chunk");
  ExpectInvalid(ExtractBadge(Png({Itxt("openbadges", kJws), Itxt("openbadgecredential", kJws)})),
                "more than one Open Badges chunk");
}

TEST(PngBaking, RefusesBadPayloads) {
  ExpectInvalid(ExtractBadge(Png({Itxt("openbadges", "  \n")})), "chunk in this PNG is empty");
  ExpectInvalid(ExtractBadge(Png({Itxt("openbadges", "{\"a\":")})), "baked JSON does not parse");
  ExpectInvalid(ExtractBadge(Png({Itxt("openbadges", "hello")})), "neither a JSON object");
  ExpectInvalid(ExtractBadge(Png({Itxt("openbadges", "\xFF\xFE")})), "not valid UTF-8");
  ExpectInvalid(ExtractBadge(Png({Itxt("openbadgecredential", kUrl)})), "not a URL");
}

// ---------------------------------------------------------------------------
// PNG baking.

TEST(PngBaking, BakesRightAfterIhdrAndRoundTrips) {
  const std::string unbaked = Png({Text("tEXt", "Software", "test"), Chunk("pHYs", std::string(9, '\1'))});
  const std::vector<BakedPayload> payloads = {
      Payload(BadgeKind::kAssertion, PayloadForm::kJson, kAssertionJson),
      Payload(BadgeKind::kAssertion, PayloadForm::kJws, kJws),
      Payload(BadgeKind::kAssertion, PayloadForm::kUrl, kUrl),
      Payload(BadgeKind::kCredential, PayloadForm::kJson, kCredentialJson),
      Payload(BadgeKind::kCredential, PayloadForm::kJws, kJws),
  };
  for (const BakedPayload& payload : payloads) {
    auto baked = BakeBadge(unbaked, payload);
    ASSERT_TRUE(baked.ok()) << baked.status().message();
    const auto chunks = Chunks(*baked);
    ASSERT_EQ(chunks.size(), 6u);
    EXPECT_EQ(chunks[0].type, "IHDR");
    EXPECT_EQ(chunks[1].type, "iTXt");
    const std::string keyword = payload.kind == BadgeKind::kAssertion ? "openbadges" : "openbadgecredential";
    EXPECT_EQ(chunks[1].data, keyword + std::string(5, '\0') + payload.data);
    EXPECT_EQ(chunks[2].type, "tEXt");
    EXPECT_EQ(chunks[3].type, "pHYs");
    EXPECT_EQ(chunks[4].type, "IDAT");
    EXPECT_EQ(chunks[5].type, "IEND");

    auto again = ExtractBadge(*baked);
    ASSERT_TRUE(again.ok()) << again.status().message();
    EXPECT_EQ(again->format, ImageFormat::kPng);
    EXPECT_EQ(again->kind, payload.kind);
    EXPECT_EQ(again->form, payload.form);
    EXPECT_EQ(again->data, payload.data);
  }
}

TEST(PngBaking, ReplacesEveryExistingBadgeChunk) {
  // Duplicates, a legacy tEXt and a compressed chunk: baking cleans them all up.
  const std::string messy = Png({Text("tEXt", "openbadges", kUrl), Itxt("openbadgecredential", kJws),
                                 Itxt("openbadges", "x", 1), Text("zTXt", "openbadges", "\0x")});
  ExpectInvalid(ExtractBadge(messy), "more than one");
  auto baked = BakeBadge(messy, Payload(BadgeKind::kCredential, PayloadForm::kJson, kCredentialJson));
  ASSERT_TRUE(baked.ok()) << baked.status().message();
  EXPECT_EQ(Chunks(*baked).size(), 4u);  // IHDR, iTXt, IDAT, IEND
  auto got = ExtractBadge(*baked);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->kind, BadgeKind::kCredential);
  EXPECT_EQ(got->data, kCredentialJson);

  auto rebaked = BakeBadge(*baked, Payload(BadgeKind::kAssertion, PayloadForm::kUrl, kUrl));
  ASSERT_TRUE(rebaked.ok()) << rebaked.status().message();
  EXPECT_EQ(rebaked->size(), baked->size() - std::string_view(kCredentialJson).size() -
                                 std::string_view("openbadgecredential").size() +
                                 std::string_view(kUrl).size() + std::string_view("openbadges").size());
  got = ExtractBadge(*rebaked);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->kind, BadgeKind::kAssertion);
  EXPECT_EQ(got->form, PayloadForm::kUrl);
  EXPECT_EQ(got->data, kUrl);
}

TEST(PngBaking, BakeRefusesBadInputAndPayloads) {
  std::string bad_crc = Png({});
  bad_crc[bad_crc.size() - 1] ^= 1;
  ExpectInvalid(BakeBadge(bad_crc, Payload(BadgeKind::kAssertion, PayloadForm::kUrl, kUrl)), "bad CRC");
  const std::string png = Png({});
  ExpectInvalid(BakeBadge(png, Payload(BadgeKind::kAssertion, PayloadForm::kJson, kUrl)), "is url, not json");
  ExpectInvalid(BakeBadge(png, Payload(BadgeKind::kCredential, PayloadForm::kUrl, kUrl)), "not a URL");
  ExpectInvalid(BakeBadge(png, Payload(BadgeKind::kAssertion, PayloadForm::kJws, "a.b")), "neither");
  ExpectInvalid(BakeBadge(png, Payload(BadgeKind::kAssertion, PayloadForm::kJws, kJws, kUrl)),
                "verify_url applies only");
  ImageLimits limits;
  limits.max_payload_bytes = 8;
  ExpectInvalid(BakeBadge(png, Payload(BadgeKind::kAssertion, PayloadForm::kUrl, kUrl), limits),
                "over the limit of 8");
  limits = ImageLimits();
  limits.max_image_bytes = png.size() + 10;
  ExpectInvalid(BakeBadge(png, Payload(BadgeKind::kAssertion, PayloadForm::kUrl, kUrl), limits),
                "baked PNG would be");
  ExpectInvalid(BakePngBadge(png, BadgeKind::kAssertion, std::string("a\0b", 3), ImageLimits()), "NUL");
}

// ---------------------------------------------------------------------------
// SVG extraction.

TEST(SvgBaking, ExtractsAssertionWithCdataAndVerifyUrl) {
  const std::string svg =
      Svg("\n     xmlns:openbadges=\"http://openbadges.org\"",
          "  <openbadges:assertion verify=\"https://example.org/assertions/123\">\n    <![CDATA[\n" +
              std::string(kAssertionJson) + "\n    ]]>\n  </openbadges:assertion>");
  auto got = ExtractBadge(svg);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->format, ImageFormat::kSvg);
  EXPECT_EQ(got->kind, BadgeKind::kAssertion);
  EXPECT_EQ(got->form, PayloadForm::kJson);
  EXPECT_EQ(got->data, kAssertionJson);
  EXPECT_EQ(got->verify_url, "https://example.org/assertions/123");
}

TEST(SvgBaking, ExtractsVerifyAttributeForms) {
  auto url = ExtractBadge(Svg(" xmlns:openbadges='http://openbadges.org'",
                              "<openbadges:assertion verify='https://example.org/a?x=1&amp;y=2'/>"));
  ASSERT_TRUE(url.ok()) << url.status().message();
  EXPECT_EQ(url->form, PayloadForm::kUrl);
  EXPECT_EQ(url->data, "https://example.org/a?x=1&y=2");
  EXPECT_TRUE(url->verify_url.empty());

  auto jws = ExtractBadge(
      Svg(" xmlns:openbadges=\"https://purl.imsglobal.org/ob/v2p0\"",
          std::string("<openbadges:assertion verify=\"") + kJws + "\"><![CDATA[]]> </openbadges:assertion>"));
  ASSERT_TRUE(jws.ok()) << jws.status().message();
  EXPECT_EQ(jws->form, PayloadForm::kJws);
  EXPECT_EQ(jws->data, kJws);

  auto vcjwt = ExtractBadge(
      Svg(" xmlns:openbadges=\"https://purl.imsglobal.org/ob/v3p0\"",
          std::string("<openbadges:credential verify=\"") + kJws + "\"></openbadges:credential>"));
  ASSERT_TRUE(vcjwt.ok()) << vcjwt.status().message();
  EXPECT_EQ(vcjwt->kind, BadgeKind::kCredential);
  EXPECT_EQ(vcjwt->form, PayloadForm::kJws);
  EXPECT_EQ(vcjwt->data, kJws);
}

TEST(SvgBaking, ExtractsCredentialJsonFromTextWithReferences) {
  // Not CDATA: JSON as escaped text, a comment and a processing instruction in between.
  const std::string svg = Svg(" xmlns:openbadges=\"https://purl.imsglobal.org/ob/v3p0\"",
                              "<openbadges:credential>{&quot;id&quot;:<!-- c -->&#32;&quot;x&#x2F;y&quot;,"
                              "<?pi ?>&quot;n&quot;:&quot;&lt;&amp;&gt;&apos;&#xE9;&quot;}"
                              "</openbadges:credential>");
  auto got = ExtractBadge(svg);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->kind, BadgeKind::kCredential);
  EXPECT_EQ(got->form, PayloadForm::kJson);
  EXPECT_EQ(got->data, "{\"id\": \"x/y\",\"n\":\"<&>'\xC3\xA9\"}");
}

TEST(SvgBaking, FindsBadgeElementsByNamespaceNotSpelling) {
  const std::string json = kCredentialJson;
  // Another prefix, and a default namespace on the element itself.
  for (const std::string& svg :
       {Svg(" xmlns:ob='https://purl.imsglobal.org/ob/v3p0'",
            "<ob:credential><![CDATA[" + json + "]]></ob:credential>"),
        Svg("", "<g><credential xmlns=\"https://purl.imsglobal.org/ob/v3p0\"><![CDATA[" + json +
                    "]]></credential></g>")}) {
    auto got = ExtractBadge(svg);
    ASSERT_TRUE(got.ok()) << got.status().message() << "\n" << svg;
    EXPECT_EQ(got->kind, BadgeKind::kCredential);
    EXPECT_EQ(got->data, json);
  }
  // Somebody else's "assertion" element is not a badge.
  ExpectRefused(ExtractBadge(Svg(" xmlns:x='urn:other'", "<x:assertion verify='https://e.org/'/>")),
                StatusCode::kNotFound, "no Open Badges data in this SVG");
  // The baking prefix bound to the wrong namespace, or not at all, is an error.
  ExpectInvalid(ExtractBadge(Svg(" xmlns:openbadges='urn:other'",
                                 "<openbadges:assertion verify='" + std::string(kUrl) + "'/>")),
                "is in namespace 'urn:other', not an Open Badges namespace");
  ExpectInvalid(ExtractBadge(Svg("", "<openbadges:assertion verify='" + std::string(kUrl) + "'/>")),
                "has no xmlns:openbadges declaration");
}

TEST(SvgBaking, AcceptsExternalDoctypeOnly) {
  const std::string svg =
      "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
      "<!DOCTYPE svg PUBLIC \"-//W3C//DTD SVG 1.1//EN\" "
      "\"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd\">\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:openbadges=\"https://purl.imsglobal.org/ob/v3p0\">"
      "<openbadges:credential verify=\"" +
      std::string(kJws) + "\"/></svg>";
  auto got = ExtractBadge(svg);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->data, kJws);
}

TEST(SvgBaking, RefusesEntityDeclarations) {
  const std::string billion_laughs =
      "<?xml version=\"1.0\"?>\n<!DOCTYPE svg [\n <!ENTITY lol \"lol\">\n"
      " <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n]>\n"
      "<svg xmlns:openbadges=\"http://openbadges.org\"><openbadges:assertion verify=\"&lol2;\"/></svg>";
  ExpectInvalid(ExtractBadge(billion_laughs), "DOCTYPE with an internal subset refused");
  const std::string xxe =
      "<!DOCTYPE svg [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>"
      "<svg "
      "xmlns:openbadges=\"http://openbadges.org\"><openbadges:assertion>&xxe;</openbadges:assertion></svg>";
  ExpectInvalid(ExtractBadge(xxe), "internal subset refused");
  ExpectInvalid(ExtractSvgBadge("<!ENTITY a 'b'><svg/>", ImageLimits()), "ENTITY declaration refused");
  ExpectInvalid(ExtractSvgBadge("<svg><!ENTITY a 'b'></svg>", ImageLimits()), "ENTITY declaration refused");
  ExpectInvalid(ExtractSvgBadge("<svg><!ELEMENT a ANY></svg>", ImageLimits()),
                "unsupported markup declaration");
  // Entities an external DTD might define are never expanded.
  ExpectInvalid(ExtractBadge(Svg(" xmlns:openbadges='http://openbadges.org'",
                                 "<openbadges:assertion>&ns_badge;</openbadges:assertion>")),
                "undefined entity reference '&ns_badge;'");
  ExpectInvalid(ExtractSvgBadge("<svg a='&bogus;'/>", ImageLimits()), "undefined entity reference");
  ExpectInvalid(ExtractSvgBadge("<svg>&#0;</svg>", ImageLimits()), "invalid character reference '&#0;'");
  ExpectInvalid(ExtractSvgBadge("<svg>&#x110000;</svg>", ImageLimits()), "invalid character reference");
  ExpectInvalid(ExtractSvgBadge("<svg>&#xD800;</svg>", ImageLimits()), "invalid character reference");
  ExpectInvalid(ExtractSvgBadge("<svg>a & b</svg>", ImageLimits()),
                "malformed character or entity reference");
}

TEST(SvgBaking, RefusesMalformedXml) {
  const ImageLimits limits;
  struct Case {
    std::string svg;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {"<svg><g></svg>", "unbalanced tags: </svg> at offset 8 does not close <g>"},
      {"<svg><g>", "unbalanced tags: <g> is not closed"},
      {"<svg></g></svg>", "does not close <svg>"},
      {"<svg/></svg>", "without a start tag"},
      {"<svg/><svg/>", "more than one root element"},
      {"<svg/>text", "text outside the root element"},
      {"hello<svg/>", "not a PNG or SVG image"},
      {"<svg/><![CDATA[x]]>", "CDATA outside the root element"},
      {"<svg><!-- x </svg>", "unterminated comment"},
      {"<svg><![CDATA[ x </svg>", "unterminated CDATA section"},
      {"<svg><?pi </svg>", "unterminated processing instruction"},
      {"<svg a=\"1\" a='2'/>", "duplicate attribute 'a' on <svg>"},
      {"<svg a=1/>", "attribute 'a' value is not quoted"},
      {"<svg a/>", "attribute 'a' has no value"},
      {"<svg a='1'b='2'/>", "expected whitespace"},
      {"<svg a='<'/>", "'<' inside the value of attribute 'a'"},
      {"<svg a='1/>", "unterminated value of attribute 'a'"},
      {"<svg", "unterminated tag <svg>"},
      {"<svg>< g/></svg>", "'<' not followed by a tag name"},
      {"<svg></ g></svg>", "malformed end tag"},
      {std::string("<svg>\0</svg>", 12), "NUL byte at offset 5"},
      {"<?xml version='1.0' encoding='ISO-8859-1'?><svg/>", "encoding 'ISO-8859-1'; only UTF-8"},
      {"<svg/><?xml version='1.0'?>", "XML declaration at offset 6 is only allowed at the very start"},
      {"<!DOCTYPE svg><!DOCTYPE svg><svg/>", "misplaced DOCTYPE"},
      {"<svg><!DOCTYPE svg></svg>", "misplaced DOCTYPE"},
      {"<!DOCTYPE svg SYSTEM 'x.dtd'", "unterminated DOCTYPE"},
      {"<html/>", "root element is <html>, not svg"},
      {"", "not a PNG or SVG image"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.svg);
    ExpectInvalid(ExtractBadge(c.svg, limits), c.needle);
  }
}

TEST(SvgBaking, RefusesOverLimitsAndDeepNesting) {
  std::string deep = "<svg>";
  for (int i = 0; i < 300; ++i) deep += "<g>";
  for (int i = 0; i < 300; ++i) deep += "</g>";
  deep += "</svg>";
  ExpectInvalid(ExtractBadge(deep), "SVG nests deeper than 256 elements");
  ImageLimits limits;
  limits.max_svg_depth = 400;
  ExpectRefused(ExtractBadge(deep, limits), StatusCode::kNotFound, "no Open Badges data in this SVG");

  limits = ImageLimits();
  limits.max_image_bytes = 100;
  ExpectInvalid(ExtractBadge(kPlainSvg, limits), "over the limit of 100");

  limits = ImageLimits();
  limits.max_payload_bytes = 16;
  ExpectInvalid(ExtractBadge(Svg(" xmlns:openbadges='http://openbadges.org'",
                                 "<openbadges:assertion><![CDATA[" + std::string(kAssertionJson) +
                                     "]]></openbadges:assertion>"),
                             limits),
                "over the limit of 16");
}

TEST(SvgBaking, RefusesDuplicateOrMalformedBadgeElements) {
  const std::string ns =
      " xmlns:openbadges='http://openbadges.org' xmlns:ob3='https://purl.imsglobal.org/ob/v3p0'";
  const std::string one = "<openbadges:assertion verify='" + std::string(kUrl) + "'/>";
  ExpectInvalid(ExtractBadge(Svg(ns, one + one)), "more than one Open Badges element");
  ExpectInvalid(ExtractBadge(Svg(ns, one + "<ob3:credential verify='" + kJws + "'/>")),
                "more than one Open Badges element: <openbadges:assertion>");
  ExpectInvalid(ExtractBadge(Svg(ns, "<openbadges:assertion><g/></openbadges:assertion>")),
                "element <g> at offset");
  ExpectInvalid(ExtractBadge(Svg(ns, "<openbadges:assertion>  </openbadges:assertion>")),
                "has neither a body nor a verify attribute");
  ExpectInvalid(ExtractBadge(Svg(ns, "<openbadges:assertion><![CDATA[{verify:1}]]></openbadges:assertion>")),
                "baked JSON does not parse");
  ExpectInvalid(ExtractBadge(Svg(ns, "<ob3:credential verify='https://example.org/c'/>")), "not a URL");
}

TEST(SvgBaking, UnbakedImageIsNotFound) {
  ExpectRefused(ExtractBadge(kPlainSvg), StatusCode::kNotFound, "no Open Badges data in this SVG");
  ExpectRefused(ExtractBadge(Svg(" xmlns:openbadges='http://openbadges.org'", "")), StatusCode::kNotFound,
                "no Open Badges data");
}

TEST(SvgBaking, ExtractorsRefuseTheOtherFormat) {
  ExpectInvalid(ExtractSvgBadge(Png({Itxt("openbadges", kUrl)}), ImageLimits()), "NUL byte");
  ExpectInvalid(ExtractPngBadge(kPlainSvg, ImageLimits()), "not a PNG");
}

// ---------------------------------------------------------------------------
// SVG baking.

TEST(SvgBaking, BakesFirstChildAndRoundTrips) {
  const std::vector<BakedPayload> payloads = {
      Payload(BadgeKind::kAssertion, PayloadForm::kJson, kAssertionJson),
      Payload(BadgeKind::kAssertion, PayloadForm::kJson, kAssertionJson, "https://example.org/hosted"),
      Payload(BadgeKind::kAssertion, PayloadForm::kJws, kJws),
      Payload(BadgeKind::kAssertion, PayloadForm::kUrl, "https://example.org/a?x=1&y='2'"),
      Payload(BadgeKind::kCredential, PayloadForm::kJson, kCredentialJson),
      Payload(BadgeKind::kCredential, PayloadForm::kJws, kJws),
  };
  for (const BakedPayload& payload : payloads) {
    auto baked = BakeBadge(kPlainSvg, payload);
    ASSERT_TRUE(baked.ok()) << baked.status().message();
    const bool credential = payload.kind == BadgeKind::kCredential;
    const std::string root = std::string("<svg xmlns:openbadges=\"") +
                             (credential ? "https://purl.imsglobal.org/ob/v3p0" : "http://openbadges.org") +
                             "\" xmlns=\"http://www.w3.org/2000/svg\" viewBox='0 0 10 10'>" +
                             (credential ? "<openbadges:credential" : "<openbadges:assertion");
    EXPECT_NE(baked->find(root), std::string::npos) << *baked;
    // Everything after the badge element is the original, byte for byte.
    const std::string original_rest = std::string(kPlainSvg).substr(std::string(kPlainSvg).find("'>") + 2);
    EXPECT_TRUE(baked->ends_with(original_rest)) << *baked;

    auto got = ExtractBadge(*baked);
    ASSERT_TRUE(got.ok()) << got.status().message() << "\n" << *baked;
    EXPECT_EQ(got->format, ImageFormat::kSvg);
    EXPECT_EQ(got->kind, payload.kind);
    EXPECT_EQ(got->form, payload.form);
    EXPECT_EQ(got->data, payload.data);
    if (payload.form == PayloadForm::kJson && !credential) {
      // Given, or derived from the assertion's http(s) id.
      EXPECT_EQ(got->verify_url, payload.verify_url.empty() ? kUrl : payload.verify_url);
    } else {
      EXPECT_TRUE(got->verify_url.empty());
    }
  }
}

TEST(SvgBaking, WritesTheShapesTheSpecificationsShow) {
  auto jws = BakeBadge(kPlainSvg, Payload(BadgeKind::kAssertion, PayloadForm::kJws, kJws));
  ASSERT_TRUE(jws.ok());
  EXPECT_NE(jws->find(std::string("<openbadges:assertion verify=\"") + kJws + "\"/>"), std::string::npos);
  auto vcjwt = BakeBadge(kPlainSvg, Payload(BadgeKind::kCredential, PayloadForm::kJws, kJws));
  ASSERT_TRUE(vcjwt.ok());
  EXPECT_NE(
      vcjwt->find(std::string("<openbadges:credential verify=\"") + kJws + "\"></openbadges:credential>"),
      std::string::npos);
  auto json = BakeBadge(kPlainSvg, Payload(BadgeKind::kCredential, PayloadForm::kJson, kCredentialJson));
  ASSERT_TRUE(json.ok());
  EXPECT_NE(json->find(std::string("<openbadges:credential><![CDATA[") + kCredentialJson +
                       "]]></openbadges:credential>"),
            std::string::npos);
  auto ob1 = BakeBadge(kPlainSvg, Payload(BadgeKind::kAssertion, PayloadForm::kJson,
                                          R"({"verify":{"type":"hosted","url":"http://example.org/1"}})"));
  ASSERT_TRUE(ob1.ok());
  EXPECT_NE(ob1->find("<openbadges:assertion verify=\"http://example.org/1\"><![CDATA["), std::string::npos);
  auto no_url =
      BakeBadge(kPlainSvg, Payload(BadgeKind::kAssertion, PayloadForm::kJson, R"({"id":"urn:uuid:1"})"));
  ASSERT_TRUE(no_url.ok());
  EXPECT_NE(no_url->find("<openbadges:assertion><![CDATA["), std::string::npos);
}

TEST(SvgBaking, SplitsCdataAroundTerminator) {
  const std::string json = R"({"name":"a]]>b]]]]>c","x":"]]>"})";
  auto baked = BakeBadge(kPlainSvg, Payload(BadgeKind::kCredential, PayloadForm::kJson, json));
  ASSERT_TRUE(baked.ok()) << baked.status().message();
  EXPECT_NE(baked->find("a]]]]><![CDATA[>b"), std::string::npos) << *baked;
  auto got = ExtractBadge(*baked);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->data, json);

  // A reader turns literal CR LF into LF, so carriage returns are written as references.
  const std::string crlf = "{\r\n  \"a\": 1,\r  \"b\": \"]]\"\r\n}";
  baked = BakeBadge(kPlainSvg, Payload(BadgeKind::kCredential, PayloadForm::kJson, crlf));
  ASSERT_TRUE(baked.ok()) << baked.status().message();
  EXPECT_EQ(baked->find('\r'), std::string::npos);
  got = ExtractBadge(*baked);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->data, crlf);
  got = ExtractBadge(Svg(" xmlns:openbadges='http://openbadges.org'",
                         "<openbadges:assertion>\r\n<![CDATA[{\r\n}]]></openbadges:assertion>"));
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->data, "{\n}");
}

TEST(SvgBaking, ReplacesExistingBadgesAndNamespace) {
  // An OB 2.0 assertion (legacy namespace) baked elsewhere, plus a stray copy
  // under another prefix deeper down; baking a credential replaces both and
  // rebinds the prefix.
  const std::string old =
      Svg(" xmlns:openbadges=\"http://openbadges.org\" xmlns:ob='https://purl.imsglobal.org/ob/v2p0'",
          "  <openbadges:assertion verify=\"" + std::string(kUrl) +
              "\">\n  </openbadges:assertion>\n"
              "  <g><ob:assertion verify='" +
              kUrl + "'/></g>");
  ExpectInvalid(ExtractBadge(old), "more than one");
  auto baked = BakeBadge(old, Payload(BadgeKind::kCredential, PayloadForm::kJws, kJws));
  ASSERT_TRUE(baked.ok()) << baked.status().message();
  EXPECT_EQ(baked->find("http://openbadges.org"), std::string::npos) << *baked;
  EXPECT_EQ(baked->find("assertion"), std::string::npos) << *baked;
  EXPECT_NE(baked->find("<g></g>"), std::string::npos) << *baked;
  auto got = ExtractBadge(*baked);
  ASSERT_TRUE(got.ok()) << got.status().message() << "\n" << *baked;
  EXPECT_EQ(got->kind, BadgeKind::kCredential);
  EXPECT_EQ(got->data, kJws);

  // Baking the same kind again keeps the existing declaration.
  auto again = BakeBadge(*baked, Payload(BadgeKind::kCredential, PayloadForm::kJson, kCredentialJson));
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again->find("xmlns:openbadges"), again->rfind("xmlns:openbadges"));
  got = ExtractBadge(*again);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->form, PayloadForm::kJson);
  EXPECT_EQ(got->data, kCredentialJson);
}

TEST(SvgBaking, BakesIntoSelfClosingAndPrefixedRoots) {
  auto baked = BakeBadge("\xEF\xBB\xBF<svg xmlns='http://www.w3.org/2000/svg' />",
                         Payload(BadgeKind::kAssertion, PayloadForm::kUrl, kUrl));
  ASSERT_TRUE(baked.ok()) << baked.status().message();
  EXPECT_EQ(*baked,
            "\xEF\xBB\xBF<svg xmlns:openbadges=\"http://openbadges.org\" "
            "xmlns='http://www.w3.org/2000/svg' ><openbadges:assertion verify=\"" +
                std::string(kUrl) + "\"/></svg>");
  auto prefixed = BakeBadge("<s:svg xmlns:s='http://www.w3.org/2000/svg'/>",
                            Payload(BadgeKind::kCredential, PayloadForm::kJws, kJws));
  ASSERT_TRUE(prefixed.ok()) << prefixed.status().message();
  EXPECT_TRUE(prefixed->ends_with("</openbadges:credential></s:svg>")) << *prefixed;
  auto got = ExtractBadge(*prefixed);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->data, kJws);
}

TEST(SvgBaking, BakeRefusesHostileInput) {
  const BakedPayload payload = Payload(BadgeKind::kAssertion, PayloadForm::kUrl, kUrl);
  ExpectInvalid(BakeBadge("<!DOCTYPE svg [<!ENTITY a 'b'>]><svg/>", payload), "internal subset");
  ExpectInvalid(BakeBadge("<svg><g></svg>", payload), "unbalanced tags");
  ImageLimits limits;
  limits.max_image_bytes = std::string_view(kPlainSvg).size() + 20;
  ExpectInvalid(BakeBadge(kPlainSvg, payload, limits), "baked SVG would be");
  SvgBadgeElement element;
  element.body = std::string("{\0}", 3);
  ExpectInvalid(BakeSvgBadge(kPlainSvg, element, ImageLimits()), "NUL");
}

// ---------------------------------------------------------------------------
// Robustness: every prefix and a deterministic spray of byte flips of baked
// images must be refused or extracted, never crash or hang.

TEST(Baking, SurvivesTruncationAndCorruption) {
  auto png = BakeBadge(Png({}), Payload(BadgeKind::kAssertion, PayloadForm::kJson, kAssertionJson));
  auto svg = BakeBadge(kPlainSvg, Payload(BadgeKind::kCredential, PayloadForm::kJson, kCredentialJson));
  ASSERT_TRUE(png.ok() && svg.ok());
  for (const std::string& image : {*png, *svg}) {
    for (size_t len = 0; len < image.size(); ++len) {
      auto got = ExtractBadge(std::string_view(image).substr(0, len));
      if (got.ok()) {
        // Only an SVG cut inside trailing whitespace can still be whole.
        EXPECT_TRUE(ImageFormat::kSvg == got->format && len >= image.size() - 1) << len;
      }
    }
    uint32_t seed = 12345;
    for (int round = 0; round < 2000; ++round) {
      std::string mutated = image;
      for (int k = 0; k < 3; ++k) {
        seed = seed * 1103515245u + 12345u;
        mutated[(seed >> 8) % mutated.size()] = static_cast<char>(seed >> 24);
      }
      auto got = ExtractBadge(mutated);
      if (got.ok()) {
        auto rebaked = BakeBadge(mutated, *got);
        ASSERT_TRUE(rebaked.ok()) << rebaked.status().message();
        auto again = ExtractBadge(*rebaked);
        ASSERT_TRUE(again.ok()) << again.status().message();
        EXPECT_EQ(again->data, got->data);
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Conformance: real baked images from other implementations (see
// shared/vectors/README.md beside the source tree).

using backpack::testing::VectorsDir;

std::string ReadFile(const std::filesystem::path& path) {
  return backpack::testing::ReadVectorFile(path).value_or(std::string());
}

struct Vector {
  const char* path;
  StatusCode code;  // kOk: extracts
  BadgeKind kind;
  PayloadForm form;
  const char* data_prefix;  // or the message fragment of a refusal
};

TEST(BakingConformance, ExtractsRealBakedImages) {
  const std::filesystem::path dir = VectorsDir();
  if (!std::filesystem::is_directory(dir)) {
    std::printf("shared test vectors not found at %s; skipping\n", dir.string().c_str());
    GTEST_SKIP() << "no shared test vectors at " << dir;
  }
  using enum StatusCode;
  constexpr auto A = BadgeKind::kAssertion;
  constexpr auto C = BadgeKind::kCredential;
  constexpr auto kJson = PayloadForm::kJson;
  constexpr auto kJwsForm = PayloadForm::kJws;
  constexpr auto kUrlForm = PayloadForm::kUrl;
  const Vector vectors[] = {
      {"1edtech-openbadges-validator-core/tests/testfiles/baked_heart.png", kOk, A, kJson,
       "{\n  \"@context\": \"https://w3id.org/openbadges/v2\""},
      {"1edtech-openbadges-validator-core/tests/testfiles/public_domain_heart.png", kNotFound, A, kJson,
       "no Open Badges data in this PNG"},
      {"mozilla-openbadges-bakery/test/baked.svg", kOk, A, kJson,
       "{\"verify\":{\"url\":\"http://example.org\"}}"},
      {"mozilla-openbadges-bakery/test/no-json.svg", kOk, A, kUrlForm, "http://example.org"},
      {"mozilla-openbadges-bakery/test/bad-json.svg", kInvalidArgument, A, kJson,
       "baked JSON does not parse"},
      {"mozilla-openbadges-bakery/test/unbaked.svg", kNotFound, A, kJson, "no Open Badges data in this SVG"},
      {"mozilla-openbadges-bakery/test/unbaked.png", kNotFound, A, kJson, "no Open Badges data in this PNG"},
      {"mozilla-openbadges-backpack/test/data/valid-baked.png", kOk, A, kUrlForm,
       "https://example.org/assertion"},
      {"mozilla-openbadges-backpack/test/data/404.png", kOk, A, kUrlForm, "https://example.org/404"},
      {"1edtech-dc-public-validator/ob20/simple-badge.png", kOk, A, kJson,
       "{\"@context\":\"https://w3id.org/openbadges/v2\",\"type\":\"Assertion\""},
      {"1edtech-dc-public-validator/ob20/assets/robotics-badge.png", kNotFound, A, kJson,
       "no Open Badges data"},
      {"1edtech-dc-public-validator/ob30/simple-json.png", kOk, C, kJson, "{  \"@context\": ["},
      {"1edtech-dc-public-validator/ob30/simple-jwt.png", kOk, C, kJwsForm, "eyJhbGciOiJSUzI1NiIsImp3ayI6"},
      {"1edtech-dc-public-validator/ob30/simple-jwt_v1.png", kOk, C, kJwsForm,
       "eyJhbGciOiJSUzI1NiIsImp3ayI6"},
      // CRLF line ends in the file; XML reads each as one line feed.
      {"1edtech-dc-public-validator/ob30/simple-json.svg", kOk, C, kJson, "{\n      \"@context\": ["},
      {"1edtech-dc-public-validator/ob30/simple-jwt.svg", kOk, C, kJwsForm, "eyJhbGciOiJSUzI1NiIsImp3ayI6"},
      {"1edtech-dc-public-validator/ob30/simple-jwt_v1.svg", kOk, C, kJwsForm,
       "eyJhbGciOiJSUzI1NiIsImp3ayI6"},
      {"1edtech-ob-spec/extracted/ob30-spec-examples/spec-baked-svg-vc-jwt-snippet.svg", kOk, C, kJwsForm,
       "header.payload.signature"},
      {"1edtech-ob-spec/extracted/ob30-spec-examples/spec-baked-svg-embedded-proof-snippet.svg", kOk, C,
       kJson, "{\n        \"@context\": ["},
      {"1edtech-ob-spec/extracted/ob20-spec-examples/baking-spec-example.svg", kInvalidArgument, A, kJson,
       "unbalanced tags"},
  };
  int checked = 0;
  for (const Vector& v : vectors) {
    SCOPED_TRACE(v.path);
    const std::filesystem::path path = dir / v.path;
    ASSERT_TRUE(std::filesystem::is_regular_file(path)) << path;
    const std::string image = ReadFile(path);
    auto got = ExtractBadge(image);
    if (v.code != kOk) {
      ExpectRefused(got, v.code, v.data_prefix);
    } else {
      ASSERT_TRUE(got.ok()) << got.status().message();
      EXPECT_EQ(got->kind, v.kind);
      EXPECT_EQ(got->form, v.form);
      EXPECT_TRUE(got->data.starts_with(v.data_prefix)) << got->data.substr(0, 80);

      // Re-baking the same payload into the same image round-trips.
      auto rebaked = BakeBadge(image, *got);
      ASSERT_TRUE(rebaked.ok()) << rebaked.status().message();
      auto again = ExtractBadge(*rebaked);
      ASSERT_TRUE(again.ok()) << again.status().message();
      EXPECT_EQ(again->data, got->data);
      EXPECT_EQ(again->kind, got->kind);
    }
    ++checked;
  }
  // The bakery's SVG extractor is given a PNG in its own tests: not an SVG.
  ExpectInvalid(ExtractSvgBadge(ReadFile(dir / "mozilla-openbadges-bakery/test/unbaked.png"), ImageLimits()),
                "NUL byte");
  // baked.svg: the verify attribute is the hosted URL and the body's verify.url agrees.
  auto baked = ExtractBadge(ReadFile(dir / "mozilla-openbadges-bakery/test/baked.svg"));
  ASSERT_TRUE(baked.ok());
  EXPECT_EQ(baked->verify_url, "http://example.org");
  std::printf("checked %d vector images\n", checked);
}

TEST(BakingConformance, BakesIntoRealUnbakedImages) {
  const std::filesystem::path dir = VectorsDir();
  if (!std::filesystem::is_directory(dir)) {
    std::printf("shared test vectors not found at %s; skipping\n", dir.string().c_str());
    GTEST_SKIP() << "no shared test vectors at " << dir;
  }
  for (const char* file :
       {"mozilla-openbadges-bakery/test/unbaked.png", "mozilla-openbadges-bakery/test/unbaked.svg",
        "1edtech-openbadges-validator-core/tests/testfiles/public_domain_heart.png",
        "1edtech-dc-public-validator/ob30/simple-json.png",
        "1edtech-dc-public-validator/ob30/simple-jwt.svg"}) {
    SCOPED_TRACE(file);
    const std::string image = ReadFile(dir / file);
    for (const BakedPayload& payload : {Payload(BadgeKind::kAssertion, PayloadForm::kJson, kAssertionJson),
                                        Payload(BadgeKind::kCredential, PayloadForm::kJws, kJws)}) {
      auto baked = BakeBadge(image, payload);
      ASSERT_TRUE(baked.ok()) << baked.status().message();
      auto got = ExtractBadge(*baked);
      ASSERT_TRUE(got.ok()) << got.status().message();
      EXPECT_EQ(got->kind, payload.kind);
      EXPECT_EQ(got->data, payload.data);
    }
  }
}

}  // namespace
}  // namespace backpack::protocol
