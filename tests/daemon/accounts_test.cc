// AccountService against a real RocksDB store and the real outbox mailer,
// with an injected clock.
#include <atomic>
#include <regex>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <openssl/rand.h>

#include "daemon/accounts.h"
#include "daemon/mail.h"
#include "storage/store.h"
#include "tests/support/test_http.h"

namespace backpack {
namespace {

using testing::ListFiles;
using testing::ReadFile;
using testing::TempDir;

class AccountsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.scrypt_log2_n = 10;
    storage::StoreOptions options;
    options.path = dir_.path() + "/db";
    auto store = storage::OpenRocksStore(options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    auto mailer = mail::MakeMailer(mail_config_, dir_.path());
    ASSERT_TRUE(mailer.ok()) << mailer.status().ToString();
    mailer_ = std::move(*mailer);
    service_ = std::make_unique<AccountService>(
        *store_, locks_, *mailer_, config_, "http://node.test", [this] { return now_.load(); },
        [](size_t n) {
          std::string out(n, '\0');
          RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n));
          return out;
        });
  }

  // The token in the message to `to` that arrived after the files in `seen`
  // (all messages when `seen` is empty); records what it read in `seen`.
  std::string Token(const std::string& to, const std::string& kind = "Verification") {
    std::string token;
    for (const auto& file : ListFiles(dir_.path() + "/outbox")) {
      if (!seen_.insert(file).second) continue;
      const std::string msg = ReadFile(file);
      if (msg.find("To: " + to + "\r\n") == std::string::npos) continue;
      std::smatch m;
      const std::regex re(kind + " token: ([A-Za-z0-9_-]+)");
      if (std::regex_search(msg, m, re)) token = m[1];
    }
    return token;
  }

  std::string NewAccount(const std::string& email) {
    auto a = service_->CreateAccount(email, "a good password", "");
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    return a.ok() ? a->id : std::string();
  }

  TempDir dir_;
  config::AccountsConfig config_;
  config::MailConfig mail_config_;
  std::unique_ptr<storage::Store> store_;
  storage::KeyLocks locks_;
  std::unique_ptr<mail::Mailer> mailer_;
  std::unique_ptr<AccountService> service_;
  std::atomic<int64_t> now_{1'800'000'000};
  std::set<std::string> seen_;
};

TEST_F(AccountsTest, VerificationTokensExpire) {
  NewAccount("a@x.example");
  const std::string token = Token("a@x.example");
  ASSERT_FALSE(token.empty());
  now_ += int64_t{config_.verify_token_ttl_hours} * 3600;
  auto r = service_->VerifyEmail(token, "");
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
}

TEST_F(AccountsTest, SessionsExpire) {
  NewAccount("s@x.example");
  auto grant = service_->SignIn("s@x.example", "a good password");
  ASSERT_TRUE(grant.ok());
  EXPECT_TRUE(service_->Authenticate(grant->token).ok());
  now_ = grant->expires_at;
  EXPECT_EQ(service_->Authenticate(grant->token).status().code(), StatusCode::kUnauthenticated);
}

TEST_F(AccountsTest, StaleSignUpClaimCanBeTakenOver) {
  const std::string squatter = NewAccount("victim@x.example");
  EXPECT_EQ(service_->CreateAccount("victim@x.example", "a good password", "").status().code(),
            StatusCode::kAlreadyExists);
  now_ += int64_t{config_.signup_claim_ttl_hours} * 3600 + 1;
  auto owner = service_->CreateAccount("VICTIM@x.example", "the real owner", "");
  ASSERT_TRUE(owner.ok()) << owner.status().ToString();
  // Sign-in by the address now reaches the new account.
  EXPECT_FALSE(service_->SignIn("victim@x.example", "a good password").ok());
  EXPECT_TRUE(service_->SignIn("victim@x.example", "the real owner").ok());
}

TEST_F(AccountsTest, AccountEmailCountIsCapped) {
  config_.max_emails_per_account = 3;
  const std::string id = NewAccount("cap@x.example");
  EXPECT_TRUE(service_->AddEmail(id, "cap2@x.example").ok());
  EXPECT_TRUE(service_->AddEmail(id, "cap3@x.example").ok());
  EXPECT_EQ(service_->AddEmail(id, "cap4@x.example").status().code(), StatusCode::kFailedPrecondition);
  // Adding an address that is already there only re-sends.
  auto again = service_->AddEmail(id, "CAP2@x.example");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  EXPECT_EQ(service_->GetAccount(id)->emails.size(), 3u);
}

// Two accounts racing to verify the same address: exactly one wins.
TEST_F(AccountsTest, ConcurrentVerificationHasOneWinner) {
  for (int round = 0; round < 10; ++round) {
    const std::string address = "race" + std::to_string(round) + "@x.example";
    const std::string a = NewAccount("a" + std::to_string(round) + "@x.example");
    const std::string b = NewAccount("b" + std::to_string(round) + "@x.example");
    ASSERT_TRUE(service_->AddEmail(a, address).ok());
    const std::string token_a = Token(address);
    ASSERT_TRUE(service_->AddEmail(b, address).ok());
    const std::string token_b = Token(address);
    ASSERT_NE(token_a, token_b);
    std::atomic<int> wins{0}, conflicts{0};
    std::thread ta([&] {
      auto r = service_->VerifyEmail(token_a, a);
      (r.ok() ? wins : conflicts)++;
    });
    std::thread tb([&] {
      auto r = service_->VerifyEmail(token_b, b);
      (r.ok() ? wins : conflicts)++;
    });
    ta.join();
    tb.join();
    EXPECT_EQ(wins.load(), 1);
    EXPECT_EQ(conflicts.load(), 1);
  }
}

TEST_F(AccountsTest, PurgeRemovesOnlyExpiredSecrets) {
  NewAccount("purge@x.example");
  auto old_session = service_->SignIn("purge@x.example", "a good password");
  ASSERT_TRUE(old_session.ok());
  auto count = [&](storage::Family f) {
    size_t n = 0;
    EXPECT_TRUE(store_->Scan(f, "", [&](std::string_view, std::string_view) { return ++n > 0; }).ok());
    return n;
  };
  EXPECT_EQ(service_->PurgeExpired(1000).value(), 0u);
  EXPECT_EQ(count(storage::Family::kSessions), 1u);
  EXPECT_EQ(count(storage::Family::kMailTokens), 1u);
  // Past the verification token's and the session's lifetimes.
  now_ += int64_t{config_.session_ttl_hours} * 3600 + 1;
  auto fresh = service_->SignIn("purge@x.example", "a good password");
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(service_->PurgeExpired(1000).value(), 2u);
  EXPECT_EQ(count(storage::Family::kSessions), 1u);
  EXPECT_EQ(count(storage::Family::kMailTokens), 0u);
  EXPECT_EQ(count(storage::Family::kAccountTokens), 1u);  // the fresh session's index entry
  EXPECT_TRUE(service_->Authenticate(fresh->token).ok());
  EXPECT_FALSE(service_->Authenticate(old_session->token).ok());
}

TEST_F(AccountsTest, OutboxMessagesCarryNoPasswordAndOneTokenEach) {
  NewAccount("mail@x.example");
  auto files = ListFiles(dir_.path() + "/outbox");
  ASSERT_EQ(files.size(), 1u);
  const std::string msg = ReadFile(files[0]);
  EXPECT_EQ(msg.find("a good password"), std::string::npos);
  EXPECT_NE(msg.find("Subject: "), std::string::npos);
  EXPECT_NE(msg.find("\r\n\r\n"), std::string::npos);
}

}  // namespace
}  // namespace backpack
