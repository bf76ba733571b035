// The outbox mailer (no SMTP host configured).
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "config/config.h"
#include "daemon/mail.h"
#include "tests/mail/test_support.h"

namespace backpack::mail {
namespace {

using test_support::DecodeHeaderValue;
using test_support::DecodeQuotedPrintable;
using test_support::FileMode;
using test_support::ListNames;
using test_support::ParseMessage;
using test_support::ReadFile;
using test_support::TempDir;

config::MailConfig OutboxConfig() {
  config::MailConfig config;
  config.from = "backpackd <noreply@backpack.example>";
  return config;  // smtp_host empty: the outbox
}

TEST(OutboxMailerTest, WritesOneParseableFilePerMessageAndNothingElse) {
  TempDir tmp;
  const std::string data_dir = tmp.path() + "/data";
  auto mailer = MakeMailer(OutboxConfig(), data_dir);
  ASSERT_TRUE(mailer.ok()) << mailer.status().ToString();

  const Message message{"ada@example.org", "V\xc3\xa9rifiez votre adresse",
                        "Token: abc=def \nSecond line\n.leading dot\n"};
  ASSERT_TRUE((*mailer)->Send(message).ok());

  EXPECT_EQ(ListNames(data_dir), std::vector<std::string>{"outbox"});
  const std::string outbox = data_dir + "/outbox";
  EXPECT_EQ(FileMode(outbox), 0700u);
  const auto names = ListNames(outbox);
  ASSERT_EQ(names.size(), 1u);
  EXPECT_TRUE(std::regex_match(names[0], std::regex(R"(\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{16}\.eml)"))) << names[0];
  EXPECT_EQ(FileMode(outbox + "/" + names[0]), 0600u);

  const std::string text = ReadFile(outbox + "/" + names[0]);
  const auto parsed = ParseMessage(text);
  std::vector<std::string> header_names;
  for (const auto& [name, value] : parsed.headers) header_names.push_back(name);
  EXPECT_EQ(header_names,
            (std::vector<std::string>{"Date", "From", "To", "Subject", "Message-ID", "MIME-Version",
                                      "Content-Type", "Content-Transfer-Encoding"}));
  EXPECT_TRUE(std::regex_match(
      parsed.Header("Date"),
      std::regex(R"((Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d \+0000)")))
      << parsed.Header("Date");
  EXPECT_EQ(parsed.Header("From"), "backpackd <noreply@backpack.example>");
  EXPECT_EQ(parsed.Header("To"), "ada@example.org");
  EXPECT_EQ(DecodeHeaderValue(parsed.Header("Subject")), message.subject);
  EXPECT_TRUE(std::regex_match(parsed.Header("Message-ID"), std::regex(R"(<[^<>@ ]+@backpack\.example>)")))
      << parsed.Header("Message-ID");
  EXPECT_EQ(DecodeQuotedPrintable(parsed.body), message.text_body);

  ASSERT_TRUE((*mailer)->Send(message).ok());
  const auto two = ListNames(outbox);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_NE(ParseMessage(ReadFile(outbox + "/" + two[0])).Header("Message-ID"),
            ParseMessage(ReadFile(outbox + "/" + two[1])).Header("Message-ID"));
  (*mailer)->Stop();
}

TEST(OutboxMailerTest, RefusesInjectedHeadersAndWritesNothing) {
  TempDir tmp;
  auto mailer = MakeMailer(OutboxConfig(), tmp.path());
  ASSERT_TRUE(mailer.ok()) << mailer.status().ToString();
  const Status status = (*mailer)->Send({"ada@example.org\r\nBcc: eve@example.net", "s", "b\n"});
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*mailer)->Send({"ada@example.org", "s\nBcc: eve@example.net", "b\n"}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ((*mailer)->Send({"not an address", "s", "b\n"}).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(ListNames(tmp.path() + "/outbox").empty());
}

TEST(OutboxMailerTest, RemovesHalfWrittenFilesAtStart) {
  TempDir tmp;
  const std::string outbox = tmp.MakeSubdir("outbox");
  std::ofstream(outbox + "/.tmp-20240101T000000.000000Z-0000000000000000.eml") << "Date: half";
  std::ofstream(outbox + "/20240101T000000.000000Z-0000000000000001.eml") << "kept\r\n";
  auto mailer = MakeMailer(OutboxConfig(), tmp.path());
  ASSERT_TRUE(mailer.ok()) << mailer.status().ToString();
  EXPECT_EQ(ListNames(outbox), std::vector<std::string>{"20240101T000000.000000Z-0000000000000001.eml"});
}

}  // namespace
}  // namespace backpack::mail
