#include <gtest/gtest.h>

#include "protocol/email_address.h"
#include "protocol/encoding.h"
#include "protocol/json_depth.h"
#include "protocol/password_hash.h"

namespace backpack::protocol {
namespace {

TEST(EmailAddress, TrimsAndKeepsCase) {
  auto a = CleanEmail("  Ada.Lovelace@Example.ORG\t");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, "Ada.Lovelace@Example.ORG");
  EXPECT_EQ(NormalizeEmail(*a), "ada.lovelace@example.org");
}

TEST(EmailAddress, RefusesMalformed) {
  for (const char* bad : {"", "   ", "no-at-sign", "@example.org", "a@", "a@@b.example", "a b@example.org",
                          "a@exa mple.org", "a@-bad.example", "a@bad-.example", "a@double..dot",
                          "a\r\n@x.example", "<a>@example.org"}) {
    EXPECT_FALSE(CleanEmail(bad).ok()) << bad;
  }
  EXPECT_FALSE(CleanEmail(std::string(65, 'a') + "@example.org").ok());
  EXPECT_FALSE(CleanEmail("a@" + std::string(250, 'b') + ".org").ok());
}

TEST(EmailAddress, NormalisationLeavesNonAsciiAlone) {
  EXPECT_EQ(NormalizeEmail("JÖRG@Example.DE"), "jÖrg@example.de");
}

TEST(Encoding, HexAndBase64Url) {
  EXPECT_EQ(HexEncode(std::string("\x00\xff\x10", 3)), "00ff10");
  EXPECT_EQ(Base64UrlEncode(""), "");
  EXPECT_EQ(Base64UrlEncode("f"), "Zg");
  EXPECT_EQ(Base64UrlEncode("fo"), "Zm8");
  EXPECT_EQ(Base64UrlEncode("foo"), "Zm9v");
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  for (std::string s : std::vector<std::string>{"", "a", "ab", "abc", "abcd", "\xfb\xff\xfe"}) {
    auto d = Base64UrlDecode(Base64UrlEncode(s));
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(*d, s);
  }
  EXPECT_EQ(*Base64UrlDecode("Zm8="), "fo");
  EXPECT_FALSE(Base64UrlDecode("Zm+v").has_value());
  EXPECT_FALSE(Base64UrlDecode("Z").has_value());
  EXPECT_FALSE(Base64UrlDecode("Zh").has_value());  // non-zero leftover bits
}

TEST(Encoding, StandardBase64) {
  // RFC 4648 section 10 test vectors, plus the two characters that differ.
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode("\xfb\xff"), "+/8=");
  EXPECT_EQ(*Base64Decode("+/8="), "\xfb\xff");
  EXPECT_EQ(*Base64Decode("Zm9v\r\nYmFy"), "foobar");  // wrapped, as data: URIs may be
  EXPECT_EQ(*Base64Decode("Zm8"), "fo");
  EXPECT_FALSE(Base64Decode("-_8").has_value());  // the URL alphabet is not base64
  EXPECT_FALSE(Base64Decode("Zm9v!").has_value());
}

TEST(Encoding, PercentEncodingKeepsOnlyUnreservedCharacters) {
  EXPECT_EQ(PercentEncode("AZaz09-._~"), "AZaz09-._~");
  EXPECT_EQ(PercentEncode("mailto:ann@example.org"), "mailto%3Aann%40example.org");
  EXPECT_EQ(PercentEncode("a b+c/d?e=f&g"), "a%20b%2Bc%2Fd%3Fe%3Df%26g");
  EXPECT_EQ(PercentEncode("caf\xc3\xa9"), "caf%C3%A9");
  EXPECT_EQ(PercentEncode(std::string("\0", 1)), "%00");
  EXPECT_EQ(PercentEncode(""), "");
}

TEST(Encoding, CompactJwsShape) {
  EXPECT_TRUE(LooksLikeCompactJws("eyJh.eyJi.c2ln"));
  EXPECT_TRUE(LooksLikeCompactJws("a-_.b.c"));
  for (const char* not_jws : {"", "a.b", "a.b.c.d", ".b.c", "a.b.", "a.b=.c", "a b.c.d", "{\"a\":1}"}) {
    EXPECT_FALSE(LooksLikeCompactJws(not_jws)) << not_jws;
  }
}

TEST(Encoding, Sha256KnownAnswer) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_TRUE(ConstantTimeEquals("same", "same"));
  EXPECT_FALSE(ConstantTimeEquals("same", "sam"));
  EXPECT_FALSE(ConstantTimeEquals("same", "some"));
}

TEST(PasswordHash, RoundTripAndRejects) {
  const std::string salt(16, 's');
  auto h = HashPassword("correct horse", salt, {10, 8, 1});
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->rfind("$scrypt$ln=10,r=8,p=1$", 0), 0u) << *h;
  EXPECT_EQ(h->find("correct"), std::string::npos);
  EXPECT_TRUE(VerifyPassword("correct horse", *h));
  EXPECT_FALSE(VerifyPassword("correct horse ", *h));
  EXPECT_FALSE(VerifyPassword("", *h));
  // Different salt, different hash.
  auto h2 = HashPassword("correct horse", std::string(16, 't'), {10, 8, 1});
  EXPECT_NE(*h, *h2);
  // Malformed stored strings never verify.
  for (const std::string& bad : std::vector<std::string>{"", "$scrypt$", "$scrypt$ln=10,r=8,p=1$", "$scrypt$ln=99,r=8,p=1$c2FsdA$AAAA",
                          "$bcrypt$whatever", h->substr(0, h->size() - 2)}) {
    EXPECT_FALSE(VerifyPassword("correct horse", bad)) << bad;
  }
  EXPECT_FALSE(HashPassword("x", "short salt", {10, 8, 1}).ok());
}

TEST(PasswordHash, KnownScryptVector) {
  // RFC 7914 section 12, second vector: P="password", S="NaCl", N=1024, r=8, p=16, dkLen=64.
  // Our key is 32 bytes, the first half of the RFC's output.
  const std::string stored = "$scrypt$ln=10,r=8,p=16$" + Base64UrlEncode("NaCl") + "$" +
                             Base64UrlEncode(std::string(
                                 "\xfd\xba\xbe\x1c\x9d\x34\x72\x00\x78\x56\xe7\x19\x0d\x01\xe9\xfe"
                                 "\x7c\x6a\xd7\xcb\xc8\x23\x78\x30\xe7\x73\x76\x63\x4b\x37\x31\x62",
                                 32));
  EXPECT_TRUE(VerifyPassword("password", stored));
  EXPECT_FALSE(VerifyPassword("passwore", stored));
}

TEST(JsonDepth, CountsNestingOutsideStrings) {
  EXPECT_EQ(JsonNestingDepth("", 10), 0);
  EXPECT_EQ(JsonNestingDepth("{\"a\":[1,{\"b\":[]}]}", 10), 4);
  EXPECT_EQ(JsonNestingDepth("{\"a\":\"[[[[{{\\\"\"}", 10), 1);  // brackets and an escaped quote in a string
  EXPECT_EQ(JsonNestingDepth("[][][]", 10), 1);
  EXPECT_EQ(JsonNestingDepth("]]]][", 10), 1);  // stray closers do not go negative
  // Stops one past the limit, however deep the input.
  EXPECT_EQ(JsonNestingDepth(std::string(100000, '['), 64), 65);
}

}  // namespace
}  // namespace backpack::protocol
