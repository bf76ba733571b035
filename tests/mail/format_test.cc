// Message formatting: headers, dates, quoted-printable, encoded-words,
// header injection, envelope addresses and the retry schedule.
#include <cctype>
#include <chrono>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "daemon/mail.h"
#include "daemon/mail_internal.h"
#include "tests/mail/test_support.h"

namespace backpack::mail {
namespace {

using test_support::DecodeBase64;
using test_support::DecodeHeaderValue;
using test_support::DecodeQuotedPrintable;
using test_support::ParseMessage;

std::chrono::system_clock::time_point At(std::time_t seconds) {
  return std::chrono::system_clock::from_time_t(seconds);
}

constexpr std::time_t kTuesday = 1709622489;  // 2024-03-05 07:08:09 UTC

std::vector<std::string> SplitCrlf(std::string_view text) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find("\r\n", pos);
    if (end == std::string_view::npos) end = text.size();
    lines.emplace_back(text.substr(pos, end - pos));
    pos = end + 2;
  }
  return lines;
}

bool OnlyCrlfLineEnds(std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) return false;
    if (text[i] == '\r' && (i + 1 == text.size() || text[i + 1] != '\n')) return false;
  }
  return true;
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t length = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (length == 0 || i + length > s.size()) return false;
    for (size_t k = 1; k < length; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    }
    i += length;
  }
  return true;
}

TEST(FormatMessageTest, WritesHeadersInOrderWithCrlf) {
  const Message message{"Ada <ada@example.org>", "Verify your email", "Hello\nWorld\n"};
  auto text = FormatMessage(message, "backpackd <noreply@example.com>", At(kTuesday), "abc@example.com");
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(*text,
            "Date: Tue, 05 Mar 2024 07:08:09 +0000\r\n"
            "From: backpackd <noreply@example.com>\r\n"
            "To: Ada <ada@example.org>\r\n"
            "Subject: Verify your email\r\n"
            "Message-ID: <abc@example.com>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n"
            "\r\n"
            "Hello\r\n"
            "World\r\n");
}

TEST(FormatMessageTest, DateIsRfc5322InUtcAndMessageIdIsBracketedOnce) {
  const Message message{"ada@example.org", "s", "b\n"};
  auto text = FormatMessage(message, "noreply@example.com", At(946684799), "<id@example.com>");
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  const auto parsed = ParseMessage(*text);
  EXPECT_EQ(parsed.Header("Date"), "Fri, 31 Dec 1999 23:59:59 +0000");
  EXPECT_EQ(parsed.Header("Message-ID"), "<id@example.com>");

  auto early = FormatMessage(message, "noreply@example.com", At(kTuesday - 7 * 3600), "id@example.com");
  ASSERT_TRUE(early.ok());
  EXPECT_EQ(ParseMessage(*early).Header("Date"), "Tue, 05 Mar 2024 00:08:09 +0000");
}

TEST(FormatMessageTest, RefusesHeaderInjection) {
  const auto now = At(kTuesday);
  const std::string from = "backpackd <noreply@example.com>";
  const struct {
    Message message;
    std::string from;
    std::string id;
  } cases[] = {
      {{"ada@example.org\r\nBcc: eve@example.net", "s", "b"}, from, "id@x"},
      {{"ada@example.org\nBcc: eve@example.net", "s", "b"}, from, "id@x"},
      {{"ada@example.org\rBcc: eve@example.net", "s", "b"}, from, "id@x"},
      {{std::string("ada@example.org\0x", 17), "s", "b"}, from, "id@x"},
      {{"ada@example.org", "Hello\r\nBcc: eve@example.net", "b"}, from, "id@x"},
      {{"ada@example.org", "Hello\nX-Evil: 1", "b"}, from, "id@x"},
      {{"ada@example.org", std::string("Hello\0there", 11), "b"}, from, "id@x"},
      {{"ada@example.org", "s", "b"}, "evil <a@b>\r\nBcc: eve@example.net", "id@x"},
      {{"ada@example.org", "s", "b"}, from, "id@x>\r\nBcc: eve@example.net"},
  };
  for (const auto& c : cases) {
    auto text = FormatMessage(c.message, c.from, now, c.id);
    ASSERT_FALSE(text.ok()) << "accepted: to=" << c.message.to << " subject=" << c.message.subject;
    EXPECT_EQ(text.status().code(), StatusCode::kInvalidArgument);
  }
  // Line breaks in the body are content, not injection.
  EXPECT_TRUE(FormatMessage({"ada@example.org", "s", "a\r\nBcc: x\n"}, from, now, "id@x").ok());
}

TEST(QuotedPrintableTest, EscapesWhatMustBeEscaped) {
  using internal::EncodeQuotedPrintable;
  EXPECT_EQ(EncodeQuotedPrintable("a=b\n"), "a=3Db\r\n");
  EXPECT_EQ(EncodeQuotedPrintable("trailing space \n"), "trailing space=20\r\n");
  EXPECT_EQ(EncodeQuotedPrintable("trailing tab\t\n"), "trailing tab=09\r\n");
  EXPECT_EQ(EncodeQuotedPrintable("inner space kept\n"), "inner space kept\r\n");
  EXPECT_EQ(EncodeQuotedPrintable("caf\xc3\xa9\n"), "caf=C3=A9\r\n");
  EXPECT_EQ(EncodeQuotedPrintable("no final newline"), "no final newline\r\n");
  EXPECT_EQ(EncodeQuotedPrintable("crlf\r\nlf\n\nend\n"), "crlf\r\nlf\r\n\r\nend\r\n");
  EXPECT_EQ(EncodeQuotedPrintable("bare\rcr\n"), "bare=0Dcr\r\n");
  EXPECT_EQ(EncodeQuotedPrintable(""), "");
}

TEST(QuotedPrintableTest, SoftBreaksKeepLinesWithin76) {
  using internal::EncodeQuotedPrintable;
  EXPECT_EQ(EncodeQuotedPrintable(std::string(76, 'x') + "\n"), std::string(76, 'x') + "\r\n");
  EXPECT_EQ(EncodeQuotedPrintable(std::string(77, 'x') + "\n"), std::string(75, 'x') + "=\r\n" + "xx\r\n");

  std::string body;
  body += std::string(200, 'x') + "\n";
  for (int i = 0; i < 60; ++i) body += "\xc3\xa9";  // 'é' is 6 encoded characters
  body += "\n";
  body += "a=b " + std::string(100, '=') + " \n";
  body += "words and spaces, then a long tail of spaces" + std::string(90, ' ') + "\n";
  body += ".leading dot\n";

  const std::string encoded = EncodeQuotedPrintable(body);
  EXPECT_TRUE(OnlyCrlfLineEnds(encoded));
  for (const std::string& line : SplitCrlf(encoded)) {
    EXPECT_LE(line.size(), 76u) << line;
    EXPECT_TRUE(line.empty() || (line.back() != ' ' && line.back() != '\t')) << "[" << line << "]";
    for (size_t i = 0; i < line.size(); ++i) {
      const auto c = static_cast<unsigned char>(line[i]);
      EXPECT_TRUE(c >= 0x20 && c < 0x7f) << line;
      if (c == '=' && i + 1 < line.size()) {  // a complete escape, never split
        ASSERT_LE(i + 3, line.size()) << line;
        EXPECT_TRUE(std::isxdigit(static_cast<unsigned char>(line[i + 1])) &&
                    std::isxdigit(static_cast<unsigned char>(line[i + 2])))
            << line;
      }
    }
  }
  EXPECT_EQ(DecodeQuotedPrintable(encoded), body);
}

TEST(HeaderTextTest, AsciiSubjectStaysReadableAndFolds) {
  using internal::EncodeHeaderText;
  EXPECT_EQ(EncodeHeaderText("Verify your email", 9), "Verify your email");

  std::string subject;
  for (int i = 0; i < 30; ++i) subject += "word" + std::to_string(i) + " ";
  subject += "end";
  const std::string folded = EncodeHeaderText(subject, 9);
  const auto lines = SplitCrlf(folded);
  ASSERT_GT(lines.size(), 1u);
  EXPECT_LE(lines[0].size() + 9, 78u);
  for (size_t i = 1; i < lines.size(); ++i) {
    EXPECT_LE(lines[i].size(), 78u);
    EXPECT_EQ(lines[i].front(), ' ');  // a continuation line
  }
  EXPECT_EQ(DecodeHeaderValue(folded), subject);
}

TEST(HeaderTextTest, NonAsciiSubjectBecomesEncodedWords) {
  using internal::EncodeHeaderText;
  const std::string short_subject = "V\xc3\xa9rifiez votre adresse";
  const std::string encoded = EncodeHeaderText(short_subject, 9);
  EXPECT_EQ(encoded, "=?UTF-8?B?" + internal::Base64Encode(short_subject) + "?=");
  EXPECT_EQ(DecodeHeaderValue(encoded), short_subject);

  std::string long_subject;
  for (int i = 0; i < 40; ++i) long_subject += "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 ";  // é € 😀
  const std::string words = EncodeHeaderText(long_subject, 9);
  const auto lines = SplitCrlf(words);
  ASSERT_GT(lines.size(), 1u);
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string word = i == 0 ? lines[i] : lines[i].substr(1);
    EXPECT_LE((i == 0 ? 9 : 0) + lines[i].size(), 76u) << lines[i];
    EXPECT_LE(word.size(), 75u);
    ASSERT_TRUE(word.starts_with("=?UTF-8?B?") && word.ends_with("?=")) << word;
    // Each word decodes to whole characters on its own.
    EXPECT_TRUE(IsValidUtf8(DecodeBase64(word.substr(10, word.size() - 12)))) << word;
  }
  EXPECT_EQ(DecodeHeaderValue(words), long_subject);

  // Text that a reader would decode is protected by encoding it.
  EXPECT_TRUE(EncodeHeaderText("=?UTF-8?B?SGk=?=", 9).starts_with("=?UTF-8?B?"));
  EXPECT_EQ(DecodeHeaderValue(EncodeHeaderText("=?UTF-8?B?SGk=?=", 9)), "=?UTF-8?B?SGk=?=");
}

TEST(FormatMessageTest, EncodesNonAsciiSubjectAndSenderName) {
  const Message message{"ada@example.org", "Bienvenue \xc3\xa0 bord", "x\n"};
  auto text = FormatMessage(message, "Sac \xc3\xa0 dos <noreply@example.com>", At(kTuesday), "id@x");
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  for (char c : *text) EXPECT_LT(static_cast<unsigned char>(c), 0x80);
  const auto parsed = ParseMessage(*text);
  EXPECT_EQ(DecodeHeaderValue(parsed.Header("Subject")), "Bienvenue \xc3\xa0 bord");
  EXPECT_EQ(DecodeHeaderValue(parsed.Header("From")), "Sac \xc3\xa0 dos <noreply@example.com>");
}

TEST(EnvelopeAddressTest, ExtractsTheBareAddress) {
  EXPECT_EQ(EnvelopeAddress("Ada <ada@example.org>"), "ada@example.org");
  EXPECT_EQ(EnvelopeAddress("\"Lovelace, Ada <1815>\" <ada@example.org>"), "ada@example.org");
  EXPECT_EQ(EnvelopeAddress("<ada@example.org>"), "ada@example.org");
  EXPECT_EQ(EnvelopeAddress("ada@example.org"), "ada@example.org");
  EXPECT_EQ(EnvelopeAddress("  ada@example.org \t"), "ada@example.org");
  EXPECT_EQ(EnvelopeAddress(""), "");
}

TEST(RetryDelayTest, DoublesFromFiveSecondsUpToFifteenMinutesPlusJitter) {
  using std::chrono::milliseconds;
  using std::chrono::minutes;
  using std::chrono::seconds;
  const internal::RelayOptions options;
  EXPECT_EQ(internal::RetryDelay(options, 1, 0.0), seconds(5));
  EXPECT_EQ(internal::RetryDelay(options, 2, 0.0), seconds(10));
  EXPECT_EQ(internal::RetryDelay(options, 3, 0.0), seconds(20));
  EXPECT_EQ(internal::RetryDelay(options, 1, 0.5), milliseconds(5625));
  EXPECT_EQ(internal::RetryDelay(options, 9, 0.0), minutes(15));
  EXPECT_EQ(internal::RetryDelay(options, 1000, 0.0), minutes(15));
  EXPECT_EQ(internal::RetryDelay(options, 1000, 1.0), milliseconds(15 * 60'000 * 5 / 4));
}

}  // namespace
}  // namespace backpack::mail
